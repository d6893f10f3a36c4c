"""Procedural phantoms, label-map files and label pictures (fast: well under 20 s).

Reference dimensions come from docs/anatomy.md; each check names its source.
"""

from __future__ import annotations

import json
import time

import nibabel as nib
import numpy as np
import pytest
from matplotlib.figure import Figure

from ablasim.anatomy import (
    PHANTOMS,
    Phantom,
    Structure,
    load_phantom,
    make_phantom,
    save_label_map,
)
from ablasim.errors import ScenarioError
from ablasim.grid import Grid
from ablasim.viz.labels import plot_labels, write_phantom_outputs

MM = 1e-3


def _grid(extent_mm: float, spacing_mm: float, center_y_mm: float = 0.0) -> Grid:
    return Grid.from_extent(extent_mm * MM, spacing_mm * MM, center=(0.0, center_y_mm * MM, 0.0))


def _centroid(ph: Phantom, name: str) -> np.ndarray:
    idx = np.argwhere(ph.mask(name))
    return ph.grid.index_to_world(idx.mean(axis=0))


def _extent_along(mask: np.ndarray, axis: int, spacing: float) -> float:
    """Number of voxels holding the mask along ``axis`` (max over lines) x spacing."""
    return float(mask.sum(axis=axis).max()) * spacing


@pytest.fixture(scope="module")
def l1_48() -> Phantom:
    """Default L1 vertebra at 1 mm, odd shape: symmetric about x = 0.

    Centred 10 mm behind the body's centre so that the canal (centre y ≈ -25 mm) lies
    inside; a cube centred on the body would cut the canal in half.
    """
    return make_phantom("vertebra", _grid(55, 1.0, -10.0))


@pytest.fixture(scope="module")
def t12_half() -> Phantom:
    return make_phantom("vertebra", _grid(49, 0.5, -10.0), level="T12")


# -- every phantom builds -------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("uniform", {}),
        ("slab", {}),
        ("sphere", {"radius": 0.005}),
        ("vertebra", {}),
        ("long_bone", {}),
    ],
)
def test_each_phantom_builds_at_1mm(name, params):
    grid = _grid(32, 1.0)
    ph = make_phantom(name, grid, **params)
    assert ph.labels.shape == grid.shape
    assert ph.labels.dtype == np.uint8
    assert int(ph.labels.max()) < len(ph.structures)
    assert len(ph.tissue_names()) == len(ph.structures)
    assert ph.description
    # every listed structure holds voxels (empty ones are dropped)
    assert all(ph.volume_ml(s.name) > 0 for s in ph.structures)
    assert set(PHANTOMS) == {"vertebra", "long_bone", "uniform", "slab", "sphere"}


def test_vertebra_has_expected_structures(l1_48):
    expected = {
        "vertebral_body": "cancellous_bone",
        "cortical_shell": "cortical_bone",
        "endplate": "cortical_bone",
        "pedicle_left": "cancellous_bone",
        "pedicle_right": "cancellous_bone",
        "posterior_arch": "cancellous_bone",
        "posterior_cortex": "cortical_bone",
        "disc_above": "disc",
        "disc_below": "disc",
        "epidural_fat": "fat",
        "ligamentum_flavum": "ligament",
        "csf": "csf",
        "spinal_cord": "spinal_cord",
        "cauda_equina": "nerve",
        "nerve_root_left": "nerve",
        "nerve_root_right": "nerve",
        "soft_tissue": "muscle",
    }
    tissues = dict(zip(l1_48.structure_names(), l1_48.tissue_names(), strict=True))
    for name, tissue in expected.items():
        assert tissues.get(name) == tissue, name
        assert l1_48.volume_ml(name) > 0, name


