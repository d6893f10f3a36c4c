"""Tests of the tissue library (packaged data, loader, overrides, validation)."""

from __future__ import annotations

import math
import tomllib
from importlib import resources

import numpy as np
import pytest

from ablasim.errors import ScenarioError
from ablasim.tissues import BLOOD_KEYS, PROPERTY_KEYS, Blood, Tissue, TissueLibrary

REQUIRED_TISSUES = (
    "cortical_bone",
    "cancellous_bone",
    "red_marrow",
    "yellow_marrow",
    "tumour_lytic",
    "tumour_blastic",
    "muscle",
    "fat",
    "skin",
    "spinal_cord",
    "nerve",
    "csf",
    "disc",
    "cartilage",
    "ligament",
    "blood",
    "liver",
    "pmma_cement",
)

# Physical plausibility ranges for the packaged values (inclusive), SI units.
RANGES = {
    "density_kg_m3": (800.0, 2500.0),
    "specific_heat_J_kgK": (500.0, 4500.0),
    "conductivity_W_mK": (0.1, 1.0),
    "perfusion_per_s": (0.0, 0.05),
    "metabolic_W_m3": (0.0, 0.0),
    "heat_generation_W_kg": (0.0, 20.0),
    "conductivity_coeff_per_K": (0.0, 0.01),
    "specific_heat_coeff_per_K": (0.0, 0.01),
    "electrical_conductivity_S_m": (0.0, 3.0),
    "electrical_conductivity_coeff_per_K": (0.0, 0.03),
    "permittivity_915MHz": (1.0, 80.0),
    "electrical_conductivity_915MHz_S_m": (0.0, 3.0),
    "permittivity_2450MHz": (1.0, 80.0),
    "electrical_conductivity_2450MHz_S_m": (0.0, 4.0),
    "arrhenius_A_per_s": (0.0, 1e100),
    "arrhenius_Ea_J_mol": (0.0, 7e5),
    "water_fraction": (0.0, 1.0),
    "freezing_start_C": (-2.0, 0.0),
    "freezing_end_C": (-10.0, -5.0),
    "latent_heat_J_kg": (0.0, 334e3),
    "frozen_conductivity_W_mK": (0.1, 2.5),
    "frozen_specific_heat_J_kgK": (500.0, 4500.0),
}


#: Materials that are not tissue, with ranges of their own: CO2 gas (its density is an
#: effective one, raised so rho c = 50 kJ/m^3/K; docs/physics.md §3.5).
MATERIAL_RANGES = {
    "co2": {
        "density_kg_m3": (1.0, 100.0),
        "conductivity_W_mK": (0.01, 0.03),
        "frozen_conductivity_W_mK": (0.01, 0.03),
    },
}


@pytest.fixture(scope="module")
def lib() -> TissueLibrary:
    return TissueLibrary.default()


@pytest.fixture(scope="module")
def raw() -> dict:
    data = resources.files("ablasim.tissues").joinpath("library.toml").read_bytes()
    return tomllib.loads(data.decode("utf-8"))


# --------------------------------------------------------------------------- packaged file


def test_packaged_file_every_tissue_every_key_with_resolvable_source(raw):
    refs = raw["references"]
    assert {"typical", "computed", "itis", "gabriel1996"} <= set(refs)
    for name, tdoc in raw["tissue"].items():
        assert set(tdoc) == {"description", "nerve", *PROPERTY_KEYS}, name
        assert isinstance(tdoc["nerve"], bool)
        for key in PROPERTY_KEYS:
            entry = tdoc[key]
            with_range = {"value", "source", "range", "range_source"}
            assert set(entry) in ({"value", "source"}, with_range), (name, key)
            tag = entry["source"].split(";")[0].strip().split()[0]
            assert tag in refs, (name, key, entry["source"])
            if "range" in entry:  # a published spread, with its own source
                assert entry["range"][0] <= entry["value"] <= entry["range"][1], (name, key)
                assert entry["range_source"].split(";")[0].strip() in refs, (name, key)
    for key in BLOOD_KEYS:
        assert raw["blood"][key]["source"].split(";")[0].strip() in refs


def test_required_tissues_present_and_nerve_flags(lib):
    assert set(REQUIRED_TISSUES) <= set(lib.names)
    nerves = {n for n in lib if lib[n].nerve}
    assert nerves == {"spinal_cord", "nerve"}


