"""Checks of phantom parameters: each returns the value in SI units or raises a
:class:`~ablasim.errors.ScenarioError` that names the parameter, quotes the value and
gives the fix."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..errors import ScenarioError, suggest

__all__ = ["check_length", "check_number", "check_point", "check_tissue", "check_tumour"]


def check_length(name: str, value, *, allow_zero: bool = False) -> float:
    """A length [m]: positive (or zero with ``allow_zero``) and at most 2 m."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        need = "a non-negative" if allow_zero else "a positive"
        raise ScenarioError(
            f"phantom parameter {name!r} must be {need} length in metres, got {value!r}; "
            f"e.g. {name}=0.01 for 10 mm"
        )
    if v > 2.0:
        raise ScenarioError(
            f"phantom parameter {name!r} = {value!r} m is longer than a body; lengths are in "
            f"metres, e.g. {name}=0.01 for 10 mm"
        )
    return v


def check_number(name: str, value, *, lo: float, hi: float, example: str) -> float:
    """A number in ``(lo, hi]``; ``example`` is shown in the message."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = math.nan
    if not (math.isfinite(v) and lo < v <= hi):
        raise ScenarioError(
            f"phantom parameter {name!r} must be a number in ({lo:g}, {hi:g}], got {value!r}; "
            f"e.g. {name}={example}"
        )
    return v


def check_point(name: str, value, n: int = 3) -> np.ndarray:
    """``n`` finite coordinates [m] as a float array."""
    try:
        p = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        p = np.array([])
    if p.shape != (n,) or not np.all(np.isfinite(p)):
        zeros = ", ".join(["0.0"] * n)
        raise ScenarioError(
            f"phantom parameter {name!r} must be {n} coordinates in metres, got {value!r}; "
            f"e.g. {name}=({zeros})"
        )
    return p


def check_tissue(name: str, value) -> str:
    """A non-empty name (of a tissue or a structure), stripped."""
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(
            f'phantom parameter {name!r} must be a tissue name, got {value!r}; e.g. {name}="muscle"'
        )
    return value.strip()


_TUMOUR_KINDS = {"lytic": "tumour_lytic", "blastic": "tumour_blastic"}


def check_tumour(tumour) -> tuple[np.ndarray, float, str] | None:
    """Validate ``{"center": (x, y, z) m, "diameter": m, "kind": "lytic"|"blastic"}``."""
    if tumour is None:
        return None
    if not isinstance(tumour, Mapping):
        raise ScenarioError(
            f"phantom parameter 'tumour' must be a mapping, got {tumour!r}; e.g. "
            'tumour={"center": (0.0, 0.004, 0.0), "diameter": 0.018, "kind": "lytic"}'
        )
    allowed = ("center", "diameter", "kind")
    for key in tumour:
        if key not in allowed:
            raise ScenarioError(
                f"tumour has no key {key!r}{suggest(str(key), allowed)}; tumour keys are "
                "center [m], diameter [m] and kind ('lytic' or 'blastic')"
            )
    for key in ("center", "diameter"):
        if key not in tumour:
            raise ScenarioError(
                f"tumour needs {key!r}; e.g. "
                'tumour={"center": (0.0, 0.004, 0.0), "diameter": 0.018, "kind": "lytic"}'
            )
    center = check_point("tumour.center", tumour["center"])
    diameter = check_length("tumour.diameter", tumour["diameter"])
    kind = tumour.get("kind", "lytic")
    if kind not in _TUMOUR_KINDS:
        raise ScenarioError(
            f"tumour kind {kind!r} is unknown{suggest(str(kind), _TUMOUR_KINDS)}; "
            "use 'lytic' or 'blastic'"
        )
    return center, diameter, _TUMOUR_KINDS[kind]
