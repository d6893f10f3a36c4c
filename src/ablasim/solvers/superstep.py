r"""Super time stepping for runs where something freezes: the RKL2 method.

Frozen tissue conducts about four times better and stores about half as much heat as
unfrozen tissue, and a probe wall at -150 °C puts the steepest gradients right there, so
the explicit step's stability limit (:func:`~.pennes.stable_dt`) falls about eightfold
where ice forms, while the temperatures change over minutes. Runge-Kutta-Legendre
super time stepping (RKL2: Meyer, Balsara & Aslam 2014, J Comput Phys 257:594) takes a
step ``tau`` of ``s`` stages, each one explicit update of the whole grid, stable for

.. math::  \tau \le \Delta t_\mathrm{explicit}\,(s^2 + s - 2)/4,

so the cost per simulated second falls as :math:`1/\sqrt{\tau}` instead of being fixed
by the stiffest voxel; it is second order in time. Each stage is a linear combination
of conservative flux updates of the enthalpy, so the scheme conserves energy exactly
(the stage coefficients sum to one); voxels held at a temperature (a probe wall) are set
after every stage, and the heat that takes out of the grid is accounted for through the
same recurrence (:class:`~.stepper.Stepper.super_step`).

Stage ``j`` (``Y_0`` the state at the start of the step, ``M`` the right-hand side of
the enthalpy equation, :func:`~.pennes.phase_rhs`):

.. math::

    H(Y_1) = H(Y_0) + \tilde\mu_1 \tau M(Y_0), \qquad
    H(Y_j) = \mu_j H(Y_{j-1}) + \nu_j H(Y_{j-2}) + (1 - \mu_j - \nu_j) H(Y_0)
             + \tilde\mu_j \tau M(Y_{j-1}) + \tilde\gamma_j \tau M(Y_0).

The stability polynomial of RKL2 maps the stiff modes into [0, 1] (no sign flips), but
damps some of them only weakly; the step is chosen by accuracy (``super_step``, a
couple of seconds: the iceball moves a fraction of a voxel in it), and the number of
stages by stability. The damage doses accrue once per step at its end (rectangle rule;
cold runs carry no thermal dose to speak of). Speed and accuracy against the explicit
step: ``benchmarks/bench_cryo.py`` and ``tests/test_stefan.py``.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import jit, jit_inline, prange
from .pennes import label_enthalpy, label_temperature, phase_rhs, rhs_at, row_extremes

__all__ = ["rkl2_coefficients", "rkl2_stage", "rkl2_stages"]


def rkl2_stages(tau: float, dt_explicit: float) -> int:
    """The fewest stages for which an RKL2 step of ``tau`` [s] is stable, given the
    explicit stability limit ``dt_explicit`` [s], made odd (3 at least): with an even
    number of stages the stability polynomial is exactly 1 at the stiff end (those modes
    are not damped at all), with an odd number at most 0.17 there."""
    ratio = tau / dt_explicit
    s = max(3, math.ceil((math.sqrt(9.0 + 16.0 * ratio) - 1.0) / 2.0))
    while (s * s + s - 2) / 4.0 < ratio:  # guard the rounding of the square root
        s += 1
    return s + 1 - s % 2


def rkl2_coefficients(s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mu, nu, mu_tilde, gamma_tilde) of the ``s``-stage RKL2 step, indexed by stage
    1..s (index 0 unused; mu_1 = 1, nu_1 = 0). Meyer, Balsara & Aslam 2014, eq. 16-17:
    b_0 = b_1 = b_2 = 1/3, b_j = (j^2 + j - 2) / (2 j (j + 1)), a_j = 1 - b_j,
    w_1 = 4 / (s^2 + s - 2)."""
    if s < 2:
        raise ValueError("an RKL2 step needs at least 2 stages")
    j = np.arange(s + 1, dtype=float)
    b = np.full(s + 1, 1.0 / 3.0)
    b[2:] = (j[2:] ** 2 + j[2:] - 2.0) / (2.0 * j[2:] * (j[2:] + 1.0))
    a = 1.0 - b
    w1 = 4.0 / (s * s + s - 2.0)
    mu = np.zeros(s + 1)
    nu = np.zeros(s + 1)
    mut = np.zeros(s + 1)
    gt = np.zeros(s + 1)
    mu[1] = 1.0
    mut[1] = b[1] * w1
    for k in range(2, s + 1):
        mu[k] = (2.0 * k - 1.0) / k * b[k] / b[k - 1]
        nu[k] = -(k - 1.0) / k * b[k] / b[k - 2]
        mut[k] = mu[k] * w1
        gt[k] = -a[k - 1] * mut[k]
    return mu, nu, mut, gt


