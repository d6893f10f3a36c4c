"""``ablasim compile``: it must compile what runs use (same signatures), run its groups in
parallel processes, and fail clearly."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import ablasim.precompile as pc
from ablasim.cli import main
from ablasim.errors import AblasimError

# In a fresh process: the two groups, then the numba signatures of every ablasim kernel;
# then short simulations with every source kind the groups cover (RF monopolar and
# bipolar cooled, microwave with temperature-dependent SAR, a volumetric source) on a
# two-tissue model whose labels come in Fortran order (as from a NIfTI file), and the
# signatures again. Any signature a run adds would be compiled inside a user's first run.
_SCRIPT = textwrap.dedent(
    """
    import sys
    import numba, numpy as np
    import ablasim as ab
    from ablasim import precompile

    def signatures():
        out = {}
        for name, mod in list(sys.modules.items()):
            if not name.startswith("ablasim"):
                continue
            for attr, obj in vars(mod).items():
                if isinstance(obj, numba.core.registry.CPUDispatcher):
                    out[f"{obj.py_func.__module__}.{attr}"] = set(map(str, obj.signatures))
        return out

    precompile.compile_step()
    precompile.compile_sources()
    before = signatures()
    grid = ab.Grid((20, 20, 28), 1e-3, origin=(-9.5e-3, -9.5e-3, -13.5e-3))
    # labels in Fortran order, as a NIfTI file delivers them
    x = np.broadcast_to(grid.mesh()[0], grid.shape)
    labels = np.asfortranarray((x > 4e-3).astype(np.uint8))
    structures = (ab.Structure("muscle", "muscle"), ab.Structure("fat", "fat"))
    model = ab.Model(grid, labels, structures, ab.TissueLibrary.default())
    probe = dict(tip=(0.0, 0.0, 3e-3), direction=(0, 0, 1), diameter=1.5e-3)
    phases = [
        ab.Phase("mono", 4.0, [ab.RFSource(**probe, active_length=5e-3, power_W=3.0)]),
        ab.Phase("bi", 4.0, [ab.RFSource(
            **probe, active_length=3e-3, mode="bipolar", gap=2e-3, cooled=True,
            control="temperature", target_C=60.0, max_power_W=8.0)]),
        ab.Phase("mw", 4.0, [ab.MicrowaveSource(
            tip=(0.0, 0.0, 4e-3), direction=(0, 0, 1), power_W=8.0, active_length=6e-3,
            temperature_dependent=True)]),
        ab.Phase("vol", 4.0, [ab.VolumetricSource.sphere((0, 0, 0), 2e-3, power_W=1.0)]),
        ab.Phase("cool", 2.0, []),
    ]
    ab.simulate(model, phases, progress=False)
    after = signatures()
    new = {k: sorted(v - before.get(k, set())) for k, v in after.items()}
    new = {k: v for k, v in new.items() if v}
    print(repr(new))
    """
)


def test_the_groups_compile_every_signature_a_run_uses():
    r = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "{}", r.stdout


def test_the_groups_run_at_once():
    """Every group's process is launched before any finishes (a loop of one process
    after the other would launch the second after the first ended)."""
    spans = pc._run_groups(pc.GROUPS)
    assert set(spans) == set(pc.GROUPS)
    assert max(s for s, _ in spans.values()) < min(e for _, e in spans.values()), spans


def test_compile_command(capsys):
    assert main(["compile"]) == 0
    assert main(["compile", "--serial"]) == 0
    out = capsys.readouterr().out
    assert out.count("kernels compiled or loaded") == 2, out
    assert all(f"{g} " in out for g in pc.GROUPS), out


def test_a_failing_group_names_itself_and_stops_the_others(monkeypatch, capsys):
    monkeypatch.setattr(pc, "GROUPS", ("no-such-group", "step"))
    with pytest.raises(AblasimError, match=r"'no-such-group' kernels failed: KeyError"):
        pc.compile_all()
    assert main(["compile"]) == 2  # one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith("ablasim: error: compiling the 'no-such-group' kernels"), err
