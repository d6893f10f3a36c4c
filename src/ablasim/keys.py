"""Every scenario key, listed from the code that reads and checks it (``ablasim keys``).

The listing is not written by hand. The scenario reader
(:func:`ablasim.scenario.parse_scenario`) is run over a few built-in scenarios
(:func:`seed_scenarios`) that together enter every branch of it, with
:func:`ablasim.reader.record_keys` on: each key any getter is asked for is logged with its
type, default, range and choices, exactly as that getter checks it. The tables the
reader accepts whole are listed from what checks them later:

* ``[[phase.source]]``: every registered kind's declared fields (their ``param(...)``: key,
  type, default, range, choices), plus what its ``read_extra`` reads;
* ``[tissues.NAME]`` and ``[blood]``: the library's property keys, each range found by
  asking the library's own value check;
* the phantom parameters under ``[anatomy]``: the keyword parameters of each phantom
  function (``inspect.signature``) with the first line of their docstring entry; a length
  ``[m]`` is written ``NAME_mm`` in a scenario.

``tests/test_keys.py`` checks both ways: every key of the shipped examples and of the
tests' scenarios is listed, and no listed key is refused as unknown.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
from dataclasses import dataclass, field

from .errors import ScenarioError
from .reader import MISSING, KeyUse, record_keys

__all__ = ["Row", "Section", "format_keys", "scenario_keys", "seed_scenarios"]

#: The name a seed scenario gets when it has none: the reader's default for ``name``.
_ORIGIN = "the scenario file's name.toml"


def seed_scenarios() -> list[dict]:
    """Scenarios that together enter every branch of the reader (values need not be
    valid: the reader asks for every key before it reports a problem)."""
    from .solvers import FACE_NAMES
    from .sources import SOURCES

    full = {
        "name": "keys",
        "description": "",
        "grid": {"spacing_mm": 1, "extent_mm": [10, 10, 10], "center_mm": [0, 0, 0]},
        "anatomy": {"phantom": "vertebra", "tumour": {"center_mm": [0, 0, 0]}},
        "tissues": {},
        "blood": {},
        "boundary": {face: {} for face in FACE_NAMES},
        "simulation": {},
        # one phase per registered kind: phase[i] holds a source of kind kinds[i]
        "phase": [
            {"duration_s": 1, "source": [_source_seed(kind, cls)]}
            for kind, cls in sorted(SOURCES.items())
        ],
        "safety": {"ablation": {}, "thermocouple": [{}]},
        "damage": {},
        "output": {},
    }
    # the other branches: a number for extent_mm, shape, a label map, duration_min, and
    # both of each either-or pair (whose rule the reader then states)
    other = {
        "grid": {"extent_mm": 10, "shape": [5, 5, 5]},
        "anatomy": {"phantom": "uniform", "labels": "seg.nii.gz", "label_map": {}},
        "boundary": {"kind": "convective"},
        # phase[i] holds kind kinds[i] here too, bare: the reader names what it requires
        "phase": [
            {"duration_s": 1, "duration_min": 1, "source": [{"kind": kind}]}
            for kind in sorted(SOURCES)
        ],
        "output": {"isotherms_C": "?"},  # a key checked by hand: its message names its type
    }
    labels = {
        "anatomy": {"labels": "seg.nii.gz", "label_map": {}},
        "phase": [{"duration_min": 1}],
    }
    return [full, other, labels]


def _source_seed(kind: str, cls) -> dict:
    """A source table naming each extra key (files, sub-tables, arrays of tables) once, as
    an array of one empty table, so its ``read_extra`` asks for what lies inside."""
    return {"kind": kind, **{key: [{}] for key in cls.extra_keys}}


# -- what is listed -------------------------------------------------------------------------
@dataclass
class Row:
    """One key: ``path`` (the table's key path, ``[]`` for an array element, ``*`` for a
    name the user chooses), its type, unit, default and range as text, a note."""

    path: str
    key: str
    type: str
    unit: str = ""
    default: str = ""
    range: str = ""
    note: str = ""


@dataclass
class Section:
    """A table of the scenario: its header (``[grid]``), rules and keys."""

    header: str
    path: str
    note: str = ""
    rules: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


#: Unit suffixes of key names (the longest match wins).
_UNITS = {
    "_mm": "mm",
    "_s": "s",
    "_min": "min",
    "_ml": "ml",
    "_W": "W",
    "_V": "V",
    "_C": "°C",
    "_ohm": "Ω",
    "_MHz": "MHz",
    "_W_m2K": "W/m²/K",
    "_W_m3": "W/m³",
    "_W_kg": "W/kg",
    "_W_mK": "W/m/K",
    "_kg_m3": "kg/m³",
    "_J_kgK": "J/kg/K",
    "_J_kg": "J/kg",
    "_J_mol": "J/mol",
    "_S_m": "S/m",
    "_per_s": "1/s",
    "_per_K": "1/K",
    "_W_per_K": "W/K",
    "_W_per_K_s": "W/K/s",
}


def unit_of(key: str) -> str:
    """The unit a key's name states (``spacing_mm`` -> ``mm``), or ``""``."""
    best = ""
    for suffix in _UNITS:
        if key.endswith(suffix) and len(suffix) > len(best):
            best = suffix
    return _UNITS.get(best, "")


