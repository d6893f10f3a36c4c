"""A procedural thoracolumbar/lumbar vertebra: body, posterior arch, canal, cord or cauda
equina, nerve roots, discs and the soft tissue behind them.

Frames: SI inside (metres), world frame RAS (+x towards the patient's right, +y anterior,
+z superior), arrays indexed ``[x, y, z]``. The origin is the centre of the vertebral body,
so the spinal canal lies at **negative y**. A grid smaller than the modelled anatomy clips
it.

Dimensions come from the anatomical literature (tags: [V] read in the cited source, [V†]
read in a transcription of its tables, [C] computed, [U] typical, unverified);
:func:`vertebra`'s docstring names each number and its source, and
:attr:`Phantom.description` repeats the numbers actually used.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from ..errors import ScenarioError, suggest
from ..grid import Grid
from .painter import Painter, capsule, check_skin, paint_sphere, spheroid, surface_layer
from .params import check_length, check_number, check_tissue, check_tumour
from .phantom import Phantom, Structure

__all__ = ["VERTEBRA_LEVELS", "vertebra"]

_MM = 1e-3


#: Dimension defaults [mm] at T12 and L3, each with its source; L1 is derived below.
_T12 = {
    "body_width": 39.2,  # Panjabi 1992 upper end-plate width, read off figure [V†]
    "body_depth": 31.0,  # 30-32 [U]
    "body_height": 22.7,  # posterior height, Panjabi 1991 [V†]
    "disc_height": 6.5,  # T12-L1 5.6 (CT, Bach 2019) to 9.3 (central, Busscher) [V†]
    "pedicle_width": 8.5,  # 8.3 ± 1.8 Kaur 2016 [V]; 8.7 Panjabi [V†]
    "pedicle_height": 17.3,  # 17.3 ± 1.6 cadaver [V]
    "canal_ap": 17.4,  # 16.7 ± 1.2 Kang 2012 [V], 18.1 Panjabi [V†]: mean
    "canal_width": 22.2,  # Panjabi [V†]
    "dural_sac_ap": 12.0,  # ≈ 12 [U]
    "dural_sac_width": 14.0,  # ≈ 14 [U]
    "cord_ap": 7.0,  # ≈ 7 (lumbar enlargement) [U]
    "cord_width": 9.0,  # ≈ 9 [U]
    "ventral_csf": 1.5,  # 1-2 [U]  -> dorsal CSF 12 - 1.5 - 7 = 3.5 (Park 2.5 ± 0.9 [V])
    "anterior_epidural": 1.5,  # 0.5-2 over mid-body [U] -> posterior epidural 3.9 (4.1 [V])
    "root_diameter": 3.5,  # between thoracic 2-3 [U] and L1 3.9 ± 0.8 (Khasawneh) [V]
    "drg_diameter": 4.5,  # DRG width 3.2-6.5 (Silverstein 2015) [V]
    "lamina_thickness": 7.0,  # ≈ 7 [U]
    "spinous_length": 30.0,  # near horizontal [U]
    "spinous_height": 14.0,  # [U]
    "transverse_length": 12.1,  # 12.1 ± 2.3 Kaur 2016 [V]
    "ligamentum_flavum": 3.2,  # L2-3 3.2 ± 0.3 Khasawneh 2023 [V]
    "skin_depth": 45.0,  # canal to skin; thoracic muscle 25-40 [U] + fat + lamina
    "subcutaneous_fat": 10.0,  # 10-30 [U]
    "psoas_width": 10.0,  # psoas origin / crus at T12 [U]
    "psoas_depth": 10.0,  # [U]
    "cauda_ap": 4.5,  # roots bundle in the dorsal sac [U]
    "cauda_width": 10.0,  # [U]
}
_L3 = {
    "body_width": 44.1,  # 44.1 ± 0.9 Panjabi 1992 [V†]; meta 44.8 [V†]
    "body_depth": 35.0,  # 34-36 [U]; 30-35 at L3-L5 (spinebase) [V]
    "body_height": 23.8,  # posterior 23.8 ± 1.1 Panjabi [V†]
    "disc_height": 10.0,  # L3-L4 8.8 ± 1.6 (Shin 2024) [V†] to 12.5 ± 1.8 (MRI) [V]
    "pedicle_width": 10.2,  # 10.15 Panjabi; 10.3 ± 2.6 Zindrick [V†]
    "pedicle_height": 14.5,  # 14-15 [U]
    "canal_ap": 16.6,  # 15.7 ± 1.9 Kang [V], 17.5 Panjabi [V†]: mean
    "canal_width": 23.2,  # 24.3 Panjabi, 22.1 ± 2.7 Griffith [V†]: mean
    "dural_sac_ap": 10.5,  # sac/canal 0.56-0.70 (Pierro 2017) [V] x 16.6 -> 9.3-11.6 [C]
    "dural_sac_width": 15.0,  # [U]
    "cord_ap": 6.5,  # used only where a conus reaches the grid (see conus_tip)
    "cord_width": 8.0,
    "ventral_csf": 1.5,
    "anterior_epidural": 1.5,  # [U]
    "root_diameter": 4.5,  # L3 ≈ 4.5 [U] (L1 3.9 -> S1 5.5, Khasawneh) [V]
    "drg_diameter": 5.5,  # 3.2-6.5 (Silverstein 2015) [V]
    "lamina_thickness": 6.5,  # 5-8 [U]
    "spinous_length": 30.0,  # 25-35 [U]
    "spinous_height": 17.5,  # 15-20 [U]
    "transverse_length": 19.0,  # ≈ 19 Li 2003 [V]
    "ligamentum_flavum": 3.2,  # 3.2 ± 0.3 Khasawneh 2023 [V]
    "skin_depth": 57.0,  # skin -> epidural space 57 ± 12 at L3-L4 (MRI, 227 adults) [V]
    "subcutaneous_fat": 15.0,  # 10-30 [U]
    "psoas_width": 30.0,  # [U]
    "psoas_depth": 25.0,  # [U]
    "cauda_ap": 4.5,  # [U]
    "cauda_width": 10.0,  # [U]
}
#: L1 = T12 + (L3 - T12) / 3 (L1 is one third of the way from T12 to L3), rounded to
#: 0.1 mm, except the cord (a tapering conus, slightly below the T12 7 x 9 [U]) and the
#: root (L1 3.9 ± 0.8, Khasawneh 2023 [V]).
_L1 = {k: round(_T12[k] + (_L3[k] - _T12[k]) / 3.0, 1) for k in _T12}
_L1.update(cord_ap=6.5, cord_width=8.0, root_diameter=3.9)

#: Level -> (dimension defaults [mm], level index counted from T12 along the spine).
VERTEBRA_LEVELS: dict[str, tuple[dict[str, float], int]] = {
    "T12": (_T12, 0),
    "L1": (_L1, 1),
    "L3": (_L3, 3),
}

_VERTEBRA_DIMS = tuple(_T12)  # the dimension keywords, in documentation order


def vertebra(
    grid: Grid,
    *,
    level: str = "L1",
    scale: float = 1.0,
    tumour: Mapping | None = None,
    body_tissue: str = "cancellous_bone",
    conus_tip: float | None = None,
    conus_length: float = 0.015,
    body_width: float | None = None,
    body_depth: float | None = None,
    body_height: float | None = None,
    disc_height: float | None = None,
    pedicle_width: float | None = None,
    pedicle_height: float | None = None,
    canal_ap: float | None = None,
    canal_width: float | None = None,
    dural_sac_ap: float | None = None,
    dural_sac_width: float | None = None,
    cord_ap: float | None = None,
    cord_width: float | None = None,
    ventral_csf: float | None = None,
    anterior_epidural: float | None = None,
    root_diameter: float | None = None,
    drg_diameter: float | None = None,
    lamina_thickness: float | None = None,
    spinous_length: float | None = None,
    spinous_height: float | None = None,
    transverse_length: float | None = None,
    ligamentum_flavum: float | None = None,
    skin_depth: float | None = None,
    subcutaneous_fat: float | None = None,
    psoas_width: float | None = None,
    psoas_depth: float | None = None,
    cauda_ap: float | None = None,
    cauda_width: float | None = None,
) -> Phantom:
    """A thoracolumbar/lumbar vertebra with its canal, cord or cauda equina, roots and discs.

    The origin is the centre of the vertebral body; +x right, +y anterior, +z superior, so
    the canal lies behind the body at negative y. Neighbouring vertebrae repeat the same
    shape every ``body_height + disc_height`` along z (the spine is modelled as periodic),
    so a tall grid shows the discs and the adjacent bodies above and below.

    Structures (label order; structures with no voxel in the grid are left out):

    ``soft_tissue`` (muscle, everything not modelled), ``erector_spinae``, ``psoas``
    (muscle), ``subcutaneous_fat`` (fat), ``skin``; ``epidural_fat`` (fat: epidural space,
    lateral recesses and foramina); ``disc_above``, ``disc_below``, ``adjacent_discs`` (disc);
    ``vertebral_body`` (``body_tissue``), ``cortical_shell`` and ``endplate``
    (cortical_bone, one voxel: the real shell is ≈0.3 mm, thinner than a voxel);
    ``pedicle_left``, ``pedicle_right``, ``posterior_arch`` (cancellous_bone: lamina,
    articular pillars, spinous and transverse processes) inside ``posterior_cortex``
    (cortical_bone, one voxel); ``adjacent_vertebrae`` (cancellous_bone) and
    ``adjacent_cortex`` (cortical_bone) for the neighbouring levels; ``facet_joints``
    (cartilage); ``ligamentum_flavum`` (ligament); ``nerve_root_left``,
    ``nerve_root_right`` (nerve: this level's roots, exiting below its pedicles, each with a
    DRG thickening in the medial foramen), ``nerve_root_above_left/right`` and
    ``nerve_root_below_left/right`` (the neighbouring levels' roots); ``csf`` (the dural
    sac); ``cauda_equina`` (nerve, below the conus, lying dorsally in the sac);
    ``spinal_cord`` (spinal_cord, above the conus tip); ``tumour``.

    Parameters
    ----------
    grid : Grid
        The voxel grid (any size: anatomy outside it is clipped). The grid must not reach
        behind the posterior skin (there is no air tissue).
    level : {"L1", "T12", "L3"}, default ``"L1"``
        Sets the dimension defaults (table below) and where the conus ends. The cord ends
        at about L1 (conus tip mean lower third of L1, range mid-T12 to upper L3; Saifuddin
        et al. 1998, Spine 23(13) [V]), so at **T12** the canal holds the cord, at **L1**
        the conus ends in the lower third of the body with the cauda equina below it, and at
        **L3** the canal holds only the cauda equina (nerve tissue lying dorsally in the
        CSF, Tanaka et al. 2023 [V]) -- unless the grid reaches up to L1.
    scale : float, default 1.0
        Multiplies every dimension (defaults and the ones given), e.g. 1.2 for a large
        patient. Positions given explicitly (``tumour``, ``conus_tip``) are not scaled.
    tumour : mapping, optional
        ``{"center": (x, y, z) [m], "diameter": [m], "kind": "lytic" | "blastic"}``: a
        sphere of tissue ``tumour_lytic`` / ``tumour_blastic`` (structure ``"tumour"``).
        It replaces bone, fat and muscle -- and breaches the posterior wall if placed
        there -- but never the cord, cauda equina, roots, CSF or the discs (discs resist
        tumour invasion [U]); it is clipped to them.
    body_tissue : str, default ``"cancellous_bone"``
        Tissue of the vertebral body's interior (e.g. ``"red_marrow"``).
    conus_tip : float, optional
        z of the conus tip [m]. Default: the centre of the lower third of L1, i.e.
        ``z_L1 - body_height / 3`` with ``z_L1 = (index(level) - 1) x period`` (below at
        T12, in this body at L1, two levels above at L3).
    conus_length : float, default 0.015
        Length over which the cord tapers to the tip (conus medullaris) [m] [U].
    body_width, body_depth, body_height, disc_height, pedicle_width, pedicle_height, \
