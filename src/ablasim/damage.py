r"""Thermal damage: CEM43 thermal dose, Arrhenius injury integral, extreme temperatures.

CEM43 (Sapareto & Dewey 1984, Int J Radiat Oncol Biol Phys 10:787-800,
doi:10.1016/0360-3016(84)90379-1):

.. math:: \mathrm{CEM43} = \sum_i \Delta t_i\, R^{43 - T_i},\quad
          R = 0.5\ (T \ge 43\,°C),\ 0.25\ (T < 43\,°C) \qquad [\text{min}]

240 min is the conventional threshold for necrosis of soft tissue (as used e.g. by
k-Wave's ``kWaveDiffusion``); rat sciatic nerve lost half its motor function at 48-64 min
(Wondergem et al. 1988, Int J Radiat Biol 53:429) (docs/physics.md §2.1).

Arrhenius (Henriques & Moritz 1947):

.. math:: \Omega(t) = \int_0^t A\, e^{-E_a / (R\, T(\tau))}\, d\tau

with per-tissue A [1/s] and E_a [J/mol] from the tissue library; Omega = 1 is 63 % and
Omega = 4.6 is 99 % cell death (docs/physics.md §2.2). The single-step model over-predicts
early damage in moderate heating; use it for the ablation zone, CEM43 for nerves.

Perfusion shut-down: blood flow stops, for good, in coagulated tissue: by default when
Omega >= 4.6 or T >= 60 °C (docs/physics.md §2.3: Irastorza tutorial; Schutt & Haemmerich
2008; bone flow stops permanently at >= 60 °C, Eriksson & Albrektsson 1983).

The doses are accumulated every time step inside the Pennes step, row by row, by the
kernels of :mod:`ablasim.solvers.fused` (rectangle rule on the new temperature);
:func:`cem43_rate` and :func:`arrhenius_rate` are the same rates in NumPy.

Dose floor: CEM43 and Omega accrue only where T > :data:`DAMAGE_FLOOR_C` (39 °C).
Below it CEM43 grows by less than 0.004 min per minute (under 0.25 min in an hour,
against thresholds of 48-240 min), and the single-step Arrhenius sets, fitted to
hyperthermic data, are not valid at body temperature (the liver set extrapolated to
37 °C would give Omega = 1 after an hour of doing nothing). Skipping the two
exponentials in the many voxels near body temperature also keeps the step fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ScenarioError

__all__ = [
    "DAMAGE_FLOOR_C",
    "GAS_CONSTANT",
    "DamageFields",
    "PerfusionShutdown",
    "arrhenius_rate",
    "arrhenius_tables",
    "cem43_rate",
]

#: Molar gas constant [J/mol/K] (CODATA 2018, exact).
GAS_CONSTANT = 8.314462618
#: CEM43 and Arrhenius damage accrue only above this temperature [°C] (see above).
DAMAGE_FLOOR_C = 39.0
_KELVIN = 273.15


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


def arrhenius_tables(A, Ea) -> tuple[np.ndarray, np.ndarray]:
    """Per-label tables for the step kernel: (ln A, E_a / R [K]) from A [1/s] and E_a
    [J/mol]; ln A is -inf where A = 0 (no Arrhenius damage)."""
    A = np.asarray(A, dtype=float)
    with np.errstate(divide="ignore"):
        ln_a = np.where(A > 0, np.log(np.where(A > 0, A, 1.0)), -np.inf)
    return ln_a, np.asarray(Ea, dtype=float) / GAS_CONSTANT


@dataclass(frozen=True)
class PerfusionShutdown:
    """When blood flow stops in damaged tissue (irreversibly).

    Attributes
    ----------
    omega : float or None
        Stop when Omega reaches this value (default 4.6, 99 % cell death); None: never.
    temperature_C : float or None
        Stop when the temperature reaches this value [°C] (default 60); None: never.
    frozen_C : float or None
        Stop for good when tissue has frozen to this temperature [°C] (default -20, the
        lethal isotherm, docs/physics.md §2.4); None: never. That the vessels of tissue
        frozen that far stay shut after thawing (vascular stasis) is our assumption.
        While tissue is frozen, perfusion stops anyway (in the step, by the frozen
        fraction) and resumes on thawing above this temperature.
    """

    omega: float | None = 4.6
    temperature_C: float | None = 60.0
    frozen_C: float | None = -20.0

    def __post_init__(self) -> None:
        for key, v in (("omega", self.omega), ("temperature_C", self.temperature_C)):
            if v is not None and not (math.isfinite(v) and v > 0):
                raise ScenarioError(
                    f"damage.perfusion_shutdown_{key} must be a positive number or "
                    f"omitted, got {v!r}"
                )
        if self.frozen_C is not None and not (math.isfinite(self.frozen_C) and self.frozen_C < 0):
            raise ScenarioError(
                "damage.perfusion_shutdown_frozen_C must be a temperature below 0 °C or "
                f"false, got {self.frozen_C!r}"
            )

    def thresholds(self) -> tuple[float, float, float]:
        """(omega, hot temperature, frozen temperature) thresholds, with infinity (minus
        infinity for the frozen one) for 'never'."""
        return (
            math.inf if self.omega is None else float(self.omega),
            math.inf if self.temperature_C is None else float(self.temperature_C),
            -math.inf if self.frozen_C is None else float(self.frozen_C),
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
