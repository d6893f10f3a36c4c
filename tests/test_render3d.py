"""``isotherms_3d.png``: every ``ablasim run`` with pictures renders the 3D scene off-screen
for real (no display, no skip): bone, the nerves in their colour, the probe, the ablation
zone and the 45 °C surface, from a camera that shows the nearest nerve's margin.

The run is the vertebra phantom on a 2 mm grid (24×32×24 voxels), a 8 mm heated cylinder
at 10 W for 40 s: the core passes 60 °C, so the ablation zone exists (about 2 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.colors import rgb_to_hsv

from ablasim.cli import main
from ablasim.scenario import load_scenario
from ablasim.viz.offscreen import EGL, OSMESA, NoOffscreenRendering, choose_window
from ablasim.viz.render3d import COLOURS, plot_3d

SCENARIO = """
name = "tiny-vertebra"
[grid]
spacing_mm = 2
extent_mm = [48, 64, 48]
center_mm = [0, -10, 0]
[anatomy]
phantom = "vertebra"
level = "L1"
tumour = {{ center_mm = [0, 2, 0], diameter_mm = 14, kind = "lytic" }}
[[phase]]
name = "heating"
duration_s = 40
[[phase.source]]
kind = "volumetric"
name = "needle"
shape = "cylinder"
tip_mm = [0, 8, 0]
direction = [0, 1, 0]
active_length_mm = 12
diameter_mm = 8
power_W = 10
[output]
pictures = {pictures}
"""


def _write(tmp: Path, pictures: str = "true") -> Path:
    path = tmp / "s.toml"
    path.write_text(SCENARIO.format(pictures=pictures), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("render3d")
    env = os.environ.pop("DISPLAY", None)  # as in CI: no display
    try:
        assert main(["run", str(_write(base)), "--out", str(base / "out"), "-q"]) == 0
    finally:
        if env is not None:
            os.environ["DISPLAY"] = env
    return base / "out"


def _pixels(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return matplotlib.image.imread(path)[..., :3]


def _hue(img: np.ndarray, colour, *, within: float = 0.03) -> np.ndarray:
    """Pixels of ``colour``'s hue (±``within`` of the colour circle: ±11°), saturated and
    bright enough to be a lit surface of that colour, not a shadow or a blend with white
    bone. The colours told apart: zone red 3°, 45 °C orange 30°, nerve yellow 50°."""
    hsv = rgb_to_hsv(img)
    hue = rgb_to_hsv(np.asarray(colour, float))[0]
    d = np.abs(hsv[..., 0] - hue)
    return (np.minimum(d, 1 - d) < within) & (hsv[..., 1] > 0.5) & (hsv[..., 2] > 0.45)


def test_run_writes_a_3d_picture_that_is_not_blank(run_dir):
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    assert report["ablation_zone"]["volume_ml"] > 0  # the zone surface has something to draw
    img = _pixels(run_dir / "isotherms_3d.png")
    assert img.shape[:2] == (750, 1000)
    background = np.all(img > 0.98, axis=-1)
    # a scene, not a white page: the anatomy fills a good part of the frame
    assert (~background).mean() > 0.3
    assert len(np.unique((img * 15).round().reshape(-1, 3), axis=0)) > 40


def test_nerves_and_isotherms_are_drawn_in_their_colours(run_dir):
    img = _pixels(run_dir / "isotherms_3d.png")
    # surfaces are shaded: many tones of one hue (the legend's flat swatch and text alone
    # give far fewer); without the zone surface its hue is absent (0 pixels), the demo
    # scene at this size has ~5000 of zone and ~80000 of nerve
    for what in ("nerve", "zone", "45"):
        hit = _hue(img, COLOURS[what])
        tones = np.unique((img[hit] * 255).round(), axis=0)
        assert hit.sum() > 1500, (what, int(hit.sum()))
        assert len(tones) > 200, (what, len(tones))
    # the margin line and the hottest nerve point
    assert _hue(img, COLOURS["margin"]).sum() > 200


def test_the_window_is_the_chosen_off_screen_one(run_dir):
    import vtk

    chosen = choose_window()
    assert chosen in (EGL, OSMESA)
    assert vtk.vtkRenderWindow().GetClassName() == chosen


def test_a_run_without_pictures_never_loads_pyvista(tmp_path):
    code = (
        "import sys; from ablasim.cli import main; "
        f"rc = main(['run', {str(_write(tmp_path, 'false'))!r}, '--out', "
        f"{str(tmp_path / 'out')!r}, '-q']); "
        "assert rc == 0; assert 'pyvista' not in sys.modules, 'pyvista loaded'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "out" / "isotherms_3d.png").exists()


def test_a_cold_run_draws_the_iceball_surfaces_in_blue(tmp_path):
    """No freezing source exists yet: a made-up coldest field (−80 °C at the tip, back to
    37 °C over ~12 mm) on the same anatomy must give blue 0/−20/−40 °C surfaces and no
    red ablation zone."""
    built = load_scenario(_write(tmp_path)).build()
    model = built.model
    x, y, z = (a * 1e3 for a in model.grid.mesh())
    r2 = x**2 + (y - 8) ** 2 + z**2
    coldest = 37.0 - 117.0 * np.exp(-r2 / (2 * 6.0**2))
    needles = [n for p in built.phases for s in p.sources for n in s.needles()]
    plot_3d(model, coldest, needles=needles, cold=True, save=tmp_path / "cold.png")
    img = _pixels(tmp_path / "cold.png")
    blue = _hue(img, COLOURS["cold"][1], within=0.06)
    assert blue.sum() > 1500, int(blue.sum())
    assert _hue(img, COLOURS["zone"]).sum() == 0


@pytest.mark.parametrize(
    ("present", "chosen"),
    [
        ({"libEGL.so.1", "libEGL_mesa.so.0", "libOSMesa.so.8"}, EGL),
        ({"libEGL.so.1", "libOSMesa.so.8"}, OSMESA),  # glvnd without Mesa's EGL driver
        ({"libOSMesa.so.8"}, OSMESA),
        (set(), None),
    ],
)
def test_the_window_follows_the_libraries_present(monkeypatch, present, chosen):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("VTK_DEFAULT_OPENGL_WINDOW", raising=False)
    monkeypatch.setattr(
        "ablasim.viz.offscreen._loads", lambda *names: any(n in present for n in names)
    )
    if chosen is None:
        with pytest.raises(NoOffscreenRendering, match=r"apt-get install libegl1.*pictures"):
            choose_window()
        return
    assert choose_window() == chosen
    assert os.environ["VTK_DEFAULT_OPENGL_WINDOW"] == chosen
