"""`ablasim sweep`: sweep files, the cases they make, bad input, and real sweeps (local
processes, a Dask LocalCluster, a SIGKILL and a restart) judged by runs.csv/parquet.

The base scenario is tiny: a muscle/nerve slab on a 3 mm grid (10 x 10 x 10 voxels),
a 4 mm sphere heated for 20-40 s, no pictures, so one run takes ~20 ms once the kernels
are loaded and a sweep's time is mostly starting its worker processes.
"""

from __future__ import annotations

import csv
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
from ablasim.errors import ScenarioError
from ablasim.sweep import RESULT_COLUMNS, load_sweep, read_table, run_id

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
PERFUSION = "tissues.muscle.perfusion_per_s"


def write_sweep(tmp_path: Path, body: str, name: str = "sweep.toml") -> Path:
    (tmp_path / "base.toml").write_text(BASE)
    path = tmp_path / name
    path.write_text('base = "base.toml"\n' + textwrap.dedent(body))
    return path


GRID_SWEEP = f"""\
    [sweep]
    method = "grid"
    [sweep.vary]
    "{POWER}" = [2, 20]
    "{DURATION}" = [20, 40]
"""


def rows_of(out: Path) -> list[dict]:
    with open(out / "runs.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def without_wall(rows):
    return sorted(({k: v for k, v in r.items() if k != "wall_s"} for r in rows), key=str)


# -- cases --------------------------------------------------------------------------------


def test_grid_makes_every_combination(tmp_path):
    sw = load_sweep(write_sweep(tmp_path, GRID_SWEEP))
    got = [(c.values[POWER], c.values[DURATION]) for c in sw.cases]
    assert got == [(2, 20), (2, 40), (20, 20), (20, 40)]
    assert sw.keys == (POWER, DURATION)
    assert all(c.invalid is None for c in sw.cases)


def test_zip_pairs_the_lists(tmp_path):
    body = GRID_SWEEP.replace('"grid"', '"zip"')
    sw = load_sweep(write_sweep(tmp_path, body))
    assert [(c.values[POWER], c.values[DURATION]) for c in sw.cases] == [(2, 20), (20, 40)]


def test_latin_hypercube_puts_one_sample_in_each_stratum_of_every_key(tmp_path):
    body = f"""\
        [sweep]
        method = "latin_hypercube"
        samples = 8
        seed = 3
        [sweep.vary]
        "{POWER}" = {{ low = 1, high = 5 }}
        "{PERFUSION}" = {{ low = 0.0005, high = 0.003 }}
    """
    sw = load_sweep(write_sweep(tmp_path, body))
    assert len(sw.cases) == 8
    for key, (lo, hi) in {POWER: (1, 5), PERFUSION: (0.0005, 0.003)}.items():
        v = np.array([c.values[key] for c in sw.cases])
        strata = np.floor((v - lo) / (hi - lo) * 8).astype(int)
        assert sorted(strata) == list(range(8)), key
    again = load_sweep(tmp_path / "sweep.toml")  # the seed makes the same cases
    assert [c.run_id for c in again.cases] == [c.run_id for c in sw.cases]


def test_random_draws_in_range_and_the_seed_repeats_them(tmp_path):
    body = f"""\
        [sweep]
        method = "random"
        samples = 5
        seed = 1
        [sweep.vary]
        "{POWER}" = {{ low = 1, high = 5 }}
    """
    a = load_sweep(write_sweep(tmp_path, body))
    b = load_sweep(tmp_path / "sweep.toml")
    vals = [c.values[POWER] for c in a.cases]
    assert len(vals) == 5
    assert all(1 <= v < 5 for v in vals)
    assert len(set(vals)) == 5
    assert vals == [c.values[POWER] for c in b.cases]


def test_run_id_depends_only_on_the_values():
    assert run_id({POWER: 2, DURATION: 20}) == run_id({DURATION: 20, POWER: 2})
    assert run_id({POWER: 2, DURATION: 20}) != run_id({POWER: 3, DURATION: 20})


def test_an_example_can_be_the_base(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        'base = "example:vertebra-demo"\n[sweep]\n[sweep.vary]\n'
        '"phase[0].source[0].power_W" = [2, 3]\n'
    )
    assert len(load_sweep(path).cases) == 2
    path.write_text(path.read_text().replace("vertebra-demo", "vertebra-dem"))
    with pytest.raises(ScenarioError, match=r"unknown example 'vertebra-dem'.*vertebra-demo"):
        load_sweep(path)


# -- bad input: exit 2, one clear message, nothing run ----------------------------------


@pytest.mark.parametrize(
    ("vary", "sweep", "message"),
    [
        (
            '"phase[0].source[0].powr_W" = [1, 2]',
            "",
            r'sweep\.vary\."phase\[0\]\.source\[0\]\.powr_W".*unknown key.*power_W',
        ),
        ('"phase[0].source[0].power_W" = []', "", r"power_W.*empty list"),
        (
            '"phase[0].source[0].power_W" = [1, 2]\n"phase[0].duration_s" = [20]',
            'method = "zip"',
            r"zip.*one length.*has 2.*has 1",
        ),
        (
            '"phase[0].source[0].power_W" = { low = 5, high = 5 }',
            'method = "random"\nsamples = 3',
            r"power_W.*empty range: low \(5\) must be below high \(5\)",
        ),
        (
            '"phase[0].source[0].power_W" = { low = 1, high = 5 }',
            'method = "latin_hypercube"\nsamples = 0',
            r"sweep\.samples: must be at least 1, got 0",
        ),
        ('"phase[0].source[0].power_W" = [1]', 'method = "grd"', r"sweep\.method.*grid"),
        ('"phase[3].source[0].power_W" = [1]', "", r"phase\[3\].*1 element"),
        ('"phase[0].source[0].power_W" = [0.5, 0.5, 1]', "", r"listed twice"),
    ],
    ids=[
        "unknown-key",
        "empty-list",
        "zip-lengths",
        "empty-range",
        "no-samples",
        "method",
        "no-such-phase",
        "repeated-case",
    ],
)
def test_bad_sweep_files_are_clear_errors_before_any_run(tmp_path, capsys, vary, sweep, message):
    path = write_sweep(tmp_path, f"[sweep]\n{sweep}\n[sweep.vary]\n{vary}\n")
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ablasim: error:")
    import re

    assert re.search(message, err, re.S), err
    assert "Traceback" not in err
    assert not out.exists()  # validated before anything is written


def test_an_unreachable_scheduler_is_an_error_within_seconds(tmp_path, capsys):
    path = write_sweep(tmp_path, GRID_SWEEP)
    t0 = time.perf_counter()
    rc = main(
        ["sweep", str(path), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9", "-q"]
    )  # fmt: skip  (port 9, discard: nothing listens)
    assert time.perf_counter() - t0 < 15  # the 5 s connect timeout, plus start-up
    assert rc == 2
    assert "--scheduler: cannot reach a Dask scheduler at 'tcp://127.0.0.1:9'" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "o").exists()  # nothing written


def test_fewer_than_one_worker_is_bad_input(tmp_path, capsys):
    path = write_sweep(tmp_path, GRID_SWEEP)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--workers: must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_the_anatomy_is_built_once_per_process_and_each_run_has_its_own_labels(
    tmp_path, monkeypatch
):
    import ablasim.anatomy
    from ablasim.scenario import load_scenario

    real, calls = ablasim.anatomy.make_phantom, []
    monkeypatch.setattr(
        ablasim.anatomy, "make_phantom", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    # a grid no other test builds in this process, so the cache starts empty for it
    (tmp_path / "a.toml").write_text(BASE.replace("spacing_mm = 3", "spacing_mm = 2.9"))
    a = load_scenario(tmp_path / "a.toml").build()
    b = load_scenario(tmp_path / "a.toml").build()
    assert len(calls) == 1
    assert np.array_equal(a.model.labels, b.model.labels)
    assert a.model.labels is not b.model.labels  # a run may change its own (cement)
    (tmp_path / "c.toml").write_text(BASE.replace("spacing_mm = 3", "spacing_mm = 4.9"))
    assert load_scenario(tmp_path / "c.toml").build().model.labels.shape == (6, 6, 6)
    assert len(calls) == 2  # another grid, another phantom


# -- real sweeps ----------------------------------------------------------------------------


def test_a_sweep_on_local_processes_writes_the_table_and_a_bad_value_is_an_error_row(
    tmp_path, capsys
):
    body = GRID_SWEEP.replace("[2, 20]", "[2, 20, -1]")
    path = write_sweep(tmp_path, body)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "-q"]) == 0
    summary = capsys.readouterr().out
    rows = rows_of(out)
    assert list(rows[0]) == ["run_id", POWER, DURATION, *RESULT_COLUMNS]
    assert len(rows) == 6
    assert [r["run_id"] for r in rows] == [c.run_id for c in load_sweep(path).cases]
    bad = [r for r in rows if r[POWER] == "-1"]
    assert {r["status"] for r in bad} == {"error"}
    assert all("power_W: must be > 0" in r["error"] for r in bad)
    good = [r for r in rows if r[POWER] != "-1"]
    assert {r["status"] for r in good} == {"ok"}
    for r in good:
        assert (out / "runs" / r["run_id"] / "report.json").is_file()
        assert r["hottest_nerve"] == "layer1"
        assert float(r["max_nerve_temperature_C"]) > 37
        assert float(r["min_nerve_temperature_C"]) == pytest.approx(37, abs=0.01)
        assert float(r["wall_s"]) > 0
    # more power for longer heats the nerve more; 20 W for 40 s crosses 45 °C
    hot = {(r[POWER], r[DURATION]): float(r["max_nerve_temperature_C"]) for r in good}
    assert hot[("2", "20")] < hot[("2", "40")] < hot[("20", "40")]
    verdicts = {(r[POWER], r[DURATION]): r["verdict"] for r in good}
    assert verdicts[("2", "20")] == "PASS"
    assert verdicts[("20", "40")] == "FAIL"
    assert "6 runs: 3 pass, 1 fail, 2 error" in summary
    parquet = read_table(out)
    assert [r["run_id"] for r in parquet] == [r["run_id"] for r in rows]
    assert parquet[0][POWER] == 2
    assert isinstance(parquet[0]["max_nerve_temperature_C"], float)
    # the same command again runs nothing
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "-q"]) == 0
    assert "0 run now, 6 already done" in capsys.readouterr().out
    assert without_wall(rows_of(out)) == without_wall(rows)
    # an edited base scenario is a new sweep: every run again, none of the old rows kept
    base = tmp_path / "base.toml"
    base.write_text(base.read_text().replace("radius_mm = 4", "radius_mm = 5"))
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "-q"]) == 0
    again = rows_of(out)
    assert len(again) == 6
    assert not {r["run_id"] for r in again} & {r["run_id"] for r in rows}


