"""Where injected cement goes: a connected fill of the lytic tumour, then cancellous bone,
and a leak through the cortex into a named space.

Assumptions (a geometric stand-in for the flow of a viscous cement, not a flow model):

* The cement spreads from the needle's tip ``center`` as one connected region, grown
  voxel by voxel (6-connected) in order of **(tissue class, distance from the centre)**:
  every reachable tumour voxel first (a lytic lesion offers the least resistance), then
  cancellous bone and marrow, nearest first. It never enters cortical bone, a disc, the
  canal or any soft tissue: the cortex contains it. So the fill is a ball clipped by the
  bone's walls and shaped by the lesion, as cement is seen to spread on CT; the
  interdigitation with trabeculae (a mixed cement-bone voxel) is not resolved.
* A volume is placed in whole voxels (the nearest count); the placed volume is reported.
* A **leak** leaves where the named space is nearest to the cement: a straight channel of
  voxels from the cement voxel nearest the space, through the cortex (the "breach"), to
  the space's nearest voxel, then fills that space outward from the entry, nearest first.
  The channel and the pool in the space are the leak's volume. Cement leaks into the
  epidural space (``canal``), a disc or a vein; it never enters the dural sac, the cord,
  CSF or a nerve (the dura holds).
"""

from __future__ import annotations

import heapq

import numba as nb
import numpy as np
from scipy import ndimage

__all__ = [
    "BONE_TISSUES",
    "LEAK_SPACES",
    "NEVER_TISSUES",
    "fill_classes",
    "grow",
    "leak",
    "leak_spaces",
]

#: Tissues cement fills after the tumour (the inside of a vertebral body).
BONE_TISSUES = ("cancellous_bone", "red_marrow", "yellow_marrow")
#: Tissues cement never enters, not even through a leak.
NEVER_TISSUES = ("spinal_cord", "nerve", "csf")
#: The spaces a leak can go into.
LEAK_SPACES = ("canal", "vein", "disc")


def fill_classes(model) -> np.ndarray:
    """Per voxel: 0 tumour (not blastic: a sclerotic lesion takes no cement), 1 cancellous
    bone or marrow, -1 never filled (int8, grid shape)."""
    per_label = np.full(len(model.structures), -1, dtype=np.int8)
    for i, s in enumerate(model.structures):
        if s.tissue.startswith("tumour") and s.tissue != "tumour_blastic":
            per_label[i] = 0
        elif s.tissue in BONE_TISSUES:
            per_label[i] = 1
    return per_label[model.labels]


def leak_spaces(model) -> dict[str, np.ndarray]:
    """The leak spaces the model has: name -> boolean mask (only non-empty ones).

    ``canal``: structures whose name holds "epidural" or "canal" (the phantom's
    ``epidural_fat``); ``disc``: structures of tissue ``disc``; ``vein``: structures
    whose name holds "vein", or of tissue ``blood``."""
    ids: dict[str, list[int]] = {k: [] for k in LEAK_SPACES}
    for i, s in enumerate(model.structures):
        name = s.name.lower()
        if s.tissue in NEVER_TISSUES:
            continue
        if "epidural" in name or "canal" in name:
            ids["canal"].append(i)
        if s.tissue == "disc":
            ids["disc"].append(i)
        if "vein" in name or s.tissue == "blood":
            ids["vein"].append(i)
    out = {}
    for key, lab in ids.items():
        if lab:
            mask = np.isin(model.labels, lab)
            if mask.any():
                out[key] = mask
    return out


