"""RF source and electric-potential solver (docs/physics.md §1.2, §3.1).

Ladder: σ(T) kernel against its NumPy reference; the potential around a spherical
electrode against the exact V0 a / r with second-order convergence; power balance
(∫Q dV = V·I); the generator (constant power, temperature control); a published
plausibility range; bad input.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from analytic import observed_order

import ablasim as ab
from ablasim.errors import ScenarioError
from ablasim.solvers import potential as pot
from ablasim.sources import BoundSource, read_source
from ablasim.sources.rf import RFSource

ORDER_TOL = 0.3


# -- σ(T) ---------------------------------------------------------------------------------
def test_conductivity_factor_kernel_matches_numpy(rng):
    T = rng.uniform(-40.0, 130.0, (7, 6, 5))
    a = rng.uniform(0.0, 0.03, T.shape)
    ref = pot.conductivity_factor_numpy(T, a)
    np.testing.assert_allclose(pot.conductivity_factor(T, a), ref, rtol=1e-13)
    T0 = rng.uniform(20.0, 110.0, T.shape)
    assert pot.max_relative_change(T, T0, a) == pytest.approx(
        pot.max_relative_change_numpy(T, T0, a), rel=1e-12
    )


def test_weighted_change_kernel_matches_numpy(rng):
    T = rng.uniform(20.0, 110.0, (6, 7, 5))
    T0 = rng.uniform(20.0, 110.0, T.shape)
    a = rng.uniform(0.0, 0.03, T.shape)
    w = rng.uniform(0.0, 1.0, T.shape)
    w /= w.sum()
    assert pot.weighted_relative_change(T, T0, a, w) == pytest.approx(
        pot.weighted_relative_change_numpy(T, T0, a, w), rel=1e-12
    )


def test_conductivity_law_and_rolloff():
    """σ₀[1 + a(T − 37)] to 100 °C, linear to 1e-2 σ₀ over 100–105 °C (MITA convention)."""
    a = 0.015
    f = pot.conductivity_factor_numpy(np.array([37.0, 70.0, 100.0, 102.5, 105.0, 150.0]), a)
    f100 = 1 + a * 63
    np.testing.assert_allclose(
        f, [1.0, 1 + a * 33, f100, 0.5 * (f100 + 0.01), 0.01, 0.01], rtol=1e-12
    )


# -- the potential ------------------------------------------------------------------------
def _octant(n, a=2e-3, L=10e-3, v0=1.0, sigma=0.2, cut=True):
    """A sphere of radius a at the corner of the cube [0, L]^3: the faces through the
    centre are symmetry planes (insulated), the far faces hold the exact V0 a / r."""
    h = L / n
    x = (np.arange(n) + 0.5) * h
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    r = np.sqrt(X**2 + Y**2 + Z**2)
    phi = r - a
    kind = (phi < 0).astype(np.int32)

    def face(axis):
        c = [x, x, x]
        c[axis] = np.array([L])
        rr = np.sqrt(sum(q**2 for q in np.meshgrid(*c, indexing="ij")))
        return np.squeeze(v0 * a / rr, axis=axis)

    ground = {"x_max": face(0), "y_max": face(1), "z_max": face(2)}
    system = pot.PotentialSystem(kind, [v0], h, level=phi if cut else None, ground=ground)
    sig = np.full(kind.shape, sigma)
    V = system.solve(sig, tol=1e-12)
    return system, sig, V, v0 * a / r, kind == 0, h


def test_potential_of_a_sphere_converges_at_second_order():
    """Max-norm error over the tissue voxels (the strictest norm: it sees the cut cells
    next to the electrode, where a staircase electrode would give first order)."""
    spacings, errors, cur = [], [], []
    a, sigma, v0 = 2e-3, 0.2, 1.0
    for n in (16, 32, 64):
        system, sig, V, exact, tissue, h = _octant(n, a=a, sigma=sigma, v0=v0)
        spacings.append(h)
        errors.append(np.abs(V - exact)[tissue].max())
        # current of the octant of a sphere in an infinite medium: 4 pi sigma a V0 / 8
        cur.append(system.currents(sig, V)[0] / (0.5 * np.pi * sigma * a * v0) - 1.0)
    order = observed_order(spacings, errors)
    assert abs(order - 2) < ORDER_TOL, (errors, order)
    assert errors[-1] < 1e-3 * v0
    assert abs(observed_order(spacings, np.abs(cur)) - 2) < ORDER_TOL, cur
    assert abs(cur[-1]) < 1e-3


def test_staircase_electrode_is_only_first_order():
    """Why the cut fractions matter: without ``level`` the electrode is a staircase and
    the current converges at first order only, with a far larger error."""
    hs, errs, cut = [], [], []
    for n in (16, 32):
        system, sig, V, _, _, h = _octant(n, cut=False)
        hs.append(h)
        errs.append(abs(system.currents(sig, V)[0] / (0.5 * np.pi * 0.2 * 2e-3) - 1.0))
        system, sig, V, _, _, h = _octant(n)
        cut.append(abs(system.currents(sig, V)[0] / (0.5 * np.pi * 0.2 * 2e-3) - 1.0))
    assert observed_order(hs, errs) < 1.5
    assert errs[-1] > 5 * cut[-1]


def test_joule_heat_equals_v_times_i():
    """Monopolar, grounded cube, heterogeneous σ: Σ Q h³ = V·I to solver round-off
    (the brief asks 1 %; measured 1e-16, allowed 1e-10: the solve stops at 1e-12); with
    non-zero Dirichlet faces the face term is accounted."""
    rng = np.random.default_rng(3)
    n, h = 24, 0.5e-3
    kind = np.zeros((n, n, n), dtype=np.int32)
    kind[10:14, 10:14, 8:16] = 1
    kind[11:13, 11:13, 16:] = -1  # insulated shaft
    sig = rng.uniform(0.05, 0.6, kind.shape)
    v0 = 30.0
    system = pot.PotentialSystem(kind, [v0], h, ground="all")
    V = system.solve(sig, tol=1e-12)
    P = system.joule_heating(sig, V).sum() * h**3
    VI = v0 * system.currents(sig, V)[0]
    assert pytest.approx(VI, rel=1e-10) == P
    # octant with exact (non-zero) Dirichlet faces: P = V0 I - sum V_b I_b
    system, sig, V, _, _, h = _octant(16)
    P = system.joule_heating(sig, V).sum() * h**3
    assert pytest.approx(system.currents(sig, V)[0] - system.boundary_power(sig, V), 1e-10) == P


def test_bipolar_current_is_conserved():
    """Bipolar, insulated faces: what leaves the active electrode enters the return."""
    n, h = 20, 0.5e-3
    kind = np.zeros((n, n, n), dtype=np.int32)
    kind[9:11, 9:11, 4:8] = 2
    kind[9:11, 9:11, 8:11] = -1
    kind[9:11, 9:11, 11:15] = 1
    sig = np.full(kind.shape, 0.3)
    s = pot.PotentialSystem(kind, [1.0, 0.0], h, ground=None)
    V = s.solve(sig, tol=1e-12)
    i1, i2 = s.currents(sig, V)
    assert i1 == pytest.approx(-i2, rel=1e-10)
    assert s.joule_heating(sig, V).sum() * h**3 == pytest.approx(i1, rel=1e-10)


# -- the source ---------------------------------------------------------------------------
def _model(h=0.8e-3, extent=0.024, tissue="muscle", **kw):
    return ab.Model.uniform(ab.Grid.from_extent(extent, h), tissue, **kw)


def _probe(**kw):
    base = {
        "tip": (0.0, 0.0, 0.005),
        "direction": (0, 0, 1),
        "active_length": 0.01,
        "diameter": 1.65e-3,
    }
    base.update(kw)
    return RFSource(**base)


def test_power_control_delivers_the_set_power():
    model = _model()
    # min_resolve_interval_s = 0: here the re-solve is triggered by the drift alone
    src = _probe(control="power", power_W=8.0, min_resolve_interval_s=0.0)
    b = src.bind(model)
    T = np.full(model.grid.shape, 37.0)
    Q = np.zeros(model.grid.shape)
    assert b.deposit(Q, T, 0.0) == pytest.approx(8.0)
    tel = b.telemetry()
    assert tel["power_W"] == 8.0
    assert 20 < tel["impedance_ohm"] < 1000
    # heat the tissue a little (below the re-solve tolerance): the deposit stays at the
    # set power and the true power at the held voltage is within 1 % of it
    X, Y, Z = model.grid.mesh()
    T2 = 37.0 + 0.6 * np.exp(-(X**2 + Y**2 + Z**2) / (3e-3) ** 2)
    Q[...] = 0
    b.deposit(Q, T2, 0.5)
    assert b.system.solves == 1
    sig = model.field("electrical_conductivity_S_m") * pot.conductivity_factor_numpy(
        T2, model.field("electrical_conductivity_coeff_per_K")
    )
    V = b.system.solve(sig)
    g_true = b.system.currents(sig, V)[0]
    assert tel["voltage_V"] ** 2 * g_true == pytest.approx(8.0, rel=0.01)
    # a larger change triggers a re-solve and the deposit is exact again
    Q[...] = 0
    assert b.deposit(Q, T2 + 5.0, 1.0) == pytest.approx(8.0)
    assert b.system.solves >= 2 + 1  # (+1: the check solve above)


def test_voltage_limit_caps_the_power():
    """With a generator limit V_max, the delivered power is min(P_set, V_max² / Z); the
    set power is delivered when the cap is above it."""
    model = _model()
    T = np.full(model.grid.shape, 37.0)
    free = _probe(control="power", power_W=8.0).bind(model)
    free.deposit(np.zeros(model.grid.shape), T, 0.0)
    z = free.telemetry()["impedance_ohm"]
    v_need = math.sqrt(8.0 * z)
    for v_max, expect in ((0.5 * v_need, 0.25 * 8.0), (2.0 * v_need, 8.0)):
        b = _probe(control="power", power_W=8.0, max_voltage_V=v_max).bind(model)
        Q = np.zeros(model.grid.shape)
        assert b.deposit(Q, T, 0.0) == pytest.approx(expect, rel=1e-12)
        assert b.telemetry()["voltage_V"] <= v_max * (1 + 1e-12)
    with pytest.raises(ScenarioError, match="max_voltage_V"):
        _probe(control="power", power_W=8.0, max_voltage_V=0.0)


def test_power_control_in_a_simulation():
    model = _model()
    src = _probe(control="power", power_W=3.0)
    res = ab.simulate(model, [ab.Phase("rf", 60.0, [src])], sample_interval=5.0)
    assert np.allclose(res.power[1:], 3.0, rtol=0.01)
    assert res.phases[0].energy_J == pytest.approx(180.0, rel=0.01)
    assert res.temperature.max() > 45.0
    # the run's timing names the potential solves (the report's timing line shows it)
    t = res.timing["sources"]["rf"]
    assert t["what"] == "potential solves"
    assert t["count"] == res.telemetry["rf_solves"][-1] >= 1
    assert 0.0 < t["seconds"] < res.timing["wall_s"]


@pytest.mark.parametrize(
    ("tissue", "cooled"), [("muscle", False), ("cancellous_bone", True)], ids=["muscle", "bone"]
)
def test_temperature_control_holds_the_set_point(tissue, cooled):
    """PI control at 70 °C (bone RF systems, docs/physics.md §3.1), 20 W limit: after the
    sensor first reaches 68 °C it stays within 70 ± 2 °C."""
    model = _model(tissue=tissue)
    src = _probe(control="temperature", target_C=70.0, max_power_W=20.0, cooled=cooled)
    off = 1e-3 if cooled else 0.0
    res = ab.simulate(
        model,
        [ab.Phase("rf", 180.0, [src])],
        thermocouples={"tip": (0.0, 0.0, 0.005 + off)},
        sample_interval=1.0,
    )
    T = res.sensors["tip"]
    rise = np.argmax(T >= 68.0)
    assert T[rise] >= 68.0, "never reached the set-point"
    assert res.time[rise] < 60.0
    assert np.abs(T[rise:] - 70.0).max() < 2.0, T[rise:].max()
    assert res.power.max() <= 20.0 + 1e-9


def test_impedance_cutoff_pauses_the_generator():
    """Far too much power for a thin uncooled needle: the tissue desiccates, the
    impedance doubles and the generator pauses for 15 s (MITA default), again and again
    while the impedance stays high."""
    model = _model(h=1e-3)
    src = _probe(control="power", power_W=40.0, diameter=1.5e-3)
    res = ab.simulate(model, [ab.Phase("rf", 60.0, [src])], sample_interval=1.0)
    off = res.power == 0.0
    assert off[1:].any(), "no pause"
    # a pause lasts 15 s (back to back while the impedance stays high)
    first = np.argmax(off[1:]) + 1
    stretch = np.argmax(~off[first:]) if (~off[first:]).any() else len(off) - first
    assert stretch >= 13
    assert min(stretch % 15, 15 - stretch % 15) <= 2, stretch


def test_bipolar_and_two_probes_bind_and_heat():
    model = _model(h=0.6e-3)
    src = _probe(
        mode="bipolar",
        active_length=5e-3,
        gap=3e-3,
        cooled=True,
        control="power",
        power_W=5.0,
        more_probes=(((0.006, 0.0, 0.005), (0, 0, 1)),),
    )
    b = src.bind(model)
    Q = np.zeros(model.grid.shape)
    T = np.full(model.grid.shape, 37.0)
    assert b.deposit(Q, T, 0.0) == pytest.approx(5.0)
    held = b.held(0.0)
    assert held is not None
    assert np.all(held.temperature_C == 20.0)
    assert np.all(Q.reshape(-1)[held.index] == 0.0)
    # the two probes heat alike
    x = model.grid.axes()[0]
    left = Q[x < 0.003].sum()
    right = Q[x >= 0.003].sum()
    assert left == pytest.approx(right, rel=0.1)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two numba threads to compare")
def test_results_do_not_depend_on_the_number_of_threads():
    """The simulation switches between one and two kernel threads as the host's load
    changes, so every kernel must give the same bits either way: the sums of the
    potential solver are taken over fixed blocks, not per thread. A short bipolar
    temperature-controlled run (potential re-solves, controller, boiling) with one
    thread and with two is identical bit for bit."""
    model = _model(h=0.6e-3)
    src = _probe(
        mode="bipolar", active_length=5e-3, gap=3e-3, cooled=True, control="temperature",
        target_C=70.0, max_power_W=20.0, potential_margin=0.004,
    )  # fmt: skip
    runs = [
        ab.simulate(model, [ab.Phase("rf", 20.0, [src])], sample_interval=5.0, threads=n)
        for n in (1, 2)
    ]
    assert runs[0].temperature.max() > 60.0
    np.testing.assert_array_equal(runs[0].temperature, runs[1].temperature)
    np.testing.assert_array_equal(runs[0].power, runs[1].power)


class _DepositOnly(BoundSource):
    """A bound source seen only through ``deposit`` (not ``scaled``)."""

    def __init__(self, bound):
        self._b = bound
        self.name = bound.name

    def deposit(self, Q, T, t):
        return self._b.deposit(Q, T, t)

    def held(self, t):
        return self._b.held(t)

    def telemetry(self):
        return self._b.telemetry()


@pytest.mark.parametrize("metabolic", [0.0, 2e4], ids=["map-only", "map-plus-Q"])
def test_kernel_formed_heating_equals_deposited_heating(metabolic):
    """The simulation hands an RF probe's map and power to the step kernel (heating
    formed on the fly) instead of rebuilding Q each step; a run that takes the deposit
    path gives the same temperatures, doses and power, with the map alone and with a
    static heating beside it (metabolic heat switched on: the kernel adds Q + p map).

    Tolerance: the two paths form ``0 + p q`` in different kernels, which LLVM may
    contract into FMAs differently: after two steps the fields differ by 4e-14 K (one
    ulp), and the temperature controller carries such differences on; measured 1.3e-9
    relative after 35 s. 1e-8 is round-off; a wrong map, power or box would differ by
    percents. CEM43 grows as 2^T: a relative change of T by 1e-8 at 150 °C (boiling
    voxels) moves it by ln 2 x 1.5e-6, hence 1e-5 for the dose."""
    lib = ab.TissueLibrary.default().with_overrides({"muscle": {"metabolic_W_m3": metabolic}})
    model = _model(h=0.6e-3, tissues=lib)
    assert model.thermal_fields.Q_met.any() == (metabolic > 0)
    src = _probe(
        mode="bipolar", active_length=5e-3, gap=3e-3, cooled=True, control="temperature",
        target_C=70.0, max_power_W=20.0, potential_margin=0.004,
    )  # fmt: skip
    phases = [ab.Phase("rf", 30.0, [src]), ab.Phase("cool", 5.0)]
    bound = src.bind(model)
    assert bound.box != (slice(None),) * 3  # the map is zero outside the probe's box
    fast = ab.simulate(model, phases, bound_sources=[[bound], []], sample_interval=5.0)
    slow = ab.simulate(
        model, phases, bound_sources=[[_DepositOnly(src.bind(model))], []], sample_interval=5.0
    )
    assert fast.temperature.max() > 60.0
    np.testing.assert_allclose(fast.temperature, slow.temperature, rtol=1e-8, atol=0)
    np.testing.assert_allclose(fast.damage.cem43, slow.damage.cem43, rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(fast.power, slow.power, rtol=1e-8, atol=0)


#: Agar gel for the tumour-mimicking layer of Haemmerich & Schutt 2011, as a library
#: tissue based on liver. Thermal values: a gel of a few % agar is water with a little
#: polysaccharide and salt. k: water 0.60 W/m/K at 20-25 °C; water-agar gels of mass
#: fraction 0.001-0.1 conduct slightly less as the agar fraction rises and more as T rises
#: (Zhang M, Che Z, Chen J et al., "Experimental determination of thermal conductivity of
#: water-agar gel at different concentrations and temperatures", J Chem Eng Data 2011,
#: abstract); agar phantoms with milk/silica additives measure 0.52-0.57 W/m/K (Menikou &
#: Damianou 2017, J Ther Ultrasound 5:14, doi:10.1186/s40349-017-0093-z); liver's
#: +0.2 %/K is kept, close to water's. c: water 4180 J/kg/K at 20 °C, a few % less for the
#: solids, nearly independent of T (so no +0.1 %/K). rho: water plus a few % agar and salt
#: [U, recipe not in the abstract]. No perfusion, no metabolism. Electrical: liver's
#: 0.146 S/m and 1.5 %/K: at 450 kHz tumour and normal-tissue resistivity are similar
#: (the paper; docs/physics.md §1.3) and the gel matches tumour, so liver's value is the
#: library's best estimate of the gel's. Not tumour_lytic's 0.443 S/m: that row is a
#: muscle proxy for a lytic bone lesion, not a liver tumour, and 3x liver's value would
#: contradict the paper's equal gel/liver temperatures at 450 kHz (with it: liver 66 °C,
#: gel 74 °C, gel at 4 mm 140 °C, run once for information, not used).
_AGAR_GEL = {
    "based_on": "liver",
    "description": "agar gel phantom (tumour-mimicking), Haemmerich & Schutt 2011",
    "conductivity_W_mK": 0.60,
    "specific_heat_J_kgK": 4100.0,
    "specific_heat_coeff_per_K": 0.0,
    "density_kg_m3": 1020.0,
    "perfusion_per_s": 0.0,
    "metabolic_W_m3": 0.0,
    "water_fraction": 0.97,
}


def _liver_gel_model(grid, boundary):
    """Liver for z < 0, agar gel for z > 0: the interface is the plane z = 0 (between
    voxel layers), through the middle of an active tip centred on the origin."""
    lib = ab.TissueLibrary.default().with_overrides(
        {"liver": {"perfusion_per_s": 0.0}, "agar_gel": _AGAR_GEL}
    )
    z = grid.mesh()[2]
    labels = np.broadcast_to(z > 0.0, grid.shape).astype(np.uint8)
    structures = (ab.Structure("liver", "liver"), ab.Structure("gel", "agar_gel"))
    return ab.Model(grid, labels, structures, lib, boundary)


@pytest.mark.slow
@pytest.mark.xfail(
    strict=False,
    raises=AssertionError,
    reason="the model gives ~80 °C at 8 mm in both layers (measured 58.7 ± 2.5 °C liver, "
    "57.5 ± 1.4 °C gel): no vapour transport, an assumed electrode and generator, a 48 mm "
    "block; see the docstring",
)
def test_haemmerich_schutt_2011_plausibility():
    """docs/physics.md §4b E10 (Haemmerich & Schutt 2011, IEEE TBME 58:404, PMC3108076):
    porcine liver in contact with a tumour-mimicking agar gel, a needle electrode with half
    its active tip in each layer, 30 W for 12 min at 450 kHz, thermocouples 4 and 8 mm from
    the electrode. At 8 mm: liver 58.7 ± 2.5 °C, gel 57.5 ± 1.4 °C (n = 7; the abstract
    gives no 4 mm values).

    Setup. From the abstract: two layers, liver (z < 0) and agar gel (z > 0, properties in
    ``_AGAR_GEL`` above), meeting at a plane through the middle of the active tip, the
    needle perpendicular to it (entering through the liver); 30 W for 720 s; a
    thermocouple 8 mm from the electrode in each layer. Assumed (not in the abstract): a
    cooled 17 G (1.5 mm) needle with a 30 mm active tip and coolant at 20 °C (a
    Cool-tip-like electrode; an uncooled needle cannot take 30 W for 12 min); tissue and
    gel at 20 °C; no perfusion; the ground as the outer boundary of a 48 mm block whose
    faces are held at 20 °C; the full 30 W throughout (no impedance pauses); the distance
    taken from the needle axis (a guide template's centre-to-centre spacing; from the
    surface would be 0.75 mm further out) and the thermocouples at the middle of each
    layer's half of the tip (z = ±7.5 mm). Model and experiment differ in electrode and
    block geometry, so the check is a band, 45-75 °C, plus the paper's finding at 450 kHz
    that the two layers reach similar temperatures (measured difference 1.2 K, SD of the
    difference ~2.9 K; allowed 6 K).

    Status: fails. After 12 min: liver 79.6 °C, gel 81.1 °C at 8 mm (76.3 / 77.3 °C at
    8.75 mm, the surface reading); at 4 mm liver 100 °C, gel 97 °C. The two layers agree
    with each other as in the paper (gel 1.2 K hotter here, 1.2 K cooler there), but both
    are ~21 K above the measurement. The former all-liver setup gave 76 °C at 8.5 mm from
    the axis at mid-tip, but only after its 8 mm temperatures had peaked near 83 °C and
    fallen back while a few dried-out voxels at the electrode ran away (all-liver at the
    positions used here: 75 °C at 12 min, 80 °C peak). Before the latent heat of
    vaporisation was modelled that setup gave 89.7 °C. Likely causes of the rest: all
    21.6 kJ are driven into a 48 mm block (no generator voltage limit); no vapour
    transport; the electrode and the generator's behaviour are guesses; the vaporisation
    sink uses one tissue water fraction (0.74) for the gel too (~0.97). With the library's
    default generator rule (15 s pauses when the impedance doubles) the model would
    deliver less energy, but that rule is our own assumption, so it is not used to pass
    the test. About 7 s to run.

    Grid study (this setup, final values at 8 mm liver / gel; end impedance): 1 mm
    79.8 / 81.1 °C, 88 Ω; 0.75 mm 71.9 / 71.7 °C, 7.8 kΩ; 0.6 mm 71.5 / 70.6 °C,
    4.2 kΩ; 0.5 mm 76.4 / 76.2 °C, 3.2 kΩ (4 mm: 100-136 °C). The finer grids land in
    the band, but not convergently: with the full 30 W forced into tissue that has
    dried out around the needle, the impedance climbs to kilohms (a generator would need
    300 V) and the result depends on how the drying front meets the voxels. A
    generator's voltage limit or impedance rule, which the paper does not give, decides
    this regime; until it is known the test stays an expected failure at 1 mm."""
    grid = ab.Grid.from_extent(0.048, 1.0e-3)
    model = _liver_gel_model(grid, ab.Boundary.body(20.0))
    src = RFSource(
        tip=(0.0, 0.0, 0.015),
        direction=(0, 0, 1),
        active_length=0.03,
        diameter=1.5e-3,
        cooled=True,
        coolant_C=20.0,
        control="power",
        power_W=30.0,
        impedance_rise=None,
        resolve_tolerance=0.03,
    )
    tcs = {
        f"{layer}_{r_mm}mm": (r_mm * 1e-3, 0.0, z)
        for layer, z in (("liver", -0.0075), ("gel", 0.0075))
        for r_mm in (4, 8)
    }
    assert model.tissue_at(tcs["liver_8mm"]) == "liver"
    assert model.tissue_at(tcs["gel_8mm"]) == "agar_gel"
    res = ab.simulate(
        model,
        [ab.Phase("rf", 720.0, [src])],
        initial_temperature=20.0,
        thermocouples=tcs,
        sample_interval=10.0,
    )
    liver, gel = res.sensors["liver_8mm"][-1], res.sensors["gel_8mm"][-1]
    assert abs(gel - liver) <= 6.0, (liver, gel)
    assert 45.0 <= liver <= 75.0, (liver, gel)
    assert 45.0 <= gel <= 75.0, (liver, gel)


# -- bad input ------------------------------------------------------------------------------
def _table(**kw):
    t = {
        "kind": "rf",
        "tip_mm": [0, 0, 5],
        "direction": [0, 0, 1],
        "active_length_mm": 10,
        "diameter_mm": 1.65,
        "control": {"kind": "temperature", "target_C": 70, "max_power_W": 20},
    }
    t.update(kw)
    return t


def test_reading_builds_the_source():
    s = read_source(_table(mode="bipolar", gap_mm=4, cooled=True), path="phase[0].source[0]")
    assert s.mode == "bipolar"
    assert s.gap == pytest.approx(4e-3)
    assert s.cooled
    assert s.tip == pytest.approx((0.0, 0.0, 5e-3))
    assert s.target_C == 70.0
    assert s.max_power_W == 20.0


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"active_length_mm": 0}, "active_length_mm", "zero active length"),
        ({"control": {"kind": "power", "power_W": 0}}, "control.power_W", "> 0"),
        ({"control": {"kind": "power", "power_W": -5}}, "control.power_W", "> 0"),
        (
            {"control": {"kind": "temperature", "target_C": 30, "max_power_W": 20}},
            "control.target_C",
            "body temperature",
        ),
        (
            {"control": {"kind": "temperature", "target_C": 70, "max_power_W": 0}},
            "control.max_power_W",
            "> 0",
        ),
        ({"control": {"kind": "temperature", "target_C": 70}}, "control.max_power_W", "required"),
        ({"diamter_mm": 1.5}, "diamter_mm", "diameter_mm"),
        ({"mode": "bipolor"}, "mode", "bipolar"),
        ({"mode": "bipolar"}, "gap_mm", "needs an insulated gap"),
        ({"direction": [0, 0, 0]}, "direction", "zeros"),
        ({"ground": ["top"]}, "ground", "x_min"),
    ],
)
def test_reading_errors_name_the_key(change, key, words):
    with pytest.raises(ScenarioError) as exc:
        read_source(_table(**change), path="phase[0].source[0]")
    msg = str(exc.value)
    assert f"phase[0].source[0].{key}" in msg
    assert words in msg


def test_constructor_errors():
    with pytest.raises(ScenarioError, match="zero active length"):
        _probe(active_length=0.0, control="power", power_W=5)
    with pytest.raises(ScenarioError, match="power_W"):
        _probe(control="power", power_W=0.0)
    with pytest.raises(ScenarioError, match="body temperature"):
        _probe(control="temperature", target_C=36.0, max_power_W=10)
    with pytest.raises(ScenarioError, match="max_power_W"):
        _probe(control="temperature", target_C=70.0, max_power_W=-1)
    with pytest.raises(ScenarioError, match="exceeds max_power_W"):
        _probe(control="power", power_W=30.0, max_power_W=20.0)


def test_bind_errors():
    model = _model()
    with pytest.raises(ScenarioError, match="outside the grid"):
        _probe(tip=(0.0, 0.0, 0.05), control="power", power_W=5).bind(model)
    with pytest.raises(ScenarioError, match="outside the grid"):  # partly outside tissue
        _probe(tip=(0.0, 0.0, 0.0119), control="power", power_W=5).bind(model)
    with pytest.raises(ScenarioError, match="overlap"):
        _probe(control="power", power_W=5, more_probes=(((0.0008, 0.0, 0.005), (0, 0, 1)),)).bind(
            model
        )
    with pytest.raises(ScenarioError, match="overlap"):  # a shaft through an electrode
        _probe(
            control="power",
            power_W=5,
            more_probes=(((0.0, 0.0, 0.0), (1, 0, 0)),),
        ).bind(model)
    with pytest.raises(ScenarioError, match="too thin"):
        _probe(control="power", power_W=5, diameter=0.5e-3).bind(model)


@pytest.mark.slow
def test_benchmark_harness_runs():
    """benchmarks/bench_potential.py --quick, so the harness never rots."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "bench_potential.py"
    spec = importlib.util.spec_from_file_location("bench_potential", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = mod.main(["--quick"])
    assert out["solve"]["multigrid"]["first_iterations"] > 0
    assert out["solve"]["amg"]["first_iterations"] > 0
    assert out["run"]["solves"] >= 1


def test_resolves_are_rate_limited():
    """A large drift within min_resolve_interval_s of the last solve does not re-solve;
    the heating keeps its shape and the deposited power stays the set power."""
    model = _model()
    b = _probe(control="power", power_W=8.0, min_resolve_interval_s=2.0).bind(model)
    T = np.full(model.grid.shape, 37.0)
    Q = np.zeros(model.grid.shape)
    b.deposit(Q, T, 0.0)
    Q[...] = 0
    assert b.deposit(Q, T + 20.0, 1.0) == pytest.approx(8.0)
    assert b.system.solves == 1
    Q[...] = 0
    b.deposit(Q, T + 20.0, 2.5)
    assert b.system.solves == 2


def test_resume_restores_the_generator_state(tmp_path, monkeypatch, interrupt_after):
    """Interrupted mid-phase and resumed from the checkpoint, a temperature-controlled
    run continues with its controller's integral (not from zero): the delivered energy
    and the final temperatures match the uninterrupted run. Not bit for bit: the
    potential is re-solved at the resumed step (its pattern is not checkpointed), so the
    tolerance is the re-solve tolerance's effect, 1 % of the energy and 0.5 K."""
    model = _model(h=1e-3)
    src = _probe(control="temperature", target_C=70.0, max_power_W=20.0)
    phases = [ab.Phase("rf", 120.0, [src])]
    full = ab.simulate(model, phases)

    ck = tmp_path / "ck.npz"
    interrupt_after(60)
    with pytest.raises(KeyboardInterrupt):
        ab.simulate(model, phases, checkpoint=ck, checkpoint_interval=0.0)
    monkeypatch.undo()
    resumed = ab.simulate(model, phases, checkpoint=ck, resume=True)
    t0 = resumed.timing["resumed_from_s"]
    assert t0 > 30.0
    # the first samples after the resume: a controller restarted from zero would deliver
    # almost nothing here (the sensor sits at the set-point, so the P term is ~0)
    after = (resumed.time > t0) & (resumed.time < t0 + 3.0)
    p_full = np.interp(resumed.time[after], full.time, full.power)
    np.testing.assert_allclose(resumed.power[after], p_full, rtol=0.1)
    assert resumed.phases[0].energy_J == pytest.approx(full.phases[0].energy_J, rel=0.01)
    assert np.abs(resumed.temperature - full.temperature).max() < 0.5
