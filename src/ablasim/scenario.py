"""Scenario files (TOML) -> a validated, typed :class:`Scenario` -> model and protocol.

One validation pass reads the whole file before any work is done. Every problem is
collected (not only the first), and each message names the key path, quotes the bad
value and says how to fix it; unknown keys get the closest known key as a suggestion.
Units are in the key names (``_mm``, ``_s``, ``_min``, ``_W``, ``_C``, ``_ml``); inside
the code everything is SI.

``ablasim keys`` lists every key (made from this reader, run in the recording mode of
:mod:`ablasim.reader`); the shipped examples (``ablasim examples``) show them in use.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from .damage import PerfusionShutdown
from .errors import ScenarioError, suggest
from .grid import Grid
from .model import BYTES_PER_VOXEL, Model
from .protocol import Limits, Phase, Thermocouple
from .reader import MISSING, Errors, Table, add_problems, format_errors
from .solvers import FACE_NAMES, Boundary, FaceCondition
from .sources import Source, read_source_table
from .sources.base import needle_problems
from .tissues import PROPERTY_KEYS, TissueLibrary

__all__ = [
    "AblationCriterion",
    "BuiltScenario",
    "Scenario",
    "ex_vivo_library",
    "load_scenario",
    "parse_scenario",
    "read_scenario_text",
]

# -- the typed scenario -----------------------------------------------------------------


@dataclass(frozen=True)
class AblationCriterion:
    """Which voxels count as ablated (the ablation zone).

    Default: CEM43 >= 240 min, the conventional necrosis threshold (Sapareto & Dewey
    1984; the lesion criterion of k-Wave's ``kWaveDiffusion``; docs/physics.md §2.1), or a
    minimum temperature at or below -20 °C, the lethal isotherm used clinically for
    cryoablation (Papalexis et al. 2023, Curr Oncol 30:6744; docs/physics.md §2.4).
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
class TumourTarget:
    """What a complete treatment of the tumour means (``[safety]`` keys).

    ``coverage`` (``tumour_coverage_target``, a fraction in (0, 1], default 1.0 = 100 %)
    of the target must lie in the ablation zone; the target is the tumour grown by
    ``margin`` [m] (``tumour_margin_mm``, default 0: the tumour alone) in every direction,
    the ring of seemingly healthy tissue that curative ablation also treats (commonly
    5-10 mm in soft-tissue tumours; bone metastases are usually treated for pain and
    local control, where the tumour itself is the target).
    """

    coverage: float = 1.0
    margin: float = 0.0

    def describe(self) -> str:
        margin = "no margin" if self.margin == 0 else f"with a {self.margin * 1e3:g} mm margin"
        return f"{100 * self.coverage:g} % of the tumour {margin}"


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
    phases: tuple[Phase, ...]
    limits: Limits
    shutdown: PerfusionShutdown
    ablation: AblationCriterion
    thermocouples: tuple[Thermocouple, ...]
    output: dict
    base_dir: Path = field(default=Path("."))
    source_text: str = ""
    tumour_target: TumourTarget = field(default=TumourTarget())
    #: ``[simulation] ex_vivo``: no perfusion and no metabolic heat in any tissue.
    ex_vivo: bool = False
    #: ``[simulation] stepping`` and ``super_step_s`` (:func:`ablasim.simulate`).
    stepping: str = "auto"
    super_step_s: float | None = None

    def simulate_options(self) -> dict:
        """The keyword arguments of :func:`ablasim.simulate` that the scenario's
        ``[simulation]``, ``[safety]`` and ``[damage]`` tables set."""
        return {
            "initial_temperature": self.initial_temperature_C,
            "dt": self.dt_s,
            "dt_safety": self.dt_safety,
            "stepping": self.stepping,
            "super_step": self.super_step_s,
            "limits": self.limits,
            "perfusion_shutdown": self.shutdown,
            "sample_interval": self.sample_interval_s,
            "threads": self.threads,
        }

    @property
    def grid(self) -> Grid | None:
        """The simulation grid; None when a label map's own grid is used (no
        ``extent_mm`` or ``shape``: :meth:`build` takes it from the image)."""
        if self.extent is None and self.shape is None:
            return None
        if self.shape is not None:
            origin = np.asarray(self.center) - 0.5 * (np.asarray(self.shape) - 1) * self.spacing
            return Grid(self.shape, self.spacing, tuple(origin))
        return Grid.from_extent(self.extent, self.spacing, center=self.center)

    @property
    def duration_s(self) -> float:
        return sum(p.duration for p in self.phases)

    def build(self) -> BuiltScenario:
        """Make the model, protocol and thermocouples; check geometry against anatomy.

        Raises ScenarioError with every problem found (sources, thermocouples).
        """
        grid = self.grid
        if grid is not None:
            grid.check_memory(BYTES_PER_VOXEL, what=f"scenario {self.name!r}")
        lib = TissueLibrary.default().with_overrides(
            self.tissue_overrides, blood=self.blood_overrides or None
        )
        if self.ex_vivo:
            lib = ex_vivo_library(lib)
        notes: list[str] = []
        phantom = _build_anatomy(self, grid, lib, notes)
        if grid is None:
            phantom.grid.check_memory(BYTES_PER_VOXEL, what=f"scenario {self.name!r}")
        try:
            model = Model.from_phantom(phantom, tissues=lib, boundary=self.boundary)
        except ScenarioError as exc:
            raise ScenarioError(f"anatomy: {exc}") from None
        errors = Errors()
        bound = []
        for i, phase in enumerate(self.phases):
            bound_here = []
            held = []  # (path, name, voxels held at the phase start)
            for j, src in enumerate(phase.sources):
                path = f"phase[{i}].source[{j}]"
                if not _check_needles(src, path, model, errors):
                    continue
                try:
                    # geometry against the grid, fails early; kept for the run
                    b = src.bind(model)
                except ScenarioError as exc:
                    add_problems(errors, path, exc)
                    continue
                bound_here.append(b)
                if (h := b.held(0.0)) is not None:
                    held.append((path, src.name, h.index))
            _check_held_overlap(held, errors)
            bound.append(tuple(bound_here))
        for i, tc in enumerate(self.thermocouples):
            _check_thermocouple(tc, f"safety.thermocouple[{i}]", model, errors)
        if errors:
            raise ScenarioError(format_errors(errors, self.name))
        warnings = _plausibility(self, model, bound)
        return BuiltScenario(
            self, model, self.phases, self.thermocouples, notes, tuple(bound), tuple(warnings)
        )


@dataclass(frozen=True)
class BuiltScenario:
    """A scenario made concrete: model, protocol, thermocouples, notes for the report.

    ``warnings`` are plausibility warnings (plain sentences): a plan that makes no
    anatomical sense but is not an error (:func:`_plausibility`); the report lists them
    under its warnings. ``bound`` holds the sources already bound to the model while
    validating (their fields are costly to compute: a SAR pattern, an electric-potential
    system); pass them to one run with ``simulate(..., bound_sources=built.bound)``. They
    carry the generator's state, so a second run binds afresh (leave ``bound_sources``
    out).
    """

    scenario: Scenario
    model: Model
    phases: tuple[Phase, ...]
    thermocouples: tuple[Thermocouple, ...]
    notes: list[str]
    bound: tuple = ()
    warnings: tuple[str, ...] = ()


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
    return parse_scenario(read_scenario_text(path), base_dir=path.parent, origin=str(path))


def read_scenario_text(path: str | Path) -> str:
    """A scenario file's text; a :class:`ScenarioError` naming the file when it is
    missing or unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(
            f"scenario file {str(path)!r} not found; check the path "
            "(`ablasim examples` lists the shipped ones)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario file {str(path)!r}: {exc}") from None


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
    errors = Errors()
    top = Table(data, "", errors, Path(base_dir))
    name = top.string("name", default=Path(origin).stem) or "scenario"
    description = top.string("description", default="") or ""

    # grid
    spacing = extent = shape = None
    center = (0.0, 0.0, 0.0)
    # a label map brings its own grid: [grid] may be left out, or give only spacing_mm
    a_raw = data.get("anatomy")
    from_image = isinstance(a_raw, Mapping) and "labels" in a_raw and "phantom" not in a_raw
    g = top.table("grid", required=not from_image)
    if g is not None:
        sp = g.number(
            "spacing_mm", default=None if from_image else MISSING, gt=0,
            hint="; e.g. spacing_mm = 0.5",
        )  # fmt: skip
        spacing = None if sp is None else sp * 1e-3
        has_extent, has_shape = g.has("extent_mm"), g.has("shape")
        if (has_extent and has_shape) or not (has_extent or has_shape or from_image):
            errors.add("grid", "give exactly one of extent_mm = [x, y, z] or shape = [nx, ny, nz]")
        if from_image and not (has_extent or has_shape) and g.has("center_mm"):
            errors.add(
                "grid.center_mm",
                "places a grid given by extent_mm or shape; without them the grid is the "
                "label map's own (in its scanner coordinates): remove center_mm",
            )
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
    ex_vivo = False
    stepping, super_step = "auto", None
    if sim is not None:
        init_T = sim.number("initial_temperature_C", default=None)
        dt = sim.number("dt_s", default=None, gt=0)
        dt_safety = sim.number("dt_safety", default=0.95, gt=0, max=1)
        sample_iv = sim.number("sample_interval_s", default=1.0, gt=0)
        ckpt_iv = sim.number("checkpoint_interval_s", default=60.0, gt=0)
        threads = sim.number("threads", default=None, min=1, integer=True)
        ex_vivo = sim.boolean("ex_vivo", default=False)
        stepping = sim.string("stepping", default="auto", choices=("auto", "explicit", "super"))
        super_step = sim.number("super_step_s", default=None, gt=0)
        sim.finish()

    phases = []
    phase_tables = top.tables("phase")
    if not phase_tables:
        errors.add("phase", "at least one [[phase]] with a name and duration_s is required")
    seen = set()
    probes: dict[str, tuple[str, Source]] = {}  # a named source: where first, as what
    for i, pt in enumerate(phase_tables):
        pname = pt.string("name", default=f"phase{i + 1}")
        if pname in seen:
            errors.add(pt.path + ".name", f"{pname!r} is used twice; phase names must be unique")
        seen.add(pname)
        duration = _read_duration(pt, errors)
        sources = tuple(
            s
            for s in (
                read_source_table(st, name=f"{st.data.get('kind', 'source')}{j + 1}")
                for j, st in enumerate(pt.tables("source"))
            )
            if s is not None
        )
        tables = pt.tables("source")
        for st in tables:
            _same_device(st, sources, probes, errors)
        names = [s.name for s in sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        for n in twice:
            errors.add(pt.path + ".source", f"{n!r} names two sources of this phase; give "
                       "each its own name")  # fmt: skip
        pt.finish(known=("duration_s", "duration_min"))
        if duration is not None and not twice:
            phases.append(Phase(pname or f"phase{i + 1}", duration, sources))

    limits, ablation, tcs, tumour_target = _read_safety(top.table("safety"), errors)
    shutdown = _read_damage(top.table("damage"), errors)
    output = _read_output(top.table("output"), errors)
    top.finish()
    if errors:
        raise ScenarioError(format_errors(errors, name))
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
        tumour_target=tumour_target,
        ex_vivo=bool(ex_vivo),
        stepping=stepping or "auto",
        super_step_s=super_step,
    )


def _same_device(st: Table, sources, probes: dict, errors) -> None:
    """A source named explicitly in several phases is one device (the probe of a
    freeze-thaw-freeze): its kind and needles must not change between phases."""
    name = st.data.get("name")
    src = next((s for s in sources if s.name == name), None)
    if not isinstance(name, str) or src is None:
        return
    if name not in probes:
        probes[name] = (st.path, src)
        return
    where, first = probes[name]
    if type(first) is not type(src) or first.needles() != src.needles():
        errors.add(
            st.path + ".name",
            f"{name!r} names the {first.kind} source of {where} with another kind or "
            "geometry (tip_mm, direction, active_length_mm, diameter_mm); a probe keeps its "
            "place between phases: repeat its geometry, or give this one another name",
        )


def ex_vivo_library(library: TissueLibrary) -> TissueLibrary:
    """``library`` with no blood perfusion and no metabolic heat in any tissue: the
    ``[simulation] ex_vivo = true`` of cadaveric, bath and bench studies (dead tissue has
    neither). Every other property is unchanged."""
    off = {"perfusion_per_s": 0.0, "metabolic_W_m3": 0.0, "heat_generation_W_kg": 0.0}
    return library.with_overrides(dict.fromkeys(library.names, off))


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


def _read_anatomy(a: Table | None, errors) -> dict:
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
    labels = a.file("labels")  # a missing file is named with the other problems
    lm = a.table("label_map", required=True)
    mapping = {}
    if lm is not None:
        mapping = dict(lm.data)
        lm.used.update(mapping)
    a.finish()
    return {"labels": labels, "label_map": mapping}


def _read_tumour(t: Table | None) -> None:
    """Check ``tumour = { center_mm, diameter_mm, kind }``; the phantom converts it."""
    if t is None:
        return
    t.vector("center_mm")
    t.number("diameter_mm", gt=0, hint="; e.g. diameter_mm = 18")
    t.string("kind", default="lytic", choices=("lytic", "blastic"))
    t.finish()


def _read_boundary(b: Table | None, errors) -> Boundary:
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


def _read_duration(t: Table, errors) -> float | None:
    has_s, has_min = t.has("duration_s"), t.has("duration_min")
    if has_s == has_min:
        errors.add(t.path, "give exactly one of duration_s or duration_min (> 0)")
        t.used.update({"duration_s", "duration_min"})
        return None
    if has_s:
        return t.number("duration_s", gt=0)
    d = t.number("duration_min", gt=0)
    return None if d is None else d * 60.0


def _read_safety(s: Table | None, errors):
    limits = Limits()
    ablation = AblationCriterion()
    tcs: list[Thermocouple] = []
    if s is None:
        return limits, ablation, (), TumourTarget()
    hot = s.number("hot_limit_C", default=45.0)
    cover = s.number(
        "tumour_coverage_target", default=1.0, gt=0, max=1,
        hint="; a fraction of the tumour, e.g. tumour_coverage_target = 0.95 for 95 %",
    )  # fmt: skip
    margin = s.number("tumour_margin_mm", default=0.0, min=0, scale=1e-3)
    cold_raw = s.raw("cold_limit_C", 10.0)
    cold = None if cold_raw is False else s.number("cold_limit_C", default=10.0)
    levels = s.raw("iceball_isotherms_C", [0.0, -20.0, -40.0])
    lethal = s.number("lethal_C", default=None, max=0)
    try:
        if hot is not None:
            limits = Limits(hot, cold, tuple(levels) if isinstance(levels, list) else levels)
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
            if lethal is not None and ab.has("cold_C") and cold_ab != lethal:
                errors.add(
                    s.path + ".lethal_C",
                    f"{lethal:g} °C differs from ablation.cold_C = {cold_ab}; give one of them",
                )
            ablation = AblationCriterion(kind, cem, om, tC, cold_ab if lethal is None else lethal)
    elif lethal is not None:
        ablation = AblationCriterion(cold_C=lethal)
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
            tcs.append(Thermocouple(name, tuple(v * 1e-3 for v in pos), bool(cutoff), expect))
    s.finish()
    target = TumourTarget(
        1.0 if cover is None else float(cover), 0.0 if margin is None else float(margin)
    )
    return limits, ablation, tuple(tcs), target


def _read_damage(d: Table | None, errors) -> PerfusionShutdown:
    if d is None:
        return PerfusionShutdown()
    om = d.raw("perfusion_shutdown_omega", 4.6)
    om = None if om is False else d.number("perfusion_shutdown_omega", default=4.6, gt=0)
    tC = d.raw("perfusion_shutdown_C", 60.0)
    tC = None if tC is False else d.number("perfusion_shutdown_C", default=60.0, gt=0)
    fC = d.raw("perfusion_shutdown_frozen_C", -20.0)
    fC = (
        None
        if fC is False
        else d.number("perfusion_shutdown_frozen_C", default=-20.0, max=-1e-9, hint=" (below 0 °C)")
    )
    d.finish()
    try:
        return PerfusionShutdown(om, tC, fC)
    except ScenarioError as exc:
        errors.add("damage", str(exc))
        return PerfusionShutdown()


def _read_output(o: Table | None, errors) -> dict:
    out = {
        "pictures": True, "vti": True, "isotherms_C": (45.0, 50.0, 60.0),
        "damage_pictures": False, "animation": False, "snapshot_interval_s": 10.0,
    }  # fmt: skip
    if o is None:
        return out
    out["pictures"] = o.boolean("pictures", default=True)
    out["vti"] = o.boolean("vti", default=True)
    # the damage maps (CEM43, Omega) and the isotherms' animation cost drawing time:
    # only when asked
    out["damage_pictures"] = o.boolean("damage_pictures", default=False)
    out["animation"] = o.boolean("animation", default=False)
    out["snapshot_interval_s"] = o.number("snapshot_interval_s", default=10.0, gt=0.0)
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


def _frozen(value):
    """A hashable form of phantom parameters (dicts, lists, arrays, numbers)."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(_frozen(v) for v in value)
    return value


@functools.lru_cache(maxsize=8)
def _cached_phantom(name: str, grid: Grid, frozen_params, params_ref):
    # ``frozen_params`` is the key; ``params_ref`` (compare=False wrapper) the values
    from .anatomy import make_phantom

    return make_phantom(name, grid, **params_ref.params)


@dataclass(frozen=True, eq=False)
class _ParamsRef:
    """Carries the phantom parameters into the cache without being part of its key."""

    params: dict

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other) -> bool:
        return isinstance(other, _ParamsRef)


