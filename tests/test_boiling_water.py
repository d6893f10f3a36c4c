"""The latent heat of boiling comes from each tissue's own water fraction."""

import tomllib
from importlib import resources

import numpy as np
import pytest

import ablasim as ab
from ablasim.anatomy import Structure
from ablasim.solvers import PHASE_COLUMNS
from ablasim.solvers.pennes import enthalpy

#: Latent heat of vaporisation of water at 100 °C [J/kg] (CRC Handbook), written here
#: rather than imported so that the expected numbers do not come from the code under test.
L_VAP_J_KG = 2.257e6
TISSUES = ("cortical_bone", "muscle", "fat", "pmma_cement")


def _library_value(tissue: str, key: str) -> float:
    """A tissue property read straight from the packaged TOML file."""
    text = resources.files("ablasim.tissues").joinpath("library.toml").read_text("utf-8")
    return float(tomllib.loads(text)["tissue"][tissue][key]["value"])


@pytest.fixture(scope="module")
def model():
    """Four slabs along x, one per tissue."""
    grid = ab.Grid.from_extent((0.004, 0.002, 0.002), 0.001)
    labels = np.zeros(grid.shape, np.uint8)
    for i in range(len(TISSUES)):
        labels[i] = i
    return ab.Model(grid, labels, tuple(Structure(t, t) for t in TISSUES))


@pytest.mark.parametrize("label", range(len(TISSUES)))
def test_enthalpy_jump_over_boiling_uses_the_tissues_water(model, label):
    """Across 95-100 °C the enthalpy rises by rho c * 5 K plus rho * w * L_vap with the
    tissue's own water fraction w (cortical bone 0.12, muscle 0.75, fat 0.2, PMMA 0):
    cortical bone takes 0.52 GJ/m^3, not the 3.19 GJ/m^3 a soft-tissue 0.74 gave,
    and cement none. Relative tolerance 1e-12: the jump is a difference of two enthalpies
    of ~2e9 J/m^3 formed in float64, so round-off is ~1e-15 of them."""
    tissue = TISSUES[label]
    rho = _library_value(tissue, "density_kg_m3")
    c = _library_value(tissue, "specific_heat_J_kgK")
    w = _library_value(tissue, "water_fraction")
    row = model.thermal_fields.phase[label]
    latent = dict(zip(PHASE_COLUMNS, row, strict=True))["latent_vap_J_m3"]
    assert latent == pytest.approx(rho * w * L_VAP_J_KG, rel=1e-12, abs=1e-6)
    jump = enthalpy(100.0, *row[:8]) - enthalpy(95.0, *row[:8])
    assert jump == pytest.approx(rho * c * 5.0 + rho * w * L_VAP_J_KG, rel=1e-12)
    if tissue == "pmma_cement":  # no water, no latent heat: the plain heat capacity
        assert w == 0.0
        assert jump == pytest.approx(rho * c * 5.0, rel=1e-12)
