"""Outer-boundary conditions as data, turned into a ghost-layer rule.

The stencil knows nothing about boundaries: every state array carries one ghost layer on
each side, and :func:`fill_ghosts` writes the ghost values that make the stencil's flux
through each outer face the one the condition asks for. The boundary face lies half a
voxel outside the outermost voxel centre.

* ``temperature`` (Dirichlet at the face): ghost = 2 T_b - T_1, so the face temperature
  is T_b to second order and the flux is 2 k_1 (T_b - T_1) / h. For exact problems.
* ``body`` (the tissue beyond the grid, far from the probe, at T_b): ghost = T_b, i.e.
  the temperature is held half a voxel further out, at the ghost voxel's centre; the
  flux is k_1 (T_b - T_1) / h. Where the far boundary sits is a modelling choice anyway
  (it stands in for tissue that the heat does not reach), and this one keeps the time
  step free: a ``temperature`` face doubles the boundary voxel's outer coupling, so the
  grid's corner voxels (three such faces) set a time step a third shorter than the
  interior's (0.21 s against 0.30 s on the 0.5 mm vertebra). Default of
  :meth:`Boundary.body` and of scenarios.
* ``adiabatic`` (insulated, or a symmetry plane): ghost = T_1, zero flux.
* ``convective`` (skin in air, a cooled surface), flux = h_c (T_amb - T_face): with
  beta = h_c h / k_1, ghost = T_1 + beta (T_amb - T_1) / (1 + beta/2).

The conductivity ghost layer is a copy of the adjacent interior layer, so the face
conductivity of a boundary face is the boundary voxel's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ScenarioError
from ._jit import jit_inline, jit_serial

__all__ = ["FACE_NAMES", "Boundary", "FaceCondition", "fill_ghosts", "fill_ghosts_copy"]

FACE_NAMES = ("x_min", "x_max", "y_min", "y_max", "z_min", "z_max")
_KINDS = {"temperature": 0, "adiabatic": 1, "convective": 2, "body": 3}


@dataclass(frozen=True)
class FaceCondition:
    """The condition on one outer face.

    Attributes
    ----------
    kind : {"body", "temperature", "adiabatic", "convective"}
    temperature_C : float
        Held temperature for ``body`` (at the ghost voxel's centre) and ``temperature``
        (at the face); ambient temperature for ``convective`` [°C].
    h_W_m2K : float
        Heat-transfer coefficient for ``convective`` [W/m^2/K].
    """

    kind: str = "body"
    temperature_C: float = 37.0
    h_W_m2K: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ScenarioError(
                f"boundary kind {self.kind!r} is unknown; use one of {sorted(_KINDS)}"
            )
        if not math.isfinite(self.temperature_C):
            raise ScenarioError(f"boundary temperature must be finite, got {self.temperature_C}")
        if not math.isfinite(self.h_W_m2K) or self.h_W_m2K < 0:
            raise ScenarioError(
                f"boundary h_W_m2K must be a finite number >= 0, got {self.h_W_m2K}"
            )


@dataclass(frozen=True)
class Boundary:
    """Conditions on the six outer faces, in the order of :data:`FACE_NAMES`."""

    faces: tuple[FaceCondition, ...] = (FaceCondition(),) * 6

    def __post_init__(self) -> None:
        if len(self.faces) != 6:
            raise ScenarioError("a Boundary needs exactly six face conditions")

    @classmethod
    def body(cls, temperature_C: float = 37.0) -> Boundary:
        """All faces at body temperature (the tissue beyond the grid, far from the probe,
        is unaffected; held at the ghost voxels' centres, see the module docstring)."""
        return cls((FaceCondition("body", temperature_C),) * 6)

    @classmethod
    def held(cls, temperature_C: float) -> Boundary:
        """All faces held at ``temperature_C`` exactly at the face (Dirichlet)."""
        return cls((FaceCondition("temperature", temperature_C),) * 6)

    @classmethod
    def adiabatic(cls) -> Boundary:
        """All faces insulated."""
        return cls((FaceCondition("adiabatic"),) * 6)

    @classmethod
    def convective(cls, h_W_m2K: float, temperature_C: float) -> Boundary:
        """All faces exchange heat with an ambient at ``temperature_C``."""
        return cls((FaceCondition("convective", temperature_C, h_W_m2K),) * 6)

    def with_face(self, face: str, condition: FaceCondition) -> Boundary:
        """A copy with one face replaced (``face`` in :data:`FACE_NAMES`)."""
        if face not in FACE_NAMES:
            raise ScenarioError(f"unknown boundary face {face!r}; use one of {FACE_NAMES}")
        faces = list(self.faces)
        faces[FACE_NAMES.index(face)] = condition
        return Boundary(tuple(faces))

    @property
    def fixed_ghosts(self) -> bool:
        """True when no ghost depends on the interior (every face ``body``): the ghost
        layer then needs filling once, not after every step."""
        return all(f.kind == "body" for f in self.faces)

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(kind codes int64[6], temperatures float64[6], h float64[6]) for the kernels."""
        kinds = np.array([_KINDS[f.kind] for f in self.faces], dtype=np.int64)
        temps = np.array([f.temperature_C for f in self.faces], dtype=np.float64)
        hs = np.array([f.h_W_m2K for f in self.faces], dtype=np.float64)
        return kinds, temps, hs

    def face_weights(self, k_face: np.ndarray, spacing: float, face: int) -> np.ndarray:
        """Diagonal weight of each boundary voxel's outer face, in units of k_1/h^2.

        2 for a held temperature at the face, 1 for ``body``, 0 for adiabatic,
        beta/(1+beta/2) for convective.
        """
        f = self.faces[face]
        if f.kind == "temperature":
            return np.full_like(k_face, 2.0)
        if f.kind == "body":
            return np.ones_like(k_face)
        if f.kind == "adiabatic":
            return np.zeros_like(k_face)
        beta = f.h_W_m2K * spacing / k_face
        return beta / (1.0 + 0.5 * beta)


@jit_inline
def _ghost(kind, value, hcoef, t1, k1, h):
    if kind == 0:
        return 2.0 * value - t1
    if kind == 1:
        return t1
    if kind == 3:
        return value
    beta = hcoef * h / k1
    return t1 + beta * (value - t1) / (1.0 + 0.5 * beta)


@jit_serial
def fill_ghosts(T, k, kinds, values, hcoefs, h):
    """Write the ghost layer of the padded temperature ``T`` for the six face conditions.

    ``k`` is the padded conductivity (its ghost layer already a copy of the interior).
    Edge and corner ghosts are never read by the 7-point stencil and are left alone.
    """
    nx = T.shape[0] - 2
    ny = T.shape[1] - 2
    nz = T.shape[2] - 2
    for j in range(1, ny + 1):
        for m in range(1, nz + 1):
            T[0, j, m] = _ghost(kinds[0], values[0], hcoefs[0], T[1, j, m], k[1, j, m], h)
            T[nx + 1, j, m] = _ghost(kinds[1], values[1], hcoefs[1], T[nx, j, m], k[nx, j, m], h)
    for i in range(1, nx + 1):
        for m in range(1, nz + 1):
            T[i, 0, m] = _ghost(kinds[2], values[2], hcoefs[2], T[i, 1, m], k[i, 1, m], h)
            T[i, ny + 1, m] = _ghost(kinds[3], values[3], hcoefs[3], T[i, ny, m], k[i, ny, m], h)
        for j in range(1, ny + 1):
            T[i, j, 0] = _ghost(kinds[4], values[4], hcoefs[4], T[i, j, 1], k[i, j, 1], h)
            T[i, j, nz + 1] = _ghost(kinds[5], values[5], hcoefs[5], T[i, j, nz], k[i, j, nz], h)


def fill_ghosts_copy(a: np.ndarray) -> None:
    """Set the ghost layer of a padded array to a copy of the adjacent interior layer."""
    a[0, :, :] = a[1, :, :]
    a[-1, :, :] = a[-2, :, :]
    a[:, 0, :] = a[:, 1, :]
    a[:, -1, :] = a[:, -2, :]
    a[:, :, 0] = a[:, :, 1]
    a[:, :, -1] = a[:, :, -2]
