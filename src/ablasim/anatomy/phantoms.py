"""Procedural voxel phantoms: uniform, slab, sphere, lumbar-like vertebra, femoral shaft.

Every phantom is a :class:`Phantom`: a :class:`~ablasim.grid.Grid`, a ``uint8`` label volume
and the tuple of :class:`Structure` s the labels index. Labels are computed with vectorised
NumPy on the grid's open mesh (``grid.mesh()``), never with Python loops over voxels, so a
128³ vertebra builds in a fraction of a second.

Frames and units
----------------
SI inside (metres). World frame RAS: +x towards the patient's right, +y anterior,
+z superior; arrays indexed ``[x, y, z]``. The phantom origin is the centre of the
vertebral body (vertebra) or the axis of the bone (long bone), so the spinal canal of the
vertebra lies at **negative y**. A grid smaller than the modelled anatomy simply clips it.

Dimensions come from ``shared/reference/anatomy.md`` (tags: [V] read in the cited source,
[V†] read in a transcription of its tables, [C] computed, [U] typical, unverified); each
phantom's docstring names the number and its source, and :attr:`Phantom.description`
repeats the numbers actually used.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import ScenarioError, suggest
from ..grid import Grid

__all__ = [
    "PHANTOMS",
    "VERTEBRA_LEVELS",
    "Phantom",
    "Structure",
    "long_bone",
    "make_phantom",
    "slab",
    "sphere",
    "uniform",
    "vertebra",
]

_MM = 1e-3


# ---------------------------------------------------------------------------------------
# Data types
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Structure:
    """One labelled structure of a phantom.

    Parameters
    ----------
    name : str
        Structure name, unique within a phantom (e.g. ``"spinal_cord"``,
        ``"nerve_root_left"``, ``"vertebral_body"``, ``"tumour"``).
    tissue : str
        Name of its tissue in the tissue library (e.g. ``"nerve"``, ``"cortical_bone"``).
    """

    name: str
    tissue: str


@dataclass(frozen=True, eq=False)
class Phantom:
    """A labelled voxel model: grid, label volume and the structures the labels index.

    Parameters
    ----------
    grid : Grid
        The voxel grid (shape, spacing [m], origin [m]).
    labels : numpy.ndarray of uint8, shape ``grid.shape``
        ``labels[i, j, k]`` is the index into ``structures`` of voxel ``(i, j, k)``.
    structures : tuple of Structure
        The structures, one per label value, names unique.
    description : str
        What the phantom is, the dimensions used and their sources.
    """

    grid: Grid
    labels: np.ndarray
    structures: tuple[Structure, ...]
    description: str = ""
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        structures = tuple(self.structures)
        if not structures or not all(isinstance(s, Structure) for s in structures):
            raise ScenarioError("a phantom needs at least one Structure(name, tissue)")
        names = [s.name for s in structures]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ScenarioError(f"structure names must be unique, repeated: {dupes}")
        if len(structures) > 256:
            raise ScenarioError(f"at most 256 structures fit a uint8 label map, got {len(names)}")
        labels = np.asarray(self.labels)
        if labels.shape != tuple(self.grid.shape):
            raise ScenarioError(
                f"label volume shape {labels.shape} does not match grid shape {self.grid.shape}"
            )
        if labels.dtype != np.uint8:
            if not np.issubdtype(labels.dtype, np.integer):
                raise ScenarioError(f"labels must be integers, got dtype {labels.dtype}")
            if labels.size and (labels.min() < 0 or labels.max() > 255):
                raise ScenarioError("labels must lie in 0..255 to fit uint8")
            labels = labels.astype(np.uint8)
        labels = np.ascontiguousarray(labels)  # C order, as the kernels loop (Model)
        if labels.size and int(labels.max()) >= len(structures):
            raise ScenarioError(
                f"label value {int(labels.max())} has no structure "
                f"(only {len(structures)} structures: labels 0..{len(structures) - 1})"
            )
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "structures", structures)
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(names)})

    # -- look-ups ---------------------------------------------------------------------
    def structure_names(self) -> tuple[str, ...]:
        """Structure names, one per label value."""
        return tuple(s.name for s in self.structures)

    def tissue_names(self) -> tuple[str, ...]:
        """Tissue names, one per label value (``tissue_names()[label]``)."""
        return tuple(s.tissue for s in self.structures)

    def index(self, structure_name: str) -> int:
        """Label value of a structure.

        Raises
        ------
        ScenarioError
            On an unknown name, with the closest known names.
        """
        try:
            return self._index[structure_name]
        except (KeyError, TypeError):
            raise ScenarioError(
                f"structure {structure_name!r} is not in this phantom"
                f"{suggest(str(structure_name), self._index)}; use one of its structure names"
            ) from None

    def mask(self, structure_name: str) -> np.ndarray:
        """Boolean mask (shape ``grid.shape``) of one structure's voxels."""
        return self.labels == self.index(structure_name)

    def volume_ml(self, structure_name: str) -> float:
        """Volume of a structure [ml] (voxel count x voxel volume; 1 ml = 1e-6 m³)."""
        n = int(np.count_nonzero(self.mask(structure_name)))
        return n * self.grid.voxel_volume * 1e6

    def __repr__(self) -> str:
        return (
            f"Phantom(grid={self.grid!r}, structures={list(self.structure_names())}, "
            f"description={self.description[:60]!r}...)"
        )


