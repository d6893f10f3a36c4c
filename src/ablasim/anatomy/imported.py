"""Import segmentations (label maps) from NIfTI and NRRD files as phantoms.

A planner segments a patient's CT or MR in 3D Slicer (or ITK-SNAP, TotalSegmentator, ...)
and saves the result as a label map: an integer volume in which each value marks one
structure. :func:`read_label_image` reads such a file and its voxel-to-world affine;
:func:`load_label_map` maps each label value to a tissue of the library and puts the labels
on the isotropic, axis-aligned simulation grid, as a :class:`~ablasim.anatomy.Phantom`.

Frames and units
----------------
World positions are the image's own scanner coordinates as 3D Slicer shows them, in the RAS
convention (+x towards the patient's right, +y anterior, +z superior), in **metres** inside
the code (files store millimetres). NIfTI affines are already RAS (nibabel's ``img.affine``);
NRRD files declare their ``space`` (3D Slicer writes ``left-posterior-superior``), and the
x and/or y axes are negated to turn them into RAS.

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
from typing import Any, NamedTuple

import numpy as np

from ..errors import ScenarioError, suggest
from ..grid import Grid
from .phantoms import Phantom, Structure

__all__ = ["LabelImage", "load_label_map", "read_label_image"]

#: File-name endings read by :func:`read_label_image` (case-insensitive).
SUPPORTED_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".nhdr")

_NIFTI = (".nii.gz", ".nii")
_NRRD = (".seg.nrrd", ".nrrd", ".nhdr")

#: Relative tolerance of "axis-aligned" and "isotropic" (NIfTI stores the sform as float32).
_GEOM_RTOL = 1e-5
#: Largest deviation from an integer accepted in a floating-point label volume.
_INT_ATOL = 1e-3
#: Voxels handled per chunk when resampling or relabelling (bounds the temporaries).
_CHUNK_VOXELS = 1 << 22

_SPACE_UNITS = {
    "mm": 1e-3,
    "millimeter": 1e-3,
    "millimetre": 1e-3,
    "m": 1.0,
    "cm": 1e-2,
    "um": 1e-6,
    "µm": 1e-6,
    "micron": 1e-6,
}

_FIX_EXPORT = (
    "save the segmentation as a 3D label map (.nii.gz or .nrrd), e.g. in 3D Slicer: "
    "Data module, right-click the segmentation, 'Export visible segments to binary labelmap', "
    "then save that labelmap volume"
)


class LabelImage(NamedTuple):
    """A label volume as read from a file.

    Attributes
    ----------
    labels : numpy.ndarray of int, shape (ni, nj, nk)
        Label values indexed by voxel ``[i, j, k]`` (file order, not yet reoriented).
    affine : numpy.ndarray of float, shape (4, 4)
        Voxel index ``(i, j, k, 1)`` -> world RAS position [m] of that voxel's centre.
    segment_names : dict of int to str
        Segment names of a 3D Slicer ``.seg.nrrd`` (``{label value: name}``); empty otherwise.
    """

    labels: np.ndarray
    affine: np.ndarray
    segment_names: dict[int, str]


# ---------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------
def _suffix(path: Path) -> str | None:
    name = path.name.lower()
    for suf in SUPPORTED_SUFFIXES:
        if name.endswith(suf) and len(name) > len(suf):
            return suf
    return None


def read_label_image(path: str | os.PathLike) -> LabelImage:
    """Read an integer label volume and its voxel-to-world affine from NIfTI or NRRD.

    Parameters
    ----------
    path : str or os.PathLike
        ``.nii.gz`` / ``.nii`` (read with nibabel) or ``.nrrd`` / ``.seg.nrrd`` / ``.nhdr``
        (read with pynrrd; a ``.nhdr`` names its detached data file).

    Returns
    -------
    LabelImage
        ``(labels, affine, segment_names)``; unpacks as a 3-tuple. ``affine`` maps voxel
        indices to RAS **metres**.

    Notes
    -----
    Assumptions:

    * NIfTI: ``img.affine`` (sform, else qform, as nibabel chooses) is RAS+ in millimetres.
      Scaled or floating-point data must hold integer values (within 1e-3).
    * NRRD: the geometry comes from ``space directions`` (one row per array axis) and
      ``space origin`` (default 0) in ``space units`` (default mm). ``space`` may be any
      combination of right/left, anterior/posterior, superior/inferior (``RAS``, ``LPS``,
      ``LAS``, ... or spelled out); ``scanner-xyz`` and ``3D-right-handed`` are taken as RAS.
      A file without ``space directions`` but with ``spacings`` is taken as axis-aligned
      RAS with its origin at 0.
    * 3D Slicer ``.seg.nrrd``: only the 3D labelmap form (one layer) is read; the segment
      names come from the ``Segment{N}_Name`` / ``Segment{N}_LabelValue`` header keys.
      Overlapping segments are stored as a 4D volume, which is refused with the fix.
    * Trailing axes of length 1 (``(x, y, z, 1)``) are dropped; any other shape is refused.

    Neither reader uses pickle.

    Raises
    ------
    ScenarioError
        If the file is missing or unreadable, has an unsupported extension, is not 3D, holds
        non-integer values or has an unusable affine; the message names the file and the fix.
    """
    path = Path(path)
    suf = _suffix(path)
    if suf is None:
        raise ScenarioError(
            f"label map {str(path)!r} has an unsupported file type; use one of "
            f"{', '.join(SUPPORTED_SUFFIXES)} (e.g. in 3D Slicer save the segmentation as "
            "'.seg.nrrd' or export it as a '.nii.gz' labelmap)"
        )
    if not path.exists():
        raise ScenarioError(
            f"label map {str(path)!r} does not exist; check the path "
            "(a relative path is taken from the scenario file's folder)"
        )
    if not path.is_file():
        raise ScenarioError(f"label map {str(path)!r} is not a file; give the path of the file")
    if suf in _NIFTI:
        data, affine, names = _read_nifti(path)
    else:
        data, affine, names = _read_nrrd(path, suf)
    data = _as_3d(path, data)
    labels = _as_integer_labels(path, data)
    _check_affine(path, affine)
    return LabelImage(labels, affine, names)


def _unreadable(path: Path, kind: str, exc: BaseException) -> ScenarioError:
    msg = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return ScenarioError(
        f"label map {str(path)!r} could not be read as {kind} ({msg}); the file is damaged "
        f"or not {kind}: save it again from the segmentation software"
    )


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    import nibabel as nib  # imported on use: only file import needs it

    try:
        img = nib.load(str(path))
        if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
            raise ValueError(f"a {type(img).__name__}, not a NIfTI image")
        affine = np.asarray(img.affine, dtype=float)
        unit = str(img.header.get_xyzt_units()[0])
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel, gzip, zlib and OS errors alike
        raise _unreadable(path, "NIfTI", exc) from None
    # NIfTI positions are millimetres unless the header says otherwise ('unknown' -> mm).
    scale = {"meter": 1.0, "micron": 1e-6}.get(unit, 1e-3)
    affine[:3, :] *= scale
    return data, affine, {}


def _space_signs(path: Path, space: str | None) -> np.ndarray:
    """Signs turning a NRRD ``space`` into RAS (+1 keeps an axis, -1 negates it)."""
    if space is None:
        return np.ones(3)
    s = str(space).strip().lower()
    if s in ("scanner-xyz", "3d-right-handed"):
        return np.ones(3)
    abbrev = {
        "r": "right",
        "l": "left",
        "a": "anterior",
        "p": "posterior",
        "s": "superior",
        "i": "inferior",
    }
    words = [abbrev[c] for c in s] if re.fullmatch(r"[rlapsi]{3}", s) else s.split("-")
    want = (("right", "left"), ("anterior", "posterior"), ("superior", "inferior"))
    if len(words) == 3 and all(w in pair for w, pair in zip(words, want, strict=True)):
        return np.array(
            [1.0 if w == pair[0] else -1.0 for w, pair in zip(words, want, strict=True)]
        )
    raise ScenarioError(
        f"label map {str(path)!r} has NRRD space {space!r}, which is not an anatomical 3D "
        "space; expected e.g. 'left-posterior-superior' (3D Slicer) or "
        "'right-anterior-superior': save it again from 3D Slicer"
    )


def _space_unit(path: Path, header: Mapping[str, Any]) -> float:
    units = header.get("space units")
    if units is None:
        return 1e-3
    units = [str(u).strip().strip('"').lower() for u in np.atleast_1d(units)]
    scale = {_SPACE_UNITS.get(u) for u in units}
    if None in scale or len(scale) != 1:
        raise ScenarioError(
            f"label map {str(path)!r} has NRRD space units {units!r}; expected millimetres "
            "('mm') on every axis"
        )
    return scale.pop()


def _read_nrrd(path: Path, suf: str) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    import nrrd  # imported on use: only file import needs it

    try:
        data, header = nrrd.read(str(path))
    except Exception as exc:  # NRRDError, ValueError, zlib and OS errors alike
        raise _unreadable(path, "NRRD", exc) from None
    if data.ndim == 4 and suf == ".seg.nrrd" and data.shape[0] > 1:
        raise ScenarioError(
            f"label map {str(path)!r} is a 3D Slicer segmentation with {data.shape[0]} "
            "overlapping layers (4D); only one-layer segmentations are read: "
            f"{_FIX_EXPORT}, or remove the overlaps so Slicer stores one layer"
        )
    if data.ndim == 4 and data.shape[0] == 1:  # a one-layer 'list' axis first
        data = data[0]
        directions = _directions(header)
        if directions is not None and directions.shape[0] == 4:
            header = dict(header)
            header["space directions"] = directions[1:]
    if data.ndim != 3:
        raise _not_3d(path, data.shape)
    signs = _space_signs(path, header.get("space"))
    unit = _space_unit(path, header)
    directions = _directions(header)
    if directions is None:
        spacings = header.get("spacings")
        if spacings is None:
            raise ScenarioError(
                f"label map {str(path)!r} has neither 'space directions' nor 'spacings' in its "
                "NRRD header, so its voxel positions are unknown; save it again from 3D Slicer"
            )
        directions = np.diag(np.asarray(spacings, dtype=float).reshape(-1)[:3])
        signs = np.ones(3)
    if directions.shape != (3, 3) or not np.all(np.isfinite(directions)):
        raise ScenarioError(
            f"label map {str(path)!r} has NRRD space directions {directions.tolist()} that do "
            "not describe a 3D volume; save it again as a 3D labelmap"
        )
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float).reshape(-1)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise ScenarioError(
            f"label map {str(path)!r} has NRRD space origin {origin.tolist()}; expected three "
            "finite numbers: save it again from 3D Slicer"
        )
    affine = np.eye(4)
    affine[:3, :3] = directions.T * signs[:, None] * unit  # column a = step along axis a
    affine[:3, 3] = origin * signs * unit
    return data, affine, _segment_names(header)


def _directions(header: Mapping[str, Any]) -> np.ndarray | None:
    d = header.get("space directions")
    if d is None:
        return None
    rows = [np.full(3, np.nan) if r is None else np.asarray(r, dtype=float) for r in d]
    try:
        return np.array(rows, dtype=float)
    except ValueError:
        return np.full((len(rows), 3), np.nan)


def _segment_names(header: Mapping[str, Any]) -> dict[int, str]:
    """``{label value: name}`` from 3D Slicer's ``Segment{N}_LabelValue``/``_Name`` keys."""
    names: dict[int, str] = {}
    for key, value in header.items():
        m = re.fullmatch(r"Segment(\d+)_Name", str(key))
        if not m:
            continue
        label = header.get(f"Segment{m.group(1)}_LabelValue")
        try:
            label = int(str(label).strip())
        except ValueError:
            continue
        name = str(value).strip()
        if name:
            names[label] = name
    return names


