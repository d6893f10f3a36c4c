"""Label-map scenarios from the user's side: the grid is the image's own when [grid] does
not give one, the tumour is found by its tissue whatever the label is called, structures
are named as written, and fields.vti carries the names (with a Slicer colour table)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ablasim.cli import main

SCENARIO = """
name = "seg"
{grid}
[anatomy]
labels = "seg.nii.gz"
[anatomy.label_map]
0 = "muscle"
1 = "cancellous_bone"
3 = "tumour_lytic"
4 = "spinal_cord"
[[phase]]
name = "heat"
duration_s = 60
[[phase.source]]
kind = "volumetric"
shape = "sphere"
center_mm = [0, 4, 0]
radius_mm = 4
power_W = 2
[output]
pictures = false
"""


def make(tmp_path: Path, grid: str = "") -> Path:
    """A 20 x 20 x 12 image of 2 mm voxels centred on the origin (scanner RAS mm): bone
    with a 4 x 4 x 4-voxel tumour (label 3), the cord (label 4) behind it."""
    labels = np.zeros((20, 20, 12), dtype=np.uint8)
    labels[3:17, 9:19, 1:11] = 1
    labels[8:12, 11:15, 4:8] = 3
    labels[8:12, 2:6, :] = 4
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-19.0, -19.0, -11.0]
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "seg.nii.gz")
    path = tmp_path / "seg.toml"
    path.write_text(SCENARIO.format(grid=grid), encoding="utf-8")
    return path


def run(tmp_path: Path, grid: str = "") -> tuple[int, Path]:
    out = tmp_path / "out"
    return main(["run", str(make(tmp_path, grid)), "--out", str(out), "-q"]), out


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_a_label_mapped_to_tumour_lytic_reports_coverage_on_the_images_grid(tmp_path):
    """`3 = "tumour_lytic"`: the tumour (64 voxels of 8 mm³ = 0.512 ml) has a coverage;
    the cord is `spinal_cord` as written; no [grid]: the image's 20 x 20 x 12 of 2 mm."""
    code, out = run(tmp_path)
    assert code == 0
    r = report(out)
    assert r["ablation_zone"]["tumour_volume_ml"] == pytest.approx(0.512, abs=1e-9)
    assert 0 < r["ablation_zone"]["tumour_coverage_fraction"] <= 1
    assert list(r["nerves"]) == ["spinal_cord"]
    assert r["grid"] == {
        "shape": [20, 20, 12],
        "spacing_mm": 2.0,
        "origin_mm": [-19.0, -19.0, -11.0],
    }
    assert any("grid: the label map's own, 20 x 20 x 12 voxels of 2 mm" in n for n in r["notes"])


def test_grid_with_only_spacing_resamples_the_whole_image(tmp_path):
    """`[grid] spacing_mm = 4`: the image's 40 x 40 x 24 mm box at 4 mm (10 x 10 x 6)."""
    code, out = run(tmp_path, "[grid]\nspacing_mm = 4")
    assert code == 0
    r = report(out)
    assert r["grid"]["shape"] == [10, 10, 6]
    assert r["grid"]["spacing_mm"] == 4.0
    assert any("resampled from 2 x 2 x 2 mm to 4 mm isotropic" in n for n in r["notes"])


def test_grid_center_without_extent_is_refused(tmp_path, capsys):
    code, out = run(tmp_path, "[grid]\ncenter_mm = [0, 0, 0]")
    assert code == 2
    assert "grid.center_mm: places a grid given by extent_mm or shape" in capsys.readouterr().err
    assert not out.exists()


def test_fields_vti_carries_the_label_names_and_a_colour_table(tmp_path):
    """Read back with VTK itself: the field data `label_names` names every label value of
    the `labels` field; fields.ctbl lists every structure with its value."""
    vtk = pytest.importorskip("vtk")
    code, out = run(tmp_path)
    assert code == 0
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(out / "fields.vti"))
    reader.Update()
    image = reader.GetOutput()
    names = image.GetFieldData().GetAbstractArray("label_names")
    names = [names.GetValue(i) for i in range(names.GetNumberOfValues())]
    assert names == ["muscle", "cancellous_bone", "tumour_lytic", "spinal_cord"]
    lo, hi = image.GetPointData().GetArray("labels").GetRange()
    assert (lo, hi) == (0, len(names) - 1)
    rows = [
        ln.split()
        for ln in (out / "fields.ctbl").read_text(encoding="utf-8").splitlines()
        if not ln.startswith("#")
    ]
    assert [(int(r[0]), r[1]) for r in rows] == list(enumerate(names))
    assert all(len(r) == 6 for r in rows)  # index name R G B A


def test_two_labels_of_one_tissue_keep_their_label_in_the_name(tmp_path):
    from ablasim.anatomy import load_label_map

    labels = np.zeros((6, 6, 6), dtype=np.uint8)
    labels[1, :, :] = 5
    labels[4, :, :] = 6
    nib.save(nib.Nifti1Image(labels, np.eye(4)), tmp_path / "n.nii.gz")
    mapping = {0: "muscle", 5: "nerve", 6: "nerve"}
    phantom, _ = load_label_map(tmp_path / "n.nii.gz", mapping)
    assert phantom.structure_names() == ("muscle", "nerve_5", "nerve_6")
    named = {**mapping, 6: {"tissue": "nerve", "name": "nerve"}}
    phantom, _ = load_label_map(tmp_path / "n.nii.gz", named)
    assert phantom.structure_names() == ("muscle", "nerve_5", "nerve")
