"""The time loop: sources -> heating (Q, or one source's map and power formed inside the
step), held voxels -> Pennes step with damage (numba) -> thermocouples and cut-off ->
samples and checkpoints.

:func:`simulate` runs a protocol (a list of :class:`Phase`) on a
:class:`~ablasim.model.Model` and returns a :class:`~ablasim.result.Result`.
Temperatures, damage and the perfusion state carry over from phase to phase.

* Time step: the largest stable one (:func:`~ablasim.solvers.stable_dt`) times
  ``dt_safety``, shortened so each phase is a whole number of steps; a requested step
  above the limit is a :class:`~ablasim.errors.StabilityError`.
* Non-finite or runaway temperatures stop the run with a
  :class:`~ablasim.errors.SimulationError` naming the phase and time.
* Thermocouples with ``cutoff=True`` switch every source of the current phase off for
  the rest of that phase when they reach the hot limit (or fall to the cold limit), as
  the clinical safeguard does; the next phase starts as planned.
* With ``checkpoint=PATH`` the whole state is saved atomically every
  ``checkpoint_interval`` seconds of wall time; ``resume=True`` continues from it.
* Damage (extremes, CEM43, Arrhenius, perfusion shut-down) is accumulated inside the
  step, row by row while the new temperatures are in cache
  (:func:`~ablasim.damage.pennes_damage_step`); the few voxels held at a temperature
  after the step have their damage redone at the held value
  (:func:`~ablasim.damage.redo_damage`), so the result is that of a separate damage pass
  after the hold. ``timing["pennes_s"]`` is the fused step, ``timing["damage_s"]`` the
  held-voxel fix-up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np

from . import damage as damage_module
from .damage import (
    DAMAGE_FLOOR_C,
    GAS_CONSTANT,
    DamageFields,
    PerfusionShutdown,
    pennes_damage_step,
    redo_damage,
    row_bounds,
    save_voxels,
)
from .errors import ScenarioError, SimulationError, StabilityError
from .fileio import atomic_write
from .model import Model
from .result import NerveSummary, PhaseSummary, Result, ThermocoupleSummary
from .sensors import SensorSet
from .solvers import Boundary, fill_ghosts, stable_dt
from .sources import HeatSource

__all__ = ["Limits", "Phase", "Thermocouple", "simulate"]

#: Temperatures outside this range [°C] mean the run has blown up.
T_RUNAWAY = (-273.15, 1000.0)
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Phase:
    """One step of the protocol: a duration [s] and the sources active during it.

    A phase with no source is a cool-down (or, for cryo, a passive thaw).
    """

    name: str
    duration: float
    sources: Sequence[HeatSource] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        try:
            d = float(self.duration)
        except (TypeError, ValueError):
            d = math.nan
        if not math.isfinite(d) or d <= 0:
            raise ScenarioError(
                f"phase {self.name!r}: duration must be a finite number of seconds > 0, "
                f"got {self.duration!r}"
            )
        object.__setattr__(self, "duration", d)
        object.__setattr__(self, "sources", tuple(self.sources))


@dataclass(frozen=True)
class Thermocouple:
    """A virtual thermocouple at a world point [m]; ``cutoff`` makes it a safeguard."""

    name: str
    position: tuple[float, float, float]
    cutoff: bool = False


@dataclass(frozen=True)
class Limits:
    """Temperature limits for nerves [°C] (physics.md §3.5: keep juxtaneural tissue
    between 10 and 45 °C; Sag & Husain 2022, Semin Intervent Radiol 39:157)."""

    hot_C: float = 45.0
    cold_C: float | None = 10.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.hot_C):
            raise ScenarioError(f"safety.hot_limit_C must be finite, got {self.hot_C!r}")
        if self.cold_C is not None and not (
            math.isfinite(self.cold_C) and self.cold_C < self.hot_C
        ):
            raise ScenarioError(
                f"safety.cold_limit_C must be finite and below hot_limit_C "
                f"({self.hot_C}), got {self.cold_C!r}"
            )


def _as_thermocouples(tcs) -> tuple[Thermocouple, ...]:
    if tcs is None:
        return ()
    if isinstance(tcs, Mapping):
        return tuple(Thermocouple(str(n), tuple(p)) for n, p in tcs.items())
    out = tuple(tcs)
    names = [t.name for t in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ScenarioError(f"thermocouple names must be unique; repeated: {sorted(dup)}")
    return out


class _NerveTracker:
    """Per-structure extremes of the nerve voxels, every step."""

    def __init__(self, model: Model):
        shape = model.grid.shape
        pshape = tuple(n + 2 for n in shape)
        names, chunks, starts = [], [], []
        pos = 0
        for name in model.nerve_structures():
            idx = np.flatnonzero(model.structure_mask(name))
            if idx.size == 0:
                continue
            i, j, k = np.unravel_index(idx, shape)
            chunks.append(np.ravel_multi_index((i + 1, j + 1, k + 1), pshape))
            names.append(name)
            starts.append(pos)
            pos += idx.size
        self.names = tuple(names)
        self.index = np.concatenate(chunks) if chunks else np.empty(0, np.int64)
        self.starts = np.asarray(starts, dtype=np.int64)

    def extremes(self, Tflat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.names:
            return np.empty(0), np.empty(0)
        v = Tflat[self.index]
        return np.maximum.reduceat(v, self.starts), np.minimum.reduceat(v, self.starts)


@dataclass
class _State:
    """Everything a checkpoint must hold to continue exactly."""

    T: np.ndarray  # padded
    W: np.ndarray
    damage: DamageFields
    t: float = 0.0
    phase: int = 0
    step: int = 0  # steps done in the current phase
    total_steps: int = 0
    phase_energy: list = field(default_factory=list)
    phase_cutoff: list = field(default_factory=list)
    nerve_time_above: np.ndarray | None = None
    nerve_time_below: np.ndarray | None = None
    nerve_first_hot: np.ndarray | None = None
    nerve_first_cold: np.ndarray | None = None
    tc_cutoff: dict = field(default_factory=dict)
    samples: dict = field(default_factory=dict)
    telemetry: list = field(default_factory=list)  # one {name: value} dict per sample
    source_state: dict = field(default_factory=dict)  # "phase.source" -> state()
    next_sample: float = 0.0


def _digest(obj) -> str:
    """SHA-256 of a value: nested dataclasses, objects, mappings, sequences, arrays and
    scalars, by content (arrays by their bytes), so any change of a scenario shows."""
    h = hashlib.sha256()
    active: set[int] = set()

    def feed(o) -> None:
        if isinstance(o, (str, bytes, int, float, bool, type(None), np.generic)):
            h.update(repr(o).encode())
            return
        if id(o) in active:  # a reference cycle
            h.update(b"<cycle>")
            return
        active.add(id(o))
        if isinstance(o, np.ndarray):
            h.update(f"array{o.dtype.str}{o.shape}".encode())
            h.update(np.ascontiguousarray(o).tobytes())
        elif dataclasses.is_dataclass(o) and not isinstance(o, type):
            h.update(type(o).__qualname__.encode())
            for fl in dataclasses.fields(o):
                feed(fl.name)
                feed(getattr(o, fl.name))
        elif isinstance(o, Mapping):
            h.update(b"{")
            for key in sorted(o, key=str):
                feed(key)
                feed(o[key])
            h.update(b"}")
        elif isinstance(o, (set, frozenset)):
            feed(sorted(o, key=repr))
        elif isinstance(o, (list, tuple)):
            h.update(b"[")
            for v in o:
                feed(v)
            h.update(b"]")
        elif hasattr(o, "__dict__"):
            h.update(type(o).__qualname__.encode())
            feed(vars(o))
        else:
            h.update(repr(o).encode())
        active.discard(id(o))

    feed(obj)
    return h.hexdigest()


def _fingerprint(model: Model, phases, dt_phase, extra) -> str:
    parts = {
        "grid": [model.grid.shape, model.grid.spacing, model.grid.origin],
        # labels, structures, tissue properties and boundary, by content
        "model": _digest(model),
        "structures": [[s.name, s.tissue] for s in model.structures],
        "phases": [[p.name, p.duration, _digest(p.sources)] for p in phases],
        "dt": dt_phase,
        "extra": extra,
    }
    return json.dumps(parts, sort_keys=True, default=str)


def _save_checkpoint(path: Path, state: _State, fingerprint: str) -> None:
    meta = {
        "version": CHECKPOINT_VERSION,
        "fingerprint": fingerprint,
        "t": state.t,
        "phase": state.phase,
        "step": state.step,
        "total_steps": state.total_steps,
        "phase_energy": state.phase_energy,
        "phase_cutoff": state.phase_cutoff,
        "tc_cutoff": state.tc_cutoff,
        "next_sample": state.next_sample,
        "sample_keys": list(state.samples),
        "telemetry": state.telemetry,
        "source_state": state.source_state,
    }
    arrays = {
        "T": state.T,
        "W": state.W,
        **{f"damage_{k}": v for k, v in state.damage.as_dict().items()},
        "nerve_time_above": state.nerve_time_above,
        "nerve_time_below": state.nerve_time_below,
        "nerve_first_hot": state.nerve_first_hot,
        "nerve_first_cold": state.nerve_first_cold,
    }
    for key, values in state.samples.items():
        arrays[f"sample_{key}"] = np.asarray(values, dtype=float)
    with atomic_write(path, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)


def _with_source_state(st: _State, bound) -> _State:
    """The state with the sources' own state (see ``BoundSource``) filled in."""
    st.source_state = {
        f"{i}.{j}": b.state()
        for i, bs in enumerate(bound)
        for j, b in enumerate(bs)
        if hasattr(b, "state")
    }
    return st