def test_a_dask_local_cluster_gives_the_same_table_as_local_processes(tmp_path):
    path = write_sweep(tmp_path, GRID_SWEEP)
    a, b = tmp_path / "local", tmp_path / "dask"
    assert main(["sweep", str(path), "--out", str(a), "--workers", "2", "-q"]) == 0
    assert main(["sweep", str(path), "--out", str(b), "--workers", "2", "--scheduler",
                 "local", "-q"])  == 0  # fmt: skip
    ra, rb = rows_of(a), rows_of(b)
    assert len(ra) == 4
    assert {r["status"] for r in rb} == {"ok"}
    assert without_wall(ra) == without_wall(rb)


def test_a_sweep_killed_with_sigkill_and_restarted_has_every_run_once(tmp_path):
    body = f"""\
        [sweep]
        method = "grid"
        [sweep.vary]
        "{POWER}" = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        "{DURATION}" = [20, 40, 60]
    """
    path = write_sweep(tmp_path, body)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ablasim.cli", "sweep", str(path), "--out", str(out),
           "--workers", "1", "-q"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    n_at_kill = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "runs.csv").is_file():
            n_at_kill = sum(r["status"] == "ok" for r in rows_of(out))
            if n_at_kill >= 2:
                break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its worker, as a crash would
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert 2 <= n_at_kill < 30, "the sweep was not killed mid-way"
    done = rows_of(out)
    assert len(done) < 30
    assert subprocess.run(cmd, timeout=120).returncode == 0
    rows = rows_of(out)
    ids = [r["run_id"] for r in rows]
    assert len(ids) == 30 == len(set(ids))
    assert {r["status"] for r in rows} == {"ok"}
    for r in done:  # the finished ones were not run again
        assert r in rows
    whole = tmp_path / "whole"
    assert main(["sweep", str(path), "--out", str(whole), "--workers", "1", "-q"]) == 0
    assert without_wall(rows) == without_wall(rows_of(whole))


