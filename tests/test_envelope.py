"""`ablasim envelope` against an exact answer: the power at which a point near a heated
sphere reaches the nerve limit, from the steady solution of the Pennes equation.

Set-up: an 8 mm sphere heated uniformly (volumetric source, total power P) in uniform
perfused tissue (muscle with perfusion 0.002 /s, k = 0.5 W/m/K, constant in T; no
perfusion shut-down), and a one-voxel nerve (a 0.9 mm "sphere" of nerve tissue given the
same thermal properties, so the medium stays uniform) whose voxel centre is 12 mm from the
sphere's centre. The rise there is linear in P, theta(12 mm) = P x theta_1, with theta_1
the exact steady rise per watt (tests/analytic.py heated_sphere): the nerve reaches
45 °C (8 K over 37 °C) at P* = 8 K / theta_1 = 2.405 W, when the sphere's centre is at
75 °C (below boiling, where the model's vaporisation term would make the rise non-linear).

Tolerance: the bisection's own (the bracket is narrower than --tol, 1 % of the range,
0.03 W) plus the grid's error at 2 mm spacing. The grid error is measured in the same
runs: each run's peak nerve rise against P x theta_1 (+0.7 %: the 2 mm voxels and the
sphere's partial-volume surface; the transient left after 3000 s, e^(-beta t) with
beta = W / (rho c) = 2.0e-3 /s, is 0.2 % of it). A rise 0.7 % high moves the flip 0.7 %
low, so the found limit must lie within tol + |e| P* of P*.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from analytic import heated_sphere

from ablasim.cli import main

POWER = "phase[0].source[0].power_W"
NERVE_R = 0.012  # m, the nerve voxel's centre from the sphere's centre
RADIUS = 0.008  # m
PERFUSION, K = 0.002, 0.5
SCENARIO = """
name = "sphere-and-nerve"
[grid]
spacing_mm = 2.0
extent_mm = [62, 62, 62]         # 31 voxels: one centre at 0, one at 12 mm
[anatomy]
phantom = "sphere"
tissue = "nerve"
background = "muscle"
radius_mm = 0.9                  # the one voxel whose centre is (12, 0, 0) mm
center_mm = [12, 0, 0]
name = "nerve_point"
[tissues.muscle]
perfusion_per_s = {perfusion}
conductivity_W_mK = 0.5
conductivity_coeff_per_K = 0.0
specific_heat_coeff_per_K = 0.0
[tissues.nerve]                  # the muscle's thermal properties: a uniform medium
perfusion_per_s = {perfusion}
conductivity_W_mK = 0.5
conductivity_coeff_per_K = 0.0
specific_heat_coeff_per_K = 0.0
density_kg_m3 = 1090.4
specific_heat_J_kgK = 3421.2
[damage]
perfusion_shutdown_omega = false
perfusion_shutdown_C = false
[[phase]]
name = "heat"
duration_s = {duration}
[[phase.source]]
kind = "volumetric"
shape = "sphere"
center_mm = [0, 0, 0]
radius_mm = 8
power_W = 1.0
"""


def _scenario(tmp_path, *, perfusion=PERFUSION, duration=3000):
    path = tmp_path / "sphere.toml"
    path.write_text(SCENARIO.format(perfusion=perfusion, duration=duration), encoding="utf-8")
    return path


def _theta_per_watt(perfusion=PERFUSION):
    """Exact steady rise [K] at the nerve's centre per watt in the sphere."""
    w = perfusion * 1049.75 * 3617.0  # perfusion x blood rho c (library [blood])
    m = np.sqrt(w / K)
    q = 1.0 / (4.0 / 3.0 * np.pi * RADIUS**3)
    return float(heated_sphere(NERVE_R, q, w, m, RADIUS))


