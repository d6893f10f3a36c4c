"""Cryoablation (issue #11): bad input named by its key, the freeze-thaw-freeze protocol,
the iceball report, perfusion after thawing, and a single needle in gel against the
published isotherm spacing (docs/physics.md §2.4, §3.3).

The exact Stefan problem, energy conservation and super steps against explicit steps are
in tests/test_stefan.py. Grids here are 1 mm and small, so the fast tests take a few
seconds together.
"""

from __future__ import annotations

import numpy as np
import pytest

import ablasim as ab
from ablasim.errors import ScenarioError
from ablasim.runner import run_scenario
from ablasim.scenario import parse_scenario
from ablasim.sources import CryoSource

# -- bad input -----------------------------------------------------------------------------

# L1 vertebra at 1 mm (40 x 50 x 30 voxels): one probe in the lytic tumour, pointing
# anteriorly (+y) through the body; the canal lies at y = -24..-18 mm (CSF, cord).
VERTEBRA = """
name = "cryo-input"
[grid]
spacing_mm = 1
extent_mm = [40, 50, 30]
center_mm = [0, -5, 0]
[anatomy]
phantom = "vertebra"
tumour = { center_mm = [0, 4, 0], diameter_mm = 14, kind = "lytic" }
[[phase]]
name = "freeze-1"
duration_min = 10
[[phase.source]]
kind = "cryo"
name = "probes"
tip_mm = [0, 4, 0]
direction = [0, 1, 0]
active_length_mm = 10
probe_C = -150
"""

# the passive thaw naming the same probe
THAW = """
[[phase]]
name = "thaw"
duration_min = 5
[[phase.source]]
kind = "cryo"
name = "probes"
mode = "off"
tip_mm = [0, 4, 0]
direction = [0, 1, 0]
active_length_mm = 10
"""


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, f"test set-up: {old!r} not in the scenario"
    return text.replace(old, new, 1)


def _error(text: str, *, build: bool = False) -> str:
    """The message of the ScenarioError raised by reading (and, if asked, building) ``text``."""
    if not build:
        with pytest.raises(ScenarioError) as info:
            parse_scenario(text)
        return str(info.value)
    sc = parse_scenario(text)  # must read: the error is in build()
    with pytest.raises(ScenarioError) as info:
        sc.build()
    return str(info.value)


def test_the_valid_scenarios_read_and_build():
    """The set-ups of the bad cases below are otherwise right: each error is its own."""
    parse_scenario(VERTEBRA).build()
    parse_scenario(VERTEBRA + THAW).build()
    two = _edit(
        VERTEBRA, "probe_C = -150", "probe_C = -150\nmore_probes = [{ tip_mm = [4, 4, 0], "
        "direction = [0, 1, 0] }]"
    )  # fmt: skip
    parse_scenario(two).build()


@pytest.mark.parametrize(
    ("new", "says"),
    [
        ("probe_C = 5", "a freezing wall must be below 0 °C, got 5"),
        ("probe_C = 0", "a freezing wall must be below 0 °C, got 0"),
        ("probe_C = [[0, -150], [60, 10]]", "a freezing wall must be below 0 °C, got 10"),
        ('mode = "thaw"\nprobe_C = -5', "a thawing wall must be above 0 °C, got -5"),
        ('mode = "thaw"\nprobe_C = [[0, 20], [30, -1]]', "a thawing wall must be above 0 °C"),
        ("probe_C = [[0, -100], [60, -150], [30, -150]]", "the table's times must increase"),
        ("probe_C = [[0, -100], [60, -150], [60, -150]]", "the table's times must increase"),
        ("probe_C = [[10, -100], [60, -150]]", "starts at t = 10 s, after the phase start"),
        ('mode = "off"\nprobe_C = -150', 'a probe that is "off" holds no temperature'),
        ('probe_C = "cold"', "must be a temperature or a table"),
    ],
    ids=["freeze-above-0", "freeze-at-0", "freeze-table-above-0", "thaw-below-0",
         "thaw-table-below-0", "table-not-increasing", "table-repeated-time",
         "table-after-start", "off-with-probe_C", "not-a-number"],
)  # fmt: skip
def test_a_bad_wall_temperature_is_named_by_its_key(new, says):
    msg = _error(_edit(VERTEBRA, "probe_C = -150", new))
    assert "phase[0].source[0].probe_C" in msg, msg
    assert says in msg, msg


