"""RF probes on the grid: which voxels are electrode, insulated needle or cooled tip.

A voxel belongs to a part of a probe when its centre lies inside that part's capped
cylinder (the needle's ``diameter``). Each electrode also records its signed distance
field, which :class:`~ablasim.solvers.potential.PotentialSystem` uses to place the
electrode surface between voxel centres (second-order embedded electrodes).

Checks, each a :class:`~ablasim.errors.ScenarioError` naming the source: the needle is
thick enough for the grid spacing, every electrode lies inside the grid and contains
voxel centres, electrodes and needles of different probes do not overlap, and no
electrode touches a tissue RF must not touch
(:data:`~ablasim.sources.base.FORBIDDEN_PROBE_TISSUES`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ...errors import ScenarioError
from ..base import FORBIDDEN_PROBE_TISSUES

if TYPE_CHECKING:
    from ...grid import Grid
    from ...model import Model

__all__ = ["Electrodes", "Segment", "place_electrodes"]

#: A part of a probe: (proximal end, distal end [m], role, probe index); role one of
#: "active", "return", "gap", "shaft" (see :meth:`RFSource.segments`).
Segment = tuple[np.ndarray, np.ndarray, str, int]


@dataclass(frozen=True, eq=False)
class Electrodes:
    """The probes' parts on the grid (arrays of the grid's shape)."""

    #: 1 active electrode, 2 return electrode (bipolar), -1 insulated needle (shaft, gap),
    #: 0 tissue [int32].
    kind: np.ndarray
    #: Signed distance to the nearest electrode's surface [m], negative inside; 1 m far
    #: from every electrode.
    level: np.ndarray
    #: Voxels of a cooled probe's tip (electrodes and bipolar gap), held at the coolant
    #: temperature [bool].
    cooled: np.ndarray

    def box(self, margin_voxels: float) -> tuple[slice, ...]:
        """Index slices of the electrodes' bounding box grown by ``margin_voxels``."""
        out = []
        for axis in range(3):
            other = tuple(a for a in range(3) if a != axis)
            present = np.flatnonzero((self.kind > 0).any(axis=other))
            m = math.ceil(margin_voxels)
            lo, hi = int(present[0]) - m, int(present[-1]) + m + 1
            out.append(slice(max(lo, 0), min(hi, self.kind.shape[axis])))
        return tuple(out)


