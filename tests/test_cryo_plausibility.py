"""Cryoablation against published measurements (slow): the set-up of each study as far as
its readable text fixes it is written in each test before its result was looked at;
where the text is silent the assumption and its reason are stated. The ranges come from
the paper's stated number and precision; misses are kept as strict xfails with the
numbers the model gave (docs/physics.md §6.2).

Only the abstracts of these studies could be read (the stored pages give no methods
section or figures), so only what an abstract states is compared:

* Popken et al. 2003, BMC Surg 3:3 (doi 10.1186/1471-2482-3-3): two LN₂ probes in sheep
  bone in vivo, below -50 °C at 1 cm from the probe.
* Littrup et al. 2009, J Vasc Interv Radiol 20:1343 (PMC2762356): one 2.4 mm argon probe
  in agar at 39 °C, the -30 °C isotherm's diameter and its distance behind the 0 °C
  edge after 15 min.

The single needle in gel of PMC4850244 is in tests/test_cryo.py. Magalov, Shitzer &
Degani 2008, the BMC Gastroenterol 2025 growth curves and the 64 gel runs of Int J
Hyperthermia 2020 could not be set up: no geometry or measured value of theirs was
readable (docs/physics.md §6.2).
"""

from __future__ import annotations

import numpy as np
import pytest

import ablasim as ab
from ablasim.sources import CryoSource

pytestmark = pytest.mark.slow


def _crossing(T: np.ndarray, level: float, h: float) -> float:
    """The distance [m] from index 0 along a profile ``T`` (one value per voxel, spacing
    ``h``) where it first rises through ``level``, linear between voxel centres."""
    i = int(np.argmax(level < T))
    assert i > 0, f"test set-up: the profile starts above {level} °C"
    return (i - 1) * h + (level - T[i - 1]) * h / (T[i] - T[i - 1])


# -- Popken et al. 2003: two LN2 probes in sheep bone ---------------------------------------


def _popken(h: float = 1e-3) -> dict[str, float]:
    """The two-probe freeze of :func:`test_popken_2003_two_ln2_probes_in_sheep_bone`:
    the lowest temperature [°C] at the midpoint between the probes and 1 cm outside
    either probe, and the time [s] the midpoint first reached -50 °C (nan if never)."""
    spacing, length, beyond, duration = 20e-3, 30e-3, 20e-3, 600.0
    half_x, half_y = 40e-3, 30e-3
    # voxel centres on whole millimetres: the probe axes (x = ±10 mm) and the midpoint
    # (x = 0) lie on voxel centres
    shape = (round(2 * half_x / h) + 1, round(2 * half_y / h) + 1, round((length + 2 * beyond) / h))
    grid = ab.Grid(shape, h, origin=(-half_x, -half_y, 0.0))
    model = ab.Model.uniform(grid, "cancellous_bone")
    mid = beyond + 0.5 * length
    tip_z = mid + 0.5 * length
    src = CryoSource(
        name="ln2", tip=(-0.5 * spacing, 0.0, tip_z), direction=(0.0, 0.0, 1.0),
        active_length=length, diameter=3.2e-3, probe_C=-180.0,
        more_probes=(((0.5 * spacing, 0.0, tip_z), (0.0, 0.0, 1.0)),),
    )  # fmt: skip
    points = {
        "midpoint": (0.0, 0.0, mid),
        "outside": (0.5 * spacing + 10e-3, 0.0, mid),
    }
    res = ab.simulate(
        model, [ab.Phase("freeze", duration, [src])], thermocouples=points,
        initial_temperature=37.0, sample_interval=10.0,
    )  # fmt: skip
    t = np.asarray(res.time)
    midpoint = np.asarray(res.sensors["midpoint"])
    below = np.flatnonzero(midpoint <= -50.0)
    return {
        "midpoint_C": float(midpoint.min()),
        "outside_C": float(np.asarray(res.sensors["outside"]).min()),
        "t50_s": float(t[below[0]]) if below.size else float("nan"),
    }


