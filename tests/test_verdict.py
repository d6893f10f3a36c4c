"""The nerve verdict and the thermocouple cut-off: one rule, reaching a limit counts.

Small adiabatic models without perfusion or metabolic heat: a uniform temperature then
stays exactly what it was (the Laplacian of a constant is exactly zero), so a nerve can
sit exactly at a limit. A single hot or cold voxel moves by ~0.01 K in the few short
steps taken, far from the limits it is tested against.
"""

from __future__ import annotations

import numpy as np
import pytest

import ablasim as ab
from ablasim.report import build_report, render_text
from ablasim.safety import analyse
from ablasim.scenario import AblationCriterion

H = 1e-3
DT = 1e-3  # s: 1/1000 of the stable step (~1.2 s), so a lone voxel barely moves
SHAPE = (6, 6, 6)
NERVE = (slice(2, 4), slice(2, 4), slice(2, 4))  # 8 voxels of the nerve "root"
HOT_VOXEL = (2, 2, 2)  # one of them
#: A voxel centre (trilinear weights exactly 1 and 0, so the reading is exact).
TC_POINT = (0.0, 0.0, 0.0)
CORNER = (-2e-3, -2e-3, -2e-3)  # the centre of voxel (0, 0, 0)


def _model(*, with_nerve_voxels: bool = True, thin_root: bool = False) -> ab.Model:
    """Muscle with an 8-voxel nerve 'root'; ``thin_root`` names a nerve with no voxel."""
    grid = ab.Grid(SHAPE, H, origin=(-2e-3, -2e-3, -2e-3))
    still = {"perfusion_per_s": 0.0, "metabolic_W_m3": 0.0}
    lib = ab.Model.uniform(grid).tissues.with_overrides({"muscle": still, "nerve": still})
    labels = np.zeros(grid.shape, np.uint8)
    if with_nerve_voxels:
        labels[NERVE] = 1
    structures = (ab.Structure("muscle", "muscle"), ab.Structure("root", "nerve"))
    if thin_root:
        structures += (ab.Structure("thin_root", "nerve"),)
    return ab.Model(grid, labels, structures, lib, ab.Boundary.adiabatic())


def _run(initial, *, cutoff=False, model=None):
    """A few tiny steps from ``initial`` [°C]; returns the result, analysis and report."""
    model = model or _model()
    # a faint heater in a far corner, so that the cut-off has something to cut: in 3
    # explicit steps its heat moves 3 voxels, and the nerve and the thermocouple are 6 away
    heater = ab.VolumetricSource.sphere(CORNER, 0.6e-3, power_density_W_m3=1.0)
    result = ab.simulate(
        model,
        [ab.Phase(name="heat", duration=3 * DT, sources=[heater])],
        initial_temperature=initial,
        dt=DT,
        thermocouples=[ab.Thermocouple(name="tc", position=TC_POINT, cutoff=cutoff)],
        threads=1,
    )
    analysis = analyse(result, AblationCriterion())
    report = build_report(
        scenario_name="verdict",
        description="",
        result=result,
        analysis=analysis,
        notes=[],
        source_assumptions=[],
    )
    return result, analysis, report


def _field(value: float, voxel=None, voxel_value: float | None = None) -> np.ndarray:
    T = np.full(SHAPE, value)
    if voxel is not None:
        T[voxel] = voxel_value
    return T


# -- the rule: reaching the limit counts -------------------------------------------------
def test_limits_rule_on_scalars_and_arrays():
    lim = ab.Limits(hot_C=45.0, cold_C=10.0)
    assert lim.too_hot(45.0)
    assert not lim.too_hot(np.nextafter(45.0, 0.0))
    assert lim.too_cold(10.0)
    assert not lim.too_cold(np.nextafter(10.0, 20.0))
    T = np.array([9.0, 10.0, 10.5, 44.5, 45.0, 46.0])
    np.testing.assert_array_equal(lim.too_hot(T), [False, False, False, False, True, True])
    np.testing.assert_array_equal(lim.too_cold(T), [True, True, False, False, False, False])
    no_cold = ab.Limits(hot_C=45.0, cold_C=None)
    assert not no_cold.too_cold(-100.0)
    np.testing.assert_array_equal(no_cold.too_cold(T), np.zeros(T.shape, bool))


