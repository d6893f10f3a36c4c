"""Cryo time stepping: RKL2 super steps against explicit steps, speed and accuracy.

Frozen tissue conducts about four times better and stores about half as much heat as
unfrozen tissue, so the explicit step's stability limit falls about eightfold once ice
forms (0.039 s at 0.5 mm). ``ablasim.simulate`` then takes RKL2 super steps
(``ablasim.solvers.superstep``), ramped up from the explicit step at each phase start.
This script measures, on one case:

1. the cost of one pass over the grid of each kernel involved (explicit step with
   latent heat and with damage, the plain step, one RKL2 stage, the frozen-conductivity
   refresh), as voxel updates per second beside the machine's memory bandwidth;
2. a single 17 G probe (20 mm active, -150 °C) in perfused muscle: freeze 5 min, passive
   thaw 2 min, freeze 3 min, run with explicit steps (the reference) and with super steps
   of several lengths: wall time, grid passes, and the differences that matter to a
   planner (the lethal zone voxel by voxel, the isotherms' extents, the lowest
   temperature of a point 11 mm from the probe, the largest difference anywhere);
3. with ``--example``, ``vertebra-cryo`` as shipped (25 min at 0.5 mm) and where its
   time goes.

Run: ``python benchmarks/bench_cryo.py`` (``--quick``: 2 mm, seconds).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np

import ablasim as ab
from ablasim.damage import DAMAGE_FLOOR_C, DamageFields
from ablasim.solvers import Stepper, frozen_conductivity, warm_up
from ablasim.sources import CryoSource

HERE = Path(__file__).resolve().parent


def _bench_pennes():
    spec = importlib.util.spec_from_file_location("bench_pennes", HERE / "bench_pennes.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _case(h: float, extent: float):
    grid = ab.Grid.from_extent(extent, h)
    model = ab.Model.uniform(grid, "muscle")
    geo = {"tip": (0.0, 0.0, 0.01), "direction": (0.0, 0.0, 1.0), "active_length": 0.02}
    on = CryoSource(name="probe", probe_C=-150.0, **geo)
    off = CryoSource(name="probe", mode="off", **geo)
    phases = [
        ab.Phase("freeze-1", 300.0, [on]),
        ab.Phase("thaw", 120.0, [off]),
        ab.Phase("freeze-2", 180.0, [on]),
    ]
    return model, phases


def kernel_passes(model, repeats: int) -> dict:
    """Seconds per pass of each kernel on ``model``'s grid, half of it frozen."""
    T = np.full(tuple(n + 2 for n in model.grid.shape), 37.0)
    T[1:-1, 1:-1, 1:-1][: model.grid.shape[0] // 2] = -30.0
    f = model.thermal_fields
    from ablasim.simulation import _materials  # the loop's own property tables

    m = _materials(model)
    stepper = Stepper(
        T, f.W.copy(), DamageFields.start(T[1:-1, 1:-1, 1:-1]), materials=m,
        boundary=model.boundary, spacing=model.grid.spacing, blood_C=37.0,
        shutdown=(4.6, 60.0, -20.0), floor=DAMAGE_FLOOR_C,
    )  # fmt: skip
    Q = f.Q_met.copy()
    rows = np.ones(model.grid.shape[:2], dtype=bool)
    unknown = np.full(model.grid.shape[:2], np.nan)  # each row's lowest: scan them

    def best(fn) -> float:
        fn()
        out = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
        return min(out)

    stages = 8
    return {
        "explicit_latent_s": best(lambda: stepper.step(0.01, Q, phase_change=True)),
        "explicit_plain_s": best(lambda: stepper.step(0.01, Q, phase_change=False)),
        "rkl2_stage_s": best(lambda: stepper.super_step(1.0, stages, Q)) / stages,
        "k_refresh_s": best(
            lambda: frozen_conductivity(
                stepper.T, m.labels, m.phase, stepper.conductivity, rows, unknown
            )
        ),
    }


def compare(model, phases, taus) -> list[dict]:
    """The reference (explicit) and super-step runs, side by side."""
    tc = {"point": (0.011, 0.0, 0.0)}
    rows = []
    t = time.perf_counter()
    ref = ab.simulate(model, phases, stepping="explicit", thermocouples=tc)
    rows.append({"stepping": "explicit", "wall_s": time.perf_counter() - t,
                 "passes": ref.timing["steps"]})  # fmt: skip
    lethal = ref.damage.t_min <= -20.0
    for tau in taus:
        t = time.perf_counter()
        r = ab.simulate(model, phases, stepping="super", super_step=tau, thermocouples=tc)
        wall = time.perf_counter() - t
        ext = max(
            abs(r.telemetry[key].max() - ref.telemetry[key].max())
            for v in (0, -20, -40)
            for a in "xyz"
            if (key := f"iceball_{v}C_{a}_mm")
        )
        rows.append({
            "stepping": f"super {tau:g} s",
            "wall_s": wall,
            "passes": None,
            "lethal_voxels_differ": int(((r.damage.t_min <= -20.0) != lethal).sum()),
            "lethal_voxels": int(lethal.sum()),
            "extent_diff_mm": float(ext),
            "point_min_diff_K": float(r.sensors["point"].min() - ref.sensors["point"].min()),
            "max_abs_dT_K": float(np.abs(r.temperature - ref.temperature).max()),
        })  # fmt: skip
    return rows


def example() -> dict:
    """vertebra-cryo as shipped: wall time and where it went."""
    import tempfile

    from ablasim.cli import example_path
    from ablasim.runner import run_scenario

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        run_scenario(example_path("vertebra-cryo"), d, progress=False)
        wall = time.perf_counter() - t
        rep = json.loads((Path(d) / "report.json").read_text())
    keep = ("wall_s", "setup_s", "pennes_s", "damage_s", "other_s", "steps", "stages", "threads")
    return {"command_wall_s": wall, **{k: rep["timing"][k] for k in keep}}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 mm voxels, seconds")
    ap.add_argument("--example", action="store_true", help="also time vertebra-cryo")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    warm_up()
    h, extent = (2e-3, 0.03) if args.quick else (5e-4, 0.04)
    bw = _bench_pennes().stream_triad_GBs(2_000_000 if args.quick else 40_000_000)
    model, phases = _case(h, extent)
    passes = kernel_passes(model, 2 if args.quick else 5)
    n = model.grid.size
    print(f"grid {model.grid.shape} ({n / 1e6:.2f} M voxels) at {h * 1e3:g} mm; "
          f"memory bandwidth (STREAM triad) {bw:.1f} GB/s")  # fmt: skip
    for k, s in passes.items():
        print(f"  {k[:-2]:<20} {s * 1e3:8.2f} ms/pass  {n / s / 1e6:8.0f} M voxel updates/s")
    taus = (5.0, 10.0) if args.quick else (2.0, 5.0, 10.0, 20.0)
    rows = compare(model, phases, taus)
    print("freeze 5 min - thaw 2 min - freeze 3 min, one probe in perfused muscle:")
    for r in rows:
        extra = ""
        if "lethal_voxels" in r:
            extra = (
                f"  lethal zone: {r['lethal_voxels_differ']} of {r['lethal_voxels']} voxels "
                f"differ; extents {r['extent_diff_mm']:.2f} mm; point at 11 mm "
                f"{r['point_min_diff_K']:+.3f} K; max |dT| {r['max_abs_dT_K']:.2f} K"
            )
        print(f"  {r['stepping']:<12} {r['wall_s']:7.1f} s{extra}")
    out = {"grid_shape": list(model.grid.shape), "spacing_mm": h * 1e3,
           "stream_triad_GBs": bw, "passes": passes, "runs": rows}  # fmt: skip
    if args.example:
        out["vertebra_cryo"] = example()
        print("vertebra-cryo:", out["vertebra_cryo"])
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
