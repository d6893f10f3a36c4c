"""Geometric multigrid for the 7-point conduction problem on the voxel grid (numba).

The electric potential of RF ablation (:mod:`.potential`) is a symmetric positive
definite system ``A x = b`` with a 7-point stencil: each voxel is linked to its six
neighbours by a conductance ``g`` [S], and Dirichlet links (to an electrode, a grounded
face) add to the diagonal and the right-hand side only. This module solves it with
conjugate gradients preconditioned by one multigrid V-cycle, all on the grid itself:

* **Storage.** Every level keeps padded 3D arrays (one ghost layer, zeros): ``D`` the
  diagonal, ``gx, gy, gz`` the link conductances, the link between cells ``i-1`` and
  ``i`` stored at ``i``. Cells that are not unknowns (electrodes, insulators, ghosts)
  have ``D = 0`` and zero links, so every kernel is a plain loop without branches on
  the cell type.
* **Coarsening.** Cells are grouped in 2x2x2 blocks (a partial block at an odd edge). The
  coarse operator is the Galerkin product ``Pᵀ A P`` with piecewise-constant ``P``: a
  coarse link is the sum of the four fine links crossing the block face, the coarse
  diagonal the block's diagonals minus twice its internal links. It is then halved:
  for a uniform medium ``Pᵀ A P`` is exactly twice the operator rediscretised at ``2h``
  (four links of ``hσ`` against one of ``2hσ``), the known stiffness of piecewise-constant
  aggregation; halving it is the classic over-correction that restores V-cycle
  convergence (Braess 1995, "Towards algebraic multigrid for elliptic problems of second
  order", Computing 55:379; Notay 2010, ETNA 37:123). Jumps in σ (bone 0.02 S/m next to
  tissue 0.4 S/m, desiccated voxels at 1 % of σ) and the cut-cell electrode links are
  carried through the Galerkin sums, so no geometric information is needed.
* **Smoothing.** Red-black Gauss-Seidel, red then black before the coarse correction and
  black then red after it, so the V-cycle is a symmetric preconditioner. Parallel over
  x-slabs (``prange``); both colours in one pass over memory (:func:`_gs_sweep`).
* **Coarsest level** (at most :data:`COARSEST_CELLS` cells): a dense Cholesky solve.

Building the hierarchy costs about two passes over the fine grid, so it is rebuilt on
every solve: unlike an algebraic multigrid set-up (which takes seconds on 10⁶ unknowns
and then goes stale as σ changes during ablation) it never lags behind σ.

Validity: any SPD 7-point problem with non-negative links and at least one Dirichlet
link in every connected region (otherwise the system is singular: the dense coarsest
solve then falls back to a least-squares solution).
"""

from __future__ import annotations

import itertools
import math

import numba
import numpy as np

from ._jit import jit, jit_inline, jit_serial, prange

__all__ = [
    "COARSEST_CELLS",
    "RESIDUAL_FLOOR",
    "Level",
    "MultigridSolver",
    "conjugate_gradients",
    "link_dissipation",
    "pcg",
    "stopping_residual",
    "tissue_links",
]

#: Stop coarsening when a level has at most this many cells (solved densely).
COARSEST_CELLS = 128
#: A coarsest level larger than this (a thin grid that cannot be halved further) is
#: smoothed instead of solved: this many symmetric Gauss-Seidel sweeps.
COARSEST_SWEEPS = 30
_DENSE_LIMIT = 1500


# -- assembly from a conductivity field ----------------------------------------------------
@jit_inline
def _hm(h, a, b):
    return 2.0 * h * a * b / (a + b)


