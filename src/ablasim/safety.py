"""Nerve safety and ablation-zone metrics, from a finished simulation.

Verdict rule (per nerve structure): **FAIL** if any voxel of the structure reached the
hot limit (default 45 °C: ``T >= 45``) or the cold limit (default 10 °C: ``T <= 10``) at
any time step; **PASS** otherwise. Reaching a limit counts (the conservative reading),
and it is the same rule by which a cut-off thermocouple trips: both use
:meth:`Limits.too_hot` and :meth:`Limits.too_cold`. The limits are the clinical practice of
keeping juxtaneural tissue between 10 and 45 °C (Sag & Husain 2022, Semin Intervent Radiol
39:157; physics.md §3.5). CEM43 and Arrhenius Omega are reported alongside as evidence,
not as verdict criteria: rat sciatic nerve lost half its motor function at 48-64 CEM43
(Wondergem et al. 1988).

A nerve structure of the model with no voxel at the grid's spacing (a root thinner than a
voxel) cannot be checked: it is **NOT RESOLVED**, counts as a FAIL, and a warning tells
the planner to refine the grid.

The overall verdict is FAIL if any nerve structure fails or is not resolved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .result import Result

__all__ = ["AblationZone", "NerveSafety", "SafetyAnalysis", "analyse"]


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


@dataclass(frozen=True)
class AblationZone:
    """The ablated region by the chosen criterion."""

    criterion: str
    volume_ml: float
    extent_mm: tuple[float, float, float]
    tumour_coverage_fraction: float | None
    tumour_volume_ml: float | None


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


def analyse(result: Result, criterion, *, tumour: str = "tumour") -> SafetyAnalysis:
    """Nerve verdicts and ablation-zone metrics of a result.

    Parameters
    ----------
    result : Result
    criterion : AblationCriterion
        Which voxels count as ablated (``criterion.mask(damage)``).
    tumour : str
        Name of the tumour structure (coverage is None if the model has none).
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
        )
    if zone.any():
        idx = np.nonzero(zone)
        extent = tuple(float((i.max() - i.min() + 1) * h_mm) for i in idx)
    else:
        extent = (0.0, 0.0, 0.0)
    vol_ml = float(zone.sum()) * grid.voxel_volume * 1e6
    coverage = tumour_ml = None
    if tumour in model.structure_names:
        tmask = model.structure_mask(tumour)
        if tmask.any():
            coverage = float((zone & tmask).sum() / tmask.sum())
            tumour_ml = float(tmask.sum()) * grid.voxel_volume * 1e6
    zone_info = AblationZone(criterion.describe(), vol_ml, extent, coverage, tumour_ml)
    fails = unresolved or any(v.verdict == "FAIL" for v in nerves.values())
    warnings = tuple(
        f"Nerve structure '{name}' has no voxel at this grid spacing "
        f"({h_mm:g} mm), so its temperature was not checked and it counts as FAIL; "
        "refine grid.spacing_mm (to half the structure's thickness or less) and run again."
        for name in unresolved
    )
    return SafetyAnalysis(
        "FAIL" if fails else "PASS", nerves, zone_info, zone, tuple(unresolved), warnings
    )
