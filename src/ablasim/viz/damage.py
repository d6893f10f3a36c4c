"""Damage maps: CEM43 and the Arrhenius damage integral Omega on the three planes through
the probe, with the ablation zone outlined.

CEM43 is drawn on a log scale (1 to 10^4 min) with the 240 min line marked, the usual
threshold for coagulative necrosis (Sapareto & Dewey 1984; Yarmolenko et al. 2011,
Int J Hyperthermia 27:320); Omega on a log scale with Omega = 4.6 marked (99 % of cells
dead, 1 - exp(-4.6) = 0.99; Henriques 1947, Pearce 2013). OO matplotlib only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib import patheffects
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..grid import Grid
from .figures import save_figure
from .isotherms import AXIS_INDEX as _AXIS_INDEX
from .isotherms import AXIS_LABELS as _AXLAB
from .isotherms import BOUNDARY_COLOR, NERVE_COLOR
from .isotherms import PLANES as _PLANES
from .isotherms import outline as _outline
from .isotherms import resolve_index as _resolve_index
from .isotherms import slice_of as _slice

__all__ = ["CEM43_LINE_MIN", "OMEGA_LINE", "plot_damage_slices"]

#: CEM43 marked on the map [min] (Sapareto & Dewey 1984).
CEM43_LINE_MIN = 240.0
#: Omega marked on the map: 99 % cell death (1 - exp(-4.6)).
OMEGA_LINE = 4.6
ZONE_COLOR = "#7CFC00"

# (field key, label, log range, marked level, colour map)
_ROWS = (
    ("cem43", "CEM43 [min]", (1.0, 1e4), CEM43_LINE_MIN, "magma"),
    ("omega", "Arrhenius Ω", (1e-2, 1e2), OMEGA_LINE, "viridis"),
)


def plot_damage_slices(
    grid: Grid,
    cem43: np.ndarray,
    omega: np.ndarray,
    *,
    probe: Sequence[float] | None = None,
    zone_mask: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    nerve_mask: Mapping[str, np.ndarray] | None = None,
    suptitle: str | None = None,
    save: str | os.PathLike | None = None,
) -> Figure:
    """CEM43 (top row) and Omega (bottom row) on the axial, sagittal and coronal planes
    through ``probe``.

    Parameters
    ----------
    grid : Grid
    cem43 : ndarray, shape ``grid.shape``
        Cumulative equivalent minutes at 43 °C [min].
    omega : ndarray, shape ``grid.shape``
        The Arrhenius damage integral [-].
    probe : 3 floats, optional
        World point [m] the planes pass through (default the grid centre).
    zone_mask : bool ndarray, optional
        The ablation zone, outlined in green.
    labels : int ndarray, optional
        Label map; tissue boundaries drawn in thin grey.
    nerve_mask : mapping of str to bool ndarray, optional
        Nerve structures, outlined in cyan.
    suptitle : str, optional
    save : path, optional
        Save the figure there (PNG), atomically.

    Returns
    -------
    matplotlib.figure.Figure
        Two rows of three axes; ``ax.images[0]`` is the damage image (values below the
        colour range are clipped to its low end, drawn as "none").
    """
    fields = {"cem43": np.asarray(cem43, dtype=float), "omega": np.asarray(omega, dtype=float)}
    for name, arr in fields.items():
        if arr.shape != tuple(grid.shape):
            raise ValueError(f"{name} has shape {arr.shape}, but the grid has shape {grid.shape}")
    idx = _resolve_index(grid, probe)
    h = grid.spacing * 1e3
    fig = Figure(figsize=(15.5, 10.6), layout="compressed")
    axes = fig.subplots(2, 3)
    for r, (key, label, (lo, hi), line, cmap) in enumerate(_ROWS):
        data = fields[key]
        im = None
        for c, axis in enumerate(("z", "x", "y")):
            ax = axes[r, c]
            plane, hax, vax = _PLANES[axis]
            a = _AXIS_INDEX[axis]
            bounds = [(b0 * 1e3, b1 * 1e3) for b0, b1 in grid.bounds]
            extent = (*bounds[hax], *bounds[vax])
            sl = np.clip(_slice(data, a, idx[a]), lo, hi)
            im = ax.imshow(sl.T, origin="lower", extent=extent, cmap=cmap,
                           norm=LogNorm(lo, hi), interpolation="nearest")  # fmt: skip
            x0, y0 = grid.origin[hax] * 1e3, grid.origin[vax] * 1e3
            if labels is not None:
                _outline(ax, _slice(np.asarray(labels), a, idx[a]), h, x0, y0,
                         color=BOUNDARY_COLOR, lw=0.6, zorder=2, alpha=0.9)  # fmt: skip
            if nerve_mask:
                union = np.zeros(grid.shape, dtype=bool)
                for m in nerve_mask.values():
                    union |= np.asarray(m, dtype=bool)
                _outline(ax, _slice(union, a, idx[a]), h, x0, y0, color=NERVE_COLOR,
                         lw=1.7, zorder=4)  # fmt: skip
            if zone_mask is not None:
                _outline(ax, _slice(np.asarray(zone_mask, dtype=bool), a, idx[a]), h, x0,
                         y0, color=ZONE_COLOR, lw=1.4, zorder=3)  # fmt: skip
            raw = _slice(data, a, idx[a])
            if min(raw.shape) >= 2 and raw.min() < line < raw.max():
                ax_h, ax_v = grid.axes()[hax] * 1e3, grid.axes()[vax] * 1e3
                cs = ax.contour(ax_h, ax_v, raw.T, levels=[line], colors="white",
                                linewidths=1.6, zorder=5)  # fmt: skip
                cs.set(path_effects=[patheffects.withStroke(linewidth=3.2, foreground="black")])
            pos = grid.index_to_world(idx)[a] * 1e3
            ax.set_title(f"{label}: {plane}  {axis} = {pos:.1f} mm\nmax {raw.max():.3g}",
                         fontsize=10)  # fmt: skip
            ax.set_xlim(extent[0], extent[1])
            ax.set_ylim(extent[2], extent[3])
            ax.set_xlabel(_AXLAB[hax])
            ax.set_ylabel(_AXLAB[vax])
        cb = fig.colorbar(im, ax=list(axes[r]), shrink=0.9, pad=0.01, extend="both")
        cb.set_label(f"{label} (log scale; white line {line:g})")
    marked = f"CEM43 {CEM43_LINE_MIN:g} min / Ω {OMEGA_LINE:g}"
    handles = [
        Line2D([], [], color="white", lw=1.6, label=marked,
               path_effects=[patheffects.withStroke(linewidth=3.2, foreground="black")]),
        Line2D([], [], color=ZONE_COLOR, lw=1.4, label="ablation zone"),
    ]  # fmt: skip
    if nerve_mask:
        handles.append(Line2D([], [], color=NERVE_COLOR, lw=1.7, label="nerves"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    if save is not None:
        save_figure(fig, save)
    return fig
