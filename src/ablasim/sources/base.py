"""The one protocol shared by every heat source.

A heat source is one module of this package holding two classes:

* a :class:`Source`: the plain, immutable description a user writes (geometry, power,
  settings; SI units, keyword-only fields). Its class declares its scenario ``kind``,
  how it reads its ``[[phase.source]]`` table (:meth:`Source.read`, through the shared
  reader :class:`~ablasim.reader.Table`), its ``--help`` text, the assumptions the
  report states, where its needles are, and the kernels it wants compiled ahead.
  ``@register`` puts it in the registry (:mod:`ablasim.sources`), from which the
  scenario, the report, the command line, ``ablasim compile`` and the pictures learn of
  it: nothing else in the package names a kind.
* a :class:`BoundSource`: the source checked against a model (inside the grid, in
  tissue, ...) by :meth:`Source.bind`, owning its precomputed fields. The time loop calls
  its hooks, all declared here with defaults:

  ===================  ===============================================================
  ``material()``       voxels that become another tissue when the phase starts
                       (cement replaces tissue)
  ``deposit(Q, T, t)`` add its power density [W/m^3] at time ``t`` into ``Q``
  ``advance(T, t)``    a :class:`ScaledBoundSource`: the power [W] whose heating is
                       ``power * unit_heating`` (an RF probe between potential solves)
  ``held(t)``          voxels held at a temperature at time ``t`` (a probe wall)
  ``state()``          its own state for a checkpoint, arrays included
  ``restore(state)``   continue from a checkpoint
  ``telemetry()``      numbers for each sample of the time series
  ``timing()``         where its own time went, for the report
  ``events()``         what it did that changed the treatment (a generator pause)
  ``section()``        a section of the report of its own (the cement's), merged over
                       the sources of its class by ``merge_sections``
  ===================  ===============================================================

``t`` is always the time since the start of the source's phase [s]. A source whose
heating depends on neither time nor temperature sets ``static = True`` and is deposited
once per phase. A source with ``lasting = True`` keeps acting after its phase, for the
rest of the run, and no cut-off switches it off (cement goes on curing, whatever the
operator does); its ``t`` keeps counting from its own phase's start.

Validation happens once, in the description's ``__post_init__``, from the rules declared
on its fields with :func:`param` (scenario key, unit, range, choices) plus the source's
own cross-field checks; a problem names the scenario key and the value in the file's
unit. :meth:`Source.read` only parses types, so a scenario's messages carry the key path
(``phase[0].source[0].power_W: must be > 0, got -5``).
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import ScenarioError, suggest
from ..reader import MISSING, Table, raise_problems

if TYPE_CHECKING:
    from ..model import Model

__all__ = [
    "FORBIDDEN_PROBE_TISSUES",
    "BoundSource",
    "HeldTemperature",
    "MaterialChange",
    "Needle",
    "Param",
    "ScaledBoundSource",
    "Source",
    "check_params",
    "more_probes_problems",
    "needle_problems",
    "param",
    "read_more_probes",
]

#: Tissues a needle or electrode must never sit in: the neural structures and the CSF
#: around them (checked for every needle tip, and for RF electrodes over their volume).
FORBIDDEN_PROBE_TISSUES = ("spinal_cord", "nerve", "csf")


# -- what bound sources hand to the time loop ---------------------------------------------
@dataclass(frozen=True)
class HeldTemperature:
    """Voxels held at a prescribed temperature (e.g. a probe wall).

    Attributes
    ----------
    index : ndarray of int64
        Flat indices into the interior grid (C order).
    temperature_C : ndarray of float64
        The temperature each of those voxels is held at [°C].
    """

    index: np.ndarray
    temperature_C: np.ndarray


@dataclass(frozen=True)
class MaterialChange:
    """Voxels that become another material when the source's phase starts.

    From then on, for the rest of the run, they are a structure ``structure`` made of
    library tissue ``tissue`` (its properties, its perfusion and damage model), starting
    at ``temperature_C`` (None: they keep their temperature).

    Attributes
    ----------
    index : ndarray of int64
        Flat indices into the interior grid (C order).
    tissue : str
        A tissue of the model's library, e.g. ``"pmma_cement"``.
    structure : str
        The name the new structure has in the model and the report, e.g. ``"cement"``.
    temperature_C : float or None
        Their temperature when the phase starts [°C].
    """

    index: np.ndarray
    tissue: str
    structure: str
    temperature_C: float | None = None


@dataclass(frozen=True)
class Needle:
    """A straight needle: distal ``tip`` [m], unit ``direction`` (skin to tip),
    ``diameter`` [m], ``active_length`` [m] (the part that heats, from the tip back along
    ``direction``; None: the tip only). Used to check that no tip sits in a nerve, to
    warn when the active part crosses one, and to draw probes."""

    tip: tuple[float, float, float]
    direction: tuple[float, float, float] | None = None
    diameter: float | None = None
    active_length: float | None = None


def read_more_probes(table: Table) -> tuple:
    """The ``more_probes = [{ tip_mm, direction }, ...]`` of a source's table: further
    needles of the same make, as (tip [m], direction) pairs; problems recorded."""
    probes = []
    for pr in table.tables("more_probes"):
        tip = pr.vector("tip_mm", scale=1e-3)
        d = pr.vector("direction", nonzero=True)
        pr.finish()
        if tip is not None and d is not None:
            probes.append((tip, d))
    return tuple(probes)


def more_probes_problems(more_probes) -> tuple[tuple, list[tuple[str, str]]]:
    """``more_probes`` as (tip, unit direction) tuples of floats, and a problem for each
    entry that is not a pair of three finite numbers with a direction not all zero."""
    probes, out = [], []
    for i, pr in enumerate(more_probes):
        try:
            tip, d = (np.asarray(v, dtype=float) for v in pr)
            ok = tip.shape == d.shape == (3,) and bool(np.all(np.isfinite([*tip, *d])) and d.any())
        except (TypeError, ValueError):
            ok = False
        if not ok:
            out.append(
                (f"more_probes[{i}]", "must be a pair (tip, direction) of three finite numbers "
                 f"each, the direction not all zero; got {pr!r}")
            )  # fmt: skip
            continue
        probes.append((tuple(map(float, tip)), tuple(map(float, d / np.linalg.norm(d)))))
    return tuple(probes), out


def needle_problems(needles, model: Model) -> list[tuple[str, str]]:
    """Needle tips outside the grid, or in the cord, a nerve or CSF: ``(key, message)``
    problems, the first needle's under ``tip_mm``, further ones under
    ``more_probes[i].tip_mm``."""
    grid = model.grid
    out = []
    for n, needle in enumerate(needles):
        key = "tip_mm" if n == 0 else f"more_probes[{n - 1}].tip_mm"
        where = [round(v * 1e3, 2) for v in needle.tip]
        if not grid.contains(needle.tip):
            out.append(
                (key, f"{where} mm lies outside the grid ({grid.bounds_text()}); move the "
                 "tip inside or enlarge [grid] extent_mm")
            )  # fmt: skip
            continue
        structure = model.structures[model.labels[grid.world_to_index(needle.tip)]]
        if structure.tissue in FORBIDDEN_PROBE_TISSUES:
            what = structure.tissue
            if structure.name != structure.tissue:
                what += f" ({structure.name})"
            out.append(
                (key, f"{where} mm lies in {what}: a needle there would injure the neural "
                 "structures; move tip_mm")
            )  # fmt: skip
    return out


class BoundSource:
    """A source checked against a model; the hooks the time loop calls.

    Subclasses override what applies; the defaults describe a source that does nothing.
    Set ``name`` (the description's) in ``__init__``.
    """

    name: str = "source"
    #: The heating depends on neither time nor temperature: deposited once per phase.
    static: bool = False
    #: A :class:`ScaledBoundSource` (heating = ``advance(T, t) * unit_heating``).
    scaled: bool = False
    #: Keeps acting (heating, held voxels, telemetry) in the phases after its own, and
    #: is never switched off by a cut-off: a process that, once started, runs on.
    lasting: bool = False

    def material(self) -> MaterialChange | None:
        """Voxels that become another material when the phase starts, or None."""
        return None

    def deposit(self, Q: np.ndarray, T: np.ndarray, t: float) -> float:
        """Add the power density [W/m^3] at time ``t`` into ``Q`` (interior shape).

        ``T`` is the current temperature [°C] (interior view). Returns the power
        deposited in tissue [W] (negative for a source that draws heat).
        """
        return 0.0

    def held(self, t: float) -> HeldTemperature | None:
        """Voxels held at a temperature at time ``t``, or None.

        The loop asks every step; returning the same object as last time tells it that
        nothing changed (no re-indexing).
        """
        return None

    def running(self, t: float) -> bool:
        """Whether it does something at ``t`` that a thermocouple cut-off could stop (a
        cryoprobe that is "off" does not). Default: yes."""
        return True

    def state(self) -> dict[str, Any]:
        """Its own state for a checkpoint: JSON-able values or numpy arrays."""
        return {}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from what :meth:`state` returned (arrays come back as arrays)."""
        if state:
            raise ScenarioError(
                f"source {self.name!r} cannot restore checkpoint state {sorted(state)}"
            )

    def telemetry(self) -> dict[str, float]:
        """Numbers logged with every sample, written as ``<name>_<key>`` columns."""
        return {}

    def timing(self) -> dict[str, Any] | None:
        """Where its own time went, e.g. ``{"what": "potential solves", "count": 81,
        "seconds": 12.3}``; None when it has nothing to say."""
        return None

    def events(self) -> list[dict[str, Any]]:
        """What it did on its own that changed the treatment, in time order: one dict
        per event, ``{"time_s": t, "kind": "generator_pause", "source": name,
        "detail": "a sentence"}`` (more keys allowed), ``t`` since the phase start [s]
        as every hook's. Kept in :meth:`state`, so a resumed run reports the same."""
        return []

    def section(self) -> tuple[str, dict[str, Any]] | None:
        """A section of ``report.json`` of its own: ``(name, JSON-able dict)``, e.g.
        ``("cement", {"volume_ml": 4.0, ...})``, or None. Built from what the source
        kept while it ran (so it must be in :meth:`state` for a resumed run)."""
        return None

    @classmethod
    def merge_sections(cls, parts: list[dict[str, Any]]) -> dict[str, Any]:
        """One section from the sections of several bound sources of this class that
        share a name (a run with two cement injections). Default: the only one, or
        ``{"sources": parts}``; override to combine them."""
        return parts[0] if len(parts) == 1 else {"sources": parts}


class ScaledBoundSource(BoundSource, ABC):
    """A bound source whose heating is its power times a map that changes only now and
    then (an RF probe between potential solves). When it is the phase's only changing
    source, the step kernel forms the heating on the fly from ``unit_heating`` and the
    power :meth:`advance` returns, instead of a grid-sized ``Q`` rebuilt every step."""

    scaled = True
    #: The heating per watt [1/m^3], interior shape, finite; read again after every
    #: :meth:`advance`.
    unit_heating: np.ndarray

    @abstractmethod
    def advance(self, T: np.ndarray, t: float) -> float:
        """Step the source to ``t``; its power [W] (>= 0)."""


# -- declared parameters --------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """How a field of a source description is written in a scenario and checked.

    ``key`` is the scenario key (``"tip_mm"``; a dotted key such as
    ``"control.power_W"`` lives in a sub-table), ``scale`` converts the file's unit to SI
    (1e-3 for ``_mm``). ``kind``: ``number``, ``vector`` (three numbers), ``direction``
    (three numbers, not all zero; stored as a unit vector), ``string`` or ``bool``.
    Ranges (``gt``, ``min``, ``max``) are in the file's unit; ``choices`` lists the
    allowed strings, or the allowed numbers (in the file's unit).
    """

    key: str
    kind: str = "number"
    scale: float = 1.0
    gt: float | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    hint: str = ""


def param(key: str, default: Any = MISSING, **kw) -> Any:
    """A dataclass field read from scenario key ``key`` and checked by :class:`Param`."""
    md = {"param": Param(key, **kw)}
    if default is MISSING:
        return dataclasses.field(metadata=md)
    return dataclasses.field(default=default, metadata=md)


def _params(cls) -> list[tuple[str, Param, bool]]:
    """(field name, Param, required) of the declared fields."""
    out = []
    for f in dataclasses.fields(cls):
        p = f.metadata.get("param")
        if p is not None:
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            out.append((f.name, p, required))
    return out


def _is_number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _check_one(p: Param, v) -> tuple[Any, str | None]:
    """The value normalised (SI), or a problem in the file's unit."""
    if p.kind == "bool":
        return (v, None) if isinstance(v, bool) else (v, f"must be true or false, got {v!r}")
    if p.kind == "string":
        if not isinstance(v, str):
            return v, f"must be a string, got {v!r}"
        if p.choices is not None and v not in p.choices:
            return v, f"{v!r} is not one of {list(p.choices)}" + suggest(v, p.choices)
        return v, None
    if p.kind in ("vector", "direction"):
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            arr = None
        if arr is None or arr.shape != (3,) or not np.all(np.isfinite(arr)):
            return v, f"must be three finite numbers, got {v!r}"
        if p.kind == "direction":
            n = float(np.linalg.norm(arr))
            if n == 0:
                return v, "must not be all zeros (it is a direction), e.g. [0, 1, 0]"
            arr = arr / n
        return tuple(float(x) for x in arr), None
    if not _is_number(v) or not math.isfinite(float(v)):
        return v, f"must be a finite number, got {v!r}{p.hint}"
    x = float(v) / p.scale  # in the file's unit
    if p.choices is not None and x not in p.choices:
        return v, f"must be one of {', '.join(f'{c:g}' for c in p.choices)}{p.hint}, got {x:g}"
    for bound, ok, word in (
        (p.gt, lambda b: x > b, ">"),
        (p.min, lambda b: x >= b, ">="),
        (p.max, lambda b: x <= b, "<="),
    ):
        if bound is not None and not ok(bound):
            return v, f"must be {word} {bound:g}, got {x:g}{p.hint}"
    return float(v), None


def _same(a, b) -> bool:
    """A field's value equals its default (numbers, vectors, strings)."""
    try:
        return bool(np.all(np.asarray(a) == np.asarray(b))) and np.shape(a) == np.shape(b)
    except (TypeError, ValueError):
        return a == b


def _in_file_unit(p: Param, v) -> Any:
    """A normalised (SI) field value as the scenario file writes it (6 significant
    digits: what the conversion from the file's unit left)."""
    if p.kind in ("vector", "direction"):
        return [float(f"{x / p.scale:.6g}") for x in v]
    if p.kind == "number" and _is_number(v):
        return float(f"{float(v) / p.scale:.6g}")
    return v


def check_params(obj) -> list[tuple[str, str]]:
    """Check and normalise the declared fields of a frozen dataclass in place.

    Returns ``(key, message)`` problems; a required field left None is one ("is
    required"), an optional one left None is skipped.
    """
    problems = []
    for name, p, required in _params(type(obj)):
        v = getattr(obj, name)
        if v is None:
            if required:
                problems.append((p.key, "is required" + p.hint))
            continue
        value, bad = _check_one(p, v)
        if bad:
            problems.append((p.key, bad))
        else:
            object.__setattr__(obj, name, value)
    return problems


def read_params(cls, table: Table) -> dict[str, Any]:
    """The declared fields' values from a scenario table, types parsed, units converted
    to SI; ranges and choices are left to the description's own check. Absent optional
    keys are left out (the field's default applies); absent required keys are problems.
    """
    kw = {}
    subtables: dict[str, Table | None] = {}
    for name, p, required in _params(cls):
        tab, key = table, p.key
        if "." in p.key:
            sub, key = p.key.split(".", 1)
            if sub not in subtables:
                subtables[sub] = table.table(sub)
            tab = subtables[sub]
            if tab is None:
                continue  # the source says what the missing table must hold
        if not tab.has(key):
            tab.used.add(key)
            if required:
                tab.error(key, "is required" + p.hint)
            continue
        if p.kind == "number":
            v = tab.number(key, scale=p.scale, hint=p.hint)
        elif p.kind in ("vector", "direction"):
            v = tab.vector(key, scale=p.scale, nonzero=p.kind == "direction")
        elif p.kind == "bool":
            v = tab.boolean(key)
        else:
            v = tab.string(key)
        if v is not None:
            kw[name] = v
    for sub in subtables.values():
        if sub is not None:
            sub.finish()
    return kw


# -- the description --------------------------------------------------------------------
class Source(ABC):
    """A heat source as the user describes it (subclass as a frozen, keyword-only
    dataclass and decorate with :func:`ablasim.sources.register`)."""

    #: The scenario's ``kind = "..."``.
    kind: ClassVar[str]
    #: One line for ``ablasim run --help``: what it is.
    summary: ClassVar[str]
    #: The keys it reads, for ``ablasim run --help`` (lines of at most 70 characters).
    keys_help: ClassVar[str]
    #: Keys its ``read`` handles beyond the declared fields.
    extra_keys: ClassVar[tuple[str, ...]] = ()

    name: str

    # -- reading ----------------------------------------------------------------------
    @classmethod
    def read(cls, table: Table, *, name: str) -> Source | None:
        """The source from its ``[[phase.source]]`` table, or None with every problem
        recorded in ``table.errors`` under its key path. ``name`` is the default name."""
        start = len(table.errors)
        kw = read_params(cls, table)
        kw.setdefault("name", name)
        kw.update(cls.read_extra(table))
        table.finish(known=("kind", *cls.extra_keys))
        if len(table.errors) > start:
            return None
        try:
            return cls(**kw)
        except ScenarioError as exc:
            table.add_problems(exc)
            return None

    @classmethod
    def read_extra(cls, table: Table) -> dict[str, Any]:
        """Fields read otherwise than by :func:`param` (files, lists of tables)."""
        return {}

    def check(self) -> None:
        """Validate and normalise the declared fields and :meth:`problems`; raise one
        :class:`ScenarioError` listing every problem. Call from ``__post_init__``."""
        problems = check_params(self)
        if not problems:
            problems = self.problems()
        raise_problems(problems, f"source {self.name!r}")

    def problems(self) -> list[tuple[str, str]]:
        """Cross-field checks, run once the declared fields are valid:
        ``(scenario key, message)`` pairs."""
        return []

    # -- binding ----------------------------------------------------------------------
    @abstractmethod
    def bind(self, model: Model) -> BoundSource:
        """Validate against ``model`` and precompute; raise ScenarioError on bad input."""

    # -- what the rest of the package asks ---------------------------------------------
    def describe(self) -> dict[str, Any]:
        """The plan as the scenario file writes it: ``kind``, ``name``, then every
        declared field (:func:`param`) that is required or not at its default, by its
        scenario key, in the file's unit (``{"kind": "rf", "name": "rf1", "tip_mm":
        [0.0, 4.0, 0.0], "control.target_C": 70.0, ...}``). The report shows it, so a
        plan edited without its description still says what ran."""
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        for f in dataclasses.fields(self):
            p = f.metadata.get("param")
            if p is None or p.key == "name":
                continue
            v = getattr(self, f.name)
            if f.default is not dataclasses.MISSING and _same(v, f.default):
                continue
            if v is None:
                continue
            out[p.key] = _in_file_unit(p, v)
        return out

    def needles(self) -> tuple[Needle, ...]:
        """Its needles (none for a source without a probe)."""
        return ()

    def location(self, model: Model) -> tuple[float, float, float] | None:
        """The point the treatment centres on [m] (slice pictures go through it): the
        first needle's tip by default."""
        n = self.needles()
        return n[0].tip if n else None

    def assumptions(self) -> list[str]:
        """Sentences the report states when this source ran."""
        return []

    @classmethod
    def compile_ahead(cls) -> None:
        """Compile the numba kernels this kind needs (for ``ablasim compile``), as a
        simulation calls them. Default: none beyond the step's."""
        return None
