"""Read a segmentation's label volume and its voxel-to-world affine from NIfTI or NRRD.

World positions are the image's own scanner coordinates as 3D Slicer shows them, in the RAS
convention (+x towards the patient's right, +y anterior, +z superior), in **metres** (files
store millimetres). NIfTI affines are already RAS (nibabel's ``img.affine``); NRRD files
declare their ``space`` (3D Slicer writes ``left-posterior-superior``), and the x and/or y
axes are negated to turn them into RAS. Labels are returned as read, not yet reoriented:
:func:`ablasim.anatomy.imported.load_label_map` puts them on the simulation grid.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import ScenarioError

__all__ = ["SUPPORTED_SUFFIXES", "LabelImage", "read_label_image"]

#: File-name endings read by :func:`read_label_image` (case-insensitive).
SUPPORTED_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".nhdr")

_NIFTI = (".nii.gz", ".nii")
_NRRD = (".seg.nrrd", ".nrrd", ".nhdr")

#: Largest deviation from an integer accepted in a floating-point label volume.
_INT_ATOL = 1e-3

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
