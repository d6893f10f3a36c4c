"""Label-map files: NIfTI label volume, JSON sidecar, 3D Slicer colour table, pictures.

Files written for a phantom saved as ``DIR/<stem>.nii.gz``:

``<stem>.nii.gz``
    The ``uint8`` label volume. Its affine maps voxel ``(i, j, k)`` to RAS millimetres,
    ``world_mm = 1000 * (origin + spacing * (i, j, k))``, i.e. our world frame [m] x 1000,
    so 3D Slicer shows the phantom where the scenario's ``_mm`` positions point.
``<stem>.labels.json``
    ``{"<label>": {"name": structure, "tissue": tissue}, ...}``.
``<stem>.ctbl``
    A 3D Slicer colour table: ``index name R G B A`` per line (0-255), the structure names
    as colour names, one fixed colour per tissue (:data:`TISSUE_COLORS`).

Every file is written atomically (:mod:`ablasim.fileio`), so an interrupted run never
leaves a half-written file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..errors import ScenarioError
from ..fileio import atomic_path, atomic_write
from ..grid import Grid
from .phantom import Phantom, Structure

__all__ = [
    "TISSUE_COLORS",
    "load_phantom",
    "save_label_map",
    "tissue_color",
    "write_colour_table",
]

#: Fixed display colour (R, G, B in 0-255) per tissue of the library.
TISSUE_COLORS: dict[str, tuple[int, int, int]] = {
    "muscle": (178, 84, 72),
    "fat": (242, 214, 165),
    "skin": (214, 150, 120),
    "cortical_bone": (250, 250, 240),
    "cancellous_bone": (205, 184, 138),
    "red_marrow": (196, 92, 92),
    "yellow_marrow": (226, 196, 84),
    "spinal_cord": (255, 136, 0),
    "nerve": (255, 238, 0),
    "csf": (96, 168, 255),
    "disc": (110, 196, 186),
    "cartilage": (150, 206, 230),
    "ligament": (150, 112, 204),
    "tumour_lytic": (36, 170, 60),
    "tumour_blastic": (16, 100, 56),
    "tumour_renal": (90, 200, 120),
    "blood": (170, 0, 20),
    "liver": (130, 50, 40),
    "pmma_cement": (200, 200, 200),
    "air": (0, 0, 0),
}

_NII_SUFFIXES = (".nii.gz", ".nii")


def tissue_color(tissue: str) -> tuple[int, int, int]:
    """Display colour (R, G, B, 0-255) of a tissue; a fixed hash colour for unknown ones."""
    if tissue in TISSUE_COLORS:
        return TISSUE_COLORS[tissue]
    h = hashlib.sha1(tissue.encode("utf-8")).digest()
    return (64 + h[0] % 160, 64 + h[1] % 160, 64 + h[2] % 160)


def _split_nii(path: Path) -> tuple[Path, str]:
    """(folder / stem, suffix) of a NIfTI path; ScenarioError on another suffix."""
    name = path.name
    for suf in _NII_SUFFIXES:
        if name.endswith(suf) and len(name) > len(suf):
            return path.with_name(name[: -len(suf)]), suf
    raise ScenarioError(
        f"label map file {str(path)!r} must end in .nii.gz or .nii; e.g. 'phantom.nii.gz'"
    )


def _write_text(path: Path, text: str) -> Path:
    with atomic_write(path) as fh:
        fh.write(text)
    return path


def _affine_mm(grid: Grid) -> np.ndarray:
    aff = np.eye(4)
    aff[:3, :3] *= grid.spacing * 1e3
    aff[:3, 3] = np.asarray(grid.origin) * 1e3
    return aff


def _ctbl_text(structures) -> str:
    lines = [
        "# 3D Slicer colour table written by ablasim",
        "# index name R G B A (label value, structure name, colour of its tissue)",
    ]
    for i, s in enumerate(structures):
        r, g, b = tissue_color(s.tissue)
        lines.append(f"{i} {s.name.replace(' ', '_')} {r} {g} {b} 255")
    return "\n".join(lines) + "\n"


def write_colour_table(path, structures) -> Path:
    """Write a 3D Slicer colour table (``.ctbl``) for a label volume whose value ``i``
    is ``structures[i]``: ``i name R G B A`` per line, the structure's name (spaces as
    ``_``) in its tissue's colour (:func:`tissue_color`); atomically. Returns the path."""
    return _write_text(Path(path), _ctbl_text(structures))


