"""Pictures: matplotlib slices of label maps (OO API only, works headless with Agg)."""

from __future__ import annotations

from .labels import plot_labels

__all__ = ["plot_labels"]
