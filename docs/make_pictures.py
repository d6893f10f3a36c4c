"""Make the README's pictures from the demo run.

    .venv/bin/python docs/make_pictures.py [RESULT_DIR]

Without RESULT_DIR it runs ``ablasim run --example vertebra-demo --out demo-output``
(about 20 s) first. It writes ``docs/demo-isotherms-3d.png``: the run's
``isotherms_3d.png`` reduced to a 256-colour palette (the README's pictures stay under
300 kB).
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

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
        rc = ablasim(["run", "--example", "vertebra-demo", "--out", str(run), "-q"])
        if rc != 0:
            return rc
    out = small_png(run / "isotherms_3d.png", DOCS / "demo-isotherms-3d.png")
    print(f"{out}: {out.stat().st_size / 1e3:.0f} kB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
