"""`ablasim keys` lists exactly the keys the scenario reader accepts.

Both ways: every key of the shipped examples, of the scenarios written in the tests and
of every declared source field is in the listing; and a scenario holding any listed key
is not refused with "unknown key" (nor a phantom with "has no parameter").
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from ablasim.cli import main
from ablasim.errors import ScenarioError
from ablasim.keys import scenario_keys
from ablasim.scenario import parse_scenario
from ablasim.sources import SOURCES

TESTS = Path(__file__).parent
SRC = TESTS.parent / "src" / "ablasim"


def _expand(path: str) -> list[str]:
    """``boundary.{x_min,x_max}`` -> ``boundary.x_min``, ``boundary.x_max``."""
    m = re.search(r"\{([^}]*)\}", path)
    if not m:
        return [path]
    return [path[: m.start()] + name + path[m.end() :] for name in m.group(1).split(",")]


@pytest.fixture(scope="module")
def sections():
    return scenario_keys()


@pytest.fixture(scope="module")
def listed(sections) -> set[str]:
    """Every listed key as a path: ``grid.spacing_mm``, ``phase[].source[kind=rf].tip_mm``,
    ``tissues.*.density_kg_m3``, ``anatomy[phantom=sphere].radius_mm``; and each table."""
    out = set()
    for sec in sections:
        for path in _expand(sec.path):
            out.add(path)
        for row in sec.rows:
            for path in _expand(row.path):
                out.add(f"{path}.{row.key}" if path else row.key)
    return out


# -- the keys in use --------------------------------------------------------------------------
def _flatten(d: dict, prefix: str = "") -> list[str]:
    out = []
    for key, v in d.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(v, dict):
            out.extend(_flatten(v, path))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for x in v:
                out.extend(_flatten(x, path + "[]"))
        else:
            out.append(path)
    return out


def _source_paths(src: dict) -> list[str]:
    base = f"phase[].source[kind={src['kind']}]"
    return [f"{base}.{p}" for p in _flatten(src)]


def scenario_paths(sc: dict) -> list[str]:
    """The key paths of a scenario, in the listing's notation."""
    out = []
    for key, v in sc.items():
        if key == "tissues":
            out += [f"tissues.*.{k}" for props in v.values() for k in props]
        elif key == "anatomy":
            for k, x in v.items():
                if k in ("tumour", "label_map"):
                    out.append(f"anatomy.{k}")
                    if k == "tumour":
                        out += [f"anatomy.tumour.{t}" for t in x]
                elif "phantom" in v and k != "phantom":
                    out.append(f"anatomy[phantom={v['phantom']}].{k}")
                else:
                    out.append(f"anatomy.{k}")
        elif key == "phase":
            for ph in v:
                out += [f"phase[].{k}" for k in ph if k != "source"]
                for src in ph.get("source", []):
                    out += _source_paths(src)
        elif isinstance(v, dict):
            out += _flatten(v, key)
        else:
            out.append(key)
    return out


def _toml_strings(module: Path) -> list[dict]:
    """The TOML scenarios (and source tables) written as string constants in a module."""
    found = []
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "=" in node.value:
            try:
                data = tomllib.loads(node.value)
            except tomllib.TOMLDecodeError:
                continue
            if "grid" in data or data.get("kind") in SOURCES:
                found.append(data)
    return [d for d in found if not _refuses_a_key(d)]


def _refuses_a_key(data: dict) -> bool:
    """A test's deliberately misspelt key (``spacing_m``) is not a key the reader accepts."""
    sc = data if "grid" in data else {**BASE, "phase": [{"duration_s": 1, "source": [data]}]}
    try:
        parse_scenario(sc)
    except ScenarioError as exc:
        return "unknown key" in str(exc)
    return False


def keys_in_use() -> dict[str, list[str]]:
    """Where each key comes from -> its paths: examples, tests, declared source fields."""
    out = {}
    for f in resources.files("ablasim.examples").iterdir():
        if f.name.endswith(".toml"):
            out[f"example {f.name}"] = scenario_paths(tomllib.loads(f.read_text("utf-8")))
    for name in ("test_scenario.py", "test_cli.py"):
        for i, data in enumerate(_toml_strings(TESTS / name)):
            paths = _source_paths(data) if "kind" in data else scenario_paths(data)
            out[f"{name} string {i}"] = paths
    for kind, cls in SOURCES.items():
        out[f"source {kind}"] = [
            f"phase[].source[kind={kind}].{f.metadata['param'].key}"
            for f in dataclasses.fields(cls)
            if "param" in f.metadata
        ] + [f"phase[].source[kind={kind}].{k}" for k in cls.extra_keys]
    return out


def test_every_key_in_use_is_listed(listed):
    in_use = keys_in_use()
    assert sum(k.startswith("example") for k in in_use) >= 4
    assert sum(".py string" in k for k in in_use) >= 5  # the tests' scenarios were found
    missing = {
        path: where for where, paths in in_use.items() for path in paths if path not in listed
    }
    assert not missing, f"keys accepted but not listed by `ablasim keys`: {missing}"


