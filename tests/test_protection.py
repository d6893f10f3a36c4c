"""Protective layers (``kind = "protection"``): where the layer goes, what it refuses, what
it hands the loop, and two physics checks on a slab: a CO₂ layer insulates, and its
effective heat capacity does not change the answer."""

from __future__ import annotations

import numpy as np
import pytest

import ablasim as ab
from ablasim.anatomy import Structure, make_phantom
from ablasim.sources import ProtectionSource, read_source
from ablasim.tissues import TissueLibrary

PATH = "phase[0].source[0]"


def _small():
    """Muscle with a fat band (z in [-3, 0) mm), a nerve (z >= 0) and a bone block (z < -6)."""
    grid = ab.Grid((8, 8, 24), 1e-3, origin=(-3.5e-3, -3.5e-3, -11.5e-3))
    _, _, z = grid.mesh()
    labels = np.zeros(grid.shape, dtype=np.uint8)
    labels[...] = np.where(z >= 0, 2, np.where(z >= -3e-3, 1, np.where(z < -6e-3, 3, 0)))
    structures = (
        Structure("soft", "muscle"),
        Structure("band", "fat"),
        Structure("root", "nerve"),
        Structure("block", "cortical_bone"),
    )
    return ab.Model(grid, labels, structures)


def _src(**kw):
    args = {"fluid": "co2", "fills": "band", "near": "root", "thickness": 2e-3, "name": "gas"}
    return ProtectionSource(**{**args, **kw})


def _table(**change):
    t = {"kind": "protection", "fluid": "co2", "fills": "band", "near": "root",
         "thickness_mm": 2}  # fmt: skip
    return {**t, **change}


def _problems(exc):
    return dict(getattr(exc.value, "problems", ()))


# -- where the layer goes ------------------------------------------------------------------
def test_the_layer_is_the_filled_tissue_within_the_thickness():
    model = _small()
    mask = _src().layer(model)
    z = model.grid.axes()[2]
    # the nerve starts at z = 0 (voxel centre 0.5 mm): fat at z = -0.5 and -1.5 mm
    # (1 and 2 mm from it) is in, fat at -2.5 mm (3 mm) is out
    assert set(np.round(z[np.nonzero(mask.any(axis=(0, 1)))] * 1e3, 3)) == {-0.5, -1.5}
    assert mask[..., np.isin(np.round(z * 1e3, 3), [-0.5, -1.5])].all()
    thicker = _src(thickness=10e-3).layer(model)  # never beyond the filled structure
    assert np.array_equal(thicker, model.structure_mask("band"))


def test_the_layer_against_a_brute_force_distance_and_the_facing_side():
    """A nerve cylinder in muscle; the layer against distances computed point by point
    (independent of the distance transform), on the side facing a point."""
    grid = ab.Grid((15, 15, 6), 1e-3, origin=(-7e-3, -7e-3, -2.5e-3))
    x, y, _ = grid.mesh()
    nerve = np.broadcast_to(np.hypot(x, y) <= 2e-3, grid.shape)
    model = ab.Model.uniform(grid, "muscle").with_material(
        np.flatnonzero(nerve), tissue="nerve", structure="root"
    )
    p = (0.0, 6e-3, 0.0)
    mask = _src(fills="muscle", thickness=2.5e-3, facing=p).layer(model)
    pts = np.stack(np.meshgrid(*grid.axes(), indexing="ij"), axis=-1).reshape(-1, 3)
    npts = pts[nerve.reshape(-1)]
    d = np.sqrt(((pts[:, None, :] - npts[None, :, :]) ** 2).sum(-1)).min(axis=1)
    c = npts.mean(axis=0)
    side = (pts - c) @ (np.asarray(p) - c) > 0
    expect = (~nerve.reshape(-1)) & (d <= 2.5e-3 + 1e-12) & side
    assert np.array_equal(mask.reshape(-1), expect)
    assert mask.sum() > 20


