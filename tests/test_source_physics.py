"""Heat sources against physics they do not build in.

The sources scale their heating to the set power, so "the heating integrates to the set
power" is true by construction and proves nothing. These tests check what the scaling
cannot fix:

* microwave: the *shape* of the SAR in a uniform medium, the ratio between two radii,
  against the surrogate's own closed form (module docstring of
  :mod:`ablasim.sources.microwave`) with the attenuation constant computed here from the
  tissue library's ε_r and σ;
* RF: the voltage and impedance the generator reports against the current that flows
  through closed surfaces around the electrode, summed here from the potential.
"""

from __future__ import annotations

import math
import tomllib
from importlib import resources

import numpy as np
import pytest

import ablasim as ab
from ablasim.sources.microwave import MicrowaveSource
from ablasim.sources.rf import RFSource

EPS0 = 8.8541878128e-12  # vacuum permittivity [F/m] (CODATA 2018)
MU0 = 1.25663706212e-6  # vacuum permeability [H/m] (CODATA 2018)


def _library(tissue: str, key: str) -> float:
    """A tissue property read straight from the packaged TOML file."""
    text = resources.files("ablasim.tissues").joinpath("library.toml").read_text("utf-8")
    return float(tomllib.loads(text)["tissue"][tissue][key]["value"])


def _attenuation(tissue: str, f_mhz: float) -> float:
    """α [Np/m] of a lossy dielectric, ω √(μ₀ε₀ε_r/2 (√(1 + (σ/ωε₀ε_r)²) − 1))."""
    suffix = {915.0: "915MHz", 2450.0: "2450MHz"}[f_mhz]
    eps = _library(tissue, f"permittivity_{suffix}")
    sigma = _library(tissue, f"electrical_conductivity_{suffix}_S_m")
    w = 2 * math.pi * f_mhz * 1e6
    loss = sigma / (w * EPS0 * eps)
    return w * math.sqrt(MU0 * EPS0 * eps / 2 * (math.sqrt(1 + loss**2) - 1))


# -- microwave: the radial decay of the SAR ------------------------------------------------
MW_H = 1e-3
#: odd voxel counts: the antenna axis x = y = 0 and the plane z = 0 run through centres
MW_GRID = ab.Grid.from_extent((0.041, 0.041, 0.021), MW_H)
MW_DIAMETER = 2.4e-3  # the default 13 G antenna: a = 1.2 mm regularises 1/r²
#: A 1 mm antenna is a point radiator seen from 6 mm and more: its radiators lie within
#: 1.7 mm behind the tip, their power-weighted centre ~0.6 mm behind it (the feed gap at
#: half the length, a longer proximal tail); the tip is put there so that the centre
#: sits in the plane z = 0.
MW_LENGTH = 1e-3
MW_TIP = (0.0, 0.0, 0.6e-3)


@pytest.mark.parametrize("f_mhz", [915.0, 2450.0])
@pytest.mark.parametrize("tissue", ["muscle", "cortical_bone", "fat"])
def test_microwave_sar_decays_as_the_surrogate_closed_form(tissue, f_mhz):
    """In a uniform medium a point radiator deposits Q(r) ∝ 2α e^{-2αr} / (4π(r² + a²)),
    so Q(r2)/Q(r1) = e^{-2α(r2 - r1)} (r1² + a²)/(r2² + a²), whatever the scaling to the
    power. Checked from 6 to 10 and 16 mm along x and along the diagonal x = y, with α
    from the library's ε_r and σ (muscle 2.45 GHz: 44.8 Np/m, ratio 6 -> 16 mm 0.059;
    were the decay e^{-αr} the ratio would be 2.4x larger, without a 3.5 % larger).

    Tolerance 1 %: the radiators spread ~0.3 mm (rms) along the axis; seen from r their
    distance differs by var/r², < 0.3 % on the ratio at r >= 6 mm (measured: at most
    0.27 % over these 36 ratios). In a uniform medium the path integral of α is exact,
    so nothing else enters. Without a² the ratios are 3.7 % off, with e^{-αr} 5-47 %."""
    model = ab.Model.uniform(MW_GRID, tissue)
    src = MicrowaveSource(
        tip=MW_TIP,
        direction=(0, 0, 1),
        power_W=30.0,
        active_length=MW_LENGTH,
        diameter=MW_DIAMETER,
        frequency_MHz=f_mhz,
    )
    bound = src.bind(model)
    Q = np.zeros(MW_GRID.shape)
    bound.deposit(Q, np.full(MW_GRID.shape, 37.0), 0.0)
    assert np.all(Q >= 0.0)
    alpha = _attenuation(tissue, f_mhz)
    a2 = (MW_DIAMETER / 2) ** 2

    def closed_form(r):
        return math.exp(-2 * alpha * r) / (r * r + a2)

    c = np.array(MW_GRID.shape) // 2
    assert np.allclose(MW_GRID.index_to_world(c), 0.0)
    for step in ((1, 0), (1, 1)):  # along x, along the diagonal
        unit = math.hypot(*step) * MW_H
        for n1, n2 in ((6, 10), (6, 16), (10, 16)):
            q1 = Q[c[0] + n1 * step[0], c[1] + n1 * step[1], c[2]]
            q2 = Q[c[0] + n2 * step[0], c[1] + n2 * step[1], c[2]]
            r1, r2 = n1 * unit, n2 * unit
            expected = closed_form(r2) / closed_form(r1)
            assert q2 / q1 == pytest.approx(expected, rel=0.01), (step, n1, n2)


