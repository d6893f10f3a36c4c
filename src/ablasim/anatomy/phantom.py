"""The phantom: a grid, a ``uint8`` label volume and the structures its labels index.

A :class:`Phantom` is what every phantom function and the label-map importer return; the
model (:class:`~ablasim.model.Model`) turns its structures' tissues into property fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ScenarioError, suggest
from ..grid import Grid

__all__ = ["Phantom", "Structure"]


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