def _load_checkpoint(path: Path, fingerprint: str) -> _State:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ScenarioError(
            f"cannot read checkpoint {path}: {exc}; delete it to start afresh"
        ) from None
    if meta.get("version") != CHECKPOINT_VERSION or meta.get("fingerprint") != fingerprint:
        raise ScenarioError(
            f"checkpoint {path} belongs to a different scenario or ablasim version; "
            "delete it (or run without --resume) to start afresh"
        )
    damage = DamageFields(
        arrays["damage_t_max"],
        arrays["damage_t_min"],
        arrays["damage_cem43"],
        arrays["damage_omega"],
    )
    samples = {}
    for key in meta["sample_keys"]:
        a = arrays[f"sample_{key}"]
        samples[key] = list(a)
    return _State(
        T=arrays["T"],
        W=arrays["W"],
        damage=damage,
        t=meta["t"],
        phase=meta["phase"],
        step=meta["step"],
        total_steps=meta["total_steps"],
        phase_energy=meta["phase_energy"],
        phase_cutoff=meta["phase_cutoff"],
        nerve_time_above=arrays["nerve_time_above"],
        nerve_time_below=arrays["nerve_time_below"],
        nerve_first_hot=arrays["nerve_first_hot"],
        nerve_first_cold=arrays["nerve_first_cold"],
        tc_cutoff=meta["tc_cutoff"],
        samples=samples,
        telemetry=meta.get("telemetry", []),
        source_state=meta.get("source_state", {}),
        next_sample=meta["next_sample"],
    )