@pytest.mark.parametrize("key", PROPERTY_KEYS)
def test_packaged_values_in_physical_ranges(lib, key):
    for name in lib:
        lo, hi = MATERIAL_RANGES.get(name, {}).get(key, RANGES[key])
        value = getattr(lib[name], key)
        assert isinstance(value, float)
        assert math.isfinite(value)
        assert lo <= value <= hi, f"{name}.{key} = {value} outside [{lo}, {hi}]"


def test_freezing_interval_and_latent_heat_rule(lib):
    for name in lib:
        t = lib[name]
        assert t.freezing_end_C < t.freezing_start_C
        # latent heat per kg of tissue = 333.55 kJ/kg x water fraction (stated in the file)
        assert t.latent_heat_J_kg == pytest.approx(333.55e3 * t.water_fraction, rel=1e-6)


def test_metabolic_off_but_hgr_kept(lib):
    assert all(lib[n].metabolic_W_m3 == 0.0 for n in lib)
    assert lib["muscle"].heat_generation_W_kg == pytest.approx(0.906)


def test_property_keys_match_tissue_fields(lib):
    t = lib["muscle"]
    assert set(t.values()) == set(PROPERTY_KEYS)
    assert len(set(PROPERTY_KEYS)) == len(PROPERTY_KEYS)
    assert isinstance(t, Tissue)
    assert set(t.sources) == set(PROPERTY_KEYS)


def test_default_is_cached(lib):
    assert TissueLibrary.default() is lib


# --------------------------------------------------------------------------- physics checks


def test_itis_perfusion_conversion(lib):
    # docs/physics.md §0: omega = HTR * rho / 6e7
    assert lib["skin"].perfusion_per_s == pytest.approx(106.38 * 1109 / 6e7, rel=1e-6)
    assert lib["skin"].perfusion_per_s == pytest.approx(1.966e-3, rel=5e-4)
    assert lib["muscle"].perfusion_per_s == pytest.approx(6.68e-4, rel=5e-3)
    assert lib["liver"].perfusion_per_s == pytest.approx(1.547e-2, rel=5e-4)


def test_perfusion_coefficient_muscle(lib):
    # docs/physics.md §4a: W = omega rho_b c_b = 2535 W/m^3/K for muscle
    w = lib["muscle"].perfusion_coefficient(lib.blood)
    assert w == pytest.approx(2535, rel=1e-3)
    # 1/m = sqrt(k / W) = 13.97 mm
    assert math.sqrt(lib["muscle"].conductivity_W_mK / w) == pytest.approx(13.97e-3, rel=1e-3)


def test_blood_and_rho_c(lib):
    b = lib.blood
    assert isinstance(b, Blood)
    assert (b.density_kg_m3, b.specific_heat_J_kgK, b.temperature_C) == (1049.75, 3617.0, 37.0)
    assert b.rho_c == pytest.approx(1049.75 * 3617)
    assert lib["muscle"].rho_c == pytest.approx(1090.4 * 3421.2)


def test_rf_bone_conductivities_are_measured_values(lib):
    assert lib["cortical_bone"].electrical_conductivity_S_m == 0.02
    assert lib["cancellous_bone"].electrical_conductivity_S_m == 0.087
    assert 0.02 <= lib["tumour_blastic"].electrical_conductivity_S_m <= 0.087
    assert lib["pmma_cement"].electrical_conductivity_S_m < 1e-3


# --------------------------------------------------------------------------- access API


def test_unknown_tissue_suggests(lib):
    with pytest.raises(ScenarioError, match=r"unknown tissue 'musle' \(did you mean 'muscle'"):
        lib["musle"]


def test_mapping_protocol(lib):
    assert "muscle" in lib
    assert "bone" not in lib
    assert list(lib) == list(lib.names)
    assert len(lib) == len(lib.names)


def test_table_order_and_dtype(lib):
    names = ["fat", "muscle", "cortical_bone", "muscle"]
    arr = lib.table(names, "conductivity_W_mK")
    assert arr.dtype == np.float64
    np.testing.assert_array_equal(arr, [0.2115, 0.495, 0.32, 0.495])
    with pytest.raises(ScenarioError, match="did you mean 'conductivity_W_mK'"):
        lib.table(names, "conductivity_W_mk")
    with pytest.raises(ScenarioError, match="unknown tissue 'fatt'"):
        lib.table(["fatt"], "conductivity_W_mK")


