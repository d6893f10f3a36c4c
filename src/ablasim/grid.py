"""The voxel grid: shape, isotropic spacing, origin, and world <-> voxel conversions.

Positions are in metres in the world frame of the anatomy (RAS: +x right, +y anterior,
+z superior). Arrays are indexed ``[x, y, z]``; voxel ``(i, j, k)`` has its centre at
``origin + spacing * (i, j, k)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import ScenarioError

__all__ = ["Grid", "available_memory_bytes"]


def available_memory_bytes() -> int:
    """Memory this process can still use [B]: MemAvailable, capped by a cgroup limit."""
    avail = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path, encoding="ascii") as fh:
                text = fh.read().strip()
            if text != "max":
                limit = int(text)
                avail = limit if avail is None else min(avail, limit)
        except (OSError, ValueError):
            continue
    if avail is None:  # pragma: no cover - non-Linux
        avail = 8 * 1024**3
    return avail


@dataclass(frozen=True)
class Grid:
    """A regular 3D voxel grid with isotropic spacing.

    Parameters
    ----------
    shape : tuple of 3 int
        Number of voxels along x, y, z.
    spacing : float
        Voxel edge length [m].
    origin : tuple of 3 float
        World position of the centre of voxel (0, 0, 0) [m].
    """

    shape: tuple[int, int, int]
    spacing: float
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in np.atleast_1d(self.shape))
        if len(shape) != 3 or any(n < 1 for n in shape):
            raise ScenarioError(
                f"grid shape must be three positive integers, got {self.shape!r}; "
                "e.g. shape = [96, 96, 96]"
            )
        spacing = float(self.spacing)
        if not math.isfinite(spacing) or spacing <= 0:
            raise ScenarioError(
                f"grid spacing must be a positive number, got {self.spacing!r}; "
                "e.g. spacing_mm = 0.5"
            )
        origin = tuple(float(v) for v in np.atleast_1d(self.origin))
        if len(origin) != 3 or not all(math.isfinite(v) for v in origin):
            raise ScenarioError(f"grid origin must be three finite numbers, got {self.origin!r}")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_extent(
        cls,
        extent: float | tuple[float, float, float],
        spacing: float,
        *,
        center: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> Grid:
        """A grid covering ``extent`` [m] (one number for a cube) centred on ``center`` [m].

        The number of voxels per axis is ``round(extent / spacing)`` (at least 1).
        """
        ext = np.broadcast_to(np.asarray(extent, dtype=float), (3,))
        if not np.all(np.isfinite(ext)) or np.any(ext <= 0):
            raise ScenarioError(
                f"grid extent must be positive, got {extent!r}; e.g. extent_mm = [48, 48, 48]"
            )
        if not math.isfinite(float(spacing)) or float(spacing) <= 0:
            raise ScenarioError(
                f"grid spacing must be a positive number, got {spacing!r}; e.g. spacing_mm = 0.5"
            )
        shape = tuple(max(1, round(float(e) / spacing)) for e in ext)
        c = np.asarray(center, dtype=float)
        origin = c - 0.5 * (np.asarray(shape) - 1) * spacing
        return cls(shape, spacing, tuple(origin))

    # -- geometry -------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of voxels."""
        return self.shape[0] * self.shape[1] * self.shape[2]

    @property
    def voxel_volume(self) -> float:
        """Volume of one voxel [m^3]."""
        return self.spacing**3

    @property
    def extent(self) -> tuple[float, float, float]:
        """Edge lengths of the grid [m]."""
        return tuple(n * self.spacing for n in self.shape)

    @property
    def bounds(self) -> tuple[tuple[float, float], ...]:
        """(low, high) world coordinates of the outer faces along each axis [m]."""
        h = self.spacing
        return tuple(
            (o - 0.5 * h, o + (n - 0.5) * h) for o, n in zip(self.origin, self.shape, strict=True)
        )

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World coordinates of voxel centres along x, y, z [m]."""
        return tuple(
            o + self.spacing * np.arange(n) for o, n in zip(self.origin, self.shape, strict=True)
        )

    def mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable open mesh (x[:,None,None], y[None,:,None], z[None,None,:]) [m]."""
        x, y, z = self.axes()
        return x[:, None, None], y[None, :, None], z[None, None, :]

    def contains(self, point) -> bool:
        """Whether a world point [m] lies inside the grid's outer faces."""
        p = np.asarray(point, dtype=float)
        return all(lo <= v <= hi for v, (lo, hi) in zip(p, self.bounds, strict=True))

    def bounds_text(self) -> str:
        """The grid's outer faces for a message: ``"x, y, z from [...] to [...] mm"``."""
        lo = [round(b[0] * 1e3, 2) for b in self.bounds]
        hi = [round(b[1] * 1e3, 2) for b in self.bounds]
        return f"x, y, z from {lo} to {hi} mm"

    def world_to_index(self, point, *, name: str = "point") -> tuple[int, int, int]:
        """Index of the voxel containing a world point [m].

        Raises
        ------
        ScenarioError
            If the point lies outside the grid; the message names ``name``.
        """
        p = np.asarray(point, dtype=float)
        if p.shape != (3,) or not np.all(np.isfinite(p)):
            raise ScenarioError(f"{name} must be three finite coordinates, got {point!r}")
        if not self.contains(p):
            raise ScenarioError(
                f"{name} at {[round(float(v) * 1e3, 3) for v in p]} mm lies outside the grid "
                f"({self.bounds_text()}); move it inside or enlarge the grid extent"
            )
        idx = np.rint((p - np.asarray(self.origin)) / self.spacing).astype(int)
        idx = np.clip(idx, 0, np.asarray(self.shape) - 1)
        return tuple(int(i) for i in idx)

    def index_to_world(self, index) -> np.ndarray:
        """World position [m] of the centre of voxel ``index``."""
        return np.asarray(self.origin) + self.spacing * np.asarray(index, dtype=float)

    # -- memory ---------------------------------------------------------------------
    def check_memory(self, bytes_per_voxel: float, *, what: str = "the simulation") -> None:
        """Fail early if ``bytes_per_voxel * size`` will not fit in the available memory.

        Raises
        ------
        ScenarioError
            Naming the grid shape, the estimate and the fix (coarser spacing, smaller extent).
        """
        need = bytes_per_voxel * self.size
        avail = available_memory_bytes()
        if need > 0.8 * avail:
            raise ScenarioError(
                f"grid {self.shape} ({self.size:,} voxels) needs about {need / 1e9:.1f} GB for "
                f"{what}, but only {avail / 1e9:.1f} GB of memory is available; "
                "use a coarser spacing_mm or a smaller extent_mm"
            )
