r"""The time step with damage in one pass, and its damage rows (numba kernels).

A simulation steps with :func:`pennes_damage_step`: the enthalpy Pennes step of
:mod:`.pennes` with each z-row's damage (extremes, CEM43, Arrhenius Omega, perfusion
shut-down; the dose models are described in :mod:`ablasim.damage`) accumulated right
after the row's new temperatures are computed, while they are in L1 cache, instead of a
second pass over the grid (:func:`accumulate_damage`, kept as the reference) that streams
T, t_max and t_min from memory again. Voxels whose temperature is set after the step
(held probe walls) are redone at the held value (:func:`save_voxels`,
:func:`redo_damage`). Every kernel inlines the same per-row and per-voxel code
(:func:`damage_row`, :func:`dose_voxel`). :class:`~ablasim.solvers.stepper.Stepper` makes
the calls.

The accumulation uses the rectangle rule on the new temperature, first order in dt (dt
is well under a second at 0.5 mm, far below the time over which temperatures change).
Doses accrue only above a floor (``floor``, :data:`ablasim.damage.DAMAGE_FLOOR_C`).

How the kernel evaluates exp (:func:`fast_exp`): there is no vector math library (SVML)
behind numba here, so ``math.exp`` is a scalar libm call, and with two of them per voxel
above the floor the damage pass used to cost more than the Pennes step. The kernel
instead splits the exponent as y = n/64 + r with n = rint(64 y), so |r| <= 1/128 and r
is exact; exp(n/64) comes from a table (:data:`_EXP_TABLE`, 16385 entries, 128 KiB)
built at import with ``math.exp``, and exp(r) from its degree-5 Taylor polynomial
(truncation below 3.2e-16 relative), evaluated in Estrin's form for a short dependency
chain. Over the table range |y| < 128 it agrees with ``math.exp`` to better than 1e-15
relative (tests/test_damage.py; the requirement is 1e-13). Outside that range, and for
y = -inf (a label with A = 0) or NaN, it calls ``math.exp`` itself, so it is exact
there. The range holds every exponent that occurs in practice: ln 2 (T - 43) for CEM43
is -5.5 at the floor and reaches 128 only at 228 °C; the Arrhenius exponents of the
tissue library run from -15 at the floor to 67 at 200 °C (bone, skin) and reach 128
only near 500 °C. Speed: ``benchmarks/bench_pennes.py``.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit, jit_inline, jit_serial, prange
from .pennes import boiling_start, row_extremes, row_update

__all__ = [
    "accumulate_damage",
    "damage_row",
    "dose_voxel",
    "fast_exp",
    "pennes_damage_step",
    "redo_damage",
    "row_bounds",
    "save_voxels",
]

_LN2 = math.log(2.0)
_KELVIN = 273.15

#: Steps per unit of the exp table (a power of two, so n / 64 and y - n / 64 are exact).
_EXP_STEPS = 64
#: :func:`fast_exp` uses the table for |y| < this, and ``math.exp`` elsewhere.
_EXP_TABLE_MAX = 128.0
_EXP_N_MAX = int(_EXP_TABLE_MAX) * _EXP_STEPS
#: exp(n / 64) for n = -8192 .. 8192 (both ends included: rint(64 y) reaches them).
_EXP_TABLE = np.array([math.exp(n / _EXP_STEPS) for n in range(-_EXP_N_MAX, _EXP_N_MAX + 1)])


@jit_inline
def fast_exp(y):
    """exp(y) to a few ulp (under 1e-15 relative), for the damage kernel (module notes).

    exp(n/64) from :data:`_EXP_TABLE` times a degree-5 polynomial for exp(r), with
    y = n/64 + r, |r| <= 1/128; outside |y| < 128 (and for inf or NaN) ``math.exp``.
    """
    if abs(y) < _EXP_TABLE_MAX:
        nf = np.rint(y * _EXP_STEPS)
        r = y - nf * (1.0 / _EXP_STEPS)  # exact: a multiple of 2^-6 taken from y
        r2 = r * r
        p = (1.0 + r) + r2 * ((0.5 + r * (1.0 / 6.0)) + r2 * (1.0 / 24.0 + r * (1.0 / 120.0)))
        return _EXP_TABLE[int(nf) + _EXP_N_MAX] * p
    return math.exp(y)


@jit_inline
def dose_voxel(t, at, dt, dmin, labels, ln_a, ea_over_r, cem43, omega, W, shut_omega,
               shut_t, shut_cold, floor):  # fmt: skip
    """One voxel's doses and perfusion shut-down at the new temperature ``t`` [°C]: the
    arithmetic every damage kernel inlines (:func:`damage_row`, :func:`redo_damage`).

    ``at`` indexes the voxel in the interior-shaped arrays (a tuple (i, j, m));
    ``dmin = dt / 60``. See :func:`accumulate_damage` for the rest.
    """
    if t > floor:
        # both exponents first: the two exps are independent work for the CPU
        x = t - 43.0
        if x < 0.0:
            x = 2.0 * x
        lab = labels[at]
        y_arr = ln_a[lab] - ea_over_r[lab] / (t + _KELVIN)
        cem43[at] += dmin * fast_exp(_LN2 * x)
        om = omega[at] + dt * fast_exp(y_arr)
        omega[at] = om
        if om >= shut_omega:
            W[at] = 0.0
    # plain temperature tests, valid below the dose floor too: too hot, or frozen to the
    # lethal temperature (the vessels do not reopen after thawing)
    if t >= shut_t or t <= shut_cold:
        W[at] = 0.0


@jit_inline
def _track_extreme(T, i, j, ext, bound, s):
    """Update the running extreme ``ext`` of z-row (i, j) with the new temperatures:
    the maximum for ``s = 1``, the minimum for ``s = -1`` (everything is compared times
    ``s``, an exact sign flip). Sets ``bound[i, j]`` to the row's least extreme (its
    lowest t_max, its highest t_min) and writes the row back only if it changed."""
    nz = ext.shape[2]
    new = 0
    r = np.inf
    for m in range(nz):
        t = s * T[i + 1, j + 1, m + 1]
        a = s * ext[i, j, m]
        new += t > a
        a = t if t > a else a
        r = a if a < r else r
    bound[i, j] = s * r
    if new:
        for m in range(nz):
            t = s * T[i + 1, j + 1, m + 1]
            a = s * ext[i, j, m]
            ext[i, j, m] = s * (t if t > a else a)


@jit_inline
def damage_row(T, i, j, dt, labels, ln_a, ea_over_r, t_max, t_min, cem43, omega, W,
               shut_omega, shut_t, shut_cold, floor, lo_max, hi_min):  # fmt: skip
    """One step's damage along the z-row (i, j) (interior indices; ``T`` padded): the
    body of :func:`accumulate_damage` and :func:`pennes_damage_step`.

    ``lo_max[i, j]`` is a lower bound of the row's t_max and ``hi_min[i, j]`` an upper
    bound of its t_min (:func:`row_bounds`; made exact whenever the row's t_max or t_min
    is read here, widened by :func:`redo_damage`). Most rows of
    a treatment are heating (no new minimum possible), cooling, or untouched at body
    temperature, and many sit below the dose floor, so the row's new temperatures are
    first scanned alone, in L1 (their extremes, any voxel hot enough for a dose?); t_max
    is read only when the row's maximum exceeds ``lo_max`` and written back only when it
    holds a new maximum, likewise t_min, and the scalar doses (:func:`dose_voxel`, two
    exps each above the floor) run only in rows that reach the floor or the shut-down
    temperature. (Conditional stores per voxel would not vectorise; this way a heating
    row never reads t_min, and a row at body temperature reads neither.)
    """
    nz = t_max.shape[2]
    hi = -np.inf
    lo = np.inf
    hot = 0
    for m in range(nz):
        t = T[i + 1, j + 1, m + 1]
        hi = t if t > hi else hi
        lo = t if t < lo else lo
        hot += (t > floor) + (t >= shut_t) + (t <= shut_cold)
    if hi > lo_max[i, j]:
        _track_extreme(T, i, j, t_max, lo_max, 1.0)
    if lo < hi_min[i, j]:
        _track_extreme(T, i, j, t_min, hi_min, -1.0)
    if hot:
        dmin = dt / 60.0
        for m in range(nz):
            dose_voxel(
                T[i + 1, j + 1, m + 1], (i, j, m), dt, dmin, labels, ln_a, ea_over_r,
                cem43, omega, W, shut_omega, shut_t, shut_cold, floor,
            )  # fmt: skip


@jit
def _row_bounds(t_max, t_min, lo_max, hi_min):  # pragma: no cover - compiled
    nx, ny, nz = t_max.shape
    for i in prange(nx):
        for j in range(ny):
            r = np.inf
            q = -np.inf
            for m in range(nz):
                a = t_max[i, j, m]
                b = t_min[i, j, m]
                r = a if a < r else r
                q = b if b > q else q
            lo_max[i, j] = r
            hi_min[i, j] = q


def row_bounds(t_max: np.ndarray, t_min: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per z-row bounds of the extremes for :func:`damage_row`: (lowest t_max of each
    row, highest t_min of each row), shape (nx, ny). Compute them once from the
    accumulators; the kernels keep them valid as they update."""
    lo_max = np.empty(t_max.shape[:2])
    hi_min = np.empty(t_min.shape[:2])
    _row_bounds(t_max, t_min, lo_max, hi_min)
    return lo_max, hi_min


