"""The one reader of scenario tables: typed getters that collect every problem.

A :class:`Table` wraps one TOML table at a key path (``phase[0].source[1]``). Each getter
checks the type and range of one key, converts the unit in its name to SI where asked,
records a problem as ``"<key path>: <message>"`` (the one message format of every
scenario error) and returns None when the value is missing or bad, so one pass reports
every problem at once. :meth:`Table.finish` reports the keys never read, with the
closest known key.

The scenario (:mod:`ablasim.scenario`) and every heat source (``Source.read`` in
:mod:`ablasim.sources`) read their tables through it.

Inside :func:`record_keys` every getter also logs what it was asked (key path, type,
default, range, choices): ``ablasim keys`` lists the scenario keys from that log, so the
listing is the validator's own view and cannot drift from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ScenarioError, suggest

__all__ = [
    "MISSING",
    "Errors",
    "KeyLog",
    "KeyUse",
    "Table",
    "add_problems",
    "format_errors",
    "raise_problems",
    "record_keys",
]

#: The default of a required key.
MISSING: Any = object()


class Errors(list):
    """Problems found while reading, each ``"<key path>: <message>"``."""

    def add(self, path: str, message: str) -> None:
        self.append(f"{path}: {message}" if path else message)


def format_errors(errors: Iterable[str], name: str) -> str:
    """One problem as it is; several as a list under a heading."""
    errors = list(errors)
    if len(errors) == 1:
        return errors[0]
    lines = "\n".join(f"  - {e}" for e in errors)
    return f"{len(errors)} problems in scenario {name!r}:\n{lines}"


def raise_problems(problems: Iterable[tuple[str, str]], owner: str) -> None:
    """Raise one :class:`ScenarioError` for ``(key, message)`` problems, if any.

    The error keeps them in ``problems``, so a reader can file each under its own key
    path; its message names ``owner`` (e.g. ``"source 'rf'"``) and each key.
    """
    problems = list(problems)
    if not problems:
        return
    lines = [f"{owner} {key}: {msg}" if key else f"{owner}: {msg}" for key, msg in problems]
    exc = ScenarioError(lines[0] if len(lines) == 1 else "\n".join(lines))
    exc.problems = problems
    raise exc


def add_problems(errors: Errors, path: str, exc: ScenarioError) -> None:
    """File the problems of a :func:`raise_problems` error under ``path.<key>``; any
    other :class:`ScenarioError` under ``path`` itself."""
    problems = getattr(exc, "problems", None)
    if problems is None:
        errors.add(path, str(exc))
        return
    for key, msg in problems:
        errors.add(f"{path}.{key}" if key and path else key or path, msg)


@dataclass(frozen=True)
class _Range:
    gt: float | None = None
    min: float | None = None
    max: float | None = None

    def problem(self, v: float) -> str | None:
        if self.gt is not None and v <= self.gt:
            return f"must be > {self.gt:g}, got {v:g}"
        if self.min is not None and v < self.min:
            return f"must be >= {self.min:g}, got {v:g}"
        if self.max is not None and v > self.max:
            return f"must be <= {self.max:g}, got {v:g}"
        return None


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# -- recording what the getters are asked ---------------------------------------------------
@dataclass(frozen=True)
class KeyUse:
    """One question a getter was asked: key ``path`` (as read, ``phase[0].source[1].tip_mm``),
    ``kind`` (``number``, ``integer``, ``vector``, ``string``, ``boolean``, ``file``,
    ``table``, ``tables``, ``any`` for a raw read, ``known`` for a key a table accepts
    without reading it), ``default`` (:data:`MISSING`: required), the range and choices
    it checks (in the file's unit), ``n`` numbers for a vector, and the hint of its
    messages."""

    path: str
    kind: str
    default: Any = MISSING
    gt: float | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    n: int | None = None
    hint: str = ""

    @property
    def required(self) -> bool:
        return self.default is MISSING


class KeyLog(list):
    """The :class:`KeyUse` records of one :func:`record_keys` block, in reading order."""


_RECORDING: ContextVar[KeyLog | None] = ContextVar("ablasim_reader_recording", default=None)


@contextmanager
def record_keys() -> Iterator[KeyLog]:
    """Log every key the :class:`Table` getters are asked for inside the block.

    Reading is unchanged (values, problems); the log only adds to it.

    Examples
    --------
    >>> with record_keys() as log:
    ...     Table({"power_W": 5}, "source", Errors()).number("power_W", gt=0)
    5.0
    >>> log[0].path, log[0].kind, log[0].gt, log[0].required
    ('source.power_W', 'number', 0, True)
    """
    log = KeyLog()
    token = _RECORDING.set(log)
    try:
        yield log
    finally:
        _RECORDING.reset(token)


class Table:
    """A TOML table being read; problems go to ``errors``, read keys to ``used``.

    Parameters
    ----------
    data : mapping
        The table's contents (anything else is recorded as a problem).
    path : str
        Its key path, prefixed to every message (``""`` for the top level).
    errors : Errors
        Where problems are collected (shared by all tables of one scenario).
    base_dir : Path
        The folder relative file names are resolved against (the scenario file's).
    """

    def __init__(self, data: Any, path: str, errors: Errors, base_dir: Path = Path(".")):
        self.path = path
        self.errors = errors
        self.base_dir = Path(base_dir)
        if not isinstance(data, Mapping):
            errors.add(path, f"must be a table, got {data!r}")
            data = {}
        self.data = data
        self.used: set[str] = set()

    # -- paths and problems -------------------------------------------------------------
    def key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> None:
        """Record a problem with ``key`` (``""``: with the table as a whole)."""
        self.errors.add(self.key_path(key) if key else self.path, message)

    def add_problems(self, exc: ScenarioError) -> None:
        """File a :func:`raise_problems` error's problems under this table's keys
        (any other :class:`ScenarioError` under the table itself)."""
        add_problems(self.errors, self.path, exc)

    def has(self, key: str) -> bool:
        return key in self.data

    # -- typed getters ----------------------------------------------------------------
    def _log(self, key: str, kind: str, default=MISSING, **spec) -> None:
        log = _RECORDING.get()
        if log is not None:
            log.append(KeyUse(self.key_path(key), kind, default, **spec))

    def raw(self, key: str, default=MISSING):
        """The value as written; ``default`` when absent (a problem if required)."""
        self._log(key, "any", default)
        return self._raw(key, default)

    def _raw(self, key: str, default=MISSING):
        self.used.add(key)
        if key not in self.data:
            if default is MISSING:
                self.error(key, "is required")
                return None
            return default
        return self.data[key]

    def number(
        self, key, default=MISSING, *, gt=None, min=None, max=None, integer=False, scale=1.0,
        hint="",
    ):  # fmt: skip
        """A finite number in range (checked in the file's unit), times ``scale``."""
        kind = "integer" if integer else "number"
        self._log(key, kind, default, gt=gt, min=min, max=max, hint=hint)
        absent = key not in self.data  # the default as given: not scaled or checked
        v = self._raw(key, default)
        if v is None or absent:
            return v
        if not _is_number(v):
            self.error(key, f"must be a number, got {v!r}{hint}")
            return None
        if integer and not float(v).is_integer():
            self.error(key, f"must be a whole number, got {v!r}")
            return None
        v = float(v)
        if not math.isfinite(v):
            self.error(key, f"must be finite, got {v!r}{hint}")
            return None
        bad = _Range(gt, min, max).problem(v)
        if bad:
            self.error(key, bad + hint)
            return None
        return int(v) if integer else v * scale

    def vector(self, key, default=MISSING, *, n=3, positive=False, nonzero=False, scale=1.0):
        """A list of ``n`` finite numbers, times ``scale``."""
        self._log(key, "vector", default, gt=0 if positive else None, n=n)
        absent = key not in self.data  # the default as given: not scaled or checked
        v = self._raw(key, default)
        if v is None or absent:
            return v
        if not (isinstance(v, list) and len(v) == n and all(_is_number(x) for x in v)):
            self.error(key, f"must be a list of {n} numbers, got {v!r}")
            return None
        arr = tuple(float(x) for x in v)
        if not all(math.isfinite(x) for x in arr):
            self.error(key, f"must be finite, got {v!r}")
            return None
        if positive and any(x <= 0 for x in arr):
            self.error(key, f"must be positive, got {v!r}")
            return None
        if nonzero and all(x == 0 for x in arr):
            self.error(key, f"must not be all zeros (it is a direction), got {v!r}")
            return None
        return tuple(x * scale for x in arr)

    def string(self, key, default=MISSING, *, choices=None):
        """A string, one of ``choices`` if given."""
        self._log(key, "string", default, choices=None if choices is None else tuple(choices))
        return self._string(key, default, choices=choices)

    def _string(self, key, default=MISSING, *, choices=None):
        absent = key not in self.data  # the default as given: not scaled or checked
        v = self._raw(key, default)
        if v is None or absent:
            return v
        if not isinstance(v, str):
            self.error(key, f"must be a string, got {v!r}")
            return None
        if choices is not None and v not in choices:
            self.error(key, f"{v!r} is not one of {list(choices)}" + suggest(v, choices))
            return None
        return v

    def boolean(self, key, default=MISSING):
        self._log(key, "boolean", default)
        absent = key not in self.data  # the default as given: not scaled or checked
        v = self._raw(key, default)
        if v is None or absent:
            return v
        if not isinstance(v, bool):
            self.error(key, f"must be true or false, got {v!r}")
            return None
        return v

    def file(self, key, default=MISSING) -> Path | None:
        """A file name, resolved against ``base_dir``; a missing file is a problem."""
        self._log(key, "file", default)
        absent = key not in self.data  # the default as given: not scaled or checked
        v = self._string(key, default)
        if v is None or absent:
            return v
        p = Path(v)
        if not p.is_absolute():
            p = self.base_dir / p
        if not p.is_file():
            self.error(key, f"file {str(p)!r} not found; check the path")
            return None
        return p

    def table(self, key, *, required=False) -> Table | None:
        """A sub-table (``None`` when absent; a problem if required)."""
        self._log(key, "table", MISSING if required else None)
        if key not in self.data:
            self.used.add(key)
            if required:
                self.error(key, "is required")
            return None
        return Table(self._raw(key), self.key_path(key), self.errors, self.base_dir)

    def tables(self, key) -> list[Table]:
        """An array of tables (``[[key]]``); one table counts as an array of one."""
        self._log(key, "tables", [])
        v = self._raw(key, [])
        if isinstance(v, Mapping):
            v = [v]
        if not isinstance(v, list):
            self.error(key, f"must be an array of tables ([[{key}]])")
            return []
        return [
            Table(x, f"{self.key_path(key)}[{i}]", self.errors, self.base_dir)
            for i, x in enumerate(v)
        ]

    def finish(self, known=()) -> None:
        """Report keys never read, with the closest known key."""
        for key in known:
            self._log(key, "known", None)
        known = set(known) | self.used
        for key in self.data:
            if key not in known:
                self.error(key, "unknown key" + suggest(str(key), known or {"(none)"}))
