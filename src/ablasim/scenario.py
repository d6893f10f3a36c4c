"""Scenario files (TOML) -> a validated, typed :class:`Scenario` -> model and protocol.

One validation pass reads the whole file before any work is done. Every problem is
collected (not only the first), and each message names the key path, quotes the bad
value and says how to fix it; unknown keys get the closest known key as a suggestion.
Units are in the key names (``_mm``, ``_s``, ``_min``, ``_W``, ``_C``, ``_ml``); inside
the code everything is SI.

The keys are documented in DESIGN.md and in ``ablasim run --help``; the shipped examples
(``ablasim examples``) show them in use.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .damage import PerfusionShutdown
from .errors import ScenarioError, suggest
from .grid import Grid
from .model import BYTES_PER_VOXEL, Model
from .simulation import Limits, Phase, Thermocouple
from .solvers import FACE_NAMES, Boundary, FaceCondition
from .sources import VolumetricSource
from .sources.base import FORBIDDEN_PROBE_TISSUES
from .tissues import PROPERTY_KEYS, TissueLibrary

__all__ = [
    "AblationCriterion",
    "BuiltScenario",
    "Scenario",
    "load_scenario",
    "parse_scenario",
]

_MISSING = object()
#: Device sources whose module reads its own ``[[phase.source]]`` table (``from_scenario``).
DEVICE_SOURCE_KINDS = ("rf", "microwave")
SOURCE_KINDS = ("volumetric", *DEVICE_SOURCE_KINDS)
PLANNED_SOURCE_KINDS = ("cryo", "cement")


class _Errors(list):
    def add(self, path: str, message: str) -> None:
        self.append(f"{path}: {message}" if path else message)


class _Table:
    """A TOML table being read: typed getters that record errors and used keys."""

    def __init__(self, data: Any, path: str, errors: _Errors):
        self.path = path
        self.errors = errors
        if not isinstance(data, Mapping):
            errors.add(path, f"must be a table, got {data!r}")
            data = {}
        self.data = data
        self.used: set[str] = set()

    def _key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default=_MISSING):
        self.used.add(key)
        if key not in self.data:
            if default is _MISSING:
                self.errors.add(self._key(key), "is required")
                return None
            return default
        return self.data[key]

    def number(self, key, default=_MISSING, *, min=None, gt=None, max=None, integer=False, hint=""):
        v = self.raw(key, default)
        if v is None or v is default:
            return v
        if isinstance(v, bool) or not isinstance(v, int | float):
            self.errors.add(self._key(key), f"must be a number, got {v!r}{hint}")
            return None
        if integer and not float(v).is_integer():
            self.errors.add(self._key(key), f"must be a whole number, got {v!r}")
            return None
        v = float(v)
        if not math.isfinite(v):
            self.errors.add(self._key(key), f"must be finite, got {v!r}{hint}")
            return None
        if gt is not None and v <= gt:
            self.errors.add(self._key(key), f"must be > {gt:g}, got {v:g}{hint}")
            return None
        if min is not None and v < min:
            self.errors.add(self._key(key), f"must be >= {min:g}, got {v:g}{hint}")
            return None
        if max is not None and v > max:
            self.errors.add(self._key(key), f"must be <= {max:g}, got {v:g}{hint}")
            return None
        return int(v) if integer else v

    def vector(self, key, default=_MISSING, *, n=3, positive=False, nonzero=False):
        v = self.raw(key, default)
        if v is None or v is default:
            return v
        ok = isinstance(v, list) and len(v) == n
        ok = ok and all(isinstance(x, int | float) and not isinstance(x, bool) for x in v)
        if not ok:
            self.errors.add(self._key(key), f"must be a list of {n} numbers, got {v!r}")
            return None
        arr = tuple(float(x) for x in v)
        if not all(math.isfinite(x) for x in arr):
            self.errors.add(self._key(key), f"must be finite, got {v!r}")
            return None
        if positive and any(x <= 0 for x in arr):
            self.errors.add(self._key(key), f"must be positive, got {v!r}")
            return None
        if nonzero and all(x == 0 for x in arr):
            self.errors.add(self._key(key), "must not be all zeros (it is a direction)")
            return None
        return arr

    def string(self, key, default=_MISSING, *, choices=None):
        v = self.raw(key, default)
        if v is None or v is default:
            return v
        if not isinstance(v, str):
            self.errors.add(self._key(key), f"must be a string, got {v!r}")
            return None
        if choices is not None and v not in choices:
            self.errors.add(
                self._key(key), f"{v!r} is not one of {list(choices)}" + suggest(v, choices)
            )
            return None
        return v

    def boolean(self, key, default=_MISSING):
        v = self.raw(key, default)
        if v is None or v is default:
            return v
        if not isinstance(v, bool):
            self.errors.add(self._key(key), f"must be true or false, got {v!r}")
            return None
        return v

    def table(self, key, *, required=False) -> _Table | None:
        if key not in self.data:
            self.used.add(key)
            if required:
                self.errors.add(self._key(key), "is required")
            return None
        return _Table(self.raw(key), self._key(key), self.errors)

    def tables(self, key) -> list[_Table]:
        v = self.raw(key, [])
        if isinstance(v, Mapping):
            v = [v]
        if not isinstance(v, list):
            self.errors.add(self._key(key), f"must be an array of tables ([[{key}]])")
            return []
        return [_Table(x, f"{self._key(key)}[{i}]", self.errors) for i, x in enumerate(v)]

    def finish(self, known=None) -> None:
        """Report keys never read, with the closest known key."""
        known = set(known or ()) | self.used
        for key in self.data:
            if key not in known:
                self.errors.add(self._key(key), "unknown key" + suggest(key, known or {"(none)"}))


# -- the typed scenario -----------------------------------------------------------------


@dataclass(frozen=True)
class AblationCriterion:
    """Which voxels count as ablated (the ablation zone).

    Default: CEM43 >= 240 min, the conventional necrosis threshold (Sapareto & Dewey
    1984; the lesion criterion of k-Wave's ``kWaveDiffusion``; physics.md §2.1), or a
    minimum temperature at or below -20 °C, the lethal isotherm used clinically for
    cryoablation (Papalexis et al. 2023, Curr Oncol 30:6744; physics.md §2.4).
    ``kind = "arrhenius"`` uses Omega >= ``omega`` (4.6 = 99 % cell death);
    ``kind = "temperature"`` uses a maximum temperature >= ``temperature_C``.
    """

    kind: str = "cem43"
    cem43_min: float = 240.0
    omega: float = 4.6
    temperature_C: float = 60.0
    cold_C: float | None = -20.0

    def describe(self) -> str:
        hot = {
            "cem43": f"CEM43 >= {self.cem43_min:g} min",
            "arrhenius": f"Arrhenius Omega >= {self.omega:g}",
            "temperature": f"maximum temperature >= {self.temperature_C:g} °C",
        }[self.kind]
        if self.cold_C is not None:
            hot += f", or minimum temperature <= {self.cold_C:g} °C"
        return hot

    def mask(self, damage) -> np.ndarray:
        if self.kind == "cem43":
            m = damage.cem43 >= self.cem43_min
        elif self.kind == "arrhenius":
            m = damage.omega >= self.omega
        else:
            m = damage.t_max >= self.temperature_C
        if self.cold_C is not None:
            m = m | (damage.t_min <= self.cold_C)
        return m


@dataclass(frozen=True)
class SourceSpec:
    """A source as written in the scenario (SI), built into a HeatSource per model."""

    kind: str
    name: str
    params: dict
    path: str  # key path, for messages


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    duration_s: float
    sources: tuple[SourceSpec, ...]


@dataclass(frozen=True)
class ThermocoupleSpec:
    name: str
    position: tuple[float, float, float]
    cutoff: bool
    expect_tissue: str | None
    path: str


@dataclass(frozen=True)
class Scenario:
    """A validated scenario (SI units). Build the model and protocol with :meth:`build`."""

    name: str
    description: str
    spacing: float
    extent: tuple[float, float, float] | None
    shape: tuple[int, int, int] | None
    center: tuple[float, float, float]
    anatomy: dict
    tissue_overrides: dict
    blood_overrides: dict
    boundary: Boundary
    initial_temperature_C: float | None
    dt_s: float | None
    dt_safety: float
    sample_interval_s: float
    checkpoint_interval_s: float
    threads: int | None
    phases: tuple[PhaseSpec, ...]
    limits: Limits
    shutdown: PerfusionShutdown
    ablation: AblationCriterion
    thermocouples: tuple[ThermocoupleSpec, ...]
    output: dict
    base_dir: Path = field(default=Path("."))
    source_text: str = ""

    @property
    def grid(self) -> Grid:
        if self.shape is not None:
            origin = np.asarray(self.center) - 0.5 * (np.asarray(self.shape) - 1) * self.spacing
            return Grid(self.shape, self.spacing, tuple(origin))
        return Grid.from_extent(self.extent, self.spacing, center=self.center)

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.phases)

    def build(self) -> BuiltScenario:
        """Make the model, protocol and thermocouples; check geometry against anatomy.

        Raises ScenarioError with every problem found (sources, thermocouples).
        """
        grid = self.grid
        grid.check_memory(BYTES_PER_VOXEL, what=f"scenario {self.name!r}")
        lib = TissueLibrary.default().with_overrides(
            self.tissue_overrides, blood=self.blood_overrides or None
        )
        notes: list[str] = []
        phantom = _build_anatomy(self, grid, lib, notes)
        try:
            model = Model.from_phantom(phantom, tissues=lib, boundary=self.boundary)
        except ScenarioError as exc:
            raise ScenarioError(f"anatomy: {exc}") from None
        errors = _Errors()
        phases = []
        bound = []
        for ph in self.phases:
            sources = []
            bound_here = []
            for spec in ph.sources:
                try:
                    src = _build_source(spec, self.base_dir, grid)
                except ScenarioError as exc:
                    errors.add(spec.path, str(exc))
                    continue
                if not _check_tip(spec, _source_tip(src), model, errors):
                    continue
                try:
                    # geometry against the grid, fails early; kept for the run
                    bound_here.append(src.bind(model))
                    sources.append(src)
                except ScenarioError as exc:
                    errors.add(spec.path, str(exc))
            phases.append(Phase(ph.name, ph.duration_s, sources))
            bound.append(tuple(bound_here))
        tcs = []
        for tc in self.thermocouples:
            if not grid.contains(tc.position):
                lo = [round(b[0] * 1e3, 1) for b in grid.bounds]
                hi = [round(b[1] * 1e3, 1) for b in grid.bounds]
                errors.add(
                    tc.path + ".position_mm",
                    f"{[round(v * 1e3, 2) for v in tc.position]} mm lies outside the grid "
                    f"({lo} to {hi} mm); move it or enlarge [grid] extent_mm",
                )
                continue
            structure = model.structures[model.labels[grid.world_to_index(tc.position)]]
            expect = tc.expect_tissue  # a tissue or a structure name
            known = set(lib.names) | set(model.structure_names)
            if expect is not None and expect not in known:
                errors.add(
                    tc.path + ".tissue",
                    f"{expect!r} is neither a tissue nor a structure of the model"
                    + suggest(expect, known),
                )
            elif expect is not None and expect not in (structure.tissue, structure.name):
                errors.add(
                    tc.path + ".position_mm",
                    f"{[round(v * 1e3, 2) for v in tc.position]} mm lies in "
                    f"{_describe(structure)}, but tissue = {expect!r} was expected there; "
                    "move the thermocouple (the report's slice pictures show the anatomy)",
                )
            tcs.append(Thermocouple(tc.name, tc.position, tc.cutoff))
        if errors:
            raise ScenarioError(_format_errors(errors, self.name))
        return BuiltScenario(self, model, tuple(phases), tuple(tcs), notes, tuple(bound))


@dataclass(frozen=True)
class BuiltScenario:
    """A scenario made concrete: model, protocol, thermocouples, notes for the report.

    ``bound`` holds the sources already bound to the model while validating (their
    fields are costly to compute: a SAR pattern, an electric-potential system); pass
    them to one run with ``simulate(..., bound_sources=built.bound)``. They carry the
    generator's state, so a second run binds afresh (leave ``bound_sources`` out).
    """

    scenario: Scenario
    model: Model
    phases: tuple[Phase, ...]
    thermocouples: tuple[Thermocouple, ...]
    notes: list[str]
    bound: tuple = ()


def _format_errors(errors: list[str], name: str) -> str:
    if len(errors) == 1:
        return errors[0]
    lines = "\n".join(f"  - {e}" for e in errors)
    return f"{len(errors)} problems in scenario {name!r}:\n{lines}"


# -- reading ----------------------------------------------------------------------------


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (TOML).

    Raises
    ------
    ScenarioError
        A missing or unreadable file, a TOML syntax error (with line and column), or
        every validation problem found.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(
            f"scenario file {str(path)!r} not found; check the path "
            "(`ablasim examples` lists the shipped ones)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario file {str(path)!r}: {exc}") from None
    return parse_scenario(text, base_dir=path.parent, origin=str(path))


def parse_scenario(
    text: str | Mapping, *, base_dir: str | Path = ".", origin: str = "<scenario>"
) -> Scenario:
    """Validate a scenario given as TOML text or an already-parsed mapping."""
    if isinstance(text, str):
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(f"{origin}: TOML syntax error: {exc}") from None
        source_text = text
    else:
        data = dict(text)
        source_text = ""
    errors = _Errors()
    top = _Table(data, "", errors)
    name = top.string("name", default=Path(origin).stem) or "scenario"
    description = top.string("description", default="") or ""

    # grid
    spacing = extent = shape = None
    center = (0.0, 0.0, 0.0)
    g = top.table("grid", required=True)
    if g is not None:
        sp = g.number("spacing_mm", gt=0, hint="; e.g. spacing_mm = 0.5")
        spacing = None if sp is None else sp * 1e-3
        has_extent, has_shape = g.has("extent_mm"), g.has("shape")
        if has_extent == has_shape:
            errors.add("grid", "give exactly one of extent_mm = [x, y, z] or shape = [nx, ny, nz]")
        if has_extent:
            raw = g.raw("extent_mm")
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                ex = g.number("extent_mm", gt=0)
                extent = None if ex is None else (ex * 1e-3,) * 3
            else:
                ex = g.vector("extent_mm", positive=True)
                extent = None if ex is None else tuple(v * 1e-3 for v in ex)
        if has_shape:
            sh = g.vector("shape", positive=True)
            if sh is not None:
                if not all(float(v).is_integer() for v in sh):
                    errors.add("grid.shape", f"must be whole numbers, got {list(sh)}")
                else:
                    shape = tuple(int(v) for v in sh)
        c = g.vector("center_mm", default=(0.0, 0.0, 0.0))
        center = tuple(v * 1e-3 for v in c) if c is not None else center
        g.finish()

    anatomy = _read_anatomy(top.table("anatomy", required=True), errors)
    tissue_overrides = {}
    t = top.table("tissues")
    if t is not None:
        tissue_overrides = dict(t.data)
        t.used.update(t.data)
    blood_overrides = {}
    b = top.table("blood")
    if b is not None:
        blood_overrides = dict(b.data)
        b.used.update(b.data)
    # validate the overrides now, one tissue at a time, so all their errors join the others
    library = TissueLibrary.default()
    for tname, props in tissue_overrides.items():
        if tname not in library and isinstance(props, Mapping) and "based_on" not in props:
            missing = [k for k in PROPERTY_KEYS if k not in props]
            if missing:  # most likely a misspelt tissue, not a new one
                errors.add(
                    f"tissues.{tname}",
                    f"{tname!r} is not a tissue of the library{suggest(tname, library.names)}; "
                    'to define a new tissue add based_on = "<existing tissue>" (its values '
                    f"are copied) or give every property ({len(missing)} missing)",
                )
                continue
        try:
            library.with_overrides({tname: props})
        except ScenarioError as exc:
            errors.add("", str(exc))
    if blood_overrides:
        try:
            library.with_overrides({}, blood=blood_overrides)
        except ScenarioError as exc:
            errors.add("", str(exc))

    boundary = _read_boundary(top.table("boundary"), errors)

    sim = top.table("simulation")
    init_T = dt = None
    dt_safety, sample_iv, ckpt_iv = 0.95, 1.0, 60.0
    threads = None
    if sim is not None:
        init_T = sim.number("initial_temperature_C", default=None)
        dt = sim.number("dt_s", default=None, gt=0)
        dt_safety = sim.number("dt_safety", default=0.95, gt=0, max=1)
        sample_iv = sim.number("sample_interval_s", default=1.0, gt=0)
        ckpt_iv = sim.number("checkpoint_interval_s", default=60.0, gt=0)
        threads = sim.number("threads", default=None, min=1, integer=True)
        sim.finish()

    phases = []
    phase_tables = top.tables("phase")
    if not phase_tables:
        errors.add("phase", "at least one [[phase]] with a name and duration_s is required")
    seen = set()
    for i, pt in enumerate(phase_tables):
        pname = pt.string("name", default=f"phase{i + 1}")
        if pname in seen:
            errors.add(pt.path + ".name", f"{pname!r} is used twice; phase names must be unique")
        seen.add(pname)
        duration = _read_duration(pt, errors)
        sources = tuple(
            s
            for s in (
                _read_source(st, errors, j, Path(base_dir))
                for j, st in enumerate(pt.tables("source"))
            )
            if s is not None
        )
        pt.finish(known=("duration_s", "duration_min"))
        phases.append(PhaseSpec(pname or f"phase{i + 1}", duration or 0.0, sources))

    limits, ablation, tcs = _read_safety(top.table("safety"), errors)
    shutdown = _read_damage(top.table("damage"), errors)
    output = _read_output(top.table("output"), errors)
    top.finish()
    if errors:
        raise ScenarioError(_format_errors(errors, name))
    return Scenario(
        name=name,
        description=description,
        spacing=spacing,
        extent=extent,
        shape=shape,
        center=center,
        anatomy=anatomy,
        tissue_overrides=tissue_overrides,
        blood_overrides=blood_overrides,
        boundary=boundary,
        initial_temperature_C=init_T,
        dt_s=dt,
        dt_safety=dt_safety,
        sample_interval_s=sample_iv,
        checkpoint_interval_s=ckpt_iv,
        threads=threads,
        phases=tuple(phases),
        limits=limits,
        shutdown=shutdown,
        ablation=ablation,
        thermocouples=tcs,
        output=output,
        base_dir=Path(base_dir),
        source_text=source_text,
    )


def _si_params(value, path, errors):
    """Phantom parameters: keys ending in _mm become metres without the suffix."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if k.endswith("_mm"):
                conv = _mm(v, f"{path}.{k}", errors)
                out[k[:-3]] = conv
            else:
                out[k] = _si_params(v, f"{path}.{k}", errors)
        return out
    return value


def _mm(v, path, errors):
    if isinstance(v, bool):
        errors.add(path, f"must be a length in mm, got {v!r}")
        return None
    if isinstance(v, int | float):
        if not math.isfinite(v):
            errors.add(path, f"must be finite, got {v!r}")
        return float(v) * 1e-3
    if isinstance(v, list) and all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in v
    ):
        if not all(math.isfinite(x) for x in v):
            errors.add(path, f"must be finite, got {v!r}")
        return tuple(float(x) * 1e-3 for x in v)
    errors.add(path, f"must be a length in mm (a number or a list of numbers), got {v!r}")
    return None


