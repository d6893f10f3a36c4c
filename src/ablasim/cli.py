"""The ``ablasim`` command.

Exit codes: 0 the run completed (the verdicts are in the report; with ``--strict``, 0
only for PASS and a COMPLETE tumour coverage), 1 ``--strict`` and the nerve verdict is
FAIL or the tumour coverage INCOMPLETE, 2 bad input (one clear message, no
traceback, nothing written), 3 the simulation failed (blow-up), 130 interrupted (the
checkpoint is kept: run again with ``--resume``).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from importlib import resources
from pathlib import Path

from .errors import AblasimError, ScenarioError, SimulationError, StabilityError, suggest

__all__ = ["example_path", "list_examples", "main"]

EXIT_OK, EXIT_FAIL, EXIT_INPUT, EXIT_SIMULATION, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

RUN_HELP = """\
Run one scenario and write into --out:
  report.json     machine-readable verdicts (nerves, tumour), per-nerve metrics,
                  ablation zone, events, warnings, the plan as run, timing
  report.txt      the same for a person, the two verdicts and the events first
  timeseries.csv  time, phase, deposited_power_W, the sources' telemetry, every
                  thermocouple (tc_<name>_C), every nerve's hottest voxel
                  (<structure>_max_C)
  *.png           isotherms on slices through the probe and the most exposed nerve,
                  and the thermocouple curves
  fields.vti      final temperature, peak/min temperature, CEM43, Omega, labels,
                  ablation zone (opens in ParaView and 3D Slicer)

A scenario is a TOML file; units are in the key names (_mm, _s, _min, _W, _C):

  name = "L1 lytic metastasis"
  [grid]
  spacing_mm = 0.5
  extent_mm = [48, 64, 48]          # or shape = [96, 128, 96]
  center_mm = [0, -10, 0]
  [anatomy]
  phantom = "vertebra"              # or labels = "seg.nii.gz" + [anatomy.label_map]
  tumour = { center_mm = [0, 2, 0], diameter_mm = 18, kind = "lytic" }
  [[phase]]
  name = "heat"
  duration_min = 6
  [[phase.source]]
  kind = "volumetric"
  shape = "cylinder"                # sphere | cylinder | box | label | map
  tip_mm = [0, 6, 0]
  direction = [0, 1, 0]
  active_length_mm = 10
  diameter_mm = 4
  power_W = 4
  [safety]
  hot_limit_C = 45
  [[safety.thermocouple]]
  name = "epidural"
  position_mm = [0, -17, 0]
  cutoff = true

Source kinds (one or more [[phase.source]] per phase; a phase without one cools down):
{source_kinds}