def _warm_up() -> None:
    """Load (or compile) the kernels on tiny arrays, so the set-up time includes it."""
    T = np.full((3, 3, 3), 37.0)
    k = np.ones((3, 3, 3))
    one = np.ones((1, 1, 1))
    lab = np.zeros((1, 1, 1), dtype=np.uint8)
    # one label's phase table (PHASE_COLUMNS): no latent heat, boiling at 95-100 °C
    tab = np.array([[1e6, 1e6, 0.0, -8.0, -1.0, 0.0, 95.0, 100.0]])
    kinds, values, hc = Boundary.adiabatic().as_arrays()
    fill_ghosts(T, k, kinds, values, hc, 1e-3)
    z = np.zeros((1, 1, 1))
    dmg = (z.copy(), z.copy(), z.copy(), z.copy(), z.copy())  # t_max .. omega, W
    step = (T, k, one, dmg[4], one, 37.0, 1e-3, 1e-3, T.copy(), lab, tab, False)
    tables = (np.zeros(1), np.zeros(1))
    # through the module: a test may replace this module's name to interrupt a run
    bounds = row_bounds(dmg[0], dmg[1])
    damage_module.pennes_damage_step(
        *step, *tables, *dmg[:4], 1.0, 1.0, 39.0, 1.0, one, 0.0, *bounds
    )
    v = np.zeros(1, dtype=np.int64)
    saved = np.empty((5, 1))
    save_voxels(v, v, v, *dmg, saved)
    redo_damage(T, v, v, v, saved, 1e-3, lab, *tables, *dmg, 1.0, 1.0, 39.0, *bounds)


