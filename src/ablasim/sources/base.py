"""The one protocol shared by every heat source.

A source is a plain, immutable description (geometry, power, settings). Before a phase
starts, :meth:`HeatSource.bind` checks it against the model (inside the grid, inside
tissue, power positive, ...) and returns a :class:`BoundSource` that owns the source's
precomputed fields. During the time loop the simulation asks each bound source to add its
power density [W/m^3] into the total ``Q`` and, for probes that hold tissue at a
temperature, which voxels to clamp.

A source whose deposit does not change with time or temperature sets ``static = True``:
the simulation then deposits it once per phase and never again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["FORBIDDEN_PROBE_TISSUES", "BoundSource", "HeatSource", "HeldTemperature"]

#: Tissues a needle or electrode must never sit in: the neural structures and the CSF
#: around them (checked for every probe tip, and for RF electrodes over their volume).
FORBIDDEN_PROBE_TISSUES = ("spinal_cord", "nerve", "csf")


@dataclass(frozen=True)
class HeldTemperature:
    """Voxels held at a prescribed temperature (e.g. a probe wall).

    Attributes
    ----------
    index : ndarray of int64
        Flat indices into the interior grid (C order).
    temperature_C : ndarray of float64
        The temperature each of those voxels is held at [°C].
    """

    index: np.ndarray
    temperature_C: np.ndarray


@runtime_checkable
class BoundSource(Protocol):
    """A source checked against a model, with its fields precomputed."""

    name: str
    static: bool

    def deposit(self, Q: np.ndarray, T: np.ndarray, t: float) -> float:
        """Add the power density [W/m^3] at time ``t`` [s] into ``Q`` (interior shape).

        ``T`` is the current temperature [°C] (interior view). Returns the power
        deposited in tissue [W].
        """
        ...

    def held(self) -> HeldTemperature | None:
        """Voxels this source holds at a temperature, or None."""
        ...

    # Optional: ``state(self) -> dict`` and ``restore(self, state)`` -- a source with
    # internal state (a generator's controller) returns it as JSON-able values for the
    # checkpoint, and takes it back when a run resumes.
    # Optional: ``telemetry(self) -> dict[str, float]`` -- quantities to log with every
    # sample of the time series (e.g. ``{"impedance_ohm": 82.0, "tip_C": 69.8}``); the
    # simulation writes them to timeseries.csv as ``<source name>_<key>``.
    # Optional: ``advance(self, T, t) -> float`` and ``unit_heating`` -- for a source whose
    # heating is its power times a map that changes only now and then (an RF probe
    # between potential solves): ``advance`` does what ``deposit`` does except adding
    # the heating into ``Q``, and returns the power [W] (>= 0); ``unit_heating`` (a
    # finite array of the interior shape, read again after every ``advance``) is the
    # heating per watt [1/m^3]. When such a source is the only one that changes during a
    # phase, the simulation hands map and power to the step kernel, which forms the
    # heating on the fly instead of rebuilding a grid-sized ``Q`` every step.
    # Optional: ``timing(self) -> dict`` -- where the source's own time went, e.g.
    # ``{"what": "potential solves", "count": 81, "seconds": 12.3}``; the report's
    # timing line names it.


@runtime_checkable
class HeatSource(Protocol):
    """A heat source as the user describes it."""

    name: str

    def bind(self, model: Model) -> BoundSource:
        """Validate against ``model`` and precompute; raise ScenarioError on bad input."""
        ...
