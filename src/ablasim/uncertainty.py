"""Uncertainty of the nerve verdict: tissue properties sampled within their published spread.

What is varied: every property, of every tissue the scenario's anatomy uses, for which
the tissue library stores a published range (``range = [low, high]`` with its
``range_source`` in ``tissues/library.toml``), through the key path
``tissues.<tissue>.<property>``; a property the scenario file overrides is the user's
value and stays fixed. Ranges given by the caller (``--range KEY LOW HIGH``) are added,
or replace the library's for the same key.

How: ``samples`` independent draws (``numpy.random.default_rng(seed)``), each property
uniform within its range, except perfusion and any range spanning a factor of 10 or more,
drawn log-uniformly (``low * (high/low)**u``): a spread quoted over an order of magnitude
is a spread of factors (perfusion varies by factors between people and with temperature),
and a uniform draw would put nine tenths of the samples in the top decade. Independent
draws (not a Latin hypercube) so that the count of exceedances is binomial and the
Wilson interval below holds as stated.

What comes out, per nerve structure: ``probability_exceeds_limit`` = k / n, the fraction
of the n runs that finished in which its verdict was FAIL (too hot or too cold), with
the Wilson score interval at 95 % confidence (Wilson EB, 'Probable inference, the law of
succession, and statistical inference', J Am Stat Assoc 22:209-212, 1927): unlike the
normal-approximation interval it stays inside [0, 1] and is not empty at k = 0 or k = n
(at k = 0 its upper end is z^2 / (n + z^2), about 3.7 / n). It is the uncertainty of
the sampling only; the model's own error is not in it.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from .errors import AblasimError, ScenarioError
from .fileio import atomic_write
from .keypath import parse_path
from .study import ScenarioData, run_case

__all__ = ["Spread", "run_uncertainty", "sample_values", "spreads", "wilson_interval"]

CONFIDENCE = 0.95
LOG_FACTOR = 10.0


@dataclass(frozen=True)
class Spread:
    """One varied key: its range, how it is drawn, and where the range comes from."""

    key: str
    low: float
    high: float
    source: str

    @property
    def distribution(self) -> str:
        """The draw: log-uniform for perfusion and ranges over a factor of 10 or more."""
        if self.low > 0 and (
            self.key.endswith("perfusion_per_s") or self.high / self.low >= LOG_FACTOR
        ):
            return "log-uniform"
        return "uniform"

    def value(self, u: float) -> float:
        """The value at quantile ``u`` in [0, 1)."""
        if self.distribution == "log-uniform":
            return self.low * (self.high / self.low) ** u
        return self.low + u * (self.high - self.low)

    def fraction_below(self, x: float) -> float:
        """The probability that a draw is below ``x`` (for checks against a threshold)."""
        if x <= self.low:
            return 0.0
        if x >= self.high:
            return 1.0
        if self.distribution == "log-uniform":
            return math.log(x / self.low) / math.log(self.high / self.low)
        return (x - self.low) / (self.high - self.low)


def wilson_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k / n."""
    if n <= 0:
        return 0.0, 1.0
    z = float(norm.ppf(0.5 + 0.5 * confidence))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z / den * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # exact ends at k = 0 and k = n (where rounding would leave 1e-16 off)
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def spreads(sd: ScenarioData, extra: Sequence[tuple[str, float, float]] = ()) -> list[Spread]:
    """The keys to vary: the library's published ranges for the tissues the scenario
    uses, plus (or replaced by) the caller's ``(key, low, high)``."""
    built = sd.scenario().build()
    lib = built.model.tissues
    used = sorted({s.tissue for s in built.model.structures})
    out: dict[str, Spread] = {}
    for tissue in used:
        for key in lib[tissue].ranges:
            spread = lib.range_of(tissue, key)
            if spread is not None:
                path = f"tissues.{tissue}.{key}"
                out[path] = Spread(path, spread[0], spread[1], spread[2])
    for key, low, high in extra:
        parse_path(key)
        low, high = float(low), float(high)
        if not low < high:
            raise ScenarioError(f"--range {key} {low:g} {high:g} is empty; give LOW < HIGH")
        for end in (low, high):  # an unknown key or a refused value: before any run
            try:
                sd.scenario({key: end})
            except ScenarioError as exc:
                raise ScenarioError(f"--range {key} {low:g} {high:g}: {exc}") from None
        out[key] = Spread(key, low, high, "user (--range on the command line)")
    if not out:
        raise ScenarioError(
            f"nothing to vary: no tissue of this scenario ({', '.join(used)}) has a published "
            "range in the tissue library for a property the file does not override; give "
            "one with --range, e.g. --range tissues.muscle.perfusion_per_s 0.0003 0.003"
        )
    return list(out.values())


def sample_values(varied: Sequence[Spread], samples: int, seed: int) -> list[dict[str, float]]:
    """``samples`` independent draws, one ``{key: value}`` per run."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ScenarioError(f"--samples {samples!r} must be a whole number >= 1")
    u = np.random.default_rng(seed).random((samples, len(varied)))
    return [{s.key: s.value(float(row[j])) for j, s in enumerate(varied)} for row in u]


def run_uncertainty(
    sd: ScenarioData,
    samples: int,
    seed: int,
    *,
    extra: Sequence[tuple[str, float, float]] = (),
    on_run: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the samples; return the summary (uncertainty.json) and the runs table.

    A run whose varied scenario is invalid or blows up is a row with ``status = "error"``
    and its message; it is left out of the counts.
    """
    varied = spreads(sd, extra)
    draws = sample_values(varied, samples, seed)
    rows: list[dict[str, Any]] = []
    counts: dict[str, list[int]] = {}
    for i, values in enumerate(draws):
        row: dict[str, Any] = {"run_id": i, **values}
        try:
            case = run_case(sd, values)
        except AblasimError as exc:
            row.update(status="error", error=str(exc), verdict=None)
        else:
            row.update(
                status="ok",
                error="",
                verdict=case.verdict,
                max_nerve_temperature_C=case.max_nerve_temperature_C,
                min_nerve_temperature_C=case.min_nerve_temperature_C,
                hottest_nerve=case.hottest_nerve,
                wall_s=round(case.wall_s, 3),
            )
            for name, n in case.nerves.items():
                row[f"{name}_verdict"] = n["verdict"]
                row[f"{name}_max_C"] = n["max_temperature_C"]
                c = counts.setdefault(name, [0, 0])
                c[0] += n["verdict"] == "FAIL"
                c[1] += 1
        rows.append(row)
        if on_run is not None:
            on_run(row)
    ok = sum(r["status"] == "ok" for r in rows)
    nerves = {}
    for name, (k, n) in counts.items():
        lo, hi = wilson_interval(k, n)
        nerves[name] = {
            "probability_exceeds_limit": k / n,
            "exceedances": k,
            "runs": n,
            "confidence_interval": [lo, hi],
        }
    summary = {
        "scenario": sd.origin,
        "samples": samples,
        "seed": seed,
        "runs_ok": ok,
        "runs_error": len(rows) - ok,
        "sampling": "independent draws, numpy.random.default_rng(seed)",
        "confidence_interval": f"Wilson score interval, {CONFIDENCE:.0%} confidence",
        "varied": [
            {
                "key": s.key,
                "low": s.low,
                "high": s.high,
                "distribution": s.distribution,
                "source": s.source,
            }
            for s in varied
        ],
        "nerves": nerves,
    }
    return summary, rows


def write_runs_csv(path, rows: Sequence[Mapping[str, Any]]) -> None:
    """The runs table, one row per run, columns in first-seen order."""
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    with atomic_write(path, newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