def _read_anatomy(a: _Table | None, errors) -> dict:
    if a is None:
        return {}
    has_ph, has_lab = a.has("phantom"), a.has("labels")
    if has_ph == has_lab:
        errors.add(
            "anatomy",
            'give exactly one of phantom = "vertebra" (or long_bone, uniform, slab, sphere) '
            'or labels = "segmentation.nii.gz" with an [anatomy.label_map] table',
        )
        return {}
    if has_ph:
        from .anatomy import PHANTOMS

        name = a.string("phantom", choices=tuple(PHANTOMS))
        params = {k: v for k, v in a.data.items() if k != "phantom"}
        a.used.update(params)
        if "tumour" in params:  # checked here, so its messages speak mm and key paths
            n_before = len(errors)
            _read_tumour(a.table("tumour"))
            if len(errors) > n_before:
                params.pop("tumour")  # reported once, not again by the mm conversion
        return {"phantom": name, "params": _si_params(params, "anatomy", errors)}
    labels = a.string("labels")
    lm = a.table("label_map", required=True)
    mapping = {}
    if lm is not None:
        mapping = dict(lm.data)
        lm.used.update(mapping)
    a.finish()
    return {"labels": labels, "label_map": mapping}


def _read_tumour(t: _Table | None) -> None:
    """Check ``tumour = { center_mm, diameter_mm, kind }``; the phantom converts it."""
    if t is None:
        return
    t.vector("center_mm")
    t.number("diameter_mm", gt=0, hint="; e.g. diameter_mm = 18")
    t.string("kind", default="lytic", choices=("lytic", "blastic"))
    t.finish()