def _num(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        v = float(v)
        return f"{int(v)}" if v.is_integer() and abs(v) < 1e15 else f"{v:g}"
    if isinstance(v, tuple | list):
        return "[" + ", ".join(_num(x) for x in v) + "]"
    if isinstance(v, str):
        return f'"{v}"'
    return str(v)


def _range(gt=None, lo=None, hi=None, choices=None) -> str:
    parts = []
    if gt is not None:
        parts.append(f"> {_num(gt)}")
    if lo is not None:
        parts.append(f">= {_num(lo)}")
    if hi is not None:
        parts.append(f"<= {_num(hi)}")
    if choices:
        parts.append(" | ".join(_num(c) for c in choices))
    return ", ".join(parts)


_TYPE_WORDS = {
    "number": "number",
    "integer": "whole number",
    "vector": "[x, y, z]",
    "direction": "[x, y, z] direction",
    "string": "string",
    "bool": "true | false",
    "boolean": "true | false",
    "file": "file name",
    "table": "table",
    "tables": "array of tables",
}


# -- from the reader's log -----------------------------------------------------------------
def _normal(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


def _merge(uses: list[KeyUse]) -> Row:
    """One row from every question asked about one key."""
    first = uses[0]
    table, _, key = first.path.rpartition(".")
    kinds = [u.kind for u in uses if u.kind not in ("any", "known")]
    kinds = list(dict.fromkeys(kinds)) or ["any"]
    words = []
    for k in kinds:
        if k == "vector":
            n = next((u.n for u in uses if u.kind == "vector"), 3)
            words.append("[x, y, z]" if n == 3 else f"list of {n} numbers")
        else:
            words.append(_TYPE_WORDS.get(k, "any value"))
    typed = (
        [u for u in uses if u.kind not in ("any", "known")]
        or [u for u in uses if u.kind == "any"]
        or uses
    )
    defaults = [u.default for u in typed]
    if any(d is MISSING for d in defaults):
        default = "required"
    else:
        d = defaults[0]
        default = "" if d is None or d == [] else _num(d)
    u = next((u for u in typed if u.kind in ("number", "integer", "vector", "string")), typed[0])
    rng = _range(u.gt, u.min, u.max, u.choices)
    note = u.hint.lstrip("; ")
    if kinds == ["table"] or kinds == ["tables"]:
        default = "required" if default == "required" else ""
    return Row(_normal(table), key, " | ".join(words), unit_of(key), default, rng, note)


def _record() -> tuple[list[KeyUse], list[str], dict[int, str], set[str]]:
    """Run the reader over the seeds: the log, the problems it stated, which source kind
    each phase holds, and the keys read raw and then as numbers that accept ``false``."""
    from .scenario import parse_scenario
    from .sources import SOURCES

    def problems(seed) -> list[str]:
        try:
            parse_scenario(seed, origin=_ORIGIN)
        except ScenarioError as exc:
            return [line.strip().removeprefix("- ") for line in str(exc).splitlines()]
        return []

    rules: list[str] = []
    with record_keys() as log:
        for seed in seed_scenarios():
            rules.extend(problems(seed))
    unknown = [r for r in rules if "unknown key" in r]
    if unknown:  # a seed names a key the reader does not know: a bug of this module
        raise RuntimeError("ablasim.keys seeds hold unknown keys: " + "; ".join(unknown))
    # a key read raw, then as a number, has a special value: see whether it is false
    raw = {u.path for u in log if u.kind == "any" and "[" not in u.path}
    special = sorted({u.path for u in log if u.kind == "number" and u.path in raw})
    seed = seed_scenarios()[0]
    for path in special:
        *tables, key = path.split(".")
        t = seed
        for name in tables:
            t = t.setdefault(name, {})
        t[key] = False
    refused = "\n".join(problems(seed))
    accepts_false = {p for p in special if f"{p}:" not in refused}
    return list(log), rules, dict(enumerate(sorted(SOURCES))), accepts_false


def _table_rules(rules: list[str]) -> dict[str, list[str]]:
    """Problems stated about a table as a whole (``grid: give exactly one of ...``)."""
    out: dict[str, list[str]] = {}
    for line in rules:
        line = line.strip().removeprefix("- ")
        m = re.match(r"([\w\[\].]+): (give .*|kind = .*|at least one .*)$", line)
        if m:
            out.setdefault(_normal(m.group(1)), []).append(m.group(2))
    return {k: list(dict.fromkeys(v)) for k, v in out.items()}


# -- the tables the reader accepts whole -------------------------------------------------
def _source_rows(kind: str, cls, recorded: list[KeyUse], asked: set[str]) -> list[Row]:
    """A kind's declared fields, then the keys its ``read_extra`` reads (``required``: the
    keys the reader said it requires when the table held only ``kind``)."""
    from .sources.base import Param

    rows = [Row("phase[].source[]", "kind", "string", "", "required", f'"{kind}"')]
    declared = set()
    for f in dataclasses.fields(cls):
        p = f.metadata.get("param")
        if not isinstance(p, Param):
            continue
        declared.add(p.key)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required:
            default = "required"
        elif f.default is None:
            default = ""
        elif p.kind in ("number", "vector"):
            d = f.default
            default = _num(tuple(x / p.scale for x in d) if p.kind == "vector" else d / p.scale)
        else:
            default = _num(f.default)
        rows.append(
            Row(
                "phase[].source[]",
                p.key,
                _TYPE_WORDS[p.kind],
                unit_of(p.key),
                default,
                _range(p.gt, p.min, p.max, p.choices),
                p.hint.lstrip("; "),
            )
        )
    groups: dict[str, list[KeyUse]] = {}
    for u in recorded:
        rel = re.sub(r"^phase\[\d+\]\.source\[\d+\]\.", "", u.path)
        rel_key = _normal(rel)
        if rel_key in declared or rel_key == "kind":
            continue
        if any(rel_key.startswith(d.split(".")[0] + ".") for d in declared if "." in d):
            continue  # inside a sub-table of declared fields (control.*)
        groups.setdefault(rel_key, []).append(u)
    docs = _doc_params(cls)
    for rel_key, uses in groups.items():
        row = _merge(uses)
        row.path, row.key = "phase[].source[]", rel_key
        typ, desc = docs.get(rel_key, ("", ""))
        if row.type == "any value":  # read raw: the class's docstring says what it takes
            row.type = re.sub(r",? *optional$", "", typ) or "value"
            row.default = ""
        if rel_key in cls.extra_keys and not row.note:
            row.note = desc
        if rel_key in asked:
            row.default = "required"
        rows.append(row)
    return rows


def _property_range(check) -> str:
    """The range a value check accepts, found by asking it (-1, 0, 0.5, 2)."""

    def ok(v):
        try:
            check(v)
            return True
        except ScenarioError:
            return False

    if not ok(-1.0):
        if not ok(0.5):
            return ">= 1"
        lo = ">= 0" if ok(0.0) else "> 0"
        return lo + ("" if ok(2.0) else ", <= 1")
    return ""


def _tissue_rows() -> list[Row]:
    from .tissues import PROPERTY_KEYS
    from .tissues.validation import check_property

    rows = [
        Row("tissues.*", "based_on", "string", "", "", "a library tissue",
            "a new tissue: copy that tissue's values, then change the ones given"),
        Row("tissues.*", "description", "string"),
        Row("tissues.*", "nerve", "true | false", "", "", "", "a neural structure to protect"),
    ]  # fmt: skip
    for key in PROPERTY_KEYS:
        rng = _property_range(lambda v, k=key: check_property(f"tissues.x.{k}", k, v))
        rows.append(Row("tissues.*", key, "number", unit_of(key), "the library's", rng))
    return rows


def _blood_rows() -> list[Row]:
    from .tissues import BLOOD_KEYS, TissueLibrary
    from .tissues.validation import check_blood_value

    blood = TissueLibrary.default().blood
    rows = []
    for key in BLOOD_KEYS:
        rng = _property_range(lambda v, k=key: check_blood_value(f"blood.{k}", k, v))
        rows.append(Row("blood", key, "number", unit_of(key), _num(getattr(blood, key)), rng))
    return rows


def _doc_params(obj) -> dict[str, tuple[str, str]]:
    """numpydoc ``Parameters`` entries: name -> (type line, first sentence)."""
    doc = inspect.getdoc(obj) or ""
    m = re.search(r"Parameters\n-+\n(.*?)(?:\n\S[^\n]*\n-+\n|\Z)", doc, re.S)
    out: dict[str, tuple[str, str]] = {}
    if not m:
        return out
    lines = m.group(1).splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith(" ") and " : " in line:
            names, typ = line.split(" : ", 1)
            para = []
            for more in lines[i + 1 :]:
                if not more.startswith(" "):
                    break
                para.append(more.strip())
            text = " ".join(para).replace("``", "")
            first = re.split(r"\. (?=[A-Z])", text, maxsplit=1)[0].rstrip(".")
            for name in names.split(","):
                out[name.strip()] = (typ.strip(), first)
    return out


def _phantom_rows() -> list[Row]:
    """Each phantom's keyword parameters; a length [m] is written NAME_mm."""
    from .anatomy import PHANTOMS

    rows = []
    for pname, fn in PHANTOMS.items():
        docs = _doc_params(fn)
        for name, prm in inspect.signature(fn).parameters.items():
            if prm.kind is not prm.KEYWORD_ONLY or name == "tumour":
                continue
            typ, desc = docs.get(name, ("", ""))
            length = "[m]" in desc
            key = f"{name}_mm" if length else name
            d = prm.default
            if d is inspect.Parameter.empty:
                default = "required"
            elif d is None:
                default = ""
            elif length:
                default = _num(
                    tuple(x * 1e3 for x in d) if isinstance(d, tuple | list) else d * 1e3
                )
            else:
                default = _num(d)
            desc = desc.replace(" [m]", "").replace("[m]", "").replace("None takes", "unset takes")
            desc = re.sub(r" \((table|mm) below\)", "", desc)  # the docstring's own table
            rows.append(
                Row(f"anatomy[phantom={pname}]", key, _phantom_type(typ, length), "", default,
                    "", desc)
            )  # fmt: skip
    return rows


def _phantom_type(typ: str, length: bool) -> str:
    typ = re.sub(r",? *(default .*|optional)$", "", typ).strip()
    words = {"str": "string", "float": "number", "int": "whole number"}
    if length:
        words["float"], words["floats"] = "length", "lengths"
    typ = re.sub(r"\b(str|floats?|int)\b", lambda m: words.get(m.group(1), m.group(1)), typ)
    typ = typ.replace("sequence of string", "list of strings").replace("sequence of", "list of")
    return typ or ("length" if length else "value")


# -- the listing ----------------------------------------------------------------------------
def scenario_keys() -> list[Section]:
    """Every table of a scenario with its keys, from the reader and the checks behind it."""
    from .sources import SOURCES

    log, rules, kinds, accepts_false = _record()
    table_rules = _table_rules(rules)
    by_key: dict[str, list[KeyUse]] = {}
    source_log: dict[str, list[KeyUse]] = {k: [] for k in SOURCES}
    for u in log:
        m = re.match(r"phase\[(\d+)\]\.source\[\d+\]\.", u.path)
        if m:
            source_log[kinds[int(m.group(1))]].append(u)
            continue
        by_key.setdefault(_normal(u.path), []).append(u)
    rows = [_merge(uses) for uses in by_key.values()]
    _types_from_messages(rows, rules)
    for row in rows:
        if f"{row.path}.{row.key}" in accepts_false:
            row.note = (row.note + "; " if row.note else "") + "false switches it off"
    # a section per table the reader opened, in the order it reads them
    sections: dict[str, Section] = {"": Section("(the top level)", "")}
    for row in rows:
        if row.type in ("table", "array of tables"):
            path = f"{row.path}.{row.key}" if row.path else row.key
            if row.type == "array of tables":
                path += "[]"
            sec = sections.setdefault(path, Section(_header(path), path))
            if row.default == "required":
                sec.note = "required"
    for row in rows:
        if row.type in ("table", "array of tables"):
            continue
        sections.setdefault(row.path, Section(_header(row.path), row.path)).rows.append(row)
    for sec in sections.values():
        sec.rules = table_rules.get(sec.path, [])
    # what the reader takes whole, from what checks it later
    sections["anatomy"].rows.extend(_phantom_rows())
    label_map = sections["anatomy.label_map"]
    label_map.note = (
        "with labels: label value = tissue name, or { tissue = NAME, name = STRUCTURE }"
    )
    tissues = sections["tissues"]
    tissues.header, tissues.path = "[tissues.NAME]", "tissues.*"
    tissues.note = "change a library tissue (`ablasim tissues`) or add one; SI units"
    tissues.rows = _tissue_rows()
    sections["blood"].rows = _blood_rows()
    sections["blood"].note = "arterial blood of the perfusion term; SI units"
    for path, sec in sections.items():
        if path.startswith("boundary."):
            sec.note = "one face of the grid; unset keys take [boundary]'s"
    out = []
    for path, sec in sections.items():
        if path != "phase[].source[]":
            out.append(sec)
            continue
        for kind, cls in sorted(SOURCES.items()):
            per_kind = Section(f'[[phase.source]] kind = "{kind}"', f"phase[].source[kind={kind}]")
            per_kind.note = cls.summary
            i = sorted(SOURCES).index(kind)
            required = {
                m.group(1)
                for line in rules
                if (m := re.match(rf"phase\[{i}\]\.source\[0\]\.([\w.]+): is required", line))
            }
            per_kind.rows = _source_rows(kind, cls, source_log[kind], required)
            for r in per_kind.rows:
                r.path = per_kind.path
            out.append(per_kind)
    out = _merge_siblings(out)
    # keep each table beside its parent (the label map was met in a later seed)
    order = {p.split(".")[0].split("[")[0]: i for i, p in reversed(list(enumerate(sections)))}
    out.sort(key=lambda sec: order.get(sec.path.split(".")[0].split("[")[0], 0))
    return [sec for sec in out if sec.rows or sec.note]


def _merge_siblings(sections: list[Section]) -> list[Section]:
    """Sibling tables with the same keys (the six faces of ``[boundary]``) as one section,
    ``[boundary.NAME]``, whose path lists the names: ``boundary.{x_min,x_max,...}``."""

    def sig(sec):
        return [(r.key, r.type, r.unit, r.default, r.range, r.note) for r in sec.rows]

    out: list[Section] = []
    base: dict[int, tuple[list[str], str]] = {}  # merged section -> (names, its own note)
    for sec in sections:
        parent, _, name = sec.path.rpartition(".")
        twin = next(
            (
                o
                for o in out
                if parent
                and o.path.rpartition(".")[0] == parent
                and sig(o) == sig(sec)
                and "[" not in sec.path
                and o.rows
            ),
            None,
        )
        if twin is None:
            out.append(sec)
            continue
        names, note = base.setdefault(id(twin), ([twin.path.rpartition(".")[2]], twin.note))
        names.append(name)
        twin.path = f"{parent}.{{{','.join(names)}}}"
        twin.header = f"[{parent}.NAME]"
        twin.note = "NAME = " + " | ".join(names) + (f": {note}" if note else "")
        for r in twin.rows:
            r.path = twin.path
    return out


def _types_from_messages(rows: list[Row], rules: list[str]) -> None:
    """A key read raw and checked by hand: its type from what the check says of a
    wrong value in a seed (``output.isotherms_C: must be a list of temperatures, ...``)."""
    for row in rows:
        if row.type != "any value":
            continue
        path = f"{row.path}.{row.key}" if row.path else row.key
        for line in rules:
            m = re.search(re.escape(path) + r": must be (.*?), got", line)
            if m:
                row.type = m.group(1)
                break


def _header(path: str) -> str:
    name = path.replace("[]", "")
    return f"[[{name}]]" if path.endswith("[]") else f"[{name}]"


def format_keys(width: int = 100) -> str:
    """The listing as text (what ``ablasim keys`` prints), lines wrapped at ``width``."""
    lines = [
        "Every key of a scenario file, read from the code that checks it. Units are in the",
        'key names; "required" keys have no default. `ablasim examples` shows them in use.',
    ]
    for sec in scenario_keys():
        lines.append("")
        lines.extend(_wrap(sec.header + (f"  ({sec.note})" if sec.note else ""), width, "    "))
        for rule in sec.rules:
            lines.extend(_wrap(f"  rule: {rule}", width, "        "))
        phantom = None
        for r in sec.rows:
            key = r.key
            if r.path.startswith("anatomy[phantom="):
                p = r.path[len("anatomy[phantom=") : -1]
                if p != phantom:
                    phantom = p
                    lines.append(f'  with phantom = "{p}":')
                key = "  " + r.key
            cells = [r.type]
            if r.unit:
                cells.append(r.unit)
            if r.default:
                cells.append(r.default if r.default == "required" else f"default {r.default}")
            if r.range:
                cells.append(r.range)
            text = f"  {key:<28} " + "; ".join(cells)
            if r.note:
                text += f" — {r.note}"
            lines.extend(_wrap(text, width, " " * 33))
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int, indent: str) -> list[str]:
    if width <= 0 or len(text) <= width:
        return [text]
    return textwrap.wrap(
        text, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )
