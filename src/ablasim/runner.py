"""Run one scenario end to end and write the file contract (README.md).

validate -> build (model, protocol) -> simulate (checkpointed) -> safety analysis ->
``report.json``, ``report.txt``, ``timeseries.csv``, pictures, ``fields.vti``.

Nothing is written before the scenario has been validated and built, so bad input never
leaves partial output behind. While the simulation runs, ``DIR/.checkpoint.npz`` holds its
state (``resume=True`` continues from it); it is removed when the run completes.

The outputs appear together or not at all: every file is first written into a hidden
staging folder, ``DIR/.ablasim-staging``; when all are there, the old ``report.json`` is
removed, the new files are moved into ``DIR`` (a rename each) and ``report.json`` comes
last. So a ``report.json`` in ``DIR`` always stands beside the whole set it describes; a
run killed while writing leaves the previous set as it was (and the staging folder,
which the next run removes with any other temporary file a killed run left).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ScenarioError
from .fileio import atomic_write
from .report import build_report, dumps, render_text
from .result import Result
from .safety import SafetyAnalysis, analyse
from .scenario import BuiltScenario, Scenario, load_scenario
from .simulation import simulate

__all__ = ["RunOutput", "run_scenario"]

CHECKPOINT_NAME = ".checkpoint.npz"
#: Hidden folder inside the output folder where a run's files are written before they
#: are moved into place together.
STAGING_NAME = ".ablasim-staging"
#: The files the last run published in its output folder (removed by the next run when
#: it does not write them again).
MANIFEST_NAME = ".ablasim-files.json"
#: Names of the temporary files of :func:`~ablasim.fileio.atomic_path`:
#: ``.ablasim-tmp.<name>.<8 random characters>.part`` and the target's suffixes, which a
#: killed run may leave; the prefix keeps a user's own hidden files out of the match.
_TEMP_FILE = re.compile(r"\.ablasim-tmp\..+\.[A-Za-z0-9_]{8}\.part(\.[^.]+)*")


@dataclass(frozen=True)
class RunOutput:
    """What :func:`run_scenario` produced."""

    report: dict
    result: Result
    analysis: SafetyAnalysis
    files: list[Path]


def _probe_point(built: BuiltScenario, result: Result) -> tuple[float, float, float]:
    """Where the treatment is: the first source's location, else the hottest voxel."""
    model = built.model
    for phase in built.phases:
        for src in phase.sources:
            where = src.location(model)
            if where is not None:
                return tuple(where)
    idx = np.unravel_index(np.argmax(result.damage.t_max), model.grid.shape)
    return tuple(model.grid.index_to_world(idx))


