"""Thermal damage: CEM43 and Arrhenius doses against exact values (docs/physics.md §2, §4a
case 8), the 39 °C dose floor, extreme-temperature fields, perfusion shut-down and the
carry-over of every accumulator from one phase to the next."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

import ablasim as ab
from ablasim.damage import DAMAGE_FLOOR_C, GAS_CONSTANT, arrhenius_rate, cem43_rate
from ablasim.solvers import accumulate_damage, fast_exp

#: A held constant temperature with the accumulators summing n equal terms: each
#: addition rounds by at most half an ulp, so n steps stay within n * 1.1e-16 relative;
#: n <= 4000 here, under 5e-13, and 1e-12 leaves a factor 2 for the exponentials.
DOSE_REL = 1e-12
NO_SHUTDOWN = ab.PerfusionShutdown(omega=None, temperature_C=None)


def _held(tissue: str, temperature: float, duration: float, *, dt: float = 1.0):
    """A uniform block held at ``temperature`` for ``duration`` seconds.

    No perfusion, no metabolic heat (library default), insulated faces and no source:
    every flux and the perfusion term are exactly zero, so T stays at its initial value
    bit for bit and the doses are those of a constant temperature. 2 mm voxels: the
    stable step is > 2 s, so dt = 1 s is allowed.
    """
    lib = ab.TissueLibrary.default().with_overrides({tissue: {"perfusion_per_s": 0.0}})
    grid = ab.Grid((3, 3, 3), 2e-3)
    model = ab.Model.uniform(grid, tissue, tissues=lib, boundary=ab.Boundary.adiabatic())
    res = ab.simulate(model, [ab.Phase("hold", duration)], initial_temperature=temperature, dt=dt)
    assert np.all(res.temperature == temperature)  # the premise: T really held
    assert res.phases[0].steps == round(duration / dt)
    return res, lib


# -- CEM43 ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("temperature", "minutes", "cem43"),
    [(45.0, 60, 240.0), (44.0, 32, 64.0), (43.0, 10, 10.0), (42.0, 20, 5.0)],
)
def test_cem43_at_constant_temperature(temperature, minutes, cem43):
    """§4a case 8: 45 °C x 60 min = 240 and 44 °C x 32 min = 64 CEM43 (R = 0.5 above
    43 °C); 43 °C is the reference (R^0 = 1) and 42 °C x 20 min = 5 checks R = 0.25."""
    res, _ = _held("muscle", temperature, 60.0 * minutes)
    assert res.damage.cem43 == pytest.approx(np.full((3, 3, 3), cem43), rel=DOSE_REL)
    # the pure rate function gives the same dose per second
    assert res.damage.cem43[1, 1, 1] / (60.0 * minutes) == pytest.approx(
        float(cem43_rate(temperature)), rel=DOSE_REL
    )


def test_cem43_rate_doubles_per_degree_above_43_and_quarters_below():
    t = np.array([41.0, 42.0, 43.0, 44.0, 45.0])
    r = cem43_rate(t) * 60.0  # equivalent minutes per minute
    # powers of two are exact in binary floating point, exp2 of an integer too
    np.testing.assert_array_equal(r, [1 / 16, 1 / 4, 1.0, 2.0, 4.0])


# -- Arrhenius --------------------------------------------------------------------------
@pytest.mark.parametrize("tissue", ["muscle", "fat", "skin", "cortical_bone"])
def test_arrhenius_at_constant_temperature(tissue):
    """Omega = A exp(-Ea / (R T_K)) t with the tissue's own A, Ea, at 50 °C for 10 min."""
    temperature, duration = 50.0, 600.0
    res, lib = _held(tissue, temperature, duration)
    A = lib[tissue].arrhenius_A_per_s
    Ea = lib[tissue].arrhenius_Ea_J_mol
    expected = A * math.exp(-Ea / (GAS_CONSTANT * (temperature + 273.15))) * duration
    # The exponent is a difference of two numbers of 60..230 (ln A, Ea/(R T)), each
    # carrying ~1 ulp (<= 3e-14) of round-off; that becomes a relative error of the
    # rate, and it adds to the summation bound of DOSE_REL: 1e-11 covers both.
    assert res.damage.omega == pytest.approx(np.full((3, 3, 3), expected), rel=1e-11)
    assert float(arrhenius_rate(temperature, A, Ea)) * duration == pytest.approx(
        expected, rel=1e-11
    )


