"""ablasim: heat in the body during percutaneous treatment of bone metastases.

The Pennes bioheat equation (in enthalpy form: freezing and boiling) on a 3D voxel grid
of labelled tissues, with RF, microwave, cryoablation, bone-cement and volumetric heat
sources and protective CO₂ or saline layers, alone or combined in one plan, and a
nerve-safety report.

Quick start (a uniformly heated sphere in perfused muscle)::

    import ablasim as ab
    grid = ab.Grid.from_extent(0.06, 0.001)                 # 60 mm cube, 1 mm voxels
    model = ab.Model.uniform(grid, "muscle")
    heat = ab.VolumetricSource.sphere((0, 0, 0), 0.005, power_density_W_m3=1e6)
    result = ab.simulate(model, [ab.Phase("heat", 1800, [heat])])
    print(result.temperature_at([(0, 0, 0), (0.01, 0, 0)]))

SI units in the Python API (m, s, W, °C); scenario files use mm, s, W, °C with the unit in
the key name.
"""

from .anatomy import Phantom, Structure, make_phantom
from .damage import PerfusionShutdown
from .errors import AblasimError, ScenarioError, SimulationError, StabilityError
from .grid import Grid
from .model import Model
from .protocol import Limits, Phase, Thermocouple
from .result import PhaseSummary, Result
from .simulation import simulate
from .solvers import Boundary, FaceCondition
from .sources import (
    CementSource,
    CryoSource,
    MicrowaveSource,
    ProtectionSource,
    RFSource,
    Source,
    VolumetricSource,
)
from .tissues import TissueLibrary

__version__ = "0.1.0"

__all__ = [
    "AblasimError",
    "Boundary",
    "CementSource",
    "CryoSource",
    "FaceCondition",
    "Grid",
    "Limits",
    "MicrowaveSource",
    "Model",
    "PerfusionShutdown",
    "Phantom",
    "Phase",
    "PhaseSummary",
    "ProtectionSource",
    "RFSource",
    "Result",
    "ScenarioError",
    "SimulationError",
    "Source",
    "StabilityError",
    "Structure",
    "Thermocouple",
    "TissueLibrary",
    "VolumetricSource",
    "__version__",
    "make_phantom",
    "simulate",
]