@jit
def accumulate_damage(
    T, dt, labels, ln_a, ea_over_r, t_max, t_min, cem43, omega, W, shut_omega, shut_t,
    shut_cold, floor,
):  # fmt: skip
    """Add one step's damage at the new temperature (padded ``T``) and stop perfusion.

    ``ln_a`` and ``ea_over_r`` are per-label tables (ln A, E_a / R [K]); a label with
    ``ln_a = -inf`` takes no Arrhenius damage. Doses accrue where T > ``floor`` [°C].
    Where Omega >= ``shut_omega``, T >= ``shut_t`` or T <= ``shut_cold``, the perfusion
    coefficient ``W`` is set to zero (and stays zero).

    A simulation does this inside the step (:func:`pennes_damage_step`); this separate
    pass is the reference for it and for the benchmark.
    """
    nx, ny = t_max.shape[0], t_max.shape[1]
    # Stores are conditional (per row, see damage_row): most voxels set no new extreme
    # and sit below the dose floor, so their cache lines of t_max, t_min, cem43, omega
    # are read (or not even that) but never written back. The doses are scalar (no
    # gathers for the table look-ups), with the exps inlined :func:`fast_exp`. The row
    # bounds are computed afresh (a reference pass keeps no state between calls).
    lo_max = np.empty((nx, ny))
    hi_min = np.empty((nx, ny))
    _row_bounds(t_max, t_min, lo_max, hi_min)
    for i in prange(nx):
        for j in range(ny):
            damage_row(
                T, i, j, dt, labels, ln_a, ea_over_r, t_max, t_min, cem43, omega, W,
                shut_omega, shut_t, shut_cold, floor, lo_max, hi_min,
            )  # fmt: skip


