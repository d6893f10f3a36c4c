"""Speed of one Pennes step: numba kernel vs NumPy reference vs the memory-bandwidth bound.

Everything is measured in the same run (the host is shared and memory-bound kernels vary
by 15-35 % between runs, so only ratios within one run are meaningful):

* the machine's memory bandwidth, a STREAM triad ``a = b + s*c`` in numba (24 B/element);
* the bound on voxel updates per second (MVUPS) of the kernel: bandwidth / bytes the
  step must move per voxel (read T, k, 1/rho c, W, Q, write T' = 48 B in float64);
* the numba step kernel (``pennes_step``) and the plain NumPy reference, median time
  per step;
* the damage accumulation (extremes, CEM43, Arrhenius, perfusion shut-down): as a
  separate pass (``accumulate_damage``), the step and that pass in sequence, and the
  step with damage in one pass that a simulation runs (``pennes_damage_step``: each
  z-row's damage right after its update, while it is in cache), on two fields: "hot",
  37-47 °C everywhere, 80 % of the voxels above the 39 °C dose floor with two
  exponentials each (the worst case), and "treatment", 37-37.2 °C with a hot ball of
  1.4 % of the voxels (half-way through the vertebra-mw example, 28 % of the voxels
  were above the floor: in between); and the same through ``Stepper.step``, the object
  a simulation calls (the kernel plus its Python overhead; its field evolves from call
  to call). The five are timed in turn, repeat after repeat
  (the host's noise falls on all alike), and their medians compared. Caveat: the
  repeats see the same temperatures, so after the first call the fused step's row
  bounds (``row_bounds``) let it skip reading t_max and t_min, while the separate pass,
  a stateless reference, recomputes them on every call (16 B/voxel more): the "fused
  gain" overstates what a real run, whose rows keep setting new extremes, gains;
* the time to compile the kernel in a fresh process, cold and with the on-disk cache.

Run:  python benchmarks/bench_pennes.py [--sizes 64 128 192] [--json out.json] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numba
import numpy as np

from ablasim.solvers import (
    Boundary,
    Materials,
    Stepper,
    accumulate_damage,
    fill_ghosts,
    pennes_damage_step,
    pennes_step,
    pennes_step_numpy,
    row_bounds,
)

BYTES_PER_VOXEL = 6 * 8  # T, k, 1/rho c, W, Q read; T' written (float64)


# not cached: this file is run as a script and imported by the harness test, and numba's
# cache keys on the module it was first compiled in
@numba.njit(parallel=True)
def _triad(a, b, c, s):
    for i in numba.prange(a.size):
        a[i] = b[i] + s * c[i]


def stream_triad_GBs(n: int = 40_000_000, repeats: int = 10) -> float:
    """Best-of STREAM triad bandwidth [GB/s], counting 24 B per element."""
    a = np.zeros(n)
    b = np.ones(n)
    c = np.full(n, 2.0)
    _triad(a, b, c, 3.0)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        _triad(a, b, c, 3.0)
        best = min(best, time.perf_counter() - t0)
    return 24 * n / best / 1e9


def make_problem(n: int, seed: int = 0):
    """A random heterogeneous grid: bone-like and soft-tissue-like voxels mixed."""
    rng = np.random.default_rng(seed)
    shape = (n, n, n)
    pshape = (n + 2,) * 3
    T = 37.0 + 10.0 * rng.random(pshape)
    k = rng.choice([0.32, 0.31, 0.49, 0.51, 0.21], size=pshape)
    inv_rhoc = 1.0 / rng.choice([2.5e6, 2.7e6, 3.7e6, 3.9e6, 2.1e6], size=shape)
    W = rng.choice([1.2e3, 2.2e3, 2.5e3, 1.1e4, 0.0], size=shape)
    Q = np.where(rng.random(shape) < 0.01, 1e6, 0.0)
    labels = np.zeros(shape, dtype=np.uint8)
    phase = np.array([[3.7e6, 2.0e6, 2.5e8, -8.0, -1.0, 1.8e9, 95.0, 100.0, 0.5, 2.0, 0.0]])
    return T, k, inv_rhoc, W, Q, labels, phase


def treatment_field(T: np.ndarray, seed: int = 1) -> np.ndarray:
    """A field like a treatment's: 37-37.2 °C, and 45-90 °C in a ball of radius n/6.6
    (1.4 % of the voxels) off the centre."""
    rng = np.random.default_rng(seed)
    n = T.shape[0] - 2
    x = (np.arange(n + 2) - 0.4 * n) / n
    r2 = x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2
    Tt = 37.0 + 0.2 * rng.random(T.shape)
    ball = r2 < 0.15**2
    Tt[ball] = 45.0 + 45.0 * rng.random(int(ball.sum()))
    return Tt


def accumulators(T: np.ndarray) -> tuple:
    """t_max, t_min, CEM43, Omega for a padded field: extremes 3 K either side of it."""
    t = T[1:-1, 1:-1, 1:-1]
    return t + 3.0, t - 3.0, np.zeros(t.shape), np.zeros(t.shape)


def _stepper(T, k, inv_rhoc, W, labels, phase, tables, acc) -> Stepper:
    """The object a simulation steps with, on copies of the problem (body faces)."""

    class Damage:
        t_max, t_min, cem43, omega = acc

    materials = Materials(
        k=k, inv_rhoc=inv_rhoc, labels=labels, phase=phase, ln_a=tables[0], ea_over_r=tables[1]
    )
    return Stepper(
        T.copy(),
        W.copy(),
        Damage(),
        materials=materials,
        boundary=Boundary.body(),
        spacing=5e-4,
        blood_C=37.0,
        shutdown=(4.6, 60.0, -np.inf),
        floor=39.0,
    )


def time_interleaved(calls: dict, repeats: int) -> dict:
    """Median wall time [s] of each ``name: (fn, args)`` (fn may be a sequence of
    functions, called in turn with their args), timed in turn each repeat (the host's
    noise then falls on all alike), after one warm-up call each."""
    seqs = {
        name: (tuple(zip(fn, args, strict=True)) if isinstance(fn, tuple) else ((fn, args),))
        for name, (fn, args) in calls.items()
    }
    ts = {name: [] for name in seqs}
    for seq in seqs.values():
        for f, a in seq:
            f(*a)
    for _ in range(repeats):
        for name, seq in seqs.items():
            t0 = time.perf_counter()
            for f, a in seq:
                f(*a)
            ts[name].append(time.perf_counter() - t0)
    return {name: float(np.median(v)) for name, v in ts.items()}


def time_step(fn, args, repeats: int) -> float:
    """Median wall time of ``fn(*args)`` [s] over ``repeats`` calls, after one warm-up."""
    fn(*args)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def compile_times() -> dict:
    """Seconds to import and run the kernel once in a fresh process: cold, then cached."""
    code = (
        "import time; t=time.perf_counter();"
        "import numpy as np; from ablasim.solvers import pennes_step, fill_ghosts, Boundary;"
        "T=np.full((6,6,6),37.0); k=np.ones((6,6,6)); z=np.zeros((4,4,4));"
        "l=np.zeros((4,4,4),np.uint8); p=np.array([[1e6,1e6,0,-8,-1.]]);"
        "kd,v,hc=Boundary.body().as_arrays(); fill_ghosts(T,k,kd,v,hc,1e-3);"
        "pennes_step(T,k,z+1e-6,z,z,37.0,0.1,1e-3,T.copy(),l,p,False);"
        "print(time.perf_counter()-t)"
    )
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold_s", "cached_s"):
            r = subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            )
            out[label] = float(r.stdout.strip().splitlines()[-1])
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 192])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--numpy-repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--quick", action="store_true", help="tiny sizes (to test the harness)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.repeats, args.numpy_repeats = [16], 2, 1

    bw = stream_triad_GBs(2_000_000 if args.quick else 40_000_000)
    bound = bw * 1e9 / BYTES_PER_VOXEL / 1e6
    print(
        f"threads: {numba.get_num_threads()}   STREAM triad: {bw:.1f} GB/s   "
        f"bound for {BYTES_PER_VOXEL} B/voxel: {bound:.0f} MVUPS"
    )
    print(
        f"{'grid':>6} {'numba ms':>9} {'MVUPS':>7} {'of bound':>8} "
        f"{'numpy ms':>9} {'MVUPS':>7} {'speed-up':>8}"
    )
    rows = []
    damage_rows = []
    kinds, values, hcoefs = Boundary.body().as_arrays()
    for n in args.sizes:
        T, k, inv_rhoc, W, Q, labels, phase = make_problem(n)
        out = T.copy()
        fill_ghosts(T, k, kinds, values, hcoefs, 5e-4)
        a = (T, k, inv_rhoc, W, Q, 37.0, 0.05, 5e-4, out, labels, phase, False)
        t_nb = time_step(pennes_step, a, args.repeats)
        t_np = time_step(pennes_step_numpy, a, args.numpy_repeats)
        nv = n**3
        row = {
            "n": n,
            "numba_ms": t_nb * 1e3,
            "numba_mvups": nv / t_nb / 1e6,
            "fraction_of_bound": nv / t_nb / 1e6 / bound,
            "numpy_ms": t_np * 1e3,
            "numpy_mvups": nv / t_np / 1e6,
            "speedup": t_np / t_nb,
        }
        print(
            f"{n:>5}³ {row['numba_ms']:9.2f} {row['numba_mvups']:7.0f} "
            f"{row['fraction_of_bound']:8.0%} {row['numpy_ms']:9.1f} "
            f"{row['numpy_mvups']:7.1f} {row['speedup']:7.0f}×"
        )
        tables = (np.array([np.log(7.39e39)]), np.array([2.577e5 / 8.314]))
        for field, Tf in (("hot", T), ("treatment", treatment_field(T))):
            fill_ghosts(Tf, k, kinds, values, hcoefs, 5e-4)
            a = (Tf, k, inv_rhoc, W, Q, 37.0, 0.05, 5e-4, out, labels, phase, False)
            pennes_step(*a)  # the new field the damage pass reads
            acc_sep, acc_fused = accumulators(out), accumulators(out)
            W_sep, W_fused = W.copy(), W.copy()
            a_sep = (*a[:3], W_sep, *a[4:])
            dmg = (out, 0.05, labels, *tables, *acc_sep, W_sep, 4.6, 60.0, -np.inf, 39.0)
            bounds = row_bounds(acc_fused[0], acc_fused[1])
            fused = (
                *a[:3], W_fused, *a[4:], *tables, *acc_fused, 4.6, 60.0, -np.inf, 39.0, 1.0,
                a[4], 0.0, *bounds,
            )  # fmt: skip
            stepper = _stepper(Tf, k, inv_rhoc, W, labels, phase, tables, accumulators(out))
            t = time_interleaved(
                {
                    "step": (pennes_step, a),
                    "damage": (accumulate_damage, dmg),
                    "step_then_damage": ((pennes_step, accumulate_damage), (a_sep, dmg)),
                    "fused": (pennes_damage_step, fused),
                    "stepper": (stepper.step, (0.05, Q)),
                },
                args.repeats,
            )
            drow = {"n": n, "field": field}
            drow.update({f"{key}_ms": v * 1e3 for key, v in t.items()})
            drow.update({f"{key}_mvups": nv / v / 1e6 for key, v in t.items()})
            drow["fused_speedup"] = t["step_then_damage"] / t["fused"]
            damage_rows.append(drow)
            if field == "hot":  # the keys of the table before the fused kernel
                row["damage_ms"] = drow["damage_ms"]
                row["step_with_damage_mvups"] = drow["step_then_damage_mvups"]
                row["fused_mvups"] = drow["fused_mvups"]
        rows.append(row)
    print(
        f"\nstep with damage, M voxel updates/s (ms), medians of {args.repeats} interleaved "
        "repeats:"
    )
    print(
        f"{'grid':>6} {'field':>9} {'plain step':>14} {'damage pass':>14} "
        f"{'step+damage':>14} {'fused':>14} {'Stepper.step':>14} {'fused gain':>10}"
    )
    for d in damage_rows:
        cells = " ".join(
            f"{d[f'{key}_mvups']:6.0f} ({d[f'{key}_ms']:5.1f})"
            for key in ("step", "damage", "step_then_damage", "fused", "stepper")
        )
        print(f"{d['n']:>5}³ {d['field']:>9} {cells} {d['fused_speedup']:9.2f}×")
    comp = compile_times()
    print(
        f"compile (fresh process, import + first call): cold {comp['cold_s']:.1f} s, "
        f"with on-disk cache {comp['cached_s']:.1f} s"
    )
    res = {
        "stream_triad_GBs": bw,
        "bound_mvups": bound,
        "bytes_per_voxel": BYTES_PER_VOXEL,
        "threads": numba.get_num_threads(),
        "rows": rows,
        "damage_rows": damage_rows,
        "compile": comp,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
    return res


if __name__ == "__main__":
    main()