def test_envelope_finds_the_exact_safe_power_within_tol_plus_grid_error(tmp_path, capsys):
    path = _scenario(tmp_path)
    out = tmp_path / "env"
    rc = main(["envelope", str(path), "--vary", POWER, "--range", "1", "4", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    env = json.loads((out / "envelope.json").read_text())
    theta1 = _theta_per_watt()
    p_exact = 8.0 / theta1
    assert p_exact == pytest.approx(2.405, abs=0.001)
    # the grid's error, measured in the runs themselves, up to the flip: there the model is
    # linear in P (the same relative error at every power); at 4 W the sphere's centre
    # reaches 100 °C, where the vaporisation term caps it and the exact solution stops holding
    errs = [
        (row["max_nerve_temperature_C"] - 37.0) / (row["value"] * theta1) - 1.0
        for row in env["tried"]
        if row["value"] <= env["unsafe_from"]
    ]
    grid_err = max(abs(e) for e in errs)
    assert len(errs) >= 6, errs
    assert np.ptp(errs) < 1e-6, errs
    assert grid_err < 0.03, errs  # 2 mm: measured +0.7 %
    assert env["key"] == POWER
    assert env["safe_side"] == "below"
    assert env["tol"] == pytest.approx(0.03)
    assert env["unsafe_from"] - env["safe_limit"] < env["tol"]
    assert env["safe_limit"] < env["unsafe_from"]
    allowed = env["tol"] + grid_err * p_exact
    assert abs(env["safe_limit"] - p_exact) <= allowed, (env["safe_limit"], p_exact, allowed)
    assert abs(env["unsafe_from"] - p_exact) <= allowed, (env["unsafe_from"], p_exact, allowed)
    assert env["runs"] == len(env["tried"]) == 9  # 2 ends + log2(3 / 0.03) -> 7 halvings
    verdicts = {row["value"]: row["verdict"] for row in env["tried"]}
    assert verdicts[env["safe_limit"]] == "PASS"
    assert verdicts[env["unsafe_from"]] == "FAIL"
    assert all((v <= env["safe_limit"]) == (verdicts[v] == "PASS") for v in verdicts)


def test_a_range_that_brackets_no_flip_says_which_verdict_both_ends_give(tmp_path, capsys):
    path = _scenario(tmp_path, duration=600)
    out = tmp_path / "env"
    rc = main(["envelope", str(path), "--vary", POWER, "--range", "0.5", "1",
               "--out", str(out), "-q"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2
    assert "does not bracket a flip" in err
    assert "PASS at both ends" in err
    assert POWER in err
    assert not (out / "envelope.json").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--vary", POWER, "--range", "4", "1"], "LOW < HIGH"),
        (["--vary", POWER, "--range", "1", "4", "--tol", "0"], "--tol"),
        (["--vary", "phase[0].source[0].pwer_W", "--range", "1", "4"], "power_W"),
    ],
)
def test_bad_envelope_input_is_a_clear_error(tmp_path, capsys, args, words):
    path = _scenario(tmp_path, duration=60)
    rc = main(["envelope", str(path), *args, "--out", str(tmp_path / "e"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert words in err, err


def test_smallest_safe_distance_has_its_safe_side_above(tmp_path, capsys):
    """Moving the heated sphere (2 W) along x: its centre at x is 12 mm - x from the
    nerve, so the safe values of x lie below the flip and the smallest safe distance is
    12 mm - safe_limit; exactly, the distance at which the steady rise for 2 W is 8 K."""
    path = _scenario(tmp_path)
    path.write_text(path.read_text().replace("power_W = 1.0", "power_W = 2.0"))
    out = tmp_path / "env"
    key = "phase[0].source[0].center_mm[0]"
    rc = main(["envelope", str(path), "--vary", key, "--range", "-8", "6", "--tol", "0.1",
               "--out", str(out), "-q"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    env = json.loads((out / "envelope.json").read_text())
    assert env["safe_side"] == "below"  # x small: far from the nerve
    w = PERFUSION * 1049.75 * 3617.0
    m, q = np.sqrt(w / K), 2.0 / (4.0 / 3.0 * np.pi * RADIUS**3)
    r = np.linspace(0.007, 0.02, 20001)
    r_star = r[np.argmin(np.abs(heated_sphere(r, q, w, m, RADIUS) - 8.0))]
    d_found = 12.0 - env["safe_limit"]  # the smallest safe distance [mm]
    # tol plus a grid error of up to 3 % in rise as a distance: 0.03 / |d ln theta / dr|
    dlog = m + 1.0 / r_star  # outside the sphere theta ~ e^(-m r) / r
    allowed = env["tol"] + 0.03 / dlog * 1e3 + 0.2  # + the sphere's voxelisation as it moves
    assert abs(d_found - r_star * 1e3) <= allowed, (d_found, r_star * 1e3, allowed)


def test_boundary_curve_along_a_second_key_is_written_and_drawn(tmp_path, capsys):
    path = _scenario(tmp_path)
    out = tmp_path / "curve"
    along = ["--along", "phase[0].duration_s", "200", "3000", "20"]
    rc = main(["envelope", str(path), "--vary", POWER, "--range", "1", "6", "--tol", "0.2",
               *along, "--out", str(out), "-q"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    env = json.loads((out / "envelope.json").read_text())
    assert env["along"] == "phase[0].duration_s"
    curve = {p["along_value"]: p for p in env["curve"]}
    assert set(curve) == {200.0, 3000.0, 20.0}
    # heating longer needs less power to reach the limit; steady at 3000 s
    assert curve[3000.0]["safe_limit"] < curve[200.0]["safe_limit"]
    assert abs(curve[3000.0]["safe_limit"] - 8.0 / _theta_per_watt()) < 0.2 + 0.04
    # 20 s of heating is not enough at 6 W: no flip, said in the note, not an error
    assert curve[20.0]["safe_limit"] is None
    assert "PASS at both ends" in curve[20.0]["note"]
    assert env["runs"] == sum(p["runs"] for p in env["curve"])
    png = out / "envelope.png"
    assert png.is_file()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_help_teaches_the_files_and_the_two_key_form(capsys):
    for cmd, words in (
        ("envelope", ("safe_limit", "unsafe_from", "--along", "no flip to find", "1 %")),
        ("uncertainty", ("probability_exceeds_limit", "Wilson", "runs.csv", "--range")),
    ):
        with pytest.raises(SystemExit) as exc:
            main([cmd, "--help"])
        assert exc.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        for w in words:
            assert w in text, (cmd, w)


def test_interrupted_envelope_exits_130_and_writes_nothing(tmp_path, capsys, interrupt_after):
    path = _scenario(tmp_path, duration=600)
    interrupt_after(5)  # a Ctrl-C in the first run
    out = tmp_path / "env"
    rc = main(["envelope", str(path), "--vary", POWER, "--range", "1", "4", "--out", str(out)])
    assert rc == 130
    assert "nothing was written" in capsys.readouterr().err
    assert not (out / "envelope.json").exists()


def test_tissues_listing_shows_a_published_range(capsys):
    assert main(["tissues", "muscle"]) == 0
    text = capsys.readouterr().out
    assert "range 0 .. 0.007" in text
    assert "MITA" in text
