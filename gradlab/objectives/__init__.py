"""Built-in objectives: the seed network and families for the scaling studies."""

from gradlab.objectives.families import (
    logistic_regression,
    mlp,
    quadratic,
    smooth_sum,
    softmax_regression,
)
from gradlab.objectives.seed import seed_net

__all__ = [
    "logistic_regression",
    "mlp",
    "quadratic",
    "seed_net",
    "smooth_sum",
    "softmax_regression",
]
