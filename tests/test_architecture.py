"""The architecture holds: the import contracts of pyproject.toml (layers, no cycles, private
modules kept in their package, no plotting in the physics) and no private names across
modules.

import-linter checks the contracts; it does not see names, so the private-name rule is
checked here on the syntax tree of every module of the package.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "ablasim"


def test_import_contracts_hold():
    """`lint-imports` with the contracts of pyproject.toml; its report is the message."""
    exe = Path(sys.executable).with_name("lint-imports")
    assert exe.exists(), f"{exe} is missing: install the test extra (pip install -e '.[test]')"
    run = subprocess.run(
        [str(exe), "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_lint_imports_reports_a_cycle(tmp_path):
    """The no-cycles contract type fails on a two-module cycle (so the one above can)."""
    pkg = tmp_path / "cyc"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("from . import a\n")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_package = cyc\n\n"
        "[importlinter:contract:no-cycles]\nname = no cycles\n"
        "type = acyclic_siblings\nancestors = cyc\n"
    )
    exe = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run(
        [str(exe), "--no-cache", "--no-logo"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert run.returncode != 0
    assert ".a -> .b" in run.stdout or ".b -> .a" in run.stdout, run.stdout


def _module_name(path: Path) -> tuple[str, str]:
    """(module, package its relative imports start from) of a file of the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        name = ".".join(parts[:-1])
        return name, name
    name = ".".join(parts)
    return name, name.rpartition(".")[0]


def _is_module(name: str) -> bool:
    """Whether ``name`` (dotted, under ablasim) is a module or package of ours."""
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _offences(path: Path) -> list[str]:
    """Private names of other modules this file imports or reaches through a module."""
    module, package = _module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(ROOT)
    found = []
    modules_bound: dict[str, str] = {}  # local name -> ablasim module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ablasim.") and alias.asname:
                    modules_bound[alias.asname] = alias.name
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            target = ".".join([*base, node.module] if node.module else base)
        else:
            target = node.module or ""
        if not _within(target, "ablasim"):
            continue
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            if _is_module(sub):  # a module imported by name: the contracts' business
                modules_bound[alias.asname or alias.name] = sub
                continue
            if _private(alias.name) and target != module:
                found.append(f"{where}:{node.lineno}: from {target} import {alias.name}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules_bound
            and _private(node.attr)
            and modules_bound[node.value.id] != module
        ):
            found.append(f"{where}:{node.lineno}: {modules_bound[node.value.id]}.{node.attr}")
    return found


def test_no_module_uses_a_private_name_of_another():
    """A ``_name`` is private to its module: ``from ..x import _name`` (or ``x._name``) from
    another module of the package means the name should be public, or live elsewhere."""
    offences = [o for path in sorted(PACKAGE.rglob("*.py")) for o in _offences(path)]
    assert not offences, "private names used across modules:\n" + "\n".join(offences)


def test_the_private_name_check_finds_offences(tmp_path, monkeypatch):
    """The check above can fail: it finds relative, absolute and attribute uses."""
    pkg = tmp_path / "src" / "ablasim"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/__init__.py", "sub/a.py", "b.py"):
        (pkg / name).write_text("")
    (pkg / "sub" / "c.py").write_text(
        "from .a import _hidden, shown\n"
        "from ablasim.b import _other\n"
        "from ablasim import b\n"
        "from . import _from_init\n"
        "b._peek()\n"
        "def _mine(): ...\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", pkg)
    found = _offences(pkg / "sub" / "c.py")
    assert found == [
        "src/ablasim/sub/c.py:1: from ablasim.sub.a import _hidden",
        "src/ablasim/sub/c.py:2: from ablasim.b import _other",
        "src/ablasim/sub/c.py:4: from ablasim.sub import _from_init",
        "src/ablasim/sub/c.py:5: ablasim.b._peek",
    ]
