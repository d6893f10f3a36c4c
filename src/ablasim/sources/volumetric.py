"""A prescribed power density in a region: sphere, cylinder, box, a labelled structure, or
a map.

The simplest heat source, used by the validation cases and by users who bring their own
heating model. Assumptions: the power is deposited uniformly in the region (or in
proportion to the map), does not depend on temperature and is constant during the phase.
Voxels cut by the region's surface receive their partial-volume share
(:mod:`.geometry`), so the deposited power is exactly the requested one and the field
converges at second order under grid refinement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ScenarioError
from .base import HeldTemperature
from .geometry import box_fraction, cylinder_fraction, sphere_fraction

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["VolumetricSource"]

_SHAPES = ("sphere", "cylinder", "box", "label", "map")


def _finite_positive(value, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ScenarioError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise ScenarioError(f"{what} must be a finite number > 0, got {value!r}")
    return v


@dataclass(frozen=True)
class VolumetricSource:
    """A region heated with a given total power [W] or power density [W/m^3].

    Use the constructors :meth:`sphere`, :meth:`cylinder`, :meth:`box`, :meth:`label`,
    :meth:`map`. Positions and sizes in metres.
    """

    shape: str
    params: dict = field(default_factory=dict)
    power: float | None = None
    power_density: float | None = None
    name: str = "volumetric"

    def __post_init__(self) -> None:
        if self.shape not in _SHAPES:
            raise ScenarioError(f"volumetric shape {self.shape!r} is unknown; use one of {_SHAPES}")
        if (self.power is None) == (self.power_density is None):
            raise ScenarioError(
                f"source {self.name!r}: give exactly one of power_W (total) or power_density_W_m3"
            )
        if self.power is not None:
            _finite_positive(self.power, f"source {self.name!r} power_W")
        if self.power_density is not None:
            _finite_positive(self.power_density, f"source {self.name!r} power_density_W_m3")

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def sphere(cls, center, radius, *, power=None, power_density=None, name="sphere"):
        """Uniform heating of a sphere: centre [m], radius [m]."""
        _finite_positive(radius, f"source {name!r} radius")
        p = {"center": tuple(float(v) for v in center), "radius": float(radius)}
        return cls("sphere", p, power, power_density, name)

    @classmethod
    def cylinder(
        cls, tip, direction, length, diameter, *, power=None, power_density=None, name="cylinder"
    ):
        """Uniform heating of a cylinder ending at ``tip`` [m] along ``direction``."""
        _finite_positive(length, f"source {name!r} active_length")
        _finite_positive(diameter, f"source {name!r} diameter")
        d = np.asarray(direction, dtype=float)
        if d.shape != (3,) or not np.all(np.isfinite(d)) or np.linalg.norm(d) == 0:
            raise ScenarioError(
                f"source {name!r} direction must be three numbers, not all zero, "
                f"got {direction!r}; e.g. direction = [0, 1, 0]"
            )
        p = {
            "tip": tuple(float(v) for v in tip),
            "direction": tuple(d / np.linalg.norm(d)),
            "length": float(length),
            "diameter": float(diameter),
        }
        return cls("cylinder", p, power, power_density, name)

    @classmethod
    def box(cls, center, size, *, power=None, power_density=None, name="box"):
        """Uniform heating of an axis-aligned box: centre [m] and edge lengths [m]."""
        s = np.broadcast_to(np.asarray(size, dtype=float), (3,))
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ScenarioError(f"source {name!r} size must be positive, got {size!r}")
        p = {"center": tuple(float(v) for v in center), "size": tuple(float(v) for v in s)}
        return cls("box", p, power, power_density, name)

    @classmethod
    def label(cls, structure, *, power=None, power_density=None, name=None):
        """Uniform heating of every voxel of a named structure of the model."""
        return cls("label", {"structure": str(structure)}, power, power_density, name or structure)

    @classmethod
    def map(cls, weights, *, power=None, power_density=None, name="map"):
        """Heating in proportion to a non-negative weight array of the grid's shape.

        With ``power_density``, the weights are scaled so their maximum gets that density.
        """
        w = np.asarray(weights, dtype=np.float64)
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ScenarioError(
                f"source {name!r}: the power map must be finite and non-negative "
                f"(min {np.nanmin(w):g}); fix the map file"
            )
        if not np.any(w > 0):
            raise ScenarioError(f"source {name!r}: the power map is zero everywhere")
        return cls("map", {"weights": w}, power, power_density, name)

    # -- binding ------------------------------------------------------------------------
    def weights(self, model: Model) -> np.ndarray:
        """Per-voxel weights (partial-volume fraction, mask or map) on the model's grid."""
        grid = model.grid
        p = self.params
        label = f"source {self.name!r}"
        if self.shape == "sphere":
            return sphere_fraction(grid, p["center"], p["radius"], name=label)
        if self.shape == "cylinder":
            return cylinder_fraction(
                grid, p["tip"], p["direction"], p["length"], 0.5 * p["diameter"], name=label
            )
        if self.shape == "box":
            c = np.asarray(p["center"])
            half = 0.5 * np.asarray(p["size"])
            return box_fraction(grid, c - half, c + half, name=label)
        if self.shape == "label":
            return model.structure_mask(p["structure"]).astype(np.float64)
        w = p["weights"]
        if w.shape != grid.shape:
            raise ScenarioError(
                f"{label}: the power map has shape {w.shape} but the grid is {grid.shape}; "
                "resample the map to the simulation grid"
            )
        return w

    def bind(self, model: Model) -> _BoundVolumetric:
        """Compute the power-density field [W/m^3]; error if nothing of it is on the grid."""
        w = self.weights(model)
        total = float(w.sum()) * model.grid.voxel_volume
        if total <= 0:
            raise ScenarioError(
                f"source {self.name!r} covers no voxel of the grid; move it inside or refine "
                "the spacing"
            )
        if self.power is not None:
            q = w * (self.power / total)
        elif self.shape == "map":
            q = w * (self.power_density / w.max())
        else:
            q = w * self.power_density
        return _BoundVolumetric(self.name, q, float(q.sum()) * model.grid.voxel_volume)


@dataclass
class _BoundVolumetric:
    name: str
    q: np.ndarray
    total_power: float
    static: bool = True

    def deposit(self, Q: np.ndarray, T: np.ndarray, t: float) -> float:
        Q += self.q
        return self.total_power

    def held(self) -> HeldTemperature | None:
        return None
