"""Parameter sweeps: many variants of one scenario, run in parallel, one table row each.

A sweep file (TOML) names a base scenario and the keys to vary by their path
(:mod:`ablasim.keypath`)::

    base = "my.toml"                  # relative to the sweep file, or "example:vertebra-demo"
    [sweep]
    method = "grid"                   # grid | zip | latin_hypercube | random
    samples = 40                      # latin_hypercube / random only
    seed = 1
    [sweep.vary]
    "phase[0].source[0].power_W" = [5, 10, 15]                         # values (grid, zip)
    "tissues.muscle.perfusion_per_s" = { low = 0.0005, high = 0.003 }   # a range (sampling)

:func:`load_sweep` reads and checks it and makes every case (a ``{path: value}`` dict
with its :func:`run_id`); each case's scenario is validated by the scenario reader before
anything runs: a key path that does not exist is bad input (:class:`ScenarioError`, with
the nearest key), a value the reader refuses makes that case an ``"error"`` row.
:func:`run_sweep` runs the rest through one small :class:`Backend` (local worker
processes, or a Dask cluster) and rewrites ``runs.csv`` and ``runs.parquet`` atomically
after every finished run (:func:`write_table`); run again, it skips the finished ones.

The envelope and uncertainty studies reuse :func:`run_case` (one run, one row) and
:func:`write_table`.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import time
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .errors import AblasimError, ScenarioError, suggest
from .fileio import atomic_path
from .keypath import parse_path, with_keys
from .reader import Errors, Table, format_errors
from .runner import run_scenario
from .scenario import parse_scenario

__all__ = [
    "METHODS",
    "RESULT_COLUMNS",
    "Backend",
    "Case",
    "Sweep",
    "SweepSummary",
    "load_sweep",
    "make_backend",
    "make_cases",
    "make_sweep",
    "read_table",
    "row_from_report",
    "run_case",
    "run_id",
    "run_sweep",
    "write_table",
]

METHODS = ("grid", "zip", "latin_hypercube", "random")

#: The columns after ``run_id`` and the varied keys, in table order.
RESULT_COLUMNS = (
    "status",
    "error",
    "verdict",
    "max_nerve_temperature_C",
    "min_nerve_temperature_C",
    "hottest_nerve",
    "ablation_volume_ml",
    "tumour_coverage_fraction",
    "wall_s",
)

# -- the sweep file -----------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One run of a sweep: the varied values (``{path: value}``) and their :func:`run_id`.

    ``scenario_data`` is the base scenario's raw TOML data with the values set;
    ``invalid`` is the scenario reader's message when it refused them (the case is then
    an ``"error"`` row and is not run).
    """

    run_id: str
    values: dict
    scenario_data: dict = field(repr=False)
    invalid: str | None = None


@dataclass(frozen=True)
class Sweep:
    """A read sweep file: the base scenario, the method and every case."""

    path: Path
    base: str
    base_dir: Path
    method: str
    keys: tuple[str, ...]
    cases: tuple[Case, ...]


def run_id(values: Mapping[str, Any], base: str = "") -> str:
    """A short hash of the sorted ``path=value`` pairs and of the base scenario's data
    (``base``, a digest): the same values on the same base, the same id, so a restarted
    sweep recognises its finished runs, and an edited base scenario runs them again."""
    text = json.dumps([base, sorted((str(k), _plain(v)) for k, v in values.items())])
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _digest(data: Mapping) -> str:
    """A digest of a scenario's raw TOML data (the files it names are not read)."""
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list | tuple | np.ndarray):
        return [_plain(x) for x in v]
    return v


def _quoted(path: str) -> str:
    return f'sweep.vary."{path}"'


