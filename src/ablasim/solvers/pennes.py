r"""The explicit enthalpy step of the Pennes bioheat equation, as a fused numba kernel.

.. math::

    \partial_t H = \nabla\cdot(k\nabla T) + W\,(T_a - T) + Q, \qquad T = T(H),

with :math:`W = \omega_b \rho_b c_b` the perfusion coefficient [W/m^3/K] and :math:`Q`
the metabolic plus source power density [W/m^3]. Discretisation: second-order central
differences on a regular grid of spacing :math:`h`, face conductivities the harmonic mean
of the two neighbouring voxels (heat-flux continuity across tissue interfaces), forward
Euler in time. The time step must respect :func:`stable_dt`.

Without phase change, :math:`H = \rho c\,T` and the step is
``T' = T + dt/(rho c) * rhs``. With phase change (cryo), each voxel's enthalpy follows
the piecewise-linear :func:`enthalpy` of its tissue (latent heat spread uniformly over
the mushy interval), and the step is ``T' = T(H(T) + dt * rhs)``: the state is the
temperature, and H is formed and inverted on the fly, so no second state array is moved.

Boiling: the enthalpy also holds the latent heat of vaporisation of the tissue's water
(ρ × water fraction × 2257 kJ/kg, about 1.7 GJ/m³), spread over 95-100 °C as in the
MITA-model RF studies (docs/physics.md §1.2). Tissue next to an RF electrode or a microwave
antenna then sits near 100 °C while its water boils off, instead of heating straight
through, which takes up much energy and slows the electrical roll-off. Rows that reach
95 °C take the enthalpy update even in a run without freezing (see ``row_update``).
Not modelled: vapour transport and condensation elsewhere, charring, and the drop of
heat capacity of dried tissue (0.6 MJ/m³/K in the MITA study; keeping ``ρc`` avoids a
6x shorter explicit time step, and matters only after the water is gone).

Validity: linear conduction with properties frozen during one step (they may be updated
between steps), isotropic voxels, explicit stability limit; the scheme is conservative
(the face fluxes telescope) and obeys the discrete maximum principle at ``dt <= stable_dt``.

Arrays: ``T``, ``k`` and ``out`` carry one ghost layer on each side (shape n+2); the
boundary rule (:mod:`.boundary`) fills them. Everything else has the interior shape.
"""

from __future__ import annotations

import numpy as np

from ._jit import jit, jit_inline, prange
from .boundary import fill_ghosts_copy

__all__ = [
    "PHASE_COLUMNS",
    "VAPORISATION_C",
    "WATER_LATENT_HEAT_J_KG",
    "boiling_start",
    "enthalpy",
    "enthalpy_numpy",
    "frozen_conductivity",
    "frozen_fraction",
    "label_enthalpy",
    "label_temperature",
    "pennes_step",
    "pennes_step_numpy",
    "phase_rhs",
    "rhs_at",
    "row_extremes",
    "row_update",
    "stable_dt",
    "temperature_from_enthalpy",
    "temperature_from_enthalpy_numpy",
]

#: Columns of the per-label phase-change table.
PHASE_COLUMNS = (
    "rho_c",
    "rho_c_frozen",
    "latent_J_m3",
    "T_solidus_C",
    "T_liquidus_C",
    "latent_vap_J_m3",
    "T_vap_start_C",
    "T_vap_end_C",
    "k_unfrozen",
    "k_frozen",
    "q_met",
)

#: Latent heat of vaporisation of water at 100 °C [J/kg] (CRC Handbook, 2257 kJ/kg;
#: MITA-model uses 2260 kJ/kg, docs/physics.md §1.2).
WATER_LATENT_HEAT_J_KG = 2.257e6
#: Vaporisation interval [°C]: the latent heat is spread over 95-100 °C (MITA-model: an
#: interval ending at 100 °C whose width the study varied from 1 to 10 K).
VAPORISATION_C = (95.0, 100.0)


@jit_inline
def enthalpy(t, rc, rcf, lat, tsol, tliq, latv, tv0, tv1):
    """Volumetric enthalpy [J/m^3] at temperature ``t`` [°C], zero at the solidus.

    Frozen below ``tsol`` (heat capacity ``rcf``), liquid above ``tliq`` (``rc``), and in
    between the mean heat capacity plus the latent heat ``lat`` [J/m^3] spread uniformly;
    the tissue water's latent heat of vaporisation ``latv`` [J/m^3] is spread uniformly
    over ``tv0``-``tv1`` (above it the heat capacity stays ``rc``: see the module notes).
    """
    cm = 0.5 * (rc + rcf) + lat / (tliq - tsol)
    if t <= tsol:
        return rcf * (t - tsol)
    if t <= tliq:
        return cm * (t - tsol)
    hl = cm * (tliq - tsol)
    if t <= tv0:
        return hl + rc * (t - tliq)
    h0 = hl + rc * (tv0 - tliq)
    if t <= tv1:
        return h0 + (rc + latv / (tv1 - tv0)) * (t - tv0)
    return h0 + latv + rc * (t - tv0)


