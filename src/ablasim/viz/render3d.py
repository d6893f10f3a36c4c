"""The 3D picture: anatomy, probes and isotherm surfaces, looking at the nerve margin.

:func:`plot_3d` draws with pyvista (VTK), off-screen through the window that
:mod:`.offscreen` chooses (EGL, else OSMesa), or in a window when asked and a display
exists. pyvista is imported inside the function, so a run that draws nothing never
loads it.

What it shows (world millimetres): bone semi-transparent, the tumour, every nerve
structure in one nerve colour, the probes (``Needle``: active part dark, shaft light, at
their diameter) or a marker on the heated point, the isotherm surfaces of the peak
field (45 °C, and the ablation zone from the safety analysis) — for a cold run the
0 / −20 / −40 °C surfaces of the coldest field — and the margin: a line from the
hottest nerve point to the nearest ablated voxel, with its length.

Surfaces are marching cubes on masks and fields averaged down to at most
``MAX_SIDE`` voxels a side (2× on the 96×128×96 demo), so the picture adds about
a second or two to a run. The camera looks at the midpoint of the probe and the hottest
nerve point, across the line joining them (both in view, side by side), from the side
where the fewest opaque voxels lie in front of them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from ..fileio import atomic_path
from .offscreen import choose_window

MAX_SIDE = 64  # voxels a side of the fields the surfaces are drawn from
HEAT_LEVEL_C = 45.0
COLD_LEVELS_C = (0.0, -20.0, -40.0)
COLOURS = {
    "bone": (0.93, 0.90, 0.80),
    "tumour": (0.25, 0.7, 0.3),
    "nerve": (1.0, 0.84, 0.0),
    "45": (1.0, 0.6, 0.1),
    "zone": (0.85, 0.05, 0.05),
    "cold": ((0.6, 0.85, 1.0), (0.2, 0.5, 0.95), (0.05, 0.15, 0.6)),
    "shaft": (0.75, 0.75, 0.78),
    "active": (0.15, 0.15, 0.18),
    "margin": (0.0, 0.9, 0.9),
    "background": (1.0, 1.0, 1.0),
}


def _coarsen(volume: np.ndarray, f: int) -> np.ndarray:
    """Block means over ``f``³ voxels (the edges trimmed to a multiple of ``f``)."""
    if f == 1:
        return volume.astype(np.float32)
    n = [s // f * f for s in volume.shape]
    v = volume[: n[0], : n[1], : n[2]].astype(np.float32)
    return v.reshape(n[0] // f, f, n[1] // f, f, n[2] // f, f).mean(axis=(1, 3, 5))


def _surface(pv, image, volume: np.ndarray, level: float):
    """The ``level`` surface of ``volume`` on ``image``'s points, or None if empty."""
    image.point_data["v"] = np.ravel(volume, order="F")
    if not (volume.min() <= level <= volume.max()):
        return None
    surf = image.contour([level], scalars="v", method="flying_edges")
    return surf if surf.n_points else None


def _view_direction(opaque: np.ndarray, grid, targets, across) -> np.ndarray:
    """A unit vector from the focus to the camera, across ``across`` (probe→nerve),
    along which the fewest ``opaque`` voxels stand in front of the ``targets`` [mm]."""
    a = np.asarray(across, float)
    if np.linalg.norm(a) < 1e-9:
        a = np.array([0.0, 0.0, 1.0])
    a /= np.linalg.norm(a)
    seed = np.eye(3)[np.argmin(np.abs(a))]
    u = np.cross(a, seed)
    u /= np.linalg.norm(u)
    w = np.cross(a, u)
    spacing = grid.spacing * 1e3
    origin = np.asarray(grid.origin) * 1e3
    shape = np.asarray(opaque.shape)
    steps = np.arange(1, 4 * max(shape)) * spacing * 0.7
    best, best_cost = None, np.inf
    for angle in np.linspace(0, 2 * np.pi, 16, endpoint=False):
        d = np.cos(angle) * u + np.sin(angle) * w
        cost = 0
        for t in targets:
            pts = np.asarray(t)[None, :] + steps[:, None] * d[None, :]
            idx = np.rint((pts - origin) / spacing).astype(int)
            inside = np.all((idx >= 0) & (idx < shape), axis=1)
            idx = idx[inside]
            cost += int(opaque[idx[:, 0], idx[:, 1], idx[:, 2]].sum())
        if cost < best_cost:
            best, best_cost = d, cost
    return best


