"""What the pictures cost a run: ``vertebra-demo`` (96×128×96 voxels at 0.5 mm) run twice,
``[output] pictures`` off then on (``fields.vti`` off both times), and the 3D picture
(``isotherms_3d.png``) timed alone on the second run's fields, its first draw in the
process (EGL context, shaders) and a second one.

    python benchmarks/bench_pictures.py [--quick] [--json out.json]

``--quick``: a 2 mm grid and 30 s of heating (for the test suite). pyvista's import
(~0.4 s) is not in the 3D time: a run with pictures imports it while the kernels run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import ablasim
from ablasim.runner import run_scenario
from ablasim.scenario import parse_scenario

DEMO = Path(ablasim.__file__).parent / "examples" / "vertebra-demo.toml"


def scenario(pictures: bool, quick: bool):
    data = tomllib.loads(DEMO.read_text(encoding="utf-8"))
    data["output"] = {**data.get("output", {}), "pictures": pictures, "vti": False}
    if quick:
        data["grid"]["spacing_mm"] = 2.0
        for phase in data["phase"]:
            phase.pop("duration_min", None)
            phase["duration_s"] = 30
    return parse_scenario(data, base_dir=DEMO.parent, origin=str(DEMO))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 mm grid, 30 s phases")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    import pyvista  # noqa: F401  (as a run does, while its kernels run)

    from ablasim.viz.render3d import plot_3d

    res: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pictures in (False, True):
            sc = scenario(pictures, args.quick)
            run = run_scenario(sc, Path(tmp) / f"pictures-{pictures}", progress=False)
            t = run.report["timing"]
            res[f"output_s_pictures_{'on' if pictures else 'off'}"] = t["output_s"]
            res[f"total_s_pictures_{'on' if pictures else 'off'}"] = t["total_s"]
        res["grid_shape"] = list(run.result.model.grid.shape)
        needles = [n for p in sc.phases for s in p.sources for n in s.needles()]
        nerves = sorted(run.analysis.nerves.values(), key=lambda n: n.hot_margin_C)
        for name in ("plot_3d_first_s", "plot_3d_again_s"):
            t0 = time.perf_counter()
            plot_3d(
                run.result.model,
                run.result.damage.t_max,
                zone_mask=run.analysis.zone_mask,
                needles=needles,
                nerve_points_mm={n.name: n.hottest_point_mm for n in nerves},
                save=Path(tmp) / "isotherms_3d.png",
            )
            res[name] = round(time.perf_counter() - t0, 3)
    res["pictures_add_s"] = round(res["output_s_pictures_on"] - res["output_s_pictures_off"], 3)
    for key, value in res.items():
        print(f"{key:28s} {value}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2), encoding="utf-8")
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
