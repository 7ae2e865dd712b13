"""gradlab: the numerical analysis of finite-difference gradients.

The library is layered; data flows one way, down this list (``docs/design.md``):
:mod:`gradlab.arithmetic` -> :mod:`gradlab.objectives` -> :mod:`gradlab.analysis` ->
:mod:`gradlab.steps` -> :mod:`gradlab.checking` -> :mod:`gradlab.sweeps` ->
:mod:`gradlab.reporting`. This module re-exports the public API.
"""

from gradlab import objectives
from gradlab._version import __version__
from gradlab.analysis.attribution import AttributionResult, attribute_noise
from gradlab.analysis.enclosure import Enclosure, enclose
from gradlab.analysis.engine import fd_errors
from gradlab.analysis.exact import ExactResult, exact
from gradlab.analysis.noise import NoiseResult, noise_level
from gradlab.analysis.summary import summarize
from gradlab.arithmetic import formats, schemes
from gradlab.arithmetic.objective import Objective
from gradlab.checking import adapters
from gradlab.checking.check import CheckResult, check
from gradlab.checking.exercise import ExerciseCheck, exercise_check
from gradlab.checking.jacobian import JacobianCheckResult, check_jacobian
from gradlab.steps import OptimalStep, StepResult, optimal_step
from gradlab.steps.estimator import GradientResult, gradient
from gradlab.sweeps import fits, scaling
from gradlab.sweeps import runner as sweep

__all__ = [
    "AttributionResult",
    "CheckResult",
    "Enclosure",
    "ExactResult",
    "ExerciseCheck",
    "GradientResult",
    "JacobianCheckResult",
    "NoiseResult",
    "Objective",
    "OptimalStep",
    "StepResult",
    "__version__",
    "adapters",
    "attribute_noise",
    "check",
    "check_jacobian",
    "enclose",
    "exact",
    "exercise_check",
    "fd_errors",
    "fits",
    "formats",
    "gradient",
    "noise_level",
    "objectives",
    "optimal_step",
    "scaling",
    "schemes",
    "summarize",
    "sweep",
]