@jit
def pennes_damage_step(T, k, inv_rhoc, W, Q, t_art, dt, h, out, labels, phase, phase_change,
                       ln_a, ea_over_r, t_max, t_min, cem43, omega, shut_omega, shut_t, shut_cold,
                       floor, q_scale, P, p_scale, lo_max, hi_min):  # fmt: skip
    """:func:`~ablasim.solvers.pennes_step` and :func:`accumulate_damage` in one pass.

    The first twelve arguments and the return value are those of
    :func:`~ablasim.solvers.pennes_step`, the next nine those of
    :func:`accumulate_damage` (``dt`` and ``labels`` serve both). The power density is
    ``q_scale * Q + p_scale * P``: ``P`` (interior shape) is one source's heating per
    watt and ``p_scale`` its power [W], so a source whose heating is its power times a
    map that changes only now and then (an RF probe between potential solves) needs no
    per-step copy of a grid-sized ``Q``. Without such a source pass ``q_scale = 1, P =
    Q, p_scale = 0``; with it and no other heating, ``Q = P, q_scale = 0`` (one array
    read instead of two). ``lo_max, hi_min`` are the accumulators' row bounds
    (:func:`row_bounds`), kept valid here and by :func:`redo_damage`.

    Each z-row is updated, its extremes taken, and then its damage accumulated at the
    new temperature while the row is in L1 cache, so T is not streamed from memory a
    second time. Results equal the two calls in sequence (the same inlined arithmetic,
    :func:`~ablasim.solvers.pennes.row_update` and :func:`damage_row`); on the example
    scenarios they are bit for bit the same.

    The doses (two scalar exponentials per voxel above the floor) cost more than the
    update itself; the extremes are read and written only in rows that can change them
    (:func:`damage_row`). Speed: ``benchmarks/bench_pennes.py``.

    Writing ``W`` inside the step is safe: a voxel's perfusion enters only its own
    update, and a row's damage follows that row's update. The damage sees the step's
    own result, so voxels whose temperature is overwritten after the step (held probe
    walls) must be redone afterwards: :func:`save_voxels` before the step,
    :func:`redo_damage` after the hold.
    """
    nx, ny = inv_rhoc.shape[0], inv_rhoc.shape[1]
    inv_h2 = 1.0 / (h * h)
    tv = boiling_start(phase)
    rmax = np.empty(nx)
    rmin = np.empty(nx)
    rbad = np.empty(nx)
    for i in prange(1, nx + 1):
        a = -np.inf
        b = np.inf
        s = 0.0
        for j in range(1, ny + 1):
            row_update(
                T, k, inv_rhoc, W, Q, q_scale, P, p_scale, t_art, dt, inv_h2, out, labels, phase,
                phase_change, tv, i, j,
            )  # fmt: skip
            a, b, s = row_extremes(out, i, j, a, b, s)
            damage_row(
                out, i - 1, j - 1, dt, labels, ln_a, ea_over_r, t_max, t_min, cem43, omega, W,
                shut_omega, shut_t, shut_cold, floor, lo_max, hi_min,
            )  # fmt: skip
        rmax[i - 1] = a
        rmin[i - 1] = b
        rbad[i - 1] = s
    return rmax.max(), rmin.min(), rbad.sum() == 0.0


