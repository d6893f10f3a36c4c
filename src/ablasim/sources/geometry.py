"""Shapes as partial-volume fractions on the grid.

Staircase (0/1) voxelisation makes a shape's volume jump by O(h) as the grid changes,
which spoils second-order convergence. Here each voxel gets the fraction of its volume
inside the shape, estimated by midpoint quadrature on ``n^3`` sub-voxels; only voxels
within one voxel of the shape's bounding box are sampled.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ScenarioError
from ..grid import Grid

__all__ = ["box_fraction", "cylinder_fraction", "shape_fraction", "sphere_fraction"]

Inside = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def shape_fraction(
    grid: Grid, inside: Inside, lo, hi, *, subsamples: int = 6, name: str = "shape"
) -> np.ndarray:
    """Fraction of each voxel inside a shape given by a vectorised predicate.

    Parameters
    ----------
    grid : Grid
    inside : callable
        ``inside(x, y, z) -> bool array`` on world coordinates [m] (broadcasting).
    lo, hi : array-like of 3 float
        Bounding box of the shape [m].
    subsamples : int
        Sub-voxels per axis for the quadrature.
    name : str
        Used in the error when the shape misses the grid.
    """
    frac = np.zeros(grid.shape, dtype=np.float64)
    o = np.asarray(grid.origin)
    h = grid.spacing
    i0 = np.maximum(np.floor((np.asarray(lo) - o) / h - 0.5).astype(int), 0)
    i1 = np.minimum(np.ceil((np.asarray(hi) - o) / h + 0.5).astype(int) + 1, grid.shape)
    if np.any(i1 <= i0):
        raise ScenarioError(f"{name} lies entirely outside the grid; move it inside")
    s = subsamples
    off = (np.arange(s) + 0.5) / s - 0.5
    axes = [o[a] + h * np.arange(i0[a], i1[a]) for a in range(3)]
    acc = np.zeros(tuple(i1 - i0), dtype=np.float64)
    for dx in off:
        x = (axes[0] + dx * h)[:, None, None]
        for dy in off:
            y = (axes[1] + dy * h)[None, :, None]
            for dz in off:
                z = (axes[2] + dz * h)[None, None, :]
                acc += inside(x, y, z)
    frac[i0[0] : i1[0], i0[1] : i1[1], i0[2] : i1[2]] = acc / s**3
    return frac


def sphere_fraction(grid: Grid, center, radius: float, **kw) -> np.ndarray:
    """Partial-volume fraction of a sphere (centre [m], radius [m])."""
    c = np.asarray(center, dtype=float)
    r2 = radius * radius

    def inside(x, y, z):
        return (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2 <= r2

    return shape_fraction(grid, inside, c - radius, c + radius, **kw)


def box_fraction(grid: Grid, lo, hi, **kw) -> np.ndarray:
    """Partial-volume fraction of an axis-aligned box between corners ``lo`` and ``hi`` [m]."""
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)

    def inside(x, y, z):
        return (
            (x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1]) & (z >= lo[2]) & (z <= hi[2])
        )

    return shape_fraction(grid, inside, lo, hi, **kw)


def cylinder_fraction(grid: Grid, tip, direction, length: float, radius: float, **kw):
    """Partial-volume fraction of a cylinder ending at ``tip`` [m].

    The axis runs from ``tip - length * u`` to ``tip``, with ``u`` the unit ``direction``
    (the way the needle points, from the skin towards the tip).
    """
    tip = np.asarray(tip, dtype=float)
    u = np.asarray(direction, dtype=float)
    u = u / np.linalg.norm(u)
    base = tip - length * u

    def inside(x, y, z):
        dx, dy, dz = x - base[0], y - base[1], z - base[2]
        s = dx * u[0] + dy * u[1] + dz * u[2]
        r2 = dx * dx + dy * dy + dz * dz - s * s
        return (s >= 0) & (s <= length) & (r2 <= radius * radius)

    ends = np.stack([tip, base])
    lo = ends.min(axis=0) - radius
    hi = ends.max(axis=0) + radius
    return shape_fraction(grid, inside, lo, hi, **kw)
