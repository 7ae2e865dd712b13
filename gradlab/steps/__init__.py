"""Step selection: one result type for every rule, the error-model predictor
:func:`optimal_step`, the oracle, the rules from the literature (:mod:`gradlab.steps.rules`)
and the peers' tools (:mod:`gradlab.steps.peers`).

Every rule is a :class:`~gradlab.steps.results.StepRule`, ``rule(f, theta,
format="float64", scheme="central", **options) -> StepResult``, where ``f`` is a
:class:`gradlab.Objective` or a plain callable on arrays that keeps the input dtype. Rules see J only through
:class:`gradlab.arithmetic.coordinate.CoordinateFunction`, which evaluates in the
format and counts evaluations, so every rule's cost is measured the same way.
"""

from gradlab.steps.estimator import GradientResult, gradient
from gradlab.steps.grid_oracle import Oracle, oracle
from gradlab.steps.optimal import OptimalStep, optimal_step
from gradlab.steps.results import STATUS, Status, StepResult, StepRule

__all__ = ["STATUS", "GradientResult", "OptimalStep", "Oracle", "Status", "StepResult", "StepRule",
           "gradient", "optimal_step",
           "oracle"]
