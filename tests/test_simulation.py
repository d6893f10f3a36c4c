"""The time loop: thermocouple cut-off, checkpoint and resume, stability and blow-up
errors, thermocouple interpolation, energy per phase and timing."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import ablasim as ab

H = 1e-3
#: Summing n equal terms rounds by at most n half-ulps: n < 1000 steps here gives
#: < 1.1e-13 relative; 1e-12 leaves a factor of ten.
SUM_REL = 1e-12


# -- a heater, a thermocouple, a nerve --------------------------------------------------
def _nerve_model(nerve_from_x=3e-3):
    """24 x 12 x 12 mm of muscle with a nerve slab at x > 3 mm (faces at 37 °C)."""
    grid = ab.Grid((24, 12, 12), H, origin=(-11.5e-3, -5.5e-3, -5.5e-3))
    x = grid.axes()[0]
    labels = np.zeros(grid.shape, np.uint8)
    labels[x > nerve_from_x] = 1
    structures = (ab.Structure("muscle", "muscle"), ab.Structure("nerve_x", "nerve"))
    return ab.Model(grid, labels, structures)


HEATER = ab.VolumetricSource.sphere((-4e-3, 0.0, 0.0), 3e-3, power_density=1.5e7)
TC_POSITION = (1e-3, 0.0, 0.0)  # between the heater (edge at x = -1 mm) and the nerve


def _protocol(heat_s=180.0, cool_s=30.0):
    return [ab.Phase("heat", heat_s, [HEATER]), ab.Phase("cool", cool_s)]


def _run_nerve(cutoff: bool, **kw):
    model = _nerve_model()
    return model, ab.simulate(
        model,
        _protocol(),
        thermocouples=[ab.Thermocouple("tc", TC_POSITION, cutoff=cutoff)],
        **kw,
    )


@pytest.fixture(scope="module")
def cut_run():
    """The cut-off run, shared by the tests that compare with it (computed once)."""
    with np.errstate(divide="raise", over="raise", invalid="raise"):
        return _run_nerve(True)


def test_cutoff_thermocouple_stops_the_source_and_protects_the_nerve(cut_run):
    model, cut = cut_run
    _, free = _run_nerve(False)
    assert "nerve_x" in cut.nerves  # the tissue 'nerve' is tracked as a nerve
    t_cut = cut.phases[0].cutoff_at_s
    assert t_cut is not None
    assert cut.thermocouples["tc"].cutoff_at_s == t_cut
    assert cut.thermocouples["tc"].cutoff
    assert not free.thermocouples["tc"].cutoff
    assert free.phases[0].cutoff_at_s is None
    assert free.thermocouples["tc"].cutoff_at_s is None
    assert cut.phases[1].cutoff_at_s is None  # a phase with no source has nothing to stop

    # the trace crosses the 45 °C hot limit within one sample of the cut-off
    trace, times = cut.sensors["tc"], cut.time
    k = int(np.argmax(trace >= cut.limits.hot_C))
    assert trace[k] >= 45.0
    assert np.all(trace[:k] < 45.0)
    assert times[k] == t_cut  # the cut-off moment is sampled
    # within one sample interval (1 s) or one step, whichever is longer
    assert t_cut - times[k - 1] <= max(1.0, cut.phases[0].dt_s) + 1e-12
    # the same run without the cut-off crosses at the same moment (same trajectory)
    kf = int(np.argmax(free.sensors["tc"] >= 45.0))
    assert t_cut <= free.time[kf] <= t_cut + 1.0
    np.testing.assert_array_equal(trace[:k], free.sensors["tc"][:k])

    # power on until the cut-off, off after it
    power = HEATER.bind(model).total_power
    heating = (times > 0) & (times <= t_cut)
    np.testing.assert_array_equal(cut.power[heating], power)
    assert np.all(cut.power[times > t_cut] == 0.0)
    assert np.all(free.power[(times > 0) & (times <= 180.0)] == power)
    # energy = power x delivered time, with and without the cut-off
    assert cut.phases[0].energy_J == pytest.approx(power * t_cut, rel=SUM_REL)
    assert free.phases[0].energy_J == pytest.approx(power * 180.0, rel=SUM_REL)
    assert cut.phases[1].energy_J == free.phases[1].energy_J == 0.0

    # the nerve stays cooler with the safeguard
    mask = model.structure_mask("nerve_x")
    peak_cut = cut.nerve_max_trace["nerve_x"].max()
    peak_free = free.nerve_max_trace["nerve_x"].max()
    assert peak_cut < peak_free - 2.0  # ~39.5 vs ~44 °C
    assert cut.damage.t_max[mask].max() < free.damage.t_max[mask].max()
    # the sampled trace never exceeds the per-step maximum of the same voxels
    assert peak_cut <= cut.damage.t_max[mask].max()
    assert cut.nerves["nerve_x"].time_above_hot_s <= free.nerves["nerve_x"].time_above_hot_s


def test_cold_limit_also_cuts_off():
    """A cut-off thermocouple at or below the cold limit trips at once."""
    model = _nerve_model()
    res = ab.simulate(
        model,
        _protocol(heat_s=5.0, cool_s=1.0),
        initial_temperature=9.0,
        thermocouples=[ab.Thermocouple("tc", (10e-3, 0, 0), cutoff=True)],
    )
    assert res.phases[0].cutoff_at_s == pytest.approx(res.phases[0].dt_s, rel=1e-15)
    assert res.phases[0].energy_J == pytest.approx(
        HEATER.bind(model).total_power * res.phases[0].dt_s, rel=1e-15
    )


# -- checkpoint and resume --------------------------------------------------------------
def _ck_run(tmp_path, *, power_density=1.5e7, heat_s=180.0, **kw):
    model = _nerve_model()
    src = ab.VolumetricSource.sphere((-4e-3, 0.0, 0.0), 3e-3, power_density=power_density)
    return ab.simulate(
        model,
        [ab.Phase("heat", heat_s, [src]), ab.Phase("cool", 30.0)],
        thermocouples=[ab.Thermocouple("tc", TC_POSITION, cutoff=True)],
        checkpoint=tmp_path / "ck.npz",
        checkpoint_interval=0.0,
        **kw,
    )


def _assert_same_result(a, b):
    np.testing.assert_array_equal(a.temperature, b.temperature)
    for key, value in a.damage.as_dict().items():
        np.testing.assert_array_equal(b.damage.as_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(a.perfusion, b.perfusion)
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(a.power, b.power)
    assert a.phase_of_sample == b.phase_of_sample
    for name in a.sensors:
        np.testing.assert_array_equal(a.sensors[name], b.sensors[name])
    for name in a.nerve_max_trace:
        np.testing.assert_array_equal(a.nerve_max_trace[name], b.nerve_max_trace[name])
        np.testing.assert_array_equal(a.nerve_min_trace[name], b.nerve_min_trace[name])
    assert a.phases == b.phases
    assert a.thermocouples == b.thermocouples
    assert a.nerves == b.nerves
    assert a.timing["steps"] == b.timing["steps"]


# the run takes 151 + 26 steps and cuts off at step 31: interrupt before the cut-off,
# after it, and in the second phase
@pytest.mark.parametrize("n_calls", [20, 120, 165])
def test_resume_after_interruption_gives_the_same_result(
    cut_run, tmp_path, monkeypatch, interrupt_after, n_calls
):
    """Resuming repeats exactly the same floating-point operations from the saved state,
    so the result is bit-identical to an uninterrupted run."""
    model, ref = cut_run
    interrupt_after(n_calls)
    with pytest.raises(KeyboardInterrupt):
        _ck_run(tmp_path)
    monkeypatch.undo()
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as z:
        saved = json.loads(str(z["meta"]))
    assert saved["total_steps"] == n_calls - 1  # saved after every completed step
    res = _ck_run(tmp_path, resume=True)
    assert res.timing["resumed_from_s"] == saved["t"] > 0
    _assert_same_result(ref, res)
    assert res.phases[0].cutoff_at_s is not None
    # the throughput counts only the steps this call computed
    t = res.timing
    done = (t["steps"] - saved["total_steps"]) * model.grid.size
    # wall_s - setup_s re-subtracts what was added: a few ulps of round-off
    assert t["voxel_updates_per_s"] * (t["wall_s"] - t["setup_s"]) == pytest.approx(done, rel=1e-9)


def test_resume_without_a_checkpoint_starts_afresh(tmp_path):
    res = _ck_run(tmp_path, heat_s=10.0, resume=True)
    assert res.timing["resumed_from_s"] is None
    assert (tmp_path / "ck.npz").exists()  # saved at the end
    # resuming a finished run returns the same result without stepping again
    again = _ck_run(tmp_path, heat_s=10.0, resume=True)
    _assert_same_result(res, again)


ONE_WARM_VOXEL = np.full((24, 12, 12), 37.0)
ONE_WARM_VOXEL[0, 0, 0] = 38.0


@pytest.mark.parametrize(
    "change",
    [
        {"heat_s": 170.0},  # another protocol
        {"power_density": 2e7},  # another source power
        {"initial_temperature": 36.0},  # another start
        {"initial_temperature": ONE_WARM_VOXEL},  # an array start (was not compared)
    ],
)
def test_checkpoint_of_another_scenario_is_refused(tmp_path, monkeypatch, interrupt_after, change):
    interrupt_after(20)
    with pytest.raises(KeyboardInterrupt):
        _ck_run(tmp_path)
    monkeypatch.undo()
    with pytest.raises(ab.ScenarioError, match="different scenario"):
        _ck_run(tmp_path, resume=True, **change)


def test_checkpoint_of_another_tissue_set_is_refused(tmp_path):
    model = _nerve_model()
    lib = ab.TissueLibrary.default().with_overrides({"muscle": {"perfusion_per_s": 0.0}})
    other = ab.Model(model.grid, model.labels, model.structures, lib)
    kw = {"checkpoint": tmp_path / "ck.npz", "resume": True}
    ab.simulate(model, [ab.Phase("heat", 5.0, [HEATER])], **kw)
    with pytest.raises(ab.ScenarioError, match="different scenario"):
        ab.simulate(other, [ab.Phase("heat", 5.0, [HEATER])], **kw)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_checkpoint_is_refused(tmp_path, damage):
    path = tmp_path / "ck.npz"
    model = _nerve_model()
    phases = [ab.Phase("heat", 5.0, [HEATER])]
    ab.simulate(model, phases, checkpoint=path)
    data = path.read_bytes()
    path.write_bytes(
        {"garbage": b"not a checkpoint" * 10, "truncated": data[: len(data) // 2], "empty": b""}[
            damage
        ]
    )
    with pytest.raises(ab.ScenarioError, match="cannot read checkpoint"):
        ab.simulate(model, phases, checkpoint=path, resume=True)


def test_checkpoint_is_npz_without_pickle(tmp_path):
    path = tmp_path / "ck.npz"
    ab.simulate(_nerve_model(), [ab.Phase("heat", 5.0, [HEATER])], checkpoint=path)
    with np.load(path, allow_pickle=False) as z:
        assert {"meta", "T", "W", "damage_cem43", "damage_omega"} <= set(z.files)
        assert all(z[k].dtype != object for k in z.files)
    assert [p.name for p in tmp_path.iterdir()] == ["ck.npz"]  # no temporary left behind


# -- errors -----------------------------------------------------------------------------
def test_time_step_above_the_limit_is_a_stability_error():
    model = _nerve_model()
    limit = ab.simulate(model, [ab.Phase("p", 1.0)]).timing["stable_dt_s"]
    with pytest.raises(ab.StabilityError, match=re.escape(f"stability limit {limit:.4g} s")):
        ab.simulate(model, [ab.Phase("p", 10.0)], dt=2.0 * limit)
    # exactly the limit is allowed
    res = ab.simulate(model, [ab.Phase("p", 10.0 * limit)], dt=limit)
    assert res.phases[0].steps == 10


def test_blow_up_names_the_phase_and_time():
    model = _nerve_model()
    boom = ab.VolumetricSource.sphere((0, 0, 0), 3e-3, power_density=1e15)
    with pytest.raises(ab.SimulationError, match=r"phase 'boom' at t = \d+\.\d s"):
        ab.simulate(model, [ab.Phase("calm", 2.0), ab.Phase("boom", 10.0, [boom])])


@pytest.mark.parametrize("bad", [np.nan, np.inf, "array"])
def test_non_finite_initial_temperature_is_a_scenario_error(bad):
    model = _nerve_model()
    if bad == "array":
        bad = np.full(model.grid.shape, 37.0)
        bad[3, 4, 5] = np.nan
    with pytest.raises(ab.ScenarioError, match="initial temperature must be finite"):
        ab.simulate(model, [ab.Phase("p", 1.0)], initial_temperature=bad)


def test_thermocouple_outside_the_grid_is_named():
    with pytest.raises(ab.ScenarioError, match=r"thermocouple 'far'.*outside the grid"):
        ab.simulate(
            _nerve_model(),
            [ab.Phase("p", 1.0)],
            thermocouples=[ab.Thermocouple("near", (0, 0, 0)), ab.Thermocouple("far", (0.5, 0, 0))],
        )


def test_duplicate_thermocouple_names_are_refused():
    with pytest.raises(ab.ScenarioError, match="repeated"):
        ab.simulate(
            _nerve_model(),
            [ab.Phase("p", 1.0)],
            thermocouples=[ab.Thermocouple("a", (0, 0, 0)), ab.Thermocouple("a", (1e-3, 0, 0))],
        )


# -- thermocouple interpolation ---------------------------------------------------------
def test_thermocouple_reads_the_field_exactly_at_voxel_centres(rng):
    """Trilinear weights at a voxel centre are (1, 0, ...): the reading is the voxel's
    value bit for bit, at the start and at the end, edges and corners included. A power
    of two spacing makes every centre's position exact in binary."""
    h = 2.0**-10
    grid = ab.Grid((5, 4, 3), h, origin=(-2 * h, -h, 0.0))
    model = ab.Model.uniform(grid, "muscle")
    init = rng.uniform(30.0, 50.0, grid.shape)
    idx = list(np.ndindex(grid.shape))
    tcs = {f"tc{i}{j}{k}": tuple(grid.index_to_world((i, j, k))) for i, j, k in idx}
    mid = tuple(grid.index_to_world((1.5, 2, 1)))
    tcs["mid"] = mid
    res = ab.simulate(model, [ab.Phase("p", 3.0)], initial_temperature=init, thermocouples=tcs)
    for i, j, k in idx:
        trace = res.sensors[f"tc{i}{j}{k}"]
        assert trace[0] == init[i, j, k]
        assert trace[-1] == res.temperature[i, j, k]
    pts = np.array([tcs[f"tc{i}{j}{k}"] for i, j, k in idx])
    np.testing.assert_array_equal(res.temperature_at(pts), res.temperature.reshape(-1))
    # halfway between two centres: the mean (weights 1/2, one rounding in each)
    assert res.sensors["mid"][0] == pytest.approx(0.5 * (init[1, 2, 1] + init[2, 2, 1]), rel=1e-15)


