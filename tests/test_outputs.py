"""Output files: VTK image data, the time-series CSV, and the isotherm pictures."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ablasim.grid import Grid
from ablasim.tables import read_timeseries_csv, write_timeseries_csv
from ablasim.viz.isotherms import plot_isotherm_panels, plot_isotherm_slice
from ablasim.viz.timeseries import plot_timeseries
from ablasim.vtkio import read_vti, write_vti


@pytest.fixture
def grid():
    # odd, unequal sizes so that a wrong axis order cannot pass
    return Grid((7, 5, 4), 0.0005, (-0.0015, -0.001, 0.002))


@pytest.fixture
def fields(grid, rng):
    t = 37.0 + 50.0 * rng.random(grid.shape)
    labels = rng.integers(0, 5, grid.shape).astype(np.int32)
    return {"temperature_C": t, "labels": labels, "nerve": labels == 2}


def _hot_field(grid, center=(0.0, 0.0, 0.0), peak=50.0, width=0.004):
    x, y, z = grid.mesh()
    r2 = (x - center[0]) ** 2 + (y - center[1]) ** 2 + (z - center[2]) ** 2
    return 37.0 + peak * np.exp(-r2 / (2 * width**2))


# -- VTK ---------------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [True, False])
def test_vti_round_trip(tmp_path, grid, fields, compress):
    path = write_vti(tmp_path / "final.vti", grid, fields, compress=compress)
    assert path.exists()
    info, back = read_vti(path)
    assert info["shape"] == grid.shape
    np.testing.assert_allclose(info["origin"], np.asarray(grid.origin) * 1e3)
    np.testing.assert_allclose(info["spacing"], [0.5, 0.5, 0.5])
    assert list(back) == list(fields)
    assert back["temperature_C"].dtype == np.float32
    np.testing.assert_allclose(back["temperature_C"], fields["temperature_C"], rtol=1e-6)
    assert back["labels"].dtype == np.int32
    np.testing.assert_array_equal(back["labels"], fields["labels"])
    assert back["nerve"].dtype == np.uint8
    np.testing.assert_array_equal(back["nerve"], fields["nerve"])


def test_vti_metres_and_vectors(tmp_path, grid, rng):
    vec = rng.random((*grid.shape, 3))
    info, back = read_vti(write_vti(tmp_path / "v.vti", grid, {"v": vec}, units_mm=False))
    np.testing.assert_allclose(info["spacing"], [grid.spacing] * 3)
    np.testing.assert_allclose(back["v"], vec, rtol=1e-6)


def test_vti_compresses_smooth_fields(tmp_path):
    g = Grid((40, 40, 40), 0.001)
    t = np.full(g.shape, 37.0)
    small = write_vti(tmp_path / "c.vti", g, {"T": t}).stat().st_size
    big = write_vti(tmp_path / "r.vti", g, {"T": t}, compress=False).stat().st_size
    assert big > 4 * g.size  # float32 payload
    assert small < big / 20


def test_vti_rejects_wrong_shape(tmp_path, grid):
    with pytest.raises(ValueError, match="'dose'"):
        write_vti(tmp_path / "x.vti", grid, {"T": np.zeros(grid.shape), "dose": np.zeros(3)})
    assert not list(tmp_path.iterdir())


def test_vti_read_by_vtk(tmp_path, grid, fields):
    import vtk

    path = write_vti(tmp_path / "final.vti", grid, fields)
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    assert image.GetDimensions() == grid.shape
    np.testing.assert_allclose(image.GetOrigin(), np.asarray(grid.origin) * 1e3)
    np.testing.assert_allclose(image.GetSpacing(), [0.5, 0.5, 0.5])
    ijk = (5, 3, 2)
    pid = image.ComputePointId(list(ijk))
    # VTK's point position is our voxel centre, in mm
    np.testing.assert_allclose(image.GetPoint(pid), grid.index_to_world(ijk) * 1e3)
    data = image.GetPointData()
    assert data.GetScalars().GetName() == "temperature_C"
    t = data.GetArray("temperature_C").GetValue(pid)
    assert t == pytest.approx(fields["temperature_C"][ijk], rel=1e-6)
    assert data.GetArray("labels").GetValue(pid) == fields["labels"][ijk]
    assert data.GetArray("nerve").GetValue(pid) == int(fields["nerve"][ijk])


# -- CSV ---------------------------------------------------------------------------------
def test_timeseries_round_trip(tmp_path):
    t = np.arange(0.0, 10.0, 0.1)
    power = 20.0 * np.exp(-t / 3.0)
    tc = (37.0 + 0.1 * t).astype(np.float32)
    phases = ["rf"] * 50 + ["cement, early"] * 50  # a comma must be quoted
    path = write_timeseries_csv(
        tmp_path / "timeseries.csv",
        t,
        {"power_W": power, "tc_epidural_C": tc, "cutoff": t > 5},
        phase_names=phases,
    )
    back = read_timeseries_csv(path)
    assert list(back) == ["time_s", "phase", "power_W", "tc_epidural_C", "cutoff"]
    np.testing.assert_array_equal(back["time_s"], t)  # exact: repr round-trip
    np.testing.assert_array_equal(back["power_W"], power)
    np.testing.assert_array_equal(back["tc_epidural_C"].astype(np.float32), tc)
    assert back["phase"] == phases
    np.testing.assert_array_equal(back["cutoff"], (t > 5).astype(int))
    # float32 values are written short, not as 37.099998474121094
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[2][3] == "37.01"


def test_timeseries_digits(tmp_path):
    t = np.array([0.0, 0.5, 1.0])
    path = write_timeseries_csv(tmp_path / "t.csv", t, {"tc_C": [37.123456789, 40, 41]}, digits=6)
    assert path.read_text().splitlines()[1] == "0.0,37.1235"


def test_timeseries_read_by_pandas(tmp_path):
    import pandas as pd

    t = np.array([0.0, 0.5, 1.0])
    path = write_timeseries_csv(tmp_path / "t.csv", t, {"tc_C": [37.123456789, 40, 41]}, digits=6)
    df = pd.read_csv(path)
    assert list(df.columns) == ["time_s", "tc_C"]
    assert df["tc_C"].iloc[0] == pytest.approx(37.1235)


@pytest.mark.parametrize(
    ("columns", "phases", "name"),
    [
        ({"tc_epidural_C": [37.0, 38.0]}, None, "tc_epidural_C"),
        ({"power_W": [1.0, 2.0, 3.0]}, ["rf", "rf"], "phase"),
        ({"time_s": [1.0, 2.0, 3.0]}, None, "time_s"),
    ],
)
def test_timeseries_rejects_bad_columns(tmp_path, columns, phases, name):
    with pytest.raises(ValueError, match=name):
        write_timeseries_csv(tmp_path / "t.csv", [0.0, 1.0, 2.0], columns, phase_names=phases)
    assert not (tmp_path / "t.csv").exists()


# -- atomic writes -----------------------------------------------------------------------
class _Boom(Exception):
    pass


class _Exploding:
    """An array-like that fails half-way through a write."""

    def __init__(self, shape):
        self.shape = shape

    def __array__(self, dtype=None, copy=None):
        raise _Boom("interrupted")


def test_interrupted_writes_leave_nothing(tmp_path, grid, monkeypatch):
    # the CSV and VTK writers validate/convert everything before opening the file ...
    with pytest.raises(_Boom):
        write_vti(tmp_path / "f.vti", grid, {"T": _Exploding(grid.shape)})
    with pytest.raises(_Boom):
        write_timeseries_csv(tmp_path / "t.csv", [0.0], {"x": _Exploding((1,))})
    # ... and an interruption while the file is being written leaves no file either
    from ablasim import tables

    orig = tables.csv.writer

    def broken_writer(fh, **kw):
        w = orig(fh, **kw)

        class W:
            def writerow(self, row):
                w.writerow(row)
                raise _Boom("disk gone")

        return W()

    monkeypatch.setattr(tables.csv, "writer", broken_writer)
    with pytest.raises(_Boom):
        write_timeseries_csv(tmp_path / "t.csv", [0.0], {"x": [1.0]})
    monkeypatch.undo()
    fig = Figure()
    fig.add_subplot().plot([0, 1])
    fig.savefig = lambda *a, **k: (_ for _ in ()).throw(_Boom("renderer died"))
    with pytest.raises(_Boom):
        plot_timeseries([0.0, 1.0], {"tc": [37.0, 38.0]}, ax=fig.axes[0], save=tmp_path / "p.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# -- pictures ----------------------------------------------------------------------------
@pytest.fixture
def body():
    return Grid.from_extent(0.031, 0.001)  # 31 voxels: a voxel centre at 0


def _png_ok(path, min_bytes=15_000):
    assert path.exists()
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > min_bytes


def test_isotherm_slice(tmp_path, body):
    t = _hot_field(body, center=(0.002, 0.0, 0.0))
    x, y, z = body.mesh()
    labels = np.broadcast_to((y < -0.006).astype(np.int16) + (x > 0.008), body.shape)
    nerve = np.broadcast_to((y < -0.009) & (np.abs(x) < 0.003), body.shape)
    tumour = (x - 0.002) ** 2 + y**2 + z**2 < 0.005**2
    ax = plot_isotherm_slice(
        body, t, axis="z", position=(0.002, 0.0, 0.0), labels=labels, nerve_mask=nerve,
        structures={"tumour": tumour}, title="RF", save=tmp_path / "axial.png",
    )  # fmt: skip
    assert isinstance(ax, Axes)
    _png_ok(tmp_path / "axial.png")
    assert "axial  z = 0.0 mm" in ax.get_title()
    assert "R" in ax.get_xlabel()
    assert "A" in ax.get_ylabel()
    image = ax.images[0]
    np.testing.assert_allclose(image.get_array(), t[:, :, 15].T)  # rows = y
    labels_drawn = {txt.get_text() for txt in ax.texts}
    assert "45 °C nerve limit" in labels_drawn
    assert {"50 °C", "60 °C"} <= labels_drawn


@pytest.mark.parametrize(("axis", "hlab", "vlab"), [("x", "P", "S"), ("y", "R", "S")])
def test_isotherm_slice_axes(body, axis, hlab, vlab):
    ax = plot_isotherm_slice(body, _hot_field(body), axis=axis)
    assert hlab in ax.get_xlabel()
    assert vlab in ax.get_ylabel()
    assert {"sagittal" if axis == "x" else "coronal"} <= set(ax.get_title().split())


def test_cryo_slice_uses_cold_isotherms(tmp_path, body):
    t = _hot_field(body, peak=-80.0, width=0.006)
    ax = plot_isotherm_slice(body, t, axis="y", cold_isotherms=(0, -20, -40),
                             save=tmp_path / "cryo.png")  # fmt: skip
    _png_ok(tmp_path / "cryo.png")
    assert {"0 °C", "-20 °C", "-40 °C"} <= {txt.get_text() for txt in ax.texts}
    assert "min" in ax.get_title()


def test_isotherm_slice_checks_input(body):
    t = _hot_field(body)
    with pytest.raises(ValueError, match="axis"):
        plot_isotherm_slice(body, t, axis="w")
    with pytest.raises(ValueError, match="labels"):
        plot_isotherm_slice(body, t, labels=np.zeros((2, 2, 2), int))
    with pytest.raises(ValueError, match="slice position"):
        plot_isotherm_slice(body, t, position=(1.0, 0.0, 0.0))


def test_isotherm_panels(tmp_path, body):
    probe = (0.0, 0.003, 0.0)
    nerve_point = (0.0, -0.009, 0.0)
    nerve = np.zeros(body.shape, bool)
    nerve[12:19, 3:8, :] = True
    fig = plot_isotherm_panels(
        body, _hot_field(body, probe), probe=probe, nerve_point=nerve_point,
        nerve_mask={"spinal_cord": nerve}, save=tmp_path / "isotherms.png",
    )  # fmt: skip
    assert isinstance(fig, Figure)
    _png_ok(tmp_path / "isotherms.png", 40_000)
    slices = [ax for ax in fig.axes if ax.images]
    assert len(slices) == 6
    assert sum("nearest nerve" in ax.get_title() for ax in slices) == 3
    # one colour scale for all panels
    assert len({ax.images[0].norm.vmax for ax in slices}) == 1
    fig1 = plot_isotherm_panels(body, _hot_field(body))
    assert len([ax for ax in fig1.axes if ax.images]) == 3
    with pytest.raises(TypeError, match="axis"):
        plot_isotherm_panels(body, _hot_field(body), axis="z")


def test_timeseries_plot(tmp_path):
    t = np.arange(0.0, 1200.0, 10.0)
    traces = {
        "epidural": 37 + 6 * (1 - np.exp(-t / 300)),
        "foramen": 37 + 12 * (1 - np.exp(-t / 200)),
    }
    phases = [("rf", 0, 420), ("cement", 420, 1200)]
    ax = plot_timeseries(t, traces, phases=phases, cold_limit=10.0, save=tmp_path / "tc.png")
    assert isinstance(ax, Axes)
    _png_ok(tmp_path / "tc.png")
    assert ax.get_xlim() == pytest.approx((0.0, t[-1] / 60))
    assert "min" in ax.get_xlabel()
    texts = {txt.get_text() for txt in ax.texts}
    assert {"rf", "cement"} <= texts
    legend = [txt.get_text() for txt in ax.get_legend().get_texts()]
    assert legend[:2] == ["epidural", "foramen"]
    assert any("45" in s for s in legend)
    assert any("10" in s for s in legend)
    with pytest.raises(ValueError, match="foramen"):
        plot_timeseries(t, {"foramen": t[:-1]})


def test_plots_draw_into_given_axes(body):
    fig = Figure()
    a1, a2 = fig.subplots(1, 2)
    assert plot_isotherm_slice(body, _hot_field(body), ax=a1) is a1
    assert plot_timeseries([0, 60], {"tc": [37, 40]}, ax=a2) is a2