@pytest.mark.xfail(
    strict=True,
    reason="midpoint 1 cm from each of two -180 °C probes 2 cm apart in cancellous bone: "
    "lowest -22.7 °C in 10 min (asked <= -50 °C); 1 cm outside one probe 5.5 °C",
)
def test_popken_2003_two_ln2_probes_in_sheep_bone():
    """Two LN₂ probes in sheep bone in vivo: "temperatures below -50 °C could be reached
    at a distance of 1 cm from the probe" (Popken et al. 2003, BMC Surg 3:3, abstract:
    https://bmcsurg.biomedcentral.com/articles/10.1186/1471-2482-3-3).

    Set-up, fixed before the result was seen:

    * two probes, 3.2 mm diameter, wall at -180 °C (the abstract: "cooling one or two
      probes (diameter 3.2 mm) to -180 °C with liquid nitrogen"), held over the whole
      active length (the model's upper bound);
    * bone: the library's cancellous bone (with its marrow, perfused, 37 °C at the start
      and on the far faces), uniform. Assumed, the abstract says only "femoral and
      tibial sheep bone": the same group froze the tibial epiphysis and the femoral
      metaphysis, cancellous regions (Popken et al. 2005, BMC Surg 5:17,
      http://www.biomedcentral.com/1471-2482/5/17/abstract). The thin cortex and the
      soft tissue around the bone are not modelled;
    * spacing 20 mm, parallel, and the point 1 cm from the probe taken midway between
      them, 1 cm from each. Assumed: the abstract gives no spacing and credits the cold
      at 1 cm to "the synergistic effect" of the two probes, which the midpoint of a
      2 cm pair is the plainest reading of. The point 1 cm outside one probe (2 cm from
      the other) is printed, not asserted;
    * active length 30 mm, read in its mid-plane. Assumed (not in the abstract): long
      enough that the mid-plane lies 15 mm from either end, beyond the expected frozen
      radius; a shorter one makes the point warmer;
    * one 10 min freeze. Assumed (not in the abstract): the classic clinical freeze
      (docs/physics.md §3.3); the lowest temperature over it is compared;
    * 1 mm grid, default super steps.

    Range: the abstract states a one-sided threshold reached in vivo, so the midpoint's
    lowest temperature must be at or below -50 °C; no tolerance is added (none is
    stated).

    Expected before running: cancellous bone freezes slowly (k 0.31 W/m/K frozen and
    unfrozen, diffusivity ~1.2e-7 m²/s, an eighth of frozen muscle's); a quasi-steady
    log profile around one probe (a = 1.6 mm, 0 °C at ~12 mm) gives ~-15 °C at 10 mm,
    two probes together colder: about -30 to -50 °C, a likely miss.

    Seen (after the above was written): the midpoint's lowest -22.7 °C (never -50 °C),
    1 cm outside one probe 5.5 °C; 1.2 s on 2 cores. A miss. Not asserted, to say where
    it comes from (the same set-up, one thing changed): a 20 min freeze -54.9 °C; the
    bone's frozen k and c set to those of water-rich tissue (2.0 W/m/K, 1860 J/kg/K)
    -92.7 °C; no perfusion -26.6 °C; muscle instead of bone -86.4 °C. The library keeps
    dry tissue's unfrozen k when frozen (docs/physics.md §1.5 [U]), which makes frozen
    bone conduct 6 times worse than frozen muscle. With the spacing and duration
    unknown, the miss cannot separate the model from the assumptions; it is consistent
    with frozen bone's conductivity being too low ([U] in §1.5), which makes the model's
    cold zones in bone small, i.e. cautious for the target and not for a nerve.
    """
    seen = _popken()
    text = (
        f"midpoint (1 cm from each probe) {seen['midpoint_C']:.1f} °C, -50 °C at "
        f"{seen['t50_s']:.0f} s; 1 cm outside one probe {seen['outside_C']:.1f} °C"
    )
    print(text)
    assert seen["midpoint_C"] <= -50.0, text


# -- Littrup et al. 2009: one 2.4 mm probe in agar at 39 °C ---------------------------------


