"""What the time loop does after every step besides stepping: small observers, called in
turn with the run's state (:class:`~ablasim.checkpoint.RunState`) and what the step
did (:class:`StepDone`).

* :class:`NerveExtremes` - each nerve structure's hottest and coldest voxel; the time
  at or beyond the limits and the first crossing (the rule of
  :class:`~ablasim.protocol.Limits`);
* :class:`CutOff` - thermocouples that switch the phase's sources off when they reach a
  limit, as the clinical safeguard does;
* :class:`Sampler` - the time series (time, phase, power, thermocouples, nerve extremes,
  the sources' telemetry) every ``interval`` seconds, at each phase's end and at a
  cut-off;
* :class:`Progress` - a progress bar;
* :class:`ThreadChooser` - the number of kernel threads that steps fastest now;
* :class:`Snapshots` - the temperature on the three planes through a point every
  ``interval`` seconds, for an animation (``[output] animation = true``).

Observers keep what must survive a checkpoint in the run state, not in themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numba
import numpy as np

from .checkpoint import RunState
from .errors import ScenarioError
from .model import Model
from .protocol import Limits, Thermocouple
from .sensors import SensorSet
from .solvers import Stepper, isotherm_stats, padded_index
from .sources import BoundSource

__all__ = [
    "CutOff", "NerveExtremes", "Progress", "Sampler", "Snapshots", "StepDone", "ThreadChooser",
]  # fmt: skip


@dataclass
class StepDone:
    """What a step did, for the observers.

    Attributes
    ----------
    phase : int
        Index of the phase.
    dt : float
        The step [s].
    power : float
        Power the phase's sources delivered during the step [W].
    tmax : float
        Hottest new temperature [°C].
    last : bool
        The phase's last step.
    sources : sequence of BoundSource
        The phase's sources that are on (lasting ones of earlier phases included).
    switchable : sequence of BoundSource
        Those a cut-off can switch off: the phase's own, not lasting, running now.
    cut : bool
        Set by :class:`CutOff` when a thermocouple switched the sources off.
    """

    phase: int
    dt: float
    power: float
    tmax: float
    last: bool
    sources: Sequence[BoundSource]
    switchable: Sequence[BoundSource] = ()
    cut: bool = False


class NerveExtremes:
    """Per nerve structure of ``model``: its hottest and coldest voxel, and in the run
    state the time during which it was at or beyond the limits and when it first got
    there (NaN: never)."""

    def __init__(self, model: Model, limits: Limits):
        self.limits = limits
        shape = model.grid.shape
        names, chunks, starts = [], [], []
        pos = 0
        for name in model.nerve_structures():
            idx = np.flatnonzero(model.structure_mask(name))
            if idx.size == 0:
                continue
            chunks.append(padded_index(idx, shape))
            names.append(name)
            starts.append(pos)
            pos += idx.size
        self.names = tuple(names)
        self.index = np.concatenate(chunks) if chunks else np.empty(0, np.int64)
        self.starts = np.asarray(starts, dtype=np.int64)

    def start(self, st: RunState) -> None:
        """Fresh counters in a new run's state."""
        n = len(self.names)
        st.nerve_time_above = np.zeros(n)
        st.nerve_time_below = np.zeros(n)
        st.nerve_first_hot = np.full(n, np.nan)
        st.nerve_first_cold = np.full(n, np.nan)

    def extremes(self, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hottest, coldest) voxel of each structure [°C] in the padded ``T``."""
        if not self.names:
            return np.empty(0), np.empty(0)
        v = T.reshape(-1)[self.index]
        return np.maximum.reduceat(v, self.starts), np.minimum.reduceat(v, self.starts)

    def after_step(self, st: RunState, done: StepDone) -> None:
        if not self.names:
            return
        nmax, nmin = self.extremes(st.T)
        hot = self.limits.too_hot(nmax)
        cold = self.limits.too_cold(nmin)
        st.nerve_time_above[hot] += done.dt
        st.nerve_time_below[cold] += done.dt
        st.nerve_first_hot[hot & np.isnan(st.nerve_first_hot)] = st.t
        st.nerve_first_cold[cold & np.isnan(st.nerve_first_cold)] = st.t


class CutOff:
    """Thermocouples with ``cutoff`` switch the current phase's sources off for the rest
    of the phase when they reach the hot limit or the cold limit (:class:`Limits`):
    those a cut-off can stop (``StepDone.switchable``: not a lasting source such as
    setting cement or a protective layer, and running: not a cryoprobe that is off). The
    first trip of a phase is its cut-off time."""

    def __init__(self, sensors: SensorSet, thermocouples: Sequence[Thermocouple], limits: Limits):
        self.sensors = sensors
        self.limits = limits
        self.armed = np.array([tc.cutoff for tc in thermocouples], dtype=bool)

    def after_step(self, st: RunState, done: StepDone) -> None:
        if not (done.switchable and self.armed.any()):
            return
        tc = self.sensors.read(st.T)
        trip = self.armed & (self.limits.too_hot(tc) | self.limits.too_cold(tc))
        if trip.any():
            if st.phase_cutoff[done.phase] is None:
                st.phase_cutoff[done.phase] = st.t
            for name in np.asarray(self.sensors.names)[trip]:
                st.tc_cutoff.setdefault(str(name), st.t)
            done.cut = True


class Sampler:
    """The time series, every ``interval`` seconds [s] of simulated time, at each
    phase's end and at a cut-off."""

    def __init__(self, sensors: SensorSet, nerves: NerveExtremes, interval: float):
        if not (np.isfinite(interval) and interval > 0):
            raise ScenarioError(f"sample_interval must be > 0 s, got {interval!r}")
        self.sensors = sensors
        self.nerves = nerves
        self.interval = float(interval)
        #: Levels [°C] whose voxel count and extent each sample records (the iceball).
        self.isotherms: tuple[float, ...] = ()

    def start(self, st: RunState) -> None:
        """The sample at t = 0 of a new run."""
        self.record(st, -1, 0.0, ())
        st.next_sample = self.interval

    def record(self, st: RunState, phase: int, power: float, sources) -> None:
        tel = {}
        for b in sources:
            tel.update({f"{b.name}_{k}": float(v) for k, v in b.telemetry().items()})
        st.telemetry.append(tel)
        s = st.samples
        s["time"].append(st.t)
        s["phase"].append(phase)
        s["power"].append(power)
        s["tc"].append(self.sensors.read(st.T))
        nmax, nmin = self.nerves.extremes(st.T)
        s["nerve_max"].append(nmax)
        s["nerve_min"].append(nmin)
        if self.isotherms:  # a run that may freeze: the iceball
            counts, extents = isotherm_stats(st.T, self.isotherms)
            s["iceball"].append([*counts.tolist(), *extents.ravel().tolist()])
        else:
            s["iceball"].append([])

    def after_step(self, st: RunState, done: StepDone) -> None:
        slack = 1e-9 * self.interval
        if st.t >= st.next_sample - slack or done.last or done.cut:
            self.record(st, done.phase, done.power, done.sources)
            while st.next_sample <= st.t + slack:
                st.next_sample += self.interval


