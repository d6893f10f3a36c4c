"""``ablasim plot RESULT_DIR`` re-draws a finished run's pictures from its folder: the
slices, curves and damage maps equal the run's own, pixel for pixel but for the fields'
float32 storage in fields.vti; a folder lacking a file is refused (exit 2) with the file
named and what makes it.

One ``ablasim run`` of a 40 W RF needle on a 2 mm grid for 25 s (about 3 s).
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from ablasim.cli import main

TINY = """
name = "tiny"
[grid]
spacing_mm = 2
extent_mm = [30, 30, 30]
[anatomy]
phantom = "uniform"
tissue = "muscle"
[[phase]]
name = "heat"
duration_s = 20
[[phase.source]]
kind = "rf"
name = "probe"
tip_mm = [0, 0, 6]
direction = [0, 0, 1]
active_length_mm = 10
diameter_mm = 4
control = { kind = "power", power_W = 40 }
[[phase]]
name = "cool"
duration_s = 5
[[safety.thermocouple]]
name = "near"
position_mm = [4, 0, 0]
cutoff = true
[output]
damage_pictures = true
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("replot")
    (base / "s.toml").write_text(TINY, encoding="utf-8")
    assert main(["run", str(base / "s.toml"), "--out", str(base / "out"), "-q"]) == 0
    return base / "out"


def _pixels(path: Path) -> np.ndarray:
    return matplotlib.image.imread(path)[..., :3]


def _differing(a: Path, b: Path) -> float:
    """Fraction of pixels that differ between two PNGs of the same size."""
    pa, pb = _pixels(a), _pixels(b)
    assert pa.shape == pb.shape
    return float((np.abs(pa - pb).max(axis=-1) > 0).mean())


def test_plot_reproduces_the_runs_pictures(run_dir, tmp_path, capsys):
    again = tmp_path / "again"
    argv = ["plot", str(run_dir), "--out", str(again), "--slices", "--curves", "--damage"]
    assert main(argv) == 0
    printed = capsys.readouterr().out.split()
    names = ("peak_temperature_slices.png", "timeseries.png", "damage_slices.png")
    assert [Path(p).name for p in printed] == list(names)
    # the curves come from timeseries.csv (9 digits) and the damage maps' colours and
    # lines are unchanged by float32: the same pixels
    assert _differing(run_dir / "timeseries.png", again / "timeseries.png") == 0.0
    assert _differing(run_dir / "damage_slices.png", again / "damage_slices.png") == 0.0
    # the slices' fields are float32 in fields.vti: an isotherm's contour moves by
    # ~1e-7 of a voxel, which flips the anti-aliasing of a few edge pixels (15 of
    # 1.5 million measured); a missing outline or a wrong probe plane changes thousands
    assert _differing(run_dir / "peak_temperature_slices.png",
                      again / "peak_temperature_slices.png") < 1e-4  # fmt: skip


def test_plot_without_options_redraws_slices_and_curves_in_place(run_dir, capsys):
    before = (run_dir / "timeseries.png").stat().st_mtime_ns
    assert main(["plot", str(run_dir)]) == 0
    names = [Path(p).name for p in capsys.readouterr().out.split()]
    assert names == ["peak_temperature_slices.png", "timeseries.png"]
    assert (run_dir / "timeseries.png").stat().st_mtime_ns > before


def test_one_plane_with_an_extra_level(run_dir, tmp_path):
    assert main(["plot", str(run_dir), "--out", str(tmp_path), "--slices", "--plane", "z",
                 "--level", "55"]) == 0  # fmt: skip
    img = _pixels(tmp_path / "peak_temperature_z.png")
    assert img.std() > 0.05  # not blank
    assert not (tmp_path / "peak_temperature_slices.png").exists()


def test_a_folder_without_a_run_is_refused(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "report.json" in err
    assert "fields.vti" in err
    assert "timeseries.csv" in err
    assert main(["plot", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_an_animation_needs_the_snapshots(run_dir, capsys):
    assert main(["plot", str(run_dir), "--animation"]) == 2
    err = capsys.readouterr().err
    assert "snapshots.npz" in err
    assert "animation = true" in err


def test_the_run_notes_what_it_drew_with(run_dir):
    notes = json.loads((run_dir / "pictures.json").read_text(encoding="utf-8"))
    assert notes["probe_mm"] is not None
    assert len(notes["probe_mm"]) == 3
    assert notes["isotherms_C"] == [45.0, 50.0, 60.0]


def test_plot_3d_reproduces_the_runs_3d_picture(run_dir, tmp_path):
    assert main(["plot", str(run_dir), "--out", str(tmp_path), "--3d"]) == 0
    # the isosurfaces of the float32 fields move by ~1e-7 of a voxel: the same pixels
    # (0 of 750 000 differ, measured); a wrong camera, probe or level changes thousands
    assert _differing(run_dir / "isotherms_3d.png", tmp_path / "isotherms_3d.png") < 1e-4


def test_plot_3d_of_a_run_without_the_structures_names_what_is_missing(run_dir, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    notes = json.loads((old / "pictures.json").read_text(encoding="utf-8"))
    del notes["structures"]
    (old / "pictures.json").write_text(json.dumps(notes), encoding="utf-8")
    assert main(["plot", str(old), "--3d"]) == 2
