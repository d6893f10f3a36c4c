"""The benchmark harness runs (tiny sizes), so it never rots."""

from __future__ import annotations

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_pennes.py"


def test_bench_pennes_quick(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_pennes", BENCH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--quick", "--json", str(tmp_path / "b.json")])
    row = res["rows"][0]
    assert res["stream_triad_GBs"] > 0
    assert row["numba_mvups"] > 0
    assert row["numpy_mvups"] > 0
    assert row["step_with_damage_mvups"] > 0
    assert row["fused_mvups"] > 0
    assert {d["field"] for d in res["damage_rows"]} == {"hot", "treatment"}
    assert all(d["fused_mvups"] > 0 and d["step_then_damage_mvups"] > 0 for d in res["damage_rows"])
    assert (tmp_path / "b.json").stat().st_size > 100


def test_bench_pictures_quick(tmp_path):
    path = BENCH.parent / "bench_pictures.py"
    spec = importlib.util.spec_from_file_location("bench_pictures", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--quick", "--json", str(tmp_path / "p.json")])
    assert res["grid_shape"] == [24, 32, 24]
    assert res["output_s_pictures_on"] > res["output_s_pictures_off"]
    assert res["plot_3d_first_s"] > 0
    assert (tmp_path / "p.json").stat().st_size > 50


def test_bench_vti_quick():
    path = BENCH.parent / "bench_vti.py"
    spec = importlib.util.spec_from_file_location("bench_vti", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--quick", "--repeats", "1"])  # also checks each reader reads the other
    assert res["write_ours_s"] > 0
    assert res["size_ours_MB"] > 0


def test_bench_cryo_quick(tmp_path):
    path = BENCH.parent / "bench_cryo.py"
    spec = importlib.util.spec_from_file_location("bench_cryo", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--quick", "--json", str(tmp_path / "c.json")])
    assert all(s > 0 for s in res["passes"].values())
    assert [r["stepping"] for r in res["runs"]] == ["explicit", "super 5 s", "super 10 s"]
    assert all(r["lethal_voxels"] > 0 for r in res["runs"][1:])
    assert (tmp_path / "c.json").stat().st_size > 100
