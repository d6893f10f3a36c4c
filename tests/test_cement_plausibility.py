"""Bone cement against published temperatures (slow): the set-up of each study as far as
the model can reproduce it is written in each test before its result was looked at;
the ranges are the published mean ± 2 SD (or the stated band). Misses are kept as strict
xfails with the numbers the model gave.

docs/physics.md §4b: Aebli et al. 2006 (E2), the goat vertebroplasty study of 2003
(E3), Anselmetti et al. 2009 (E4): in vivo, no mould. The bench exotherm test of Li et
al. 2004 (docs/physics.md §1.4) is modelled with its mould (PTFE against polyurethane
foam), which changes the peak by tens of kelvin.
Common limits: there is no sheep or goat phantom, so the human L1/L3 phantom stands for
the animals' lumbar vertebrae (theirs are smaller: the same cement is a larger fraction
of the body); the cement's heat capacity is the reference model's 630 J/kg/K (§1.4
[U]); cement and trabecular bone are not mixed within a voxel, so a thermocouple inside
the cement reads pure cement.
"""

from __future__ import annotations

import numpy as np
import pytest

import ablasim as ab
from ablasim.scenario import parse_scenario

pytestmark = pytest.mark.slow

# 1 mm vertebra; x lateral, y anterior (the canal behind at negative y), z cranial
SCENARIO = """
name = "{name}"
[grid]
spacing_mm = 1
extent_mm = [48, 60, 48]
center_mm = [0, -4, 0]
[anatomy]
phantom = "vertebra"
level = "{level}"
[[phase]]
name = "cement"
duration_min = 15
[[phase.source]]
kind = "cement"
volume_ml = {volume}
center_mm = [0, 0, 0]
mixing_to_injection_min = 5
[safety]
[[safety.thermocouple]]
name = "centre"
position_mm = [0, 0, 0]
[[safety.thermocouple]]
name = "endplate"
position_mm = [0, 0, 11]
[[safety.thermocouple]]
name = "disc"
position_mm = [0, 0, 14.5]
[[safety.thermocouple]]
name = "epidural"
position_mm = [0, -17, 0]
"""


def _run(name, level, volume):
    sc = parse_scenario(SCENARIO.format(name=name, level=level, volume=volume))
    built = sc.build()
    res = ab.simulate(
        built.model, built.phases, thermocouples=built.thermocouples,
        bound_sources=built.bound, threads=2,
    )  # fmt: skip
    peaks = {k: v.max_temperature_C for k, v in res.thermocouples.items()}
    return res, peaks


@pytest.fixture(scope="module")
def sheep():
    """Aebli 2006: 4.0 ml PMMA into a lumbar body (sheep in vivo), thermocouples in the
    body's centre and at the cranial endplate, in the disc and behind the posterior wall;
    here the L1 phantom, the cement from the body's centre, 15 min."""
    return _run("aebli-2006", "L1", 4.0)


@pytest.mark.xfail(
    strict=True,
    reason="model 173.0 °C at the centre against 43.3 ± 6.9: the thermocouple is in pure "
    "cement of c = 630 J/kg/K (adiabatic rise 159 K), the sheep's in a cement-bone mix",
)
def test_aebli_2006_sheep_4ml_centre(sheep):
    """Centre 43.3 ± 6.9 °C: 29.5-57.1 °C."""
    _, peaks = sheep
    assert 29.5 <= peaks["centre"] <= 57.1, peaks


def test_aebli_2006_sheep_4ml_endplate_disc_and_wall(sheep):
    """Cranial endplate 42.4 ± 8.8 °C: 24.8-60 °C; discs below 41 °C; the dorsal wall
    (here the epidural space behind it) below 47 °C. Model: 50.7, 40.9 and 39.3 °C."""
    _, peaks = sheep
    assert 24.8 <= peaks["endplate"] <= 60.0, peaks
    assert peaks["disc"] < 41.0, peaks
    assert peaks["epidural"] < 47.0, peaks


@pytest.fixture(scope="module")
def goat():
    """Goat L3-L5 in vivo, 0.8 ml (22 % of the body): interface, epidural and disc
    temperatures; here the L1 phantom, 0.8 ml from the body's centre."""
    return _run("goat-2003", "L1", 0.8)


@pytest.mark.xfail(
    strict=True,
    reason="model 50.6 °C at the interface against 44.6 (band 39.6-49.6): 0.8 ml of pure "
    "cement peaks at 96 °C in its core",
)
def test_goat_08ml_interface(goat):
    """Bone-cement interface 44.6 °C (band ± 5 K: no spread published): the hottest bone
    voxel next to the cement."""
    res, _ = goat
    assert 39.6 <= res.sections["cement"]["interface_peak_temperature_C"] <= 49.6


def test_goat_08ml_epidural_and_disc(goat):
    """Epidural 37.0 °C and disc 37.5 °C (each below 38.5 °C). Model: 37.3, 37.5 °C."""
    _, peaks = goat
    assert peaks["epidural"] < 38.5, peaks
    assert peaks["disc"] < 38.5, peaks