def test_liver_omega_one_after_61_s_at_50_C():
    """Derived check value (docs/physics.md §2.2): the liver set reaches Omega = 1 after 61 s
    at 50 °C. Within 1 s: the value is quoted to whole seconds."""
    duration = 61.0
    res, _ = _held("liver", 50.0, duration, dt=0.5)
    omega = float(res.damage.omega[1, 1, 1])
    time_to_one = duration / omega  # the rate is constant
    assert time_to_one == pytest.approx(61.0, abs=1.0)


def test_zero_frequency_factor_takes_no_damage():
    """A = 0 (non-living material such as PMMA) gives Omega = 0 and a zero rate."""
    res, lib = _held("pmma_cement", 60.0, 60.0)
    assert lib["pmma_cement"].arrhenius_A_per_s == 0.0
    assert np.all(res.damage.omega == 0.0)
    assert np.all(arrhenius_rate(np.array([40.0, 90.0]), 0.0, 0.0) == 0.0)
    assert np.all(res.damage.cem43 > 0)  # CEM43 does not depend on the tissue


# -- the dose floor ---------------------------------------------------------------------
def test_nothing_accrues_below_the_39_C_floor():
    """At 38 °C for an hour neither dose accrues.

    Why the floor (damage.py): below 39 °C CEM43 grows by under 0.004 min per minute
    (0.06 min in this hour, against thresholds of 48-240 min), while the single-step
    Arrhenius sets, fitted to hyperthermic data, are not valid near body temperature
    (the liver set would give Omega ~ 0.7 in this hour of doing nothing).
    """
    res, lib = _held("muscle", 38.0, 3600.0)
    assert np.all(res.damage.cem43 == 0.0)
    assert np.all(res.damage.omega == 0.0)
    # what the floor throws away is negligible for CEM43, and large for Arrhenius
    assert cem43_rate(38.0) * 3600.0 < 0.25
    t = lib["muscle"]
    assert arrhenius_rate(38.0, t.arrhenius_A_per_s, t.arrhenius_Ea_J_mol) * 3600 > 0.1
    # just above the floor the dose does accrue, at the rate of the pure function
    res2, _ = _held("muscle", DAMAGE_FLOOR_C + 0.5, 600.0)
    assert res2.damage.cem43[0, 0, 0] == pytest.approx(
        float(cem43_rate(DAMAGE_FLOOR_C + 0.5)) * 600.0, rel=DOSE_REL
    )


# -- the kernel against a NumPy reference -----------------------------------------------
def _tables(lib, tissues):
    A = np.array([lib[t].arrhenius_A_per_s for t in tissues])
    Ea = np.array([lib[t].arrhenius_Ea_J_mol for t in tissues])
    with np.errstate(divide="ignore"):
        ln_a = np.where(A > 0, np.log(np.where(A > 0, A, 1.0)), -np.inf)
    return A, Ea, ln_a, Ea / GAS_CONSTANT


def _accumulators(rng, shape):
    """Random starting t_max, t_min, CEM43, Omega and perfusion W, a reachable state:
    flow stopped where Omega passed 4.6."""
    t_max = rng.uniform(35.0, 80.0, shape)
    t_min = rng.uniform(20.0, 60.0, shape)
    cem = rng.uniform(0.0, 10.0, shape)
    om = rng.uniform(0.0, 5.0, shape)
    W = rng.uniform(1e3, 3e4, shape)
    W[om >= 4.6] = 0.0
    return t_max, t_min, cem, om, W