def test_body_at_origin_canal_and_cord_at_negative_y(l1_48):
    g = l1_48.grid
    assert l1_48.labels[g.world_to_index((0, 0, 0))] == l1_48.index("vertebral_body")
    body = _centroid(l1_48, "vertebral_body")
    assert np.all(np.abs(body) < 1.5 * MM)
    for name in ("spinal_cord", "csf", "cauda_equina"):
        c = _centroid(l1_48, name)
        assert c[1] < -15 * MM, name  # behind the body (posterior wall at y = -16.2 mm)
        assert abs(c[0]) < 0.5 * MM, name
    # cauda equina lies dorsal to the conus (Tanaka 2023: roots lie dorsally in the CSF)
    assert _centroid(l1_48, "cauda_equina")[1] < _centroid(l1_48, "spinal_cord")[1]


def test_t12_cord_dimensions_and_csf_layers(t12_half):
    """Cord at T12 ≈ 7 x 9 mm [U]; T8 6.3 ± 2.0 x 8.3 ± 2.1 (Frostell 2016) [V]."""
    ph, h = t12_half, t12_half.grid.spacing
    cord = ph.mask("spinal_cord")
    assert "cauda_equina" not in ph.structure_names()  # the conus lies at L1, below
    ap = _extent_along(cord, 1, h)
    width = _extent_along(cord, 0, h)
    assert ap == pytest.approx(7.0 * MM, abs=h)
    assert width == pytest.approx(9.0 * MM, abs=h)
    assert 4.3 * MM <= ap <= 8.3 * MM
    assert 6.2 * MM <= width <= 11.4 * MM
    # midline profile along y at z = 0: dorsal CSF 1.5-4.5 (Holsheimer), ventral 1-2 [U]
    i0, _, k0 = ph.grid.world_to_index((0, 0, 0))
    line = ph.labels[i0, :, k0]
    csf_idx = np.flatnonzero(line == ph.index("csf"))
    cord_idx = np.flatnonzero(line == ph.index("spinal_cord"))
    dorsal = np.count_nonzero(csf_idx < cord_idx.min()) * h
    ventral = np.count_nonzero(csf_idx > cord_idx.max()) * h
    assert 1.5 * MM - h <= dorsal <= 4.5 * MM + h
    assert 1.0 * MM - h <= ventral <= 2.0 * MM + h
    # posterior wall -> cord 2-5 mm (docs/anatomy.md §2: T8 2-4 [C], T12 3-5 [U])
    body_idx = np.flatnonzero(
        np.isin(line, [ph.index("vertebral_body"), ph.index("cortical_shell")])
    )
    wall_to_cord = (body_idx.min() - cord_idx.max() - 1) * h
    assert 2.0 * MM <= wall_to_cord <= 5.0 * MM


def test_l3_has_cauda_equina_not_cord():
    """Below the conus (≈ L1, Saifuddin 1998) the canal holds the cauda equina."""
    ph = make_phantom("vertebra", _grid(48, 1.0, -10.0), level="L3")
    names = ph.structure_names()
    assert "spinal_cord" not in names
    assert ph.volume_ml("cauda_equina") > 0
    assert ph.tissue_names()[ph.index("cauda_equina")] == "nerve"


def test_l1_conus_ends_in_lower_third(l1_48):
    g = l1_48.grid
    cord_z = np.flatnonzero(l1_48.mask("spinal_cord").any(axis=(0, 1)))
    tip = g.axes()[2][cord_z.min()]
    # lower third of the body: z in [-H/2, -H/6] with H = 23.1 mm
    assert -11.6 * MM <= tip <= -3.8 * MM


def test_roots_are_left_right_symmetric(l1_48):
    left, right = l1_48.mask("nerve_root_left"), l1_48.mask("nerve_root_right")
    assert left.any()
    assert np.array_equal(left, right[::-1, :, :])
    assert np.array_equal(l1_48.mask("pedicle_left"), l1_48.mask("pedicle_right")[::-1])
    # left root at x < 0 (RAS: +x is the patient's right)
    assert _centroid(l1_48, "nerve_root_left")[0] < 0 < _centroid(l1_48, "nerve_root_right")[0]