def make_cases(
    method: str, vary: Mapping[str, Any], *, samples: int | None = None, seed: int | None = None
) -> list[dict]:
    """The ``{path: value}`` of every case.

    ``grid``: every combination of the value lists (the last key varies fastest);
    ``zip``: the i-th value of every list (lists of one length); ``latin_hypercube``:
    ``samples`` points of ``scipy.stats.qmc.LatinHypercube`` scaled to each
    ``(low, high)`` range, one per stratum of every key; ``random``: ``samples`` uniform
    draws from ``numpy.random.default_rng(seed)``. Values are lists for grid and zip,
    ``(low, high)`` pairs for the sampling methods (checked by :func:`load_sweep`).
    """
    keys = list(vary)
    if method == "grid":
        return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*vary.values())]
    if method == "zip":
        return [dict(zip(keys, combo, strict=True)) for combo in zip(*vary.values(), strict=True)]
    lows = np.array([float(vary[k][0]) for k in keys])
    highs = np.array([float(vary[k][1]) for k in keys])
    if method == "latin_hypercube":
        from scipy.stats import qmc

        unit = qmc.LatinHypercube(d=len(keys), seed=seed).random(n=samples)
    elif method == "random":
        unit = np.random.default_rng(seed).random((samples, len(keys)))
    else:
        raise ScenarioError(f"sweep.method: must be one of {', '.join(METHODS)}, got {method!r}")
    points = lows + unit * (highs - lows)
    return [{k: float(p[i]) for i, k in enumerate(keys)} for p in points]


def _resolve_base(base: str, sweep_dir: Path) -> Path:
    if base.startswith("example:"):
        name = base.removeprefix("example:")
        folder = resources.files("ablasim.examples")
        names = sorted(
            f.name.removesuffix(".toml") for f in folder.iterdir() if f.name.endswith(".toml")
        )
        if name not in names:
            raise ScenarioError(
                f"base: unknown example {name!r}" + suggest(name, names) + " (`ablasim examples`)"
            )
        return Path(str(folder / f"{name}.toml"))
    path = Path(base)
    return path if path.is_absolute() else sweep_dir / path


