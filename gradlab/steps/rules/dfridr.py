"""Ridders' extrapolation of central differences, as Numerical Recipes' dfridr runs it."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.steps.results import FunctionLike, Status, StepResult
from gradlab.steps.rules.search import (
    active_set,
    central_difference,
    result,
    scale,
    setup,
)

__all__ = ["ridders"]


def ridders(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, h0: float | None = None, con: float = 1.4,
    safe: float = 2.0, ntab: int = 10,
) -> StepResult:
    """Ridders' extrapolation of central differences (Numerical Recipes' dfridr).

    Central differences at ``h0 / con**i`` fill the first row of a Neville tableau;
    entry (j, i) extrapolates with factor ``con**(2j)`` (the error of a central
    difference is even in h). After each new step the entry with the least error
    estimate ``max(|a[j,i] - a[j-1,i]|, |a[j,i] - a[j-1,i-1]|)`` so far is kept; the
    search stops when the highest-order entry moves by ``safe`` times that error
    (rounding has taken over) or after ``ntab`` steps. con = 1.4, safe = 2, ntab = 10
    and a large start, by default ``h0 = 0.1 max(1, |x_i|)``.

    Returns the extrapolated derivative in ``approx`` and, as ``h``, the step whose
    difference completed the best entry (the smallest step it uses). Status 4 when J
    was not finite before any estimate.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"central"}
    h0 : float, optional
        Absolute first step.
    con : float
        Step reduction factor, > 1.
    safe : float
        Stop when the error grows by this factor, > 1.
    ntab : int
        Most rows of the tableau, >= 2.

    Returns
    -------
    StepResult
        ``approx``: the derivative estimates; ``info``: ``error`` (dfridr's err),
        ``rows`` (central differences used), ``stopped`` (by the safe test).

    References
    ----------
    C. J. F. Ridders, Accurate computation of F'(x) and F'(x)F''(x), Adv. Eng. Software
    4(2):75-76, 1982. W. H. Press et al., Numerical Recipes, 2nd ed., §5.7, 1992.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import ridders
    >>> res = ridders(lambda x: np.sum(np.exp(x)), np.zeros(2))
    >>> bool(np.all(np.abs(res.approx - 1) < 1e-12)), res.status.tolist()
    (True, [0, 0])
    """
    con = validation.greater("con", con, 1)
    safe = validation.greater("safe", safe, 1)
    if h0 is not None:
        h0 = validation.positive("h0", h0)
    ntab = validation.integer("ntab", ntab, 2)
    cf, sch = setup("ridders", f, theta, format, scheme, ("central",))
    n = cf.n
    con2 = con * con
    hh = 0.1 * scale(cf) if h0 is None else np.full(n, h0)
    a = np.full((n, ntab, ntab), np.nan)  # dfridr's tableau, a[coord, order j, step i]
    a[:, 0, 0] = central_difference(cf, np.arange(n), hh)
    err = np.full(n, np.inf)
    ans = np.full(n, np.nan)
    best_h = hh.copy()
    stopped = np.zeros(n, dtype=bool)

    def trial(idx: np.ndarray, it: int) -> np.ndarray:
        """Column i = it + 1: a central difference at h / con, extrapolated up to order i."""
        i = it + 1
        hh[idx] /= con
        a[idx, 0, i] = central_difference(cf, idx, hh[idx])
        fac = con2
        for j in range(1, i + 1):
            a[idx, j, i] = (a[idx, j - 1, i] * fac - a[idx, j - 1, i - 1]) / (fac - 1)
            fac *= con2
            errt = np.maximum(np.abs(a[idx, j, i] - a[idx, j - 1, i]),
                              np.abs(a[idx, j, i] - a[idx, j - 1, i - 1]))
            better = errt <= err[idx]
            k = idx[better]
            err[k], ans[k], best_h[k] = errt[better], a[k, j, i], hh[k]
        grew = np.abs(a[idx, i, i] - a[idx, i - 1, i - 1]) >= safe * err[idx]
        stopped[idx[grew]] = True
        return grew | ~np.isfinite(a[idx, 0, i])

    _, iters = active_set(np.isfinite(a[:, 0, 0]), ntab - 1, trial)
    status = np.full(n, Status.SUCCESS)
    none = ~np.isfinite(ans)
    status[none] = Status.NONFINITE
    best_h[none] = hh[none]  # no estimate: the last step tried
    return result("ridders", cf, sch, best_h, status, {
        "error": err, "rows": 1 + iters, "stopped": stopped, "con": con, "safe": safe,
        "scheme_note": "central differences with Richardson extrapolation; h is the best entry's step",
    }, approx=ans)
