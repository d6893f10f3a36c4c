"""The RF generator: constant power or temperature control, impedance pauses, voltage limit.

* Power control: the voltage is set so that the delivered power equals ``power_W``.
* Temperature control: a PI loop on the probe sensor, set-point ``target_C``, limited to
  ``max_power_W``, as bone RF systems run at 70 °C (OsteoCool, docs/physics.md §3.1); the
  integral is frozen while it would push further into a limit (conditional integration,
  anti-windup).
* Impedance-triggered pauses: when the impedance exceeds the cut-off (an absolute
  ``impedance_cutoff_ohm``, or else ``impedance_rise`` times its lowest value so far) the
  power is off for ``pause_s`` (MITA-model default 15 s, docs/physics.md §3.1).
* Voltage limit: with ``max_voltage_V`` the power is at most ``V_max² / Z``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BODY_TEMPERATURE_C", "IMPEDANCE_PAUSE_S", "Generator"]

#: Set-points at or below this are refused (a heating generator cannot hold them) [°C].
BODY_TEMPERATURE_C = 37.0
#: Power-off time after an impedance cut-off (MITA-model default, docs/physics.md §3.1) [s].
IMPEDANCE_PAUSE_S = 15.0


@dataclass(kw_only=True, eq=False)
class Generator:
    """The generator's settings (those of :class:`~ablasim.sources.rf.RFSource`, same
    names, units and meaning, all given: its defaults apply) and its state: the
    controller's integral, the pauses, the last power.

    Call :meth:`power_at` once per step, in time order, with the conductance of the
    electrodes at 1 V and the probe sensor's temperature.
    """

    control: str
    power_W: float | None
    target_C: float | None
    max_power_W: float | None
    max_voltage_V: float | None
    kp_W_per_K: float
    ki_W_per_K_s: float
    impedance_cutoff_ohm: float | None
    impedance_rise: float | None
    pause_s: float
    #: Integral of the set-point error [K s].
    integral: float = field(default=0.0, init=False)
    #: The power is off until this time [s].
    paused_until: float = field(default=-math.inf, init=False)
    #: Lowest impedance seen outside pauses [Ω].
    z_min: float = field(default=math.inf, init=False)
    #: The last power returned [W].
    power: float = field(default=0.0, init=False)
    #: Number of impedance cut-offs so far.
    pauses: int = field(default=0, init=False)
    #: One entry per impedance cut-off: ``(t [s], impedance [Ω], limit [Ω])``.
    pause_log: list = field(default_factory=list, init=False)

    def power_at(self, t: float, *, dt: float, conductance: float, sensor_C: float) -> float:
        """The power [W] at time ``t`` [s], ``dt`` [s] after the previous call, with the
        electrodes' ``conductance`` at 1 V [S] and the probe sensor at ``sensor_C``."""
        z = 1.0 / conductance
        # impedance-triggered pause
        paused = t < self.paused_until
        if not paused:
            self.z_min = min(self.z_min, z)
            limit = self.impedance_cutoff_ohm
            if limit is None and self.impedance_rise is not None:
                limit = self.impedance_rise * self.z_min
            if limit is not None and z > limit:
                self.paused_until = t + self.pause_s
                self.pauses += 1
                self.pause_log.append([t, z, limit])
                paused = True
        # the generator's voltage limit caps the power at V_max^2 G
        v_cap = math.inf if self.max_voltage_V is None else self.max_voltage_V**2 * conductance
        if paused:
            p = 0.0
        elif self.control == "power":
            p = min(self.power_W, v_cap)
        else:
            e = self.target_C - sensor_C
            p_max = min(self.max_power_W, v_cap)
            trial = self.kp_W_per_K * e + self.ki_W_per_K_s * (self.integral + e * dt)
            # conditional integration (anti-windup): integrate unless it pushes further
            # into the power limit
            if not ((trial >= p_max and e > 0) or (trial <= 0 and e < 0)):
                self.integral += e * dt
            p = self.kp_W_per_K * e + self.ki_W_per_K_s * self.integral
            p = min(max(p, 0.0), p_max)
        self.power = p
        return p

    def state(self) -> dict[str, Any]:
        """The controller's and the pauses' state (JSON-able)."""
        return {
            "integral": self.integral,
            "paused_until": self.paused_until,
            "z_min": self.z_min,
            "power": self.power,
            "pauses": self.pauses,
            "pause_log": [list(e) for e in self.pause_log],
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Continue from :meth:`state` exactly where it was."""
        self.integral = float(state["integral"])
        self.paused_until = float(state["paused_until"])
        self.z_min = float(state["z_min"])
        self.power = float(state["power"])
        self.pauses = int(state["pauses"])
        self.pause_log = [[float(x) for x in e] for e in state.get("pause_log", [])]

    def events(self, source: str) -> list[dict[str, Any]]:
        """One ``generator_pause`` event per impedance cut-off (times since the phase
        start [s]; see :meth:`ablasim.sources.base.BoundSource.events`)."""
        return [
            {
                "time_s": t,
                "kind": "generator_pause",
                "source": source,
                "detail": (
                    f"impedance {z:.0f} Ω above the cut-off {limit:.0f} Ω: power off for "
                    f"{self.pause_s:g} s"
                ),
                "pause_s": self.pause_s,
                "impedance_ohm": z,
            }
            for t, z, limit in self.pause_log
        ]