def _read_boundary(b: _Table | None, errors) -> Boundary:
    if b is None:
        return None
    kind = b.string("kind", default="body", choices=("body", "adiabatic", "convective"))
    temp = b.number("temperature_C", default=None)
    h = b.number("h_W_m2K", default=None, min=0)
    if kind == "convective" and (h is None or temp is None):
        errors.add("boundary", 'kind = "convective" needs h_W_m2K and temperature_C')
    faces = []
    for fname in FACE_NAMES:
        ft = b.table(fname)
        if ft is None:
            faces.append(None)
            continue
        fk = ft.string("kind", choices=("body", "temperature", "adiabatic", "convective"))
        ftemp = ft.number("temperature_C", default=temp)
        fh = ft.number("h_W_m2K", default=h if h is not None else 0.0, min=0)
        ft.finish()
        faces.append((fk, ftemp, fh))
    b.finish()
    try:
        if kind == "adiabatic":
            base = FaceCondition("adiabatic")
        elif kind == "convective":
            base = FaceCondition("convective", temp or 0.0, h or 0.0)
        else:
            base = FaceCondition("body", 37.0 if temp is None else temp)
        out = []
        for f in faces:
            if f is None:
                out.append(base)
            else:
                fk, ftemp, fh = f
                out.append(FaceCondition(fk or "body", 37.0 if ftemp is None else ftemp, fh or 0.0))
        return Boundary(tuple(out))
    except ScenarioError as exc:
        errors.add("boundary", str(exc))
        return None


