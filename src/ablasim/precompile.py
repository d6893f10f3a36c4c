"""Compile the numba kernels once, ahead of the first run (``ablasim compile``).

numba compiles a kernel the first time it is called and keeps the machine code on disk
(``cache=True``, see :mod:`ablasim.solvers._jit`); later processes load it in about a
second. From an empty cache a first run pays the compilation: on the 2-core development
host about 13 s for the fused Pennes-and-damage step and about 20 s for the RF and
microwave kernels (multigrid, conductivity updates, SAR), so the ``vertebra-rf`` example
takes about 56 s the first time and 22-28 s afterwards.

Compilation is single-threaded and numba holds one compiler lock per process, so this
module compiles the two groups of kernels in two processes at once (about 25 s from an
empty cache):

* ``step``: the time step with damage, the ghost layers, the held-voxel damage
  (:func:`ablasim.solvers.warm_up`, the call every simulation makes first);
* ``sources``: each registered source kind's own kernels (``Source.compile_ahead``:
  the RF potential solver and the microwave SAR kernel, bound to a small model and
  asked for their heating twice, as a simulation calls them).

That is every kernel a simulation runs; the reference kernels kept for tests and
benchmarks (``pennes_step``, ``accumulate_damage``, ``_gs_colour``) compile on first use.

``make demo`` and ``make test`` run it after installing, so a fresh clone's first run
is as fast as any later one. Calling it again costs a few seconds (cache loads).
"""

from __future__ import annotations

import subprocess
import sys
import time

from .errors import AblasimError

GROUPS = ("step", "sources")
#: A group that takes longer than this has hung [s] (about 25 s is normal; 2 cores).
TIMEOUT_S = 900.0


def compile_step() -> None:
    """The kernels every simulation runs (through the step's own warm-up)."""
    from .solvers import warm_up

    warm_up()


def compile_sources() -> None:
    """The kernels of every registered source kind (``Source.compile_ahead``)."""
    from .sources import SOURCES

    for cls in SOURCES.values():
        cls.compile_ahead()


def _compile(group: str) -> None:
    {"step": compile_step, "sources": compile_sources}[group]()


def compile_all(*, parallel: bool = True) -> dict[str, float]:
    """Compile (or load) every group; returns the wall time [s] per group and in total.

    ``parallel``: one process per group at once (numba compiles one function at a time
    per process); otherwise in this process, one after the other. Raises
    :class:`~ablasim.errors.AblasimError` when a group fails or hangs.
    """
    t0 = time.perf_counter()
    if parallel:
        times = {g: end - start for g, (start, end) in _run_groups(GROUPS).items()}
    else:
        times = {}
        for g in GROUPS:
            t = time.perf_counter()
            _compile(g)
            times[g] = time.perf_counter() - t
    times["total"] = time.perf_counter() - t0
    return times


def _run_groups(groups) -> dict[str, tuple[float, float]]:
    """Compile each group in its own process, all at once; returns each group's
    (launch, end) wall-clock times [s since the epoch]: the launch taken here, the end
    reported by the child."""
    procs: dict[str, tuple[float, subprocess.Popen]] = {}
    try:
        for g in groups:
            procs[g] = (
                time.time(),
                subprocess.Popen(
                    [sys.executable, "-m", "ablasim.precompile", g],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        out = {}
        for g, (launched, p) in procs.items():
            try:
                stdout, stderr = p.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                raise AblasimError(
                    f"compiling the {g!r} kernels took over {TIMEOUT_S:.0f} s; run "
                    f"`python -m ablasim.precompile {g}` to see where it stops"
                ) from None
            lines = stdout.strip().splitlines()
            if p.returncode != 0 or not lines:
                detail = stderr.strip().splitlines()[-1:] or ["no output"]
                raise AblasimError(
                    f"compiling the {g!r} kernels failed: {detail[0]}; run `python -m "
                    f"ablasim.precompile {g}` for the whole message"
                )
            out[g] = (launched, float(lines[-1]))
        return out
    finally:
        for _, p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def main(argv: list[str] | None = None) -> int:
    """``python -m ablasim.precompile GROUP``: compile one group, then print the
    wall-clock time it finished [s since the epoch]."""
    (group,) = sys.argv[1:] if argv is None else argv
    _compile(group)
    print(f"{time.time():.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
