"""Energy conservation: an insulated box without perfusion stores exactly what it gets."""

from __future__ import annotations

import numpy as np
import pytest

import ablasim as ab
from ablasim.solvers.pennes import enthalpy_numpy

TISSUES = ("muscle", "cortical_bone", "fat", "csf", "cancellous_bone")


def _random_model(rng, shape=(14, 12, 10), h=1e-3):
    lib = ab.TissueLibrary.default().with_overrides({t: {"perfusion_per_s": 0.0} for t in TISSUES})
    grid = ab.Grid(shape, h)
    labels = rng.integers(0, len(TISSUES), shape).astype(np.uint8)
    structures = tuple(ab.Structure(t, t) for t in TISSUES)
    return ab.Model(grid, labels, structures, lib, ab.Boundary.adiabatic())


def _stored_heat(model, T):
    """Volumetric enthalpy summed over the grid [J] (zero at each tissue's solidus)."""
    p = model.thermal_fields.phase[model.labels]
    hv = enthalpy_numpy(T, *(p[..., c] for c in range(8)))
    return hv.sum() * model.grid.voxel_volume


@pytest.mark.parametrize("initial", [37.0, -30.0, 94.0])
def test_insulated_box_conserves_energy(rng, initial):
    """Heat in (power x time) equals heat stored, to round-off; also across freezing
    (initial -30 °C: the source melts tissue through the latent-heat interval) and
    boiling (initial 94 °C: the source boils the tissue's water at 95-100 °C)."""
    model = _random_model(rng)
    power, duration = 0.8, 300.0
    src = ab.VolumetricSource.box((0, 0, 0), (0.004, 0.004, 0.004), power_W=power)
    before = _stored_heat(model, np.full(model.grid.shape, initial))
    res = ab.simulate(model, [ab.Phase("heat", duration, [src])], initial_temperature=initial)
    after = _stored_heat(model, res.temperature)
    delivered = power * duration
    assert res.phases[0].energy_J == pytest.approx(delivered, rel=1e-12)
    # ~1e4 steps of O(1e-16) relative round-off each on O(1e5) J of stored enthalpy
    assert after - before == pytest.approx(delivered, rel=1e-9)
    if initial < 0:
        assert res.temperature.max() > -1.0  # the test did cross the mushy interval
    if initial > 90:
        assert res.temperature.max() > 100.0  # and the vaporisation interval
