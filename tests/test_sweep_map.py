"""Sweep pictures: ``plot_sweep_map`` draws a result over two keys with the safe/unsafe
boundary between the runs that pass and those that fail, and ``ablasim sweep`` writes
``sweep_map.png`` when exactly two keys vary (and only then)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np

from ablasim.cli import main
from ablasim.viz.sweep import plot_sweep_map

BASE = """\
name = "tiny"
[grid]
spacing_mm = 3
extent_mm = [30, 30, 30]
[anatomy]
phantom = "slab"
tissues = ["muscle", "nerve"]
interfaces_mm = [6]
[[phase]]
name = "heat"
duration_s = 30
[[phase.source]]
kind = "volumetric"
shape = "sphere"
center_mm = [0, 0, 0]
radius_mm = 4
power_W = 2
[output]
pictures = false
vti = false
"""
POWER = "phase[0].source[0].power_W"
DURATION = "phase[0].duration_s"


def test_the_boundary_lies_between_the_safe_and_the_unsafe_runs():
    # unsafe where power x time > 600 J: on the 3 x 3 grid the boundary is a staircase
    rows = [
        {"p": p, "t": t, "status": "ok", "verdict": "PASS" if p * t <= 600 else "FAIL",
         "max_nerve_temperature_C": 37 + p * t / 100}
        for p in (5, 10, 20) for t in (20, 40, 60)
    ]  # fmt: skip
    rows.append({"p": 99, "t": 99, "status": "error", "verdict": None})  # left out
    ax = plot_sweep_map(rows, "p", "t")
    (boundary,) = [c for c in ax.collections if c.get_gid() == "boundary"]
    verts = np.concatenate([p.vertices for p in boundary.get_paths()])
    assert len(verts) > 2
    # safe: every run at 5 and 10 W, and 20 W x 20 s; unsafe: 20 W x 40 and 60 s. The
    # line runs half-way between the cells that differ: x = 15 between 10 and 20 W (for
    # t >= 30), y = 30 between 20 and 40 s (at 20 W), never into the all-safe corner
    assert verts[:, 0].min() >= 15 - 1e-9
    assert verts[:, 1].min() >= 30 - 1e-9
    assert np.isclose(verts[:, 0], 15).any()
    assert np.isclose(verts[:, 1], 30).any()
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("p", "t")


def test_a_sweep_over_two_keys_draws_its_map(tmp_path):
    (tmp_path / "base.toml").write_text(BASE, encoding="utf-8")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        f'base = "base.toml"\n[sweep]\nmethod = "grid"\n[sweep.vary]\n'
        f'"{POWER}" = [2, 20]\n"{DURATION}" = [20, 40]\n',
        encoding="utf-8",
    )
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "s"), "--workers", "1", "-q"]) == 0
    img = matplotlib.image.imread(tmp_path / "s" / "sweep_map.png")[..., :3]
    assert img.std() > 0.05  # not blank


def test_a_sweep_over_one_key_draws_no_map(tmp_path):
    (tmp_path / "base.toml").write_text(BASE, encoding="utf-8")
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(
        f'base = "base.toml"\n[sweep]\nmethod = "grid"\n[sweep.vary]\n"{POWER}" = [2, 20]\n',
        encoding="utf-8",
    )
    assert main(["sweep", str(sweep), "--out", str(tmp_path / "s"), "--workers", "1", "-q"]) == 0
    assert (tmp_path / "s" / "runs.csv").is_file()
    assert not Path(tmp_path / "s" / "sweep_map.png").exists()