def _build_anatomy(sc: Scenario, grid: Grid, lib: TissueLibrary, notes: list[str]):
    a = sc.anatomy
    if "phantom" in a:
        # A phantom is built once per process for the same parameters and grid (a sweep's
        # worker runs many scenarios on one anatomy); each run gets its own labels array.
        try:
            cached = _cached_phantom(
                a["phantom"], grid, _frozen(a["params"]), _ParamsRef(a["params"])
            )
        except ScenarioError as exc:
            raise ScenarioError(f"anatomy: {exc}") from None
        except TypeError:  # parameters that cannot be hashed: build without the cache
            from .anatomy import make_phantom

            try:
                return make_phantom(a["phantom"], grid, **a["params"])
            except ScenarioError as exc:
                raise ScenarioError(f"anatomy: {exc}") from None
        return dataclasses.replace(cached, labels=cached.labels.copy())
    from .anatomy import load_label_map

    # no extent_mm / shape: the image's own grid, or its bounding box at spacing_mm
    spacing = sc.spacing if grid is None else None
    try:
        phantom, more = load_label_map(
            a["labels"], a["label_map"], grid=grid, spacing=spacing, tissues=lib
        )
    except ScenarioError as exc:
        raise ScenarioError(f"anatomy.labels: {exc}") from None
    notes.extend(more)
    if grid is None:
        g = phantom.grid
        notes.append(
            f"grid: the label map's own, {g.shape[0]} x {g.shape[1]} x {g.shape[2]} voxels of "
            f"{g.spacing * 1e3:.4g} mm from {[round(o * 1e3, 3) for o in g.origin]} mm "
            "(scanner RAS; [grid] gave no extent_mm or shape)"
        )
    return phantom


