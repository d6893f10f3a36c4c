"""The teaching notebooks run for real: each is executed top to bottom in a Jupyter kernel
(nbclient + ipykernel, the executor Jupyter itself uses), in a temporary folder so nothing
is written into the repository, and its outputs are read back and checked.

Every notebook ends with a code cell whose value is a plain ``dict`` of numbers (its
``execute_result``); ``EXPECTED`` states, per notebook, the range each number must fall
in, and why. Every notebook must also have drawn at least one figure (an ``image/png``
output from matplotlib's inline backend).
"""

from __future__ import annotations

import ast
import os
import sys
import time
from pathlib import Path

import nbclient  # the test extra: a missing executor fails the suite, it is not skipped
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

# seconds a notebook may take on the shared 2-core machine (each measures ~5-20 s)
TIMEOUT_S = 240

# The last cell's summary, per notebook: key -> (low, high) or an exact value.
EXPECTED: dict[str, dict] = {
    "01-isotherms-growing": {
        # the same power heats less tissue above 50 °C when the tumour is well perfused
        "perfusion_shrinks_zone": True,
    },
    "02-pennes-and-perfusion": {
        # 2 mm voxels against the exact steady solution: the centre within 10 % of the
        # exact rise (second-order scheme, a 10 mm sphere cut into 2 mm voxels)
        "centre_rel_error_perfused": (0.0, 0.10),
        "centre_rel_error_unperfused": (0.0, 0.10),
        # perfusion (muscle, about 0.0005-0.001 /s) lowers the centre rise, it never raises it
        "perfusion_lowers_peak": True,
    },
    "03-three-sources-in-one-vertebra": {
        "sources_compared": 3,
        # every source ablates something in 5 min (the 2.5 W heater, the least, ~3.8 ml at
        # 1 mm) and none the whole 48 x 64 x 40 mm block (123 ml)
        "min_zone_ml": (0.5, 100.0),
        # the nerves warm (MW reaches ~47 °C at the cord) but stay far below boiling
        "max_nerve_C": (37.0, 100.0),
        # 20 W of microwaves reach farther than RF at 70 °C or 2.5 W of plain heating
        "microwave_zone_largest": True,
    },
    "04-how-close-is-too-close": {
        "positions": (3, 10),
        # the verdict flips between the farthest tip (12 mm) and the nearest (-4 mm)
        "verdict_flips": True,
        # the nerve maximum rises as the probe approaches the canal
        "nerve_max_rises": True,
    },
    "05-a-small-sweep": {
        "runs": 9,
        "errors": 0,
        # 2 W is safe and 4 W with little perfusion is not, at this tip position
        "both_verdicts": True,
        # more power never cools the nerves; more perfusion never grows the zone
        "monotone_in_power": True,
        "perfusion_shrinks_zone": True,
    },
    "06-iceball-growing": {
        # one 17 G probe at -150 °C, 10 min in unperfused muscle at 1 mm (measured 0.39,
        # 12.1 ml, 4.8 mm, 0.28): the 0 °C radius grows a little slower than √t around a
        # thin cylinder; the lethal -20 °C isotherm lies millimetres inside the visible
        # edge (PMC4850244: -40 °C ~1 cm inside) and holds a fraction of the iceball
        "growth_exponent_0C": (0.3, 0.5),
        "iceball_0C_ml": (8.0, 16.0),
        "lethal_gap_mm": (3.0, 7.0),
        "lethal_volume_fraction": (0.15, 0.45),
        # blood flow acts only in unfrozen tissue, at the edge: it trims the 0 °C iceball,
        # relatively more than the lethal core
        "perfusion_shrinks_iceball": True,
        "perfusion_trims_edge_more": True,
        # passive thaw (5 min): the core warms above -20 °C within a minute (measured
        # 30 s), its cold first freezing the mushy shell a little further (the 0 °C volume
        # grows); then the iceball melts slowly (measured 55 % left); the second freeze
        # reaches a larger lethal zone than the first
        "edge_grows_first": True,
        "thaw_keeps_0C_fraction": (0.3, 0.9),
        "lethal_gone_s": (0.0, 60.0),
        "refreeze_grows_lethal": True,
        # vertebra-cryo / -co2 at 1 mm, shortened to 5-5-5 min (measured 16.0 and
        # 28.4 °C, the cord 9.8 K warmer): no cut-off without the gas in this short
        # protocol, and CO₂ keeps the epidural space and the cord warmer
        "epidural_min_C_plain": (10.0, 22.0),
        "epidural_min_C_co2": (22.0, 37.0),
        "co2_warms_cord_K": (5.0, 20.0),
        # the layer lies behind the posterior wall: the tumour freezes alike (both 84 %
        # below -20 °C in this short protocol)
        "tumour_cover_difference": (0.0, 0.02),
    },
}