def save_label_map(phantom: Phantom, path) -> Path:
    """Write a phantom's labels as NIfTI with a JSON sidecar and a Slicer colour table.

    Parameters
    ----------
    phantom : Phantom
        The phantom to write.
    path : str or os.PathLike
        ``.nii.gz`` or ``.nii`` file. Next to it ``<stem>.labels.json`` and ``<stem>.ctbl``
        are written (``<stem>`` is the name without the NIfTI suffix).

    Returns
    -------
    pathlib.Path
        The NIfTI file's path.

    Notes
    -----
    The affine is in millimetres, RAS: voxel ``(i, j, k)`` maps to
    ``1000 * (origin + spacing * (i, j, k))``; qform and sform codes are 1 (scanner).
    """
    import nibabel as nib  # imported here: only file output needs it

    path = Path(path)
    stem, _ = _split_nii(path)
    img = nib.Nifti1Image(np.asarray(phantom.labels, dtype=np.uint8), _affine_mm(phantom.grid))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    img.header.set_xyzt_units(xyz="mm")
    img.header["descrip"] = b"ablasim phantom label map"
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    sidecar = {
        str(i): {"name": s.name, "tissue": s.tissue} for i, s in enumerate(phantom.structures)
    }
    _write_text(stem.with_name(stem.name + ".labels.json"), json.dumps(sidecar, indent=2) + "\n")
    write_colour_table(stem.with_name(stem.name + ".ctbl"), phantom.structures)
    return path


def load_phantom(path) -> Phantom:
    """Read back a phantom written by :func:`save_label_map` (NIfTI + ``.labels.json``).

    For a planner's segmentation with its own label -> tissue mapping use the importer in
    :mod:`ablasim.anatomy.imported` instead.

    The grid is taken from the affine, which must be diagonal, positive and isotropic
    (as :func:`save_label_map` writes it); millimetres are converted back to metres.

    Raises
    ------
    ScenarioError
        If the file, its sidecar or its affine is not usable; the message says why.
    """
    import nibabel as nib

    path = Path(path)
    stem, _ = _split_nii(path)
    sidecar = stem.with_name(stem.name + ".labels.json")
    if not path.is_file():
        raise ScenarioError(f"label map {str(path)!r} does not exist")
    if not sidecar.is_file():
        raise ScenarioError(
            f"label map {str(path)!r} has no sidecar {sidecar.name!r} naming its labels; "
            "write it with save_label_map or give a label -> tissue mapping"
        )
    img = nib.load(str(path))
    data = np.asarray(img.dataobj)
    aff = np.asarray(img.affine, dtype=float)
    diag = np.diag(aff)[:3]
    off = aff[:3, :3] - np.diag(diag)
    if np.any(np.abs(off) > 1e-6 * np.max(np.abs(diag))) or np.any(diag <= 0):
        raise ScenarioError(
            f"label map {str(path)!r} is not axis-aligned RAS (affine {aff[:3, :3].tolist()}); "
            "resample it to an axis-aligned RAS grid first"
        )
    if not np.allclose(diag, diag[0], rtol=1e-6):
        raise ScenarioError(
            f"label map {str(path)!r} has anisotropic voxels {diag.tolist()} mm; "
            "resample it to isotropic spacing first"
        )
    grid = Grid(data.shape, float(diag[0]) * 1e-3, tuple(aff[:3, 3] * 1e-3))
    try:
        table = json.loads(sidecar.read_text(encoding="utf-8"))
        n = len(table)
        structures = tuple(
            Structure(table[str(i)]["name"], table[str(i)]["tissue"]) for i in range(n)
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(
            f"label sidecar {str(sidecar)!r} is malformed ({exc}); expected "
            '{"0": {"name": ..., "tissue": ...}, "1": ...}'
        ) from None
    return Phantom(grid, data, structures, f"Label map read from {path.name}.")
