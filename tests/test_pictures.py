"""The pictures a planner looks at show what they claim: ``timeseries.png`` has the power
(and the RF impedance) under the temperatures and marks the cut-offs and generator pauses
on both panels; the slices' colour scale is not stretched by a few extreme voxels, and its
colour bar says where it was clipped.

The runs go through ``ablasim run`` on a 2 mm grid for 25 s (about 2 s each); the figures
it saves are caught on their way to disk, so the tests read the drawn artists, not pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from ablasim.cli import main
from ablasim.grid import Grid
from ablasim.tables import read_timeseries_csv
from ablasim.viz import (
    plot_isotherm_panels,
    plot_isotherm_slice,
    plot_power,
    plot_timeseries,
    plot_timeseries_panels,
)

# A 40 W RF needle in muscle with a thermocouple 4 mm away that cuts the power off: on a
# 2 mm grid the step is 4 s and the thermocouple passes 45 °C in the first step.
TINY = """
name = "tiny"
description = "tiny run for the picture tests"
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
{source}
[[phase]]
name = "cool"
duration_s = 5
[[safety.thermocouple]]
name = "near"
position_mm = [4, 0, 0]
cutoff = {cutoff}
"""
RF = """kind = "rf"
name = "probe"
tip_mm = [0, 0, 6]
direction = [0, 0, 1]
active_length_mm = 10
diameter_mm = 4
control = { kind = "power", power_W = 40 }"""
SPHERE = """kind = "volumetric"
name = "sphere"
shape = "sphere"
center_mm = [0, 0, 0]
radius_mm = 4
power_W = 0.5"""


@dataclass
class Run:
    out: Path
    report: dict
    figures: dict  # file name -> the Figure saved as it

    def csv(self) -> dict:
        return read_timeseries_csv(self.out / "timeseries.csv")


def _run(tmp_path_factory, source: str, cutoff: str) -> Run:
    """``ablasim run`` on TINY, catching every figure it saves (through a temporary
    name beside the target: ``.ablasim-tmp.timeseries.png.<random>.part.png``)."""
    base = tmp_path_factory.mktemp("run")
    path = base / "s.toml"
    path.write_text(TINY.format(source=source, cutoff=cutoff), encoding="utf-8")
    saved: list[tuple[str, Figure]] = []
    real = Figure.savefig

    def spy(self, fname, *args, **kw):
        saved.append((Path(fname).name, self))
        return real(self, fname, *args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", spy)
        assert main(["run", str(path), "--out", str(base / "out"), "-q"]) == 0
    out = base / "out"
    figures = {}
    for target in ("timeseries.png", "peak_temperature_slices.png"):
        hits = [f for name, f in saved if name == target or f".{target}." in name]
        assert len(hits) == 1, (target, [n for n, _ in saved])
        figures[target] = hits[0]
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return Run(out, report, figures)


@pytest.fixture(scope="module")
def rf_run(tmp_path_factory):
    return _run(tmp_path_factory, RF, "true")


@pytest.fixture(scope="module")
def sphere_run(tmp_path_factory):
    return _run(tmp_path_factory, SPHERE, "false")


def _not_blank(path: Path) -> None:
    """A PNG of some size with real contrast (a blank or single-colour figure fails)."""
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(path)[..., :3]
    assert img.shape[0] > 400
    assert img.shape[1] > 600
    assert img.std() > 0.05
    # more than the white background and the frame: lines in several colours
    assert len(np.unique((img * 15).round().reshape(-1, 3), axis=0)) > 20


def _line(ax, label):
    lines = [ln for ln in ax.get_lines() if ln.get_label() == label]
    assert len(lines) == 1, [ln.get_label() for ln in ax.get_lines()]
    return lines[0]


def _event_x(ax, kind) -> list[float]:
    """x positions [min] of the vertical event lines of one kind on the axes."""
    xs = []
    for ln in ax.get_lines():
        if ln.get_gid() == f"event:{kind}":
            x = np.asarray(ln.get_xdata(), dtype=float)
            assert x[0] == x[-1]  # vertical
            xs.append(float(x[0]))
    return xs


def _power_column(csv: dict) -> np.ndarray:
    # the CSV column is being renamed from power_W to deposited_power_W
    return next(csv[k] for k in ("deposited_power_W", "power_W") if k in csv)


# -- timeseries.png ------------------------------------------------------------------------
def test_rf_timeseries_has_power_and_impedance_panels(rf_run):
    _not_blank(rf_run.out / "timeseries.png")
    fig = rf_run.figures["timeseries.png"]
    temp, power, impedance = fig.axes  # two panels, the impedance on a twin axis
    assert temp.get_shared_x_axes().joined(temp, power)
    assert "temperature" in temp.get_ylabel()
    assert "power [W]" in power.get_ylabel()
    assert "impedance [Ω]" in impedance.get_ylabel()
    csv = rf_run.csv()
    np.testing.assert_allclose(_line(temp, "TC near").get_ydata(), csv["tc_near_C"])
    p = _line(power, "deposited power")
    np.testing.assert_allclose(p.get_xdata(), csv["time_s"] / 60.0)
    np.testing.assert_allclose(p.get_ydata(), _power_column(csv))
    assert np.max(p.get_ydata()) == pytest.approx(40.0)  # the set power, before the cut
    z = _line(impedance, "probe impedance").get_ydata()
    np.testing.assert_allclose(z, csv["probe_impedance_ohm"], equal_nan=True)
    assert np.isfinite(z).any()


def test_cutoff_is_marked_on_both_panels(rf_run):
    cut = rf_run.report["thermocouples"]["near"]["cutoff_at_s"]
    assert cut is not None
    temp, power, _ = rf_run.figures["timeseries.png"].axes
    for ax in (temp, power):
        assert _event_x(ax, "cutoff") == [pytest.approx(cut / 60.0)]
        labels = [t.get_text() for t in ax.texts]
        assert "cut-off (near)" in labels or "cut-off" in labels, labels
    legend = [t.get_text() for t in temp.get_legend().get_texts()]
    assert f"thermocouple cut-off at {cut:g} s" in legend


def test_a_run_without_rf_has_no_impedance_axis(sphere_run):
    _not_blank(sphere_run.out / "timeseries.png")
    fig = sphere_run.figures["timeseries.png"]
    assert len(fig.axes) == 2
    temp, power = fig.axes
    p = _line(power, "deposited power").get_ydata()
    np.testing.assert_allclose(p[1:], np.where(sphere_run.csv()["time_s"][1:] <= 20, 0.5, 0))
    assert not _event_x(temp, "cutoff")
    assert not _event_x(power, "cutoff")


def test_generator_pauses_and_other_events():
    """Eight pauses: eight lines per panel, counted once in the legend, labelled only
    where there is room; events given as objects work too; a bad event names the key."""

    @dataclass
    class Ev:
        time_s: float
        kind: str
        source: str | None = None
        detail: str = ""

    t = np.arange(0.0, 541.0, 5.0)
    pauses = [{"time_s": 200.0 + 20 * k, "kind": "generator_pause", "source": "probe",
               "detail": "impedance tripled"} for k in range(8)]  # fmt: skip
    events = [*pauses, Ev(380.0, "source_off", "probe")]
    fig = plot_timeseries_panels(
        t, {"tc": 37 + t / 100}, np.where(t < 420, 15.0, 0.0),
        impedance={"probe": np.where(t < 420, 80.0, np.nan)}, events=events,
        phases=[("rf", 0, 420), ("cool", 420, 540)],
    )  # fmt: skip
    temp, power, _ = fig.axes
    for ax in (temp, power):
        assert _event_x(ax, "generator_pause") == pytest.approx(
            [(200 + 20 * k) / 60 for k in range(8)]
        )
        assert _event_x(ax, "source_off") == [pytest.approx(380 / 60)]
        labels = [t.get_text() for t in ax.texts]
        assert 1 <= labels.count("pause (probe)") < 8
        assert "source off (probe)" in labels
    legend = [t.get_text() for t in power.get_legend().get_texts()]
    assert "generator pause ×8" in legend
    assert "probe impedance" in legend
    with pytest.raises(ValueError, match="time_s"):
        plot_timeseries(t, {"tc": t}, events=[{"kind": "cutoff"}])


def test_power_panel_alone_draws_into_given_axes(tmp_path):
    ax = Figure().add_subplot()
    t = [0.0, 60.0, 120.0]
    assert plot_power(t, [0.0, 5.0, 5.0], events=[{"time_s": 60.0, "kind": "cutoff"}],
                      ax=ax, save=tmp_path / "p.png") is ax  # fmt: skip
    assert _event_x(ax, "cutoff") == [1.0]
    assert (tmp_path / "p.png").stat().st_size > 5_000
    with pytest.raises(ValueError, match="impedance trace 'probe'"):
        plot_power(t, [0.0, 5.0, 5.0], impedance={"probe": [1.0]})


# -- the slices' colour scale --------------------------------------------------------------
@pytest.fixture
def body():
    return Grid.from_extent(0.031, 0.001)  # 31 voxels of 1 mm, a centre at 0


def _heated(body, peak=80.0, hot_voxels=0, hot_C=250.0):
    """A Gaussian hot spot of ``peak`` °C with ``hot_voxels`` at ``hot_C`` at its centre
    (an RF electrode's edges)."""
    x, y, z = body.mesh()
    t = 37.0 + (peak - 37.0) * np.exp(-(x**2 + y**2 + z**2) / (2 * 0.005**2))
    t[15, 15, 15 : 15 + hot_voxels] = hot_C
    return t


def _colorbar(fig):
    (cb,) = {ax.images[0].colorbar for ax in fig.axes if ax.images} - {None}
    return cb


def test_a_few_hot_voxels_do_not_stretch_the_colour_scale(body):
    fig = plot_isotherm_panels(body, _heated(body, hot_voxels=3))
    cb = _colorbar(fig)
    # 100 °C: the top of the model's range (boiling), above every isotherm drawn (60 °C)
    assert cb.norm.vmax == 100.0
    assert cb.extend == "max"
    assert "clipped at 100 °C; peak 250 °C" in cb.ax.get_ylabel()
    # the isotherms of interest keep a quarter of the colours (7 % unclipped)
    assert (60 - 45) / (cb.norm.vmax - cb.norm.vmin) > 0.2
    # slices share the clipped scale; the titles still give the true maximum
    slices = [ax for ax in fig.axes if ax.images]
    assert {ax.images[0].norm.vmax for ax in slices} == {100.0}
    assert any("max 250.0 °C" in ax.get_title() for ax in slices)
    # a higher isotherm raises the clip above it
    cb = _colorbar(plot_isotherm_panels(body, _heated(body, hot_voxels=3), isotherms=(45, 95)))
    assert cb.norm.vmax == 105.0


def test_a_field_within_range_is_not_clipped(body):
    ax = plot_isotherm_slice(body, _heated(body, peak=80.0))
    cb = ax.images[0].colorbar
    assert (cb.norm.vmin, cb.norm.vmax) == (37.0, 80.0)
    assert cb.extend == "neither"
    assert cb.ax.get_ylabel() == "temperature [°C]"


def test_a_cold_field_is_clipped_at_the_low_end(body):
    t = _heated(body, peak=-60.0, hot_voxels=2, hot_C=-150.0)  # a cryoprobe's wall
    ax = plot_isotherm_slice(body, t, cold_isotherms=(0, -20, -40))
    cb = ax.images[0].colorbar
    assert cb.norm.vmin == -50.0  # 10 K below the coldest isotherm
    assert cb.extend == "min"
    assert "clipped at -50 °C; lowest -150 °C" in cb.ax.get_ylabel()
    assert {"0 °C", "-20 °C", "-40 °C"} <= {txt.get_text() for txt in ax.texts}


def test_run_slices_are_drawn_and_named(rf_run):
    _not_blank(rf_run.out / "peak_temperature_slices.png")
    fig = rf_run.figures["peak_temperature_slices.png"]
    cb = _colorbar(fig)
    peak = max(v["max_temperature_C"] for v in rf_run.report["thermocouples"].values())
    assert cb.norm.vmax >= min(peak, 100.0)
    # no nameless legend entry for the nerves of a model that has none
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "" not in legend
    assert "isotherms 50, 60 °C" in legend
