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

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ScenarioError
from ..fileio import load_volume
from ..reader import Table, raise_problems
from .base import BoundSource, Needle, Source, param
from .geometry import box_fraction, cylinder_fraction, sphere_fraction
from .registry import register

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["VolumetricSource"]

_SHAPES = ("sphere", "cylinder", "box", "label", "map")
#: The geometry fields each shape needs (field name -> scenario key).
_SHAPE_KEYS = {
    "sphere": {"center": "center_mm", "radius": "radius_mm"},
    "cylinder": {
        "tip": "tip_mm",
        "direction": "direction",
        "active_length": "active_length_mm",
        "diameter": "diameter_mm",
    },
    "box": {"center": "center_mm", "size": "size_mm"},
    "label": {"structure": "label"},
    "map": {"weights": "map"},
}


@register
@dataclass(frozen=True, kw_only=True)
class VolumetricSource(Source):
    """A region heated with a given total power [W] or power density [W/m^3].

    Give exactly one of ``power_W`` and ``power_density_W_m3``, and the geometry of the
    ``shape`` (the constructors :meth:`sphere`, :meth:`cylinder`, :meth:`box`,
    :meth:`label`, :meth:`map` say which). Positions and sizes in metres.
    """

    kind = "volumetric"
    summary = "a given power in a region (validation, or your own heating model)"
    keys_help = (
        "shape = sphere | cylinder | box | label | map; power_W or\n"
        "power_density_W_m3; center_mm + radius_mm (sphere), tip_mm +\n"
        "direction + active_length_mm + diameter_mm (cylinder),\n"
        "center_mm + size_mm (box), label = STRUCTURE, map = FILE (.npy/.nii)"
    )
    extra_keys = ("map",)

    shape: str = param("shape", kind="string", choices=_SHAPES)
    power_W: float | None = param("power_W", None, gt=0, hint="; the power must be positive")
    power_density_W_m3: float | None = param("power_density_W_m3", None, gt=0)
    center: tuple[float, float, float] | None = param("center_mm", None, kind="vector", scale=1e-3)
    radius: float | None = param("radius_mm", None, scale=1e-3, gt=0)
    tip: tuple[float, float, float] | None = param("tip_mm", None, kind="vector", scale=1e-3)
    direction: tuple[float, float, float] | None = param("direction", None, kind="direction")
    active_length: float | None = param(
        "active_length_mm", None, scale=1e-3, gt=0, hint="; a zero active length heats nothing"
    )
    diameter: float | None = param("diameter_mm", None, scale=1e-3, gt=0)
    size: tuple[float, float, float] | None = param("size_mm", None, kind="vector", scale=1e-3)
    structure: str | None = param("label", None, kind="string")
    #: The map's weights (non-negative, the grid's shape).
    weights: np.ndarray | None = field(default=None, repr=False)
    name: str = param("name", "volumetric", kind="string")

    def __post_init__(self) -> None:
        self.check()

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if (self.power_W is None) == (self.power_density_W_m3 is None):
            out.append(("", "give exactly one of power_W (total) or power_density_W_m3"))
        needs = _SHAPE_KEYS[self.shape]
        every = {f: k for keys in _SHAPE_KEYS.values() for f, k in keys.items()}
        for fname, key in every.items():
            given = getattr(self, fname) is not None
            if fname in needs and not given:
                out.append((key, f'is required for shape = "{self.shape}"'))
            elif fname not in needs and given:
                out.append((key, f'is not used by shape = "{self.shape}"; remove it'))
        if self.size is not None and any(v <= 0 for v in self.size):
            out.append(("size_mm", f"must be positive, got {[v * 1e3 for v in self.size]}"))
        if self.weights is not None:
            w = np.asarray(self.weights, dtype=np.float64)
            if w.ndim != 3 or not np.all(np.isfinite(w)) or np.any(w < 0):
                out.append(("map", "the power map must be a finite, non-negative 3D array"))
            elif not np.any(w > 0):
                out.append(("map", "the power map is zero everywhere"))
            else:
                object.__setattr__(self, "weights", w)
        return out

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def sphere(cls, center, radius, **kw) -> VolumetricSource:
        """Uniform heating of a sphere: centre [m], radius [m]."""
        return cls(shape="sphere", center=center, radius=radius, **{"name": "sphere", **kw})

    @classmethod
    def cylinder(cls, tip, direction, length, diameter, **kw) -> VolumetricSource:
        """Uniform heating of a cylinder ending at ``tip`` [m] along ``direction``."""
        return cls(
            shape="cylinder",
            tip=tip,
            direction=direction,
            active_length=length,
            diameter=diameter,
            **{"name": "cylinder", **kw},
        )

    @classmethod
    def box(cls, center, size, **kw) -> VolumetricSource:
        """Uniform heating of an axis-aligned box: centre [m] and edge lengths [m]."""
        size = tuple(np.broadcast_to(np.asarray(size, dtype=float), (3,)))
        return cls(shape="box", center=center, size=size, **{"name": "box", **kw})

    @classmethod
    def label(cls, structure, **kw) -> VolumetricSource:
        """Uniform heating of every voxel of a named structure of the model."""
        return cls(shape="label", structure=str(structure), **{"name": str(structure), **kw})

    @classmethod
    def map(cls, weights, **kw) -> VolumetricSource:
        """Heating in proportion to a non-negative weight array of the grid's shape.

        With ``power_density_W_m3``, the weights are scaled so their maximum gets it.
        """
        return cls(shape="map", weights=weights, **{"name": "map", **kw})

    @classmethod
    def read_extra(cls, table: Table) -> dict[str, Any]:
        path = table.file("map", None)
        if path is None:
            return {}
        try:
            return {"weights": load_volume(path)}
        except ScenarioError as exc:
            table.error("map", str(exc))
            return {}

    # -- what the rest of the package asks ---------------------------------------------
    def needles(self) -> tuple[Needle, ...]:
        if self.shape == "cylinder":
            return (Needle(self.tip, self.direction, self.diameter, self.active_length),)
        return ()

    def location(self, model: Model):
        if self.shape in ("sphere", "box"):
            return self.center
        if self.shape == "cylinder":
            return self.tip
        if self.shape == "label":
            idx = np.argwhere(model.structure_mask(self.structure)).mean(axis=0)
        else:
            idx = np.unravel_index(np.argmax(self.weights), model.grid.shape)
        return tuple(float(v) for v in model.grid.index_to_world(idx))

    def assumptions(self) -> list[str]:
        return [
            "Heat source: a prescribed volumetric power (uniform in its region); it stands "
            "for a device whose own physics (electric field, SAR, impedance roll-off) is "
            "not modelled."
        ]

    # -- binding ------------------------------------------------------------------------
    def weights_on(self, model: Model) -> np.ndarray:
        """Per-voxel weights (partial-volume fraction, mask or map) on the model's grid."""
        grid = model.grid
        if self.shape == "label":
            return model.structure_mask(self.structure).astype(np.float64)
        if self.shape == "map":
            if self.weights.shape != grid.shape:
                raise_problems(
                    [
                        (
                            "map",
                            f"the power map has shape {self.weights.shape} but the grid is "
                            f"{grid.shape}; resample the map to the simulation grid",
                        )
                    ],
                    f"source {self.name!r}",
                )
            return self.weights
        key = "tip_mm" if self.shape == "cylinder" else "center_mm"
        try:
            if self.shape == "sphere":
                return sphere_fraction(grid, self.center, self.radius)
            if self.shape == "cylinder":
                return cylinder_fraction(
                    grid, self.tip, self.direction, self.active_length, 0.5 * self.diameter
                )
            c, half = np.asarray(self.center), 0.5 * np.asarray(self.size)
            return box_fraction(grid, c - half, c + half)
        except ScenarioError:  # the shape misses the grid
            where = self.tip if self.shape == "cylinder" else self.center
            raise_problems(
                [
                    (
                        key,
                        f"the {self.shape} at {[round(v * 1e3, 2) for v in where]} mm lies "
                        f"entirely outside the grid ({grid.bounds_text()}); move it inside "
                        "or enlarge [grid] extent_mm",
                    )
                ],
                f"source {self.name!r}",
            )
            raise  # pragma: no cover - raise_problems raised

    def bind(self, model: Model) -> BoundVolumetric:
        """Compute the power-density field [W/m^3]; error if nothing of it is on the grid."""
        w = self.weights_on(model)
        total = float(w.sum()) * model.grid.voxel_volume
        if total <= 0:
            raise ScenarioError(
                f"source {self.name!r} covers no voxel of the grid; move it inside or refine "
                "the spacing"
            )
        if self.power_W is not None:
            q = w * (self.power_W / total)
        elif self.shape == "map":
            q = w * (self.power_density_W_m3 / w.max())
        else:
            q = w * self.power_density_W_m3
        return BoundVolumetric(self.name, q, float(q.sum()) * model.grid.voxel_volume)


class BoundVolumetric(BoundSource):
    """A :class:`VolumetricSource` on a grid: its fixed power density."""

    static = True

    def __init__(self, name: str, q: np.ndarray, total_power: float):
        self.name = name
        self.q = q
        self.total_power = total_power

    def deposit(self, Q: np.ndarray, T: np.ndarray, t: float) -> float:
        Q += self.q
        return self.total_power
