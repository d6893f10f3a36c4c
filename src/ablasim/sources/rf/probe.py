"""The RF source as the user describes it: probes, electrodes, generator settings.

:class:`RFSource` declares its scenario keys and their checks (:func:`param`), its
cross-field checks, the geometry of its needles (:meth:`RFSource.probes`,
:meth:`RFSource.segments`) and what the report and ``ablasim compile`` ask of it;
:meth:`RFSource.bind` checks it against a model and returns a
:class:`~ablasim.sources.rf.bound.BoundRF`. The model is described in
:mod:`ablasim.sources.rf`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ...reader import Table
from ...solvers import FACE_NAMES
from ..base import Needle, Source, more_probes_problems, param, read_more_probes
from ..registry import register
from ..warmup import heat_twice, small_model
from .bound import BoundRF
from .generator import BODY_TEMPERATURE_C, IMPEDANCE_PAUSE_S

if TYPE_CHECKING:
    from ...model import Model

__all__ = ["RFSource"]

_MODES = ("monopolar", "bipolar")
_CONTROLS = ("power", "temperature")
_CONTROL_EXAMPLE = (
    'a table such as { kind = "temperature", target_C = 70, max_power_W = 20 } or '
    '{ kind = "power", power_W = 20 }'
)


@register
@dataclass(frozen=True, kw_only=True)
class RFSource(Source):
    """An RF generator with one or more needle probes (positions and sizes in metres).

    Parameters
    ----------
    tip : 3 floats
        Distal end of the (first) probe [m].
    direction : 3 floats
        The way the needle points, from the skin towards the tip (any length).
    active_length : float
        Length of each electrode [m].
    diameter : float
        Needle diameter [m] (e.g. 1.65e-3 for 16 G).
    mode : "monopolar" or "bipolar"
    gap : float
        Bipolar only: insulated length between the two electrodes [m].
    cooled : bool
        Internally cooled probe: electrode (and gap) voxels held at ``coolant_C``.
    coolant_C : float
        Coolant temperature [°C].
    control : "power" or "temperature"
    power_W : float
        Set power [W] (power control).
    target_C : float
        Set-point of the probe sensor [°C] (temperature control), above 37 °C.
    max_power_W : float, optional
        Generator limit [W]; required for temperature control; for power control
        defaults to ``power_W`` and must not be below it.
    max_voltage_V : float, optional
        Generator output limit [V rms]: the power is at most ``V_max² / Z``, so when
        the impedance Z rises (desiccation) the delivered power falls, as with real
        generators (the Irastorza tutorial clamps its output to 12.85-66.33 V,
        docs/physics.md §3.1). Default: none (any power is delivered).
    kp_W_per_K, ki_W_per_K_s : float
        PI gains of the temperature controller [W/K], [W/(K s)]. Default 0.5 and 0.05:
        tuned here (not from a device) so the sensor holds the set-point within 2 °C on
        uncooled and cooled probes in soft tissue and bone; Kumru et al. 2022 use
        Kp 40, Ki 0.01 and Irastorza Kp 280.78, Ki 0.5 in their own output units
        (docs/physics.md §3.1), which do not transfer.
    sensor_offset : float, optional
        Position of the controlling thermocouple beyond the tip along ``direction`` [m].
        Default 0 (at the tip) for uncooled probes; 1 mm beyond the tip for cooled ones,
        where the tip itself is at the coolant temperature [U: device thermocouple
        positions not retrieved].
    ground : "outer", None or sequence of face names
        Monopolar return: grounded outer faces of the grid (default all of them);
        ignored for bipolar probes (outer faces insulated).
    impedance_cutoff_ohm : float, optional
        Pause when the impedance exceeds this [Ω] (MITA-model: 120 Ω, for liver-sized
        electrodes; docs/physics.md §3.1).
    impedance_rise : float, optional
        Without an absolute cut-off: pause when the impedance exceeds this multiple of its
        lowest value in the phase (default 2, our convention [U]: device rules not
        retrieved). None with no absolute cut-off: never pause.
    pause_s : float
        Power-off time after a cut-off [s] (MITA default 15 s).
    more_probes : sequence of (tip, direction)
        Further probes of the same design on the same generator.
    resolve_tolerance : float
        Re-solve the potential when σ has drifted by more than this since the last
        solve (default 1 %).
    resolve_on : "power" or "max"
        The drift measure: "power" (default) the power-weighted mean relative change of
        σ, to first order the relative change of the conductance between the electrodes,
        so the true power at the held voltage stays within ``resolve_tolerance`` of the
        commanded one; "max" the largest relative change of any voxel (stricter: a few
        voxels passing through the roll-off then force a solve every step).
    min_resolve_interval_s : float
        Re-solve at most this often [s of simulated time] (default 2 s). Voxels held in
        the 100-105 °C roll-off ramp would otherwise force a solve every step; between
        solves the heating keeps its last shape, scaled to the commanded power, so the
        deposited power is always the generator's.
    potential_margin : float or None
        Bipolar only: solve the potential in the electrodes' bounding box grown by this
        much on every side [m] (default 30 mm; the box's faces insulated), not on the
        whole grid. The current of a bipolar probe closes between its own electrodes,
        so little flows far from them. Measured with 7/4/7 mm electrodes against a
        grid 100 mm across, uniform muscle: margin 30 mm, conductance -0.35 % and 1.5 %
        of the heating moved; 20 mm, -1.3 % and 4.8 %; in the L1 vertebra, whose
        cortical shell confines the current, 20 mm gave 0.2 % and 1 %
        (``tests/test_multigrid.py``). None: the whole grid.
    name : str
    """

    kind = "rf"
    summary = "RF electrodes: the electric potential, Joule heat, the generator"
    keys_help = (
        "mode = monopolar | bipolar, tip_mm, direction, active_length_mm,\n"
        "diameter_mm, gap_mm (bipolar), cooled, coolant_C,\n"
        'control = { kind = "power", power_W } or\n'
        '          { kind = "temperature", target_C, max_power_W },\n'
        "more_probes = [{ tip_mm, direction }, ...]"
    )
    extra_keys = ("control", "ground", "more_probes")

    tip: tuple[float, float, float] = param("tip_mm", kind="vector", scale=1e-3)
    direction: tuple[float, float, float] = param("direction", kind="direction")
    active_length: float = param(
        "active_length_mm",
        scale=1e-3,
        gt=0,
        hint="; a zero active length delivers no current, e.g. active_length_mm = 10",
    )
    diameter: float = param("diameter_mm", scale=1e-3, gt=0, hint="; e.g. 1.65 for 16 G")
    mode: str = param("mode", "monopolar", kind="string", choices=_MODES)
    gap: float | None = param("gap_mm", None, scale=1e-3, gt=0)
    cooled: bool = param("cooled", False, kind="bool")
    coolant_C: float = param("coolant_C", 20.0)
    control: str = param("control.kind", "power", kind="string", choices=_CONTROLS)
    power_W: float | None = param("control.power_W", None, gt=0)
    target_C: float | None = param("control.target_C", None)
    max_power_W: float | None = param("control.max_power_W", None, gt=0)
    max_voltage_V: float | None = param("control.max_voltage_V", None, gt=0)
    kp_W_per_K: float = param("control.kp_W_per_K", 0.5, min=0)
    ki_W_per_K_s: float = param("control.ki_W_per_K_s", 0.05, min=0)
    sensor_offset: float | None = param("sensor_offset_mm", None, scale=1e-3)
    ground: Any = "outer"
    impedance_cutoff_ohm: float | None = param("impedance_cutoff_ohm", None, gt=0)
    impedance_rise: float | None = param("impedance_rise", 2.0, gt=1)
    pause_s: float = param("pause_s", IMPEDANCE_PAUSE_S, gt=0)
    more_probes: tuple = ()
    resolve_tolerance: float = param("resolve_tolerance", 0.01, gt=0)
    min_resolve_interval_s: float = param("min_resolve_interval_s", 2.0, min=0)
    resolve_on: str = param("resolve_on", "power", kind="string", choices=("power", "max"))
    potential_margin: float | None = param("potential_margin_mm", 0.03, scale=1e-3, gt=0)
    name: str = param("name", "rf", kind="string")

    def __post_init__(self) -> None:
        self.check()

    def problems(self) -> list[tuple[str, str]]:
        out = []
        if self.mode == "bipolar" and self.gap is None:
            out.append(
                ("gap_mm", "a bipolar probe needs an insulated gap > 0 between its "
                 "electrodes; e.g. gap_mm = 4 (Spinery 7 mm electrodes)")
            )  # fmt: skip
        if self.mode == "monopolar" and self.gap is not None:
            out.append(
                ("gap_mm", 'only a bipolar probe has a gap; remove it or set mode = "bipolar"')
            )
        if self.control == "power":
            if self.power_W is None:
                out.append(("control.power_W", "is required by power control, e.g. power_W = 20"))
            elif self.max_power_W is None:
                object.__setattr__(self, "max_power_W", self.power_W)
            elif self.power_W > self.max_power_W:
                out.append(
                    ("control.power_W", f"{self.power_W:g} W exceeds max_power_W "
                     f"{self.max_power_W:g} W; lower the power or raise the generator limit")
                )  # fmt: skip
        else:
            if self.target_C is None:
                out.append(("control.target_C", "is required by temperature control, e.g. "
                            "target_C = 70 (OsteoCool)"))  # fmt: skip
            elif self.target_C <= BODY_TEMPERATURE_C:
                out.append(
                    ("control.target_C", f"must be above body temperature "
                     f"({BODY_TEMPERATURE_C:g} °C), got {self.target_C:g}; bone RF systems "
                     "run at 70 °C")
                )  # fmt: skip
            if self.max_power_W is None:
                out.append(("control.max_power_W", "is required by temperature control (the "
                            "generator limit), e.g. max_power_W = 20"))  # fmt: skip
        probes, bad = more_probes_problems(self.more_probes)
        out += bad
        object.__setattr__(self, "more_probes", probes)
        if self.mode == "monopolar":
            g = self.ground
            if isinstance(g, str):
                faces = FACE_NAMES if g in ("outer", "all") else (g,)
            else:
                faces = tuple(g or ())
            bad = [f for f in faces if f not in FACE_NAMES]
            if bad or not faces:
                out.append(
                    ("ground", f'must be "outer" or a list of faces from {list(FACE_NAMES)} '
                     f"(the dispersive pad), got {g!r}")
                )  # fmt: skip
            else:
                object.__setattr__(self, "ground", tuple(faces))
        return out

    @classmethod
    def read_extra(cls, table: Table) -> dict[str, Any]:
        out: dict[str, Any] = {}
        bipolar = table.data.get("mode") == "bipolar"
        if not table.has("control"):
            table.error("control", "is required: " + _CONTROL_EXAMPLE)
        if table.has("ground"):
            g = table.raw("ground")
            if bipolar:
                table.error(
                    "ground", "a bipolar probe returns through its own electrode; remove ground"
                )
            else:
                out["ground"] = tuple(g) if isinstance(g, list) else g
        if table.has("potential_margin_mm") and not bipolar:
            table.error(
                "potential_margin_mm",
                "only a bipolar probe's potential is solved in a box; remove it (a monopolar "
                'probe returns through the grid faces) or set mode = "bipolar"',
            )
        out["more_probes"] = read_more_probes(table)
        return out

    # -- what the rest of the package asks ---------------------------------------------
    def needles(self) -> tuple[Needle, ...]:
        # the active part: the electrode, or both electrodes and the gap (bipolar)
        n = 2 if self.mode == "bipolar" else 1
        active = n * self.active_length + (n - 1) * (self.gap or 0.0)
        return tuple(Needle(tuple(t), tuple(d), self.diameter, active) for t, d in self.probes())

    def assumptions(self) -> list[str]:
        return [
            "RF: quasi-static electric potential with sigma(T) rising 1.5 %/K and a "
            "desiccation roll-off at 100-105 °C; no capacitive effects, no electrode "
            "interface impedance, no vapour transport; between re-solves of the "
            "potential the heating keeps its last shape. The needle's metal is not "
            "modelled thermally (its voxels are tissue, or held at the coolant temperature "
            "in a cooled probe)."
        ]

    @classmethod
    def compile_ahead(cls) -> None:
        model = small_model()
        probe = {"tip": (0.0, 0.0, 4e-3), "direction": (0, 0, 1), "diameter": 1.5e-3}
        for src in (
            cls(**probe, active_length=6e-3, control="power", power_W=5.0),
            cls(
                **probe,
                active_length=3e-3,
                mode="bipolar",
                gap=2e-3,
                cooled=True,
                control="temperature",
                target_C=70.0,
                max_power_W=10.0,
                resolve_on="max",
            ),
        ):
            heat_twice(src.bind(model), model)

    # -- geometry -------------------------------------------------------------------------
    def probes(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """(tip, unit direction) of every probe [m]."""
        first = (np.asarray(self.tip), np.asarray(self.direction))
        return (first, *((np.asarray(t), np.asarray(d)) for t, d in self.more_probes))

    def segments(self) -> list[tuple[np.ndarray, np.ndarray, str, int]]:
        """The parts of every probe, ``(proximal end, distal end, role, probe index)``
        [m], role one of "active" (electrode 1), "return" (electrode 2, bipolar), "gap"
        (insulated, between bipolar electrodes), "shaft" (insulated, to beyond the grid)."""
        L, g = self.active_length, self.gap or 0.0
        out = []
        for p, (tip, u) in enumerate(self.probes()):
            back = tip - L * u
            out.append((back, tip, "active", p))
            if self.mode == "bipolar":
                out.append((back - g * u, back, "gap", p))
                out.append((back - (g + L) * u, back - g * u, "return", p))
                back = back - (g + L) * u
            out.append((back - 10.0 * u, back, "shaft", p))
        return out

    def bind(self, model: Model) -> BoundRF:
        """Check the probes against the model, build the electrode geometry and the
        potential system, and return the bound source."""
        return BoundRF(self, model)