def test_accumulate_damage_matches_the_pure_functions(rng):
    """One step of the numba kernel on a random heterogeneous field against the pure
    rate functions: extremes, both doses (with the floor), perfusion shut-down."""
    lib = ab.TissueLibrary.default()
    tissues = ("muscle", "fat", "cortical_bone", "pmma_cement", "liver")
    A, Ea, ln_a, ea_r = _tables(lib, tissues)
    shape = (9, 8, 7)
    labels = rng.integers(0, len(tissues), shape).astype(np.uint8)
    T = np.full(tuple(n + 2 for n in shape), np.nan)  # ghosts must not be read
    inner = rng.uniform(30.0, 75.0, shape)
    inner[0, 0, :3] = (DAMAGE_FLOOR_C, 38.9, 39.1)
    T[1:-1, 1:-1, 1:-1] = inner
    t_max0, t_min0, cem0, om0, W0 = _accumulators(rng, shape)
    t_max, t_min, cem, om, W = (a.copy() for a in (t_max0, t_min0, cem0, om0, W0))
    dt = 0.37
    accumulate_damage(T, dt, labels, ln_a, ea_r, t_max, t_min, cem, om, W, 4.6, 60.0, -np.inf, 39.0)

    np.testing.assert_array_equal(t_max, np.maximum(t_max0, inner))
    np.testing.assert_array_equal(t_min, np.minimum(t_min0, inner))
    above = inner > DAMAGE_FLOOR_C
    rate_a = np.zeros(shape)
    for lab, _ in enumerate(tissues):
        sel = labels == lab
        rate_a[sel] = arrhenius_rate(inner[sel], A[lab], Ea[lab])
    exp_cem = cem0 + np.where(above, cem43_rate(inner) * dt, 0.0)
    exp_om = om0 + np.where(above, rate_a * dt, 0.0)
    # one addition plus the rate: a few ulp, and the Arrhenius exponent's cancellation
    # (see test_arrhenius_at_constant_temperature); 1e-11 bounds both
    np.testing.assert_allclose(cem, exp_cem, rtol=1e-12, atol=0)
    np.testing.assert_allclose(om, exp_om, rtol=1e-11, atol=0)
    assert np.array_equal(cem == cem0, ~above)  # exactly nothing below or at the floor
    shut = (om >= 4.6) | (inner >= 60.0)
    assert shut.any()
    assert (~shut).any()
    np.testing.assert_array_equal(W, np.where(shut, 0.0, W0))


# -- the kernel's exp -------------------------------------------------------------------
@numba.njit
def _fast_exp_array(y):
    out = np.empty_like(y)
    for i in range(y.size):
        out[i] = fast_exp(y[i])
    return out


def test_fast_exp_matches_math_exp(rng):
    """The table-and-polynomial exp of the damage kernel against ``math.exp``: a dense
    sweep across and beyond the table range |y| < 128, every table node n/64 and every
    rounding boundary (n + 1/2)/64 with their floating-point neighbours. Required: 1e-13
    relative; it holds to a few ulp (2e-15 guards that). Beyond the table it is math.exp
    itself, bit for bit; -inf (a label with A = 0) gives exactly 0, NaN stays NaN."""
    nodes = np.arange(-130 * 64, 130 * 64 + 1) / 64.0
    ties = nodes + 1.0 / 128.0
    edges = np.array([-128.0, 128.0, -127.99, 127.99, -700.0, -708.0, -745.0, 300.0, 709.0])
    y = np.concatenate(
        [
            np.linspace(-140.0, 140.0, 280_001),
            rng.uniform(-128.0, 128.0, 100_000),
            rng.uniform(-1.0, 1.0, 20_000),
            *(np.nextafter(a, d) for a in (nodes, ties, edges) for d in (-np.inf, np.inf)),
            nodes,
            ties,
            edges,
            [0.0, -0.0, 5e-324, -5e-324, 1e-300, -1e-300],
        ]
    )
    got = _fast_exp_array(y)
    ref = np.array([math.exp(v) for v in y])
    rel = np.abs(got - ref) / ref
    assert rel.max() <= 1e-13
    assert rel.max() <= 2e-15
    outside = np.abs(y) >= 128.0
    assert outside.sum() > 10_000
    np.testing.assert_array_equal(got[outside], ref[outside])
    special = _fast_exp_array(np.array([-np.inf, np.inf, np.nan]))
    assert special[0] == 0.0
    assert special[1] == np.inf
    assert np.isnan(special[2])
    assert fast_exp(1.0) == pytest.approx(math.e, rel=1e-15)  # callable from Python too