@jit_inline
def temperature_from_enthalpy(hv, rc, rcf, lat, tsol, tliq, latv, tv0, tv1):
    """Inverse of :func:`enthalpy` [°C]."""
    cm = 0.5 * (rc + rcf) + lat / (tliq - tsol)
    if hv <= 0.0:
        return tsol + hv / rcf
    hl = cm * (tliq - tsol)
    if hv <= hl:
        return tsol + hv / cm
    h0 = hl + rc * (tv0 - tliq)
    if hv <= h0:
        return tliq + (hv - hl) / rc
    cv = rc + latv / (tv1 - tv0)
    if hv <= h0 + cv * (tv1 - tv0):
        return tv0 + (hv - h0) / cv
    return tv1 + (hv - h0 - cv * (tv1 - tv0)) / rc


@jit_inline
def label_enthalpy(t, phase, lab):
    """:func:`enthalpy` at ``t`` [°C] with row ``lab`` of the phase table
    (:data:`PHASE_COLUMNS`)."""
    p = phase[lab]
    return enthalpy(t, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7])


@jit_inline
def label_temperature(hv, phase, lab):
    """:func:`temperature_from_enthalpy` of ``hv`` [J/m^3] with row ``lab`` of the phase
    table."""
    p = phase[lab]
    return temperature_from_enthalpy(hv, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7])


@jit_inline
def _hmean(a, b):
    return 2.0 * a * b / (a + b)


@jit_inline
def _divergence(T, k, i, j, m):
    """h^2 * div(k grad T) at voxel (i, j, m) of the padded arrays."""
    tc = T[i, j, m]
    kc = k[i, j, m]
    return (
        _hmean(kc, k[i - 1, j, m]) * (T[i - 1, j, m] - tc)
        + _hmean(kc, k[i + 1, j, m]) * (T[i + 1, j, m] - tc)
        + _hmean(kc, k[i, j - 1, m]) * (T[i, j - 1, m] - tc)
        + _hmean(kc, k[i, j + 1, m]) * (T[i, j + 1, m] - tc)
        + _hmean(kc, k[i, j, m - 1]) * (T[i, j, m - 1] - tc)
        + _hmean(kc, k[i, j, m + 1]) * (T[i, j, m + 1] - tc)
    )


@jit_inline
def rhs_at(T, k, W, Q, qs, P, ps, t_art, inv_h2, i, j, m):
    """div(k grad T) + W (T_a - T) + qs Q + ps P at voxel (i, j, m) [W/m^3] (padded
    indices).

    ``ps P`` is one source's heating formed on the fly: its map per watt ``P`` times its
    power ``ps`` (:func:`~ablasim.solvers.fused.pennes_damage_step`). ``pennes_step`` passes
    ``qs = 1, P = Q, ps = 0``, which reads no more memory and leaves ``Q`` exact; with no
    other heating, ``Q = P, qs = 0`` reads only the map."""
    return (
        _divergence(T, k, i, j, m) * inv_h2
        + W[i - 1, j - 1, m - 1] * (t_art - T[i, j, m])
        + (qs * Q[i - 1, j - 1, m - 1] + ps * P[i - 1, j - 1, m - 1])
    )


@jit_inline
def _row_plain(T, k, inv_rhoc, W, Q, qs, P, ps, t_art, dt, inv_h2, out, i, j):
    """One z-row of the plain heat-equation update (a loop LLVM vectorises)."""
    for m in range(1, out.shape[2] - 1):
        rhs = rhs_at(T, k, W, Q, qs, P, ps, t_art, inv_h2, i, j, m)
        out[i, j, m] = T[i, j, m] + dt * inv_rhoc[i - 1, j - 1, m - 1] * rhs


@jit_inline
def frozen_fraction(t, tsol, tliq):
    """The frozen fraction at ``t`` [°C]: 1 below the solidus, 0 above the liquidus,
    linear in between (the latent heat is spread the same way, :func:`enthalpy`)."""
    f = (tliq - t) / (tliq - tsol)
    return min(max(f, 0.0), 1.0)