# ---------------------------------------------------------------------------------------
# Validation helpers: every message names the parameter, quotes the value, gives the fix
# ---------------------------------------------------------------------------------------
def _length(name: str, value, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        need = "a non-negative" if allow_zero else "a positive"
        raise ScenarioError(
            f"phantom parameter {name!r} must be {need} length in metres, got {value!r}; "
            f"e.g. {name}=0.01 for 10 mm"
        )
    if v > 2.0:
        raise ScenarioError(
            f"phantom parameter {name!r} = {value!r} m is longer than a body; lengths are in "
            f"metres, e.g. {name}=0.01 for 10 mm"
        )
    return v


def _number(name: str, value, *, lo: float, hi: float, example: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and lo < v <= hi):
        raise ScenarioError(
            f"phantom parameter {name!r} must be a number in ({lo:g}, {hi:g}], got {value!r}; "
            f"e.g. {name}={example}"
        )
    return v


def _point(name: str, value, n: int = 3) -> np.ndarray:
    try:
        p = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        p = np.array([])
    if p.shape != (n,) or not np.all(np.isfinite(p)):
        zeros = ", ".join(["0.0"] * n)
        raise ScenarioError(
            f"phantom parameter {name!r} must be {n} coordinates in metres, got {value!r}; "
            f"e.g. {name}=({zeros})"
        )
    return p


def _tissue(name: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(
            f'phantom parameter {name!r} must be a tissue name, got {value!r}; e.g. {name}="muscle"'
        )
    return value.strip()


_TUMOUR_KINDS = {"lytic": "tumour_lytic", "blastic": "tumour_blastic"}


def _tumour_spec(tumour) -> tuple[np.ndarray, float, str] | None:
    """Validate ``{"center": (x, y, z) m, "diameter": m, "kind": "lytic"|"blastic"}``."""
    if tumour is None:
        return None
    if not isinstance(tumour, Mapping):
        raise ScenarioError(
            f"phantom parameter 'tumour' must be a mapping, got {tumour!r}; e.g. "
            'tumour={"center": (0.0, 0.004, 0.0), "diameter": 0.018, "kind": "lytic"}'
        )
    allowed = ("center", "diameter", "kind")
    for key in tumour:
        if key not in allowed:
            raise ScenarioError(
                f"tumour has no key {key!r}{suggest(str(key), allowed)}; tumour keys are "
                "center [m], diameter [m] and kind ('lytic' or 'blastic')"
            )
    for key in ("center", "diameter"):
        if key not in tumour:
            raise ScenarioError(
                f"tumour needs {key!r}; e.g. "
                'tumour={"center": (0.0, 0.004, 0.0), "diameter": 0.018, "kind": "lytic"}'
            )
    center = _point("tumour.center", tumour["center"])
    diameter = _length("tumour.diameter", tumour["diameter"])
    kind = tumour.get("kind", "lytic")
    if kind not in _TUMOUR_KINDS:
        raise ScenarioError(
            f"tumour kind {kind!r} is unknown{suggest(str(kind), _TUMOUR_KINDS)}; "
            "use 'lytic' or 'blastic'"
        )
    return center, diameter, _TUMOUR_KINDS[kind]


# ---------------------------------------------------------------------------------------
# Painting: an ordered list of structures, later paint wins unless protected
# ---------------------------------------------------------------------------------------
class _Painter:
    """Builds a label volume structure by structure (private helper).

    Structures are registered in label order; ``paint`` writes a structure into the voxels
    of a mask except those already holding a protected structure. At the end structures
    with no voxel are dropped and the labels renumbered.
    """

    def __init__(self, grid: Grid, first: Structure) -> None:
        self.grid = grid
        self.labels = np.zeros(grid.shape, dtype=np.uint8)
        self.structures: list[Structure] = [first]
        self.ids = {first.name: 0}

    def add(self, name: str, tissue: str) -> int:
        if name not in self.ids:
            self.ids[name] = len(self.structures)
            self.structures.append(Structure(name, tissue))
        return self.ids[name]

    def paint(self, name: str, mask, region=None, protect: Sequence[str] = ()) -> None:
        """Write structure ``name`` where ``mask`` (in the sub-block ``region``) is true."""
        label = self.ids[name]
        target = self.labels if region is None else self.labels[region]
        mask = np.broadcast_to(mask, target.shape)
        if protect:
            keep = np.isin(target, [self.ids[p] for p in protect if p in self.ids])
            mask = mask & ~keep
        target[mask] = label

    def box(self, lo, hi):
        """Index slices of the voxels whose centres lie in the world box [lo, hi], or None."""
        g = self.grid
        o = np.asarray(g.origin)
        i0 = np.maximum(np.ceil((np.asarray(lo) - o) / g.spacing - 1e-9).astype(int), 0)
        i1 = np.minimum(np.floor((np.asarray(hi) - o) / g.spacing + 1e-9).astype(int) + 1, g.shape)
        if np.any(i1 <= i0):
            return None
        return tuple(slice(int(a), int(b)) for a, b in zip(i0, i1, strict=True))

    def sub_mesh(self, region):
        x, y, z = self.grid.axes()
        return (
            x[region[0]][:, None, None],
            y[region[1]][None, :, None],
            z[region[2]][None, None, :],
        )

    def finish(self, description: str) -> Phantom:
        counts = np.bincount(self.labels.ravel(), minlength=len(self.structures))
        keep = [i for i, c in enumerate(counts) if c > 0]
        lut = np.zeros(len(self.structures), dtype=np.uint8)
        lut[keep] = np.arange(len(keep), dtype=np.uint8)
        labels = lut[self.labels]
        structures = tuple(self.structures[i] for i in keep)
        return Phantom(self.grid, labels, structures, description)


def _capsule(mesh, a, b, radius):
    """Voxels within ``radius`` of the segment a-b (broadcast mesh)."""
    x, y, z = mesh
    a = np.asarray(a, float)
    d = np.asarray(b, float) - a
    length2 = float(d @ d)
    px, py, pz = x - a[0], y - a[1], z - a[2]
    t = (px * d[0] + py * d[1] + pz * d[2]) / max(length2, 1e-30)
    t = np.clip(t, 0.0, 1.0)
    dx, dy, dz = px - t * d[0], py - t * d[1], pz - t * d[2]
    return dx * dx + dy * dy + dz * dz <= radius * radius


def _spheroid(mesh, center, axis, half_length, radius):
    """Voxels inside a spheroid with its long axis along ``axis``."""
    x, y, z = mesh
    u = np.asarray(axis, float)
    u = u / np.linalg.norm(u)
    px, py, pz = x - center[0], y - center[1], z - center[2]
    t = px * u[0] + py * u[1] + pz * u[2]
    perp2 = px * px + py * py + pz * pz - t * t
    return (t / half_length) ** 2 + perp2 / radius**2 <= 1.0


def _paint_sphere(p: _Painter, name, center, radius, protect=()) -> int:
    region = p.box(center - radius, center + radius)
    if region is None:
        return 0
    x, y, z = p.sub_mesh(region)
    m = (x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2 <= radius**2
    p.paint(name, m, region, protect)
    return int(np.count_nonzero(p.labels[region] == p.ids[name]))


def _shell(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-voxel surface layer of ``mask`` (6-connected) and the part of it exposed along z.

    A voxel is in the shell if one of its six face neighbours lies outside the mask. The
    grid's outer faces do not count as outside, so a clipped bone gets no cortex at the cut.
    """
    inside_all = np.ones_like(mask)
    exposed_z = np.zeros_like(mask)
    for axis in range(3):
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        nb = np.ones_like(mask)
        nb[tuple(lo)] &= mask[tuple(hi)]  # neighbour at +1
        nb[tuple(hi)] &= mask[tuple(lo)]  # neighbour at -1
        inside_all &= nb
        if axis == 2:
            exposed_z = mask & ~nb
    return mask & ~inside_all, exposed_z


def _check_skin(grid: Grid, axis_low: float, name: str, param: str) -> None:
    """Refuse grids that reach beyond the modelled skin (the library has no 'air')."""
    if axis_low > 0:
        raise ScenarioError(
            f"the grid reaches {axis_low * 1e3:.1f} mm beyond the {name} skin surface, and the "
            f"phantom models no air; reduce the grid extent or increase {param!r}"
        )


# ---------------------------------------------------------------------------------------
# Simple phantoms
# ---------------------------------------------------------------------------------------
def uniform(grid: Grid, *, tissue: str = "muscle") -> Phantom:
    """One tissue everywhere.

    Parameters
    ----------
    grid : Grid
        The voxel grid.
    tissue : str, default ``"muscle"``
        Tissue name; it is also the name of the single structure.
    """
    tissue = _tissue("tissue", tissue)
    labels = np.zeros(grid.shape, dtype=np.uint8)
    return Phantom(grid, labels, (Structure(tissue, tissue),), f"Uniform phantom of {tissue!r}.")


def slab(
    grid: Grid,
    *,
    tissues: Sequence[str] = ("muscle", "cortical_bone"),
    axis: int = 0,
    interfaces: Sequence[float] = (0.0,),
) -> Phantom:
    """Layers of tissue along one axis (two-layer and multi-layer validation cases).

    Layer ``i`` (structure ``"layer<i>"``, tissue ``tissues[i]``) holds the voxels whose
    centre coordinate along ``axis`` lies in ``[interfaces[i-1], interfaces[i])``; layer 0
    starts at minus infinity and the last layer ends at plus infinity. A voxel centre that
    falls exactly on an interface belongs to the higher layer.

    Parameters
    ----------
    grid : Grid
        The voxel grid.
    tissues : sequence of str, default ``("muscle", "cortical_bone")``
        One tissue per layer, ``len(interfaces) + 1`` of them.
    axis : int, default 0
        0, 1 or 2 for x, y, z.
    interfaces : sequence of float, default ``(0.0,)``
        World coordinates of the interfaces [m], strictly increasing.
    """
    if isinstance(tissues, str):
        tissues = (tissues,)
    tissues = tuple(_tissue(f"tissues[{i}]", t) for i, t in enumerate(tissues))
    if axis not in (0, 1, 2) or isinstance(axis, bool):
        raise ScenarioError(f"phantom parameter 'axis' must be 0, 1 or 2 (x, y, z), got {axis!r}")
    try:
        cuts = np.atleast_1d(np.asarray(interfaces, dtype=float))
    except (TypeError, ValueError):
        cuts = np.array([np.nan])
    if cuts.ndim != 1 or not np.all(np.isfinite(cuts)) or np.any(np.diff(cuts) <= 0):
        raise ScenarioError(
            f"phantom parameter 'interfaces' must be strictly increasing coordinates in metres, "
            f"got {interfaces!r}; e.g. interfaces=(0.0,)"
        )
    if len(tissues) != len(cuts) + 1:
        raise ScenarioError(
            f"slab needs one tissue per layer: {len(cuts)} interface(s) make {len(cuts) + 1} "
            f"layers, but tissues has {len(tissues)}: {list(tissues)}; give "
            f"{len(cuts) + 1} tissues or {len(tissues) - 1} interfaces"
        )
    coord = grid.axes()[axis]
    layer = np.searchsorted(cuts, coord, side="right").astype(np.uint8)
    shape = [1, 1, 1]
    shape[axis] = -1
    labels = np.broadcast_to(layer.reshape(shape), grid.shape).copy()
    structures = tuple(Structure(f"layer{i}", t) for i, t in enumerate(tissues))
    desc = (
        f"Slab phantom along axis {'xyz'[axis]}: layers {list(tissues)} split at "
        f"{[round(c * 1e3, 3) for c in cuts]} mm."
    )
    # Drop layers that miss the grid entirely, keeping the layer names.
    p = _Painter(grid, structures[0])
    for s in structures[1:]:
        p.add(s.name, s.tissue)
    p.labels = labels
    return p.finish(desc)


def sphere(
    grid: Grid,
    *,
    radius: float,
    center: Sequence[float] = (0.0, 0.0, 0.0),
    tissue: str = "tumour_lytic",
    background: str = "muscle",
    name: str | None = None,
) -> Phantom:
    """A sphere of one tissue in a uniform background.

    Parameters
    ----------
    grid : Grid
        The voxel grid.
    radius : float
        Sphere radius [m]; a voxel belongs to the sphere if its centre lies within it.
    center : 3 floats, default ``(0, 0, 0)``
        Sphere centre [m].
    tissue : str, default ``"tumour_lytic"``
        Tissue of the sphere.
    background : str, default ``"muscle"``
        Tissue of everything else (structure ``"background"``).
    name : str, optional
        Structure name of the sphere; default ``"tumour"`` for a tumour tissue
        (name starting with ``"tumour"``), ``"sphere"`` otherwise.
    """
    radius = _length("radius", radius)
    c = _point("center", center)
    tissue = _tissue("tissue", tissue)
    background = _tissue("background", background)
    if name is None:
        name = "tumour" if tissue.startswith("tumour") else "sphere"
    name = _tissue("name", name)
    if name == "background":
        raise ScenarioError("phantom parameter 'name' must not be 'background'; e.g. name='sphere'")
    p = _Painter(grid, Structure("background", background))
    p.add(name, tissue)
    _paint_sphere(p, name, c, radius)
    return p.finish(
        f"Sphere of {tissue!r} (radius {radius * 1e3:g} mm, centre "
        f"{[round(v * 1e3, 3) for v in c]} mm) in {background!r}."
    )


# ---------------------------------------------------------------------------------------
# Vertebra
# ---------------------------------------------------------------------------------------
#: Dimension defaults [mm] at T12 and L3 (anatomy.md §1-§3, §5); L1 is derived below.
_T12 = {
    "body_width": 39.2,  # Panjabi 1992 upper end-plate width, read off figure [V†]
    "body_depth": 31.0,  # 30-32 [U]
    "body_height": 22.7,  # posterior height, Panjabi 1991 [V†]
    "disc_height": 6.5,  # T12-L1 5.6 (CT, Bach 2019) to 9.3 (central, Busscher) [V†]
    "pedicle_width": 8.5,  # 8.3 ± 1.8 Kaur 2016 [V]; 8.7 Panjabi [V†]
    "pedicle_height": 17.3,  # 17.3 ± 1.6 cadaver [V]
    "canal_ap": 17.4,  # 16.7 ± 1.2 Kang 2012 [V], 18.1 Panjabi [V†]: mean
    "canal_width": 22.2,  # Panjabi [V†]
    "dural_sac_ap": 12.0,  # ≈ 12 [U]
    "dural_sac_width": 14.0,  # ≈ 14 [U]
    "cord_ap": 7.0,  # ≈ 7 (lumbar enlargement) [U]
    "cord_width": 9.0,  # ≈ 9 [U]
    "ventral_csf": 1.5,  # 1-2 [U]  -> dorsal CSF 12 - 1.5 - 7 = 3.5 (Park 2.5 ± 0.9 [V])
    "anterior_epidural": 1.5,  # 0.5-2 over mid-body [U] -> posterior epidural 3.9 (4.1 [V])
    "root_diameter": 3.5,  # between thoracic 2-3 [U] and L1 3.9 ± 0.8 (Khasawneh) [V]
    "drg_diameter": 4.5,  # DRG width 3.2-6.5 (Silverstein 2015) [V]
    "lamina_thickness": 7.0,  # ≈ 7 [U]
    "spinous_length": 30.0,  # near horizontal [U]
    "spinous_height": 14.0,  # [U]
    "transverse_length": 12.1,  # 12.1 ± 2.3 Kaur 2016 [V]
    "ligamentum_flavum": 3.2,  # L2-3 3.2 ± 0.3 Khasawneh 2023 [V]
    "skin_depth": 45.0,  # canal to skin; thoracic muscle 25-40 [U] + fat + lamina
    "subcutaneous_fat": 10.0,  # 10-30 [U]
    "psoas_width": 10.0,  # psoas origin / crus at T12 [U]
    "psoas_depth": 10.0,  # [U]
    "cauda_ap": 4.5,  # roots bundle in the dorsal sac [U]
    "cauda_width": 10.0,  # [U]
}
_L3 = {
    "body_width": 44.1,  # 44.1 ± 0.9 Panjabi 1992 [V†]; meta 44.8 [V†]
    "body_depth": 35.0,  # 34-36 [U]; 30-35 at L3-L5 (spinebase) [V]
    "body_height": 23.8,  # posterior 23.8 ± 1.1 Panjabi [V†]
    "disc_height": 10.0,  # L3-L4 8.8 ± 1.6 (Shin 2024) [V†] to 12.5 ± 1.8 (MRI) [V]
    "pedicle_width": 10.2,  # 10.15 Panjabi; 10.3 ± 2.6 Zindrick [V†]
    "pedicle_height": 14.5,  # 14-15 [U]
    "canal_ap": 16.6,  # 15.7 ± 1.9 Kang [V], 17.5 Panjabi [V†]: mean
    "canal_width": 23.2,  # 24.3 Panjabi, 22.1 ± 2.7 Griffith [V†]: mean
    "dural_sac_ap": 10.5,  # sac/canal 0.56-0.70 (Pierro 2017) [V] x 16.6 -> 9.3-11.6 [C]
    "dural_sac_width": 15.0,  # [U]
    "cord_ap": 6.5,  # used only where a conus reaches the grid (see conus_tip)
    "cord_width": 8.0,
    "ventral_csf": 1.5,
    "anterior_epidural": 1.5,  # [U]
    "root_diameter": 4.5,  # L3 ≈ 4.5 [U] (L1 3.9 -> S1 5.5, Khasawneh) [V]
    "drg_diameter": 5.5,  # 3.2-6.5 (Silverstein 2015) [V]
    "lamina_thickness": 6.5,  # 5-8 [U]
    "spinous_length": 30.0,  # 25-35 [U]
    "spinous_height": 17.5,  # 15-20 [U]
    "transverse_length": 19.0,  # ≈ 19 Li 2003 [V]
    "ligamentum_flavum": 3.2,  # 3.2 ± 0.3 Khasawneh 2023 [V]
    "skin_depth": 57.0,  # skin -> epidural space 57 ± 12 at L3-L4 (MRI, 227 adults) [V]
    "subcutaneous_fat": 15.0,  # 10-30 [U]
    "psoas_width": 30.0,  # [U]
    "psoas_depth": 25.0,  # [U]
    "cauda_ap": 4.5,  # [U]
    "cauda_width": 10.0,  # [U]
}
#: L1 = T12 + (L3 - T12) / 3 (L1 is one third of the way from T12 to L3), rounded to
#: 0.1 mm, except the cord (a tapering conus, slightly below the T12 7 x 9 [U]) and the
#: root (L1 3.9 ± 0.8, Khasawneh 2023 [V]).
_L1 = {k: round(_T12[k] + (_L3[k] - _T12[k]) / 3.0, 1) for k in _T12}
_L1.update(cord_ap=6.5, cord_width=8.0, root_diameter=3.9)

#: Level -> (dimension defaults [mm], level index counted from T12 along the spine).
VERTEBRA_LEVELS: dict[str, tuple[dict[str, float], int]] = {
    "T12": (_T12, 0),
    "L1": (_L1, 1),
    "L3": (_L3, 3),
}

_VERTEBRA_DIMS = tuple(_T12)  # the dimension keywords, in documentation order


def vertebra(
    grid: Grid,
    *,
    level: str = "L1",
    scale: float = 1.0,
    tumour: Mapping | None = None,
    body_tissue: str = "cancellous_bone",
    conus_tip: float | None = None,
    conus_length: float = 0.015,
    body_width: float | None = None,
    body_depth: float | None = None,
    body_height: float | None = None,
    disc_height: float | None = None,
    pedicle_width: float | None = None,
    pedicle_height: float | None = None,
    canal_ap: float | None = None,
    canal_width: float | None = None,
    dural_sac_ap: float | None = None,
    dural_sac_width: float | None = None,
    cord_ap: float | None = None,
    cord_width: float | None = None,
    ventral_csf: float | None = None,
    anterior_epidural: float | None = None,
    root_diameter: float | None = None,
    drg_diameter: float | None = None,
    lamina_thickness: float | None = None,
    spinous_length: float | None = None,
    spinous_height: float | None = None,
    transverse_length: float | None = None,
    ligamentum_flavum: float | None = None,
    skin_depth: float | None = None,
    subcutaneous_fat: float | None = None,
    psoas_width: float | None = None,
    psoas_depth: float | None = None,
    cauda_ap: float | None = None,
    cauda_width: float | None = None,
) -> Phantom:
    """A thoracolumbar/lumbar vertebra with its canal, cord or cauda equina, roots and discs.

    The origin is the centre of the vertebral body; +x right, +y anterior, +z superior, so
    the canal lies behind the body at negative y. Neighbouring vertebrae repeat the same
    shape every ``body_height + disc_height`` along z (the spine is modelled as periodic),
    so a tall grid shows the discs and the adjacent bodies above and below.

    Structures (label order; structures with no voxel in the grid are left out):

    ``soft_tissue`` (muscle, everything not modelled), ``erector_spinae``, ``psoas``
    (muscle), ``subcutaneous_fat`` (fat), ``skin``; ``epidural_fat`` (fat: epidural space,
    lateral recesses and foramina); ``disc_above``, ``disc_below``, ``adjacent_discs`` (disc);
    ``vertebral_body`` (``body_tissue``), ``cortical_shell`` and ``endplate``
    (cortical_bone, one voxel: the real shell is ≈0.3 mm, thinner than a voxel);
    ``pedicle_left``, ``pedicle_right``, ``posterior_arch`` (cancellous_bone: lamina,
    articular pillars, spinous and transverse processes) inside ``posterior_cortex``
    (cortical_bone, one voxel); ``adjacent_vertebrae`` (cancellous_bone) and
    ``adjacent_cortex`` (cortical_bone) for the neighbouring levels; ``facet_joints``
    (cartilage); ``ligamentum_flavum`` (ligament); ``nerve_root_left``,
    ``nerve_root_right`` (nerve: this level's roots, exiting below its pedicles, each with a
    DRG thickening in the medial foramen), ``nerve_root_above_left/right`` and
    ``nerve_root_below_left/right`` (the neighbouring levels' roots); ``csf`` (the dural
    sac); ``cauda_equina`` (nerve, below the conus, lying dorsally in the sac);
    ``spinal_cord`` (spinal_cord, above the conus tip); ``tumour``.

    Parameters
    ----------
    grid : Grid
        The voxel grid (any size: anatomy outside it is clipped). The grid must not reach
        behind the posterior skin (there is no air tissue).
    level : {"L1", "T12", "L3"}, default ``"L1"``
        Sets the dimension defaults (table below) and where the conus ends. The cord ends
        at about L1 (conus tip mean lower third of L1, range mid-T12 to upper L3; Saifuddin
        et al. 1998, Spine 23(13) [V]), so at **T12** the canal holds the cord, at **L1**
        the conus ends in the lower third of the body with the cauda equina below it, and at
        **L3** the canal holds only the cauda equina (nerve tissue lying dorsally in the
        CSF, Tanaka et al. 2023 [V]) -- unless the grid reaches up to L1.
    scale : float, default 1.0
        Multiplies every dimension (defaults and the ones given), e.g. 1.2 for a large
        patient. Positions given explicitly (``tumour``, ``conus_tip``) are not scaled.
    tumour : mapping, optional
        ``{"center": (x, y, z) [m], "diameter": [m], "kind": "lytic" | "blastic"}``: a
        sphere of tissue ``tumour_lytic`` / ``tumour_blastic`` (structure ``"tumour"``).
        It replaces bone, fat and muscle -- and breaches the posterior wall if placed
        there -- but never the cord, cauda equina, roots, CSF or the discs (discs resist
        tumour invasion [U]); it is clipped to them.
    body_tissue : str, default ``"cancellous_bone"``
        Tissue of the vertebral body's interior (e.g. ``"red_marrow"``).
    conus_tip : float, optional
        z of the conus tip [m]. Default: the centre of the lower third of L1, i.e.
        ``z_L1 - body_height / 3`` with ``z_L1 = (index(level) - 1) x period`` (below at
        T12, in this body at L1, two levels above at L3).
    conus_length : float, default 0.015
        Length over which the cord tapers to the tip (conus medullaris) [m] [U].
    body_width, body_depth, body_height, disc_height, pedicle_width, pedicle_height, \
canal_ap, canal_width, dural_sac_ap, dural_sac_width, cord_ap, cord_width, ventral_csf, \
anterior_epidural, root_diameter, drg_diameter, lamina_thickness, spinous_length, \
spinous_height, transverse_length, ligamentum_flavum, skin_depth, subcutaneous_fat, \
psoas_width, psoas_depth, cauda_ap, cauda_width : float, optional
        Dimensions [m]; ``None`` takes the level's default (mm below).

    Notes
    -----
    Defaults [mm] (anatomy.md; [V] read in source, [V†] from a table transcription,
    [C] computed, [U] typical unverified). L1 is interpolated one third of the way from T12
    to L3 (T12, L1, L2, L3 equally spaced) and rounded to 0.1 mm, except where noted.

    =====================  =====  =====  =====  ==================================================
    parameter                T12     L1     L3  source
    =====================  =====  =====  =====  ==================================================
    body_width              39.2   40.8   44.1  Panjabi 1992 [V†]
    body_depth              31.0   32.3   35.0  T12 30-32 [U]; L3 34-36 [U], 30-35 spinebase [V]
    body_height             22.7   23.1   23.8  posterior height, Panjabi 1991/1992 [V†]
    disc_height              6.5    7.7   10.0  T12-L1 5.6-9.3 [V†]; L3-L4 8.8-12.5 [V†]/[V]
    pedicle_width            8.5    9.1   10.2  Kaur 2016 [V]; Panjabi, Zindrick [V†]
    pedicle_height          17.3   16.4   14.5  cadaver T12 [V]; L3 14-15 [U]
    canal_ap                17.4   17.1   16.6  mean of Kang 2012 [V] and Panjabi [V†]
    canal_width             22.2   22.5   23.2  Panjabi; Griffith 2016 [V†]
    dural_sac_ap            12.0   11.5   10.5  T12 ≈12 [U]; L3 0.56-0.70 x canal (Pierro) [C]
    dural_sac_width         14.0   14.3   15.0  [U]
    cord_ap                  7.0    6.5   (6.5) T12 ≈7 [U]; L1 conus, tapering [U]
    cord_width               9.0    8.0   (8.0) T12 ≈9 [U]
    ventral_csf              1.5    1.5    1.5  1-2 [U]; dorsal CSF = sac - ventral - cord
    anterior_epidural        1.5    1.5    1.5  0.5-2 over mid-body [U]
    root_diameter            3.5    3.9    4.5  L1 3.9 ± 0.8 Khasawneh 2023 [V]; [U]
    drg_diameter             4.5    4.8    5.5  DRG width 3.2-6.5, Silverstein 2015 [V]
    lamina_thickness         7.0    6.8    6.5  T12 ≈7, L3 5-8 [U]
    spinous_length          30.0   30.0   30.0  25-35 [U]
    spinous_height          14.0   15.2   17.5  L3 15-20 [U]
    transverse_length       12.1   14.4   19.0  Kaur 2016 [V]; Li 2003 [V]
    ligamentum_flavum        3.2    3.2    3.2  L2-3 3.2 ± 0.3, Khasawneh 2023 [V]
    skin_depth              45.0   49.0   57.0  canal back wall -> skin; L3-4 57 ± 12 MRI [V]
    subcutaneous_fat        10.0   11.7   15.0  10-30 [U]
    psoas_width/depth      10/10 16.7/15 30/25  [U]
    cauda_ap/width         4.5/10 4.5/10 4.5/10 [U]
    =====================  =====  =====  =====  ==================================================

    Where things are at L1 (default): body y in [-16.2, 16.2] mm, x in [-20.4, 20.4] mm,
    z in [-11.6, 11.6] mm; anterior epidural space y in [-17.7, -16.2]; dural sac
    [-29.2, -17.7]; cord [-25.7, -19.2] (conus tip z = -7.7 mm); posterior canal border
    y = -33.3; spinous tip y ≈ -70. A 48 mm cube centred on the origin therefore cuts the
    canal in half: centre the grid near y = -10 mm (``Grid.from_extent(0.048, h,
    center=(0, -0.010, 0))``) to hold both the body and the canal.

    Derived at L1: dorsal CSF 11.5 - 1.5 - 6.5 = 3.5 mm (T12 1.5-4.5, Holsheimer 1994
    [V]); posterior epidural 17.1 - 1.5 - 11.5 = 4.1 mm (T11-12 4.1, Neurographics [V]);
    posterior wall -> cord 3.0 mm (T12 3-5 [U]); foramen height = period - pedicle height
    = 14.4 mm (normal ≥ 15, spinebase [V]: slightly small because the pedicle is modelled
    at its full height).

    Geometry: the body is a superellipse (exponent 2.4) in x-y with a 6 % waist at
    mid-height and concave end-plates (1.5 mm for the inferior, 0.7 mm for the superior
    end-plate, Wang 2012 [V], read as the end-plate above / below the disc); the pedicles
    are elliptic cylinders along y whose top lies 1 mm below the upper end-plate; the canal
    is a superellipse behind the body with a rectangular lateral recess between the
    pedicles; the dural sac and the cord are ellipses (cord against the ventral CSF
    layer); each root runs from the sac under its pedicle (DRG, a spheroid of length
    2 x ``drg_diameter``, centred directly below the pedicle in the medial foramen,
    Silverstein 2015 [V]) and then laterally, anteriorly and caudally into the psoas. The
    posterior skin is a plane ``skin_depth`` behind the canal (skin 2 mm [U]). Not
    modelled: ribs at T12, aorta and IVC, the posterior longitudinal ligament, epidural
    veins, the sagittal orientation of the lumbar facet joints (modelled as 1.5 mm
    horizontal cartilage gaps at disc level).

    References
    ----------
    .. [1] Panjabi MM et al., Human lumbar vertebrae: quantitative three-dimensional
       anatomy, Spine 17(3):299-306 (1992), DOI 10.1097/00007632-199203000-00010.
    .. [2] Saifuddin A, Burnett SJ, White J, The variation of position of the conus
       medullaris in an adult population, Spine 23(13):1452-1456 (1998).
    .. [3] Silverstein MP et al., Int J Spine Surg 9:3 (2015) (DRG position).
    .. [4] Khasawneh RA et al., Folia Morphol 82:72 (2023) (root diameter, flavum).
    .. [5] Silva MJ et al., Bone 15:409 (1994) (cortical shell ≈0.35 mm at L1).
    """
    key = str(level).strip().upper()
    if key not in VERTEBRA_LEVELS:
        raise ScenarioError(
            f"vertebra level {level!r} is not modelled{suggest(key, VERTEBRA_LEVELS)}; "
            "use 'T12' (cord), 'L1' (conus, default) or 'L3' (cauda equina)"
        )
    defaults, level_index = VERTEBRA_LEVELS[key]
    scale = _number("scale", scale, lo=0.0, hi=5.0, example="1.2")
    given = {
        "body_width": body_width,
        "body_depth": body_depth,
        "body_height": body_height,
        "disc_height": disc_height,
        "pedicle_width": pedicle_width,
        "pedicle_height": pedicle_height,
        "canal_ap": canal_ap,
        "canal_width": canal_width,
        "dural_sac_ap": dural_sac_ap,
        "dural_sac_width": dural_sac_width,
        "cord_ap": cord_ap,
        "cord_width": cord_width,
        "ventral_csf": ventral_csf,
        "anterior_epidural": anterior_epidural,
        "root_diameter": root_diameter,
        "drg_diameter": drg_diameter,
        "lamina_thickness": lamina_thickness,
        "spinous_length": spinous_length,
        "spinous_height": spinous_height,
        "transverse_length": transverse_length,
        "ligamentum_flavum": ligamentum_flavum,
        "skin_depth": skin_depth,
        "subcutaneous_fat": subcutaneous_fat,
        "psoas_width": psoas_width,
        "psoas_depth": psoas_depth,
        "cauda_ap": cauda_ap,
        "cauda_width": cauda_width,
    }
    d = {}
    for k in _VERTEBRA_DIMS:
        v = given[k]
        allow0 = k in ("ventral_csf", "anterior_epidural")
        v = defaults[k] * _MM if v is None else _length(k, v, allow_zero=allow0)
        d[k] = v * scale
    body_tissue = _tissue("body_tissue", body_tissue)
    conus_length = _length("conus_length", conus_length) * scale
    if conus_tip is not None:
        try:
            conus_tip = float(conus_tip)
        except (TypeError, ValueError):
            conus_tip = math.nan
        if not math.isfinite(conus_tip):
            raise ScenarioError(
                f"phantom parameter 'conus_tip' must be a z coordinate in metres, got "
                f"{conus_tip!r}; e.g. conus_tip=-0.008"
            )
    spec = _tumour_spec(tumour)
    _check_vertebra_fits(d)
    return _build_vertebra(
        grid, key, level_index, scale, d, body_tissue, conus_tip, conus_length, spec
    )


def _check_vertebra_fits(d: dict[str, float]) -> None:
    """Nested dimensions must fit inside each other; name both sides and the fix."""
    checks = [
        ("ventral_csf + cord_ap", d["ventral_csf"] + d["cord_ap"], "dural_sac_ap"),
        ("cord_width", d["cord_width"], "dural_sac_width"),
        (
            "anterior_epidural + dural_sac_ap",
            d["anterior_epidural"] + d["dural_sac_ap"],
            "canal_ap",
        ),
        ("dural_sac_width", d["dural_sac_width"], "canal_width"),
        ("cauda_ap", d["cauda_ap"], "dural_sac_ap"),
        ("cauda_width", d["cauda_width"], "dural_sac_width"),
        ("canal_width", d["canal_width"], "body_width"),
    ]
    for what, inner, outer in checks:
        if inner >= d[outer]:
            raise ScenarioError(
                f"vertebra dimensions do not nest: {what} = {inner * 1e3:.1f} mm must be smaller "
                f"than {outer} = {d[outer] * 1e3:.1f} mm; reduce the first or enlarge the second"
            )


def _build_vertebra(
    grid, level, level_index, scale, d, body_tissue, conus_tip, conus_length, tumour
) -> Phantom:
    mm = _MM * scale
    a, b = d["body_width"] / 2, d["body_depth"] / 2
    H = d["body_height"]
    P = H + d["disc_height"]  # period of the spine along z
    Wc, Dc = d["canal_width"], d["canal_ap"]
    Wp, Hp = d["pedicle_width"], d["pedicle_height"]
    y_c = -b - Dc / 2  # canal centre (A-P)
    y_cp = -b - Dc  # posterior border of the canal at the midline
    x_p = Wc / 2 + Wp / 2  # pedicle axis
    z_p = H / 2 - 1.0 * mm - Hp / 2  # pedicle centre: top 1 mm below the upper end-plate
    sac_ap, sac_w = d["dural_sac_ap"], d["dural_sac_width"]
    y_s = -b - d["anterior_epidural"] - sac_ap / 2  # dural sac centre
    y_cord = y_s + sac_ap / 2 - d["ventral_csf"] - d["cord_ap"] / 2
    if conus_tip is None:
        conus_tip = (level_index - 1) * P - H / 3.0
    t_lam = d["lamina_thickness"]
    y_skin = y_cp - d["skin_depth"]
    skin_t = 2.0 * mm
    p_exp = 2.4  # superellipse exponent of the body [U]
    waist = 0.06  # mid-height narrowing of the body [U]
    conc_sup, conc_inf = 0.7 * mm, 1.5 * mm  # end-plate concavity (Wang 2012) [V]

    _check_skin(grid, y_skin - grid.bounds[1][0] - grid.spacing, "posterior", "skin_depth")

    x, y, z = grid.mesh()  # (nx,1,1), (1,ny,1), (1,1,nz)
    zmod = np.mod(z + P / 2, P) - P / 2  # position within the vertebra's period
    kz = np.rint((z - zmod) / P).astype(int)  # period index: 0 = this vertebra
    central = kz == 0

    p = _Painter(grid, Structure("soft_tissue", "muscle"))
    names = [
        ("erector_spinae", "muscle"),
        ("psoas", "muscle"),
        ("subcutaneous_fat", "fat"),
        ("skin", "skin"),
        ("epidural_fat", "fat"),
        ("disc_above", "disc"),
        ("disc_below", "disc"),
        ("adjacent_discs", "disc"),
        ("vertebral_body", body_tissue),
        ("cortical_shell", "cortical_bone"),
        ("endplate", "cortical_bone"),
        ("pedicle_left", "cancellous_bone"),
        ("pedicle_right", "cancellous_bone"),
        ("posterior_arch", "cancellous_bone"),
        ("posterior_cortex", "cortical_bone"),
        ("adjacent_vertebrae", "cancellous_bone"),
        ("adjacent_cortex", "cortical_bone"),
        ("facet_joints", "cartilage"),
        ("ligamentum_flavum", "ligament"),
        ("nerve_root_left", "nerve"),
        ("nerve_root_right", "nerve"),
        ("nerve_root_above_left", "nerve"),
        ("nerve_root_above_right", "nerve"),
        ("nerve_root_below_left", "nerve"),
        ("nerve_root_below_right", "nerve"),
        ("csf", "csf"),
        ("cauda_equina", "nerve"),
        ("spinal_cord", "spinal_cord"),
    ]
    for n, t in names:
        p.add(n, t)
    if tumour is not None:
        p.add("tumour", tumour[2])

    # -- soft tissue: erector spinae, psoas, subcutaneous fat, skin (before bone) -------
    ax_ = np.abs(x)
    y_tp = y_c - 1.0 * mm  # transverse process centre (A-P)
    tp_t = 6.0 * mm  # transverse process thickness (A-P) [U]
    es_half = x_p + Wp / 2 + d["transverse_length"] + 10.0 * mm
    fat_front = y_skin + skin_t + d["subcutaneous_fat"]
    p.paint("erector_spinae", (y < y_tp - tp_t / 2) & (ax_ <= es_half) & (y >= fat_front))
    pw, pd = d["psoas_width"], d["psoas_depth"]
    xs = a + 0.3 * pw
    psoas = ((ax_ - xs) / (pw / 2)) ** 2 + ((y + 0.1 * 2 * b) / (pd / 2)) ** 2 <= 1.0
    p.paint("psoas", psoas)
    p.paint("subcutaneous_fat", (y < fat_front) & (y >= y_skin + skin_t))
    p.paint("skin", y < y_skin + skin_t)

    # -- canal (epidural space), lateral recesses and foramina (fat) --------------------
    pc = 2.5
    canal_post = (np.abs(x / (Wc / 2)) ** pc + np.abs((y - y_c) / (Dc / 2)) ** pc <= 1.0) & (
        y <= y_c
    )
    canal_ant = (ax_ <= Wc / 2) & (y > y_c) & (y < 0)
    canal = canal_post | canal_ant  # 2D (nx, ny, 1)
    foramen = (ax_ >= Wc / 2) & (ax_ <= x_p + Wp / 2) & (y > y_c) & (y < -b / 2)
    p.paint("epidural_fat", canal | foramen)

    # -- bone: bodies (periodic), posterior elements ---------------------------------
    s0 = np.abs(x / a) ** p_exp + np.abs(y / b) ** p_exp  # 2D
    f = 1.0 - waist * (1.0 - np.clip(2.0 * zmod / H, -1.0, 1.0) ** 2)  # 1D
    s1 = np.clip(s0, 0.0, 1.0)
    top = H / 2 - conc_sup * (1.0 - s1)
    bottom = -H / 2 + conc_inf * (1.0 - s1)
    body = (s0 <= f**p_exp) & (zmod <= top) & (zmod >= bottom)

    disc = (s0 <= 1.0) & ~body & (np.abs(zmod) >= H / 2 - max(conc_sup, conc_inf))
    p.paint("disc_above", disc & (z > 0) & (z < P))
    p.paint("disc_below", disc & (z <= 0) & (z > -P))
    p.paint("adjacent_discs", disc & (np.abs(z) >= P))

    pedicle = (((ax_ - x_p) / (Wp / 2)) ** 2 + ((zmod - z_p) / (Hp / 2)) ** 2 <= 1.0) & (
        (y >= y_c) & (y <= -b / 2)
    )
    pill_half = Wp / 2 + 1.5 * mm
    gap = 1.5 * mm  # facet joint space [U]
    y_pf = y_c + 0.25 * Dc  # front of the articular pillar = back of the foramen
    pillar_xy = (np.abs(ax_ - x_p) <= pill_half) & (y >= y_c - 9.0 * mm) & (y <= y_pf)
    pillar = pillar_xy & (np.abs(zmod) < P / 2 - gap / 2)
    facet = pillar_xy & (np.abs(zmod) >= P / 2 - gap / 2)
    outer = (
        np.abs(x / (Wc / 2 + Wp)) ** pc + np.abs((y - y_c) / (Dc / 2 + t_lam)) ** pc <= 1.0
    ) & (y <= y_c)
    z_lam, h_lam = -0.15 * H, 0.9 * H
    in_lamina_z = np.abs(zmod - z_lam) <= h_lam / 2
    lamina = outer & in_lamina_z
    y_lp = y_cp - t_lam  # posterior surface of the lamina at the midline
    z_sp, h_sp = -0.2 * H, d["spinous_height"]
    spinous = (
        (ax_ <= 3.0 * mm)
        & (y <= y_lp + 1.0 * mm)
        & (y >= y_lp - d["spinous_length"])
        & (np.abs(zmod - z_sp) <= h_sp / 2)
    )
    transverse = (
        (ax_ >= x_p)
        & (ax_ <= x_p + Wp / 2 + d["transverse_length"])
        & (np.abs(y - y_tp) <= tp_t / 2)
        & (np.abs(zmod - z_p) <= 0.25 * Hp)
    )
    posterior = (pedicle | pillar | lamina | spinous | transverse) & ~canal
    bone = body | posterior
    shell, exposed_z = _shell(bone)
    interior = bone & ~shell
    post_only = posterior & ~body
    p.paint("vertebral_body", interior & body & central)
    p.paint("cortical_shell", shell & body & central & ~exposed_z)
    p.paint("endplate", shell & body & central & exposed_z)
    ped_only = interior & pedicle & ~body & central
    p.paint("posterior_arch", interior & post_only & central & ~pedicle)
    p.paint("pedicle_left", ped_only & (x < 0))
    p.paint("pedicle_right", ped_only & (x >= 0))
    p.paint("posterior_cortex", shell & post_only & central)
    p.paint("adjacent_vertebrae", interior & ~central)
    p.paint("adjacent_cortex", shell & ~central)
    del shell, exposed_z, interior, post_only, body, posterior, disc

    p.paint("facet_joints", facet & ~canal)
    t_lf = d["ligamentum_flavum"]
    flavum_ring = (
        (np.abs(x / (Wc / 2 + t_lf)) ** pc + np.abs((y - y_c) / (Dc / 2 + t_lf)) ** pc <= 1.0)
        & ~canal_post
        & (y <= y_c)
        & (ax_ <= x_p - Wp / 2)
    )
    p.paint("ligamentum_flavum", flavum_ring & ~in_lamina_z)

    # -- roots with DRG, neighbouring levels' roots -----------------------------------
    bone_names = [n for n, t in names if t.endswith("bone")] + ["vertebral_body"]
    r_root = d["root_diameter"] / 2
    r_drg = d["drg_diameter"] / 2
    ex = abs(x_p) / a
    y_body_at_xp = -b * (1.0 - ex**p_exp) ** (1.0 / p_exp) if ex < 1 else -0.25 * b
    y_drg = 0.5 * (y_body_at_xp + y_pf)
    z_drg = z_p - Hp / 2 - r_drg - 0.5 * mm
    for k, tag in ((0, ""), (1, "above_"), (-1, "below_")):
        for side, sx in (("left", -1.0), ("right", 1.0)):
            zk = k * P
            p0 = np.array([sx * (sac_w / 2 - r_root), y_s, zk + z_p - 0.12 * Hp])
            p1 = np.array([sx * x_p, y_drg, zk + z_drg])
            p2 = p1 + np.array([sx * 9.0, 4.0, -6.0]) * mm
            p3 = p2 + np.array([sx * 12.0, 8.0, -8.0]) * mm
            name = f"nerve_root_{tag}{side}"
            pts = np.stack([p0, p1, p2, p3])
            reach = max(r_root, 2 * r_drg) + grid.spacing
            region = p.box(pts.min(axis=0) - reach, pts.max(axis=0) + reach)
            if region is None:
                continue
            mesh = p.sub_mesh(region)
            m = _capsule(mesh, p0, p1, r_root)
            m |= _capsule(mesh, p1, p2, r_root)
            m |= _capsule(mesh, p2, p3, r_root)
            m |= _spheroid(mesh, p1, p2 - p0, 2 * r_drg, r_drg)
            p.paint(name, m, region, protect=bone_names)

    # -- dural sac, cauda equina, cord ------------------------------------------------
    sac = (x / (sac_w / 2)) ** 2 + ((y - y_s) / (sac_ap / 2)) ** 2 <= 1.0
    p.paint("csf", sac)
    y_ce = y_s - sac_ap / 2 + 0.5 * mm + d["cauda_ap"] / 2
    cauda = (x / (d["cauda_width"] / 2)) ** 2 + ((y - y_ce) / (d["cauda_ap"] / 2)) ** 2 <= 1.0
    p.paint("cauda_equina", cauda & (z < conus_tip + conus_length / 2))
    g2 = np.clip((z - conus_tip) / conus_length, 0.0, 1.0)  # squared radius factor
    cord2 = (x / (d["cord_width"] / 2)) ** 2 + ((y - y_cord) / (d["cord_ap"] / 2)) ** 2
    p.paint("spinal_cord", (cord2 <= g2) & (z > conus_tip))

    # -- tumour -----------------------------------------------------------------------
    desc_t = ""
    if tumour is not None:
        c, diam, tissue = tumour
        protect = [n for n, t in names if t in ("nerve", "spinal_cord", "csf", "disc")]
        n = _paint_sphere(p, "tumour", c, diam / 2, protect)
        if n == 0:
            raise ScenarioError(
                f"tumour at {[round(v * 1e3, 2) for v in c]} mm (diameter {diam * 1e3:g} mm) "
                "has no voxel in the grid outside the neural structures, CSF and discs; "
                "move its center into the grid and into bone"
            )
        desc_t = (
            f" Tumour: {tissue}, diameter {diam * 1e3:g} mm at "
            f"{[round(v * 1e3, 2) for v in c]} mm (clipped to spare neural tissue, CSF, discs)."
        )

    dims = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in d.items())
    cord_txt = {
        "T12": "spinal cord in CSF (conus below, at L1)",
        "L1": "conus medullaris ending in the lower third of the body, cauda equina below",
        "L3": "cauda equina (nerve, dorsal in the sac); no cord",
    }[level]
    desc = (
        f"Procedural {level} vertebra (scale {scale:g}), origin at the centre of the vertebral "
        f"body, RAS (+x right, +y anterior, +z superior), canal at negative y; "
        f"{cord_txt}; conus tip at z = {conus_tip * 1e3:.1f} mm; neighbouring vertebrae "
        f"repeat every {P * 1e3:.1f} mm. Dimensions [mm]: {dims}. Sources: "
        "shared/reference/anatomy.md (Panjabi 1991/1992, Kang 2012, Kaur 2016, Khasawneh 2023, "
        "Silverstein 2015, Saifuddin 1998, Wang 2012, Silva 1994; L1 interpolated from T12 "
        "and L3). Cortical shell and end-plates one voxel thick (real ≈0.3 mm)." + desc_t
    )
    return p.finish(desc)


# ---------------------------------------------------------------------------------------
# Long bone
# ---------------------------------------------------------------------------------------
_LINEA_ASPERA_HALF_WIDTH = 0.0045  # half-width of the posterior ridge [m] [U]


def long_bone(
    grid: Grid,
    *,
    outer_diameter: float = 0.026,
    canal_diameter: float = 0.0105,
    nerve_diameter: float = 0.008,
    nerve_center: Sequence[float] = (0.0, -0.025),
    linea_aspera: float = 0.003,
    thigh_diameter: float = 0.16,
    subcutaneous_fat: float = 0.015,
    skin_thickness: float = 0.002,
    tumour: Mapping | None = None,
) -> Phantom:
    """A femoral shaft along z with its medullary canal and a sciatic-like nerve.

    The origin lies on the axis of the shaft (+x right = lateral for a right femur,
    +y anterior, +z superior); the shaft, the nerve and the thigh are straight cylinders
    along z.

    Structures: ``muscle`` (muscle, everything not modelled), ``subcutaneous_fat`` (fat),
    ``skin``, ``cortex`` (cortical_bone), ``medullary_canal`` (yellow_marrow),
    ``sciatic_nerve`` (nerve), ``tumour`` (if given). Empty structures are left out.

    Parameters
    ----------
    grid : Grid
        The voxel grid; it must not reach beyond the skin (there is no air tissue).
    outer_diameter : float, default 0.026
        Mid-shaft outer diameter [m]: men 26.5, women 25.6 mm (Karakaş & Harma 2008,
        Diagn Interv Radiol 14:29) [V].
    canal_diameter : float, default 0.0105
        Medullary canal at the isthmus [m]: 10.5 ± 1.5 mm (CT, 204 patients,
        doi 10.1155/2015/459612) [V]. Cortex (26 - 10.5)/2 ≈ 7.8 mm [C].
    nerve_diameter : float, default 0.008
        Sciatic nerve diameter [m] (circular): area 50 mm², between 53 ± 3 mm² at the
        gluteal fold and 44 mm² mid-thigh (Chen 2018, J Med Ultrasound) [V]; the real nerve
        is flatter (A-P 5.5 ± 1.2 mm, Rusu 2020 [V]; width 12-18 [U]).
    nerve_center : 2 floats, default ``(0.0, -0.025)``
        (x, y) of the nerve axis [m]: posterior to the shaft in the posterior compartment,
        8 mm of muscle between bone and nerve [U] (anatomy.md gives positions only at
        the hip).
    linea_aspera : float, default 0.003
        Height of the posterior cortical ridge [m] (posterior cortex thickest, Proc IMechE
        H, doi 10.1243/0954411991534889 [V]; height [U]); 0 for a round shaft.
    thigh_diameter : float, default 0.16
        Diameter of the thigh (skin surface) [m], centred on the shaft [U].
    subcutaneous_fat : float, default 0.015
        Subcutaneous fat thickness [m] [U].
    skin_thickness : float, default 0.002
        Skin thickness [m] [U].
    tumour : mapping, optional
        ``{"center": (x, y, z) [m], "diameter": [m], "kind": "lytic" | "blastic"}``;
        replaces bone, marrow, muscle and fat but never the nerve (clipped).
    """
    r_out = _length("outer_diameter", outer_diameter) / 2
    r_can = _length("canal_diameter", canal_diameter) / 2
    r_n = _length("nerve_diameter", nerve_diameter) / 2
    nc = _point("nerve_center", nerve_center, n=2)
    h_la = _length("linea_aspera", linea_aspera, allow_zero=True)
    r_thigh = _length("thigh_diameter", thigh_diameter) / 2
    fat = _length("subcutaneous_fat", subcutaneous_fat, allow_zero=True)
    skin = _length("skin_thickness", skin_thickness)
    spec = _tumour_spec(tumour)
    if r_can >= r_out:
        raise ScenarioError(
            f"canal_diameter {2 * r_can * 1e3:g} mm must be smaller than outer_diameter "
            f"{2 * r_out * 1e3:g} mm; e.g. canal_diameter=0.0105, outer_diameter=0.026"
        )
    if r_thigh <= r_out + h_la + fat + skin:
        raise ScenarioError(
            f"thigh_diameter {2 * r_thigh * 1e3:g} mm leaves no room for bone, fat and skin; "
            "e.g. thigh_diameter=0.16"
        )
    x, y, _ = grid.mesh()
    # Refuse a grid whose face centres reach beyond the skin (its corners may, harmlessly).
    reach = max(abs(v) for v in (*grid.bounds[0], *grid.bounds[1])) - r_thigh
    _check_skin(grid, reach - grid.spacing, "thigh", "thigh_diameter")

    p = _Painter(grid, Structure("muscle", "muscle"))
    for n, t in [
        ("subcutaneous_fat", "fat"),
        ("skin", "skin"),
        ("cortex", "cortical_bone"),
        ("medullary_canal", "yellow_marrow"),
        ("sciatic_nerve", "nerve"),
    ]:
        p.add(n, t)
    if spec is not None:
        p.add("tumour", spec[2])
    rho2 = x**2 + y**2  # 2D
    p.paint("subcutaneous_fat", rho2 >= (r_thigh - skin - fat) ** 2)
    p.paint("skin", rho2 >= (r_thigh - skin) ** 2)
    bone = rho2 <= r_out**2
    if h_la > 0:
        bone |= (x / _LINEA_ASPERA_HALF_WIDTH) ** 2 + ((y + r_out) / h_la) ** 2 <= 1.0
    p.paint("cortex", bone)
    p.paint("medullary_canal", rho2 <= r_can**2)
    p.paint("sciatic_nerve", (x - nc[0]) ** 2 + (y - nc[1]) ** 2 <= r_n**2)
    desc_t = ""
    if spec is not None:
        c, diam, tissue = spec
        if _paint_sphere(p, "tumour", c, diam / 2, protect=["sciatic_nerve"]) == 0:
            raise ScenarioError(
                f"tumour at {[round(v * 1e3, 2) for v in c]} mm has no voxel in the grid; "
                "move its center into the grid"
            )
        desc_t = f" Tumour: {tissue}, diameter {diam * 1e3:g} mm at {c * 1e3} mm."
    desc = (
        f"Femoral shaft along z: outer diameter {2 * r_out * 1e3:g} mm (Karakaş & Harma 2008), "
        f"medullary canal {2 * r_can * 1e3:g} mm (doi 10.1155/2015/459612), linea aspera "
        f"{h_la * 1e3:g} mm; sciatic nerve {2 * r_n * 1e3:g} mm at (x, y) = "
        f"{[round(v * 1e3, 2) for v in nc]} mm (area from Chen 2018); thigh "
        f"{2 * r_thigh * 1e3:g} mm, fat {fat * 1e3:g} mm, skin {skin * 1e3:g} mm [U]. "
        "Sources: shared/reference/anatomy.md §6." + desc_t
    )
    return p.finish(desc)


# ---------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------
PHANTOMS: dict[str, Callable[..., Phantom]] = {
    "vertebra": vertebra,
    "long_bone": long_bone,
    "uniform": uniform,
    "slab": slab,
    "sphere": sphere,
}


def make_phantom(name: str, grid: Grid, **params) -> Phantom:
    """Build a phantom by name, checking every parameter first.

    Parameters
    ----------
    name : str
        One of :data:`PHANTOMS`: ``"vertebra"``, ``"long_bone"``, ``"uniform"``,
        ``"slab"``, ``"sphere"``.
    grid : Grid
        The voxel grid.
    **params
        Keyword parameters of the phantom function (SI metres).

    Raises
    ------
    ScenarioError
        On an unknown phantom or parameter (with the closest names), a missing required
        parameter, or an invalid value (naming the parameter, the value and the fix).

    Examples
    --------
    >>> from ablasim.grid import Grid
    >>> ph = make_phantom("sphere", Grid.from_extent(0.02, 0.001), radius=0.005)
    >>> ph.structure_names()
    ('background', 'tumour')
    """
    if not isinstance(grid, Grid):
        raise ScenarioError(f"make_phantom needs a Grid, got {type(grid).__name__}")
    try:
        fn = PHANTOMS[name]
    except (KeyError, TypeError):
        raise ScenarioError(
            f"unknown phantom {name!r}{suggest(str(name), PHANTOMS)}; "
            f"choose one of {sorted(PHANTOMS)}"
        ) from None
    sig = inspect.signature(fn)
    allowed = [n for n, prm in sig.parameters.items() if prm.kind is prm.KEYWORD_ONLY]
    for key, value in params.items():
        if key not in allowed:
            raise ScenarioError(
                f"phantom {name!r} has no parameter {key!r} (given {value!r})"
                f"{suggest(key, allowed)}; its parameters are: {', '.join(allowed)}"
            )
    missing = [
        n
        for n, prm in sig.parameters.items()
        if prm.kind is prm.KEYWORD_ONLY and prm.default is prm.empty and n not in params
    ]
    if missing:
        raise ScenarioError(
            f"phantom {name!r} needs parameter(s) {', '.join(map(repr, missing))}; "
            f"e.g. make_phantom({name!r}, grid, {missing[0]}=0.005)"
        )
    return fn(grid, **params)