# -- RF: the reported voltage and impedance against the current --------------------------
RF_H = 0.8e-3
RF_GRID = ab.Grid.from_extent(0.024, RF_H)


def _surface_current(V, kind, sigma, lo, hi):
    """Current [A] leaving the box of voxels ``lo..hi`` (inclusive), summed over its faces
    as σ (V_in − V_out) / h × h²; faces next to a non-tissue voxel (the insulated shaft)
    carry none."""
    total = 0.0
    for axis in range(3):
        for side, step in ((lo[axis], -1), (hi[axis], 1)):
            inner = [slice(lo[a], hi[a] + 1) for a in range(3)]
            inner[axis] = slice(side, side + 1)
            outer = list(inner)
            outer[axis] = slice(side + step, side + step + 1)
            inner, outer = tuple(inner), tuple(outer)
            tissue = (kind[inner] == 0) & (kind[outer] == 0)
            total += float((sigma * (V[inner] - V[outer]) * RF_H)[tissue].sum())
    return total


def test_rf_generator_voltage_drives_the_current_through_the_tissue():
    """Monopolar probe (10 mm electrode, 16 G) in uniform muscle at 37 °C, 8 W. The
    current at 1 V summed through closed boxes 2, 4 and 6 voxels around the electrode
    (with σ read from the library) is the same through each (charge is conserved), and
    the generator's reported voltage and impedance satisfy V² I₁ = P and Z I₁ = 1.
    A conductance computed wrongly (a missing cut-cell share, a factor on σ) would give
    a wrong voltage and impedance, although the heating still sums to 8 W by its scaling.

    Tolerances: the surfaces agree to round-off (measured 2e-14; allowed 1e-10: the
    solve stops at a residual of 1e-12, the sums hold ~1e3 face currents); the
    generator's own solve stops at tol 1e-2 of its starting residual, which moves the
    conductance by at most 0.02 x 1e-2 = 2e-4 (see BoundRF._solve_now; measured
    1.1e-6): 2e-4 relative. Measured impedance 72.7 Ω."""
    model = ab.Model.uniform(RF_GRID, "muscle")
    src = RFSource(
        tip=(0.0, 0.0, 0.005),
        direction=(0, 0, 1),
        active_length=0.01,
        diameter=1.65e-3,
        control="power",
        power_W=8.0,
    )
    bound = src.bind(model)
    Q = np.zeros(RF_GRID.shape)
    power = bound.deposit(Q, np.full(RF_GRID.shape, 37.0), 0.0)
    tel = bound.telemetry()
    sigma = _library("muscle", "electrical_conductivity_S_m")
    V = bound.system.solve(np.full(RF_GRID.shape, sigma), tol=1e-12)  # electrode at 1 V
    kind = bound.kind
    idx = np.argwhere(kind > 0)
    currents = []
    for margin in (2, 4, 6):
        lo = idx.min(axis=0) - margin
        hi = idx.max(axis=0) + margin
        assert np.all(lo >= 1)
        assert np.all(hi <= np.array(RF_GRID.shape) - 2)
        currents.append(_surface_current(V, kind, sigma, lo, hi))
    i1 = currents[0]
    assert i1 > 0
    np.testing.assert_allclose(currents, i1, rtol=1e-10)
    assert power == 8.0
    assert tel["voltage_V"] ** 2 * i1 == pytest.approx(8.0, rel=2e-4)
    assert tel["impedance_ohm"] * i1 == pytest.approx(1.0, rel=2e-4)
    # a plausible electrode: 16 G, 10 mm in muscle, ~100 Ω (the grid's faces are the pad)
    assert 50.0 < tel["impedance_ohm"] < 300.0