def die_then_run(marker_dir, always, fn, *args):
    """In a worker: kill the process (as the OOM killer would) the first time a run is
    started, or every time when ``always``; otherwise run it."""
    marker = Path(marker_dir) / Path(args[-1]).name
    if always or not marker.exists():
        marker.touch()
        os._exit(9)
    return fn(*args)


def test_a_run_whose_worker_dies_is_retried_once_then_an_error_row(tmp_path):
    from ablasim.sweep import LocalBackend, run_sweep

    sw = load_sweep(write_sweep(tmp_path, GRID_SWEEP))
    once, always = sw.cases[0].run_id, sw.cases[2].run_id
    (tmp_path / "markers").mkdir()

    class Dying(LocalBackend):
        def submit(self, fn, *args):
            rid = Path(args[-1]).name
            if rid in (once, always):
                return super().submit(
                    die_then_run, str(tmp_path / "markers"), rid == always, fn, *args
                )
            return super().submit(fn, *args)

    backend = Dying(2)
    try:
        summary = run_sweep(sw, tmp_path / "out", backend=backend, progress=False)
    finally:
        backend.close()
    rows = {r["run_id"]: r for r in rows_of(tmp_path / "out")}
    assert len(rows) == 4
    assert rows[once]["status"] == "ok"
    assert rows[always]["status"] == "error"
    assert "worker process running it died, twice" in rows[always]["error"]
    others = set(rows) - {once, always}
    assert {rows[r]["status"] for r in others} == {"ok"}  # bystanders are not charged
    assert summary.errors == 1


