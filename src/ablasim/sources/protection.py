"""Protective layers: CO₂ insulation and (warm) saline hydrodissection between the target
and a nerve structure (docs/physics.md §3.5).

During cryoablation (and RF) near the spine the operator injects CO₂ gas or saline into
the space between the lesion and the cord or a nerve root: anterior epidural CO₂ during
spine cryoablation (Jpn J Radiol 2022;40:103), hydrodissection with an epidural
thermocouple (PubMed 33629134); a wider gap kept a canine cord warmer (PMC12925502).

The model: a layer of the fluid replaces soft tissue in the space it fills.

* **Where.** The layer is every voxel of the ``fills`` structures whose centre lies within
  ``thickness_mm`` of the centre of a voxel of the ``near`` structures (Euclidean distance
  on the grid's spacing, :func:`scipy.ndimage.distance_transform_edt`); with
  ``facing_mm = p``, only those on the side of ``near`` facing ``p``:
  ``(x - c) · (p - c) > 0`` with ``c`` the centroid of the ``near`` voxels. For the cord
  and a probe in the vertebral body this is the anterior epidural space.
* **What it may replace.** Only soft tissue (:data:`REPLACEABLE_TISSUES`: fat, muscle,
  ligament, skin): never bone, cartilage, disc, a nerve, the cord, CSF or tumour.
* **Anatomy does not move.** The fluid does not push the dural sac or the root away: the
  layer is as thick as the soft tissue it fills allows (the phantom's anterior epidural
  fat is 1.5-2.5 mm deep), whatever ``thickness_mm`` asks beyond that. A real injection
  widens the gap; the model's protection is then a lower bound on that account.
* **No flow, no leak.** The fluid stays where it is placed, for the rest of the run
  (``lasting``: later phases keep the layer); gas convection and leakage along the canal
  are not modelled. Write it once, in the first phase it applies to: written again in a
  later phase, it would be placed again, at ``temperature_C``, when that phase starts.
* **CO₂'s heat capacity is an effective one.** The gas conducts with its real k
  (0.0166 W/m/K, ~30 x less than tissue) but its ρc is raised from ~1.5 kJ/m³/K to
  50 kJ/m³/K (library ``co2``: effective density): at the real value an explicit step at
  0.5 mm would need dt ≈ 4 ms. At 50 kJ/m³/K the layer still stores ~1.5 % of what
  tissue stores per kelvin, and its own response time over 3 mm (ρc L² / k ≈ 30 s) is
  short against the minutes an iceball takes; ``tests/test_protection.py`` shows that a
  4 x smaller value changes the temperature behind the layer by < 0.5 K.
* **Circulating saline** (``circulating = true``) is held exactly at ``temperature_C``
  for the rest of the run, as a continuously perfused warm fluid would at best be: an
  upper bound on its protection. Still saline starts at ``temperature_C`` and then
  conducts and stores heat as water, freezing like it (from −0.5 °C).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import ndimage

from ..errors import ScenarioError, suggest
from ..reader import Table, raise_problems
from .base import BoundSource, HeldTemperature, MaterialChange, Source, param
from .registry import register

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["DEFAULT_TEMPERATURE_C", "FLUIDS", "REPLACEABLE_TISSUES", "ProtectionSource"]

#: Fluid -> the library tissue its layer is made of.
FLUIDS = {"co2": "co2", "saline": "saline"}
#: The fluid's temperature when placed, unless ``temperature_C`` says otherwise [°C]:
#: body temperature for both. CO₂ leaves the line at room temperature, but with its
#: real heat capacity (~1.5 kJ/m³/K) it takes the surrounding tissue's temperature
#: within a fraction of a second; started at 20 °C with the effective 50 kJ/m³/K it
#: would instead read 20 °C for tens of seconds, an artefact. Saline: give a warmed or
#: room-temperature fluid's temperature.
DEFAULT_TEMPERATURE_C = {"co2": 37.0, "saline": 37.0}
#: The tissues a protective layer may replace: soft tissue around the canal and the
#: roots. Bone, cartilage, disc, nerve, cord, CSF, tumour, blood and organs may not.
REPLACEABLE_TISSUES = ("fat", "muscle", "ligament", "skin")


def _names(value: Any) -> tuple[str, ...] | None:
    """A structure name or a list of them as a tuple; None if it is neither."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    return None