canal_ap, canal_width, dural_sac_ap, dural_sac_width, cord_ap, cord_width, ventral_csf, \
anterior_epidural, root_diameter, drg_diameter, lamina_thickness, spinous_length, \
spinous_height, transverse_length, ligamentum_flavum, skin_depth, subcutaneous_fat, \
psoas_width, psoas_depth, cauda_ap, cauda_width : float, optional
        Dimensions [m]; ``None`` takes the level's default (mm below).

    Notes
    -----
    Defaults [mm] ([V] read in source, [V†] from a table transcription, [C] computed,
    [U] typical unverified). L1 is interpolated one third of the way from T12
    to L3 (T12, L1, L2, L3 equally spaced) and rounded to 0.1 mm, except where noted.

    =====================  =====  =====  =====  ==================================================
    parameter                T12     L1     L3  source
    =====================  =====  =====  =====  ==================================================
    body_width              39.2   40.8   44.1  Panjabi 1992 [V†]
    body_depth              31.0   32.3   35.0  T12 30-32 [U]; L3 34-36 [U], 30-35 spinebase [V]
    body_height             22.7   23.1   23.8  posterior height, Panjabi 1991/1992 [V†]
    disc_height              6.5    7.7   10.0  T12-L1 5.6-9.3 [V†]; L3-L4 8.8-12.5 [V†]/[V]
    pedicle_width            8.5    9.1   10.2  Kaur 2016 [V]; Panjabi, Zindrick [V†]
    pedicle_height          17.3   16.4   14.5  cadaver T12 [V]; L3 14-15 [U]
    canal_ap                17.4   17.1   16.6  mean of Kang 2012 [V] and Panjabi [V†]
    canal_width             22.2   22.5   23.2  Panjabi; Griffith 2016 [V†]
    dural_sac_ap            12.0   11.5   10.5  T12 ≈12 [U]; L3 0.56-0.70 x canal (Pierro) [C]
    dural_sac_width         14.0   14.3   15.0  [U]
    cord_ap                  7.0    6.5   (6.5) T12 ≈7 [U]; L1 conus, tapering [U]
    cord_width               9.0    8.0   (8.0) T12 ≈9 [U]
    ventral_csf              1.5    1.5    1.5  1-2 [U]; dorsal CSF = sac - ventral - cord
    anterior_epidural        1.5    1.5    1.5  0.5-2 over mid-body [U]
    root_diameter            3.5    3.9    4.5  L1 3.9 ± 0.8 Khasawneh 2023 [V]; [U]
    drg_diameter             4.5    4.8    5.5  DRG width 3.2-6.5, Silverstein 2015 [V]
    lamina_thickness         7.0    6.8    6.5  T12 ≈7, L3 5-8 [U]
    spinous_length          30.0   30.0   30.0  25-35 [U]
    spinous_height          14.0   15.2   17.5  L3 15-20 [U]
    transverse_length       12.1   14.4   19.0  Kaur 2016 [V]; Li 2003 [V]
    ligamentum_flavum        3.2    3.2    3.2  L2-3 3.2 ± 0.3, Khasawneh 2023 [V]
    skin_depth              45.0   49.0   57.0  canal back wall -> skin; L3-4 57 ± 12 MRI [V]
    subcutaneous_fat        10.0   11.7   15.0  10-30 [U]
    psoas_width/depth      10/10 16.7/15 30/25  [U]
    cauda_ap/width         4.5/10 4.5/10 4.5/10 [U]
    =====================  =====  =====  =====  ==================================================

    At L1 the body spans y in [-16.2, 16.2] mm and the canal reaches back to y = -33.3 mm,
    so a 48 mm cube centred on the origin cuts the canal in half: centre the grid near
    y = -10 mm (``Grid.from_extent(0.048, h, center=(0, -0.010, 0))``) to hold both.
    Where each structure lies, and the derived dimensions against the literature:
    ``benchmarks/README.md``.

    Geometry: the body is a superellipse (exponent 2.4) in x-y with a 6 % waist at
    mid-height and concave end-plates (1.5 mm for the inferior, 0.7 mm for the superior
    end-plate, Wang 2012 [V], read as the end-plate above / below the disc); the pedicles
    are elliptic cylinders along y whose top lies 1 mm below the upper end-plate; the canal
    is a superellipse behind the body with a rectangular lateral recess between the
    pedicles; the dural sac and the cord are ellipses (cord against the ventral CSF
    layer); each root runs from the sac under its pedicle (DRG, a spheroid of length
    2 x ``drg_diameter``, centred directly below the pedicle in the medial foramen,
    Silverstein 2015 [V]) and then laterally, anteriorly and caudally into the psoas. The
    posterior skin is a plane ``skin_depth`` behind the canal (skin 2 mm [U]). Not
    modelled: ribs at T12, aorta and IVC, the posterior longitudinal ligament, epidural
    veins, the sagittal orientation of the lumbar facet joints (modelled as 1.5 mm
    horizontal cartilage gaps at disc level).

    References
    ----------
    .. [1] Panjabi MM et al., Human lumbar vertebrae: quantitative three-dimensional
       anatomy, Spine 17(3):299-306 (1992), DOI 10.1097/00007632-199203000-00010.
    .. [2] Saifuddin A, Burnett SJ, White J, The variation of position of the conus
       medullaris in an adult population, Spine 23(13):1452-1456 (1998).
    .. [3] Silverstein MP et al., Int J Spine Surg 9:3 (2015) (DRG position).
    .. [4] Khasawneh RA et al., Folia Morphol 82:72 (2023) (root diameter, flavum).
    .. [5] Silva MJ et al., Bone 15:409 (1994) (cortical shell ≈0.35 mm at L1).
    """
    key = str(level).strip().upper()
    if key not in VERTEBRA_LEVELS:
        raise ScenarioError(
            f"vertebra level {level!r} is not modelled{suggest(key, VERTEBRA_LEVELS)}; "
            "use 'T12' (cord), 'L1' (conus, default) or 'L3' (cauda equina)"
        )
    defaults, level_index = VERTEBRA_LEVELS[key]
    scale = check_number("scale", scale, lo=0.0, hi=5.0, example="1.2")
    given = {
        "body_width": body_width,
        "body_depth": body_depth,
        "body_height": body_height,
        "disc_height": disc_height,
        "pedicle_width": pedicle_width,
        "pedicle_height": pedicle_height,
        "canal_ap": canal_ap,
        "canal_width": canal_width,
        "dural_sac_ap": dural_sac_ap,
        "dural_sac_width": dural_sac_width,
        "cord_ap": cord_ap,
        "cord_width": cord_width,
        "ventral_csf": ventral_csf,
        "anterior_epidural": anterior_epidural,
        "root_diameter": root_diameter,
        "drg_diameter": drg_diameter,
        "lamina_thickness": lamina_thickness,
        "spinous_length": spinous_length,
        "spinous_height": spinous_height,
        "transverse_length": transverse_length,
        "ligamentum_flavum": ligamentum_flavum,
        "skin_depth": skin_depth,
        "subcutaneous_fat": subcutaneous_fat,
        "psoas_width": psoas_width,
        "psoas_depth": psoas_depth,
        "cauda_ap": cauda_ap,
        "cauda_width": cauda_width,
    }
    d = {}
    for k in _VERTEBRA_DIMS:
        v = given[k]
        allow0 = k in ("ventral_csf", "anterior_epidural")
        v = defaults[k] * _MM if v is None else check_length(k, v, allow_zero=allow0)
        d[k] = v * scale
    body_tissue = check_tissue("body_tissue", body_tissue)
    conus_length = check_length("conus_length", conus_length) * scale
    if conus_tip is not None:
        try:
            conus_tip = float(conus_tip)
        except (TypeError, ValueError):
            conus_tip = math.nan
        if not math.isfinite(conus_tip):
            raise ScenarioError(
                f"phantom parameter 'conus_tip' must be a z coordinate in metres, got "
                f"{conus_tip!r}; e.g. conus_tip=-0.008"
            )
    spec = check_tumour(tumour)
    _check_vertebra_fits(d)
    return _build_vertebra(
        grid, key, level_index, scale, d, body_tissue, conus_tip, conus_length, spec
    )


def _check_vertebra_fits(d: dict[str, float]) -> None:
    """Nested dimensions must fit inside each other; name both sides and the fix."""
    checks = [
        ("ventral_csf + cord_ap", d["ventral_csf"] + d["cord_ap"], "dural_sac_ap"),
        ("cord_width", d["cord_width"], "dural_sac_width"),
        (
            "anterior_epidural + dural_sac_ap",
            d["anterior_epidural"] + d["dural_sac_ap"],
            "canal_ap",
        ),
        ("dural_sac_width", d["dural_sac_width"], "canal_width"),
        ("cauda_ap", d["cauda_ap"], "dural_sac_ap"),
        ("cauda_width", d["cauda_width"], "dural_sac_width"),
        ("canal_width", d["canal_width"], "body_width"),
    ]
    for what, inner, outer in checks:
        if inner >= d[outer]:
            raise ScenarioError(
                f"vertebra dimensions do not nest: {what} = {inner * 1e3:.1f} mm must be smaller "
                f"than {outer} = {d[outer] * 1e3:.1f} mm; reduce the first or enlarge the second"
            )


def _build_vertebra(
    grid, level, level_index, scale, d, body_tissue, conus_tip, conus_length, tumour
) -> Phantom:
    mm = _MM * scale
    a, b = d["body_width"] / 2, d["body_depth"] / 2
    H = d["body_height"]
    P = H + d["disc_height"]  # period of the spine along z
    Wc, Dc = d["canal_width"], d["canal_ap"]
    Wp, Hp = d["pedicle_width"], d["pedicle_height"]
    y_c = -b - Dc / 2  # canal centre (A-P)
    y_cp = -b - Dc  # posterior border of the canal at the midline
    x_p = Wc / 2 + Wp / 2  # pedicle axis
    z_p = H / 2 - 1.0 * mm - Hp / 2  # pedicle centre: top 1 mm below the upper end-plate
    sac_ap, sac_w = d["dural_sac_ap"], d["dural_sac_width"]
    y_s = -b - d["anterior_epidural"] - sac_ap / 2  # dural sac centre
    y_cord = y_s + sac_ap / 2 - d["ventral_csf"] - d["cord_ap"] / 2
    if conus_tip is None:
        conus_tip = (level_index - 1) * P - H / 3.0
    t_lam = d["lamina_thickness"]
    y_skin = y_cp - d["skin_depth"]
    skin_t = 2.0 * mm
    p_exp = 2.4  # superellipse exponent of the body [U]
    waist = 0.06  # mid-height narrowing of the body [U]
    conc_sup, conc_inf = 0.7 * mm, 1.5 * mm  # end-plate concavity (Wang 2012) [V]

    check_skin(grid, y_skin - grid.bounds[1][0] - grid.spacing, "posterior", "skin_depth")

    x, y, z = grid.mesh()  # (nx,1,1), (1,ny,1), (1,1,nz)
    zmod = np.mod(z + P / 2, P) - P / 2  # position within the vertebra's period
    kz = np.rint((z - zmod) / P).astype(int)  # period index: 0 = this vertebra
    central = kz == 0

    p = Painter(grid, Structure("soft_tissue", "muscle"))
    names = [
        ("erector_spinae", "muscle"),
        ("psoas", "muscle"),
        ("subcutaneous_fat", "fat"),
        ("skin", "skin"),
        ("epidural_fat", "fat"),
        ("disc_above", "disc"),
        ("disc_below", "disc"),
        ("adjacent_discs", "disc"),
        ("vertebral_body", body_tissue),
        ("cortical_shell", "cortical_bone"),
        ("endplate", "cortical_bone"),
        ("pedicle_left", "cancellous_bone"),
        ("pedicle_right", "cancellous_bone"),
        ("posterior_arch", "cancellous_bone"),
        ("posterior_cortex", "cortical_bone"),
        ("adjacent_vertebrae", "cancellous_bone"),
        ("adjacent_cortex", "cortical_bone"),
        ("facet_joints", "cartilage"),
        ("ligamentum_flavum", "ligament"),
        ("nerve_root_left", "nerve"),
        ("nerve_root_right", "nerve"),
        ("nerve_root_above_left", "nerve"),
        ("nerve_root_above_right", "nerve"),
        ("nerve_root_below_left", "nerve"),
        ("nerve_root_below_right", "nerve"),
        ("csf", "csf"),
        ("cauda_equina", "nerve"),
        ("spinal_cord", "spinal_cord"),
    ]
    for n, t in names:
        p.add(n, t)
    if tumour is not None:
        p.add("tumour", tumour[2])

    # -- soft tissue: erector spinae, psoas, subcutaneous fat, skin (before bone) -------
    ax_ = np.abs(x)
    y_tp = y_c - 1.0 * mm  # transverse process centre (A-P)
    tp_t = 6.0 * mm  # transverse process thickness (A-P) [U]
    es_half = x_p + Wp / 2 + d["transverse_length"] + 10.0 * mm
    fat_front = y_skin + skin_t + d["subcutaneous_fat"]
    p.paint("erector_spinae", (y < y_tp - tp_t / 2) & (ax_ <= es_half) & (y >= fat_front))
    pw, pd = d["psoas_width"], d["psoas_depth"]
    xs = a + 0.3 * pw
    psoas = ((ax_ - xs) / (pw / 2)) ** 2 + ((y + 0.1 * 2 * b) / (pd / 2)) ** 2 <= 1.0
    p.paint("psoas", psoas)
    p.paint("subcutaneous_fat", (y < fat_front) & (y >= y_skin + skin_t))
    p.paint("skin", y < y_skin + skin_t)

    # -- canal (epidural space), lateral recesses and foramina (fat) --------------------
    pc = 2.5
    canal_post = (np.abs(x / (Wc / 2)) ** pc + np.abs((y - y_c) / (Dc / 2)) ** pc <= 1.0) & (
        y <= y_c
    )
    canal_ant = (ax_ <= Wc / 2) & (y > y_c) & (y < 0)
    canal = canal_post | canal_ant  # 2D (nx, ny, 1)
    foramen = (ax_ >= Wc / 2) & (ax_ <= x_p + Wp / 2) & (y > y_c) & (y < -b / 2)
    p.paint("epidural_fat", canal | foramen)

    # -- bone: bodies (periodic), posterior elements ---------------------------------
    s0 = np.abs(x / a) ** p_exp + np.abs(y / b) ** p_exp  # 2D
    f = 1.0 - waist * (1.0 - np.clip(2.0 * zmod / H, -1.0, 1.0) ** 2)  # 1D
    s1 = np.clip(s0, 0.0, 1.0)
    top = H / 2 - conc_sup * (1.0 - s1)
    bottom = -H / 2 + conc_inf * (1.0 - s1)
    body = (s0 <= f**p_exp) & (zmod <= top) & (zmod >= bottom)

    disc = (s0 <= 1.0) & ~body & (np.abs(zmod) >= H / 2 - max(conc_sup, conc_inf))
    p.paint("disc_above", disc & (z > 0) & (z < P))
    p.paint("disc_below", disc & (z <= 0) & (z > -P))
    p.paint("adjacent_discs", disc & (np.abs(z) >= P))

    pedicle = (((ax_ - x_p) / (Wp / 2)) ** 2 + ((zmod - z_p) / (Hp / 2)) ** 2 <= 1.0) & (
        (y >= y_c) & (y <= -b / 2)
    )
    pill_half = Wp / 2 + 1.5 * mm
    gap = 1.5 * mm  # facet joint space [U]
    y_pf = y_c + 0.25 * Dc  # front of the articular pillar = back of the foramen
    pillar_xy = (np.abs(ax_ - x_p) <= pill_half) & (y >= y_c - 9.0 * mm) & (y <= y_pf)
    pillar = pillar_xy & (np.abs(zmod) < P / 2 - gap / 2)
    facet = pillar_xy & (np.abs(zmod) >= P / 2 - gap / 2)
    outer = (
        np.abs(x / (Wc / 2 + Wp)) ** pc + np.abs((y - y_c) / (Dc / 2 + t_lam)) ** pc <= 1.0
    ) & (y <= y_c)
    z_lam, h_lam = -0.15 * H, 0.9 * H
    in_lamina_z = np.abs(zmod - z_lam) <= h_lam / 2
    lamina = outer & in_lamina_z
    y_lp = y_cp - t_lam  # posterior surface of the lamina at the midline
    z_sp, h_sp = -0.2 * H, d["spinous_height"]
    spinous = (
        (ax_ <= 3.0 * mm)
        & (y <= y_lp + 1.0 * mm)
        & (y >= y_lp - d["spinous_length"])
        & (np.abs(zmod - z_sp) <= h_sp / 2)
    )
    transverse = (
        (ax_ >= x_p)
        & (ax_ <= x_p + Wp / 2 + d["transverse_length"])
        & (np.abs(y - y_tp) <= tp_t / 2)
        & (np.abs(zmod - z_p) <= 0.25 * Hp)
    )
    posterior = (pedicle | pillar | lamina | spinous | transverse) & ~canal
    bone = body | posterior
    shell, exposed_z = surface_layer(bone)
    interior = bone & ~shell
    post_only = posterior & ~body
    p.paint("vertebral_body", interior & body & central)
    p.paint("cortical_shell", shell & body & central & ~exposed_z)
    p.paint("endplate", shell & body & central & exposed_z)
    ped_only = interior & pedicle & ~body & central
    p.paint("posterior_arch", interior & post_only & central & ~pedicle)
    p.paint("pedicle_left", ped_only & (x < 0))
    p.paint("pedicle_right", ped_only & (x >= 0))
    p.paint("posterior_cortex", shell & post_only & central)
    p.paint("adjacent_vertebrae", interior & ~central)
    p.paint("adjacent_cortex", shell & ~central)
    del shell, exposed_z, interior, post_only, body, posterior, disc

    p.paint("facet_joints", facet & ~canal)
    t_lf = d["ligamentum_flavum"]
    flavum_ring = (
        (np.abs(x / (Wc / 2 + t_lf)) ** pc + np.abs((y - y_c) / (Dc / 2 + t_lf)) ** pc <= 1.0)
        & ~canal_post
        & (y <= y_c)
        & (ax_ <= x_p - Wp / 2)
    )
    p.paint("ligamentum_flavum", flavum_ring & ~in_lamina_z)

    # -- roots with DRG, neighbouring levels' roots -----------------------------------
    bone_names = [n for n, t in names if t.endswith("bone")] + ["vertebral_body"]
    r_root = d["root_diameter"] / 2
    r_drg = d["drg_diameter"] / 2
    ex = abs(x_p) / a
    y_body_at_xp = -b * (1.0 - ex**p_exp) ** (1.0 / p_exp) if ex < 1 else -0.25 * b
    y_drg = 0.5 * (y_body_at_xp + y_pf)
    z_drg = z_p - Hp / 2 - r_drg - 0.5 * mm
    for k, tag in ((0, ""), (1, "above_"), (-1, "below_")):
        for side, sx in (("left", -1.0), ("right", 1.0)):
            zk = k * P
            p0 = np.array([sx * (sac_w / 2 - r_root), y_s, zk + z_p - 0.12 * Hp])
            p1 = np.array([sx * x_p, y_drg, zk + z_drg])
            p2 = p1 + np.array([sx * 9.0, 4.0, -6.0]) * mm
            p3 = p2 + np.array([sx * 12.0, 8.0, -8.0]) * mm
            name = f"nerve_root_{tag}{side}"
            pts = np.stack([p0, p1, p2, p3])
            reach = max(r_root, 2 * r_drg) + grid.spacing
            region = p.box(pts.min(axis=0) - reach, pts.max(axis=0) + reach)
            if region is None:
                continue
            mesh = p.sub_mesh(region)
            m = capsule(mesh, p0, p1, r_root)
            m |= capsule(mesh, p1, p2, r_root)
            m |= capsule(mesh, p2, p3, r_root)
            m |= spheroid(mesh, p1, p2 - p0, 2 * r_drg, r_drg)
            p.paint(name, m, region, protect=bone_names)

    # -- dural sac, cauda equina, cord ------------------------------------------------
    sac = (x / (sac_w / 2)) ** 2 + ((y - y_s) / (sac_ap / 2)) ** 2 <= 1.0
    p.paint("csf", sac)
    y_ce = y_s - sac_ap / 2 + 0.5 * mm + d["cauda_ap"] / 2
    cauda = (x / (d["cauda_width"] / 2)) ** 2 + ((y - y_ce) / (d["cauda_ap"] / 2)) ** 2 <= 1.0
    p.paint("cauda_equina", cauda & (z < conus_tip + conus_length / 2))
    g2 = np.clip((z - conus_tip) / conus_length, 0.0, 1.0)  # squared radius factor
    cord2 = (x / (d["cord_width"] / 2)) ** 2 + ((y - y_cord) / (d["cord_ap"] / 2)) ** 2
    p.paint("spinal_cord", (cord2 <= g2) & (z > conus_tip))

    # -- tumour -----------------------------------------------------------------------
    desc_t = ""
    if tumour is not None:
        c, diam, tissue = tumour
        protect = [n for n, t in names if t in ("nerve", "spinal_cord", "csf", "disc")]
        n = paint_sphere(p, "tumour", c, diam / 2, protect)
        if n == 0:
            raise ScenarioError(
                f"tumour at {[round(v * 1e3, 2) for v in c]} mm (diameter {diam * 1e3:g} mm) "
                "has no voxel in the grid outside the neural structures, CSF and discs; "
                "move its center into the grid and into bone"
            )
        desc_t = (
            f" Tumour: {tissue}, diameter {diam * 1e3:g} mm at "
            f"{[round(v * 1e3, 2) for v in c]} mm (clipped to spare neural tissue, CSF, discs)."
        )

    dims = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in d.items())
    cord_txt = {
        "T12": "spinal cord in CSF (conus below, at L1)",
        "L1": "conus medullaris ending in the lower third of the body, cauda equina below",
        "L3": "cauda equina (nerve, dorsal in the sac); no cord",
    }[level]
    desc = (
        f"Procedural {level} vertebra (scale {scale:g}), origin at the centre of the vertebral "
        f"body, RAS (+x right, +y anterior, +z superior), canal at negative y; "
        f"{cord_txt}; conus tip at z = {conus_tip * 1e3:.1f} mm; neighbouring vertebrae "
        f"repeat every {P * 1e3:.1f} mm. Dimensions [mm]: {dims}. Sources: "
        "docs/anatomy.md (Panjabi 1991/1992, Kang 2012, Kaur 2016, Khasawneh 2023, "
        "Silverstein 2015, Saifuddin 1998, Wang 2012, Silva 1994; L1 interpolated from T12 "
        "and L3). Cortical shell and end-plates one voxel thick (real ≈0.3 mm)." + desc_t
    )
    return p.finish(desc)
