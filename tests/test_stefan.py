"""Freezing (issue #11, "What it must show", first two bullets).

* The two-phase Stefan (Neumann) problem with frozen and unfrozen conductivities
  different (the library's water-rich tissue: k_s = 2.0, k_l = 0.495 W/m/K) and the
  library's mushy range (-8..-1 °C), at two or more resolutions: the front within one
  voxel of the exact solution and closer as h shrinks; the temperature profile errors
  stated (docs/physics.md §4a case 7).
* Energy through freezing and thawing: the change of the grid's enthalpy equals the heat
  the held (probe) voxels took out, to round-off.
* Super time stepping (RKL2) against the explicit step on the same grid: the iceball's
  isotherm extents within one voxel, the nerve's minimum within 0.5 K.

Two exact solutions (tests/analytic.py): :class:`NeumannStefan`, the classical one with a
SHARP front at T_f (what the issue asks to compare with; T_f is the mushy interval's
midpoint, where the solver's enthalpy equals the sharp problem's: same total enthalpy
between T_s and T_i), and :class:`MushyStefan`, the similarity solution of the problem the
solver discretises (latent heat spread uniformly over -8..-1 °C and k linear in the
frozen fraction there). The discrete solution converges to the second as h -> 0; it
differs from the first by the mushy interval's own offset, computed and stated below.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from analytic import MushyStefan, NeumannStefan, observed_order
from scipy.integrate import quad

import ablasim as ab
from ablasim.solvers import PHASE_COLUMNS, FaceCondition
from ablasim.solvers.pennes import enthalpy_numpy
from ablasim.sources import BoundSource, HeldTemperature

#: The columns of the phase table that :func:`enthalpy_numpy` takes, in its order.
ENTHALPY_COLUMNS = (
    "rho_c",
    "rho_c_frozen",
    "latent_J_m3",
    "T_solidus_C",
    "T_liquidus_C",
    "latent_vap_J_m3",
    "T_vap_start_C",
    "T_vap_end_C",
)

# the Stefan slab: probe wall at -40 °C, tissue at 37 °C, 10 min of freezing
T_WALL, T_BODY, T_END = -40.0, 37.0, 600.0
#: Slab length: the liquid side's disturbance at the far face (held at T_BODY) is
#: (T_i - T_f) erfc(L / (2 sqrt(kappa_l t))) / erfc(nu lambda) = 2e-4 K at 600 s.
LENGTH = 0.06


def _library(**muscle):
    """The default library with muscle unperfused and without metabolic heat (the exact
    solutions have neither), plus ``muscle`` overrides."""
    props = {"perfusion_per_s": 0.0, "metabolic_W_m3": 0.0, **muscle}
    return ab.TissueLibrary.default().with_overrides({"muscle": props})


def _stefan_parameters(lib):
    """The exact solutions' parameters from the library's muscle (SI, volumetric)."""
    t = lib["muscle"]
    rho = t.density_kg_m3
    common = {
        "t_s": T_WALL,
        "t_i": T_BODY,
        "k_s": t.frozen_conductivity_W_mK,
        "k_l": t.conductivity_W_mK,
        "rho_c_s": rho * t.frozen_specific_heat_J_kgK,
        "rho_c_l": rho * t.specific_heat_J_kgK,
        "latent_J_m3": rho * t.latent_heat_J_kg,
    }
    return common, t.freezing_end_C, t.freezing_start_C  # solidus, liquidus


def _exact(lib):
    """(sharp Neumann solution at the mushy midpoint, mushy similarity solution)."""
    common, t_sol, t_liq = _stefan_parameters(lib)
    sharp = NeumannStefan(t_f=0.5 * (t_sol + t_liq), **common)
    mushy = MushyStefan(t_sol=t_sol, t_liq=t_liq, **common)
    return sharp, mushy


# -- the exact solutions themselves ----------------------------------------------------------


def _complex_step(f, x, rel=1e-30):
    """df/dx at real x by the complex step (exact to round-off: no subtraction)."""
    eps = rel * max(abs(x), 1.0)
    return np.imag(f(x + 1j * eps)) / eps


@pytest.mark.parametrize("k_s", [2.0, 0.495])
def test_neumann_solution_satisfies_its_equations(k_s):
    """The lambda equation's residual, continuity at the front, the Stefan condition
    k_s dT_s/dx - k_l dT_l/dx = rho L dX/dt (complex-step derivatives, 1e-10 relative),
    the heat equation on both sides, the boundary values."""
    common = {**_stefan_parameters(_library())[0], "k_s": k_s}
    ex = NeumannStefan(t_f=-4.5, **common)
    # the root: the equation's three terms are O(1); brentq's default xtol 2e-12
    assert abs(ex.residual(ex.lam)) < 1e-9
    assert ex.residual(0.5 * ex.lam) * ex.residual(2 * ex.lam) < 0
    for t in (10.0, 600.0, 3600.0):
        x_f = ex.front(t)
        assert ex.frozen(x_f, t) == pytest.approx(ex.t_f, abs=1e-12)
        assert ex.liquid(x_f, t) == pytest.approx(ex.t_f, abs=1e-12)
        assert ex.temperature(0.0, t) == pytest.approx(T_WALL, abs=1e-12)
        assert ex.temperature(1.0, t) == pytest.approx(T_BODY, abs=1e-9)  # 1 m: far field
        # the energy balance at the front (the Stefan condition)
        g_s = _complex_step(lambda x, t=t: ex.frozen(x, t), x_f)
        g_l = _complex_step(lambda x, t=t: ex.liquid(x, t), x_f)
        speed = _complex_step(ex.front, t)
        lhs = ex.k_s * g_s - ex.k_l * g_l
        assert lhs == pytest.approx(common["latent_J_m3"] * speed, rel=1e-10)
        assert min(g_s, g_l, speed) > 0
        # the heat equation: dT/dt (complex step) = kappa d2T/dx2 (central difference
        # of complex-step slopes, step 1e-4 of the position: truncation ~1e-8 relative)
        for x, f, kappa in ((0.5 * x_f, ex.frozen, ex.kappa_s), (1.5 * x_f, ex.liquid, ex.kappa_l)):
            dtt = _complex_step(lambda s, x=x, f=f: f(x, s), t)
            d = 1e-4 * x
            slope = [_complex_step(lambda y, f=f, t=t: f(y, t), x + e) for e in (-d, d)]
            assert dtt == pytest.approx(kappa * (slope[1] - slope[0]) / (2 * d), rel=1e-6)


def _heat_drawn_check(profile, flux_at_wall, t, enthalpy, length, kinks):
    """Heat out through the wall up to t (the time integral of the wall flux, exact for
    a similarity solution: flux ~ t^-1/2) and the enthalpy deficit of the profile
    (quadrature, split at the profile's ``kinks``) [J/m^2]."""
    drawn = 2.0 * t * flux_at_wall(t)  # int_0^t c s^-1/2 ds = 2 t (c t^-1/2)
    deficit, _ = quad(
        lambda x: enthalpy(T_BODY) - enthalpy(float(np.squeeze(profile(x, t)))), 0.0,
        length, points=kinks, limit=400, epsabs=1e-9, epsrel=1e-12,
    )  # fmt: skip
    return drawn, deficit


def test_exact_solutions_conserve_energy_and_agree_for_a_narrow_interval():
    """Both exact solutions: the heat out through the wall equals the drop of enthalpy
    in the medium (quadrature, 1e-7). The mushy solution tends to the sharp one as its
    interval shrinks (+-0.005 K around T_f: fronts agree to 1e-5 relative); for the
    library's -8..-1 °C the midpoint isotherm lies within a fraction of a millimetre of
    the sharp front (stated, and used by the slab tests below)."""
    lib = _library()
    common, t_sol, t_liq = _stefan_parameters(lib)
    sharp, mushy = _exact(lib)
    t = T_END
    rc_s, rc_l, lat = common["rho_c_s"], common["rho_c_l"], common["latent_J_m3"]
    phase = np.array([rc_l, rc_s, lat, t_sol, t_liq, 0.0, 95.0, 100.0])

    def h_mushy(v):
        return float(enthalpy_numpy(np.float64(v), *phase))

    def h_sharp(v):  # the same total, released at T_f only
        t_f = sharp.t_f
        return rc_s * (v - t_f) if v <= t_f else lat + rc_l * (v - t_f)

    def flux_sharp(s):
        return _complex_step(lambda x: sharp.frozen(x, s), 0.0) * sharp.k_s

    def flux_mushy(s):  # k_s d/dx [T_s + b erf(x / (2 sqrt(kappa_s s)))] at x = 0
        return sharp.k_s * mushy.b / np.sqrt(np.pi * mushy.kappa_s * s)

    kinks_m = [mushy.isotherm(v, t) for v in (t_sol, t_liq)]
    for name, profile, flux, h, kinks in (
        ("sharp", sharp.temperature, flux_sharp, h_sharp, [sharp.front(t)]),
        ("mushy", mushy.temperature, flux_mushy, h_mushy, kinks_m),
    ):
        drawn, deficit = _heat_drawn_check(profile, flux, t, h, 0.2, kinks)
        assert deficit == pytest.approx(drawn, rel=1e-7), name
    narrow = MushyStefan(t_sol=sharp.t_f - 0.005, t_liq=sharp.t_f + 0.005, **common)
    assert narrow.isotherm(sharp.t_f, t) == pytest.approx(sharp.front(t), rel=1e-5)
    offset = mushy.isotherm(sharp.t_f, t) - sharp.front(t)
    width = sharp.mushy_width(t, t_sol, t_liq)
    # at 600 s: the sharp profile spans -8..-1 °C over 2.0 mm, the midpoint isotherm of
    # the mushy solution is 0.07 mm behind the sharp front
    assert abs(offset) < 0.1 * width, (offset, width)
    assert abs(offset) < 0.1e-3, offset


# -- the slab against them ----------------------------------------------------------------


def _slab(h, lib):
    """A quasi-1D slab along x (ny = nz = 1, the y and z faces adiabatic): x_min is the
    probe wall held at T_WALL exactly at the face (x = 0, half a voxel before the first
    centre), x_max held at T_BODY."""
    n = round(LENGTH / h)
    grid = ab.Grid((n, 1, 1), h, origin=(0.5 * h, 0.0, 0.0))
    boundary = (
        ab.Boundary.adiabatic()
        .with_face("x_min", FaceCondition("temperature", T_WALL))
        .with_face("x_max", FaceCondition("temperature", T_BODY))
    )
    return ab.Model.uniform(grid, "muscle", tissues=lib, boundary=boundary)


def _isotherm(x, T, level):
    """Where a rising profile first crosses ``level`` (linear between voxel centres)."""
    i = int(np.argmax(level < T))
    assert i > 0, "the level is not crossed inside the slab"
    return x[i - 1] + (level - T[i - 1]) * (x[i] - x[i - 1]) / (T[i] - T[i - 1])


def _freeze_slab(h, lib, **kw):
    """Freeze the slab for T_END; what it shows against both exact solutions."""
    sharp, mushy = _exact(lib)
    _, t_sol, t_liq = _stefan_parameters(lib)
    model = _slab(h, lib)
    res = ab.simulate(model, [ab.Phase("freeze", T_END)], initial_temperature=T_BODY, **kw)
    x = model.grid.axes()[0]
    T = res.temperature[:, 0, 0]
    assert np.all(np.diff(T) > 0)  # monotone: the isotherms are well defined
    front = _isotherm(x, T, sharp.t_f)
    err_m = T - mushy.temperature(x, T_END)
    err_s = T - sharp.temperature(x, T_END)
    frozen = x < mushy.isotherm(t_sol, T_END)
    liquid = x > mushy.isotherm(t_liq, T_END)
    return {
        "h_mm": h * 1e3,
        "front_mm": front * 1e3,
        "sharp_mm": sharp.front(T_END) * 1e3,
        "front_err_sharp_mm": (front - sharp.front(T_END)) * 1e3,
        "front_err_mushy_mm": (front - mushy.isotherm(sharp.t_f, T_END)) * 1e3,
        "solidus_err_mushy_mm": (_isotherm(x, T, t_sol) - mushy.isotherm(t_sol, T_END)) * 1e3,
        "liquidus_err_mushy_mm": (_isotherm(x, T, t_liq) - mushy.isotherm(t_liq, T_END)) * 1e3,
        "max_err_mushy_K": np.abs(err_m).max(),
        "rms_err_mushy_K": np.sqrt(np.mean(err_m**2)),
        "frozen_max_err_sharp_K": np.abs(err_s[frozen]).max(),
        "frozen_rms_err_sharp_K": np.sqrt(np.mean(err_s[frozen] ** 2)),
        "liquid_max_err_sharp_K": np.abs(err_s[liquid]).max(),
        "liquid_rms_err_sharp_K": np.sqrt(np.mean(err_s[liquid] ** 2)),
        "steps": res.timing["steps"],
    }


def _check_stefan(spacings, k_s=None):
    """The slab at each spacing (explicit steps, the reference) against the exact
    solutions; ``k_s`` overrides the frozen conductivity (None: the library's 2.0).

    Assertions, each with the numbers in its message:

    * the front (mid-mushy isotherm, -4.5 °C) within one voxel of the sharp Neumann
      front, at every h. The mushy interval's own offset (MushyStefan's midpoint
      isotherm minus the sharp front) is 0.07 mm at 600 s, well inside the finest
      voxel; the smearing scale (where the sharp profile spans -8..-1 °C) is 2.0 mm;
    * the error against the sharp front smaller at each finer h, and against the
      mushy solution (what the scheme converges to) at least halved per halving of h
      (order >= 1; seen: 0.34, 0.085, 0.025 mm at 1, 0.5, 0.25 mm, order 1.9, and
      against the sharp front 0.41, 0.15, 0.094 mm, tending to the 0.07 mm offset);
      the solidus and liquidus isotherms within h/2 of the mushy solution's (seen at
      most 0.33 mm at 1 mm);
    * the profile: RMS error against the mushy solution at least halved per halving
      (seen 0.45, 0.16, 0.050 K), its maximum (at the liquidus kink) smaller (1.25,
      0.60, 0.19 K); against the sharp solution in the frozen region (x < solidus)
      smaller (max 0.30, 0.072, 0.011 K). The liquid-side error against the sharp
      solution is reported, not asserted (max 0.61, 0.24, 0.60 K): next to the liquidus
      the mushy profile itself differs from the sharp one by ~0.6 K, which no
      refinement removes;
    * the test tells mixed from unmixed conductivity: the sharp fronts with k_s = 2.0
      and with k_s = k_l lie 7 mm apart at 600 s, seven coarse voxels, and the slab's
      front is at least five coarsest voxels from the wrong one.
    """
    lib = _library() if k_s is None else _library(frozen_conductivity_W_mK=k_s)
    common = _stefan_parameters(lib)[0]
    sharp, mushy = _exact(lib)
    other_k = common["k_l"] if common["k_s"] != common["k_l"] else 2.0
    wrong = NeumannStefan(t_f=sharp.t_f, **{**common, "k_s": other_k}).front(T_END)
    offset = mushy.isotherm(sharp.t_f, T_END) - sharp.front(T_END)
    rows = [_freeze_slab(h, lib, stepping="explicit") for h in spacings]
    text = (
        "\n".join(
            ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items())
            for r in rows
        )
        + f"\nmushy offset {offset * 1e3:.4f} mm; front with k_s = {other_k}: {wrong * 1e3:.3f} mm"
    )
    print(text)
    h0 = spacings[0]
    assert abs(sharp.front(T_END) - wrong) > 5 * h0, text
    assert abs(offset) < 0.5 * spacings[-1], text
    for h, r in zip(spacings, rows, strict=True):
        assert abs(r["front_err_sharp_mm"]) <= h * 1e3, text
        assert abs(r["front_mm"] - wrong * 1e3) > 5 * h0 * 1e3, text
        assert abs(r["solidus_err_mushy_mm"]) <= 0.5 * h * 1e3, text
        assert abs(r["liquidus_err_mushy_mm"]) <= 0.5 * h * 1e3, text
    for a, b in itertools.pairwise(rows):
        assert abs(b["front_err_sharp_mm"]) < abs(a["front_err_sharp_mm"]), text
        assert abs(b["front_err_mushy_mm"]) <= 0.5 * abs(a["front_err_mushy_mm"]), text
        assert b["rms_err_mushy_K"] <= 0.5 * a["rms_err_mushy_K"], text
        assert b["max_err_mushy_K"] < a["max_err_mushy_K"], text
        assert b["frozen_max_err_sharp_K"] < a["frozen_max_err_sharp_K"], text
    errors = [abs(r["front_err_mushy_mm"]) for r in rows]
    return rows, observed_order(spacings, errors)


