"""An RF source bound to a model: electrodes, potential, generator and their re-solves.

:class:`BoundRF` joins the probes' voxels (:mod:`.electrodes`), the potential system
(:class:`~ablasim.solvers.potential.PotentialSystem`, over the whole grid, or for a
bipolar probe a box around its electrodes) and the generator (:mod:`.generator`). Its
heating is the generator's power times the heating per watt of the last potential solve.
The potential is re-solved when σ(T) has drifted by more than ``resolve_tolerance`` since
the last solve, at most every ``min_resolve_interval_s``; between solves the heating keeps
its shape, scaled to the commanded power.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import ScenarioError
from ...reader import raise_problems
from ...sensors import trilinear_weights
from ...solvers import jit, prange
from ...solvers.potential import (
    SIGMA_VAP_FRACTION,
    PotentialSystem,
    conductivity_factor,
    max_relative_change,
    weighted_relative_change,
)
from ..base import HeldTemperature, ScaledBoundSource, Source, needle_problems
from .electrodes import place_electrodes
from .generator import Generator

if TYPE_CHECKING:
    from ...model import Model

__all__ = ["BoundRF"]

#: Whether this process has run the RF kernels once (see :meth:`BoundRF._solve`).
_kernels_ready = False


@jit
def _add_scaled(Q, a, q):  # pragma: no cover - compiled
    nx, ny, nz = Q.shape
    for i in prange(nx):
        for j in range(ny):
            for k in range(nz):
                Q[i, j, k] += a * q[i, j, k]


class BoundRF(ScaledBoundSource):
    """An :class:`~ablasim.sources.rf.RFSource` bound to a model (see
    :mod:`ablasim.sources.base`): its heating is the generator's power times the last
    potential solve's heating per watt (``scaled``).

    ``src`` is the :class:`~ablasim.sources.rf.RFSource` (annotated as its base class:
    the module that defines it imports this one). Attributes the tests and benchmarks
    read: ``system`` (the potential system), ``box`` (the index slices it covers),
    ``kind`` (the electrodes' voxel kinds on the grid), ``G`` (the conductance at 1 V of
    the last solve [S]), ``q_unit`` (its heating per watt in the box [1/m^3]) and
    ``unit_heating`` (the same on the grid, zero outside the box).
    """

    scaled = True

    def __init__(self, src: Source, model: Model):
        raise_problems(needle_problems(src.needles(), model), f"source {src.name!r}")
        self.src = src
        self.name = src.name
        grid = model.grid
        h = grid.spacing
        n = f"source {src.name!r}"
        electrodes = place_electrodes(
            model, src.segments(), diameter=src.diameter, cooled=src.cooled, where=n
        )
        kind = electrodes.kind
        # a bipolar probe's current stays near it: solve in a box around the electrodes
        box = (slice(None),) * 3
        if src.mode == "bipolar" and src.potential_margin is not None:
            box = electrodes.box(src.potential_margin / h)
        self.box = box
        try:
            self.system = PotentialSystem(
                kind[box],
                [1.0, 0.0] if src.mode == "bipolar" else [1.0],
                h,
                level=electrodes.level[box],
                ground=None if src.mode == "bipolar" else src.ground,
            )
        except ValueError as exc:
            raise ScenarioError(
                f"{n}: {exc}; increase the gap or refine the grid spacing"
            ) from None
        self.h = h
        self.sigma0 = np.ascontiguousarray(model.field("electrical_conductivity_S_m")[box])
        if np.any(self.sigma0[kind[box] == 0] <= 0):
            raise ScenarioError(f"{n}: a tissue has electrical conductivity <= 0")
        self.coeff = np.ascontiguousarray(model.field("electrical_conductivity_coeff_per_K")[box])
        sub = self.sigma0.shape
        self.sigma = np.empty(sub)
        self.T_ref = np.zeros(sub)
        # heating per watt at the last solve [1/m^3], on the grid (zero outside the box,
        # see advance()) and as a view of the box
        self.unit_heating = np.zeros(grid.shape)
        self.q_unit = self.unit_heating[box]
        self.G = math.nan  # conductance at 1 V [S] = 1/impedance
        self.kind = kind
        held = np.flatnonzero(electrodes.cooled)
        self._held = (
            HeldTemperature(held, np.full(held.size, src.coolant_C)) if src.cooled else None
        )
        off = src.sensor_offset
        if off is None:
            off = 1e-3 if src.cooled else 0.0
        self.sensors = []
        for p, (tip, u) in enumerate(src.probes()):
            pt = tip + off * u
            idx, w = trilinear_weights(grid, pt, name=f"{n} probe {p + 1} sensor")
            self.sensors.append((tuple(idx.T), w))
        self.body_C = model.tissues.blood.temperature_C
        self.generator = Generator(
            control=src.control,
            power_W=src.power_W,
            target_C=src.target_C,
            max_power_W=src.max_power_W,
            max_voltage_V=src.max_voltage_V,
            kp_W_per_K=src.kp_W_per_K,
            ki_W_per_K_s=src.ki_W_per_K_s,
            impedance_cutoff_ohm=src.impedance_cutoff_ohm,
            impedance_rise=src.impedance_rise,
            pause_s=src.pause_s,
        )
        self._t_last = None  # time of the last advance() [s]
        self._t_solve = -math.inf  # time of the last potential solve [s]
        self._tip = math.nan  # hottest probe sensor at the last advance() [°C]
        self.solve_seconds = 0.0
        #: Loading (or, on a fresh machine, compiling) the kernels before the first
        #: solve [s]: not part of ``solve_seconds``.
        self.compile_seconds = 0.0

    # -- protocol -------------------------------------------------------------------------
    def held(self, t: float) -> HeldTemperature | None:
        return self._held

    def deposit(self, Q: np.ndarray, T: np.ndarray, t: float) -> float:
        p = self.advance(T, t)
        if p > 0:
            _add_scaled(Q[self.box], p, self.q_unit)
        return p

    def advance(self, T: np.ndarray, t: float) -> float:
        """The generator at time ``t``: re-solve the potential if due, then the control
        and pauses; returns the power [W], whose heating is ``power * unit_heating``
        (see :mod:`ablasim.sources.base`)."""
        src = self.src
        dt = 0.0 if self._t_last is None else max(t - self._t_last, 0.0)
        due = t - self._t_solve >= src.min_resolve_interval_s
        if self._t_last is None or (due and self._drift(T) > src.resolve_tolerance):
            self._solve(T)
            self._t_solve = t
        self._t_last = t
        self._tip = self.tip_temperature(T)
        return self.generator.power_at(t, dt=dt, conductance=self.G, sensor_C=self._tip)

    def state(self) -> dict[str, Any]:
        """The generator's state and the last potential solve (its heating per watt, the
        temperatures it was made at), so a resumed run continues without a new solve."""
        return {
            "t_last": self._t_last,
            "t_solve": self._t_solve,
            **self.generator.state(),
            "solves": self.system.solves,
            "G": self.G,
            "q_unit": self.q_unit.copy(),
            "T_ref": self.T_ref.copy(),
            **({} if (x := self.system.warm_start()) is None else {"warm_start": x}),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state` exactly where it was."""
        self._t_last = state["t_last"]
        self._t_solve = float(state["t_solve"])
        self.generator.restore(state)
        self.system.solves = int(state["solves"])
        self.G = float(state["G"])
        self.q_unit[...] = state["q_unit"]
        self.q_share = self.q_unit * self.h**3
        self.T_ref[...] = state["T_ref"]
        self.system.set_warm_start(state.get("warm_start"))

    def telemetry(self) -> dict[str, float]:
        """Delivered power [W], voltage [V], impedance [Ω], probe sensor [°C], solves."""
        g = self.G
        power = self.generator.power
        return {
            "power_W": power,
            "voltage_V": math.sqrt(power / g) if g > 0 else 0.0,
            "impedance_ohm": 1.0 / g if g > 0 else math.inf,
            "tip_C": self._tip,
            "solves": float(self.system.solves),
        }

    def timing(self) -> dict[str, Any]:
        """Time spent in potential solves (see :mod:`ablasim.sources.base`), and apart
        from it (``compile_s``) the kernels' first load or compilation in this process."""
        return {
            "what": "potential solves",
            "count": self.system.solves,
            "seconds": self.solve_seconds,
            "compile_s": self.compile_seconds,
        }

    def events(self) -> list[dict[str, Any]]:
        """One ``generator_pause`` per impedance cut-off (see :mod:`.generator`)."""
        return self.generator.events(self.name)

    # -- the potential ----------------------------------------------------------------------
    def tip_temperature(self, T: np.ndarray) -> float:
        """Hottest probe sensor [°C] (trilinear at the tip, or beyond it for cooled tips)."""
        return max(float(T[idx] @ w) for idx, w in self.sensors)

    def _solve(self, T: np.ndarray) -> None:
        global _kernels_ready
        if not _kernels_ready:
            # the first call of a kernel in a process loads it from numba's cache, or
            # compiles it (tens of seconds on a fresh machine): run them once on a small
            # model so that neither counts as a potential solve
            _kernels_ready = True
            t0 = time.perf_counter()
            type(self.src).compile_ahead()
            self.compile_seconds += time.perf_counter() - t0
        t0 = time.perf_counter()
        self._solve_now(T)
        self.solve_seconds += time.perf_counter() - t0

    def _solve_now(self, T: np.ndarray) -> None:
        Tb = T[self.box]
        conductivity_factor(Tb, self.coeff, self.sigma, vap_fraction=SIGMA_VAP_FRACTION)
        self.sigma *= self.sigma0
        # tol: each solve reduces its own starting residual by this factor (from zero,
        # |b|; multigrid.stopping_residual). A residual of r moves about 2.4 r of the
        # heating (L1) and changes the conductance by < 0.02 r (measured on vertebra-rf,
        # benchmarks/README.md), so 1/5 of the re-solve tolerance (at most 1e-2) keeps the
        # heating error about half the drift allowed between solves, and the conductance
        # error far below it.
        tol = min(1e-2, self.src.resolve_tolerance / 5.0)
        _, q, cur = self.system.solve_heating(self.sigma, tol=tol)
        self.G = float(cur[0])
        self.q_unit[...] = q / (q.sum() * self.h**3)
        self.q_share = self.q_unit * self.h**3  # power share of each voxel (sums to 1)
        self.T_ref[...] = Tb

    def _drift(self, T: np.ndarray) -> float:
        """Relative drift of the conductance since the last solve (power-weighted σ
        change), or the max σ change when ``resolve_on = "max"``."""
        Tb = T[self.box]
        if self.src.resolve_on == "max":
            return max_relative_change(Tb, self.T_ref, self.coeff)
        return weighted_relative_change(Tb, self.T_ref, self.coeff, self.q_share)