def _not_3d(path: Path, shape: tuple[int, ...]) -> ScenarioError:
    return ScenarioError(
        f"label map {str(path)!r} has shape {shape} ({len(shape)}D); a label map must be "
        f"a 3D volume: {_FIX_EXPORT}"
    )


def _as_3d(path: Path, data: np.ndarray) -> np.ndarray:
    shape = data.shape
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise _not_3d(path, shape)
    if 0 in data.shape:
        raise ScenarioError(f"label map {str(path)!r} is empty (shape {shape})")
    return data


def _as_integer_labels(path: Path, data: np.ndarray) -> np.ndarray:
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.integer):
        return data
    if np.issubdtype(data.dtype, np.bool_):
        return data.astype(np.uint8)
    if not np.issubdtype(data.dtype, np.floating):
        raise ScenarioError(
            f"label map {str(path)!r} holds {data.dtype} values, not integer labels; "
            "save the segmentation as an integer label map"
        )
    finite = np.isfinite(data)
    if not np.all(finite):
        raise ScenarioError(
            f"label map {str(path)!r} holds NaN or infinite values, so it is not a label map; "
            "save the segmentation as an integer label map"
        )
    rounded = np.rint(data)
    dev = np.abs(data - rounded)
    if np.any(dev > _INT_ATOL):
        bad = float(data.flat[int(np.argmax(dev))])
        raise ScenarioError(
            f"label map {str(path)!r} holds non-integer values (e.g. {bad:g}), so it looks "
            "like an intensity image or a probability map rather than a segmentation; give "
            f"the integer label map instead ({_FIX_EXPORT})"
        )
    lo, hi = float(rounded.min()), float(rounded.max())
    dtype = np.int32 if lo >= -(2**31) and hi < 2**31 else np.int64
    return rounded.astype(dtype)


def _check_affine(path: Path, affine: np.ndarray) -> None:
    a = np.asarray(affine, dtype=float)
    ok = a.shape == (4, 4) and np.all(np.isfinite(a))
    if ok:
        sizes = np.linalg.norm(a[:3, :3], axis=0)
        det = abs(np.linalg.det(a[:3, :3]))
        ok = bool(np.all(sizes > 0) and det > 1e-6 * float(np.prod(sizes)))
    if not ok:
        raise ScenarioError(
            f"label map {str(path)!r} has a degenerate voxel-to-world affine; its geometry "
            "cannot be placed in the world: save it again from the segmentation software"
        )


# ---------------------------------------------------------------------------------------
# Mapping label values -> structures
# ---------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------
# The public entry point
# ---------------------------------------------------------------------------------------
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
        structure name is the segment name of a ``.seg.nrrd`` if it has one, else
        ``"<tissue>_<label>"`` (e.g. ``"nerve_5"``).
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
    from ..tissues import TissueLibrary  # tissues sit beside anatomy: import on use

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
    structures = []
    for v in values:
        tissue, name = entries[v]
        structures.append(Structure(name or seg_names.get(v) or f"{tissue}_{v}", tissue))
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
