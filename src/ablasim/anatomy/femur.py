"""A femoral shaft along z with its medullary canal and a sciatic-like nerve.

Frames as in the other phantoms: metres, RAS (+x right, +y anterior, +z superior), the
origin on the axis of the shaft. Dimensions from ``docs/anatomy.md`` §6 with
the tags [V] / [C] / [U] of :mod:`ablasim.anatomy.spine`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..errors import ScenarioError
from ..grid import Grid
from .painter import Painter, check_skin, paint_sphere
from .params import check_length, check_point, check_tumour
from .phantom import Phantom, Structure

__all__ = ["long_bone"]


_LINEA_ASPERA_HALF_WIDTH = 0.0045  # half-width of the posterior ridge [m] [U]


def long_bone(
    grid: Grid,
    *,
    outer_diameter: float = 0.026,
    canal_diameter: float = 0.0105,
    nerve_diameter: float = 0.008,
    nerve_center: Sequence[float] = (0.0, -0.025),
    linea_aspera: float = 0.003,
    thigh_diameter: float = 0.16,
    subcutaneous_fat: float = 0.015,
    skin_thickness: float = 0.002,
    tumour: Mapping | None = None,
) -> Phantom:
    """A femoral shaft along z with its medullary canal and a sciatic-like nerve.

    The origin lies on the axis of the shaft (+x right = lateral for a right femur,
    +y anterior, +z superior); the shaft, the nerve and the thigh are straight cylinders
    along z.

    Structures: ``muscle`` (muscle, everything not modelled), ``subcutaneous_fat`` (fat),
    ``skin``, ``cortex`` (cortical_bone), ``medullary_canal`` (yellow_marrow),
    ``sciatic_nerve`` (nerve), ``tumour`` (if given). Empty structures are left out.

    Parameters
    ----------
    grid : Grid
        The voxel grid; it must not reach beyond the skin (there is no air tissue).
    outer_diameter : float, default 0.026
        Mid-shaft outer diameter [m]: men 26.5, women 25.6 mm (Karakaş & Harma 2008,
        Diagn Interv Radiol 14:29) [V].
    canal_diameter : float, default 0.0105
        Medullary canal at the isthmus [m]: 10.5 ± 1.5 mm (CT, 204 patients,
        doi 10.1155/2015/459612) [V]. Cortex (26 - 10.5)/2 ≈ 7.8 mm [C].
    nerve_diameter : float, default 0.008
        Sciatic nerve diameter [m] (circular): area 50 mm², between 53 ± 3 mm² at the
        gluteal fold and 44 mm² mid-thigh (Chen 2018, J Med Ultrasound) [V]; the real nerve
        is flatter (A-P 5.5 ± 1.2 mm, Rusu 2020 [V]; width 12-18 [U]).
    nerve_center : 2 floats, default ``(0.0, -0.025)``
        (x, y) of the nerve axis [m]: posterior to the shaft in the posterior compartment,
        8 mm of muscle between bone and nerve [U] (docs/anatomy.md gives positions only at
        the hip).
    linea_aspera : float, default 0.003
        Height of the posterior cortical ridge [m] (posterior cortex thickest, Proc IMechE
        H, doi 10.1243/0954411991534889 [V]; height [U]); 0 for a round shaft.
    thigh_diameter : float, default 0.16
        Diameter of the thigh (skin surface) [m], centred on the shaft [U].
    subcutaneous_fat : float, default 0.015
        Subcutaneous fat thickness [m] [U].
    skin_thickness : float, default 0.002
        Skin thickness [m] [U].
    tumour : mapping, optional
        ``{"center": (x, y, z) [m], "diameter": [m], "kind": "lytic" | "blastic"}``;
        replaces bone, marrow, muscle and fat but never the nerve (clipped).
    """
    r_out = check_length("outer_diameter", outer_diameter) / 2
    r_can = check_length("canal_diameter", canal_diameter) / 2
    r_n = check_length("nerve_diameter", nerve_diameter) / 2
    nc = check_point("nerve_center", nerve_center, n=2)
    h_la = check_length("linea_aspera", linea_aspera, allow_zero=True)
    r_thigh = check_length("thigh_diameter", thigh_diameter) / 2
    fat = check_length("subcutaneous_fat", subcutaneous_fat, allow_zero=True)
    skin = check_length("skin_thickness", skin_thickness)
    spec = check_tumour(tumour)
    if r_can >= r_out:
        raise ScenarioError(
            f"canal_diameter {2 * r_can * 1e3:g} mm must be smaller than outer_diameter "
            f"{2 * r_out * 1e3:g} mm; e.g. canal_diameter=0.0105, outer_diameter=0.026"
        )
    if r_thigh <= r_out + h_la + fat + skin:
        raise ScenarioError(
            f"thigh_diameter {2 * r_thigh * 1e3:g} mm leaves no room for bone, fat and skin; "
            "e.g. thigh_diameter=0.16"
        )
    x, y, _ = grid.mesh()
    # Refuse a grid whose face centres reach beyond the skin (its corners may, harmlessly).
    reach = max(abs(v) for v in (*grid.bounds[0], *grid.bounds[1])) - r_thigh
    check_skin(grid, reach - grid.spacing, "thigh", "thigh_diameter")

    p = Painter(grid, Structure("muscle", "muscle"))
    for n, t in [
        ("subcutaneous_fat", "fat"),
        ("skin", "skin"),
        ("cortex", "cortical_bone"),
        ("medullary_canal", "yellow_marrow"),
        ("sciatic_nerve", "nerve"),
    ]:
        p.add(n, t)
    if spec is not None:
        p.add("tumour", spec[2])
    rho2 = x**2 + y**2  # 2D
    p.paint("subcutaneous_fat", rho2 >= (r_thigh - skin - fat) ** 2)
    p.paint("skin", rho2 >= (r_thigh - skin) ** 2)
    bone = rho2 <= r_out**2
    if h_la > 0:
        bone |= (x / _LINEA_ASPERA_HALF_WIDTH) ** 2 + ((y + r_out) / h_la) ** 2 <= 1.0
    p.paint("cortex", bone)
    p.paint("medullary_canal", rho2 <= r_can**2)
    p.paint("sciatic_nerve", (x - nc[0]) ** 2 + (y - nc[1]) ** 2 <= r_n**2)
    desc_t = ""
    if spec is not None:
        c, diam, tissue = spec
        if paint_sphere(p, "tumour", c, diam / 2, protect=["sciatic_nerve"]) == 0:
            raise ScenarioError(
                f"tumour at {[round(v * 1e3, 2) for v in c]} mm has no voxel in the grid; "
                "move its center into the grid"
            )
        desc_t = f" Tumour: {tissue}, diameter {diam * 1e3:g} mm at {c * 1e3} mm."
    desc = (
        f"Femoral shaft along z: outer diameter {2 * r_out * 1e3:g} mm (Karakaş & Harma 2008), "
        f"medullary canal {2 * r_can * 1e3:g} mm (doi 10.1155/2015/459612), linea aspera "
        f"{h_la * 1e3:g} mm; sciatic nerve {2 * r_n * 1e3:g} mm at (x, y) = "
        f"{[round(v * 1e3, 2) for v in nc]} mm (area from Chen 2018); thigh "
        f"{2 * r_thigh * 1e3:g} mm, fat {fat * 1e3:g} mm, skin {skin * 1e3:g} mm [U]. "
        "Sources: docs/anatomy.md §6." + desc_t
    )
    return p.finish(desc)
