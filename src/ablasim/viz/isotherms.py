"""Isotherm pictures: temperature slices with isotherm lines (the time series are in
:mod:`ablasim.viz.timeseries`).

Matplotlib's object-oriented API only (no pyplot state), so everything works headless with
the Agg backend. Every function takes ``ax=None`` (or makes its own
:class:`~matplotlib.figure.Figure`), returns what it drew, and can save the figure
atomically.

Conventions shared with :mod:`ablasim.viz.labels`: world millimetres in RAS (+x right,
+y anterior, +z superior), each coordinate increasing to the right and upwards (no
radiological left-right flip), with the axis labels naming the directions.

Colours: heating-only fields use *inferno* (perceptually uniform, dark = body temperature,
bright = hot); fields colder than the body use *coolwarm* (blue = frozen, grey-white =
37 °C, red = hot) split at 37 °C. Isotherms are white lines with a dark halo so they read on
any colour; the nerve limit (45 °C) is thicker and labelled as such; cold isotherms
(-20 °C, -40 °C for cryo) are dashed. Nerves are outlined in cyan, other tissue boundaries
in thin grey.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.colors import ListedColormap, Normalize, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..grid import Grid
from .figures import save_figure

__all__ = ["plot_isotherm_panels", "plot_isotherm_slice"]

BODY_C = 37.0
NERVE_COLOR = "#00d5ff"
BOUNDARY_COLOR = "0.62"
_STRUCTURE_COLORS = ("#7CFC00", "#ff66cc", "#ffd11a", "#b388ff", "#ff8c1a", "#66ffcc")

_AXLAB = {0: "x [mm]   L ← → R", 1: "y [mm]   P ← → A", 2: "z [mm]   I ← → S"}
# slice axis -> (name, horizontal axis, vertical axis)
_PLANES = {"z": ("axial", 0, 1), "x": ("sagittal", 1, 2), "y": ("coronal", 0, 2)}
_AXIS_INDEX = {"x": 0, "y": 1, "z": 2}


# -- helpers ---------------------------------------------------------------------------
def _slice(arr: np.ndarray, axis: int, index: int) -> np.ndarray:
    """2D slice of ``arr`` [x, y, z] perpendicular to ``axis``, indexed [horizontal, vertical]."""
    return np.take(np.asarray(arr), index, axis=axis)


def _face_segments(mask2d: np.ndarray, h: float, x0: float, y0: float) -> np.ndarray:
    """Line segments along the voxel faces where ``mask2d`` changes value.

    ``mask2d`` is indexed [horizontal, vertical]; pixel (i, j) has its centre at
    ``(x0 + i h, y0 + j h)``. Returns an array (n, 2, 2) of segments in the same units.
    """
    segs = []
    d = mask2d[1:, :] != mask2d[:-1, :]  # faces between columns i and i+1 -> vertical lines
    i, j = np.nonzero(d)
    xf = x0 + (i + 0.5) * h
    segs.append(np.stack([np.c_[xf, y0 + (j - 0.5) * h], np.c_[xf, y0 + (j + 0.5) * h]], 1))
    d = mask2d[:, 1:] != mask2d[:, :-1]  # faces between rows j and j+1 -> horizontal lines
    i, j = np.nonzero(d)
    yf = y0 + (j + 0.5) * h
    segs.append(np.stack([np.c_[x0 + (i - 0.5) * h, yf], np.c_[x0 + (i + 0.5) * h, yf]], 1))
    return np.concatenate(segs, axis=0)


def _outline(ax: Axes, mask2d, h, x0, y0, *, color, lw, zorder, alpha=1.0) -> LineCollection:
    segs = _face_segments(np.asarray(mask2d), h, x0, y0)
    lc = LineCollection(segs, colors=color, linewidths=lw, zorder=zorder, alpha=alpha)
    lc.set_capstyle("projecting")
    ax.add_collection(lc)
    return lc


def _color_scale(vmin: float, vmax: float, cold: bool):
    """(colormap, norm) for a temperature range [°C]."""
    if not cold:
        return "inferno", Normalize(vmin, vmax)
    if vmax > BODY_C + 0.5 and vmin < BODY_C:
        return "coolwarm", TwoSlopeNorm(vcenter=BODY_C, vmin=vmin, vmax=vmax)
    # cold only: the blue half of coolwarm, grey-white at body temperature
    from matplotlib import colormaps

    lower = colormaps["coolwarm"](np.linspace(0.0, 0.5, 256))
    return ListedColormap(lower, name="coolwarm_cold"), Normalize(vmin, max(vmax, vmin + 1e-6))


# The colour scale is clipped, not stretched to the field's extremes. A hot field is shown
# up to HOT_CLIP_C (or _CLIP_MARGIN_K above the highest isotherm drawn, if that is higher):
# every isotherm that decides a treatment lies at or below 60 °C (45 °C nerve limit, 50-60 °C
# lethal), and above 100 °C tissue water boils and the model leaves its range of validity
# (the vapour does not move). Unclipped, the few voxels at an RF electrode's edges (294 °C
# in vertebra-rf) squeeze 45-60 °C into 6 % of the colours; clipped, they get a quarter.
# A fixed physical threshold rather than a percentile of the heated voxels: a percentile
# moves with the grid spacing and the heated volume, so a colour would mean another
# temperature in the next run. Cold fields likewise at the low end: down to COLD_CLIP_C (or
# _CLIP_MARGIN_K below the coldest cold isotherm): -40 °C kills every cell (Gage & Baust,
# "Mechanisms of tissue injury in cryosurgery", Cryobiology 37:171-186, 1998), and a
# cryoprobe wall at -150 °C would otherwise take most of the scale. Clipped ends show as an
# arrow on the colour bar, whose label gives the clip and the field's true extreme.
HOT_CLIP_C = 100.0
COLD_CLIP_C = -50.0
_CLIP_MARGIN_K = 10.0


@dataclass(frozen=True)
class _Scale:
    """The colour range of a temperature field [°C] and the field's extremes."""

    vmin: float
    vmax: float
    lowest: float
    highest: float
    cold: bool  # a cold (cryo) picture: diverging colours split at 37 °C

    @property
    def extend(self) -> str:
        """Colour-bar arrows: which ends the range clips."""
        low, high = self.lowest < self.vmin, self.highest > self.vmax
        return {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
            (low, high), "both"
        )

    @property
    def label(self) -> str:
        notes = []
        if self.highest > self.vmax:
            notes.append(f"clipped at {self.vmax:g} °C; peak {self.highest:.0f} °C")
        if self.lowest < self.vmin:
            notes.append(f"clipped at {self.vmin:g} °C; lowest {self.lowest:.0f} °C")
        return "\n".join(["temperature [°C]", *notes])


