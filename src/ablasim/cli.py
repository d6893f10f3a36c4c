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
            if key in t.ranges:  # the published spread (ablasim uncertainty samples it)
                low, high, rsource = t.ranges[key]
                rn = number.setdefault(source_tag(rsource), len(number) + 1)
                print(f"  {'':<38} range {low:g} .. {high:g} [{rn}]")
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

    _add_envelope_parsers(sub)

    pl = sub.add_parser(
        "plot",
        help="re-draw a finished run's pictures from its folder, without running again",
        description="Re-draw pictures from the files a run saved (fields.vti, report.json, "
        "timeseries.csv, snapshots.npz). Without a picture option: the slices and the "
        "curves. Exit 2 names a missing file and what makes it.",
    )
    pl.add_argument("result_dir", metavar="RESULT_DIR", help="the run's --out folder")
    pl.add_argument("--out", default=None, help="write the pictures there (default RESULT_DIR)")
    pl.add_argument("--slices", action="store_true", help="peak/coldest temperature slices")
    pl.add_argument("--curves", action="store_true", help="timeseries.png")
    pl.add_argument("--damage", action="store_true", help="damage_slices.png: CEM43 and Omega")
    pl.add_argument("--animation", action="store_true",
                    help="isotherms.gif (needs a run with [output] animation = true)")  # fmt: skip
    pl.add_argument("--3d", dest="three_d", action="store_true", help="isotherms_3d.png")
    pl.add_argument("--plane", choices=("x", "y", "z"), default=None,
                    help="one slice plane instead of the panels (with --slices)")  # fmt: skip
    pl.add_argument("--level", type=float, action="append", default=[], metavar="C",
                    help="an extra isotherm [°C]; repeatable")  # fmt: skip
    pl.set_defaults(func=_cmd_plot)

    t = sub.add_parser("tissues", help="list the tissue library, or one tissue with sources")
    t.add_argument("name", nargs="?")
    t.set_defaults(func=_cmd_tissues)
    return p


def _cmd_plot(args) -> int:
    from .replot import plot_run

    chosen = {"slices": args.slices, "curves": args.curves, "damage": args.damage,
              "animation": args.animation, "3d": args.three_d}  # fmt: skip
    kinds = [k for k, on in chosen.items() if on] or ["slices", "curves"]
    for f in plot_run(args.result_dir, args.out, kinds=kinds, plane=args.plane,
                      levels=args.level):  # fmt: skip
        print(f)
    return EXIT_OK


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


ENVELOPE_HELP = """\
Find the value of one scenario key at which the nerve verdict flips, by bisection:
the longest safe time, the highest safe power, the smallest safe distance.

  ablasim envelope plan.toml --vary "phase[0].source[0].power_W" --range 2 20 --out env

Both ends of the range run first: they must give different verdicts (one PASS, one
FAIL), or there is no flip to find and the command says which verdict both gave.
Then each run halves the bracket, until it is narrower than --tol (default 1 % of the
range: about 7 runs after the two ends). The safe side may be either end (power:
below; distance: above). Keys are paths as the error messages write them:
phase[0].duration_s, phase[0].source[0].power_W, phase[0].source[0].center_mm[0],
tissues.muscle.perfusion_per_s, ... (`ablasim keys` lists them). Nothing but
envelope.json is written; each run is built and simulated in memory.

DIR/envelope.json:
  key, range, tol, safe_side ("below" | "above": where the safe values lie)
  safe_limit    the last value tried that passes
  unsafe_from   the first that fails (the flip lies between the two)
  runs, tried   the number of runs and each {value, verdict,
                max_nerve_temperature_C, hottest_nerve}

Over two keys, --along KEY2 V1 V2 ... repeats the bisection on --vary's key for each
value of KEY2 and traces the boundary curve: envelope.json then holds "along" and
"curve" (one {along_value, safe_limit, unsafe_from, safe_side, runs, tried, note} per
value; a value whose range brackets no flip has safe_limit null and a note saying the
verdict of both ends), and DIR/envelope.png draws it. Example, the highest safe power
for four treatment times:

  ablasim envelope plan.toml --vary "phase[0].source[0].power_W" --range 2 20 \\
      --along "phase[0].duration_s" 120 240 360 480 --out env

The answer is the model's at the scenario's grid: refine grid.spacing_mm around the
limit found before relying on it.
"""