@pytest.mark.parametrize("k_s", [None, 0.495], ids=["k_frozen_2.0", "k_frozen_equal"])
def test_freezing_front_follows_neumann_with_different_conductivities(k_s):
    """The library's frozen k (2.0 W/m/K, four times the unfrozen 0.495) at 1 and
    0.5 mm; the same with the frozen k set equal to the unfrozen one, which must then
    follow that (slower, 5.6 mm against 12.7 mm) solution: the same assertions tell the
    two apart. See :func:`_check_stefan` for what is asserted."""
    _check_stefan([1e-3, 0.5e-3], k_s)


@pytest.mark.slow
def test_freezing_front_three_resolutions():
    """1, 0.5 and 0.25 mm (30 000 explicit steps at the finest); the front's observed
    order against the mushy solution about 2 (>= 1.5)."""
    rows, order = _check_stefan([1e-3, 0.5e-3, 0.25e-3])
    assert order > 1.5, (order, rows)


def test_freezing_front_with_super_steps_stays_within_a_voxel():
    """The planning default for a freezing run (RKL2 super steps of 2 s) at 0.5 mm: the
    front within one voxel of the sharp Neumann front and within h/10 of the explicit
    step's (seen 0.003 mm; 5 s super steps: 0.014 mm), the profile's RMS error against
    the mushy solution within 10 % of the explicit step's (seen 0.166 / 0.161 K)."""
    lib = _library()
    h = 0.5e-3
    sup = _freeze_slab(h, lib, stepping="super", super_step=2.0)
    ref = _freeze_slab(h, lib, stepping="explicit")
    assert abs(sup["front_err_sharp_mm"]) <= h * 1e3, (sup, ref)
    assert abs(sup["front_mm"] - ref["front_mm"]) <= 0.1 * h * 1e3, (sup, ref)
    assert sup["rms_err_mushy_K"] <= 1.1 * ref["rms_err_mushy_K"], (sup, ref)
    assert sup["steps"] == round(T_END / 2.0), sup
    assert sup["steps"] * 10 < ref["steps"], (sup["steps"], ref["steps"])


