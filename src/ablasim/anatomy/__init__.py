"""Anatomy: procedural voxel phantoms and label-map files.

A :class:`Phantom` is a grid, a ``uint8`` label volume and the :class:`Structure` s
(name, tissue) its labels index. :func:`make_phantom` builds one by name (see
:data:`PHANTOMS`); :func:`save_label_map` writes it as NIfTI with a JSON sidecar and a
3D Slicer colour table, :func:`load_phantom` reads that back.
"""

from __future__ import annotations

from .imported import LabelImage, load_label_map, read_label_image
from .labelio import (
    TISSUE_COLORS,
    load_phantom,
    save_label_map,
    tissue_color,
    write_phantom_outputs,
)
from .phantoms import (
    PHANTOMS,
    VERTEBRA_LEVELS,
    Phantom,
    Structure,
    long_bone,
    make_phantom,
    slab,
    sphere,
    uniform,
    vertebra,
)

__all__ = [
    "PHANTOMS",
    "TISSUE_COLORS",
    "VERTEBRA_LEVELS",
    "LabelImage",
    "Phantom",
    "Structure",
    "load_label_map",
    "load_phantom",
    "long_bone",
    "make_phantom",
    "read_label_image",
    "save_label_map",
    "slab",
    "sphere",
    "tissue_color",
    "uniform",
    "vertebra",
    "write_phantom_outputs",
]
