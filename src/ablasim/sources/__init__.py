"""Heat sources, all following the protocol of :mod:`.base`.

* :class:`VolumetricSource` - a prescribed power in a sphere, cylinder, box, label or map;
* :class:`MicrowaveSource` - an interstitial antenna at 915 MHz or 2.45 GHz (SAR surrogate
  on the tissues' dielectric attenuation) or a SAR map;
* :class:`RFSource` - electrodes, the quasi-static potential, the generator.
"""

from .base import BoundSource, HeatSource, HeldTemperature
from .microwave import MicrowaveSource
from .rf import RFSource
from .volumetric import VolumetricSource

__all__ = [
    "BoundSource",
    "HeatSource",
    "HeldTemperature",
    "MicrowaveSource",
    "RFSource",
    "VolumetricSource",
]
