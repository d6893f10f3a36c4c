"""PMMA cure kinetics: the autocatalytic Arrhenius law with a glass-transition limit.

The model (docs/physics.md §3.4; the cement material §1.4)
----------------------------------------------------------
The degree of cure (monomer conversion) ``α`` of each cement voxel follows

    dα/dt = K(T) · α^m · (α_max − α)^n,        K(T) = K₀ exp(−E₀ / (R T)),

(Borzacchiello et al. 1998, as used by Quarini et al. 2006 and implemented in the
ABAQUS model github.com/mhogg/cement_polymerisation). ``α_max(T) = T / T_g`` below the
glass transition ``T_g = 378 K`` (105 °C), 1 above it: a glassy cement stops curing
before every monomer has reacted (75–85 % convert, Warner, Shim & Gilbert 2004; Vallo
et al. 1998). The limit is **ratcheted**, as in the reference model: it is the largest
``T / T_g`` the voxel has seen, so a cooling cement never "un-cures" and
``α_max − α`` never turns negative. The cement releases ``ρ H dα/dt`` [W/m³].
A seed conversion (1e-4, the reference validation model's 1.019e-4 rounded) starts
the autocatalysis, which otherwise has the solution α ≡ 0.

Integration
-----------
The law is stiff only mildly at body temperatures (``K Δt`` < 0.5 for Δt ≤ 0.3 s even at
105 °C with the fastest set), but it is strongly non-linear: the rate grows by orders of
magnitude within a minute and ``(α_max − α)^n`` must not be overshot (a step past α_max
gives a negative base and NaN). Each call advances every cement voxel from the last
call's time to this one in ``n_sub`` sub-steps (as many as keep the estimate of a
sub-step's Δα below ``MAX_SUBSTEP_DALPHA``, at most ``MAX_SUBSTEPS``), the temperature
interpolated linearly between the two calls' values. Where ``h |∂f/∂α|`` is below
``EXPLICIT_LIMIT`` (bounded by ``h K (m + n) · STIFFNESS_BOUND``), which is every
sub-step at body temperatures, a sub-step is explicit and second order with **one** rate
evaluation: the variable-step Adams-Bashforth formula
``α₁ = α + h ((1 + w) f − w f_prev)``, ``w = h / (2 h_prev)`` (Heun's predictor-corrector
for the very first step, which has no history); where the hot cement makes the law stiff,
the **implicit trapezoidal rule** (A-stable), solved per voxel by Newton's method
safeguarded by bisection on ``[α_old, α_max]`` to 1e-13. α is kept in
``[α_old, α_max]``. The reference ABAQUS model integrates implicitly (fixed-point
iteration to 1e-12); the explicit branch is the cheap equivalent where the law is not
stiff, at one exponential and two logarithms per voxel and step (the Arrhenius factor and
both powers folded into one exponential). The rate at the end of a call, the one before
it and that sub-step are kept for the next call (they are part of the state).
``tests/test_cement.py`` checks the kernel against ``scipy.integrate.solve_ivp`` at
rtol 1e-10 (0.5 % in α(t) and the peak time) and its second order.

Validity: the parameter sets were fitted to DSC/exotherm data of commercial PMMA cements
(Borzacchiello 1998; Li et al. 2003); the law has no diffusion of monomer, no
evaporation, no dependence on the powder/liquid ratio or radiopacifier, and α_max's
linear T/T_g form is the reference model's simplification of Vallo's measured trend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from ...solvers import jit

__all__ = [
    "DEFAULT_KINETICS",
    "EXPLICIT_LIMIT",
    "GAS_CONSTANT",
    "GLASS_TRANSITION_K",
    "KINETICS",
    "MAX_SUBSTEPS",
    "MAX_SUBSTEP_DALPHA",
    "SEED_CONVERSION",
    "STIFFNESS_BOUND",
    "Kinetics",
    "cure_isothermal",
    "cure_step",
    "rate",
]

#: Molar gas constant [J/mol/K] (CODATA 2018, exact).
GAS_CONSTANT = 8.314462618
#: Glass-transition temperature of PMMA cement [K] (105 °C; reference ABAQUS model,
#: github.com/mhogg/cement_polymerisation, after Borzacchiello 1998).
GLASS_TRANSITION_K = 378.0
#: Seed conversion that starts the autocatalysis [-] (the reference model uses 1e-6 in
#: its cup model and 1.019e-4 in its validation model; docs/physics.md §3.4).
SEED_CONVERSION = 1e-4
#: Largest explicit estimate of Δα in one sub-step [-] (sets the number of sub-steps).
MAX_SUBSTEP_DALPHA = 0.01
#: Most sub-steps per call (the heat equation's step is already small: 0.1-0.3 s).
MAX_SUBSTEPS = 64
#: A bound of ``|∂f/∂α| / (K (m + n))`` over the reachable α (``α^(m-1) <= 1.25`` from
#: the seed up, ``(α_max − α)^(n-1) <= 1`` for n > 1).
STIFFNESS_BOUND = 1.25
#: A sub-step is explicit (Heun) while ``h |∂f/∂α|`` stays below this, else implicit.
EXPLICIT_LIMIT = 0.25


@dataclass(frozen=True)
class Kinetics:
    """One parameter set of the rate law ``dα/dt = K₀ e^{−E₀/RT} α^m (α_max − α)^n``.

    Attributes
    ----------
    name : str
        The scenario's ``kinetics = "..."``.
    K0 : float
        Pre-exponential factor [1/s].
    E0 : float
        Activation energy [J/mol].
    m, n : float
        Autocatalytic and reaction orders [-].
    H : float
        Heat of polymerisation [J/kg].
    glass : bool
        α_max = min(T/T_g, 1) (True) or 1 (False).
    source : str
        Where the numbers come from.
    """

    name: str
    K0: float
    E0: float
    m: float
    n: float
    H: float
    glass: bool
    source: str

    def alpha_max(self, T_C) -> np.ndarray:
        """The glass limit at temperature ``T_C`` [°C] (not ratcheted)."""
        T = np.asarray(T_C, dtype=float) + 273.15
        return np.minimum(T / GLASS_TRANSITION_K, 1.0) if self.glass else np.ones_like(T)

    def rate_constant(self, T_C) -> np.ndarray:
        """``K(T)`` [1/s] at ``T_C`` [°C]."""
        return self.K0 * np.exp(-self.E0 / (GAS_CONSTANT * (np.asarray(T_C, float) + 273.15)))


#: The parameter sets by name (docs/physics.md §3.4, as implemented in the
#: reference ABAQUS model github.com/mhogg/cement_polymerisation).
KINETICS = {
    k.name: k
    for k in (
        # Borzacchiello et al. 1998 (Biomaterials), listing 1 of the reference model
        # (Cup/sub-HETVAL-6.for): K0 1.2088e4 1/s, E0 33.24 kJ/mol, m 0.98, n 1.14, H 100 J/g
        Kinetics(
            "borzacchiello-1", 1.2088e4, 33.24e3, 0.98, 1.14, 100e3, True,
            "Borzacchiello et al. 1998, listing 1 of the reference ABAQUS model",
        ),
        # Borzacchiello et al. 1998, listing 2: K0 9.484e3, E0 31.27 kJ/mol, m 0.98,
        # n 1.064, H 123 J/g
        Kinetics(
            "borzacchiello-2", 9.484e3, 31.27e3, 0.98, 1.064, 123e3, True,
            "Borzacchiello et al. 1998, listing 2 of the reference ABAQUS model",
        ),
        # Li et al. 2003 (Validation/sub-HETVAL-Li.for): K0 5.206e9, E0 67.891 kJ/mol,
        # m 1.05, n 1.10, H 100 J/g, alpha_max = 1
        Kinetics(
            "li-2003", 5.206e9, 67.891e3, 1.05, 1.10, 100e3, False,
            "Li et al. 2003, as in the reference ABAQUS model's validation",
        ),
    )
}  # fmt: skip
#: The set used when a scenario names none.
DEFAULT_KINETICS = "borzacchiello-1"


# -- the rate law ----------------------------------------------------------------------------
@nb.njit(cache=True, inline="always")
def _f(a, amax, lnk, m, n):  # pragma: no cover - compiled
    """``k α^m (α_max − α)^n`` with ``lnk = ln k``, zero at or beyond the limit: one
    exponential and two logarithms (the two powers and the Arrhenius factor folded)."""
    d = amax - a
    if d <= 0.0 or a <= 0.0:
        return 0.0
    return math.exp(lnk + m * math.log(a) + n * math.log(d))


def rate(alpha, T_C, alpha_max, kin: Kinetics) -> np.ndarray:
    """``dα/dt`` [1/s] (NumPy; zero at or beyond α_max)."""
    a = np.asarray(alpha, dtype=float)
    d = np.clip(np.asarray(alpha_max, dtype=float) - a, 0.0, None)
    return kin.rate_constant(T_C) * np.clip(a, 0.0, None) ** kin.m * d**kin.n


@nb.njit(cache=True, inline="always")
def _trapezoid(a0, f0, k1, amax1, h, m, n):  # pragma: no cover - compiled
    """α1 solving ``α1 = a0 + h/2 (f0 + k1 α1^m (α_max − α1)^n)`` in ``[a0, amax1]``:
    Newton's method safeguarded by bisection."""
    if a0 >= amax1:
        return a0
    lo, hi = a0, amax1
    if hi - a0 - 0.5 * h * f0 <= 0.0:  # g(amax1) <= 0: the step reaches the limit
        return amax1
    x = min(a0 + h * f0, 0.5 * (a0 + amax1))  # explicit guess, kept inside
    if x <= a0:
        x = a0 + 0.5 * (amax1 - a0) * 1e-6
    for _ in range(100):
        d = amax1 - x
        f = k1 * x**m * d**n
        g = x - a0 - 0.5 * h * (f0 + f)
        if g > 0.0:
            hi = x
        else:
            lo = x
        dfdx = f * (m / x - n / d)
        dg = 1.0 - 0.5 * h * dfdx
        xn = x - g / dg if dg != 0.0 else 0.5 * (lo + hi)
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= 1e-13 or hi - lo <= 1e-13:
            return xn
        x = xn
    return x