def _read_duration(t: _Table, errors) -> float | None:
    has_s, has_min = t.has("duration_s"), t.has("duration_min")
    if has_s == has_min:
        errors.add(t.path, "give exactly one of duration_s or duration_min (> 0)")
        t.used.update({"duration_s", "duration_min"})
        return None
    if has_s:
        return t.number("duration_s", gt=0)
    d = t.number("duration_min", gt=0)
    return None if d is None else d * 60.0


def _device_source(kind: str, table: Mapping, path: str, base_dir: Path, grid_shape=None):
    """Build an RF or microwave source from its raw scenario table (its module checks it)."""
    if kind == "microwave":
        from .sources.microwave import from_scenario

        return from_scenario(table, path=path, base_dir=base_dir, grid_shape=grid_shape)
    from .sources.rf import from_scenario

    return from_scenario(table, path=path)


def _read_source(s: _Table, errors, j: int, base_dir: Path) -> SourceSpec | None:
    kind = s.string("kind")
    if kind is None:
        return None
    name = s.string("name", default=f"{kind}{j + 1}")
    if kind in DEVICE_SOURCE_KINDS:
        table = {**s.data, "name": name}
        s.used.update(s.data)
        try:
            _device_source(kind, table, s.path, base_dir)
        except ScenarioError as exc:
            for line in str(exc).splitlines():
                errors.add("", line.strip().removeprefix("- "))
            return None
        return SourceSpec(kind, name, {"table": table, "base_dir": base_dir}, s.path)
    if kind in PLANNED_SOURCE_KINDS:
        errors.add(
            s.path + ".kind",
            f"source kind {kind!r} is not implemented in this version of ablasim; use "
            'kind = "rf", "microwave" or "volumetric" (a given power in a sphere, cylinder, '
            "box, label or map)",
        )
        s.used.update(s.data)
        return None
    if kind not in SOURCE_KINDS:
        errors.add(s.path + ".kind", f"unknown source kind {kind!r}" + suggest(kind, SOURCE_KINDS))
        s.used.update(s.data)
        return None
    p: dict[str, Any] = {}
    shape = s.string("shape", choices=("sphere", "cylinder", "box", "label", "map"))
    p["shape"] = shape
    has_p, has_d = s.has("power_W"), s.has("power_density_W_m3")
    if has_p == has_d:
        errors.add(s.path, "give exactly one of power_W (total) or power_density_W_m3")
        s.used.update({"power_W", "power_density_W_m3"})
    elif has_p:
        p["power"] = s.number("power_W", gt=0, hint="; the power must be positive")
    else:
        p["power_density"] = s.number("power_density_W_m3", gt=0)
    if shape == "sphere":
        c = s.vector("center_mm")
        r = s.number("radius_mm", gt=0)
        p["center"] = None if c is None else tuple(v * 1e-3 for v in c)
        p["radius"] = None if r is None else r * 1e-3
    elif shape == "cylinder":
        tip = s.vector("tip_mm")
        p["tip"] = None if tip is None else tuple(v * 1e-3 for v in tip)
        p["direction"] = s.vector("direction", nonzero=True)
        ln = s.number("active_length_mm", gt=0, hint="; a zero active length heats nothing")
        dia = s.number("diameter_mm", gt=0)
        p["length"] = None if ln is None else ln * 1e-3
        p["diameter"] = None if dia is None else dia * 1e-3
    elif shape == "box":
        c = s.vector("center_mm")
        sz = s.vector("size_mm", positive=True)
        p["center"] = None if c is None else tuple(v * 1e-3 for v in c)
        p["size"] = None if sz is None else tuple(v * 1e-3 for v in sz)
    elif shape == "label":
        p["structure"] = s.string("label")
    elif shape == "map":
        p["map"] = s.string("map")
    s.finish(known=("power_W", "power_density_W_m3"))
    if any(v is None for v in p.values()):
        return None
    return SourceSpec(kind, name, p, s.path)


