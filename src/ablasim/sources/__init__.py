"""Heat sources, all following the protocol of :mod:`.base`."""

from .base import BoundSource, HeatSource, HeldTemperature
from .volumetric import VolumetricSource

__all__ = ["BoundSource", "HeatSource", "HeldTemperature", "VolumetricSource"]
