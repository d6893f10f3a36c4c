"""Bone cement (PMMA) injected into a vertebral body: the heat of its polymerisation.

From the start of its phase the filled voxels (:mod:`.filling`) are cement (library
tissue ``pmma_cement``: its thermal properties, no perfusion, no metabolism, no water) at
the injection temperature, and they cure (:mod:`.kinetics`) for the rest of the run,
phases after its own included (``lasting``): the cement sets whatever the operator does
next. Each step the cure is advanced from the last step's time to this one with the
temperature the heat equation reached, and the heat released over that interval,
``ρ H Δα``, is deposited as a power ``ρ H Δα / Δt`` during the next step: energy is
conserved exactly (the heat deposited is ρH times the conversion reached), at the cost
of a lag of one step (0.1-0.3 s against a cure of minutes; first order in Δt, measured
in ``tests/test_cement.py``).

``mixing_to_injection_min``: the cement cures in the mixing bowl, at the injection
temperature, from the seed conversion, for that long before it is injected (its working
time); the default 0 starts it at the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from ...reader import raise_problems
from ..base import BoundSource, MaterialChange, Source, param
from ..registry import register
from .filling import LEAK_SPACES, fill_classes, grow, leak, leak_spaces
from .kinetics import DEFAULT_KINETICS, KINETICS, cure_isothermal, cure_step, rate

if TYPE_CHECKING:
    from ...model import Model

__all__ = ["CEMENT_STRUCTURE", "CEMENT_TISSUE", "HOT_C", "BoundCement", "CementSource"]

#: The library tissue cement voxels become, and their structure's name.
CEMENT_TISSUE = "pmma_cement"
CEMENT_STRUCTURE = "cement"
#: The report's ``time_above_50C_s`` threshold [°C] (DESIGN: the cement section).
HOT_C = 50.0
#: Tissues counted as the bone at the cement's interface (``interface_peak_temperature_C``).
_INTERFACE_TISSUES = ("cortical_bone", "cancellous_bone", "red_marrow", "yellow_marrow")


def _ml(volume_m3: float) -> float:
    return round(volume_m3 * 1e6, 4)


@register
@dataclass(frozen=True, kw_only=True)
class CementSource(Source):
    """PMMA cement injected at ``center`` [m]: ``volume`` [m^3] placed by filling the
    tumour, then cancellous bone; it cures by ``kinetics`` (a name of
    :data:`~ablasim.sources.cement.kinetics.KINETICS`) from ``injection_C`` [°C], after
    ``mixing_to_injection`` [s] in the bowl. ``leak_into`` (``"canal"``, ``"vein"`` or
    ``"disc"``) with ``leak_volume`` [m^3] (part of ``volume``) sends that much through the
    nearest cortical breach into that space."""

    kind = "cement"
    summary = "PMMA bone cement: its polymerisation heat (cure kinetics) and leaks"
    keys_help = (
        "volume_ml; center_mm (in the tumour or cancellous bone);\n"
        "kinetics = borzacchiello-1 | borzacchiello-2 | li-2003;\n"
        "injection_C (5-40, default 21); mixing_to_injection_min;\n"
        'leak = { into = "canal" | "vein" | "disc", volume_ml = 0.5 }'
    )

    volume: float = param("volume_ml", scale=1e-6, gt=0, hint="; the cement's volume in ml")
    center: tuple[float, float, float] = param("center_mm", kind="vector", scale=1e-3)
    kinetics: str = param("kinetics", DEFAULT_KINETICS, kind="string", choices=tuple(KINETICS))
    injection_C: float = param(
        "injection_C", 21.0, min=5, max=40, hint=" (cement is injected at 5-40 °C)"
    )
    mixing_to_injection: float = param("mixing_to_injection_min", 0.0, scale=60.0, min=0, max=60)
    leak_into: str | None = param("leak.into", None, kind="string", choices=LEAK_SPACES)
    leak_volume: float | None = param("leak.volume_ml", None, scale=1e-6, gt=0)
    name: str = param("name", "cement", kind="string")

    def __post_init__(self) -> None:
        self.check()

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if (self.leak_into is None) != (self.leak_volume is None):
            key = "leak.volume_ml" if self.leak_volume is None else "leak.into"
            out.append((key, "a leak needs both into and volume_ml"))
        if self.leak_volume is not None and self.leak_volume >= self.volume:
            out.append(
                (
                    "leak.volume_ml",
                    f"{self.leak_volume * 1e6:g} ml is not smaller than the cement's "
                    f"volume_ml {self.volume * 1e6:g}: the leak is part of the injected "
                    "cement",
                )
            )
        return out

    # -- what the rest of the package asks ---------------------------------------------
    def location(self, model: Model):
        return self.center

    def assumptions(self) -> list[str]:
        kin = KINETICS[self.kinetics]
        return [
            f"Bone cement: PMMA cure by the autocatalytic Arrhenius law ({kin.source}), "
            "the degree of cure limited by the glass transition (T/378 K, never falling), "
            f"heat of polymerisation {kin.H / 1e3:g} J/g; cement properties as in Quarini "
            "et al. 2006 (rho 1100 kg/m3, c 630 J/kg/K, k 0.17 W/m/K), no perfusion, "
            "no water.",
            "Bone cement: placed as a connected fill from its centre (tumour first, then "
            "cancellous bone, nearest first, never cortex, disc or canal); no flow model, "
            "no cement-bone interdigitation within a voxel; a leak is a straight channel "
            "through the nearest cortex and a pool in the named space.",
        ]

    @classmethod
    def compile_ahead(cls) -> None:
        from ...model import Model
        from ..warmup import heat_twice, small_model

        model = Model.uniform(small_model().grid, "cancellous_bone")
        bound = cls(volume=1e-7, center=(0.0, 0.0, 0.0)).bind(model)
        heat_twice(bound, model)

    # -- binding ------------------------------------------------------------------------
    def bind(self, model: Model) -> BoundCement:
        """Place the cement (and its leak) on the model's grid; errors name the keys."""
        owner = f"source {self.name!r}"
        grid = model.grid
        where = [round(v * 1e3, 2) for v in self.center]
        if not grid.contains(self.center):
            raise_problems(
                [("center_mm", f"{where} mm lies outside the grid ({grid.bounds_text()})")],
                owner,
            )
        classes = fill_classes(model)
        start = grid.world_to_index(self.center)
        if classes[start] < 0:
            s = model.structures[model.labels[start]]
            raise_problems(
                [
                    (
                        "center_mm",
                        f"{where} mm lies in {s.name} ({s.tissue}), not in the tumour or "
                        "cancellous bone: cement fills from a point in the lytic tumour or "
                        "cancellous bone; move center_mm",
                    )
                ],
                owner,
            )
        dv = grid.voxel_volume
        n_total = round(self.volume / dv)
        if n_total < 1:
            small = f"{self.volume * 1e6:g} ml is less than one voxel ({dv * 1e6:g} ml)"
            raise_problems([("volume_ml", small)], owner)
        n_leak = 0 if self.leak_volume is None else max(1, round(self.leak_volume / dv))
        n_main = n_total - n_leak
        centre = (np.asarray(self.center) - np.asarray(grid.origin)) / grid.spacing
        spaces = leak_spaces(model) if self.leak_into is not None else {}
        if self.leak_into is not None and self.leak_into not in spaces:
            has = sorted(spaces) or ["none"]
            raise_problems(
                [
                    (
                        "leak.into",
                        f"the model has no {self.leak_into!r} space; the spaces it has: "
                        f"{', '.join(has)}",
                    )
                ],
                owner,
            )
        exclude = None
        if self.leak_into is not None:
            exclude = spaces[self.leak_into]
        main = grow(classes, start, centre, n_main, exclude)
        if main.size < n_main:
            fits = main.size * dv
            extra = f" (plus the leak's {self.leak_volume * 1e6:g} ml)" if n_leak else ""
            raise_problems(
                [
                    (
                        "volume_ml",
                        f"{self.volume * 1e6:g} ml does not fit: the tumour and cancellous "
                        f"bone reachable from center_mm hold {fits * 1e6:.2f} ml{extra}; "
                        "lower volume_ml",
                    )
                ],
                owner,
            )
        index = main
        channel = 0
        if self.leak_into is not None:
            lk, channel, cap = leak(model, main, spaces[self.leak_into], n_leak)
            if lk.size == 0:
                raise_problems(
                    [("leak.into", f"the way from the cement to the {self.leak_into} crosses "
                      "a neural structure; no leak path")],
                    owner,
                )  # fmt: skip
            if channel >= n_leak:
                raise_problems(
                    [
                        (
                            "leak.volume_ml",
                            f"{self.leak_volume * 1e6:g} ml does not reach the "
                            f"{self.leak_into}: the channel through the cortex alone holds "
                            f"{channel * dv * 1e6:.3f} ml; give a larger leak",
                        )
                    ],
                    owner,
                )
            if lk.size < n_leak:
                raise_problems(
                    [
                        (
                            "leak.volume_ml",
                            f"{self.leak_volume * 1e6:g} ml does not fit: the channel and the "
                            f"{self.leak_into} space near the breach hold "
                            f"{(channel + cap) * dv * 1e6:.2f} ml",
                        )
                    ],
                    owner,
                )
            index = np.concatenate([main, lk])
        kin = KINETICS[self.kinetics]
        alpha0, amax0 = cure_isothermal(kin, self.injection_C, self.mixing_to_injection)
        rho = model.tissues[CEMENT_TISSUE].density_kg_m3
        return BoundCement(
            self,
            model,
            index=np.ascontiguousarray(index, dtype=np.int64),
            n_leak=int(index.size - main.size),
            n_channel=int(channel),
            alpha0=alpha0,
            amax0=amax0,
            rhoH=rho * kin.H,
        )