def test_drg_lies_below_the_pedicle(l1_48):
    """DRG centre directly below the pedicle in the medial foramen (Silverstein 2015)."""
    root = l1_48.mask("nerve_root_right")
    ped = l1_48.mask("pedicle_right") | (
        l1_48.mask("posterior_cortex") & (l1_48.grid.mesh()[0] > 0)
    )
    x, _, z = l1_48.grid.axes()
    ped_x = x[np.flatnonzero(l1_48.mask("pedicle_right").any(axis=(1, 2)))]
    # voxels of the root under the pedicle's x-range: below the pedicle's lowest voxel
    cols = (x >= ped_x.min()) & (x <= ped_x.max())
    root_under = root[cols]
    assert root_under.any()
    root_top = z[np.flatnonzero(root_under.any(axis=(0, 1))).max()]
    assert not (root & ped).any()
    assert root_top < 0.0  # pedicle centre at z ≈ +2 mm, DRG below it


def test_tumour_kind_and_clipping(l1_48):
    g = l1_48.grid
    lytic = make_phantom(
        "vertebra", g, tumour={"center": (0.0, 0.004, 0.0), "diameter": 0.018, "kind": "lytic"}
    )
    assert lytic.tissue_names()[lytic.index("tumour")] == "tumour_lytic"
    assert lytic.volume_ml("tumour") == pytest.approx(4 / 3 * np.pi * 0.9**3, rel=0.1)
    # A blastic tumour centred in the canal: replaces fat and bone, never cord/CSF/roots.
    canal = {"center": (0.0, -0.02, 0.0), "diameter": 0.03, "kind": "blastic"}
    ph = make_phantom("vertebra", g, tumour=canal)
    assert ph.tissue_names()[ph.index("tumour")] == "tumour_blastic"
    assert ph.volume_ml("tumour") > 0
    for name in ("spinal_cord", "csf", "cauda_equina", "nerve_root_left", "disc_above"):
        assert np.array_equal(ph.mask(name), l1_48.mask(name)), name
    # it breaches the posterior wall: former cortical shell voxels became tumour
    assert (ph.mask("tumour") & l1_48.mask("cortical_shell")).any()


def test_scale_widens_body():
    g = _grid(80, 0.5)
    base = make_phantom("vertebra", g)
    big = make_phantom("vertebra", g, scale=1.2)
    h = g.spacing

    def width(ph):
        m = ph.mask("vertebral_body") | ph.mask("cortical_shell") | ph.mask("endplate")
        return _extent_along(m, 0, h)

    assert width(base) == pytest.approx(40.8 * MM, abs=2 * h)
    assert width(big) / width(base) == pytest.approx(1.2, abs=0.03)


def test_body_volume_converges_with_spacing():
    def body_ml(spacing_mm):
        ph = make_phantom("vertebra", _grid(48, spacing_mm))
        return sum(ph.volume_ml(n) for n in ("vertebral_body", "cortical_shell", "endplate"))

    v1, v05 = body_ml(1.0), body_ml(0.5)
    assert v1 == pytest.approx(v05, rel=0.10)
    assert 20 < v05 < 30  # ≈ superellipse 40.8 x 32.3 x 23.1 mm with waist and concavities


def test_cortical_shell_is_one_voxel_thick(l1_48):
    """docs/anatomy.md: shell ≈ 0.3 mm, thinner than a voxel -> one voxel of cortical label."""
    g = l1_48.grid
    _, j, k = g.world_to_index((0, 0, 0))
    line = l1_48.labels[:, j, k]  # along x through the body centre
    shell = np.flatnonzero(line == l1_48.index("cortical_shell"))
    body = np.flatnonzero(line == l1_48.index("vertebral_body"))
    assert len(shell) == 2
    assert shell[0] == body.min() - 1
    assert shell[1] == body.max() + 1


def test_small_grid_off_centre_just_clips():
    grid = Grid((20, 20, 20), 0.001, (0.005, 0.0, -0.01))
    ph = make_phantom("vertebra", grid)
    assert "vertebral_body" in ph.structure_names()


