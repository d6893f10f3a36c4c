"""Scenario files: TOML -> validated Scenario -> model, protocol and thermocouples.

Valid scenarios must arrive in SI at the model; every bad input must be refused with a
:class:`ScenarioError` whose message names the key path and says the fix. Grids are small
(1-2 mm voxels, at most 30^3) so the whole file runs in a few seconds.
"""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import ablasim
from ablasim.errors import ScenarioError
from ablasim.scenario import BuiltScenario, Scenario, load_scenario, parse_scenario

# The design's validation example on a coarse grid: one tissue, a property override, a
# volumetric sphere, a thermocouple.
VALIDATION = """
name = "validation"
[grid]
spacing_mm = 2
extent_mm = [40, 40, 40]
[anatomy]
phantom = "uniform"
tissue = "muscle"
[tissues.muscle]
perfusion_per_s = 0.002
conductivity_W_mK = 0.5
[[phase]]
name = "heat"
duration_min = 30
[[phase.source]]
kind = "volumetric"
shape = "sphere"
center_mm = [0, 0, 0]
radius_mm = 5
power_W = 0.5
[[safety.thermocouple]]
name = "centre"
position_mm = [0, 0, 0]
"""

# L1 vertebra, grid shifted towards the canal; a probe in the tumour, then a cool-down;
# a cut-off thermocouple in the posterior epidural fat (y = -30 mm).
VERTEBRA = """
name = "L1 lytic metastasis"
[grid]
spacing_mm = 2
extent_mm = [60, 60, 40]
center_mm = [0, -10, 0]
[anatomy]
phantom = "vertebra"
tumour = { center_mm = [0, 4, 0], diameter_mm = 14, kind = "lytic" }
[boundary]
kind = "adiabatic"
[[phase]]
name = "heat"
duration_s = 300
[[phase.source]]
kind = "volumetric"
name = "probe"
shape = "cylinder"
tip_mm = [0, 4, 0]
direction = [0, 1, 0]
active_length_mm = 10
diameter_mm = 2
power_W = 5
[[phase]]
name = "cool"
duration_min = 5
[safety]
hot_limit_C = 44
cold_limit_C = 8
[[safety.thermocouple]]
name = "epidural"
position_mm = [0, -30, 0]
tissue = "fat"
cutoff = true
[[safety.thermocouple]]
name = "body"
position_mm = [0, 0, 0]
"""

EXAMPLES = sorted((Path(ablasim.__file__).parent / "examples").glob("*.toml"))


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, f"test set-up: {old!r} not in the scenario"
    return text.replace(old, new, 1)


def _error(text: str, *, build: bool = False, base_dir: Path | str = ".") -> str:
    """The message of the ScenarioError raised by parsing (and, if asked, building) ``text``."""
    if not build:
        with pytest.raises(ScenarioError) as info:
            parse_scenario(text, base_dir=base_dir)
        return str(info.value)
    sc = parse_scenario(text, base_dir=base_dir)  # must parse: the error is in build()
    with pytest.raises(ScenarioError) as info:
        sc.build()
    return str(info.value)


# -- valid scenarios ------------------------------------------------------------------


def test_validation_example_parses_in_si_units():
    sc = parse_scenario(VALIDATION)
    assert isinstance(sc, Scenario)
    assert sc.name == "validation"
    assert sc.spacing == pytest.approx(0.002)
    assert sc.extent == pytest.approx((0.04, 0.04, 0.04))
    assert sc.grid.shape == (20, 20, 20)
    (phase,) = sc.phases
    assert phase.name == "heat"
    assert phase.duration == pytest.approx(1800.0)
    assert sc.duration_s == pytest.approx(1800.0)
    (src,) = phase.sources
    assert src.shape == "sphere"
    assert src.power_W == pytest.approx(0.5)
    assert src.center == pytest.approx((0.0, 0.0, 0.0))
    assert src.radius == pytest.approx(0.005)
    assert sc.tissue_overrides == {"muscle": {"perfusion_per_s": 0.002, "conductivity_W_mK": 0.5}}