def test_every_key_the_reader_asks_for_by_name_is_listed(sections):
    """A key read in a branch none of the listing's seed scenarios enters would be missed:
    every literal key given to a Table getter in scenario.py and the sources is listed."""
    names = set()
    for sec in sections:
        names.update(re.split(r"[.\[\]{},]+", sec.path))
        names.update(re.split(r"[.\[\]]+", row.key)[-1] for row in sec.rows)
    getters = {"number", "vector", "string", "boolean", "file", "table", "tables", "raw", "has"}
    files = [SRC / "scenario.py", *sorted((SRC / "sources").rglob("*.py"))]
    asked = {}
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in getters
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                asked[node.args[0].value] = f.name
    assert len(asked) > 40
    missing = {k: f for k, f in asked.items() if k not in names}
    assert not missing, f"read by the code but not listed by `ablasim keys`: {missing}"


# -- every listed key is accepted --------------------------------------------------------------
BASE = {
    "grid": {"spacing_mm": 2, "extent_mm": [10, 10, 10]},
    "anatomy": {"phantom": "uniform"},
    "phase": [{"duration_s": 1}],
}

_VALUES = {
    "number": 1.0,
    "whole number": 1,
    "string": "x",
    "true | false": True,
    "file name": "missing.npy",
    "array of tables": [{}],
}


def _value(row):
    if row.type.startswith("["):
        return [1.0, 1.0, 1.0]
    if row.path.startswith("anatomy[phantom="):
        return _phantom_value(row)
    return _VALUES.get(row.type, 1.0)


def _phantom_value(row):
    default = row.default
    if default.startswith("["):
        return [float(v) if v[0] in "-0123456789" else v.strip('"') for v in
                re.findall(r'"[^"]*"|[-\d.]+', default)]  # fmt: skip
    if default.startswith('"'):
        return default.strip('"')
    if default and default != "required":
        return float(default) if "." in default else int(default)
    return 1.0


def _put(d: dict, dotted: str, value) -> str:
    """Put ``value`` at ``a.b[].c`` under ``d``; the concrete path (``a.b[0].c``)."""
    parts = dotted.split(".")
    for i, part in enumerate(parts[:-1]):
        if part.endswith("[]"):
            d = d.setdefault(part[:-2], [{}])[0]
            parts[i] = part[:-2] + "[0]"
        else:
            d = d.setdefault(part, {})
    d[parts[-1]] = value
    return ".".join(parts)


def _scenario_with(path: str, row) -> tuple[dict, str]:
    """BASE plus the listed key; the key path the reader would name in a message."""
    sc = copy.deepcopy(BASE)
    m = re.match(r"phase\[\]\.source\[kind=(\w+)\]\.(.*)", path)
    if m:
        src = {"kind": m.group(1)}
        sc["phase"][0]["source"] = [src]
        return sc, "phase[0].source[0]." + _put(src, m.group(2), _value(row))
    m = re.match(r"anatomy\[phantom=(\w+)\]\.(.*)", path)
    if m:
        sc["anatomy"] = {"phantom": m.group(1), m.group(2): _value(row)}
        return sc, m.group(2)
    path = path.replace("tissues.*.", "tissues.muscle.")
    if path.startswith("phase[]."):
        sc["phase"][0][path[len("phase[].") :]] = _value(row)
        return sc, path.replace("phase[]", "phase[0]")
    return sc, _put(sc, path, _value(row))


def listed_rows():
    for sec in scenario_keys():
        for row in sec.rows:
            for path in _expand(row.path):
                yield (f"{path}.{row.key}" if path else row.key), row


@pytest.mark.parametrize(("path", "row"), list(listed_rows()), ids=lambda v: getattr(v, "key", v))
def test_every_listed_key_is_accepted(path, row):
    sc, concrete = _scenario_with(path, row)
    try:
        parsed = parse_scenario(sc)
        if path.startswith("anatomy[phantom="):  # a phantom checks its parameters itself
            parsed.build()
        return
    except ScenarioError as exc:
        message = str(exc)
    assert f"{concrete}: unknown key" not in message
    assert "has no parameter" not in message


def test_keys_command_and_run_help_point_to_it(capsys):
    assert main(["keys", "--width", "0"]) == 0
    out = capsys.readouterr().out
    for header in (
        "[grid]",
        "[anatomy.label_map]",
        "[tissues.NAME]",
        "[blood]",
        "[boundary]",
        "[boundary.NAME]",
        "[simulation]",
        "[[phase]]",
        '[[phase.source]] kind = "rf"',
        "[safety]",
        "[safety.ablation]",
        "[[safety.thermocouple]]",
        "[damage]",
        "[output]",
    ):
        assert f"\n{header}" in out, header
    # types, units, defaults and ranges as the reader checks them
    assert re.search(r"\n  spacing_mm +number; mm; required; > 0", out)
    assert re.search(r"\n  dt_safety +number; default 0.95; > 0, <= 1", out)
    assert re.search(r"\n  control.max_power_W +number; W; > 0", out)
    assert re.search(r"\n  frequency_MHz +number; MHz; default 2450; 915 \| 2450", out)
    assert re.search(r"\n  perfusion_per_s +number; 1/s; default the library's; >= 0", out)
    assert re.search(r"\n    radius_mm +length; required", out)  # the sphere phantom's
    assert re.search(r"cold_limit_C +number; °C; default 10 — false switches it off", out)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "ablasim keys" in capsys.readouterr().out
