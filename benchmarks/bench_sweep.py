"""Runs per minute of a coarse sweep, with 1 and 2 worker processes, and where a run's
time goes.

The sweep: the ``vertebra-demo`` example (an L1 vertebra, 6 min of heating and 4 min of
cooling) on a coarse grid (``--spacing-mm``, default 1 mm: 48 x 64 x 48 voxels, against
0.5 mm in the example), pictures and ``.vti`` off, ``--runs`` Latin-hypercube samples
(default 100) of the needle's power (1-4 W) and the muscle's perfusion. Each worker count
runs the whole sweep into a fresh folder through :func:`ablasim.sweep.run_sweep`, exactly
as ``ablasim sweep`` does (worker start-up included), so runs per minute = runs / the
sweep's wall time.

Where the time goes, from each run's ``report.json`` ``timing`` (summed over the runs,
per run on average) and the sweep's wall time:

* start-up: worker processes starting and importing ablasim, dispatch, the table
  rewritten after each run: (workers x wall) - the runs' own time;
* kernels: the first run of each worker loads the compiled kernels from numba's on-disk
  cache (nothing is compiled: run ``ablasim compile`` first); counted as the first runs'
  set-up above the median set-up;
* anatomy: building the model (the phantom, built once per worker and then cached, the
  property fields, the sources bound) = ``build_s``;
* steps: the time loop (``wall_s`` less its set-up);
* output: analysis and report files (``analysis_s`` + ``output_s``).

Run:  python benchmarks/bench_sweep.py [--runs 100] [--workers 1 2] [--spacing-mm 1]
      [--json out.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

SWEEP = """\
base = "example:vertebra-demo"
[sweep]
method = "latin_hypercube"
samples = {runs}
seed = 1
[sweep.vary]
"phase[0].source[0].power_W" = {{ low = 1, high = 4 }}
"tissues.muscle.perfusion_per_s" = {{ low = 0.0005, high = 0.003 }}
"""


def coarse_sweep(folder: Path, runs: int, spacing_mm: float, quick: bool):
    """The sweep file and its cases, on the coarse grid, pictures off."""
    from ablasim.keypath import with_keys
    from ablasim.sweep import Case, load_sweep, run_id

    path = folder / "coarse.toml"
    path.write_text(SWEEP.format(runs=runs))
    sw = load_sweep(path)
    fixed = {"grid.spacing_mm": spacing_mm, "output.pictures": False, "output.vti": False}
    if quick:  # a few seconds: a small box, one short phase
        fixed |= {"grid.extent_mm": [40, 56, 40], "phase[0].duration_min": 0.5,
                  "phase[1].duration_min": 0.5}  # fmt: skip
    cases = tuple(
        Case(run_id(c.values), c.values, with_keys(c.scenario_data, fixed)) for c in sw.cases
    )
    return type(sw)(sw.path, sw.base, sw.base_dir, sw.method, sw.keys, cases)


def measure(sweep, workers: int, folder: Path) -> dict:
    from ablasim.sweep import run_sweep

    out = folder / f"w{workers}"
    t0 = time.perf_counter()
    summary = run_sweep(sweep, out, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    timing = [
        json.loads((out / "runs" / c.run_id / "report.json").read_text())["timing"]
        for c in sweep.cases
    ]
    n = len(timing)
    setup = [t["setup_s"] for t in timing]
    med_setup = statistics.median(setup)
    kernels = sum(max(0.0, s - med_setup) for s in sorted(setup)[-workers:])
    anatomy = sum(t["build_s"] for t in timing)
    steps = sum(t["wall_s"] - t["setup_s"] for t in timing)
    output = sum(t["analysis_s"] + t["output_s"] for t in timing)
    own = sum(t["total_s"] for t in timing)
    startup = max(0.0, workers * wall - own)
    per_run = {
        "start-up": startup / n,
        "kernels (cache load)": kernels / n,
        "set-up (other)": (sum(setup) - kernels) / n,
        "anatomy + model": anatomy / n,
        "steps": steps / n,
        "output": output / n,
    }
    return {
        "workers": workers,
        "runs": n,
        "errors": summary.errors,
        "wall_s": round(wall, 2),
        "runs_per_minute": round(60 * n / wall, 1),
        "median_run_s": round(statistics.median(t["total_s"] for t in timing), 4),
        "steps_per_run": timing[0]["steps"],
        "per_run_s": {k: round(v, 4) for k, v in per_run.items()},
        "once_per_worker_s": {
            "start-up": round(startup / workers, 3),
            "kernels (cache load)": round(kernels / workers, 3),
        },
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--spacing-mm", type=float, default=1.0)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--quick", action="store_true", help="4 tiny runs (the harness test)")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.spacing_mm = 4, 2.0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sweep = coarse_sweep(Path(tmp), args.runs, args.spacing_mm, args.quick)
        for w in args.workers:
            r = measure(sweep, w, Path(tmp))
            rows.append(r)
            parts = ", ".join(f"{k} {v:.3f}" for k, v in r["per_run_s"].items())
            print(
                f"{r['runs']} runs at {args.spacing_mm:g} mm, {w} worker(s): {r['wall_s']:.1f} s, "
                f"{r['runs_per_minute']:.0f} runs/min (median run {r['median_run_s']:.3f} s, "
                f"{r['steps_per_run']} steps)\n  per run [s]: {parts}\n  once per worker [s]: "
                + ", ".join(f"{k} {v:.3f}" for k, v in r["once_per_worker_s"].items())
            )
    res = {"spacing_mm": args.spacing_mm, "rows": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