# -- energy through freezing and thawing ----------------------------------------------------


class _HeldBlock:
    """A test source: voxels (flat interior indices) held at a temperature (a probe)."""

    name = "probe"

    def __init__(self, index, temperature_C):
        self.index = np.asarray(index, dtype=np.int64)
        self.temperature_C = float(temperature_C)

    def bind(self, model):
        held = HeldTemperature(self.index, np.full(self.index.size, self.temperature_C))

        class Bound(BoundSource):
            name = "probe"
            static = True

            def held(self, t):
                return held

        return Bound()


def _stored_heat(model, T):
    """Volumetric enthalpy summed over the grid [J] (zero at each tissue's solidus)."""
    cols = [PHASE_COLUMNS.index(c) for c in ENTHALPY_COLUMNS]
    p = model.thermal_fields.phase[model.labels][..., cols]
    hv = enthalpy_numpy(T, *(p[..., c] for c in range(len(cols))))
    return hv.sum() * model.grid.voxel_volume


@pytest.mark.parametrize("stepping", ["explicit", "super"])
def test_enthalpy_change_equals_heat_drawn_through_freezing_and_thawing(stepping):
    """A closed box (all faces adiabatic, no perfusion, no metabolic heat), 16 mm at
    1 mm: a 2 x 2 x 2 voxel block at its centre held at -150 °C for 2 min (an iceball
    grows around it, -69 °C at the nearest free voxel), then released for 15 min (the
    ice thaws: the box settles near 4.8 °C). The held voxels start at -150 °C, so the
    hold never removes heat they held at the start. Then, to round-off:

    * freezing: enthalpy after - before = -held_heat_J of the phase;
    * thawing: held_heat_J = 0 and the enthalpy does not change;
    * the whole run: both together.

    Tolerance 1e-9 of the heat drawn (~490 J): the box stores ~1.8e3 J of enthalpy
    (4096 voxels of 1e-9 m^3); a step rounds each voxel's update at ~1e-16 of its
    enthalpy, ~2e-13 J per step over the grid if every rounding went the same way,
    ~1e-9 J over the ~6000 steps: ~2e-12 of the heat drawn (seen: 1.5e-15 explicit,
    5e-13 with super steps, whose stages combine several enthalpies). 1e-9 still fails
    on any real leak (one voxel's latent heat is 0.27 J, 5e-4 of the heat drawn).
    """
    lib = _library()
    n, h = 16, 1e-3
    grid = ab.Grid((n, n, n), h)
    model = ab.Model.uniform(grid, "muscle", tissues=lib, boundary=ab.Boundary.adiabatic())
    block = np.zeros(grid.shape, dtype=bool)
    block[7:9, 7:9, 7:9] = True
    index = np.flatnonzero(block)
    init = np.where(block, -150.0, T_BODY)
    probe = _HeldBlock(index, -150.0)
    freeze, thaw = ab.Phase("freeze", 120.0, [probe]), ab.Phase("thaw", 900.0)
    h0 = _stored_heat(model, init)

    one = ab.simulate(model, [freeze], initial_temperature=init, stepping=stepping)
    drawn = one.phases[0].held_heat_J
    h1 = _stored_heat(model, one.temperature)
    assert drawn > 100.0, drawn  # an iceball of a few mm around the block
    assert h1 - h0 == pytest.approx(-drawn, rel=1e-9)
    _, t_sol, t_liq = _stefan_parameters(lib)
    outside = one.temperature[~block]
    assert outside.min() < t_sol  # tissue beyond the probe froze solid

    both = ab.simulate(model, [freeze, thaw], initial_temperature=init, stepping=stepping)
    assert both.phases[0].held_heat_J == pytest.approx(drawn, rel=1e-12)
    assert both.phases[1].held_heat_J == 0.0
    h2 = _stored_heat(model, both.temperature)
    assert h2 - h0 == pytest.approx(-drawn, rel=1e-9)
    assert h2 - h1 == pytest.approx(0.0, abs=1e-9 * drawn)
    assert both.temperature.min() > t_liq  # all of it thawed again
    assert both.damage.t_min.min() == pytest.approx(-150.0)


