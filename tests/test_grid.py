"""The grid: construction, world <-> voxel conversions, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import ablasim as ab
from ablasim.errors import ScenarioError


def test_from_extent_centres_the_grid():
    g = ab.Grid.from_extent((0.04, 0.02, 0.01), 0.001, center=(0.0, -0.01, 0.0))
    assert g.shape == (40, 20, 10)
    lo, hi = zip(*g.bounds, strict=True)
    np.testing.assert_allclose(lo, [-0.02, -0.02, -0.005], atol=1e-15)
    np.testing.assert_allclose(hi, [0.02, 0.0, 0.005], atol=1e-15)
    assert g.voxel_volume == pytest.approx(1e-9)


def test_world_index_roundtrip(rng):
    g = ab.Grid((7, 9, 5), 0.0005, origin=(0.001, -0.002, 0.003))
    for _ in range(50):
        idx = tuple(int(rng.integers(0, n)) for n in g.shape)
        p = g.index_to_world(idx)
        assert g.world_to_index(p) == idx
        # anywhere inside the voxel maps to it
        assert g.world_to_index(p + rng.uniform(-0.24, 0.24, 3) * g.spacing) == idx


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": (10, 10, 10), "spacing": 0.0}, "spacing"),
        ({"shape": (10, 10, 10), "spacing": -1e-3}, "spacing"),
        ({"shape": (10, 10, 10), "spacing": float("nan")}, "spacing"),
        ({"shape": (10, 0, 10), "spacing": 1e-3}, "shape"),
        ({"shape": (10, 10), "spacing": 1e-3}, "shape"),
    ],
)
def test_bad_grids_are_refused(kwargs, message):
    with pytest.raises(ScenarioError, match=message):
        ab.Grid(**kwargs)


def test_point_outside_the_grid_names_it_and_the_bounds():
    g = ab.Grid.from_extent(0.02, 0.001)
    with pytest.raises(ScenarioError) as exc:
        g.world_to_index((0.0, 0.05, 0.0), name="thermocouple 'epidural'")
    msg = str(exc.value)
    assert "thermocouple 'epidural'" in msg
    assert "[0.0, 50.0, 0.0] mm" in msg
    assert "outside the grid" in msg
    assert "np.float64" not in msg


def test_grid_too_big_for_memory_is_refused_before_allocating():
    g = ab.Grid.from_extent(2.0, 0.0001)  # 8e12 voxels
    with pytest.raises(ScenarioError, match=r"GB .*coarser spacing_mm"):
        ab.Model.uniform(g, "muscle")


def test_unknown_tissue_suggests():
    g = ab.Grid.from_extent(0.01, 0.001)
    with pytest.raises(ScenarioError, match="did you mean 'muscle'"):
        ab.Model.uniform(g, "musle")
