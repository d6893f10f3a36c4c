"""Monopolar RF lesion trends of Cosman, Dolensky & Hoffman 2014 (docs/physics.md §3.1).

Paper: Cosman ER Jr, Dolensky JR, Hoffman RA, "Factors That Affect Radiofrequency Heat
Lesion Size", Pain Med 2014;15:2020. Only the abstract could be read. Two full-text
transcriptions exist (deploy.doczz.net/doc/5312482 and studylib.net/doc/18420108), but
the stored copies return only their opening, which is the abstract; searching for
methods phrases (tissue, bath, generator, boundary) found no other passage.

From the abstract: monopolar lesions made ex vivo "in animal tissue" with sharp cannulae
of 23, 22, 20, 18 and 16 G, tips 5, 6, 10 and 15 mm, set temperatures 60-90 °C and set
times 1-10 min. Over 400 lesions, several per configuration, sized "by automated
photographic temperature inference". Findings:

(a) 22 G -> 16 G widens the average lesion by 58-65 % (3-4 mm) at 80 °C, 2 min;
(b) 60 -> 90 °C widens it by 108-152 % at 2 min;
(c) the width at 2 min is 11-20 % and at 3 min 23-32 % larger than at 1 min;
(d) the lesion runs past both ends of the tip; its length exceeds the tip length by 1-5 mm
    at 80 °C, 2 min;
(e) width and length increase with each factor (P < 0.001).

Not in the abstract, so assumed [U]:

* Tissue: library ``muscle`` (IT'IS), with perfusion and metabolism off (ex vivo).
  Non-perfused chicken breast is the usual model for pain-RF lesion sizing (e.g. RAPM
  2024;49 Suppl 1:A173), but the paper's species and organ are not known. With temperature
  control the choice barely matters: library ``liver`` changed the 2-min widths by < 1 %
  (measured at 0.35 mm).
* Starting temperature 22 °C, room temperature. The abstract mentions no warming. The
  abstract's own numbers imply an absolute 22 G width of 4.6-6.9 mm and a 16 G width of
  7.6-10.9 mm (the 3-4 mm gain at +58-65 %). The model at 22 °C gives 6.4 and 8.8 mm,
  inside both ranges; at 37 °C it gives 9.5 and 12.1 mm, outside both.
* Tip 10 mm for every comparison (the abstract does not say which tip the percentages
  use); cannulae 16 G = 1.65 mm and 22 G = 0.71 mm.
* Lesion boundary: the 50 °C isotherm of the peak temperature. "Photographic temperature
  inference" implies an isotherm, but the abstract does not give which one. 50 °C is the
  common lesion-edge value in RF neurotomy, and it is close to this library's damage
  criteria over 1-3 min: CEM43 >= 240 is about 51 °C held for 1 min, and Arrhenius
  Omega >= 1 came within 0.4 % of the 50 °C width (measured once at 0.35 mm). A 60 s
  cool-down after RF off did not move the 50 °C edge (< 0.005 mm), so only the heating
  is simulated.
* Generator: a PI loop on a thermocouple at the distal end of the tip (as in RF
  cannula electrodes), with the library's default gains. The limit is 50 W, never reached:
  the runs peak at 3-16 W. The paper's generator and its ramp time are not in the
  abstract. The impedance rule stays at the default; it never triggers because the
  impedance only falls.

Model: a homogeneous block 24 x 24 x 28 mm. The needle lies along z with the middle of
the tip at the origin and an insulated shaft out to the grid edge. All outer faces are
grounded (the dispersive pad) and held at the starting temperature. Spacing 0.25 mm (22 G
= 2.8 voxels across), the RF source's default potential re-solve settings.

Measurement: virtual thermocouples every 0.05 mm give sub-voxel, trilinear profiles of the
running peak temperature, read at 60 / 120 / 180 s.

* Width: twice the 50 °C radius at mid-tip, averaged over the x axis and the diagonal.
* Length: the axial extent of the 50 °C region, taken along the needle axis and along a
  line 0.2 mm outside the needle surface (the proximal extreme hugs the shaft).

Results with the 50 °C boundary, starting at 22 °C, 80 °C and 2 min unless the row says
otherwise. The test runs at 0.25 mm with default settings; the 1/3 mm and 0.25 mm (tight)
columns were run with 0.2 % re-solve tolerance and the 0.2 mm reference with every
potential solve started from zero, all before the solver fix described below:

======================  =========  =========  ===========  ==============  ==========
quantity                1/3 mm     0.25 mm    0.25 mm      0.2 mm (ref.)   paper
                        (tight)    (test)     (tight)      (cold solves)
======================  =========  =========  ===========  ==============  ==========
W16 / W22 (80 °C)       1.332      1.368      1.360        1.360           1.58-1.65
W16 - W22 [mm]          2.19       2.33       2.32         2.31            3-4
W90 / W60, 16 G         1.982      1.978      1.975        1.971           2.08-2.52
W90 / W60, 22 G         2.202      2.308      2.308        2.293           2.08-2.52
W2min / W1min, 16 G     1.218      1.228      1.229        1.225           1.11-1.20
W2min / W1min, 22 G     1.255      1.268      1.273        1.263           1.11-1.20
W3min / W1min, 16 G     1.330      1.337      1.334        1.332           1.23-1.32
W3min / W1min, 22 G     1.378      1.399      1.392        1.391           1.23-1.32
length - tip, 16 G      4.33 mm    4.26 mm    4.30 mm      4.30 mm         1-5 mm
length - tip, 22 G      2.80 mm    2.75 mm    2.80 mm      2.76 mm         1-5 mm
======================  =========  =========  ===========  ==============  ==========

Widths in the test [mm]:

* 16 G at 80 °C: 7.06 / 8.67 / 9.44 at 1 / 2 / 3 min.
* 22 G at 80 °C: 5.00 / 6.34 / 7.00.
* At 2 min: 16 G 5.04 at 60 °C and 9.97 at 90 °C; 22 G 3.25 and 7.50.
* Lengths at 80 °C, 2 min: 14.26 mm for 16 G (2.40 mm distal, 1.86 mm proximal) and
  12.75 mm for 22 G (1.46, 1.29).

The test differs from the 0.2 mm reference by <= 0.01 in every ratio and <= 0.1 mm in
every width and length: the grid and re-solve error together.

No test needs a margin:

* The passing values clear the band edges by >= 0.2 in ratio or 0.7 mm in length.
* The failing ones miss by more than their grid error. The closest miss, W3min / W1min
  for 16 G (0.017 above the band), moves by <= 0.007 across the grids and settings, and
  (c) fails on W2min / W1min anyway (0.028 above).

A 32 x 32 x 36 mm block changed the widths by <= 0.08 mm.

A solver bug this study found (fixed): each potential re-solve starts from the previous
solution, and it used to stop when |r| <= tol |b|. Once the field had settled, a 1-2 %
drift of σ left the residual below that, so the solve did 0 iterations, and the
impedance and heating shape came from a stale potential until the error piled up and was
corrected in a jump. Case: 16 G, 60 °C, 0.25 mm: on this run's temperature fields at 60,
84, 87.5 and 120 s every warm-started solve after the first did 0 iterations, and the
impedance at 120 s came out 62.35 Ω against 61.30 Ω exact; in the full run the mid-tip
surface ended 1.6 K hotter than with tight solves. With the default 1 % re-solve
tolerance the 2-min widths were 0.2-0.4 mm too large and W90 / W60 for 16 G 1.915
instead of 1.971. Solves now stop at tol times their own starting residual
(``multigrid.stopping_residual``; ``tests/test_multigrid.py`` has the regression test),
and the default settings give the numbers above.

Sensitivity to the assumptions (0.25 mm, 2 min, 0.2 % re-solve tolerance, before the fix):

* 45 °C boundary: a 1.315; b 1.696 (16 G) and 1.900 (22 G); c 1.228 / 1.336 (16 G) and
  1.269 / 1.394 (22 G); d 5.49 and 3.73 mm.
* 55 °C boundary: a 1.411; b 2.525 and 3.123; c 1.234 / 1.336 and 1.281 / 1.398; d 3.31
  and 2.08 mm.
* Tissue starting at 37 °C (50 °C boundary): a 1.273 (2.60 mm); b 1.873 and 2.133;
  c 1.223 / 1.332 and 1.257 / 1.387; d 6.95 and 4.92 mm.

Findings (a) and (c) fail for every boundary from 45 to 55 °C and either starting
temperature. Whether (b) and (d) pass depends on the assumptions.

Status: (b) for 22 G, (d) and (e) pass; (a), (b) for 16 G and (c) are expected failures,
see each test. Run time: 70-95 s in all. The six simulations take 10-15 s each on 2
cores and are shared between the tests.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

import ablasim as ab
from ablasim.sources.rf import RFSource

#: Nominal outer diameters of the cannulae [m].
GAUGE_DIAMETER_M = {16: 1.65e-3, 18: 1.27e-3, 20: 0.91e-3, 22: 0.71e-3}
TIP_LENGTH_M = 10e-3
SPACING_M = 0.25e-3
EXTENT_M = (0.024, 0.024, 0.028)
START_C = 22.0  # room temperature [U]
LESION_C = 50.0  # lesion edge: peak-temperature isotherm [U]
MAX_POWER_W = 50.0  # generator limit [U]
TISSUE = "muscle"
#: Spacing of the virtual thermocouples along the measuring lines [m].
PROFILE_STEP_M = 0.05e-3
#: Offset of the second axial measuring line from the needle surface [m].
SURFACE_OFFSET_M = 0.2e-3
#: The simulations: (gauge, set temperature [°C], set time [s]).
RUNS = (
    (16, 80.0, 180.0),
    (22, 80.0, 180.0),
    (16, 60.0, 120.0),
    (16, 90.0, 120.0),
    (22, 60.0, 120.0),
    (22, 90.0, 120.0),
)


def _outer_crossing(s, prof, level):
    """Largest ``s`` where ``prof`` falls through ``level`` (linear between samples)."""
    above = np.flatnonzero(prof >= level)
    if above.size == 0:
        return 0.0
    i = above[-1]
    assert i + 1 < len(s), "the lesion reaches the end of the measuring line"
    return s[i] + (prof[i] - level) / (prof[i] - prof[i + 1]) * (s[i + 1] - s[i])


def _axial_extent(z, prof, level):
    """(lowest, highest) ``z`` where ``prof`` >= ``level``, linear between samples."""
    above = np.flatnonzero(prof >= level)
    if above.size == 0:
        return math.nan, math.nan
    i, j = above[0], above[-1]
    assert i > 0, "the lesion reaches the end of the axial line"
    assert j + 1 < len(z), "the lesion reaches the end of the axial line"
    lo = z[i] - (prof[i] - level) / (prof[i] - prof[i - 1]) * (z[i] - z[i - 1])
    hi = z[j] + (prof[j] - level) / (prof[j] - prof[j + 1]) * (z[j + 1] - z[j])
    return lo, hi


@functools.cache
def lesion(
    gauge: int,
    target_C: float,
    duration_s: float,
    *,
    spacing: float = SPACING_M,
    extent: tuple[float, float, float] = EXTENT_M,
    start_C: float = START_C,
    tissue: str = TISSUE,
    levels: tuple[float, ...] = (LESION_C,),
) -> dict:
    """One temperature-controlled monopolar lesion (module docstring for the set-up).

    Returns ``{"width" | "length" | "distal" | "proximal": {(level, t): mm}, "run":
    {...}}`` at every whole minute ``t`` [s] up to ``duration_s``: the width at mid-tip,
    the axial length, and how far the lesion reaches beyond the tip's distal and
    proximal ends; ``run`` holds the generator's behaviour.
    """
    r = 0.5 * GAUGE_DIAMETER_M[gauge]
    lib = ab.TissueLibrary.default().with_overrides(
        {tissue: {"perfusion_per_s": 0.0, "metabolic_W_m3": 0.0}}
    )
    # an even number of voxels on every axis and both electrode ends on voxel faces, so
    # every spacing cuts the needle alike (axis on a voxel edge, ends between layers)
    n_half = 0.5 * TIP_LENGTH_M / spacing
    assert abs(n_half - round(n_half)) < 1e-9, "the spacing must divide half the tip"
    grid = ab.Grid.from_extent(
        tuple(2 * round(0.5 * e / spacing) * spacing for e in extent), spacing
    )
    model = ab.Model.uniform(grid, tissue, tissues=lib, boundary=ab.Boundary.body(start_C))
    src = RFSource(
        tip=(0.0, 0.0, 0.5 * TIP_LENGTH_M),
        direction=(0, 0, 1),
        active_length=TIP_LENGTH_M,
        diameter=2 * r,
        control="temperature",
        target_C=target_C,
        max_power_W=MAX_POWER_W,
    )
    bounds = np.asarray(grid.bounds)
    s = np.arange(0.0, bounds[0, 1] - 2 * spacing, PROFILE_STEP_M)
    z = np.arange(bounds[2, 0] + 2 * spacing, bounds[2, 1] - 2 * spacing, PROFILE_STEP_M)
    c45 = math.sqrt(0.5)
    tcs = {"sensor": (0.0, 0.0, 0.5 * TIP_LENGTH_M)}
    for i, v in enumerate(s):
        tcs[f"x{i}"] = (v, 0.0, 0.0)
        tcs[f"d{i}"] = (v * c45, v * c45, 0.0)
    for i, v in enumerate(z):
        tcs[f"a{i}"] = (0.0, 0.0, v)
        tcs[f"s{i}"] = (r + SURFACE_OFFSET_M, 0.0, v)
    res = ab.simulate(
        model,
        [ab.Phase("rf", duration_s, [src])],
        initial_temperature=start_C,
        thermocouples=tcs,
        sample_interval=1.0,
    )

    def peak(prefix, n):  # running peak temperature, (points, samples)
        tr = np.array([res.sensors[f"{prefix}{i}"] for i in range(n)])
        return np.maximum.accumulate(tr, axis=1)

    xs, ds = peak("x", len(s)), peak("d", len(s))
    ax, sf = peak("a", len(z)), peak("s", len(z))
    out: dict = {"width": {}, "length": {}, "distal": {}, "proximal": {}}
    for m in range(1, int(duration_s // 60) + 1):
        t = 60.0 * m
        k = int(np.argmax(res.time >= t - 1e-6))
        for lv in levels:
            out["width"][lv, t] = 1e3 * sum(_outer_crossing(s, p[:, k], lv) for p in (xs, ds))
            (lo_a, hi_a), (lo_s, hi_s) = (_axial_extent(z, p[:, k], lv) for p in (ax, sf))
            lo, hi = min(lo_a, lo_s), max(hi_a, hi_s)
            out["length"][lv, t] = 1e3 * (hi - lo)
            out["distal"][lv, t] = 1e3 * (hi - 0.5 * TIP_LENGTH_M)
            out["proximal"][lv, t] = 1e3 * (-0.5 * TIP_LENGTH_M - lo)
    sensor = res.sensors["sensor"]
    settle = int(np.argmax(sensor >= target_C - 2.0))
    out["run"] = {
        "settle_s": float(res.time[settle]),
        "sensor_error_C": float(np.abs(sensor[settle:] - target_C).max()),
        "max_power_W": float(res.power.max()),
    }
    return out


def _width(gauge, target_C, t):
    run = next(r for r in RUNS if r[:2] == (gauge, target_C) and r[2] >= t)
    return lesion(*run)["width"][LESION_C, t]


def _length(gauge, target_C, t):
    run = next(r for r in RUNS if r[:2] == (gauge, target_C) and r[2] >= t)
    return lesion(*run)["length"][LESION_C, t]


_G16_ONLY = "the 16 G result is outside the range, the 22 G one inside"


@pytest.mark.slow
@pytest.mark.xfail(
    strict=False,
    raises=AssertionError,
    reason="22 -> 16 G widens the model lesion by 37 % (2.3 mm), the paper by 58-65 % "
    "(3-4 mm); 22-41 % for boundaries of 45-55 °C and starts at 22 or 37 °C",
)
def test_cosman_2014_gauge_22_to_16_widens_58_to_65_percent():
    """(a) 80 °C, 2 min: W16 / W22 in 1.58-1.65 and W16 - W22 in 3-4 mm.

    Model: 8.67 / 6.34 mm = 1.368 (+2.33 mm); 1.332 at 1/3 mm and 1.360 at 0.2 mm.

    The model's 22 G lesion is too large relative to its 16 G one, the gap is 2.2-2.7 mm
    for every boundary and start temperature tried. Candidate causes, none verified: the
    probe is tissue in the model (no steel cannula, no electrode inside it, so no metal
    conduction or thermal mass along the tip), the control thermocouple sits exactly at
    the distal end, and the paper's averages may pool other tips (5-15 mm) and
    generator ramps.
    """
    w16, w22 = _width(16, 80.0, 120.0), _width(22, 80.0, 120.0)
    assert 1.58 <= w16 / w22 <= 1.65, (w16, w22, w16 / w22)
    assert 3.0 <= w16 - w22 <= 4.0, (w16, w22)


@pytest.mark.slow
@pytest.mark.parametrize(
    "gauge",
    [
        pytest.param(
            16,
            marks=pytest.mark.xfail(
                strict=False,
                raises=AssertionError,
                reason="16 G: 60 -> 90 °C widens the model lesion by 97.8 % (5.04 -> "
                "9.97 mm), the paper by 108-152 %; " + _G16_ONLY,
            ),
        ),
        22,
    ],
    ids=["16G", "22G"],
)
def test_cosman_2014_set_temperature_60_to_90_widens_108_to_152_percent(gauge):
    """(b) 2 min: W90 / W60 in 2.08-2.52 (the paper's range, presumably over its
    cannulae; each modelled cannula is held to it).

    Model: 16 G 9.97 / 5.04 mm = 1.978 (1.982 at 1/3 mm, 1.971 at 0.2 mm); 22 G
    7.50 / 3.25 mm = 2.308 (2.202, 2.293). The ratio depends strongly on the assumed
    boundary, because the 60 °C lesion's edge lies only 10 K below its set-point: at
    55 °C 16 G gives 2.525.
    """
    w60, w90 = _width(gauge, 60.0, 120.0), _width(gauge, 90.0, 120.0)
    assert 2.08 <= w90 / w60 <= 2.52, (w60, w90, w90 / w60)


@pytest.mark.slow
@pytest.mark.parametrize(
    "gauge",
    [
        pytest.param(
            g,
            marks=pytest.mark.xfail(
                strict=False,
                raises=AssertionError,
                reason="the model lesion grows faster after the first minute: "
                + ("+22.8 % and +33.7 %" if g == 16 else "+26.8 % and +39.9 %")
                + " at 2 and 3 min, the paper +11-20 % and +23-32 %",
            ),
        )
        for g in (16, 22)
    ],
    ids=["16G", "22G"],
)
def test_cosman_2014_width_grows_11_20_and_23_32_percent_after_1_min(gauge):
    """(c) 80 °C: W2 / W1 in 1.11-1.20 and W3 / W1 in 1.23-1.32.

    Model: 16 G 7.06 / 8.67 / 9.44 mm (ratios 1.228 and 1.337; 1.218 / 1.330 at 1/3 mm,
    1.225 / 1.332 at 0.2 mm); 22 G 5.00 / 6.34 / 7.00 mm (1.268 and 1.399; 1.255 /
    1.378; 1.263 / 1.391). Outside for every boundary from 45 to 55 °C and for a 37 °C
    start.

    The model's first-minute lesion is too small next to its later ones. Its generator
    reaches the set-point within 6-10 s, so a slower set-point ramp in the experiment
    would widen the gap, not close it. Candidate cause, not verified: a real
    thermocouple sits inside the metal electrode and lags the tissue, so a real generator
    overdrives at first and makes the early lesion relatively larger. The model's sensor
    is a point in tissue and responds at once.
    """
    w1, w2, w3 = (_width(gauge, 80.0, t) for t in (60.0, 120.0, 180.0))
    assert 1.11 <= w2 / w1 <= 1.20, (w1, w2, w3)
    assert 1.23 <= w3 / w1 <= 1.32, (w1, w2, w3)


@pytest.mark.slow
@pytest.mark.parametrize("gauge", [16, 22], ids=["16G", "22G"])
def test_cosman_2014_length_exceeds_tip_by_1_to_5_mm(gauge):
    """(d) 80 °C, 2 min: the lesion reaches past both ends of the 10 mm tip and is
    1-5 mm longer than it.

    Model: 16 G 14.26 mm (+4.26: 2.40 distal, 1.86 proximal; +4.33 at 1/3 mm, +4.30 at
    0.2 mm); 22 G 12.75 mm (+2.75: 1.46 distal, 1.29 proximal; +2.80, +2.76). With a
    37 °C start, 16 G gives +6.95 mm, outside.
    """
    out = lesion(*next(r for r in RUNS if r[:2] == (gauge, 80.0)))
    key = (LESION_C, 120.0)
    assert out["distal"][key] > 0, out
    assert out["proximal"][key] > 0, out
    assert 1.0 <= out["length"][key] - 1e3 * TIP_LENGTH_M <= 5.0, out["length"][key]


@pytest.mark.slow
def test_cosman_2014_width_and_length_grow_with_each_factor():
    """(e) Width and length grow with gauge, set temperature and set time. Also the
    precondition of every comparison: the generator holds the tip sensor within 2 K of
    the set-point after first reaching it (PI overshoot 1.6-1.9 K), below its limit."""
    for run in RUNS:
        g = lesion(*run)["run"]
        assert g["sensor_error_C"] < 2.0, (run, g)
        assert g["settle_s"] < 15.0, (run, g)
        assert g["max_power_W"] <= MAX_POWER_W + 1e-9, (run, g)
    for size in (_width, _length):
        assert size(22, 80.0, 120.0) < size(16, 80.0, 120.0)
        for g in (16, 22):
            assert size(g, 60.0, 120.0) < size(g, 80.0, 120.0) < size(g, 90.0, 120.0)
            assert size(g, 80.0, 60.0) < size(g, 80.0, 120.0) < size(g, 80.0, 180.0)