def test_source_of_resolves_citation(lib):
    text = lib.source_of("muscle", "density_kg_m3")
    assert "IT'IS" in text
    assert "10.13099/VIP21000-04-0" in text
    assert "Gabriel" in lib.source_of("muscle", "permittivity_2450MHz")
    assert "not verified" in lib.source_of("muscle", "water_fraction")
    assert "HTR 36.74" in lib.source_of("muscle", "perfusion_per_s")
    assert "IT'IS" in lib.blood_source("density_kg_m3")
    with pytest.raises(ScenarioError, match="did you mean 'density_kg_m3'"):
        lib.source_of("muscle", "density")


def test_describe(lib):
    text = lib.describe()
    for name in REQUIRED_TISSUES:
        assert name in text
    assert "spinal_cord*" in text
    short = lib.describe(["muscle"])
    assert "muscle" in short
    assert "liver" not in short


# --------------------------------------------------------------------------- overrides


def test_overrides_new_library_default_untouched(lib):
    new = lib.with_overrides(
        {"muscle": {"perfusion_per_s": 0.002, "conductivity_W_mK": 0.5}},
        blood={"temperature_C": 36.5},
    )
    assert new is not lib
    assert new["muscle"].perfusion_per_s == 0.002
    assert new["muscle"].conductivity_W_mK == 0.5
    assert new["muscle"].sources["perfusion_per_s"] == "user override"
    assert "user override" in new.source_of("muscle", "conductivity_W_mK")
    assert new["muscle"].density_kg_m3 == lib["muscle"].density_kg_m3
    assert new.blood.temperature_C == 36.5
    # the packaged library is unchanged
    default = TissueLibrary.default()
    assert default["muscle"].perfusion_per_s == pytest.approx(6.677e-4, rel=1e-3)
    assert default["muscle"].sources["perfusion_per_s"].startswith("itis")
    assert default.blood.temperature_C == 37.0


def test_override_description_and_nerve(lib):
    new = lib.with_overrides({"ligament": {"nerve": True, "description": "protected"}})
    assert new["ligament"].nerve is True
    assert new["ligament"].description == "protected"


def test_add_tissue_based_on(lib):
    new = lib.with_overrides(
        {"tumour_renal": {"based_on": "liver", "perfusion_per_s": 0.01, "nerve": False}}
    )
    t = new["tumour_renal"]
    assert t.perfusion_per_s == 0.01
    assert t.conductivity_W_mK == lib["liver"].conductivity_W_mK
    assert t.sources["conductivity_W_mK"] == lib["liver"].sources["conductivity_W_mK"]
    assert "tumour_renal" not in lib
    assert new.names[-1] == "tumour_renal"


def test_add_tissue_with_every_key(lib):
    props = dict(lib["fat"].values())
    new = lib.with_overrides({"my_fat": props})
    assert new["my_fat"].values() == lib["fat"].values()
    assert set(new["my_fat"].sources.values()) == {"user override"}


def test_add_tissue_without_based_on_fails(lib):
    with pytest.raises(ScenarioError, match=r"tissues\.tumour_x .*missing.*based_on") as exc:
        lib.with_overrides({"tumour_x": {"perfusion_per_s": 0.001}})
    assert "density_kg_m3" in str(exc.value)


def test_based_on_unknown_tissue(lib):
    with pytest.raises(ScenarioError, match=r"tissues\.x\.based_on = 'musle'.*'muscle'"):
        lib.with_overrides({"x": {"based_on": "musle"}})


def test_based_on_existing_tissue_rejected(lib):
    with pytest.raises(ScenarioError, match=r"tissues\.muscle\.based_on"):
        lib.with_overrides({"muscle": {"based_on": "fat"}})