def test_validation_example_builds_with_the_override_in_the_model():
    built = parse_scenario(VALIDATION).build()
    assert isinstance(built, BuiltScenario)
    model = built.model
    assert model.grid.spacing == pytest.approx(0.002)
    assert model.grid.shape == (20, 20, 20)
    assert model.tissues["muscle"].perfusion_per_s == pytest.approx(0.002)
    assert model.tissues["muscle"].conductivity_W_mK == pytest.approx(0.5)
    assert np.all(model.field("perfusion_per_s") == pytest.approx(0.002))
    # no [boundary]: every outer face held at the blood temperature
    assert all(f.kind == "body" for f in model.boundary.faces)
    assert all(f.temperature_C == pytest.approx(37.0) for f in model.boundary.faces)
    (phase,) = built.phases
    assert phase.duration == pytest.approx(1800.0)
    assert phase.sources[0].power_W == pytest.approx(0.5)
    assert [(t.name, t.position, t.cutoff) for t in built.thermocouples] == [
        ("centre", (0.0, 0.0, 0.0), False)
    ]
    # no [safety] table: the default limits
    assert built.scenario.limits.hot_C == 45.0
    assert built.scenario.limits.cold_C == 10.0


def test_vertebra_scenario_parses_and_builds():
    sc = parse_scenario(VERTEBRA)
    assert sc.center == pytest.approx((0.0, -0.010, 0.0))
    tumour = sc.anatomy["params"]["tumour"]
    assert tumour["center"] == pytest.approx((0.0, 0.004, 0.0))
    assert tumour["diameter"] == pytest.approx(0.014)
    assert [p.duration for p in sc.phases] == [300.0, 300.0]
    assert sc.limits.hot_C == 44.0
    assert sc.limits.cold_C == 8.0

    built = sc.build()
    model = built.model
    # the tumour centre, given in mm, reached the phantom in metres
    assert model.tissue_at((0.0, 0.004, 0.0)) == "tumour_lytic"
    assert "spinal_cord" in model.structure_names
    assert model.tissue_at((0.0, -0.030, 0.0)) == "fat"
    assert all(f.kind == "adiabatic" for f in model.boundary.faces)
    assert [p.name for p in built.phases] == ["heat", "cool"]
    assert [p.duration for p in built.phases] == [300.0, 300.0]
    (probe,) = built.phases[0].sources
    assert probe.name == "probe"
    assert probe.tip == pytest.approx((0.0, 0.004, 0.0))
    assert probe.active_length == pytest.approx(0.010)
    assert probe.diameter == pytest.approx(0.002)
    assert built.phases[1].sources == ()
    cut = {t.name: t.cutoff for t in built.thermocouples}
    assert cut == {"epidural": True, "body": False}
    assert built.thermocouples[0].position == pytest.approx((0.0, -0.030, 0.0))


def test_thermocouple_expectation_may_name_a_structure():
    text = _edit(VERTEBRA, 'tissue = "fat"', 'tissue = "epidural_fat"')
    assert parse_scenario(text).build().thermocouples[0].name == "epidural"


def test_grid_from_shape_and_boundary_faces():
    text = _edit(
        VALIDATION, "extent_mm = [40, 40, 40]", "shape = [10, 12, 14]\ncenter_mm = [5, 0, 0]"
    )
    text += '[boundary]\nkind = "body"\ntemperature_C = 36\n[boundary.x_min]\nkind = "adiabatic"\n'
    model = parse_scenario(text).build().model
    assert model.grid.shape == (10, 12, 14)
    assert model.grid.spacing == pytest.approx(0.002)
    assert np.mean(model.grid.axes()[0]) == pytest.approx(0.005)
    kinds = [f.kind for f in model.boundary.faces]
    assert kinds.count("adiabatic") == 1
    assert kinds.count("body") == 5
    assert all(f.temperature_C == 36.0 for f in model.boundary.faces if f.kind == "body")


def test_load_scenario_reads_a_file_with_paths_relative_to_it(tmp_path):
    import nibabel as nib

    labels = np.zeros((10, 10, 10), np.uint8)
    labels[3:7, 3:7, 3:7] = 1
    nib.save(nib.Nifti1Image(labels, np.diag([2.0, 2.0, 2.0, 1.0])), str(tmp_path / "seg.nii.gz"))
    path = tmp_path / "plan.toml"
    path.write_text(_label_map_scenario(), encoding="utf-8")
    built = load_scenario(path).build()
    assert built.scenario.name == "plan"  # the file's stem when there is no name key
    assert built.model.grid.shape == (10, 10, 10)
    assert {s.tissue for s in built.model.structures} == {"muscle", "cortical_bone"}


