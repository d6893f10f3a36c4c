"""The registry of source kinds: every module of this package registers its class here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..errors import ScenarioError, suggest
from ..reader import Errors, Table, format_errors
from .base import Source

__all__ = [
    "SOURCES",
    "read_source",
    "read_source_table",
    "register",
    "source_class",
]

#: Every registered kind of source, by its scenario ``kind``.
SOURCES: dict[str, type[Source]] = {}


def register(cls: type[Source]) -> type[Source]:
    """Class decorator: make a :class:`Source` subclass available under its ``kind``."""
    kind = getattr(cls, "kind", None)
    if not isinstance(kind, str) or not kind:
        raise TypeError(f"{cls.__name__} must set the class attribute kind = '...'")
    old = SOURCES.get(kind)
    if old is not None and old.__qualname__ != cls.__qualname__:
        raise TypeError(f"source kind {kind!r} is already registered by {old.__qualname__}")
    SOURCES[kind] = cls
    return cls


def source_class(kind: str) -> type[Source]:
    """The registered class of ``kind``; a :class:`ScenarioError` naming the known ones."""
    try:
        return SOURCES[kind]
    except KeyError:
        pass
    raise ScenarioError(f"unknown source kind {kind!r}" + suggest(kind, SOURCES))


def read_source_table(table: Table, *, name: str | None = None) -> Source | None:
    """A ``[[phase.source]]`` table read by the class of its ``kind``; None with every
    problem recorded in ``table.errors``. ``name``: the default name (``<kind>1``)."""
    kind = table.string("kind")
    if kind is None:
        table.used.update(table.data)
        return None
    try:
        cls = source_class(kind)
    except ScenarioError as exc:
        table.error("kind", str(exc))
        table.used.update(table.data)
        return None
    return cls.read(table, name=name or f"{kind}1")


def read_source(
    data: Mapping, *, path: str = "source", base_dir: str | Path = ".", name: str | None = None
) -> Source:
    """A source from a scenario-style table (``{"kind": "rf", "tip_mm": [...], ...}``).

    Raises
    ------
    ScenarioError
        Listing every problem, each under ``<path>.<key>``.
    """
    errors = Errors()
    src = read_source_table(Table(data, path, errors, Path(base_dir)), name=name)
    if errors:
        raise ScenarioError(format_errors(errors, path))
    return src