@jit_serial
def save_voxels(vi, vj, vm, t_max, t_min, cem43, omega, W, saved):
    """Copy the accumulators and ``W`` at voxels (vi, vj, vm) (interior indices) into
    ``saved`` (shape (5, n)), before a :func:`pennes_damage_step`."""
    for n in range(vi.size):
        at = (vi[n], vj[n], vm[n])
        saved[0, n] = t_max[at]
        saved[1, n] = t_min[at]
        saved[2, n] = cem43[at]
        saved[3, n] = omega[at]
        saved[4, n] = W[at]


@jit_serial
def redo_damage(T, vi, vj, vm, saved, dt, labels, ln_a, ea_over_r, t_max, t_min, cem43,
                omega, W, shut_omega, shut_t, shut_cold, floor, lo_max, hi_min):  # fmt: skip
    """Put back what :func:`save_voxels` saved at voxels (vi, vj, vm) (distinct, interior
    indices) and accumulate their damage again at their temperature in the padded ``T``
    now: for voxels overwritten after a :func:`pennes_damage_step` (held temperatures),
    this gives exactly what :func:`accumulate_damage` after the hold would have. The row
    bounds ``lo_max, hi_min`` are widened to the voxels' new extremes (a put-back value
    can lie beyond what the step left)."""
    dmin = dt / 60.0
    for n in range(vi.size):
        at = (vi[n], vj[n], vm[n])
        t_max[at] = saved[0, n]
        t_min[at] = saved[1, n]
        cem43[at] = saved[2, n]
        omega[at] = saved[3, n]
        W[at] = saved[4, n]
        t = T[vi[n] + 1, vj[n] + 1, vm[n] + 1]
        if t > t_max[at]:
            t_max[at] = t
        if t < t_min[at]:
            t_min[at] = t
        row = (vi[n], vj[n])
        lo_max[row] = min(lo_max[row], t_max[at])
        hi_min[row] = max(hi_min[row], t_min[at])
        dose_voxel(
            t, at, dt, dmin, labels, ln_a, ea_over_r, cem43, omega, W, shut_omega, shut_t,
            shut_cold, floor,
        )  # fmt: skip
