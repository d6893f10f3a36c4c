"""Cryoablation probes: the active wall held at a temperature that follows the protocol.

An argon (Joule-Thomson) or liquid-nitrogen cryoprobe is modelled by its needle's active
part: the voxels inside the needle over its active length are held at the wall
temperature ``probe_C`` while it freezes (a constant or a table of the time since the
phase start) or actively thaws (a warm wall), and are left free when it is ``"off"``
(passive thaw: the needle is there, not cooled). The classic freeze-thaw-freeze protocol
is three phases naming the same probe (docs/physics.md §3.3: 10 min freeze, 5 min
passive thaw, 10 min freeze).

Assumptions and validity (stated in the report):

* The wall is held exactly at ``probe_C`` over the whole active length, however much
  heat that takes: a real probe's gas flow limits the heat it can pull, and its wall
  warms when the load is high (many probes, warm tissue, the first minute). A held wall
  is an upper bound on the iceball (docs/physics.md §3.3: Etheridge et al. 2013 fit the
  probe as a convective boundary and found the answer sensitive to how the transfer
  varies along the probe). The heat drawn is reported per phase (``held_heat_J``), so
  it can be checked against the system's capacity.
* The needle's own material (steel) is not modelled: the held voxels stand for the
  active part, and the shaft behind it conducts like the tissue it passes through.
* Frozen tissue: the step takes the latent heat, the frozen conductivity and heat
  capacity, and stops perfusion and metabolic heat by the frozen fraction
  (:mod:`ablasim.solvers.pennes`); tissue frozen to ``[damage]
  perfusion_shutdown_frozen_C`` stays unperfused after thawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ScenarioError
from ..reader import Table, raise_problems
from .base import (
    FORBIDDEN_PROBE_TISSUES,
    BoundSource,
    HeldTemperature,
    Needle,
    Source,
    more_probes_problems,
    needle_problems,
    param,
    read_more_probes,
)
from .geometry import cylinder_fraction
from .registry import register

__all__ = ["BoundCryoProbe", "CryoSource"]

_MODES = ("freeze", "thaw", "off")
#: Default wall temperatures [°C]: -150 °C freezing (the IceEDGE needle, 123 K, in the
#: Go-Smart needle library; argon plateaus -140 to -185 °C), +15 °C active thaw (288 K,
#: Go-Smart's cryo template) (docs/physics.md §3.3).
DEFAULT_PROBE_C = {"freeze": -150.0, "thaw": 15.0}


@register
@dataclass(frozen=True, kw_only=True)
class CryoSource(Source):
    """One or more cryoprobes whose active walls follow the phase's protocol.

    Parameters
    ----------
    tip, direction : 3 floats
        The first needle's distal end [m] and the way it points (skin to tip).
    active_length, diameter : float
        The length of the freezing part from the tip back [m] and the needle's
        diameter [m] (default 1.47 mm, 17 G).
    mode : {"freeze", "thaw", "off"}
        Hold the wall at ``probe_C`` (freezing, below 0 °C; or active thaw, above 0
        °C), or leave it free ("off": passive thaw).
    probe_C : float or tuple of (t_s, T_C)
        The wall temperature [°C], or a table of (time since the phase start [s],
        temperature [°C]) pairs, linear in between and constant after the last.
    more_probes : tuple of (tip, direction)
        Further needles of the same length and diameter, run together.
    name : str
        A probe named in several phases is the same device: same geometry.
    """

    kind = "cryo"
    summary = "cryoprobes: the active wall held at a freezing or thawing temperature"
    keys_help = (
        "tip_mm, direction, active_length_mm, diameter_mm (1.47),\n"
        'mode = "freeze" | "thaw" | "off",\n'
        "probe_C = -150 or [[t_s, T_C], ...] (time from the phase start),\n"
        "more_probes = [{ tip_mm, direction }, ...];\n"
        "freeze-thaw-freeze: three phases naming the same probe"
    )
    extra_keys = ("probe_C", "more_probes")

    tip: tuple[float, float, float] = param("tip_mm", kind="vector", scale=1e-3)
    direction: tuple[float, float, float] = param("direction", kind="direction")
    active_length: float = param(
        "active_length_mm", scale=1e-3, gt=0, hint="; e.g. 25 (an IceSPHERE needle)"
    )
    diameter: float = param("diameter_mm", 1.47e-3, scale=1e-3, gt=0)
    mode: str = param("mode", "freeze", kind="string", choices=_MODES)
    probe_C: Any = None
    more_probes: tuple = ()
    name: str = param("name", "cryo", kind="string")

    def __post_init__(self) -> None:
        self.check()

    def problems(self) -> list[tuple[str, str]]:
        out = []
        table = self._table(out)
        if self.mode == "freeze" and table is not None and np.any(table[:, 1] >= 0.0):
            out.append(
                ("probe_C", f"a freezing wall must be below 0 °C, got {table[:, 1].max():g}; "
                 'argon probes run at -140 to -185 °C, or set mode = "thaw"')
            )  # fmt: skip
        if self.mode == "thaw" and table is not None and np.any(table[:, 1] <= 0.0):
            out.append(
                ("probe_C", f"a thawing wall must be above 0 °C, got {table[:, 1].min():g}; "
                 "e.g. probe_C = 15 (helium or electric thaw)")
            )  # fmt: skip
        if self.mode == "off" and self.probe_C is not None:
            out.append(("probe_C", 'a probe that is "off" holds no temperature; remove probe_C'))
        probes, bad = more_probes_problems(self.more_probes)
        out += bad
        object.__setattr__(self, "more_probes", probes)
        if table is not None:
            object.__setattr__(self, "probe_C", tuple(map(tuple, table.tolist())))
        return out

    def _table(self, out: list) -> np.ndarray | None:
        """``probe_C`` as an (n, 2) array of (t [s], T [°C]) rows, or None ("off")."""
        if self.mode == "off":
            return None
        v = DEFAULT_PROBE_C[self.mode] if self.probe_C is None else self.probe_C
        if isinstance(v, int | float) and not isinstance(v, bool):
            v = ((0.0, float(v)),)
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            arr = np.empty(0)
        if arr.ndim != 2 or arr.shape[1] != 2 or not arr.size or not np.all(np.isfinite(arr)):
            out.append(
                ("probe_C", f"must be a temperature or a table [[t_s, T_C], ...], got {v!r}")
            )
            return None
        if arr[0, 0] > 0.0:
            out.append(
                ("probe_C", f"the table starts at t = {arr[0, 0]:g} s, after the phase start; "
                 "begin it at t_s = 0")
            )  # fmt: skip
        if np.any(np.diff(arr[:, 0]) <= 0):
            out.append(("probe_C", f"the table's times must increase, got {arr[:, 0].tolist()}"))
        if np.any(arr[:, 1] < -273.15):
            out.append(("probe_C", "below absolute zero"))
        return arr

    @classmethod
    def read_extra(cls, table: Table) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if table.has("probe_C"):
            out["probe_C"] = table.raw("probe_C")
        out["more_probes"] = read_more_probes(table)
        return out

    # -- what the rest of the package asks -----------------------------------------
    def probes(self) -> tuple[tuple, ...]:
        """(tip, direction) of every needle, the first one first."""
        return ((self.tip, self.direction), *self.more_probes)

    def needles(self) -> tuple[Needle, ...]:
        return tuple(
            Needle(tuple(t), tuple(d), self.diameter, self.active_length) for t, d in self.probes()
        )

    def wall_C(self, t: float) -> float | None:
        """The wall temperature at ``t`` [s since the phase start] (None: off)."""
        if self.probe_C is None:
            return None
        tab = np.asarray(self.probe_C)
        return float(np.interp(t, tab[:, 0], tab[:, 1]))

    def assumptions(self) -> list[str]:
        return [
            "Cryoprobe walls are held at their set temperature over the whole active "
            "length however much heat that takes (no gas-flow limit): an upper bound on "
            "the iceball; the heat they drew is in phases[].held_heat_J.",
            "Frozen tissue takes the latent heat over -1 to -8 °C, frozen conductivity "
            "and heat capacity (linear in the frozen fraction), and no perfusion; tissue "
            "frozen to the lethal temperature stays unperfused after thawing.",
            "The needles' steel is not modelled: the shaft behind the active part "
            "conducts like the tissue around it.",
        ]

    def bind(self, model) -> BoundCryoProbe:
        return BoundCryoProbe(self, model)


def _probe_voxels(src: CryoSource, model, tip, d) -> np.ndarray:
    """Flat indices of the voxels that stand for one needle's active part: those at
    least half inside it, and the voxels along its axis (so a needle thinner than a
    voxel still holds a line)."""
    g = model.grid
    frac = cylinder_fraction(g, tip, d, src.active_length, 0.5 * src.diameter, name="probe")
    idx = set(np.flatnonzero(frac >= 0.5).tolist())
    n = max(2, int(np.ceil(2 * src.active_length / g.spacing)) + 1)
    for s in np.linspace(0.0, src.active_length, n):
        p = np.asarray(tip) - s * np.asarray(d)
        if g.contains(tuple(p)):
            idx.add(int(np.ravel_multi_index(g.world_to_index(tuple(p)), g.shape)))
    return np.array(sorted(idx), dtype=np.int64)


class BoundCryoProbe(BoundSource):
    """Cryoprobes on a model: the held wall voxels, their temperature at time t."""

    def __init__(self, src: CryoSource, model):
        self.name = src.name
        self.src = src
        raise_problems(needle_problems(src.needles(), model), f"source {src.name!r}")
        problems = []
        sets = []
        for n, (tip, d) in enumerate(src.probes()):
            key = "tip_mm" if n == 0 else f"more_probes[{n - 1}].tip_mm"
            idx = _probe_voxels(src, model, tip, d)
            tissues = {model.structures[lab] for lab in np.unique(model.labels.reshape(-1)[idx])}
            bad = sorted(s.name for s in tissues if s.tissue in FORBIDDEN_PROBE_TISSUES)
            if bad:
                problems.append(
                    (key, f"the active part of this probe crosses {', '.join(bad)}: freezing "
                     "there would injure the neural structures; move or shorten it")
                )  # fmt: skip
            for m, other in enumerate(sets):
                if np.intersect1d(idx, other).size:
                    what = "tip_mm" if m == 0 else f"more_probes[{m - 1}]"
                    problems.append(
                        (key, f"this probe overlaps the probe at {what}; needles cannot "
                         "share voxels, place them at least a diameter apart")
                    )  # fmt: skip
            sets.append(idx)
        raise_problems(problems, f"source {src.name!r}")
        self.index = np.unique(np.concatenate(sets))
        if not self.index.size:
            raise ScenarioError(f"source {src.name!r}: the probe holds no voxel of the grid")
        self._last: tuple[float, HeldTemperature] | None = None
        self._constant = src.probe_C is not None and len(src.probe_C) == 1

    def held(self, t: float) -> HeldTemperature | None:
        wall = self.src.wall_C(t)
        if wall is None:
            return None
        if self._last is not None and (self._constant or self._last[0] == wall):
            return self._last[1]
        h = HeldTemperature(self.index, np.full(self.index.size, wall))
        self._last = (wall, h)
        return h

    def running(self, t: float) -> bool:
        return self.src.probe_C is not None  # "off": nothing for a cut-off to stop

    def telemetry(self) -> dict[str, float]:
        return {} if self.src.probe_C is None else {"wall_C": float(self._wall_now())}

    def _wall_now(self) -> float:
        return self._last[0] if self._last is not None else float("nan")
