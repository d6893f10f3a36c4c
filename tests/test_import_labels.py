"""Importing segmentations (NIfTI, NRRD, 3D Slicer .seg.nrrd) as phantoms.

The check throughout: a world point [mm, RAS] has the same label in the file as in the
imported phantom. The file's label at a point is found through the affine used to write it
(written here independently of the reader), the phantom's through ``grid.world_to_index``.
"""

from __future__ import annotations

import gzip

import nibabel as nib
import nrrd
import numpy as np
import pytest
from scipy import ndimage

from ablasim.anatomy import Phantom, load_label_map, read_label_image
from ablasim.errors import ScenarioError
from ablasim.grid import Grid

MAPPING = {0: "muscle", 1: "cortical_bone", 5: "nerve"}
TISSUE = {0: "muscle", 1: "cortical_bone", 5: "nerve"}


def boxes() -> np.ndarray:
    """12 x 10 x 8 labels: background 0, a bone box (1), a nerve box (5) touching x = max."""
    a = np.zeros((12, 10, 8), dtype=np.uint8)
    a[2:6, 3:7, 1:5] = 1
    a[8:12, 1:4, 4:7] = 5
    return a


def affine_mm(diag, translation, rotation=None) -> np.ndarray:
    """4x4 voxel -> RAS mm affine: ``rotation @ diag(diag)`` plus ``translation``."""
    aff = np.eye(4)
    rot = np.eye(3) if rotation is None else np.asarray(rotation)
    aff[:3, :3] = rot @ np.diag(diag)
    aff[:3, 3] = translation
    return aff


def rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def save_nifti(path, labels, aff):
    img = nib.Nifti1Image(labels, aff)
    img.set_sform(aff, code=1)
    img.set_qform(aff, code=1)
    nib.save(img, str(path))
    return path


def voxel_centres_mm(shape, aff) -> tuple[np.ndarray, np.ndarray]:
    """All voxel indices (N, 3) and their world centres (N, 3) [mm]."""
    idx = np.indices(shape).reshape(3, -1).T
    return idx, idx @ aff[:3, :3].T + aff[:3, 3]


def phantom_tissue_at(phantom: Phantom, points_mm: np.ndarray) -> list[str]:
    out = []
    for p in points_mm:
        i, j, k = phantom.grid.world_to_index(p * 1e-3)
        out.append(phantom.structures[phantom.labels[i, j, k]].tissue)
    return out


def interior(labels: np.ndarray) -> np.ndarray:
    """Voxels whose whole 3x3x3 neighbourhood (inside the image) has their label."""
    lo = ndimage.minimum_filter(labels, size=3, mode="nearest")
    hi = ndimage.maximum_filter(labels, size=3, mode="nearest")
    return (lo == labels) & (hi == labels)


def assert_same_labels(phantom, labels, aff, mask=None):
    idx, world = voxel_centres_mm(labels.shape, aff)
    if mask is not None:
        keep = mask[tuple(idx.T)]
        idx, world = idx[keep], world[keep]
    want = [TISSUE[int(v)] for v in labels[tuple(idx.T)]]
    assert phantom_tissue_at(phantom, world) == want


# ---------------------------------------------------------------------------------------
# NIfTI, no resampling
# ---------------------------------------------------------------------------------------
def test_nifti_translated_isotropic_uses_its_own_grid(tmp_path):
    labels = boxes()
    aff = affine_mm([1.5, 1.5, 1.5], [-40.25, 12.0, 310.5])
    path = save_nifti(tmp_path / "seg.nii.gz", labels, aff)

    phantom, notes = load_label_map(path, MAPPING)

    assert notes == []
    assert phantom.grid.shape == labels.shape
    assert phantom.grid.spacing == pytest.approx(1.5e-3, rel=1e-12)
    np.testing.assert_allclose(phantom.grid.origin, np.array([-40.25, 12.0, 310.5]) * 1e-3)
    assert phantom.structure_names() == ("muscle", "cortical_bone", "nerve")  # as written
    np.testing.assert_array_equal(phantom.labels, np.searchsorted([0, 1, 5], labels))
    assert_same_labels(phantom, labels, aff)
    # a few named world points (mm): bone box centre, nerve box, background corner
    pts = np.array(
        [
            [-40.25 + 1.5 * 3.5, 12.0 + 1.5 * 4.5, 310.5 + 1.5 * 2.5],
            [-40.25 + 1.5 * 10, 12.0 + 1.5 * 2, 310.5 + 1.5 * 5],
            [-40.25, 12.0, 310.5],
        ]
    )
    assert phantom_tissue_at(phantom, pts) == ["cortical_bone", "nerve", "muscle"]


