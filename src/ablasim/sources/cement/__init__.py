"""Bone cement (PMMA): the heat of its polymerisation, where it goes, and its leaks.

* :mod:`.kinetics` - the cure law, its parameter sets and the per-voxel kernel;
* :mod:`.filling` - the connected fill (tumour, then cancellous bone) and the leak;
* :mod:`.source` - :class:`CementSource` (``kind = "cement"``) and its bound state.
"""

from __future__ import annotations

from .kinetics import DEFAULT_KINETICS, KINETICS, Kinetics
from .source import BoundCement, CementSource

__all__ = ["DEFAULT_KINETICS", "KINETICS", "BoundCement", "CementSource", "Kinetics"]
