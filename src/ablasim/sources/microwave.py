"""Microwave ablation antenna (915 MHz or 2.45 GHz): a SAR surrogate built on the
tissues' dielectric attenuation, or a SAR map from the user's own EM solver.

The model (a surrogate, docs/physics.md §3.2 [U]; no single published source)
--------------------------------------------------------------------------
A full model solves Maxwell's equations around the antenna (SAR = σ|E|²/ρ; Ji & Brace
2011, docs/physics.md §3.2). Here the antenna is a **line of point radiators** along its axis,
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
  docs/physics.md §1.2): ``α = ω √(μ₀ε₀ε_r/2 · (√(1 + (σ/ωε₀ε_r)²) − 1))``. Bone (α 21.8 Np/m at
  2.45 GHz, power depth 23 mm) lets the power through much further than muscle (44.8 Np/m,
  11 mm), as seen in the sheep vertebrae of Nijland et al. 2024 (docs/physics.md §3.2).
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
docs/physics.md §1.2). ε_r and σ of every voxel are multiplied by the relative change of the
sigmoidal liver model as implemented in MITA (docs/physics.md §1.2, 2.45 GHz, used at both
frequencies [U]), ``ε_r(T)/ε_r(37 °C)`` and ``σ(T)/σ(37 °C)``, with the change scaled by
the tissue's water fraction relative to liver's 0.72 (drier tissue such as bone and fat
changes less; no bone-specific data, docs/physics.md §1.2 [U]). The SAR is recomputed only
when some voxel's conductivity factor has moved by more than ``RECOMPUTE_TOLERANCE``
since the last computation; the absorbed power stays the set one. For a SAR map the
map is re-weighted voxel by voxel by the conductivity factor and rescaled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numba as nb
import numpy as np

from ..errors import ScenarioError
from ..fileio import load_volume
from ..reader import Table, raise_problems
from ..solvers import jit
from .base import BoundSource, Needle, Source, needle_problems, param
from .registry import register
from .warmup import heat_twice, small_model

if TYPE_CHECKING:
    from ..model import Model

__all__ = [
    "DEFAULT_EFFICIENCY",
    "FREQUENCIES_MHZ",
    "BoundMicrowave",
    "MicrowaveSource",
    "attenuation_constant",
    "mita_factors",
]

#: Supported frequencies [MHz]: the tissue library has ε_r and σ at these two (§1.2).
FREQUENCIES_MHZ = (915.0, 2450.0)
#: Fraction of the generator power absorbed by tissue (cable loss, reflection) [U].
DEFAULT_EFFICIENCY = 0.8
#: Default active (radiating) length [m]: the 2 cm antenna of docs/physics.md §3.2 (915 MHz).
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
    """Attenuation constant α [Np/m] of a lossy dielectric (docs/physics.md §1.2).

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
    ``σ(T) = 2.173 (1 − 1/(1 + e^{5.951 − 0.0697 T}))`` S/m (T in °C; docs/physics.md §1.2,
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


# -- the source ---------------------------------------------------------------------------
@register
@dataclass(frozen=True, kw_only=True, eq=False)
class MicrowaveSource(Source):
    """An interstitial microwave antenna delivering a constant power.

    Parameters
    ----------
    tip : tuple of 3 float, optional
        Distal end of the antenna [m] (world frame). Required unless ``sar_map`` is given.
    direction : tuple of 3 float, optional
        The way the needle points, from the skin towards the tip (any length).
        Required unless ``sar_map`` is given.
    power_W : float
        Generator power [W] (> 0), constant during the phase.
    active_length : float
        Length of the radiating section [m] (> 0), default 20 mm.
    diameter : float
        Antenna diameter [m] (> 0), default 2.4 mm (13 G) [U]; regularises the field
        at the shaft.
    frequency_MHz : float
        915 or 2450 [MHz]; selects the tissues' ε_r and σ (docs/physics.md §1.2).
    efficiency : float
        Fraction of ``power_W`` absorbed by tissue, in (0, 1]; default 0.8 [U] (cable
        loss and reflection). The source deposits ``efficiency * power_W`` [W].
    sar_map : ndarray, optional
        The specific absorption rate [W/kg] of the user's EM solver on the grid (the unit
        EM solvers write): the power density is ``SAR × ρ`` voxel by voxel (ρ the
        tissue's density), scaled to ``efficiency * power_W``.
    temperature_dependent : bool
        Follow the fall of ε_r and σ with temperature (module docstring); the bound
        source is then not static.
    name : str
        Name in reports and telemetry.

    Examples
    --------
    >>> src = MicrowaveSource(tip=(0, 0.005, 0), direction=(0, 1, 0), power_W=40.0)
    >>> src.absorbed_power
    32.0
    """

    kind = "microwave"
    summary = "an interstitial antenna (SAR surrogate) or a SAR map"
    keys_help = (
        "tip_mm, direction, active_length_mm, frequency_MHz = 915 | 2450,\n"
        "power_W, efficiency, temperature_dependent; or\n"
        "sar_map = FILE (SAR in W/kg, .npy/.nii, on the grid)"
    )
    extra_keys = ("sar_map",)

    tip: tuple[float, float, float] | None = param("tip_mm", None, kind="vector", scale=1e-3)
    direction: tuple[float, float, float] | None = param("direction", None, kind="direction")
    power_W: float = param("power_W", gt=0, hint="; e.g. power_W = 40")
    active_length: float = param(
        "active_length_mm",
        DEFAULT_ACTIVE_LENGTH,
        scale=1e-3,
        gt=0,
        hint="; a zero active length radiates nothing, e.g. active_length_mm = 20",
    )
    diameter: float = param("diameter_mm", DEFAULT_DIAMETER, scale=1e-3, gt=0)
    frequency_MHz: float = param(
        "frequency_MHz",
        2450.0,
        choices=FREQUENCIES_MHZ,
        hint=" (the frequencies with tissue dielectric data)",
    )
    efficiency: float = param(
        "efficiency",
        DEFAULT_EFFICIENCY,
        gt=0,
        max=1,
        hint=f"; the fraction of the power reaching tissue, default {DEFAULT_EFFICIENCY}",
    )
    sar_map: np.ndarray | None = field(default=None, repr=False)
    temperature_dependent: bool = param("temperature_dependent", False, kind="bool")
    name: str = param("name", "microwave", kind="string")

    def __post_init__(self) -> None:
        self.check()

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.sar_map is not None:
            bad = _map_problem(self.sar_map)
            if bad:
                out.append(("sar_map", bad))
            else:
                object.__setattr__(self, "sar_map", np.asarray(self.sar_map, dtype=np.float64))
        else:
            for key, v in (("tip_mm", self.tip), ("direction", self.direction)):
                if v is None:
                    out.append(
                        (key, "is required (or give sar_map = FILE); e.g. tip_mm = [0, 5, 0], "
                         "direction = [0, 1, 0]")
                    )  # fmt: skip
        return out

    @classmethod
    def read_extra(cls, table: Table) -> dict[str, Any]:
        path = table.file("sar_map", None)
        if path is None:
            return {}
        try:
            return {"sar_map": load_volume(path)}
        except ScenarioError as exc:
            table.error("sar_map", str(exc))
            return {}

    def needles(self) -> tuple[Needle, ...]:
        if self.tip is None:
            return ()
        return (Needle(self.tip, self.direction, self.diameter, self.active_length),)

    def location(self, model: Model):
        if self.tip is not None:
            return self.tip
        idx = np.unravel_index(np.argmax(self.sar_map), model.grid.shape)
        return tuple(float(v) for v in model.grid.index_to_world(idx))

    def assumptions(self) -> list[str]:
        drying = (
            "ε_r and σ fall as tissue heats and dries (a liver sigmoid scaled by water content)"
            if self.temperature_dependent
            else "no change of the SAR as tissue dries"
        )
        if self.sar_map is not None:
            return [
                "Microwave: the SAR comes from the given map [W/kg] times each voxel's "
                f"density, scaled to the absorbed power; {drying}; no antenna cooling."
            ]
        return [
            "Microwave: the SAR comes from a surrogate antenna model (a line of radiators "
            "with exponential attenuation through each tissue's dielectric properties and "
            "a tear-drop weighting), not a Maxwell solve: no wavelength effects, no "
            f"reflection at tissue interfaces, {drying}, no antenna cooling, so "
            "temperatures next to the antenna are overestimated."
        ]

    @classmethod
    def compile_ahead(cls) -> None:
        model = small_model()
        src = cls(
            tip=(0.0, 0.0, 4e-3),
            direction=(0, 0, 1),
            power_W=10.0,
            active_length=8e-3,
            temperature_dependent=True,
        )
        heat_twice(src.bind(model), model)

    @property
    def absorbed_power(self) -> float:
        """Power deposited in tissue, ``efficiency * power`` [W]."""
        return self.efficiency * self.power_W

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

    def bind(self, model: Model) -> BoundMicrowave:
        """Check against ``model`` and compute the power density [W/m^3].

        Raises
        ------
        ScenarioError
            If the tip lies outside the grid, the map has the wrong shape, or a tissue
            lacks dielectric data at the frequency.
        """
        grid = model.grid
        raise_problems(needle_problems(self.needles(), model), f"source {self.name!r}")
        if self.sar_map is not None:
            if self.sar_map.shape != grid.shape:
                raise_problems(
                    [
                        (
                            "sar_map",
                            f"has shape {self.sar_map.shape} but the grid is {grid.shape}; "
                            "resample the SAR map to the simulation grid",
                        )
                    ],
                    f"source {self.name!r}",
                )
            # W/kg -> W/m^3: bone and fat absorb per kilogram, not per voxel
            base = self.sar_map * model.field("density_kg_m3")
            captured = 1.0
        else:
            base = self.raw_sar(model)
            captured = float(base.sum()) * grid.voxel_volume
            if not captured > 0:
                raise ScenarioError(
                    f"source {self.name!r}: the antenna deposits no power on the grid"
                )
        return BoundMicrowave(self, model, base, captured)


class BoundMicrowave(BoundSource):
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

    def state(self) -> dict:
        """A temperature-dependent SAR: the field in use and the factor it was made at."""
        if self.static:
            return {}
        out = {"updates": self.updates, "q": self.q.copy()}
        if self._factor is not None:
            out["factor"] = self._factor.copy()
        return out

    def restore(self, state: dict) -> None:
        if self.static:
            super().restore(state)
            return
        self.updates = int(state["updates"])
        self.q = np.array(state["q"])
        self._factor = np.array(state["factor"]) if "factor" in state else None

    def telemetry(self) -> dict[str, float]:
        """``set_power_W`` (the generator's setting), ``absorbed_W`` (deposited in
        tissue: ``efficiency`` times it) and, if temperature dependent, ``sar_updates``
        so far."""
        out = {"set_power_W": self.source.power_W, "absorbed_W": self.power}
        if not self.static:
            out["sar_updates"] = float(self.updates)
        return out


def _map_problem(sar) -> str | None:
    """What is wrong with a SAR map, or None."""
    try:
        m = np.asarray(sar, dtype=np.float64)
    except (TypeError, ValueError):
        return f"must be an array of numbers, got {type(sar).__name__}"
    if m.ndim != 3:
        return f"must be a 3D array of the grid's shape, got shape {m.shape}"
    if not np.all(np.isfinite(m)):
        return "holds NaN or infinite values; fix the map file"
    if np.any(m < 0):
        return f"must be non-negative (a SAR), its minimum is {m.min():g}; fix the map file"
    if not np.any(m > 0):
        return "is zero everywhere; it would deposit no power"
    return None
