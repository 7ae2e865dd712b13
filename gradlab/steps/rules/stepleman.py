"""Stepleman & Winarsky (1979): shrink the central-difference step until successive
differences stop decreasing."""

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

__all__ = ["stepleman_winarsky"]


def stepleman_winarsky(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, h0: float | None = None, beta: float = 4.0,
    maxiter: int = 40,
) -> StepResult:
    """Shrink the central-difference step until successive differences stop decreasing.

    Stepleman & Winarsky (1979): with ``h_k = h0 / beta**k`` and central differences
    ``D_k``, the differences ``|D_k - D_{k-1}|`` fall like ``beta**-2k`` while
    truncation dominates and grow once rounding takes over. Stop at the first k with
    ``|D_k - D_{k-1}| >= |D_{k-1} - D_{k-2}|`` and return ``h_{k-1}``, the last
    step before the noise. The start must lie where truncation dominates; the default
    ``h0 = 0.1 max(1, |x_i|)``.

    Status 5 when every difference was zero up to the stop (no truncation seen),
    1 when the step fell below the format's spacing of theta_i (or ``maxiter``) without
    a stop, 4 when J was not finite. Central differences only.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"central"}
    h0 : float, optional
        Absolute first step; default ``0.1 max(1, |theta_i|)``.
    beta : float
        Reduction factor, > 1 (4 is the usual choice).
    maxiter : int
        Most reductions.

    Returns
    -------
    StepResult
        ``info``: ``iterations``, ``derivative`` (D at the returned step).

    References
    ----------
    R. S. Stepleman and N. D. Winarsky, Adaptive numerical differentiation, Math. Comp.
    33(148):1257-1264, 1979.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import stepleman_winarsky
    >>> res = stepleman_winarsky(lambda x: np.sum(np.exp(x)), np.zeros(2))
    >>> bool(1e-7 < res.h[0] < 1e-4), res.status.tolist()
    (True, [0, 0])
    """
    beta = validation.greater("beta", beta, 1)
    if h0 is not None:
        h0 = validation.positive("h0", h0)
    itmax = validation.integer("maxiter", maxiter, 2)
    cf, sch = setup("stepleman_winarsky", f, theta, format, scheme, ("central",))
    s = scale(cf)
    start = 0.1 * s if h0 is None else np.full(cf.n, h0)
    floor = 2 * cf.fmt.eps * s
    everything = np.arange(cf.n)
    d_prev = central_difference(cf, everything, start)  # D_0
    h_cur = start / beta
    d_cur = central_difference(cf, everything, h_cur)  # D_1
    gap = np.abs(d_cur - d_prev)
    seen = gap > 0  # some truncation was measured
    out_h, out_d = h_cur.copy(), d_cur.copy()
    status = np.full(cf.n, Status.SUCCESS)
    bad = ~np.isfinite(d_cur)
    status[bad] = Status.NONFINITE
    out_h[bad], out_d[bad] = start[bad], d_prev[bad]

    def trial(idx: np.ndarray, it: int) -> np.ndarray:
        """D_k at h_{k-1} / beta; stop where |D_k - D_{k-1}| stops falling."""
        h_new = h_cur[idx] / beta
        d_new = central_difference(cf, idx, h_new)
        gap_new = np.abs(d_new - d_cur[idx])
        nonfinite = ~np.isfinite(d_new)
        stop = ~nonfinite & (gap_new >= gap[idx])
        tiny = ~stop & ~nonfinite & (h_new < floor[idx])
        for mask, code in ((stop, Status.SUCCESS), (nonfinite, Status.NONFINITE),
                           (tiny, Status.ITERATION_LIMIT)):
            j = idx[mask]
            out_h[j], out_d[j], status[j] = h_cur[j], d_cur[j], code
        status[idx[stop & ~seen[idx]]] = Status.TRUNCATION_NOT_DETECTED
        h_cur[idx], d_cur[idx], gap[idx] = h_new, d_new, gap_new
        seen[idx] |= gap_new > 0
        return stop | nonfinite | tiny

    unfinished, iters = active_set(~bad, itmax - 1, trial)
    j = np.flatnonzero(unfinished)
    out_h[j], out_d[j], status[j] = h_cur[j], d_cur[j], Status.ITERATION_LIMIT
    return result("stepleman_winarsky", cf, sch, out_h, status, {
        "iterations": 1 + iters, "derivative": out_d, "beta": beta,
        "scheme_note": "central differences",
    })