def test_vertebra_128_cube_is_fast():
    grid = _grid(128, 1.0)
    t0 = time.perf_counter()
    make_phantom("vertebra", grid)
    assert time.perf_counter() - t0 < 2.0


def test_long_bone():
    ph = make_phantom("long_bone", _grid(64, 0.5))
    g, h = ph.grid, ph.grid.spacing
    i, j, k = g.world_to_index((0, 0, 0))
    assert ph.labels[i, j, k] == ph.index("medullary_canal")
    assert ph.tissue_names()[ph.index("medullary_canal")] == "yellow_marrow"
    assert ph.tissue_names()[ph.index("sciatic_nerve")] == "nerve"
    # lateral cortex thickness (26 - 10.5) / 2 = 7.75 mm (docs/anatomy.md §6 [C])
    line = ph.labels[:, j, k]
    cortex_lat = np.count_nonzero((line == ph.index("cortex")) & (g.axes()[0] > 0)) * h
    assert cortex_lat == pytest.approx(7.75 * MM, abs=h)
    assert _centroid(ph, "sciatic_nerve")[1] < -0.02  # posterior
    t = make_phantom(
        "long_bone",
        g,
        tumour={"center": (0.0, -0.015, 0.0), "diameter": 0.025, "kind": "lytic"},
    )
    assert np.array_equal(t.mask("sciatic_nerve"), ph.mask("sciatic_nerve"))
    assert t.volume_ml("tumour") > 0


def test_slab_and_sphere_geometry():
    g = _grid(20, 1.0)  # centres at -9.5 ... 9.5 mm
    ph = make_phantom(
        "slab", g, tissues=("muscle", "fat", "cortical_bone"), axis=2, interfaces=(-0.002, 0.004)
    )
    assert ph.structure_names() == ("layer0", "layer1", "layer2")
    z = g.axes()[2]
    zz = np.broadcast_to(z, g.shape)
    assert np.all(ph.mask("layer0") == (zz < -0.002))
    assert np.all(ph.mask("layer2") == (zz >= 0.004))
    sp = make_phantom("sphere", _grid(30, 0.5), radius=0.006, tissue="tumour_blastic")
    assert sp.structure_names() == ("background", "tumour")
    assert sp.volume_ml("tumour") == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=0.03)
    u = make_phantom("uniform", g, tissue="fat")
    assert u.tissue_names() == ("fat",)
    assert u.volume_ml("fat") == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("call", "fragments"),
    [
        (lambda g: make_phantom("vertebrae", g), ["vertebrae", "did you mean 'vertebra'"]),
        (lambda g: make_phantom("vertebra", g, body_widht=0.04), ["body_widht", "body_width"]),
        (lambda g: make_phantom("vertebra", g, body_width=-0.04), ["body_width", "-0.04"]),
        (lambda g: make_phantom("vertebra", g, body_width=40), ["body_width", "metres"]),
        (lambda g: make_phantom("vertebra", g, level="L2"), ["'L2'", "L1"]),
        (lambda g: make_phantom("vertebra", g, scale=0), ["scale", "1.2"]),
        (lambda g: make_phantom("vertebra", g, cord_ap=0.02), ["cord_ap", "dural_sac_ap"]),
        (
            lambda g: make_phantom("vertebra", g, tumour={"centre": (0, 0, 0), "diameter": 0.01}),
            ["centre", "did you mean 'center'"],
        ),
        (
            lambda g: make_phantom(
                "vertebra", g, tumour={"center": (0, 0, 0), "diameter": 0.01, "kind": "lytc"}
            ),
            ["lytc", "lytic"],
        ),
        (
            lambda g: make_phantom(
                "vertebra", g, tumour={"center": (0, -0.02, 0), "diameter": 0.004}
            ),
            ["tumour", "no voxel"],
        ),
        (lambda g: make_phantom("sphere", g), ["radius"]),
        (lambda g: make_phantom("slab", g, tissues=("muscle",)), ["2 layers", "tissues"]),
        (lambda g: make_phantom("slab", g, axis=3), ["axis"]),
        (lambda g: make_phantom("long_bone", g, nerve_center=(0, 0, 0)), ["nerve_center"]),
        (lambda g: make_phantom("uniform", g).mask("muscel"), ["muscel", "muscle"]),
    ],
)
def test_errors_name_the_parameter_and_the_fix(call, fragments):
    with pytest.raises(ScenarioError) as err:
        call(_grid(24, 1.0))
    msg = str(err.value)
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_grid_beyond_skin_is_refused():
    grid = Grid((8, 8, 8), 0.002, (0.0, -0.12, 0.0))  # 87 mm behind the canal
    with pytest.raises(ScenarioError, match="skin"):
        make_phantom("vertebra", grid)


