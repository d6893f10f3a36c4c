"""Simple phantoms for validation cases: one tissue, layers, a sphere in a background."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ScenarioError
from ..grid import Grid
from .painter import Painter, paint_sphere
from .params import check_length, check_point, check_tissue
from .phantom import Phantom, Structure

__all__ = ["slab", "sphere", "uniform"]


def uniform(grid: Grid, *, tissue: str = "muscle") -> Phantom:
    """One tissue everywhere.

    Parameters
    ----------
    grid : Grid
        The voxel grid.
    tissue : str, default ``"muscle"``
        Tissue name; it is also the name of the single structure.
    """
    tissue = check_tissue("tissue", tissue)
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
    tissues = tuple(check_tissue(f"tissues[{i}]", t) for i, t in enumerate(tissues))
    if axis not in (0, 1, 2) or isinstance(axis, bool):
        raise ScenarioError(f"phantom parameter 'axis' must be 0, 1 or 2 (x, y, z), got {axis!r}")
    axis = int(axis)  # a scenario file may say axis = 1.0
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
    p = Painter(grid, structures[0])
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
    radius = check_length("radius", radius)
    c = check_point("center", center)
    tissue = check_tissue("tissue", tissue)
    background = check_tissue("background", background)
    if name is None:
        name = "tumour" if tissue.startswith("tumour") else "sphere"
    name = check_tissue("name", name)
    if name == "background":
        raise ScenarioError("phantom parameter 'name' must not be 'background'; e.g. name='sphere'")
    p = Painter(grid, Structure("background", background))
    p.add(name, tissue)
    paint_sphere(p, name, c, radius)
    return p.finish(
        f"Sphere of {tissue!r} (radius {radius * 1e3:g} mm, centre "
        f"{[round(v * 1e3, 3) for v in c]} mm) in {background!r}."
    )
