"""A heat source defined only here, in a test module, runs through ``ablasim run`` from a
TOML file with no other file of the package edited: the registry is the only place the
package learns of a kind (its reading, help, assumptions and pictures included)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest

from ablasim.cli import main
from ablasim.sources import SOURCES, BoundSource, Needle, Source, register
from ablasim.sources.base import param


class _BoundHotVoxel(BoundSource):
    static = True

    def __init__(self, name, index, power_W, voxel_volume):
        self.name = name
        self.index = index
        self.power_W = power_W
        self.voxel_volume = voxel_volume

    def deposit(self, Q, T, t):
        Q[self.index] += self.power_W / self.voxel_volume
        return self.power_W


@dataclass(frozen=True, kw_only=True)
class HotVoxel(Source):
    """All the power in the one voxel holding ``tip``."""

    kind = "test-hot-voxel"
    summary = "a test source: the power in one voxel"
    keys_help = "tip_mm, power_W"

    tip: tuple[float, float, float] = param("tip_mm", kind="vector", scale=1e-3)
    power_W: float = param("power_W", gt=0)
    name: str = param("name", "hot-voxel", kind="string")

    def __post_init__(self):
        self.check()

    def needles(self):
        return (Needle(self.tip),)

    def assumptions(self):
        return ["Test hot voxel: all its power lands in one voxel."]

    def bind(self, model):
        index = model.grid.world_to_index(self.tip)
        return _BoundHotVoxel(self.name, index, self.power_W, model.grid.voxel_volume)


SCENARIO = """\
name = "plug-in"
[grid]
spacing_mm = 1
extent_mm = [15, 15, 15]
[anatomy]
phantom = "uniform"
tissue = "muscle"
[[phase]]
name = "heat"
duration_s = 20
[[phase.source]]
kind = "test-hot-voxel"
tip_mm = [0, 0, 0]
power_W = {power}
[[safety.thermocouple]]
name = "centre"
position_mm = [0, 0, 0]
[output]
pictures = false
vti = false
"""


@pytest.fixture
def registered():
    register(HotVoxel)
    yield HotVoxel
    del SOURCES[HotVoxel.kind]


def test_a_source_defined_in_a_test_runs_through_ablasim_run(registered, tmp_path, capsys):
    path = tmp_path / "plug.toml"
    path.write_text(SCENARIO.format(power=0.05))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    (phase,) = report["phases"]
    # the energy the loop counted is power x duration, summed step by step
    assert phase["energy_J"] == pytest.approx(0.05 * 20.0, rel=1e-9)
    assert "Test hot voxel: all its power lands in one voxel." in report["assumptions"]
    assert report["thermocouples"]["centre"]["max_temperature_C"] > 37.5
    csv = np.genfromtxt(tmp_path / "out" / "timeseries.csv", delimiter=",", names=True)
    assert csv["tc_centre_C"][-1] > csv["tc_centre_C"][0]


def test_its_keys_are_read_checked_and_listed(registered, tmp_path, capsys):
    path = tmp_path / "plug.toml"
    path.write_text(SCENARIO.format(power=-1))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "phase[0].source[0].power_W: must be > 0, got -1" in err
    assert not (tmp_path / "out").exists()
    path.write_text(SCENARIO.format(power=1).replace("tip_mm = [0, 0, 0]", "tip_mm = [0, 0, 30]"))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "phase[0].source[0].tip_mm: [0.0, 0.0, 30.0] mm lies outside the grid" in (
        capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert 'kind = "test-hot-voxel"' in capsys.readouterr().out