def _scale(temperature: np.ndarray, vmin, vmax, isotherms, cold_isotherms) -> _Scale:
    """Colour range [°C]: whole degrees around the finite field values, clipped as the
    comment above says, unless ``vmin`` / ``vmax`` are given."""
    finite = np.asarray(temperature)[np.isfinite(temperature)]
    lo = float(finite.min()) if finite.size else BODY_C
    hi = float(finite.max()) if finite.size else BODY_C
    if vmax is None:
        cap = max([HOT_CLIP_C, *(float(v) + _CLIP_MARGIN_K for v in isotherms)])
        vmax = cap if hi > cap else float(np.ceil(hi))
    if vmin is None:
        floor = min([COLD_CLIP_C, *(float(v) - _CLIP_MARGIN_K for v in cold_isotherms)])
        vmin = floor if lo < floor else float(np.floor(lo))
    vmin, vmax = float(vmin), float(vmax)
    if vmax <= vmin:
        vmax = vmin + 1.0
    cold = bool(len(cold_isotherms)) or lo < BODY_C - 2
    return _Scale(vmin, vmax, lo, hi, cold)


def _resolve_index(grid: Grid, position) -> tuple[int, int, int]:
    if position is None:
        return tuple(int(n - 1) // 2 for n in grid.shape)
    return grid.world_to_index(position, name="slice position")


def _fmt_level(v: float) -> str:
    return f"{v:g} °C"


# -- one slice -------------------------------------------------------------------------
def plot_isotherm_slice(
    grid: Grid,
    temperature: np.ndarray,
    *,
    axis: str = "z",
    position: Sequence[float] | None = None,
    labels: np.ndarray | None = None,
    structures: Mapping[str, np.ndarray] | None = None,
    nerve_mask: np.ndarray | Mapping[str, np.ndarray] | None = None,
    isotherms: Sequence[float] = (45, 50, 60),
    cold_isotherms: Sequence[float] = (),
    ax: Axes | None = None,
    title: str | None = None,
    save: str | os.PathLike | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    nerve_limit: float = 45.0,
    mark: Sequence[float] | None = None,
    colorbar: bool = True,
    legend: bool = True,
) -> Axes:
    """A slice of the temperature field with labelled isotherms, tissue and nerve outlines.

    Parameters
    ----------
    grid : Grid
        The voxel grid of ``temperature``.
    temperature : ndarray, shape ``grid.shape``
        Temperature [°C], indexed [x, y, z].
    axis : {"z", "y", "x"}, default "z"
        The axis perpendicular to the slice: "z" axial, "y" coronal, "x" sagittal.
    position : 3 floats, optional
        World point [m] the slice passes through (snapped to the nearest voxel plane);
        default the grid centre.
    labels : ndarray of int, shape ``grid.shape``, optional
        Label map; the boundaries between labels are drawn as thin grey lines.
    structures : mapping of str to bool ndarray, optional
        Further structures to outline in their own colours and name in the legend (e.g. the
        tumour).
    nerve_mask : bool ndarray or mapping of str to bool ndarray, optional
        Nerve structures (spinal cord, roots), outlined in cyan.
    isotherms : sequence of float, default (45, 50, 60)
        Hot isotherms [°C], labelled on the lines; ``nerve_limit`` is drawn thicker.
    cold_isotherms : sequence of float, default ()
        Cold isotherms [°C] for cryo, e.g. (0, -20, -40); dashed. Giving any switches the
        colour map to the diverging cold/hot one.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    title : str, optional
        Prefix of the title; the plane and its position are always appended.
    save : str or os.PathLike, optional
        Save the axes' figure there (format from the suffix, e.g. ``.png``), atomically.
    vmin, vmax : float, optional
        Colour range [°C]; default whole degrees around the whole field's range (so slices
        of one field share a scale), clipped at 100 °C (or 10 K above the highest
        isotherm) and -50 °C (or 10 K below the coldest cold isotherm) so that a few
        extreme voxels do not squeeze the isotherms of interest. A clipped end shows as an
        arrow on the colour bar, whose label names the clip and the field's extreme.
    nerve_limit : float, default 45
        The isotherm drawn prominently as the nerve limit [°C].
    mark : 3 floats, optional
        A world point [m] to mark with a cross (e.g. the probe tip), if near the plane.
    colorbar : bool, default True
        Add a colour bar in °C next to the axes.
    legend : bool, default True
        Add a legend of the line styles.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on; the temperature image is ``ax.images[0]``.

    Raises
    ------
    ScenarioError
        If ``position`` lies outside the grid.
    ValueError
        If ``axis`` is not one of x, y, z or an array's shape differs from the grid's.
    """
    temperature = np.asarray(temperature, dtype=float)
    _check_shape("temperature", temperature, grid)
    scale = _scale(temperature, vmin, vmax, isotherms, cold_isotherms)
    ax, im, handles = _draw_slice(
        grid, temperature, axis=axis, position=position, labels=labels,
        structures=structures, nerve_mask=nerve_mask, isotherms=isotherms,
        cold_isotherms=cold_isotherms, ax=ax, title=title, scale=scale,
        nerve_limit=nerve_limit, mark=mark,
    )  # fmt: skip
    fig = ax.figure
    if colorbar:
        cb = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02, extend=scale.extend)
        cb.set_label(scale.label)
    if legend and handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.11), ncol=2,
                  fontsize=7.5, frameon=False, handlelength=2.2)  # fmt: skip
    if save is not None:
        save_figure(fig, save)
    return ax


