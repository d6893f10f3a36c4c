"""What a tissue is: its property keys (SI units in the names), :class:`Tissue` and the
arterial :class:`Blood` of the Pennes perfusion term."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BLOOD_KEYS", "META_KEYS", "PROPERTY_KEYS", "Blood", "ReadOnlyDict", "Tissue"]

#: Numeric property keys every tissue defines, in a stable order (units in the names).
PROPERTY_KEYS: tuple[str, ...] = (
    "density_kg_m3",
    "specific_heat_J_kgK",
    "conductivity_W_mK",
    "perfusion_per_s",
    "metabolic_W_m3",
    "heat_generation_W_kg",
    "conductivity_coeff_per_K",
    "specific_heat_coeff_per_K",
    "electrical_conductivity_S_m",
    "electrical_conductivity_coeff_per_K",
    "permittivity_915MHz",
    "electrical_conductivity_915MHz_S_m",
    "permittivity_2450MHz",
    "electrical_conductivity_2450MHz_S_m",
    "arrhenius_A_per_s",
    "arrhenius_Ea_J_mol",
    "water_fraction",
    "freezing_start_C",
    "freezing_end_C",
    "latent_heat_J_kg",
    "frozen_conductivity_W_mK",
    "frozen_specific_heat_J_kgK",
)

#: Keys of the ``[blood]`` table (arterial blood of the Pennes perfusion term).
BLOOD_KEYS: tuple[str, ...] = ("density_kg_m3", "specific_heat_J_kgK", "temperature_C")

#: Non-numeric keys a tissue entry (or an override) may carry besides the properties.
META_KEYS = ("description", "nerve", "based_on")


class ReadOnlyDict(Mapping[str, Any]):
    """A read-only mapping that, unlike ``types.MappingProxyType``, can be pickled."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return repr(self._data)

    def __getstate__(self) -> dict[str, Any]:
        return self._data

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._data = state


@dataclass(frozen=True)
class Blood:
    """Arterial blood entering the Pennes perfusion term ``ω ρ_b c_b (T_a − T)``."""

    density_kg_m3: float
    """Blood density ρ_b [kg/m^3]."""
    specific_heat_J_kgK: float
    """Blood specific heat c_b [J/kg/K]."""
    temperature_C: float
    """Arterial temperature T_a [°C]."""

    @property
    def rho_c(self) -> float:
        """Volumetric heat capacity ρ_b c_b [J/m^3/K]."""
        return self.density_kg_m3 * self.specific_heat_J_kgK


@dataclass(frozen=True)
class Tissue:
    """One tissue's properties (SI units, at 37 °C unless the name says otherwise).

    Temperature laws built on these values: ``k(T) = k (1 + conductivity_coeff_per_K (T − 37))``,
    likewise for ``c`` and the RF ``σ``; Arrhenius damage ``dΩ/dt = A exp(−E_a / (R T))``
    with ``T`` in kelvin; freezing spreads ``latent_heat_J_kg`` over
    ``[freezing_end_C, freezing_start_C]``.
    """

    name: str
    """Tissue name (snake_case), the key in the library."""
    description: str
    """What the tissue is and which database rows / proxies it uses."""
    nerve: bool
    """True for neural structures to protect (spinal cord, nerve roots)."""
    density_kg_m3: float
    """Density ρ [kg/m^3]."""
    specific_heat_J_kgK: float
    """Specific heat c [J/kg/K]."""
    conductivity_W_mK: float
    """Thermal conductivity k [W/m/K]."""
    perfusion_per_s: float
    """Blood perfusion ω, volume flow of blood per tissue volume [1/s]."""
    metabolic_W_m3: float
    """Metabolic heat Q_met used by the solver [W/m^3] (0 by ablation-model convention)."""
    heat_generation_W_kg: float
    """IT'IS heat-generation rate, informational [W/kg]; Q_met would be this × ρ [W/m^3]."""
    conductivity_coeff_per_K: float
    """Relative change of k per kelvin above 37 °C [1/K]."""
    specific_heat_coeff_per_K: float
    """Relative change of c per kelvin above 37 °C [1/K]."""
    electrical_conductivity_S_m: float
    """Electrical conductivity σ at RF (450-500 kHz) and 37 °C [S/m]."""
    electrical_conductivity_coeff_per_K: float
    """Relative change of the RF σ per kelvin above 37 °C [1/K]."""
    permittivity_915MHz: float
    """Relative permittivity ε_r at 915 MHz [-]."""
    electrical_conductivity_915MHz_S_m: float
    """Effective conductivity σ at 915 MHz [S/m]."""
    permittivity_2450MHz: float
    """Relative permittivity ε_r at 2.45 GHz [-]."""
    electrical_conductivity_2450MHz_S_m: float
    """Effective conductivity σ at 2.45 GHz [S/m]."""
    arrhenius_A_per_s: float
    """Arrhenius frequency factor A [1/s] (0: the material takes no damage)."""
    arrhenius_Ea_J_mol: float
    """Arrhenius activation energy E_a [J/mol]."""
    water_fraction: float
    """Mass fraction of water [-], between 0 and 1."""
    freezing_start_C: float
    """Temperature where freezing starts (top of the mushy zone) [°C]."""
    freezing_end_C: float
    """Temperature where freezing is complete (bottom of the mushy zone) [°C]."""
    latent_heat_J_kg: float
    """Latent heat of freezing per kg of tissue [J/kg]."""
    frozen_conductivity_W_mK: float
    """Thermal conductivity when fully frozen [W/m/K]."""
    frozen_specific_heat_J_kgK: float
    """Specific heat when fully frozen [J/kg/K]."""
    sources: Mapping[str, str] = field(default_factory=ReadOnlyDict, hash=False, repr=False)
    """Property key -> source string (``"tag; note"``, tag resolved by the library)."""
    ranges: Mapping[str, tuple[float, float, str]] = field(
        default_factory=ReadOnlyDict, hash=False, repr=False
    )
    """Property key -> ``(low, high, "tag; note")``: the spread the source publishes (only
    the properties whose source gives one)."""

    @property
    def rho_c(self) -> float:
        """Volumetric heat capacity ρ c [J/m^3/K]."""
        return self.density_kg_m3 * self.specific_heat_J_kgK

    def perfusion_coefficient(self, blood: Blood) -> float:
        """Pennes perfusion coefficient ``W = ω ρ_b c_b`` [W/m^3/K].

        Parameters
        ----------
        blood : Blood
            Arterial blood properties.

        Returns
        -------
        float
            Heat-exchange coefficient of the perfusion term [W/m^3/K].
        """
        return self.perfusion_per_s * blood.rho_c

    def values(self) -> dict[str, float]:
        """Return ``{key: value}`` for every entry of :data:`PROPERTY_KEYS`."""
        return {key: getattr(self, key) for key in PROPERTY_KEYS}


_TISSUE_FLOAT_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(Tissue)
    if f.name not in ("name", "description", "nerve", "sources", "ranges")
)
if _TISSUE_FLOAT_FIELDS != PROPERTY_KEYS:  # pragma: no cover - guards the two lists together
    raise RuntimeError("Tissue fields and PROPERTY_KEYS are out of sync")