def test_accumulate_damage_matches_numpy_reference_with_many_hot_voxels(rng):
    """The kernel against a plain NumPy accumulation (np.exp) on a field with most
    voxels above the floor, over several steps: labels whose Arrhenius exponents fall
    inside the exp table, above it (ln A = 300) and below it (-170), and one with
    ln A = -inf (no Arrhenius damage: Omega stays exactly as it was). Some voxels are
    hot enough (> 228 °C) for the CEM43 exponent to leave the table as well."""
    shape = (13, 11, 17)
    ln_a = np.array([math.log(7.39e39), 300.0, 20.0, -np.inf])
    ea_r = np.array([2.577e5 / GAS_CONSTANT, 75000.0, 60000.0, 3e4])
    labels = rng.integers(0, len(ln_a), shape).astype(np.uint8)
    inner = rng.uniform(36.0, 120.0, shape)
    inner[rng.random(shape) < 0.05] = rng.uniform(228.0, 300.0)
    inner[0, 0, :3] = (DAMAGE_FLOOR_C, 38.9, 39.1)
    T = np.full(tuple(n + 2 for n in shape), np.nan)  # ghosts must not be read
    T[1:-1, 1:-1, 1:-1] = inner
    t_max0, t_min0, cem0, om0, W0 = _accumulators(rng, shape)
    t_max, t_min, cem, om, W = (a.copy() for a in (t_max0, t_min0, cem0, om0, W0))
    dt, steps = 0.37, 3
    for _ in range(steps):
        accumulate_damage(
            T, dt, labels, ln_a, ea_r, t_max, t_min, cem, om, W, 4.6, 60.0, -np.inf, 39.0
        )

    above = inner > DAMAGE_FLOOR_C
    assert above.mean() > 0.9
    x = np.where(inner >= 43.0, inner - 43.0, 2.0 * (inner - 43.0))
    y_arr = ln_a[labels] - ea_r[labels] / (inner + 273.15)
    exps = (np.log(2.0) * x, y_arr)
    assert (np.abs(exps[0][above]) >= 128).any()  # both exponents leave the exp table
    assert (y_arr[above] >= 128).any()
    assert (np.abs(y_arr[above]) < 128).any()
    assert ((y_arr[above] < -128) & np.isfinite(y_arr[above])).any()
    exp_cem, exp_om = cem0.copy(), om0.copy()
    for _ in range(steps):
        exp_cem = np.where(above, exp_cem + dt / 60.0 * np.exp(exps[0]), exp_cem)
        exp_om = np.where(above, exp_om + dt * np.exp(exps[1]), exp_om)
    np.testing.assert_array_equal(t_max, np.maximum(t_max0, inner))
    np.testing.assert_array_equal(t_min, np.minimum(t_min0, inner))
    np.testing.assert_allclose(cem, exp_cem, rtol=1e-12, atol=0)
    np.testing.assert_allclose(om, exp_om, rtol=1e-12, atol=0)
    assert np.array_equal(cem == cem0, ~above)
    no_arrhenius = labels == 3
    assert no_arrhenius.any()
    np.testing.assert_array_equal(om[no_arrhenius], om0[no_arrhenius])
    shut = (om >= 4.6) | (inner >= 60.0)
    assert (~shut).any()
    np.testing.assert_array_equal(W, np.where(shut, 0.0, W0))


# -- extremes ---------------------------------------------------------------------------
def test_t_max_and_t_min_track_the_extremes():
    """A warm block cools towards the 37 °C faces, then a source heats it: at a voxel
    centre (where the thermocouple reading is exact) sampled every step, t_max and t_min
    equal the extremes of the trace exactly (spacing 2^-10 m: positions are exact)."""
    h = 2.0**-10
    grid = ab.Grid((9, 9, 9), h, origin=(-4 * h, -4 * h, -4 * h))
    model = ab.Model.uniform(grid, "muscle")
    heat = ab.VolumetricSource.sphere((0, 0, 0), 2e-3, power_density_W_m3=2e7)
    dt = 0.25
    res = ab.simulate(
        model,
        [ab.Phase("cool", 20.0), ab.Phase("heat", 20.0, [heat]), ab.Phase("cool2", 10.0)],
        initial_temperature=40.0,
        dt=dt,
        sample_interval=dt,
        thermocouples={"c": (h, 0.0, 0.0)},
    )
    trace = res.sensors["c"]
    assert len(trace) == 1 + 200  # the start and every step
    i = (5, 4, 4)
    assert res.damage.t_max[i] == trace.max()
    assert res.damage.t_min[i] == trace.min()
    assert trace.min() < 40.0 < trace.max()  # both extremes were reached during the run
    assert res.damage.t_max[i] > res.temperature[i] > res.damage.t_min[i]
    assert np.all(res.damage.t_max >= res.temperature)
    assert np.all(res.damage.t_min <= res.temperature)
    assert np.all(res.damage.t_max >= 40.0)  # the initial temperature counts


