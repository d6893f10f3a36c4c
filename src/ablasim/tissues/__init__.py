"""Tissue library: thermal, electrical, damage and freezing properties with their sources.

The packaged data live in ``library.toml`` next to this module; every number carries a source
tag resolved through the file's ``[references]`` table, so :meth:`TissueLibrary.source_of` can
say where any value comes from. All values are SI; the unit is written in each key name.

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

import dataclasses
import functools
import math
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from ablasim.errors import ScenarioError, suggest

__all__ = [
    "BLOOD_KEYS",
    "PROPERTY_KEYS",
    "Blood",
    "Tissue",
    "TissueLibrary",
]

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

#: Non-numeric keys a tissue entry may carry besides the properties.
_META_KEYS = ("description", "nerve", "based_on")

#: Source string given to values set through :meth:`TissueLibrary.with_overrides`.
USER_SOURCE = "user override"

# Physical range rules: key -> (kind, human-readable requirement).
_POSITIVE = frozenset(
    {
        "density_kg_m3",
        "specific_heat_J_kgK",
        "conductivity_W_mK",
        "frozen_conductivity_W_mK",
        "frozen_specific_heat_J_kgK",
    }
)
_NON_NEGATIVE = frozenset(
    {
        "perfusion_per_s",
        "metabolic_W_m3",
        "heat_generation_W_kg",
        "electrical_conductivity_S_m",
        "electrical_conductivity_915MHz_S_m",
        "electrical_conductivity_2450MHz_S_m",
        "water_fraction",
        "latent_heat_J_kg",
        "arrhenius_A_per_s",
        "arrhenius_Ea_J_mol",
    }
)
_AT_LEAST_ONE = frozenset({"permittivity_915MHz", "permittivity_2450MHz"})


class _ReadOnlyDict(Mapping[str, Any]):
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
    sources: Mapping[str, str] = field(default_factory=_ReadOnlyDict, hash=False, repr=False)
    """Property key -> source string (``"tag; note"``, tag resolved by the library)."""

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
    if f.name not in ("name", "description", "nerve", "sources")
)
if _TISSUE_FLOAT_FIELDS != PROPERTY_KEYS:  # pragma: no cover - guards the two lists together
    raise RuntimeError("Tissue fields and PROPERTY_KEYS are out of sync")


# --------------------------------------------------------------------------- validation


def _source_tag(source: str) -> str:
    """Return the reference tag of a source string: the first word before any ``;``."""
    head = source.split(";", 1)[0].strip()
    return head.split()[0] if head else ""


def _check_number(path: str, value: object) -> float:
    """Return ``value`` as a float or raise :class:`ScenarioError` naming ``path``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ScenarioError(
            f"{path} = {value!r} is not a number; give a plain number in SI units "
            f"(no quotes, no unit suffix)"
        )
    number = float(value)
    if not math.isfinite(number):
        raise ScenarioError(f"{path} = {value!r} is not finite; give a finite number")
    return number


def _check_property(path: str, key: str, value: object) -> float:
    """Check one tissue property value against its physical range."""
    number = _check_number(path, value)
    if key in _POSITIVE and number <= 0.0:
        raise ScenarioError(f"{path} = {value!r} must be > 0; give a positive value in SI units")
    if key in _NON_NEGATIVE and number < 0.0:
        raise ScenarioError(f"{path} = {value!r} must be >= 0; give zero or a positive value")
    if key in _AT_LEAST_ONE and number < 1.0:
        raise ScenarioError(
            f"{path} = {value!r} must be >= 1 (relative permittivity of a material)"
        )
    if key == "water_fraction" and number > 1.0:
        raise ScenarioError(
            f"{path} = {value!r} must be <= 1 (mass fraction); e.g. 0.75 for 75 % water"
        )
    return number