def load_sweep(path: str | Path) -> Sweep:
    """Read and check a sweep file, make its cases and validate each case's scenario.

    Raises
    ------
    ScenarioError
        Every problem of the file at once, each under its key path (``sweep.samples``,
        ``sweep.vary."phase[0].source[0].powr_W"``): a missing or unreadable base, an
        unknown method, an empty list or range (``low >= high``), lists of different
        lengths for ``zip``, fewer than one sample, a key path the scenario does not have
        (with the nearest key). A value the scenario reader refuses is not an error here:
        that case carries the message in :attr:`Case.invalid`.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"sweep file {str(path)!r} not found; check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: TOML syntax error: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read sweep file {str(path)!r}: {exc}") from None
    errors = Errors()
    top = Table(data, "", errors, path.parent)
    base = top.string("base")
    sw = top.table("sweep", required=True)
    top.finish()
    method = samples = seed = None
    vary: dict[str, Any] = {}
    if sw is not None:
        method = sw.string("method", default="grid", choices=METHODS)
        sampling = method in ("latin_hypercube", "random")
        samples = sw.number("samples", default=None, integer=True)
        seed = sw.number("seed", default=None, integer=True, min=0)
        if sampling and samples is None and "samples" not in sw.data:
            sw.error("samples", f"is required for method = {method!r} (how many runs)")
        elif sampling and samples is not None and samples < 1:
            sw.error("samples", f"must be at least 1, got {samples}")
        elif not sampling and "samples" in sw.data:
            sw.error("samples", f"is for latin_hypercube and random only, not {method!r}")
        vt = sw.table("vary", required=True)
        sw.finish()
        if vt is not None:
            if not vt.data:
                errors.add("sweep.vary", "is empty; name at least one key to vary")
            for key in vt.data:
                value = vt.raw(key)
                checked = _check_values(str(key), value, method, errors)
                if checked is not None:
                    vary[str(key)] = checked
            if method == "zip" and len(vary) == len(vt.data) and vary:
                lengths = {k: len(v) for k, v in vary.items()}
                if len(set(lengths.values())) > 1:
                    said = ", ".join(f'"{k}" has {n}' for k, n in lengths.items())
                    errors.add("sweep.vary", f"method = 'zip' needs lists of one length: {said}")
    base_path = None
    base_data: dict = {}
    if base is not None:
        try:
            base_path = _resolve_base(base, path.parent)
            base_data = tomllib.loads(base_path.read_text(encoding="utf-8"))
        except ScenarioError as exc:
            errors.add("", str(exc))
        except FileNotFoundError:
            errors.add(
                "base", f"scenario file {str(base_path)!r} not found (relative to the sweep file)"
            )
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            errors.add("base", f"cannot read {str(base_path)!r}: {exc}")
    if errors:
        raise ScenarioError(format_errors(errors, str(path)))
    values = make_cases(method, vary, samples=samples, seed=seed)
    return make_sweep(
        base_data, base_path.parent, values, keys=tuple(vary), method=method, path=path, base=base
    )


def make_sweep(
    base_data: Mapping,
    base_dir: str | Path,
    values: Iterable[Mapping[str, Any]],
    *,
    keys: Iterable[str] | None = None,
    method: str = "given",
    path: str | Path = "<sweep>",
    base: str = "",
) -> Sweep:
    """A :class:`Sweep` of the given cases (``{path: value}`` each) on a base scenario's
    raw TOML data, each validated as :func:`load_sweep` does (an envelope or an
    uncertainty study makes its cases this way, then calls :func:`run_sweep`).

    Raises ScenarioError for a key path the scenario does not have; a value the reader
    refuses is that case's :attr:`Case.invalid`.
    """
    errors = Errors()
    cases = []
    values = [dict(v) for v in values]
    base_digest = _digest(base_data)
    for v in values:
        data_v, invalid = _case_data(dict(base_data), v, Path(base_dir), errors)
        cases.append(Case(run_id(v, base_digest), v, data_v, invalid))
    seen: dict[str, dict] = {}
    for case in cases:
        if case.run_id in seen:
            errors.append(
                f"the case {case.values} is listed twice (as {seen[case.run_id]}); each "
                "combination of values runs once: remove the repeated value"
            )
        seen.setdefault(case.run_id, case.values)
    if errors:
        raise ScenarioError(format_errors(sorted(set(errors)), str(path)))
    if keys is None:
        keys = list(dict.fromkeys(k for v in values for k in v))
    return Sweep(Path(path), base, Path(base_dir), method, tuple(keys), tuple(cases))


def _check_values(key: str, value, method: str, errors: Errors):
    where = _quoted(key)
    try:
        parse_path(key)
    except ScenarioError as exc:
        errors.add(where, str(exc))
        return None
    if method in ("grid", "zip"):
        if not isinstance(value, list):
            hint = " (a { low, high } range is for latin_hypercube and random)"
            errors.add(where, f"must be a list of values for method = {method!r}, got {value!r}"
                       + (hint if isinstance(value, dict) else ""))  # fmt: skip
            return None
        if not value:
            errors.add(where, "is an empty list; give at least one value")
            return None
        return list(value)
    if not (isinstance(value, dict) and set(value) == {"low", "high"}):
        errors.add(where, f"must be a range {{ low = ..., high = ... }} for method = {method!r}, "
                   f"got {value!r}")  # fmt: skip
        return None
    lo, hi = value["low"], value["high"]
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (lo, hi))
    if not numbers or not (math.isfinite(lo) and math.isfinite(hi)):
        errors.add(where, f"low and high must be finite numbers, got {value!r}")
        return None
    if lo >= hi:
        errors.add(where, f"is an empty range: low ({lo:g}) must be below high ({hi:g})")
        return None
    return (lo, hi)


def _case_data(base: dict, values: dict, base_dir: Path, errors: Errors):
    """The case's scenario data and the reader's message if it refuses the values;
    a key path that does not exist goes to ``errors`` (bad input of the sweep)."""
    try:
        data = with_keys(base, values)
    except ScenarioError as exc:
        for k in values:
            if repr(k) in str(exc):
                errors.add(_quoted(k), str(exc))
                break
        else:
            errors.add("sweep.vary", str(exc))
        return {}, str(exc)
    try:
        parse_scenario(data, base_dir=base_dir)
    except ScenarioError as exc:
        unknown = [
            line
            for line in str(exc).splitlines()
            if "unknown" in line and any(k in line for k in values)
        ]
        for line in unknown:
            k = next(k for k in values if k in line)
            errors.add(_quoted(k), line.strip().removeprefix("- "))
        return data, str(exc)
    return data, None


# -- one run ------------------------------------------------------------------------------


def row_from_report(report: Mapping) -> dict:
    """The result columns of one finished run, from its report.json contents."""
    nerves = report.get("nerves") or {}
    hottest = max(nerves, key=lambda n: nerves[n]["max_temperature_C"], default=None)
    zone = report.get("ablation_zone") or {}
    tumour = report.get("tumour") or {}
    timing = report.get("timing") or {}
    return {
        "status": "ok",
        "error": "",
        "verdict": report.get("verdict"),
        "max_nerve_temperature_C": nerves[hottest]["max_temperature_C"] if hottest else None,
        "min_nerve_temperature_C": min(
            (n["min_temperature_C"] for n in nerves.values()), default=None
        ),
        "hottest_nerve": hottest,
        "ablation_volume_ml": zone.get("volume_ml"),
        "tumour_coverage_fraction": tumour.get("coverage_fraction"),
        "wall_s": timing.get("total_s", timing.get("wall_s")),
    }


def _error_row(message: str) -> dict:
    row = dict.fromkeys(RESULT_COLUMNS)
    row.update(status="error", error=message)
    return row


def run_case(scenario_data: Mapping, base_dir: str | Path, out_dir: str | Path) -> dict:
    """Run one scenario (raw TOML data) into ``out_dir`` and return its result columns.

    Never raises for the run's own failure: a scenario the reader or :meth:`build`
    refuses, a blow-up or any other exception becomes ``status = "error"`` with the
    message. Runs in a worker process; the anatomy is cached per process
    (:mod:`ablasim.scenario`), so a worker builds each phantom once.
    """
    out_dir = Path(out_dir)
    try:
        sc = parse_scenario(dict(scenario_data), base_dir=base_dir, origin=out_dir.name)
        run_scenario(sc, out_dir, progress=False)
        return row_from_report(json.loads((out_dir / "report.json").read_text(encoding="utf-8")))
    except AblasimError as exc:
        return _error_row(str(exc))
    except Exception as exc:  # a run that raises is a row, not a crash
        return _error_row(f"{type(exc).__name__}: {exc}")


# -- the table ------------------------------------------------------------------------------


def _cell(v):
    if isinstance(v, list | tuple | dict):
        return json.dumps(_plain(v))
    return _plain(v)


def write_table(rows: Iterable[Mapping], out_dir: str | Path, keys: Iterable[str] = ()) -> None:
    """Write ``out_dir/runs.csv`` and ``out_dir/runs.parquet`` atomically (a kill never
    leaves half a table): ``run_id``, the varied ``keys``, then :data:`RESULT_COLUMNS`;
    rows in the order given. A list value is written as JSON text."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    columns = ["run_id", *keys, *RESULT_COLUMNS]
    rows = list(rows)
    arrays = {}
    for c in columns:
        vals = [_cell(r.get(c)) for r in rows]
        if (
            vals
            and all(isinstance(v, int | float) or v is None for v in vals)
            and any(isinstance(v, float) for v in vals)
        ):
            vals = [None if v is None else float(v) for v in vals]
        try:
            arrays[c] = pa.array(vals)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[c] = pa.array([None if v is None else str(v) for v in vals], pa.string())
    table = pa.table(arrays) if rows else pa.table({c: pa.array([], pa.string()) for c in columns})
    with atomic_path(out_dir / "runs.parquet") as tmp:
        pq.write_table(table, tmp)
    with atomic_path(out_dir / "runs.csv") as tmp:
        pacsv.write_csv(table, tmp)


