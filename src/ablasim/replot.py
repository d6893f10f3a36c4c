"""``ablasim plot``: re-draw a finished run's pictures from its saved results, without
running it again.

What each picture reads (all in the run's folder):

* the slices (``peak_temperature_slices.png`` or ``coldest_...``) and the damage maps
  (``damage_slices.png``): ``fields.vti`` (the fields, labels and their names),
  ``report.json`` (nerves, limits) and ``pictures.json`` (the probe, the nerve point, the
  isotherm levels the run drew);
* the curves (``timeseries.png``): ``timeseries.csv`` and ``report.json`` (events,
  phases, limits);
* the animation (``isotherms.gif``): ``snapshots.npz``, saved by a run with
  ``[output] animation = true``.

The run draws with the same functions (:mod:`ablasim.runner`), so a re-drawn picture
equals the run's own but for the fields' float32 storage in ``fields.vti``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ScenarioError
from .grid import Grid
from .tables import read_timeseries_csv
from .vtkio import read_vti

__all__ = ["PICTURE_KINDS", "SavedRun", "load_run", "plot_run"]

PICTURE_KINDS = ("slices", "curves", "damage", "animation", "3d")
NOTES = "pictures.json"
_NEEDS = {
    "slices": ("report.json", "fields.vti"),
    "damage": ("report.json", "fields.vti"),
    "3d": ("report.json", "fields.vti"),
    "curves": ("report.json", "timeseries.csv"),
    "animation": ("snapshots.npz",),
}
_MADE_BY = {
    "fields.vti": "a run with [output] vti = true (the default)",
    "snapshots.npz": "a run with [output] animation = true",
}


@dataclass
class SavedRun:
    """What a run folder holds, read lazily."""

    folder: Path

    def __post_init__(self) -> None:
        self._fields = None

    def report(self) -> dict:
        return json.loads((self.folder / "report.json").read_text(encoding="utf-8"))

    def notes(self) -> dict:
        """``pictures.json``; a run made before it existed gets the hottest voxel as the
        probe and the default isotherms."""
        path = self.folder / NOTES
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def fields(self) -> tuple[Grid, dict, list[str]]:
        if self._fields is None:
            info, fields = read_vti(self.folder / "fields.vti")
            grid = Grid(
                tuple(info["shape"]),
                float(info["spacing"][0]) * 1e-3,
                tuple(float(v) * 1e-3 for v in info["origin"]),
            )
            self._fields = grid, fields, list(info.get("label_names", []))
        return self._fields

    def masks(self, names) -> dict[str, np.ndarray]:
        """Boolean masks of the named structures (by the labels' names in fields.vti)."""
        _, fields, label_names = self.fields()
        labels = fields["labels"]
        out = {}
        for name in names:
            ids = [i for i, n in enumerate(label_names) if n == name]
            if ids:
                out[name] = np.isin(labels, ids)
        return out


def load_run(folder: str | Path, kinds=("slices", "curves")) -> SavedRun:
    """Check that ``folder`` holds what the ``kinds`` of picture need.

    Raises
    ------
    ScenarioError
        Naming each missing file and what makes it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(
            f"{folder}/ is not a folder; give the --out folder of a finished "
            "`ablasim run` (it holds report.json)"
        )
    missing = sorted({f for k in kinds for f in _NEEDS[k] if not (folder / f).is_file()})
    if missing:
        said = [f"{f} (made by {_MADE_BY[f]})" if f in _MADE_BY else f for f in missing]
        raise ScenarioError(
            f"{folder}/ lacks {', '.join(said)}: give the --out folder of a finished "
            "`ablasim run` (a run interrupted before its end has no report.json)"
        )
    return SavedRun(folder)


def _point(mm) -> tuple[float, float, float] | None:
    return None if mm is None else tuple(float(v) * 1e-3 for v in mm)


def _probe(run: SavedRun, field: np.ndarray, grid: Grid):
    notes = run.notes()
    if notes.get("probe_mm") is not None:
        return _point(notes["probe_mm"])
    idx = np.unravel_index(np.argmax(field), grid.shape)
    return tuple(grid.index_to_world(idx))


def draw_slices(run: SavedRun, out: Path, *, plane: str | None = None, levels=()) -> Path:
    """The peak (or, for a cold run, coldest) temperature slices, as the run drew them;
    one ``plane`` (x, y or z) alone as ``<name>_temperature_<plane>.png``; ``levels``
    [°C] added to the run's isotherms."""
    from .viz import plot_isotherm_panels, plot_isotherm_slice

    grid, fields, _ = run.fields()
    report, notes = run.report(), run.notes()
    cold = float(fields["min_temperature_C"].min()) < 0.0
    field = (fields["min_temperature_C"] if cold else fields["max_temperature_C"]).astype(float)
    name = "coldest" if cold else "peak"
    nerves = notes.get("nerves", [n for n, v in report["nerves"].items() if v.get("voxels")])
    structures = {}
    tumour = run.masks(notes.get("tumour_structures", ["tumour"]))
    if tumour and (union := np.logical_or.reduce(list(tumour.values()))).any():
        structures["tumour"] = union
    zone = fields["ablation_zone"].astype(bool)
    if zone.any():
        structures["ablation zone"] = zone
    iso = tuple(notes.get("isotherms_C", (45.0, 50.0, 60.0)))
    iso = tuple(dict.fromkeys((*iso, *(float(v) for v in levels))))
    common = {
        "labels": fields["labels"], "structures": structures, "nerve_mask": run.masks(nerves),
        "isotherms": iso, "cold_isotherms": (0.0, -20.0, -40.0) if cold else (),
        "nerve_limit": report["limits"]["hot_limit_C"],
    }  # fmt: skip
    probe = _probe(run, -field if cold else field, grid)
    title = f"{report['scenario']}: {name} temperature reached during the treatment"
    if plane is not None:
        path = out / f"{name}_temperature_{plane}.png"
        plot_isotherm_slice(grid, field, axis=plane, position=probe, mark=probe,
                            title=title, save=path, **common)  # fmt: skip
        return path
    path = out / f"{name}_temperature_slices.png"
    plot_isotherm_panels(
        grid, field, probe=probe, nerve_point=_point(notes.get("nerve_point_mm")),
        suptitle=title, save=path, **common,
    )  # fmt: skip
    return path


def draw_curves(run: SavedRun, out: Path) -> Path:
    """``timeseries.png`` from ``timeseries.csv`` and the report's events and phases."""
    from .viz import plot_timeseries_panels

    report = run.report()
    table = read_timeseries_csv(run.folder / "timeseries.csv")
    nerves = set(report["nerves"])
    traces, nerve_traces = {}, {}
    for col, values in table.items():
        if col.startswith("tc_") and col.endswith("_C") and col[3:-2] in report["thermocouples"]:
            traces[f"TC {col[3:-2]}"] = np.asarray(values, dtype=float)
        elif col.endswith("_max_C") and col[: -len("_max_C")] in nerves:
            nerve_traces[f"{col[: -len('_max_C')]} (hottest voxel)"] = np.asarray(values, float)
    traces.update(nerve_traces)
    suffix = "_impedance_ohm"
    impedance = {k[: -len(suffix)]: np.asarray(v, float) for k, v in table.items()
                 if k.endswith(suffix)}  # fmt: skip
    starts = np.cumsum([0.0] + [p["duration_s"] for p in report["phases"]])
    phases = [(p["name"], starts[i], starts[i + 1]) for i, p in enumerate(report["phases"])]
    cold = any(k.endswith("_min_C") and k[: -len("_min_C")] in nerves for k in table)
    if (run.folder / "fields.vti").is_file():
        cold = float(run.fields()[1]["min_temperature_C"].min()) < 0.0
    limits = report["limits"]
    path = out / "timeseries.png"
    plot_timeseries_panels(
        np.asarray(table["time_s"], dtype=float), traces,
        np.asarray(table["deposited_power_W"], dtype=float), impedance=impedance,
        hot_limit=limits["hot_limit_C"],
        cold_limit=limits["cold_limit_C"] if cold else None, phases=phases,
        events=report.get("events", []),
        title=f"{report['scenario']}: thermocouples, nerve maxima, power and events",
        save=path,
    )  # fmt: skip
    return path


def draw_damage(run: SavedRun, out: Path) -> Path:
    """``damage_slices.png``: CEM43 and Omega through the probe, the ablation zone."""
    from .viz.damage import plot_damage_slices

    grid, fields, _ = run.fields()
    report, notes = run.report(), run.notes()
    nerves = notes.get("nerves", [n for n, v in report["nerves"].items() if v.get("voxels")])
    path = out / "damage_slices.png"
    plot_damage_slices(
        grid, fields["cem43_min"], fields["arrhenius_omega"],
        probe=_probe(run, fields["max_temperature_C"], grid),
        zone_mask=fields["ablation_zone"].astype(bool), labels=fields["labels"],
        nerve_mask=run.masks(nerves), suptitle=f"{report['scenario']}: thermal damage",
        save=path,
    )  # fmt: skip
    return path


def draw_animation(run: SavedRun, out: Path, *, levels=()) -> Path:
    """``isotherms.gif`` from ``snapshots.npz``."""
    from .viz.animation import write_isotherm_animation

    with np.load(run.folder / "snapshots.npz") as z:
        snaps = {k: z[k] for k in z.files}
    notes = run.notes()
    iso = tuple(notes.get("isotherms_C", (45.0, 50.0, 60.0))) + tuple(levels)
    cold = min(float(snaps[a].min()) for a in ("x", "y", "z")) < 0.0
    return write_isotherm_animation(
        snaps, out / "isotherms.gif", isotherms=iso,
        cold_isotherms=(0.0, -20.0, -40.0) if cold else (),
        title=notes.get("scenario"),
    )  # fmt: skip


@dataclass(frozen=True)
class _Structure:
    name: str
    tissue: str


class _SavedModel:
    """What :func:`ablasim.viz.render3d.plot_3d` reads of a model, from the saved files:
    the grid, the labels and each structure's tissue (``pictures.json``)."""

    def __init__(self, run: SavedRun, notes: dict):
        self.grid, fields, names = run.fields()
        self.labels = fields["labels"]
        rows = {r["name"]: r for r in notes["structures"]}
        self.structures = tuple(_Structure(n, rows.get(n, {}).get("tissue", n)) for n in names)
        self._nerves = tuple(n for n in names if rows.get(n, {}).get("nerve"))
        self._tumour = tuple(notes.get("tumour_structures", ()))

    def nerve_structures(self) -> tuple[str, ...]:
        return self._nerves

    def tumour_mask(self) -> np.ndarray:
        ids = [i for i, s in enumerate(self.structures) if s.name in self._tumour]
        return np.isin(self.labels, ids)


def draw_3d(run: SavedRun, out: Path) -> Path:
    """``isotherms_3d.png`` as the run drew it (needs a ``pictures.json`` that lists the
    structures: a run of this version)."""
    from .sources import Needle
    from .viz.render3d import plot_3d

    notes = run.notes()
    if "structures" not in notes:
        raise ScenarioError(
            f"{run.folder}/{NOTES} lacks the structures' tissues that the 3D picture "
            "needs (the run is older than --3d): run the scenario again"
        )
    grid, fields, _ = run.fields()
    report = run.report()
    cold = float(fields["min_temperature_C"].min()) < 0.0
    field = (fields["min_temperature_C"] if cold else fields["max_temperature_C"]).astype(float)
    needles = [
        Needle(
            tip=_point(n["tip_mm"]),
            direction=None if n["direction"] is None else tuple(n["direction"]),
            diameter=None if n["diameter_mm"] is None else n["diameter_mm"] * 1e-3,
            active_length=(None if n["active_length_mm"] is None else n["active_length_mm"] * 1e-3),
        )
        for n in notes["needles"]
    ]
    name = "coldest" if cold else "peak"
    path = out / "isotherms_3d.png"
    plot_3d(
        _SavedModel(run, notes), field, zone_mask=fields["ablation_zone"].astype(bool),
        needles=needles, probe_point=_probe(run, field, grid),
        nerve_points_mm={k: tuple(v) for k, v in notes["nerve_points_mm"].items()},
        cold=cold, title=f"{report['scenario']}: {name} temperature, isotherm surfaces",
        save=path,
    )  # fmt: skip
    return path


def plot_run(
    folder: str | Path,
    out: str | Path | None = None,
    *,
    kinds=("slices", "curves"),
    plane: str | None = None,
    levels=(),
) -> list[Path]:
    """Re-draw the ``kinds`` of picture (:data:`PICTURE_KINDS`) of the run in ``folder``
    into ``out`` (default ``folder``). Returns the files written.

    Raises
    ------
    ScenarioError
        A file the pictures need is missing (named, with what makes it), or an unknown
        kind or plane.
    """
    unknown = [k for k in kinds if k not in PICTURE_KINDS]
    if unknown:
        raise ScenarioError(f"unknown picture kind(s) {unknown}; choose from {PICTURE_KINDS}")
    if plane is not None and plane not in ("x", "y", "z"):
        raise ScenarioError(f"--plane must be x, y or z, got {plane!r}")
    run = load_run(folder, kinds)
    dest = Path(out) if out is not None else run.folder
    dest.mkdir(parents=True, exist_ok=True)
    files = []
    for kind in kinds:
        if kind == "slices":
            files.append(draw_slices(run, dest, plane=plane, levels=levels))
        elif kind == "curves":
            files.append(draw_curves(run, dest))
        elif kind == "damage":
            files.append(draw_damage(run, dest))
        elif kind == "animation":
            files.append(draw_animation(run, dest, levels=levels))
        else:
            files.append(draw_3d(run, dest))
    return files