@jit_inline
def _row_linear(Y1, Y2, Y0, L0, k, inv_rhoc, W, Q, qs, P, ps, t_art, inv_h2, mu, nu, mut, gt,
                first, out, i, j, tl, tv):  # fmt: skip
    """Stage ``z``-row (i, j) where every state lies between the highest liquidus ``tl``
    and the lowest boiling start ``tv`` of all tissues: there H = const + rho c T, so the
    combination is one in T, without branches (a loop the compiler vectorises). Returns
    False, leaving the row to :func:`_row_enthalpy`, when the states or the result leave
    that range."""
    nz = out.shape[2] - 2
    lo = np.inf
    hi = -np.inf
    for m in range(1, nz + 1):
        lo = min(lo, min(Y0[i, j, m], min(Y1[i, j, m], Y2[i, j, m])))
        hi = max(hi, max(Y0[i, j, m], max(Y1[i, j, m], Y2[i, j, m])))
    if not (lo >= tl and hi <= tv):
        return False
    c0 = 1.0 - mu - nu
    if first:
        for m in range(1, nz + 1):
            rhs = rhs_at(Y1, k, W, Q, qs, P, ps, t_art, inv_h2, i, j, m)
            L0[i - 1, j - 1, m - 1] = rhs
            out[i, j, m] = Y0[i, j, m] + mut * rhs * inv_rhoc[i - 1, j - 1, m - 1]
    else:
        for m in range(1, nz + 1):
            rhs = rhs_at(Y1, k, W, Q, qs, P, ps, t_art, inv_h2, i, j, m)
            lin = mu * Y1[i, j, m] + nu * Y2[i, j, m] + c0 * Y0[i, j, m]
            g = mut * rhs + gt * L0[i - 1, j - 1, m - 1]
            out[i, j, m] = lin + g * inv_rhoc[i - 1, j - 1, m - 1]
    lo = np.inf
    hi = -np.inf
    for m in range(1, nz + 1):
        lo = min(lo, out[i, j, m])
        hi = max(hi, out[i, j, m])
    return lo >= tl and hi <= tv


@jit_inline
def _row_enthalpy(Y1, Y2, Y0, L0, k, W, Q, qs, P, ps, t_art, inv_h2, labels, phase, mu, nu,
                  mut, gt, first, out, i, j):  # fmt: skip
    """Stage z-row (i, j) through each voxel's enthalpy (freezing, thawing, boiling)."""
    c0 = 1.0 - mu - nu
    for m in range(1, out.shape[2] - 1):
        lab = labels[i - 1, j - 1, m - 1]
        rhs = phase_rhs(Y1, k, W, Q, qs, P, ps, t_art, inv_h2, labels, phase, i, j, m)
        h0 = label_enthalpy(Y0[i, j, m], phase, lab)
        if first:
            L0[i - 1, j - 1, m - 1] = rhs
            hv = h0 + mut * rhs
        else:
            h1 = label_enthalpy(Y1[i, j, m], phase, lab)
            h2 = label_enthalpy(Y2[i, j, m], phase, lab)
            hv = mu * h1 + nu * h2 + c0 * h0 + mut * rhs + gt * L0[i - 1, j - 1, m - 1]
        out[i, j, m] = label_temperature(hv, phase, lab)


@jit
def rkl2_stage(Y1, Y2, Y0, L0, k, inv_rhoc, W, Q, qs, P, ps, t_art, h, labels, phase, mu, nu,
               mut, gt, first, out, rowmin):  # fmt: skip
    """One RKL2 stage into ``out``'s interior (module notes): ``Y1``, ``Y2``, ``Y0`` the
    previous two stages and the step's start (padded temperatures [°C], ghosts filled;
    ``Y1`` is read with the stencil), ``L0`` the right-hand side at ``Y0`` (interior
    shape; written by the first stage, ``first = True``, which reads only ``Y0``).
    ``mut`` and ``gt`` include the step ``tau``. ``k`` must follow ``Y1``'s frozen
    fraction; ``inv_rhoc`` is 1 / (rho c) of the unfrozen tissue. Returns the new
    temperature's max, min [°C] and whether it is finite; ``rowmin`` (shape (nx, ny))
    receives each z-row's lowest new temperature (for
    :func:`~.pennes.frozen_conductivity`).

    Rows whose states all lie in every tissue's plain range (unfrozen, not boiling: most
    of the grid) take a branch-free update in T (:func:`_row_linear`); the others, and
    any row whose result leaves that range, go through the enthalpy
    (:func:`_row_enthalpy`). The two agree to round-off where both apply."""
    nx, ny = labels.shape[0], labels.shape[1]
    inv_h2 = 1.0 / (h * h)
    tl = phase[0, 4]
    tv = phase[0, 6]
    for lab in range(1, phase.shape[0]):
        tl = max(tl, phase[lab, 4])
        tv = min(tv, phase[lab, 6])
    rmax = np.empty(nx)
    rmin = np.empty(nx)
    rbad = np.empty(nx)
    for i in prange(1, nx + 1):
        a = -np.inf
        b = np.inf
        s = 0.0
        for j in range(1, ny + 1):
            if not _row_linear(
                Y1, Y2, Y0, L0, k, inv_rhoc, W, Q, qs, P, ps, t_art, inv_h2, mu, nu, mut, gt,
                first, out, i, j, tl, tv,
            ):  # fmt: skip
                _row_enthalpy(
                    Y1, Y2, Y0, L0, k, W, Q, qs, P, ps, t_art, inv_h2, labels, phase, mu, nu,
                    mut, gt, first, out, i, j,
                )  # fmt: skip
            a, b, s = row_extremes(out, i, j, a, b, s)
            lo = np.inf
            for m in range(1, out.shape[2] - 1):
                lo = min(lo, out[i, j, m])
            rowmin[i - 1, j - 1] = lo
        rmax[i - 1] = a
        rmin[i - 1] = b
        rbad[i - 1] = s
    return rmax.max(), rmin.min(), rbad.sum() == 0.0
