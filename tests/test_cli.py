"""The `ablasim` command end to end: the file contract, exit codes, clean failures."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ablasim.cli import example_path, list_examples, main
from ablasim.tables import read_timeseries_csv
from ablasim.vtkio import read_vti

SMALL_VERTEBRA = """
name = "small-vertebra"
description = "coarse vertebra for the tests"
[grid]
spacing_mm = 1.5
extent_mm = [42, 54, 30]
center_mm = [0, -10, 0]
[anatomy]
phantom = "vertebra"
tumour = {{ center_mm = [0, 2, 0], diameter_mm = 16, kind = "lytic" }}
[[phase]]
name = "heat"
duration_s = {duration}
[[phase.source]]
kind = "volumetric"
shape = "sphere"
center_mm = [0, {y}, 0]
radius_mm = 5
power_W = {power}
[[phase]]
name = "cool"
duration_s = 60
[[safety.thermocouple]]
name = "epidural"
position_mm = [0, -17, 0]
cutoff = {cutoff}
"""


def write(tmp_path: Path, text: str, name="s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def small(tmp_path, *, power=1.0, y=2, duration=120, cutoff="false"):
    return write(
        tmp_path,
        SMALL_VERTEBRA.format(power=power, y=y, duration=duration, cutoff=cutoff),
    )


def test_run_writes_the_file_contract(tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", str(small(tmp_path)), "--out", str(out), "--quiet"])
    assert code == 0
    names = {p.name for p in out.iterdir()}
    assert {"report.json", "report.txt", "timeseries.csv", "fields.vti"} <= names
    assert any(n.endswith(".png") for n in names)
    assert ".checkpoint.npz" not in names  # removed once the run completed
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert rep["verdict"] in ("PASS", "FAIL")
    for key in ("nerves", "ablation_zone", "thermocouples", "phases", "grid", "timing"):
        assert key in rep
    cord = rep["nerves"]["spinal_cord"]
    for key in (
        "max_temperature_C",
        "min_temperature_C",
        "time_above_threshold_s",
        "first_crossing_s",
        "fraction_voxels_above",
        "max_cem43_min",
        "max_arrhenius_omega",
        "min_distance_to_ablation_mm",
        "verdict",
    ):
        assert key in cord
    assert set(rep["ablation_zone"]) >= {"volume_ml", "extent_mm", "tumour_coverage_fraction"}
    assert rep["thermocouples"]["epidural"]["cutoff_at_s"] is None
    assert [p["name"] for p in rep["phases"]] == ["heat", "cool"]
    assert rep["phases"][0]["energy_J"] == pytest.approx(120.0, rel=1e-9)
    assert rep["grid"]["spacing_mm"] == 1.5
    assert rep["timing"]["voxel_updates_per_s"] > 0
    txt = (out / "report.txt").read_text(encoding="utf-8")
    assert txt.startswith("NERVE SAFETY: ")
    assert txt.splitlines()[1].startswith("TUMOUR COVERAGE: ")
    assert "spinal_cord" in txt
    assert "Assumptions that matter" in txt
    ts = read_timeseries_csv(out / "timeseries.csv")
    assert {"time_s", "phase", "deposited_power_W", "tc_epidural_C", "spinal_cord_max_C"} <= set(ts)
    assert ts["time_s"][-1] == pytest.approx(180.0)
    meta, fields = read_vti(out / "fields.vti")
    assert tuple(meta["shape"]) == tuple(rep["grid"]["shape"])
    assert {"temperature_C", "max_temperature_C", "cem43_min", "labels"} <= set(fields)


def test_fail_verdict_and_strict_exit_code(tmp_path):
    """A source next to the canal heats the cord above 45 °C: FAIL, exit 1 with --strict."""
    path = small(tmp_path, power=4.0, y=-12, duration=300)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "-q"]) == 0
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert rep["verdict"] == "FAIL"
    failing = [n for n, v in rep["nerves"].items() if v["verdict"] == "FAIL"]
    assert failing
    v = rep["nerves"][failing[0]]
    assert v["max_temperature_C"] > 45
    assert v["first_crossing_s"] is not None
    assert v["time_above_threshold_s"] > 0
    assert main(["run", str(path), "--out", str(tmp_path / "o2"), "-q", "--strict"]) == 1


def test_cutoff_is_reported(tmp_path):
    path = small(tmp_path, power=4.0, y=-12, duration=300, cutoff="true")
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "-q"]) == 0
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    cut = rep["thermocouples"]["epidural"]["cutoff_at_s"]
    assert cut is not None
    assert 0 < cut < 300
    assert rep["phases"][0]["cutoff_at_s"] == cut
    assert rep["phases"][0]["energy_J"] == pytest.approx(4.0 * cut, rel=0.02)
    assert "cut-off at" in (out / "report.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 1\n[grid\n", "line 2"),
        (
            '[grid]\nspacing_m = 1\nextent_mm = 10\n[anatomy]\nphantom = "uniform"\n'
            "[[phase]]\nduration_s = 1\n",
            "spacing_mm",
        ),
    ],
)
def test_bad_input_exits_2_with_one_message_and_no_output(tmp_path, capsys, text, message):
    out = tmp_path / "out"
    code = main(["run", str(write(tmp_path, text)), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ablasim: error:")
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


def test_bad_geometry_leaves_no_partial_output(tmp_path, capsys):
    text = SMALL_VERTEBRA.format(power=1.0, y=2, duration=10, cutoff="false").replace(
        "position_mm = [0, -17, 0]", "position_mm = [0, -170, 0]"
    )
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path, text)), "--out", str(out)]) == 2
    assert "outside the grid" in capsys.readouterr().err
    assert not out.exists()


def test_missing_scenario_file(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml"), "--out", str(tmp_path / "o")]) == 2
    assert "not found" in capsys.readouterr().err


def test_examples_are_listed_and_valid(capsys):
    names = list_examples()
    assert "vertebra-demo" in names
    assert "sphere-validation" in names
    assert main(["examples"]) == 0
    assert "vertebra-demo" in capsys.readouterr().out
    assert main(["examples", "vertebra-demo"]) == 0
    assert "[[phase]]" in capsys.readouterr().out
    assert main(["examples", "vertebra-dem"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_sphere_validation_matches_exact_steady_temperatures(tmp_path):
    """The shipped validation scenario: thermocouples within 2 % of the exact solution
    (docs/physics.md §4a case 4). Grid: 60 mm cube, 1 mm voxels; 3600 s is 7.3 perfusion time
    constants (rho c / W = 491 s), so the transient has decayed to < 0.1 %; the far faces
    are 3.7 decay lengths (1/m = 8.1 mm) away."""
    from analytic import heated_sphere

    out = tmp_path / "out"
    assert main(["run", "--example", "sphere-validation", "--out", str(out), "-q"]) == 0
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    import ablasim as ab

    lib = ab.TissueLibrary.default()
    w = 0.002 * lib.blood.rho_c
    m = math.sqrt(w / 0.5)
    a = 0.005
    q = 0.5 / (4 / 3 * math.pi * a**3)
    for name, r in (("centre", 0.0), ("surface", a), ("two-radii", 2 * a)):
        exact = 37.0 + float(heated_sphere(np.array([r]), q, w, m, a)[0])
        got = rep["thermocouples"][name]["max_temperature_C"]
        assert abs(got - exact) < 0.02 * (exact - 37.0), (name, got, exact)


def test_phantom_command(tmp_path):
    out = tmp_path / "ph"
    code = main(
        [
            "phantom",
            "vertebra",
            "--out",
            str(out),
            "--spacing-mm",
            "2",
            "--tumour-mm",
            "0",
            "2",
            "0",
            "16",
        ]
    )
    assert code == 0
    assert (out / "vertebra.png").stat().st_size > 10_000
    assert (out / "vertebra.nii.gz").exists()


def test_tissues_command(capsys):
    assert main(["tissues"]) == 0
    assert "cortical_bone" in capsys.readouterr().out
    assert main(["tissues", "muscle"]) == 0
    assert "IT'IS" in capsys.readouterr().out
    assert main(["tissues", "musle"]) == 2


def test_tissue_sources_are_a_numbered_list(capsys):
    """`ablasim tissues NAME`: each row cites [n]; each source is written out once below."""
    from ablasim.tissues import PROPERTY_KEYS

    assert main(["tissues", "muscle"]) == 0
    out = capsys.readouterr().out
    assert out.count("Hasgall PA") == 1  # the IT'IS citation, once (it was on 5 rows)
    rows = [ln for ln in out.splitlines() if ln.split()[:1] and ln.split()[0] in PROPERTY_KEYS]
    assert len(rows) == len(PROPERTY_KEYS)
    spreads = [ln for ln in out.splitlines() if ln.split()[:1] == ["range"]]  # under a value
    cited = {int(n) for ln in rows + spreads for n in re.findall(r"\[(\d+)\]", ln)}
    refs = re.findall(r"^ *\[(\d+)\] ", out.split("\nReferences\n", 1)[1], re.M)
    assert sorted(int(n) for n in refs) == list(range(1, len(refs) + 1)) == sorted(cited)
    assert all(len(ln) < 200 for ln in rows)  # a note, not the citation, on each row


def test_help_teaches():
    r = subprocess.run(
        [sys.executable, "-m", "ablasim.cli", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "report.json" in r.stdout
    assert "tip_mm" in r.stdout


def test_example_path_is_a_file():
    assert example_path("vertebra-demo").is_file()


def test_interrupted_run_resumes_to_the_same_report(tmp_path, monkeypatch, capsys, interrupt_after):
    """Ctrl-C mid-run: exit 130, no report, the checkpoint kept; --resume finishes and
    gives the same numbers as an uninterrupted run (the state is restored bit for bit)."""
    text = SMALL_VERTEBRA.format(power=1.0, y=2, duration=120, cutoff="false").replace(
        '[[phase]]\nname = "heat"',
        '[simulation]\ncheckpoint_interval_s = 1e-9\n\n[[phase]]\nname = "heat"',
        1,
    )
    path = write(tmp_path, text)
    full = tmp_path / "full"
    assert main(["run", str(path), "--out", str(full), "-q"]) == 0

    out = tmp_path / "out"
    interrupt_after(40)
    assert main(["run", str(path), "--out", str(out), "-q"]) == 130
    assert "--resume" in capsys.readouterr().err
    assert (out / ".checkpoint.npz").exists()
    assert not (out / "report.json").exists()
    monkeypatch.undo()
    assert main(["run", str(path), "--out", str(out), "-q", "--resume"]) == 0
    a = json.loads((full / "report.json").read_text(encoding="utf-8"))
    b = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert b["timing"]["resumed_from_s"] > 0
    assert a["nerves"] == b["nerves"]
    assert a["ablation_zone"] == b["ablation_zone"]
    assert a["thermocouples"] == b["thermocouples"]
    assert not (out / ".checkpoint.npz").exists()


def test_run_on_a_segmentation_from_a_file(tmp_path):
    """A planner's workflow: a label map exported as NIfTI (here the vertebra phantom at
    1 mm, shifted in scanner space), mapped to tissues, simulated on a 1.5 mm grid: the
    report says it was resampled, and the cord is found by its label."""
    import ablasim as ab
    from ablasim.anatomy import save_label_map

    g0 = ab.Grid.from_extent((0.042, 0.054, 0.030), 0.001, center=(0.0, -0.010, 0.0))
    ph = ab.make_phantom("vertebra", g0, level="T12")
    offset = np.array([0.010, -0.020, 0.100])  # the patient's place in scanner space
    grid = ab.Grid(g0.shape, g0.spacing, tuple(np.asarray(g0.origin) + offset))
    shifted = ab.Phantom(grid, ph.labels, ph.structures, ph.description)
    save_label_map(shifted, tmp_path / "seg.nii.gz")
    mapping = "\n".join(
        f'{i} = {{ tissue = "{s.tissue}", name = "{s.name}" }}' for i, s in enumerate(ph.structures)
    )
    centre = [round(float(v) * 1e3, 3) for v in offset + np.array([0.0, -0.010, 0.0])]
    text = f"""
name = "from-segmentation"
[grid]
spacing_mm = 1.5
extent_mm = [42, 54, 30]
center_mm = {centre}
[anatomy]
labels = "seg.nii.gz"
[anatomy.label_map]
{mapping}
[[phase]]
name = "heat"
duration_s = 60
[[phase.source]]
kind = "volumetric"
shape = "sphere"
center_mm = {centre}
radius_mm = 3
power_W = 0.5
"""
    path = write(tmp_path, text)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "-q"]) == 0
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert "spinal_cord" in rep["nerves"]
    assert any("resampled" in n for n in rep["notes"])
    assert rep["grid"]["spacing_mm"] == 1.5
