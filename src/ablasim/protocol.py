"""The protocol types: the phases of a treatment, the thermocouples, the temperature limits.

The scenario reads them from a file, :func:`ablasim.simulate` runs them, the result and
the safety analysis judge against them. Units are SI (s, m, °C).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .errors import ScenarioError

if TYPE_CHECKING:
    from .sources import Source

__all__ = ["Limits", "Phase", "Thermocouple", "as_thermocouples"]


@dataclass(frozen=True)
class Phase:
    """One step of the protocol: a duration [s] and the sources active during it.

    A phase with no source is a cool-down (or, for cryo, a passive thaw).
    """

    name: str
    duration: float
    sources: Sequence[Source] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        try:
            d = float(self.duration)
        except (TypeError, ValueError):
            d = math.nan
        if not math.isfinite(d) or d <= 0:
            raise ScenarioError(
                f"phase {self.name!r}: duration must be a finite number of seconds > 0, "
                f"got {self.duration!r}"
            )
        object.__setattr__(self, "duration", d)
        object.__setattr__(self, "sources", tuple(self.sources))
        names = [s.name for s in self.sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ScenarioError(
                f"phase {self.name!r}: source names must be unique within a phase (their "
                f"telemetry columns are named after them); repeated: {twice}"
            )


@dataclass(frozen=True)
class Thermocouple:
    """A virtual thermocouple at a world point [m]; ``cutoff`` makes it a safeguard.

    ``tissue``: the tissue or structure the planner expects at the position; building
    a scenario checks it against the anatomy (a probe placed in the wrong layer).
    """

    name: str
    position: tuple[float, float, float]
    cutoff: bool = False
    tissue: str | None = None


@dataclass(frozen=True)
class Limits:
    """Temperature limits for nerves and cut-off thermocouples [°C] (docs/physics.md §3.5:
    keep juxtaneural tissue between 10 and 45 °C; Sag & Husain 2022, Semin Intervent
    Radiol 39:157).

    One rule for crossing a limit, everywhere (nerve verdicts, time above the limit,
    first crossings, the generator cut-off): **reaching it counts**. A temperature is
    too hot when ``T >= hot_C`` (:meth:`too_hot`) and too cold when ``T <= cold_C``
    (:meth:`too_cold`, never when ``cold_C`` is None). A nerve voxel at exactly 45.0 °C
    has crossed the 45 °C limit. ``isotherms_C``: the levels whose volume and extent a
    run that may freeze records with every sample (the iceball).
    """

    hot_C: float = 45.0
    cold_C: float | None = 10.0
    #: The iceball's isotherms [°C], followed when something may freeze.
    isotherms_C: tuple[float, ...] = (0.0, -20.0, -40.0)

    def __post_init__(self) -> None:
        try:
            levels = tuple(float(v) for v in self.isotherms_C)
        except (TypeError, ValueError):
            levels = ()
        if (
            not levels
            or len(set(levels)) != len(levels)
            or not all(math.isfinite(v) and v <= 0.0 for v in levels)
        ):
            raise ScenarioError(
                "safety.iceball_isotherms_C must be one or more different temperatures at "
                f"or below 0 °C, got {self.isotherms_C!r}"
            )
        object.__setattr__(self, "isotherms_C", levels)
        if not math.isfinite(self.hot_C):
            raise ScenarioError(f"safety.hot_limit_C must be finite, got {self.hot_C!r}")
        if self.cold_C is not None and not (
            math.isfinite(self.cold_C) and self.cold_C < self.hot_C
        ):
            raise ScenarioError(
                f"safety.cold_limit_C must be finite and below hot_limit_C "
                f"({self.hot_C}), got {self.cold_C!r}"
            )

    def too_hot(self, T):
        """``T >= hot_C``: a bool for a number, a bool array for an array [°C]."""
        return self.hot_C <= T

    def too_cold(self, T):
        """``T <= cold_C`` (False everywhere when there is no cold limit): a bool for a
        number, a bool array for an array [°C]."""
        if self.cold_C is None:
            return np.zeros(np.shape(T), dtype=bool) if np.ndim(T) else False
        return self.cold_C >= T


def as_thermocouples(
    tcs: Mapping[str, Sequence[float]] | Sequence[Thermocouple] | None,
) -> tuple[Thermocouple, ...]:
    """Thermocouples from a mapping name -> point [m] or a sequence; names unique."""
    if tcs is None:
        return ()
    if isinstance(tcs, Mapping):
        return tuple(Thermocouple(str(n), tuple(p)) for n, p in tcs.items())
    out = tuple(tcs)
    names = [t.name for t in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ScenarioError(f"thermocouple names must be unique; repeated: {sorted(dup)}")
    return out