def _read_safety(s: _Table | None, errors):
    limits = Limits()
    ablation = AblationCriterion()
    tcs: list[ThermocoupleSpec] = []
    if s is None:
        return limits, ablation, ()
    hot = s.number("hot_limit_C", default=45.0)
    cold_raw = s.raw("cold_limit_C", 10.0)
    cold = None if cold_raw is False else s.number("cold_limit_C", default=10.0)
    try:
        if hot is not None:
            limits = Limits(hot, cold)
    except ScenarioError as exc:  # its message already names safety.cold_limit_C
        errors.add("", str(exc))
    ab = s.table("ablation")
    if ab is not None:
        kind = ab.string(
            "criterion", default="cem43", choices=("cem43", "arrhenius", "temperature")
        )
        cem = ab.number("cem43_min", default=240.0, gt=0)
        om = ab.number("omega", default=4.6, gt=0)
        tC = ab.number("temperature_C", default=60.0)
        cold_ab = ab.raw("cold_C", -20.0)
        cold_ab = None if cold_ab is False else ab.number("cold_C", default=-20.0)
        ab.finish()
        if None not in (kind, cem, om, tC):
            ablation = AblationCriterion(kind, cem, om, tC, cold_ab)
    names = set()
    for i, t in enumerate(s.tables("thermocouple")):
        name = t.string("name", default=f"tc{i + 1}")
        if name in names:
            errors.add(t.path + ".name", f"{name!r} is used twice; names must be unique")
        names.add(name)
        pos = t.vector("position_mm")
        cutoff = t.boolean("cutoff", default=False)
        expect = t.string("tissue", default=None)
        t.finish()
        if pos is not None:
            tcs.append(
                ThermocoupleSpec(name, tuple(v * 1e-3 for v in pos), bool(cutoff), expect, t.path)
            )
    s.finish()
    return limits, ablation, tuple(tcs)


