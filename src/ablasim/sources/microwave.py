"""Microwave ablation antenna (915 MHz or 2.45 GHz): a SAR surrogate built on the
tissues' dielectric attenuation, or a SAR map from the user's own EM solver.

The model (a surrogate, physics.md §3.2 [U]; no single published source)
--------------------------------------------------------------------------
A full model solves Maxwell's equations around the antenna (SAR = σ|E|²/ρ; Ji & Brace
2011, physics.md §3.2). Here the antenna is a **line of point radiators** along its axis,
and each radiator's power spreads spherically and is absorbed on its way out:

* Source strength along the shaft, ``s`` = distance from the tip towards the hub: an
  asymmetric Gaussian peaked at the feed gap ``s_f = FEED_FRACTION * L`` (``L`` the
  active length), with a short distal roll-off (``DISTAL_ROLLOFF * L``, so the tip itself
  radiates weakly) and a longer proximal tail (``PROXIMAL_TAIL * L``) that carries about
  13 % of the power behind the active region: the backward heating along the shaft that
  gives microwave zones their **tear-drop** shape (round distal head, tail along the
  needle). The three fractions are typical conventions [U], not fitted to a device.
* From a radiator at ``p`` the power flux at ``x`` is
  ``S = w_p exp(-2 ∫ α ds) / (4π (r² + a²))``: spherical spreading, regularised at the
  antenna radius ``a`` (the power leaves the antenna's surface, not its axis), and
  attenuated by the **path integral of the tissues' attenuation constant** α along the
  straight segment ``p -> x`` (midpoint rule on the voxels crossed, at most
  ``MAX_PATH_SAMPLES`` samples). α per voxel from ε_r and σ at the frequency (Gabriel 1996,
  physics.md §1.2): ``α = ω √(μ₀ε₀ε_r/2 · (√(1 + (σ/ωε₀ε_r)²) − 1))``. Bone (α 21.8 Np/m at
  2.45 GHz, power depth 23 mm) lets the power through much further than muscle (44.8 Np/m,
  11 mm), as seen in the sheep vertebrae of Nijland et al. 2024 (physics.md §3.2).
* The power absorbed per volume is ``Q(x) = 2 α(x) Σ_p S_p(x)``. This is ``σ|E|²`` written
  with the flux (``|E|² = 2 Z S``, ``2α ≈ σ Z`` for ``σ ≪ ωε``) and it conserves energy:
  in an unbounded uniform medium each radiator's absorbed power integrates to its
  strength. So bone and soft tissue heat differently through both ``α(x)`` (local
  absorption) and the path integral (what reaches the voxel).
* Finally ``Q`` is scaled so that ``∫Q dV = efficiency × power`` exactly: ``efficiency``
  stands for the cable loss and the antenna's reflection (default ``DEFAULT_EFFICIENCY``
  = 0.8 [U]: about 1 dB of loss in ≈1.5 m of flexible coax at 2.45 GHz and a few % reflected
  by a well-matched antenna; set it from the device's data where known). The fraction
  of the radiated power the model absorbs inside the grid (before scaling) is kept as
  ``grid_fraction``; power that would leave the grid is, by the scaling, absorbed inside
  it, so make the grid large enough that this fraction is close to 1.

Validity and limitations: the surrogate has no near field, no wavelength effects (the
antenna's resonance and its pattern's dependence on the surrounding tissue), no
reflection or refraction at tissue interfaces and straight-ray paths; it is meant for
planning-level questions (where does the power go, how far does it reach through bone),
not for the exact zone shape of a given device. For that, use ``sar_map`` with a SAR
field from an EM solver (scaled here to the set power).

Temperature dependence (``temperature_dependent=True``): as tissue dries, its
permittivity and conductivity fall and the power reaches further (Ji & Brace 2011,
physics.md §1.2). ε_r and σ of every voxel are multiplied by the relative change of the
sigmoidal liver model as implemented in MITA (physics.md §1.2, 2.45 GHz, used at both
frequencies [U]), ``ε_r(T)/ε_r(37 °C)`` and ``σ(T)/σ(37 °C)``, with the change scaled by
the tissue's water fraction relative to liver's 0.72 (drier tissue such as bone and fat
changes less; no bone-specific data, physics.md §1.2 [U]). The SAR is recomputed only
when some voxel's conductivity factor has moved by more than ``RECOMPUTE_TOLERANCE``
since the last computation; the absorbed power stays the set one. For a SAR map the
map is re-weighted voxel by voxel by the conductivity factor and rescaled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numba as nb
import numpy as np

from ..errors import ScenarioError, suggest
from ..solvers._jit import jit
from .base import HeldTemperature

if TYPE_CHECKING:
    from ..model import Model

__all__ = [
    "DEFAULT_EFFICIENCY",
    "FREQUENCIES_MHZ",
    "MicrowaveSource",
    "attenuation_constant",
    "from_scenario",
    "mita_factors",
]

#: Supported frequencies [MHz]: the tissue library has ε_r and σ at these two (§1.2).
FREQUENCIES_MHZ = (915.0, 2450.0)
#: Fraction of the generator power absorbed by tissue (cable loss, reflection) [U].
DEFAULT_EFFICIENCY = 0.8
#: Default active (radiating) length [m]: the 2 cm antenna of physics.md §3.2 (915 MHz).
DEFAULT_ACTIVE_LENGTH = 0.02
#: Default antenna diameter [m]: 13 G (2.4 mm), a common MW antenna size [U].
DEFAULT_DIAMETER = 0.0024
#: Feed gap position, fraction of the active length from the tip [U].
FEED_FRACTION = 0.5
#: Gaussian width of the distal roll-off, fraction of the active length [U].
DISTAL_ROLLOFF = 0.25
#: Gaussian width of the proximal tail (backward heating), fraction of the length [U].
PROXIMAL_TAIL = 0.4
#: Most samples of α along one ray (rays longer than this many voxels take longer steps).
MAX_PATH_SAMPLES = 16
#: Recompute a temperature-dependent SAR when a conductivity factor moved by this much.
RECOMPUTE_TOLERANCE = 0.05
#: Water fraction of liver, the tissue of the MITA sigmoid (tissue library) [-].
LIVER_WATER_FRACTION = 0.72

_EPS0 = 8.8541878128e-12  # vacuum permittivity [F/m]
_MU0 = 1.25663706212e-6  # vacuum permeability [H/m]
_BODY_C = 37.0  # temperature of the tabulated dielectric data [°C]
_KEYS = {
    915.0: ("permittivity_915MHz", "electrical_conductivity_915MHz_S_m"),
    2450.0: ("permittivity_2450MHz", "electrical_conductivity_2450MHz_S_m"),
}


# -- dielectric helpers -------------------------------------------------------------------
def attenuation_constant(eps_r, sigma, frequency_MHz: float) -> np.ndarray:
    """Attenuation constant α [Np/m] of a lossy dielectric (physics.md §1.2).

    ``α = ω √(μ₀ε₀ε_r/2 · (√(1 + (σ/ωε₀ε_r)²) − 1))``; the power decays as ``exp(-2αr)``.

    Parameters
    ----------
    eps_r : array-like
        Relative permittivity [-].
    sigma : array-like
        Conductivity at the frequency [S/m].
    frequency_MHz : float
        Frequency [MHz].

    Examples
    --------
    >>> round(float(attenuation_constant(52.7, 1.739, 2450.0)), 1)  # muscle, §1.2
    44.8
    """
    w = 2.0 * math.pi * frequency_MHz * 1e6
    eps = np.asarray(eps_r, dtype=np.float64)
    loss = np.asarray(sigma, dtype=np.float64) / (w * _EPS0 * eps)
    return w * np.sqrt(_MU0 * _EPS0 * eps / 2.0 * (np.sqrt(1.0 + loss * loss) - 1.0))


def mita_factors(T) -> tuple[np.ndarray, np.ndarray]:
    """Relative change of ε_r and σ with temperature, liver sigmoid as in MITA.

    ``ε_r(T) = 48.391 (1 − 1/(1 + e^{6.286 − 0.0764 T})) + 1``,
    ``σ(T) = 2.173 (1 − 1/(1 + e^{5.951 − 0.0697 T}))`` S/m (T in °C; physics.md §1.2,
    MITA-model, from Ji & Brace 2011), each divided by its value at 37 °C.

    Returns
    -------
    (eps_factor, sigma_factor) : ndarrays
        1 at 37 °C; about 0.57 / 0.61 at 80 °C and 0.08 / 0.09 at 120 °C.
    """
    T = np.asarray(T, dtype=np.float64)

    def eps(t):
        return 48.391 * (1.0 - 1.0 / (1.0 + np.exp(6.286 - 0.0764 * t))) + 1.0

    def sig(t):
        return 2.173 * (1.0 - 1.0 / (1.0 + np.exp(5.951 - 0.0697 * t)))

    with np.errstate(over="ignore"):  # very cold voxels: exp overflows to 1 - 0
        return eps(T) / eps(_BODY_C), sig(T) / sig(_BODY_C)


# -- the kernel ---------------------------------------------------------------------------
@jit
def _sar_kernel(alpha, origin, h, pts, wts, a2, max_samples, out):  # pragma: no cover
    """``out = 2α(x) Σ_p w_p exp(-2∫α ds) / (4π (r² + a²))`` on every voxel (see module)."""
    nx, ny, nz = alpha.shape
    npts = pts.shape[0]
    inv4pi = 1.0 / (4.0 * math.pi)
    for i in nb.prange(nx):
        x = origin[0] + h * i
        for j in range(ny):
            y = origin[1] + h * j
            for k in range(nz):
                z = origin[2] + h * k
                acc = 0.0
                for p in range(npts):
                    px, py, pz = pts[p, 0], pts[p, 1], pts[p, 2]
                    dx, dy, dz = x - px, y - py, z - pz
                    r = math.sqrt(dx * dx + dy * dy + dz * dz)
                    n = math.ceil(r / h)
                    n = max(1, min(n, max_samples))
                    step = 1.0 / n
                    A = 0.0
                    for s in range(n):
                        f = (s + 0.5) * step
                        ii = math.floor((px + f * dx - origin[0]) / h + 0.5)
                        jj = math.floor((py + f * dy - origin[1]) / h + 0.5)
                        kk = math.floor((pz + f * dz - origin[2]) / h + 0.5)
                        ii = min(max(ii, 0), nx - 1)
                        jj = min(max(jj, 0), ny - 1)
                        kk = min(max(kk, 0), nz - 1)
                        A += alpha[ii, jj, kk]
                    A *= r * step
                    acc += wts[p] * math.exp(-2.0 * A) / (r * r + a2)
                out[i, j, k] = 2.0 * alpha[i, j, k] * acc * inv4pi


def _sar_reference(alpha, origin, h, pts, wts, a2, max_samples):
    """NumPy reference of :func:`_sar_kernel` (for the tests; slow, small grids only)."""
    nx, ny, nz = alpha.shape
    o = np.asarray(origin, dtype=np.float64)
    idx = np.indices(alpha.shape).reshape(3, -1).T
    X = o + h * idx
    hi = np.array([nx - 1, ny - 1, nz - 1])
    total = np.zeros(len(X))
    for p, w in zip(pts, wts, strict=True):
        d = X - p
        r = np.sqrt((d * d).sum(axis=1))
        n = np.clip(np.ceil(r / h).astype(int), 1, max_samples)
        A = np.zeros(len(X))
        for s in range(max_samples):
            live = s < n
            f = ((s + 0.5) / n)[:, None]
            q = np.floor((p + f * d - o) / h + 0.5).astype(int)
            q = np.clip(q, 0, hi)
            A += np.where(live, alpha[q[:, 0], q[:, 1], q[:, 2]], 0.0)
        A *= r / n
        total += w * np.exp(-2.0 * A) / (r * r + a2)
    return (2.0 * alpha.reshape(-1) * total / (4.0 * math.pi)).reshape(alpha.shape)


def _line_source(tip, u, length, spacing) -> tuple[np.ndarray, np.ndarray]:
    """Radiator positions [m] and weights (sum 1) along the shaft (see the module)."""
    s_f = FEED_FRACTION * length
    sd = DISTAL_ROLLOFF * length
    sp = PROXIMAL_TAIL * length
    s_end = s_f + 3.0 * sp
    n = max(8, math.ceil(s_end / spacing) + 1)
    s = np.linspace(0.0, s_end, n)
    width = np.where(s < s_f, sd, sp)
    w = np.exp(-0.5 * ((s - s_f) / width) ** 2)
    w[[0, -1]] *= 0.5  # trapezoid rule
    pts = np.asarray(tip)[None, :] - s[:, None] * np.asarray(u)[None, :]
    return np.ascontiguousarray(pts), w / w.sum()


# -- validation helpers -------------------------------------------------------------------
def _number(value, what: str, *, fix: str, gt: float | None = 0.0, le: float | None = None):
    if isinstance(value, bool):
        raise ScenarioError(f"{what} must be a number, got {value!r}; {fix}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{what} must be a number, got {value!r}; {fix}") from None
    if not math.isfinite(v) or (gt is not None and v <= gt) or (le is not None and v > le):
        bound = f"> {gt:g}" if le is None else f"in ({gt:g}, {le:g}]"
        raise ScenarioError(f"{what} must be a finite number {bound}, got {value!r}; {fix}")
    return v


def _vector(value, what: str, *, fix: str, nonzero: bool = False) -> tuple[float, ...]:
    try:
        v = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        v = np.full(1, np.nan)
    if v.shape != (3,) or not np.all(np.isfinite(v)) or (nonzero and not np.any(v)):
        cond = "three finite numbers, not all zero" if nonzero else "three finite numbers"
        raise ScenarioError(f"{what} must be {cond}, got {value!r}; {fix}")
    return tuple(float(x) for x in v)


def _check_map(sar, what: str, shape=None) -> np.ndarray:
    try:
        m = np.asarray(sar, dtype=np.float64)
    except (TypeError, ValueError):
        raise ScenarioError(
            f"{what} must be an array of numbers, got {type(sar).__name__}"
        ) from None
    if m.ndim != 3:
        raise ScenarioError(f"{what} must be a 3D array of the grid's shape, got shape {m.shape}")
    if shape is not None and m.shape != tuple(shape):
        raise ScenarioError(
            f"{what} has shape {m.shape} but the grid is {tuple(shape)}; resample the SAR map "
            "to the simulation grid"
        )
    if not np.all(np.isfinite(m)):
        raise ScenarioError(f"{what} holds NaN or infinite values; fix the map file")
    if np.any(m < 0):
        raise ScenarioError(
            f"{what} must be non-negative (a SAR), its minimum is {m.min():g}; fix the map file"
        )
    if not np.any(m > 0):
        raise ScenarioError(f"{what} is zero everywhere; it would deposit no power")
    return m


# -- the source ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MicrowaveSource:
    """An interstitial microwave antenna delivering a constant power.

    Parameters
    ----------
    tip : tuple of 3 float, optional
        Distal end of the antenna [m] (world frame). Required unless ``sar_map`` is given.
    direction : tuple of 3 float, optional
        The way the needle points, from the skin towards the tip (any length).
        Required unless ``sar_map`` is given.
    power : float
        Generator power [W] (> 0), constant during the phase.
    active_length : float
        Length of the radiating section [m] (> 0), default 20 mm.
    diameter : float
        Antenna diameter [m] (> 0), default 2.4 mm (13 G) [U]; regularises the field
        at the shaft.
    frequency_MHz : float
        915 or 2450 [MHz]; selects the tissues' ε_r and σ (physics.md §1.2).
    efficiency : float
        Fraction of ``power`` absorbed by tissue, in (0, 1]; default 0.8 [U] (cable loss
        and reflection). The source deposits ``efficiency * power`` [W].
    sar_map : ndarray, optional
        A non-negative SAR (or power density) field of the grid's shape from the user's
        EM solver; only its shape matters, it is scaled to ``efficiency * power``.
    temperature_dependent : bool
        Follow the fall of ε_r and σ with temperature (module docstring); the bound
        source is then not static.
    name : str
        Name in reports and telemetry.

    Notes
    -----
    The SAR model and its assumptions are described in the module docstring
    (:mod:`ablasim.sources.microwave`).

    Examples
    --------
    >>> src = MicrowaveSource((0, 0.005, 0), (0, 1, 0), 40.0, frequency_MHz=2450)
    >>> src.absorbed_power
    32.0
    """

    tip: tuple[float, float, float] | None
    direction: tuple[float, float, float] | None
    power: float
    active_length: float = DEFAULT_ACTIVE_LENGTH
    diameter: float = DEFAULT_DIAMETER
    frequency_MHz: float = 2450.0
    efficiency: float = DEFAULT_EFFICIENCY
    sar_map: np.ndarray | None = field(default=None, repr=False)
    temperature_dependent: bool = False
    name: str = "microwave"

    def __post_init__(self) -> None:
        label = f"source {self.name!r}"
        power = _number(self.power, f"{label} power", fix="e.g. power_W = 40")
        length = _number(
            self.active_length,
            f"{label} active_length",
            fix="a zero active length radiates nothing; e.g. active_length_mm = 20",
        )
        dia = _number(self.diameter, f"{label} diameter", fix="e.g. diameter_mm = 2.4")
        eff = _number(
            self.efficiency,
            f"{label} efficiency",
            le=1.0,
            fix=f"the fraction of the power reaching tissue, default {DEFAULT_EFFICIENCY}",
        )
        try:
            f = float(self.frequency_MHz)
        except (TypeError, ValueError):
            f = math.nan
        if f not in FREQUENCIES_MHZ:
            raise ScenarioError(
                f"{label} frequency_MHz must be 915 or 2450 (the frequencies with tissue "
                f"dielectric data), got {self.frequency_MHz!r}"
            )
        if self.sar_map is not None:
            object.__setattr__(self, "sar_map", _check_map(self.sar_map, f"{label} sar_map"))
        else:
            for key in ("tip", "direction"):
                if getattr(self, key) is None:
                    raise ScenarioError(
                        f"{label} needs a {key} (or a sar_map); e.g. tip_mm = [0, 5, 0], "
                        "direction = [0, 1, 0]"
                    )
        if self.tip is not None:
            object.__setattr__(
                self, "tip", _vector(self.tip, f"{label} tip", fix="e.g. tip_mm = [0, 5, 0]")
            )
        if self.direction is not None:
            d = np.asarray(
                _vector(
                    self.direction,
                    f"{label} direction",
                    nonzero=True,
                    fix="e.g. direction = [0, 1, 0]",
                )
            )
            object.__setattr__(self, "direction", tuple(float(v) for v in d / np.linalg.norm(d)))
        for key, v in (("power", power), ("active_length", length), ("diameter", dia)):
            object.__setattr__(self, key, v)
        object.__setattr__(self, "efficiency", eff)
        object.__setattr__(self, "frequency_MHz", f)
        object.__setattr__(self, "temperature_dependent", bool(self.temperature_dependent))

    @property
    def absorbed_power(self) -> float:
        """Power deposited in tissue, ``efficiency * power`` [W]."""
        return self.efficiency * self.power

    # -- binding ------------------------------------------------------------------------
    def dielectric(self, model: Model, T=None) -> tuple[np.ndarray, np.ndarray]:
        """Per-voxel ε_r [-] and σ [S/m] at the source's frequency (at ``T`` [°C] when the
        source is temperature dependent and ``T`` is given, else at 37 °C)."""
        ke, ks = _KEYS[self.frequency_MHz]
        eps = model.field(ke)
        sig = model.field(ks)
        bad = ~(np.isfinite(eps) & np.isfinite(sig))
        if np.any(bad):
            tissue = model.structures[int(model.labels[bad][0])].tissue
            raise ScenarioError(
                f"source {self.name!r}: tissue {tissue!r} has no {ke} / {ks}; set them "
                f"under [tissues.{tissue}]"
            )
        if T is not None:
            fe, fs = self._factors(model, T)
            eps = np.maximum(eps * fe, 1.0)
            sig = sig * fs
        return eps, sig

    @staticmethod
    def _factors(model: Model, T) -> tuple[np.ndarray, np.ndarray]:
        fe, fs = mita_factors(T)
        share = np.minimum(model.field("water_fraction") / LIVER_WATER_FRACTION, 1.0)
        return 1.0 - share * (1.0 - fe), 1.0 - share * (1.0 - fs)

    def raw_sar(self, model: Model, T=None) -> np.ndarray:
        """Un-normalised power density of the line-source model on the model's grid
        (with unit radiated power in an unbounded medium, it integrates to about 1 [1/m^3]).
        """
        grid = model.grid
        eps, sig = self.dielectric(model, T)
        alpha = np.ascontiguousarray(attenuation_constant(eps, sig, self.frequency_MHz))
        h = grid.spacing
        pts, wts = _line_source(self.tip, self.direction, self.active_length, h)
        a = 0.5 * self.diameter
        out = np.empty(grid.shape)
        _sar_kernel(alpha, np.asarray(grid.origin), h, pts, wts, a * a, MAX_PATH_SAMPLES, out)
        return out

    def bind(self, model: Model) -> _BoundMicrowave:
        """Check against ``model`` and compute the power density [W/m^3].

        Raises
        ------
        ScenarioError
            If the tip lies outside the grid, the map has the wrong shape, or a tissue
            lacks dielectric data at the frequency.
        """
        grid = model.grid
        label = f"source {self.name!r}"
        if self.tip is not None:
            grid.world_to_index(self.tip, name=f"{label} tip")
        if self.sar_map is not None:
            base = _check_map(self.sar_map, f"{label} sar_map", grid.shape)
            captured = 1.0
        else:
            base = self.raw_sar(model)
            captured = float(base.sum()) * grid.voxel_volume
            if not captured > 0:
                raise ScenarioError(f"{label}: the antenna deposits no power on the grid")
        return _BoundMicrowave(self, model, base, captured)


class _BoundMicrowave:
    """A microwave source bound to a model (see :class:`MicrowaveSource`)."""

    def __init__(self, src: MicrowaveSource, model: Model, base: np.ndarray, captured: float):
        self.name = src.name
        self.static = not src.temperature_dependent
        self.source = src
        self.model = model
        self.power = src.absorbed_power
        #: Fraction of the radiated power the model absorbs on the grid before scaling.
        self.grid_fraction = captured
        self.updates = 0
        self._base = base
        self._factor: np.ndarray | None = None  # σ factor the current q was made with
        self.q = self._scaled(base)

    def _scaled(self, w: np.ndarray) -> np.ndarray:
        total = float(w.sum()) * self.model.grid.voxel_volume
        if not total > 0:  # pragma: no cover - guarded at bind
            raise ScenarioError(f"source {self.name!r}: the SAR vanished everywhere")
        return w * (self.power / total)

    def _update(self, T: np.ndarray) -> None:
        src = self.source
        _, fs = src._factors(self.model, T)
        if self._factor is not None and np.max(np.abs(fs - self._factor)) <= RECOMPUTE_TOLERANCE:
            return
        if self._factor is None and np.max(np.abs(fs - 1.0)) <= RECOMPUTE_TOLERANCE:
            self._factor = fs  # still the 37 °C field
            return
        w = self._base * fs if src.sar_map is not None else src.raw_sar(self.model, T)
        self.q = self._scaled(w)
        self._factor = fs
        self.updates += 1

    def deposit(self, Q: np.ndarray, T: np.ndarray, t: float) -> float:
        """Add the power density [W/m^3] into ``Q``; returns the absorbed power [W]."""
        if not self.static:
            self._update(T)
        Q += self.q
        return self.power

    def held(self) -> HeldTemperature | None:
        return None

    def telemetry(self) -> dict[str, float]:
        """``absorbed_W`` and, if temperature dependent, ``sar_updates`` so far."""
        out = {"absorbed_W": self.power}
        if not self.static:
            out["sar_updates"] = float(self.updates)
        return out


# -- scenario files -----------------------------------------------------------------------
_SCENARIO_KEYS = (
    "kind",
    "name",
    "tip_mm",
    "direction",
    "active_length_mm",
    "diameter_mm",
    "frequency_MHz",
    "power_W",
    "efficiency",
    "sar_map",
    "temperature_dependent",
)


def _load_map(path: Path) -> np.ndarray:
    """A map from .npy (no pickle) or NIfTI (.nii, .nii.gz)."""
    if not path.exists():
        raise FileNotFoundError(f"file {str(path)!r} not found; check the path")
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False).astype(np.float64)
    if path.name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        return np.asarray(nib.load(str(path)).dataobj, dtype=np.float64)
    raise ValueError(f"file {str(path)!r}: unsupported format; use .npy or .nii / .nii.gz")


def from_scenario(
    table: Mapping[str, Any], *, path: str, base_dir: Path, grid_shape=None
) -> MicrowaveSource:
    """A :class:`MicrowaveSource` from a raw ``[[phase.source]]`` table of a scenario.

    Keys: ``tip_mm``, ``direction`` (both required unless ``sar_map`` is given),
    ``active_length_mm`` (default 20), ``diameter_mm`` (default 2.4),
    ``frequency_MHz`` (915 or 2450, default 2450), ``power_W`` (required),
    ``efficiency`` (default 0.8), ``sar_map`` (a .npy or NIfTI file, relative to
    ``base_dir``), ``temperature_dependent`` (default false), ``name``, ``kind``.

    Raises
    ------
    ScenarioError
        Listing every problem, each as ``"{path}.{key}: ..."`` with the value and the fix;
        unknown keys get the closest known one.
    """
    errors: list[str] = []
    if not isinstance(table, Mapping):
        raise ScenarioError(f"{path}: must be a table, got {table!r}")

    def err(key: str, msg: str) -> None:
        errors.append(f"{path}.{key}: {msg}")

    for key in table:
        if key not in _SCENARIO_KEYS:
            err(key, "unknown key" + suggest(str(key), _SCENARIO_KEYS))

    def get(key, conv, default=None, *, fix=""):
        if key not in table:
            return default
        v = table[key]
        try:
            return conv(v)
        except (ScenarioError, TypeError, ValueError) as exc:
            msg = str(exc)
            msg = msg[len("value ") :] if msg.startswith("value ") else msg + fix
            err(key, msg if "got " in msg else f"{msg}, got {v!r}")
            return None

    def num(gt=0.0, le=None, fix=""):
        return lambda v: _number(v, "value", gt=gt, le=le, fix=fix)

    name = get("name", lambda v: v if isinstance(v, str) else _bad("a string"), "microwave")
    tip = get("tip_mm", lambda v: _vector(v, "value", fix="e.g. tip_mm = [0, 5, 0]"))
    direction = get(
        "direction",
        lambda v: _vector(v, "value", nonzero=True, fix="e.g. direction = [0, 1, 0]"),
    )
    length = get(
        "active_length_mm",
        num(fix="a zero active length radiates nothing; e.g. active_length_mm = 20"),
        DEFAULT_ACTIVE_LENGTH * 1e3,
    )
    dia = get("diameter_mm", num(fix="e.g. diameter_mm = 2.4"), DEFAULT_DIAMETER * 1e3)
    power = get("power_W", num(fix="the power must be positive, e.g. power_W = 40"))
    if "power_W" not in table:
        err("power_W", "is required; e.g. power_W = 40")
    eff = get(
        "efficiency",
        num(le=1.0, fix=f"the fraction reaching tissue, default {DEFAULT_EFFICIENCY}"),
        DEFAULT_EFFICIENCY,
    )
    freq = get("frequency_MHz", _frequency, 2450.0)
    tdep = get(
        "temperature_dependent",
        lambda v: v if isinstance(v, bool) else _bad("true or false"),
        False,
    )
    sar = None
    if "sar_map" in table:
        v = table["sar_map"]
        if not isinstance(v, str):
            err("sar_map", f"must be a file name (string), got {v!r}")
        else:
            p = Path(v)
            if not p.is_absolute():
                p = Path(base_dir) / p
            try:
                sar = _check_map(_load_map(p), "map", grid_shape)
            except ScenarioError as exc:
                err("sar_map", f"{v!r}: {exc}")
            except Exception as exc:  # any reader failure is a bad file, said in one line
                err("sar_map", f"cannot read {v!r}: {exc}")
    else:
        for key in ("tip_mm", "direction"):
            if key not in table:
                err(
                    key,
                    "is required (or give sar_map = FILE); e.g. tip_mm = [0, 5, 0], "
                    "direction = [0, 1, 0]",
                )
    if errors:
        raise ScenarioError("\n".join(errors))
    return MicrowaveSource(
        tip=None if tip is None else tuple(x * 1e-3 for x in tip),
        direction=direction,
        power=power,
        active_length=length * 1e-3,
        diameter=dia * 1e-3,
        frequency_MHz=freq,
        efficiency=eff,
        sar_map=sar,
        temperature_dependent=tdep,
        name=name,
    )


def _bad(what: str):
    raise ValueError(f"must be {what}")


def _frequency(v) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or float(v) not in FREQUENCIES_MHZ:
        raise ValueError("frequency_MHz must be 915 or 2450 (the frequencies with tissue data)")
    return float(v)
