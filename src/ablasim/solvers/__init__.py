"""Numerical kernels: the enthalpy Pennes step (with its damage rows), boundary ghost
layers, stability limits, and the :class:`Stepper` a simulation applies every step.

The solvers import neither plotting nor I/O libraries; they work on plain arrays.
"""

from ._jit import jit, prange
from .boundary import FACE_NAMES, Boundary, FaceCondition, fill_ghosts, fill_ghosts_copy
from .fused import (
    accumulate_damage,
    fast_exp,
    pennes_damage_step,
    redo_damage,
    row_bounds,
    save_voxels,
)
from .isotherms import isotherm_stats
from .pennes import (
    PHASE_COLUMNS,
    enthalpy,
    enthalpy_numpy,
    frozen_conductivity,
    frozen_fraction,
    pennes_step,
    pennes_step_numpy,
    stable_dt,
    temperature_from_enthalpy,
    temperature_from_enthalpy_numpy,
)
from .stepper import Materials, Stepper, padded_index, warm_up
from .superstep import rkl2_coefficients, rkl2_stage, rkl2_stages

__all__ = [
    "FACE_NAMES",
    "PHASE_COLUMNS",
    "Boundary",
    "FaceCondition",
    "Materials",
    "Stepper",
    "accumulate_damage",
    "enthalpy",
    "enthalpy_numpy",
    "fast_exp",
    "fill_ghosts",
    "fill_ghosts_copy",
    "frozen_conductivity",
    "frozen_fraction",
    "isotherm_stats",
    "jit",
    "padded_index",
    "pennes_damage_step",
    "pennes_step",
    "pennes_step_numpy",
    "prange",
    "redo_damage",
    "rkl2_coefficients",
    "rkl2_stage",
    "rkl2_stages",
    "row_bounds",
    "save_voxels",
    "stable_dt",
    "temperature_from_enthalpy",
    "temperature_from_enthalpy_numpy",
    "warm_up",
]