@nb.njit(cache=True)
def _grow(classes, start, centre, n, exclude):  # pragma: no cover - compiled
    """Flat indices of up to ``n`` voxels grown from ``start`` (i, j, k) through voxels of
    class >= 0 not in ``exclude``, by (class, squared distance to ``centre``)."""
    nx, ny, nz = classes.shape
    seen = np.zeros(classes.size, dtype=np.bool_)
    out = np.empty(n, dtype=np.int64)
    i0, j0, k0 = start[0], start[1], start[2]
    f0 = (i0 * ny + j0) * nz + k0
    heap = [(0.0, f0)]
    seen[f0] = True
    count = 0
    while heap and count < n:
        _, f = heapq.heappop(heap)
        out[count] = f
        count += 1
        i = f // (ny * nz)
        j = (f // nz) % ny
        k = f % nz
        for d in range(6):
            a, b, c = i, j, k
            if d == 0:
                a -= 1
            elif d == 1:
                a += 1
            elif d == 2:
                b -= 1
            elif d == 3:
                b += 1
            elif d == 4:
                c -= 1
            else:
                c += 1
            if a < 0 or b < 0 or c < 0 or a >= nx or b >= ny or c >= nz:
                continue
            g = (a * ny + b) * nz + c
            if seen[g] or exclude[g]:
                continue
            cls = classes[a, b, c]
            if cls < 0:
                continue
            seen[g] = True
            d2 = (a - centre[0]) ** 2 + (b - centre[1]) ** 2 + (c - centre[2]) ** 2
            heapq.heappush(heap, (cls * 1e7 + d2, g))
    return out[:count]


def grow(classes: np.ndarray, start, centre, n: int, exclude=None) -> np.ndarray:
    """Flat indices (fill order) of up to ``n`` voxels grown from voxel ``start`` through
    voxels of class >= 0, by (class, distance from ``centre`` [voxel coordinates]);
    fewer when the connected region holds fewer (then it is all of it)."""
    ex = np.zeros(classes.size, dtype=np.bool_) if exclude is None else exclude.reshape(-1)
    return _grow(
        np.ascontiguousarray(classes, dtype=np.int8),
        np.asarray(start, dtype=np.int64),
        np.asarray(centre, dtype=np.float64),
        int(n),
        np.ascontiguousarray(ex, dtype=np.bool_),
    )


def leak(model, cement: np.ndarray, space: np.ndarray, n: int) -> tuple[np.ndarray, int, int]:
    """A leak of ``n`` voxels from the cement (flat indices) into ``space`` (mask).

    Returns ``(flat indices, channel voxels, voxels the space can take)``: the channel
    through the cortex (straight, from the cement voxel nearest the space to the space's
    nearest voxel), then the pool in the space grown from the entry, nearest first. The
    indices are fewer than ``n`` when the space's connected part cannot take the rest;
    empty when the channel would cross a neural structure (the caller says so).
    """
    grid_shape = model.labels.shape
    dist, nearest = ndimage.distance_transform_edt(~space, return_indices=True)
    cidx = np.unravel_index(cement, grid_shape)
    k = int(np.argmin(dist[cidx]))
    src = np.array([c[k] for c in cidx], dtype=float)
    dst = np.array([nearest[a][tuple(int(c[k]) for c in cidx)] for a in range(3)], dtype=float)
    steps = max(1, int(np.ceil(np.abs(dst - src).max() * 4)))
    line = np.rint(src + np.linspace(0.0, 1.0, steps + 1)[:, None] * (dst - src)).astype(np.int64)
    flat = np.ravel_multi_index(tuple(line.T), grid_shape)
    _, first = np.unique(flat, return_index=True)
    flat = flat[np.sort(first)]
    in_cement = np.isin(flat, cement)
    in_space = space.reshape(-1)[flat]
    channel = flat[~in_cement & ~in_space]
    never = np.isin(
        model.labels.reshape(-1)[channel],
        [i for i, s in enumerate(model.structures) if s.tissue in NEVER_TISSUES],
    )
    if never.any():
        return np.empty(0, dtype=np.int64), channel.size, 0
    entry = tuple(int(v) for v in dst)
    classes = np.where(space, 0, -1).astype(np.int8)
    rest = max(n - channel.size, 0)
    pool = grow(classes, entry, dst, max(rest, 1))
    capacity = grow(classes, entry, dst, int(space.sum())).size if pool.size < rest else rest
    return np.concatenate([channel, pool[:rest]]), int(channel.size), int(capacity)