def test_a_bad_wall_in_a_later_phase_names_that_phase():
    msg = _error(VERTEBRA + _edit(THAW, 'mode = "off"', 'mode = "thaw"\nprobe_C = -20'))
    assert "phase[1].source[0].probe_C" in msg, msg
    assert "a thawing wall must be above 0 °C" in msg, msg


def test_a_tip_in_the_canal_is_refused():
    msg = _error(_edit(VERTEBRA, "tip_mm = [0, 4, 0]", "tip_mm = [0, -20, 0]"), build=True)
    assert "phase[0].source[0].tip_mm" in msg, msg
    assert "csf" in msg, msg
    msg = _error(_edit(VERTEBRA, "tip_mm = [0, 4, 0]", "tip_mm = [0, -22, 0]"), build=True)
    assert "phase[0].source[0].tip_mm" in msg, msg
    assert "spinal_cord" in msg, msg


def test_an_active_part_reaching_into_the_canal_is_refused():
    """The tip in the vertebral body (y = -8 mm), the 15 mm active part back to y = -23
    mm: through the CSF into the cord."""
    text = _edit(VERTEBRA, "tip_mm = [0, 4, 0]", "tip_mm = [0, -8, 0]")
    msg = _error(_edit(text, "active_length_mm = 10", "active_length_mm = 15"), build=True)
    assert "phase[0].source[0].tip_mm" in msg, msg
    assert "active part" in msg, msg
    assert "csf" in msg, msg
    assert "spinal_cord" in msg, msg


def test_a_second_probe_in_the_canal_is_named_by_its_entry():
    more = (
        "probe_C = -150\nmore_probes = [{ tip_mm = [4, 4, 0], direction = [0, 1, 0] }, "
        "{ tip_mm = [3, -10, 0], direction = [0, 1, 0] }]"
    )
    msg = _error(_edit(VERTEBRA, "probe_C = -150", more), build=True)
    assert "phase[0].source[0].more_probes[1].tip_mm" in msg, msg
    assert "csf" in msg, msg
    assert "more_probes[0]" not in msg, msg  # the first extra needle is fine


@pytest.mark.parametrize("tip", ["[0, 4, 0]", "[0.5, 4, 0]"], ids=["same-tip", "half-voxel"])
def test_overlapping_probes_are_refused(tip):
    more = f"probe_C = -150\nmore_probes = [{{ tip_mm = {tip}, direction = [0, 1, 0] }}]"
    msg = _error(_edit(VERTEBRA, "probe_C = -150", more), build=True)
    assert "phase[0].source[0].more_probes[0].tip_mm" in msg, msg
    assert "overlaps the probe at tip_mm" in msg, msg


@pytest.mark.parametrize(
    ("old", "new"),
    [("tip_mm = [0, 4, 0]", "tip_mm = [1, 4, 0]"),
     ("direction = [0, 1, 0]", "direction = [0, 1, 0.2]"),
     ("active_length_mm = 10", "active_length_mm = 12"),
     ("active_length_mm = 10", "active_length_mm = 10\ndiameter_mm = 2.4"),
     ('kind = "cryo"', 'kind = "volumetric"\nshape = "cylinder"\ndiameter_mm = 1.47\npower_W = 5')],
    ids=["tip", "direction", "active-length", "diameter", "kind"],
)  # fmt: skip
def test_a_later_phase_must_keep_the_probe_geometry(old, new):
    thaw = _edit(THAW, old, new)
    if "volumetric" in new:
        thaw = thaw.replace('mode = "off"\n', "")
    msg = _error(VERTEBRA + thaw)
    assert "phase[1].source[0].name" in msg, msg
    assert "'probes' names the cryo source of phase[0].source[0]" in msg, msg


def test_another_name_is_another_device():
    parse_scenario(VERTEBRA + _edit(_edit(THAW, '"probes"', '"other"'), "[0, 4, 0]", "[5, 4, 0]"))


def test_two_probes_of_a_phase_in_one_place_are_refused():
    """Two cryo sources of one phase whose walls share voxels: one device in one place."""
    second = _edit(VERTEBRA[VERTEBRA.index("[[phase.source]]") :], '"probes"', '"other"')
    msg = _error(VERTEBRA + second, build=True)
    assert "phase[0].source[1].tip_mm" in msg, msg
    assert "'probes'" in msg, msg
    assert "share a place" in msg, msg


def test_two_sources_with_one_name_in_a_phase_are_refused():
    second = _edit(VERTEBRA[VERTEBRA.index("[[phase.source]]") :], "[0, 4, 0]", "[5, 4, 0]")
    msg = _error(VERTEBRA + second)
    assert "phase[0].source" in msg, msg
    assert "'probes' names two sources" in msg, msg


@pytest.mark.parametrize("levels", ["[0, 5]", "[0, -20, 1]", "[-20, -20]"])
def test_iceball_isotherms_above_0_are_refused(levels):
    msg = _error(VERTEBRA + f"[safety]\niceball_isotherms_C = {levels}\n")
    assert "safety.iceball_isotherms_C" in msg, msg
    assert "at or below 0 °C" in msg, msg


# -- freeze - thaw - freeze through the scenario and the report -----------------------------

PROBE = """kind = "cryo"
name = "probe"
tip_mm = [0.5, 0.5, 6.5]
direction = [0, 0, 1]
active_length_mm = 12
"""
# a probe along z whose axis runs through voxel centres (x = y = 0.5 mm), a thermocouple
# on a voxel centre of the axis: it reads the held wall exactly; super steps of 2 s (a
# sample each) so that the ramp of the second freeze is seen at 15 points
FTF = f"""
name = "freeze-thaw-freeze"
[grid]
spacing_mm = 1
extent_mm = [24, 24, 24]
[anatomy]
phantom = "uniform"
tissue = "muscle"
[[phase]]
name = "freeze-1"
duration_s = 60
[[phase.source]]
{PROBE}probe_C = -150
[[phase]]
name = "thaw"
duration_s = 40
[[phase.source]]
{PROBE}mode = "off"
[[phase]]
name = "freeze-2"
duration_s = 60
[[phase.source]]
{PROBE}probe_C = [[0, -60], [30, -150]]
[simulation]
super_step_s = 2
[[safety.thermocouple]]
name = "axis"
position_mm = [0.5, 0.5, 0.5]
[output]
pictures = false
vti = false
"""


@pytest.fixture(scope="module")
def ftf(tmp_path_factory):
    """The freeze-thaw-freeze run (1 min freeze at -150 °C, 40 s passive thaw, 1 min
    freeze along a ramp from -60 to -150 °C over 30 s)."""
    return run_scenario(parse_scenario(FTF), tmp_path_factory.mktemp("ftf"), progress=False)


def test_the_held_wall_follows_the_protocol(ftf):
    res = ftf.result
    t = res.time
    phase = np.asarray(res.phase_of_sample)
    wall = res.telemetry["probe_wall_C"]
    axis = res.sensors["axis"]
    f1, off, f2 = (phase == n for n in ("freeze-1", "thaw", "freeze-2"))
    assert min(f1.sum(), off.sum(), f2.sum()) >= 10, phase
    # first freeze: held at -150 °C, the probe's voxels with it
    np.testing.assert_array_equal(wall[f1], -150.0)
    np.testing.assert_allclose(axis[f1], -150.0, atol=1e-9)
    # passive thaw: no wall (NaN in the series), the probe's voxels free and warming
    assert np.isnan(wall[off]).all()
    assert np.all(np.diff(axis[off]) > 0), axis[off]
    assert axis[off][-1] > -100.0, axis[off]
    # second freeze: the table, linear in the time since the phase start, then flat
    expected = np.interp(t[f2] - 100.0, [0.0, 30.0], [-60.0, -150.0])
    np.testing.assert_allclose(wall[f2], expected, atol=1e-9)
    np.testing.assert_allclose(axis[f2], expected, atol=1e-9)
    assert wall[f2].max() > -150.0 + 30.0  # the ramp was sampled, not only its end
    # the same in the written time series
    csv = (ftf.files[0].parent / "timeseries.csv").read_text().splitlines()
    assert "probe_wall_C" in csv[0].split(",")


def test_held_heat_per_phase(ftf):
    """The freeze phases draw heat (positive: the wall cools the tissue); the passive
    thaw holds nothing, so draws nothing."""
    held = {p.name: p.held_heat_J for p in ftf.result.phases}
    assert held["freeze-1"] > 100.0, held
    assert held["freeze-2"] > 100.0, held
    assert held["thaw"] == 0.0, held
    in_report = {p["name"]: p["held_heat_J"] for p in ftf.report["phases"]}
    assert in_report["thaw"] == 0.0
    assert in_report["freeze-1"] == pytest.approx(held["freeze-1"], rel=1e-3)


def test_the_iceball_section(ftf):
    ice = ftf.report["iceball"]
    assert "iceball" in ftf.report["sections"]
    assert ice["isotherms_C"] == [0.0, -20.0, -40.0]
    assert ice["lethal_C"] == -20.0
    vols = [ice[k]["max_volume_ml"] for k in ("0", "-20", "-40")]
    assert vols[0] > vols[1] > vols[2] > 0.0, vols
    for k in ("0", "-20", "-40"):
        x, y, z = ice[k]["max_extent_mm"]
        assert x == y < z, ice[k]  # a needle along z: a round, elongated iceball
        assert z > 12.0, ice[k]  # longer than the active part
        assert 0.0 <= ice[k]["at_s"] <= 160.0
        assert ice[k]["final_volume_ml"] <= ice[k]["max_volume_ml"]
    assert ice["tumour_coverage_fraction"] is None  # no tumour in this model
    tel = ftf.result.telemetry
    for k in ("0", "-20", "-40"):
        for col in ("ml", "x_mm", "y_mm", "z_mm"):
            assert f"iceball_{k}C_{col}" in tel
    # the iceball grows in the first freeze and shrinks in the passive thaw
    v0 = tel["iceball_0C_ml"]
    phase = np.asarray(ftf.result.phase_of_sample)
    f1, off = phase == "freeze-1", phase == "thaw"
    assert np.all(np.diff(v0[f1]) >= 0.0), v0[f1]
    assert v0[off][-1] < v0[f1][-1], (v0[f1][-1], v0[off][-1])


def test_custom_isotherms_and_lethal_temperature(tmp_path):
    safety = "[safety]\niceball_isotherms_C = [-10, -30]\nlethal_C = -30\n"
    text = FTF.replace("[[safety.thermocouple]]", safety + "[[safety.thermocouple]]")
    text = text.replace("duration_s = 40", "duration_s = 4").replace(
        "duration_s = 60", "duration_s = 20"
    )
    out = run_scenario(parse_scenario(text), tmp_path, progress=False)
    ice = out.report["iceball"]
    assert ice["isotherms_C"] == [-10.0, -30.0]
    assert ice["lethal_C"] == -30.0
    assert ice["-10"]["max_volume_ml"] > ice["-30"]["max_volume_ml"] > 0.0


# -- perfusion after thawing -----------------------------------------------------------------


def test_perfusion_stays_off_where_tissue_froze_to_the_lethal_temperature():
    """A probe (-150 °C, 10 mm active length) in perfused muscle at 1 mm for 60 s, then
    actively thawed (wall at +15 °C) for 2 min and left off for 3 min until no voxel is
    below the liquidus (-1 °C). Voxels whose lowest temperature reached -20 °C ([damage]
    perfusion_shutdown_frozen_C, default) stay unperfused; voxels that froze only
    partly or fully but stayed warmer than -20 °C get the library's perfusion back, as do
    those that never froze.
    """
    h, n = 1e-3, 24
    grid = ab.Grid((n, n, n), h, origin=(-(n - 1) * h / 2,) * 3)
    model = ab.Model.uniform(grid, "muscle")
    geo = {"tip": (0.0, 0.0, 5e-3), "direction": (0.0, 0.0, 1.0), "active_length": 10e-3}
    phases = [
        ab.Phase("freeze", 60.0, [CryoSource(name="p", probe_C=-150.0, **geo)]),
        ab.Phase("thaw", 120.0, [CryoSource(name="p", mode="thaw", **geo)]),
        ab.Phase("off", 180.0, [CryoSource(name="p", mode="off", **geo)]),
    ]
    res = ab.simulate(model, phases)
    W = model.thermal_fields.W
    t_min = res.damage.t_min
    t_liq = model.tissues["muscle"].freezing_start_C
    t_sol = model.tissues["muscle"].freezing_end_C
    assert res.temperature.min() > t_liq, res.temperature.min()  # all thawed
    lethal = t_min <= -20.0
    mushy = (t_min < t_liq - 1.0) & (t_min > t_sol + 1.0)  # e.g. -5 °C: partly frozen
    solid = (t_min < t_sol) & (t_min > -20.0)  # frozen solid, not to -20 °C
    never = t_min > 0.0
    counts = [int(m.sum()) for m in (lethal, mushy, solid, never)]
    assert min(counts) >= 8, counts
    assert np.all(res.perfusion[lethal] == 0.0), res.perfusion[lethal].max()
    np.testing.assert_array_equal(res.perfusion[mushy], W[mushy])
    np.testing.assert_array_equal(res.perfusion[solid], W[solid])
    np.testing.assert_array_equal(res.perfusion[never], W[never])
    assert W.min() > 0.0