@jit
def tissue_links(sigma, free, h, D, gx, gy, gz):  # pragma: no cover - compiled
    """Links between neighbouring unknowns, ``h`` times the harmonic mean of their
    conductivities [S], into the padded ``gx, gy, gz``, and their sum into ``D``.

    ``sigma`` and ``free`` (1 = unknown) have the unpadded shape. Links to anything else
    are zero here; add the Dirichlet links to ``D`` afterwards."""
    nx, ny, nz = sigma.shape
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                d = 0.0
                gxl = 0.0
                gyl = 0.0
                gzl = 0.0
                if free[i, j, k]:
                    s = sigma[i, j, k]
                    if i > 0 and free[i - 1, j, k]:
                        gxl = _hm(h, s, sigma[i - 1, j, k])
                    if i < nx - 1 and free[i + 1, j, k]:
                        d += _hm(h, s, sigma[i + 1, j, k])
                    if j > 0 and free[i, j - 1, k]:
                        gyl = _hm(h, s, sigma[i, j - 1, k])
                    if j < ny - 1 and free[i, j + 1, k]:
                        d += _hm(h, s, sigma[i, j + 1, k])
                    if k > 0 and free[i, j, k - 1]:
                        gzl = _hm(h, s, sigma[i, j, k - 1])
                    if k < nz - 1 and free[i, j, k + 1]:
                        d += _hm(h, s, sigma[i, j, k + 1])
                gx[i + 1, j + 1, k + 1] = gxl
                gy[i + 1, j + 1, k + 1] = gyl
                gz[i + 1, j + 1, k + 1] = gzl
                D[i + 1, j + 1, k + 1] = d + gxl + gyl + gzl


@jit
def link_dissipation(x, gx, gy, gz, q):  # pragma: no cover - compiled
    """Power dissipated in the links between unknowns [W], half of each link's
    ``g ΔV²`` to each end, into ``q`` (unpadded shape; ``x`` padded)."""
    nx, ny, nz = q.shape
    for i in prange(1, nx + 1):
        for j in range(1, ny + 1):
            for k in range(1, nz + 1):
                c = x[i, j, k]
                a = x[i - 1, j, k] - c
                b = x[i + 1, j, k] - c
                e = x[i, j - 1, k] - c
                f = x[i, j + 1, k] - c
                g = x[i, j, k - 1] - c
                m = x[i, j, k + 1] - c
                q[i - 1, j - 1, k - 1] = 0.5 * (
                    gx[i, j, k] * a * a
                    + gx[i + 1, j, k] * b * b
                    + gy[i, j, k] * e * e
                    + gy[i, j + 1, k] * f * f
                    + gz[i, j, k] * g * g
                    + gz[i, j, k + 1] * m * m
                )


# -- kernels ------------------------------------------------------------------------------
@jit_inline
def _stencil(x, D, gx, gy, gz, i, j, k):
    """(A x) at cell (i, j, k) of the padded arrays."""
    return (
        D[i, j, k] * x[i, j, k]
        - gx[i, j, k] * x[i - 1, j, k]
        - gx[i + 1, j, k] * x[i + 1, j, k]
        - gy[i, j, k] * x[i, j - 1, k]
        - gy[i, j + 1, k] * x[i, j + 1, k]
        - gz[i, j, k] * x[i, j, k - 1]
        - gz[i, j, k + 1] * x[i, j, k + 1]
    )


@jit
def _apply(x, D, gx, gy, gz, out):  # pragma: no cover - compiled
    """out = A x on the interior (padded arrays; zero ghosts)."""
    nx, ny, nz = x.shape[0] - 2, x.shape[1] - 2, x.shape[2] - 2
    for i in prange(1, nx + 1):
        for j in range(1, ny + 1):
            for k in range(1, nz + 1):
                out[i, j, k] = _stencil(x, D, gx, gy, gz, i, j, k)


@jit
def _residual(x, b, D, gx, gy, gz, r):  # pragma: no cover - compiled
    """r = b - A x on the interior."""
    nx, ny, nz = x.shape[0] - 2, x.shape[1] - 2, x.shape[2] - 2
    for i in prange(1, nx + 1):
        for j in range(1, ny + 1):
            for k in range(1, nz + 1):
                r[i, j, k] = b[i, j, k] - _stencil(x, D, gx, gy, gz, i, j, k)


@jit_inline
def _gs_value(x, b, inv_d, gx, gy, gz, i, j, k):
    """The Gauss-Seidel value of cell (i, j, k) from its neighbours' current values."""
    return inv_d[i, j, k] * (
        b[i, j, k]
        + gx[i, j, k] * x[i - 1, j, k]
        + gx[i + 1, j, k] * x[i + 1, j, k]
        + gy[i, j, k] * x[i, j - 1, k]
        + gy[i, j + 1, k] * x[i, j + 1, k]
        + gz[i, j, k] * x[i, j, k - 1]
        + gz[i, j, k + 1] * x[i, j, k + 1]
    )