def read_table(out_dir: str | Path) -> list[dict]:
    """The rows of ``out_dir/runs.parquet`` (empty when there is none yet)."""
    path = Path(out_dir) / "runs.parquet"
    if not path.is_file():
        return []
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


# -- where runs execute ---------------------------------------------------------------------


class Backend(ABC):
    """Where runs execute: ``submit(fn, *args)`` returns a future; ``wait_first(futures)``
    returns ``(done, not_done)`` once at least one is done; ``close()``. Made by
    :func:`make_backend`; local processes and Dask behave the same behind it. A future
    whose ``result()`` raises means its worker died (:func:`run_case` returns a run's own
    errors as rows)."""

    workers: int = 1
    description: str = ""

    @abstractmethod
    def submit(self, fn: Callable, *args):
        """Start ``fn(*args)`` on a worker; returns its future."""

    @abstractmethod
    def wait_first(self, futures) -> tuple[set, set]:
        """``(done, not_done)`` once at least one of ``futures`` is done."""

    @abstractmethod
    def close(self) -> None:
        """Stop the workers."""


class LocalBackend(Backend):
    """``ProcessPoolExecutor`` workers started with ``spawn``; ``NUMBA_NUM_THREADS`` is
    set in the environment they start with, before they import numba."""

    def __init__(self, workers: int):
        self.workers = workers
        self.description = f"{workers} local worker process(es)"
        self._pool = self._new_pool()

    def _new_pool(self):
        return cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn, *args):
        try:
            return self._pool.submit(fn, *args)
        except cf.process.BrokenProcessPool:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(fn, *args)

    def wait_first(self, futures):
        done, not_done = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        return set(done), set(not_done)

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)