def _check_tissue_consistency(path: str, values: Mapping[str, float]) -> None:
    """Checks that involve more than one property of a tissue."""
    start, end = values["freezing_start_C"], values["freezing_end_C"]
    if not end < start:
        raise ScenarioError(
            f"{path}.freezing_end_C = {end!r} must be below {path}.freezing_start_C = {start!r}; "
            f"freezing runs from the start (e.g. -1) down to the end (e.g. -8)"
        )


def _check_unknown_key(path: str, key: str, allowed: Sequence[str]) -> None:
    if key not in allowed:
        raise ScenarioError(f"unknown property key {path}.{key}{suggest(key, allowed)}")


def _check_bool(path: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{path} = {value!r} must be true or false (a boolean)")
    return value


def _check_str(path: str, value: object) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"{path} = {value!r} must be a string")
    return value


# --------------------------------------------------------------------------- parsing


def _parse_entry(path: str, entry: object) -> tuple[object, str]:
    """Split a file entry ``{value = ..., source = "..."}`` into value and source."""
    if not isinstance(entry, Mapping) or set(entry) != {"value", "source"}:
        raise ScenarioError(
            f'{path} = {entry!r} must be a table {{ value = <number>, source = "<tag>; note" }}'
        )
    return entry["value"], _check_str(f"{path}.source", entry["source"])


def _check_source(path: str, source: str, references: Mapping[str, str]) -> None:
    tag = _source_tag(source)
    if tag not in references:
        raise ScenarioError(
            f"{path}.source = {source!r}: reference tag {tag!r} is not in [references]"
            f"{suggest(tag, references)}; add it there or fix the tag"
        )


def _parse_document(doc: Mapping[str, Any], origin: str) -> TissueLibrary:
    """Build a :class:`TissueLibrary` from a parsed TOML document, validating everything."""
    references = doc.get("references")
    if not isinstance(references, Mapping) or not references:
        raise ScenarioError(f'{origin}: missing [references] table (tag = "full citation")')
    for tag, text in references.items():
        _check_str(f"{origin}: references.{tag}", text)
    references = dict(references)
    references.setdefault("user", "user override given in the scenario")

    blood_doc = doc.get("blood")
    if not isinstance(blood_doc, Mapping):
        raise ScenarioError(f"{origin}: missing [blood] table with keys {', '.join(BLOOD_KEYS)}")
    missing = [k for k in BLOOD_KEYS if k not in blood_doc]
    if missing:
        raise ScenarioError(f"{origin}: [blood] is missing {', '.join(missing)}; add them")
    blood_values: dict[str, float] = {}
    blood_sources: dict[str, str] = {}
    for key, entry in blood_doc.items():
        path = f"{origin}: blood.{key}"
        _check_unknown_key(f"{origin}: blood", key, BLOOD_KEYS)
        value, source = _parse_entry(path, entry)
        _check_source(path, source, references)
        blood_values[key] = _check_blood_value(path, key, value)
        blood_sources[key] = source

    tissues_doc = doc.get("tissue")
    if not isinstance(tissues_doc, Mapping) or not tissues_doc:
        raise ScenarioError(f"{origin}: no [tissue.<name>] tables found")
    tissues: dict[str, Tissue] = {}
    for name, tdoc in tissues_doc.items():
        tpath = f"{origin}: tissue.{name}"
        if not isinstance(tdoc, Mapping):
            raise ScenarioError(f"{tpath} must be a table")
        values: dict[str, float] = {}
        sources: dict[str, str] = {}
        for key, entry in tdoc.items():
            if key in ("description", "nerve"):
                continue
            _check_unknown_key(tpath, key, (*PROPERTY_KEYS, "description", "nerve"))
            value, source = _parse_entry(f"{tpath}.{key}", entry)
            _check_source(f"{tpath}.{key}", source, references)
            values[key] = _check_property(f"{tpath}.{key}", key, value)
            sources[key] = source
        missing = [k for k in PROPERTY_KEYS if k not in values]
        if missing:
            raise ScenarioError(f"{tpath} is missing {', '.join(missing)}; add them with a source")
        _check_tissue_consistency(tpath, values)
        tissues[name] = Tissue(
            name=name,
            description=_check_str(f"{tpath}.description", tdoc.get("description", "")),
            nerve=_check_bool(f"{tpath}.nerve", tdoc.get("nerve", False)),
            sources=_ReadOnlyDict(sources),
            **values,
        )
    return TissueLibrary(
        tissues,
        Blood(**blood_values),
        references=references,
        blood_sources=blood_sources,
    )