@pytest.mark.parametrize(
    "rot",
    [
        np.diag([-1.0, 1.0, -1.0]),  # flips only
        np.diag([-1.0, -1.0, 1.0]),  # LPS-like storage
        np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]),  # permuted, flipped
    ],
    ids=["flip_xz", "flip_xy", "permuted"],
)
def test_nifti_flipped_axes_reoriented_without_resampling(tmp_path, rot):
    labels = boxes()
    aff = affine_mm([2.0, 2.0, 2.0], [10.0, -20.0, 30.0], rot)
    path = save_nifti(tmp_path / "flipped.nii.gz", labels, aff)

    phantom, notes = load_label_map(path, MAPPING)

    # no value changed: the same voxel counts, every voxel centre keeps its label
    assert phantom.grid.spacing == pytest.approx(2e-3, rel=1e-12)
    assert sorted(phantom.grid.shape) == sorted(labels.shape)
    assert np.bincount(phantom.labels.ravel()).tolist() == [
        int(np.count_nonzero(labels == v)) for v in (0, 1, 5)
    ]
    assert_same_labels(phantom, labels, aff)
    assert not any("resampled" in n for n in notes)
    assert ("reordered" in " ".join(notes)) == (not np.allclose(np.abs(rot), np.eye(3)))


def test_float_data_with_integer_values_is_accepted(tmp_path):
    labels = boxes().astype(np.float32)
    aff = affine_mm([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    path = save_nifti(tmp_path / "float.nii", labels, aff)
    got, got_aff, names = read_label_image(path)
    assert np.issubdtype(got.dtype, np.integer)
    np.testing.assert_array_equal(got, boxes())
    np.testing.assert_allclose(got_aff, aff * np.array([[1e-3], [1e-3], [1e-3], [1.0]]))
    assert names == {}


# ---------------------------------------------------------------------------------------
# Resampling: anisotropic, oblique, onto a given grid
# ---------------------------------------------------------------------------------------
def test_nifti_anisotropic_resampled_to_smallest_voxel(tmp_path):
    labels = boxes()
    aff = affine_mm([0.8, 0.8, 2.5], [5.0, -3.0, 100.0])
    path = save_nifti(tmp_path / "aniso.nii.gz", labels, aff)

    phantom, notes = load_label_map(path, MAPPING)

    assert phantom.grid.spacing == pytest.approx(0.8e-3)
    assert phantom.grid.shape == (12, 10, 25)  # 8 slices x 2.5 mm = 20 mm = 25 x 0.8 mm
    assert notes == [
        "label map aniso.nii.gz resampled from 0.8 x 0.8 x 2.5 mm (anisotropic) "
        "to 0.8 mm isotropic by nearest label"
    ]
    # every original voxel centre keeps its label (a 2.5 mm slab holds whole 0.8 mm voxels)
    assert_same_labels(phantom, labels, aff)
    # points inside a slice but off its centre too
    pts = np.array(
        [
            [5.0 + 0.8 * 3, -3.0 + 0.8 * 4, 100.0 + 2.5 * 1 + 1.1],
            [5.0 + 0.8 * 9, -3.0 + 0.8 * 2, 100.0 + 2.5 * 6 - 1.1],
        ]
    )
    assert phantom_tissue_at(phantom, pts) == ["cortical_bone", "nerve"]


def test_nifti_oblique_resampled_interior_labels_preserved(tmp_path):
    labels = np.zeros((16, 14, 12), dtype=np.uint8)
    labels[3:9, 3:10, 2:8] = 1
    labels[10:15, 2:7, 5:11] = 5
    rot = rotation(2, 12.0) @ rotation(0, -7.0)
    aff = affine_mm([1.0, 1.0, 1.0], [-8.0, 4.0, 50.0], rot)
    path = save_nifti(tmp_path / "oblique.nii.gz", labels, aff)

    phantom, notes = load_label_map(path, MAPPING)

    assert phantom.grid.spacing == pytest.approx(1e-3)
    assert any("resampled from 1 x 1 x 1 mm (oblique)" in n for n in notes), notes
    assert any("lie outside the image" in n for n in notes), notes  # bounding-box corners
    assert_same_labels(phantom, labels, aff, mask=interior(labels))
    # volumes agree to within the surface layer
    for v, name in ((1, "cortical_bone"), (5, "nerve")):
        assert phantom.volume_ml(name) == pytest.approx(
            np.count_nonzero(labels == v) * 1e-3, rel=0.15
        )


def test_explicit_spacing_resamples_isotropic_image(tmp_path):
    labels = boxes()
    aff = affine_mm([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    path = save_nifti(tmp_path / "iso.nii.gz", labels, aff)
    phantom, notes = load_label_map(path, MAPPING, spacing=0.5e-3)
    assert phantom.grid.shape == (24, 20, 16)
    assert any("to 0.5 mm isotropic" in n for n in notes)
    assert_same_labels(phantom, labels, aff)


def test_given_grid_outside_rule_and_fill(tmp_path):
    labels = boxes()
    aff = affine_mm([1.0, 1.0, 1.0], [0.0, 0.0, 0.0])
    path = save_nifti(tmp_path / "seg.nii.gz", labels, aff)
    # 1 mm grid shifted by 4 voxels along +x: x = 4..19 mm, the image ends at x = 11 mm
    grid = Grid((16, 10, 8), 1e-3, (4e-3, 0.0, 0.0))
    beyond = np.array([[16.0, 2.0, 5.0]])  # past the nerve box, which touches x = max

    phantom, notes = load_label_map(path, MAPPING, grid=grid)
    assert phantom.grid == grid
    assert any(
        "resampled from 1 x 1 x 1 mm to the simulation grid (1 mm isotropic, shape (16, 10, 8))"
        in n
        for n in notes
    ), notes
    assert any("640 of 1,280 grid voxels lie outside" in n for n in notes), notes
    assert phantom_tissue_at(phantom, beyond) == ["nerve"]  # edge replication
    assert_same_labels(phantom, labels, aff, mask=np.indices(labels.shape)[0] >= 4)

    filled, notes = load_label_map(path, MAPPING, grid=grid, outside=0)
    assert phantom_tissue_at(filled, beyond) == ["muscle"]
    assert any("take label 0 (muscle)" in n for n in notes), notes


def test_same_grid_is_not_noted(tmp_path):
    labels = boxes()
    aff = affine_mm([1.0, 1.0, 1.0], [3.0, 2.0, 1.0])
    path = save_nifti(tmp_path / "seg.nii.gz", labels, aff)
    phantom, notes = load_label_map(
        path, MAPPING, grid=Grid(labels.shape, 1e-3, (3e-3, 2e-3, 1e-3))
    )
    assert notes == []
    np.testing.assert_array_equal(phantom.labels, np.searchsorted([0, 1, 5], labels))


def test_structure_lost_on_coarse_grid_is_dropped_and_noted(tmp_path):
    labels = np.zeros((12, 12, 12), dtype=np.uint8)
    labels[4:9, 4:9, 4:9] = 1
    labels[2, 2, 2] = 5  # one voxel, missed by a 3 mm grid (centres at indices 1, 4, 7, 10)
    path = save_nifti(tmp_path / "thin.nii.gz", labels, affine_mm([1, 1, 1], [0, 0, 0]))
    phantom, notes = load_label_map(path, MAPPING, spacing=3e-3)
    assert phantom.structure_names() == ("muscle", "cortical_bone")
    assert any("nerve (label 5) have no voxel on the grid" in n for n in notes), notes


# ---------------------------------------------------------------------------------------
# NRRD and 3D Slicer .seg.nrrd
# ---------------------------------------------------------------------------------------
LPS = np.diag([-1.0, -1.0, 1.0])


@pytest.mark.parametrize(
    ("space", "to_space"),
    [
        ("left-posterior-superior", LPS),
        ("RAS", np.eye(3)),
        ("left-anterior-superior", np.diag([-1.0, 1.0, 1.0])),
    ],
)
def test_nrrd_space_converted_to_ras(tmp_path, space, to_space):
    labels = boxes()
    aff = affine_mm([1.25, 1.25, 1.25], [-30.0, 25.0, -110.0], rotation(2, 90.0))  # RAS mm
    header = {
        "space": space,
        "space directions": (to_space @ aff[:3, :3]).T,  # one row per array axis
        "space origin": to_space @ aff[:3, 3],
        "kinds": ["domain"] * 3,
    }
    path = tmp_path / "seg.nrrd"
    nrrd.write(str(path), labels, header)

    got, got_aff, _ = read_label_image(path)
    np.testing.assert_array_equal(got, labels)
    np.testing.assert_allclose(got_aff[:3], aff[:3] * 1e-3, atol=1e-15)

    phantom, notes = load_label_map(path, MAPPING)
    assert not any("resampled" in n for n in notes)
    assert_same_labels(phantom, labels, aff)


def test_seg_nrrd_segment_names_and_mapping_forms(tmp_path):
    labels = boxes()
    aff = affine_mm([0.5, 0.5, 0.5], [12.0, -7.5, 40.0])
    header = {
        "space": "left-posterior-superior",
        "space directions": (LPS @ aff[:3, :3]).T,
        "space origin": LPS @ aff[:3, 3],
        "Segment0_ID": "Segment_1",
        "Segment0_Name": "L3 vertebral body",
        "Segment0_LabelValue": "1",
        "Segment0_Layer": "0",
        "Segment1_ID": "Segment_2",
        "Segment1_Name": "L3 nerve root left",
        "Segment1_LabelValue": "5",
        "Segment1_Layer": "0",
    }
    path = tmp_path / "patient.seg.nrrd"
    nrrd.write(str(path), labels, header)

    _, _, names = read_label_image(path)
    assert names == {1: "L3 vertebral body", 5: "L3 nerve root left"}

    mapping = {"0": "muscle", "1": "cortical_bone", "5": "nerve", "7": "fat"}
    phantom, notes = load_label_map(path, mapping)
    assert phantom.structure_names() == ("muscle", "L3 vertebral body", "L3 nerve root left")
    assert phantom.tissue_names() == ("muscle", "cortical_bone", "nerve")
    assert any("mapped labels [7] do not occur" in n for n in notes), notes
    assert_same_labels(phantom, labels, aff)

    named, _ = load_label_map(
        path, {0: "muscle", 1: "cortical_bone", 5: {"tissue": "nerve", "name": "root_L3_left"}}
    )
    assert named.structure_names()[-1] == "root_L3_left"
    assert named.mask("root_L3_left").sum() == np.count_nonzero(labels == 5)


def test_nhdr_detached_header(tmp_path):
    labels = boxes()
    header = {"space": "RAS", "space directions": np.eye(3) * 2.0, "space origin": [1, 2, 3]}
    path = tmp_path / "seg.nhdr"
    nrrd.write(str(path), labels, header, detached_header=True)
    phantom, notes = load_label_map(path, MAPPING)
    assert notes == []
    np.testing.assert_allclose(phantom.grid.origin, [1e-3, 2e-3, 3e-3])


# ---------------------------------------------------------------------------------------
# Errors: each names the file or the key and says how to fix it
# ---------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(ScenarioError, match=r"nope\.nii\.gz' does not exist; check the path"):
        load_label_map(tmp_path / "nope.nii.gz", MAPPING)


@pytest.mark.parametrize(
    ("name", "kind"),
    [("x.nii.gz", "NIfTI"), ("x.nii", "NIfTI"), ("x.nrrd", "NRRD"), ("x.seg.nrrd", "NRRD")],
)
def test_corrupt_file(tmp_path, rng, name, kind):
    path = tmp_path / name
    path.write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    with pytest.raises(ScenarioError, match=rf"x\.{name[2:]}' could not be read as {kind}"):
        read_label_image(path)


def test_truncated_gzip_nifti(tmp_path):
    path = save_nifti(tmp_path / "t.nii.gz", boxes(), affine_mm([1, 1, 1], [0, 0, 0]))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[: len(raw) // 2 + 200])[:-30])
    with pytest.raises(ScenarioError, match=r"could not be read as NIfTI.*save it again"):
        read_label_image(path)


def test_unsupported_extension(tmp_path):
    path = tmp_path / "seg.mha"
    path.write_bytes(b"ObjectType = Image\n")
    with pytest.raises(ScenarioError, match=r"unsupported file type; use one of \.nii\.gz"):
        read_label_image(path)


def test_2d_and_4d_nifti_refused(tmp_path):
    aff = affine_mm([1, 1, 1], [0, 0, 0])
    flat = save_nifti(tmp_path / "flat.nii.gz", np.zeros((12, 10), np.uint8), aff)
    with pytest.raises(ScenarioError, match=r"shape \(12, 10\) \(2D\); a label map must be a 3D"):
        read_label_image(flat)
    stack = save_nifti(tmp_path / "stack.nii.gz", np.zeros((12, 10, 8, 3), np.uint8), aff)
    with pytest.raises(ScenarioError, match=r"\(4D\); a label map must be a 3D volume"):
        read_label_image(stack)
    single = save_nifti(tmp_path / "single.nii.gz", boxes()[..., None], aff)
    assert read_label_image(single).labels.shape == (12, 10, 8)  # (x, y, z, 1) is 3D


def test_4d_seg_nrrd_refused_with_export_fix(tmp_path):
    data = np.zeros((2, 12, 10, 8), np.uint8)
    header = {
        "space": "left-posterior-superior",
        "space directions": np.vstack([np.full(3, np.nan), np.eye(3)]),
        "kinds": ["list", "domain", "domain", "domain"],
    }
    path = tmp_path / "layers.seg.nrrd"
    nrrd.write(str(path), data, header)
    with pytest.raises(ScenarioError, match=r"2 overlapping layers \(4D\).*Export visible"):
        read_label_image(path)


def test_non_integer_float_labels(tmp_path):
    data = boxes().astype(np.float32) * 0.37
    path = save_nifti(tmp_path / "prob.nii.gz", data, affine_mm([1, 1, 1], [0, 0, 0]))
    with pytest.raises(ScenarioError, match=r"non-integer values \(e\.g\. 0\.37\).*probability"):
        load_label_map(path, MAPPING)


def test_unmapped_labels(tmp_path):
    path = save_nifti(tmp_path / "seg.nii.gz", boxes(), affine_mm([1, 1, 1], [0, 0, 0]))
    with pytest.raises(
        ScenarioError, match=r"label values not in the mapping: 1, 5; add them to \[anatomy\.label"
    ):
        load_label_map(path, {0: "muscle"})


def test_unknown_tissue_suggests(tmp_path):
    path = save_nifti(tmp_path / "seg.nii.gz", boxes(), affine_mm([1, 1, 1], [0, 0, 0]))
    with pytest.raises(ScenarioError, match=r"unknown tissue 'nerv' \(did you mean 'nerve'"):
        load_label_map(path, {0: "muscle", 1: "cortical_bone", 5: "nerv"})


@pytest.mark.parametrize(
    ("mapping", "kw", "match"),
    [
        ({"zero": "muscle"}, {}, r"key 'zero' must be an integer label value"),
        ({0: "muscle", "0": "fat"}, {}, r"maps label 0 twice"),
        ({0: {"tissue": "nerve", "side": "left"}}, {}, r"unknown keys \['side'\]"),
        ({0: 3}, {}, r"must name a tissue"),
        ({0: "muscle", 1: "nerve", 5: "nerve"}, {"spacing": 0.5}, r"spacing must be a positive"),
        ({0: "muscle", 1: "nerve", 5: "nerve"}, {"outside": 9}, r"outside label 9 is not"),
        (
            {0: "muscle", 1: {"tissue": "nerve", "name": "n"}, 5: {"tissue": "nerve", "name": "n"}},
            {},
            r"same structure name \{'n': \[1, 5\]\}",
        ),
    ],
)
def test_bad_mapping_and_options(tmp_path, mapping, kw, match):
    path = save_nifti(tmp_path / "seg.nii.gz", boxes(), affine_mm([1, 1, 1], [0, 0, 0]))
    with pytest.raises(ScenarioError, match=match):
        load_label_map(path, mapping, **kw)
