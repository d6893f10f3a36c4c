"""The tissue library: an immutable, validated set of tissues read from ``library.toml``
(or a file of the same layout), with a source for every number and copies with overrides."""

from __future__ import annotations

import dataclasses
import functools
import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from typing import Any

import numpy as np

from ..errors import ScenarioError, suggest
from .properties import BLOOD_KEYS, META_KEYS, PROPERTY_KEYS, Blood, ReadOnlyDict, Tissue
from .validation import (
    check_blood_value,
    check_bool,
    check_property,
    check_source,
    check_str,
    check_tissue_consistency,
    check_unknown_key,
    parse_entry,
    parse_range,
    source_tag,
)

__all__ = ["USER_SOURCE", "TissueLibrary"]

#: Source string given to values set through :meth:`TissueLibrary.with_overrides`.
USER_SOURCE = "user override"


def _parse_document(doc: Mapping[str, Any], origin: str) -> TissueLibrary:
    """Build a :class:`TissueLibrary` from a parsed TOML document, validating everything."""
    references = doc.get("references")
    if not isinstance(references, Mapping) or not references:
        raise ScenarioError(f'{origin}: missing [references] table (tag = "full citation")')
    for tag, text in references.items():
        check_str(f"{origin}: references.{tag}", text)
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
        check_unknown_key(f"{origin}: blood", key, BLOOD_KEYS)
        value, source = parse_entry(path, entry)
        check_source(path, source, references)
        blood_values[key] = check_blood_value(path, key, value)
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
        ranges: dict[str, tuple[float, float, str]] = {}
        for key, entry in tdoc.items():
            if key in ("description", "nerve"):
                continue
            check_unknown_key(tpath, key, (*PROPERTY_KEYS, "description", "nerve"))
            value, source = parse_entry(f"{tpath}.{key}", entry)
            check_source(f"{tpath}.{key}", source, references)
            values[key] = check_property(f"{tpath}.{key}", key, value)
            sources[key] = source
            spread = parse_range(f"{tpath}.{key}", entry, values[key], references)
            if spread is not None:
                ranges[key] = spread
        missing = [k for k in PROPERTY_KEYS if k not in values]
        if missing:
            raise ScenarioError(f"{tpath} is missing {', '.join(missing)}; add them with a source")
        check_tissue_consistency(tpath, values)
        tissues[name] = Tissue(
            name=name,
            description=check_str(f"{tpath}.description", tdoc.get("description", "")),
            nerve=check_bool(f"{tpath}.nerve", tdoc.get("nerve", False)),
            sources=ReadOnlyDict(sources),
            ranges=ReadOnlyDict(ranges),
            **values,
        )
    return TissueLibrary(
        tissues,
        Blood(**blood_values),
        references=references,
        blood_sources=blood_sources,
    )


@functools.lru_cache(maxsize=1)
def _default_library() -> TissueLibrary:
    data = resources.files(__package__).joinpath("library.toml").read_bytes()
    return _parse_document(tomllib.loads(data.decode("utf-8")), "library.toml")


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
        self._tissues: Mapping[str, Tissue] = ReadOnlyDict(dict(tissues))
        self._blood = blood
        self._references: Mapping[str, str] = ReadOnlyDict(dict(references))
        self._blood_sources: Mapping[str, str] = ReadOnlyDict(dict(blood_sources or {}))

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

    def range_of(self, tissue: str, key: str) -> tuple[float, float, str] | None:
        """The published spread of one property: ``(low, high, full citation)``, or None
        where the library's source gives none (or the scenario overrode the value)."""
        tis = self[tissue]
        if key not in PROPERTY_KEYS:
            raise ScenarioError(
                f"unknown property key tissues.{tissue}.{key}{suggest(key, PROPERTY_KEYS)}"
            )
        spread = tis.ranges.get(key)
        if spread is None:
            return None
        return spread[0], spread[1], self._resolve(spread[2])

    def blood_source(self, key: str) -> str:
        """Full citation for a value of the ``[blood]`` table (see :meth:`source_of`)."""
        if key not in BLOOD_KEYS:
            raise ScenarioError(f"unknown blood key blood.{key}{suggest(key, BLOOD_KEYS)}")
        return self._resolve(self._blood_sources.get(key, ""))

    def _resolve(self, source: str) -> str:
        tag = source_tag(source)
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
        allowed = PROPERTY_KEYS + META_KEYS
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
                check_unknown_key(tpath, str(key), allowed)

            if name in self._tissues:
                if "based_on" in props:
                    raise ScenarioError(
                        f"{tpath}.based_on = {props['based_on']!r}: 'based_on' is only for new "
                        f"tissues and {name!r} already exists; remove based_on, or pick a new name"
                    )
                base = self._tissues[name]
                values = base.values()
                sources = dict(base.sources)
                ranges = dict(base.ranges)
                description, nerve = base.description, base.nerve
            elif "based_on" in props:
                base_name = check_str(f"{tpath}.based_on", props["based_on"])
                if base_name not in self._tissues:
                    raise ScenarioError(
                        f"{tpath}.based_on = {base_name!r} is not a known tissue"
                        f"{suggest(base_name, self._tissues)}"
                    )
                base = self._tissues[base_name]
                values = base.values()
                sources = dict(base.sources)
                ranges = dict(base.ranges)
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
                values, sources, ranges = {}, {}, {}
                description, nerve = "user-defined tissue", False

            for key, value in props.items():
                path = f"{tpath}.{key}"
                if key == "based_on":
                    continue
                if key == "description":
                    description = check_str(path, value)
                elif key == "nerve":
                    nerve = check_bool(path, value)
                else:
                    values[key] = check_property(path, key, value)
                    sources[key] = USER_SOURCE
                    ranges.pop(key, None)  # a value the user set is not the source's spread
            check_tissue_consistency(tpath, values)
            tissues[name] = Tissue(
                name=name,
                description=description,
                nerve=nerve,
                sources=ReadOnlyDict(sources),
                ranges=ReadOnlyDict(ranges),
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
                check_unknown_key("blood", str(key), BLOOD_KEYS)
                bvalues[key] = check_blood_value(f"blood.{key}", key, value)
                blood_sources[key] = USER_SOURCE
            blood_obj = Blood(**bvalues)

        return TissueLibrary(
            tissues, blood_obj, references=self._references, blood_sources=blood_sources
        )
