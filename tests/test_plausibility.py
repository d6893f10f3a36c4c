"""Plausibility warnings: plans that make no anatomical sense but are not errors are
said on the console as soon as the scenario is built and listed in the report's
warnings; a sensible plan gets none."""

from __future__ import annotations

import json
import re

import nibabel as nib
import numpy as np
import pytest

from ablasim.cli import main
from ablasim.scenario import parse_scenario

# 2 mm vertebra (L1): along x = z = 0 the spinal canal runs from y = -31 to -19 mm
# (CSF, cord, cauda equina), the vertebral body from y = -13 mm forward.
VERTEBRA = """
name = "plausibility"
[grid]
spacing_mm = 2
extent_mm = [40, 52, 28]
center_mm = [0, -10, 0]
[anatomy]
phantom = "vertebra"
tumour = {{ center_mm = [0, 2, 0], diameter_mm = 12, kind = "lytic" }}
[[phase]]
name = "heat"
duration_s = 10
[[phase.source]]
kind = "volumetric"
{source}
power_W = 1
[output]
pictures = false
vti = false
"""

NEEDLE = 'shape = "cylinder"\ntip_mm = {tip}\ndirection = {d}\nactive_length_mm = {L}\n'
NEEDLE += "diameter_mm = 1.5"


def warnings_of(source: str) -> list[str]:
    return list(parse_scenario(VERTEBRA.format(source=source)).build().warnings)


def test_a_probe_whose_active_part_crosses_the_canal_is_said_on_the_console_and_in_the_report(
    tmp_path, capsys
):
    """Tip in the vertebral body at y = -8 mm, 20 mm of active part behind it along +y
    (the needle came from behind): it runs through the canal (y -31..-19 mm)."""
    path = tmp_path / "s.toml"
    path.write_text(
        VERTEBRA.format(source=NEEDLE.format(tip="[0, -8, 0]", d="[0, 1, 0]", L=20)),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "-q"]) == 0
    err = capsys.readouterr().err
    said = [ln for ln in err.splitlines() if ln.startswith("ablasim: warning:")]
    assert len(said) == 1, err
    assert "crosses" in said[0]
    assert "spinal_cord" in said[0]
    assert "csf" in said[0]
    assert "phase[0].source[0]" in said[0]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    crossing = [w for w in report["warnings"] if "crosses" in w]
    assert crossing == [said[0].removeprefix("ablasim: warning: ")]
    # the canal's voxels reach from y = -18 mm (10 mm behind the tip) to beyond the end of
    # the active part (20 mm): found to the sampling step, a quarter voxel (0.5 mm)
    a, b = map(float, re.search(r"([\d.]+)-([\d.]+) mm behind the tip", crossing[0]).groups())
    assert 10.0 <= a <= 10.5, crossing
    assert b == 20.0, crossing
    txt = (out / "report.txt").read_text(encoding="utf-8")
    assert "crosses" in txt


def test_a_sensible_plan_gets_no_warning():
    """The same needle, 8 mm of active part ending in the tumour: no warning."""
    assert warnings_of(NEEDLE.format(tip="[0, 2, 0]", d="[0, 1, 0]", L=8)) == []


def test_an_active_part_mostly_off_the_grid_is_said():
    """A tip 4 mm inside the front face, 20 mm of active part behind it, pointing back
    out of the grid: 80 % of it lies outside."""
    w = warnings_of(NEEDLE.format(tip="[0, 10, 0]", d="[0, -1, 0]", L=20))
    assert any("of the active part of its probe lies outside the grid" in s for s in w), w


def test_a_source_far_from_the_tumour_is_said():
    """A 3 mm sphere of heat in the paraspinal muscle, 20 mm from the tumour."""
    w = warnings_of('shape = "sphere"\ncenter_mm = [18, -20, 0]\nradius_mm = 3')
    assert any("heats nothing within 5 mm of the tumour" in s for s in w), w
    # the same sphere at the tumour: nothing to say
    assert warnings_of('shape = "sphere"\ncenter_mm = [0, 2, 0]\nradius_mm = 3') == []


@pytest.mark.parametrize("with_bone", [False, True])
def test_a_tumour_that_touches_no_bone_is_said(tmp_path, with_bone):
    """A label map: a tumour_lytic block in muscle (no bone anywhere), and the same with a
    bone block around it."""
    labels = np.zeros((16, 16, 12), dtype=np.uint8)
    if with_bone:
        labels[3:13, 3:13, 2:10] = 1
    labels[6:10, 6:10, 4:8] = 3
    nib.save(nib.Nifti1Image(labels, np.diag([2.0, 2.0, 2.0, 1.0])), tmp_path / "seg.nii.gz")
    sc = parse_scenario(
        """
[anatomy]
labels = "seg.nii.gz"
[anatomy.label_map]
0 = "muscle"
1 = "cancellous_bone"
3 = { tissue = "tumour_lytic", name = "metastasis" }
[[phase]]
name = "heat"
duration_s = 10
[[phase.source]]
kind = "volumetric"
shape = "label"
label = "metastasis"
power_W = 1
""",
        base_dir=tmp_path,
    )
    w = [s for s in sc.build().warnings if "touches no bone" in s]
    if with_bone:
        assert w == []
    else:
        assert w == [
            "The tumour 'metastasis' (0.51 ml) touches no bone: ablasim's tissues, limits and "
            "checks are made for bone metastases; check the tumour's position (or its label) "
            "against the bone's."
        ]
