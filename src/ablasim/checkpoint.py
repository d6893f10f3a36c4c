"""Checkpoints: the whole state of a run, saved so that a resumed run continues exactly.

A checkpoint is one ``.npz`` file (no pickle), written atomically: the arrays (the padded
temperature, perfusion, damage accumulators, nerve counters, the samples so far, and the
sources' own array state) and a JSON ``meta`` entry with everything else, including a
fingerprint of the scenario (:func:`fingerprint`), so that a checkpoint of another
scenario or another version of this format is refused rather than continued.

A source's state (:meth:`~ablasim.sources.BoundSource.state`) may mix JSON-able values
and numpy arrays: the arrays are stored as ``source_<phase>.<index>_<key>`` entries and
come back as arrays, the rest goes into ``meta``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .damage import DamageFields
from .errors import ScenarioError
from .fileio import atomic_write

__all__ = ["CHECKPOINT_VERSION", "RunState", "digest", "fingerprint", "load", "save"]

#: Version of the file layout; a checkpoint of another version is refused.
CHECKPOINT_VERSION = 3

#: The sample series (:attr:`RunState.samples`), each a list with one entry per sample.
SAMPLE_KEYS = ("time", "phase", "power", "tc", "nerve_max", "nerve_min", "iceball")


@dataclass
class RunState:
    """Everything a checkpoint must hold to continue a run exactly.

    Attributes
    ----------
    T : ndarray, padded
        Temperature [°C].
    W : ndarray
        Perfusion coefficient [W/m^3/K] (zero where perfusion has stopped).
    damage : DamageFields
    t : float
        Time since the start of the run [s].
    phase, step : int
        The current phase and the steps done in it.
    total_steps : int
    phase_change : bool
        Whether the step takes latent heat everywhere (something may freeze).
    phase_energy, phase_cutoff, phase_held : list
        Per phase begun: the energy delivered [J], when a cut-off stopped it [s] (None),
        the heat held voxels took out [J].
    nerve_time_above, nerve_time_below, nerve_first_hot, nerve_first_cold : ndarray
        Per nerve structure: the time at or beyond the hot and cold limit [s] and the
        first moment there [s] (NaN: not yet).
    tc_cutoff : dict
        Thermocouple name -> when it first cut the sources off [s].
    samples : dict
        :data:`SAMPLE_KEYS` -> list, one entry per sample.
    telemetry : list
        One ``{column: value}`` dict per sample.
    source_state : dict
        ``"<phase>.<index>"`` -> the bound source's :meth:`state`.
    next_sample : float
        When the next sample is due [s].
    """

    T: np.ndarray
    W: np.ndarray
    damage: DamageFields
    t: float = 0.0
    phase: int = 0
    step: int = 0
    total_steps: int = 0
    phase_change: bool = False
    phase_energy: list = field(default_factory=list)
    phase_held: list = field(default_factory=list)
    phase_cutoff: list = field(default_factory=list)
    nerve_time_above: np.ndarray | None = None
    nerve_time_below: np.ndarray | None = None
    nerve_first_hot: np.ndarray | None = None
    nerve_first_cold: np.ndarray | None = None
    tc_cutoff: dict = field(default_factory=dict)
    samples: dict = field(default_factory=lambda: {k: [] for k in SAMPLE_KEYS})
    telemetry: list = field(default_factory=list)
    source_state: dict = field(default_factory=dict)
    next_sample: float = 0.0


_NERVE_ARRAYS = ("nerve_time_above", "nerve_time_below", "nerve_first_hot", "nerve_first_cold")
_META = (
    "t",
    "phase",
    "step",
    "total_steps",
    "phase_change",
    "phase_energy",
    "phase_held",
    "phase_cutoff",
    "tc_cutoff",
    "next_sample",
    "telemetry",
)


def save(path: str | Path, state: RunState, fingerprint: str) -> None:
    """Write ``state`` to ``path`` atomically (a crash leaves the previous file)."""
    meta: dict[str, Any] = {k: getattr(state, k) for k in _META}
    meta.update(version=CHECKPOINT_VERSION, fingerprint=fingerprint)
    arrays = {
        "T": state.T,
        "W": state.W,
        **{f"damage_{k}": v for k, v in state.damage.as_dict().items()},
        **{k: getattr(state, k) for k in _NERVE_ARRAYS},
        **{f"sample_{k}": np.asarray(v, dtype=float) for k, v in state.samples.items()},
    }
    values: dict[str, dict] = {}
    array_keys: dict[str, list[str]] = {}
    for src, st in state.source_state.items():
        values[src], array_keys[src] = {}, []
        for key, v in st.items():
            if isinstance(v, np.ndarray):
                if v.dtype == object:
                    raise TypeError(f"source {src} state {key!r}: object arrays cannot be saved")
                arrays[f"source_{src}_{key}"] = v
                array_keys[src].append(key)
            else:
                values[src][key] = v.item() if isinstance(v, np.generic) else v
    meta.update(source_state=values, source_arrays=array_keys)
    text = json.dumps(meta)  # before opening: a state that is not JSON leaves the old file
    with atomic_write(Path(path), "wb") as fh:
        np.savez(fh, meta=np.array(text), **arrays)


def load(path: str | Path, fingerprint: str) -> RunState:
    """The state saved in ``path``; a :class:`~ablasim.errors.ScenarioError` when the
    file cannot be read or belongs to another scenario (fingerprint) or format."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in z.files if k != "meta"}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise ScenarioError(
            f"cannot read checkpoint {path}: {exc}; delete it to start afresh"
        ) from None
    if meta.get("version") != CHECKPOINT_VERSION or meta.get("fingerprint") != fingerprint:
        raise ScenarioError(
            f"checkpoint {path} belongs to a different scenario or ablasim version; "
            "delete it (or run without --resume) to start afresh"
        )
    try:
        damage = DamageFields(
            **{k: arrays[f"damage_{k}"] for k in ("t_max", "t_min", "cem43", "omega")}
        )
        source_state = {
            src: {**values, **{k: arrays[f"source_{src}_{k}"] for k in meta["source_arrays"][src]}}
            for src, values in meta["source_state"].items()
        }
        return RunState(
            T=arrays["T"],
            W=arrays["W"],
            damage=damage,
            **{k: meta[k] for k in _META},
            **{k: arrays[k] for k in _NERVE_ARRAYS},
            samples={k: list(arrays[f"sample_{k}"]) for k in SAMPLE_KEYS},
            source_state=source_state,
        )
    except KeyError as exc:
        raise ScenarioError(
            f"cannot read checkpoint {path}: {exc} is missing; delete it to start afresh"
        ) from None


