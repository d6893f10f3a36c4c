"""The model: a grid, a label volume of named structures, tissue properties, a boundary.

A :class:`Model` is immutable. :attr:`Model.thermal_fields` turns it into the per-voxel property
arrays the solver steps with (conductivity, heat capacity, perfusion coefficient,
metabolic heat, phase-change table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .anatomy import Phantom, Structure
from .errors import ScenarioError, suggest
from .grid import Grid
from .solvers import PHASE_COLUMNS, Boundary, fill_ghosts_copy
from .solvers.pennes import VAPORISATION_C, WATER_LATENT_HEAT_J_KG
from .tissues import TissueLibrary

__all__ = ["BYTES_PER_VOXEL", "Model", "ThermalFields"]

#: Memory a simulation needs per voxel [B]: two padded temperature buffers, padded
#: conductivity, 1/(rho c), perfusion, source and static-source power density, labels,
#: damage accumulators, with headroom for temporaries while building.
BYTES_PER_VOXEL = 200


@dataclass(frozen=True)
class ThermalFields:
    """Per-voxel arrays for the Pennes step (see :func:`ablasim.solvers.pennes_step`).

    Attributes
    ----------
    k : ndarray, padded
        Thermal conductivity [W/m/K], ghost layer a copy of the interior.
    inv_rhoc : ndarray
        1 / (density x specific heat) [m^3 K/J].
    W : ndarray
        Perfusion coefficient omega_b rho_b c_b [W/m^3/K].
    Q_met : ndarray
        Metabolic heat [W/m^3].
    phase : ndarray, shape (n_labels, 8)
        Phase-change table per label, columns :data:`ablasim.solvers.PHASE_COLUMNS`.
    """

    k: np.ndarray
    inv_rhoc: np.ndarray
    W: np.ndarray
    Q_met: np.ndarray
    phase: np.ndarray


@dataclass(frozen=True, eq=False)
class Model:
    """Labelled anatomy with tissue properties and an outer boundary.

    Parameters
    ----------
    grid : Grid
    labels : ndarray of uint8, shape ``grid.shape``
        ``labels[i, j, k]`` indexes ``structures``.
    structures : tuple of Structure
        Name and tissue of each label.
    tissues : TissueLibrary
        Tissue properties (with the scenario's overrides applied).
    boundary : Boundary
        Outer-face conditions; default: faces held at the blood temperature.
    """

    grid: Grid
    labels: np.ndarray
    structures: tuple[Structure, ...]
    tissues: TissueLibrary = field(default_factory=TissueLibrary.default)
    boundary: Boundary | None = None

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels)
        if labels.shape != self.grid.shape:
            raise ScenarioError(
                f"label volume has shape {labels.shape}, the grid {self.grid.shape}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise ScenarioError(f"label volume must hold integers, got {labels.dtype}")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.structures)):
            raise ScenarioError(
                f"label volume holds labels {int(labels.min())}..{int(labels.max())} but "
                f"only {len(self.structures)} structures are named"
            )
        for s in self.structures:
            if s.tissue not in self.tissues:
                raise ScenarioError(
                    f"structure {s.name!r} uses unknown tissue {s.tissue!r}"
                    + suggest(s.tissue, self.tissues.names)
                )
        # C order: the kernels loop z fastest, and numba compiles one signature per
        # layout (NIfTI volumes arrive in Fortran order)
        object.__setattr__(self, "labels", np.ascontiguousarray(labels, dtype=np.uint8))
        if self.boundary is None:
            object.__setattr__(self, "boundary", Boundary.body(self.tissues.blood.temperature_C))

    # -- construction -----------------------------------------------------------------
    @classmethod
    def uniform(
        cls,
        grid: Grid,
        tissue: str = "muscle",
        *,
        tissues: TissueLibrary | None = None,
        boundary: Boundary | None = None,
    ) -> Model:
        """One tissue everywhere."""
        grid.check_memory(BYTES_PER_VOXEL)
        lib = tissues or TissueLibrary.default()
        labels = np.zeros(grid.shape, dtype=np.uint8)
        return cls(grid, labels, (Structure(tissue, tissue),), lib, boundary)

    @classmethod
    def from_phantom(
        cls,
        phantom: Phantom,
        *,
        tissues: TissueLibrary | None = None,
        boundary: Boundary | None = None,
    ) -> Model:
        """The model of a phantom or imported label map."""
        lib = tissues or TissueLibrary.default()
        return cls(phantom.grid, phantom.labels, tuple(phantom.structures), lib, boundary)

    # -- structures ---------------------------------------------------------------------
    @property
    def structure_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.structures)

    def structure_mask(self, name: str) -> np.ndarray:
        """Boolean mask of a named structure (or of every structure made of a tissue)."""
        ids = [i for i, s in enumerate(self.structures) if s.name == name]
        if not ids:
            ids = [i for i, s in enumerate(self.structures) if s.tissue == name]
        if not ids:
            raise ScenarioError(
                f"no structure or tissue named {name!r} in the model"
                + suggest(name, set(self.structure_names) | {s.tissue for s in self.structures})
            )
        return np.isin(self.labels, ids)

    def tumour_structures(self, name: str = "tumour") -> tuple[str, ...]:
        """Names of the tumour's structures: the one called ``name`` and every one made
        of a tumour tissue (a library tissue whose name starts with "tumour", e.g. a
        label map's ``3 = "tumour_lytic"``, whatever the structure is called)."""
        return tuple(
            s.name for s in self.structures if s.name == name or s.tissue.startswith("tumour")
        )

    def tumour_mask(self, name: str = "tumour") -> np.ndarray:
        """Boolean mask of the tumour (:meth:`tumour_structures`); all False without one."""
        names = set(self.tumour_structures(name))
        return np.isin(self.labels, [i for i, s in enumerate(self.structures) if s.name in names])

    def nerve_structures(self) -> tuple[str, ...]:
        """Names of the structures whose tissue is marked as nerve (to be protected)."""
        return tuple(s.name for s in self.structures if self.tissues[s.tissue].nerve)

    def label_table(self, key: str) -> np.ndarray:
        """A tissue property per label (float64, one entry per structure)."""
        return self.tissues.table([s.tissue for s in self.structures], key)

    def field(self, key: str) -> np.ndarray:
        """A tissue property per voxel (float64, grid shape)."""
        return self.label_table(key)[self.labels]

    def tissue_at(self, point) -> str:
        """Tissue name of the voxel containing a world point [m]."""
        return self.structures[self.labels[self.grid.world_to_index(point)]].tissue

    # -- solver fields ------------------------------------------------------------------
    @cached_property
    def thermal_fields(self) -> ThermalFields:
        """The property arrays for the Pennes step (computed once, then cached)."""
        self.grid.check_memory(BYTES_PER_VOXEL)
        rho = self.label_table("density_kg_m3")
        c = self.label_table("specific_heat_J_kgK")
        rhoc = rho * c
        blood = self.tissues.blood
        w_tab = self.label_table("perfusion_per_s") * blood.rho_c
        k = np.empty(tuple(n + 2 for n in self.grid.shape))
        k[1:-1, 1:-1, 1:-1] = self.label_table("conductivity_W_mK")[self.labels]
        fill_ghosts_copy(k)
        rho_f = rho * self.label_table("frozen_specific_heat_J_kgK")
        latent = rho * self.label_table("latent_heat_J_kg")
        # boiling: the latent heat of the tissue's own water (bone 0.12, cement 0)
        latent_vap = rho * self.label_table("water_fraction") * WATER_LATENT_HEAT_J_KG
        phase = np.stack(
            [
                rhoc,
                rho_f,
                latent,
                self.label_table("freezing_end_C"),
                self.label_table("freezing_start_C"),
                latent_vap,
                np.full(rho.shape, VAPORISATION_C[0]),
                np.full(rho.shape, VAPORISATION_C[1]),
                self.label_table("conductivity_W_mK"),
                self.label_table("frozen_conductivity_W_mK"),
                self.label_table("metabolic_W_m3"),
            ],
            axis=1,
        )
        assert phase.shape[1] == len(PHASE_COLUMNS)
        return ThermalFields(
            k=k,
            inv_rhoc=(1.0 / rhoc)[self.labels],
            W=w_tab[self.labels],
            Q_met=self.label_table("metabolic_W_m3")[self.labels],
            phase=np.ascontiguousarray(phase),
        )

    # -- a change of material -----------------------------------------------------------
    def with_material(self, index, *, tissue: str, structure: str) -> Model:
        """The model after voxels ``index`` (flat indices, C order) became structure
        ``structure`` of library tissue ``tissue`` (cement replacing tissue): a new label,
        or the existing structure of that name if it is of that tissue. Everything else
        is unchanged (``self`` too)."""
        idx = np.asarray(index)
        if (
            idx.ndim != 1
            or not np.issubdtype(idx.dtype, np.integer)
            or (idx.size and (idx.min() < 0 or idx.max() >= self.grid.size))
        ):
            raise ScenarioError(
                f"the voxels that become {structure!r} must be flat indices into the grid "
                f"(0..{self.grid.size - 1})"
            )
        names = self.structure_names
        if structure in names:
            label = names.index(structure)
            if self.structures[label].tissue != tissue:
                raise ScenarioError(
                    f"structure {structure!r} is {self.structures[label].tissue!r} in the "
                    f"model, not {tissue!r}: give the new material another structure name"
                )
            structures = self.structures
        else:
            label = len(self.structures)
            if label > np.iinfo(np.uint8).max:
                raise ScenarioError(
                    f"a model holds at most 256 structures; {structure!r} is one more"
                )
            structures = (*self.structures, Structure(structure, tissue))
        labels = self.labels.copy()
        labels.reshape(-1)[idx] = label
        return Model(self.grid, labels, structures, self.tissues, self.boundary)