class BoundCement(BoundSource):
    """A :class:`CementSource` placed on a grid: its voxels, their cure and what the
    report says of them (kept in :meth:`state`)."""

    lasting = True

    def __init__(self, src: CementSource, model: Model, *, index, n_leak, n_channel,
                 alpha0, amax0, rhoH):  # fmt: skip
        self.name = src.name
        self.src = src
        self.kin = KINETICS[src.kinetics]
        self.index = index
        self.voxel_volume = model.grid.voxel_volume
        self.n_leak = n_leak
        self.n_channel = n_channel
        shape = model.grid.shape
        self.coords = np.ascontiguousarray(np.stack(np.unravel_index(index, shape), axis=1))
        n = index.size
        self.rhoH = np.full(n, float(rhoH))
        # the bone next to the cement (its interface), or every neighbour without bone
        mask = np.zeros(shape, dtype=bool)
        mask.reshape(-1)[index] = True
        ring = ndimage.binary_dilation(mask) & ~mask
        bone = [i for i, s in enumerate(model.structures) if s.tissue in _INTERFACE_TISSUES]
        ring_bone = ring & np.isin(model.labels, bone)
        ring = ring_bone if ring_bone.any() else ring
        self.ring = tuple(np.asarray(a, dtype=np.int64) for a in np.nonzero(ring))
        # the cure and the trackers (the checkpoint's state)
        self.alpha = np.full(n, float(alpha0))
        self.amax = np.full(n, float(amax0))
        self.T_last = np.full(n, float(src.injection_C))
        self.rate = np.zeros(n)  # dα/dt at T_last
        self.rate_prev = np.zeros(n)  # dα/dt one sub-step earlier
        self.h_prev = np.zeros(n)  # that sub-step [s] (0: none yet)
        self.hot = np.full(n, float(src.injection_C))
        self.t_above = np.zeros(n)
        self.t_last: float | None = None
        self.interface_peak = -np.inf
        self.dq = np.empty(n)

    # -- the hooks ----------------------------------------------------------------------
    def material(self) -> MaterialChange:
        return MaterialChange(
            self.index, CEMENT_TISSUE, CEMENT_STRUCTURE, float(self.src.injection_C)
        )

    def deposit(self, Q: np.ndarray, T: np.ndarray, t: float) -> float:
        if self.t_last is None:  # the injection: the cure starts from here
            self.T_last[...] = T[tuple(self.coords.T)]
            self.rate[...] = rate(self.alpha, self.T_last, self.amax, self.kin)
            self.t_last = float(t)
            self._track(T)
            return 0.0
        dt = float(t) - self.t_last
        if dt <= 0:
            return 0.0
        released = cure_step(
            self.coords, T, self.T_last, self.alpha, self.amax, self.rate, self.rate_prev,
            self.h_prev, dt, self.kin, self.rhoH, Q, self.dq, self.hot, self.t_above, HOT_C,
        )  # fmt: skip
        self.t_last = float(t)
        self._track(T)
        return released * self.voxel_volume / dt

    def _track(self, T: np.ndarray) -> None:
        if self.ring[0].size:
            self.interface_peak = max(self.interface_peak, float(T[self.ring].max()))

    def state(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha.copy(),
            "amax": self.amax.copy(),
            "T_last": self.T_last.copy(),
            "rate": self.rate.copy(),
            "rate_prev": self.rate_prev.copy(),
            "h_prev": self.h_prev.copy(),
            "hot": self.hot.copy(),
            "t_above": self.t_above.copy(),
            "t_last": self.t_last,
            "interface_peak": None if np.isinf(self.interface_peak) else self.interface_peak,
        }

    def restore(self, state) -> None:
        for key in ("alpha", "amax", "T_last", "rate", "rate_prev", "h_prev", "hot", "t_above"):
            getattr(self, key)[...] = np.asarray(state[key], dtype=float)
        self.t_last = None if state["t_last"] is None else float(state["t_last"])
        peak = state["interface_peak"]
        self.interface_peak = -np.inf if peak is None else float(peak)

    def telemetry(self) -> dict[str, float]:
        return {"alpha_mean": float(self.alpha.mean()), "max_C": float(self.T_last.max())}

    def section(self) -> tuple[str, dict[str, Any]]:
        hottest = int(np.argmax(self.hot))
        dv = self.voxel_volume
        peak_iface = None if np.isinf(self.interface_peak) else round(self.interface_peak, 3)
        return (
            "cement",
            {
                "volume_ml": _ml(self.index.size * dv),
                "requested_volume_ml": _ml(self.src.volume),
                "leak_volume_ml": _ml(self.n_leak * dv),
                "leak_into": self.src.leak_into,
                "peak_temperature_C": round(float(self.hot.max()), 3),
                "interface_peak_temperature_C": peak_iface,
                "time_above_50C_s": round(float(self.t_above[hottest]), 2),
                "final_conversion": round(float(self.alpha.mean()), 5),
                "kinetics": self.kin.name,
                "injection_C": self.src.injection_C,
            },
        )

    @classmethod
    def merge_sections(cls, parts: list[dict[str, Any]]) -> dict[str, Any]:
        if len(parts) == 1:
            return parts[0]
        vol = sum(p["volume_ml"] for p in parts)
        ifaces = [p["interface_peak_temperature_C"] for p in parts]
        ifaces = [v for v in ifaces if v is not None]
        return {
            "volume_ml": round(vol, 4),
            "requested_volume_ml": round(sum(p["requested_volume_ml"] for p in parts), 4),
            "leak_volume_ml": round(sum(p["leak_volume_ml"] for p in parts), 4),
            "peak_temperature_C": max(p["peak_temperature_C"] for p in parts),
            "interface_peak_temperature_C": max(ifaces) if ifaces else None,
            "time_above_50C_s": max(p["time_above_50C_s"] for p in parts),
            "final_conversion": round(
                sum(p["final_conversion"] * p["volume_ml"] for p in parts) / vol, 5
            ),
            "sources": parts,
        }