def place_electrodes(
    model: Model, segments: Sequence[Segment], *, diameter: float, cooled: bool, where: str
) -> Electrodes:
    """Voxelise the probes' ``segments`` on ``model``'s grid and check them.

    Parameters
    ----------
    model : Model
    segments : sequence of (proximal end, distal end, role, probe index)
        As :meth:`~ablasim.sources.rf.RFSource.segments` gives them [m].
    diameter : float
        Needle diameter [m].
    cooled : bool
        Internally cooled probe: electrodes and gap are marked in :attr:`Electrodes.cooled`.
    where : str
        What the error messages start with, e.g. ``"source 'rf'"``.

    Raises
    ------
    ScenarioError
        When a check of the module's description fails.
    """
    grid = model.grid
    h = grid.spacing
    n = where
    r = 0.5 * diameter
    if r < 0.5 * math.sqrt(2) * h * 1.0001:
        raise ScenarioError(
            f"{n}: the needle diameter {diameter * 1e3:g} mm is too thin for the grid "
            f"spacing {h * 1e3:g} mm (an electrode must contain voxel centres); use a "
            f"spacing of at most {diameter / math.sqrt(2) * 1e3:.2g} mm"
        )
    bounds = np.asarray(grid.bounds)
    lo_mm = [round(float(v) * 1e3, 1) for v in bounds[:, 0]]
    hi_mm = [round(float(v) * 1e3, 1) for v in bounds[:, 1]]
    X, Y, Z = grid.mesh()
    kind = np.zeros(grid.shape, dtype=np.int32)
    owner = np.full(grid.shape, -1, dtype=np.int32)
    level = np.full(grid.shape, 1.0)  # far from every electrode: 1 m
    blocked = np.zeros(grid.shape, dtype=bool)
    cool = np.zeros(grid.shape, dtype=bool)
    for i, (a, b, role, p) in enumerate(segments):
        what = f"{n} probe {p + 1}"
        k = {"active": 1, "return": 2}.get(role, -1)
        if k > 0:
            for end in (a, b):
                if np.any(end - r < bounds[:, 0]) or np.any(end + r > bounds[:, 1]):
                    raise ScenarioError(
                        f"{what}: the electrode reaches outside the grid (end at "
                        f"{[round(float(v) * 1e3, 2) for v in end]} mm, radius "
                        f"{r * 1e3:g} mm; grid {lo_mm} to {hi_mm} mm); the model "
                        "has tissue only inside the grid: move the tip or enlarge the grid"
                    )
        sub = _box(grid, a, b, r)
        xs, ys, zs = (X[sub[0]], Y[:, sub[1]], Z[:, :, sub[2]])
        phi = _segment_sdf(xs, ys, zs, a, b, r)
        inside = phi < 0
        if k > 0:
            if not inside.any():
                raise ScenarioError(
                    f"{what}: the electrode contains no voxel centre; refine the grid"
                )
            claimed = owner[sub] >= 0
            if np.any(inside & claimed & (owner[sub] != i)):
                raise ScenarioError(
                    f"{n}: electrodes overlap (probe {p + 1} runs into another "
                    "electrode); move the probes apart"
                )
            kind[sub][inside] = k
            owner[sub][inside] = i
            np.minimum(level[sub], phi, out=level[sub])
            if cooled:
                cool[sub] |= inside
        else:
            blocked[sub] |= inside
            if cooled and role == "gap":
                cool[sub] |= inside  # the bipolar gap is part of the cooled tip
    # the parts of one probe are disjoint along its axis, so a shared voxel means a
    # needle crossing another probe's electrode
    if np.any(blocked & (kind > 0)):
        raise ScenarioError(
            f"{n}: a needle shaft crosses an electrode of another probe; the probes "
            "overlap, move them apart"
        )
    kind[blocked & (kind == 0)] = -1
    labels = model.labels
    for s_i, s in enumerate(model.structures):
        if s.tissue in FORBIDDEN_PROBE_TISSUES and np.any((labels == s_i) & (kind > 0)):
            raise ScenarioError(
                f"{n}: an electrode lies in {s.tissue} ({s.name}), which RF must not "
                "touch; move the probe"
            )
    return Electrodes(kind=kind, level=level, cooled=cool)


def _segment_sdf(X, Y, Z, a, b, r):
    """Signed distance to a capped cylinder from ``a`` to ``b`` of radius ``r`` [m]."""
    d = b - a
    L = float(np.linalg.norm(d))
    u = d / L
    dx, dy, dz = X - a[0], Y - a[1], Z - a[2]
    s = dx * u[0] + dy * u[1] + dz * u[2]
    rad = np.sqrt(np.maximum(dx * dx + dy * dy + dz * dz - s * s, 0.0))
    dr = rad - r
    ds = np.abs(s - 0.5 * L) - 0.5 * L
    outside = np.sqrt(np.maximum(dr, 0.0) ** 2 + np.maximum(ds, 0.0) ** 2)
    return outside + np.minimum(np.maximum(dr, ds), 0.0)


def _box(grid: Grid, a, b, r) -> tuple[slice, ...]:
    """Index slices of the voxels within ``r`` + 2 voxels of the segment a–b."""
    h = grid.spacing
    o = np.asarray(grid.origin)
    lo = np.minimum(a, b) - r - 2 * h
    hi = np.maximum(a, b) + r + 2 * h
    i0 = np.clip(np.floor((lo - o) / h).astype(int), 0, np.asarray(grid.shape))
    i1 = np.clip(np.ceil((hi - o) / h).astype(int) + 1, 0, np.asarray(grid.shape))
    return tuple(slice(int(i0[d]), int(i1[d])) for d in range(3))