@pytest.mark.parametrize(
    ("props", "pattern"),
    [
        ({"perfusion": 0.001}, r"tissues\.muscle\.perfusion.*did you mean 'perfusion_per_s'"),
        ({"perfusion_per_s": -0.001}, r"tissues\.muscle\.perfusion_per_s = -0\.001 must be >= 0"),
        ({"density_kg_m3": 0.0}, r"tissues\.muscle\.density_kg_m3 = 0\.0 must be > 0"),
        ({"conductivity_W_mK": float("nan")}, r"tissues\.muscle\.conductivity_W_mK = nan .*finite"),
        ({"conductivity_W_mK": float("inf")}, r"tissues\.muscle\.conductivity_W_mK = inf"),
        ({"conductivity_W_mK": "0.5"}, r"tissues\.muscle\.conductivity_W_mK = '0\.5' .*number"),
        ({"conductivity_W_mK": True}, r"tissues\.muscle\.conductivity_W_mK = True .*number"),
        ({"nerve": 1}, r"tissues\.muscle\.nerve = 1 must be true or false"),
        ({"nerve": "yes"}, r"tissues\.muscle\.nerve = 'yes' must be true or false"),
        ({"water_fraction": 1.2}, r"tissues\.muscle\.water_fraction = 1\.2 must be <= 1"),
        ({"latent_heat_J_kg": -1.0}, r"tissues\.muscle\.latent_heat_J_kg = -1\.0 must be >= 0"),
        ({"electrical_conductivity_S_m": -0.1}, r"electrical_conductivity_S_m = -0\.1"),
        ({"freezing_end_C": 0.0}, r"tissues\.muscle\.freezing_end_C = 0\.0 must be below"),
        ({"permittivity_915MHz": 0.5}, r"tissues\.muscle\.permittivity_915MHz = 0\.5 must be >= 1"),
    ],
)
def test_override_validation(lib, props, pattern):
    with pytest.raises(ScenarioError, match=pattern):
        lib.with_overrides({"muscle": props})


def test_override_not_a_table(lib):
    with pytest.raises(ScenarioError, match=r"tissues\.muscle = 0\.5 must be a table"):
        lib.with_overrides({"muscle": 0.5})


def test_blood_override_validation(lib):
    with pytest.raises(ScenarioError, match=r"blood\.temperature.*did you mean 'temperature_C'"):
        lib.with_overrides({}, blood={"temperature": 37.0})
    with pytest.raises(ScenarioError, match=r"blood\.density_kg_m3 = -1\.0 must be > 0"):
        lib.with_overrides({}, blood={"density_kg_m3": -1.0})


def test_negative_temperature_coefficient_allowed(lib):
    new = lib.with_overrides({"muscle": {"conductivity_coeff_per_K": -0.001}})
    assert new["muscle"].conductivity_coeff_per_K == -0.001


# --------------------------------------------------------------------------- from_file


def _write(tmp_path, text):
    path = tmp_path / "lib.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_from_file_roundtrip_of_packaged_file(tmp_path, lib):
    data = resources.files("ablasim.tissues").joinpath("library.toml").read_text("utf-8")
    other = TissueLibrary.from_file(_write(tmp_path, data))
    assert other.names == lib.names
    assert other["muscle"] == lib["muscle"]


def test_from_file_bad_source_tag(tmp_path):
    data = resources.files("ablasim.tissues").joinpath("library.toml").read_text("utf-8")
    data = data.replace("source = \"itis; 'Muscle'\"", "source = \"itiss; 'Muscle'\"", 1)
    with pytest.raises(ScenarioError, match=r"tissue\.muscle\..*'itiss'.*did you mean 'itis'"):
        TissueLibrary.from_file(_write(tmp_path, data))


def test_from_file_missing_key(tmp_path):
    text = """
[references]
itis = "IT'IS"
[blood]
density_kg_m3 = { value = 1049.75, source = "itis" }
specific_heat_J_kgK = { value = 3617, source = "itis" }
temperature_C = { value = 37.0, source = "itis" }
[tissue.foo]
description = "x"
nerve = false
density_kg_m3 = { value = 1000, source = "itis" }
"""
    with pytest.raises(ScenarioError, match=r"tissue\.foo is missing specific_heat_J_kgK"):
        TissueLibrary.from_file(_write(tmp_path, text))


def test_from_file_not_found(tmp_path):
    with pytest.raises(ScenarioError, match="not found"):
        TissueLibrary.from_file(tmp_path / "nope.toml")


def test_library_pickles(lib):
    import pickle

    copy = pickle.loads(pickle.dumps(lib))
    assert copy.names == lib.names
    assert copy["muscle"] == lib["muscle"]
    assert copy.source_of("muscle", "density_kg_m3") == lib.source_of("muscle", "density_kg_m3")


def test_library_is_read_only(lib):
    with pytest.raises(TypeError):
        lib["muscle"].sources["density_kg_m3"] = "x"
    with pytest.raises(TypeError):
        lib.references["itis"] = "x"
    with pytest.raises(AttributeError):
        lib["muscle"].density_kg_m3 = 1.0
