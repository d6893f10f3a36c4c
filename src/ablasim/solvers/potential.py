"""The quasi-static electric potential of RF ablation: ∇·(σ∇V) = 0 on the voxel grid.

Model and validity (docs/physics.md §3.1): at 450–500 kHz the wavelength is far larger than the
treated region and displacement currents are negligible next to conduction currents in
tissue, so the potential obeys the steady conduction equation with the electrodes as
fixed-potential boundaries (Irastorza tutorial; Berjano 2006, BioMed Eng OnLine 5:24).
Capacitive effects, the electrode–tissue interface and the metal's own resistance are not
modelled. Joule heat is Q = σ|∇V|² [W/m^3].

Discretisation (cell-centred finite volumes, one unknown per voxel centre):

* Every pair of neighbouring voxel centres is joined by a link of conductance
  ``g = h σ_face`` [S] with the harmonic mean ``σ_face = 2σ₁σ₂/(σ₁+σ₂)`` (current
  continuity at tissue interfaces, as the thermal solver does for heat).
* Electrodes are *embedded Dirichlet boundaries*: voxels whose centre lies inside an
  electrode are held at its potential. Where a link from a tissue voxel ``i`` crosses the
  electrode surface at a fraction ``θ`` of its length (from a signed distance ``level``,
  ``θ = φ_i / (φ_i − φ_j)``), its conductance becomes ``h σ_i / θ`` with the electrode's
  potential at the crossing. This is the symmetric scheme with a linearly extrapolated
  ghost value of Gibou, Fedkiw, Cheng & Kang 2002 (J Comput Phys 176:205–227): the
  potential converges at second order although the electrode is not aligned with the
  grid (``tests/test_rf.py`` measures it). Without ``level`` the surface sits at the
  electrode voxel's centre (staircase, first order).
* Voxels marked as insulator (label -1: an insulated needle shaft, the gap of a bipolar
  probe) carry no current; links to them have zero conductance.
* Outer faces are grounded (held at a potential, default 0 V, at the face: a link of
  ``2 h σ``) or insulated.

Joule heat consistent with the discrete current: each link dissipates ``g ΔV²`` [W]; a link
between two tissue voxels gives half to each, a link to an electrode or a grounded face
gives all of it to its tissue voxel. So ``Σ Q h³`` equals the power the electrodes and
grounded faces supply, ``Σ_k V_k I_k − Σ_faces V_b I_b``, to the round-off of the linear
solve (a discrete Tellegen theorem).

The linear system (symmetric positive definite) is solved by conjugate gradients
preconditioned with a geometric multigrid V-cycle on the grid itself
(:mod:`.multigrid`, numba; its hierarchy costs about two passes over the grid and is
rebuilt from σ at every solve), warm-started from the previous solution. The link
pattern is fixed by the geometry and built once; only the values change with σ.
:meth:`PotentialSystem.assemble` gives the same system as a sparse matrix, the reference
the tests solve directly (``benchmarks/pyamg_reference.py`` solves it with pyamg's
algebraic multigrid, for comparison).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import SimulationError
from ._jit import jit, jit_inline, prange
from .boundary import FACE_NAMES

__all__ = [
    "ROLLOFF_END_C",
    "ROLLOFF_START_C",
    "SIGMA_REFERENCE_C",
    "SIGMA_VAP_FRACTION",
    "PotentialSystem",
    "conductivity_factor",
    "conductivity_factor_numpy",
    "max_relative_change",
    "max_relative_change_numpy",
    "weighted_relative_change",
    "weighted_relative_change_numpy",
]

#: Temperature at which the tissue library's electrical conductivity holds [°C].
SIGMA_REFERENCE_C = 37.0
#: Roll-off ramp (MITA-model convention, docs/physics.md §1.2): σ follows the linear law up to
#: 100 °C, falls linearly to σ_vap over 100–105 °C and stays there above.
ROLLOFF_START_C = 100.0
ROLLOFF_END_C = 105.0
#: σ_vap / σ₀ after desiccation: 1e-2, the nominal value of the MITA-model sensitivity
#: study (range 1e-2 to 1e-4; docs/physics.md §1.2).
SIGMA_VAP_FRACTION = 1e-2


# -- σ(T) ---------------------------------------------------------------------------------
def conductivity_factor_numpy(T, coeff, vap_fraction=SIGMA_VAP_FRACTION):
    """σ(T)/σ₀: ``1 + a (T − 37)`` up to 100 °C, the roll-off ramp to ``vap_fraction`` over
    100–105 °C, ``vap_fraction`` above; never below ``vap_fraction`` (cold tissue).

    Parameters
    ----------
    T : array
        Temperature [°C].
    coeff : array or float
        Temperature coefficient ``a`` [1/K] (library key ``electrical_conductivity_coeff_per_K``).
    vap_fraction : float
        σ_vap / σ₀ [-].
    """
    T = np.asarray(T, dtype=float)
    lin = np.maximum(1.0 + coeff * (T - SIGMA_REFERENCE_C), vap_fraction)
    f100 = np.maximum(1.0 + coeff * (ROLLOFF_START_C - SIGMA_REFERENCE_C), vap_fraction)
    ramp = f100 + (vap_fraction - f100) * (T - ROLLOFF_START_C) / (ROLLOFF_END_C - ROLLOFF_START_C)
    out = np.where(T <= ROLLOFF_START_C, lin, ramp)
    return np.where(T >= ROLLOFF_END_C, vap_fraction, out)


def _factor_py(t, a, vap):
    if t <= ROLLOFF_START_C:
        return max(1.0 + a * (t - SIGMA_REFERENCE_C), vap)
    if t >= ROLLOFF_END_C:
        return vap
    f100 = max(1.0 + a * (ROLLOFF_START_C - SIGMA_REFERENCE_C), vap)
    return f100 + (vap - f100) * (t - ROLLOFF_START_C) / (ROLLOFF_END_C - ROLLOFF_START_C)


_factor = jit_inline(_factor_py)


@jit
def _factor_kernel(T, coeff, vap, out):  # pragma: no cover - compiled
    nx, ny, nz = T.shape
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                out[i, j, k] = _factor(T[i, j, k], coeff[i, j, k], vap)


def conductivity_factor(T, coeff, out=None, *, vap_fraction=SIGMA_VAP_FRACTION):
    """Compiled :func:`conductivity_factor_numpy` for 3D arrays, written into ``out``."""
    T = np.asarray(T, dtype=np.float64)
    coeff = np.broadcast_to(np.asarray(coeff, dtype=np.float64), T.shape)
    if out is None:
        out = np.empty(T.shape)
    _factor_kernel(T, coeff, float(vap_fraction), out)
    return out


@jit_inline
def _change(T, T_ref, coeff, vap, i, j, k):
    """|σ(T)/σ(T_ref) - 1| at voxel (i, j, k)."""
    a = coeff[i, j, k]
    return abs(_factor(T[i, j, k], a, vap) / _factor(T_ref[i, j, k], a, vap) - 1.0)


@jit
def _max_change_kernel(T, T_ref, coeff, vap):  # pragma: no cover - compiled
    nx, ny, nz = T.shape
    best = np.zeros(nx)
    for i in prange(nx):
        m = 0.0
        for j in range(ny):
            for k in range(nz):
                m = max(m, _change(T, T_ref, coeff, vap, i, j, k))
        best[i] = m
    return best.max()


def max_relative_change(T, T_ref, coeff, *, vap_fraction=SIGMA_VAP_FRACTION) -> float:
    """max |σ(T)/σ(T_ref) − 1| over the grid, in one compiled pass (no allocation)."""
    coeff = np.broadcast_to(np.asarray(coeff, dtype=np.float64), np.shape(T))
    return float(_max_change_kernel(T, T_ref, coeff, float(vap_fraction)))


@jit
def _weighted_change_kernel(T, T_ref, coeff, w, vap):  # pragma: no cover - compiled
    nx, ny, nz = T.shape
    acc = np.zeros(nx)
    for i in prange(nx):
        s = 0.0
        for j in range(ny):
            for k in range(nz):
                wk = w[i, j, k]
                if wk != 0.0:
                    s += wk * _change(T, T_ref, coeff, vap, i, j, k)
        acc[i] = s
    return acc.sum()


def weighted_relative_change(T, T_ref, coeff, weight, *, vap_fraction=SIGMA_VAP_FRACTION):
    """Σ w |σ(T)/σ(T_ref) − 1|: with ``w`` the share of the Joule power in each voxel
    (summing to 1) this is, to first order, the relative change of the conductance
    between the electrodes (δG/G = ∫Q δσ/σ dV / P, the variational property of the
    conduction problem), i.e. how far the power at fixed voltage has drifted."""
    coeff = np.broadcast_to(np.asarray(coeff, dtype=np.float64), np.shape(T))
    return float(_weighted_change_kernel(T, T_ref, coeff, weight, float(vap_fraction)))


def weighted_relative_change_numpy(T, T_ref, coeff, weight, *, vap_fraction=SIGMA_VAP_FRACTION):
    """NumPy reference of :func:`weighted_relative_change`."""
    f = conductivity_factor_numpy(T, coeff, vap_fraction)
    f0 = conductivity_factor_numpy(T_ref, coeff, vap_fraction)
    return float((weight * np.abs(f / f0 - 1.0)).sum())


def max_relative_change_numpy(T, T_ref, coeff, *, vap_fraction=SIGMA_VAP_FRACTION) -> float:
    """NumPy reference of :func:`max_relative_change`."""
    f = conductivity_factor_numpy(T, coeff, vap_fraction)
    f0 = conductivity_factor_numpy(T_ref, coeff, vap_fraction)
    return float(np.abs(f / f0 - 1.0).max())


# -- the linear system ----------------------------------------------------------------------
def _sl(axis: int, part: slice) -> tuple[slice, ...]:
    s = [slice(None)] * 3
    s[axis] = part
    return tuple(s)


_LO = slice(None, -1)
_HI = slice(1, None)
_FACE_SLICE = {
    "x_min": (0, 0),
    "x_max": (0, -1),
    "y_min": (1, 0),
    "y_max": (1, -1),
    "z_min": (2, 0),
    "z_max": (2, -1),
}


def _ground_spec(ground) -> dict:
    if ground is None:
        return {}
    if isinstance(ground, str):
        if ground in ("all", "outer"):
            return dict.fromkeys(FACE_NAMES, 0.0)
        ground = (ground,)
    if not isinstance(ground, Mapping):
        ground = dict.fromkeys(ground, 0.0)
    for face in ground:
        if face not in FACE_NAMES:
            raise ValueError(f"unknown face {face!r} for the ground; use one of {FACE_NAMES}")
    return dict(ground)


class PotentialSystem:
    """The discrete conduction problem for a fixed electrode geometry.

    Parameters
    ----------
    electrodes : ndarray of int, grid shape
        0 = tissue (unknown), ``k >= 1`` = inside electrode ``k`` (held at
        ``voltages[k - 1]``), -1 = insulator (no current).
    voltages : sequence of float
        Potential of each electrode [V].
    spacing : float
        Voxel edge [m].
    level : ndarray, optional
        Signed distance to the electrodes' surface [m] (< 0 inside, grid shape); gives the
        cut fractions of links that cross the surface (second order). Only its values next
        to electrodes are used.
    ground : "all", None, sequence of face names, or mapping face -> V
        Outer faces held at a potential [V] (a float or an array of the face's shape);
        the others are insulated. "all" (or "outer"): every face at 0 V.
    theta_min : float
        Smallest cut fraction (keeps the matrix finite when a centre lies on the surface).
    """

    def __init__(
        self,
        electrodes: np.ndarray,
        voltages: Sequence[float],
        spacing: float,
        *,
        level: np.ndarray | None = None,
        ground="all",
        theta_min: float = 1e-6,
    ):
        self._mg = None
        kind = np.asarray(electrodes)
        if kind.ndim != 3 or not np.issubdtype(kind.dtype, np.integer):
            raise ValueError("electrodes must be a 3D integer label array")
        self.shape = kind.shape
        self.h = float(spacing)
        self.voltages = np.asarray(voltages, dtype=np.float64)
        if kind.max(initial=0) > self.voltages.size:
            raise ValueError(f"electrode {kind.max()} has no voltage (got {self.voltages.size})")
        self.kind = kind
        # flat indices of each electrode's voxels, to put their potentials into V
        self._electrode_at = [np.flatnonzero(kind == k + 1) for k in range(self.voltages.size)]
        free = kind == 0
        self.free = free
        self.n_free = int(free.sum())
        fidx = np.full(self.shape, -1, dtype=np.int64)
        fidx[free] = np.arange(self.n_free)
        self._axes = []
        for a in range(3):
            lo, hi = _sl(a, _LO), _sl(a, _HI)
            klo, khi = kind[lo], kind[hi]
            if np.any((klo > 0) & (khi > 0) & (klo != khi)):
                raise ValueError(
                    "two electrodes touch (neighbouring voxels at different potentials); "
                    "separate them by at least one tissue voxel"
                )
            ff = (klo == 0) & (khi == 0)
            fe = (klo == 0) & (khi > 0)
            ef = (klo > 0) & (khi == 0)
            ax = {"ff": ff, "fe": fe, "ef": ef}
            ax["ff_lo"] = fidx[lo][ff]
            ax["ff_hi"] = fidx[hi][ff]
            ax["fe_row"] = fidx[lo][fe]
            ax["ef_row"] = fidx[hi][ef]
            ax["fe_k"] = khi[fe] - 1
            ax["ef_k"] = klo[ef] - 1
            if level is None:
                ax["fe_theta"] = np.ones(ax["fe_row"].size)
                ax["ef_theta"] = np.ones(ax["ef_row"].size)
            else:
                lv = np.asarray(level, dtype=np.float64)
                pf, pe = lv[lo][fe], lv[hi][fe]
                ax["fe_theta"] = _theta(pf, pe, theta_min)
                pf, pe = lv[hi][ef], lv[lo][ef]
                ax["ef_theta"] = _theta(pf, pe, theta_min)
            self._axes.append(ax)
        # grounded faces
        self._faces = []
        for face, value in _ground_spec(ground).items():
            a, pos = _FACE_SLICE[face]
            s = _sl(a, slice(0, 1) if pos == 0 else slice(-1, None))
            fr = free[s]
            val = np.asarray(value, dtype=np.float64)
            if val.ndim == 2:
                val = np.expand_dims(val, a)
            vb = np.broadcast_to(val, fr.shape)
            self._faces.append(
                {"slice": s, "mask": fr, "row": fidx[s][fr], "value": vb[fr].copy(), "face": face}
            )
        self._csr = None  # the CSR pattern, built by the first assemble()
        self.solves = 0
        self.last_iterations = 0

    # -- assembly ---------------------------------------------------------------------
    def _conductances(self, sigma: np.ndarray):
        h = self.h
        out = []
        for a, ax in enumerate(self._axes):
            lo, hi = _sl(a, _LO), _sl(a, _HI)
            s1 = sigma[lo][ax["ff"]]
            s2 = sigma[hi][ax["ff"]]
            g_ff = 2.0 * h * s1 * s2 / (s1 + s2)
            g_fe = h * sigma[lo][ax["fe"]] / ax["fe_theta"]
            g_ef = h * sigma[hi][ax["ef"]] / ax["ef_theta"]
            out.append((g_ff, g_fe, g_ef))
        g_b = [2.0 * h * sigma[f["slice"]][f["mask"]] for f in self._faces]
        return out, g_b

    def _diagonal(self, sigma: np.ndarray):
        """Link conductances, diagonal and right-hand side over the unknowns."""
        sigma = np.asarray(sigma, dtype=np.float64)
        if sigma.shape != self.shape:
            raise ValueError(f"sigma has shape {sigma.shape}, expected {self.shape}")
        n = self.n_free
        g, g_b = self._conductances(sigma)
        V = self.voltages
        diag = np.zeros(n)
        rhs = np.zeros(n)
        for ax, (g_ff, g_fe, g_ef) in zip(self._axes, g, strict=True):
            diag += np.bincount(ax["ff_lo"], g_ff, n) + np.bincount(ax["ff_hi"], g_ff, n)
            diag += np.bincount(ax["fe_row"], g_fe, n) + np.bincount(ax["ef_row"], g_ef, n)
            rhs += np.bincount(ax["fe_row"], g_fe * V[ax["fe_k"]], n)
            rhs += np.bincount(ax["ef_row"], g_ef * V[ax["ef_k"]], n)
        for f, gb in zip(self._faces, g_b, strict=True):
            diag += np.bincount(f["row"], gb, n)
            rhs += np.bincount(f["row"], gb * f["value"], n)
        return g, diag, rhs

    def _csr_pattern(self):
        """(value permutation, indices, indptr) of the CSR matrix: off-diagonals of the
        tissue-tissue links, then the diagonal. Built once, at the first :meth:`assemble`
        (a solve never needs it)."""
        if self._csr is None:
            rows = [ax["ff_lo"] for ax in self._axes] + [ax["ff_hi"] for ax in self._axes]
            cols = [ax["ff_hi"] for ax in self._axes] + [ax["ff_lo"] for ax in self._axes]
            diag = np.arange(self.n_free, dtype=np.int64)
            rows = np.concatenate([*rows, diag])
            cols = np.concatenate([*cols, diag])
            pos = np.arange(rows.size, dtype=np.float64)
            m = sp.csr_matrix((pos, (rows, cols)), shape=(self.n_free, self.n_free))
            m.sort_indices()
            self._csr = (m.data.astype(np.int64), m.indices, m.indptr)
        return self._csr

    def assemble(self, sigma: np.ndarray):
        """The matrix (CSR, SPD) and right-hand side for conductivity ``sigma`` [S/m] over
        the unknowns (``V[self.free]``): the reference for the grid-form operator that
        :meth:`solve` uses."""
        g, diag, rhs = self._diagonal(sigma)
        n = self.n_free
        off = [-gg[0] for gg in g]
        vals = np.concatenate([*off, *off, diag])
        perm, indices, indptr = self._csr_pattern()
        A = sp.csr_matrix((vals[perm], indices, indptr), shape=(n, n))
        return A, rhs

    # -- solve ------------------------------------------------------------------------
    def solve(self, sigma: np.ndarray, *, tol: float = 1e-8, maxiter: int = 500) -> np.ndarray:
        """The potential [V] on the grid (electrodes at their potential, insulators 0).

        Warm-starts from the previous solution. ``tol``: the residual is reduced to
        ``tol`` times its starting value (|b| from zero; :func:`~ablasim.solvers.
        multigrid.stopping_residual`). The geometric multigrid hierarchy is rebuilt from σ
        at every solve (cheap).
        """
        V = self._solve_mg(sigma, tol, maxiter)
        self.solves += 1
        for at, v in zip(self._electrode_at, self.voltages, strict=True):
            V.reshape(-1)[at] = v
        return V

    def warm_start(self) -> np.ndarray | None:
        """The solution the next solve starts from (None before the first solve): part
        of a checkpoint, so a resumed run solves exactly as an uninterrupted one."""
        return None if self._mg is None else self._xpad.copy()

    def set_warm_start(self, x: np.ndarray | None) -> None:
        """Continue from :meth:`warm_start`'s value."""
        if x is None:
            return
        if self._mg is None:
            self._mg_setup()
        self._xpad[...] = x

    def _fail(self, it: int):
        raise SimulationError(
            f"the electric potential solve did not converge in {it} iterations; "
            "check the tissue conductivities"
        )

    def _mg_setup(self) -> None:
        """Grid-form data of the multigrid path, built at the first solve."""
        from .multigrid import MultigridSolver

        self._mg = MultigridSolver(self.shape)
        padded = self._mg.fine.D.shape
        pad_of = np.full(self.n_free, -1, dtype=np.int64)  # unknown -> padded flat index
        grid_of = np.flatnonzero(self.free)  # unknown -> unpadded flat index
        pad = np.zeros(padded, dtype=bool)
        pad[1:-1, 1:-1, 1:-1] = self.free
        pad_of[:] = np.flatnonzero(pad)
        self._free_u8 = self.free.astype(np.uint8)
        # Dirichlet links (to electrodes and grounded faces): short lists
        rows, ks, inv_theta = [], [], []
        for ax in self._axes:
            for part in ("fe", "ef"):
                rows.append(ax[f"{part}_row"])
                ks.append(ax[f"{part}_k"])
                inv_theta.append(1.0 / ax[f"{part}_theta"])
        self._d_row = np.concatenate(rows)
        self._d_pad = pad_of[self._d_row]
        self._d_grid = grid_of[self._d_row]
        self._d_k = np.concatenate(ks)
        self._d_factor = self.h * np.concatenate(inv_theta)  # g = factor * sigma
        f_rows = [f["row"] for f in self._faces]
        self._b_row = np.concatenate(f_rows) if f_rows else np.empty(0, dtype=np.int64)
        self._b_pad = pad_of[self._b_row]
        self._b_grid = grid_of[self._b_row]
        vals = [f["value"] for f in self._faces]
        self._b_value = np.concatenate(vals) if vals else np.empty(0)
        self._rhs_at = np.concatenate([self._d_pad, self._b_pad])  # where b can be != 0
        self._xpad = np.zeros(padded)
        self._bpad = np.zeros(padded)

    def _mg_operator(self, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fill the finest level (links, diagonal, right-hand side) from ``sigma``;
        returns the Dirichlet-link and face conductances [S]."""
        from .multigrid import tissue_links

        if self._mg is None:
            self._mg_setup()
        fine = self._mg.fine
        sflat = sigma.reshape(-1)
        tissue_links(sigma, self._free_u8, self.h, fine.D, fine.gx, fine.gy, fine.gz)
        g_d = self._d_factor * sflat[self._d_grid]
        g_b = 2.0 * self.h * sflat[self._b_grid]
        D = fine.D.reshape(-1)
        np.add.at(D, self._d_pad, g_d)
        np.add.at(D, self._b_pad, g_b)
        b = self._bpad.reshape(-1)
        b[self._rhs_at] = 0.0
        np.add.at(b, self._d_pad, g_d * self.voltages[self._d_k])
        np.add.at(b, self._b_pad, g_b * self._b_value)
        return g_d, g_b

    def _solve_mg(self, sigma, tol, maxiter) -> np.ndarray:
        sigma = np.ascontiguousarray(sigma, dtype=np.float64)
        if sigma.shape != self.shape:
            raise ValueError(f"sigma has shape {sigma.shape}, expected {self.shape}")
        self._mg_last = self._mg_operator(sigma)
        mg = self._mg
        mg.set_operator(single=tol >= 1e-6)
        it, ok = mg.solve(self._bpad, self._xpad, tol=tol, maxiter=maxiter)
        if not ok or not np.all(np.isfinite(self._xpad)):
            self._xpad[...] = 0.0
            self._fail(it)
        self.last_iterations = it
        return self._xpad[1:-1, 1:-1, 1:-1].copy()

    def solve_heating(self, sigma: np.ndarray, *, tol: float = 1e-8):
        """Solve, then the Joule heat and electrode currents of that solution.

        Returns ``(V, Q, I)``: potential [V], power density [W/m^3] (as
        :meth:`joule_heating`) and the current leaving each electrode [A] (as
        :meth:`currents`, the NumPy references). It reuses the link conductances of the
        solve (compiled, one pass) instead of recomputing them.
        """
        V = self.solve(sigma, tol=tol)
        from .multigrid import link_dissipation

        fine = self._mg.fine
        g_d, g_b = self._mg_last
        q = np.empty(self.shape)
        link_dissipation(self._xpad, fine.gx, fine.gy, fine.gz, q)
        qf = q.reshape(-1)
        xin = self._xpad.reshape(-1)
        dv = xin[self._d_pad] - self.voltages[self._d_k]
        np.add.at(qf, self._d_grid, g_d * dv * dv)
        dvb = xin[self._b_pad] - self._b_value
        np.add.at(qf, self._b_grid, g_b * dvb * dvb)
        q /= self.h**3
        cur = np.bincount(self._d_k, -g_d * dv, self.voltages.size)
        return V, q, cur

    # -- post-processing ----------------------------------------------------------------
    def joule_heating(self, sigma: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Power density [W/m^3] consistent with the discrete currents (see module doc)."""
        sigma = np.asarray(sigma, dtype=np.float64)
        n = self.n_free
        g, g_b = self._conductances(sigma)
        Vk = self.voltages
        q = np.zeros(n)
        for a, (ax, (g_ff, g_fe, g_ef)) in enumerate(zip(self._axes, g, strict=True)):
            lo, hi = _sl(a, _LO), _sl(a, _HI)
            dv = V[lo][ax["ff"]] - V[hi][ax["ff"]]
            p = 0.5 * g_ff * dv * dv
            q += np.bincount(ax["ff_lo"], p, n) + np.bincount(ax["ff_hi"], p, n)
            dv = V[lo][ax["fe"]] - Vk[ax["fe_k"]]
            q += np.bincount(ax["fe_row"], g_fe * dv * dv, n)
            dv = V[hi][ax["ef"]] - Vk[ax["ef_k"]]
            q += np.bincount(ax["ef_row"], g_ef * dv * dv, n)
        for f, gb in zip(self._faces, g_b, strict=True):
            dv = V[f["slice"]][f["mask"]] - f["value"]
            q += np.bincount(f["row"], gb * dv * dv, n)
        Q = np.zeros(self.shape)
        Q[self.free] = q / self.h**3
        return Q

    def currents(self, sigma: np.ndarray, V: np.ndarray) -> np.ndarray:
        """Current leaving each electrode into the tissue [A] (one entry per electrode)."""
        sigma = np.asarray(sigma, dtype=np.float64)
        g, _ = self._conductances(sigma)
        Vk = self.voltages
        m = Vk.size
        cur = np.zeros(m)
        for a, (ax, (_, g_fe, g_ef)) in enumerate(zip(self._axes, g, strict=True)):
            lo, hi = _sl(a, _LO), _sl(a, _HI)
            cur += np.bincount(ax["fe_k"], g_fe * (Vk[ax["fe_k"]] - V[lo][ax["fe"]]), m)
            cur += np.bincount(ax["ef_k"], g_ef * (Vk[ax["ef_k"]] - V[hi][ax["ef"]]), m)
        return cur

    def boundary_power(self, sigma: np.ndarray, V: np.ndarray) -> float:
        """Σ V_b I_b over the grounded faces [W] (I_b: current leaving through the face);
        zero when every grounded face is at 0 V."""
        _, g_b = self._conductances(np.asarray(sigma, dtype=np.float64))
        total = 0.0
        for f, gb in zip(self._faces, g_b, strict=True):
            total += float(np.sum(f["value"] * gb * (V[f["slice"]][f["mask"]] - f["value"])))
        return total


def _theta(phi_free, phi_in, theta_min):
    """Fraction of a link from the tissue node to the surface, by linear interpolation of
    the signed distance (Gibou et al. 2002)."""
    pf = np.maximum(phi_free, 0.0)
    pe = np.minimum(phi_in, 0.0)
    den = pf - pe
    with np.errstate(divide="ignore", invalid="ignore"):
        th = np.where(den > 0, pf / np.where(den > 0, den, 1.0), 1.0)
    return np.clip(th, theta_min, 1.0)
