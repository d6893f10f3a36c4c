"""The safety report: a JSON document for programs and a text page for people.

``report.json`` holds the fields of the file contract (README.md; verdict, nerves,
ablation_zone, tumour, events, warnings, thermocouples, phases, grid, timing) plus the
plan as run (``plan``: each phase and its sources' settings, from the scenario), the
assumptions and notes. ``report.txt`` says the same for a person: first the two verdicts
(nerve safety PASS/FAIL, tumour coverage COMPLETE/INCOMPLETE), then the events that
changed the treatment (cut-offs, generator pauses) and the warnings, then the details.
``still_changing`` lists the nerve and thermocouple traces that were still moving toward
a limit when the run ended (their reported extreme is not the true one; see
:func:`end_trend`). A nerve structure the grid does not resolve (no voxel) has a row
with the verdict ``NOT RESOLVED`` and no numbers, and a sentence in ``warnings``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from . import __version__
from .damage import DAMAGE_FLOOR_C
from .protocol import Phase
from .result import Result
from .safety import SafetyAnalysis

__all__ = [
    "EndTrend",
    "assumptions",
    "build_report",
    "end_trend",
    "generator_pauses",
    "plan",
    "render_text",
    "still_changing",
]

#: The verdict of a nerve structure with no voxel at the grid's spacing (counts as FAIL).
NOT_RESOLVED = "NOT RESOLVED"
#: The keys of a nerve row of report.json, in order (those of an unresolved structure).
_NERVE_ROW_KEYS = (
    "verdict",
    "tissue",
    "voxels",
    "max_temperature_C",
    "min_temperature_C",
    "hot_margin_C",
    "cold_margin_C",
    "time_above_threshold_s",
    "first_crossing_s",
    "time_below_cold_limit_s",
    "first_cold_crossing_s",
    "fraction_voxels_above",
    "fraction_voxels_below",
    "max_cem43_min",
    "max_arrhenius_omega",
    "min_distance_to_ablation_mm",
    "hottest_point_mm",
    "coldest_point_mm",
)

#: A trace is "still changing" only if it moved more than this over the end window [K].
#: Thermocouples resolve about 0.1 K; a drift of less than half of that could not be seen
#: on the device, and flagging it would bury the runs whose peak really comes later.
TREND_MIN_CHANGE_K = 0.05
#: Default end window [s]: long enough that a slow climb clears the threshold (the
#: epidural thermocouple of the vertebra-rf example rises about 0.18 K per minute at 540 s).
TREND_WINDOW_S = 60.0
#: Falling traces count only once they went this far below body temperature [K] (a cryo
#: run); a heated trace relaxing toward body temperature is not moving toward the cold limit.
TREND_COLD_BELOW_BODY_K = 2.0
#: A still-moving trace "could reach its limit" when its rate over the end window, kept
#: up for this long [s], would cross it. Diffusive rises after power-off slow down, so a
#: linear extrapolation over 10 min overstates them: a trace it does not bring to the
#: limit is safe to leave; the text report names only the others.
TREND_HORIZON_S = 600.0


def assumptions(result: Result, criterion_text: str, source_assumptions: list[str]) -> list[str]:
    """The modelling assumptions a planner should weigh, in plain words; the sources'
    own (``Source.assumptions``) follow the general ones."""
    model = result.model
    h_mm = model.grid.spacing * 1e3
    faces = {f.kind for f in model.boundary.faces}
    perfused = bool(model.thermal_fields.W.any() or result.perfusion.any())
    out = [
        (
            "Pennes bioheat model: blood perfusion acts as a uniform heat sink at arterial "
            f"temperature ({model.tissues.blood.temperature_C:g} °C); large vessels (aorta, "
            "segmental arteries, epidural veins) and CSF flow are not modelled and would "
            "cool their surroundings further."
        )
        if perfused
        else (
            "No blood perfusion"
            + ("" if model.thermal_fields.Q_met.any() else " and no metabolic heat")
            + " in any tissue (ex vivo, or perfusion set to zero): heat leaves only by "
            "conduction, to the grid's faces."
        ),
        "Tissue properties: IT'IS database values (constant in temperature in this version); "
        "perfusion, the least certain of them, varies several-fold between patients. "
        "Tissue water boils at 95-100 °C (latent heat for each tissue's water fraction); "
        "the vapour does not move.",
        f"Grid: {h_mm:g} mm voxels; structures thinner than about two voxels "
        f"(< {2 * h_mm:g} mm, e.g. the cortical shell and small roots) are resolved only "
        "roughly, and temperatures are voxel averages.",
        "Outer faces: "
        + (
            "held at body temperature - the grid must be large enough that the heat "
            "does not reach them"
            if faces <= {"temperature", "body"}
            else ", ".join(sorted(faces))
        )
        + ".",
        f"Damage: CEM43 (R = 0.5 above 43 °C, 0.25 below) and Arrhenius Omega accrue above "
        f"{DAMAGE_FLOOR_C:g} °C; perfusion stops for good where tissue coagulates "
        "(Omega >= 4.6 or T >= 60 °C by default).",
        f"Ablation zone: {criterion_text}.",
        f"Nerve verdict: FAIL if any nerve voxel reaches {result.limits.hot_C:g} °C or "
        f"{result.limits.cold_C:g} °C at any time; CEM43 is reported as evidence (rat "
        "sciatic nerve: 50 % motor loss at 48–64 CEM43)."
        if result.limits.cold_C is not None
        else f"Nerve verdict: FAIL if any nerve voxel reaches {result.limits.hot_C:g} °C.",
    ]
    out.extend(dict.fromkeys(source_assumptions))  # each once, in order
    if any(p.cutoff_at_s is not None for p in result.phases):
        out.append(
            "Cut-off: when a cut-off thermocouple reached a limit, every source of that "
            "phase was switched off for the rest of the phase; the next phase ran as planned."
        )
    return out


@dataclass(frozen=True)
class EndTrend:
    """How a trace ended.

    Attributes
    ----------
    value_C : float
        The last sample [°C].
    change_K : float
        Last sample minus the first sample of the end window [K].
    window_s : float
        The window actually used [s] (shorter than asked when the trace is shorter).
    still_moving : bool
        The window's change exceeds ``min_change_K`` in ``direction``, the trace's
        extreme is at the end (or one sample before it) or its end rate would pass that
        extreme within the horizon, and (given a start temperature) it is moving away
        from the start: the reported extreme may not be the true one.
    """

    value_C: float
    change_K: float
    window_s: float
    still_moving: bool


def end_trend(
    time,
    trace,
    direction: str,
    *,
    window_s: float = TREND_WINDOW_S,
    min_change_K: float = TREND_MIN_CHANGE_K,
    start_C: float | None = None,
    horizon_s: float = TREND_HORIZON_S,
) -> EndTrend:
    """The trend of a temperature trace at the end of a run.

    Parameters
    ----------
    time : array_like
        Sample times [s], increasing.
    trace : array_like
        Temperature [°C] at ``time``.
    direction : {"rising", "falling"}
        The dangerous direction: rising toward a hot limit, falling toward a cold one.
    window_s : float
        End window [s]: the samples with ``t >= t_end - window_s`` (the whole trace if it
        is shorter).
    min_change_K : float
        Smallest change over the window that counts [K] (default 0.05 K, half the
        resolution of a thermocouple).
    start_C : float, optional
        The temperature the run started at [°C] (body temperature, or the bath of an ex
        vivo run). When given, a rising trace counts only if it ends above it, and a
        falling trace only if it went more than ``TREND_COLD_BELOW_BODY_K`` (2 K) below
        it (cryo), so that a trace relaxing back toward the start is not flagged.
    horizon_s : float
        A trace counts only if its rate over the window, kept up this long, would take
        it past its extreme so far: at the end of a run that has its extreme there, or
        a trace that climbs again after a pause fast enough to pass its earlier peak.

    Returns
    -------
    EndTrend

    Examples
    --------
    >>> end_trend([0, 30, 60, 90], [37.0, 40.0, 41.0, 41.5], "rising").still_moving
    True
    >>> end_trend([0, 30, 60, 90], [37.0, 41.5, 41.0, 40.0], "rising").still_moving
    False
    """
    if direction not in ("rising", "falling"):
        raise ValueError(f"direction must be 'rising' or 'falling', got {direction!r}")
    t = np.asarray(time, dtype=float)
    y = np.asarray(trace, dtype=float)
    if t.ndim != 1 or t.shape != y.shape or t.size == 0:
        raise ValueError(
            f"time and trace must be 1-D arrays of the same, non-zero length; got shapes "
            f"{t.shape} and {y.shape}"
        )
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s!r}")
    i0 = int(np.searchsorted(t, t[-1] - window_s, side="left"))
    i0 = min(i0, t.size - 1)
    change = float(y[-1] - y[i0])
    out = EndTrend(float(y[-1]), change, float(t[-1] - t[i0]), False)
    if t.size < 2 or not np.all(np.isfinite(y[i0:])):
        return out
    ahead = y[-1] + change / max(out.window_s, 1e-12) * horizon_s  # the rate kept up
    if direction == "rising":
        moving = change > min_change_K and (y[-2:].max() >= np.nanmax(y) or ahead > np.nanmax(y))
        if start_C is not None:
            moving = moving and y[-1] > start_C
    else:
        moving = change < -min_change_K and (y[-2:].min() <= np.nanmin(y) or ahead < np.nanmin(y))
        if start_C is not None:
            moving = moving and np.nanmin(y) < start_C - TREND_COLD_BELOW_BODY_K
    return EndTrend(out.value_C, out.change_K, out.window_s, bool(moving))


def still_changing(
    result: Result, analysis: SafetyAnalysis, *, window_s: float = TREND_WINDOW_S
) -> list[dict[str, Any]]:
    """The nerve and thermocouple traces still moving toward a limit when the run ended.

    Nerves: the hottest-voxel trace rising, the coldest-voxel trace falling (with a cold
    limit); thermocouples: their trace either way. Each trace's direction is judged
    from the temperature it started at (see :func:`end_trend`). Each entry: ``what``
    ("nerve" or "thermocouple"), ``name``, ``direction`` ("rising" or "falling"),
    ``value_C`` (at the end), ``change_K`` (over the window), ``window_s``, ``margin_K``
    (to the hot limit, or above the cold limit; negative once past it) and
    ``could_reach_limit`` (the window's rate kept up for :data:`TREND_HORIZON_S` would
    cross the limit, or it is already past it).
    """
    hot = result.limits.hot_C
    cold = result.limits.cold_C
    directions = ("rising",) if cold is None else ("rising", "falling")
    traces = []
    for name in analysis.nerves:
        if name in result.nerve_max_trace:
            traces.append(("nerve", name, "rising", result.nerve_max_trace[name]))
        if cold is not None and name in result.nerve_min_trace:
            traces.append(("nerve", name, "falling", result.nerve_min_trace[name]))
    for name, trace in result.sensors.items():
        traces += [("thermocouple", name, d, trace) for d in directions]
    out = []
    for what, name, direction, trace in traces:
        # the first sample is the run's start (t = 0): the reference for the direction
        start = float(np.asarray(trace, dtype=float)[0]) if len(trace) else None
        tr = end_trend(result.time, trace, direction, window_s=window_s, start_C=start)
        if not tr.still_moving:
            continue
        if direction == "rising":
            margin = hot - tr.value_C
        else:
            margin = None if cold is None else tr.value_C - cold
        reach = abs(tr.change_K) / max(tr.window_s, 1e-9) * TREND_HORIZON_S
        out.append(
            {
                "what": what,
                "name": name,
                "direction": direction,
                "value_C": _r(tr.value_C),
                "change_K": _r(tr.change_K),
                "window_s": _r(tr.window_s, 2),
                "margin_K": _r(margin),
                "could_reach_limit": margin is not None and margin <= reach,
            }
        )
    return out


def _r(x, nd=3):
    if x is None:
        return None
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return round(float(x), nd)


def build_report(
    *,
    scenario_name: str,
    description: str,
    result: Result,
    analysis: SafetyAnalysis,
    notes: list[str],
    source_assumptions: list[str],
    phases: Sequence[Phase] | None = None,
) -> dict[str, Any]:
    """The report as a JSON-serialisable dict (the file contract, README.md).

    ``phases`` are the scenario's phases (their sources' descriptions): the report's
    ``plan`` states their settings (:meth:`~ablasim.sources.Source.describe`); without
    them ``plan`` is None.
    """
    g = result.model.grid
    nerves = {}
    for n in analysis.nerves.values():
        nerves[n.name] = {
            "verdict": n.verdict,
            "tissue": n.tissue,
            "voxels": n.voxels,
            "max_temperature_C": _r(n.max_temperature_C),
            "min_temperature_C": _r(n.min_temperature_C),
            "hot_margin_C": _r(n.hot_margin_C),
            "cold_margin_C": _r(n.cold_margin_C),
            "time_above_threshold_s": _r(n.time_above_threshold_s, 2),
            "first_crossing_s": _r(n.first_crossing_s, 2),
            "time_below_cold_limit_s": _r(n.time_below_cold_limit_s, 2),
            "first_cold_crossing_s": _r(n.first_cold_crossing_s, 2),
            "fraction_voxels_above": _r(n.fraction_voxels_above, 5),
            "fraction_voxels_below": _r(n.fraction_voxels_below, 5),
            "max_cem43_min": _r(n.max_cem43_min, 4),
            "max_arrhenius_omega": float(f"{n.max_arrhenius_omega:.4g}"),
            "min_distance_to_ablation_mm": _r(n.min_distance_to_ablation_mm, 2),
            "hottest_point_mm": [_r(v, 2) for v in n.hottest_point_mm],
            "coldest_point_mm": [_r(v, 2) for v in n.coldest_point_mm],
        }
    tissue_of = {s.name: s.tissue for s in result.model.structures}
    for name in analysis.unresolved:
        # nothing was measured: the same keys, with no numbers
        nerves[name] = dict.fromkeys(_NERVE_ROW_KEYS) | {
            "verdict": NOT_RESOLVED,
            "tissue": tissue_of[name],
            "voxels": 0,
        }
    z = analysis.ablation_zone
    tum = analysis.tumour
    phase_rows = [
        {
            "name": p.name,
            "duration_s": _r(p.duration_s, 3),
            "energy_J": _r(p.energy_J, 3),
            "steps": p.steps,
            "dt_s": _r(p.dt_s, 5),
            "cutoff_at_s": _r(p.cutoff_at_s, 2),
            "held_heat_J": _r(p.held_heat_J, 3),
        }
        for p in result.phases
    ]
    events = [_event_row(e) for e in result.events]
    return {
        "ablasim_version": __version__,
        "created_utc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "scenario": scenario_name,
        "description": description,
        "verdict": analysis.verdict,
        "tumour": {
            "coverage_fraction": _r(tum.coverage_fraction, 4),
            "target_fraction": tum.target_fraction,
            "margin_mm": _r(tum.margin_mm, 3),
            "verdict": tum.verdict,
            "target_volume_ml": _r(tum.target_volume_ml, 4),
        },
        "events": events,
        "generator_pauses": generator_pauses(events, phase_rows),
        "plan": None if phases is None else plan(phases),
        "limits": {"hot_limit_C": result.limits.hot_C, "cold_limit_C": result.limits.cold_C},
        "nerves": nerves,
        "still_changing": still_changing(result, analysis),
        "warnings": list(analysis.warnings),
        "ablation_zone": {
            "criterion": z.criterion,
            "volume_ml": _r(z.volume_ml, 4),
            "extent_mm": [_r(v, 2) for v in z.extent_mm],
            "tumour_coverage_fraction": _r(z.tumour_coverage_fraction, 4),
            "tumour_volume_ml": _r(z.tumour_volume_ml, 4),
        },
        "sections": list(result.sections) + (["iceball"] if analysis.iceball else []),
        **{name: _rounded(sec) for name, sec in result.sections.items()},
        **({"iceball": _rounded(analysis.iceball)} if analysis.iceball else {}),
        "thermocouples": {
            t.name: {
                "position_mm": [_r(v * 1e3, 2) for v in t.position],
                "max_temperature_C": _r(t.max_temperature_C),
                "min_temperature_C": _r(t.min_temperature_C),
                "cutoff": t.cutoff,
                "cutoff_at_s": _r(t.cutoff_at_s, 2),
            }
            for t in result.thermocouples.values()
        },
        "phases": phase_rows,
        "grid": {
            "shape": list(g.shape),
            "spacing_mm": _r(g.spacing * 1e3, 6),
            "origin_mm": [_r(v * 1e3, 4) for v in g.origin],
        },
        "timing": {k: (_r(v, 4) if isinstance(v, float) else v) for k, v in result.timing.items()},
        "assumptions": assumptions(result, z.criterion, source_assumptions),
        "notes": list(notes),
    }


def _rounded(x: Any) -> Any:
    """A source's report section with its floats rounded (6 significant digits) and
    non-finite ones as null."""
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    if isinstance(x, float | np.floating):
        return float(f"{x:.6g}") if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def _section_lines(name: str, sec: dict[str, Any]) -> list[str]:
    """A source's report section as text: a heading, then ``key: value`` lines (nested
    tables indented)."""

    def lines(d: dict[str, Any], indent: str) -> list[str]:
        out = []
        for k, v in d.items():
            if isinstance(v, dict):
                out.append(f"{indent}{k}:")
                out += lines(v, indent + "  ")
            else:
                out.append(f"{indent}{k}: {_value(v)}")
        return out

    return [name.replace("_", " ").capitalize(), *lines(sec, "  "), ""]


def _event_row(e: dict[str, Any]) -> dict[str, Any]:
    """An event for report.json: its keys as the loop gave them, numbers rounded."""
    return {
        k: (_r(v, 4) if isinstance(v, float) else v)
        for k, v in ({"time_s": None, "kind": None, "source": None, "detail": ""} | e).items()
    }


def plan(phases: Sequence[Phase]) -> dict[str, Any]:
    """The plan as run: per phase its name, duration [s] and each source's
    :meth:`~ablasim.sources.Source.describe` (kind, name, settings in the file's units)."""
    return {
        "phases": [
            {
                "name": p.name,
                "duration_s": _r(float(p.duration), 3),
                "sources": [src.describe() for src in p.sources],
            }
            for p in phases
        ]
    }


def generator_pauses(
    events: list[dict[str, Any]], phases: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The ``generator_pause`` events summed up per source and phase: ``count``,
    ``first_s`` (the first pause, from the run's start), ``power_on_s`` (the time the
    generator was not paused while the phase's sources were on: until the phase's end or
    its cut-off) and ``on_for_s`` (that whole time)."""
    starts = np.cumsum([0.0] + [p["duration_s"] for p in phases])
    out = []
    for i, ph in enumerate(phases):
        t0 = float(starts[i])
        end = t0 + ph["duration_s"] if ph["cutoff_at_s"] is None else ph["cutoff_at_s"]
        mine = [
            e for e in events if e["kind"] == "generator_pause" and e.get("phase") == ph["name"]
        ]
        for source in dict.fromkeys(e["source"] for e in mine):
            paused = 0.0
            reach = t0  # the pauses' union so far ends here
            for e in (e for e in mine if e["source"] == source):
                a = max(e["time_s"], reach)
                b = min(e["time_s"] + e.get("pause_s", 0.0), end)
                if b > a:
                    paused += b - a
                reach = max(reach, b)
            hits = [e["time_s"] for e in mine if e["source"] == source]
            out.append(
                {
                    "source": source,
                    "phase": ph["name"],
                    "count": len(hits),
                    "first_s": min(hits),
                    "power_on_s": _r(end - t0 - paused, 2),
                    "on_for_s": _r(end - t0, 2),
                }
            )
    return out


def _fmt_t(s):
    if s is None:
        return "never"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def _value(v) -> str:
    """A setting as the scenario file writes it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


def _plan_lines(plan_: dict[str, Any]) -> list[str]:
    """The plan as run, one phase a line, its sources' settings wrapped under it."""
    out = ["Plan as run (from the scenario file)"]
    for ph in plan_["phases"]:
        out.append(
            f"  phase '{ph['name']}', {_fmt_t(ph['duration_s'])}"
            + ("" if ph["sources"] else ": no source")
        )
        for d in ph["sources"]:
            line = f"    {d['name']} ({d['kind']}):"
            items = [f"{k} = {_value(v)}" for k, v in d.items() if k not in ("kind", "name")]
            for n, item in enumerate(items):
                piece = f" {item}" + ("," if n < len(items) - 1 else "")
                if len(line) + len(piece) > 100:  # wrap between settings, never inside one
                    out.append(line)
                    line = "     "
                line += piece
            out.append(line)
    return out


def _verdict_lines(report: dict[str, Any]) -> list[str]:
    """The first two lines: nerve safety, then tumour coverage."""
    tum = report.get("tumour") or {}
    want = tum.get("target_fraction", 1.0)
    margin = tum.get("margin_mm") or 0.0
    goal = f"target {100 * want:g} % of the tumour" + (
        f" and a {margin:g} mm margin" if margin else ", no margin"
    )
    if tum.get("verdict") is None:
        tumour = "not assessed (the model has no tumour)"
    else:
        what = "tumour" if not margin else "tumour and margin"
        tumour = (
            f"{tum['verdict']} ({100 * tum['coverage_fraction']:.0f} % of the "
            f"{tum['target_volume_ml']:.2f} ml {what} in the ablation zone; {goal})"
        )
    return [f"NERVE SAFETY: {report['verdict']}", f"TUMOUR COVERAGE: {tumour}"]


def _event_lines(report: dict[str, Any]) -> list[str]:
    """The events block: each cut-off and other event on a line, the generator pauses
    summed up per source and phase."""
    events = report.get("events") or []
    if not events:
        return []
    out = ["Events"]
    pauses = {(p["source"], p["phase"]): p for p in report.get("generator_pauses", [])}
    said = set()
    for e in events:
        if e["kind"] == "generator_pause":
            key = (e["source"], e.get("phase"))
            if key in said or key not in pauses:
                continue
            said.add(key)
            p = pauses[key]
            n = p["count"]
            out.append(
                f"  from {_fmt_t(p['first_s'])}, {p['source']}: the generator paused "
                f"{n} time{'s' if n > 1 else ''} on high impedance (roll-off) in phase "
                f"'{p['phase']}'; power on for {_fmt_t(p['power_on_s'])} of "
                f"{_fmt_t(p['on_for_s'])}"
            )
        elif e["kind"] == "cutoff":
            out.append(f"  at {_fmt_t(e['time_s'])}, cut-off: {e['detail']}")
        else:
            who = f" ({e['source']})" if e.get("source") else ""
            out.append(f"  at {_fmt_t(e['time_s'])}, {e['kind']}{who}: {e['detail']}")
    return out


def _trend_lines(entries: list[dict[str, Any]], last_phase) -> list[str]:
    """The ``still_changing`` entries that could reach their limit as a short block: one
    sentence, then one line per trace, closest to its limit first; the others counted."""
    if not entries:
        return []
    phase = "the last phase" if last_phase is None else f"the last phase ('{last_phase}')"
    out = []
    for rising in (True, False):
        group = [
            e
            for e in entries
            if (e["direction"] == "rising") == rising and e.get("could_reach_limit", True)
        ]
        if not group:
            continue
        out.append(
            f"  still {'warming' if rising else 'cooling'} when the run ended, so their "
            f"{'peaks come' if rising else 'lowest temperatures come'} later than reported "
            f"(lengthen {phase} to see them):"
        )
        group.sort(key=lambda e: math.inf if e["margin_K"] is None else e["margin_K"])
        for e in group:
            who = e["name"] if e["what"] == "nerve" else f"thermocouple {e['name']}"
            m = e["margin_K"]
            if m is None:
                margin = "no cold limit"
            else:
                side = (
                    ("below" if m > 0 else "above") if rising else ("above" if m > 0 else "below")
                )
                margin = f"{abs(m):.1f} K {side} the limit"
            out.append(
                f"    {who:<30} {e['value_C']:6.1f} °C, {e['change_K']:+.2f} K in the last "
                f"{_fmt_t(e['window_s'])}, {margin}"
            )
    rest = sum(not e.get("could_reach_limit", True) for e in entries)
    if rest:
        out.append(
            f"  {rest}{' more' if out else ''} trace{'s' if rest > 1 else ''} still creeping "
            f"toward a limit at the end, but not reaching it in the next "
            f"{TREND_HORIZON_S / 60:g} min at the current rate (report.json: still_changing)"
        )
    return out


def render_text(report: dict[str, Any]) -> str:
    """``report.txt``: the two verdicts first (nerve safety, tumour coverage), the
    events and warnings, then a table of the nerve structures and the rest."""
    hot = report["limits"]["hot_limit_C"]
    cold = report["limits"]["cold_limit_C"]
    nerves = report["nerves"]
    lines = _verdict_lines(report)
    failing = [(n, v) for n, v in nerves.items() if v["verdict"] == "FAIL"]
    unresolved = [n for n, v in nerves.items() if v["verdict"] == NOT_RESOLVED]
    checked = {n: v for n, v in nerves.items() if v["verdict"] != NOT_RESOLVED}
    spacing = f"{report['grid']['spacing_mm']:g} mm"
    if not nerves:
        lines.append("  (the model holds no nerve structure: nothing was checked)")
    elif failing or unresolved:
        for n in unresolved:
            lines.append(
                f"  {n} was not checked: no voxel at {spacing} spacing (counts as FAIL; "
                "refine grid.spacing_mm)"
            )
        for n, v in failing:
            # the verdict came from unrounded values: test the (rounded) margins with <=
            if v["hot_margin_C"] <= 0:
                lines.append(
                    f"  {n} reached {v['max_temperature_C']:.1f} °C (limit {hot:g} °C), "
                    f"first at {_fmt_t(v['first_crossing_s'])}, above it for "
                    f"{_fmt_t(v['time_above_threshold_s'])}"
                )
            if cold is not None and v["cold_margin_C"] <= 0:
                lines.append(
                    f"  {n} fell to {v['min_temperature_C']:.1f} °C (limit {cold:g} °C), "
                    f"first at {_fmt_t(v['first_cold_crossing_s'])}"
                )
    else:

        def margin(v):  # the nearer of its two limits [K]
            c = v["cold_margin_C"]
            return v["hot_margin_C"] if c is None else min(v["hot_margin_C"], c)

        worst = min(checked.values(), key=margin)
        name = next(k for k, v in checked.items() if v is worst)
        if worst["cold_margin_C"] is not None and worst["cold_margin_C"] < worst["hot_margin_C"]:
            closest = (
                f"{name} at {worst['min_temperature_C']:.1f} °C "
                f"({worst['cold_margin_C']:.1f} K above the cold limit)"
            )
        else:
            closest = (
                f"{name} at {worst['max_temperature_C']:.1f} °C "
                f"({worst['hot_margin_C']:.1f} K below the limit)"
            )
        lines.append(
            "  every nerve structure stayed within "
            + (f"{cold:g}–{hot:g} °C" if cold is not None else f"{hot:g} °C")
            + f"; closest: {closest}"
        )
    last_phase = report["phases"][-1]["name"] if report["phases"] else None
    lines += _trend_lines(report.get("still_changing", []), last_phase)
    # events and warnings stay in the first block: the console prints it
    lines += _event_lines(report)
    if report.get("warnings"):
        lines.append("Warnings")
        lines += [f"  - {w}" for w in report["warnings"]]
    lines += ["", f"ablasim {report['ablasim_version']} — {report['scenario']}"]
    if report["description"]:
        lines.append(report["description"])
    if report.get("plan"):
        lines += _plan_lines(report["plan"])
    lines.append("")
    if nerves:
        lines.append(f"Nerve structures (limits {cold if cold is not None else '-'} / {hot:g} °C)")
        hdr = (
            f"  {'structure':<24}{'verdict':<8}{'max °C':>8}{'margin K':>9}{'min °C':>8}"
            f"{'first >lim':>11}{'time >lim':>10}{'vox >lim':>9}{'CEM43 min':>10}"
            f"{'Omega':>9}{'to zone mm':>11}"
        )
        lines += [hdr, "  " + "-" * (len(hdr) - 2)]
        lines += [f"  {n:<24}{NOT_RESOLVED}: no voxel at {spacing} spacing" for n in unresolved]
        for n, v in sorted(checked.items(), key=lambda kv: kv[1]["hot_margin_C"]):
            dist = v["min_distance_to_ablation_mm"]
            lines.append(
                f"  {n:<24}{v['verdict']:<8}{v['max_temperature_C']:>8.1f}"
                f"{v['hot_margin_C']:>+9.1f}{v['min_temperature_C']:>8.1f}"
                f"{_fmt_t(v['first_crossing_s']):>11}{_fmt_t(v['time_above_threshold_s']):>10}"
                f"{100 * v['fraction_voxels_above']:>8.1f}%{v['max_cem43_min']:>10.3g}"
                f"{v['max_arrhenius_omega']:>9.2g}"
                f"{('-' if dist is None else f'{dist:.1f}'):>11}"
            )
        lines.append("")
    z = report["ablation_zone"]
    cov = z["tumour_coverage_fraction"]
    lines.append(f"Ablation zone ({z['criterion']})")
    lines.append(
        f"  volume {z['volume_ml']:.2f} ml, extent "
        + " x ".join(f"{v:.1f}" for v in z["extent_mm"])
        + " mm (x, y, z)"
        + (
            ""
            if cov is None
            else f", tumour covered {100 * cov:.0f} % of {z['tumour_volume_ml']:.2f} ml"
        )
    )
    lines.append("")
    for name in report.get("sections", []):
        lines += _section_lines(name, report[name])
    if report["thermocouples"]:
        lines.append("Thermocouples")
        for n, t in report["thermocouples"].items():
            cut = ""
            if t["cutoff"]:
                cut = (
                    f", cut-off at {_fmt_t(t['cutoff_at_s'])}"
                    if t["cutoff_at_s"] is not None
                    else ", cut-off armed, not triggered"
                )
            lines.append(
                f"  {n:<16} at {t['position_mm']} mm: max {t['max_temperature_C']:.1f} °C, "
                f"min {t['min_temperature_C']:.1f} °C{cut}"
            )
        lines.append("")
    lines.append("Phases")
    for p in report["phases"]:
        cut = "" if p["cutoff_at_s"] is None else f", sources cut off at {_fmt_t(p['cutoff_at_s'])}"
        if p.get("held_heat_J"):
            cut += f", held walls drew {p['held_heat_J'] / 1e3:.2f} kJ"
        lines.append(
            f"  {p['name']:<16}{_fmt_t(p['duration_s']):>9}, {p['energy_J'] / 1e3:.2f} kJ, "
            f"{p['steps']} steps of {p['dt_s']:.3g} s{cut}"
        )
    lines.append("")
    lines.append("Assumptions that matter")
    lines += [f"  - {a}" for a in report["assumptions"]]
    if report["notes"]:
        lines.append("")
        lines.append("Notes")
        lines += [f"  - {n}" for n in report["notes"]]
    g = report["grid"]
    t = report["timing"]
    if t.get("resumed_from_s") is not None:  # the timing below is this run's only
        lines += [
            "",
            f"Resumed from the checkpoint at t = {t['resumed_from_s']:g} s: this run computed "
            f"{t['steps_run']} of the {t['steps']} steps; the times below are its own.",
        ]
    lines += [
        "",
        f"Grid {g['shape']} voxels of {g['spacing_mm']} mm; {t.get('steps_run', t['steps'])} "
        "steps in "
        f"{t['wall_s']:.1f} s ({t['voxel_updates_per_s'] / 1e6:.0f} M voxel updates/s). "
        f"Where the time went: building the model {t.get('build_s', 0.0):.1f} s, "
        f"set-up and compilation {t['setup_s']:.1f} s, Pennes steps with damage "
        f"{t['pennes_s']:.1f} s, held-voxel damage {t['damage_s']:.1f} s, "
        "sources/thermocouples/bookkeeping "
        f"{t['other_s']:.1f} s"
        + "".join(
            f" (of which {name} {v['what']} {v['seconds']:.1f} s, {v['count']}"
            + (
                f"; loading or compiling their kernels first {v['compile_s']:.1f} s, not counted)"
                if v.get("compile_s")
                else ")"
            )
            for name, v in (t.get("sources") or {}).items()
        )
        + f", safety analysis {t.get('analysis_s', 0.0):.1f} s",
    ]
    return "\n".join(lines) + "\n"


def dumps(report: dict[str, Any]) -> str:
    """JSON text of the report (stable key order as built, 2-space indent)."""
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