class Snapshots:
    """The temperature on the axial, sagittal and coronal planes through ``index`` (a
    voxel), at t = 0, every ``interval`` seconds [s] and at the end: three 2D planes a
    snapshot, not the 3D field (the demo's 96 x 128 x 96 grid: 68 kB a snapshot, not 7 MB).

    Kept in the observer, not the run state: a resumed run's animation starts at the
    resume.
    """

    def __init__(self, index: Sequence[int], interval: float):
        if not (np.isfinite(interval) and interval > 0):
            raise ScenarioError(
                f"output.snapshot_interval_s must be > 0 s, got {interval!r}; e.g. 10"
            )
        self.index = tuple(int(i) for i in index)
        self.interval = float(interval)
        self.next = 0.0
        self.time: list[float] = []
        self.power: list[float] = []
        self.planes: dict[str, list[np.ndarray]] = {"z": [], "x": [], "y": []}

    def record(self, T_padded: np.ndarray, t: float, power: float) -> None:
        T = T_padded[1:-1, 1:-1, 1:-1]
        i, j, k = self.index
        # float16: 0.03 °C steps at body temperature, 0.06 °C up to 128 °C, enough for a
        # picture; the demo's 61 snapshots take 0.7 MB compressed (4.1 MB as float32)
        self.planes["z"].append(T[:, :, k].astype(np.float16))
        self.planes["x"].append(T[i, :, :].astype(np.float16))
        self.planes["y"].append(T[:, j, :].astype(np.float16))
        self.time.append(float(t))
        self.power.append(float(power))
        while self.next <= t + 1e-9 * self.interval:
            self.next += self.interval

    def start(self, st: RunState) -> None:
        self.record(st.T, st.t, 0.0)

    def after_step(self, st: RunState, done: StepDone) -> None:
        if st.t >= self.next - 1e-9 * self.interval or (done.last and st.phase == self.last):
            self.record(st.T, st.t, done.power)

    last = -1  # the index of the last phase (set by the run): its end is always kept

    def arrays(self) -> dict[str, np.ndarray]:
        """The snapshots as arrays (``time_s``, ``power_W``, ``z``, ``x``, ``y``,
        ``index``) for :func:`numpy.savez_compressed`."""
        out = {"time_s": np.asarray(self.time), "power_W": np.asarray(self.power)}
        out.update({a: np.stack(v) for a, v in self.planes.items()})
        out["index"] = np.asarray(self.index)
        return out