def test_missing_scenario_file(tmp_path):
    with pytest.raises(ScenarioError, match="not found; check the path"):
        load_scenario(tmp_path / "nope.toml")


# -- unknown keys, with the near one suggested ------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "path", "near"),
    [
        ('name = "validation"', 'nmae = "validation"', "nmae", "name"),
        ("spacing_mm = 2", "spacing_m = 2", "grid.spacing_m", "spacing_mm"),
        ("extent_mm = [40, 40, 40]", "extent_mm = [40, 40, 40]\ncentre_mm = [0, 0, 0]",
         "grid.centre_mm", "center_mm"),
        ("duration_min = 30", "duration_min = 30\nduraton_s = 3", "phase[0].duraton_s",
         "duration_s"),
        ("radius_mm = 5", "radius_mm = 5\nradius = 5", "phase[0].source[0].radius", "radius_mm"),
        ("[[safety.thermocouple]]", "[safety]\nhot_limt_C = 44\n[[safety.thermocouple]]",
         "safety.hot_limt_C", "hot_limit_C"),
        ("position_mm = [0, 0, 0]", "position_mm = [0, 0, 0]\ncutof = true",
         "safety.thermocouple[0].cutof", "cutoff"),
    ],
)  # fmt: skip
def test_unknown_key_names_the_path_and_the_near_key(old, new, path, near):
    msg = _error(_edit(VALIDATION, old, new))
    assert f"{path}: unknown key" in msg
    assert f"did you mean '{near}'" in msg


def test_unknown_tissue_table_suggests_the_library_tissue():
    msg = _error(VALIDATION + "[tissues.musle]\nperfusion_per_s = 0.01\n")
    assert "tissues.musle" in msg
    assert "did you mean 'muscle'" in msg
    assert "based_on" in msg  # how to define a new tissue instead


def test_new_tissue_based_on_an_existing_one_is_accepted():
    text = VALIDATION + '[tissues.my_tumour]\nbased_on = "muscle"\nperfusion_per_s = 0.0\n'
    parse_scenario(text).build()


def test_unknown_tissue_property_and_every_bad_override_reported():
    text = VALIDATION.replace("perfusion_per_s = 0.002", "perfusion_per_sec = 0.002")
    text += "[tissues.fat]\nconductivity_W_mK = -1\n"
    msg = _error(text)
    assert "tissues.muscle.perfusion_per_sec" in msg
    assert "did you mean 'perfusion_per_s'" in msg
    assert "tissues.fat.conductivity_W_mK" in msg


def test_unknown_phantom():
    msg = _error(_edit(VALIDATION, '"uniform"', '"vertebrae"'))
    assert "anatomy.phantom" in msg
    assert "'vertebrae'" in msg
    assert "did you mean 'vertebra'" in msg


def test_unknown_phantom_parameter():
    msg = _error(_edit(VALIDATION, 'tissue = "muscle"', 'tisue = "muscle"'), build=True)
    assert msg.startswith("anatomy:")
    assert "'tisue'" in msg
    assert "did you mean 'tissue'" in msg


def test_tumour_errors_speak_mm():
    msg = _error(_edit(VERTEBRA, "diameter_mm = 14", "diameter_mm = -14"))
    assert "anatomy.tumour.diameter_mm" in msg
    assert "-14" in msg
    msg = _error(_edit(VERTEBRA, "diameter_mm = 14", "diam_mm = 14"))
    assert "anatomy.tumour.diam_mm: unknown key" in msg
    assert "did you mean 'diameter_mm'" in msg
    msg = _error(_edit(VERTEBRA, '"lytic"', '"lytc"'))
    assert "anatomy.tumour.kind" in msg
    assert "did you mean 'lytic'" in msg


# -- sources ------------------------------------------------------------------------------


def test_unknown_source_kind():
    msg = _error(_edit(VALIDATION, 'kind = "volumetric"', 'kind = "volumetrc"'))
    assert "phase[0].source[0].kind" in msg
    assert "'volumetrc'" in msg
    assert "did you mean 'volumetric'" in msg


