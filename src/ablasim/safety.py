"""Nerve safety and ablation-zone metrics, from a finished simulation.

Verdict rule (per nerve structure): **FAIL** if any voxel of the structure went above the
hot limit (default 45 °C) or below the cold limit (default 10 °C) at any time step;
**PASS** otherwise. The limits are the clinical practice of keeping juxtaneural tissue
between 10 and 45 °C (Sag & Husain 2022, Semin Intervent Radiol 39:157; physics.md §3.5).
CEM43 and Arrhenius Omega are reported alongside as evidence, not as verdict criteria:
rat sciatic nerve lost half its motor function at 48-64 CEM43 (Wondergem et al. 1988).

The overall verdict is FAIL if any nerve structure fails.
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
    verdict: str
    nerves: dict[str, NerveSafety]
    ablation_zone: AblationZone
    zone_mask: np.ndarray


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
    hot = result.limits.hot_C
    cold = result.limits.cold_C
    zone = criterion.mask(d)
    # distance [mm] from every voxel to the nearest ablated voxel (0 inside the zone)
    dist = ndimage.distance_transform_edt(~zone, sampling=h_mm) if zone.any() else None
    nerves = {}
    for name in model.nerve_structures():
        mask = model.structure_mask(name)
        n = int(mask.sum())
        if n == 0:
            continue
        tmax = d.t_max[mask]
        tmin = d.t_min[mask]
        track = result.nerves.get(name)
        hottest = np.unravel_index(np.argmax(np.where(mask, d.t_max, -np.inf)), grid.shape)
        fails = tmax.max() > hot or (cold is not None and tmin.min() < cold)
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
            fraction_voxels_above=float(np.mean(tmax > hot)),
            fraction_voxels_below=0.0 if cold is None else float(np.mean(tmin < cold)),
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
    verdict = "FAIL" if any(v.verdict == "FAIL" for v in nerves.values()) else "PASS"
    return SafetyAnalysis(verdict, nerves, zone_info, zone)