def _read_damage(d: _Table | None, errors) -> PerfusionShutdown:
    if d is None:
        return PerfusionShutdown()
    om = d.raw("perfusion_shutdown_omega", 4.6)
    om = None if om is False else d.number("perfusion_shutdown_omega", default=4.6, gt=0)
    tC = d.raw("perfusion_shutdown_C", 60.0)
    tC = None if tC is False else d.number("perfusion_shutdown_C", default=60.0, gt=0)
    d.finish()
    return PerfusionShutdown(om, tC)


def _read_output(o: _Table | None, errors) -> dict:
    out = {"pictures": True, "vti": True, "isotherms_C": (45.0, 50.0, 60.0)}
    if o is None:
        return out
    out["pictures"] = o.boolean("pictures", default=True)
    out["vti"] = o.boolean("vti", default=True)
    iso = o.raw("isotherms_C", None)
    if iso is not None:
        if not isinstance(iso, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in iso
        ):
            errors.add("output.isotherms_C", f"must be a list of temperatures, got {iso!r}")
        else:
            out["isotherms_C"] = tuple(float(v) for v in iso)
    o.finish()
    return out


# -- building ---------------------------------------------------------------------------


def _build_anatomy(sc: Scenario, grid: Grid, lib: TissueLibrary, notes: list[str]):
    from .anatomy import make_phantom

    a = sc.anatomy
    if "phantom" in a:
        try:
            return make_phantom(a["phantom"], grid, **a["params"])
        except ScenarioError as exc:
            hint = ""
            if "metre" in str(exc):
                hint = (
                    " (the phantom speaks metres: [anatomy] keys ending in _mm are divided "
                    "by 1000 and lose the suffix)"
                )
            raise ScenarioError(f"anatomy: {exc}{hint}") from None
    from .anatomy.imported import load_label_map

    path = Path(a["labels"])
    if not path.is_absolute():
        path = sc.base_dir / path
    try:
        phantom, more = load_label_map(path, a["label_map"], grid=grid, tissues=lib)
    except ScenarioError as exc:
        raise ScenarioError(f"anatomy.labels: {exc}") from None
    notes.extend(more)
    return phantom


