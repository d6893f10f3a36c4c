"""Heat sources, all following the protocol of :mod:`.base`, found through a registry.

* ``volumetric`` (:class:`VolumetricSource`) - a prescribed power in a sphere, cylinder,
  box, label or map;
* ``microwave`` (:class:`MicrowaveSource`) - an interstitial antenna at 915 MHz or
  2.45 GHz (SAR surrogate on the tissues' dielectric attenuation) or a SAR map;
* ``rf`` (:class:`RFSource`) - electrodes, the quasi-static potential, the generator;
* ``cryo`` (:class:`CryoSource`) - cryoprobes whose walls follow a freeze / thaw / off
  protocol;
* ``cement`` (:class:`CementSource`) - PMMA bone cement: its cure heat, its fill, leaks.
* ``protection`` (:class:`ProtectionSource`) - a CO₂ or saline layer between the target
  and a nerve (no heat of its own: a new material, held if circulating).

A new kind is a module with a :class:`Source` subclass decorated with :func:`register`;
the scenario reader, the report, the command line's help and ``ablasim compile`` loop
over :data:`SOURCES`.
"""

from __future__ import annotations

from .base import BoundSource, HeldTemperature, MaterialChange, Needle, ScaledBoundSource, Source
from .registry import (
    SOURCES,
    read_source,
    read_source_table,
    register,
    source_class,
)

# the built-in kinds register themselves on import
from .cement import CementSource  # isort: skip
from .cryo import CryoSource  # isort: skip
from .microwave import MicrowaveSource  # isort: skip
from .protection import ProtectionSource  # isort: skip
from .rf import RFSource  # isort: skip
from .volumetric import VolumetricSource  # isort: skip

__all__ = [
    "SOURCES",
    "BoundSource",
    "CementSource",
    "CryoSource",
    "HeldTemperature",
    "MaterialChange",
    "MicrowaveSource",
    "Needle",
    "ProtectionSource",
    "RFSource",
    "ScaledBoundSource",
    "Source",
    "VolumetricSource",
    "read_source",
    "read_source_table",
    "register",
    "source_class",
]