def test_a_nerve_exactly_at_the_hot_limit_fails():
    """45.0 °C exactly (the field stays uniform): FAIL, as the cut-off would trip."""
    _, analysis, report = _run(45.0)
    row = analysis.nerves["root"]
    assert row.max_temperature_C == 45.0  # exactly: no gradient, no perfusion
    assert row.hot_margin_C == 0.0
    assert row.verdict == "FAIL"
    assert row.fraction_voxels_above == 1.0
    assert analysis.verdict == report["verdict"] == "FAIL"
    assert "root reached 45.0 °C" in render_text(report)


def test_a_nerve_just_below_the_hot_limit_passes():
    """One ulp below 45 °C: PASS (so the test above cannot pass by failing everything)."""
    _, analysis, _ = _run(np.nextafter(45.0, 0.0))
    assert analysis.nerves["root"].verdict == "PASS"
    assert analysis.verdict == "PASS"


def test_a_nerve_exactly_at_the_cold_limit_fails():
    _, analysis, report = _run(10.0)
    row = analysis.nerves["root"]
    assert row.min_temperature_C == 10.0
    assert row.cold_margin_C == 0.0
    assert row.verdict == "FAIL"
    assert row.fraction_voxels_below == 1.0
    assert report["verdict"] == "FAIL"
    assert "root fell to 10.0 °C" in render_text(report)


def test_a_nerve_just_above_the_cold_limit_passes():
    _, analysis, _ = _run(np.nextafter(10.0, 20.0))
    assert analysis.verdict == "PASS"


def test_time_at_the_limit_counts_as_beyond_it():
    """The time beyond the limit and the first crossing follow the same rule."""
    _, analysis, _ = _run(45.0)
    row = analysis.nerves["root"]
    assert row.first_crossing_s == pytest.approx(DT)
    assert row.time_above_threshold_s == pytest.approx(3 * DT)


@pytest.mark.parametrize("limit", [45.0, 10.0])
def test_a_cutoff_thermocouple_exactly_at_a_limit_trips(limit):
    """The thermocouple reads exactly the limit at a voxel centre of a uniform field."""
    result, analysis, _ = _run(limit, cutoff=True)
    assert result.sensors["tc"][-1] == limit
    assert result.phases[0].cutoff_at_s == pytest.approx(DT)
    assert result.thermocouples["tc"].cutoff_at_s == pytest.approx(DT)
    assert analysis.verdict == "FAIL"  # the same rule: the nerve at that limit fails


def test_a_cutoff_thermocouple_just_inside_the_limits_does_not_trip():
    result, _, _ = _run(np.nextafter(45.0, 0.0), cutoff=True)
    assert result.phases[0].cutoff_at_s is None


# -- one voxel decides -------------------------------------------------------------------
def test_a_single_hot_voxel_fails_the_nerve():
    """One of the 8 nerve voxels at 50 °C, the rest of the model at 37 °C."""
    result, analysis, report = _run(_field(37.0, HOT_VOXEL, 50.0))
    row = analysis.nerves["root"]
    assert 49.9 < row.max_temperature_C <= 50.0  # cools ~0.01 K in 3 ms
    assert row.verdict == "FAIL"
    assert row.fraction_voxels_above == pytest.approx(1 / 8)
    idx = result.model.grid.world_to_index(np.asarray(row.hottest_point_mm) * 1e-3)
    assert tuple(int(i) for i in idx) == HOT_VOXEL
    assert analysis.verdict == report["verdict"] == "FAIL"
    assert report["nerves"]["root"]["verdict"] == "FAIL"
    assert "root reached 50.0 °C" in render_text(report)
    # the other seven stayed cool
    others = result.damage.t_max[NERVE].ravel()
    assert np.sort(others)[-2] < 37.1