@jit
def _gs_colour(x, b, inv_d, gx, gy, gz, colour):  # pragma: no cover - compiled
    """One Gauss-Seidel half-sweep over the cells with (i + j + k) % 2 == colour: the
    plain form, the reference that :func:`_gs_sweep` is tested against.

    Cells that are not unknowns have ``inv_d = 0`` and stay at zero."""
    nx, ny, nz = x.shape[0] - 2, x.shape[1] - 2, x.shape[2] - 2
    for i in prange(1, nx + 1):
        for j in range(1, ny + 1):
            k0 = 1 + (i + j + 1 + colour) % 2
            for k in range(k0, nz + 1, 2):
                x[i, j, k] = _gs_value(x, b, inv_d, gx, gy, gz, i, j, k)


@jit_inline
def _gs_plane(x, b, inv_d, gx, gy, gz, colour, i, row):
    """The Gauss-Seidel update of the cells of one colour in x-plane ``i``.

    Each z-row is computed whole into ``row`` (a contiguous loop that reads ``x`` and
    writes only ``row``, so LLVM vectorises it), then the cells of the colour are copied
    back: twice the arithmetic of a stride-2 loop, but vectorised, where a stride-2
    store is not."""
    ny, nz = x.shape[1] - 2, x.shape[2] - 2
    for j in range(1, ny + 1):
        for k in range(1, nz + 1):
            row[k] = _gs_value(x, b, inv_d, gx, gy, gz, i, j, k)
        for k in range(1 + (i + j + 1 + colour) % 2, nz + 1, 2):
            x[i, j, k] = row[k]


@jit
def _gs_sweep(x, b, inv_d, gx, gy, gz, first, chunks):  # pragma: no cover - compiled
    """One red-black Gauss-Seidel sweep, colour ``first`` then the other, in one pass.

    The same as ``_gs_colour(first)`` then ``_gs_colour(1 - first)``, bit for bit, but
    each x-plane's second colour is updated right after the first colour of the next
    plane, while the three planes it reads are still in cache: the arrays are streamed
    from memory once per sweep instead of twice. The x-planes are cut into ``chunks``
    slabs (one per thread); a slab's first and last planes take their second colour in
    a second parallel loop, once the neighbouring slabs' first colour is done.
    """
    nx = x.shape[0] - 2
    second = 1 - first
    nc = max(1, min(chunks, nx))
    for c in prange(nc):
        row = np.empty(x.shape[2], x.dtype)
        i0 = 1 + (c * nx) // nc
        i1 = 1 + ((c + 1) * nx) // nc
        for i in range(i0, i1):
            _gs_plane(x, b, inv_d, gx, gy, gz, first, i, row)
            if i - 1 > i0:
                _gs_plane(x, b, inv_d, gx, gy, gz, second, i - 1, row)
    for c in prange(nc):
        row = np.empty(x.shape[2], x.dtype)
        i0 = 1 + (c * nx) // nc
        i1 = 1 + ((c + 1) * nx) // nc
        _gs_plane(x, b, inv_d, gx, gy, gz, second, i0, row)
        if i1 - 1 > i0:
            _gs_plane(x, b, inv_d, gx, gy, gz, second, i1 - 1, row)


@jit
def _restrict(r, rc):  # pragma: no cover - compiled
    """rc = Pᵀ r: each coarse cell sums its (up to) eight fine cells."""
    ncx, ncy, ncz = rc.shape[0] - 2, rc.shape[1] - 2, rc.shape[2] - 2
    for ic in prange(1, ncx + 1):
        i = 2 * ic - 1
        for jc in range(1, ncy + 1):
            j = 2 * jc - 1
            for kc in range(1, ncz + 1):
                k = 2 * kc - 1
                rc[ic, jc, kc] = (
                    r[i, j, k]
                    + r[i + 1, j, k]
                    + r[i, j + 1, k]
                    + r[i + 1, j + 1, k]
                    + r[i, j, k + 1]
                    + r[i + 1, j, k + 1]
                    + r[i, j + 1, k + 1]
                    + r[i + 1, j + 1, k + 1]
                )