def run_scenario(
    scenario: Scenario | str | Path,
    out_dir: str | Path,
    *,
    progress: bool = True,
    resume: bool = False,
    on_warning=None,
) -> RunOutput:
    """Run a scenario and write its report, tables, pictures and fields into ``out_dir``.

    Parameters
    ----------
    scenario : Scenario or path
    out_dir : path
        Output folder (created if needed).
    progress : bool
        Show a progress bar.
    resume : bool
        Continue from ``out_dir/.checkpoint.npz``, which an interrupted run left; without
        one a :class:`ScenarioError` says so (nothing is started).
    on_warning : callable, optional
        Called with each plausibility warning (a sentence) as soon as the scenario is
        built, before the simulation; they are also in the report's ``warnings``.

    Raises
    ------
    ScenarioError, StabilityError
        Bad input (before anything is written).
    SimulationError
        The run blew up (no report is written).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    ckpt = out / CHECKPOINT_NAME
    if resume and not ckpt.is_file():
        raise ScenarioError(_nothing_to_resume(out))
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    built = sc.build()
    t_built = time.perf_counter()
    for sentence in built.warnings if on_warning is not None else ():
        on_warning(sentence)
    try:  # before the simulation, not at its first checkpoint or its end
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".ablasim-tmp.write-check.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ScenarioError(
            f"cannot write the output folder {str(out)!r}: {exc.strerror or exc}; choose "
            "another --out"
        ) from None
    _remove_leftovers(out)
    if _wants_pictures(sc):
        # import matplotlib while the kernels run (they release the GIL): ~0.8 s saved
        threading.Thread(target=_preload, args=("ablasim.viz",), daemon=True).start()
        threading.Thread(target=_preload, args=("pyvista",), daemon=True).start()  # 0.4 s
    result = simulate(
        built.model,
        built.phases,
        thermocouples=built.thermocouples,
        bound_sources=built.bound,
        progress=progress,
        checkpoint=ckpt,
        checkpoint_interval=sc.checkpoint_interval_s,
        resume=resume,
        snapshots=(snaps := _snapshots(sc, built)),
        **sc.simulate_options(),
    )
    t_sim = time.perf_counter()
    analysis = analyse(result, sc.ablation, target=sc.tumour_target)
    said = [line for p in sc.phases for src in p.sources for line in src.assumptions()]
    t_out = time.perf_counter()
    result.timing["build_s"] = t_built - t0
    result.timing["analysis_s"] = t_out - t_sim
    report = build_report(
        scenario_name=sc.name,
        description=sc.description,
        result=result,
        analysis=analysis,
        notes=built.notes,
        source_assumptions=said,
        phases=sc.phases,
    )
    report["warnings"] = [*built.warnings, *report.get("warnings", [])]
    stage = out / STAGING_NAME
    shutil.rmtree(stage, ignore_errors=True)
    files = _write_outputs(stage, sc, built, result, analysis, report)
    files += _write_extras(stage, sc, built, result, analysis, snaps)
    report["timing"]["output_s"] = round(time.perf_counter() - t_out, 3)
    report["timing"]["total_s"] = round(time.perf_counter() - t0, 3)
    with atomic_write(stage / "report.json") as fh:
        fh.write(dumps(report))
    files = _publish(stage, out, [stage / "report.json", *files])
    ckpt.unlink(missing_ok=True)
    return RunOutput(report, result, analysis, files)


def _nothing_to_resume(out: Path) -> str:
    if (out / "report.json").is_file():
        why = f"the run in {out}/ finished (its report.json is there)"
    elif out.is_dir():
        why = f"no interrupted run left a checkpoint in {out}/ ({CHECKPOINT_NAME})"
    else:
        why = f"the folder {out}/ does not exist (is --out the one of the interrupted run?)"
    return f"--resume: nothing to resume: {why}; run without --resume to start afresh"


def _remove_leftovers(out: Path) -> None:
    """Remove what a killed run may have left in ``out``: its staging folder and the
    temporary files of files being written (e.g. the checkpoint's)."""
    if not out.is_dir():
        return
    shutil.rmtree(out / STAGING_NAME, ignore_errors=True)
    for f in out.iterdir():
        if _TEMP_FILE.fullmatch(f.name) and f.is_file():
            with contextlib.suppress(OSError):
                f.unlink()


def _published(out: Path) -> list[str]:
    """The files the previous run published in ``out`` (none for older runs)."""
    try:
        names = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    # only plain names of files inside ``out``: never a path that leaves it
    return [n for n in names if isinstance(n, str) and "/" not in n and n not in ("", ".", "..")]


def _publish(stage: Path, out: Path, files: list[Path]) -> list[Path]:
    """Move the staged ``files`` (the first is report.json) into ``out``: the old
    report.json goes first, the new one last, so a report.json in ``out`` always has
    its whole set beside it. Files the previous run published there (listed in
    :data:`MANIFEST_NAME`) that this run does not write are removed, so an old
    ``fields.vti`` never sits beside a new report. Returns the files' new paths."""
    moved = [out / f.relative_to(stage) for f in files]
    names = [m.relative_to(out).as_posix() for m in moved]
    (out / "report.json").unlink(missing_ok=True)
    for old in set(_published(out)) - set(names):
        with contextlib.suppress(OSError):
            (out / old).unlink()
    with atomic_write(out / MANIFEST_NAME) as fh:
        fh.write(json.dumps(names, indent=1) + "\n")
    for src, dst in [*zip(files[1:], moved[1:], strict=True), (files[0], moved[0])]:
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)
    shutil.rmtree(stage, ignore_errors=True)
    return moved


