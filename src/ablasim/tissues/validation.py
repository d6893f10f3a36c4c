"""Checks of tissue-library values, shared by the library file and the scenario's
overrides: each returns the checked value or raises a :class:`~ablasim.errors.ScenarioError`
that names the key path (e.g. ``tissues.muscle.perfusion_per_s``) and the fix."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ScenarioError, suggest

__all__ = [
    "check_blood_value",
    "check_bool",
    "check_number",
    "check_property",
    "check_source",
    "check_str",
    "check_tissue_consistency",
    "check_unknown_key",
    "parse_entry",
    "parse_range",
    "source_tag",
]

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


def source_tag(source: str) -> str:
    """Return the reference tag of a source string: the first word before any ``;``."""
    head = source.split(";", 1)[0].strip()
    return head.split()[0] if head else ""


def check_number(path: str, value: object) -> float:
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


def check_property(path: str, key: str, value: object) -> float:
    """Check one tissue property value against its physical range."""
    number = check_number(path, value)
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


def check_tissue_consistency(path: str, values: Mapping[str, float]) -> None:
    """Checks that involve more than one property of a tissue."""
    start, end = values["freezing_start_C"], values["freezing_end_C"]
    if not end < start:
        raise ScenarioError(
            f"{path}.freezing_end_C = {end!r} must be below {path}.freezing_start_C = {start!r}; "
            f"freezing runs from the start (e.g. -1) down to the end (e.g. -8)"
        )


def check_unknown_key(path: str, key: str, allowed: Sequence[str]) -> None:
    if key not in allowed:
        raise ScenarioError(f"unknown property key {path}.{key}{suggest(key, allowed)}")


def check_bool(path: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(f"{path} = {value!r} must be true or false (a boolean)")
    return value


def check_str(path: str, value: object) -> str:
    if not isinstance(value, str):
        raise ScenarioError(f"{path} = {value!r} must be a string")
    return value


def parse_entry(path: str, entry: object) -> tuple[object, str]:
    """Split a file entry ``{value = ..., source = "..."}`` into value and source.

    The entry may also hold ``range`` and ``range_source`` (see :func:`parse_range`).
    """
    if (
        not isinstance(entry, Mapping)
        or not {"value", "source"} <= set(entry)
        or not set(entry) <= {"value", "source", "range", "range_source"}
        or ("range" in entry) != ("range_source" in entry)
    ):
        raise ScenarioError(
            f'{path} = {entry!r} must be a table {{ value = <number>, source = "<tag>; note" }}'
            ', optionally with range = [low, high] and range_source = "<tag>; note" together'
        )
    return entry["value"], check_str(f"{path}.source", entry["source"])


def parse_range(
    path: str, entry: Mapping, value: float, references: Mapping[str, str]
) -> tuple[float, float, str] | None:
    """The published spread of an entry: ``(low, high, range_source)``, or None.

    ``low < high`` and the value lies within them; the source tag must be a reference.
    """
    if "range" not in entry:
        return None
    raw = entry["range"]
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise ScenarioError(f"{path}.range = {raw!r} must be [low, high]")
    low = check_number(f"{path}.range[0]", raw[0])
    high = check_number(f"{path}.range[1]", raw[1])
    if not low < high or not low <= value <= high:
        raise ScenarioError(
            f"{path}.range = {list(raw)!r} must have low < high around the value {value!r}"
        )
    source = check_str(f"{path}.range_source", entry["range_source"])
    check_source(f"{path}.range_source", source, references)
    return low, high, source


def check_source(path: str, source: str, references: Mapping[str, str]) -> None:
    tag = source_tag(source)
    if tag not in references:
        raise ScenarioError(
            f"{path}.source = {source!r}: reference tag {tag!r} is not in [references]"
            f"{suggest(tag, references)}; add it there or fix the tag"
        )


def check_blood_value(path: str, key: str, value: object) -> float:
    number = check_number(path, value)
    if key != "temperature_C" and number <= 0.0:
        raise ScenarioError(f"{path} = {value!r} must be > 0; give a positive value in SI units")
    return number