# -- super steps against the explicit reference ----------------------------------------------

#: Isotherms of the iceball [°C] (the issue's 0, -20, -40 °C).
ICEBALL_LEVELS = (0.0, -20.0, -40.0)


def _probe_model(lib, h=1e-3):
    """Uniform muscle (perfused: perfusion stops where it freezes) 40 x 40 x 24 mm at
    1 mm, faces at body temperature; a 2 x 2 x 10 voxel probe along z at the centre;
    a nerve (library tissue "nerve") as a line of voxels along z, 7.5 mm from the
    probe's axis in x (6.5 mm from its wall)."""
    shape = (40, 40, 24)
    grid = ab.Grid(shape, h)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[27, 19:21, 7:17] = 1  # the probe's axis lies between x indices 19 and 20
    structures = (ab.Structure("muscle", "muscle"), ab.Structure("nerve_root", "nerve"))
    model = ab.Model(grid, labels, structures, lib)
    probe = np.zeros(shape, dtype=bool)
    probe[19:21, 19:21, 7:17] = True
    return model, np.flatnonzero(probe)


def _extents(T, t_min, h):
    """Per level: the iceball's extent through the probe's centre along +x, -x, +y, -y,
    +z, -z (linear interpolation of the final temperature between voxel centres) [m],
    and the bounding box size of the voxels ever at or below it [voxels per axis]."""
    lines = {
        "+x": T[20:, 19:21, 11:13].mean(axis=(1, 2)),
        "-x": T[19::-1, 19:21, 11:13].mean(axis=(1, 2)),
        "+y": T[19:21, 20:, 11:13].mean(axis=(0, 2)),
        "-y": T[19:21, 19::-1, 11:13].mean(axis=(0, 2)),
        "+z": T[19:21, 19:21, 12:].mean(axis=(0, 1)),
        "-z": T[19:21, 19:21, 11::-1].mean(axis=(0, 1)),
    }
    out = {}
    for level in ICEBALL_LEVELS:
        for name, line in lines.items():
            d = 0.5 + np.arange(line.size)  # distance of the centres from c [voxels]
            i = int(np.argmax(line > level))
            assert i > 0, (level, name)
            out[(level, name)] = h * (d[i - 1] + (level - line[i - 1]) / (line[i] - line[i - 1]))
        idx = np.argwhere(t_min <= level)
        out[(level, "box")] = tuple(int(v) for v in idx.max(axis=0) - idx.min(axis=0) + 1)
    return out