def _preload(module: str) -> None:
    """Import ``module`` ahead of need; a failure is left for the real import to report."""
    with contextlib.suppress(Exception):
        importlib.import_module(module)


def _write_outputs(out, sc, built, result, analysis, report) -> list[Path]:
    from .anatomy import write_colour_table
    from .tables import write_timeseries_csv
    from .vtkio import write_vti

    model = result.model
    files = []
    with atomic_write(out / "report.txt") as fh:
        fh.write(render_text(report))
    files.append(out / "report.txt")

    # the power deposited in tissue (a microwave antenna's absorbed power), then what
    # each source logs (<source>_<key>: its set power, impedance, ...)
    cols = {"deposited_power_W": result.power}
    cols.update(result.telemetry)
    cols.update({f"tc_{n}_C": v for n, v in result.sensors.items()})
    cols.update({f"{n}_max_C": v for n, v in result.nerve_max_trace.items()})
    if result.limits.cold_C is not None and any(
        v.min() < result.limits.cold_C for v in result.nerve_min_trace.values()
    ):
        cols.update({f"{n}_min_C": v for n, v in result.nerve_min_trace.items()})
    files.append(
        write_timeseries_csv(
            out / "timeseries.csv",
            result.time,
            cols,
            phase_names=result.phase_of_sample,
            digits=9,
        )
    )

    fields = None
    if sc.output.get("vti", True):
        fields = {
            "temperature_C": result.temperature,
            "max_temperature_C": result.damage.t_max,
            "min_temperature_C": result.damage.t_min,
            "cem43_min": result.damage.cem43,
            "arrhenius_omega": result.damage.omega,
            "perfusion_W_m3K": result.perfusion,
            "labels": model.labels,
            "ablation_zone": analysis.zone_mask.astype(np.uint8),
        }
    # compressing the fields (zlib releases the GIL) overlaps drawing the pictures
    with ThreadPoolExecutor(max_workers=1) as pool:
        vti = (
            pool.submit(
                write_vti, out / "fields.vti", model.grid, fields,
                label_names=model.structure_names,
            )
            if fields
            else None
        )  # fmt: skip
        pics = _pictures(out, sc, built, result, analysis) if _wants_pictures(sc) else []
        if vti is not None:
            files.append(vti.result())
            # the labels' names and colours for 3D Slicer (ParaView reads the names
            # from the .vti's field data)
            files.append(write_colour_table(out / "fields.ctbl", model.structures))
    return files + pics


def _wants_pictures(sc) -> bool:
    return sc.output.get("pictures", True)