@nb.njit(cache=True, inline="always")
def _advance(
    a, amax, f, fp, hp, T0_K, T1_K, dt, glass, lnK0, E0, m, n, ln_explicit
):  # pragma: no cover - compiled
    """(α, α_max, rate, previous rate, previous sub-step) after ``dt`` with T linear
    from T0_K to T1_K, from α, its rate ``f`` at T0_K, and the rate ``fp`` one sub-step
    ``hp`` earlier (``hp`` 0: none). ``ln_explicit`` = ln(EXPLICIT_LIMIT /
    (STIFFNESS_BOUND (m + n) dt)). See the module."""
    est = f * dt
    nsub = 1
    if est > MAX_SUBSTEP_DALPHA:
        nsub = min(MAX_SUBSTEPS, math.ceil(est / MAX_SUBSTEP_DALPHA))
    h = dt / nsub
    lim = ln_explicit if nsub == 1 else ln_explicit + math.log(nsub)
    for s in range(nsub):
        T1 = T0_K + (T1_K - T0_K) * (s + 1) / nsub
        lnk1 = lnK0 - E0 / (GAS_CONSTANT * T1)
        if glass:
            glass_lim = T1 / GLASS_TRANSITION_K
            if glass_lim > 1.0:
                glass_lim = 1.0
            if glass_lim > amax:
                amax = glass_lim
        if lnk1 <= lim:  # h |df/dα| small: explicit, one rate evaluation
            if hp > 0.0:  # Adams-Bashforth 2, variable step
                w = 0.5 * h / hp
                a1 = a + h * ((1.0 + w) * f - w * fp)
            else:  # no history: Heun (explicit trapezoid)
                ap = min(a + h * f, amax)
                a1 = a + 0.5 * h * (f + _f(ap, amax, lnk1, m, n))
            a1 = min(max(a1, a), amax)
        else:
            a1 = _trapezoid(a, f, math.exp(lnk1), amax, h, m, n)
        fp = f
        hp = h
        a = a1
        f = _f(a, amax, lnk1, m, n)
    return a, amax, f, fp, hp