def _execute(path: Path, workdir: Path):
    nb = nbformat.read(path, as_version=4)
    # the kernel is this interpreter's own ipykernel; figures come back as PNG outputs
    env_backend = os.environ.pop("MPLBACKEND", None)
    try:
        client = nbclient.NotebookClient(
            nb,
            timeout=TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(workdir)}},
        )
        client.km = client.create_kernel_manager()
        # this interpreter, whatever kernels the user has installed
        client.km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher"]
        client.km.kernel_cmd += ["-f", "{connection_file}"]
        client.execute()
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
    return nb


def _summary(nb) -> dict:
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    results = [o for o in last.get("outputs", []) if o.output_type == "execute_result"]
    assert results, "the notebook's last code cell must end with its summary dict"
    text = results[-1]["data"]["text/plain"]
    try:
        return ast.literal_eval(text)
    except ValueError:
        raise AssertionError(
            f"the summary must hold plain Python values (wrap numpy numbers in float() or "
            f"bool()), got {text}"
        ) from None


def _check(summary: dict, expected: dict) -> list[str]:
    problems = []
    for key, want in expected.items():
        if key not in summary:
            problems.append(f"{key}: missing from the summary {summary}")
            continue
        got = summary[key]
        if isinstance(want, tuple):
            if not want[0] <= got <= want[1]:
                problems.append(f"{key} = {got}, expected in [{want[0]}, {want[1]}]")
        elif got != want:
            problems.append(f"{key} = {got!r}, expected {want!r}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_shows_what_it_teaches(path, tmp_path):
    t0 = time.perf_counter()
    nb = _execute(path, tmp_path)
    seconds = time.perf_counter() - t0
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors
    pngs = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if o.output_type in ("display_data", "execute_result") and "image/png" in o["data"]
    ]
    assert pngs, f"{path.name} drew no figure"
    assert path.stem in EXPECTED, f"add {path.stem!r} to EXPECTED with the checks of its summary"
    problems = _check(_summary(nb), EXPECTED[path.stem])
    assert not problems, f"{path.name} ({seconds:.1f} s): " + "; ".join(problems)
    # nothing was written beside the notebooks
    assert not list(path.parent.glob("*.nbconvert.ipynb"))


def test_check_fails_on_a_number_out_of_range():
    assert _check({"a": 2.0}, {"a": (0.0, 1.0)})
    assert _check({"a": False}, {"a": True})
    assert _check({}, {"a": True})
    assert not _check({"a": 0.5, "b": True}, {"a": (0.0, 1.0), "b": True})


def test_notebooks_are_committed_without_outputs():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                advice = (
                    f"{path.name}: strip the outputs before committing (Kernel > Restart & "
                    "Clear Output, or nbstripout)"
                )
                assert not cell.get("outputs"), advice
                assert cell.get("execution_count") is None, advice


def test_there_is_a_notebook():
    assert NOTEBOOKS


def test_readme_lists_every_notebook():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [p.stem for p in NOTEBOOKS if p.stem not in readme]
    assert not missing, f"list these notebooks in the README's Layout section: {missing}"
