"""A sweep's result over two parameters, with the boundary between the safe and the
unsafe runs (the nerve verdict) drawn: ``sweep_map.png`` of ``ablasim sweep``."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .figures import save_figure

__all__ = ["plot_sweep_map"]


def _number(v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def plot_sweep_map(
    table: Sequence[Mapping[str, Any]],
    x_key: str,
    y_key: str,
    value_column: str = "max_nerve_temperature_C",
    *,
    ax: Axes | None = None,
    save: str | os.PathLike | None = None,
    title: str | None = None,
) -> Axes:
    """``value_column`` coloured over the grid of ``x_key`` and ``y_key``, each run marked
    safe (o, verdict PASS) or unsafe (x), and the safe/unsafe boundary drawn between
    them (the 0.5 contour of the verdict on the grid, when the grid is at least 2 x 2).

    Parameters
    ----------
    table : sequence of mappings
        The sweep's rows (``runs.csv`` / ``runs.parquet``: the keys' values, ``status``,
        ``verdict`` and the result columns); rows without status "ok" are left out.
    x_key, y_key : str
        The two varied keys.
    value_column : str, default "max_nerve_temperature_C"
    ax : matplotlib.axes.Axes, optional
    save : path, optional
        Save the figure there, atomically.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.collections[0]`` is the coloured grid (a QuadMesh).

    Raises
    ------
    ValueError
        A key or the column is not in the table, or no run finished.
    """
    rows = [r for r in table if r.get("status", "ok") == "ok"]
    if not rows:
        raise ValueError("no finished run (status 'ok') in the table to draw")
    for k in (x_key, y_key, value_column):
        if k not in rows[0]:
            raise ValueError(f"{k!r} is not a column of the table; columns: {sorted(rows[0])}")
    xs = sorted({_number(r[x_key]) for r in rows})
    ys = sorted({_number(r[y_key]) for r in rows})
    value = np.full((len(ys), len(xs)), np.nan)
    safe = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        i, j = ys.index(_number(r[y_key])), xs.index(_number(r[x_key]))
        value[i, j] = _number(r[value_column])
        safe[i, j] = 1.0 if r.get("verdict") == "PASS" else 0.0
    if ax is None:
        fig = Figure(figsize=(7.0, 5.4), layout="constrained")
        ax = fig.add_subplot()
    mesh = ax.pcolormesh(xs, ys, value, shading="nearest", cmap="inferno")
    cb = ax.figure.colorbar(mesh, ax=ax)
    cb.set_label(value_column)
    gx, gy = np.meshgrid(xs, ys)
    ok = safe == 1.0
    ax.scatter(gx[ok], gy[ok], marker="o", facecolors="none", edgecolors="#00d5ff", s=40)
    ax.scatter(gx[safe == 0.0], gy[safe == 0.0], marker="x", color="white", s=40)
    handles = [
        Line2D([], [], ls="", marker="o", mfc="none", mec="#00d5ff", label="safe (PASS)"),
        Line2D([], [], ls="", marker="x", color="0.3", label="unsafe"),
    ]
    if len(xs) >= 2 and len(ys) >= 2 and ok.any() and (safe == 0.0).any():
        cs = ax.contour(xs, ys, np.nan_to_num(safe, nan=0.5), levels=[0.5],
                        colors="#7CFC00", linewidths=2.2)  # fmt: skip
        cs.set_gid("boundary")
        handles.append(Line2D([], [], color="#7CFC00", lw=2.2, label="safe / unsafe boundary"))
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3,
              frameon=False, fontsize=8)  # fmt: skip
    ax.set_xlabel(x_key)
    ax.set_ylabel(y_key)
    ax.set_title(title or f"{value_column} over {x_key} and {y_key}", fontsize=10)
    if save is not None:
        save_figure(ax.figure, save)
    return ax
