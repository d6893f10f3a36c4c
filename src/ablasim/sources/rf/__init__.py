"""Radiofrequency (RF) ablation: electrodes, the electric potential, σ(T), the generator.

Model (docs/physics.md §3.1) and its validity range:

* Quasi-static conduction at 450–500 kHz: ∇·(σ(T)∇V) = 0, Q = σ|∇V|², solved by
  :mod:`ablasim.solvers.potential` (second-order embedded electrodes, harmonic-mean face
  conductances, Joule heat from the discrete link currents so ∫Q dV = V·I exactly).
  No capacitive effects, no electrode–tissue interface impedance, no vaporisation other
  than the conductivity roll-off below; the probe's metal and plastic are not modelled
  thermally (the needle voxels are tissue, or held at the coolant temperature).
* σ(T) = σ₀ [1 + a (T − 37 °C)] per tissue (library keys ``electrical_conductivity_S_m``,
  ``electrical_conductivity_coeff_per_K``; Irastorza tutorial, MITA-model 1.5 %/K,
  docs/physics.md §1.2). Roll-off (desiccation) with the MITA-model convention: linear drop
  from σ(100 °C) to σ_vap = 10⁻² σ₀ over 100–105 °C, σ_vap above (the nominal value of the
  MITA sensitivity study; its range reaches 10⁻⁴ σ₀). Reversible with temperature.
* Geometry: each probe is a straight needle of ``diameter``; its distal ``active_length``
  is the electrode (monopolar), or two electrodes of ``active_length`` separated by an
  insulated ``gap`` (bipolar, distal one active, proximal one the return, as in bone RF
  probes: Spinery 7 mm / 4 mm gap, docs/physics.md §3.1). The shaft behind the electrodes is
  an insulator up to the edge of the grid. Several probes of one design may share the
  generator (``more_probes``): their active electrodes are in parallel.
* Return path: monopolar – the dispersive pad is modelled as the grounded outer boundary
  of the grid (all faces, or the named ones); bipolar – the proximal electrodes, outer
  faces insulated.
* Internally cooled probes: the voxels inside the electrodes and the gap are held at
  ``coolant_C`` (a fixed wall temperature, one of the two options in docs/physics.md §3.1).
* Generator: constant power (the voltage is set so that the delivered power equals
  ``power_W``) or temperature control (a PI loop on the probe sensor, set-point
  ``target_C``, limited to ``max_power_W``, as bone RF systems run at 70 °C: OsteoCool,
  docs/physics.md §3.1). Impedance-triggered pauses: when the impedance exceeds the cut-off the
  power is off for ``pause_s`` = 15 s (MITA-model default, docs/physics.md §3.1).

The potential is solved once per unit voltage and re-solved only when σ has drifted by
more than ``resolve_tolerance`` (default 1 %: the power-weighted mean relative change of
σ, i.e. to first order the relative change of the electrodes' conductance) since the
last solve, at most every ``min_resolve_interval_s`` (default 2 s); between solves the
heating keeps its shape, scaled to the generator's power (Q ∝ V²), so the power put into
the tissue is exactly the commanded one. The shape is not updated voxel by voxel in the
last solve's field (Q ∝ σ(T)|E|²): that over-feeds hot spots. How close these defaults
stay to solving every step is measured in ``benchmarks/README.md``. The multigrid solver
keeps no set-up between solves (:mod:`ablasim.solvers.multigrid`).

Modules:

* :mod:`.probe` – :class:`RFSource`, the description: its scenario keys and checks, the
  geometry of its needles;
* :mod:`.electrodes` – the probes' parts on the grid (electrode, insulated, cooled
  voxels) and their checks against the model;
* :mod:`.generator` – power or temperature control, impedance pauses, voltage limit;
* :mod:`.bound` – :class:`BoundRF`: electrodes, potential system and generator bound to
  a model, the re-solves, telemetry and checkpoint state.
"""

from __future__ import annotations

from .bound import BoundRF
from .generator import BODY_TEMPERATURE_C, IMPEDANCE_PAUSE_S
from .probe import RFSource

__all__ = ["BODY_TEMPERATURE_C", "IMPEDANCE_PAUSE_S", "BoundRF", "RFSource"]
