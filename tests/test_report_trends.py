"""The report warns when a nerve or thermocouple trace is still moving toward a limit at
the end of the run (its reported extreme is then not the true one)."""

from __future__ import annotations

import numpy as np
import pytest

import ablasim as ab
from ablasim.report import TREND_MIN_CHANGE_K, build_report, end_trend, render_text
from ablasim.safety import analyse
from ablasim.scenario import AblationCriterion

#: Differences of a few samples of order 40 °C round by ~1e-14 K; 1e-12 is ample.
ABS = 1e-12

T = np.arange(0.0, 301.0, 1.0)  # 5 min sampled every second


# -- the trend function on synthetic traces --------------------------------------------
def test_rising_at_the_end_is_flagged_with_the_change_over_the_window():
    trace = 37.0 + 0.01 * T  # +0.6 K per minute, still rising at 300 s
    tr = end_trend(T, trace, "rising")
    assert tr.still_moving
    assert tr.value_C == pytest.approx(40.0, abs=ABS)
    assert tr.window_s == 60.0
    assert tr.change_K == pytest.approx(0.6, abs=ABS)
    # a shorter window sees a proportionally smaller change
    tr30 = end_trend(T, trace, "rising", window_s=30.0)
    assert tr30.window_s == 30.0
    assert tr30.change_K == pytest.approx(0.3, abs=ABS)
    # rising is not the cold direction
    assert not end_trend(T, trace, "falling").still_moving


def test_the_vertebra_rf_epidural_case_is_flagged():
    """+0.09 K in the last 30 s at 44.71 °C (the example's epidural thermocouple)."""
    trace = 44.71 - 0.003 * (T[-1] - T)
    tr = end_trend(T, trace, "rising", start_C=37.0)
    assert tr.still_moving
    assert tr.change_K == pytest.approx(0.18, abs=1e-9)


def test_peak_in_the_middle_then_falling_is_not_flagged():
    trace = 37.0 + 8.0 * np.exp(-(((T - 150.0) / 60.0) ** 2))
    tr = end_trend(T, trace, "rising")
    assert not tr.still_moving
    assert tr.change_K < 0
    # a peak that falls back and then creeps up again at the end, below its maximum,
    # too slowly to pass it within 10 min: not flagged
    early = 37.0 + 8.0 * np.exp(-(((T - 100.0) / 30.0) ** 2))  # back at 37 °C by 240 s
    creep = early + np.where(T > 240, 0.002 * (T - 240), 0.0)  # +0.12 K per minute
    assert end_trend(T, creep, "rising").change_K > TREND_MIN_CHANGE_K
    assert not end_trend(T, creep, "rising").still_moving
    # climbing again fast enough to pass the earlier peak (after a generator pause, say):
    # flagged although the end is not (yet) the maximum
    late = early + np.where(T > 280, 0.1 * (T - 280), 0.0)  # +2 K in 20 s, to 39 °C
    assert late[-1] < late.max()
    assert end_trend(T, late, "rising").still_moving


def test_a_drift_within_the_threshold_is_not_flagged():
    # +0.04 K over the last minute: below half a thermocouple's resolution
    trace = 41.0 + (0.04 / 60.0) * T
    tr = end_trend(T, trace, "rising")
    assert tr.change_K == pytest.approx(0.04, abs=ABS)
    assert tr.change_K < TREND_MIN_CHANGE_K
    assert not tr.still_moving
    assert not end_trend(T, np.full_like(T, 37.0), "rising").still_moving


def test_a_cryo_trace_still_falling_is_flagged_as_falling():
    trace = 37.0 - 0.1 * T  # down to 7 °C, still falling 6 K per minute
    tr = end_trend(T, trace, "falling", start_C=37.0)
    assert tr.still_moving
    assert tr.change_K == pytest.approx(-6.0, abs=1e-9)
    assert tr.value_C == pytest.approx(7.0, abs=1e-9)
    assert not end_trend(T, trace, "rising", start_C=37.0).still_moving
    # thawing (the coldest moment in the middle) is not flagged
    thaw = np.where(T > 200.0, 17.0 + 0.05 * (T - 200.0), trace)
    assert not end_trend(T, thaw, "falling", start_C=37.0).still_moving


def test_body_temperature_gates_the_direction():
    # relaxing toward body temperature after heating: falling, but not toward the cold limit
    cooling = 37.0 + 3.0 * np.exp(-T / 100.0)
    assert end_trend(T, cooling, "falling").change_K < -TREND_MIN_CHANGE_K
    assert not end_trend(T, cooling, "falling", start_C=37.0).still_moving
    # a falling trace that stays within 2 K of body temperature is not cryo
    mild = 37.0 - 1.5 * T / T[-1]
    assert end_trend(T, mild, "falling").still_moving
    assert not end_trend(T, mild, "falling", start_C=37.0).still_moving
    # rewarming from a cool start toward body temperature is not approaching the hot limit
    rewarm = 30.0 + 0.02 * T
    assert end_trend(T, rewarm, "rising").still_moving
    assert not end_trend(T, rewarm, "rising", start_C=37.0).still_moving


def test_traces_shorter_than_the_window_use_the_whole_trace():
    t = np.array([0.0, 10.0, 20.0, 30.0])
    tr = end_trend(t, [37.0, 37.5, 38.0, 38.4], "rising")
    assert tr.window_s == 30.0
    assert tr.change_K == pytest.approx(1.4, abs=ABS)
    assert tr.still_moving
    one = end_trend([0.0], [37.0], "rising")
    assert (one.window_s, one.change_K, one.still_moving) == (0.0, 0.0, False)


