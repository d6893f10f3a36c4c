"""Numerical kernels: the enthalpy Pennes step, boundary ghost layers, stability limits.

The solvers import neither plotting nor I/O libraries; they work on plain arrays.
"""

from .boundary import FACE_NAMES, Boundary, FaceCondition, fill_ghosts, fill_ghosts_copy
from .pennes import (
    PHASE_COLUMNS,
    enthalpy,
    enthalpy_numpy,
    pennes_step,
    pennes_step_numpy,
    stable_dt,
    temperature_from_enthalpy,
    temperature_from_enthalpy_numpy,
)

__all__ = [
    "FACE_NAMES",
    "PHASE_COLUMNS",
    "Boundary",
    "FaceCondition",
    "enthalpy",
    "enthalpy_numpy",
    "fill_ghosts",
    "fill_ghosts_copy",
    "pennes_step",
    "pennes_step_numpy",
    "stable_dt",
    "temperature_from_enthalpy",
    "temperature_from_enthalpy_numpy",
]
