"""Nerve safety and ablation-zone metrics, from a finished simulation.

Verdict rule (per nerve structure): **FAIL** if any voxel of the structure reached the
hot limit (default 45 °C: ``T >= 45``) or the cold limit (default 10 °C: ``T <= 10``) at
any time step; **PASS** otherwise. Reaching a limit counts (the conservative reading),
and it is the same rule by which a cut-off thermocouple trips: both use
:meth:`Limits.too_hot` and :meth:`Limits.too_cold`. The limits are the clinical practice of
keeping juxtaneural tissue between 10 and 45 °C (Sag & Husain 2022, Semin Intervent Radiol
39:157; docs/physics.md §3.5). CEM43 and Arrhenius Omega are reported alongside as evidence,
not as verdict criteria: rat sciatic nerve lost half its motor function at 48-64 CEM43
(Wondergem et al. 1988).

A nerve structure of the model with no voxel at the grid's spacing (a root thinner than a
voxel) cannot be checked: it is **NOT RESOLVED**, counts as a FAIL, and a warning tells
the planner to refine the grid.

The overall verdict is FAIL if any nerve structure fails or is not resolved.

Tumour coverage, the second verdict: **COMPLETE** when at least the target fraction
(``[safety] tumour_coverage_target``, default 1.0 = 100 %) of the tumour, grown by
``tumour_margin_mm`` (default 0 mm) in every direction, lies in the ablation zone;
**INCOMPLETE** otherwise; None when the model has no tumour.

Warnings, where the model leaves its range (plain sentences for the report):

* voxels whose peak temperature went above :data:`BOILING_C` (100 °C): tissue water
  boils and chars there, and the model keeps only the latent heat (no vapour, no
  charring), so temperatures there are not reliable;
* a nerve structure too thin for the grid: every voxel of it lies on its own surface
  (none has all six face neighbours in the structure, so it is nowhere three voxels
  across; a binary erosion leaves nothing): its temperature blends with its
  surroundings' and its hottest point may be missed;
* a phase of fewer than :data:`MIN_PHASE_STEPS` time steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .result import Result

__all__ = [
    "BOILING_C",
    "MIN_PHASE_STEPS",
    "AblationZone",
    "NerveSafety",
    "SafetyAnalysis",
    "TumourCoverage",
    "analyse",
]

#: Above this peak temperature [°C] the model is outside its range (water boils, tissue
#: chars; docs/physics.md: the enthalpy model holds the latent heat only).
BOILING_C = 100.0
#: A phase with fewer time steps than this is flagged (an event inside it is resolved to
#: a step, and a duration this short is more often a unit slip than a plan).
MIN_PHASE_STEPS = 5


@dataclass(frozen=True)
class NerveSafety:
    """The report row of one nerve structure (temperatures °C, times s, doses)."""

    name: str
    tissue: str
    voxels: int
    max_temperature_C: float
    min_temperature_C: float
    hot_margin_C: float
    cold_margin_C: float | None
    time_above_threshold_s: float
    first_crossing_s: float | None
    time_below_cold_limit_s: float
    first_cold_crossing_s: float | None
    fraction_voxels_above: float
    fraction_voxels_below: float
    max_cem43_min: float
    max_arrhenius_omega: float
    min_distance_to_ablation_mm: float | None
    hottest_point_mm: tuple[float, float, float]
    verdict: str
    coldest_point_mm: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class AblationZone:
    """The ablated region by the chosen criterion."""

    criterion: str
    volume_ml: float
    extent_mm: tuple[float, float, float]
    tumour_coverage_fraction: float | None
    tumour_volume_ml: float | None


@dataclass(frozen=True)
class TumourCoverage:
    """The tumour verdict: ``coverage_fraction`` of the target (the tumour grown by
    ``margin_mm``) in the ablation zone against ``target_fraction``; ``verdict``
    "COMPLETE", "INCOMPLETE", or None (no tumour: both fractions of it None)."""

    coverage_fraction: float | None
    target_fraction: float
    margin_mm: float
    verdict: str | None
    target_volume_ml: float | None = None


@dataclass(frozen=True)
class SafetyAnalysis:
    """The verdict, a row per checked nerve structure, the ablation zone.

    ``unresolved`` names the nerve structures with no voxel at the grid's spacing (not
    in ``nerves``: nothing was measured; they make the verdict FAIL); ``warnings`` are
    plain sentences for the planner.
    """

    verdict: str
    nerves: dict[str, NerveSafety]
    ablation_zone: AblationZone
    zone_mask: np.ndarray
    unresolved: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    tumour: TumourCoverage = TumourCoverage(None, 1.0, 0.0, None)
    iceball: dict | None = None


def analyse(result: Result, criterion, *, tumour: str = "tumour", target=None) -> SafetyAnalysis:
    """Nerve verdicts and ablation-zone metrics of a result.

    Parameters
    ----------
    result : Result
    criterion : AblationCriterion
        Which voxels count as ablated (``criterion.mask(damage)``).
    tumour : str
        Name of the tumour structure (coverage is None if the model has none).
    target : TumourTarget, optional
        The coverage target and margin (default: 100 % of the tumour, no margin).
    """
    model = result.model
    grid = model.grid
    h_mm = grid.spacing * 1e3
    d = result.damage
    limits = result.limits
    hot = limits.hot_C
    cold = limits.cold_C
    zone = criterion.mask(d)
    # distance [mm] from every voxel to the nearest ablated voxel (0 inside the zone)
    dist = ndimage.distance_transform_edt(~zone, sampling=h_mm) if zone.any() else None
    nerves = {}
    unresolved = []
    for name in model.nerve_structures():
        mask = model.structure_mask(name)
        n = int(mask.sum())
        if n == 0:
            unresolved.append(name)
            continue
        tmax = d.t_max[mask]
        tmin = d.t_min[mask]
        track = result.nerves.get(name)
        hottest = np.unravel_index(np.argmax(np.where(mask, d.t_max, -np.inf)), grid.shape)
        coldest = np.unravel_index(np.argmin(np.where(mask, d.t_min, np.inf)), grid.shape)
        fails = bool(limits.too_hot(tmax.max()) or limits.too_cold(tmin.min()))
        nerves[name] = NerveSafety(
            name=name,
            tissue=model.structures[model.labels[hottest]].tissue,
            voxels=n,
            max_temperature_C=float(tmax.max()),
            min_temperature_C=float(tmin.min()),
            hot_margin_C=float(hot - tmax.max()),
            cold_margin_C=None if cold is None else float(tmin.min() - cold),
            time_above_threshold_s=track.time_above_hot_s if track else 0.0,
            first_crossing_s=track.first_hot_crossing_s if track else None,
            time_below_cold_limit_s=track.time_below_cold_s if track else 0.0,
            first_cold_crossing_s=track.first_cold_crossing_s if track else None,
            fraction_voxels_above=float(np.mean(limits.too_hot(tmax))),
            fraction_voxels_below=float(np.mean(limits.too_cold(tmin))),
            max_cem43_min=float(d.cem43[mask].max()),
            max_arrhenius_omega=float(d.omega[mask].max()),
            min_distance_to_ablation_mm=None if dist is None else float(dist[mask].min()),
            hottest_point_mm=tuple(float(v) * 1e3 for v in grid.index_to_world(hottest)),
            verdict="FAIL" if fails else "PASS",
            coldest_point_mm=tuple(float(v) * 1e3 for v in grid.index_to_world(coldest)),
        )
    if zone.any():
        idx = np.nonzero(zone)
        extent = tuple(float((i.max() - i.min() + 1) * h_mm) for i in idx)
    else:
        extent = (0.0, 0.0, 0.0)
    vol_ml = float(zone.sum()) * grid.voxel_volume * 1e6
    coverage = tumour_ml = None
    # the tumour as it was before any material change (cement filling it)
    start = result.start_model or model
    tmask = start.tumour_mask(tumour)  # the structure so named, and any of a tumour tissue
    if tmask.any():
        coverage = float((zone & tmask).sum() / tmask.sum())
        tumour_ml = float(tmask.sum()) * grid.voxel_volume * 1e6
    zone_info = AblationZone(criterion.describe(), vol_ml, extent, coverage, tumour_ml)
    fails = unresolved or any(v.verdict == "FAIL" for v in nerves.values())
    warnings = [
        f"Nerve structure '{name}' has no voxel at this grid spacing "
        f"({h_mm:g} mm), so its temperature was not checked and it counts as FAIL; "
        "refine grid.spacing_mm (to half the structure's thickness or less) and run again."
        for name in unresolved
    ]
    warnings += _thin_nerves(model, [n for n in nerves if n not in unresolved])
    warnings += _too_hot(d.t_max, grid)
    warnings += _short_phases(result.phases)
    return SafetyAnalysis(
        "FAIL" if fails else "PASS",
        nerves,
        zone_info,
        zone,
        tuple(unresolved),
        tuple(warnings),
        _tumour_coverage(start, zone, tumour, target),
        _iceball(result, criterion, tmask),
    )


def _iceball(result: Result, criterion, tmask: np.ndarray) -> dict | None:
    """The report's ``iceball`` section from the run's isotherm traces (None when the
    run followed none: nothing could freeze): per isotherm, keyed by its value as a
    string, the largest volume [ml] and extent [mm] over the samples and when the volume
    peaked [s]; the lethal isotherm's coverage of the tumour (from each voxel's lowest
    temperature, so the union over time)."""
    tel = result.telemetry
    levels = [v for v in result.limits.isotherms_C if f"iceball_{v:g}C_ml" in tel]
    if not levels:
        return None
    out: dict = {"isotherms_C": levels, "lethal_C": criterion.cold_C}
    for v in levels:
        name = f"iceball_{v:g}C"
        vol = tel[f"{name}_ml"]
        k = int(np.argmax(vol))
        out[f"{v:g}"] = {
            "max_volume_ml": float(vol[k]),
            "at_s": float(result.time[k]),
            "max_extent_mm": [float(tel[f"{name}_{a}_mm"].max()) for a in "xyz"],
            "final_volume_ml": float(vol[-1]),
        }
    cover = None
    if criterion.cold_C is not None and tmask.any():
        cover = float((result.damage.t_min[tmask] <= criterion.cold_C).mean())
    out["tumour_coverage_fraction"] = cover
    return out


def _tumour_coverage(model, zone: np.ndarray, tumour: str, target) -> TumourCoverage:
    """The tumour verdict (see the module docstring)."""
    want = 1.0 if target is None else float(target.coverage)
    margin = 0.0 if target is None else float(target.margin)
    mask = model.tumour_mask(tumour)  # the structure so named, and any of a tumour tissue
    if not mask.any():
        return TumourCoverage(None, want, margin * 1e3, None)
    if margin > 0:
        # every voxel whose centre lies within the margin of a tumour voxel's centre
        mask = ndimage.distance_transform_edt(~mask, sampling=model.grid.spacing) <= margin
    covered = float((zone & mask).sum() / mask.sum())
    ml = float(mask.sum()) * model.grid.voxel_volume * 1e6
    # both are ratios of voxel counts: a target of 1.0 is met only by every voxel
    verdict = "COMPLETE" if covered >= want - 1e-12 else "INCOMPLETE"
    return TumourCoverage(covered, want, margin * 1e3, verdict, ml)


def _thin_nerves(model, names) -> list[str]:
    """Nerve structures with no voxel deeper than their surface (see the module
    docstring): none of their voxels has all six face neighbours in the structure."""
    out = []
    h_mm = model.grid.spacing * 1e3
    for name in names:
        mask = model.structure_mask(name)
        if ndimage.binary_erosion(mask).any():
            continue
        out.append(
            f"Nerve structure '{name}' is too thin for the {h_mm:g} mm grid: none of its "
            f"{int(mask.sum())} voxels has all six neighbours inside it (it is nowhere "
            "three voxels across), so its temperature is a blend with its surroundings' "
            "and its hottest point may be missed; halve grid.spacing_mm to check it."
        )
    return out


def _too_hot(t_max: np.ndarray, grid) -> list[str]:
    """Voxels whose peak went above :data:`BOILING_C`: how many, how hot, where."""
    hot = t_max > BOILING_C
    n = int(hot.sum())
    if n == 0:
        return []
    where = np.unravel_index(int(np.argmax(t_max)), grid.shape)
    mm = ", ".join(f"{round(v * 1e3, 2):g}" for v in grid.index_to_world(where))
    return [
        f"{n} voxel{'s' if n > 1 else ''} ({n * grid.voxel_volume * 1e6:.3g} ml) went above "
        f"{BOILING_C:g} °C, the hottest to {float(t_max[where]):.0f} °C at [{mm}] mm: there "
        "tissue water boils and chars, which the model holds only as latent heat (the "
        "vapour does not move, charring is not modelled), so temperatures above "
        f"{BOILING_C:g} °C are not reliable."
    ]


def _short_phases(phases) -> list[str]:
    """Phases shorter than :data:`MIN_PHASE_STEPS` time steps."""
    return [
        f"Phase '{p.name}' lasts only {p.steps} time step{'s' if p.steps > 1 else ''} "
        f"({p.duration_s:g} s at {p.dt_s:.3g} s a step): what happens inside it is "
        "resolved to a step; check its duration (duration_s or duration_min) is what you "
        "meant."
        for p in phases
        if p.steps < MIN_PHASE_STEPS
    ]
