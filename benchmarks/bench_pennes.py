"""Speed of one Pennes step: numba kernel vs NumPy reference vs the memory-bandwidth bound.

Everything is measured in the same run (the host is shared and memory-bound kernels vary
by 15-35 % between runs, so only ratios within one run are meaningful):

* the machine's memory bandwidth, a STREAM triad ``a = b + s*c`` in numba (24 B/element);
* the bound on voxel updates per second (MVUPS) of the kernel: bandwidth / bytes the
  step must move per voxel (read T, k, 1/rho c, W, Q, write T' = 48 B in float64);
* the fused numba kernel and the plain NumPy reference, median time per step;
* the damage pass that follows every step (CEM43, Arrhenius, extremes), and the two
  together: what one time step of a simulation costs. The benchmark field lies between
  37 and 47 °C everywhere, so 80 % of the voxels are above the 39 °C dose floor and
  take two exponentials each: the worst case (in a treatment a small fraction is);
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

from ablasim.damage import accumulate_damage
from ablasim.solvers import Boundary, fill_ghosts, pennes_step, pennes_step_numpy

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
    phase = np.array([[3.7e6, 2.0e6, 2.5e8, -8.0, -1.0]])
    return T, k, inv_rhoc, W, Q, labels, phase


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
        f"{'numpy ms':>9} {'MVUPS':>7} {'speed-up':>8} {'damage ms':>9} {'step+dmg MVUPS':>14}"
    )
    rows = []
    kinds, values, hcoefs = Boundary.body().as_arrays()
    for n in args.sizes:
        T, k, inv_rhoc, W, Q, labels, phase = make_problem(n)
        out = T.copy()
        fill_ghosts(T, k, kinds, values, hcoefs, 5e-4)
        a = (T, k, inv_rhoc, W, Q, 37.0, 0.05, 5e-4, out, labels, phase, False)
        t_nb = time_step(pennes_step, a, args.repeats)
        t_np = time_step(pennes_step_numpy, a, args.numpy_repeats)
        shape = (n, n, n)
        dmg = (
            out, 0.05, labels, np.array([np.log(7.39e39)]), np.array([2.577e5 / 8.314]),
            np.full(shape, 40.0), np.full(shape, 37.0), np.zeros(shape), np.zeros(shape),
            W.copy(), 4.6, 60.0, 39.0,
        )  # fmt: skip
        t_dmg = time_step(accumulate_damage, dmg, args.repeats)
        nv = n**3
        row = {
            "n": n,
            "numba_ms": t_nb * 1e3,
            "numba_mvups": nv / t_nb / 1e6,
            "fraction_of_bound": nv / t_nb / 1e6 / bound,
            "numpy_ms": t_np * 1e3,
            "numpy_mvups": nv / t_np / 1e6,
            "speedup": t_np / t_nb,
            "damage_ms": t_dmg * 1e3,
            "step_with_damage_mvups": nv / (t_nb + t_dmg) / 1e6,
        }
        rows.append(row)
        print(
            f"{n:>5}³ {row['numba_ms']:9.2f} {row['numba_mvups']:7.0f} "
            f"{row['fraction_of_bound']:8.0%} {row['numpy_ms']:9.1f} "
            f"{row['numpy_mvups']:7.1f} {row['speedup']:7.0f}× {row['damage_ms']:9.2f} "
            f"{row['step_with_damage_mvups']:14.0f}"
        )
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
        "compile": comp,
    }
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(res, fh, indent=2)
    return res


if __name__ == "__main__":
    main()