def test_a_single_cold_voxel_fails_the_nerve():
    """One nerve voxel at 5 °C (cold limit 10 °C), everything else at 37 °C."""
    _, analysis, report = _run(_field(37.0, HOT_VOXEL, 5.0))
    row = analysis.nerves["root"]
    assert 5.0 <= row.min_temperature_C < 5.1
    assert row.max_temperature_C < 45.0  # not a hot failure
    assert row.cold_margin_C == pytest.approx(row.min_temperature_C - 10.0)
    assert row.verdict == "FAIL"
    assert row.fraction_voxels_below == pytest.approx(1 / 8)
    assert analysis.verdict == report["verdict"] == "FAIL"
    text = render_text(report)
    assert text.startswith("NERVE SAFETY: FAIL")
    assert "root fell to 5.0 °C (limit 10 °C)" in text


# -- a nerve the grid does not resolve ---------------------------------------------------
def test_a_nerve_with_no_voxel_is_not_resolved_and_fails():
    """The model names a second nerve, 'thin_root', that no voxel carries (as when a
    root is thinner than the spacing): the verdict is FAIL although 'root' passes, the
    row says NOT RESOLVED, and the warnings tell the planner to refine the grid."""
    model = _model(thin_root=True)
    assert model.nerve_structures() == ("root", "thin_root")
    _, analysis, report = _run(37.0, model=model)
    assert analysis.verdict == "FAIL"
    assert analysis.unresolved == ("thin_root",)
    assert analysis.nerves["root"].verdict == "PASS"
    assert "thin_root" not in analysis.nerves  # no numbers for it: nothing was measured
    row = report["nerves"]["thin_root"]
    assert list(row) == list(report["nerves"]["root"])  # the same keys, in order
    assert row["verdict"] == "NOT RESOLVED"
    assert row["tissue"] == "nerve"
    assert row["voxels"] == 0
    assert row["max_temperature_C"] is None
    assert row["hottest_point_mm"] is None
    assert report["verdict"] == "FAIL"
    # (besides: 'root' is 2 voxels across, too thin for the grid; the phase is 3 steps)
    (warning,) = [w for w in report["warnings"] if "no voxel" in w]
    assert "'thin_root' has no voxel" in warning
    assert "(1 mm)" in warning
    assert "refine grid.spacing_mm" in warning
    text = render_text(report)
    head = text.split("\n\n")[0]
    assert head.startswith("NERVE SAFETY: FAIL")
    assert "thin_root was not checked: no voxel at 1 mm spacing" in head
    assert "thin_root               NOT RESOLVED" in text
    assert "\nWarnings\n" in head
    assert f"  - {warning}\n" in head


def test_a_model_whose_only_nerve_has_no_voxel_fails():
    """With no nerve voxel at all the verdict is FAIL, not a PASS by omission."""
    model = _model(with_nerve_voxels=False)
    assert model.nerve_structures() == ("root",)
    _, analysis, report = _run(37.0, model=model)
    assert analysis.verdict == report["verdict"] == "FAIL"
    assert analysis.nerves == {}
    assert report["nerves"]["root"]["verdict"] == "NOT RESOLVED"
    assert render_text(report).startswith(
        "NERVE SAFETY: FAIL\nTUMOUR COVERAGE: not assessed (the model has no tumour)\n"
        "  root was not checked"
    )


def test_a_resolved_nerve_gives_no_warning():
    _, analysis, report = _run(37.0)
    assert analysis.unresolved == ()
    # the 2-voxel root is too thin and the phase 3 steps short (test_report_planner.py),
    # but nothing says a structure was not checked
    assert not [w for w in report["warnings"] if "no voxel" in w]
    assert report["verdict"] == "PASS"
    assert "was not checked" not in render_text(report)
