"""Tissue library: thermal, electrical, damage and freezing properties with their sources.

The packaged data live in ``library.toml`` next to this module; every number carries a source
tag resolved through the file's ``[references]`` table, so :meth:`TissueLibrary.source_of` can
say where any value comes from. All values are SI; the unit is written in each key name.

:mod:`.properties` says what a tissue is (:class:`Tissue`, :class:`Blood`, the keys),
:mod:`.validation` checks values (of the file and of a scenario's overrides) and
:mod:`.library` holds :class:`TissueLibrary`.

Examples
--------
>>> lib = TissueLibrary.default()
>>> round(lib["muscle"].perfusion_per_s, 7)
0.0006677
>>> round(lib["muscle"].perfusion_coefficient(lib.blood))
2535
>>> lib2 = lib.with_overrides({"muscle": {"perfusion_per_s": 0.002}})
>>> lib2["muscle"].perfusion_per_s, lib["muscle"].perfusion_per_s == lib2["muscle"].perfusion_per_s
(0.002, False)

References
----------
.. [1] Hasgall PA et al., IT'IS Database for thermal and electromagnetic parameters of
   biological tissues, Version 4.0 (2018), DOI 10.13099/VIP21000-04-0.
.. [2] Gabriel S, Lau RW, Gabriel C, The dielectric properties of biological tissues: III,
   Phys Med Biol 41:2271-2293 (1996), DOI 10.1088/0031-9155/41/11/003.
"""

from __future__ import annotations

from .library import USER_SOURCE, TissueLibrary
from .properties import BLOOD_KEYS, PROPERTY_KEYS, Blood, Tissue

__all__ = [
    "BLOOD_KEYS",
    "PROPERTY_KEYS",
    "USER_SOURCE",
    "Blood",
    "Tissue",
    "TissueLibrary",
]
