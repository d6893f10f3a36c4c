"""Anatomy: procedural voxel phantoms and label-map files.

A :class:`Phantom` (:mod:`.phantom`) is a grid, a ``uint8`` label volume and the
:class:`Structure` s (name, tissue) its labels index. :func:`make_phantom`
(:mod:`.registry`) builds one by name (see :data:`PHANTOMS`): :mod:`.simple` (uniform,
slab, sphere), :mod:`.spine` (vertebra), :mod:`.femur` (long bone), all painted with
:mod:`.painter` after the checks of :mod:`.params`. :func:`save_label_map` writes a phantom
as NIfTI with a JSON sidecar and a 3D Slicer colour table, :func:`load_phantom` reads that
back (:mod:`.labelio`). :func:`load_label_map` (:mod:`.imported`) imports a planner's
segmentation, read by :mod:`.readers`, with a label -> tissue mapping.
"""

from __future__ import annotations

from .femur import long_bone
from .imported import load_label_map
from .labelio import (
    TISSUE_COLORS,
    load_phantom,
    save_label_map,
    tissue_color,
    write_colour_table,
)
from .phantom import Phantom, Structure
from .readers import LabelImage, read_label_image
from .registry import PHANTOMS, make_phantom
from .simple import slab, sphere, uniform
from .spine import VERTEBRA_LEVELS, vertebra

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
    "write_colour_table",
]
