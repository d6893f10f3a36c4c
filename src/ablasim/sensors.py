"""Virtual thermocouples: temperatures at world points by trilinear interpolation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .grid import Grid

__all__ = ["SensorSet", "trilinear_weights"]


def trilinear_weights(grid: Grid, point, *, name: str = "point"):
    """Interior voxel indices (8, 3) and weights (8,) interpolating at ``point`` [m].

    Points between the outermost voxel centre and the outer face use the nearest layer
    (constant extrapolation over that half voxel).
    """
    grid.world_to_index(point, name=name)  # raises when outside the grid
    u = (np.asarray(point, dtype=float) - np.asarray(grid.origin)) / grid.spacing
    u = np.clip(u, 0.0, np.asarray(grid.shape) - 1.0)
    i0 = np.minimum(np.floor(u).astype(int), np.maximum(np.asarray(grid.shape) - 2, 0))
    fr = u - i0
    idx = []
    w = []
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                d = np.array([dx, dy, dz])
                ii = np.minimum(i0 + d, np.asarray(grid.shape) - 1)
                idx.append(ii)
                w.append(np.prod(np.where(d == 1, fr, 1.0 - fr)))
    return np.array(idx), np.array(w)


class SensorSet:
    """A set of named points read from the padded temperature array."""

    def __init__(self, grid: Grid, points: Mapping[str, Sequence[float]]):
        self.names = tuple(points)
        pshape = tuple(n + 2 for n in grid.shape)
        flat = []
        weights = []
        for name in self.names:
            idx, w = trilinear_weights(grid, points[name], name=f"thermocouple {name!r}")
            flat.append(np.ravel_multi_index(tuple((idx + 1).T), pshape))
            weights.append(w)
        self._flat = np.array(flat, dtype=np.int64).reshape(len(self.names), 8)
        self._w = np.array(weights).reshape(len(self.names), 8)

    def read(self, T_padded: np.ndarray) -> np.ndarray:
        """Temperatures [°C] at the sensors from a padded temperature array."""
        if not self.names:
            return np.empty(0)
        return (T_padded.reshape(-1)[self._flat] * self._w).sum(axis=1)