def _describe(structure) -> str:
    """``"fat (epidural_fat)"``, or only the tissue when the structure has its name."""
    if structure.name == structure.tissue:
        return structure.tissue
    return f"{structure.tissue} ({structure.name})"


def _check_thermocouple(tc: Thermocouple, path: str, model: Model, errors: Errors) -> None:
    """A thermocouple inside the grid, in the tissue or structure it expects."""
    grid = model.grid
    where = [round(v * 1e3, 2) for v in tc.position]
    if not grid.contains(tc.position):
        errors.add(
            path + ".position_mm",
            f"{where} mm lies outside the grid ({grid.bounds_text()}); move it or enlarge "
            "[grid] extent_mm",
        )
        return
    if tc.tissue is None:
        return
    structure = model.structures[model.labels[grid.world_to_index(tc.position)]]
    known = set(model.tissues.names) | set(model.structure_names)
    if tc.tissue not in known:
        errors.add(
            path + ".tissue",
            f"{tc.tissue!r} is neither a tissue nor a structure of the model"
            + suggest(tc.tissue, known),
        )
    elif tc.tissue not in (structure.tissue, structure.name):
        errors.add(
            path + ".position_mm",
            f"{where} mm lies in {_describe(structure)}, but tissue = {tc.tissue!r} was "
            "expected there; move the thermocouple (the report's slice pictures show the "
            "anatomy)",
        )