@pytest.mark.parametrize(
    ("value", "says"),
    [("-5", "must be > 0, got -5"), ("0", "must be > 0, got 0"), ("nan", "must be finite"),
     ("inf", "must be finite"), ('"5"', "must be a number")],
)  # fmt: skip
def test_bad_power(value, says):
    msg = _error(_edit(VALIDATION, "power_W = 0.5", f"power_W = {value}"))
    assert "phase[0].source[0].power_W" in msg
    assert says in msg


def test_power_and_power_density_both_given():
    msg = _error(_edit(VALIDATION, "power_W = 0.5", "power_W = 0.5\npower_density_W_m3 = 1e6"))
    assert "phase[0].source[0]" in msg
    assert "exactly one of power_W" in msg


def test_cylinder_tip_outside_the_grid():
    text = _edit(VERTEBRA, "tip_mm = [0, 4, 0]", "tip_mm = [0, 4, 80]")
    msg = _error(text, build=True)
    assert "phase[0].source[0].tip_mm" in msg
    assert "[0.0, 4.0, 80.0] mm lies outside the grid" in msg
    assert "np.float64" not in msg
    assert "extent_mm" in msg


def test_needle_tip_in_the_spinal_cord_is_refused():
    msg = _error(_edit(VERTEBRA, "tip_mm = [0, 4, 0]", "tip_mm = [0, -22, 0]"), build=True)
    assert "phase[0].source[0].tip_mm" in msg
    assert "spinal_cord" in msg
    assert "move tip_mm" in msg


def test_sphere_source_outside_the_grid():
    msg = _error(_edit(VALIDATION, "center_mm = [0, 0, 0]", "center_mm = [0, 0, 300]"), build=True)
    assert "phase[0].source[0]" in msg
    assert "outside the grid" in msg


# -- phases -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("new", "path", "says"),
    [("duration_min = 0", "phase[0].duration_min", "must be > 0, got 0"),
     ("duration_s = -10", "phase[0].duration_s", "must be > 0, got -10"),
     ("duration_s = nan", "phase[0].duration_s", "must be finite")],
)  # fmt: skip
def test_bad_duration(new, path, says):
    msg = _error(_edit(VALIDATION, "duration_min = 30", new))
    assert path in msg
    assert says in msg


def test_missing_and_double_duration():
    for new in ("", "duration_min = 30\nduration_s = 60"):
        msg = _error(_edit(VALIDATION, "duration_min = 30", new))
        assert "phase[0]" in msg
        assert "exactly one of duration_s or duration_min" in msg


def test_duplicate_phase_names():
    msg = _error(
        VALIDATION.replace("[[safety", '[[phase]]\nname = "heat"\nduration_s = 5\n[[safety')
    )
    assert "phase[1].name" in msg
    assert "'heat' is used twice" in msg


def test_no_phase():
    msg = _error(VALIDATION.split("[[phase]]")[0])
    assert "at least one [[phase]]" in msg


# -- thermocouples and limits ---------------------------------------------------------------


def test_thermocouple_outside_the_grid():
    text = _edit(VALIDATION, "position_mm = [0, 0, 0]", "position_mm = [0, 0, 50]")
    msg = _error(text, build=True)
    assert "safety.thermocouple[0].position_mm" in msg
    assert "[0.0, 0.0, 50.0] mm lies outside the grid" in msg
    assert "extent_mm" in msg


def test_thermocouple_expected_in_fat_but_in_bone_is_refused():
    text = _edit(VERTEBRA, "position_mm = [0, -30, 0]", "position_mm = [0, -6, 0]")
    msg = _error(text, build=True)
    assert "safety.thermocouple[0].position_mm" in msg
    assert "cancellous_bone" in msg
    assert "tissue = 'fat' was expected" in msg
    assert "move the thermocouple" in msg


def test_thermocouple_expected_tissue_must_exist():
    msg = _error(_edit(VERTEBRA, 'tissue = "fat"', 'tissue = "fatt"'), build=True)
    assert "safety.thermocouple[0].tissue" in msg
    assert "did you mean 'fat'" in msg


def test_duplicate_thermocouple_names():
    text = VALIDATION + '[[safety.thermocouple]]\nname = "centre"\nposition_mm = [2, 0, 0]\n'
    msg = _error(text)
    assert "safety.thermocouple[1].name" in msg
    assert "used twice" in msg


