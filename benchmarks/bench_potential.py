"""Speed of the RF potential solve, and how often a run needs it.

1. One potential solve on an n³ grid (default 128³, 0.5 mm voxels, uniform muscle, one
   monopolar 16 G probe with a 10 mm electrode, grounded outer faces), timed in parts:
   the sparsity pattern (once per geometry), the assembly of the values for a σ field,
   the smoothed-aggregation AMG setup, the first preconditioned-CG solve, and a re-solve
   after a 1 % change of σ near the probe (warm start, cached hierarchy) -- what the time
   loop pays each time σ has drifted past the tolerance.
2. A typical temperature-controlled run: 7 min at 70 °C with a 20 W limit (bone RF
   systems, physics.md §3.1) on a smaller grid; how many solves it needed (re-solve when
   σ changed by > 1 %), and the share of the run's wall time they took.

Run:  python benchmarks/bench_potential.py [--size 128] [--run-size 48] [--json out.json]
      python benchmarks/bench_potential.py --quick      (tiny sizes; the test suite runs it)
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import ablasim as ab
from ablasim.sources.rf import RFSource


def _probe(**kw) -> RFSource:
    base = {
        "tip": (0.0, 0.0, 0.005),
        "direction": (0, 0, 1),
        "active_length": 0.01,
        "diameter": 1.65e-3,
    }
    base.update(kw)
    return RFSource(**base)


def time_solve(n: int, spacing: float = 0.5e-3) -> dict:
    """Timings [s] of the parts of one potential solve on an n³ grid."""
    grid = ab.Grid((n, n, n), spacing, origin=tuple(-0.5 * (n - 1) * spacing for _ in range(3)))
    model = ab.Model.uniform(grid, "muscle")
    src = _probe(control="power", power_W=10.0)
    t0 = time.perf_counter()
    bound = src.bind(model)  # geometry + the matrix pattern
    t_pattern = time.perf_counter() - t0
    system = bound.system
    sigma = model.field("electrical_conductivity_S_m")
    t0 = time.perf_counter()
    A, _ = system.assemble(sigma)
    t_assemble = time.perf_counter() - t0
    import pyamg

    t0 = time.perf_counter()
    ml = pyamg.smoothed_aggregation_solver(A, symmetry="hermitian")
    t_setup = time.perf_counter() - t0
    system._ml = ml  # the solve below then measures only assembly + PCG
    system._iters_at_setup = None
    t0 = time.perf_counter()
    system.solve(sigma)
    t_first = time.perf_counter() - t0
    it_first = system.last_iterations
    X, Y, Z = grid.mesh()
    bump = 1.0 + 0.01 * np.exp(-(X**2 + Y**2 + Z**2) / (5e-3) ** 2)
    t0 = time.perf_counter()
    system.solve(sigma * bump)
    t_re = time.perf_counter() - t0
    return {
        "shape": [n, n, n],
        "unknowns": system.n_free,
        "pattern_s": t_pattern,
        "assemble_s": t_assemble,
        "amg_setup_s": t_setup,
        "amg_levels": len(ml.levels),
        "first_solve_s": t_first,
        "first_solve_iterations": it_first,
        "resolve_s": t_re,
        "resolve_iterations": system.last_iterations,
    }


class _Captured(RFSource):
    """An RFSource that remembers its bound object (to read its counters after a run)."""

    def bind(self, model):
        b = super().bind(model)
        _BOUND.append(b)
        return b


_BOUND: list = []


def count_solves(n: int, duration: float = 420.0, spacing: float = 0.8e-3) -> dict:
    """Solves needed by a temperature-controlled run (cooled bipolar probe, bone)."""
    grid = ab.Grid((n, n, n), spacing, origin=tuple(-0.5 * (n - 1) * spacing for _ in range(3)))
    model = ab.Model.uniform(grid, "cancellous_bone")
    src = _Captured(
        tip=(0.0, 0.0, 0.008),
        direction=(0, 0, 1),
        active_length=7e-3,
        diameter=1.65e-3,
        mode="bipolar",
        gap=4e-3,
        cooled=True,
        control="temperature",
        target_C=70.0,
        max_power_W=20.0,
    )
    _BOUND.clear()
    t0 = time.perf_counter()
    res = ab.simulate(model, [ab.Phase("rf", duration, [src])], sample_interval=10.0)
    wall = time.perf_counter() - t0
    b = _BOUND[-1]
    return {
        "shape": [n, n, n],
        "duration_s": duration,
        "steps": res.timing["steps"],
        "solves": b.system.solves,
        "amg_setups": b.system.setups,
        "steps_per_solve": res.timing["steps"] / max(b.system.solves, 1),
        "wall_s": wall,
        "final_power_W": float(res.power[-1]),
        "impedance_ohm": b.telemetry()["impedance_ohm"],
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--run-size", type=int, default=48)
    ap.add_argument("--duration", type=float, default=420.0)
    ap.add_argument("--quick", action="store_true", help="tiny sizes, to test the harness")
    ap.add_argument("--json", help="write the numbers to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.size, args.run_size, args.duration = 32, 32, 20.0
    time_solve(32)  # compile the kernels first
    out = {"solve": time_solve(args.size), "run": count_solves(args.run_size, args.duration)}
    s, r = out["solve"], out["run"]
    print(f"potential solve on {s['shape']} ({s['unknowns']:,} unknowns):")
    print(f"  pattern (once per geometry)  {s['pattern_s']:8.2f} s")
    print(f"  assembly of values           {s['assemble_s']:8.2f} s")
    print(f"  AMG setup ({s['amg_levels']} levels)         {s['amg_setup_s']:8.2f} s")
    print(
        f"  first PCG solve              {s['first_solve_s']:8.2f} s "
        f"({s['first_solve_iterations']} it.)"
    )
    print(f"  re-solve after 1 % change    {s['resolve_s']:8.2f} s ({s['resolve_iterations']} it.)")
    print(
        f"{r['duration_s']:g} s at 70 °C on {r['shape']}: {r['solves']} solves in {r['steps']} "
        f"steps (one per {r['steps_per_solve']:.1f}), {r['amg_setups']} AMG setup(s), "
        f"wall {r['wall_s']:.1f} s, final power {r['final_power_W']:.2f} W, "
        f"impedance {r['impedance_ohm']:.0f} Ω"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
    return out


if __name__ == "__main__":
    main()