def test_the_lethal_shutdown_temperature_is_a_setting():
    """[damage] perfusion_shutdown_frozen_C = -5: the partly frozen voxels below -5 °C
    stay off too; as the key path says, it must be below 0 °C."""
    text = VERTEBRA + "[damage]\nperfusion_shutdown_frozen_C = -5\n"
    assert parse_scenario(text).shutdown.frozen_C == -5.0
    msg = _error(VERTEBRA + "[damage]\nperfusion_shutdown_frozen_C = 3\n")
    assert "damage.perfusion_shutdown_frozen_C" in msg, msg


# -- plausibility: a single needle in gel -------------------------------------------------------


def _needle_in_gel(h: float) -> tuple[float, float]:
    """The single needle in gel of :func:`test_single_needle_in_gel_isotherm_spacing` at
    grid spacing ``h``: the radii [m] of the 0 °C and -40 °C isotherms in the active
    part's mid-plane after 10 min."""
    half, length, beyond = 36e-3, 40e-3, 25e-3
    nxy = round(2 * half / h)
    nz = round((length + 2 * beyond) / h)
    # voxel centres at (i + 0.5) h - half: the axis x = y = h/2 runs through centres
    grid = ab.Grid((nxy, nxy, nz), h, origin=(-half + 0.5 * h, -half + 0.5 * h, 0.5 * h))
    lib = ab.TissueLibrary.default().with_overrides(
        {"gel": {"based_on": "muscle", "perfusion_per_s": 0.0, "metabolic_W_m3": 0.0}}
    )
    model = ab.Model.uniform(grid, "gel", tissues=lib)
    axis = (0.5 * h, 0.5 * h)
    mid = beyond + 0.5 * length + 0.5 * h  # the mid-plane on voxel centres
    src = CryoSource(
        name="needle", tip=(*axis, mid + 0.5 * length), direction=(0.0, 0.0, 1.0),
        active_length=length, diameter=1.47e-3, probe_C=-150.0,
    )  # fmt: skip
    res = ab.simulate(model, [ab.Phase("freeze", 600.0, [src])], initial_temperature=37.0)
    i0, j0, k0 = model.grid.world_to_index((*axis, mid))
    plane = res.temperature[:, :, k0]
    profiles = [plane[i0:, j0], plane[i0::-1, j0], plane[i0, j0:], plane[i0, j0::-1]]
    r = np.arange(plane.shape[0]) * h

    def crossing(T, level):
        i = int(np.argmax(level < T))
        return r[i - 1] + (level - T[i - 1]) * h / (T[i] - T[i - 1])

    r0 = float(np.mean([crossing(p, 0.0) for p in profiles]))
    r40 = float(np.mean([crossing(p, -40.0) for p in profiles]))
    return r0, r40


