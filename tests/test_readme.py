"""The README's Python example runs as written and prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def test_readme_example_is_short_and_runs():
    (block,) = python_blocks()
    code = [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(code) <= 10  # "under 10 lines" for a student
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    printed = np.array([float(v) for v in re.findall(r"[-\d.]+", out.getvalue())])
    claimed = re.search(r"about \[([\d. ]+)\]", block).group(1).split()
    np.testing.assert_allclose(printed, [float(v) for v in claimed], atol=0.051)
