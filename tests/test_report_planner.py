"""What the planner reads first: two verdicts (nerves, tumour), the events that changed the
treatment, where the model left its range, and the plan as it ran, from ``ablasim run``'s
files (report.json, report.txt, timeseries.csv, fields.vti).

Small models (1.5-2 mm voxels, phases of seconds to a few minutes) so each run takes
seconds; every expected number is computed here from the scenario or read back from
another output file, not taken from the report itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import ablasim as ab
import ablasim.sources.rf.bound as rf_bound
from ablasim.cli import example_path, main
from ablasim.report import build_report, render_text
from ablasim.safety import analyse
from ablasim.scenario import AblationCriterion, TumourTarget
from ablasim.tables import read_timeseries_csv
from ablasim.vtkio import read_vti

# the small vertebra of test_cli.py: a weak heater far from the tumour (0 % coverage)
SMALL_VERTEBRA = """
name = "small-vertebra"
description = "coarse vertebra for the tests"
[grid]
spacing_mm = 1.5
extent_mm = [42, 54, 30]
center_mm = [0, -10, 0]
[anatomy]
phantom = "vertebra"
tumour = {{ center_mm = [0, 2, 0], diameter_mm = 16, kind = "lytic" }}
[[phase]]
name = "heat"
duration_s = 30
[[phase.source]]
kind = "volumetric"
shape = "sphere"
center_mm = [0, -12, 0]
radius_mm = 3
power_W = 0.5
{safety}
"""


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _run(path: Path, out: Path, *extra: str) -> tuple[int, dict, str]:
    code = main(["run", str(path), "--out", str(out), "-q", *extra])
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return code, rep, (out / "report.txt").read_text(encoding="utf-8")


def _head(text: str) -> str:
    """The verdict block: what the console prints (up to the first blank line)."""
    return text.split("\n\n", 1)[0]


# -- the tumour verdict --------------------------------------------------------------------
def test_zero_coverage_is_incomplete_and_strict_fails(tmp_path):
    """The heater sits behind the tumour, far from it: no tumour voxel is ablated. The
    nerves pass, yet the plan is INCOMPLETE, and ``--strict`` exits 1 on it (before the
    two verdicts, the report said PASS and --strict exited 0)."""
    path = _write(tmp_path, SMALL_VERTEBRA.format(safety=""))
    code, rep, txt = _run(path, tmp_path / "out")
    assert code == 0
    assert rep["verdict"] == "PASS"
    assert rep["tumour"] == {
        "coverage_fraction": 0.0,
        "target_fraction": 1.0,
        "margin_mm": 0.0,
        "verdict": "INCOMPLETE",
        "target_volume_ml": rep["ablation_zone"]["tumour_volume_ml"],
    }
    lines = txt.splitlines()
    assert lines[0] == "NERVE SAFETY: PASS"
    assert lines[1].startswith("TUMOUR COVERAGE: INCOMPLETE (0 % of the ")
    assert "target 100 % of the tumour, no margin" in lines[1]
    assert main(["run", str(path), "--out", str(tmp_path / "o2"), "-q", "--strict"]) == 1


def test_coverage_target_must_be_a_fraction(tmp_path, capsys):
    path = _write(tmp_path, SMALL_VERTEBRA.format(safety="[safety]\ntumour_coverage_target = 95"))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "safety.tumour_coverage_target" in err
    assert "e.g. tumour_coverage_target = 0.95" in err


H = 1e-3
DT = 1e-3  # s, far below the stable step: the initial temperatures barely move


def _cube(c: int, r: int) -> tuple[slice, slice, slice]:
    return (slice(c - r, c + r + 1),) * 3


def test_margin_grows_the_target():
    """A 3x3x3-voxel tumour inside a 5x5x5 block started at 80 °C (ablated: the
    temperature criterion, 60 °C), in adiabatic muscle at 37 °C. No margin or 1 mm: all
    covered (the ring of face neighbours lies in the block); 2 mm: the target reaches
    past the block, and its covered share is counted here voxel by voxel."""
    n, c = 11, 5
    grid = ab.Grid((n,) * 3, H, origin=(0.0, 0.0, 0.0))
    still = {"perfusion_per_s": 0.0, "metabolic_W_m3": 0.0}
    lib = ab.Model.uniform(grid).tissues.with_overrides({"muscle": still, "tumour_lytic": still})
    labels = np.zeros(grid.shape, np.uint8)
    labels[_cube(c, 1)] = 1
    structures = (ab.Structure("muscle", "muscle"), ab.Structure("tumour", "tumour_lytic"))
    model = ab.Model(grid, labels, structures, lib, ab.Boundary.adiabatic())
    T0 = np.full(grid.shape, 37.0)
    T0[_cube(c, 2)] = 80.0
    result = ab.simulate(model, [ab.Phase("hold", 3 * DT)], initial_temperature=T0, dt=DT)
    crit = AblationCriterion(kind="temperature", temperature_C=60.0)
    # the target with a 2 mm margin, by brute force: centres within 2 mm of a tumour centre
    idx = np.indices(grid.shape).reshape(3, -1).T
    tumour = np.argwhere(labels == 1)
    d = np.sqrt(((idx[:, None, :] - tumour[None, :, :]) ** 2).sum(-1)).min(1) * H
    target = (d <= 2e-3 + 1e-12).reshape(grid.shape)
    block = np.zeros(grid.shape, bool)
    block[_cube(c, 2)] = True
    expected = (target & block).sum() / target.sum()
    assert 0.3 < expected < 0.9
    for margin, coverage, verdict in ((0.0, 1.0, "COMPLETE"), (1e-3, 1.0, "COMPLETE"),
                                      (2e-3, expected, "INCOMPLETE")):  # fmt: skip
        a = analyse(result, crit, target=TumourTarget(1.0, margin))
        assert a.tumour.coverage_fraction == pytest.approx(coverage, abs=1e-12), margin
        assert a.tumour.verdict == verdict
        assert a.tumour.margin_mm == pytest.approx(margin * 1e3)
        assert a.tumour.target_volume_ml == pytest.approx(
            (target.sum() if margin == 2e-3 else (27 + 6 * 9) if margin else 27) * 1e-3
        )
    # a target below the coverage reached passes
    a = analyse(result, crit, target=TumourTarget(math.floor(expected * 100) / 100, 2e-3))
    assert a.tumour.verdict == "COMPLETE"
    report = build_report(
        scenario_name="margin", description="", result=result, analysis=a, notes=[],
        source_assumptions=[],
    )  # fmt: skip
    second = render_text(report).splitlines()[1]
    assert second.startswith(f"TUMOUR COVERAGE: COMPLETE ({100 * expected:.0f} % of the ")
    assert "and a 2 mm margin" in second


# -- events ---------------------------------------------------------------------------------
CUTOFF_VERTEBRA = SMALL_VERTEBRA.replace("duration_s = 30", "duration_s = 300").replace(
    "power_W = 0.5", "power_W = 4"
)


def test_cutoff_is_an_event_in_the_verdict_block(tmp_path):
    """The epidural thermocouple (cut-off armed) beside the heater trips; the event says
    when, which thermocouple, which source went off and how much of the plan ran."""
    safety = '[[safety.thermocouple]]\nname = "epidural"\nposition_mm = [0, -17, 0]\ncutoff = true'
    path = _write(tmp_path, CUTOFF_VERTEBRA.format(safety=safety))
    _, rep, txt = _run(path, tmp_path / "out")
    cut = rep["thermocouples"]["epidural"]["cutoff_at_s"]
    assert cut is not None
    assert 0 < cut < 300
    (event,) = rep["events"]
    assert {"time_s", "kind", "source", "detail"} <= set(event)
    assert event["kind"] == "cutoff"
    assert event["time_s"] == pytest.approx(cut, abs=0.01)
    assert event["source"] == "volumetric1"
    assert event["thermocouples"] == ["epidural"]
    assert event["fraction_of_time"] == pytest.approx(cut / 300, rel=1e-3)
    # a volumetric source's set power is deposited as is: energy share = time share
    assert event["planned_energy_J"] == pytest.approx(4 * 300)
    assert event["energy_J"] == pytest.approx(4 * cut, rel=1e-3)
    head = _head(txt)
    assert "Events" in head
    line = next(x for x in head.splitlines() if "cut-off:" in x)
    assert "thermocouple epidural" in line
    assert "volumetric1 switched off" in line
    assert f"({100 * cut / 300:.0f} %)" in line


RF_SCENARIO = """
name = "rf-rolloff"
description = "too much power for a thin uncooled needle"
[grid]
spacing_mm = 1
extent_mm = [24, 24, 24]
[anatomy]
phantom = "uniform"
tissue = "muscle"
[[phase]]
name = "rf"
duration_s = 40
[[phase.source]]
kind = "rf"
name = "rf1"
tip_mm = [0, 0, 5]
direction = [0, 0, 1]
active_length_mm = 10
diameter_mm = 1.5
control = {{ kind = "power", power_W = 40 }}
{extra}
"""


def test_rf_impedance_pauses_are_events(tmp_path):
    """40 W into a 1.5 mm uncooled needle: the tissue dries, the impedance jumps and the
    generator pauses for 15 s (test_rf.py's case as a scenario). Each pause is an event;
    the verdict block counts them and gives the time with power on, which the power
    column of timeseries.csv confirms."""
    path = _write(tmp_path, RF_SCENARIO.format(extra=""))
    _, rep, txt = _run(path, tmp_path / "out")
    pauses = [e for e in rep["events"] if e["kind"] == "generator_pause"]
    assert pauses, rep["events"]
    assert all(e["source"] == "rf1" and "impedance" in e["detail"] for e in pauses)
    (summary,) = rep["generator_pauses"]
    assert summary["count"] == len(pauses)
    assert summary["first_s"] == pauses[0]["time_s"]
    ts = read_timeseries_csv(tmp_path / "out" / "timeseries.csv")
    # one sample a step (dt > 1 s); each holds the power of the step it ends
    dt = rep["phases"][0]["dt_s"]
    assert np.diff(ts["time_s"]) == pytest.approx(dt)
    on = (ts["deposited_power_W"][1:] > 0).sum() * dt
    # the generator is asked once a step, so a pause's end is known to a step
    assert summary["power_on_s"] == pytest.approx(on, abs=dt)
    assert summary["power_on_s"] < 40 - 15
    # the generator's own telemetry beside the deposited power: the same number
    np.testing.assert_array_equal(ts["rf1_power_W"][1:], ts["deposited_power_W"][1:])
    head = _head(txt)
    n = len(pauses)
    assert f"rf1: the generator paused {n} time{'s' if n > 1 else ''}" in head
    assert f"power on for {summary['power_on_s']:.0f} s of 40 s" in head


def test_generator_pauses_survive_a_resume(tmp_path, monkeypatch, interrupt_after):
    """The pauses live in the generator's checkpoint state: a run interrupted after its
    first pause and resumed reports the same events as an uninterrupted one."""
    model = ab.Model.uniform(ab.Grid.from_extent(0.024, 1e-3), "muscle")

    def run(**kw):
        src = ab.RFSource(
            tip=(0.0, 0.0, 0.005), direction=(0, 0, 1), active_length=0.01,
            diameter=1.5e-3, control="power", power_W=40.0,
        )  # fmt: skip
        return ab.simulate(
            model, [ab.Phase("rf", 40.0, [src])], dt=0.5, checkpoint=tmp_path / "ck.npz",
            checkpoint_interval=0.0, threads=1, **kw,
        )  # fmt: skip

    ref = run()
    first = [e for e in ref.events if e["kind"] == "generator_pause"]
    assert first, "no pause"
    (tmp_path / "ck.npz").unlink()
    interrupt_after(int(first[0]["time_s"] / 0.5) + 4)  # a few steps into the pause
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.undo()
    res = run(resume=True)
    assert res.timing["resumed_from_s"] is not None
    assert res.timing["resumed_from_s"] > first[0]["time_s"]
    assert res.events == ref.events


# -- microwave: a cut-off, the set and the deposited power, the plan as run ----------------
@pytest.fixture(scope="module")
def mw_run(tmp_path_factory):
    """vertebra-mw copied and edited as a user would: 2 mm voxels, 35 W instead of
    20 W (its description still says 20 W), a short phase, and the epidural
    thermocouple moved next to the antenna so that it cuts the power off."""
    tmp = tmp_path_factory.mktemp("mw")
    text = example_path("vertebra-mw").read_text(encoding="utf-8")
    edits = {
        "spacing_mm = 0.5": "spacing_mm = 2",
        "power_W = 20": "power_W = 35",
        "duration_s = 270": "duration_s = 60",
        "duration_min = 3": "duration_s = 20",
        "position_mm = [0, -17, 0]": "position_mm = [0, 4, 4]",
    }
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = _write(tmp, text, "my-mw.toml")
    code, rep, txt = _run(path, tmp / "out")
    return code, rep, txt, read_timeseries_csv(tmp / "out" / "timeseries.csv")


def test_plan_shows_the_numbers_that_ran(mw_run):
    _, rep, txt, _ = mw_run
    assert "20 W" in rep["description"]  # the stale description
    (mw, cool) = rep["plan"]["phases"]
    assert (mw["name"], mw["duration_s"], cool["duration_s"]) == ("microwave", 60, 20)
    (antenna,) = mw["sources"]
    assert antenna["kind"] == "microwave"
    assert antenna["name"] == "antenna"
    assert antenna["power_W"] == 35
    assert antenna["tip_mm"] == [0, 10, 0]
    assert cool["sources"] == []
    plan = txt.split("Plan as run (from the scenario file)\n", 1)[1].split("\n\n", 1)[0]
    assert "phase 'microwave', 60 s" in plan
    assert "antenna (microwave): " in plan
    assert "power_W = 35" in plan
    assert "tip_mm = [0, 10, 0]" in plan
    assert "phase 'cool-down', 20 s: no source" in plan


def test_microwave_cutoff_and_its_power_columns(mw_run):
    _, rep, txt, ts = mw_run
    (event,) = [e for e in rep["events"] if e["kind"] == "cutoff"]
    assert event["source"] == "antenna"
    assert event["thermocouples"] == ["epidural"]
    cut = rep["thermocouples"]["epidural"]["cutoff_at_s"]
    assert event["time_s"] == pytest.approx(cut, abs=0.01)
    assert 0 < event["time_s"] < 60
    # the absorbed power is efficiency x set power, constant until the cut-off: the
    # planned energy in tissue is 0.8 x 35 W x 60 s
    assert event["planned_energy_J"] == pytest.approx(0.8 * 35 * 60)
    assert event["fraction_of_energy"] == pytest.approx(event["fraction_of_time"], rel=1e-6)
    assert "cut-off: thermocouple epidural" in _head(txt)
    assert "antenna switched off" in _head(txt)
    on = ts["time_s"] <= event["time_s"]
    on[0] = False  # t = 0: nothing on yet
    np.testing.assert_allclose(ts["antenna_set_power_W"][on], 35.0)
    np.testing.assert_allclose(ts["deposited_power_W"][on], 0.8 * 35.0)
    np.testing.assert_allclose(ts["antenna_absorbed_W"][on], 0.8 * 35.0)
    assert "power_W" not in ts
    # the nerve columns: <structure>_max_C, no doubled nerve_ prefix
    assert {"spinal_cord_max_C", "nerve_root_left_max_C"} <= set(ts)
    assert not any(k.startswith("nerve_nerve_") for k in ts)


# -- where the model leaves its range -------------------------------------------------------
HOT_SCENARIO = """
name = "too-hot"
[grid]
spacing_mm = 2
extent_mm = [20, 20, 20]
[anatomy]
phantom = "uniform"
tissue = "muscle"
[[phase]]
name = "heat"
duration_s = 60
[[phase.source]]
kind = "volumetric"
shape = "sphere"
center_mm = [0, 0, 0]
radius_mm = 2
power_W = 10
[[phase]]
name = "blip"
duration_s = 2
"""


def test_boiling_voxels_and_a_short_phase_are_warnings(tmp_path):
    """10 W into a 2 mm sphere for a minute: voxels pass 100 °C. The warning's count,
    hottest value and place agree with the peak-temperature field of fields.vti. The
    2 s phase is a step or two long: warned as well."""
    out = tmp_path / "out"
    _, rep, txt = _run(_write(tmp_path, HOT_SCENARIO), out)
    meta, fields = read_vti(out / "fields.vti")
    tmax = fields["max_temperature_C"].astype(float)
    n_hot = int((tmax > 100.0).sum())
    assert n_hot > 0
    where = np.unravel_index(np.argmax(tmax), tmax.shape)
    mm = [o + s * i for o, s, i in zip(meta["origin"], meta["spacing"], where, strict=True)]
    (hot,) = [w for w in rep["warnings"] if "above 100 °C" in w]
    assert hot.startswith(f"{n_hot} voxel")
    assert f"the hottest to {tmax.max():.0f} °C" in hot
    assert "[" + ", ".join(f"{round(v, 2):g}" for v in mm) + "] mm" in hot
    steps = rep["phases"][1]["steps"]
    assert steps < 5
    (short,) = [w for w in rep["warnings"] if "Phase 'blip'" in w]
    assert f"lasts only {steps} time step" in short
    head = _head(txt)
    assert "Warnings" in head
    assert hot in head
    assert short in head


def _nerve_model(nerve_cube: int) -> ab.Model:
    grid = ab.Grid((9, 9, 9), H, origin=(0.0, 0.0, 0.0))
    labels = np.zeros(grid.shape, np.uint8)
    labels[(slice(3, 3 + nerve_cube),) * 3] = 1
    structures = (ab.Structure("muscle", "muscle"), ab.Structure("root", "nerve"))
    return ab.Model(grid, labels, structures, ab.Model.uniform(grid).tissues, ab.Boundary.body())


@pytest.mark.parametrize(("size", "thin"), [(2, True), (3, False)])
def test_a_nerve_too_thin_for_the_grid_is_a_warning(size, thin):
    """A 2x2x2-voxel root: none of its voxels has all six face neighbours in the root;
    a 3x3x3 one has its centre voxel: only the first is warned of."""
    model = _nerve_model(size)
    result = ab.simulate(model, [ab.Phase("wait", 10.0)], dt=1.0)
    warnings = [w for w in analyse(result, AblationCriterion()).warnings if "'root'" in w]
    assert len(warnings) == int(thin)
    if thin:
        assert "too thin for the 1 mm grid" in warnings[0]
        assert "none of its 8 voxels" in warnings[0]


# -- words ------------------------------------------------------------------------------------
def test_rf_timing_does_not_count_compilation_as_solves(monkeypatch):
    """The first RF solve in a process loads (or compiles) the kernels first: that time
    is its own entry, not part of the solves' seconds, and the timing line says so."""
    monkeypatch.setattr(rf_bound, "_kernels_ready", False)
    model = ab.Model.uniform(ab.Grid.from_extent(0.016, 1e-3), "muscle")
    src = ab.RFSource(
        tip=(0.0, 0.0, 0.004), direction=(0, 0, 1), active_length=0.006, diameter=1.65e-3,
        control="power", power_W=2.0, name="rf1",
    )  # fmt: skip
    result = ab.simulate(model, [ab.Phase("rf", 4.0, [src])], dt=1.0)
    t = result.timing["sources"]["rf1"]
    assert t["compile_s"] > 0
    report = build_report(
        scenario_name="t", description="", result=result,
        analysis=analyse(result, AblationCriterion()), notes=[], source_assumptions=[],
    )  # fmt: skip
    line = render_text(report).splitlines()[-1]
    assert f"rf1 potential solves {t['seconds']:.1f} s, {t['count']}; loading or compiling" in line
    assert "not counted" in line