def _pictures(out, sc, built, result, analysis) -> list[Path]:
    from .viz import plot_isotherm_panels, plot_timeseries_panels

    model = result.model
    probe = _probe_point(built, result)
    cold = result.damage.t_min.min() < 0.0
    nerve_point = None
    if analysis.nerves:
        worst = min(analysis.nerves.values(), key=lambda n: _margin(n, cold))
        nerve_point = tuple(v * 1e-3 for v in _nerve_point_mm(worst, cold))
    nerve_masks = {n: model.structure_mask(n) for n in analysis.nerves}
    structures = {}
    if (tumour := model.tumour_mask()).any():  # named "tumour", or of a tumour tissue
        structures["tumour"] = tumour
    if analysis.zone_mask.any():
        structures["ablation zone"] = analysis.zone_mask
    iso = tuple(sc.output.get("isotherms_C", (45.0, 50.0, 60.0)))
    files = []
    field = result.damage.t_min if cold else result.damage.t_max
    name = "coldest" if cold else "peak"
    fig = plot_isotherm_panels(
        model.grid,
        field,
        probe=probe,
        nerve_point=nerve_point,
        labels=model.labels,
        structures=structures,
        nerve_mask=nerve_masks,
        isotherms=iso,
        cold_isotherms=(0.0, -20.0, -40.0) if cold else (),
        nerve_limit=result.limits.hot_C,
        suptitle=f"{sc.name}: {name} temperature reached during the treatment",
        save=out / f"{name}_temperature_slices.png",
    )
    files.append(out / f"{name}_temperature_slices.png")
    del fig
    traces = {f"TC {n}": v for n, v in result.sensors.items()}
    traces.update({f"{n} (hottest voxel)": v for n, v in result.nerve_max_trace.items()})
    starts = np.cumsum([0.0] + [p.duration_s for p in result.phases])
    phases = [(p.name, starts[i], starts[i + 1]) for i, p in enumerate(result.phases)]
    # RF sources log their impedance as <name>_impedance_ohm (sources/rf/bound.py)
    suffix = "_impedance_ohm"
    impedance = {k[: -len(suffix)]: v for k, v in result.telemetry.items() if k.endswith(suffix)}
    plot_timeseries_panels(
        result.time,
        traces,
        result.power,
        impedance=impedance,
        hot_limit=result.limits.hot_C,
        cold_limit=result.limits.cold_C if cold else None,
        phases=phases,
        events=getattr(result, "events", []),
        title=f"{sc.name}: thermocouples, nerve maxima, power and events",
        save=out / "timeseries.png",
    )
    files.append(out / "timeseries.png")
    from .viz.render3d import plot_3d  # pyvista only when drawing

    # the nerve nearest its limit first: the camera looks at it
    worst_first = sorted(analysis.nerves.values(), key=lambda n: _margin(n, cold))
    plot_3d(
        model,
        field,
        zone_mask=analysis.zone_mask,
        needles=[n for p in built.phases for s in p.sources for n in s.needles()],
        probe_point=probe,
        nerve_points_mm={n.name: _nerve_point_mm(n, cold) for n in worst_first},
        cold=cold,
        title=f"{sc.name}: {name} temperature, isotherm surfaces",
        save=out / "isotherms_3d.png",
    )
    files.append(out / "isotherms_3d.png")
    return files


# -- what ``ablasim plot`` needs, damage maps, the animation (src/ablasim/replot.py) --------
PICTURE_NOTES = "pictures.json"