# -- energy and timing ------------------------------------------------------------------
def test_energy_per_phase_is_power_times_duration():
    model = _nerve_model()
    a = ab.VolumetricSource.sphere((-4e-3, 0, 0), 2e-3, power=0.3)
    b = ab.VolumetricSource.box((3e-3, 0, 0), (3e-3, 2e-3, 2e-3), power=0.2)
    phases = [ab.Phase("one", 20.0, [a]), ab.Phase("two", 15.0, [a, b]), ab.Phase("off", 5.0)]
    res = ab.simulate(model, phases)
    for summary, expected in zip(res.phases, (0.3 * 20.0, 0.5 * 15.0, 0.0), strict=True):
        assert summary.energy_J == pytest.approx(expected, rel=SUM_REL)
        assert summary.steps * summary.dt_s == pytest.approx(summary.duration_s, rel=1e-14)
    assert res.phase_of_sample[0] == "start"
    assert set(res.phase_of_sample[1:]) == {"one", "two", "off"}


def test_timing_is_reported():
    res = ab.simulate(_nerve_model(), [ab.Phase("p", 10.0, [HEATER])])
    t = res.timing
    assert t["wall_s"] > 0
    assert t["voxel_updates_per_s"] > 0
    assert t["steps"] == res.phases[0].steps > 0
    assert 0 < t["dt_s"] <= t["stable_dt_s"]
    assert t["resumed_from_s"] is None


