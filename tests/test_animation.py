"""``[output] animation = true`` saves temperature snapshots of the three planes through
the probe during the run (compressed, ``snapshots.npz``) and draws ``isotherms.gif``: one
frame per snapshot, each different (the time and power in the title, the isotherms
growing); a run that does not ask writes neither, nor the damage maps.

Runs of a 40 W RF needle on a 2 mm grid for 25 s (4 s steps; about 3 s each).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ablasim.cli import main

TINY = """
name = "tiny"
[grid]
spacing_mm = 2
extent_mm = [30, 30, 30]
[anatomy]
phantom = "uniform"
tissue = "muscle"
[[phase]]
name = "heat"
duration_s = 20
[[phase.source]]
kind = "rf"
name = "probe"
tip_mm = [0, 0, 6]
direction = [0, 0, 1]
active_length_mm = 10
diameter_mm = 4
control = { kind = "power", power_W = 20 }
[[phase]]
name = "cool"
duration_s = 5
"""


def _run(tmp: Path, output: str) -> Path:
    (tmp / "s.toml").write_text(TINY + output, encoding="utf-8")
    assert main(["run", str(tmp / "s.toml"), "--out", str(tmp / "out"), "-q"]) == 0
    return tmp / "out"


@pytest.fixture(scope="module")
def animated(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("anim"),
                "[output]\nanimation = true\nsnapshot_interval_s = 8\n")  # fmt: skip


def _frames(gif: Path) -> list[np.ndarray]:
    with Image.open(gif) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(np.asarray(im.convert("RGB"), dtype=np.int16))
        return out


def test_snapshots_are_planes_at_the_interval(animated):
    with np.load(animated / "snapshots.npz") as z:
        t, power = z["time_s"], z["power_W"]
        planes = {a: z[a] for a in ("x", "y", "z")}
    # t = 0, every 8 s and the run's end: the heat phase's 4 s steps land on 8 and 16;
    # the cool phase's 2.5 s steps (22.5, 25 s) reach 24 s only at its end, 25 s
    np.testing.assert_allclose(t, [0.0, 8.0, 16.0, 25.0])
    assert power[0] == 0.0
    assert power[1] > 0.0
    assert power[-1] == 0.0
    assert planes["z"].shape == (4, 15, 15)  # planes, not the 15^3 field
    assert planes["z"][0].max() == pytest.approx(37.0)
    assert planes["z"][2].max() > 45.0  # the needle heated the plane through it


def test_the_gif_has_a_frame_per_snapshot_and_they_differ(animated):
    with np.load(animated / "snapshots.npz") as z:
        n = len(z["time_s"])
    frames = _frames(animated / "isotherms.gif")
    assert len(frames) == n
    for a, b in itertools.pairwise(frames):
        assert np.abs(a - b).max() > 0

    # hot colours (inferno's orange and yellow: red high, blue low; the white page and
    # the colour bar are the same in every frame) fill more of the heated frame than of
    # the first, all at 37 °C
    def hot(f):
        return int(((f[..., 0] > 180) & (f[..., 2] < 120)).sum())

    assert hot(frames[2]) > hot(frames[0]) + 1000


def test_an_mp4_is_written_where_ffmpeg_exists(animated):
    from matplotlib.animation import FFMpegWriter

    # checked by hand with imageio-ffmpeg's ffmpeg 9.0.2: the demo's 61 snapshots give a
    # 61-frame 1040 x 368 H.264 MP4 of 275 kB
    assert (animated / "isotherms.mp4").is_file() == FFMpegWriter.isAvailable()


def test_plot_redraws_the_animation(animated, tmp_path):
    assert main(["plot", str(animated), "--out", str(tmp_path), "--animation"]) == 0
    assert len(_frames(tmp_path / "isotherms.gif")) == len(_frames(animated / "isotherms.gif"))


def test_a_run_that_did_not_ask_saves_no_snapshots_nor_damage_maps(tmp_path):
    out = _run(tmp_path, "")
    for name in ("snapshots.npz", "isotherms.gif", "damage_slices.png"):
        assert not (out / name).exists(), name
    assert (out / "pictures.json").is_file()


def test_the_keys_are_listed(capsys):
    assert main(["keys"]) == 0
    text = capsys.readouterr().out
    for key in ("animation", "snapshot_interval_s", "damage_pictures"):
        assert key in text


def test_a_bad_interval_names_the_key(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(TINY + "[output]\nsnapshot_interval_s = 0\n",
                                     encoding="utf-8")  # fmt: skip
    assert main(["run", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o"), "-q"]) == 2
    assert "output.snapshot_interval_s" in capsys.readouterr().err


def test_a_cold_animation_draws_the_iceball_in_blue(tmp_path):
    # a made-up iceball growing on 15 x 15 planes: -40 °C at the centre at the end
    from ablasim.viz.animation import write_isotherm_animation

    r = np.hypot(*np.meshgrid(np.arange(15) - 7.0, np.arange(15) - 7.0))
    frames = np.stack([37.0 - (77.0 * s) * np.exp(-((r / 4.0) ** 2)) for s in (0.0, 0.5, 1.0)])
    snaps = {"time_s": np.array([0.0, 60.0, 120.0]), "power_W": np.zeros(3),
             "z": frames, "x": frames, "y": frames, "index": np.array([7, 7, 7]),
             "origin_mm": np.array([-14.0, -14.0, -14.0]), "spacing_mm": np.array(2.0)}  # fmt: skip
    gif = write_isotherm_animation(snaps, tmp_path / "ice.gif", cold_isotherms=(0, -20, -40))
    got = _frames(gif)
    assert len(got) == 3

    def blue(f):  # coolwarm's cold end: blue well above red
        return int((f[..., 2] > f[..., 0] + 60).sum())

    # the colour bar's blue is in every frame; the iceball adds thousands of pixels
    assert blue(got[2]) > blue(got[0]) + 1000
