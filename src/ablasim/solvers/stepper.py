"""The time step of one run: the fused Pennes-and-damage kernel and all it works on.

A :class:`Stepper` is made once per run from the temperature, perfusion and damage
accumulators and the tissues' property fields (:class:`Materials`), and applied every
step (:meth:`Stepper.step`): the kernel (:func:`~.fused.pennes_damage_step`) writes the
new temperatures into the second buffer and accumulates each row's damage; the buffers
swap; voxels held at a temperature (:meth:`Stepper.hold`) are set and their damage
redone at the held value (:func:`~.fused.save_voxels` before, :func:`~.fused.redo_damage`
after); the ghost layer is refilled when it depends on the interior. The heating is
``Q`` plus, optionally, one source's map per watt ``P`` times its power, formed inside
the kernel.

:func:`warm_up` loads (or compiles) every kernel a step calls, on a tiny grid, with the
argument types a simulation passes (``ablasim compile`` and every simulation call it
first).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .boundary import Boundary, fill_ghosts, fill_ghosts_copy
from .fused import accumulate_damage, pennes_damage_step, redo_damage, row_bounds, save_voxels
from .isotherms import isotherm_stats
from .pennes import enthalpy_numpy, frozen_conductivity
from .superstep import rkl2_coefficients, rkl2_stage

__all__ = ["Materials", "Stepper", "padded_index", "warm_up"]


@dataclass(frozen=True)
class Materials:
    """What the step reads of the tissues.

    Attributes
    ----------
    k : ndarray, padded
        Conductivity [W/m/K], ghost layer a copy of the interior.
    inv_rhoc : ndarray
        1 / (rho c) [m^3 K/J], interior shape.
    labels : ndarray of uint8
        Row of the per-label tables for each voxel, interior shape.
    phase : ndarray, shape (n_labels, 8)
        Phase-change table (:data:`~ablasim.solvers.PHASE_COLUMNS`).
    ln_a, ea_over_r : ndarray, shape (n_labels,)
        Arrhenius ln A [ln(1/s)] (-inf: no Arrhenius damage) and E_a / R [K].
    """

    k: np.ndarray
    inv_rhoc: np.ndarray
    labels: np.ndarray
    phase: np.ndarray
    ln_a: np.ndarray
    ea_over_r: np.ndarray

    @property
    def liquidus_C(self) -> float:
        """The highest temperature at which any tissue starts to freeze [°C]."""
        return float(self.phase[:, 4].max())


def padded_index(flat_interior: np.ndarray, shape) -> np.ndarray:
    """Flat indices in the padded array (one ghost layer) of flat interior indices."""
    i, j, k = np.unravel_index(np.asarray(flat_interior, dtype=np.int64), shape)
    return np.ravel_multi_index((i + 1, j + 1, k + 1), tuple(n + 2 for n in shape))


_NO_INDEX = np.empty(0, dtype=np.int64)


def _kernel_heating(Q, P, power: float):
    """(Q, q_scale, P, p_scale) for the kernels, which form ``q_scale Q + p_scale P``:
    ``Q`` alone, ``power * P`` alone (one array read), or both."""
    if P is None:
        return Q, 1.0, Q, 0.0
    if Q is None:
        return P, 0.0, P, float(power)
    return Q, 1.0, P, float(power)


class Stepper:
    """The fused enthalpy-Pennes-and-damage step of a run, applied every step.

    Parameters
    ----------
    T : ndarray, padded
        Temperature [°C]; becomes one of the two buffers (read :attr:`T` after a step).
    W : ndarray
        Perfusion coefficient [W/m^3/K], interior shape; set to zero where perfusion
        shuts down (updated in place).
    damage : object with ``t_max, t_min, cem43, omega`` arrays
        The accumulators (:class:`ablasim.damage.DamageFields`), updated in place.
    materials : Materials
    boundary : Boundary
        The outer faces; a ghost layer that holds fixed values is written once.
    spacing : float
        Voxel spacing [m].
    blood_C : float
        Arterial blood temperature [°C].
    shutdown : (float, float, float)
        Omega, hot and frozen temperature [°C] at which perfusion stops for good
        (inf, inf, -inf: never).
    floor : float
        Doses accrue above this temperature [°C].
    kernel : callable, optional
        The fused kernel (default :func:`~.fused.pennes_damage_step`); a test may pass
        a wrapper. Thread trials always call the default.

    Attributes
    ----------
    kernel_s, damage_s : float
        Wall time in the fused kernel, and in the held voxels' damage bookkeeping [s].
    held_heat_J : float
        Heat taken out of the grid by the held voxels in the last step [J] (what the
        step put into them minus their held value's enthalpy; negative when they heat).

    With ``phase_change`` (something may freeze), the conductivity follows each
    voxel's frozen fraction (:func:`~.pennes.frozen_conductivity`), refreshed before
    every step or stage from the temperature it reads; the stepper keeps its own copy
    of the conductivity for that.
    """

    def __init__(
        self,
        T: np.ndarray,
        W: np.ndarray,
        damage,
        *,
        materials: Materials,
        boundary: Boundary,
        spacing: float,
        blood_C: float,
        shutdown: tuple[float, float],
        floor: float,
        kernel: Callable | None = None,
    ):
        self.T = T
        self.W = W
        self.t_max = damage.t_max
        self.t_min = damage.t_min
        self.cem43 = damage.cem43
        self.omega = damage.omega
        self.materials = materials
        self.spacing = float(spacing)
        self.blood_C = float(blood_C)
        self.shutdown_omega = float(shutdown[0])
        self.shutdown_C = float(shutdown[1])
        self.shutdown_cold_C = float(shutdown[2]) if len(shutdown) > 2 else -math.inf
        self.floor = float(floor)
        self._kernel = pennes_damage_step if kernel is None else kernel
        self._faces = boundary.as_arrays()
        self._fixed_ghosts = boundary.fixed_ghosts
        self._k = materials.k.copy()  # follows the frozen fraction (phase_change)
        self._krows = np.ones(self.t_max.shape[:2], dtype=np.bool_)
        # each z-row's lowest temperature when known (after a super step), else NaN
        self._rowmin = np.full(self.t_max.shape[:2], np.nan)
        self._L0: np.ndarray | None = None  # a super step's first right-hand side
        self._spares: list[np.ndarray] = []  # a super step's stage buffers
        self.held_heat_J = 0.0
        # per-row bounds of the extremes, kept valid by the kernels (fused.damage_row)
        self.lo_max, self.hi_min = row_bounds(self.t_max, self.t_min)
        self.refresh_ghosts()
        self._out = T.copy()  # the second buffer, with the same (fixed) ghosts
        # the held voxels: padded flat indices and values (later entries win), and the
        # distinct voxels (interior i, j, m) whose damage is redone after the hold
        self._held_index: np.ndarray | None = None
        self._pidx = _NO_INDEX
        self._pval = np.empty(0)
        self._vi = self._vj = self._vm = _NO_INDEX
        self._upidx = self._uidx = _NO_INDEX  # the distinct held voxels, padded / interior
        self._hrow = _NO_INDEX
        self._saved = np.empty((5, 0))
        self._last: tuple | None = None
        self.kernel_s = 0.0
        self.damage_s = 0.0

    @property
    def conductivity(self) -> np.ndarray:
        """The conductivity the step uses [W/m/K], padded: the materials' own, or with
        ``phase_change`` following each voxel's frozen fraction (updated in place)."""
        return self._k

    # -- changes between steps ------------------------------------------------------
    def refresh_ghosts(self) -> None:
        """Refill the ghost layer of :attr:`T` from its interior (after :attr:`T`
        changed: the rows' lowest temperatures are no longer known)."""
        self._rowmin.fill(np.nan)
        self._ghosts(self.T)

    def _ghosts(self, T: np.ndarray) -> None:
        kinds, values, hcoefs = self._faces
        fill_ghosts(T, self._k, kinds, values, hcoefs, self.spacing)

    def set_materials(self, materials: Materials) -> None:
        """Step with other property fields from now on (a change of material)."""
        self.materials = materials
        self._k = materials.k.copy()
        self._krows[...] = True  # recompute every row's frozen conductivity
        self.refresh_ghosts()

    def _follow_freezing(self, T: np.ndarray) -> None:
        """The conductivity from the frozen fraction at ``T`` (padded)."""
        m = self.materials
        frozen_conductivity(T, m.labels, m.phase, self._k, self._krows, self._rowmin)
        fill_ghosts_copy(self._k)

    def _held_heat(self, before: np.ndarray, T: np.ndarray) -> float:
        """Heat [J] the hold just took out: enthalpy of the held voxels at ``before``
        (their temperatures before the hold) minus at the held values now in ``T``."""
        m = self.materials
        rows = m.phase[m.labels.reshape(-1)[self._uidx], :8].T
        after = T.reshape(-1)[self._upidx]
        dh = enthalpy_numpy(before, *rows) - enthalpy_numpy(after, *rows)
        return float(dh.sum()) * self.spacing**3

    def set_temperature(self, index: np.ndarray, temperature_C) -> None:
        """Set voxels (flat interior ``index``) to ``temperature_C`` now; it counts in
        their extremes (t_max, t_min), as the initial temperature does."""
        idx = np.asarray(index, dtype=np.int64)
        self.T.reshape(-1)[padded_index(idx, self.t_max.shape)] = temperature_C
        tmax, tmin = self.t_max.reshape(-1), self.t_min.reshape(-1)
        tmax[idx] = np.maximum(tmax[idx], temperature_C)
        tmin[idx] = np.minimum(tmin[idx], temperature_C)
        # the row bounds stay bounds: t_max only rose, t_min only fell
        self.refresh_ghosts()

    def hold(self, index: np.ndarray, temperature_C: np.ndarray) -> None:
        """Hold voxels (flat interior ``index``; a voxel listed twice takes the later
        value) at ``temperature_C`` after every step from now on; empty: none.

        Passing the same ``index`` array as last time only changes the values (no
        re-indexing). Does not change :attr:`T` now: :meth:`clamp` does.
        """
        self._pval = np.asarray(temperature_C, dtype=float)
        if index is self._held_index:
            return
        self._held_index = index
        self._pidx = padded_index(index, self.t_max.shape)
        self._upidx = np.unique(self._pidx)
        pi, pj, _ = np.unravel_index(self._pidx, self.T.shape)
        self._hrow = (pi - 1) * self.t_max.shape[1] + (pj - 1)  # each held voxel's z-row
        self._vi, self._vj, self._vm = (
            np.ascontiguousarray(a - 1) for a in np.unravel_index(self._upidx, self.T.shape)
        )
        self._uidx = np.ravel_multi_index((self._vi, self._vj, self._vm), self.t_max.shape)
        self._saved = np.empty((5, self._vi.size))

    def clamp(self) -> float:
        """Set the held voxels of :attr:`T` to their temperatures now; the heat that
        took out of the grid [J] (negative when they warm)."""
        if not self._pidx.size:
            return 0.0
        before = self.T.reshape(-1)[self._upidx]
        self.T.reshape(-1)[self._pidx] = self._pval
        heat = self._held_heat(before, self.T)
        # the rows' minima stay bounds from below where they are known
        with np.errstate(invalid="ignore"):  # an unknown (NaN) minimum stays unknown
            np.minimum.at(self._rowmin.reshape(-1), self._hrow, self._pval)
        if not self._fixed_ghosts:
            self._ghosts(self.T)
        return heat

    # -- the step -------------------------------------------------------------------
    def step(
        self,
        dt: float,
        Q: np.ndarray | None,
        P: np.ndarray | None = None,
        power: float = 0.0,
        *,
        phase_change: bool = False,
    ) -> tuple[float, float, bool]:
        """One step of ``dt`` [s] with heating ``Q + power * P`` [W/m^3].

        ``Q`` (interior shape; None: no heating besides ``power * P``) and ``P``, one
        source's heating per watt (None: none). ``phase_change``: step the enthalpy with
        latent heat everywhere (else only in rows that boil). Returns the new
        temperature's maximum and minimum before the hold [°C], and whether all of it
        is finite.
        """
        Q, q_scale, P, p_scale = _kernel_heating(Q, P, power)
        m = self.materials
        self._last = (float(dt), Q, q_scale, P, p_scale, bool(phase_change))
        self.held_heat_J = 0.0
        c0 = time.perf_counter()
        self._rowmin.fill(np.nan)  # the rows' minima are not known after an explicit step
        if phase_change:
            self._follow_freezing(self.T)
        held = self._vi.size > 0
        if held:
            save_voxels(
                self._vi, self._vj, self._vm, self.t_max, self.t_min, self.cem43, self.omega,
                self.W, self._saved,
            )  # fmt: skip
        c1 = time.perf_counter()
        tmax, tmin, finite = self._kernel(
            self.T, self._k, m.inv_rhoc, self.W, Q, self.blood_C, float(dt), self.spacing,
            self._out, m.labels, m.phase, bool(phase_change), m.ln_a, m.ea_over_r,
            self.t_max, self.t_min, self.cem43, self.omega, self.shutdown_omega,
            self.shutdown_C, self.shutdown_cold_C, self.floor, q_scale, P, p_scale,
            self.lo_max, self.hi_min,
        )  # fmt: skip
        c2 = time.perf_counter()
        self.T, self._out = self._out, self.T
        if held:
            before = self.T.reshape(-1)[self._upidx]
            self.T.reshape(-1)[self._pidx] = self._pval
            self.held_heat_J = self._held_heat(before, self.T)
        if not self._fixed_ghosts:
            self.refresh_ghosts()
        c3 = time.perf_counter()
        if held:
            redo_damage(
                self.T, self._vi, self._vj, self._vm, self._saved, float(dt), m.labels,
                m.ln_a, m.ea_over_r, self.t_max, self.t_min, self.cem43, self.omega, self.W,
                self.shutdown_omega, self.shutdown_C, self.shutdown_cold_C, self.floor,
                self.lo_max, self.hi_min,
            )  # fmt: skip
        self.damage_s += (c1 - c0) + (time.perf_counter() - c3)
        self.kernel_s += c2 - c1
        return tmax, tmin, finite

    def super_step(
        self,
        tau: float,
        stages: int,
        Q: np.ndarray | None,
        P: np.ndarray | None = None,
        power: float = 0.0,
    ) -> tuple[float, float, bool]:
        """One RKL2 super step of ``tau`` [s] in ``stages`` stages (:mod:`.superstep`),
        with the enthalpy update (latent heat) everywhere and the conductivity following
        the frozen fraction; then the held voxels and one step's damage at the end.
        Arguments and return value as :meth:`step`."""
        Q, q_scale, P, p_scale = _kernel_heating(Q, P, power)
        m = self.materials
        tau = float(tau)
        self._last = (tau / stages, Q, q_scale, P, p_scale, True)
        c0 = time.perf_counter()
        if self._L0 is None:
            self._L0 = np.empty(self.t_max.shape)
            self._spares = [self._out, self.T.copy(), self.T.copy()]
        mu, nu, mut, gt = rkl2_coefficients(stages)
        held = self._upidx.size > 0
        # the held values apply from the step's start (a wall that follows a table moved
        # since the last step): every stage then sees the same wall
        set_now = self.clamp()
        y0 = y1 = y2 = self.T
        free = [b for b in (*self._spares, self._out) if b is not y0]
        free = list({id(b): b for b in free}.values())
        drawn = [0.0, 0.0]  # the held heat's recurrence: stages j-2, j-1
        for j in range(1, stages + 1):
            out = next(b for b in free if b is not y1 and b is not y2)
            self._follow_freezing(y1)
            tmax, tmin, finite = rkl2_stage(
                y1, y2, y0, self._L0, self._k, m.inv_rhoc, self.W, Q, q_scale, P, p_scale,
                self.blood_C,
                self.spacing, m.labels, m.phase, mu[j], nu[j], mut[j] * tau, gt[j] * tau,
                j == 1, out, self._rowmin,
            )  # fmt: skip
            d = 0.0
            if held:
                before = out.reshape(-1)[self._upidx]
                out.reshape(-1)[self._pidx] = self._pval
                d = self._held_heat(before, out)
                np.minimum.at(self._rowmin.reshape(-1), self._hrow, self._pval)
            drawn = [drawn[1], mu[j] * drawn[1] + nu[j] * drawn[0] + d]
            if not self._fixed_ghosts:
                self._ghosts(out)
            y2, y1 = y1, out
        self.held_heat_J = set_now + drawn[1]
        self._spares = [b for b in (*free, y0) if b is not y1]
        self._out = self._spares[0]
        self.T = y1
        c1 = time.perf_counter()
        accumulate_damage(
            self.T, tau, m.labels, m.ln_a, m.ea_over_r, self.t_max, self.t_min, self.cem43,
            self.omega, self.W, self.shutdown_omega, self.shutdown_C, self.shutdown_cold_C,
            self.floor,
        )  # fmt: skip
        self.kernel_s += c1 - c0
        self.damage_s += time.perf_counter() - c1
        return tmax, tmin, finite

    def trial(self) -> Callable[[], None]:
        """A call that repeats the last step's kernel on scratch copies of everything
        it writes besides the spare temperature buffer: for timing thread counts,
        leaving the run's state as it is."""
        if self._last is None:
            raise RuntimeError("no step to repeat yet")
        dt, Q, q_scale, P, p_scale, phase_change = self._last
        m = self.materials
        W, t_max, t_min, cem43, omega, lo_max, hi_min = (
            a.copy()
            for a in (
                self.W,
                self.t_max,
                self.t_min,
                self.cem43,
                self.omega,
                self.lo_max,
                self.hi_min,
            )
        )

        def run() -> None:
            pennes_damage_step(
                self.T, self._k, m.inv_rhoc, W, Q, self.blood_C, dt, self.spacing, self._out,
                m.labels, m.phase, phase_change, m.ln_a, m.ea_over_r, t_max, t_min, cem43,
                omega, self.shutdown_omega, self.shutdown_C, self.shutdown_cold_C,
                self.floor, q_scale, P, p_scale, lo_max, hi_min,
            )  # fmt: skip

        return run


def warm_up() -> None:
    """Load (or compile) every kernel :class:`Stepper` calls, on a tiny grid, with the
    argument types a simulation passes, so that a run's set-up time includes it."""
    one = np.ones((1, 1, 1))
    # one label's phase table (PHASE_COLUMNS): no latent heat, boiling at 95-100 °C
    phase = np.array([[1e6, 1e6, 0.0, -8.0, -1.0, 0.0, 95.0, 100.0, 1.0, 1.0, 0.0]])
    materials = Materials(
        k=np.ones((3, 3, 3)),
        inv_rhoc=1e-6 * one,
        labels=np.zeros((1, 1, 1), dtype=np.uint8),
        phase=phase,
        ln_a=np.zeros(1),
        ea_over_r=np.zeros(1),
    )

    class _Damage:
        t_max = 37.0 * one
        t_min = 37.0 * one
        cem43 = 0.0 * one
        omega = 0.0 * one

    stepper = Stepper(
        np.full((3, 3, 3), 37.0),
        one.copy(),
        _Damage(),
        materials=materials,
        boundary=Boundary.adiabatic(),
        spacing=1e-3,
        blood_C=37.0,
        shutdown=(math.inf, 60.0, -math.inf),
        floor=39.0,
    )
    stepper.hold(np.zeros(1, dtype=np.int64), np.array([37.0]))
    stepper.clamp()
    stepper.step(1e-3, one, phase_change=False)
    stepper.step(1e-3, one, phase_change=True)  # frozen conductivity
    stepper.super_step(1e-3, 2, one)
    isotherm_stats(stepper.T, (0.0,))  # the iceball's, sampled in runs that freeze
