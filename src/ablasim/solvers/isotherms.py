"""The regions below a few temperature levels (an iceball's isotherms), in one pass."""

from __future__ import annotations

import numpy as np

from ._jit import jit, prange

__all__ = ["isotherm_stats"]


@jit
def _stats(T, levels, count, lo, hi):  # pragma: no cover - compiled
    nx, ny, nz = T.shape[0] - 2, T.shape[1] - 2, T.shape[2] - 2
    nl = levels.size
    for i in prange(nx):
        for j in range(ny):
            for m in range(nz):
                t = T[i + 1, j + 1, m + 1]
                for n in range(nl):
                    if t <= levels[n]:
                        count[i, n] += 1
                        lo[i, n, 0] = min(lo[i, n, 0], i)
                        hi[i, n, 0] = max(hi[i, n, 0], i)
                        lo[i, n, 1] = min(lo[i, n, 1], j)
                        hi[i, n, 1] = max(hi[i, n, 1], j)
                        lo[i, n, 2] = min(lo[i, n, 2], m)
                        hi[i, n, 2] = max(hi[i, n, 2], m)


def isotherm_stats(T: np.ndarray, levels) -> tuple[np.ndarray, np.ndarray]:
    """For each level [°C]: the number of voxels at or below it, and the extent of
    their bounding box in voxels along x, y, z (0 when there is none).

    ``T`` is the padded temperature. Returns ``(counts (n,), extents (n, 3))``.
    """
    lv = np.asarray(levels, dtype=float)
    nx = T.shape[0] - 2
    count = np.zeros((nx, lv.size), dtype=np.int64)
    big = np.iinfo(np.int64).max
    lo = np.full((nx, lv.size, 3), big, dtype=np.int64)
    hi = np.full((nx, lv.size, 3), -1, dtype=np.int64)
    if lv.size:
        _stats(T, lv, count, lo, hi)
    n = count.sum(axis=0)
    ext = np.where(n[:, None] > 0, hi.max(axis=0) - lo.min(axis=0) + 1, 0)
    return n, ext
