"""The result of a simulation: final fields, damage, traces, per-phase energy, timing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .sensors import trilinear_weights

if TYPE_CHECKING:
    from .damage import DamageFields
    from .model import Model
    from .protocol import Limits

__all__ = ["NerveSummary", "PhaseSummary", "Result", "ThermocoupleSummary"]


@dataclass(frozen=True)
class PhaseSummary:
    """What one phase did.

    Attributes
    ----------
    name : str
    duration_s : float
    energy_J : float
        Energy delivered by the phase's sources [J].
    steps : int
    dt_s : float
        Time step [s].
    cutoff_at_s : float or None
        When a cut-off thermocouple switched the sources off [s from the start].
    held_heat_J : float
        Heat the voxels held at a temperature (probe walls) took out of the tissue [J]:
        positive when they cool it (a cryoprobe, a cooled RF tip).
    """

    name: str
    duration_s: float
    energy_J: float
    steps: int
    dt_s: float
    cutoff_at_s: float | None = None
    held_heat_J: float = 0.0


@dataclass(frozen=True)
class ThermocoupleSummary:
    """Extremes of one virtual thermocouple [°C] and when it cut the energy off [s]."""

    name: str
    position: tuple[float, float, float]
    max_temperature_C: float
    min_temperature_C: float
    cutoff_at_s: float | None
    cutoff: bool


@dataclass(frozen=True)
class NerveSummary:
    """Time-resolved facts about one nerve structure, tracked every step.

    ``time_above_hot_s`` counts the time during which any voxel of the structure was
    at or above the hot limit; ``first_hot_crossing_s`` is the first such moment (None: never).
    """

    name: str
    time_above_hot_s: float
    time_below_cold_s: float
    first_hot_crossing_s: float | None
    first_cold_crossing_s: float | None


@dataclass
class Result:
    """What :func:`ablasim.simulate` returns.

    Attributes
    ----------
    model : Model
    temperature : ndarray
        Final temperature [°C], grid shape.
    damage : DamageFields
        Per-voxel maximum / minimum temperature [°C], CEM43 [min], Arrhenius Omega.
    perfusion : ndarray
        Final perfusion coefficient [W/m^3/K] (zero where blood flow stopped).
    time : ndarray
        Sample times [s] of the traces.
    phase_of_sample : list of str
        Phase name at each sample ("start" for t = 0).
    power : ndarray
        Power delivered by the sources at each sample [W].
    sensors : dict name -> ndarray
        Temperature [°C] at each thermocouple at ``time``.
    nerve_max_trace, nerve_min_trace : dict name -> ndarray
        Hottest / coldest voxel of each nerve structure at ``time`` [°C].
    telemetry : dict name -> ndarray
        What the sources log at ``time`` (``<source>_<quantity>``, e.g. impedance, tip
        temperature), NaN while a source is not active.
    thermocouples : dict name -> ThermocoupleSummary
    nerves : dict name -> NerveSummary
    limits : Limits
    phases : list of PhaseSummary
    timing : dict
        ``wall_s``, ``setup_s``, ``pennes_s``, ``damage_s``, ``other_s``, ``steps``,
        ``dt_s``, ``stable_dt_s``, ``voxel_updates_per_s``.
    events : list of dict
        What changed the treatment as it ran, in time order: ``time_s`` [s from the
        start of the run], ``kind`` (``"cutoff"``: a thermocouple switched a phase's
        sources off; ``"generator_pause"``: an RF generator paused on impedance; a
        source's own kinds), ``source`` (the heat source's name, or None), ``detail`` (a
        sentence), ``phase`` (its name), and per kind more keys (a cut-off:
        ``thermocouples``, ``sources``, ``planned_s``, ``delivered_s``,
        ``fraction_of_time``, ``energy_J``, ``planned_energy_J``, ``fraction_of_energy``).
    start_model : Model or None
        The model before any phase changed a material (cement filling the tumour): the
        tumour is judged on its voxels there. None: the same as ``model``.
    sections : dict name -> dict
        Report sections of the sources' own (:meth:`~ablasim.sources.BoundSource.section`,
        e.g. ``"cement"``), and ``"iceball"`` when tissue froze or a source drew heat.
    """

    model: Model
    temperature: np.ndarray
    damage: DamageFields
    perfusion: np.ndarray
    time: np.ndarray
    phase_of_sample: list[str]
    power: np.ndarray
    sensors: dict[str, np.ndarray]
    nerve_max_trace: dict[str, np.ndarray]
    nerve_min_trace: dict[str, np.ndarray]
    telemetry: dict[str, np.ndarray]
    thermocouples: dict[str, ThermocoupleSummary]
    nerves: dict[str, NerveSummary]
    limits: Limits
    phases: list[PhaseSummary]
    timing: dict = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    sections: dict[str, dict] = field(default_factory=dict)
    start_model: Model | None = None

    def temperature_at(self, points, *, field: str = "temperature") -> np.ndarray:
        """A final field at world points [m] by trilinear interpolation.

        ``points`` is one point (3,) or an array (n, 3); returns a float or an (n,) array.
        ``field`` is ``"temperature"`` or a damage field (``"t_max"``, ``"t_min"``,
        ``"cem43"``, ``"omega"``).
        """
        data = self.temperature if field == "temperature" else getattr(self.damage, field)
        pts = np.asarray(points, dtype=float)
        single = pts.ndim == 1
        pts = np.atleast_2d(pts)
        out = np.empty(len(pts))
        for n, p in enumerate(pts):
            idx, w = trilinear_weights(self.model.grid, p)
            out[n] = float((data[tuple(idx.T)] * w).sum())
        return out[0] if single else out
