"""Scenario keys by their path, as the error messages write them.

``phase[0].source[0].power_W``, ``tissues.muscle.perfusion_per_s``, ``grid.spacing_mm``,
``anatomy.tumour.center_mm[1]``: dotted table names, ``[i]`` for an element of an array
(of tables or of numbers). Sweeps, envelopes and uncertainty studies vary a scenario
through these paths on its raw TOML data; the scenario reader then validates the result
as it validates any file, so a path to a key that does not exist is reported by the
reader as an unknown key with the nearest one.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from .errors import ScenarioError, suggest

__all__ = ["get_key", "parse_path", "with_keys"]

_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_\-]*)((?:\[\d+\])*)$")


def parse_path(path: str) -> list[str | int]:
    """``"phase[0].source[1].power_W"`` -> ``["phase", 0, "source", 1, "power_W"]``."""
    if not isinstance(path, str) or not path:
        raise ScenarioError(f"a key path must be a non-empty string, got {path!r}")
    out: list[str | int] = []
    for part in path.split("."):
        m = _PART.match(part)
        if m is None:
            raise ScenarioError(
                f"key path {path!r}: {part!r} is not a key name with optional [index]es; "
                "write e.g. phase[0].source[0].power_W"
            )
        out.append(m.group(1))
        out.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return out


def _describe(parts) -> str:
    s = ""
    for p in parts:
        s += f"[{p}]" if isinstance(p, int) else (f".{p}" if s else p)
    return s


def _step(node, part, parts_so_far, path):
    where = _describe(parts_so_far) or "the scenario"
    if isinstance(part, int):
        if not isinstance(node, list):
            raise ScenarioError(f"key path {path!r}: {where} is not an array, so [{part}] fails")
        if part >= len(node):
            raise ScenarioError(
                f"key path {path!r}: {where} has {len(node)} element(s), so [{part}] does not "
                f"exist (indices start at 0)"
            )
        return node[part]
    if not isinstance(node, Mapping):
        raise ScenarioError(f"key path {path!r}: {where} is not a table, so .{part} fails")
    if part not in node:
        raise ScenarioError(
            f"key path {path!r}: {where} has no key {part!r}" + suggest(part, node.keys() or {""})
        )
    return node[part]


def get_key(data: Mapping, path: str) -> Any:
    """The value at ``path`` in scenario data (a :class:`ScenarioError` if absent)."""
    parts = parse_path(path)
    node: Any = data
    for i, part in enumerate(parts):
        node = _step(node, part, parts[:i], path)
    return node


def with_keys(data: Mapping, values: Mapping[str, Any]) -> dict:
    """A deep copy of scenario data with each ``path: value`` set.

    Missing tables on the way are created (``tissues.muscle.perfusion_per_s`` in a
    scenario without ``[tissues.muscle]``), missing array elements are not; the value
    replaces what was there. The scenario reader validates the result.
    """
    out = copy.deepcopy(dict(data))
    for path, value in values.items():
        parts = parse_path(path)
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            nxt = parts[i + 1]
            if isinstance(part, str) and isinstance(node, MutableMapping) and part not in node:
                node[part] = [] if isinstance(nxt, int) else {}
            node = _step(node, part, parts[:i], path)
        last = parts[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or last >= len(node):
                _step(node, last, parts[:-1], path)  # raises the message
            node[last] = value
        elif isinstance(node, MutableMapping):
            node[last] = value
        else:
            where = _describe(parts[:-1])
            raise ScenarioError(f"key path {path!r}: {where} is not a table, so .{last} fails")
    return out