def _draw_slice(
    grid, temperature, *, axis, position, labels, structures, nerve_mask, isotherms,
    cold_isotherms, ax, title, scale, nerve_limit, mark,
):  # fmt: skip
    """Draw one slice; return (axes, temperature image, legend handles)."""
    if axis not in _PLANES:
        raise ValueError(f"axis must be 'x', 'y' or 'z', got {axis!r}")
    temperature = np.asarray(temperature, dtype=float)
    _check_shape("temperature", temperature, grid)
    plane, hax, vax = _PLANES[axis]
    a = _AXIS_INDEX[axis]
    idx = _resolve_index(grid, position)
    pos_mm = grid.index_to_world(idx) * 1e3
    h = grid.spacing * 1e3
    x0 = grid.origin[hax] * 1e3
    y0 = grid.origin[vax] * 1e3
    bounds = [(lo * 1e3, hi * 1e3) for lo, hi in grid.bounds]
    extent = (*bounds[hax], *bounds[vax])

    cold = scale.cold
    cmap, norm = _color_scale(scale.vmin, scale.vmax, cold)

    if ax is None:
        fig = Figure(figsize=(6.4, 5.4), layout="constrained")
        ax = fig.add_subplot()

    sl = _slice(temperature, a, idx[a])
    im = ax.imshow(sl.T, origin="lower", extent=extent, cmap=cmap, norm=norm,
                   interpolation="nearest", aspect="equal", zorder=0)  # fmt: skip

    handles: list = []
    if labels is not None:
        lab = np.asarray(labels)
        _check_shape("labels", lab, grid)
        _outline(ax, _slice(lab, a, idx[a]), h, x0, y0, color=BOUNDARY_COLOR, lw=0.6,
                 zorder=2, alpha=0.9)  # fmt: skip
        handles.append(Line2D([], [], color=BOUNDARY_COLOR, lw=0.8, label="tissue boundary"))
    if structures:
        for n, (name, mask) in enumerate(structures.items()):
            m = np.asarray(mask, dtype=bool)
            _check_shape(f"structure {name!r}", m, grid)
            col = _STRUCTURE_COLORS[n % len(_STRUCTURE_COLORS)]
            _outline(ax, _slice(m, a, idx[a]), h, x0, y0, color=col, lw=1.2, zorder=3)
            handles.append(Line2D([], [], color=col, lw=1.4, label=name))
    if nerve_mask is not None and not (isinstance(nerve_mask, Mapping) and not nerve_mask):
        masks = nerve_mask if isinstance(nerve_mask, Mapping) else {"nerve": nerve_mask}
        union = np.zeros(grid.shape, dtype=bool)
        for name, mask in masks.items():
            m = np.asarray(mask, dtype=bool)
            _check_shape(f"nerve mask {name!r}", m, grid)
            union |= m
        _outline(ax, _slice(union, a, idx[a]), h, x0, y0, color=NERVE_COLOR, lw=1.7, zorder=4)
        names = ", ".join(masks) if isinstance(nerve_mask, Mapping) else "nerve"
        if len(names) > 40:
            names = f"nerves ({len(masks)} structures)"
        handles.append(Line2D([], [], color=NERVE_COLOR, lw=1.8, label=names))

    handles += _draw_isotherms(ax, grid, sl, hax, vax, isotherms, cold_isotherms, nerve_limit)

    if mark is not None:
        mk = np.asarray(mark, dtype=float) * 1e3
        if abs(mk[a] - pos_mm[a]) <= h:
            halo = [patheffects.withStroke(linewidth=3.5, foreground="black")]
            ax.plot(mk[hax], mk[vax], marker="+", ms=11, mew=2.0, color="white", zorder=6,
                    path_effects=halo)  # fmt: skip

    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(_AXLAB[hax])
    ax.set_ylabel(_AXLAB[vax])
    smax = float(np.nanmax(sl)) if np.isfinite(sl).any() else float("nan")
    smin = float(np.nanmin(sl)) if np.isfinite(sl).any() else float("nan")
    where = f"{plane}  {axis} = {pos_mm[a]:.1f} mm"
    extreme = f"min {smin:.1f} °C" if cold and not smax > BODY_C + 1 else f"max {smax:.1f} °C"
    head = f"{title} — {where}" if title else where
    ax.set_title(f"{head}\n{extreme} in this slice", fontsize=10)
    return ax, im, handles