def _check_blood_value(path: str, key: str, value: object) -> float:
    number = _check_number(path, value)
    if key != "temperature_C" and number <= 0.0:
        raise ScenarioError(f"{path} = {value!r} must be > 0; give a positive value in SI units")
    return number


@functools.lru_cache(maxsize=1)
def _default_library() -> TissueLibrary:
    data = resources.files(__name__).joinpath("library.toml").read_bytes()
    return _parse_document(tomllib.loads(data.decode("utf-8")), "library.toml")


# --------------------------------------------------------------------------- library


class TissueLibrary:
    """An immutable, validated set of tissues plus the blood of the perfusion term.

    Parameters
    ----------
    tissues : Mapping[str, Tissue]
        Tissues by name.
    blood : Blood
        Arterial blood properties.
    references : Mapping[str, str]
        Source tag -> full citation.
    blood_sources : Mapping[str, str], optional
        Blood key -> source string.

    Notes
    -----
    Build one with :meth:`default` (the packaged ``library.toml``) or :meth:`from_file`;
    derive a modified copy with :meth:`with_overrides`.
    """

    def __init__(
        self,
        tissues: Mapping[str, Tissue],
        blood: Blood,
        *,
        references: Mapping[str, str],
        blood_sources: Mapping[str, str] | None = None,
    ) -> None:
        self._tissues: Mapping[str, Tissue] = _ReadOnlyDict(dict(tissues))
        self._blood = blood
        self._references: Mapping[str, str] = _ReadOnlyDict(dict(references))
        self._blood_sources: Mapping[str, str] = _ReadOnlyDict(dict(blood_sources or {}))

    # -- construction ---------------------------------------------------------------

    @classmethod
    def default(cls) -> TissueLibrary:
        """Return the packaged library (``ablasim/tissues/library.toml``), parsed once."""
        return _default_library()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TissueLibrary:
        """Read and validate a library TOML file with the layout of the packaged one.

        Parameters
        ----------
        path : str or os.PathLike
            TOML file with ``[references]``, ``[blood]`` and ``[tissue.<name>]`` tables.

        Raises
        ------
        ScenarioError
            If the file is missing, is not valid TOML, or any entry fails validation.
        """
        try:
            with open(path, "rb") as fh:
                doc = tomllib.load(fh)
        except FileNotFoundError:
            raise ScenarioError(f"tissue library file {os.fspath(path)!r} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"tissue library file {os.fspath(path)!r}: {exc}") from None
        return _parse_document(doc, os.path.basename(os.fspath(path)))

    # -- access ------------------------------------------------------------------

    @property
    def names(self) -> tuple[str, ...]:
        """Tissue names in file order."""
        return tuple(self._tissues)

    @property
    def blood(self) -> Blood:
        """Arterial blood properties."""
        return self._blood

    @property
    def references(self) -> Mapping[str, str]:
        """Source tag -> full citation (read-only)."""
        return self._references

    def __contains__(self, name: object) -> bool:
        return name in self._tissues

    def __iter__(self) -> Iterator[str]:
        return iter(self._tissues)

    def __len__(self) -> int:
        return len(self._tissues)

    def __getitem__(self, name: str) -> Tissue:
        try:
            return self._tissues[name]
        except (KeyError, TypeError):
            raise ScenarioError(
                f"unknown tissue {name!r}{suggest(str(name), self._tissues)}"
            ) from None

    def __repr__(self) -> str:
        return f"TissueLibrary({len(self)} tissues: {', '.join(self.names)})"

    def source_of(self, tissue: str, key: str) -> str:
        """Full citation for one number: the resolved reference, plus the note if any.

        Parameters
        ----------
        tissue : str
            Tissue name (for the ``[blood]`` table of the perfusion term use
            :meth:`blood_source`).
        key : str
            Property key.

        Returns
        -------
        str
            ``"<citation> [note: <note>]"``.
        """
        tis = self[tissue]
        if key not in PROPERTY_KEYS:
            raise ScenarioError(
                f"unknown property key tissues.{tissue}.{key}{suggest(key, PROPERTY_KEYS)}"
            )
        source = tis.sources.get(key, "")
        return self._resolve(source)

    def blood_source(self, key: str) -> str:
        """Full citation for a value of the ``[blood]`` table (see :meth:`source_of`)."""
        if key not in BLOOD_KEYS:
            raise ScenarioError(f"unknown blood key blood.{key}{suggest(key, BLOOD_KEYS)}")
        return self._resolve(self._blood_sources.get(key, ""))

    def _resolve(self, source: str) -> str:
        tag = _source_tag(source)
        citation = self._references.get(tag)
        if citation is None:
            return source
        note = source.split(";", 1)[1].strip() if ";" in source else ""
        return f"{citation} [note: {note}]" if note else citation

    def table(self, names: Sequence[str], key: str) -> np.ndarray:
        """Property ``key`` of each tissue in ``names``, in that order.

        Parameters
        ----------
        names : sequence of str
            Tissue names (e.g. the label -> tissue list of a segmented grid).
        key : str
            One of :data:`PROPERTY_KEYS`.

        Returns
        -------
        numpy.ndarray
            float64 array of shape ``(len(names),)``, in the unit of ``key``.
        """
        if key not in PROPERTY_KEYS:
            raise ScenarioError(f"unknown property key {key!r}{suggest(key, PROPERTY_KEYS)}")
        if isinstance(names, str):
            names = (names,)
        return np.array([getattr(self[n], key) for n in names], dtype=np.float64)

    def describe(self, names: Sequence[str] | None = None) -> str:
        """Plain-text table of the main properties, for ``ablasim tissues``.

        Parameters
        ----------
        names : sequence of str, optional
            Tissues to list; all of them by default.

        Returns
        -------
        str
            One line per tissue: ρ [kg/m^3], c [J/kg/K], k [W/m/K], ω [1/s], RF σ [S/m];
            ``*`` marks a nerve (protected structure).
        """
        names = self.names if names is None else tuple(names)
        width = max([len("tissue")] + [len(n) + 1 for n in names])
        header = (
            f"{'tissue':<{width}}  {'rho[kg/m3]':>10}  {'c[J/kg/K]':>9}  {'k[W/m/K]':>8}  "
            f"{'omega[1/s]':>10}  {'sigma[S/m]':>10}"
        )
        lines = [header, "-" * len(header)]
        for n in names:
            t = self[n]
            label = n + ("*" if t.nerve else "")
            lines.append(
                f"{label:<{width}}  {t.density_kg_m3:>10.2f}  {t.specific_heat_J_kgK:>9.1f}  "
                f"{t.conductivity_W_mK:>8.4f}  {t.perfusion_per_s:>10.3e}  "
                f"{t.electrical_conductivity_S_m:>10.4g}"
            )
        lines.append(
            f"blood (perfusion term): rho_b {self._blood.density_kg_m3:g} kg/m3, "
            f"c_b {self._blood.specific_heat_J_kgK:g} J/kg/K, T_a {self._blood.temperature_C:g} C"
            "; * = nerve (protected)"
        )
        return "\n".join(lines)

    # -- derivation -------------------------------------------------------------

    def with_overrides(
        self,
        overrides: Mapping[str, Mapping[str, object]],
        *,
        blood: Mapping[str, float] | None = None,
    ) -> TissueLibrary:
        """Return a new library with some values replaced or tissues added.

        Parameters
        ----------
        overrides : Mapping[str, Mapping[str, object]]
            ``{tissue: {key: value}}``, e.g. ``{"muscle": {"perfusion_per_s": 0.002}}``.
            Keys are :data:`PROPERTY_KEYS` (SI units) plus ``description`` and ``nerve``.
            A tissue name not in the library adds a tissue: give ``based_on = "<tissue>"``
            (its values are copied, then overridden) or every property key.
        blood : Mapping[str, float], optional
            Replacements for the ``[blood]`` values (:data:`BLOOD_KEYS`).

        Returns
        -------
        TissueLibrary
            A new library; ``self`` is left unchanged. Overridden values get the source
            ``"user override"``.

        Raises
        ------
        ScenarioError
            Naming the key path (``tissues.<name>.<key>``), the bad value and the fix.
        """
        if not isinstance(overrides, Mapping):
            raise ScenarioError(
                f"tissues = {overrides!r} must be a table of tissue tables, "
                f'e.g. {{"muscle": {{"perfusion_per_s": 0.002}}}}'
            )
        tissues = dict(self._tissues)
        allowed = PROPERTY_KEYS + _META_KEYS
        for name, props in overrides.items():
            tpath = f"tissues.{name}"
            if not isinstance(name, str) or not name:
                raise ScenarioError(f"tissue name {name!r} must be a non-empty string")
            if not isinstance(props, Mapping):
                raise ScenarioError(
                    f"{tpath} = {props!r} must be a table of property = value, "
                    f'e.g. {{"perfusion_per_s": 0.002}}'
                )
            for key in props:
                _check_unknown_key(tpath, str(key), allowed)

            if name in self._tissues:
                if "based_on" in props:
                    raise ScenarioError(
                        f"{tpath}.based_on = {props['based_on']!r}: 'based_on' is only for new "
                        f"tissues and {name!r} already exists; remove based_on, or pick a new name"
                    )
                base = self._tissues[name]
                values = base.values()
                sources = dict(base.sources)
                description, nerve = base.description, base.nerve
            elif "based_on" in props:
                base_name = _check_str(f"{tpath}.based_on", props["based_on"])
                if base_name not in self._tissues:
                    raise ScenarioError(
                        f"{tpath}.based_on = {base_name!r} is not a known tissue"
                        f"{suggest(base_name, self._tissues)}"
                    )
                base = self._tissues[base_name]
                values = base.values()
                sources = dict(base.sources)
                description = f"user-defined tissue based on {base_name!r}"
                nerve = base.nerve
            else:
                missing = [k for k in PROPERTY_KEYS if k not in props]
                if missing:
                    raise ScenarioError(
                        f"{tpath} is a new tissue (not in the library) and is missing "
                        f'{", ".join(missing)}; add based_on = "<existing tissue>" to copy '
                        f'the others (e.g. based_on = "muscle"), or give every property'
                    )
                values, sources = {}, {}
                description, nerve = "user-defined tissue", False

            for key, value in props.items():
                path = f"{tpath}.{key}"
                if key == "based_on":
                    continue
                if key == "description":
                    description = _check_str(path, value)
                elif key == "nerve":
                    nerve = _check_bool(path, value)
                else:
                    values[key] = _check_property(path, key, value)
                    sources[key] = USER_SOURCE
            _check_tissue_consistency(tpath, values)
            tissues[name] = Tissue(
                name=name,
                description=description,
                nerve=nerve,
                sources=_ReadOnlyDict(sources),
                **values,
            )

        blood_obj, blood_sources = self._blood, dict(self._blood_sources)
        if blood is not None:
            if not isinstance(blood, Mapping):
                raise ScenarioError(
                    f'blood = {blood!r} must be a table, e.g. {{"temperature_C": 37.0}}'
                )
            bvalues = dataclasses.asdict(self._blood)
            for key, value in blood.items():
                _check_unknown_key("blood", str(key), BLOOD_KEYS)
                bvalues[key] = _check_blood_value(f"blood.{key}", key, value)
                blood_sources[key] = USER_SOURCE
            blood_obj = Blood(**bvalues)

        return TissueLibrary(
            tissues, blood_obj, references=self._references, blood_sources=blood_sources
        )