def test_cold_limit_above_hot_limit():
    text = _edit(
        VALIDATION,
        "[[safety.thermocouple]]",
        "[safety]\ncold_limit_C = 50\n[[safety.thermocouple]]",
    )
    msg = _error(text)
    assert "safety.cold_limit_C" in msg
    assert "below hot_limit_C" in msg
    assert "safety: safety." not in msg


# -- grid ----------------------------------------------------------------------------------


def test_grid_with_both_extent_and_shape():
    msg = _error(
        _edit(VALIDATION, "extent_mm = [40, 40, 40]", "extent_mm = 40\nshape = [20, 20, 20]")
    )
    assert "grid: give exactly one of extent_mm" in msg


@pytest.mark.parametrize(
    ("new", "path", "says"),
    [("spacing_mm = 0", "grid.spacing_mm", "must be > 0"),
     ('spacing_mm = "2"', "grid.spacing_mm", "must be a number"),
     ("spacing_mm = true", "grid.spacing_mm", "must be a number")],
)  # fmt: skip
def test_bad_spacing(new, path, says):
    msg = _error(_edit(VALIDATION, "spacing_mm = 2", new))
    assert path in msg
    assert says in msg
    assert "spacing_mm = 0.5" in msg  # the example of a good value


def test_bad_shape():
    msg = _error(_edit(VALIDATION, "extent_mm = [40, 40, 40]", "shape = [20.5, 20, 20]"))
    assert "grid.shape: must be whole numbers" in msg


def test_grid_too_big_is_refused_before_allocating():
    text = _edit(VALIDATION, "spacing_mm = 2\nextent_mm = [40, 40, 40]",
                 "spacing_mm = 0.1\nextent_mm = [5000, 5000, 5000]")  # fmt: skip
    sc = parse_scenario(text)
    tracemalloc.start()
    try:
        with pytest.raises(ScenarioError) as info:
            sc.build()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    assert "GB" in msg
    assert "spacing_mm" in msg
    assert "(50000, 50000, 50000)" in msg
    assert peak < 50e6  # nothing grid-sized was allocated


def test_toml_syntax_error_gives_line_and_column():
    msg = _error(_edit(VALIDATION, "spacing_mm = 2", "spacing_mm = = 2"))
    assert "TOML syntax error" in msg
    assert "line 4, column 14" in msg


def test_several_errors_reported_at_once():
    text = "foo = 1\n" + _edit(
        _edit(VALIDATION, "spacing_mm = 2", "spacing_mm = -1"), "power_W = 0.5", "power_W = -5"
    )
    msg = _error(text)
    assert msg.startswith("3 problems in scenario 'validation':")
    assert "grid.spacing_mm: must be > 0, got -1" in msg
    assert "phase[0].source[0].power_W: must be > 0, got -5" in msg
    assert "foo: unknown key" in msg


def test_several_build_errors_reported_at_once():
    text = _edit(VERTEBRA, "tip_mm = [0, 4, 0]", "tip_mm = [0, -22, 0]")
    text = _edit(text, "position_mm = [0, -30, 0]", "position_mm = [0, -6, 0]")
    msg = _error(text, build=True)
    assert msg.startswith("2 problems in scenario 'L1 lytic metastasis':")
    assert "phase[0].source[0].tip_mm" in msg
    assert "safety.thermocouple[0].position_mm" in msg


def test_missing_required_tables():
    msg = _error("[[phase]]\nname = 'a'\nduration_s = 1\n")
    assert "grid: is required" in msg
    assert "anatomy: is required" in msg


# -- label maps ----------------------------------------------------------------------------


def _label_map_scenario(image: str = "seg.nii.gz") -> str:
    return f"""
[grid]
spacing_mm = 2
extent_mm = [20, 20, 20]
[anatomy]
labels = "{image}"
[anatomy.label_map]
0 = "muscle"
1 = "cortical_bone"
[[phase]]
name = "heat"
duration_s = 60
"""


def test_label_map_file_missing(tmp_path):
    """Named when the file is read, beside every other problem of the scenario."""
    msg = _error(_label_map_scenario(), base_dir=tmp_path)
    assert msg.startswith("anatomy.labels:")
    assert str(tmp_path / "seg.nii.gz") in msg
    assert "not found; check the path" in msg
    text = _label_map_scenario().replace("spacing_mm", "spacing_mmm")
    msg = _error(text, base_dir=tmp_path)
    assert "anatomy.labels:" in msg
    # a label map's grid may take the image's spacing: only the misspelt key is wrong
    assert "grid.spacing_mmm: unknown key (did you mean 'spacing_mm'" in msg


