"""The isotherms growing: temperature snapshots of the three planes through the probe,
saved during a run (``[output] animation = true``), drawn frame by frame into a GIF
(Pillow, always there with matplotlib) and an MP4 where an ffmpeg writer exists.

Each frame shows the three planes on one colour scale (the whole run's range, so the
colours mean the same in every frame), the isotherms as white lines, the time and the
power delivered in the step before the snapshot.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib import patheffects
from matplotlib.animation import FFMpegWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ..fileio import atomic_path
from .isotherms import AXIS_LABELS as _AXLAB
from .isotherms import BOUNDARY_COLOR, NERVE_COLOR
from .isotherms import PLANES as _PLANES
from .isotherms import color_scale as _color_scale
from .isotherms import outline as _outline

__all__ = ["SNAPSHOT_PLANES", "planes_of", "write_isotherm_animation"]

#: The planes a snapshot holds, as the axis perpendicular to each.
SNAPSHOT_PLANES = ("z", "x", "y")


def planes_of(volume: np.ndarray, index) -> dict[str, np.ndarray]:
    """The planes of a volume (e.g. the labels) through the voxel ``index``, keyed as the
    snapshots are."""
    i, j, k = (int(v) for v in index)
    return {"z": volume[:, :, k], "x": volume[i, :, :], "y": volume[:, j, :]}


def _frame_title(t: float, power: float) -> str:
    m, s = divmod(float(t), 60.0)
    return f"t = {int(m)}:{s:04.1f} min   power {power:.1f} W"


def write_isotherm_animation(
    snapshots: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    isotherms: Sequence[float] = (45.0, 50.0, 60.0),
    cold_isotherms: Sequence[float] = (),
    fps: float = 4.0,
    title: str | None = None,
    dpi: int = 80,
) -> Path:
    """Draw the snapshots into an animation, one frame per snapshot.

    Parameters
    ----------
    snapshots : mapping
        What :class:`ablasim.observers.Snapshots` saves (``snapshots.npz``): ``time_s``
        and ``power_W`` (n,), one array of planes per axis in :data:`SNAPSHOT_PLANES`
        (``z``: (n, nx, ny), ``x``: (n, ny, nz), ``y``: (n, nx, nz)) [°C],
        ``origin_mm``, ``spacing_mm`` and ``index`` (the planes' voxel indices);
        optionally ``labels_<axis>`` (tissue boundaries, grey) and ``nerve_<axis>``
        (nerves, cyan), the same planes of the label map and the nerves' mask.
    path : path
        ``.gif`` (Pillow) or ``.mp4`` (needs ffmpeg: :class:`RuntimeError` without it).
    isotherms, cold_isotherms : sequence of float
        Levels drawn [°C]; cold ones dashed.
    fps : float, default 4
        Frames per second.
    title : str, optional
        Figure title above the frame's time and power.
    dpi : int, default 80

    Returns
    -------
    Path
        The file written (atomically).
    """
    path = Path(path)
    times = np.asarray(snapshots["time_s"], dtype=float)
    power = np.asarray(snapshots["power_W"], dtype=float)
    planes = {a: np.asarray(snapshots[a], dtype=float) for a in SNAPSHOT_PLANES}
    origin = np.asarray(snapshots["origin_mm"], dtype=float)
    h = float(snapshots["spacing_mm"])
    n = len(times)
    if n == 0:
        raise ValueError("no snapshots to animate")
    lo = min(float(p.min()) for p in planes.values())
    hi = max(float(p.max()) for p in planes.values())
    cold = bool(len(cold_isotherms)) or lo < 35.0
    vmin = min(np.floor(lo), 36.0)
    vmax = max(np.ceil(hi), 38.0)
    cmap, norm = _color_scale(vmin, vmax, cold)
    mp4 = path.suffix.lower() == ".mp4"
    if mp4 and not FFMpegWriter.isAvailable():
        raise RuntimeError("no ffmpeg writer: MP4 animations need ffmpeg on the PATH")

    fig = Figure(figsize=(13.0, 4.6), dpi=dpi, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    axes = fig.subplots(1, 3)
    levels = sorted({float(v) for v in (*isotherms, *cold_isotherms)})
    halo = [patheffects.withStroke(linewidth=2.6, foreground="black", alpha=0.75)]
    images = []
    for ax, axis in zip(axes, SNAPSHOT_PLANES, strict=True):
        name, hax, vax = _PLANES[axis]
        sl = planes[axis][0]
        extent = (
            origin[hax] - h / 2, origin[hax] + (sl.shape[0] - 0.5) * h,
            origin[vax] - h / 2, origin[vax] + (sl.shape[1] - 0.5) * h,
        )  # fmt: skip
        images.append(ax.imshow(sl.T, origin="lower", extent=extent, cmap=cmap, norm=norm,
                                interpolation="nearest"))  # fmt: skip
        a = {"x": 0, "y": 1, "z": 2}[axis]
        where = origin[a] + h * int(np.asarray(snapshots["index"])[a])
        ax.set_title(f"{name}  {axis} = {where:.1f} mm")
        x0, y0 = origin[hax], origin[vax]
        if f"labels_{axis}" in snapshots:
            _outline(ax, np.asarray(snapshots[f"labels_{axis}"]), h, x0, y0,
                     color=BOUNDARY_COLOR, lw=0.6, zorder=2, alpha=0.9)  # fmt: skip
        if f"nerve_{axis}" in snapshots:
            _outline(ax, np.asarray(snapshots[f"nerve_{axis}"], dtype=bool), h, x0, y0,
                     color=NERVE_COLOR, lw=1.5, zorder=4)  # fmt: skip
        ax.set_xlabel(_AXLAB[hax])
        ax.set_ylabel(_AXLAB[vax])
    cb = fig.colorbar(images[-1], ax=list(axes), shrink=0.9)
    cb.set_label("temperature [°C]")
    head = fig.suptitle("", fontsize=10)
    key = "white lines: " + ", ".join(f"{v:g}" for v in levels) + " °C"
    if any(f"nerve_{a}" in snapshots for a in SNAPSHOT_PLANES):
        key += "; cyan: nerves"
    contours: list = []

    def draw(f: int) -> None:
        nonlocal contours
        if f == 1:  # the layout is that of the first frame: not solved again
            fig.set_layout_engine("none")
        for cs in contours:
            cs.remove()
        contours = []
        for ax, axis, im in zip(axes, SNAPSHOT_PLANES, images, strict=True):
            _, hax, vax = _PLANES[axis]
            sl = planes[axis][f]
            im.set_data(sl.T)
            xs = origin[hax] + h * np.arange(sl.shape[0])
            ys = origin[vax] + h * np.arange(sl.shape[1])
            present = [v for v in levels if sl.min() < v < sl.max()]
            if present and min(sl.shape) >= 2:
                styles = ["--" if v < 37.0 else "-" for v in present]
                cs = ax.contour(xs, ys, sl.T, levels=present, colors="white",
                                linewidths=1.2, linestyles=styles)  # fmt: skip
                cs.set(path_effects=halo)
                contours.append(cs)
        text = _frame_title(times[f], power[f])
        head.set_text((f"{title} — {text}" if title else text) + f"\n{key}")

    with atomic_path(path) as tmp:
        if mp4:
            writer = FFMpegWriter(fps=fps)
            with writer.saving(fig, str(tmp), dpi):
                for f in range(n):
                    draw(f)
                    writer.grab_frame()
        else:
            # one draw a frame (matplotlib's PillowWriter draws twice: 0.27 s a frame on
            # the demo's 96 x 128 x 96 grid)
            frames = []
            for f in range(n):
                draw(f)
                canvas.draw()
                frames.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3].copy()))
            frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:],
                           duration=round(1000 / fps), loop=0)  # fmt: skip
    return path