def _check_shape(name: str, arr: np.ndarray, grid: Grid) -> None:
    if tuple(arr.shape) != tuple(grid.shape):
        raise ValueError(f"{name} has shape {arr.shape}, but the grid has shape {grid.shape}")


def _draw_isotherms(ax, grid, sl, hax, vax, hot, cold, nerve_limit) -> list:
    """Contour lines at the given levels (those crossing the slice), labelled inline."""
    if min(sl.shape) < 2 or not np.isfinite(sl).any():
        return []
    ax_h = grid.axes()[hax] * 1e3
    ax_v = grid.axes()[vax] * 1e3
    lo, hi = float(np.nanmin(sl)), float(np.nanmax(sl))
    halo = [patheffects.withStroke(linewidth=3.0, foreground="black", alpha=0.8)]
    handles = []
    specs = []
    for lev in sorted({float(v) for v in hot}):
        prominent = np.isclose(lev, nerve_limit)
        specs.append((lev, "-", 2.4 if prominent else 1.1, prominent))
    for lev in sorted({float(v) for v in cold}, reverse=True):
        specs.append((lev, "--", 1.3, False))
    for lev, ls, lw, prominent in specs:
        if not lo < lev < hi:
            continue
        cs = ax.contour(ax_h, ax_v, sl.T, levels=[lev], colors="white", linewidths=lw,
                        linestyles=ls, zorder=5)  # fmt: skip
        cs.set(path_effects=[patheffects.withStroke(linewidth=lw + 1.8, foreground="black",
                                                    alpha=0.75)])  # fmt: skip
        text = f"{lev:g} °C nerve limit" if prominent else _fmt_level(lev)
        labs = ax.clabel(cs, fmt={lev: text}, fontsize=8 if prominent else 7, inline=True,
                         inline_spacing=3)  # fmt: skip
        for t in labs:
            t.set_color("white")
            t.set_path_effects(halo)
            if prominent:
                t.set_fontweight("bold")
    present = [s for s in specs if lo < s[0] < hi]
    if any(s[3] for s in present):
        handles.append(
            Line2D([], [], color="white", lw=2.4, label=f"{nerve_limit:g} °C (nerve limit)",
                   path_effects=[patheffects.withStroke(linewidth=4.2, foreground="black")])
        )  # fmt: skip
    others = [s for s in present if not s[3]]
    if others:
        levels = ", ".join(f"{s[0]:g}" for s in others)
        style = "--" if all(s[1] == "--" for s in others) else "-"
        handles.append(
            Line2D([], [], color="white", lw=1.1, ls=style, label=f"isotherms {levels} °C",
                   path_effects=[patheffects.withStroke(linewidth=2.9, foreground="black")])
        )  # fmt: skip
    return handles