`ablasim keys` lists every key of every table with its type, unit, default and range
(read from the code that checks them). `ablasim examples` lists complete, commented
scenarios; `ablasim examples NAME` prints one, to copy and edit.
"""


def _source_kinds_help() -> str:
    """Each registered source kind with its keys (from the sources' own help)."""
    from .sources import SOURCES

    lines = []
    for kind, cls in sorted(SOURCES.items()):
        lines.append(f'  kind = "{kind}"'.ljust(23) + cls.summary)
        lines.extend(" " * 23 + line for line in cls.keys_help.splitlines())
    return "\n".join(lines)


SWEEP_HELP = """\
Run many variants of one scenario in parallel worker processes (or on a Dask cluster)
and write one row per run, as runs finish, into --out:
  runs.csv, runs.parquet   run_id, one column per varied key (named by its path),
                           status (ok | error), error, verdict, max_nerve_temperature_C,
                           min_nerve_temperature_C, hottest_nerve, ablation_volume_ml,
                           tumour_coverage_fraction, wall_s
  runs/<run_id>/           each run's report.json, report.txt, timeseries.csv, ...

A sweep file names a base scenario and the keys to vary, by the path the error
messages use (`ablasim keys` lists them):

  base = "my.toml"                  # relative to this file, or "example:vertebra-demo"
  [sweep]
  method = "grid"                   # grid: every combination | zip: i-th of each list
                                    # latin_hypercube | random: `samples` draws from ranges
  # samples = 40                    # latin_hypercube / random only
  # seed = 1
  [sweep.vary]
  "phase[0].source[0].power_W" = [2, 3, 4]
  "phase[0].duration_min" = [4, 6]
  # with latin_hypercube / random, ranges instead of lists:
  # "tissues.muscle.perfusion_per_s" = { low = 0.0005, high = 0.003 }

Every case is checked by the scenario reader before any run starts: a key path that
does not exist stops the sweep (with the nearest key); a value the reader refuses
makes that run an error row. Run the same command again and it does only the runs not
yet in the table (an interrupted or killed sweep continues where it stopped).
For a fast first look, coarsen the grid in the base (grid.spacing_mm = 2) and turn
pictures off ([output] pictures = false, vti = false); then copy the interesting
run_ids' values into a fine scenario and `ablasim run` it.

Exit codes: 0 done (runs that fail or err are rows of the table), 2 bad input,
130 interrupted.
"""


def list_examples() -> dict[str, str]:
    """Shipped example scenarios: name -> first description line."""
    out = {}
    for f in sorted(resources.files("ablasim.examples").iterdir(), key=lambda p: p.name):
        if f.name.endswith(".toml"):
            desc = ""
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.startswith("description"):
                    desc = line.split("=", 1)[1].strip().strip('"')
                    break
            out[f.name[:-5]] = desc
    return out


def example_path(name: str) -> Path:
    """Path of a shipped example scenario (ScenarioError with suggestions if unknown)."""
    names = list_examples()
    if name not in names:
        raise ScenarioError(f"unknown example {name!r}" + suggest(name, names))
    return Path(str(resources.files("ablasim.examples") / f"{name}.toml"))


def _cmd_run(args) -> int:
    from .runner import run_scenario

    if (args.scenario is None) == (args.example is None):
        raise ScenarioError("give a scenario file or --example NAME (see `ablasim examples`)")
    path = example_path(args.example) if args.example else Path(args.scenario)
    out = Path(args.out)
    try:
        run = run_scenario(path, out, progress=not args.quiet, resume=args.resume, on_warning=_warn)
    except KeyboardInterrupt as exc:
        print(_interrupted(exc, out), file=sys.stderr)
        return EXIT_INTERRUPTED
    rep = run.report
    if not args.quiet:
        txt = (out / "report.txt").read_text(encoding="utf-8")
        print(txt.split("\n\n", 1)[0])
        if (t0 := rep["timing"].get("resumed_from_s")) is not None:
            print(f"\nresumed from the checkpoint at t = {t0:g} s (the time before it was "
                  "computed by the interrupted run)")  # fmt: skip
        print(f"\nwrote {len(run.files)} files to {out}/ (report.txt has the details)")
    if args.strict and (rep["verdict"] != "PASS" or rep["tumour"]["verdict"] == "INCOMPLETE"):
        return EXIT_FAIL
    return EXIT_OK


def _warn(sentence: str) -> None:
    """A plausibility warning, said as soon as the scenario is built (also in the report)."""
    print(f"ablasim: warning: {sentence}", file=sys.stderr, flush=True)


def _interrupted(exc: KeyboardInterrupt, out: Path) -> str:
    """What a Ctrl-C of ``ablasim run`` left: a checkpoint to resume from, or nothing."""
    from .runner import CHECKPOINT_NAME
    from .simulation import Interrupted

    ckpt = out / CHECKPOINT_NAME
    if isinstance(exc, Interrupted) and exc.saved_at_s is not None:
        return (
            f"\nablasim: interrupted at t = {exc.saved_at_s:g} s of {exc.duration_s:g} s; the "
            f"state is saved in {ckpt}: run the same command with --resume to continue"
        )
    if ckpt.exists():
        return (
            f"\nablasim: interrupted; the last checkpoint ({ckpt}) is kept: run the same "
            "command with --resume to continue from it"
        )
    return (
        "\nablasim: interrupted; nothing was saved to resume from (run the same command "
        "without --resume to start again)"
    )


def _cmd_examples(args) -> int:
    if args.name:
        print(example_path(args.name).read_text(encoding="utf-8"), end="")
        return EXIT_OK
    for name, desc in list_examples().items():
        print(f"{name:<22} {desc}")
    print("\nrun one:   ablasim run --example NAME --out DIR")
    print("copy one:  ablasim examples NAME > my-scenario.toml")
    return EXIT_OK


def _cmd_phantom(args) -> int:
    from .anatomy import make_phantom
    from .grid import Grid
    from .viz.labels import write_phantom_outputs

    center = tuple(v * 1e-3 for v in args.center_mm)
    extent = tuple(v * 1e-3 for v in args.extent_mm)
    grid = Grid.from_extent(extent, args.spacing_mm * 1e-3, center=center)
    params = {}
    if args.level:
        params["level"] = args.level
    if args.tumour_mm:
        x, y, z, d = args.tumour_mm
        params["tumour"] = {
            "center": (x * 1e-3, y * 1e-3, z * 1e-3),
            "diameter": d * 1e-3,
            "kind": args.tumour_kind,
        }
    phantom = make_phantom(args.name, grid, **params)
    files = write_phantom_outputs(phantom, args.out, stem=args.name)
    for f in files:
        print(f)
    return EXIT_OK


def _cmd_keys(args) -> int:
    from .keys import format_keys

    print(format_keys(width=args.width), end="")
    return EXIT_OK


def _cmd_tissues(args) -> int:
    from .tissues import TissueLibrary
    from .tissues.validation import source_tag

    lib = TissueLibrary.default()
    if args.name:
        t = lib[args.name]
        print(f"{t.name}: {t.description}")
        print(f"  {'property':<38} {'value':<12} source")
        number: dict[str, int] = {}  # reference tag -> [n], in order of first use
        for key, value in t.values().items():
            source = t.sources.get(key, "")
            tag = source_tag(source)
            n = number.setdefault(tag, len(number) + 1)
            note = source.split(";", 1)[1].strip() if ";" in source else ""
            print(f"  {key:<38} {value:<12.6g} [{n}] {note}".rstrip())
        print("\nReferences")
        for tag, n in number.items():
            ref = lib.references.get(tag, tag)
            wrapped = textwrap.wrap(ref, 100, break_long_words=False, break_on_hyphens=False)
            print(f"  [{n}] " + "\n      ".join(wrapped))
        return EXIT_OK
    print(lib.describe())
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ablasim",
        description=textwrap.dedent(
            """\
            Heat in the body during ablation and cementoplasty of bone metastases:
            the Pennes bioheat equation on a 3D voxel grid, and a nerve-safety report
            (do the spinal cord and nerve roots stay between 10 and 45 °C, and is the
            tumour covered?)."""
        ),
        epilog="Start with `ablasim examples`, then "
        "`ablasim run --example vertebra-demo --out demo`.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    p.add_argument("--version", action="version", version=f"ablasim {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "run",
        help="run a scenario and write the report, tables, pictures and fields",
        description=RUN_HELP.replace("{source_kinds}", _source_kinds_help()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("scenario", nargs="?", help="scenario file (TOML)")
    r.add_argument("--example", metavar="NAME", help="run a shipped example instead")
    r.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    r.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when the nerve verdict is FAIL or the tumour coverage INCOMPLETE",
    )
    r.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from DIR/.checkpoint.npz",
    )
    r.set_defaults(func=_cmd_run)

    e = sub.add_parser("examples", help="list the shipped example scenarios, or print one")
    e.add_argument("name", nargs="?", help="print this example (to copy and edit)")
    e.set_defaults(func=_cmd_examples)

    ph = sub.add_parser(
        "phantom",
        help="build a procedural phantom and write its label map and a slice picture",
        description="Write DIR/NAME.nii.gz (label map, opens in 3D Slicer), a label table, "
        "a 3D Slicer colour table and an orthogonal-slice PNG with a legend.",
    )
    ph.add_argument("name", help="vertebra, long_bone, uniform, slab or sphere")
    ph.add_argument("--out", "-o", required=True, metavar="DIR")
    ph.add_argument("--spacing-mm", type=float, default=0.5, metavar="H")
    ph.add_argument(
        "--extent-mm", type=float, nargs=3, default=(64.0, 80.0, 64.0), metavar=("X", "Y", "Z")
    )
    ph.add_argument(
        "--center-mm", type=float, nargs=3, default=(0.0, -12.0, 0.0), metavar=("X", "Y", "Z")
    )
    ph.add_argument("--level", help="vertebral level: T12, L1 (default) or L3")
    ph.add_argument(
        "--tumour-mm",
        type=float,
        nargs=4,
        metavar=("X", "Y", "Z", "D"),
        help="a spherical tumour: centre and diameter in mm",
    )
    ph.add_argument("--tumour-kind", default="lytic", choices=("lytic", "blastic"))
    ph.set_defaults(func=_cmd_phantom)

    c = sub.add_parser(
        "compile",
        help="compile the numba kernels now (once per machine), so the first run is fast",
        description="Compile every kernel a simulation runs and keep the machine code in "
        "numba's on-disk cache (next to the sources, or in $NUMBA_CACHE_DIR). A run "
        "compiles what it "
        "needs anyway, but this does it ahead, in two processes at once: 17 s on a 2-core "
        "machine from a fresh clone (up to a minute on slower ones), against 26 s of "
        "compilation inside a first RF run. `make demo` and "
        "`make test` call it. With a warm cache it returns in a few seconds.",
    )
    c.add_argument(
        "--serial", action="store_true", help="compile in this process, one group after the other"
    )
    c.set_defaults(func=_cmd_compile)

    k = sub.add_parser(
        "keys",
        help="list every scenario key: type, unit, default, range",
        description="Every key a scenario file may hold, table by table, with its type, "
        "unit, default and range. The listing is made by running the scenario reader itself "
        "(and the sources', tissues' and phantoms' own checks), so it is what `ablasim run` "
        "accepts.",
    )
    k.add_argument(
        "--width",
        type=int,
        default=100,
        metavar="N",
        help="wrap lines at N characters (0: no wrap)",
    )
    k.set_defaults(func=_cmd_keys)

    sw = sub.add_parser(
        "sweep",
        help="run many variants of a scenario in parallel, one table row per run",
        description=SWEEP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sw.add_argument("sweep", metavar="SWEEP.toml", help="sweep file (TOML), see above")
    sw.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    sw.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes (default: the CPU count); each gets cores/N numba threads",
    )
    sw.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on the Dask scheduler at ADDRESS (tcp://host:8786), or 'local' for a "
        "Dask LocalCluster of --workers processes",
    )
    sw.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sw.set_defaults(func=_cmd_sweep)

    t = sub.add_parser("tissues", help="list the tissue library, or one tissue with sources")
    t.add_argument("name", nargs="?")
    t.set_defaults(func=_cmd_tissues)
    return p


def _cmd_sweep(args) -> int:
    from .sweep import load_sweep, run_sweep

    sweep = load_sweep(args.sweep)  # every case validated before any run starts
    bad = sum(c.invalid is not None for c in sweep.cases)
    print(
        f"ablasim: sweep {args.sweep}: {len(sweep.cases)} runs ({sweep.method} over "
        f"{', '.join(sweep.keys)})" + (f"; {bad} refused by the scenario reader" if bad else ""),
        file=sys.stderr,
    )
    summary = run_sweep(
        sweep, args.out, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet
    )
    print(f"ablasim: {summary.line()}")
    if summary.interrupted:
        print(
            "ablasim: interrupted; the finished runs are in the table, run the same command "
            "to do the rest",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return EXIT_OK


def _cmd_compile(args) -> int:
    from .precompile import compile_all

    print("ablasim: compiling the kernels (17-60 s the first time) ...", flush=True)
    try:
        times = compile_all(parallel=not args.serial)
    except KeyboardInterrupt:
        print("\nablasim: interrupted; what was compiled is kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    groups = ", ".join(f"{g} {t:.1f} s" for g, t in times.items() if g != "total")
    print(f"ablasim: kernels compiled or loaded in {times['total']:.1f} s ({groups})")
    return EXIT_OK


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INPUT
    try:
        return args.func(args)
    except (ScenarioError, StabilityError) as exc:
        print(f"ablasim: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except SimulationError as exc:
        print(f"ablasim: simulation failed: {exc}", file=sys.stderr)
        return EXIT_SIMULATION
    except AblasimError as exc:
        print(f"ablasim: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print(
            "\nablasim: interrupted; run the same command with --resume to continue",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