class _ThreadChooser:
    """Choose the number of kernel threads that runs the step fastest now.

    The step is memory-bound: on two cores the second thread gains only about 1.35x
    (``shared/reference/performance.md``). But on a shared host, when another process
    holds the other core, every step waits for the descheduled thread and a parallel run
    becomes several times *slower* than a serial one. So every ``interval`` seconds of
    wall time a few trial steps (into the scratch buffer, results discarded) are timed
    with one thread and with all of them, and the faster is kept. With ``threads`` given,
    that number is used throughout. The trials run the step with damage on copies of the
    accumulators (so nothing is counted twice): the kernel the run spends its time in,
    and the only step kernel a run compiles (the plain step alone took 12 s to compile).
    The trials repeat one step, so they read fewer extremes than a real step (the row
    bounds make the repeats skip them); that is the same for every thread count, and
    the choice only compares thread counts.
    """

    def __init__(self, threads: int | None, interval: float = 20.0, trials: int = 3):
        self.max = numba.config.NUMBA_NUM_THREADS
        self.fixed = threads
        if threads is not None:
            if not (isinstance(threads, int) and 1 <= threads <= self.max):
                raise ScenarioError(
                    f"threads must be a whole number from 1 to {self.max}, got {threads!r}"
                )
            numba.set_num_threads(threads)
        self.interval = interval
        self.trials = trials
        self.next = 0.0
        self.chosen: list[int] = []

    def due(self) -> bool:
        return self.fixed is None and self.max > 1 and time.perf_counter() >= self.next

    def choose(self, kernel, args) -> None:
        best = None
        for n in (1, self.max):
            numba.set_num_threads(n)
            kernel(*args)  # let the threads wake up
            t = min(_timed(kernel, args) for _ in range(self.trials))
            if best is None or t < best[0]:
                best = (t, n)
        numba.set_num_threads(best[1])
        self.chosen.append(best[1])
        self.next = time.perf_counter() + self.interval

    def summary(self):
        if self.fixed is not None or not self.chosen:
            return numba.get_num_threads()
        return max(set(self.chosen), key=self.chosen.count)