@jit_inline
def phase_rhs(T, k, W, Q, qs, P, ps, t_art, inv_h2, labels, phase, i, j, m):
    """:func:`rhs_at` with blood perfusion and metabolic heat scaled by the unfrozen
    fraction (both stop in frozen tissue; Go-Smart's cryo model switches them off below
    -2 °C, docs/physics.md §1.5). ``k`` must already follow the frozen fraction
    (:func:`frozen_conductivity`)."""
    rhs = rhs_at(T, k, W, Q, qs, P, ps, t_art, inv_h2, i, j, m)
    lab = labels[i - 1, j - 1, m - 1]
    fs = frozen_fraction(T[i, j, m], phase[lab, 3], phase[lab, 4])
    return rhs - fs * (W[i - 1, j - 1, m - 1] * (t_art - T[i, j, m]) + phase[lab, 10])


@jit_inline
def _row_phase(T, k, W, Q, qs, P, ps, t_art, dt, inv_h2, out, labels, phase, i, j):
    """One z-row of the enthalpy update with latent heat."""
    for m in range(1, out.shape[2] - 1):
        tc = T[i, j, m]
        rhs = phase_rhs(T, k, W, Q, qs, P, ps, t_art, inv_h2, labels, phase, i, j, m)
        lab = labels[i - 1, j - 1, m - 1]
        hv = label_enthalpy(tc, phase, lab) + dt * rhs
        out[i, j, m] = label_temperature(hv, phase, lab)


@jit_inline
def boiling_start(phase):
    """The lowest temperature at which any tissue of the table starts to boil [°C]."""
    tv = phase[0, 6]
    for lab in range(1, phase.shape[0]):
        tv = min(tv, phase[lab, 6])
    return tv


@jit_inline
def _row_max(a, i, j):
    m = -np.inf
    for k in range(1, a.shape[2] - 1):
        m = max(m, a[i, j, k])
    return m


@jit_inline
def row_update(
    T, k, inv_rhoc, W, Q, qs, P, ps, t_art, dt, inv_h2, out, labels, phase, phase_change, tv,
    i, j,
):  # fmt: skip
    """New temperatures of z-row (i, j) into ``out`` (padded indices), either step kind.

    The plain update is redone with the enthalpy one in a row that is, or would get,
    hot enough to boil (at or above ``tv``, the lowest ``T_vap_start_C``, see
    :func:`boiling_start`): the two agree wherever no phase changes, so only the few
    rows next to an ablation probe pay."""
    enthalpy_row = phase_change
    if not phase_change:
        _row_plain(T, k, inv_rhoc, W, Q, qs, P, ps, t_art, dt, inv_h2, out, i, j)
        enthalpy_row = _row_max(out, i, j) >= tv or _row_max(T, i, j) >= tv
    if enthalpy_row:  # one inlined copy of the enthalpy update (halves its compile)
        _row_phase(T, k, W, Q, qs, P, ps, t_art, dt, inv_h2, out, labels, phase, i, j)


@jit_inline
def row_extremes(out, i, j, a, b, s):
    """Running max ``a``, min ``b`` and non-finite sum ``s`` updated with z-row (i, j)
    of ``out`` (a separate loop after the update, so both loops vectorise)."""
    for m in range(1, out.shape[2] - 1):
        v = out[i, j, m]
        a = v if v > a else a
        b = v if v < b else b
        s += 0.0 * v
    return a, b, s


