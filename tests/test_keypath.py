"""Scenario keys by their path (sweeps, envelopes and uncertainty vary them)."""

from __future__ import annotations

import tomllib

import pytest

from ablasim.cli import example_path
from ablasim.errors import ScenarioError
from ablasim.keypath import get_key, parse_path, with_keys
from ablasim.scenario import parse_scenario

RF = tomllib.loads(example_path("vertebra-rf").read_text())


def test_paths_are_parsed_as_the_error_messages_write_them():
    assert parse_path("phase[0].source[1].power_W") == ["phase", 0, "source", 1, "power_W"]
    assert parse_path("anatomy.tumour.center_mm[1]") == ["anatomy", "tumour", "center_mm", 1]
    assert parse_path("grid.spacing_mm") == ["grid", "spacing_mm"]


@pytest.mark.parametrize("bad", ["", "phase[x].source", "phase..name", "a b"])
def test_a_malformed_path_is_refused(bad):
    with pytest.raises(ScenarioError, match="key path"):
        parse_path(bad)


def test_values_are_set_on_a_copy_and_read_back_by_the_scenario():
    data = with_keys(
        RF,
        {
            "phase[0].source[0].control.target_C": 80,
            "phase[0].duration_min": 5,
            "anatomy.tumour.center_mm[1]": 5,
            "tissues.muscle.perfusion_per_s": 0.002,
        },
    )
    assert get_key(RF, "phase[0].source[0].control.target_C") == 70  # original untouched
    sc = parse_scenario(data)
    assert sc.phases[0].sources[0].target_C == 80
    assert sc.phases[0].duration == 300.0
    assert sc.anatomy["params"]["tumour"]["center"][1] == pytest.approx(0.005)
    assert sc.tissue_overrides["muscle"]["perfusion_per_s"] == 0.002


def test_a_missing_element_names_the_path_and_the_length():
    with pytest.raises(ScenarioError, match=r"phase has 2 element\(s\), so \[5\] does not exist"):
        with_keys(RF, {"phase[5].duration_s": 1})
    with pytest.raises(ScenarioError, match=r"no key 'phse' \(did you mean 'phase'"):
        get_key(RF, "phse[0].duration_s")


def test_a_misspelt_key_is_named_by_the_scenario_reader_with_the_nearest_one():
    data = with_keys(RF, {"phase[0].source[0].powr_W": 5})
    with pytest.raises(ScenarioError, match=r"phase\[0\]\.source\[0\]\.powr_W: unknown key"):
        parse_scenario(data)
