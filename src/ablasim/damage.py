r"""Thermal damage: CEM43 thermal dose, Arrhenius injury integral, extreme temperatures.

CEM43 (Sapareto & Dewey 1984, Int J Radiat Oncol Biol Phys 10:787-800,
doi:10.1016/0360-3016(84)90379-1):

.. math:: \mathrm{CEM43} = \sum_i \Delta t_i\, R^{43 - T_i},\quad
          R = 0.5\ (T \ge 43\,°C),\ 0.25\ (T < 43\,°C) \qquad [\text{min}]

240 min is the conventional threshold for necrosis of soft tissue (as used e.g. by
k-Wave's ``kWaveDiffusion``); rat sciatic nerve lost half its motor function at 48-64 min
(Wondergem et al. 1988, Int J Radiat Biol 53:429) (physics.md §2.1).

Arrhenius (Henriques & Moritz 1947):

.. math:: \Omega(t) = \int_0^t A\, e^{-E_a / (R\, T(\tau))}\, d\tau

with per-tissue A [1/s] and E_a [J/mol] from the tissue library; Omega = 1 is 63 % and
Omega = 4.6 is 99 % cell death (physics.md §2.2). The single-step model over-predicts
early damage in moderate heating; use it for the ablation zone, CEM43 for nerves.

Perfusion shut-down: blood flow stops, for good, in coagulated tissue: by default when
Omega >= 4.6 or T >= 60 °C (physics.md §2.3: Irastorza tutorial; Schutt & Haemmerich
2008; bone flow stops permanently at >= 60 °C, Eriksson & Albrektsson 1983).

The accumulation runs every time step in one fused pass (:func:`accumulate_damage`) with
the rectangle rule on the new temperature, first order in dt (dt is well under a second
at 0.5 mm, far below the time over which temperatures change).

Dose floor: CEM43 and Omega accrue only where T > :data:`DAMAGE_FLOOR_C` (39 °C).
Below it CEM43 grows by less than 0.004 min per minute (under 0.25 min in an hour,
against thresholds of 48-240 min), and the single-step Arrhenius sets, fitted to
hyperthermic data, are not valid at body temperature (the liver set extrapolated to
37 °C would give Omega = 1 after an hour of doing nothing). Skipping the two
exponentials in the many voxels near body temperature also keeps the pass fast.

How the kernel evaluates exp (:func:`fast_exp`): there is no vector math library (SVML)
behind numba here, so ``math.exp`` is a scalar libm call, and with two of them per voxel
above the floor the damage pass used to cost more than the Pennes step. The kernel
instead splits the exponent as y = n/64 + r with n = rint(64 y), so |r| <= 1/128 and r
is exact; exp(n/64) comes from a table (:data:`_EXP_TABLE`, 16385 entries, 128 KiB)
built at import with ``math.exp``, and exp(r) from its degree-5 Taylor polynomial
(truncation below 3.2e-16 relative), evaluated in Estrin's form for a short dependency
chain. Over the table range |y| < 128 it agrees with ``math.exp`` to better than 1e-15
relative (measured maximum 6.6e-16 over a dense sweep, tests/test_damage.py; the
requirement is 1e-13). Outside that range, and for y = -inf (a label with A = 0) or NaN,
it calls ``math.exp`` itself, so it is exact there. The range holds every exponent that
occurs in practice: ln 2 (T - 43) for CEM43 is -5.5 at the floor and reaches 128 only
at 228 °C; the Arrhenius exponents of the tissue library run from -15 at the floor to
67 at 200 °C (bone, skin) and reach 128 only near 500 °C. Hot voxels cost about half
what they did with libm: with 96 x 128 x 96 voxels all above the floor, a call took
19 ms with ``math.exp`` and 10-11 ms now (one thread; medians of alternating runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ScenarioError
from .solvers._jit import jit, jit_inline, prange

__all__ = [
    "DAMAGE_FLOOR_C",
    "GAS_CONSTANT",
    "DamageFields",
    "PerfusionShutdown",
    "accumulate_damage",
    "arrhenius_rate",
    "cem43_rate",
    "fast_exp",
]

#: Molar gas constant [J/mol/K] (CODATA 2018, exact).
GAS_CONSTANT = 8.314462618
#: CEM43 and Arrhenius damage accrue only above this temperature [°C] (see above).
DAMAGE_FLOOR_C = 39.0
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


def cem43_rate(T):
    """Equivalent minutes at 43 °C accrued per second at temperature T [°C] (array ok)."""
    T = np.asarray(T, dtype=float)
    # R^(43-T) = 2^(T-43) above 43 °C (R = 0.5), 4^(T-43) = 2^(2(T-43)) below (R = 0.25)
    return np.exp2(np.where(T >= 43.0, T - 43.0, 2.0 * (T - 43.0))) / 60.0


def arrhenius_rate(T, A, Ea):
    """Arrhenius damage rate A exp(-Ea / (R T)) [1/s] at temperature T [°C]."""
    if A <= 0:
        return np.zeros_like(np.asarray(T, dtype=float))
    tk = np.asarray(T, dtype=float) + _KELVIN
    return np.exp(math.log(A) - Ea / (GAS_CONSTANT * tk))


@dataclass(frozen=True)
class PerfusionShutdown:
    """When blood flow stops in damaged tissue (irreversibly).

    Attributes
    ----------
    omega : float or None
        Stop when Omega reaches this value (default 4.6, 99 % cell death); None: never.
    temperature_C : float or None
        Stop when the temperature reaches this value [°C] (default 60); None: never.
    """

    omega: float | None = 4.6
    temperature_C: float | None = 60.0

    def __post_init__(self) -> None:
        for key, v in (("omega", self.omega), ("temperature_C", self.temperature_C)):
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ScenarioError(
                    f"damage.perfusion_shutdown_{key} must be a positive number or "
                    f"omitted, got {v!r}"
                )

    def thresholds(self) -> tuple[float, float]:
        """(omega, temperature) thresholds with infinity for 'never'."""
        return (
            math.inf if self.omega is None else float(self.omega),
            math.inf if self.temperature_C is None else float(self.temperature_C),
        )


@dataclass
class DamageFields:
    """Per-voxel accumulators (grid shape).

    Attributes
    ----------
    t_max, t_min : ndarray
        Highest and lowest temperature reached [°C].
    cem43 : ndarray
        Thermal dose [equivalent minutes at 43 °C].
    omega : ndarray
        Arrhenius injury integral [-].
    """

    t_max: np.ndarray
    t_min: np.ndarray
    cem43: np.ndarray
    omega: np.ndarray

    @classmethod
    def start(cls, T: np.ndarray) -> DamageFields:
        """Accumulators at the start of a run, from the initial temperature (interior)."""
        return cls(T.copy(), T.copy(), np.zeros_like(T), np.zeros_like(T))

    def as_dict(self) -> dict[str, np.ndarray]:
        return {
            "t_max": self.t_max,
            "t_min": self.t_min,
            "cem43": self.cem43,
            "omega": self.omega,
        }


@jit
def accumulate_damage(
    T, dt, labels, ln_a, ea_over_r, t_max, t_min, cem43, omega, W, shut_omega, shut_t, floor
):
    """Add one step's damage at the new temperature (padded ``T``) and stop perfusion.

    ``ln_a`` and ``ea_over_r`` are per-label tables (ln A, E_a / R [K]); a label with
    ``ln_a = -inf`` takes no Arrhenius damage. Doses accrue where T > ``floor`` [°C].
    Where Omega >= ``shut_omega`` or T >= ``shut_t``, the perfusion coefficient ``W``
    is set to zero (and stays zero).
    """
    nx, ny, nz = t_max.shape
    dmin = dt / 60.0
    # Stores are conditional: most voxels set no new extreme and sit below the dose
    # floor, so their cache lines of t_max, t_min, cem43, omega are read (or not even
    # that) but never written back; this runs ~1.8x faster than unconditional stores.
    # The same stores keep LLVM from vectorising the loop (and without AVX2 there are no
    # gathers for the table look-ups); the exps are scalar, inlined :func:`fast_exp`.
    for i in prange(nx):
        for j in range(ny):
            for m in range(nz):
                t = T[i + 1, j + 1, m + 1]
                if t > t_max[i, j, m]:
                    t_max[i, j, m] = t
                if t < t_min[i, j, m]:
                    t_min[i, j, m] = t
                if t > floor:
                    # both exponents first: the two exps are independent work for the CPU
                    x = t - 43.0
                    if x < 0.0:
                        x = 2.0 * x
                    lab = labels[i, j, m]
                    y_arr = ln_a[lab] - ea_over_r[lab] / (t + _KELVIN)
                    cem43[i, j, m] += dmin * fast_exp(_LN2 * x)
                    om = omega[i, j, m] + dt * fast_exp(y_arr)
                    omega[i, j, m] = om
                    if om >= shut_omega:
                        W[i, j, m] = 0.0
                # a plain temperature test, valid below the dose floor too
                if t >= shut_t:
                    W[i, j, m] = 0.0