@pytest.fixture(scope="module")
def littrup_single():
    """The single 2.4 mm probe in 39 °C agar of the Littrup tests at 1 mm: the radii [m]
    of the 0 °C and -30 °C isotherms in the active part's mid-plane after 15 min, each
    the mean of the +x, -x, +y, -y profiles.

    Set-up, fixed before the result was seen (Littrup et al. 2009, J Vasc Interv Radiol
    20:1343, abstract: https://pmc.ncbi.nlm.nih.gov/articles/PMC2762356):

    * one 2.4 mm cryoprobe, 15 min freeze, agar phantom at 39 °C ("baseline temperatures
      at approximately 6 °C, 24 °C and 39 °C"; the 39 °C, high heat load, case is the
      one whose diameters the abstract gives);
    * wall held at -150 °C over the whole active length. Assumed (the abstract names no
      gas or wall temperature): the project's argon default (docs/physics.md §3.3); a
      held wall is the model's upper bound;
    * active length 40 mm, read in its mid-plane. Assumed (not in the abstract): as the
      single-needle gel test, long enough that the mid-plane is nearly the long
      cylinder's; a shorter one gives a smaller iceball;
    * agar: the library's muscle without perfusion and metabolic heat (water-rich, as the
      gel of tests/test_cryo.py), 39 °C at the start and on the far faces (40 mm from
      the axis, 25 mm beyond each end);
    * 1 mm grid, default super steps; radii from the +x, -x, +y, -y profiles of the
      mid-plane (linear between voxel centres), averaged; a diameter is twice the radius.

    Expected before running: a quasi-steady log profile in the frozen cylinder
    (a = 1.2 mm, 0 °C at ~15-18 mm) puts -30 °C at a (R/a)^0.8, ~9-10.5 mm: a -30 °C
    diameter of ~18-21 mm, well above the measured 12 mm (a miss: the real probe wall
    is warmer than a held -150 °C under the 39 °C load), and 0 °C to -30 °C ~6-8 mm.
    """
    h, half, length, beyond, duration = 1e-3, 40e-3, 40e-3, 25e-3, 900.0
    nxy = round(2 * half / h)
    nz = round((length + 2 * beyond) / h)
    # voxel centres at (i + 0.5) h - half: the axis x = y = h/2 runs through centres
    grid = ab.Grid((nxy, nxy, nz), h, origin=(-half + 0.5 * h, -half + 0.5 * h, 0.5 * h))
    lib = ab.TissueLibrary.default().with_overrides(
        {"agar": {"based_on": "muscle", "perfusion_per_s": 0.0, "metabolic_W_m3": 0.0}}
    )
    model = ab.Model.uniform(grid, "agar", tissues=lib, boundary=ab.Boundary.body(39.0))
    axis = (0.5 * h, 0.5 * h)
    mid = beyond + 0.5 * length + 0.5 * h  # the mid-plane on voxel centres
    src = CryoSource(
        name="probe", tip=(*axis, mid + 0.5 * length), direction=(0.0, 0.0, 1.0),
        active_length=length, diameter=2.4e-3, probe_C=-150.0,
    )  # fmt: skip
    res = ab.simulate(model, [ab.Phase("freeze", duration, [src])], initial_temperature=39.0)
    i0, j0, k0 = model.grid.world_to_index((*axis, mid))
    plane = res.temperature[:, :, k0]
    profiles = [plane[i0:, j0], plane[i0::-1, j0], plane[i0, j0:], plane[i0, j0::-1]]
    r0 = float(np.mean([_crossing(p, 0.0, h) for p in profiles]))
    r30 = float(np.mean([_crossing(p, -30.0, h) for p in profiles]))
    return r0, r30


@pytest.mark.xfail(
    strict=True,
    reason="-30 °C diameter 20.3 mm after 15 min (asked 9.5-14.5 mm); 0 °C diameter 36.8 mm",
)
def test_littrup_2009_single_probe_lethal_diameter(littrup_single):
    """One 2.4 mm probe in agar at 39 °C for 15 min: the lethal (-30 °C) ice's average
    diameter was 1.2 cm (Littrup et al. 2009, abstract).
    Set-up: :func:`littrup_single`, fixed before the result was seen.

    Range: 9.5-14.5 mm, the reported 1.2 cm ± 0.05 cm (its stated precision) widened by
    one 1 mm voxel at each end of the diameter (the model's resolution). The abstract
    gives an average without its spread.

    Seen (after the above was written): -30 °C diameter 20.3 mm, 0 °C diameter 36.8 mm
    (5 s on 2 cores); at 0.5 mm (not run here, 181 s) 21.2 and 38.2 mm. A miss by 6-7
    mm over the range's top, as the log profile predicted: the held -150 °C wall
    overstates what one argon probe pulls against a 39 °C load.
    """
    r0, r30 = littrup_single
    d30_mm = 2e3 * r30
    text = f"-30 °C diameter {d30_mm:.1f} mm (0 °C diameter {2e3 * r0:.1f} mm)"
    print(text)
    assert 9.5 <= d30_mm <= 14.5, text


def test_littrup_2009_lethal_ice_within_1_cm_of_the_edge(littrup_single):
    """ "Lethal ice resides < 1 cm behind the leading edge for nearly all probe
    configurations and heat loads" (Littrup et al. 2009, abstract).
    Set-up: :func:`littrup_single`, fixed before the result was seen.

    Range: the -30 °C isotherm 0-10 mm inside the 0 °C edge in the mid-plane, the
    abstract's one-sided bound (no tolerance is stated).

    Seen (after the above was written): 0 °C at 18.41 mm, -30 °C at 10.15 mm, gap
    8.26 mm: inside the bound; at 0.5 mm (not run here) 19.08, 10.62 and 8.47 mm.
    """
    r0, r30 = littrup_single
    gap_mm = (r0 - r30) * 1e3
    text = f"0 °C at {r0 * 1e3:.2f} mm, -30 °C at {r30 * 1e3:.2f} mm, gap {gap_mm:.2f} mm"
    print(text)
    assert 0.0 < gap_mm < 10.0, text
