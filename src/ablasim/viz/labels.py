"""Orthogonal slices of a phantom's label map (matplotlib object-oriented API, no pyplot),
and the files ``ablasim phantom`` writes (:func:`write_phantom_outputs`).

Axes are world millimetres in RAS (+x right, +y anterior, +z superior), shown with the
coordinate increasing to the right and upwards (not the radiological left-right flip); the
axis labels name the directions. One fixed colour per tissue (``TISSUE_COLORS``), thin grey
lines between structures, and a legend naming each structure with its tissue.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..anatomy import Phantom, save_label_map, tissue_color
from ..fileio import atomic_path, atomic_write

__all__ = ["plot_labels", "write_phantom_outputs"]

_XLAB = "x [mm]   L ← → R"
_YLAB = "y [mm]   P ← → A"
_ZLAB = "z [mm]   I ← → S"


def _edges(sl: np.ndarray) -> np.ndarray:
    """Pixels whose label differs from the next pixel along either axis."""
    e = np.zeros(sl.shape, dtype=bool)
    d0 = sl[1:, :] != sl[:-1, :]
    d1 = sl[:, 1:] != sl[:, :-1]
    e[1:, :] |= d0
    e[:, 1:] |= d1
    return e


def _show(ax: Axes, sl: np.ndarray, lut: np.ndarray, extent, title, xlabel, ylabel, cross):
    """Draw one slice ``sl`` (indexed [horizontal, vertical]) as an RGB image."""
    rgb = lut[sl.T].copy()  # rows = vertical axis
    edge = _edges(sl.T)
    rgb[edge] = 0.55 * rgb[edge] + 0.45 * 0.25
    ax.imshow(rgb, origin="lower", extent=extent, interpolation="nearest", aspect="equal")
    ax.axvline(cross[0], color="k", lw=0.6, ls="--", alpha=0.5)
    ax.axhline(cross[1], color="k", lw=0.6, ls="--", alpha=0.5)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def plot_labels(
    phantom: Phantom,
    *,
    point: Sequence[float] | None = None,
    axes: Sequence[Axes] | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """Three orthogonal slices of a phantom's labels through a point, with a legend.

    Parameters
    ----------
    phantom : Phantom
        The phantom to draw.
    point : 3 floats, optional
        World point [m] the slices pass through; default the grid centre.
    axes : sequence of 3 or 4 matplotlib Axes, optional
        Where to draw the axial (z), sagittal (x) and coronal (y) slices, and the legend
        (4th axes; with 3 the legend goes on the figure). Default: a new 2 x 2 figure.
    save : str or os.PathLike, optional
        Save the figure there (format from the suffix, e.g. ``.png``), atomically.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Raises
    ------
    ScenarioError
        If ``point`` lies outside the grid.
    """
    grid = phantom.grid
    if point is None:
        centre = (np.asarray(grid.shape) - 1) // 2
        idx = tuple(int(i) for i in centre)
    else:
        idx = grid.world_to_index(point, name="plot point")
    i, j, k = idx
    pos_mm = grid.index_to_world(idx) * 1e3
    (x0, x1), (y0, y1), (z0, z1) = ((lo * 1e3, hi * 1e3) for lo, hi in grid.bounds)
    lut = np.array([tissue_color(t) for t in phantom.tissue_names()], dtype=float) / 255.0

    if axes is None:
        fig = Figure(figsize=(12, 10), layout="constrained")
        grid_axes = fig.subplots(2, 2)
        ax_list = [grid_axes[0, 0], grid_axes[0, 1], grid_axes[1, 0], grid_axes[1, 1]]
    else:
        ax_list = list(axes)
        if len(ax_list) not in (3, 4):
            raise ValueError(f"axes must hold 3 or 4 Axes, got {len(ax_list)}")
        fig = ax_list[0].figure

    labels = phantom.labels
    _show(
        ax_list[0],
        labels[:, :, k],
        lut,
        (x0, x1, y0, y1),
        f"axial  z = {pos_mm[2]:.1f} mm",
        _XLAB,
        _YLAB,
        (pos_mm[0], pos_mm[1]),
    )
    _show(
        ax_list[1],
        labels[i, :, :],
        lut,
        (y0, y1, z0, z1),
        f"sagittal  x = {pos_mm[0]:.1f} mm",
        _YLAB,
        _ZLAB,
        (pos_mm[1], pos_mm[2]),
    )
    _show(
        ax_list[2],
        labels[:, j, :],
        lut,
        (x0, x1, z0, z1),
        f"coronal  y = {pos_mm[1]:.1f} mm",
        _XLAB,
        _ZLAB,
        (pos_mm[0], pos_mm[2]),
    )

    handles = [
        Patch(facecolor=lut[n], edgecolor="0.3", label=f"{s.name} ({s.tissue})")
        for n, s in enumerate(phantom.structures)
    ]
    ncol = 1 if len(handles) <= 16 else 2
    if len(ax_list) == 4:
        leg_ax = ax_list[3]
        leg_ax.set_axis_off()
        leg_ax.legend(
            handles=handles,
            loc="center",
            fontsize=8,
            ncol=ncol,
            frameon=False,
            title="structure (tissue)",
        )
    else:
        fig.legend(handles=handles, loc="center right", fontsize=8, ncol=ncol)
    first_line = phantom.description.split(",")[0].split(". ")[0][:90]
    if axes is None:
        fig.suptitle(first_line, fontsize=11)
    if save is not None:
        path = Path(save)
        fmt = path.suffix.lstrip(".").lower() or "png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=110)
    return fig


def write_phantom_outputs(phantom: Phantom, out_dir, *, stem: str = "phantom") -> list[Path]:
    """Write the label map, its sidecars, a description and an orthogonal-slice PNG.

    Parameters
    ----------
    phantom : Phantom
        The phantom.
    out_dir : str or os.PathLike
        Output folder (created if missing).
    stem : str, default ``"phantom"``
        File name stem.

    Returns
    -------
    list of pathlib.Path
        ``<stem>.nii.gz``, ``<stem>.labels.json``, ``<stem>.ctbl`` (see
        :func:`~ablasim.anatomy.save_label_map`), ``<stem>.description.txt`` and
        ``<stem>.png``.
    """
    out = Path(out_dir)
    nii = save_label_map(phantom, out / f"{stem}.nii.gz")
    desc = out / f"{stem}.description.txt"
    with atomic_write(desc) as fh:
        fh.write(phantom.description + "\n")
    png = out / f"{stem}.png"
    plot_labels(phantom, save=png)
    return [nii, out / f"{stem}.labels.json", out / f"{stem}.ctbl", desc, png]