# -- damage inside the step: held voxels, thread trials ---------------------------------
class _Held:
    """A test source: voxels (interior flat indices) held at fixed temperatures."""

    def __init__(self, name, index, temperature_C):
        self.name = name
        self.index = np.asarray(index, dtype=np.int64)
        self.temperature_C = np.broadcast_to(temperature_C, self.index.shape).astype(float)

    def bind(self, model):
        from ablasim.sources import HeldTemperature

        held = HeldTemperature(self.index, self.temperature_C)
        name = self.name

        class Bound:
            static = True

            def deposit(self, Q, T, t):
                return 0.0

            def held(self):
                return held

        b = Bound()
        b.name = name
        return b


def _unfused_run(model, heater, held_sources, dt, steps):
    """The time loop as it was before damage moved into the step: ``pennes_step``, then
    the held temperatures, then ``accumulate_damage`` over the whole grid (one phase,
    static sources, default perfusion shut-down, no freezing)."""
    from ablasim.damage import DAMAGE_FLOOR_C, GAS_CONSTANT, DamageFields, accumulate_damage
    from ablasim.simulation import _padded_index
    from ablasim.solvers import fill_ghosts, pennes_step

    f = model.thermal_fields
    h = model.grid.spacing
    blood = model.tissues.blood.temperature_C
    kinds, values, hc = model.boundary.as_arrays()
    T = np.full(tuple(n + 2 for n in model.grid.shape), blood)
    fill_ghosts(T, f.k, kinds, values, hc, h)
    damage = DamageFields.start(T[1:-1, 1:-1, 1:-1])
    W = f.W.copy()
    a_tab = model.label_table("arrhenius_A_per_s")
    with np.errstate(divide="ignore"):
        ln_a = np.where(a_tab > 0, np.log(np.where(a_tab > 0, a_tab, 1.0)), -np.inf)
    ea_r = model.label_table("arrhenius_Ea_J_mol") / GAS_CONSTANT
    held = [s.bind(model).held() for s in held_sources]
    pidx = np.concatenate([_padded_index(x.index, model.grid.shape) for x in held])
    pval = np.concatenate([x.temperature_C for x in held])
    Q = f.Q_met.copy()
    heater.bind(model).deposit(Q, T[1:-1, 1:-1, 1:-1], 0.0)
    T.reshape(-1)[pidx] = pval
    fill_ghosts(T, f.k, kinds, values, hc, h)
    T_new = np.empty_like(T)
    for _ in range(steps):
        pennes_step(T, f.k, f.inv_rhoc, W, Q, blood, dt, h, T_new, model.labels, f.phase, False)
        T, T_new = T_new, T
        T.reshape(-1)[pidx] = pval
        fill_ghosts(T, f.k, kinds, values, hc, h)
        accumulate_damage(
            T, dt, model.labels, ln_a, ea_r, *damage.as_dict().values(), W,
            4.6, 60.0, DAMAGE_FLOOR_C,
        )  # fmt: skip
    return T[1:-1, 1:-1, 1:-1], damage, W