def _timed(fn, args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def _progress(total: float, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(
        total=round(total),
        unit="s",
        desc="simulating",
        leave=False,
        dynamic_ncols=True,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s simulated "
        "[{elapsed}<{remaining}{postfix}]",
    )


def simulate(
    model: Model,
    phases: Sequence[Phase],
    *,
    initial_temperature: float | np.ndarray | None = None,
    dt: float | None = None,
    dt_safety: float = 0.95,
    thermocouples: Mapping[str, Sequence[float]] | Sequence[Thermocouple] | None = None,
    limits: Limits | None = None,
    perfusion_shutdown: PerfusionShutdown | None = None,
    sample_interval: float = 1.0,
    progress: bool = False,
    checkpoint: str | Path | None = None,
    checkpoint_interval: float = 60.0,
    resume: bool = False,
    threads: int | None = None,
    bound_sources: Sequence[Sequence] | None = None,
) -> Result:
    """Run a protocol on a model.

    Parameters
    ----------
    model : Model
    phases : sequence of Phase
    initial_temperature : float or ndarray, optional
        Initial temperature [°C]; default the blood temperature everywhere.
    dt : float, optional
        Time step [s]; default ``dt_safety * stable_dt``. Must not exceed the stable step.
    dt_safety : float
        Fraction of the stable step used when ``dt`` is not given (0 < x <= 1).
    thermocouples : mapping name -> point [m], or sequence of Thermocouple, optional
        Virtual thermocouples, read by trilinear interpolation every step.
    limits : Limits, optional
        Hot and cold limits for nerves and cut-off thermocouples (default 45 / 10 °C).
    perfusion_shutdown : PerfusionShutdown, optional
        When blood flow stops in damaged tissue (default Omega >= 4.6 or T >= 60 °C).
    sample_interval : float
        Time between samples of the traces [s] (each phase's end is also sampled).
    progress : bool
        Show a progress bar.
    checkpoint : path, optional
        Save the state there every ``checkpoint_interval`` seconds of wall time.
    resume : bool
        Continue from ``checkpoint`` if it exists.
    bound_sources : sequence of sequences of BoundSource, optional
        The phases' sources already bound to ``model`` (one sequence per phase, as
        ``BuiltScenario.bound``), to avoid binding them again. Used for this run only.
    threads : int, optional
        Number of threads for the kernels; default: chosen and re-checked while running
        (see :class:`_ThreadChooser`).

    Returns
    -------
    Result
    """
    if not phases:
        raise ScenarioError("the protocol has no phase; add at least one [[phase]]")
    if not (0 < dt_safety <= 1):
        raise ScenarioError(f"dt_safety must be in (0, 1], got {dt_safety!r}")
    if not (math.isfinite(sample_interval) and sample_interval > 0):
        raise ScenarioError(f"sample_interval must be > 0 s, got {sample_interval!r}")
    limits = limits or Limits()
    shutdown = perfusion_shutdown or PerfusionShutdown()
    tcs = _as_thermocouples(thermocouples)
    grid = model.grid
    f = model.thermal_fields
    h = grid.spacing
    blood_T = model.tissues.blood.temperature_C
    kinds, values, hcoefs = model.boundary.as_arrays()
    sensor_set = SensorSet(grid, {tc.name: tc.position for tc in tcs})
    cut_tcs = np.array([tc.cutoff for tc in tcs], dtype=bool)
    nerves = _NerveTracker(model)
    t_setup = time.perf_counter()

    # bind every source up front: bad geometry fails before any work is done
    if bound_sources is not None:
        bound = [list(b) for b in bound_sources]
        if [len(b) for b in bound] != [len(p.sources) for p in phases]:
            raise ScenarioError("bound_sources must hold one bound source per phase source")
    else:
        bound = [[s.bind(model) for s in p.sources] for p in phases]
    # frozen tissue has a lower heat capacity, hence a shorter stable step: account for
    # it only when something can freeze (a cold start or a probe held below freezing)
    t_liquidus = float(f.phase[:, 4].max())
    if initial_temperature is not None:
        init = np.asarray(initial_temperature, dtype=float)
        if init.ndim and init.shape != grid.shape:
            raise ScenarioError(
                f"initial_temperature has shape {init.shape}, the grid {grid.shape}; give "
                "one number or an array of the grid's shape"
            )
        if not np.all(np.isfinite(init)):
            raise ScenarioError("initial temperature must be finite")
        initial_temperature = init
    init_min = blood_T if initial_temperature is None else float(np.min(initial_temperature))
    held_min = min(
        (
            float(x.temperature_C.min())
            for b in (b for bs in bound for b in bs)
            if (x := b.held()) is not None and x.temperature_C.size
        ),
        default=math.inf,
    )
    face_min = (
        min(fc.temperature_C for fc in model.boundary.faces if fc.kind != "adiabatic")
        if any(fc.kind != "adiabatic" for fc in model.boundary.faces)
        else math.inf
    )
    may_freeze = min(init_min, held_min, face_min) < t_liquidus
    dt_limit = stable_dt(
        f.k,
        f.inv_rhoc,
        f.W,
        h,
        model.boundary,
        labels=model.labels if may_freeze else None,
        phase=f.phase if may_freeze else None,
    )
    if dt is None:
        dt_use = dt_safety * dt_limit
    else:
        dt_use = float(dt)
        if not math.isfinite(dt_use) or dt_use <= 0:
            raise ScenarioError(f"time step dt must be a positive number, got {dt!r}")
        if dt_use > dt_limit * (1 + 1e-12):
            raise StabilityError(
                f"time step {dt_use:.4g} s exceeds the stability limit {dt_limit:.4g} s of "
                f"this grid (spacing {h * 1e3:g} mm, highest diffusivity/perfusion); "
                "use a smaller dt or leave it out to use the limit"
            )
    n_steps = [max(1, math.ceil(p.duration / dt_use - 1e-9)) for p in phases]
    dts = [p.duration / n for p, n in zip(phases, n_steps, strict=True)]

    # per-label Arrhenius tables
    a_tab = model.label_table("arrhenius_A_per_s")
    with np.errstate(divide="ignore"):
        ln_a = np.where(a_tab > 0, np.log(np.where(a_tab > 0, a_tab, 1.0)), -np.inf)
    ea_r = model.label_table("arrhenius_Ea_J_mol") / GAS_CONSTANT
    shut_omega, shut_t = shutdown.thresholds()

    ckpt = Path(checkpoint) if checkpoint is not None else None
    fingerprint = (
        _fingerprint(
            model,
            phases,
            dts,
            [
                _digest(initial_temperature),
                [(t.name, t.position, t.cutoff) for t in tcs],
                [limits.hot_C, limits.cold_C],
                [shut_omega, shut_t],
            ],
        )
        if ckpt is not None
        else ""
    )
    if resume and ckpt is not None and ckpt.exists():
        st = _load_checkpoint(ckpt, fingerprint)
        resumed_from = st.t
        # sources with internal state (a generator's controller) continue where they were
        for key, value in st.source_state.items():
            i, j = (int(v) for v in key.split("."))
            bound[i][j].restore(value)
    else:
        resumed_from = None
        T0 = np.empty(tuple(n + 2 for n in grid.shape))
        T0[1:-1, 1:-1, 1:-1] = blood_T if initial_temperature is None else initial_temperature
        if not np.all(np.isfinite(T0[1:-1, 1:-1, 1:-1])):
            raise ScenarioError("initial temperature must be finite")
        nn = len(nerves.names)
        st = _State(
            T=T0,
            W=f.W.copy(),
            damage=DamageFields.start(T0[1:-1, 1:-1, 1:-1]),
            nerve_time_above=np.zeros(nn),
            nerve_time_below=np.zeros(nn),
            nerve_first_hot=np.full(nn, np.nan),
            nerve_first_cold=np.full(nn, np.nan),
            samples={
                "time": [],
                "phase": [],
                "power": [],
                "tc": [],
                "nerve_max": [],
                "nerve_min": [],
            },
        )
        fill_ghosts(st.T, f.k, kinds, values, hcoefs, h)
        _record(st, 0.0, -1, 0.0, sensor_set, nerves, ())
        st.next_sample = sample_interval

    T = st.T
    # per-row bounds of the extremes, kept valid by the damage kernels (see damage_row)
    bounds = row_bounds(st.damage.t_max, st.damage.t_min)
    # ghosts that hold a fixed value (every face `body`, the default) are written once,
    # into both buffers, instead of after every step
    fixed_ghosts = model.boundary.fixed_ghosts
    fill_ghosts(T, f.k, kinds, values, hcoefs, h)
    T_new = T.copy()
    Q = np.empty(grid.shape)
    labels = model.labels
    _warm_up()
    chooser = _ThreadChooser(threads)
    cold_limit = -math.inf if limits.cold_C is None else limits.cold_C
    t_kernel = t_damage = 0.0
    steps0 = st.total_steps  # steps already done before a resume
    wall0 = time.perf_counter()
    setup_s = wall0 - t_setup
    last_ckpt = wall0
    bar = _progress(sum(p.duration for p in phases), progress)
    if bar is not None:
        bar.n = round(st.t)
    try:
        while st.phase < len(phases):
            p_i = st.phase
            phase = phases[p_i]
            dt_phase = dts[p_i]
            if len(st.phase_energy) <= p_i:
                st.phase_energy.append(0.0)
                st.phase_cutoff.append(None)
            sources_on = st.phase_cutoff[p_i] is None
            srcs = bound[p_i] if sources_on else []
            held = [x for x in (b.held() for b in srcs) if x is not None]
            pidx = (
                np.concatenate([_padded_index(x.index, grid.shape) for x in held])
                if held
                else np.empty(0, dtype=np.int64)
            )
            pval = np.concatenate([x.temperature_C for x in held]) if held else np.empty(0)
            # the held voxels, each once, whose damage is redone after the hold
            vi, vj, vm = (
                np.ascontiguousarray(a - 1) for a in np.unravel_index(np.unique(pidx), T.shape)
            )
            saved = np.empty((5, vi.size))
            # latent heat wherever something can freeze: a cold start, a face held or
            # cooled below freezing, or a probe held below it in this phase
            phase_change = bool(
                face_min < t_liquidus
                or np.any(T[1:-1, 1:-1, 1:-1] < t_liquidus)
                or np.any(pval < t_liquidus)
            )
            Q_static = f.Q_met.copy()
            static_power = sum(
                b.deposit(Q_static, T[1:-1, 1:-1, 1:-1], st.t) for b in srcs if b.static
            )
            dynamic = [b for b in srcs if not b.static]
            # one changing source whose heating is power x map: the kernel forms it
            scaled = (
                dynamic[0]
                if len(dynamic) == 1
                and hasattr(dynamic[0], "advance")
                and hasattr(dynamic[0], "unit_heating")
                else None
            )
            static_zero = not Q_static.any()
            t_phase0 = sum(p.duration for p in phases[:p_i])
            if pidx.size:
                T.reshape(-1)[pidx] = pval
                fill_ghosts(T, f.k, kinds, values, hcoefs, h)
            cut_now = False
            while st.step < n_steps[p_i]:
                power = static_power
                Qs = Q_static
                q_scale, P, p_scale = 1.0, Q_static, 0.0
                if scaled is not None:
                    # a power below zero heats nothing (as deposit() adds nothing)
                    p_scale = max(float(scaled.advance(T[1:-1, 1:-1, 1:-1], st.t)), 0.0)
                    P = scaled.unit_heating
                    power += p_scale
                    if static_zero:  # read only the map
                        Qs, q_scale = P, 0.0
                elif dynamic:
                    Q[...] = Q_static
                    Tin = T[1:-1, 1:-1, 1:-1]
                    for b in dynamic:
                        power += b.deposit(Q, Tin, st.t)
                    Qs = P = Q
                step_args = (
                    T, f.k, f.inv_rhoc, st.W, Qs, blood_T, dt_phase, h, T_new,
                    labels, f.phase, phase_change,
                )  # fmt: skip
                dmg = st.damage
                acc = (dmg.t_max, dmg.t_min, dmg.cem43, dmg.omega)
                if chooser.due():
                    # trial steps on copies of what the step writes besides T_new
                    scratch = [a.copy() for a in (*acc, st.W, *bounds)]
                    trial = (
                        *step_args[:3], scratch[4], *step_args[4:], ln_a, ea_r, *scratch[:4],
                        shut_omega, shut_t, DAMAGE_FLOOR_C, q_scale, P, p_scale, *scratch[5:],
                    )  # fmt: skip
                    chooser.choose(damage_module.pennes_damage_step, trial)
                c0 = time.perf_counter()
                if vi.size:
                    save_voxels(vi, vj, vm, *acc, st.W, saved)
                c1 = time.perf_counter()
                tmax, tmin, finite = pennes_damage_step(
                    *step_args, ln_a, ea_r, *acc, shut_omega, shut_t, DAMAGE_FLOOR_C,
                    q_scale, P, p_scale, *bounds,
                )  # fmt: skip
                c2 = time.perf_counter()
                if not finite or tmax > T_RUNAWAY[1] or tmin < T_RUNAWAY[0]:
                    raise SimulationError(
                        f"the simulation blew up in phase {phase.name!r} at t = "
                        f"{st.t + dt_phase:.1f} s (step {st.total_steps + 1}): "
                        + (
                            "non-finite temperatures"
                            if not finite
                            else f"temperatures reached {tmin:.3g}..{tmax:.3g} °C"
                        )
                        + "; check the source power and the tissue properties"
                    )
                T, T_new = T_new, T
                if pidx.size:
                    T.reshape(-1)[pidx] = pval
                if not fixed_ghosts:
                    fill_ghosts(T, f.k, kinds, values, hcoefs, h)
                c3 = time.perf_counter()
                if vi.size:
                    redo_damage(
                        T, vi, vj, vm, saved, dt_phase, labels, ln_a, ea_r, *acc, st.W,
                        shut_omega, shut_t, DAMAGE_FLOOR_C, *bounds,
                    )  # fmt: skip
                t_damage += (c1 - c0) + (time.perf_counter() - c3)
                t_kernel += c2 - c1
                st.phase_energy[p_i] += power * dt_phase
                st.step += 1
                st.total_steps += 1
                st.t = t_phase0 + st.step * dt_phase
                st.T = T
                # nerves
                Tflat = T.reshape(-1)
                if nerves.names:
                    nmax, nmin = nerves.extremes(Tflat)
                    hot = nmax > limits.hot_C
                    cold = nmin < cold_limit
                    st.nerve_time_above[hot] += dt_phase
                    st.nerve_time_below[cold] += dt_phase
                    st.nerve_first_hot[hot & np.isnan(st.nerve_first_hot)] = st.t
                    st.nerve_first_cold[cold & np.isnan(st.nerve_first_cold)] = st.t
                # thermocouples and the cut-off
                if sources_on and cut_tcs.any():
                    tc = sensor_set.read(T)
                    trip = cut_tcs & ((tc >= limits.hot_C) | (tc <= cold_limit))
                    if trip.any():
                        st.phase_cutoff[p_i] = st.t
                        for name in np.asarray(sensor_set.names)[trip]:
                            st.tc_cutoff.setdefault(str(name), st.t)
                        cut_now = True
                last = st.step == n_steps[p_i]
                if st.t >= st.next_sample - 1e-9 * sample_interval or last or cut_now:
                    _record(st, st.t, p_i, power, sensor_set, nerves, srcs)
                    while st.next_sample <= st.t + 1e-9 * sample_interval:
                        st.next_sample += sample_interval
                now = time.perf_counter()
                if bar is not None and (now - bar.last_print_t > 0.25 or last):
                    bar.n = round(st.t)
                    bar.set_postfix_str(f"max {tmax:.1f} °C", refresh=False)
                    bar.refresh()
                if ckpt is not None and now - last_ckpt > checkpoint_interval:
                    _save_checkpoint(ckpt, _with_source_state(st, bound), fingerprint)
                    last_ckpt = now
                if cut_now:
                    break  # restart the phase loop with the sources off
            if st.step >= n_steps[p_i]:
                st.phase += 1
                st.step = 0
    finally:
        if bar is not None:
            bar.close()
    if ckpt is not None:
        _save_checkpoint(ckpt, _with_source_state(st, bound), fingerprint)
    wall = time.perf_counter() - wall0
    return _build_result(
        model,
        phases,
        st,
        sensor_set,
        tcs,
        nerves,
        limits,
        n_steps,
        dts,
        timing={
            "wall_s": wall + setup_s,
            "setup_s": setup_s,
            "pennes_s": t_kernel,
            "damage_s": t_damage,
            "other_s": wall - t_kernel - t_damage,
            "steps": st.total_steps,
            "dt_s": dt_use,
            "stable_dt_s": dt_limit,
            "voxel_updates_per_s": (
                ((st.total_steps - steps0) * grid.size / wall) if wall > 0 else 0.0
            ),
            "resumed_from_s": resumed_from,
            "threads": chooser.summary(),
            "sources": _source_timing(bound),
        },
    )


def _source_timing(bound) -> dict:
    """{source name: its timing()} for the bound sources that report one."""
    out = {}
    for phase_sources in bound:
        for b in phase_sources:
            timing = getattr(b, "timing", None)
            if timing is not None and b.name not in out:
                out[b.name] = timing()
    return out


def _record(st: _State, t, phase_index, power, sensor_set, nerves, sources) -> None:
    tel = {}
    for b in sources:
        report = getattr(b, "telemetry", None)
        if report is not None:
            tel.update({f"{b.name}_{k}": float(v) for k, v in report().items()})
    st.telemetry.append(tel)
    s = st.samples
    s["time"].append(t)
    s["phase"].append(phase_index)
    s["power"].append(power)
    s["tc"].append(sensor_set.read(st.T))
    nmax, nmin = nerves.extremes(st.T.reshape(-1))
    s["nerve_max"].append(nmax)
    s["nerve_min"].append(nmin)


def _build_result(model, phases, st, sensor_set, tcs, nerves, limits, n_steps, dts, timing):
    s = st.samples
    tc_arr = np.asarray(s["tc"], dtype=float).reshape(len(s["time"]), len(tcs))
    nmax = np.asarray(s["nerve_max"], dtype=float).reshape(len(s["time"]), len(nerves.names))
    nmin = np.asarray(s["nerve_min"], dtype=float).reshape(len(s["time"]), len(nerves.names))
    phase_names = [phases[int(i)].name if i >= 0 else "start" for i in s["phase"]]
    summaries = [
        PhaseSummary(
            p.name, p.duration, float(st.phase_energy[i]), n_steps[i], dts[i], st.phase_cutoff[i]
        )
        for i, p in enumerate(phases)
    ]
    tc_summ = {
        tc.name: ThermocoupleSummary(
            tc.name,
            tuple(tc.position),
            float(tc_arr[:, n].max()),
            float(tc_arr[:, n].min()),
            st.tc_cutoff.get(tc.name),
            tc.cutoff,
        )
        for n, tc in enumerate(tcs)
    }
    nerve_summ = {}
    for n, name in enumerate(nerves.names):
        first_hot = st.nerve_first_hot[n]
        first_cold = st.nerve_first_cold[n]
        nerve_summ[name] = NerveSummary(
            name=name,
            time_above_hot_s=float(st.nerve_time_above[n]),
            time_below_cold_s=float(st.nerve_time_below[n]),
            first_hot_crossing_s=None if np.isnan(first_hot) else float(first_hot),
            first_cold_crossing_s=None if np.isnan(first_cold) else float(first_cold),
        )
    return Result(
        model=model,
        temperature=np.ascontiguousarray(st.T[1:-1, 1:-1, 1:-1]),
        damage=st.damage,
        perfusion=st.W,
        time=np.asarray(s["time"], dtype=float),
        phase_of_sample=phase_names,
        power=np.asarray(s["power"], dtype=float),
        sensors={tc.name: tc_arr[:, n] for n, tc in enumerate(tcs)},
        nerve_max_trace={name: nmax[:, n] for n, name in enumerate(nerves.names)},
        nerve_min_trace={name: nmin[:, n] for n, name in enumerate(nerves.names)},
        telemetry=_telemetry_columns(st.telemetry),
        thermocouples=tc_summ,
        nerves=nerve_summ,
        limits=limits,
        phases=summaries,
        timing=timing,
    )


def _telemetry_columns(rows: list[dict]) -> dict[str, np.ndarray]:
    """One array per telemetry key over all samples (NaN where a source was not active)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: np.array([r.get(k, np.nan) for r in rows], dtype=float) for k in keys}


def _padded_index(flat_interior: np.ndarray, shape) -> np.ndarray:
    """Flat indices in the padded array of the given interior flat indices."""
    i, j, k = np.unravel_index(np.asarray(flat_interior, dtype=np.int64), shape)
    return np.ravel_multi_index((i + 1, j + 1, k + 1), tuple(n + 2 for n in shape))