@pytest.mark.slow
def test_single_needle_in_gel_isotherm_spacing():
    """The -40 °C isotherm lies about 1 cm inside the 0 °C edge for a single 17 G or 10 G
    needle in gel at body temperature (PMC4850244; docs/physics.md §2.4).

    Set-up, fixed before the result was seen:

    * one 17 G needle (1.47 mm), active length 40 mm: the long IceROD class (45 mm in the
      Go-Smart needle library, docs/physics.md §3.3) shortened to keep the grid small; its
      mid-plane lies 20 mm from either end, more than the expected 0 °C radius
      (~15 mm), so the mid-plane profile is nearly the long cylinder's;
    * wall held at -150 °C over the whole active length (the IceEDGE plateau; a held
      wall is the model's upper bound);
    * gel: the library's muscle without perfusion and metabolic heat (a water-rich gel
      freezes like water-rich tissue: same latent heat and frozen k, c), 37 °C at the
      start and on the far faces (36 mm from the axis, 25 mm beyond each end);
    * 10 min of freezing, 1 mm grid, the default RKL2 super steps;
    * the distance is measured in the mid-plane of the active part, from the radial
      profiles along +x, -x, +y, -y (linear between voxel centres), averaged.

    Expected before running: quasi-steady conduction in the frozen cylinder,
    T(r) = T_w + (T_f - T_w) ln(r/a) / ln(R/a), with a = 0.735 mm and a 0 °C radius
    R ≈ 15 mm puts -40 °C at ≈ 6.7 mm, i.e. ≈ 8 mm inside the 0 °C edge. Range asserted:
    6 - 14 mm, the source's "≈ 1 cm" ± 40 %: the source gives one rounded number read off
    isotherm charts for two needle sizes, the real wall is warmer than the gas plateau
    near the tip and heel (Etheridge et al. 2013, docs/physics.md §6), and at 1 mm the
    1.47 mm needle is a single voxel column (1 mm² against 1.7 mm²). A miss stays as a
    strict xfail with the numbers, not a wider range.

    Seen (after the above was written): 0 °C at 12.56 mm, -40 °C at 4.34 mm, gap
    8.23 mm at 1 mm (9 s on 2 cores; the same with 2 s and 10 s super steps); at 0.5 mm
    (not run here, 150 s) 15.15 and 6.50 mm, gap 8.65 mm: the better-resolved needle
    grows both radii by ~2.4 mm, the gap by 0.4 mm. Inside the range, below the
    source's 1 cm by 1.4-1.8 mm, as the log profile predicted.
    """
    r0, r40 = _needle_in_gel(1e-3)
    gap_mm = (r0 - r40) * 1e3
    text = f"0 °C at {r0 * 1e3:.2f} mm, -40 °C at {r40 * 1e3:.2f} mm, gap {gap_mm:.2f} mm"
    print(text)
    assert 6.0 <= gap_mm <= 14.0, text


# -- super steps: checkpoint and resume ------------------------------------------------------