def test_the_vertebra_gives_the_anterior_epidural_space():
    """The phantom's epidural fat within 3 mm of the dural sac (CSF), on the side facing
    a probe in the vertebral body: the fat between the sac and the posterior wall."""
    grid = ab.Grid.from_extent((0.032, 0.048, 0.02), 1e-3, center=(0, -0.008, 0))
    model = ab.Model.from_phantom(make_phantom("vertebra", grid, level="L1"))
    src = _src(fills="epidural_fat", near="csf", thickness=3e-3, facing=(0, 4e-3, 0))
    mask = src.layer(model)
    names = {model.structures[i].name for i in np.unique(model.labels[mask])}
    assert names == {"epidural_fat"}
    csf_y = model.grid.index_to_world(np.argwhere(model.structure_mask("csf")).mean(axis=0))[1]
    ys = model.grid.axes()[1]
    assert ys[np.nonzero(mask.any(axis=(0, 2)))].min() > csf_y  # anterior half only
    # on the midline every epidural voxel in front of the sac is CO2
    i, _, k = model.grid.world_to_index((0, 0, 0))
    col = model.labels[i, :, k]
    fat = col == model.structure_names.index("epidural_fat")
    front = fat & (ys > csf_y)
    assert front.sum() >= 2  # the anterior epidural space, 2-3 voxels at 1 mm
    assert np.array_equal(mask[i, :, k], front)
    assert src.location(model)[1] == pytest.approx(-0.017, abs=2e-3)


# -- bad input -------------------------------------------------------------------------------
def test_a_layer_must_not_replace_bone_or_a_nerve():
    model = _small()
    for fills in ("block", ["band", "root_x"], "root"):
        with pytest.raises(ab.ScenarioError) as err:
            _src(fills=fills, near="soft" if fills == "root" else "root").bind(model)
        assert "fills" in _problems(err)
    with pytest.raises(ab.ScenarioError, match="must not replace bone or a nerve") as err:
        _src(fills="block").bind(model)
    assert "block (cortical_bone)" in str(err.value)
    assert "fat, muscle, ligament, skin" in str(err.value)


def test_unknown_structures_are_named_with_the_models():
    with pytest.raises(ab.ScenarioError) as err:
        _src(near="rooot").bind(_small())
    msg = _problems(err)["near"]
    assert "'rooot'" in msg
    assert "did you mean 'root'" in msg
    assert "soft, band, root, block" in msg


def test_an_empty_layer_says_why():
    model = _small()
    with pytest.raises(ab.ScenarioError) as err:
        _src(thickness=0.5e-3).bind(model)  # voxel centres are 1 mm apart
    assert "the layer is empty" in _problems(err)["thickness_mm"]
    with pytest.raises(ab.ScenarioError) as err:
        _src(facing=(0, 0, 0.02)).bind(model)  # the fat is behind the nerve, seen from there
    assert "facing_mm" in _problems(err)["thickness_mm"]


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"thickness_mm": 0}, "thickness_mm", "must be > 0, got 0"),
        ({"thickness_mm": -2}, "thickness_mm", "must be > 0, got -2"),
        ({"circulating": True}, "circulating", "only a liquid circulates"),
        ({"fluid": "air"}, "fluid", "'air' is not one of"),
        ({"fills": 3}, "fills", "must be a structure name or a list of them"),
        ({"near": ["root", 2]}, "near", "must be a structure name or a list of them"),
        ({"near": "band"}, "near", "in both fills and near"),
        ({"temperature_C": 80}, "temperature_C", "must be <= 50, got 80"),
    ],
)
def test_bad_values_are_named_by_their_key(change, key, words):
    with pytest.raises(ab.ScenarioError) as err:
        read_source(_table(**change), path=PATH)
    assert f"{PATH}.{key}: " in str(err.value)
    assert words in str(err.value)


def test_fills_and_near_are_required():
    table = _table()
    del table["fills"]
    with pytest.raises(ab.ScenarioError) as err:
        read_source(table, path=PATH)
    assert f"{PATH}.fills: is required" in str(err.value)


