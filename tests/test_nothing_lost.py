"""Nothing lost, nothing to guess: Ctrl-C saves the last completed step and --resume
continues it to the same report; --resume with nothing to resume says so; a run killed
while writing its files leaves the previous set whole and no temporary file behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from ablasim.cli import main
from ablasim.runner import MANIFEST_NAME

# 2 mm vertebra, 0.5 s steps (the stable step here is about 4 s): 5 s of simulated time
# is exactly 10 steps. The default checkpoint interval (60 s of wall time) is kept, so
# before this change nothing was saved by a Ctrl-C this early.
SCENARIO = """
name = "ctrl-c"
[grid]
spacing_mm = 2
extent_mm = [40, 52, 28]
center_mm = [0, -10, 0]
[anatomy]
phantom = "vertebra"
tumour = { center_mm = [0, 2, 0], diameter_mm = 16, kind = "lytic" }
[simulation]
dt_s = 0.5
[[phase]]
name = "heat"
duration_s = 40
[[phase.source]]
kind = "volumetric"
shape = "sphere"
center_mm = [0, 2, 0]
radius_mm = 5
power_W = 2.0
[[phase]]
name = "cool"
duration_s = 10
[[safety.thermocouple]]
name = "epidural"
position_mm = [0, -17, 0]
[output]
pictures = false
"""


def write(tmp_path: Path, text: str = SCENARIO, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def without_timing(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in ("timing", "created_utc")}


def visible(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}


# -- Ctrl-C and --resume ------------------------------------------------------------------
def test_ctrl_c_at_5_s_saves_and_resume_gives_the_same_report(
    tmp_path, monkeypatch, capsys, interrupt_after
):
    """Ctrl-C (a KeyboardInterrupt inside the 11th step) at 5 s: exit 130, the state of
    step 10 (t = 5 s) saved, the message names it; --resume finishes with the report of
    an uninterrupted run (every number but the timing), says it resumed and from when,
    and its timing counts only its own steps."""
    path = write(tmp_path)
    full = tmp_path / "full"
    assert main(["run", str(path), "--out", str(full), "-q"]) == 0
    capsys.readouterr()

    out = tmp_path / "out"
    interrupt_after(11)
    assert main(["run", str(path), "--out", str(out), "-q"]) == 130
    err = capsys.readouterr().err
    assert "interrupted at t = 5 s of 50 s" in err
    assert "--resume" in err
    assert (out / ".checkpoint.npz").is_file()
    with np.load(out / ".checkpoint.npz", allow_pickle=False) as z:
        saved = json.loads(str(z["meta"]))
    assert saved["total_steps"] == 10
    assert saved["t"] == pytest.approx(5.0, abs=1e-12)
    assert not (out / "report.json").exists()
    monkeypatch.undo()

    assert main(["run", str(path), "--out", str(out), "--resume"]) == 0
    said = capsys.readouterr().out
    assert "resumed from the checkpoint at t = 5 s" in said
    a = json.loads((full / "report.json").read_text(encoding="utf-8"))
    b = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert without_timing(a) == without_timing(b)
    assert a["timing"]["resumed_from_s"] is None
    assert b["timing"]["resumed_from_s"] == 5.0
    assert b["timing"]["steps"] == a["timing"]["steps"] == 100
    assert b["timing"]["steps_run"] == 90
    txt = (out / "report.txt").read_text(encoding="utf-8")
    assert "Resumed from the checkpoint at t = 5 s: this run computed 90 of the 100 steps" in txt
    assert "; 90 steps in" in txt
    assert not (out / ".checkpoint.npz").exists()


SIGINT_SCRIPT = """
import sys, time
from pathlib import Path
import ablasim.simulation as simulation
real, calls = simulation.pennes_damage_step, [0]

def slow(*args):
    calls[0] += 1
    if calls[0] == 10:
        Path(sys.argv[3]).touch()  # the test presses Ctrl-C now
    time.sleep(0.02)
    return real(*args)

simulation.pennes_damage_step = slow
from ablasim.cli import main
sys.exit(main(["run", sys.argv[1], "--out", sys.argv[2], "-q"]))
"""


def run_script(tmp_path: Path, script: str, *args: str) -> subprocess.Popen:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(script), encoding="utf-8")
    return subprocess.Popen(
        [sys.executable, str(path), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended first: {proc.communicate()}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("the run did not get there in time")
        time.sleep(0.02)


def test_a_real_ctrl_c_stops_at_the_end_of_a_step_and_saves_it(tmp_path):
    """SIGINT to `ablasim run` in its 10th step (of 100; 20 ms each): the loop ends that
    step, saves it and exits 130 naming the time; no report is written."""
    path = write(tmp_path)
    out, ready = tmp_path / "out", tmp_path / "ready"
    proc = run_script(tmp_path, SIGINT_SCRIPT, path, out, ready)
    wait_for(ready, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    with np.load(out / ".checkpoint.npz", allow_pickle=False) as z:
        saved = json.loads(str(z["meta"]))
    assert 10 <= saved["total_steps"] < 100
    assert f"interrupted at t = {saved['t']:g} s of 50 s" in err
    assert "Traceback" not in err
    assert not (out / "report.json").exists()


def test_resume_without_a_checkpoint_says_so(tmp_path, capsys):
    """--resume where nothing was interrupted: exit 2, one line saying why, nothing
    started or written; after a finished run, it says the run finished."""
    path = write(tmp_path)
    out = tmp_path / "never"
    assert main(["run", str(path), "--out", str(out), "-q", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--resume: nothing to resume" in err
    assert "without --resume" in err
    assert not out.exists()

    done = tmp_path / "done"
    assert main(["run", str(path), "--out", str(done), "-q"]) == 0
    before = visible(done)
    assert main(["run", str(path), "--out", str(done), "-q", "--resume"]) == 2
    assert "finished (its report.json is there)" in capsys.readouterr().err
    assert visible(done) == before


# -- outputs appear together or not at all -----------------------------------------------
SLOW_OUTPUT_SCRIPT = """
import os, sys, time
from pathlib import Path
import ablasim.tables as tables

