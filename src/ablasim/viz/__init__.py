"""Pictures: matplotlib slices of label maps and temperature fields, time series.

OO matplotlib only (no pyplot state), so everything works headless with Agg; every
function takes ``ax=None`` (or returns a Figure), returns what it drew and can save a
PNG atomically.
"""

from __future__ import annotations

from .envelope import plot_envelope
from .isotherms import plot_isotherm_panels, plot_isotherm_slice
from .labels import plot_labels
from .timeseries import plot_power, plot_timeseries, plot_timeseries_panels

__all__ = [
    "plot_envelope",
    "plot_isotherm_panels",
    "plot_isotherm_slice",
    "plot_labels",
    "plot_power",
    "plot_timeseries",
    "plot_timeseries_panels",
]