def _build_source(spec: SourceSpec, base_dir: Path, grid: Grid):
    if spec.kind in DEVICE_SOURCE_KINDS:
        return _device_source(
            spec.kind, spec.params["table"], spec.path, spec.params["base_dir"], grid.shape
        )
    p = dict(spec.params)
    shape = p.pop("shape")
    kw = {"power": p.pop("power", None), "power_density": p.pop("power_density", None)}
    if shape == "sphere":
        return VolumetricSource.sphere(p["center"], p["radius"], name=spec.name, **kw)
    if shape == "cylinder":
        return VolumetricSource.cylinder(
            p["tip"], p["direction"], p["length"], p["diameter"], name=spec.name, **kw
        )
    if shape == "box":
        return VolumetricSource.box(p["center"], p["size"], name=spec.name, **kw)
    if shape == "label":
        return VolumetricSource.label(p["structure"], name=spec.name, **kw)
    path = Path(p["map"])
    if not path.is_absolute():
        path = base_dir / path
    return VolumetricSource.map(_read_map(path, grid), name=spec.name, **kw)


def _read_map(path: Path, grid: Grid) -> np.ndarray:
    """A power map from .npy (no pickle) or NIfTI, on the simulation grid's shape."""
    if not path.exists():
        raise ScenarioError(f"map file {str(path)!r} not found; check the path")
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False).astype(float)
        if path.name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            return np.asarray(nib.load(str(path)).dataobj, dtype=float)
    except Exception as exc:  # any reader failure is a bad file, said in one line
        raise ScenarioError(f"cannot read map file {str(path)!r}: {exc}") from None
    raise ScenarioError(f"map file {str(path)!r}: unsupported format; use .npy or .nii / .nii.gz")


