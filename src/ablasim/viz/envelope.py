"""The safe envelope over two keys: the boundary curve of ``ablasim envelope --along``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .figures import save_figure

__all__ = ["plot_envelope"]


def plot_envelope(
    envelope: Mapping[str, Any],
    *,
    ax: Axes | None = None,
    save: str | os.PathLike | None = None,
    title: str | None = None,
) -> Axes:
    """The boundary where the nerve verdict flips, against the second key.

    Parameters
    ----------
    envelope : mapping
        What :func:`ablasim.envelope.trace_boundary` returns (``envelope.json``): ``key``,
        ``along``, ``range`` and ``curve`` (``along_value``, ``safe_limit``,
        ``unsafe_from``, ``safe_side``, ``note`` per point).
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    save : str or os.PathLike, optional
        Save the axes' figure there, atomically.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.axes.Axes
        The boundary is the line with gid ``"boundary"``: the last safe value at each
        point, a bar up to the first unsafe one; points without a flip in the range are
        crosses at the range's edge (gid ``"no-flip"``).
    """
    if ax is None:
        ax = Figure(figsize=(7.0, 4.6), layout="constrained").add_subplot()
    curve = list(envelope["curve"])
    low, high = envelope["range"]
    found = [p for p in curve if p.get("safe_limit") is not None]
    x = np.array([p["along_value"] for p in found], dtype=float)
    safe = np.array([p["safe_limit"] for p in found], dtype=float)
    unsafe = np.array([p["unsafe_from"] for p in found], dtype=float)
    if len(found):
        order = np.argsort(x)
        x, safe, unsafe = x[order], safe[order], unsafe[order]
        mid = 0.5 * (safe + unsafe)
        below = found[0]["safe_side"] == "below"
        edge = low if below else high
        ax.fill_between(x, edge, mid, color="tab:green", alpha=0.15, lw=0, label="nerves safe")
        ax.plot(x, safe, "o-", color="tab:green", gid="boundary", label="last safe value")
        ax.vlines(x, safe, unsafe, color="tab:red", lw=2, label="first unsafe value")
    missing = [p for p in curve if p.get("safe_limit") is None]
    if missing:
        verdicts = [p["tried"][0]["verdict"] if p.get("tried") else "?" for p in missing]
        ys = [high if v == "PASS" else low for v in verdicts]
        ax.plot([p["along_value"] for p in missing], ys, "x", color="0.3", ms=9,
                gid="no-flip", label="no flip in the range")  # fmt: skip
    ax.set_ylim(min(low, high), max(low, high))
    ax.set_xlabel(envelope["along"])
    ax.set_ylabel(envelope["key"])
    ax.set_title(title or "Where the nerve verdict flips", fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    if save is not None:
        save_figure(ax.figure, save)
    return ax
