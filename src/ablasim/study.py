"""One varied case of a scenario, run in memory: the shared step of envelopes and
uncertainty studies.

A study reads the scenario file once as raw TOML data, then for each case sets some keys
by their path (:func:`ablasim.keypath.with_keys`), validates the result with the scenario
reader as it validates any file, builds it, simulates it and analyses the nerves. Nothing
is written per case (no report, no pictures): a case is its :class:`CaseResult`, one row
of the study's table.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ScenarioError
from .keypath import get_key, with_keys
from .safety import analyse
from .scenario import Scenario, parse_scenario, read_scenario_text
from .simulation import simulate

__all__ = ["CaseResult", "ScenarioData", "read_scenario_data", "run_case"]


@dataclass(frozen=True)
class ScenarioData:
    """A scenario file as raw TOML data, with the folder its relative paths start from."""

    data: Mapping[str, Any]
    base_dir: Path
    origin: str

    def scenario(self, values: Mapping[str, Any] | None = None) -> Scenario:
        """The scenario with ``values`` (key path -> value) set, validated."""
        raw = with_keys(self.data, values or {})
        return parse_scenario(raw, base_dir=self.base_dir, origin=self.origin)

    def value(self, path: str) -> Any:
        """The value at a key path in the file (ScenarioError naming it if absent)."""
        return get_key(self.data, path)


def read_scenario_data(path: str | Path) -> ScenarioData:
    """Read a scenario file as raw TOML data and check that it is a valid scenario.

    Raises
    ------
    ScenarioError
        A missing or unreadable file, a TOML syntax error, or every validation problem.
    """
    path = Path(path)
    text = read_scenario_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: TOML syntax error: {exc}") from None
    sd = ScenarioData(data, path.parent, str(path))
    sd.scenario()  # the unvaried file must be valid before any case runs
    return sd


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case: the nerve verdict and the numbers behind it.

    ``nerves`` maps each nerve structure to ``{"verdict", "max_temperature_C",
    "min_temperature_C"}``; ``hottest_nerve`` is the structure with the highest peak
    temperature (None without nerve structures).
    """

    values: dict[str, Any]
    verdict: str
    nerves: dict[str, dict[str, Any]]
    max_nerve_temperature_C: float | None
    min_nerve_temperature_C: float | None
    hottest_nerve: str | None
    wall_s: float


def run_case(sd: ScenarioData, values: Mapping[str, Any]) -> CaseResult:
    """Set ``values`` (key path -> value), build, simulate and analyse; nothing written.

    Raises
    ------
    ScenarioError, StabilityError
        The varied scenario is invalid (the message names the key).
    SimulationError
        The run blew up.
    """
    t0 = time.perf_counter()
    sc = sd.scenario(values)
    built = sc.build()
    result = simulate(
        built.model,
        built.phases,
        thermocouples=built.thermocouples,
        bound_sources=built.bound,
        progress=False,
        **sc.simulate_options(),
    )
    analysis = analyse(result, sc.ablation, target=sc.tumour_target)
    nerves = {
        name: {
            "verdict": n.verdict,
            "max_temperature_C": n.max_temperature_C,
            "min_temperature_C": n.min_temperature_C,
        }
        for name, n in analysis.nerves.items()
    }
    for name in analysis.unresolved:
        nerves[name] = {"verdict": "FAIL", "max_temperature_C": None, "min_temperature_C": None}
    measured = {k: v for k, v in nerves.items() if v["max_temperature_C"] is not None}
    hottest = max(measured, key=lambda k: measured[k]["max_temperature_C"], default=None)
    return CaseResult(
        values=dict(values),
        verdict=analysis.verdict,
        nerves=nerves,
        max_nerve_temperature_C=None if hottest is None else measured[hottest]["max_temperature_C"],
        min_nerve_temperature_C=min(
            (v["min_temperature_C"] for v in measured.values()), default=None
        ),
        hottest_nerve=hottest,
        wall_s=time.perf_counter() - t0,
    )
