"""The contract every registered heat source keeps (DESIGN "One protocol for every heat
source"): read from its scenario table, keyword-only fields, bad values and unknown keys
named by their key path, bind on a small model, run a few steps through the protocol's
hooks, and resume from a checkpoint bit-identically.

A new kind of source adds one entry to ``CASES`` (a valid table on the small model, and
one bad value): ``test_every_shipped_kind_has_a_case`` fails until it does.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import ablasim as ab
from ablasim.sources import SOURCES, BoundSource, read_source

PATH = "phase[0].source[0]"

#: kind -> (a valid table on the small model, (a key, a bad value for it))
CASES = {
    "volumetric": (
        {"shape": "sphere", "center_mm": [0, 0, 1], "radius_mm": 3, "power_W": 0.4},
        ("radius_mm", -1.0),
    ),
    "microwave": (
        {
            "tip_mm": [0, 0, 4],
            "direction": [0, 0, 1],
            "active_length_mm": 8,
            "power_W": 4,
            "temperature_dependent": True,
        },
        ("efficiency", 1.5),
    ),
    "rf": (
        {
            "tip_mm": [0, 0, 3],
            "direction": [0, 0, 1],
            "active_length_mm": 5,
            "diameter_mm": 1.5,
            "control": {"kind": "temperature", "target_C": 60, "max_power_W": 8},
        },
        ("active_length_mm", -2.0),
    ),
    "cement": (
        {"volume_ml": 0.2, "center_mm": [0, 0, 0], "mixing_to_injection_min": 8},
        ("injection_C", 45.0),
    ),
    "cryo": (
        {
            "tip_mm": [0, 0, 4],
            "direction": [0, 0, 1],
            "active_length_mm": 8,
            "probe_C": [[0, -20], [1, -150]],
        },
        ("diameter_mm", 0.0),
    ),
    "protection": (
        {
            "fluid": "co2",
            "fills": "muscle",
            "near": "nerve",
            "thickness_mm": 2,
            "facing_mm": [0, 0, 0],
        },
        ("thickness_mm", -1.0),
    ),
}
KINDS = sorted(CASES)
#: Time steps below the default 0.25 s, for kinds whose frozen tissue needs them.
DT = {"cryo": 0.1}
#: Kinds that need another tissue than muscle in the small model (cement fills bone).
TISSUE = {"cement": "cancellous_bone"}
#: Kinds that need a nerve in the small model (a protective layer lies next to one).
WITH_NERVE = {"protection"}


def _table(kind, **change):
    return {"kind": kind, **CASES[kind][0], **change}


def _model(kind=None):
    grid = ab.Grid((20, 20, 24), 1e-3, origin=(-9.5e-3, -9.5e-3, -11.5e-3))
    model = ab.Model.uniform(grid, TISSUE.get(kind, "muscle"))
    if kind in WITH_NERVE:  # a nerve 3 mm across along z at x = y = -5 mm
        x, y, _ = grid.mesh()
        nerve = np.broadcast_to(np.hypot(x + 5e-3, y + 5e-3) <= 1.5e-3, grid.shape)
        model = model.with_material(np.flatnonzero(nerve), tissue="nerve", structure="nerve")
    return model


def test_every_shipped_kind_has_a_case():
    shipped = {k for k, cls in SOURCES.items() if cls.__module__.startswith("ablasim.")}
    assert shipped == set(CASES)


@pytest.mark.parametrize("kind", KINDS)
def test_reads_its_table_into_its_registered_class(kind):
    src = read_source(_table(kind), path=PATH)
    assert type(src) is SOURCES[kind]
    assert src.kind == kind
    assert src.name == f"{kind}1"  # the default name
    assert read_source(_table(kind, name="mine"), path=PATH).name == "mine"
    # the description is immutable and keyword-only
    with pytest.raises(TypeError):
        SOURCES[kind]("positional")
    with pytest.raises(AttributeError):
        src.name = "changed"


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_value_is_named_by_its_key_path(kind):
    key, value = CASES[kind][1]
    with pytest.raises(ab.ScenarioError) as err:
        read_source(_table(kind, **{key: value}), path=PATH)
    assert f"{PATH}.{key}: " in str(err.value)
    assert f"{value:g}" in str(err.value)  # the value as written


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_key_is_named_with_the_nearest_one(kind):
    with pytest.raises(ab.ScenarioError) as err:
        read_source(_table(kind, nmae="x"), path=PATH)
    assert f"{PATH}.nmae: unknown key (did you mean 'name'" in str(err.value)


@pytest.mark.parametrize("kind", KINDS)
def test_what_the_rest_of_the_package_asks(kind):
    cls = SOURCES[kind]
    src = read_source(_table(kind), path=PATH)
    model = _model(kind)
    assert cls.summary
    assert cls.keys_help
    assert all(len(line) <= 70 for line in cls.keys_help.splitlines())
    said = src.assumptions()
    assert said
    assert all(isinstance(s, str) and s.endswith(".") for s in said)
    where = src.location(model)
    assert where is not None
    assert model.grid.contains(where)
    for needle in src.needles():
        assert model.grid.contains(needle.tip)


@pytest.mark.parametrize("kind", KINDS)
def test_bound_hooks_return_what_the_protocol_declares(kind):
    model = _model(kind)
    bound = read_source(_table(kind), path=PATH).bind(model)
    assert isinstance(bound, BoundSource)
    T = np.full(tuple(n + 2 for n in model.grid.shape), 37.0)[1:-1, 1:-1, 1:-1]
    Q = np.zeros(model.grid.shape)
    power = bound.deposit(Q, T, 0.0)
    assert math.isfinite(power)  # negative for a source that draws heat
    assert np.all(np.isfinite(Q))
    # what it put into Q is the power it reports (an independent sum over the grid)
    assert Q.sum() * model.grid.voxel_volume == pytest.approx(power, rel=1e-9, abs=1e-12)
    if bound.scaled:
        p = bound.advance(T, 1.0)
        assert p >= 0
        assert bound.unit_heating.shape == model.grid.shape
    held = bound.held(0.0)
    assert held is None or held.index.size == held.temperature_C.size
    assert bound.material() is None or bound.material().index.size > 0
    # it acts on the model somehow: heat, a held wall or a new material
    assert np.any(Q != 0) or held is not None or bound.material() is not None
    assert all(math.isfinite(v) for v in bound.telemetry().values())
    state = bound.state()
    meta = {k: v for k, v in state.items() if not isinstance(v, np.ndarray)}
    json.dumps(meta)  # JSON-able besides arrays
    bound.restore(state)


@pytest.mark.parametrize("kind", KINDS)
def test_checkpoint_and_resume_is_bit_identical(kind, tmp_path, monkeypatch, interrupt_after):
    """A run interrupted mid-phase and resumed gives exactly the uninterrupted result,
    the source's own state included."""
    model = _model(kind)

    def run(**kw):
        src = read_source(_table(kind), path=PATH)
        return ab.simulate(
            model,
            [ab.Phase("on", 6.0, [src]), ab.Phase("off", 2.0)],
            dt=DT.get(kind, 0.25),
            stepping="explicit",  # interrupt_after counts the explicit step's calls
            checkpoint=tmp_path / "ck.npz",
            checkpoint_interval=0.0,
            threads=1,
            **kw,
        )

    ref = run()
    (tmp_path / "ck.npz").unlink()
    interrupt_after(13)  # inside the first phase
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.undo()
    res = run(resume=True)
    assert res.timing["resumed_from_s"] == pytest.approx(12 * DT.get(kind, 0.25))
    np.testing.assert_array_equal(res.temperature, ref.temperature)
    for key, value in ref.damage.as_dict().items():
        np.testing.assert_array_equal(res.damage.as_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(res.power, ref.power)
    for key, value in ref.telemetry.items():
        np.testing.assert_array_equal(res.telemetry[key], value, err_msg=key)
    assert res.phases == ref.phases
    assert res.events == ref.events  # a source's events are part of its state