class DaskBackend(Backend):
    """A Dask distributed client: a cluster at an address, or a ``LocalCluster`` of
    single-threaded worker processes (numba's default threading layer must not be
    called from several threads of one process)."""

    def __init__(self, address: str, workers: int, threads: int):
        import dask
        import distributed

        self._cluster = None
        if address == "local":
            with dask.config.set(
                {"distributed.nanny.pre-spawn-environ.NUMBA_NUM_THREADS": str(threads)}
            ):
                self._cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    host="127.0.0.1",
                    silence_logs=40,
                )
            address = self._cluster.scheduler_address
            self.description = f"a Dask LocalCluster of {workers} worker process(es)"
        try:
            self._client = distributed.Client(address, timeout="5s")
        except (OSError, TimeoutError) as exc:
            if self._cluster is not None:
                self._cluster.close()
            raise AblasimError(
                f"--scheduler: cannot reach a Dask scheduler at {address!r} within 5 s ({exc}); "
                "start one (`dask scheduler`, then `dask worker ADDRESS`) or use "
                "--scheduler local"
            ) from None
        n = len(self._client.scheduler_info().get("workers", {}))
        self.workers = max(n, 1)
        if self._cluster is None:
            self.description = f"the Dask scheduler at {address} ({n} worker(s))"

    def submit(self, fn, *args):
        return self._client.submit(fn, *args, pure=False)

    def wait_first(self, futures):
        import distributed

        res = distributed.wait(list(futures), return_when="FIRST_COMPLETED")
        return set(res.done), set(res.not_done)

    def close(self):
        with contextlib.suppress(Exception):
            self._client.close()
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()