# -- perfusion shut-down ----------------------------------------------------------------
def _heated_muscle(shutdown):
    h = 1e-3
    grid = ab.Grid((11, 11, 11), h, origin=(-5 * h, -5 * h, -5 * h))
    model = ab.Model.uniform(grid, "muscle")
    heat = ab.VolumetricSource.sphere((0, 0, 0), 2.5e-3, power_density_W_m3=4e7)
    res = ab.simulate(model, [ab.Phase("heat", 60.0, [heat])], perfusion_shutdown=shutdown, dt=0.25)
    return model, res


def test_perfusion_stops_above_60_C_only():
    """Temperature-only shut-down: W = 0 exactly where T reached 60 °C, unchanged
    elsewhere; the model's own fields are not touched."""
    model, res = _heated_muscle(ab.PerfusionShutdown(omega=None, temperature_C=60.0))
    W0 = model.thermal_fields.W
    hot = res.damage.t_max >= 60.0
    assert hot.any()
    assert (~hot).any()
    np.testing.assert_array_equal(res.perfusion, np.where(hot, 0.0, W0))
    assert np.all(W0 > 0)  # a second run of the model starts with blood flow again


def test_default_perfusion_shutdown_uses_omega_or_60_C():
    model, res = _heated_muscle(None)
    shut = (res.damage.t_max >= 60.0) | (res.damage.omega >= 4.6)
    assert shut.any()
    assert (~shut).any()
    np.testing.assert_array_equal(res.perfusion, np.where(shut, 0.0, model.thermal_fields.W))


def test_no_perfusion_shutdown_when_disabled():
    model, res = _heated_muscle(NO_SHUTDOWN)
    assert res.damage.t_max.max() > 60.0
    assert res.damage.omega.max() > 4.6
    np.testing.assert_array_equal(res.perfusion, model.thermal_fields.W)


def test_perfusion_shutdown_threshold_below_the_dose_floor():
    """The temperature threshold is a plain temperature test, not a dose: it applies
    even when it lies below the 39 °C dose floor."""
    lib = ab.TissueLibrary.default()
    grid = ab.Grid((3, 3, 3), 1e-3)
    model = ab.Model.uniform(grid, "muscle", tissues=lib, boundary=ab.Boundary.adiabatic())
    res = ab.simulate(
        model,
        [ab.Phase("hold", 10.0)],
        initial_temperature=38.5,
        dt=0.5,
        perfusion_shutdown=ab.PerfusionShutdown(omega=None, temperature_C=38.0),
    )
    assert np.all(res.perfusion == 0.0)
    assert np.all(res.damage.cem43 == 0.0)  # the doses still respect the floor


# -- carry-over between phases ----------------------------------------------------------
def test_two_phases_equal_one_phase_of_the_summed_duration():
    """Temperature, damage and perfusion carry over: 40 s + 20 s of the same source is
    one 60 s phase. With dt given and both durations whole multiples of it, both runs
    take the same 240 steps of 0.25 s in the same order, so they agree bit for bit."""
    h = 1e-3
    grid = ab.Grid((11, 11, 11), h, origin=(-5 * h, -5 * h, -5 * h))
    model = ab.Model.uniform(grid, "muscle")
    heat = ab.VolumetricSource.sphere((0, 0, 0), 2.5e-3, power_density_W_m3=4e7)
    dt = 0.25
    one = ab.simulate(model, [ab.Phase("heat", 60.0, [heat])], dt=dt)
    two = ab.simulate(model, [ab.Phase("a", 40.0, [heat]), ab.Phase("b", 20.0, [heat])], dt=dt)
    assert [p.dt_s for p in two.phases] == [dt, dt]
    assert one.timing["steps"] == two.timing["steps"] == 240
    np.testing.assert_array_equal(two.temperature, one.temperature)
    for key, value in one.damage.as_dict().items():
        np.testing.assert_array_equal(two.damage.as_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(two.perfusion, one.perfusion)
    # the test exercised the carry-over of shut-down perfusion and of real doses
    assert (one.perfusion == 0).any()
    assert one.damage.omega.max() > 4.6
    assert two.phases[0].energy_J + two.phases[1].energy_J == pytest.approx(
        one.phases[0].energy_J, rel=1e-12
    )
