"""The README's examples run as written and give what it says: the Python example, and
the label-map example (a NIfTI made with nibabel, its scenario, the command)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title: str) -> str:
    """The text of the README section ``## <title>`` (up to the next ``## ``)."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_readme_example_is_short_and_runs():
    (block,) = blocks(section("Python in ten lines"), "python")
    code = [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(code) <= 10  # "under 10 lines" for a student
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    printed = np.array([float(v) for v in re.findall(r"[-\d.]+", out.getvalue())])
    claimed = re.search(r"about \[([\d. ]+)\]", block).group(1).split()
    np.testing.assert_allclose(printed, [float(v) for v in claimed], atol=0.051)


def test_readme_label_map_example_runs_as_written(tmp_path, monkeypatch, capsys):
    """The section's Python block writes seg.nii.gz, its TOML block is seg.toml (as the
    text says), its command runs; the report gives the numbers the text states: both
    verdicts, the cord's peak, the tumour's volume and coverage, the grid of the image."""
    from ablasim.cli import main

    text = section("Your own segmentation (a label map)")
    (make,) = blocks(text, "python")
    (scenario,) = blocks(text, "toml")
    (command,) = blocks(text, "sh")
    assert "as `seg.toml`" in text
    monkeypatch.chdir(tmp_path)
    exec(compile(make, "README.md", "exec"), {})
    Path("seg.toml").write_text(scenario, encoding="utf-8")
    args = shlex.split(command.strip())
    assert args[0] == "ablasim"
    assert main(args[1:]) == 0
    said = capsys.readouterr().out
    out = Path(args[args.index("--out") + 1])
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))

    assert "`NERVE SAFETY: PASS`" in text
    assert "NERVE SAFETY: PASS" in said
    assert "`TUMOUR\nCOVERAGE: COMPLETE`" in text
    assert "TUMOUR COVERAGE: COMPLETE" in said
    peak = float(re.search(r"cord peaks at ([\d.]+) °C", text).group(1))
    assert report["nerves"]["spinal_cord"]["max_temperature_C"] == pytest.approx(peak, abs=0.05)
    coverage, ml = re.search(r"\((\d+) % of the ([\d.]+) ml tumour\)", text).groups()
    assert report["ablation_zone"]["tumour_coverage_fraction"] == float(coverage) / 100
    assert report["ablation_zone"]["tumour_volume_ml"] == pytest.approx(float(ml), abs=0.005)
    assert report["grid"]["shape"] == [30, 30, 20]
    assert report["grid"]["spacing_mm"] == 1.5
    assert "(30 x 30 x 20, 1.5 mm)" in scenario
    assert report["warnings"] == []