def test_super_stepping_matches_explicit():
    """A -150 °C probe (2 x 2 x 10 mm, held voxels) in perfused muscle for 5 min at
    1 mm, explicit steps (the reference) against RKL2 super steps of 2 s on the same
    grid: the 0, -20 and -40 °C isotherms' extents through the probe's centre within one
    voxel (h) and their voxel boxes within one voxel per axis; the nerve's minimum over
    the run within 0.5 K; the heat the probe drew within 1 %; far fewer steps."""
    lib = ab.TissueLibrary.default()
    model, probe = _probe_model(lib)
    h = model.grid.spacing
    phases = [ab.Phase("freeze", 300.0, [_HeldBlock(probe, -150.0)])]
    ref = ab.simulate(model, phases, stepping="explicit")
    sup = ab.simulate(model, phases, stepping="super", super_step=2.0)
    nerve = model.structure_mask("nerve_root")
    e_ref = _extents(ref.temperature, ref.damage.t_min, h)
    e_sup = _extents(sup.temperature, sup.damage.t_min, h)
    lines = [
        f"{k}: explicit {v if isinstance(v, tuple) else round(v * 1e3, 3)}, "
        f"super {e_sup[k] if isinstance(v, tuple) else round(e_sup[k] * 1e3, 3)}"
        for k, v in e_ref.items()
    ]
    n_ref = ref.damage.t_min[nerve].min()
    n_sup = sup.damage.t_min[nerve].min()
    text = "\n".join(lines) + (
        f"\nnerve min explicit {n_ref:.3f} °C, super {n_sup:.3f} °C; steps "
        f"{ref.timing['steps']} / {sup.timing['steps']}; held heat "
        f"{ref.phases[0].held_heat_J:.2f} / {sup.phases[0].held_heat_J:.2f} J"
    )
    print(text)
    # the set-up means something: an iceball with all three isotherms well off the
    # probe, and the nerve cooled a lot but outside the -40 °C zone
    assert e_ref[(-40.0, "+x")] > 2 * h, text
    assert e_ref[(0.0, "+x")] > 5 * h, text
    assert -40.0 < n_ref < 20.0, text
    for key, v in e_ref.items():
        if isinstance(v, tuple):
            assert all(abs(a - b) <= 1 for a, b in zip(v, e_sup[key], strict=True)), (key, text)
        else:
            assert abs(e_sup[key] - v) <= h, (key, text)
    assert abs(n_sup - n_ref) <= 0.5, text
    # the nerve's trace (sampled) agrees with the per-step extreme it is sampled from
    assert sup.nerve_min_trace["nerve_root"].min() >= n_sup - 1e-9
    assert sup.phases[0].held_heat_J == pytest.approx(ref.phases[0].held_heat_J, rel=0.01)
    assert sup.timing["steps"] * 4 <= ref.timing["steps"], text


