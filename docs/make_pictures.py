"""Make the README's pictures from the demo run.

    .venv/bin/python docs/make_pictures.py [RESULT_DIR]

Without RESULT_DIR it runs the vertebra-demo example with ``[output] animation = true``
into ``demo-output`` (about 45 s) first. It writes ``docs/demo-isotherms-3d.png``: the
run's ``isotherms_3d.png`` reduced to a 256-colour palette (the README's pictures stay
under 300 kB), and, where the run saved snapshots, ``docs/demo-animation-frame.png``: the
frame of ``isotherms.gif`` when the plane through the probe was hottest.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ablasim.cli import example_path
from ablasim.cli import main as ablasim

DOCS = Path(__file__).resolve().parent
COLOURS = 256


def small_png(source: Path, target: Path) -> Path:
    """``source`` as a palette PNG (``COLOURS`` colours, optimised) at ``target``."""
    with Image.open(source) as img:
        img.convert("RGB").quantize(COLOURS, method=Image.Quantize.FASTOCTREE).save(
            target, optimize=True
        )
    return target


def main(argv: list[str]) -> int:
    if argv:
        run = Path(argv[0])
    else:
        run = DOCS.parent / "demo-output"
        scenario = run.with_name("demo-animated.toml")
        text = example_path("vertebra-demo").read_text(encoding="utf-8")
        scenario.write_text(text + "\n[output]\nanimation = true\n", encoding="utf-8")
        rc = ablasim(["run", str(scenario), "--out", str(run), "-q"])
        if rc != 0:
            return rc
    out = small_png(run / "isotherms_3d.png", DOCS / "demo-isotherms-3d.png")
    print(f"{out}: {out.stat().st_size / 1e3:.0f} kB")
    if (run / "snapshots.npz").is_file():
        out = animation_frame(run, DOCS / "demo-animation-frame.png")
        print(f"{out}: {out.stat().st_size / 1e3:.0f} kB")
    return 0


def animation_frame(run: Path, target: Path) -> Path:
    """The frame of ``run/isotherms.gif`` whose axial plane was hottest."""
    with np.load(run / "snapshots.npz") as z:
        hottest = int(np.argmax(z["z"].reshape(len(z["time_s"]), -1).max(axis=1)))
    with Image.open(run / "isotherms.gif") as gif:
        gif.seek(hottest)
        frame = gif.convert("RGB")
    tmp = target.with_suffix(".full.png")
    frame.save(tmp)
    small_png(tmp, target)
    tmp.unlink()
    return target


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