def test_the_readme_sweep_runs_and_gives_what_it_says(tmp_path, capsys):
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    start = readme.index("\n## Sweeps\n")
    section = readme[start : readme.index("\n## ", start + 1)]
    (block,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    path = tmp_path / "power-time.toml"
    path.write_text(block)
    assert main(["sweep", str(path), "--out", str(tmp_path / "pt"), "--workers", "2", "-q"]) == 0
    assert "6 runs: 6 pass, 0 fail, 0 error" in capsys.readouterr().out
    assert "6 runs: 6 pass, 0 fail, 0 error" in section
    rows = {(r[POWER], r["phase[0].duration_min"]): r for r in rows_of(tmp_path / "pt")}
    # the numbers the README quotes, to their last digit
    assert float(rows[("10", "8")]["max_nerve_temperature_C"]) == pytest.approx(39.8, abs=0.05)
    assert float(rows[("2", "4")]["ablation_volume_ml"]) == pytest.approx(2.9, abs=0.05)
    assert float(rows[("10", "8")]["ablation_volume_ml"]) == pytest.approx(13.3, abs=0.05)


def test_the_sweep_benchmark_harness_runs(tmp_path):
    import importlib.util

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_sweep.py"
    spec = importlib.util.spec_from_file_location("bench_sweep", bench)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--quick", "--workers", "1", "--json", str(tmp_path / "b.json")])
    (row,) = res["rows"]
    assert row["runs"] == 4
    assert row["errors"] == 0
    assert row["runs_per_minute"] > 0
    assert set(row["per_run_s"]) == {"start-up", "kernels (cache load)", "set-up (other)",
                                     "anatomy + model", "steps", "output"}  # fmt: skip
    assert (tmp_path / "b.json").is_file()


@pytest.mark.parametrize("scheduler", [None, "local"], ids=["processes", "dask-local"])
def test_each_worker_gets_cores_over_workers_numba_threads(tmp_path, scheduler):
    """With one worker per core, each worker's numba has one thread: a scenario that asks
    for two is refused inside the worker (an error row), one thread runs."""
    cores = os.cpu_count() or 1
    if cores < 2:
        pytest.skip("needs two cores")
    path = write_sweep(tmp_path, '[sweep]\n[sweep.vary]\n"simulation.threads" = [1, 2]\n')
    cmd = ["sweep", str(path), "--out", str(tmp_path / "o"), "--workers", str(cores), "-q"]
    assert main(cmd + (["--scheduler", scheduler] if scheduler else [])) == 0
    rows = {r["simulation.threads"]: r for r in rows_of(tmp_path / "o")}
    assert rows["1"]["status"] == "ok"
    assert rows["2"]["status"] == "error"
    assert "from 1 to 1" in rows["2"]["error"]


def test_ctrl_c_stops_the_sweep_with_130_and_the_same_command_finishes_it(tmp_path):
    vary = ", ".join(str(p) for p in range(1, 31))
    path = write_sweep(tmp_path, f'[sweep]\n[sweep.vary]\n"{POWER}" = [{vary}]\n')
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "ablasim.cli", "sweep", str(path), "--out", str(out),
           "--workers", "1", "-q"]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "runs.csv").is_file() and len(rows_of(out)) >= 1:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole group
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted; the finished runs are in the table" in err
    assert "--resume" not in err  # that is `ablasim run`'s advice
    assert "Traceback" not in err
    n = len(rows_of(out))
    assert 1 <= n < 30
    assert subprocess.run(cmd, timeout=120).returncode == 0
    ids = [r["run_id"] for r in rows_of(out)]
    assert len(ids) == 30 == len(set(ids))


def test_sweep_help_teaches_the_file_and_the_table(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for needle in ('base = "my.toml"', "[sweep.vary]", "latin_hypercube", "runs.parquet",
                   "max_nerve_temperature_C", "--scheduler", "130 interrupted"):  # fmt: skip
        assert needle in text, needle