class Progress:
    """A progress bar of simulated seconds (tqdm), or nothing when not ``enabled``."""

    def __init__(self, total_s: float, enabled: bool, *, start_s: float = 0.0):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=round(total_s),
                unit="s",
                desc="simulating",
                leave=False,
                dynamic_ncols=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s "
                "simulated [{elapsed}<{remaining}{postfix}]",
            )
            self.bar.n = round(start_s)

    def after_step(self, st: RunState, done: StepDone) -> None:
        bar = self.bar
        if bar is not None and (time.perf_counter() - bar.last_print_t > 0.25 or done.last):
            bar.n = round(st.t)
            bar.set_postfix_str(f"max {done.tmax:.1f} °C", refresh=False)
            bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class ThreadChooser:
    """Choose the number of kernel threads that runs the step fastest now.

    The step is memory-bound: on two cores the second thread gains only about 1.35x
    (measured on the project's 2-core machine; its memory bandwidth:
    ``benchmarks/README.md``). But on a shared host, when another process holds the other
    core, every step waits for the descheduled thread and a parallel run
    becomes several times *slower* than a serial one. So every ``interval`` seconds of
    wall time a few trial steps are timed with one thread and with all of them, and the
    faster is kept. With ``threads`` given, that number is used throughout. The trials
    repeat the last step on copies of what it writes (:meth:`Stepper.trial`), so nothing
    is counted twice; they read fewer extremes than a real step (the row bounds make the
    repeats skip them), the same for every thread count, and the choice only compares
    thread counts.
    """

    def __init__(
        self,
        threads: int | None,
        stepper: Stepper | None = None,
        *,
        interval: float = 20.0,
        trials: int = 3,
    ):
        self.max = numba.config.NUMBA_NUM_THREADS
        self.fixed = threads
        if threads is not None:
            if not (isinstance(threads, int) and 1 <= threads <= self.max):
                raise ScenarioError(
                    f"threads must be a whole number from 1 to {self.max}, got {threads!r}"
                )
            numba.set_num_threads(threads)
        self.stepper = stepper
        self.interval = interval
        self.trials = trials
        self.next = 0.0
        self.chosen: list[int] = []

    def due(self) -> bool:
        return self.fixed is None and self.max > 1 and time.perf_counter() >= self.next

    def after_step(self, st: RunState, done: StepDone) -> None:
        if self.stepper is not None and self.due():
            self.choose(self.stepper.trial())

    def choose(self, run: Callable[[], None]) -> None:
        """Time ``run`` with one thread and with all, and keep the faster."""
        best = None
        for n in (1, self.max):
            numba.set_num_threads(n)
            run()  # let the threads wake up
            t = min(_timed(run) for _ in range(self.trials))
            if best is None or t < best[0]:
                best = (t, n)
        numba.set_num_threads(best[1])
        self.chosen.append(best[1])
        self.next = time.perf_counter() + self.interval

    def summary(self) -> int:
        """The thread count used (the most often chosen)."""
        if self.fixed is not None or not self.chosen:
            return numba.get_num_threads()
        return max(set(self.chosen), key=self.chosen.count)


def _timed(run: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    run()
    return time.perf_counter() - t0