def test_held_voxels_take_the_damage_of_their_held_temperature():
    """Damage is accumulated inside the step, before the held voxels are set: their
    damage must be redone at the held temperature. Against the loop as it was (step,
    hold, separate damage pass): voxels held hot (above the shut-down temperature),
    held cool (a new minimum), a held set that overlaps another (the later one wins, and
    its damage counts once), a heater; temperature, every accumulator and the perfusion
    equal to round-off."""
    model = _nerve_model()
    shape = model.grid.shape
    flat = np.arange(model.grid.size).reshape(shape)
    hot = _Held("hot", flat[2:4, 5:7, 4:8].ravel(), 75.0)
    cool = _Held("cool", flat[18:20, 2:4, 3:6].ravel(), 20.0)
    over = _Held("over", flat[3:5, 6:8, 6:9].ravel(), np.linspace(50.0, 90.0, 12))
    srcs = [hot, cool, over]
    res = ab.simulate(model, [ab.Phase("p", 12.0, [HEATER, *srcs])])
    steps, dt = res.phases[0].steps, res.phases[0].dt_s
    T_ref, dmg_ref, W_ref = _unfused_run(model, HEATER, srcs, dt, steps)

    assert res.temperature[3, 6, 6] == 50.0  # held by "hot" and "over": the later wins
    assert res.temperature[2, 5, 4] == 75.0
    np.testing.assert_allclose(res.temperature, T_ref, rtol=1e-12, atol=0)
    for key, ref in dmg_ref.as_dict().items():
        np.testing.assert_allclose(res.damage.as_dict()[key], ref, rtol=1e-12, atol=0, err_msg=key)
    np.testing.assert_array_equal(res.perfusion, W_ref)
    # the premise: the held voxels' own step would have given other values
    assert res.damage.t_max[2, 5, 4] == 75.0
    assert res.damage.t_min[18, 2, 3] == 20.0
    assert res.perfusion[2, 5, 4] == 0.0  # shut down at 75 degC
    held = np.zeros(shape, bool)
    held[2:4, 5:7, 4:8] = held[3:5, 6:8, 6:9] = True
    assert (res.damage.cem43[held] > 0).all()
    assert res.timing["damage_s"] >= 0


def test_thread_trials_do_not_add_damage(monkeypatch):
    """The thread chooser's trial steps (every step here) leave the result as it is:
    they run the plain step into a scratch buffer, not the step with damage."""
    from ablasim import simulation

    phases = [ab.Phase("p", 10.0, [HEATER])]
    ref = ab.simulate(_nerve_model(), phases, threads=1)
    monkeypatch.setattr(simulation._ThreadChooser, "due", lambda self: True)
    res = ab.simulate(_nerve_model(), phases)
    np.testing.assert_array_equal(res.temperature, ref.temperature)
    for key, value in ref.damage.as_dict().items():
        np.testing.assert_array_equal(res.damage.as_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(res.perfusion, ref.perfusion)
