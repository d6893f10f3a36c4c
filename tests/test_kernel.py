"""The numba kernels against the NumPy reference and against exact discrete results."""

from __future__ import annotations

import numpy as np
import pytest

from ablasim.solvers import (
    Boundary,
    FaceCondition,
    fill_ghosts,
    fill_ghosts_copy,
    pennes_step,
    pennes_step_numpy,
    stable_dt,
)
from ablasim.solvers.pennes import (
    enthalpy,
    enthalpy_numpy,
    temperature_from_enthalpy,
    temperature_from_enthalpy_numpy,
)

PHASE = np.array(
    [
        [3.6e6, 1.9e6, 2.5e8, -8.0, -1.0, 1.7e9, 95.0, 100.0, 0.5, 2.0, 1e3],
        [2.5e6, 2.5e6, 3.0e7, -8.0, -1.0, 2.0e8, 95.0, 100.0, 0.4, 0.4, 0.0],
        [1.5e6, 1.5e6, 0.0, -8.0, -1.0, 0.0, 95.0, 100.0, 0.3, 0.3, 0.0],
    ]
)


def random_problem(rng, shape=(19, 14, 11)):
    pshape = tuple(n + 2 for n in shape)
    T = rng.uniform(-40.0, 110.0, pshape)  # through freezing and boiling
    k = rng.uniform(0.15, 2.0, pshape)
    inv_rhoc = 1.0 / rng.uniform(1.5e6, 4.2e6, shape)
    W = rng.uniform(0.0, 2e4, shape)
    Q = rng.uniform(0.0, 2e6, shape)
    labels = rng.integers(0, len(PHASE), shape).astype(np.uint8)
    return T, k, inv_rhoc, W, Q, labels


@pytest.mark.parametrize("phase_change", [False, True])
def test_kernel_equals_numpy_reference(rng, phase_change):
    """Same update to round-off on a random heterogeneous grid (both step kinds)."""
    T, k, inv_rhoc, W, Q, labels = random_problem(rng)
    out_nb = np.zeros_like(T)
    out_np = np.zeros_like(T)
    args = (T, k, inv_rhoc, W, Q, 37.0, 0.05, 1e-3)
    r_nb = pennes_step(*args, out_nb, labels, PHASE, phase_change)
    r_np = pennes_step_numpy(*args, out_np, labels, PHASE, phase_change)
    c = (slice(1, -1),) * 3
    # temperatures are O(100) and the update sums six O(1e2) terms: 1e-12 relative is
    # a few hundred ulps, round-off from reordering (fastmath reassociation), not physics.
    np.testing.assert_allclose(out_nb[c], out_np[c], rtol=0, atol=1e-10)
    assert r_nb[0] == pytest.approx(r_np[0], abs=1e-10)
    assert r_nb[1] == pytest.approx(r_np[1], abs=1e-10)
    assert r_nb[2] is True or r_nb[2] == 1


def test_kernel_flags_non_finite(rng):
    T, k, inv_rhoc, W, Q, labels = random_problem(rng)
    Q[3, 4, 5] = np.nan
    out = np.zeros_like(T)
    _, _, finite = pennes_step(T, k, inv_rhoc, W, Q, 37.0, 0.05, 1e-3, out, labels, PHASE, False)
    assert not finite


def test_laplacian_of_quadratic_is_exact():
    """div(k grad T) of x^2 + y^2 + z^2 with constant k is exactly 6 k (devito-style)."""
    n, h, kval = 9, 1e-3, 0.7
    x = h * np.arange(-1, n + 1)
    T = x[:, None, None] ** 2 + x[None, :, None] ** 2 + x[None, None, :] ** 2
    k = np.full_like(T, kval)
    shape = (n, n, n)
    inv_rhoc = np.ones(shape)
    zeros = np.zeros(shape)
    out = np.zeros_like(T)
    dt = 1e-3
    labels = np.zeros(shape, np.uint8)
    pennes_step(T, k, inv_rhoc, zeros, zeros, 0.0, dt, h, out, labels, PHASE, False)
    c = (slice(1, -1),) * 3
    rate = (out[c] - T[c]) / dt
    # only round-off: T ~ 1e-4, differences of 1e-6 divided by h^2 = 1e-6
    np.testing.assert_allclose(rate, 6 * kval, rtol=1e-8)


