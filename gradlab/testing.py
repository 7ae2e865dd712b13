"""Gradient assertions for test suites: :func:`assert_gradient` fails with the components, the
tolerances and why, where a bare ``assert check(...).passed`` would say only "False"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic.objective import Objective
from gradlab.checking.check import CheckResult, check

__all__ = ["GradientAssertionError", "assert_gradient"]


class GradientAssertionError(AssertionError):
    """A gradient that failed :func:`assert_gradient`; ``result`` holds the whole check."""

    def __init__(self, message: str, result: CheckResult) -> None:
        super().__init__(message)
        self.result = result


def _offending(res: CheckResult, max_listed: int) -> list[str]:
    rep = res.report
    kind = rep.columns[0]  # "coord" or "direction"
    bad = rep[rep.status == "fail"].assign(ratio=lambda d: d.error / d.bound)
    bad = bad.sort_values("ratio", ascending=False)
    lines = [f"  {kind} {int(r[kind])}: gradient {r.expected:.6g}, finite difference {r.approx:.6g} "
             f"(step {r.h:.3g}, in {r.format}), |error| {r.error:.3g} > tolerance {r.bound:.3g} "
             f"({r.ratio:.3g} times)" for _, r in bad.head(max_listed).iterrows()]
    if len(bad) > max_listed:
        lines.append(f"  ... and {len(bad) - max_listed} more")
    return lines


def assert_gradient(
    f: Objective | Callable[[np.ndarray], Any],
    grad: Any = None,
    theta: Any = None,
    format: fmts.Format | str = "float64",
    *,
    scheme: schs.Scheme | str = "central",
    mode: str = "full",
    false_alarm: float = 1e-3,
    reference_format: fmts.Format | str | None = "auto",
    max_listed: int = 10,
    **kwargs: Any,
) -> CheckResult:
    """Assert that ``grad`` is ``f``'s gradient at ``theta`` in ``format`` (:func:`gradlab.check`).

    Parameters
    ----------
    f, grad, theta, format, scheme, mode, false_alarm, reference_format, **kwargs
        As for :func:`gradlab.check`.
    max_listed : int
        Failing components (or directions) listed in the message, worst first.

    Returns
    -------
    CheckResult
        When the check passes.

    Raises
    ------
    GradientAssertionError
        (an AssertionError) when a component fails, naming each with its gradient, finite
        difference, step, error and tolerance, and what the tolerance is made of; or when the
        check could decide nothing, saying why.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.testing import assert_gradient
    >>> f = lambda x: np.sum(np.sin(x))
    >>> _ = assert_gradient(f, np.cos, theta=np.linspace(0.1, 1.0, 5))
    >>> assert_gradient(f, lambda x: np.cos(x) * 1.1, theta=np.linspace(0.1, 1.0, 5))
    Traceback (most recent call last):
    ...
    gradlab.testing.GradientAssertionError: gradient check FAILED in float64 (central, full): ...
    """
    res = check(f, grad, theta, format=format, scheme=scheme, mode=mode, false_alarm=false_alarm,
                reference_format=reference_format, **kwargs)
    if res.passed:
        return res
    why = (f"the tolerance of each row is z = {res.z:.3g} (a false-alarm probability of "
           f"{res.false_alarm:g} over all rows) times the finite difference's rounding, from J's "
           f"noise {res.noise:.3g}, plus the gradient's own rounding and twice the truncation")
    where = res.format if res.reference_format in ("", res.format) else (
        f"{res.format} (finite differences in {res.reference_format})")
    if not res.decided:
        raise GradientAssertionError(
            f"gradient check UNDECIDED in {where}: no component could be resolved, so the "
            f"gradient is neither confirmed nor refuted ({res}). {why}; a tolerance at or above "
            "a component's size resolves nothing: try a wider reference_format, or float64",
            res)
    lines = _offending(res, max_listed)
    n_fail = int((res.report.status == "fail").sum())
    raise GradientAssertionError(
        f"gradient check FAILED in {where} ({res.scheme}, {res.mode}): {n_fail} of "
        f"{len(res.report)} rows outside their tolerance:\n" + "\n".join(lines) + f"\n{why}.",
        res)