def _check_held_overlap(held, errors) -> None:
    """Two sources of a phase must not hold the same voxels (two probes in one place)."""
    for n, (path, name, idx) in enumerate(held):
        for other_path, other, other_idx in held[:n]:
            if np.intersect1d(idx, other_idx).size:
                errors.add(
                    path + ".tip_mm",
                    f"{name!r} holds voxels that {other!r} ({other_path}) holds too: two "
                    "probes cannot share a place; move one at least a diameter away",
                )


# -- plausibility: plans that make no anatomical sense, said but not refused -------------

#: Tissues that are bone: a bone metastasis should touch one of them.
BONE_TISSUE_WORDS = ("bone", "marrow")
#: A source whose heating (or probe's active part) comes no nearer the tumour than this
#: [m] is named: its heat would reach the tumour only by conduction over that distance,
#: beyond the few millimetres by which an ablation zone outgrows the heated region.
TUMOUR_REACH = 5e-3


def _plausibility(sc: Scenario, model: Model, bound) -> list[str]:
    """Warnings for a plan that is not an error but makes no anatomical sense: a probe's
    active part crossing the spinal canal or a nerve; a tumour that touches no bone; a
    source whose active part lies mostly off the grid, or that heats nothing within
    :data:`TUMOUR_REACH` of the tumour."""
    out = []
    tumour = model.tumour_mask()
    for i, phase in enumerate(sc.phases):
        for j, (src, b) in enumerate(zip(phase.sources, bound[i], strict=False)):
            who = f"phase[{i}].source[{j}] ({src.name})"
            near = False
            for n, needle in enumerate(src.needles()):
                probe = "its probe" if n == 0 else f"its probe {n + 1}"
                out += _needle_warnings(needle, model, who, probe)
                near = near or (tumour.any() and _needle_near(needle, model, tumour))
            if tumour.any() and not near and b.static:
                near = _heating_near(b, model, tumour)
                if near is False:
                    out.append(
                        f"{who} heats nothing within {TUMOUR_REACH * 1e3:g} mm of the tumour; "
                        "check its position against the tumour's (the slice pictures show both)."
                    )
            elif tumour.any() and not near and src.needles():
                out.append(
                    f"{who}: the active part of its probe comes no nearer than "
                    f"{TUMOUR_REACH * 1e3:g} mm to the tumour; check tip_mm and direction."
                )
    out += _tumour_bone_warnings(model)
    return out