UNCERTAINTY_HELP = """\
How sure is the nerve verdict? Sample tissue properties within their published spread
and count, per nerve structure, how often it crosses its limit.

  ablasim uncertainty plan.toml --samples 200 --seed 1 --out unc

What varies: every property of the tissues the scenario uses that has a published range
in the tissue library (`ablasim tissues NAME` shows it; today the RF and thermal
temperature coefficients and the blastic tumour's RF conductivity; the IT'IS file the
library reads gives no spread for density, heat capacity, conductivity or perfusion, so
they stay fixed), except those the scenario file overrides. Add or replace ranges with
--range KEY LOW HIGH (repeatable), e.g. --range tissues.muscle.perfusion_per_s 0.0003
0.003. Draws are independent and seeded (same --seed, same samples); uniform in the
range, log-uniform for perfusion and for ranges over a factor of 10 or more.

DIR/uncertainty.json:
  varied      each key with low, high, distribution and the range's source
  nerves      per nerve structure: probability_exceeds_limit (the fraction of runs in
              which its verdict was FAIL), exceedances, runs, confidence_interval
              (Wilson score interval, 95 %: the sampling uncertainty for this many runs;
              halve its width with four times the samples)
  samples, seed, runs_ok, runs_error
DIR/runs.csv: one row per run: run_id, the sampled values (one column per key), status
("ok" | "error"), error, verdict, max/min nerve temperature, hottest_nerve, per nerve
its verdict and peak (°C), wall_s. A run whose sampled scenario is invalid is recorded
as an error and left out of the counts.
"""