@pytest.mark.xfail(
    strict=True,
    reason="model 181.9 °C in the cement against peak groups of at most 86.7 ± 10.7 °C "
    "(c = 630 J/kg/K: the adiabatic rise is 159 K)",
)
def test_anselmetti_2009_patients_peak_in_the_cement():
    """22 patients, lumbar vertebroplasty, thermocouples along a needle in the cement:
    peak groups 86.7 ± 10.7, 60.5 ± 3.7, 44.8 ± 2.6 °C by cement, so 39.6-108.1 °C in
    all; here L3, 5 ml (a typical lumbar volume; not stated per patient), the hottest
    cement voxel's peak."""
    res, _ = _run("anselmetti-2009", "L3", 5.0)
    assert 39.6 <= res.sections["cement"]["peak_temperature_C"] <= 108.1


# -- the mould of a bench exotherm test (Li et al. 2004) -------------------------------------
def _mould(material, h=1e-3, radius=30e-3, height=6e-3, wall=10e-3):
    """A 6 mm patty of cement, 60 mm across, in a mould of ``material`` 10 mm thick on
    every side, ex vivo, cooled by still air (h = 10 W/m²/K [U], 23 °C) on its outer
    faces, cement and mould at 23 °C; a quarter of it (two adiabatic symmetry faces),
    1 mm voxels, 30 min. The hottest cement voxel's peak [°C]."""
    from ablasim.scenario import ex_vivo_library

    props = {
        # PTFE: rho 2200 kg/m3, c 1000 J/kg/K, k 0.25 W/m/K (typical handbook values [U])
        "ptfe": (2200.0, 1000.0, 0.25),
        # rigid polyurethane foam: rho 50, c 1400, k 0.03 (typical [U])
        "pu_foam": (50.0, 1400.0, 0.03),
    }[material]
    rho, c, k = props
    lib = ex_vivo_library(ab.TissueLibrary.default()).with_overrides(
        {
            material: {
                "based_on": "fat", "density_kg_m3": rho, "specific_heat_J_kgK": c,
                "conductivity_W_mK": k, "frozen_specific_heat_J_kgK": c,
                "frozen_conductivity_W_mK": k, "water_fraction": 0.0, "latent_heat_J_kg": 0.0,
            }
        }
    )  # fmt: skip
    nx, nz = round((radius + wall) / h), round((height + 2 * wall) / h)
    grid = ab.Grid((nx, nx, nz), h, origin=(h / 2, h / 2, -(nz - 1) / 2 * h))
    x, y, z = np.meshgrid(
        *[grid.origin[a] + h * np.arange(grid.shape[a]) for a in range(3)], indexing="ij"
    )
    cavity = (x**2 + y**2 <= radius**2) & (np.abs(z) <= height / 2)
    # the cavity is labelled cancellous bone only for the cement to fill it
    structures = (ab.Structure("mould", material), ab.Structure("cavity", "cancellous_bone"))
    air = ab.Boundary.convective(10.0, 23.0)
    for face in ("x_min", "y_min"):
        air = air.with_face(face, ab.FaceCondition("adiabatic"))
    model = ab.Model(grid, cavity.astype(np.uint8), structures, lib, air)
    volume = float(cavity.sum()) * grid.voxel_volume
    src = ab.CementSource(volume=volume, center=(h / 2, h / 2, 0.0), injection_C=23.0)
    res = ab.simulate(model, [ab.Phase("cure", 1800.0, [src])], initial_temperature=23.0, threads=2)
    return res.sections["cement"]["peak_temperature_C"]


@pytest.fixture(scope="module")
def moulds():
    return {m: _mould(m) for m in ("ptfe", "pu_foam")}


def test_li_2004_the_insulating_mould_runs_hotter(moulds):
    """Li et al. 2004 (ASTM F451, 6 mm patty): polyurethane foam holds the heat, PTFE
    draws it off. Model: PTFE 69.9 °C, PU foam 168.8 °C."""
    assert moulds["pu_foam"] > moulds["ptfe"] + 10.0


@pytest.mark.xfail(
    strict=True,
    reason="model 98.9 K between the moulds (PTFE 69.9, PU foam 168.8 °C) against about "
    "50 K: in PU foam the patty is nearly adiabatic, and c = 630 J/kg/K makes that 159 K",
)
def test_li_2004_ptfe_about_50_K_below_pu_foam(moulds):
    """The setting temperature in PTFE was about 50 °C lower than in PU foam: band
    25-75 K (the moulds' exact sizes and the foam's properties are not known here)."""
    assert 25.0 <= moulds["pu_foam"] - moulds["ptfe"] <= 75.0


# -- the example pair as shipped --------------------------------------------------------------
def test_the_shipped_canal_leak_raises_the_cords_peak():
    """vertebra-cement against vertebra-cement-leak (0.5 mm, 15 min): the 0.5 ml canal
    leak heats the cord more (measured 37.9 -> 40.5 °C; asked: +1 K at least) and the
    epidural thermocouple more (38.8 -> 46.0 °C; asked: +3 K)."""
    from ablasim.cli import example_path
    from ablasim.scenario import load_scenario

    cord, epidural = [], []
    for name in ("vertebra-cement", "vertebra-cement-leak"):
        sc = load_scenario(example_path(name))
        built = sc.build()
        res = ab.simulate(
            built.model, built.phases, thermocouples=built.thermocouples,
            bound_sources=built.bound, threads=2,
        )  # fmt: skip
        cord.append(float(res.damage.t_max[res.model.structure_mask("spinal_cord")].max()))
        epidural.append(res.thermocouples["epidural"].max_temperature_C)
    assert cord[1] > cord[0] + 1.0, cord
    assert epidural[1] > epidural[0] + 3.0, epidural
