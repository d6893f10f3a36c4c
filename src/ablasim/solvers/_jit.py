"""The one place that sets numba's compile flags for every ablasim kernel.

* ``parallel=True``: kernels use ``prange`` on the outer (x) axis only.
* ``cache=True``: compiled machine code is kept on disk, so a fresh process loads it in
  about a second instead of compiling for several.
* the "workqueue" threading layer (see below);
* "Safe" fastmath: contraction into FMA, reassociation, reciprocal approximations and
  signed-zero freedom, but *not* ``nnan``/``ninf``, so NaN and infinity checks still work.

Set ``NUMBA_DISABLE_JIT=1`` to run every kernel as plain Python (for coverage, debugging).
"""

from __future__ import annotations

import os

import numba

# Threading layer: numba's own "workqueue" unless the user chose one. With OpenMP, the
# worker threads spin after each parallel region and fight OpenBLAS's threads and other
# processes for the two cores: measured on the development machine, a 64^3 step took
# 16 ms with "omp" against 1.1 ms with "workqueue", and BLAS calls after a kernel became
# 100x slower. The step is memory-bound, so a lighter layer loses nothing. (workqueue
# does not allow kernels launched concurrently from several Python threads: run
# parallel sweeps as processes.)
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

FASTMATH = {"contract", "reassoc", "arcp", "nsz"}

# Only explicit ``prange`` loops become parallel. Every kernel writes its loops out; the
# only NumPy calls inside kernels are small reductions of per-row partial results (length
# nx: ``rmax.max()``, ``acc.sum()``), which now run serially, so they no longer depend on
# the thread count. numba's passes that look for array expressions, reductions and
# stencils to parallelise and fuse still walked the whole (large, inlined) IR: switching
# them off cut the fused step's compilation from 12.7 to 10.5 s (alone, in a fresh
# process), with the same step speed and bit-identical step results.
PARALLEL = {
    "prange": True,
    "comprehension": False,
    "reduction": False,
    "inplace_binop": False,
    "setitem": False,
    "numpy": False,
    "stencil": False,
    "fusion": False,
}

__all__ = ["FASTMATH", "PARALLEL", "jit", "jit_inline", "jit_serial", "prange"]

prange = numba.prange


def jit(func):
    """Compile a parallel kernel (``prange`` on the outer axis), cached on disk."""
    return numba.njit(parallel=PARALLEL, cache=True, fastmath=FASTMATH, nogil=True)(func)


def jit_serial(func):
    """Compile a small serial helper, cached on disk (callable from Python too)."""
    return numba.njit(cache=True, fastmath=FASTMATH, nogil=True)(func)


def jit_inline(func):
    """A helper inlined into the calling kernel at numba-IR level.

    Inlining at this level (rather than leaving it to LLVM) lets the caller's inner loop
    vectorise; a called function in the loop body stops it.
    """
    return numba.njit(cache=True, fastmath=FASTMATH, nogil=True, inline="always")(func)