def _add_envelope_parsers(sub) -> None:
    """The `envelope` and `uncertainty` subcommands."""
    en = sub.add_parser(
        "envelope",
        help="bisection on the nerve verdict: the highest safe power, longest safe time, ...",
        description=ENVELOPE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    en.add_argument("scenario", metavar="SCENARIO.toml", help="scenario file (TOML)")
    en.add_argument("--vary", required=True, metavar="KEY", help="key path to vary")
    en.add_argument(
        "--range", required=True, type=float, nargs=2, metavar=("LOW", "HIGH"),
        help="the values of KEY to search between",
    )  # fmt: skip
    en.add_argument(
        "--tol", type=float, metavar="X",
        help="stop when the bracket is narrower than X (KEY's unit; default 1%% of the range)",
    )  # fmt: skip
    en.add_argument(
        "--along", nargs="+", metavar=("KEY2", "V"),
        help="trace the boundary curve: one bisection for each value V of KEY2",
    )  # fmt: skip
    en.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    en.add_argument("--quiet", "-q", action="store_true", help="no line per run")
    en.set_defaults(func=_cmd_envelope)

    un = sub.add_parser(
        "uncertainty",
        help="sample tissue properties in their published spread: P(nerve limit crossed)",
        description=UNCERTAINTY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    un.add_argument("scenario", metavar="SCENARIO.toml", help="scenario file (TOML)")
    un.add_argument("--samples", required=True, type=int, metavar="N", help="number of runs")
    un.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    un.add_argument(
        "--range", action="append", nargs=3, default=[], metavar=("KEY", "LOW", "HIGH"),
        help="vary KEY uniformly (log-uniformly for perfusion) in [LOW, HIGH]; repeatable",
    )  # fmt: skip
    un.add_argument("--out", "-o", required=True, metavar="DIR", help="output folder")
    un.add_argument("--quiet", "-q", action="store_true", help="no line per run")
    un.set_defaults(func=_cmd_uncertainty)


def _say_run(quiet: bool, along: str | None = None):
    def say(row) -> None:
        if quiet:
            return
        at = f" ({along} = {row[along]:g})" if along else ""
        t = row["max_nerve_temperature_C"]
        peak = "" if t is None else f", nerves peak {t:.2f} °C"
        print(f"  {row['value']:g}{at}: {row['verdict']}{peak}", flush=True)

    return say


def _cmd_envelope(args) -> int:
    import json

    from .envelope import find_envelope, trace_boundary
    from .fileio import atomic_write
    from .study import read_scenario_data

    out = Path(args.out)
    sd = read_scenario_data(args.scenario)
    low, high = args.range
    try:
        if args.along:
            if len(args.along) < 2:
                raise ScenarioError(
                    "--along needs a key and at least one value: --along KEY2 V1 V2 ..."
                )
            along = args.along[0]
            try:
                values = [float(v) for v in args.along[1:]]
            except ValueError:
                raise ScenarioError(
                    f"--along {along}: the values must be numbers, got {args.along[1:]}"
                ) from None
            env = trace_boundary(sd, args.vary, low, high, along, values, tol=args.tol,
                                 on_run=_say_run(args.quiet, along))  # fmt: skip
        else:
            env = find_envelope(sd, args.vary, low, high, tol=args.tol,
                                on_run=_say_run(args.quiet))  # fmt: skip
    except KeyboardInterrupt:
        print("\nablasim: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    env = {"scenario": str(args.scenario), **env}
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "envelope.json") as fh:
        fh.write(json.dumps(env, indent=2) + "\n")
    if args.along:
        from .viz import plot_envelope

        plot_envelope(env, save=out / "envelope.png")
        found = sum(p["safe_limit"] is not None for p in env["curve"])
        print(f"ablasim: boundary of {args.vary} at {found} of {len(env['curve'])} values of "
              f"{env['along']} ({env['runs']} runs); wrote {out}/envelope.json and "
              "envelope.png")  # fmt: skip
    else:
        print(f"ablasim: {args.vary}: last safe {env['safe_limit']:g}, first unsafe "
              f"{env['unsafe_from']:g} ({env['runs']} runs); wrote "
              f"{out}/envelope.json")  # fmt: skip
    return EXIT_OK


def _cmd_uncertainty(args) -> int:
    import json

    from .fileio import atomic_write
    from .study import read_scenario_data
    from .uncertainty import run_uncertainty, write_runs_csv

    extra = []
    for key, lo, hi in args.range:
        try:
            extra.append((key, float(lo), float(hi)))
        except ValueError:
            raise ScenarioError(f"--range {key} {lo} {hi}: LOW and HIGH must be numbers") from None
    if args.samples < 1:
        raise ScenarioError(f"--samples {args.samples} must be at least 1")
    sd = read_scenario_data(args.scenario)
    out = Path(args.out)

    def say(row) -> None:
        if not args.quiet:
            what = row["verdict"] if row["status"] == "ok" else f"error: {row['error']}"
            print(f"  run {row['run_id'] + 1}/{args.samples}: {what}", flush=True)

    try:
        summary, rows = run_uncertainty(sd, args.samples, args.seed, extra=extra, on_run=say)
    except KeyboardInterrupt:
        print("\nablasim: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    out.mkdir(parents=True, exist_ok=True)
    write_runs_csv(out / "runs.csv", rows)
    with atomic_write(out / "uncertainty.json") as fh:
        fh.write(json.dumps(summary, indent=2) + "\n")
    for name, n in summary["nerves"].items():
        lo, hi = n["confidence_interval"]
        print(f"ablasim: {name}: limit crossed in {n['exceedances']} of {n['runs']} runs, "
              f"P = {n['probability_exceeds_limit']:.3f} (95 % CI {lo:.3f}-{hi:.3f})")  # fmt: skip
    print(f"ablasim: wrote {out}/uncertainty.json and runs.csv")
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
    except OSError as exc:  # an output folder that cannot be written, a full disk
        print(f"ablasim: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("\nablasim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