@jit
def _prolong_add(x, xc, inv_d):  # pragma: no cover - compiled
    """x += P xc on the fine unknowns (piecewise constant)."""
    nx, ny, nz = x.shape[0] - 2, x.shape[1] - 2, x.shape[2] - 2
    for i in prange(1, nx + 1):
        ic = (i + 1) // 2
        for j in range(1, ny + 1):
            jc = (j + 1) // 2
            for k in range(1, nz + 1):
                if inv_d[i, j, k] != 0.0:
                    x[i, j, k] += xc[ic, jc, (k + 1) // 2]


@jit
def _coarsen(D, gx, gy, gz, Dc, gxc, gyc, gzc, scale):  # pragma: no cover - compiled
    """The halved Galerkin operator of the next level (see the module docstring)."""
    ncx, ncy, ncz = Dc.shape[0] - 2, Dc.shape[1] - 2, Dc.shape[2] - 2
    for ic in prange(1, ncx + 1):
        i = 2 * ic - 1
        for jc in range(1, ncy + 1):
            j = 2 * jc - 1
            for kc in range(1, ncz + 1):
                k = 2 * kc - 1
                d = 0.0
                inner = 0.0
                for a in range(2):
                    for b in range(2):
                        for c in range(2):
                            d += D[i + a, j + b, k + c]
                        # links inside the block
                        inner += gx[i + 1, j + a, k + b]
                        inner += gy[i + a, j + 1, k + b]
                        inner += gz[i + a, j + b, k + 1]
                Dc[ic, jc, kc] = scale * (d - 2.0 * inner)
                # links to the lower neighbour block: the fine links across the face
                gxc[ic, jc, kc] = scale * (
                    gx[i, j, k] + gx[i, j + 1, k] + gx[i, j, k + 1] + gx[i, j + 1, k + 1]
                )
                gyc[ic, jc, kc] = scale * (
                    gy[i, j, k] + gy[i + 1, j, k] + gy[i, j, k + 1] + gy[i + 1, j, k + 1]
                )
                gzc[ic, jc, kc] = scale * (
                    gz[i, j, k] + gz[i + 1, j, k] + gz[i, j + 1, k] + gz[i + 1, j + 1, k]
                )
        # (a coarse cell at the low edge sums ghost links, which are zero)


@jit
def _inverse_diagonal(D, inv_d):  # pragma: no cover - compiled
    n0, n1, n2 = D.shape
    for i in prange(n0):
        for j in range(n1):
            for k in range(n2):
                d = D[i, j, k]
                inv_d[i, j, k] = 1.0 / d if d > 0.0 else 0.0


# Vector operations of conjugate gradients: numba loops over flat arrays, parallel (a
# threaded BLAS would fight numba's threads for the two cores). The sums are taken over
# fixed blocks of _BLOCK elements and the blocks' partial sums added in order, so a
# result does not depend on the number of threads (the simulation switches between one
# and two while it runs): a prange reduction would add the threads' partial sums, and a
# run would not repeat itself bit for bit.
_BLOCK = 1 << 14


@jit_inline
def _ordered_sum(part):
    """The blocks' partial sums added in block order."""
    total = 0.0
    for blk in range(part.size):
        total += part[blk]
    return total


@jit
def _dot(a, b):  # pragma: no cover - compiled
    n = a.size
    part = np.empty((n + _BLOCK - 1) // _BLOCK)
    for blk in prange(part.size):
        s = 0.0
        for i in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            s += a[i] * b[i]
        part[blk] = s
    return _ordered_sum(part)


@jit
def _xpby(x, beta, y):  # pragma: no cover - compiled
    """y = x + beta * y"""
    for i in prange(y.size):
        y[i] = x[i] + beta * y[i]


@jit
def _cg_update(x, r, p, q, alpha):  # pragma: no cover - compiled
    """x += alpha p, r -= alpha q, in one pass; returns |r|^2 (summed as in _dot)."""
    n = x.size
    part = np.empty((n + _BLOCK - 1) // _BLOCK)
    for blk in prange(part.size):
        s = 0.0
        for i in range(blk * _BLOCK, min(n, (blk + 1) * _BLOCK)):
            x[i] += alpha * p[i]
            ri = r[i] - alpha * q[i]
            r[i] = ri
            s += ri * ri
        part[blk] = s
    return _ordered_sum(part)


@jit_serial
def _cholesky(A):  # pragma: no cover - compiled
    """In-place Cholesky factor (lower triangle) of a small SPD matrix; False if not SPD.

    Serial numba rather than LAPACK: a threaded BLAS call next to numba's worker threads
    fights them for the cores (see ``benchmarks/bench_potential.py``)."""
    n = A.shape[0]
    for j in range(n):
        d = A[j, j]
        for k in range(j):
            d -= A[j, k] * A[j, k]
        if not d > 0.0:
            return False
        d = math.sqrt(d)
        A[j, j] = d
        for i in range(j + 1, n):
            s = A[i, j]
            for k in range(j):
                s -= A[i, k] * A[j, k]
            A[i, j] = s / d
    return True


@jit_serial
def _cholesky_solve(L, b):  # pragma: no cover - compiled
    """Solve (L Lᵀ) x = b with the factor from :func:`_cholesky`."""
    n = b.size
    y = np.empty(n)
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * y[k]
        y[i] = s / L[i, i]
    x = np.empty(n)
    for i in range(n - 1, -1, -1):
        s = y[i]
        for k in range(i + 1, n):
            s -= L[k, i] * x[k]
        x[i] = s / L[i, i]
    return x


# -- the hierarchy ------------------------------------------------------------------------
class Level:
    """One grid level: padded diagonal, links, inverse diagonal and work vectors."""

    def __init__(self, shape: tuple[int, int, int], dtype=np.float64):
        self.shape = shape
        padded = tuple(n + 2 for n in shape)
        self.D = np.zeros(padded, dtype)
        self.gx = np.zeros(padded, dtype)
        self.gy = np.zeros(padded, dtype)
        self.gz = np.zeros(padded, dtype)
        self.inv_d = np.zeros(padded, dtype)
        self.x = np.zeros(padded, dtype)
        self.b = np.zeros(padded, dtype)
        self.r = np.zeros(padded, dtype)

    @property
    def cells(self) -> int:
        return math.prod(self.shape)

    def apply(self, x: np.ndarray, out: np.ndarray) -> None:
        _apply(x, self.D, self.gx, self.gy, self.gz, out)

    def dense(self) -> tuple[np.ndarray, np.ndarray]:
        """The dense matrix over the level's unknowns and their flat padded indices."""
        idx = np.flatnonzero(self.D > 0)
        n = idx.size
        A = np.zeros((n, n))
        where = np.full(self.D.size, -1)
        where[idx] = np.arange(n)
        A[np.arange(n), np.arange(n)] = self.D.reshape(-1)[idx]
        strides = np.array(self.D.strides) // self.D.itemsize
        for g, s in zip((self.gx, self.gy, self.gz), strides, strict=True):
            gv = g.reshape(-1)[idx]  # link of each unknown to its lower neighbour
            lower = where[idx - s]
            ok = (gv != 0) & (lower >= 0)
            rows, cols = np.arange(n)[ok], lower[ok]
            A[rows, cols] -= gv[ok]
            A[cols, rows] -= gv[ok]
        return A, idx


class MultigridSolver:
    """PCG with a geometric multigrid V-cycle for a 7-point SPD problem on a grid.

    Parameters
    ----------
    shape : 3 ints
        Grid shape (unpadded).
    sweeps : int
        Red-black Gauss-Seidel sweeps before and after each coarse correction.

    Attributes
    ----------
    fine : Level
        The operator (float64) that conjugate gradients solves; fill its ``D, gx, gy,
        gz`` before :meth:`set_operator`.
    levels : list of Level
        The V-cycle's hierarchy: ``fine`` and its coarsenings, or their single-precision
        copies (see :meth:`set_operator`).
    """

    def __init__(self, shape: tuple[int, int, int], *, sweeps: int = 2):
        self.sweeps = int(sweeps)
        self._shapes = [tuple(int(n) for n in shape)]
        while math.prod(self._shapes[-1]) > COARSEST_CELLS and min(self._shapes[-1]) > 2:
            self._shapes.append(tuple((n + 1) // 2 for n in self._shapes[-1]))
        self._double = [Level(sh) for sh in self._shapes]
        self._single = None
        self.fine = self._double[0]
        self.levels = self._double
        self._coarse = None
        self._z = np.zeros_like(self.fine.x)
        self._p = np.zeros_like(self.fine.x)
        self._q = np.zeros_like(self.fine.x)

    # -- set-up -------------------------------------------------------------------------
    def set_operator(self, *, single: bool = False) -> None:
        """Build the V-cycle's levels from ``fine``'s ``D, gx, gy, gz`` (fill those first,
        ghosts zero).

        ``single``: run the V-cycle in single precision (float32 copies of every level).
        The smoother streams six arrays per half-sweep at the memory bandwidth, so this
        nearly halves its cost; CG itself stays in double precision, and a preconditioner
        accurate to 1e-7 is enough for the 1e-3-1e-5 residuals of the time loop (use
        double precision below about 1e-6)."""
        if single:
            if self._single is None:
                self._single = [Level(sh, np.float32) for sh in self._shapes]
            lv = self._single
            for name in ("D", "gx", "gy", "gz"):
                getattr(lv[0], name)[...] = getattr(self.fine, name)
        else:
            lv = self._double
        self.levels = lv
        _inverse_diagonal(lv[0].D, lv[0].inv_d)
        for f, c in itertools.pairwise(lv):
            _coarsen(f.D, f.gx, f.gy, f.gz, c.D, c.gx, c.gy, c.gz, 0.5)
            _inverse_diagonal(c.D, c.inv_d)
        if lv[-1].cells > _DENSE_LIMIT:
            self._coarse = None
            return
        A, idx = lv[-1].dense()
        if idx.size and _cholesky(A):  # A now holds its Cholesky factor
            self._coarse = ("chol", A, idx)
        else:  # a floating region (singular): least squares
            A, idx = lv[-1].dense()
            self._coarse = ("pinv", np.linalg.pinv(A), idx)

    # -- the V-cycle ----------------------------------------------------------------------
    def _coarse_solve(self, lv: Level) -> None:
        if self._coarse is None:
            lv.x[...] = 0.0
            args = (lv.inv_d, lv.gx, lv.gy, lv.gz)
            nt = numba.get_num_threads()
            for _ in range(COARSEST_SWEEPS):
                _gs_sweep(lv.x, lv.b, *args, 0, nt)
            for _ in range(COARSEST_SWEEPS):
                _gs_sweep(lv.x, lv.b, *args, 1, nt)
            return
        kind, M, idx = self._coarse
        xf = lv.x.reshape(-1)
        xf[:] = 0.0
        rhs = lv.b.reshape(-1)[idx].astype(np.float64)
        xf[idx] = _cholesky_solve(M, rhs) if kind == "chol" else M @ rhs

    def _cycle(self, m: int) -> None:
        """Approximately solve level ``m``'s ``A x = b`` from x = 0 (result in ``x``)."""
        lv = self.levels[m]
        if m == len(self.levels) - 1:
            self._coarse_solve(lv)
            return
        lv.x[...] = 0.0
        args = (lv.inv_d, lv.gx, lv.gy, lv.gz)
        nt = numba.get_num_threads()
        for _ in range(self.sweeps):
            _gs_sweep(lv.x, lv.b, *args, 0, nt)
        _residual(lv.x, lv.b, lv.D, lv.gx, lv.gy, lv.gz, lv.r)
        nxt = self.levels[m + 1]
        _restrict(lv.r, nxt.b)
        self._cycle(m + 1)
        _prolong_add(lv.x, nxt.x, lv.inv_d)
        for _ in range(self.sweeps):
            _gs_sweep(lv.x, lv.b, *args, 1, nt)

    def precondition(self, r: np.ndarray, out: np.ndarray) -> None:
        """out = M⁻¹ r (one V-cycle; padded arrays)."""
        top = self.levels[0]
        top.b[...] = r
        self._cycle(0)
        out[...] = top.x

    # -- PCG ------------------------------------------------------------------------------
    def solve(
        self, b: np.ndarray, x: np.ndarray, *, tol: float, maxiter: int = 300
    ) -> tuple[int, bool]:
        """Solve ``A x = b`` in place (padded arrays; ``x`` is the initial guess).

        Stops when ``|b - A x|`` is ``tol`` times its starting value
        (:func:`stopping_residual`). Returns (iterations, converged).
        """
        return pcg(self, b, x, tol=tol, maxiter=maxiter)


#: A residual below this fraction of |b| counts as solved: just above round-off, which
#: measured 1.5e-14 |b| for these operators on 128^3 (repeated solves of an unchanged
#: system tighten until here, then take 0 iterations). A ``tol`` below it acts as it.
RESIDUAL_FLOOR = 1e-13


def stopping_residual(r0: float, bnorm: float, tol: float) -> float:
    """The residual norm at which a (P)CG solve from a residual ``r0`` stops: ``tol``
    times ``r0`` (or times ``|b|`` if that is smaller), not always times ``|b|``.

    A warm start after a smooth change of the operator (σ of warming tissue) has a
    residual small next to |b| although the solution moved: ∇·(δσ ∇V) is small where
    δσ varies slowly, and the operator's condition number (~n²) turns that into a large
    error. A test against ``tol |b|`` would accept the old solution untouched, again and
    again, while the drift grows (``tests/test_multigrid.py``). Reducing the solve's own
    starting residual by ``tol`` bounds the new error by about ``tol`` times the change.
    From a zero start r0 = |b|. A warm start can also be *worse* than zero (r0 >
    |b|: tissue at the electrode dried out and σ fell 100-fold); the target is then
    ``tol |b|``, as from zero, not the looser ``tol r0``. Below :data:`RESIDUAL_FLOOR`
    |b| the start counts as solved (nothing changed)."""
    return max(tol * min(r0, bnorm), RESIDUAL_FLOOR * bnorm)


def pcg(mg: MultigridSolver, b: np.ndarray, x: np.ndarray, *, tol: float, maxiter: int):
    """Conjugate gradients on ``mg``'s finest operator, preconditioned by its V-cycle
    (:func:`conjugate_gradients`; padded arrays, ``x`` the initial guess)."""
    fine = mg.fine
    _residual(x, b, fine.D, fine.gx, fine.gy, fine.gz, fine.r)
    # the V-cycle overwrites fine.r and fine.b: keep the PCG residual apart
    return conjugate_gradients(
        fine.apply, mg.precondition, b, x, fine.r.copy(), (mg._z, mg._p, mg._q),
        tol=tol, maxiter=maxiter,
    )  # fmt: skip


def conjugate_gradients(apply, precondition, b, x, r, work, *, tol: float, maxiter: int):
    """Preconditioned conjugate gradients for ``A x = b``, improving ``x`` in place.

    ``apply(p, out)`` writes ``A p`` and ``precondition(r, out)`` ``M⁻¹ r`` into ``out``;
    ``r`` holds ``b - A x`` on entry (it is updated); ``work`` is three arrays of ``x``'s
    shape. Stops when the residual is ``tol`` times the starting one
    (:func:`stopping_residual`). Returns (iterations, converged); not converged also
    when ``p·Ap <= 0`` (the operator is not SPD, or NaN). The vector operations are
    numba loops (not BLAS, whose threads fight numba's) whose sums do not depend on the
    thread count. The potential solve uses it with the multigrid V-cycle (and the pyamg
    reference in ``benchmarks/pyamg_reference.py`` with its own preconditioner).
    """
    rf, bf, xf = r.reshape(-1), b.reshape(-1), x.reshape(-1)
    bnorm = math.sqrt(_dot(bf, bf))
    if bnorm == 0.0:
        x[...] = 0.0
        return 0, True
    r0 = math.sqrt(_dot(rf, rf))
    stop = stopping_residual(r0, bnorm, tol)
    if r0 <= stop:
        return 0, True
    z, p, q = work
    zf, pf, qf = z.reshape(-1), p.reshape(-1), q.reshape(-1)
    precondition(r, z)
    p[...] = z
    rz = _dot(rf, zf)
    for it in range(1, maxiter + 1):
        apply(p, q)
        pq = _dot(pf, qf)
        if not pq > 0.0:  # breakdown: not SPD, or NaN
            return it, False
        alpha = rz / pq
        if math.sqrt(_cg_update(xf, rf, pf, qf, alpha)) <= stop:
            return it, True
        precondition(r, z)
        rz_new = _dot(rf, zf)
        _xpby(zf, rz_new / rz, pf)
        rz = rz_new
    return maxiter, False