@jit
def _cure_kernel(
    coords, T, T_last, alpha, amax, rate, rate_prev, h_prev, dt, glass, K0, E0, m, n, rhoH, Q,
    dq, hot, t_above, above_C,
):  # pragma: no cover - compiled  # fmt: skip
    """Advance every cement voxel; add ``rhoH Δα/dt`` to Q and keep ``rhoH Δα`` in
    ``dq`` [J/m^3] (summed by the caller in a fixed order: the same sum whatever the
    number of threads). Tracks each voxel's peak and time above ``above_C``."""
    lnK0 = math.log(K0)
    ln_explicit = math.log(EXPLICIT_LIMIT / (STIFFNESS_BOUND * (m + n) * dt))
    for v in nb.prange(coords.shape[0]):
        i, j, k = coords[v, 0], coords[v, 1], coords[v, 2]
        Tn = T[i, j, k]
        a0 = alpha[v]
        a1, am, f1, fp, hp = _advance(
            a0, amax[v], rate[v], rate_prev[v], h_prev[v], T_last[v] + 273.15, Tn + 273.15,
            dt, glass, lnK0, E0, m, n, ln_explicit,
        )  # fmt: skip
        alpha[v] = a1
        amax[v] = am
        rate[v] = f1
        rate_prev[v] = fp
        h_prev[v] = hp
        q = rhoH[v] * (a1 - a0)
        Q[i, j, k] += q / dt
        dq[v] = q
        if T_last[v] > above_C and Tn > above_C:
            t_above[v] += dt
        elif T_last[v] > above_C or Tn > above_C:  # crossed within the interval: linear
            lo, hi = (T_last[v], Tn) if Tn > T_last[v] else (Tn, T_last[v])
            t_above[v] += dt * (hi - above_C) / (hi - lo)
        T_last[v] = Tn
        if Tn > hot[v]:
            hot[v] = Tn