def _active_points(needle, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Points [m] along and around the needle's active part (its axis, and four lines at
    its radius), every quarter voxel, and their distance behind the tip [m]."""
    tip = np.asarray(needle.tip, dtype=float)
    length = needle.active_length or 0.0
    if needle.direction is None or length <= 0:
        return tip[None, :], np.zeros(1)
    u = np.asarray(needle.direction, dtype=float)
    u = u / np.linalg.norm(u)
    s = np.linspace(0.0, length, max(2, math.ceil(4 * length / h) + 1))
    axis = tip - s[:, None] * u
    r = 0.5 * (needle.diameter or 0.0)
    if r <= 0:
        return axis, s
    a = np.cross(u, [1.0, 0.0, 0.0] if abs(u[0]) < 0.9 else [0.0, 1.0, 0.0])
    a /= np.linalg.norm(a)
    b = np.cross(u, a)
    ring = [axis] + [axis + r * v for v in (a, -a, b, -b)]
    return np.concatenate(ring), np.tile(s, len(ring))


def _voxels_of(points: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """(index array (n, 3) of the voxels holding the points inside the grid, mask of
    the points inside)."""
    idx = np.floor((points - np.asarray(grid.origin)) / grid.spacing + 0.5).astype(int)
    inside = np.all((idx >= 0) & (idx < np.asarray(grid.shape)), axis=1)
    return idx[inside], inside


def _needle_warnings(needle, model: Model, who: str, probe: str) -> list[str]:
    from .sources.base import FORBIDDEN_PROBE_TISSUES

    grid = model.grid
    points, behind = _active_points(needle, grid.spacing)
    idx, inside = _voxels_of(points, grid)
    out = []
    if needle.active_length and inside.mean() < 0.5:
        out.append(
            f"{who}: {100 * (1 - inside.mean()):.0f} % of the active part of {probe} lies "
            "outside the grid, where nothing is modelled; move tip_mm or enlarge the grid."
        )
    if not needle.active_length or idx.size == 0:
        return out
    labels = model.labels[idx[:, 0], idx[:, 1], idx[:, 2]]
    bad = np.isin(
        labels,
        [k for k, st in enumerate(model.structures) if st.tissue in FORBIDDEN_PROBE_TISSUES],
    )
    if bad.any():
        hit = sorted({int(v) for v in labels[bad]})
        names = ", ".join(_describe(model.structures[k]) for k in hit)
        s = behind[inside][bad] * 1e3
        out.append(
            f"{who}: the active part of {probe} ({needle.active_length * 1e3:g} mm back from "
            f"the tip) crosses {names}, {s.min():.1f}-{s.max():.1f} mm behind the tip: a "
            "probe there would injure the neural structures; check tip_mm and direction."
        )
    return out


def _near(mask: np.ndarray, tumour: np.ndarray, h: float) -> bool:
    """Whether a voxel of ``mask`` lies within :data:`TUMOUR_REACH` of the tumour
    (computed in the tumour's bounding box grown by that reach)."""
    pad = math.ceil(TUMOUR_REACH / h) + 1
    ijk = np.nonzero(tumour)
    box = tuple(slice(max(0, int(a.min()) - pad), int(a.max()) + pad + 1) for a in ijk)
    if not mask[box].any():
        return False
    dist = ndimage.distance_transform_edt(~tumour[box], sampling=h)
    return bool((mask[box] & (dist <= TUMOUR_REACH + 1e-12)).any())


def _needle_near(needle, model: Model, tumour: np.ndarray) -> bool:
    points, _ = _active_points(needle, model.grid.spacing)
    idx, _ = _voxels_of(points, model.grid)
    mask = np.zeros(model.grid.shape, dtype=bool)
    mask[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return _near(mask, tumour, model.grid.spacing)


def _heating_near(b, model: Model, tumour: np.ndarray) -> bool | None:
    """Whether a static source's heating reaches within :data:`TUMOUR_REACH` of the
    tumour (None: it heats nothing here to judge by)."""
    Q = np.zeros(model.grid.shape)
    T = np.full(model.grid.shape, model.tissues.blood.temperature_C)
    b.deposit(Q, T, 0.0)
    if not (Q > 0).any():
        return None
    return _near(Q > 0, tumour, model.grid.spacing)


def _tumour_bone_warnings(model: Model) -> list[str]:
    """A tumour structure with no bone voxel next to it (26 neighbours)."""
    bone = np.isin(
        model.labels,
        [
            k
            for k, st in enumerate(model.structures)
            if any(w in st.tissue for w in BONE_TISSUE_WORDS)
        ],
    )
    out = []
    for name in model.tumour_structures():
        mask = model.structure_mask(name)
        if not mask.any():
            continue
        grown = ndimage.binary_dilation(mask, structure=np.ones((3, 3, 3), dtype=bool))
        if not (grown & bone).any():
            ml = mask.sum() * model.grid.voxel_volume * 1e6
            out.append(
                f"The tumour '{name}' ({ml:.2f} ml) touches no bone: ablasim's tissues, "
                "limits and checks are made for bone metastases; check the tumour's position "
                "(or its label) against the bone's."
            )
    return out


def _check_needles(src: Source, path: str, model: Model, errors: Errors) -> bool:
    """Every needle tip must lie inside the grid and not in the cord, a nerve or CSF;
    records each problem under ``<path>.tip_mm`` and returns False if there is one."""
    problems = needle_problems(src.needles(), model)
    for key, msg in problems:
        errors.add(f"{path}.{key}", msg)
    return not problems
