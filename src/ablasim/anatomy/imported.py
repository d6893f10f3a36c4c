"""Import a segmentation (label map) as a phantom: each label value mapped to a tissue of
the library, the labels put on the isotropic, axis-aligned simulation grid.

A planner segments a patient's CT or MR in 3D Slicer (or ITK-SNAP, TotalSegmentator, ...)
and saves the result as a label map: an integer volume in which each value marks one
structure. :func:`~ablasim.anatomy.readers.read_label_image` reads the file and its
voxel-to-world affine (scanner RAS, metres); :func:`load_label_map` maps the labels to
tissues and returns a :class:`~ablasim.anatomy.Phantom`.

Resampling
----------
An image whose voxels are isotropic and whose axes are parallel to the RAS axes (possibly
flipped or permuted) is used on its own grid, only reoriented so that array indices grow
along +x, +y, +z: no value is changed. Anything else (anisotropic or oblique voxels, an
explicit ``spacing`` or ``grid``) is resampled by **nearest label**: each target voxel centre
is mapped through the inverse affine, rounded to the nearest image voxel, and takes its label.
Labels are categories, so no interpolation is ever done between them.

Target voxels whose centres fall outside the image take, by default, the label of the
nearest image voxel on the image border (edge replication: a bone or the spinal cord that
leaves the field of view continues straight on, and background stays background), or a label
value given as ``outside=``. Either way the returned notes say how many voxels that concerns.

Examples
--------
>>> phantom, notes = load_label_map(  # doctest: +SKIP
...     "seg.nii.gz", {0: "muscle", 1: "cortical_bone", 5: {"tissue": "nerve", "name": "L4_root"}}
... )
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..errors import ScenarioError, suggest
from ..grid import Grid
from .phantom import Phantom, Structure
from .readers import read_label_image

__all__ = ["load_label_map"]

#: Relative tolerance of "axis-aligned" and "isotropic" (NIfTI stores the sform as float32).
_GEOM_RTOL = 1e-5
#: Voxels handled per chunk when resampling or relabelling (bounds the temporaries).
_CHUNK_VOXELS = 1 << 22


def _label_key(key) -> int:
    if isinstance(key, bool):
        raise ScenarioError(f"[anatomy.label_map] key {key!r} must be an integer label value")
    if isinstance(key, int | np.integer):
        return int(key)
    if isinstance(key, str) and re.fullmatch(r"\s*[+-]?\d+\s*", key):
        return int(key)
    raise ScenarioError(
        f"[anatomy.label_map] key {key!r} must be an integer label value of the image, "
        'e.g. 5 = "nerve"'
    )


def _normalise_mapping(
    mapping: Mapping, tissue_names: Iterable[str]
) -> dict[int, tuple[str, str | None]]:
    """``{label: (tissue, structure name or None)}``, every tissue checked."""
    if not isinstance(mapping, Mapping) or not mapping:
        raise ScenarioError(
            f"the label map needs a mapping of label values to tissues, got {mapping!r}; "
            'e.g. [anatomy.label_map] 0 = "muscle", 1 = "cortical_bone", 5 = "nerve"'
        )
    known = tuple(tissue_names)
    out: dict[int, tuple[str, str | None]] = {}
    for key, value in mapping.items():
        label = _label_key(key)
        if label in out:
            raise ScenarioError(
                f"[anatomy.label_map] maps label {label} twice (key {key!r}); keep one entry"
            )
        name = None
        if isinstance(value, str):
            tissue = value
        elif isinstance(value, Mapping):
            extra = sorted(set(value) - {"tissue", "name"})
            if extra:
                raise ScenarioError(
                    f"[anatomy.label_map] entry {key!r} has unknown keys {extra}; use "
                    '{ tissue = "nerve", name = "nerve_root_left" }'
                )
            tissue = value.get("tissue")
            name = value.get("name")
            if name is not None and (not isinstance(name, str) or not name.strip()):
                raise ScenarioError(
                    f"[anatomy.label_map] entry {key!r} name must be a non-empty string, "
                    f"got {name!r}"
                )
            name = None if name is None else name.strip()
        else:
            tissue = None
        if not isinstance(tissue, str) or not tissue.strip():
            raise ScenarioError(
                f"[anatomy.label_map] entry {key!r} = {value!r} must name a tissue, e.g. "
                f'{label} = "muscle" or {label} = {{ tissue = "nerve", name = "nerve_root" }}'
            )
        tissue = tissue.strip()
        if tissue not in known:
            raise ScenarioError(
                f"[anatomy.label_map] label {label} maps to unknown tissue {tissue!r}"
                f"{suggest(tissue, known)}; use a tissue of the library or define it under "
                "[tissues]"
            )
        out[label] = (tissue, name)
    return out


def _present_labels(labels: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer volume (bincount when the range is small)."""
    lo, hi = int(labels.min()), int(labels.max())
    if hi - lo < (1 << 20):
        counts = np.zeros(hi - lo + 1, dtype=np.int64)
        flat = labels.reshape(-1)
        for s in range(0, flat.size, _CHUNK_VOXELS):
            chunk = flat[s : s + _CHUNK_VOXELS].astype(np.int64) - lo
            counts += np.bincount(chunk, minlength=counts.size)
        return np.flatnonzero(counts) + lo
    return np.unique(labels)