@pytest.mark.parametrize(("start", "unfrozen"), [(-20.0, 0.0), (-4.5, 0.5), (20.0, 1.0)])
def test_perfusion_and_metabolic_heat_follow_the_unfrozen_fraction(start, unfrozen):
    """A closed, uniform, perfused muscle box with metabolic heat (5 kW/m^3), no
    gradients: its enthalpy changes at (1 - f) (W (T_a - T) + q_met), f the frozen
    fraction (0 above -1 °C, 1/2 at the mushy midpoint -4.5 °C, 1 below -8 °C): frozen
    tissue is neither perfused nor heated by metabolism. Over 2 s the rate changes by
    under 0.2 % (T moves < 0.03 K), hence 1e-2; frozen solid, nothing changes at all.
    The perfusion's permanent cold shut-down is switched off (frozen_C = None) so that
    only the step's own frozen-fraction rule acts."""
    lib = ab.TissueLibrary.default().with_overrides({"muscle": {"metabolic_W_m3": 5000.0}})
    grid = ab.Grid((4, 4, 4), 1e-3)
    model = ab.Model.uniform(grid, "muscle", tissues=lib, boundary=ab.Boundary.adiabatic())
    duration = 2.0
    res = ab.simulate(
        model,
        [ab.Phase("wait", duration)],
        initial_temperature=start,
        perfusion_shutdown=ab.PerfusionShutdown(omega=None, temperature_C=None, frozen_C=None),
    )
    w = lib["muscle"].perfusion_coefficient(lib.blood)
    rate = unfrozen * (w * (lib.blood.temperature_C - start) + 5000.0)  # W/m^3
    stored = _stored_heat(model, res.temperature) - _stored_heat(model, np.full(grid.shape, start))
    assert np.ptp(res.temperature) < 1e-9  # still uniform
    if unfrozen == 0.0:
        assert np.all(res.temperature == start)
    else:
        assert stored / (grid.size * grid.voxel_volume) == pytest.approx(rate * duration, rel=1e-2)
