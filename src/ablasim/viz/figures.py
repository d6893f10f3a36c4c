"""What every picture module shares: saving a figure atomically."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.figure import Figure

from ..fileio import atomic_path

__all__ = ["save_figure"]


def save_figure(fig: Figure, save: str | os.PathLike, dpi: int = 130) -> Path:
    """Save ``fig`` atomically (no half-written file if drawing fails); the format comes
    from the suffix (default PNG)."""
    path = Path(save)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi)
    return path
