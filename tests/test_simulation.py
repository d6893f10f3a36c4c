"""The time loop: thermocouple cut-off, checkpoint and resume, stability and blow-up
errors, thermocouple interpolation, energy per phase and timing."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import ablasim as ab
from ablasim.sources import BoundSource, HeldTemperature, MaterialChange

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


HEATER = ab.VolumetricSource.sphere((-4e-3, 0.0, 0.0), 3e-3, power_density_W_m3=1.5e7)
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
    src = ab.VolumetricSource.sphere((-4e-3, 0.0, 0.0), 3e-3, power_density_W_m3=power_density)
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
    boom = ab.VolumetricSource.sphere((0, 0, 0), 3e-3, power_density_W_m3=1e15)
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
    a = ab.VolumetricSource.sphere((-4e-3, 0, 0), 2e-3, power_W=0.3)
    b = ab.VolumetricSource.box((3e-3, 0, 0), (3e-3, 2e-3, 2e-3), power_W=0.2)
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
        return _BoundHeld(self.name, HeldTemperature(self.index, self.temperature_C))


class _BoundHeld(BoundSource):
    static = True

    def __init__(self, name, held):
        self.name = name
        self._held = held

    def held(self, t):
        return self._held


def _unfused_run(model, heater, held_sources, dt, steps):
    """The time loop as it was before damage moved into the step: ``pennes_step``, then
    the held temperatures, then ``accumulate_damage`` over the whole grid (one phase,
    static sources, default perfusion shut-down, no freezing)."""
    from ablasim.damage import DAMAGE_FLOOR_C, GAS_CONSTANT, DamageFields
    from ablasim.solvers import accumulate_damage, fill_ghosts, padded_index, pennes_step

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
    held = [s.bind(model).held(0.0) for s in held_sources]
    pidx = np.concatenate([padded_index(x.index, model.grid.shape) for x in held])
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
            4.6, 60.0, -np.inf, DAMAGE_FLOOR_C,
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
    """The thread chooser's trial steps (after every step here) leave the result as it
    is: they repeat the step on copies of everything it writes besides the spare
    temperature buffer."""
    from ablasim import observers

    phases = [ab.Phase("p", 10.0, [HEATER])]
    ref = ab.simulate(_nerve_model(), phases, threads=1)
    monkeypatch.setattr(observers.ThreadChooser, "due", lambda self: True)
    res = ab.simulate(_nerve_model(), phases)
    np.testing.assert_array_equal(res.temperature, ref.temperature)
    for key, value in ref.damage.as_dict().items():
        np.testing.assert_array_equal(res.damage.as_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(res.perfusion, ref.perfusion)


# -- the limits: reaching one counts --------------------------------------------------------
def test_limits_count_reaching_the_limit():
    lim = ab.Limits(hot_C=45.0, cold_C=10.0)
    assert lim.too_hot(45.0)
    assert not lim.too_hot(np.nextafter(45.0, 0.0))
    assert lim.too_cold(10.0)
    assert not lim.too_cold(np.nextafter(10.0, 20.0))
    np.testing.assert_array_equal(lim.too_hot(np.array([44.9, 45.0, 46.0])), [False, True, True])
    np.testing.assert_array_equal(lim.too_cold(np.array([9.0, 10.0, 11.0])), [True, True, False])
    no_cold = ab.Limits(cold_C=None)
    assert no_cold.too_cold(-100.0) is False
    np.testing.assert_array_equal(no_cold.too_cold(np.array([-100.0, 0.0])), [False, False])


class _HeldWall:
    """A test source: voxels held at temperatures that follow a table ``[[t_s, T_C],
    ...]`` of the time since the phase start, linear between rows (a cryoprobe's wall).
    Its bound source returns the same object while the temperature stays the same."""

    def __init__(self, index, table, name="wall"):
        self.name = name
        self.index = np.asarray(index, dtype=np.int64)
        self.table = np.asarray(table, dtype=float)

    def bind(self, model):
        return _BoundHeldWall(self)


class _BoundHeldWall(BoundSource):
    def __init__(self, src):
        self.name = src.name
        self.src = src
        self._last = None

    def temperature(self, t):
        return float(np.interp(t, self.src.table[:, 0], self.src.table[:, 1]))

    def held(self, t):
        T = self.temperature(t)
        if self._last is None or self._last.temperature_C[0] != T:
            self._last = HeldTemperature(self.src.index, np.full(self.src.index.size, T))
        return self._last


def _voxel(model, ijk):
    """(flat interior index, world position [m]) of voxel ijk."""
    return np.ravel_multi_index(ijk, model.grid.shape), tuple(model.grid.index_to_world(ijk))


@pytest.mark.parametrize(
    ("held_C", "limits", "field"),
    [
        (45.0, ab.Limits(hot_C=45.0, cold_C=10.0), "hot"),
        (10.0, ab.Limits(hot_C=45.0, cold_C=10.0), "cold"),
    ],
)
def test_a_nerve_exactly_at_a_limit_has_crossed_it(held_C, limits, field):
    """A nerve voxel held at exactly the limit counts as beyond it from the first step
    on (the rule of Limits: reaching the limit counts; the loop used ``>`` before)."""
    model = _nerve_model()
    flat, _ = _voxel(model, (20, 6, 6))  # in the nerve slab
    wall = _HeldWall([flat], [[0.0, held_C], [1.0, held_C]])
    res = ab.simulate(model, [ab.Phase("p", 5.0, [wall])], limits=limits)
    nerve = res.nerves["nerve_x"]
    dt = res.phases[0].dt_s
    if field == "hot":
        assert res.nerve_max_trace["nerve_x"][-1] == 45.0
        assert nerve.first_hot_crossing_s == dt
        assert nerve.time_above_hot_s == pytest.approx(5.0, rel=SUM_REL)
        assert nerve.first_cold_crossing_s is None
    else:
        assert res.nerve_min_trace["nerve_x"][-1] == 10.0
        assert nerve.first_cold_crossing_s == dt
        assert nerve.time_below_cold_s == pytest.approx(5.0, rel=SUM_REL)
        assert nerve.first_hot_crossing_s is None


def test_cutoff_trips_at_exactly_the_limit():
    """A cut-off thermocouple reading exactly 45.0 °C (at the centre of a voxel held at
    45 °C, where the reading is the voxel's value bit for bit) switches the sources off
    after the first step."""
    model = _nerve_model()
    flat, pos = _voxel(model, (12, 6, 6))
    wall = _HeldWall([flat], [[0.0, 45.0], [1.0, 45.0]])
    res = ab.simulate(
        model,
        [ab.Phase("p", 5.0, [wall, HEATER])],
        thermocouples=[ab.Thermocouple("tc", pos, cutoff=True)],
    )
    dt = res.phases[0].dt_s
    assert res.sensors["tc"][1] == 45.0
    assert res.phases[0].cutoff_at_s == dt
    assert res.thermocouples["tc"].cutoff_at_s == dt
    assert res.phases[0].energy_J == pytest.approx(HEATER.bind(model).total_power * dt, rel=1e-15)


# -- held voxels that follow a table in time ----------------------------------------------
#: a wall that cools from 37 to -20 °C and back to 30 °C, with plateaus (time since the
#: start of its phase)
WALL_TABLE = [[0.0, 37.0], [6.0, -20.0], [12.0, -20.0], [20.0, 30.0], [40.0, 30.0]]


def _wall_run(tmp_path=None, table=WALL_TABLE, **kw):
    # the explicit step: these tests count its calls (super steps: tests/test_stefan.py)
    kw.setdefault("stepping", "explicit")
    model = _nerve_model()
    shape = model.grid.shape
    flat = np.arange(model.grid.size).reshape(shape)[5:7, 5:7, 5:7].ravel()
    _, pos = _voxel(model, (5, 5, 5))
    wall = _HeldWall(flat, table)
    if tmp_path is not None:
        kw.update(checkpoint=tmp_path / "ck.npz", checkpoint_interval=0.0)
    res = ab.simulate(
        model,
        [ab.Phase("warm", 5.0), ab.Phase("cryo", 25.0, [wall])],
        thermocouples=[ab.Thermocouple("wall", pos)],
        **kw,
    )
    return model, wall, res


def test_held_voxels_follow_a_table_in_time(monkeypatch):
    """held(t) is asked every step with the time since the phase start: the held
    voxels' temperature follows the table (read by a thermocouple at a held voxel's
    centre), their damage counts the held values (t_min reaches the table's -20 °C,
    t_max stays at the start's 37 °C), the stepper re-indexes only when the source
    returns another object, and the stable step accounts for the frozen tissue."""
    from ablasim.solvers import Stepper

    calls = []
    real_hold = Stepper.hold

    def hold(self, index, temperature_C):
        if self.T.shape != (3, 3, 3):  # not the warm-up's
            calls.append(float(temperature_C[0]) if len(temperature_C) else None)
        return real_hold(self, index, temperature_C)

    monkeypatch.setattr(Stepper, "hold", hold)
    model, wall, res = _wall_run()
    bound = wall.bind(model)
    n1, n2 = res.phases[0].steps, res.phases[1].steps
    dt2 = res.phases[1].dt_s
    t_rel = res.time - 5.0
    cryo = res.time > 5.0
    expected = [bound.temperature(t) for t in t_rel[cryo]]
    np.testing.assert_allclose(res.sensors["wall"][cryo], expected, rtol=1e-12, atol=1e-12)
    # the held voxels' damage: the held values, the lowest exactly -20 °C
    assert res.damage.t_min[5, 5, 5] == -20.0
    assert res.damage.t_max[5, 5, 5] == 37.0
    assert res.temperature[5, 5, 5] == 30.0
    # one hold for the first phase (nothing held), then one per change of the value
    values = [bound.temperature(k * dt2) for k in range(n2 + 1)]
    changes = 1 + sum(a != b for a, b in zip(values[1:], values[:-1], strict=True))
    assert len(calls) == 1 + changes < n1 + n2
    assert calls[0] is None
    # frozen tissue: a shorter stable step than with a wall that stays above freezing
    _, _, warm = _wall_run(table=[[0.0, 37.0], [40.0, 30.0]])
    assert res.timing["stable_dt_s"] < warm.timing["stable_dt_s"]


def test_resume_in_the_middle_of_a_held_table_is_bit_identical(
    tmp_path, monkeypatch, interrupt_after
):
    _, _, ref = _wall_run()
    n_calls = ref.phases[0].steps + ref.phases[1].steps // 2
    interrupt_after(n_calls)
    with pytest.raises(KeyboardInterrupt):
        _wall_run(tmp_path)
    monkeypatch.undo()
    res = _wall_run(tmp_path, resume=True)[2]
    assert 5.0 < res.timing["resumed_from_s"] < 30.0
    _assert_same_result(ref, res)


# -- a change of material at a phase start ------------------------------------------------
class _Cement:
    """A test source: at the start of its phase, a block of voxels becomes PMMA cement
    (structure "cement") at ``temperature_C``; it heats nothing."""

    name = "cement"

    def __init__(self, index, temperature_C=21.0):
        self.index = np.asarray(index, dtype=np.int64)
        self.temperature_C = temperature_C

    def bind(self, model):
        return _BoundCement(self)


class _BoundCement(BoundSource):
    static = True

    def __init__(self, src):
        self.name = src.name
        self.change = MaterialChange(src.index, "pmma_cement", "cement", src.temperature_C)

    def material(self):
        return self.change


def _block(model):
    """A block of 4 x 4 x 4 voxels, away from the heater and the nerve; (9, 1, 1) is
    inside it."""
    return np.arange(model.grid.size).reshape(model.grid.shape)[8:12, 0:4, 0:4].ravel()


def test_material_change_gives_the_new_tissue_from_the_phase_start_on():
    """Voxels that become cement when a phase starts are stepped with the cement's
    properties (conductivity, heat capacity, no perfusion, no Arrhenius damage) from
    then on, in later phases too, and start at the set temperature: the run equals, bit
    for bit, a run on a model that holds the cement from the start at that temperature
    (but for the block's t_max, which remembers the 37 °C before the change).
    Before the phase they are the old tissue (their thermocouple trace equals that of a
    run without the change); the result's model holds the new structure; the stable step
    is that of the model with cement (higher diffusivity: shorter)."""
    model = _nerve_model()
    block = _block(model)
    _, pos = _voxel(model, (9, 1, 1))
    with_cement = model.with_material(block, tissue="pmma_cement", structure="cement")
    init = np.full(model.grid.shape, 37.0)
    init.reshape(-1)[block] = 21.0
    heat = [HEATER]
    dt = 0.9 * min(
        ab.simulate(m, [ab.Phase("p", 1.0)]).timing["stable_dt_s"] for m in (model, with_cement)
    )
    tcs = [ab.Thermocouple("cement", pos)]
    changed = ab.simulate(
        model,
        [ab.Phase("inject", 10.0, [_Cement(block), *heat]), ab.Phase("after", 10.0, heat)],
        dt=dt,
        thermocouples=tcs,
    )
    ref = ab.simulate(
        with_cement,
        [ab.Phase("inject", 10.0, heat), ab.Phase("after", 10.0, heat)],
        dt=dt,
        initial_temperature=init,
        thermocouples=tcs,
    )
    np.testing.assert_array_equal(changed.temperature, ref.temperature)
    # the block's t_max keeps its history (37 °C before the change)
    ref.damage.t_max.reshape(-1)[block] = np.maximum(ref.damage.t_max.reshape(-1)[block], 37.0)
    for key, value in ref.damage.as_dict().items():
        np.testing.assert_array_equal(changed.damage.as_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(changed.perfusion, ref.perfusion)
    np.testing.assert_array_equal(changed.model.labels, with_cement.labels)
    assert changed.model.structures == with_cement.structures
    assert changed.damage.t_min[9, 1, 1] == 21.0
    assert np.all(changed.damage.omega.reshape(-1)[block] == 0.0)  # A = 0 for cement
    assert changed.sensors["cement"][0] == 37.0  # the start sample: before the change
    # the stable step over every phase's model: the cement's
    free = ab.simulate(model, [ab.Phase("inject", 1.0, [_Cement(block)])])
    assert free.timing["stable_dt_s"] == ref.timing["stable_dt_s"]
    assert (
        free.timing["stable_dt_s"] < ab.simulate(model, [ab.Phase("p", 1.0)]).timing["stable_dt_s"]
    )
    # in a later phase: muscle until that phase starts
    late = ab.simulate(
        model,
        [ab.Phase("heat", 10.0, heat), ab.Phase("inject", 10.0, [_Cement(block), *heat])],
        dt=dt,
        thermocouples=tcs,
    )
    before = ab.simulate(model, [ab.Phase("heat", 10.0, heat)], dt=dt, thermocouples=tcs)
    k = len(before.time)
    np.testing.assert_array_equal(late.sensors["cement"][:k], before.sensors["cement"])
    assert late.sensors["cement"][k] < 25.0  # 1 s after the change (muscle: 37 °C)
    assert late.model.structure_names[-1] == "cement"


def test_material_change_conserves_energy_in_an_insulated_box(rng):
    """Insulated box, no perfusion, a heater on throughout; cement replaces a block at
    the start of the second phase, at 21 °C. Heat stored at the end minus at the start
    equals the energy delivered plus the enthalpy the change itself set (the block's
    cement enthalpy at 21 °C minus its tissue enthalpy just before), to round-off."""
    from ablasim.solvers.pennes import enthalpy_numpy

    lib = ab.TissueLibrary.default().with_overrides(
        {t: {"perfusion_per_s": 0.0} for t in ("muscle", "nerve")}
    )
    base = _nerve_model()
    model = ab.Model(base.grid, base.labels, base.structures, lib, ab.Boundary.adiabatic())
    block = _block(model)
    heater = ab.VolumetricSource.box((-6e-3, 0, 0), (4e-3, 4e-3, 4e-3), power_W=0.5)

    def stored(m, T):
        p = m.thermal_fields.phase[m.labels]
        hv = enthalpy_numpy(T, *(p[..., c] for c in range(8)))
        return hv * m.grid.voxel_volume

    with_cement = model.with_material(block, tissue="pmma_cement", structure="cement")
    dt = 0.9 * ab.simulate(with_cement, [ab.Phase("p", 1.0)]).timing["stable_dt_s"]
    pre = ab.simulate(model, [ab.Phase("pre", 30.0, [heater])], dt=dt)
    res = ab.simulate(
        model,
        [
            ab.Phase("pre", 30.0, [heater]),
            ab.Phase("inject", 30.0, [heater, _Cement(block)]),
            ab.Phase("after", 30.0, [heater]),
        ],
        dt=dt,
    )
    assert res.model.structure_names[-1] == "cement"
    T0 = np.full(model.grid.shape, 37.0)
    # the change: cement at 21 °C where tissue was at its temperature after "pre"
    T_set = pre.temperature.copy()
    T_set.reshape(-1)[block] = 21.0
    change = (
        stored(with_cement, T_set).reshape(-1)[block].sum()
        - stored(model, pre.temperature).reshape(-1)[block].sum()
    )
    delivered = sum(p.energy_J for p in res.phases)
    assert delivered == pytest.approx(0.5 * 90.0, rel=SUM_REL)
    gained = stored(res.model, res.temperature).sum() - stored(model, T0).sum()
    assert abs(change) > 0.1 * delivered  # the change does matter to the balance
    assert gained == pytest.approx(delivered + change, rel=1e-9)


def test_with_material_reuses_or_refuses_a_structure_name():
    model = _nerve_model()
    block = _block(model)
    one = model.with_material(block, tissue="pmma_cement", structure="cement")
    assert one.structure_names == ("muscle", "nerve_x", "cement")
    assert model.structure_names == ("muscle", "nerve_x")  # unchanged
    two = one.with_material(block[:3] + 1000, tissue="pmma_cement", structure="cement")
    assert len(two.structures) == 3
    assert (two.labels == 2).sum() == block.size + 3
    with pytest.raises(ab.ScenarioError, match=r"'cement' is 'pmma_cement'.*not 'fat'"):
        one.with_material(block, tissue="fat", structure="cement")
    with pytest.raises(ab.ScenarioError, match="flat indices into the grid"):
        model.with_material([model.grid.size], tissue="fat", structure="fat")


# -- a source with array state ------------------------------------------------------------
class _Curing:
    """A test source whose state holds arrays: each voxel of a block cures,
    ``alpha += dt * rate * (1 - alpha) * T / 37``, and heats at ``q * rate * (1 - alpha)``;
    it also counts its steps (an int) and keeps its last time (a float)."""

    name = "cure"

    def bind(self, model):
        return _BoundCuring(model)


class _BoundCuring(BoundSource):
    rate = 0.05
    q = 2e7

    def __init__(self, model):
        self.name = "cure"
        self.index = _block(model)
        self.alpha = np.zeros(self.index.size)
        self.alpha_max = np.zeros((2, 2))  # a 2-D array too
        self.steps = 0
        self.t_last = None
        self.restored = None

    def deposit(self, Q, T, t):
        dt = 0.0 if self.t_last is None else t - self.t_last
        Tb = T.reshape(-1)[self.index]
        self.alpha += dt * self.rate * (1.0 - self.alpha) * Tb / 37.0
        self.alpha_max[...] = self.alpha.max()
        heat = self.q * self.rate * (1.0 - self.alpha)
        Q.reshape(-1)[self.index] += heat
        self.steps += 1
        self.t_last = t
        return float(heat.sum() * 1e-9)

    def state(self):
        return {
            "alpha": self.alpha.copy(),
            "alpha_max": self.alpha_max.copy(),
            "steps": self.steps,
            "t_last": self.t_last,
        }

    def restore(self, state):
        self.restored = dict(state)
        self.alpha = state["alpha"].copy()
        self.alpha_max = state["alpha_max"].copy()
        self.steps = state["steps"]
        self.t_last = state["t_last"]

    def telemetry(self):
        return {"alpha": float(self.alpha.mean()), "steps": float(self.steps)}


def test_source_state_with_arrays_resumes_bit_identically(tmp_path, monkeypatch, interrupt_after):
    """A source's array state goes into the checkpoint's npz (no pickle), its other
    values into the JSON meta, and comes back as arrays: the resumed run equals the
    uninterrupted one bit for bit, telemetry included."""
    model = _nerve_model()
    phases = [ab.Phase("cure", 20.0, [_Curing()]), ab.Phase("cool", 5.0)]
    ref_bound = [[_Curing().bind(model)], []]
    ref = ab.simulate(model, phases, bound_sources=ref_bound)
    assert 0.1 < ref_bound[0][0].alpha.mean() < 0.9
    kw = {"checkpoint": tmp_path / "ck.npz", "checkpoint_interval": 0.0}
    interrupt_after(ref.phases[0].steps // 2)
    with pytest.raises(KeyboardInterrupt):
        ab.simulate(model, phases, **kw)
    monkeypatch.undo()
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as z:
        assert {"source_0.0_alpha", "source_0.0_alpha_max"} <= set(z.files)
        assert z["source_0.0_alpha_max"].shape == (2, 2)
        meta = json.loads(str(z["meta"]))
    assert set(meta["source_state"]["0.0"]) == {"steps", "t_last"}
    bound = [[_Curing().bind(model)], []]
    res = ab.simulate(model, phases, resume=True, bound_sources=bound, **kw)
    restored = bound[0][0].restored
    assert isinstance(restored["alpha"], np.ndarray)
    assert restored["alpha"].shape == (64,)
    assert isinstance(restored["steps"], int)
    assert restored["steps"] > 1
    _assert_same_result(ref, res)
    for key, value in ref.telemetry.items():
        np.testing.assert_array_equal(res.telemetry[key], value, err_msg=key)
    np.testing.assert_array_equal(bound[0][0].alpha, ref_bound[0][0].alpha)