def plot_3d(
    model,
    field: np.ndarray,
    *,
    zone_mask: np.ndarray | None = None,
    needles: Sequence = (),
    probe_point: Sequence[float] | None = None,
    nerve_points_mm: Mapping[str, Sequence[float]] | None = None,
    cold: bool = False,
    title: str | None = None,
    save: str | os.PathLike | None = None,
    interactive: bool = False,
    window_size: tuple[int, int] = (1000, 750),
) -> np.ndarray | None:
    """Draw the 3D picture of one run and save it as a PNG.

    Parameters
    ----------
    model : Model
        Grid, labels and structures (bone: tissues named ``*bone*``; the tumour:
        ``model.tumour_mask()``; nerves: ``model.nerve_structures()``). Only these are
        read (``grid``, ``labels``, ``structures`` with ``name`` and ``tissue``, the two
        methods), so ``ablasim plot`` passes a stand-in built from the saved files.
    field : ndarray, grid shape
        The peak temperature [°C] (the coldest for ``cold=True``).
    zone_mask : ndarray of bool, optional
        The ablation zone (``SafetyAnalysis.zone_mask``).
    needles : sequence of Needle
        The probes (world metres); none: a marker at ``probe_point`` [m].
    nerve_points_mm : mapping, optional
        The hottest point [mm] of each nerve (``NerveSafety.hottest_point_mm``); the
        first in the mapping is drawn with the margin line and sets the camera.
    cold : bool
        Draw the 0 / −20 / −40 °C surfaces instead of 45 °C and the zone.
    save : path, optional
        Write the PNG there, atomically.
    interactive : bool
        Open a window (only when a display exists; off-screen otherwise).

    Returns
    -------
    ndarray of uint8, shape (height, width, 3), or None when shown interactively.
    """
    window = choose_window(interactive=interactive)
    import pyvista as pv

    grid = model.grid
    f = max(1, int(np.ceil(max(grid.shape) / MAX_SIDE)))
    coarse = _coarsen(np.asarray(field, float), f)
    spacing = grid.spacing * 1e3 * f
    # a block's mean sits at the centre of its f voxels
    origin = np.asarray(grid.origin) * 1e3 + grid.spacing * 1e3 * (f - 1) / 2
    image = pv.ImageData(dimensions=coarse.shape, spacing=(spacing,) * 3, origin=origin)

    labels = model.labels
    bone_ids = [i for i, s in enumerate(model.structures) if "bone" in s.tissue]
    nerve_names = set(model.nerve_structures())
    nerve_ids = [i for i, s in enumerate(model.structures) if s.name in nerve_names]
    tumour = model.tumour_mask()

    plotter = pv.Plotter(off_screen=window is not None, window_size=list(window_size))
    plotter.set_background(COLOURS["background"])
    lit = {"smooth_shading": True, "specular": 0.3}

    def add(mask_or_field, level, colour, opacity, label):
        surf = _surface(pv, image, mask_or_field, level)
        if surf is not None:
            plotter.add_mesh(surf, color=colour, opacity=opacity, label=label, **lit)
        return surf

    if bone_ids:
        add(_coarsen(np.isin(labels, bone_ids), f), 0.5, COLOURS["bone"], 0.18, "bone")
    if tumour.any():
        add(_coarsen(tumour, f), 0.5, COLOURS["tumour"], 0.55, "tumour")
    if nerve_ids:
        add(_coarsen(np.isin(labels, nerve_ids), f), 0.5, COLOURS["nerve"], 1.0, "nerves")
    if cold:
        for level, colour, opacity in zip(
            COLD_LEVELS_C, COLOURS["cold"], (0.3, 0.45, 0.7), strict=True
        ):
            add(coarse, level, colour, opacity, f"{level:g} °C")
    else:
        add(coarse, HEAT_LEVEL_C, COLOURS["45"], 0.25, f"{HEAT_LEVEL_C:g} °C")
        if zone_mask is not None and zone_mask.any():
            add(_coarsen(zone_mask, f), 0.5, COLOURS["zone"], 0.7, "ablation zone")

    # the probes
    tips = []
    for n in needles:
        tip = np.asarray(n.tip) * 1e3
        tips.append(tip)
        if n.direction is None:
            plotter.add_mesh(pv.Sphere(radius=1.5, center=tip), color=COLOURS["active"])
            continue
        d = np.asarray(n.direction, float)
        d /= np.linalg.norm(d)
        radius = max((n.diameter or 1.5e-3) * 1e3 / 2, 0.4)
        active = (n.active_length or 0.0) * 1e3
        shaft = 0.6 * max(grid.extent) * 1e3
        end = tip - d * (active + shaft)
        back = tip - d * active
        plotter.add_mesh(  # the shaft no thicker than a 14 G needle
            pv.Cylinder(
                center=(back + end) / 2, direction=d, radius=min(radius, 1.0), height=shaft
            ),
            color=COLOURS["shaft"],
        )
        if active > 0:
            plotter.add_mesh(
                pv.Cylinder(center=(tip + back) / 2, direction=d, radius=radius, height=active),
                color=COLOURS["active"],
            )
    if not tips and probe_point is not None:
        tips.append(np.asarray(probe_point) * 1e3)
        plotter.add_mesh(pv.Sphere(radius=1.5, center=tips[0]), color=COLOURS["active"])

    # the margin: the nerve point (hottest, or coldest in a cold run) → nearest ablated voxel
    focus_pts = list(tips[:1])
    text = title or ""
    if nerve_points_mm:
        name, point = next(iter(nerve_points_mm.items()))
        point = np.asarray(point, float)
        focus_pts.append(point)
        plotter.add_mesh(pv.Sphere(radius=1.5, center=point), color=COLOURS["margin"])
        target = None
        if zone_mask is not None and zone_mask.any():
            idx = np.argwhere(zone_mask)
            world = np.asarray(grid.origin) * 1e3 + idx * grid.spacing * 1e3
            target = world[np.argmin(((world - point) ** 2).sum(axis=1))]
            what = "ablation zone"
        elif tips:
            target, what = tips[0], "probe tip"
        if target is not None:
            gap = float(np.linalg.norm(target - point))
            plotter.add_mesh(pv.Line(point, target), color=COLOURS["margin"], line_width=6)
            extreme = "coldest" if cold else "hottest"
            text += f"\n{name}: {gap:.1f} mm from its {extreme} point to the {what}"

    bounds = np.array(image.bounds).reshape(3, 2)
    if focus_pts:
        focus = np.mean(focus_pts, axis=0)
        if len(focus_pts) > 1:
            across = focus_pts[-1] - focus_pts[0]
        else:  # no nerve: look across the first needle
            d = needles[0].direction if needles and needles[0].direction else (0, 0, 1.0)
            across = np.asarray(d, float)
        opaque = tumour | (zone_mask if zone_mask is not None else False)
        if nerve_ids:
            opaque = opaque | np.isin(labels, nerve_ids)
        view = _view_direction(opaque, grid, focus_pts, across)
        reach = max(np.linalg.norm(across), 25.0)
        if zone_mask is not None and zone_mask.any():
            ext = np.ptp(np.argwhere(zone_mask), axis=0).max() * grid.spacing * 1e3
            reach = max(reach, 1.2 * ext)
        distance = 3.6 * reach
        up = np.cross(view, across if np.linalg.norm(across) > 0 else [0, 0, 1.0])
        up = up / np.linalg.norm(up) if np.linalg.norm(up) > 1e-9 else np.array([0, 0, 1.0])
        plotter.camera_position = [tuple(focus + view * distance), tuple(focus), tuple(up)]
    else:
        plotter.view_isometric()
        plotter.reset_camera(bounds=bounds.ravel())
    plotter.add_text(text.strip(), font_size=10, color="black", position="upper_left")
    plotter.add_legend(bcolor=(0.25, 0.25, 0.25), border=False, size=(0.2, 0.22), loc="lower right")

    if window is None:
        plotter.show(title=title or "ablasim")
        return None
    img = plotter.screenshot(return_img=True)
    plotter.close()
    if save is not None:
        with atomic_path(save) as tmp:
            _write_png(tmp, img)
    return img


def _write_png(path, img: np.ndarray) -> None:
    """Write an RGB image as a PNG (matplotlib's writer; Pillow comes with it)."""
    import matplotlib.image

    matplotlib.image.imsave(path, img)