def make_backend(scheduler: str | None, workers: int | None = None) -> Backend:
    """Local worker processes (``scheduler`` None), a ``LocalCluster`` (``"local"``) or
    the Dask scheduler at an address (``tcp://host:8786``). ``workers`` defaults to the
    CPU count; each gets ``cores // workers`` numba threads (at least 1)."""
    cores = os.cpu_count() or 1
    workers = int(workers or cores)
    if workers < 1:
        raise ScenarioError(f"--workers must be at least 1, got {workers}")
    if scheduler is None:
        return LocalBackend(workers)
    return DaskBackend(scheduler, workers, max(1, cores // workers))


@contextlib.contextmanager
def _numba_threads(n: int) -> Iterator[None]:
    """``NUMBA_NUM_THREADS`` for the worker processes started inside the block."""
    old = os.environ.get("NUMBA_NUM_THREADS")
    os.environ["NUMBA_NUM_THREADS"] = str(n)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("NUMBA_NUM_THREADS", None)
        else:
            os.environ["NUMBA_NUM_THREADS"] = old


# -- the sweep ------------------------------------------------------------------------------


@dataclass
class SweepSummary:
    """What a sweep did: the counts over the whole table and the runs done this time."""

    total: int
    passed: int
    failed: int
    errors: int
    ran: int
    skipped: int
    seconds: float
    table: Path
    interrupted: bool = False

    def line(self) -> str:
        return (
            f"{self.total} runs: {self.passed} pass, {self.failed} fail, {self.errors} error "
            f"({self.ran} run now, {self.skipped} already done; {self.seconds:.1f} s); "
            f"table: {self.table}"
        )


def run_sweep(
    sweep: Sweep | str | Path,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    backend: Backend | None = None,
) -> SweepSummary:
    """Run every case not yet in ``out_dir/runs.parquet``; rewrite the table after each.

    Each run writes its files into ``out_dir/runs/<run_id>/``. A case the scenario
    reader refused is an ``"error"`` row at once; a run whose worker died is tried again
    once, then recorded as an error. KeyboardInterrupt stops the workers and leaves the
    table as it stands (run again to continue); the summary then has ``interrupted``.
    """
    t0 = time.perf_counter()
    sw = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    if workers is not None and int(workers) < 1:
        raise ScenarioError(f"--workers: must be at least 1, got {workers}")
    out = Path(out_dir)
    wanted = {c.run_id: c for c in sw.cases}
    rows: dict[str, dict] = {}
    for r in read_table(out):
        if r.get("run_id") in wanted and r.get("status") in ("ok", "error"):
            rows[r["run_id"]] = r
    skipped = len(rows)
    ran = 0

    def record(case: Case, result: dict) -> None:
        nonlocal ran
        rows[case.run_id] = {"run_id": case.run_id, **case.values, **result}
        ran += 1
        ordered = [rows[c.run_id] for c in sw.cases if c.run_id in rows]
        write_table(ordered, out, sw.keys)

    refused = [c for c in sw.cases if c.run_id not in rows and c.invalid is not None]
    todo = [c for c in sw.cases if c.run_id not in rows and c.invalid is None]
    cores = os.cpu_count() or 1
    be = backend
    if todo and be is None:  # an unreachable scheduler fails here, before anything is written
        with _numba_threads(max(1, cores // int(workers or cores))):
            be = make_backend(scheduler, workers)
    bar = None
    interrupted = False
    try:
        out.mkdir(parents=True, exist_ok=True)
        for c in refused:
            record(c, _error_row(c.invalid))
        if not (out / "runs.parquet").is_file():
            write_table([], out, sw.keys)
        if todo:
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(total=len(todo), unit="run", desc="sweep", dynamic_ncols=True)
            with _numba_threads(max(1, cores // max(be.workers, 1))):
                _drive(be, sw, todo, out, record, bar)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
        if be is not None and backend is None:
            be.close()
    table = [rows[c.run_id] for c in sw.cases if c.run_id in rows]
    ok = [r for r in table if r["status"] == "ok"]
    if not interrupted:
        _sweep_map(ok, sw.keys, out)
    return SweepSummary(
        total=len(sw.cases),
        passed=sum(r["verdict"] == "PASS" for r in ok),
        failed=sum(r["verdict"] != "PASS" for r in ok),
        errors=sum(r["status"] == "error" for r in table),
        ran=ran,
        skipped=skipped,
        seconds=time.perf_counter() - t0,
        table=out / "runs.csv",
        interrupted=interrupted,
    )


def _sweep_map(ok: list[dict], keys, out: Path) -> None:
    """``sweep_map.png``: the hottest nerve temperature over the two keys, the safe /
    unsafe boundary drawn, when exactly two keys vary (matplotlib is loaded only then)."""
    varied = [k for k in keys if len({str(r.get(k)) for r in ok}) > 1]
    if len(varied) != 2:
        return
    # without a nerve in the model, the ablation zone's volume
    column = next((c for c in ("max_nerve_temperature_C", "ablation_volume_ml")
                   if all(r.get(c) is not None for r in ok)), None)  # fmt: skip
    if column is None:
        return
    from .viz.sweep import plot_sweep_map

    plot_sweep_map(ok, varied[0], varied[1], column, save=out / "sweep_map.png")


def _drive(be: Backend, sw: Sweep, todo: list[Case], out: Path, record, bar) -> None:
    """Keep a window of runs in flight (4 per worker) and record each as it finishes.

    A future that raises means its worker died (:func:`run_case` returns the run's own
    errors as rows). A dead local pool fails every run in flight, so the culprit is not
    known: each such run is tried again alone, one at a time, and a run whose worker dies
    while it runs alone is recorded as an error. Each run is thus tried at most twice.
    """
    queue = list(reversed(todo))
    suspects: list[Case] = []
    in_flight: dict[Any, tuple[Case, bool]] = {}
    window = 4 * max(be.workers, 1)

    def submit(case: Case, alone: bool) -> None:
        fut = be.submit(
            run_case, case.scenario_data, str(sw.base_dir), str(out / "runs" / case.run_id)
        )
        in_flight[fut] = (case, alone)

    while queue or in_flight or suspects:
        if suspects:
            if not in_flight:
                submit(suspects.pop(0), alone=True)
        else:
            while queue and len(in_flight) < window:
                submit(queue.pop(), alone=False)
        done, _ = be.wait_first(set(in_flight))
        for fut in done:
            case, alone = in_flight.pop(fut)
            try:
                result = fut.result()
            except Exception as exc:  # the worker died, not the run
                if not alone:
                    suspects.append(case)
                    continue
                result = _error_row(
                    f"the worker process running it died, twice ({type(exc).__name__}: {exc})"
                )
            record(case, result)
            if bar is not None:
                bar.update(1)