def test_phantom_validates_its_fields():
    g = _grid(4, 1.0)
    with pytest.raises(ScenarioError, match="no structure"):
        Phantom(g, np.ones(g.shape, np.uint8), (Structure("a", "muscle"),))
    with pytest.raises(ScenarioError, match="unique"):
        Phantom(g, np.zeros(g.shape, np.uint8), (Structure("a", "x"), Structure("a", "y")))
    ph = Phantom(g, np.zeros(g.shape, np.int64), (Structure("a", "muscle"),))
    assert ph.labels.dtype == np.uint8


# -- files and pictures ---------------------------------------------------------------
def test_save_label_map_roundtrip(tmp_path, l1_48):
    path = save_label_map(l1_48, tmp_path / "sub" / "l1.nii.gz")
    img = nib.load(str(path))
    assert np.array_equal(np.asarray(img.dataobj), l1_48.labels)
    origin_mm = np.asarray(l1_48.grid.origin) * 1e3
    assert np.allclose(img.affine @ [0, 0, 0, 1], [*origin_mm, 1])
    assert np.allclose(img.affine @ [1, 2, 3, 1], np.append(origin_mm + np.array([1, 2, 3]), 1))
    assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
    table = json.loads((tmp_path / "sub" / "l1.labels.json").read_text())
    assert table["0"] == {"name": "soft_tissue", "tissue": "muscle"}
    assert len(table) == len(l1_48.structures)
    ctbl = (tmp_path / "sub" / "l1.ctbl").read_text().splitlines()
    rows = [line.split() for line in ctbl if not line.startswith("#")]
    assert len(rows) == len(l1_48.structures)
    assert rows[l1_48.index("spinal_cord")][:2] == [str(l1_48.index("spinal_cord")), "spinal_cord"]
    assert all(len(r) == 6 and all(0 <= int(v) <= 255 for v in r[2:]) for r in rows)
    back = load_phantom(path)
    assert back.structures == l1_48.structures
    assert np.array_equal(back.labels, l1_48.labels)
    assert back.grid.spacing == pytest.approx(l1_48.grid.spacing)
    assert np.allclose(back.grid.origin, l1_48.grid.origin)
    assert not list(tmp_path.glob("sub/.*tmp*"))  # no temporary files left behind
    with pytest.raises(ScenarioError, match=r"\.nii"):
        save_label_map(l1_48, tmp_path / "l1.nrrd")


def test_plot_labels_and_outputs(tmp_path, l1_48):
    fig = plot_labels(l1_48, point=(0.016, -0.018, -0.009), save=tmp_path / "v.png")
    assert isinstance(fig, Figure)
    assert (tmp_path / "v.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    texts = [t.get_text() for t in fig.axes[3].get_legend().get_texts()]
    assert "spinal_cord (spinal_cord)" in texts
    assert "y [mm]   P ← → A" in fig.axes[0].get_ylabel()
    own = Figure()
    axes = own.subplots(1, 3)
    assert plot_labels(make_phantom("sphere", _grid(10, 1.0), radius=0.003), axes=axes) is own
    paths = write_phantom_outputs(l1_48, tmp_path / "out", stem="l1")
    assert [p.name for p in paths] == [
        "l1.nii.gz",
        "l1.labels.json",
        "l1.ctbl",
        "l1.description.txt",
        "l1.png",
    ]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
