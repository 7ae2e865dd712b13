"""gradlab: the numerical analysis of finite-difference gradients."""

from gradlab import adapters, fits, formats, objectives, scaling, schemes, sweep
from gradlab.attribution import AttributionResult, attribute_noise
from gradlab.check import CheckResult, check
from gradlab.engine import fd_errors
from gradlab.exact import ExactResult, exact
from gradlab.exercise import ExerciseCheck, exercise_check
from gradlab.noise import NoiseResult, noise_level
from gradlab.objective import Objective
from gradlab.steps import OptimalStep, StepResult, optimal_step
from gradlab.summary import summarize

__all__ = [
    "AttributionResult",
    "CheckResult",
    "ExactResult",
    "ExerciseCheck",
    "NoiseResult",
    "Objective",
    "OptimalStep",
    "StepResult",
    "adapters",
    "attribute_noise",
    "check",
    "exact",
    "exercise_check",
    "fd_errors",
    "fits",
    "formats",
    "noise_level",
    "objectives",
    "optimal_step",
    "scaling",
    "schemes",
    "summarize",
    "sweep",
]
__version__ = "0.1.0"