def test_peak_one_sample_before_the_end_counts_as_at_the_end():
    t = np.arange(0.0, 61.0)
    trace = 37.0 + 0.05 * t
    trace[-1] = trace[-2] - 0.001  # the turn comes on the last sample
    assert end_trend(t, trace, "rising").still_moving
    # past the peak for most of the window, falling: the window's change is negative
    trace[-40:] = trace[-41] - 0.1 * np.arange(1, 41)
    assert not end_trend(t, trace, "rising").still_moving


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (([0.0, 1.0], [37.0], "rising"), "same, non-zero length"),
        (([], [], "rising"), "same, non-zero length"),
        (([0.0, 1.0], [37.0, 38.0], "up"), "direction must be"),
    ],
)
def test_bad_input_is_refused(args, message):
    with pytest.raises(ValueError, match=message):
        end_trend(*args)


# -- the report of a real (tiny) simulation --------------------------------------------
def _nerve_model():
    """24 x 12 x 12 mm of muscle with a nerve slab at x > 3 mm (faces at 37 °C)."""
    grid = ab.Grid((24, 12, 12), 1e-3, origin=(-11.5e-3, -5.5e-3, -5.5e-3))
    labels = np.zeros(grid.shape, np.uint8)
    labels[grid.axes()[0] > 3e-3] = 1
    structures = (ab.Structure("muscle", "muscle"), ab.Structure("nerve_x", "nerve"))
    return ab.Model(grid, labels, structures)


def _report(cool_s):
    """60 s of heating next to the nerve, then ``cool_s`` of cooling; built like runner.py."""
    model = _nerve_model()
    heater = ab.VolumetricSource.sphere((-4e-3, 0.0, 0.0), 3e-3, power_density_W_m3=1.5e7)
    result = ab.simulate(
        model,
        [ab.Phase("heat", 60.0, [heater]), ab.Phase("cool", cool_s)],
        thermocouples=[ab.Thermocouple("tc", (1e-3, 0.0, 0.0))],
    )
    analysis = analyse(result, AblationCriterion())
    report = build_report(
        scenario_name="trend",
        description="",
        result=result,
        analysis=analysis,
        notes=[],
        source_assumptions=[],
    )
    return result, analysis, report


def test_report_flags_traces_still_rising_when_the_run_ends():
    result, analysis, report = _report(cool_s=5.0)
    entries = {(e["what"], e["name"]): e for e in report["still_changing"]}
    assert set(entries) == {("thermocouple", "tc"), ("nerve", "nerve_x")}
    tc = entries[("thermocouple", "tc")]
    assert set(tc) == {
        "what",
        "name",
        "direction",
        "value_C",
        "change_K",
        "window_s",
        "margin_K",
        "could_reach_limit",
    }
    trace, t = result.sensors["tc"], result.time
    i0 = int(np.searchsorted(t, t[-1] - 60.0))
    assert tc["direction"] == "rising"
    assert tc["value_C"] == round(float(trace[-1]), 3)
    assert tc["change_K"] == round(float(trace[-1] - trace[i0]), 3)
    assert tc["change_K"] > 1.0  # ~12 K: the heater was on until 5 s before the end
    assert tc["window_s"] == round(float(t[-1] - t[i0]), 2)
    assert tc["margin_K"] == round(45.0 - float(trace[-1]), 3)
    nerve = entries[("nerve", "nerve_x")]
    assert nerve["direction"] == "rising"
    assert nerve["value_C"] == round(float(result.nerve_max_trace["nerve_x"][-1]), 3)
    assert nerve["margin_K"] > 0
    # both climb fast enough to reach 45 °C within 10 min at their end rate (the
    # thermocouple is past it already), so the text names both
    assert tc["could_reach_limit"]
    assert nerve["could_reach_limit"]
    assert nerve["margin_K"] <= nerve["change_K"] / nerve["window_s"] * 600.0
    # the verdict logic is untouched: the nerve stayed below 45 °C
    assert report["verdict"] == analysis.verdict == "PASS"

    text = render_text(report)
    head = text.split("\n\n")[0]  # the verdict block
    assert "still warming when the run ended, so their peaks come later than reported" in head
    assert "lengthen the last phase ('cool') to see them" in head
    lines = head.splitlines()
    nerve_line = next(x for x in lines if x.strip().startswith("nerve_x "))
    assert f"{nerve['value_C']:.1f} °C" in nerve_line
    assert f"{nerve['change_K']:+.2f} K in the last" in nerve_line
    assert f"{nerve['margin_K']:.1f} K below the limit" in nerve_line
    tc_line = next(x for x in lines if x.strip().startswith("thermocouple tc "))
    assert f"{-tc['margin_K']:.1f} K above the limit" in tc_line
    # the trace past its limit comes first (closest to, or beyond, the limit first)
    assert lines.index(tc_line) < lines.index(nerve_line)


def test_report_is_quiet_when_every_trace_has_peaked():
    _, _, report = _report(cool_s=240.0)
    assert report["still_changing"] == []
    assert "still warming" not in render_text(report)


def test_slow_creep_far_from_the_limit_is_counted_not_listed():
    """A trace still rising at the end, but too slowly for its end rate to reach the
    limit within 10 min, stays in report.json and is only counted in the text."""
    _, _, report = _report(cool_s=5.0)
    entries = report["still_changing"]
    for e in entries:  # as if each were 100 windows of climb below its limit
        e["margin_K"] = 100.0 * abs(e["change_K"])
        e["could_reach_limit"] = False
    head = render_text(report).split("\n\n")[0]
    assert "still warming when the run ended" not in head
    assert f"{len(entries)} traces still creeping toward a limit" in head
    # a fixed look-ahead, not the run's length: said as such
    assert "not reaching it in the next 10 min at the current rate" in head
    assert "too slowly" not in head