def test_harmonic_mean_gives_exact_two_layer_flux():
    """A piecewise-linear profile with continuous flux across a face is a fixed point."""
    n, h = 10, 1e-3
    k1, k2 = 0.49, 0.32
    kx = np.where(np.arange(n + 2) <= n // 2, k1, k2)  # interface between voxel 5 and 6
    flux = 100.0  # W/m^2, the same through both layers
    # temperature at voxel centres: slope -flux/k in each layer, continuous at the face
    T1 = np.empty(n + 2)
    T1[0] = 50.0
    for i in range(1, n + 2):
        kf = 2 * kx[i - 1] * kx[i] / (kx[i - 1] + kx[i])
        T1[i] = T1[i - 1] - flux * h / kf
    T = np.broadcast_to(T1[:, None, None], (n + 2, 3, 3)).copy()
    k = np.broadcast_to(kx[:, None, None], (n + 2, 3, 3)).copy()
    shape = (n, 1, 1)
    out = np.zeros_like(T)
    labels = np.zeros(shape, np.uint8)
    one = np.ones(shape)
    zero = np.zeros(shape)
    pennes_step(T, k, one, zero, zero, 0.0, 1.0, h, out, labels, PHASE, False)
    residual = out[1:-1, 1, 1] - T[1:-1, 1, 1]  # W/m^3 (unit heat capacity, dt = 1 s)
    # each face flux is ~flux/h = 1e5 W/m^3; the residual is their cancellation, so
    # round-off is ~1e-14 of that scale
    np.testing.assert_allclose(residual, 0.0, atol=1e-12 * flux / h)


def test_enthalpy_roundtrip_and_numpy_agree(rng):
    t = rng.uniform(-60.0, 130.0, 2000)
    t = np.concatenate([t, [-8.0, -1.0, -4.5, 95.0, 100.0, 97.5]])
    for row in PHASE[:, :8]:
        hv = np.array([enthalpy(v, *row) for v in t])
        np.testing.assert_allclose(hv, enthalpy_numpy(t, *row), rtol=1e-12, atol=1e-3)
        back = np.array([temperature_from_enthalpy(v, *row) for v in hv])
        np.testing.assert_allclose(back, t, atol=1e-9)
        np.testing.assert_allclose(temperature_from_enthalpy_numpy(hv, *row), t, atol=1e-9)
    # latent heat: from solidus to liquidus the enthalpy rises by mean rho c * dT + L
    rc, rcf, lat, tsol, tliq, latv, tv0, tv1 = PHASE[0, :8]
    assert enthalpy(tliq, *PHASE[0, :8]) - enthalpy(tsol, *PHASE[0, :8]) == pytest.approx(
        0.5 * (rc + rcf) * (tliq - tsol) + lat
    )
    # and boiling: rho c dT plus the latent heat of vaporisation
    assert enthalpy(tv1, *PHASE[0, :8]) - enthalpy(tv0, *PHASE[0, :8]) == pytest.approx(
        rc * (tv1 - tv0) + latv
    )


@pytest.mark.parametrize(
    ("face", "expected"),
    [
        (FaceCondition("temperature", 20.0), "dirichlet"),
        (FaceCondition("body", 20.0), "ghost"),
        (FaceCondition("adiabatic"), "zero"),
        (FaceCondition("convective", 15.0, 80.0), "robin"),
    ],
)
def test_ghost_rules_give_the_face_flux(face, expected):
    """The flux through the x_min face follows the chosen condition."""
    h = 1e-3
    T = np.full((5, 4, 4), 40.0)
    k = np.full((5, 4, 4), 0.5)
    b = Boundary.adiabatic().with_face("x_min", face)
    fill_ghosts(T, k, *b.as_arrays(), h)
    tg, t1, k1 = T[0, 1, 1], T[1, 1, 1], k[1, 1, 1]
    flux_in = k1 * (tg - t1) / h  # W/m^2 into the domain
    t_face = 0.5 * (tg + t1)
    if expected == "dirichlet":
        assert t_face == pytest.approx(20.0)
    elif expected == "ghost":  # held half a voxel beyond the face: weight 1, not 2
        assert tg == 20.0
        assert flux_in == pytest.approx(0.5 * (20.0 - t1) / h, rel=1e-12)
    elif expected == "zero":
        assert flux_in == 0.0
    else:
        assert flux_in == pytest.approx(80.0 * (15.0 - t_face), rel=1e-12)


def test_boiling_plateau_follows_the_enthalpy_exactly():
    """A uniform, insulated block heated at a constant power density has no gradients, so
    its enthalpy rises exactly as Q t and T(t) is the inverse enthalpy of H0 + Q t. It
    crosses 95-100 °C in (rho c * 5 K + L_v) / Q, here 17.2 s (a plain heat equation
    would take 0.18 s), also in a run without freezing (the boiling rows switch to the
    enthalpy update by themselves)."""
    shape, h, dt, q = (4, 3, 5), 1e-3, 0.1, 1e8
    row = PHASE[0, :8]
    labels = np.zeros(shape, np.uint8)
    k = np.full(tuple(n + 2 for n in shape), 0.5)
    inv_rhoc = np.full(shape, 1.0 / row[0])
    zero = np.zeros(shape)
    Q = np.full(shape, q)
    b = Boundary.adiabatic()
    T = np.full(k.shape, 90.0)
    h0 = enthalpy(90.0, *row)
    times, temps = [], []
    for n in range(1, 301):
        fill_ghosts(T, k, *b.as_arrays(), h)
        out = np.zeros_like(T)
        pennes_step(T, k, inv_rhoc, zero, Q, 37.0, dt, h, out, labels, PHASE, False)
        T = out
        times.append(n * dt)
        temps.append(T[2, 2, 2])
        exact = temperature_from_enthalpy(h0 + q * n * dt, *row)
        assert np.all(np.abs(T[1:-1, 1:-1, 1:-1] - exact) <= 1e-9), (n, T[2, 2, 2], exact)
    temps = np.asarray(temps)
    t_in = np.asarray(times)[(temps > 95.0) & (temps < 100.0)]
    span = (row[0] * 5.0 + row[5]) / q
    assert span == pytest.approx(17.2, rel=0.01)
    assert t_in.max() - t_in.min() == pytest.approx(span, abs=2 * dt)


def _self_weights(T_shape, k, inv_rhoc, W, labels, b, h, dt):
    """d T'_i / d T_i for every voxel, from 8 steps on bumps two voxels apart."""
    c = (slice(1, -1),) * 3
    weights = np.zeros(inv_rhoc.shape)
    z = np.zeros_like(inv_rhoc)
    for ox in (0, 1):
        for oy in (0, 1):
            for oz in (0, 1):
                bump = np.zeros(T_shape)
                bump[1 + ox : -1 : 2, 1 + oy : -1 : 2, 1 + oz : -1 : 2] = 1.0
                fill_ghosts(bump, k, *b.as_arrays(), h)
                out = np.zeros(T_shape)
                pennes_step(bump, k, inv_rhoc, W, z, 0.0, dt, h, out, labels, PHASE, False)
                sel = bump[c] == 1.0
                weights[sel] = out[c][sel]
    return weights


def test_stable_dt_is_the_max_principle_limit(rng):
    """At dt = stable_dt every voxel keeps a non-negative weight on itself (the discrete
    maximum principle); 1 % above it, the worst voxel's weight turns negative."""
    T, k, inv_rhoc, W, _Q, labels = random_problem(rng, (8, 7, 6))
    fill_ghosts_copy(k)
    # faces held at 0 degC (the ghost itself, weight k/h^2) and at the face (weight
    # 2 k/h^2), and a convective face: every ghost depends on T_1 only
    b = (
        Boundary.body(0.0)
        .with_face("y_max", FaceCondition("convective", 0.0, 500.0))
        .with_face("x_min", FaceCondition("temperature", 0.0))
    )
    h = 1e-3
    dt = stable_dt(k, inv_rhoc, W, h, b)
    w = _self_weights(T.shape, k, inv_rhoc, W, labels, b, h, dt)
    # the worst voxel sits at zero up to round-off of 1 - dt*d (d*dt ~ 1)
    assert w.min() >= -1e-12
    assert w.min() <= 1e-9
    w_over = _self_weights(T.shape, k, inv_rhoc, W, labels, b, h, 1.01 * dt)
    assert w_over.min() < -1e-3


# -- the step with damage in one pass ---------------------------------------------------
@pytest.mark.parametrize("phase_change", [False, True])
def test_fused_step_equals_step_then_damage_pass(rng, phase_change):
    """``pennes_damage_step`` gives what ``pennes_step`` followed by
    ``accumulate_damage`` on the new field gives: temperatures, extremes, both doses and
    the perfusion shut-down, on a random heterogeneous grid with many voxels above the
    39 °C dose floor and above the 60 °C shut-down, four labels (one without Arrhenius
    damage) and, with phase change, frozen and mushy voxels."""
    from ablasim.solvers import accumulate_damage, pennes_damage_step, row_bounds

    shape = (19, 14, 23)
    T, k, inv_rhoc, W, Q, _ = random_problem(rng, shape)
    labels = rng.integers(0, 3, shape).astype(np.uint8)
    labels[rng.random(shape) < 0.2] = 3  # the fourth Arrhenius label
    phase = np.vstack([PHASE, PHASE[0]])
    ln_a = np.array([np.log(7.39e39), np.log(3.1e98), 20.0, -np.inf])
    ea_r = np.array([2.577e5, 6.28e5, 6.0e4, 3.0e4]) / 8.314462618
    c = (slice(1, -1),) * 3
    if not phase_change:
        T[c] = rng.uniform(30.0, 95.0, shape)  # a heated field
    t_max = T[c] + rng.uniform(-3.0, 3.0, shape)  # new extremes in about half the voxels
    t_min = T[c] - rng.uniform(-3.0, 3.0, shape)
    cem = rng.uniform(0.0, 300.0, shape)
    om = rng.uniform(0.0, 5.0, shape)
    W[om >= 4.6] = 0.0
    W[:, :3, :] = 0.0  # whole rows already without flow
    T[1:-1, 1:4, 1:-1] = 37.0  # and rows below the dose floor
    sep = [a.copy() for a in (t_max, t_min, cem, om, W)]
    fused = [a.copy() for a in sep]
    out_sep = np.zeros_like(T)
    out_fused = np.zeros_like(T)
    args = (T, k, inv_rhoc)
    rest = (Q, 37.0, 0.05, 1e-3)
    r_sep = pennes_step(*args, sep[4], *rest, out_sep, labels, phase, phase_change)
    accumulate_damage(out_sep, 0.05, labels, ln_a, ea_r, *sep, 4.6, 60.0, -np.inf, 39.0)
    # the fused step takes its heating as 2 x (Q/8) + 3 x (Q/4): a map and a power
    r_fused = pennes_damage_step(
        *args, fused[4], 0.125 * Q, *rest[1:], out_fused, labels, phase, phase_change,
        ln_a, ea_r, *fused[:4], 4.6, 60.0, -np.inf, 39.0, 2.0, 0.25 * Q, 3.0,
        *row_bounds(fused[0], fused[1]),
    )  # fmt: skip

    new = out_sep[c]
    assert (new > 39.0).mean() > 0.3
    assert (new >= 60.0).any()
    assert ((new < t_max) & (new > t_min)).any()
    assert ((new > t_max) | (new < t_min)).mean() > 0.3
    if phase_change:
        assert (new < -1.0).any()
    # the same arithmetic, inlined in two kernels: equal up to round-off (the row update
    # may contract into FMAs differently); O(100) temperatures to 1e-12 relative
    np.testing.assert_allclose(out_fused[c], new, rtol=1e-12, atol=0)
    assert r_fused[0] == pytest.approx(r_sep[0], rel=1e-12)
    assert r_fused[1] == pytest.approx(r_sep[1], rel=1e-12)
    assert r_fused[2] == r_sep[2] == True  # noqa: E712 (a numba bool)
    for name, a, b in zip(("t_max", "t_min", "cem43", "omega", "W"), fused, sep, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, err_msg=name)
    np.testing.assert_array_equal(fused[4] == 0.0, sep[4] == 0.0)
    assert (sep[4] == 0.0).mean() > (W == 0.0).mean()  # the shut-down did happen


def test_row_bounds_stay_valid_over_steps_with_held_voxels(rng):
    """The fused step skips reading t_max (t_min) in rows whose new maximum (minimum)
    cannot beat the row's bound, and keeps the bounds up to date; held voxels put back by
    redo_damage widen them. Over twelve steps of a field with heating, cooling and
    untouched rows, and held voxels both hot and cold, t_max and t_min equal the running
    extremes of every step's temperatures, and the bounds stay bounds, also after the
    hold ends."""
    from ablasim.solvers import pennes_damage_step, redo_damage, row_bounds, save_voxels

    shape = (9, 11, 13)
    T, k, inv_rhoc, W, _, labels = random_problem(rng, shape)
    c = (slice(1, -1),) * 3
    T[c] = 37.0
    T[1:4, 1:-1, 1:-1] = rng.uniform(37.0, 80.0, (3, *shape[1:]))  # a heated slab
    labels[...] = 0
    Q = np.zeros(shape)
    Q[:3] = rng.uniform(0.0, 3e6, (3, *shape[1:]))  # heating slabs
    Q[6:8] = -rng.uniform(0.0, 3e6, (2, *shape[1:]))  # cooling slabs
    ln_a = np.array([np.log(7.39e39)] * len(PHASE))
    ea_r = np.array([2.577e5] * len(PHASE)) / 8.314462618
    t_max, t_min = T[c].copy(), T[c].copy()
    cem, om = np.zeros(shape), np.zeros(shape)
    bounds = row_bounds(t_max, t_min)
    # held hot, cold, and at 37 °C inside the heated slab (where the step alone would
    # raise its t_max, which redo_damage then puts back below the row's bound)
    vi, vj, vm = np.array([1, 7, 2]), np.array([2, 5, 6]), np.array([3, 8, 6])
    held_T = np.array([90.0, 5.0, 37.0])
    saved = np.empty((5, 3))
    run_max, run_min = T[c].copy(), T[c].copy()
    out = T.copy()
    for step in range(12):
        if step == 6:  # the probe is withdrawn: the voxels are free again
            vi, vj, vm, held_T = (a[:0] for a in (vi, vj, vm, held_T))
        acc = (t_max, t_min, cem, om)
        save_voxels(vi, vj, vm, *acc, W, saved)
        pennes_damage_step(
            T, k, inv_rhoc, W, Q, 37.0, 0.02, 1e-3, out, labels, PHASE, False,
            ln_a, ea_r, *acc, 4.6, 60.0, -np.inf, 39.0, 1.0, Q, 0.0, *bounds,
        )  # fmt: skip
        T, out = out, T
        T[vi + 1, vj + 1, vm + 1] = held_T
        redo_damage(
            T,
            vi,
            vj,
            vm,
            saved,
            0.02,
            labels,
            ln_a,
            ea_r,
            *acc,
            W,
            4.6,
            60.0,
            -np.inf,
            39.0,
            *bounds,
        )
        np.maximum(run_max, T[c], out=run_max)
        np.minimum(run_min, T[c], out=run_min)
        np.testing.assert_array_equal(t_max, run_max)
        np.testing.assert_array_equal(t_min, run_min)
        assert np.all(bounds[0] <= t_max.min(axis=2))
        assert np.all(bounds[1] >= t_min.max(axis=2))
    # rows that heated and rows that cooled (below their start) both occurred
    assert (t_max.max(axis=2) > 50.0).any()
    assert (t_min.min(axis=2) < 36.0).any()
