"""The classic exercise's gradient check, reproduced in any format."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from gradlab.analysis.engine import fd_gradient
from gradlab.analysis.exact import exact
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import validation as validate
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.arithmetic.objective import Objective, call_grad, fp_events

__all__ = ["ExerciseCheck", "exercise_check"]


@dataclass(frozen=True)
class ExerciseCheck:
    """One run of the exercise's check.

    Attributes
    ----------
    difference : float
        The exercise's E = ||grad - gradapprox|| / (||grad|| + ||gradapprox||),
        with grad the objective's own (backprop) gradient evaluated in the format.
    passed : bool
        ``difference < threshold`` (the exercise prints "works perfectly").
    e_fd_vs_exact : float
        The same E with the exact gradient in place of backprop: the FD error alone.
    e_backprop_vs_exact : float
        E between backprop in the format and the exact gradient: backprop's own error.
    """

    objective: str
    format: str
    epsilon: float
    threshold: float
    difference: float
    passed: bool
    e_fd_vs_exact: float
    e_backprop_vs_exact: float
    n_nonfinite: int

    def as_row(self) -> dict[str, object]:
        """The result as a flat dict (a table row)."""
        return asdict(self)


def _e(a: np.ndarray, b: np.ndarray) -> float:
    num = float(np.linalg.norm(a - b))
    den = float(np.linalg.norm(a) + np.linalg.norm(b))
    if not np.isfinite(num) or not np.isfinite(den):
        return float("inf")
    return num / den if den > 0 else (0.0 if num == 0 else float("inf"))


def exercise_check(
    obj: Objective,
    format: fmts.Format | str = "float64",
    epsilon: float = 1e-7,
    threshold: float = 2e-7,
    grad: np.ndarray | None = None,
) -> ExerciseCheck:
    """The exercise's ``gradient_check_n``: central differences at ``epsilon``, every
    operation in the format, compared with a gradient by E < threshold.

    Parameters
    ----------
    grad : ndarray, optional
        The gradient to check (float64 values at theta0 rounded to the format);
        by default the objective's own (backprop) gradient evaluated in the format.

    Examples
    --------
    >>> import gradlab as gl
    >>> gl.exercise_check(gl.objectives.seed_net()).passed
    True
    """
    obj = validate.objective("obj", obj)
    if grad is None and obj.grad is None:
        raise ValueError(f"objective {obj.name!r} has no gradient to check (grad=None)")
    epsilon = validate.positive("epsilon", epsilon)
    threshold = validate.positive("threshold", threshold)
    fmt = validate.one_format("format", format)
    if grad is not None:
        grad = validate.real_vector("grad", grad)
        if grad.shape != (obj.n_params,):
            raise ValueError(f"grad must have shape ({obj.n_params},) like theta0, got {grad.shape}")
    if fmt.dtype is None:
        raise ValueError("the exercise's check runs in hardware formats only")
    # thetaplus/thetaminus, J, (J+ - J-) / (2 eps): the engine's central quotient in the format
    approx = fd_gradient(obj, fmt, "central", epsilon)
    if grad is None:
        assert obj.grad is not None  # checked above
        ns = namespace_for(fmt)
        with fp_events():
            grad = call_grad(obj, fmts.round_array(obj.theta0, fmt), ns)
    checked = np.asarray(grad).astype(np.float64)
    # the reference differentiates J itself: the objective's own grad may be what is checked
    reference = exact(replace(obj, grad=None), fmt, digits=30, orders=())
    g = np.array([float(v) for v in reference.grad])
    diff = _e(checked, approx)
    return ExerciseCheck(
        objective=obj.name,
        format=fmt.name,
        epsilon=float(epsilon),
        threshold=float(threshold),
        difference=diff,
        passed=bool(diff < threshold),
        e_fd_vs_exact=_e(g, approx),
        e_backprop_vs_exact=_e(g, checked),
        n_nonfinite=int((~np.isfinite(approx)).sum()),
    )