def digest(obj) -> str:
    """SHA-256 of a value: nested dataclasses, objects, mappings, sequences, arrays and
    scalars, by content (arrays by their bytes), so any change of a scenario shows."""
    h = hashlib.sha256()
    active: set[int] = set()

    def feed(o) -> None:
        if isinstance(o, (str, bytes, int, float, bool, type(None), np.generic)):
            h.update(repr(o).encode())
            return
        if id(o) in active:  # a reference cycle
            h.update(b"<cycle>")
            return
        active.add(id(o))
        if isinstance(o, np.ndarray):
            h.update(f"array{o.dtype.str}{o.shape}".encode())
            h.update(np.ascontiguousarray(o).tobytes())
        elif dataclasses.is_dataclass(o) and not isinstance(o, type):
            h.update(type(o).__qualname__.encode())
            for fl in dataclasses.fields(o):
                feed(fl.name)
                feed(getattr(o, fl.name))
        elif isinstance(o, Mapping):
            h.update(b"{")
            for key in sorted(o, key=str):
                feed(key)
                feed(o[key])
            h.update(b"}")
        elif isinstance(o, (set, frozenset)):
            feed(sorted(o, key=repr))
        elif isinstance(o, (list, tuple)):
            h.update(b"[")
            for v in o:
                feed(v)
            h.update(b"]")
        elif hasattr(o, "__dict__"):
            h.update(type(o).__qualname__.encode())
            feed(vars(o))
        else:
            h.update(repr(o).encode())
        active.discard(id(o))

    feed(obj)
    return h.hexdigest()


def fingerprint(model, phases, dts, extra) -> str:
    """What a checkpoint must match to be continued: the model (grid, labels, tissues,
    boundary, by content), the phases and their sources, the time steps, and ``extra``
    (the run's other settings, JSON-able)."""
    parts = {
        "grid": [model.grid.shape, model.grid.spacing, model.grid.origin],
        "model": digest(model),
        "structures": [[s.name, s.tissue] for s in model.structures],
        "phases": [[p.name, p.duration, digest(p.sources)] for p in phases],
        "dt": list(dts),
        "extra": extra,
    }
    return json.dumps(parts, sort_keys=True, default=str)