# -- what the loop gets ----------------------------------------------------------------------
def test_co2_is_a_lasting_material_and_holds_nothing():
    src = read_source(_table(fills=["band"], name="gas"), path=PATH)
    assert src.describe()["fills"] == ["band"]
    assert src.describe()["near"] == ["root"]
    bound = src.bind(_small())
    change = bound.material()
    assert bound.lasting
    assert (change.tissue, change.structure, change.temperature_C) == ("co2", "gas", 37.0)
    assert change.index.size == 2 * 64  # two 8 x 8 planes
    assert bound.held(0.0) is None
    assert any("effective heat capacity" in s for s in src.assumptions())


def test_circulating_saline_is_held_by_one_unchanging_object():
    src = _src(fluid="saline", circulating=True, temperature_C=42.0)
    bound = src.bind(_small())
    assert bound.material().tissue == "saline"
    held = bound.held(0.0)
    assert held is bound.held(100.0)  # the same object: no change for the loop
    assert np.array_equal(held.index, bound.material().index)
    assert np.all(held.temperature_C == 42.0)
    assert any("upper bound" in s for s in src.assumptions())
    still = _src(fluid="saline").bind(_small())
    assert still.held(0.0) is None
    assert still.material().temperature_C == 37.0


# -- physics on a slab -----------------------------------------------------------------------
#: Slab along z (x, y insulated): z = 0 held at -40 °C (an iceball's edge), 5 mm of muscle,
#: a 3 mm band of fat that the layer may replace, then the "cord" (spinal-cord tissue) to
#: z = 20 mm, whose far face is at body temperature; the point read lies 2 mm behind the
#: band. 5 min: long enough for the cold to cross the 5 mm of muscle and the band.
H = 0.5e-3
N = 40
READ_MM = 10.0
MINUTES = 5.0


def _slab(lib=None):
    boundary = ab.Boundary.adiabatic()
    boundary = boundary.with_face("z_min", ab.FaceCondition("temperature", -40.0))
    boundary = boundary.with_face("z_max", ab.FaceCondition("body", 37.0))
    grid = ab.Grid((1, 1, N), H, origin=(0.0, 0.0, H / 2))
    z = grid.axes()[2]
    labels = np.zeros(grid.shape, dtype=np.uint8)
    labels[..., (z > 5e-3) & (z < 8e-3)] = 1
    labels[..., z > 8e-3] = 2
    structures = (Structure("front", "muscle"), Structure("gap", "fat"),
                  Structure("cord", "spinal_cord"))  # fmt: skip
    lib = lib or TissueLibrary.default()
    return ab.Model(grid, labels, structures, lib, boundary)


def _behind(model, layer: bool) -> float:
    sources = [_src(fills="gap", near="cord", thickness=3e-3)] if layer else []
    if layer:
        assert sources[0].bind(model).material().index.size == 6  # the whole 3 mm band
    res = ab.simulate(model, [ab.Phase("cold", MINUTES * 60, sources)], threads=1)
    z = model.grid.axes()[2]
    return float(np.interp(READ_MM * 1e-3, z, res.temperature[0, 0, :]))


@pytest.fixture(scope="module")
def behind():
    lib = TissueLibrary.default()
    quarter = lib.with_overrides({"co2": {"density_kg_m3": lib["co2"].density_kg_m3 / 4}})
    return {
        "fat": _behind(_slab(), False),
        "co2": _behind(_slab(), True),
        "co2_quarter": _behind(_slab(quarter), True),
    }


def test_a_co2_layer_insulates(behind):
    """Its conductivity is ~13x below fat's: the cord behind cools much less."""
    cooling_fat = 37.0 - behind["fat"]
    cooling_co2 = 37.0 - behind["co2"]
    assert cooling_fat > 10.0  # the cold does reach the cord without protection
    assert cooling_co2 < 0.5 * cooling_fat


def test_the_effective_heat_capacity_does_not_change_the_answer(behind):
    """50 kJ/m^3/K against 12.5: the layer's heat capacity is ~1.5 % (0.4 %) of the
    tissue's, so the heat it stores or gives up is ~1.5 % of what the same band of tissue
    would: over a ~30 K swing that is < 0.5 K at the cord; 0.5 K is also the tolerance
    the cryo issue sets for the nerve minimum against a reference step."""
    assert abs(behind["co2"] - behind["co2_quarter"]) < 0.5