def test_resume_in_the_middle_of_super_steps_is_bit_identical(tmp_path, monkeypatch):
    """A cryo run in RKL2 super steps, interrupted inside a stage (Ctrl-C in the kernel),
    resumed from its checkpoint, ends bit for bit where the uninterrupted run does: the
    ramp after the phase start, the held heat's recurrence and the frozen conductivity
    all start again from the saved state."""
    import ablasim.solvers.stepper as stepper_module

    grid = ab.Grid((12, 12, 16), 1e-3, origin=(-5.5e-3, -5.5e-3, -7.5e-3))
    model = ab.Model.uniform(grid, "muscle")
    geo = {"tip": (0.5e-3, 0.5e-3, 3.5e-3), "direction": (0.0, 0.0, 1.0), "active_length": 6e-3}
    phases = [
        ab.Phase("freeze", 40.0, [CryoSource(name="p", probe_C=-150.0, **geo)]),
        ab.Phase("thaw", 20.0, [CryoSource(name="p", mode="off", **geo)]),
    ]

    def run(**kw):
        return ab.simulate(
            model, phases, stepping="super", super_step=4.0, checkpoint=tmp_path / "ck.npz",
            checkpoint_interval=0.0, threads=1, **kw,
        )  # fmt: skip

    ref = run()
    (tmp_path / "ck.npz").unlink()
    real = stepper_module.rkl2_stage
    calls = [0]

    def flaky(*args):
        calls[0] += 1
        if calls[0] == 60:  # well past the ramp of the first phase
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(stepper_module, "rkl2_stage", flaky)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.undo()
    res = run(resume=True)
    assert 0.0 < res.timing["resumed_from_s"] < 40.0
    np.testing.assert_array_equal(res.temperature, ref.temperature)
    for key, value in ref.damage.as_dict().items():
        np.testing.assert_array_equal(res.damage.as_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(res.perfusion, ref.perfusion)
    assert res.phases == ref.phases  # the held heat included
    for key, value in ref.telemetry.items():
        np.testing.assert_array_equal(res.telemetry[key], value, err_msg=key)


# -- cut-offs and tables with super steps (review findings) ---------------------------------


def _layered():
    """A 12 x 12 x 24 mm block: muscle, a fat band at z = 3..6 mm, a nerve above it."""
    from ablasim.anatomy import Structure

    grid = ab.Grid((12, 12, 24), 1e-3, origin=(-5.5e-3, -5.5e-3, -11.5e-3))
    _, _, z = grid.mesh()
    labels = np.broadcast_to(np.where(z >= 6e-3, 2, np.where(z >= 3e-3, 1, 0)), grid.shape)
    structures = (Structure("soft", "muscle"), Structure("band", "fat"), Structure("root", "nerve"))
    return ab.Model(grid, labels.astype(np.uint8), structures)


def test_a_cut_off_is_its_first_trip_and_stops_only_what_it_can():
    """A probe with a cold cut-off and a CO₂ layer (lasting) in the same phase, then a
    passive thaw: the cut-off time is the thermocouple's first reading at the limit, the
    event names the probe only (the layer stays), and the thaw, whose probe is off,
    has no cut-off of its own although the thermocouple is still cold."""
    from ablasim.sources import ProtectionSource

    model = _layered()
    geo = {"tip": (0.0, 0.0, 0.0), "direction": (0.0, 0.0, 1.0), "active_length": 8e-3}
    gas = ProtectionSource(fluid="co2", fills="band", near="root", thickness=2e-3, name="gas")
    phases = [
        ab.Phase("freeze", 120.0, [CryoSource(name="p", probe_C=-150.0, **geo), gas]),
        ab.Phase("thaw", 60.0, [CryoSource(name="p", mode="off", **geo)]),
    ]
    tc = [ab.Thermocouple("tc", (0.0, 0.0, 2.5e-3), cutoff=True)]
    res = ab.simulate(model, phases, thermocouples=tc, sample_interval=1.0)
    first = float(res.time[np.argmax(res.sensors["tc"] <= 10.0)])
    assert res.phases[0].cutoff_at_s == pytest.approx(first)
    assert res.phases[1].cutoff_at_s is None
    (event,) = [e for e in res.events if e["kind"] == "cutoff"]
    assert event["sources"] == ["p"], event
    assert "gas" not in event["detail"]
    assert res.model.structure_mask("gas").any()  # the layer is still there


def test_a_probe_table_is_followed_within_super_steps():
    """A wall following [[0, -5], [10, -150]]: the table is sampled for every sub-step
    of a super step (its middle, applied from the sub-step's start), not once at the end
    of the 10 s step, so the heat drawn matches explicit steps (before: +17 %; measured
    0.3 %). Within 1 %: explicit steps themselves move by 0.4 % from 0.16 to 0.01 s."""
    grid = ab.Grid((12, 12, 24), 1e-3, origin=(-5.5e-3, -5.5e-3, -11.5e-3))
    model = ab.Model.uniform(grid, "muscle")
    probe = CryoSource(
        tip=(0.0, 0.0, 0.0), direction=(0.0, 0.0, 1.0), active_length=8e-3,
        probe_C=((0.0, -5.0), (10.0, -150.0)), name="p",
    )  # fmt: skip
    held = {
        mode: ab.simulate(model, [ab.Phase("freeze", 30.0, [probe])], stepping=mode)
        .phases[0]
        .held_heat_J
        for mode in ("explicit", "super")
    }
    assert held["super"] == pytest.approx(held["explicit"], rel=0.01), held


def test_super_steps_and_an_explicit_step_are_refused_together():
    model = ab.Model.uniform(ab.Grid((8, 8, 8), 1e-3), "muscle")
    with pytest.raises(ScenarioError, match="super_step_s"):
        ab.simulate(model, [ab.Phase("p", 10.0)], stepping="super", dt=0.01)
