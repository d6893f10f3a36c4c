"""The time loop: :func:`simulate` runs a protocol (a list of :class:`Phase`) on a
:class:`~ablasim.model.Model` and returns a :class:`~ablasim.result.Result`.

The flow (docs/architecture.md): bind and validate the sources; choose the time step; start from a
fresh state or a checkpoint; then for each phase: the material changes of its sources
(cement replacing tissue), the voxels they hold, their static heating; then every step:
the sources' heating and held voxels, the fused Pennes-and-damage step
(:class:`~ablasim.solvers.Stepper`), the observers (:mod:`ablasim.observers`: nerve
extremes, thermocouples and cut-off, samples, progress, thread choice), a checkpoint
(:mod:`ablasim.checkpoint`). Temperatures, damage and the perfusion state carry over
from phase to phase.

* Time step: the largest stable one (:func:`~ablasim.solvers.stable_dt`) over the model
  of every phase (a change of material changes it), times ``dt_safety``, shortened so
  each phase is a whole number of steps; a requested step above the limit is a
  :class:`~ablasim.errors.StabilityError`. Frozen tissue conducts its heat with a
  smaller heat capacity, hence a shorter stable step: that is used only when something
  may freeze (a cold start, a face, a held voxel or a new material below freezing).
* Sources see the time since the start of their phase. A source whose heating is
  static is deposited once per phase; one changing source whose heating is a power
  times a map (``scaled``) hands both to the kernel; others deposit into ``Q`` every
  step. Held voxels are asked for every step, at the time the step ends.
* Latent heat: the step takes the enthalpy update everywhere once something may freeze
  (re-decided at each phase start, then switched on by a held voxel or a new
  temperature below freezing); boiling rows take it in any case.
* Non-finite or runaway temperatures stop the run with a
  :class:`~ablasim.errors.SimulationError` naming the phase and time.
* Thermocouples with ``cutoff=True`` switch every source of the current phase off for
  the rest of that phase when they reach a limit (:class:`Limits`); the next phase
  starts as planned.
* With ``checkpoint=PATH`` the whole state is saved atomically every
  ``checkpoint_interval`` seconds of wall time, at the end, and when the run is
  interrupted (Ctrl-C); ``resume=True`` continues from it, bit for bit.
* Ctrl-C: on the main thread the loop takes SIGINT over while it steps; the first one
  ends the run at the end of the current step, saves that step's state and raises
  :class:`Interrupted` (a ``KeyboardInterrupt``); a second one stops at once. A
  ``KeyboardInterrupt`` raised inside a step (by other code) saves the last completed
  step when nothing of the current one has changed the state yet (the fused kernel had
  not run, no changing source had moved on), else leaves the last periodic checkpoint:
  a checkpoint never holds half a step.
* ``timing["pennes_s"]`` is the fused step, ``timing["damage_s"]`` the held voxels'
  damage bookkeeping.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from . import checkpoint as checkpoints
from .checkpoint import RunState
from .damage import DAMAGE_FLOOR_C, DamageFields, PerfusionShutdown, arrhenius_tables
from .errors import ScenarioError, SimulationError, StabilityError
from .model import Model
from .observers import (
    CutOff,
    NerveExtremes,
    Progress,
    Sampler,
    Snapshots,
    StepDone,
    ThreadChooser,
)
from .protocol import Limits, Phase, Thermocouple, as_thermocouples
from .result import NerveSummary, PhaseSummary, Result, ThermocoupleSummary
from .sensors import SensorSet
from .solvers import Materials, Stepper, pennes_damage_step, rkl2_stages, stable_dt, warm_up
from .sources import BoundSource, MaterialChange

# Phase, Limits, Thermocouple live in .protocol; re-exported for older imports
__all__ = ["Interrupted", "simulate"]

#: The default super step [s] (:mod:`ablasim.solvers.superstep`): the iceball's edge
#: moves well under a voxel in it (tests/test_stefan.py compares with explicit steps).
SUPER_STEP_S = 10.0

#: Temperatures outside this range [°C] mean the run has blown up.
T_RUNAWAY = (-273.15, 1000.0)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`simulate` (a ``KeyboardInterrupt``, caught as one).

    Attributes
    ----------
    saved_at_s : float or None
        Time [s since the start of the run] of the state this interruption saved in the
        checkpoint; None when it saved none (no checkpoint asked for, or it came in the
        middle of a step: the last periodic checkpoint, if any, is kept).
    duration_s : float
        The protocol's whole duration [s].
    checkpoint : Path or None
        The checkpoint file.
    """

    def __init__(self, saved_at_s: float | None, duration_s: float, checkpoint: Path | None):
        super().__init__(saved_at_s, duration_s, checkpoint)
        self.saved_at_s = saved_at_s
        self.duration_s = duration_s
        self.checkpoint = checkpoint


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
    bound_sources: Sequence[Sequence[BoundSource]] | None = None,
    snapshots: Snapshots | None = None,
    stepping: str = "auto",
    super_step: float | None = None,
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
    threads : int, optional
        Number of threads for the kernels; default: chosen and re-checked while running
        (:class:`~ablasim.observers.ThreadChooser`).
    bound_sources : sequence of sequences of BoundSource, optional
        The phases' sources already bound to ``model`` (one sequence per phase, as
        ``BuiltScenario.bound``), to avoid binding them again. Used for this run only.
    snapshots : Snapshots, optional
        Records the temperature on three planes at its interval, for an animation.
    stepping : {"auto", "explicit", "super"}
        How to step in time: the explicit step at its stability limit, or RKL2 super
        steps (:mod:`ablasim.solvers.superstep`) of ``super_step`` seconds. ``"auto"``:
        super steps when something may freeze (its stability limit is then several
        times shorter) and no ``dt`` is given, else explicit.
    super_step : float, optional
        The super step [s] (default :data:`SUPER_STEP_S`); a phase is a whole number of
        them. Ignored when the explicit step is not shorter.

    Returns
    -------
    Result
        Its ``model`` is the model at the end of the run (with any new material).
    """
    t_setup = time.perf_counter()
    limits = limits or Limits()
    shutdown = perfusion_shutdown or PerfusionShutdown()
    tcs = as_thermocouples(thermocouples)
    if not phases:
        raise ScenarioError("the protocol has no phase; add at least one [[phase]]")
    if not (0 < dt_safety <= 1):
        raise ScenarioError(f"dt_safety must be in (0, 1], got {dt_safety!r}")
    # bind and validate: bad geometry fails before any work is done
    bound = _bind(model, phases, bound_sources)
    changes = [[c for c in (b.material() for b in bs) if c is not None] for bs in bound]
    models = _phase_models(model, changes)
    init = _initial_temperature(model, initial_temperature)
    sensors = SensorSet(model.grid, {tc.name: tc.position for tc in tcs})
    nerves = NerveExtremes(model, limits)
    sampler = Sampler(sensors, nerves, sample_interval)
    # the time step
    if stepping not in ("auto", "explicit", "super"):
        raise ScenarioError(
            f"simulation.stepping must be 'auto', 'explicit' or 'super', got {stepping!r}"
        )
    if super_step is not None and not (math.isfinite(super_step) and super_step > 0):
        raise ScenarioError(f"simulation.super_step_s must be > 0, got {super_step!r}")
    if stepping == "super" and dt is not None:
        raise ScenarioError(
            'simulation.dt_s is the explicit step; with stepping = "super" give '
            "super_step_s instead (or leave both out)"
        )
    dt_use, dt_limit, n_steps, dts, may_freeze = _time_step(
        models, bound, phases, init, changes, dt, dt_safety
    )
    if may_freeze:  # follow the iceball
        sampler.isotherms = limits.isotherms_C
    stages = [1] * len(phases)
    if stepping == "super" or (stepping == "auto" and may_freeze and dt is None):
        n_steps, dts, stages = _super_steps(phases, dt_safety * dt_limit, super_step)
    # the state: from the checkpoint, or fresh
    ckpt = Path(checkpoint) if checkpoint is not None else None
    extra = [
        checkpoints.digest(initial_temperature),
        [(t.name, t.position, t.cutoff) for t in tcs],
        [limits.hot_C, limits.cold_C, list(limits.isotherms_C)],
        list(shutdown.thresholds()),
        sample_interval,
        [stepping, super_step, dt_safety],
    ]
    fingerprint = checkpoints.fingerprint(model, phases, dts, extra) if ckpt else ""
    resumed_from = None
    if resume and ckpt is not None and ckpt.exists():
        st = checkpoints.load(ckpt, fingerprint)
        resumed_from = st.t
        for key, value in st.source_state.items():  # a generator's controller, a cure
            i, j = (int(v) for v in key.split("."))
            bound[i][j].restore(value)
    else:
        st = _fresh_state(model, init, nerves, sampler)
    warm_up()
    materials = {id(m): _materials(m) for m in models}
    stepper = Stepper(
        st.T, st.W, st.damage,
        materials=materials[id(models[min(st.phase, len(phases) - 1)])],
        boundary=model.boundary, spacing=model.grid.spacing,
        blood_C=model.tissues.blood.temperature_C, shutdown=shutdown.thresholds(),
        floor=DAMAGE_FLOOR_C,
        kernel=pennes_damage_step,  # by this module's name: a test may interrupt a run
    )  # fmt: skip
    chooser = ThreadChooser(threads, stepper)
    bar = Progress(sum(p.duration for p in phases), progress, start_s=st.t)
    observers = (nerves, CutOff(sensors, tcs, limits), sampler, bar, chooser)
    if snapshots is not None:  # an animation was asked for
        snapshots.last = len(phases) - 1
        snapshots.start(st)
        observers += (snapshots,)
    liquidus = max(m.liquidus_C for m in materials.values())
    starts = [sum(ph.duration for ph in phases[:q]) for q in range(len(phases))]
    face_min = _coldest_face(model)
    steps0 = st.total_steps  # steps already done before a resume
    wall0 = last_ckpt = time.perf_counter()
    ctrl_c = _CtrlC()
    clean = True  # the state is that of the last completed step: safe to save

    try:
        ctrl_c.take_over()
        while st.phase < len(phases):
            clean = False  # a phase start may change materials and held voxels
            p = st.phase
            dt_p = dts[p]
            if len(st.phase_energy) <= p:
                st.phase_energy.append(0.0)
                st.phase_held.append(0.0)
                st.phase_cutoff.append(None)
            # its sources (those that last only, after a cut-off), and the lasting
            # sources of earlier phases, each with its time offset to this phase's start
            active = [
                (b, starts[p] - starts[q])
                for q in range(p + 1)
                for b in bound[q]
                if b.lasting or (q == p and st.phase_cutoff[p] is None)
            ]
            srcs = [b for b, _ in active]
            # the phase starts: its model; when it really starts, its new materials
            stepper.set_materials(materials[id(models[p])])
            if st.step == 0:
                for change in changes[p]:
                    _change_material(stepper, models[p], change)
                st.phase_change = bool(
                    face_min < liquidus or (_interior(stepper.T) < liquidus).any()
                )
            held = _Held(active, stepper)
            if held.update(st.step * dt_p) < liquidus:
                st.phase_change = True
            st.phase_held[p] += stepper.clamp()  # a probe's own voxels cooled at once
            heating = _Heating(
                active, models[p].thermal_fields.Q_met, _interior(stepper.T), st.step * dt_p
            )
            t_phase0 = starts[p]
            while st.step < n_steps[p]:
                clean = not heating.dynamic  # a changing source moves on in heating.at
                power, Q, P, p_scale = heating.at(_interior(stepper.T), st.step * dt_p)
                if held.update((st.step + 1) * dt_p) < liquidus:
                    st.phase_change = True
                if stages[p] > 1:
                    st.phase_change = True
                    tmax, tmin, finite = _super_step(
                        stepper, dt_p, st.step, dt_safety * dt_limit, Q, P, p_scale, held.update
                    )
                else:
                    tmax, tmin, finite = stepper.step(
                        dt_p, Q, P, p_scale, phase_change=st.phase_change
                    )
                st.phase_held[p] += stepper.held_heat_J
                clean = False  # temperatures and damage are a step on; the rest follows
                _check_finite(finite, tmax, tmin, phases[p], st.t + dt_p, st.total_steps + 1)
                st.phase_change = st.phase_change or tmin < liquidus
                st.T = stepper.T
                st.phase_energy[p] += power * dt_p
                st.step += 1
                st.total_steps += 1
                st.t = t_phase0 + st.step * dt_p
                switchable = [  # what a cut-off can stop now
                    b
                    for b in bound[p]
                    if st.phase_cutoff[p] is None and not b.lasting and b.running(st.step * dt_p)
                ]
                done = StepDone(p, dt_p, power, tmax, st.step == n_steps[p], srcs, switchable)
                for observer in observers:
                    observer.after_step(st, done)
                now = time.perf_counter()
                if ckpt is not None and now - last_ckpt > checkpoint_interval:
                    _save(ckpt, st, bound, fingerprint)
                    last_ckpt = now
                clean = True
                if ctrl_c.requested:
                    raise KeyboardInterrupt
                if done.cut:
                    break  # start the phase again with its sources off
            if st.step >= n_steps[p]:
                st.phase += 1
                st.step = 0
    except KeyboardInterrupt:
        saved = None
        if ckpt is not None and clean and not ctrl_c.forced:
            _save(ckpt, st, bound, fingerprint)
            saved = st.t
        raise Interrupted(saved, sum(ph.duration for ph in phases), ckpt) from None
    finally:
        ctrl_c.give_back()
        bar.close()
    if ckpt is not None:
        _save(ckpt, st, bound, fingerprint)
    if ctrl_c.requested:  # pressed after the last step: the end state is saved
        raise Interrupted(st.t if ckpt is not None else None, st.t, ckpt)  # st.t: the end
    wall = time.perf_counter() - wall0
    setup_s = wall0 - t_setup
    timing = {
        "wall_s": wall + setup_s,
        "setup_s": setup_s,
        "pennes_s": stepper.kernel_s,
        "damage_s": stepper.damage_s,
        "other_s": wall - stepper.kernel_s - stepper.damage_s,
        "steps": st.total_steps,
        "steps_run": st.total_steps - steps0,  # by this call (not before a resume)
        "dt_s": dt_use if max(stages) == 1 else max(dts),
        "stable_dt_s": dt_limit,
        "stepping": "explicit" if max(stages) == 1 else "super",
        "stages": max(stages),
        "voxel_updates_per_s": (
            ((st.total_steps - steps0) * model.grid.size / wall) if wall > 0 else 0.0
        ),
        "resumed_from_s": resumed_from,
        "threads": chooser.summary(),
        "sources": _source_timing(bound),
    }
    return _result(models[-1], phases, st, tcs, nerves, limits, n_steps, dts, timing, bound, model)


class _CtrlC:
    """SIGINT while the loop steps (main thread, Python's default handler in place): the
    first Ctrl-C asks the loop to stop at the end of its step (:attr:`requested`); a
    second one raises ``KeyboardInterrupt`` at once (:attr:`forced`: nothing saved)."""

    def __init__(self) -> None:
        self.requested = False
        self.forced = False
        self._installed = False

    def take_over(self) -> None:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            signal.signal(signal.SIGINT, self._handle)
            self._installed = True

    def give_back(self) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self._installed = False

    def _handle(self, signum, frame) -> None:
        if self.requested:
            self.forced = True
            raise KeyboardInterrupt
        self.requested = True


# -- set-up -------------------------------------------------------------------------------
def _bind(model, phases, bound_sources) -> list[list[BoundSource]]:
    if bound_sources is None:
        return [[s.bind(model) for s in p.sources] for p in phases]
    bound = [list(b) for b in bound_sources]
    if [len(b) for b in bound] != [len(p.sources) for p in phases]:
        raise ScenarioError("bound_sources must hold one bound source per phase source")
    return bound


def _phase_models(model: Model, changes) -> list[Model]:
    """The model during each phase: with the materials of its and earlier phases."""
    out = []
    for phase_changes in changes:
        for c in phase_changes:
            model = model.with_material(c.index, tissue=c.tissue, structure=c.structure)
        out.append(model)
    return out


def _materials(model: Model) -> Materials:
    f = model.thermal_fields
    ln_a, ea_over_r = arrhenius_tables(
        model.label_table("arrhenius_A_per_s"), model.label_table("arrhenius_Ea_J_mol")
    )
    return Materials(
        k=f.k, inv_rhoc=f.inv_rhoc, labels=model.labels, phase=f.phase, ln_a=ln_a,
        ea_over_r=ea_over_r,
    )  # fmt: skip


def _initial_temperature(model: Model, initial) -> np.ndarray:
    """The initial temperature [°C], a number or an array of the grid's shape."""
    init = np.asarray(
        model.tissues.blood.temperature_C if initial is None else initial, dtype=float
    )
    if init.ndim and init.shape != model.grid.shape:
        raise ScenarioError(
            f"initial_temperature has shape {init.shape}, the grid {model.grid.shape}; give "
            "one number or an array of the grid's shape"
        )
    if not np.all(np.isfinite(init)):
        raise ScenarioError("initial temperature must be finite")
    return init


def _coldest_face(model: Model) -> float:
    """The lowest temperature a non-insulated outer face imposes [°C] (inf: none)."""
    return min(
        (fc.temperature_C for fc in model.boundary.faces if fc.kind != "adiabatic"),
        default=math.inf,
    )


def _coldest_hold(bound, dts, n_steps) -> float:
    """The lowest temperature any source holds a voxel at, at any step [°C]."""
    low = math.inf
    for bs, dt_p, n in zip(bound, dts, n_steps, strict=True):
        for b in bs:
            last = None
            for k in range(n + 1):
                x = b.held(k * dt_p)
                if x is not None and x is not last and x.temperature_C.size:
                    low = min(low, float(x.temperature_C.min()))
                last = x
    return low


def _time_step(models, bound, phases, init, changes, dt, dt_safety):
    """(dt used, stable limit, steps per phase, dt per phase) [s]: the largest stable
    step over every phase's model (with frozen heat capacities when something may
    freeze), or ``dt`` if it is not above it."""

    def limit(freezing: bool) -> float:
        out = math.inf
        for m in {id(m): m for m in models}.values():
            f = m.thermal_fields
            out = min(
                out,
                stable_dt(
                    f.k, f.inv_rhoc, f.W, m.grid.spacing, m.boundary,
                    labels=m.labels if freezing else None, phase=f.phase if freezing else None,
                ),
            )  # fmt: skip
        return out

    def steps(dt_use: float) -> tuple[list[int], list[float]]:
        n = [max(1, math.ceil(p.duration / dt_use - 1e-9)) for p in phases]
        return n, [p.duration / k for p, k in zip(phases, n, strict=True)]

    if dt is not None:
        dt_use = float(dt)
        if not math.isfinite(dt_use) or dt_use <= 0:
            raise ScenarioError(f"time step dt must be a positive number, got {dt!r}")
    dt_limit = limit(False)
    n_steps, dts = steps(dt_safety * dt_limit if dt is None else dt_use)
    liquidus = max(float(m.thermal_fields.phase[:, 4].max()) for m in models)
    new_min = min(
        (c.temperature_C for cs in changes for c in cs if c.temperature_C is not None),
        default=math.inf,
    )
    may_freeze = (
        min(float(init.min()), _coldest_face(models[0]), new_min) < liquidus
        or _coldest_hold(bound, dts, n_steps) < liquidus
    )
    if may_freeze:
        dt_limit = limit(True)
    if dt is None:
        dt_use = dt_safety * dt_limit
    elif dt_use > dt_limit * (1 + 1e-12):
        h = models[0].grid.spacing
        raise StabilityError(
            f"time step {dt_use:.4g} s exceeds the stability limit {dt_limit:.4g} s of "
            f"this grid (spacing {h * 1e3:g} mm, highest diffusivity/perfusion); "
            "use a smaller dt or leave it out to use the limit"
        )
    n_steps, dts = steps(dt_use)
    return dt_use, dt_limit, n_steps, dts, may_freeze


#: Within a phase in super steps, a step starting t seconds after the phase's start is at
#: most this times t long: a probe switched on or off is a jump, and the freezing front
#: moves as the square root of time, fast at first; longer RKL2 steps there damp the
#: jump's stiff modes too little and overshoot next to the wall (tests/test_stefan.py;
#: benchmarks/bench_cryo.py). The steps grow geometrically from the explicit one.
SUPER_STEP_RAMP = 0.25


def _super_step(stepper: Stepper, tau, k: int, dt_explicit, Q, P, p_scale, hold):
    """Step ``k`` (of ``tau`` [s]) of a phase in super steps: explicit steps while
    ``SUPER_STEP_RAMP * t`` is shorter than the explicit step ``dt_explicit``, then RKL2
    steps of at most ``SUPER_STEP_RAMP * t`` (t since the phase start), the remainder
    split evenly. ``hold(t)`` sets the held voxels for each of those steps (a probe
    following a table): at the end of an explicit one, the middle of an RKL2 one (which
    applies it from its start). The held voxels' heat of the whole step is left in
    ``stepper.held_heat_J``."""
    t, end = k * tau, (k + 1) * tau
    drawn = 0.0
    while t < end - 1e-9 * tau:
        left = end - t
        length = min(left, max(SUPER_STEP_RAMP * t, dt_explicit))
        length = left / math.ceil(left / length - 1e-9)  # no sliver at the end
        if length <= dt_explicit * (1 + 1e-12):
            hold(t + length)  # as every explicit step: the value at its end
            tmax, tmin, finite = stepper.step(length, Q, P, p_scale, phase_change=True)
        else:
            hold(t + 0.5 * length)  # the stages span the step: its middle, second order
            stages = rkl2_stages(length, dt_explicit)
            tmax, tmin, finite = stepper.super_step(length, stages, Q, P, p_scale)
        drawn += stepper.held_heat_J
        t += length
    if length > dt_explicit * (1 + 1e-12):  # an RKL2 step held its middle's values
        hold(end)
        drawn += stepper.clamp()
    stepper.held_heat_J = drawn
    return tmax, tmin, finite


def _super_steps(phases, dt_explicit: float, super_step: float | None):
    """(steps per phase, step per phase [s], RKL2 stages per phase) for super steps of
    about ``super_step`` [s]; a phase whose super step is not longer than the explicit
    step ``dt_explicit`` steps explicitly (1 stage) at that step."""
    tau = SUPER_STEP_S if super_step is None else float(super_step)
    n_steps, dts, stages = [], [], []
    for p in phases:
        n = max(1, math.ceil(p.duration / max(tau, dt_explicit) - 1e-9))
        d = p.duration / n
        if d <= dt_explicit:
            n = max(1, math.ceil(p.duration / dt_explicit - 1e-9))
            d = p.duration / n
            stages.append(1)
        else:
            stages.append(rkl2_stages(d, dt_explicit))
        n_steps.append(n)
        dts.append(d)
    return n_steps, dts, stages


def _fresh_state(model: Model, init, nerves: NerveExtremes, sampler: Sampler) -> RunState:
    T = np.empty(tuple(n + 2 for n in model.grid.shape))
    T[1:-1, 1:-1, 1:-1] = init
    st = RunState(T=T, W=model.thermal_fields.W.copy(), damage=DamageFields.start(_interior(T)))
    nerves.start(st)
    sampler.start(st)
    return st


# -- the phases and steps ---------------------------------------------------------------
def _interior(T: np.ndarray) -> np.ndarray:
    return T[1:-1, 1:-1, 1:-1]


def _change_material(stepper: Stepper, model: Model, change: MaterialChange) -> None:
    """The voxels of ``change`` take the perfusion of their new tissue (``model`` is the
    model with it) and, if it is given, their new temperature."""
    idx = np.asarray(change.index, dtype=np.int64)
    stepper.W.reshape(-1)[idx] = model.thermal_fields.W.reshape(-1)[idx]
    if change.temperature_C is not None:
        stepper.set_temperature(idx, float(change.temperature_C))


class _Held:
    """The voxels a phase's sources hold, asked at every step; the stepper re-indexes
    only when the set changes (a source returns another object than last time).
    ``sources``: (bound source, offset [s] of this phase's start from its own)."""

    def __init__(self, sources: Sequence[tuple[BoundSource, float]], stepper: Stepper):
        self.sources = sources
        self.stepper = stepper
        self.last: tuple | None = None
        self.index: np.ndarray | None = None

    def update(self, t: float) -> float:
        """Ask the sources at ``t`` [s since the phase start]; the lowest temperature of
        a changed hold [°C] (inf when nothing changed or nothing is held)."""
        now = tuple(b.held(t + off) for b, off in self.sources)
        last = self.last
        if last is not None and all(a is b for a, b in zip(now, last, strict=True)):
            return math.inf
        active = [x for x in now if x is not None]
        if len(active) == 1:
            index, values = active[0].index, active[0].temperature_C
        elif active:
            same = last is not None and all(
                (a is None) == (b is None) and (a is None or a.index is b.index)
                for a, b in zip(now, last, strict=True)
            )
            index = self.index if same else np.concatenate([x.index for x in active])
            values = np.concatenate([x.temperature_C for x in active])
        else:
            index, values = np.empty(0, dtype=np.int64), np.empty(0)
        self.stepper.hold(index, values)
        self.last, self.index = now, index
        return float(values.min()) if values.size else math.inf


class _Heating:
    """A phase's heating: the static sources deposited once, then each step one scaled
    source's power (the kernel forms power x map) or the others deposited into ``Q``.
    ``sources``: (bound source, offset [s] of this phase's start from its own)."""

    def __init__(
        self, sources: Sequence[tuple[BoundSource, float]], Q_met: np.ndarray, T: np.ndarray, t
    ):
        self.Q_static = Q_met.copy()
        self.static_power = sum(
            b.deposit(self.Q_static, T, t + off) for b, off in sources if b.static
        )
        self.dynamic = [(b, off) for b, off in sources if not b.static]
        d = self.dynamic
        self.scaled = d[0] if len(d) == 1 and d[0][0].scaled else None
        self.static_zero = not self.Q_static.any()
        self.Q = np.empty_like(Q_met) if d and self.scaled is None else None

    def at(self, T: np.ndarray, t: float):
        """(power [W], Q, P, p_scale) for :meth:`Stepper.step` at ``t`` [s since the
        phase start] and temperature ``T`` (interior)."""
        power = self.static_power
        if self.scaled is not None:
            b, off = self.scaled
            # a power below zero heats nothing (as deposit() adds nothing)
            p = max(float(b.advance(T, t + off)), 0.0)
            Q = None if self.static_zero else self.Q_static
            return power + p, Q, b.unit_heating, p
        if self.dynamic:
            self.Q[...] = self.Q_static
            for b, off in self.dynamic:
                power += b.deposit(self.Q, T, t + off)
            return power, self.Q, None, 0.0
        return power, self.Q_static, None, 0.0


def _check_finite(finite, tmax, tmin, phase: Phase, t: float, step: int) -> None:
    if not finite or tmax > T_RUNAWAY[1] or tmin < T_RUNAWAY[0]:
        raise SimulationError(
            f"the simulation blew up in phase {phase.name!r} at t = {t:.1f} s (step {step}): "
            + (
                "non-finite temperatures"
                if not finite
                else f"temperatures reached {tmin:.3g}..{tmax:.3g} °C"
            )
            + "; check the source power and the tissue properties"
        )


def _save(path: Path, st: RunState, bound, fingerprint: str) -> None:
    st.source_state = {
        f"{i}.{j}": b.state() for i, bs in enumerate(bound) for j, b in enumerate(bs)
    }
    checkpoints.save(path, st, fingerprint)


# -- the result ---------------------------------------------------------------------------
def _source_timing(bound) -> dict:
    """{source name: its timing()} for the bound sources that report one."""
    out = {}
    for bs in bound:
        for b in bs:
            if b.name not in out and (timing := b.timing()) is not None:
                out[b.name] = timing
    return out


def _result(
    model, phases, st, tcs, nerves, limits, n_steps, dts, timing, bound, start_model
) -> Result:
    s = st.samples
    n = len(s["time"])
    tc_arr = np.asarray(s["tc"], dtype=float).reshape(n, len(tcs))
    events = _events(phases, bound, st, tcs, tc_arr, limits)
    nmax = np.asarray(s["nerve_max"], dtype=float).reshape(n, len(nerves.names))
    nmin = np.asarray(s["nerve_min"], dtype=float).reshape(n, len(nerves.names))
    summaries = [
        PhaseSummary(
            p.name,
            p.duration,
            float(st.phase_energy[i]),
            n_steps[i],
            dts[i],
            st.phase_cutoff[i],
            float(st.phase_held[i]) if i < len(st.phase_held) else 0.0,
        )
        for i, p in enumerate(phases)
    ]
    tc_summ = {
        tc.name: ThermocoupleSummary(
            tc.name,
            tuple(tc.position),
            float(tc_arr[:, k].max()),
            float(tc_arr[:, k].min()),
            st.tc_cutoff.get(tc.name),
            tc.cutoff,
        )
        for k, tc in enumerate(tcs)
    }

    def when(x: float) -> float | None:
        return None if np.isnan(x) else float(x)

    nerve_summ = {
        name: NerveSummary(
            name=name,
            time_above_hot_s=float(st.nerve_time_above[k]),
            time_below_cold_s=float(st.nerve_time_below[k]),
            first_hot_crossing_s=when(st.nerve_first_hot[k]),
            first_cold_crossing_s=when(st.nerve_first_cold[k]),
        )
        for k, name in enumerate(nerves.names)
    }
    return Result(
        model=model,
        temperature=np.ascontiguousarray(_interior(st.T)),
        damage=st.damage,
        perfusion=st.W,
        time=np.asarray(s["time"], dtype=float),
        phase_of_sample=[phases[int(i)].name if i >= 0 else "start" for i in s["phase"]],
        power=np.asarray(s["power"], dtype=float),
        sensors={tc.name: tc_arr[:, k] for k, tc in enumerate(tcs)},
        nerve_max_trace={name: nmax[:, k] for k, name in enumerate(nerves.names)},
        nerve_min_trace={name: nmin[:, k] for k, name in enumerate(nerves.names)},
        telemetry=_telemetry_columns(st.telemetry)
        | _iceball_columns(s["iceball"], n, limits.isotherms_C, model.grid.spacing),
        thermocouples=tc_summ,
        nerves=nerve_summ,
        limits=limits,
        phases=summaries,
        timing=timing,
        events=events,
        sections=_sections(bound),
        start_model=start_model,
    )


def _sections(bound) -> dict[str, dict]:
    """The sources' own report sections, merged per section name and class
    (:meth:`BoundSource.merge_sections`)."""
    parts: dict[str, tuple[type, list]] = {}
    for bs in bound:
        for b in bs:
            if (sec := b.section()) is not None:
                name, content = sec
                parts.setdefault(name, (type(b), []))[1].append(content)
    return {name: cls.merge_sections(items) for name, (cls, items) in parts.items()}


def _events(phases, bound, st, tcs, tc_arr, limits) -> list[dict]:
    """What changed the treatment, in time order [s from the run's start]: the cut-offs
    (from the run state, so a resumed run reports them too) and the sources' own events
    (:meth:`BoundSource.events`, timed from their phase's start)."""
    out = []
    t0 = 0.0
    for p, phase in enumerate(phases):
        for b in bound[p]:
            for e in b.events():
                out.append(e | {"time_s": t0 + float(e["time_s"]), "phase": phase.name})
        if p < len(st.phase_cutoff) and st.phase_cutoff[p] is not None:
            stopped = [b.name for b in bound[p] if not b.lasting]
            out.append(_cutoff_event(p, phase, t0, st, tcs, tc_arr, limits, stopped))
        t0 += phase.duration
    return sorted(out, key=lambda e: e["time_s"])


def _joules(e: float) -> str:
    return f"{e:.3g} J" if abs(e) < 1e3 else f"{e / 1e3:.3g} kJ"


def _cutoff_event(p, phase, t0, st, tcs, tc_arr, limits, names) -> dict:
    """A cut-off of phase ``p``: when, by which thermocouple at what reading, which
    sources went off, and the share of the planned time and energy delivered. The
    planned energy is the phase's constant power times its duration when its power was
    constant until the cut-off, else its sources' set powers (``power_W`` or
    ``control.power_W``) times its duration, or None when a source has no set power.
    ``names``: the sources the cut-off stopped (not the lasting ones)."""
    cut = float(st.phase_cutoff[p])
    s = st.samples
    times = np.asarray(s["time"], dtype=float)
    at = np.flatnonzero(times == cut)  # the sampler records the cut-off's step
    row = tc_arr[at[-1]] if at.size else np.full(len(tcs), np.nan)
    tripped = [
        (tc.name, float(row[k]))
        for k, tc in enumerate(tcs)
        if tc.cutoff
        and (st.tc_cutoff.get(tc.name) == cut or limits.too_hot(row[k]) or limits.too_cold(row[k]))
    ]
    delivered = cut - t0
    energy = float(st.phase_energy[p])
    in_phase = np.asarray(s["phase"]) == p
    power = np.asarray(s["power"], dtype=float)[in_phase & (times <= cut)]
    if power.size and power[0] > 0 and np.all(power == power[0]):
        planned = float(power[0]) * phase.duration
    else:
        described = [src.describe() for src in phase.sources if src.name in names]
        sets = [d.get("power_W", d.get("control.power_W")) for d in described]
        planned = sum(sets) * phase.duration if sets and None not in sets else None
    who = (
        ", ".join(
            f"{n} read {T:.1f} °C (limit "
            f"{limits.hot_C if limits.too_hot(T) or limits.cold_C is None else limits.cold_C:g}"
            " °C)"
            for n, T in tripped
        )
        or "a cut-off thermocouple reached a limit"
    )
    share = delivered / phase.duration
    detail = (
        f"thermocouple {who}: {', '.join(names)} switched off for the "
        f"rest of phase '{phase.name}' after {delivered:.0f} s of its planned "
        f"{phase.duration:.0f} s ({100 * share:.0f} %)"
    )
    if planned:
        detail += (
            f"; {_joules(energy)} delivered of the {_joules(planned)} planned "
            f"({100 * energy / planned:.0f} %)"
        )
    return {
        "time_s": cut,
        "kind": "cutoff",
        "source": names[0] if len(names) == 1 else None,
        "detail": detail,
        "phase": phase.name,
        "thermocouples": [n for n, _ in tripped],
        "sources": names,
        "planned_s": phase.duration,
        "delivered_s": delivered,
        "fraction_of_time": share,
        "energy_J": energy,
        "planned_energy_J": planned,
        "fraction_of_energy": energy / planned if planned else None,
    }


def _iceball_columns(rows, n: int, levels, h: float) -> dict[str, np.ndarray]:
    """The iceball's traces: per isotherm its volume [ml] and extent along x, y, z [mm]
    at every sample (``iceball_-20C_ml``, ``iceball_-20C_x_mm``, ...); none when the
    run followed none (nothing could freeze)."""
    arr = np.asarray(rows, dtype=float).reshape(n, -1)
    if not arr.shape[1]:
        return {}
    nl = len(levels)
    out = {}
    for k, level in enumerate(levels):
        name = f"iceball_{level:g}C"
        out[f"{name}_ml"] = arr[:, k] * h**3 * 1e6
        for a, axis in enumerate("xyz"):
            out[f"{name}_{axis}_mm"] = arr[:, nl + 3 * k + a] * h * 1e3
    return out


def _telemetry_columns(rows: list[dict]) -> dict[str, np.ndarray]:
    """One array per telemetry key over all samples (NaN where a source was not active)."""
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: np.array([r.get(k, np.nan) for r in rows], dtype=float) for k in keys}
