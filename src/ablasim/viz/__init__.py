"""Pictures: matplotlib slices of label maps and temperature fields, time series.

OO matplotlib only (no pyplot state), so everything works headless with Agg; every
function takes ``ax=None`` (or returns a Figure), returns what it drew and can save a
PNG atomically.
"""

from __future__ import annotations

from .animation import write_isotherm_animation
from .damage import plot_damage_slices
from .envelope import plot_envelope
from .isotherms import plot_isotherm_panels, plot_isotherm_slice
from .labels import plot_labels
from .sweep import plot_sweep_map
from .timeseries import plot_power, plot_timeseries, plot_timeseries_panels

__all__ = [
    "plot_damage_slices",
    "plot_envelope",
    "plot_isotherm_panels",
    "plot_isotherm_slice",
    "plot_labels",
    "plot_power",
    "plot_sweep_map",
    "plot_timeseries",
    "plot_timeseries_panels",
    "write_isotherm_animation",
]