def _describe(structure) -> str:
    """``"fat (epidural_fat)"``, or only the tissue when the structure has its name."""
    if structure.name == structure.tissue:
        return structure.tissue
    return f"{structure.tissue} ({structure.name})"


def _source_tip(src) -> tuple[float, float, float] | None:
    """The needle tip of a built source [m], if it has one."""
    tip = getattr(src, "tip", None)
    if tip is None:
        tip = getattr(src, "params", {}).get("tip")
    return None if tip is None else tuple(float(v) for v in tip)


def _check_tip(spec: SourceSpec, tip, model: Model, errors: _Errors) -> bool:
    """A needle tip must lie inside the grid and not in the cord, a nerve or CSF.

    Records the problem under ``<source>.tip_mm`` and returns False if there is one.
    """
    if tip is None:
        return True
    grid = model.grid
    where = [round(v * 1e3, 2) for v in tip]
    if not grid.contains(tip):
        lo = [round(b[0] * 1e3, 1) for b in grid.bounds]
        hi = [round(b[1] * 1e3, 1) for b in grid.bounds]
        errors.add(
            spec.path + ".tip_mm",
            f"{where} mm lies outside the grid ({lo} to {hi} mm); move the tip inside or "
            "enlarge [grid] extent_mm",
        )
        return False
    structure = model.structures[model.labels[grid.world_to_index(tip)]]
    if structure.tissue in FORBIDDEN_PROBE_TISSUES:
        errors.add(
            spec.path + ".tip_mm",
            f"{where} mm lies in {_describe(structure)}: a needle there "
            "would injure the neural structures; move tip_mm",
        )
        return False
    return True