@jit
def pennes_step(T, k, inv_rhoc, W, Q, t_art, dt, h, out, labels, phase, phase_change):
    """One forward-Euler step of the enthalpy Pennes equation; writes ``out``'s interior.

    Parameters
    ----------
    T, k : ndarray, shape (nx+2, ny+2, nz+2)
        Temperature [°C] and conductivity [W/m/K] with filled ghost layers.
    inv_rhoc : ndarray, shape (nx, ny, nz)
        1 / (rho c) of the unfrozen tissue [m^3 K/J] (unused when ``phase_change``).
    W : ndarray, shape (nx, ny, nz)
        Perfusion coefficient omega_b rho_b c_b [W/m^3/K].
    Q : ndarray, shape (nx, ny, nz)
        Metabolic plus source power density [W/m^3].
    t_art : float
        Arterial blood temperature [°C].
    dt, h : float
        Time step [s] and voxel spacing [m].
    out : ndarray, shape (nx+2, ny+2, nz+2)
        Receives the new temperature in its interior (must not alias ``T``).
    labels : ndarray of uint8, shape (nx, ny, nz)
        Row of ``phase`` per voxel (read only when ``phase_change``).
    phase : ndarray, shape (n_labels, 5)
        Phase-change table, columns :data:`PHASE_COLUMNS`.
    phase_change : bool
        Whether to step the enthalpy with latent heat (cryo) or the plain heat equation.

    Returns
    -------
    tmax, tmin : float
        Extremes of the new temperature [°C].
    finite : bool
        False if any new temperature is NaN or infinite (the run blew up).

    Notes
    -----
    The update of a z-row is one loop that LLVM vectorises; the extremes are then taken
    over the row while it is still in L1 cache. (A reduction inside the update loop
    stops vectorisation and halves the speed.) ``0 * t`` summed over the row is NaN as
    soon as one value is NaN or infinite, which keeps that check vectorisable too.
    :func:`~ablasim.solvers.fused.pennes_damage_step` is this step with the damage accumulation
    of each row done in the same pass (what a simulation runs); both inline the same
    row functions.
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
                T, k, inv_rhoc, W, Q, 1.0, Q, 0.0, t_art, dt, inv_h2, out, labels, phase,
                phase_change, tv, i, j,
            )  # fmt: skip
            a, b, s = row_extremes(out, i, j, a, b, s)
        rmax[i - 1] = a
        rmin[i - 1] = b
        rbad[i - 1] = s
    return rmax.max(), rmin.min(), rbad.sum() == 0.0


@jit
def frozen_conductivity(T, labels, phase, k, rows, rowmin):  # pragma: no cover - compiled
    """Set the padded conductivity ``k`` from the frozen fraction of each voxel at the
    padded temperature ``T``: ``k = (1 - f) k_unfrozen + f k_frozen`` (linear in the
    frozen fraction f, as the latent heat; docs/physics.md §1.5: Go-Smart's mushy-zone
    value 1.25 W/m/K is the mean of its frozen 2.0 and unfrozen ~0.5).

    Only z-rows that hold a voxel below its liquidus, or did at the last call
    (``rows[i, j]`` true), are rewritten; ``rows`` (bool, shape (nx, ny)) is updated.
    Pass ``rows`` all true to recompute every row. ``rowmin`` (shape (nx, ny)) holds
    each row's lowest temperature when the caller knows it (the super step's stage
    computes it), NaN where it does not: those rows are scanned. The ghost layer is left
    to the caller (a copy of the interior).
    """
    nx, ny, nz = labels.shape
    tl = phase[0, 4]
    for lab in range(1, phase.shape[0]):
        tl = max(tl, phase[lab, 4])
    for i in prange(nx):
        for j in range(ny):
            lo = rowmin[i, j]
            if lo != lo:  # unknown: scan the row
                lo = np.inf
                for m in range(nz):
                    lo = min(lo, T[i + 1, j + 1, m + 1])
            cold = lo < tl
            if not cold and not rows[i, j]:
                continue
            for m in range(nz):
                lab = labels[i, j, m]
                f = frozen_fraction(T[i + 1, j + 1, m + 1], phase[lab, 3], phase[lab, 4])
                k[i + 1, j + 1, m + 1] = phase[lab, 8] + f * (phase[lab, 9] - phase[lab, 8])
            rows[i, j] = cold


# -- NumPy reference ------------------------------------------------------------------


def enthalpy_numpy(t, rc, rcf, lat, tsol, tliq, latv, tv0, tv1):
    """NumPy version of :func:`enthalpy` (elementwise on arrays)."""
    cm = 0.5 * (rc + rcf) + lat / (tliq - tsol)
    hl = cm * (tliq - tsol)
    h0 = hl + rc * (tv0 - tliq)
    cv = rc + latv / (tv1 - tv0)
    return np.select(
        [t <= tsol, t <= tliq, t <= tv0, t <= tv1],
        [rcf * (t - tsol), cm * (t - tsol), hl + rc * (t - tliq), h0 + cv * (t - tv0)],
        h0 + latv + rc * (t - tv0),
    )


def temperature_from_enthalpy_numpy(hv, rc, rcf, lat, tsol, tliq, latv, tv0, tv1):
    """NumPy version of :func:`temperature_from_enthalpy`."""
    cm = 0.5 * (rc + rcf) + lat / (tliq - tsol)
    hl = cm * (tliq - tsol)
    h0 = hl + rc * (tv0 - tliq)
    cv = rc + latv / (tv1 - tv0)
    h1 = h0 + cv * (tv1 - tv0)
    return np.select(
        [hv <= 0.0, hv <= hl, hv <= h0, hv <= h1],
        [tsol + hv / rcf, tsol + hv / cm, tliq + (hv - hl) / rc, tv0 + (hv - h0) / cv],
        tv1 + (hv - h1) / rc,
    )


def pennes_step_numpy(T, k, inv_rhoc, W, Q, t_art, dt, h, out, labels, phase, phase_change):
    """Plain vectorised NumPy version of :func:`pennes_step` (reference and benchmark)."""
    c = (slice(1, -1),) * 3
    tc = T[c]
    kc = k[c]
    div = np.zeros_like(tc)
    for axis in range(3):
        for shift in (-1, 1):
            nb = [slice(1, -1)] * 3
            nb[axis] = slice(1 + shift, T.shape[axis] - 1 + shift)
            nb = tuple(nb)
            kn = k[nb]
            div += 2.0 * kc * kn / (kc + kn) * (T[nb] - tc)
    rhs = div / (h * h) + W * (t_art - tc) + Q
    tn = tc + dt * inv_rhoc * rhs
    # the enthalpy update everywhere with freezing, else in the z-rows that boil
    rows = np.maximum(tn, tc).max(axis=2, keepdims=True) >= phase[:, 6].min()
    if phase_change or rows.any():
        p = phase[labels]
        args = tuple(p[..., c] for c in range(len(PHASE_COLUMNS)))
        fs = np.clip((args[4] - tc) / (args[4] - args[3]), 0.0, 1.0)
        rhs_f = rhs - fs * (W * (t_art - tc) + args[10])
        th = temperature_from_enthalpy_numpy(enthalpy_numpy(tc, *args[:8]) + dt * rhs_f, *args[:8])
        tn = th if phase_change else np.where(rows, th, tn)
    out[c] = tn
    return float(tn.max()), float(tn.min()), bool(np.all(np.isfinite(tn)))


# -- stability --------------------------------------------------------------------------


def stable_dt(k, inv_rhoc, W, h, boundary, *, labels=None, phase=None) -> float:
    """Largest stable forward-Euler time step [s] on this grid.

    Each voxel's update is ``T' = (1 - dt d) T + dt * (positive combination of
    neighbours)``, with ``d = (sum of face coefficients / h^2 + W) / (rho c)``; with
    ``dt <= 1 / max(d)`` the scheme is stable and keeps the discrete maximum principle
    (Gershgorin). Outer faces add their boundary weight (2 for a held temperature, see
    :mod:`.boundary`). With a phase table, the smaller of the frozen and unfrozen heat
    capacities and the larger of the frozen and unfrozen conductivities are used, so
    the step stays stable when tissue freezes.

    Parameters
    ----------
    k : ndarray, padded (ghost layer filled)
        Conductivity [W/m/K].
    inv_rhoc, W : ndarray, interior shape
        1/(rho c) [m^3 K/J] and the perfusion coefficient [W/m^3/K].
    h : float
        Spacing [m].
    boundary : Boundary
        The outer-face conditions.
    labels, phase : optional
        Label volume and phase table (cryo runs).
    """
    c = (slice(1, -1),) * 3
    if phase is not None and labels is not None:
        # frozen tissue conducts better (k follows the frozen fraction)
        k = k.copy()
        k[c] = np.maximum(k[c], phase[labels, 9])
        fill_ghosts_copy(k)
    kc = k[c]
    coef = np.zeros_like(kc)
    face = 0
    for axis in range(3):
        n = kc.shape[axis]
        for side in (0, 1):
            nb = [slice(1, -1)] * 3
            nb[axis] = slice(0, n) if side == 0 else slice(2, n + 2)
            kn = k[tuple(nb)]
            hm = 2.0 * kc * kn / (kc + kn)
            edge = [slice(None)] * 3
            edge[axis] = 0 if side == 0 else n - 1
            edge = tuple(edge)
            hm[edge] = kc[edge] * boundary.face_weights(kc[edge], h, face)
            coef += hm
            face += 1
    inv_c = inv_rhoc
    if phase is not None and labels is not None:
        inv_c = np.maximum(inv_rhoc, 1.0 / np.minimum(phase[labels, 0], phase[labels, 1]))
    d = inv_c * (coef / (h * h) + W)
    dmax = float(d.max())
    if dmax <= 0.0:
        return np.inf
    return 1.0 / dmax