def _snapshots(sc, built):
    """The snapshot observer when ``[output] animation = true`` (else None: nothing is
    recorded); its planes pass through the first source (else the grid centre)."""
    if not sc.output.get("animation", False):
        return None
    from .observers import Snapshots

    grid = built.model.grid
    index = tuple(int(n - 1) // 2 for n in grid.shape)
    for phase in built.phases:
        for src in phase.sources:
            if (where := src.location(built.model)) is not None:
                index = grid.world_to_index(where)
                break
        else:
            continue
        break
    return Snapshots(index, sc.output.get("snapshot_interval_s", 10.0))


def _margin(n, cold: bool) -> float:
    """How far a nerve stayed from its limit [K]: the cold one in a run that froze."""
    if cold:
        return np.inf if n.cold_margin_C is None else n.cold_margin_C
    return n.hot_margin_C


def _nerve_point_mm(n, cold: bool):
    """Where the pictures mark a nerve: its coldest point in a run that froze, else its
    hottest."""
    return n.coldest_point_mm if cold else n.hottest_point_mm


def _write_extras(out, sc, built, result, analysis, snaps) -> list[Path]:
    """``pictures.json`` (always: what the pictures were drawn with, for ``ablasim plot``),
    the damage maps when ``[output] damage_pictures = true``, and the snapshots and
    ``isotherms.gif`` when ``[output] animation = true``."""
    import json

    model = result.model
    probe = _probe_point(built, result)
    cold = bool(result.damage.t_min.min() < 0.0)
    worst = min(analysis.nerves.values(), key=lambda n: _margin(n, cold), default=None)

    nerve_names = set(model.nerve_structures())
    notes = {
        "scenario": sc.name,
        "probe_mm": [float(v) * 1e3 for v in probe],
        "nerve_point_mm": list(_nerve_point_mm(worst, cold)) if worst is not None else None,
        "nerves": list(analysis.nerves),
        "tumour_structures": list(model.tumour_structures()),
        "isotherms_C": list(sc.output.get("isotherms_C", (45.0, 50.0, 60.0))),
        # for the 3D picture: the structures' tissues, the probes, the nerves' points
        "structures": [
            {"name": st.name, "tissue": st.tissue, "nerve": st.name in nerve_names}
            for st in model.structures
        ],
        "needles": [
            {
                "tip_mm": [v * 1e3 for v in n.tip],
                "direction": None if n.direction is None else list(n.direction),
                "diameter_mm": None if n.diameter is None else n.diameter * 1e3,
                "active_length_mm": None if n.active_length is None else n.active_length * 1e3,
            }
            for p in built.phases
            for s in p.sources
            for n in s.needles()
        ],
        "nerve_points_mm": {
            n.name: list(_nerve_point_mm(n, cold))
            for n in sorted(analysis.nerves.values(), key=lambda n: _margin(n, cold))
        },
    }
    with atomic_write(out / PICTURE_NOTES) as fh:
        fh.write(json.dumps(notes, indent=1) + "\n")
    files = [out / PICTURE_NOTES]
    if sc.output.get("damage_pictures", False):
        from .viz.damage import plot_damage_slices

        plot_damage_slices(
            model.grid, result.damage.cem43, result.damage.omega, probe=probe,
            zone_mask=analysis.zone_mask, labels=model.labels,
            nerve_mask={n: model.structure_mask(n) for n in analysis.nerves},
            suptitle=f"{sc.name}: thermal damage", save=out / "damage_slices.png",
        )  # fmt: skip
        files.append(out / "damage_slices.png")
    if snaps is not None:
        from .viz.animation import planes_of, write_isotherm_animation

        arrays = snaps.arrays()
        arrays["origin_mm"] = np.asarray(model.grid.origin) * 1e3
        arrays["spacing_mm"] = np.asarray(model.grid.spacing * 1e3)
        nerves = np.zeros(model.grid.shape, dtype=bool)
        for n in analysis.nerves:
            nerves |= model.structure_mask(n)
        for axis, plane in planes_of(model.labels, snaps.index).items():
            arrays[f"labels_{axis}"] = plane
        for axis, plane in planes_of(nerves, snaps.index).items():
            arrays[f"nerve_{axis}"] = plane
        with atomic_write(out / "snapshots.npz", "wb") as fh:
            np.savez_compressed(fh, **arrays)
        cold = result.damage.t_min.min() < 0.0
        write_isotherm_animation(
            arrays, out / "isotherms.gif", isotherms=notes["isotherms_C"],
            cold_isotherms=(0.0, -20.0, -40.0) if cold else (), title=sc.name,
        )  # fmt: skip
        files += [out / "snapshots.npz", out / "isotherms.gif"]
        from matplotlib.animation import FFMpegWriter

        if FFMpegWriter.isAvailable():  # MP4 too where ffmpeg is on the PATH
            write_isotherm_animation(
                arrays, out / "isotherms.mp4", isotherms=notes["isotherms_C"],
                cold_isotherms=(0.0, -20.0, -40.0) if cold else (), title=sc.name,
            )  # fmt: skip
            files.append(out / "isotherms.mp4")
    return files