# -- panels ----------------------------------------------------------------------------
def plot_isotherm_panels(
    grid: Grid,
    temperature: np.ndarray,
    *,
    probe: Sequence[float] | None = None,
    nerve_point: Sequence[float] | None = None,
    save: str | os.PathLike | None = None,
    suptitle: str | None = None,
    **kw,
) -> Figure:
    """Axial, sagittal and coronal isotherm slices through the probe (and the nearest nerve).

    Parameters
    ----------
    grid : Grid
        The voxel grid of ``temperature``.
    temperature : ndarray, shape ``grid.shape``
        Temperature [°C], indexed [x, y, z].
    probe : 3 floats, optional
        World point [m] of the probe tip (or the treatment centre); the first row of slices
        passes through it and it is marked with a cross. Default the grid centre.
    nerve_point : 3 floats, optional
        World point [m] on the nearest nerve (e.g. its hottest voxel); if given, a second
        row of three slices passes through it.
    save : str or os.PathLike, optional
        Save the figure there as PNG (or the suffix's format), atomically.
    suptitle : str, optional
        Figure title (e.g. the scenario name).
    **kw
        Passed to :func:`plot_isotherm_slice`: ``labels``, ``structures``, ``nerve_mask``,
        ``isotherms``, ``cold_isotherms``, ``vmin``, ``vmax``, ``nerve_limit``.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one row of three axes per point, with one shared colour bar (clipped
        as in :func:`plot_isotherm_slice`).
    """
    allowed = ("labels", "structures", "nerve_mask", "isotherms", "cold_isotherms",
               "nerve_limit")  # fmt: skip
    unknown = sorted(set(kw) - {*allowed, "vmin", "vmax"})
    if unknown:
        raise TypeError(
            f"plot_isotherm_panels got unexpected keyword(s) {unknown}; allowed: "
            + ", ".join((*allowed, "vmin", "vmax"))
        )
    temperature = np.asarray(temperature, dtype=float)
    _check_shape("temperature", temperature, grid)
    opts = {
        "labels": None, "structures": None, "nerve_mask": None, "isotherms": (45, 50, 60),
        "cold_isotherms": (), "nerve_limit": 45.0,
    }  # fmt: skip
    opts.update({k: kw[k] for k in allowed if k in kw})
    scale = _scale(temperature, kw.get("vmin"), kw.get("vmax"), opts["isotherms"],
                   opts["cold_isotherms"])  # fmt: skip
    rows = [("probe", probe)]
    if nerve_point is not None:
        rows.append(("nearest nerve", nerve_point))

    fig = Figure(figsize=(15.5, 5.3 * len(rows) + 0.5), layout="compressed")
    axes = np.atleast_2d(fig.subplots(len(rows), 3))
    drawn = []
    handles: list = []
    for r, (what, point) in enumerate(rows):
        for c, axis in enumerate(("z", "x", "y")):
            _, im, h = _draw_slice(
                grid, temperature, axis=axis, position=point, ax=axes[r, c], title=what,
                scale=scale, mark=point, **opts,
            )  # fmt: skip
            drawn.append(im)
            known = {hd.get_label() for hd in handles}
            handles += [hd for hd in h if hd.get_label() not in known]
    cb = fig.colorbar(drawn[0], ax=list(axes.ravel()), shrink=0.85, pad=0.01, aspect=40,
                      extend=scale.extend)  # fmt: skip
    cb.set_label(scale.label)
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 5),
                   fontsize=8.5, frameon=False, handlelength=2.4)  # fmt: skip
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    if save is not None:
        save_figure(fig, save)
    return fig


# -- shared with the other slice pictures (viz.damage, viz.animation) ------------------
PLANES = _PLANES  # slice axis -> (plane name, horizontal axis, vertical axis)
AXIS_INDEX = _AXIS_INDEX
AXIS_LABELS = _AXLAB
color_scale = _color_scale
outline = _outline
resolve_index = _resolve_index
slice_of = _slice