def _relabel(labels: np.ndarray, values: np.ndarray) -> np.ndarray:
    """uint8 structure indices: ``values[index] == label``, chunked over the first axis."""
    out = np.empty(labels.shape, dtype=np.uint8)
    per = max(1, _CHUNK_VOXELS // max(1, labels.shape[1] * labels.shape[2]))
    for i in range(0, labels.shape[0], per):
        out[i : i + per] = np.searchsorted(values, labels[i : i + per])
    return out


def _signed_permutation(a3: np.ndarray) -> tuple[np.ndarray, np.ndarray, float] | None:
    """``(world axis of each image axis, its sign, spacing)`` if ``a3`` is an isotropic
    signed permutation matrix (within :data:`_GEOM_RTOL`), else None."""
    sizes = np.linalg.norm(a3, axis=0)
    h = float(sizes.mean())
    if np.any(np.abs(sizes - h) > _GEOM_RTOL * h):
        return None
    world = np.argmax(np.abs(a3), axis=0)
    if sorted(world.tolist()) != [0, 1, 2]:
        return None
    signs = np.sign(a3[world, np.arange(3)])
    ideal = np.zeros((3, 3))
    ideal[world, np.arange(3)] = signs * h
    if np.any(np.abs(a3 - ideal) > _GEOM_RTOL * h):
        return None
    return world, signs, h


def _tidy_spacing(h: float) -> float:
    """Drop float32 noise from a voxel size [m] (0.800000011920929 mm -> 0.8 mm).

    Rounds to 1e-6 mm: the grid then drifts from the file by at most 5e-7 mm per voxel
    (0.5 um across 1000 voxels), far below any geometric tolerance of the simulation.
    """
    tidy = round(h * 1e3, 6) / 1e3
    return tidy if tidy > 0 else h


def _describe_voxels(a3: np.ndarray) -> str:
    sizes = np.linalg.norm(a3, axis=0) * 1e3
    cos = np.abs(a3) / np.linalg.norm(a3, axis=0)
    oblique = bool(np.any((cos > 1e-4) & (cos < 1 - 1e-4)))
    h = sizes.mean()
    aniso = bool(np.any(np.abs(sizes - h) > _GEOM_RTOL * h))
    kinds = [k for k, on in (("oblique", oblique), ("anisotropic", aniso)) if on]
    text = " x ".join(f"{s:.4g}" for s in sizes) + " mm"
    return text + (f" ({', '.join(kinds)})" if kinds else "")


def _bounding_grid(shape: tuple[int, ...], affine: np.ndarray, spacing: float) -> Grid:
    """Isotropic axis-aligned grid covering the world bounding box of the image's voxels."""
    n = np.asarray(shape, dtype=float)
    corners = np.array(np.meshgrid(*[[-0.5, m - 0.5] for m in n], indexing="ij")).reshape(3, -1)
    world = affine[:3, :3] @ corners + affine[:3, 3:4]
    lo, hi = world.min(axis=1), world.max(axis=1)
    counts = np.maximum(1, np.round((hi - lo) / spacing - 1e-6)).astype(int)
    origin = 0.5 * (lo + hi) - 0.5 * (counts - 1) * spacing
    return Grid(tuple(int(c) for c in counts), spacing, tuple(float(o) for o in origin))


def _resample_nearest(
    index: np.ndarray, affine: np.ndarray, grid: Grid, fill: int | None
) -> tuple[np.ndarray, int]:
    """Nearest-label resampling of ``index`` (image voxels) onto ``grid``.

    Returns the uint8 volume and the number of target voxels whose centres lie outside the
    image. Those take ``fill`` if given, else the label of the nearest border voxel.
    Chunked over the grid's first axis, so temporaries stay below ~100 MB.
    """
    inv = np.linalg.inv(affine)
    x, y, z = grid.axes()
    src = np.asarray(index.shape)
    out = np.empty(grid.shape, dtype=np.uint8)
    per = max(1, _CHUNK_VOXELS // (grid.shape[1] * grid.shape[2]))
    n_out = 0
    for i0 in range(0, grid.shape[0], per):
        xs = x[i0 : i0 + per]
        idx = []
        outside = np.zeros((xs.size, y.size, z.size), dtype=bool)
        for a in range(3):
            p = (
                (inv[a, 0] * xs + inv[a, 3])[:, None, None]
                + (inv[a, 1] * y)[None, :, None]
                + (inv[a, 2] * z)[None, None, :]
            )
            q = np.floor(p + 0.5).astype(np.intp)
            outside |= (q < 0) | (q >= src[a])
            np.clip(q, 0, src[a] - 1, out=q)
            idx.append(q)
        block = index[idx[0], idx[1], idx[2]]
        if fill is not None:
            block[outside] = fill
        out[i0 : i0 + per] = block
        n_out += int(np.count_nonzero(outside))
    return out, n_out


def load_label_map(
    path: str | os.PathLike,
    mapping: Mapping[int | str, str | Mapping[str, str]],
    *,
    grid: Grid | None = None,
    spacing: float | None = None,
    tissues=None,
    outside: int | str | None = None,
) -> tuple[Phantom, list[str]]:
    """Read a segmentation and return it as a phantom on the simulation grid, with notes.

    Parameters
    ----------
    path : str or os.PathLike
        Label map file: ``.nii.gz``, ``.nii``, ``.nrrd``, ``.seg.nrrd`` or ``.nhdr``
        (see :func:`read_label_image`).
    mapping : mapping of int or str to str or mapping
        Label value -> tissue name, e.g. ``{0: "muscle", 1: "cortical_bone", 5: "nerve"}``,
        or label -> ``{"tissue": "nerve", "name": "nerve_root_left"}`` to name the
        structure. Keys may be ints or strings of ints (TOML keys are strings). The default
        structure name is the segment name of a ``.seg.nrrd`` if it has one, else the
        tissue's name as written (``4 = "spinal_cord"`` is the structure "spinal_cord"),
        or ``"<tissue>_<label>"`` (e.g. ``"nerve_5"``) when several labels would
        otherwise share that name.
    grid : Grid, optional
        Simulation grid to resample onto. Default: the image's own grid if it is isotropic
        and axis-aligned, else an isotropic grid covering the image's bounding box.
    spacing : float, optional
        Voxel size [m] of the grid built when ``grid`` is None; given, the image is always
        resampled. Default: the image's smallest voxel size.
    tissues : TissueLibrary or iterable of str, optional
        Known tissues (their ``names``); default :meth:`TissueLibrary.default`.
    outside : int or str, optional
        Label value (mapped in ``mapping``) given to target voxels whose centres lie outside
        the image. Default: the label of the nearest image voxel on the border.

    Returns
    -------
    phantom : Phantom
        Labels are structure indices (``uint8``); structures are the mapped labels present
        in the image, in increasing label value, so ``phantom.structures[i]`` belongs to the
        i-th smallest label value present.
    notes : list of str
        What was done that the user should know: resampling, reorientation, voxels outside
        the image, mapping keys absent from the image, structures lost on the grid.

    Raises
    ------
    ScenarioError
        On an unreadable file (see :func:`read_label_image`), label values present but not
        mapped, an unknown tissue, duplicate structure names, a bad ``spacing``/``outside``,
        or a grid too large for the memory.

    Notes
    -----
    An isotropic image whose axes are parallel to RAS (possibly flipped or permuted) is
    reoriented without changing a value: array axes then grow along +x, +y, +z and the grid
    origin is the world centre of the new voxel ``(0, 0, 0)``. Otherwise each target voxel
    centre is mapped through the inverse affine and rounded to the nearest image voxel
    (nearest label; ties round up). A thin structure (a nerve root) can thin out or vanish
    on a coarse grid; vanished structures are dropped and named in the notes.
    """
    from ..tissues import TissueLibrary

    path = Path(path)
    if tissues is None:
        tissues = TissueLibrary.default()
    tissue_names = tissues.names if hasattr(tissues, "names") else tuple(tissues)
    entries = _normalise_mapping(mapping, tissue_names)
    if spacing is not None:
        try:
            spacing = float(spacing)
        except (TypeError, ValueError):
            spacing = math.nan
        if not math.isfinite(spacing) or not 0 < spacing <= 0.05:
            raise ScenarioError(
                f"label map spacing must be a positive length in metres (at most 0.05), got "
                f"{spacing!r}; e.g. spacing=0.0005 for 0.5 mm"
            )
    fill_label = None
    if outside is not None:
        try:
            fill_label = _label_key(outside)
        except ScenarioError:
            fill_label = None
        if fill_label not in entries:
            raise ScenarioError(
                f"outside label {outside!r} is not a label value of [anatomy.label_map]; "
                f"use one of {sorted(entries)} (the label of the tissue around the image)"
            )

    image = read_label_image(path)
    labels, affine, seg_names = image
    notes: list[str] = []

    # -- which labels, which structures ---------------------------------------------
    present = _present_labels(labels)
    unmapped = [int(v) for v in present if int(v) not in entries]
    if unmapped:
        shown = ", ".join(str(v) for v in unmapped[:20]) + (", ..." if len(unmapped) > 20 else "")
        raise ScenarioError(
            f"label map {path.name!r} has label values not in the mapping: {shown}; add them "
            f'to [anatomy.label_map], e.g. {unmapped[0]} = "muscle"'
        )
    absent = sorted(set(entries) - {int(v) for v in present})
    if absent:
        notes.append(
            f"label map {path.name}: mapped labels {absent} do not occur in the image; "
            "they were ignored"
        )
    values = sorted({int(v) for v in present} | ({fill_label} if fill_label is not None else set()))
    if len(values) > 256:
        raise ScenarioError(
            f"label map {path.name!r} has {len(values)} distinct labels; at most 256 "
            "structures fit a phantom: merge labels of the same tissue first"
        )
    given = {v: entries[v][1] or seg_names.get(v) for v in values}
    # a label without a name of its own is called by its tissue, unless that name is
    # taken (by a named label, or by another unnamed label of the same tissue)
    default = [entries[v][0] for v in values if not given[v]]
    taken = {n for n in given.values() if n}
    structures = []
    for v in values:
        tissue = entries[v][0]
        if given[v]:
            name = given[v]
        elif default.count(tissue) == 1 and tissue not in taken:
            name = tissue
        else:
            name = f"{tissue}_{v}"
        structures.append(Structure(name, tissue))
    names = [s.name for s in structures]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        which = {
            n: [v for v, s in zip(values, structures, strict=True) if s.name == n] for n in dupes
        }
        raise ScenarioError(
            f"label map {path.name!r}: several labels get the same structure name {which}; "
            'give each a distinct name, e.g. 5 = { tissue = "nerve", name = "nerve_root_left" }'
        )
    value_arr = np.asarray(values, dtype=np.int64)

    # -- geometry -------------------------------------------------------------------
    a3 = affine[:3, :3]
    perm = _signed_permutation(a3)
    own = grid is None and spacing is None and perm is not None
    if own:
        world_axis, signs, h = perm
        h = _tidy_spacing(h)
        order = np.argsort(world_axis)  # image axis that becomes world axis 0, 1, 2
        start = np.where(signs < 0, np.asarray(labels.shape) - 1, 0)
        origin = affine[:3, :3] @ start + affine[:3, 3]
        target = Grid(tuple(labels.shape[a] for a in order), h, tuple(origin))
        target.check_memory(
            1.0 + 9.0 * min(1.0, _CHUNK_VOXELS / target.size), what="the imported label map"
        )
        index = _relabel(labels, value_arr)
        index = np.transpose(index, order)
        flips = tuple(w for w in range(3) if signs[order[w]] < 0)
        if flips:
            index = np.flip(index, axis=flips)
        index = np.ascontiguousarray(index)
        if not np.array_equal(order, np.arange(3)):
            notes.append(
                f"label map {path.name}: array axes reordered to RAS [x, y, z] "
                "(no resampling, no value changed)"
            )
    else:
        if grid is None:
            h = spacing if spacing is not None else float(np.linalg.norm(a3, axis=0).min())
            h = _tidy_spacing(h)
            target = _bounding_grid(labels.shape, affine, h)
            dest = f"{h * 1e3:.4g} mm isotropic"
        else:
            target = grid
            dest = (
                f"the simulation grid ({grid.spacing * 1e3:.4g} mm isotropic, shape {grid.shape})"
            )
        # output (1 B) + per-chunk temporaries (three intp indices, floats, masks ~ 33 B)
        target.check_memory(
            1.0 + 33.0 * min(1.0, _CHUNK_VOXELS / target.size), what="the imported label map"
        )
        src_index = _relabel(labels, value_arr)
        fill = None if fill_label is None else values.index(fill_label)
        index, n_out = _resample_nearest(src_index, affine, target, fill)
        same = (
            grid is not None
            and perm is not None
            and np.array_equal(perm[0], np.arange(3))
            and np.all(perm[1] > 0)
            and math.isclose(perm[2], grid.spacing, rel_tol=_GEOM_RTOL)
            and tuple(grid.shape) == tuple(labels.shape)
            and np.allclose(affine[:3, 3], grid.origin, rtol=0, atol=1e-3 * grid.spacing)
        )
        if not same:
            notes.append(
                f"label map {path.name} resampled from {_describe_voxels(a3)} to {dest} "
                "by nearest label"
            )
        if n_out:
            rule = (
                f"label {fill_label} ({structures[fill].name})"
                if fill is not None
                else "the label of the nearest image voxel on its border"
            )
            notes.append(
                f"label map {path.name}: {n_out:,} of {target.size:,} grid voxels lie outside "
                f"the image and take {rule}"
            )

    # -- structures lost on the grid (outside it, or thinner than the spacing) ----------
    kept = _present_labels(index) if index.size else np.array([], dtype=np.int64)
    if kept.size < len(structures):
        lost = [i for i in range(len(structures)) if i not in set(kept.tolist())]
        notes.append(
            f"label map {path.name}: structures "
            + ", ".join(f"{structures[i].name} (label {values[i]})" for i in lost)
            + " have no voxel on the grid (outside it or thinner than its spacing) and were "
            "dropped; use a finer spacing or a grid that covers them"
        )
        remap = np.zeros(len(structures), dtype=np.uint8)
        remap[kept] = np.arange(kept.size, dtype=np.uint8)
        index = remap[index]
        structures = [structures[i] for i in kept.tolist()]
        values = [values[i] for i in kept.tolist()]

    summary = ", ".join(
        f"{v}={s.name} ({s.tissue})" for v, s in zip(values, structures, strict=True)
    )
    description = (
        f"Label map imported from {path.name}: {summary}. Grid {target.shape} at "
        f"{target.spacing * 1e3:.4g} mm, origin "
        f"{[round(o * 1e3, 3) for o in target.origin]} mm (scanner RAS)."
    )
    return Phantom(target, index, tuple(structures), description), notes