def test_label_map_file_corrupt(tmp_path):
    (tmp_path / "seg.nii.gz").write_bytes(b"\x00garbage, not a NIfTI image\xff" * 8)
    msg = _error(_label_map_scenario(), build=True, base_dir=tmp_path)
    assert msg.startswith("anatomy.labels:")
    assert "could not be read as NIfTI" in msg
    assert "save it again" in msg


def test_label_without_a_tissue_mapping(tmp_path):
    import nibabel as nib

    labels = np.zeros((10, 10, 10), np.uint8)
    labels[3:7, 3:7, 3:7] = 1
    labels[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(labels, np.diag([2.0, 2.0, 2.0, 1.0])), str(tmp_path / "seg.nii.gz"))
    msg = _error(_label_map_scenario(), build=True, base_dir=tmp_path)
    assert "label values not in the mapping: 7" in msg
    assert "[anatomy.label_map]" in msg
    assert '7 = "muscle"' in msg


def test_label_map_unknown_tissue(tmp_path):
    text = _label_map_scenario().replace('"cortical_bone"', '"cortical_bon"')
    (tmp_path / "seg.nii.gz").write_bytes(b"")  # never read: the mapping fails first
    msg = _error(text, build=True, base_dir=tmp_path)
    assert "[anatomy.label_map] label 1" in msg
    assert "did you mean 'cortical_bone'" in msg


def test_label_map_unsupported_suffix(tmp_path):
    (tmp_path / "seg.txt").write_text("1 2 3")
    msg = _error(_label_map_scenario("seg.txt"), build=True, base_dir=tmp_path)
    assert "unsupported file type" in msg
    assert ".nii.gz" in msg


# -- shipped examples ----------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES or [None], ids=lambda p: p.name if p else "none")
def test_shipped_example_parses_and_builds(path):
    if path is None:
        pytest.skip("no example scenarios shipped under src/ablasim/examples yet")
    sc = parse_scenario(path.read_text(encoding="utf-8"), base_dir=path.parent, origin=str(path))
    built = sc.build()
    assert built.phases
    assert all(math.isfinite(p.duration) and p.duration > 0 for p in built.phases)


MICROWAVE_SOURCE = """kind = "microwave"
tip_mm = [0, 0, 5]
direction = [0, 0, 1]
active_length_mm = 10
frequency_MHz = 2450
power_W = 20"""

VOLUMETRIC_SOURCE = """kind = "volumetric"
shape = "sphere"
center_mm = [0, 0, 0]
radius_mm = 5
power_W = 0.5"""


def test_microwave_source_builds_from_a_scenario():
    text = _edit(VALIDATION, VOLUMETRIC_SOURCE, MICROWAVE_SOURCE)
    built = parse_scenario(text).build()
    (src,) = built.phases[0].sources
    assert src.frequency_MHz == 2450
    assert src.tip == pytest.approx((0.0, 0.0, 0.005))


def test_microwave_errors_are_collected_with_their_paths():
    bad = MICROWAVE_SOURCE.replace("frequency_MHz = 2450", "frequency_MHz = 1000").replace(
        "power_W = 20", "power_W = -3"
    )
    msg = _error(_edit(VALIDATION, VOLUMETRIC_SOURCE, bad))
    assert "phase[0].source[0].frequency_MHz" in msg
    assert "phase[0].source[0].power_W" in msg


def test_microwave_sar_map_of_the_wrong_shape_is_refused_at_build(tmp_path):
    np.save(tmp_path / "sar.npy", np.ones((3, 4, 5)))
    text = _edit(
        VALIDATION, VOLUMETRIC_SOURCE, 'kind = "microwave"\nsar_map = "sar.npy"\npower_W = 5'
    )
    msg = _error(text, build=True, base_dir=tmp_path)
    assert "shape" in msg
    assert "(3, 4, 5)" in msg


def test_threads_setting():
    text = VALIDATION + "[simulation]\nthreads = 1\n"
    assert parse_scenario(text).threads == 1
    msg = _error(VALIDATION + "[simulation]\nthreads = 0\n")
    assert "simulation.threads" in msg
