"""A small model on which ``Source.compile_ahead`` runs a source's kernels, the way a
simulation calls them (for ``ablasim compile``)."""

from __future__ import annotations

import numpy as np

from ..grid import Grid
from ..model import Model
from .base import BoundSource

__all__ = ["heat_twice", "small_model"]


def small_model() -> Model:
    """24^3 voxels of muscle at 1 mm: big enough for a multigrid hierarchy of several
    levels (each level's kernels in single and double precision), small enough to take
    no time."""
    grid = Grid((24, 24, 24), 1e-3, origin=(-11.5e-3,) * 3)
    return Model.uniform(grid, "muscle")


def heat_twice(bound: BoundSource, model: Model) -> None:
    """Ask a bound source for its heating twice, the second time warmer (for the
    temperature-dependent re-computations), with the argument types a simulation passes:
    an interior view of a padded temperature array."""
    shape = model.grid.shape
    T = np.full(tuple(n + 2 for n in shape), 37.0)
    inner = T[1:-1, 1:-1, 1:-1]
    Q = np.zeros(shape)
    for t, temperature in ((0.0, 37.0), (10.0, 60.0)):
        inner[...] = temperature
        bound.deposit(Q, inner, t)
