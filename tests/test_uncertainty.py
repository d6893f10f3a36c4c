"""`ablasim uncertainty` on a case with a known answer, and the library's published ranges.

Known answer: the heated sphere and one-voxel nerve of tests/test_envelope.py (3 W for
600 s), with the muscle's perfusion varied over [0.0005, 0.005] /s. More perfusion
carries more heat away, so the nerve fails exactly when the perfusion is below a
threshold p*, which `ablasim envelope` finds by bisection to 1e-7 /s (0.00244 /s).
Perfusion is drawn log-uniformly, so the probability that the nerve fails is
log(p* / low) / log(high / low) = 0.688; the estimate from 60 samples must hold it
within its 95 % Wilson interval (half-width about 0.12 at 60 runs), and every run's
verdict must agree with its own sampled perfusion against p*.
"""

from __future__ import annotations

import csv
import json
import math

import pytest
from test_envelope import SCENARIO

from ablasim.cli import main
from ablasim.errors import ScenarioError
from ablasim.tissues import TissueLibrary
from ablasim.uncertainty import wilson_interval

KEY = "tissues.muscle.perfusion_per_s"
LOW, HIGH = 0.0005, 0.005


def _scenario(tmp_path, power=3.0, duration=600):
    path = tmp_path / "sphere.toml"
    text = SCENARIO.format(perfusion=0.002, duration=duration)
    path.write_text(text.replace("power_W = 1.0", f"power_W = {power}"), encoding="utf-8")
    return path


def _rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_probability_matches_the_threshold_fraction_within_its_interval(tmp_path, capsys):
    path = _scenario(tmp_path)
    rc = main(["envelope", str(path), "--vary", KEY, "--range", str(LOW), str(HIGH),
               "--tol", "1e-7", "--out", str(tmp_path / "env"), "-q"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    env = json.loads((tmp_path / "env" / "envelope.json").read_text())
    assert env["safe_side"] == "above"  # less perfusion, hotter nerve
    p_star = 0.5 * (env["safe_limit"] + env["unsafe_from"])
    expected = math.log(p_star / LOW) / math.log(HIGH / LOW)
    assert 0.6 < expected < 0.8

    out = tmp_path / "unc"
    rc = main(["uncertainty", str(path), "--samples", "60", "--seed", "7",
               "--range", KEY, str(LOW), str(HIGH), "--out", str(out), "-q"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    summary = json.loads((out / "uncertainty.json").read_text())
    nerve = summary["nerves"]["nerve_point"]
    lo, hi = nerve["confidence_interval"]
    assert lo <= expected <= hi, (expected, nerve)
    assert nerve["runs"] == 60
    assert nerve["probability_exceeds_limit"] == nerve["exceedances"] / 60
    assert (lo, hi) == pytest.approx(wilson_interval(nerve["exceedances"], 60))
    assert "Wilson" in summary["confidence_interval"]
    varied = {v["key"]: v for v in summary["varied"]}
    assert varied[KEY]["distribution"] == "log-uniform"
    assert varied[KEY]["source"].startswith("user")
    # the library's published ranges of the tissues used are sampled too (MITA's RF
    # coefficient, no effect on a volumetric source); a property the file overrides is not
    assert "MITA" in varied["tissues.muscle.electrical_conductivity_coeff_per_K"]["source"]
    assert "tissues.muscle.conductivity_coeff_per_K" not in varied

    rows = _rows(out / "runs.csv")
    assert [int(r["run_id"]) for r in rows] == list(range(60))
    for r in rows:
        p = float(r[KEY])
        assert LOW <= p <= HIGH
        assert r["status"] == "ok"
        assert r["verdict"] == ("FAIL" if p < p_star else "PASS"), (p, p_star, r)
        assert r["nerve_point_verdict"] == r["verdict"]

    # the same seed gives the same samples
    again_dir = tmp_path / "again"
    rc = main(["uncertainty", str(path), "--samples", "60", "--seed", "7",
               "--range", KEY, str(LOW), str(HIGH), "--out", str(again_dir), "-q"])  # fmt: skip
    assert rc == 0
    again = _rows(again_dir / "runs.csv")
    assert [r[KEY] for r in again] == [r[KEY] for r in rows]


def test_wilson_interval_published_values():
    """Wilson 1927; e.g. Newcombe 1998 (Stat Med 17:857), method 3: 5 of 10 -> 0.2366 to
    0.7634; 0 of 10 -> upper end z^2 / (n + z^2) = 0.2775."""
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--samples", "0"], "--samples 0 must be at least 1"),
        (["--samples", "2", "--range", KEY, "0.003", "0.001"], "LOW < HIGH"),
        (["--samples", "2", "--range", "tissues.muscle.perfusion_per", "0.001", "0.003"],
         "perfusion_per_s"),
    ],
)  # fmt: skip
def test_bad_uncertainty_input_is_a_clear_error(tmp_path, capsys, args, words):
    path = _scenario(tmp_path, duration=30)
    rc = main(["uncertainty", str(path), *args, "--out", str(tmp_path / "u"), "-q"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert words in err, err


def test_library_ranges_have_sources_and_overrides_drop_them():
    lib = TissueLibrary.default()
    low, high, source = lib.range_of("muscle", "conductivity_coeff_per_K")
    assert (low, high) == (0.0, 0.007)
    assert "MITA" in source
    assert lib.range_of("muscle", "perfusion_per_s") is None  # IT'IS file: mean only
    assert lib.range_of("tumour_blastic", "electrical_conductivity_S_m")[:2] == (0.02, 0.087)
    over = lib.with_overrides({"muscle": {"conductivity_coeff_per_K": 0.001}})
    assert over.range_of("muscle", "conductivity_coeff_per_K") is None


def test_a_range_in_a_library_file_is_checked(tmp_path):
    from importlib import resources

    text = resources.files("ablasim.tissues").joinpath("library.toml").read_text("utf-8")
    bad = text.replace("range = [0.0, 0.007]", "range = [0.003, 0.007]", 1)
    path = tmp_path / "lib.toml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"conductivity_coeff_per_K\.range"):
        TissueLibrary.from_file(path)
    path.write_text(text.replace('range_source = "mita;', 'range_source = "mitaa;', 1))
    with pytest.raises(ScenarioError, match="mitaa"):
        TissueLibrary.from_file(path)


def test_interrupted_uncertainty_exits_130_and_writes_nothing(tmp_path, capsys, interrupt_after):
    path = _scenario(tmp_path, duration=120)
    interrupt_after(5)
    out = tmp_path / "u"
    rc = main(["uncertainty", str(path), "--samples", "3", "--range", KEY, "0.001", "0.003",
               "--out", str(out)])  # fmt: skip
    assert rc == 130
    assert "nothing was written" in capsys.readouterr().err
    assert not out.exists()