where = sys.argv[4]
real_csv, real_replace = tables.write_timeseries_csv, os.replace
moves = [0]

def slow_csv(*args, **kw):
    out = real_csv(*args, **kw)
    if where == "writing":
        Path(sys.argv[3]).touch()
        time.sleep(600)
    return out

def slow_replace(src, dst):
    real_replace(src, dst)
    if where == "moving" and ".ablasim-staging" in str(src) and ".part" not in str(src):
        moves[0] += 1
        if moves[0] == 2:  # two new files are in place, the rest are not
            Path(sys.argv[3]).touch()
            time.sleep(600)

tables.write_timeseries_csv = slow_csv
os.replace = slow_replace
from ablasim.cli import main
sys.exit(main(["run", sys.argv[1], "--out", sys.argv[2], "-q"]))
"""


@pytest.mark.parametrize("where", ["writing", "moving"])
def test_a_run_killed_while_writing_leaves_no_half_set(tmp_path, where):
    """A first run's files; a second run (another power) SIGKILLed while writing its
    files: the folder shows the first run's files unchanged (killed while moving them in,
    a few milliseconds: no report.json, so no set claims to be whole). The next run
    leaves exactly its own set: no staging folder, no temporary file."""
    path = write(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "-q"]) == 0
    old = visible(out)
    assert {"report.json", "report.txt", "timeseries.csv", "fields.vti", "fields.ctbl"} <= set(old)
    other = write(tmp_path, SCENARIO.replace("power_W = 2.0", "power_W = 3.0"), "other.toml")
    ready = tmp_path / "ready"
    proc = run_script(tmp_path, SLOW_OUTPUT_SCRIPT, other, out, ready, where)
    wait_for(ready, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    now = visible(out)
    if where == "writing":
        assert now == old  # the old set, whole and unchanged
    else:
        assert "report.json" not in now  # no set claims to be whole
        assert set(now) <= set(old)
        assert any(now[n] != old[n] for n in now)
    assert (out / ".ablasim-staging").is_dir()  # what the killed run left, hidden

    assert main(["run", str(other), "--out", str(out), "-q"]) == 0
    assert set(visible(out)) == set(old)
    assert json.loads((out / "report.json").read_text(encoding="utf-8"))["phases"][0][
        "energy_J"
    ] == pytest.approx(3.0 * 40, rel=1e-9)
    # only the list of the files this run published stays hidden beside them
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [MANIFEST_NAME]


def test_the_next_run_removes_a_killed_checkpoint_write(tmp_path):
    """A temporary checkpoint file (a run killed while saving it) is removed by the next
    run; other hidden files of the user's are left alone."""
    out = tmp_path / "out"
    out.mkdir()
    stray = out / ".ablasim-tmp.checkpoint.npz.ab12_x9z.part.npz"
    stray.write_bytes(b"half a checkpoint")
    mine = out / ".my-notes.txt"
    mine.write_text("keep", encoding="utf-8")
    # a user's own file that merely looks like a temporary name stays too
    theirs = out / ".data.12345678.part.csv"
    theirs.write_text("keep", encoding="utf-8")
    assert main(["run", str(write(tmp_path)), "--out", str(out), "-q"]) == 0
    assert not stray.exists()
    assert mine.read_text(encoding="utf-8") == "keep"
    assert theirs.read_text(encoding="utf-8") == "keep"
    assert os.listdir(out)
    assert "report.json" in os.listdir(out)


def test_an_output_folder_that_cannot_be_written_is_bad_input_before_the_run(tmp_path, capsys):
    """A file where the folder should be: exit 2 with one line, before any simulation."""
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a folder", encoding="utf-8")
    assert main(["run", str(write(tmp_path)), "--out", str(blocker), "-q"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the output folder" in err
    assert "Traceback" not in err


def test_files_of_an_earlier_run_that_this_run_does_not_write_are_removed(tmp_path):
    """A run with vti = false into the folder of one that wrote fields.vti: the old
    fields must not sit beside the new report (``ablasim plot`` would mix them)."""
    out = tmp_path / "out"
    assert main(["run", str(write(tmp_path)), "--out", str(out), "-q"]) == 0
    assert (out / "fields.vti").exists()
    mine = out / "notes.txt"  # a user's own file is never touched
    mine.write_text("keep", encoding="utf-8")
    text = SCENARIO.replace("pictures = false", "pictures = false\nvti = false")
    assert main(["run", str(write(tmp_path, text)), "--out", str(out), "-q"]) == 0
    assert not (out / "fields.vti").exists()
    assert not (out / "fields.ctbl").exists()
    assert (out / "report.json").exists()
    assert mine.read_text(encoding="utf-8") == "keep"
