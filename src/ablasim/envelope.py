"""Safe envelopes: where the nerve verdict flips as one scenario key varies.

:func:`find_envelope` bisects on the nerve verdict (PASS / FAIL, as ``ablasim run``
decides it) over a range of one key given by its path (``phase[0].duration_s``,
``phase[0].source[0].power_W``, ``phase[0].source[0].center_mm[0]``): the longest safe
time, the highest safe power, the smallest safe distance. Both ends are run first; a
range whose ends give the same verdict brackets no flip and is an error that says which
verdict both give. Bisection then halves the bracket until it is narrower than ``tol``
(default 1 % of the range), so the answer is known to ``tol``: ``safe_limit`` is the last
value tried that passes, ``unsafe_from`` the first that fails, and the true flip of the
model lies between them. It assumes one flip in the range (the verdict monotone in the
key); with several, bisection finds one of them.

:func:`trace_boundary` repeats the bisection for each value of a second key (``along``)
and returns the boundary curve; a value of it whose range brackets no flip becomes a
point without a limit, with the verdict its ends gave, not an error of the whole curve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .errors import ScenarioError
from .study import CaseResult, ScenarioData, run_case

__all__ = ["default_tol", "find_envelope", "trace_boundary"]

#: The default bisection tolerance, as a fraction of the range.
DEFAULT_TOL_FRACTION = 0.01


def default_tol(low: float, high: float) -> float:
    """1 % of the range."""
    return DEFAULT_TOL_FRACTION * abs(high - low)


def _row(value: float, case: CaseResult) -> dict[str, Any]:
    return {
        "value": value,
        "verdict": case.verdict,
        "max_nerve_temperature_C": case.max_nerve_temperature_C,
        "hottest_nerve": case.hottest_nerve,
    }


def find_envelope(
    sd: ScenarioData,
    key: str,
    low: float,
    high: float,
    *,
    tol: float | None = None,
    fixed: Mapping[str, Any] | None = None,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Bisection on the nerve verdict for the value of ``key`` at which it flips.

    Parameters
    ----------
    sd : ScenarioData
        The scenario (``study.read_scenario_data``).
    key : str
        Key path to vary.
    low, high : float
        The range, ``low < high``.
    tol : float, optional
        Stop when ``|unsafe_from - safe_limit| < tol``; default 1 % of the range.
    fixed : mapping, optional
        Other key paths set in every run (a point of a boundary curve).
    on_run : callable, optional
        Called with each row ``{value, verdict, max_nerve_temperature_C, hottest_nerve}``.

    Returns
    -------
    dict
        ``key``, ``range``, ``tol``, ``safe_side`` ("below" or "above": where the safe
        values lie), ``safe_limit``, ``unsafe_from``, ``runs``, ``tried`` (the rows, in
        the order run).

    Raises
    ------
    ScenarioError
        An empty range, a tolerance not > 0, an invalid key or value (named by the reader),
        or a range whose ends give the same verdict.
    """
    low, high = float(low), float(high)
    if not low < high:
        raise ScenarioError(
            f"--range {low:g} {high:g} of {key} is empty or reversed; give LOW < HIGH"
        )
    tol = default_tol(low, high) if tol is None else float(tol)
    if not tol > 0:
        raise ScenarioError(f"--tol {tol:g} must be > 0 (in the unit of {key})")
    fixed = dict(fixed or {})
    tried: list[dict[str, Any]] = []

    def verdict(value: float) -> str:
        case = run_case(sd, {**fixed, key: value})
        row = _row(value, case)
        tried.append(row)
        if on_run is not None:
            on_run(row)
        return case.verdict

    v_low, v_high = verdict(low), verdict(high)
    if v_low == v_high:
        at = "".join(f", {k} = {v:g}" for k, v in fixed.items())
        raise ScenarioError(
            f"the range {low:g} .. {high:g} of {key} does not bracket a flip of the nerve "
            f"verdict: it is {v_low} at both ends{at}; widen the range "
            f"({'towards the unsafe side' if v_low == 'PASS' else 'towards the safe side'})"
        )
    safe, unsafe = (low, high) if v_low == "PASS" else (high, low)
    while abs(unsafe - safe) >= tol:
        mid = 0.5 * (safe + unsafe)
        if verdict(mid) == "PASS":
            safe = mid
        else:
            unsafe = mid
    return {
        "key": key,
        "range": [low, high],
        "tol": tol,
        "safe_side": "below" if v_low == "PASS" else "above",
        "safe_limit": safe,
        "unsafe_from": unsafe,
        "runs": len(tried),
        "tried": tried,
    }


def trace_boundary(
    sd: ScenarioData,
    key: str,
    low: float,
    high: float,
    along: str,
    along_values: Sequence[float],
    *,
    tol: float | None = None,
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The boundary curve: :func:`find_envelope` on ``key`` for each value of ``along``.

    Returns
    -------
    dict
        ``key``, ``along``, ``range``, ``tol``, ``runs`` (all points), and ``curve``: one
        entry per value of ``along`` with ``along_value``, ``safe_limit``,
        ``unsafe_from``, ``safe_side``, ``runs``, ``tried`` and ``note`` (None, or why the
        point has no limit: the verdict both ends gave).
    """
    if not along_values:
        raise ScenarioError(f"--along {along} needs at least one value")
    if along == key:
        raise ScenarioError(f"--along {along} is the key varied by --vary; name another key")
    curve = []
    tol = default_tol(float(low), float(high)) if tol is None else float(tol)
    for v in along_values:
        point: dict[str, Any] = {"along_value": float(v)}
        rows: list[dict[str, Any]] = []

        def seen(row, v=v, rows=rows):
            rows.append(row)
            if on_run is not None:
                on_run({**row, along: float(v)})

        try:
            env = find_envelope(sd, key, low, high, tol=tol, fixed={along: float(v)}, on_run=seen)
        except ScenarioError as exc:
            if len(rows) != 2 or rows[0]["verdict"] != rows[1]["verdict"]:
                raise  # a bad key or value, not an unbracketed point
            point.update(
                safe_limit=None,
                unsafe_from=None,
                safe_side=None,
                runs=2,
                tried=rows,
                note=f"no flip in the range: {rows[0]['verdict']} at both ends ({exc})",
            )
        else:
            point.update(
                safe_limit=env["safe_limit"],
                unsafe_from=env["unsafe_from"],
                safe_side=env["safe_side"],
                runs=env["runs"],
                tried=env["tried"],
                note=None,
            )
        curve.append(point)
    return {
        "key": key,
        "along": along,
        "range": [float(low), float(high)],
        "tol": tol,
        "runs": sum(p["runs"] for p in curve),
        "curve": curve,
    }
