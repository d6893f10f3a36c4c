"""The RF potential solved with pyamg's smoothed-aggregation algebraic multigrid.

The comparison for ablasim's own geometric multigrid (``bench_potential.py``), also run by
``tests/test_multigrid.py``. Same discrete system (:meth:`PotentialSystem.assemble`), same
conjugate-gradient loop (:func:`ablasim.solvers.multigrid.conjugate_gradients`), only the
preconditioner differs: one AMG V-cycle. Its set-up takes seconds on 10⁶ unknowns and goes
stale as σ changes, so the hierarchy is kept between solves and rebuilt (at the next solve)
when a solve needed more than 30 iterations and more than twice + 10 those of the first
solve with it, at most once every 10 solves.

The CG loop is ablasim's rather than pyamg's or SciPy's: their dot products and norms go
through a multithreaded BLAS, which stalls (100x slower) next to numba's worker threads.
"""

from __future__ import annotations

import numpy as np
import pyamg

from ablasim.errors import SimulationError
from ablasim.solvers.multigrid import conjugate_gradients
from ablasim.solvers.potential import PotentialSystem

__all__ = ["AMGPotentialSystem"]


class AMGPotentialSystem(PotentialSystem):
    """A :class:`~ablasim.solvers.potential.PotentialSystem` solved by conjugate gradients
    preconditioned with pyamg's smoothed-aggregation AMG.

    Attributes
    ----------
    ml : pyamg.multilevel.MultilevelSolver or None
        The hierarchy, built at the first solve (or set from outside, to time its set-up
        apart); ``None`` after it went stale.
    setups : int
        How many hierarchies were built.
    """

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.ml = None
        self.setups = 0
        self._iters_at_setup = None
        self._setup_at = 0
        self._x = None

    def solve(self, sigma: np.ndarray, *, tol: float = 1e-8, maxiter: int = 500) -> np.ndarray:
        """The potential [V] on the grid, warm-started from the previous solution."""
        A, b = self.assemble(sigma)
        if self.ml is None:
            self.ml = pyamg.smoothed_aggregation_solver(A, symmetry="hermitian")
            self._iters_at_setup = None
            self._setup_at = self.solves
            self.setups += 1
        x = self._x.copy() if self._x is not None else np.zeros(self.n_free)
        it, ok = _pcg(A, b, x, self.ml, tol, maxiter)
        if not ok:
            raise SimulationError(f"the pyamg potential solve did not converge in {it} iterations")
        self.last_iterations = it
        if self._iters_at_setup is None:
            self._iters_at_setup = it
        elif it > max(2 * self._iters_at_setup + 10, 30) and self.solves - self._setup_at >= 10:
            self.ml = None  # the hierarchy has gone stale: rebuild it next time
        self._x = x
        self.solves += 1
        V = np.zeros(self.shape)
        V[self.free] = x
        for k, v in enumerate(self.voltages):
            V[self.kind == k + 1] = v
        return V

    def solve_heating(self, sigma: np.ndarray, *, tol: float = 1e-8):
        """``(V, Q, I)`` as :meth:`PotentialSystem.solve_heating`, post-processed by the
        NumPy references :meth:`joule_heating` and :meth:`currents`."""
        V = self.solve(sigma, tol=tol)
        return V, self.joule_heating(sigma, V), self.currents(sigma, V)


def _vcycle(ml, b, level=0):
    """One AMG V-cycle on ``A x = b`` from x = 0 (the preconditioner)."""
    lv = ml.levels[level]
    if level == len(ml.levels) - 1:
        return np.asarray(ml.coarse_solver(lv.A, b)).reshape(-1)
    x = np.zeros_like(b)
    lv.presmoother(lv.A, x, b)
    r = b - lv.A @ x
    xc = _vcycle(ml, lv.R @ r, level + 1)
    x += lv.P @ xc
    lv.postsmoother(lv.A, x, b)
    return x


def _pcg(A, b, x, ml, tol, maxiter):
    """Conjugate gradients on ``A x = b`` from ``x`` (updated in place), one AMG V-cycle as
    preconditioner. Returns (iterations, converged)."""

    def apply(p, out):
        out[...] = A @ p

    def precondition(r, out):
        out[...] = _vcycle(ml, r)

    work = (np.empty_like(b), np.empty_like(b), np.empty_like(b))
    return conjugate_gradients(apply, precondition, b, x, b - A @ x, work, tol=tol, maxiter=maxiter)