@register
@dataclass(frozen=True, kw_only=True)
class ProtectionSource(Source):
    """A layer of CO₂ or saline between the target and a nerve structure.

    Parameters
    ----------
    fills : str or list of str
        The structures (or tissues) the layer replaces: soft tissue only
        (:data:`REPLACEABLE_TISSUES`), e.g. ``"epidural_fat"``.
    near : str or list of str
        The structures it protects, e.g. ``"spinal_cord"``: the layer is the part of
        ``fills`` within ``thickness`` of them.
    fluid : str
        ``"co2"`` or ``"saline"``.
    thickness : float
        The largest distance from ``near`` (voxel centre to voxel centre) [m].
    facing : tuple of float, optional
        A point [m] (e.g. the probe's tip): only the side of ``near`` facing it.
    temperature_C : float, optional
        The fluid's temperature when placed [°C]; default :data:`DEFAULT_TEMPERATURE_C`.
    circulating : bool
        Saline only: the layer is held at ``temperature_C`` for the rest of the run.
    """

    kind = "protection"
    summary = "a CO2 or saline layer between the target and a nerve (insulation)"
    keys_help = (
        'fluid = "co2" | "saline"; fills = STRUCTURE(S) (soft tissue the\n'
        "layer replaces); near = STRUCTURE(S) (the nerve it protects);\n"
        "thickness_mm; facing_mm = [x, y, z] (only the side facing it);\n"
        "temperature_C (default 37); circulating = true (saline only)"
    )
    extra_keys = ("fills", "near")

    fluid: str = param("fluid", kind="string", choices=tuple(FLUIDS))
    fills: tuple[str, ...] = field(default=())
    near: tuple[str, ...] = field(default=())
    thickness: float = param(
        "thickness_mm", scale=1e-3, gt=0, hint="; e.g. thickness_mm = 3 (distance from near)"
    )
    facing: tuple[float, float, float] | None = param("facing_mm", None, kind="vector", scale=1e-3)
    temperature_C: float | None = param(
        "temperature_C", None, min=0, max=50, hint="; the fluid's temperature when placed"
    )
    circulating: bool = param("circulating", False, kind="bool")
    name: str = param("name", "protection", kind="string")

    def __post_init__(self) -> None:
        self.check()

    def problems(self) -> list[tuple[str, str]]:
        out = []
        for key in ("fills", "near"):
            names = _names(getattr(self, key))
            if names is None:
                out.append(
                    (key, f"must be a structure name or a list of them, got "
                     f"{getattr(self, key)!r}; e.g. {key} = \"epidural_fat\"")
                )  # fmt: skip
            else:
                object.__setattr__(self, key, names)
        if not out and set(self.fills) & set(self.near):
            both = sorted(set(self.fills) & set(self.near))
            out.append(("near", f"{both} is in both fills and near; the layer fills one "
                        "structure next to another"))  # fmt: skip
        if self.circulating and self.fluid != "saline":
            out.append(
                ("circulating", f'only a liquid circulates: fluid = "{self.fluid}" cannot; '
                 'use fluid = "saline" or remove circulating')
            )  # fmt: skip
        return out

    @classmethod
    def read_extra(cls, table: Table) -> dict[str, Any]:
        out = {}
        for key in ("fills", "near"):
            value = table.raw(key)
            if value is None:
                continue  # a missing key: the table has the problem
            names = _names(value)
            if names is None:
                table.error(
                    key, f"must be a structure name or a list of them, got {value!r}; e.g. "
                    f'{key} = "epidural_fat"'
                )  # fmt: skip
            else:
                out[key] = names
        return out

    # -- the layer on a model -----------------------------------------------------------
    @property
    def start_temperature_C(self) -> float:
        """The fluid's temperature when placed [°C]."""
        if self.temperature_C is not None:
            return float(self.temperature_C)
        return DEFAULT_TEMPERATURE_C[self.fluid]

    def _labels(self, model: Model, key: str) -> tuple[list[int], list[tuple[str, str]]]:
        """Label ids of the structures ``key`` names (by structure name, else by tissue)."""
        ids, bad = [], []
        names = model.structure_names
        for n in getattr(self, key):
            hit = [i for i, s in enumerate(model.structures) if s.name == n]
            hit = hit or [i for i, s in enumerate(model.structures) if s.tissue == n]
            if not hit:
                hint = suggest(n, names)
                if not hint.startswith("; known:"):  # a close name: list them all too
                    hint += f"; its structures: {', '.join(names)}"
                bad.append((key, f"no structure {n!r} in the model{hint}"))
            ids.extend(hit)
        return ids, bad

    def layer(self, model: Model) -> np.ndarray:
        """The layer's voxels: a boolean mask of the grid's shape (ScenarioError naming
        the key when the input does not fit the model or the layer is empty)."""
        owner = f"source {self.name!r}"
        fill_ids, bad = self._labels(model, "fills")
        near_ids, bad_near = self._labels(model, "near")
        raise_problems(bad + bad_near, owner)
        wrong = [
            model.structures[i] for i in fill_ids
            if model.structures[i].tissue not in REPLACEABLE_TISSUES
        ]  # fmt: skip
        if wrong:
            what = ", ".join(f"{s.name} ({s.tissue})" for s in wrong)
            raise_problems(
                [("fills", f"{what}: a protective layer must not replace bone or a nerve "
                  f"(nor cartilage, disc, CSF or tumour); it may replace "
                  f"{', '.join(REPLACEABLE_TISSUES)}")],
                owner,
            )  # fmt: skip
        fills = np.isin(model.labels, fill_ids)
        near = np.isin(model.labels, near_ids)
        if not near.any():
            raise_problems([("near", f"{list(self.near)} has no voxel on the grid")], owner)
        grid = model.grid
        dist = ndimage.distance_transform_edt(~near, sampling=grid.spacing)
        mask = fills & (dist <= self.thickness * (1 + 1e-9))
        why = f"within thickness_mm = {self.thickness * 1e3:g} of {list(self.near)}"
        if self.facing is not None:
            idx = np.argwhere(near)
            c = np.asarray(grid.index_to_world(idx.mean(axis=0)), dtype=float)
            p = np.asarray(self.facing, dtype=float)
            x, y, z = grid.mesh()  # (nx,1,1), (1,ny,1), (1,1,nz)
            d = p - c
            mask &= (x - c[0]) * d[0] + (y - c[1]) * d[1] + (z - c[2]) * d[2] > 0
            why += f" on the side facing facing_mm = {[round(v * 1e3, 2) for v in p]}"
        if not mask.any():
            raise_problems(
                [("thickness_mm", f"the layer is empty: no voxel of {list(self.fills)} lies "
                  f"{why}; thicken it, or fill the soft tissue next to {list(self.near)}")],
                owner,
            )  # fmt: skip
        return mask

    # -- what the rest of the package asks ---------------------------------------------
    def describe(self) -> dict[str, Any]:
        out = super().describe()
        return {**out, "fills": list(self.fills), "near": list(self.near)}

    def location(self, model: Model):
        """The layer's centroid [m] (None if it does not fit the model). Pictures centre
        on the first source with a location: list the probe before the layer."""
        try:
            mask = self.layer(model)
        except ScenarioError:
            return None
        return tuple(float(v) for v in model.grid.index_to_world(np.argwhere(mask).mean(axis=0)))

    def assumptions(self) -> list[str]:
        out = [
            f"Protective layer {self.name!r}: {self.fluid} replaces the soft tissue it fills "
            "within the given thickness of the protected structure; the anatomy does not "
            "move (the layer is no thicker than that tissue), and the fluid neither flows "
            "nor leaks."
        ]
        if self.fluid == "co2":
            out.append(
                "CO2 conducts with its real conductivity (0.0166 W/m/K) but an effective "
                "heat capacity of 50 kJ/m^3/K instead of ~1.5 (the explicit step's limit); "
                "a 4x smaller value changes the temperature behind a 3 mm layer by < 0.5 K."
            )
        if self.circulating:
            out.append(
                f"Circulating saline is held at exactly {self.start_temperature_C:g} °C for "
                "the rest of the run: an upper bound on the protection of a perfused fluid."
            )
        return out

    # -- binding ------------------------------------------------------------------------
    def bind(self, model: Model) -> BoundProtection:
        """The layer on the model: its voxels, the material and (circulating) the hold."""
        mask = self.layer(model)
        index = np.flatnonzero(mask).astype(np.int64)
        return BoundProtection(self, index, model.grid.voxel_volume)


class BoundProtection(BoundSource):
    """A :class:`ProtectionSource` on a model: the layer's voxels (flat indices)."""

    lasting = True

    def __init__(self, src: ProtectionSource, index: np.ndarray, voxel_volume: float):
        self.name = src.name
        self.src = src
        self.index = index
        self.volume_ml = float(index.size * voxel_volume * 1e6)
        t0 = src.start_temperature_C
        self.change = MaterialChange(index, FLUIDS[src.fluid], src.name, t0)
        self.hold = HeldTemperature(index, np.full(index.size, t0)) if src.circulating else None

    def material(self) -> MaterialChange:
        return self.change

    def held(self, t: float) -> HeldTemperature | None:
        return self.hold