def cure_step(
    coords, T, T_last, alpha, amax, rate, rate_prev, h_prev, dt, kin: Kinetics, rhoH, Q, dq,
    hot, t_above, above_C,
) -> float:  # fmt: skip
    """Advance the cure of the voxels at ``coords`` (int64, (n, 3)) by ``dt`` [s] from
    temperature ``T_last`` (per voxel, [°C], updated) to ``T`` (the grid, [°C]);
    ``alpha``, ``amax`` (ratcheted limit), ``rate`` (dα/dt at ``T_last``: start it with
    :func:`rate`), ``rate_prev`` and ``h_prev`` (the rate one sub-step earlier and that
    sub-step [s]; start ``h_prev`` at 0), ``hot`` (peak [°C]) and ``t_above`` (time above
    ``above_C`` [s]) are updated in place; ``ρ H Δα / dt`` added to ``Q`` [W/m^3];
    ``dq`` (per voxel, scratch) receives ``ρ H Δα`` [J/m^3]. Returns the heat released
    [J/m^3, summed over the voxels]."""
    _cure_kernel(
        coords, T, T_last, alpha, amax, rate, rate_prev, h_prev, float(dt), bool(kin.glass),
        kin.K0, kin.E0, kin.m, kin.n, rhoH, Q, dq, hot, t_above, float(above_C),
    )  # fmt: skip
    return float(dq.sum())


def cure_isothermal(kin: Kinetics, T_C: float, duration_s: float, *, alpha0=SEED_CONVERSION,
                    dt: float = 0.5) -> tuple[float, float]:  # fmt: skip
    """(α, α_max) after ``duration_s`` [s] at a constant ``T_C`` [°C] from ``alpha0``
    (the cure in the mixing bowl before injection), by the same kernel."""
    coords = np.zeros((1, 3), dtype=np.int64)
    T = np.full((1, 1, 1), float(T_C))
    T_last = np.full(1, float(T_C))
    alpha = np.full(1, float(alpha0))
    amax = np.asarray(kin.alpha_max(T_C), dtype=float).reshape(1).copy()
    Q = np.zeros((1, 1, 1))
    hot, t_above, rhoH = np.full(1, float(T_C)), np.zeros(1), np.ones(1)
    f, fp, hp = rate(alpha, T_C, amax, kin), np.zeros(1), np.zeros(1)
    steps = max(1, math.ceil(duration_s / dt - 1e-9)) if duration_s > 0 else 0
    for _ in range(steps):
        cure_step(coords, T, T_last, alpha, amax, f, fp, hp, duration_s / steps, kin, rhoH,
                  Q, np.zeros(1), hot, t_above, 1e9)  # fmt: skip
    return float(alpha[0]), float(amax[0])
