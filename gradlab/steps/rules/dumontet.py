"""Dumontet & Vignes (1977): the central-difference step from a third derivative
estimated together with its error bounds."""

from __future__ import annotations

from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.steps.results import FunctionLike, Status, StepResult
from gradlab.steps.rules.search import (
    LogBracket,
    NoiseSpec,
    active_set,
    divided,
    eps_rel,
    probe,
    result,
    scale,
    setup_noisy,
)

__all__ = ["dumontet_vignes"]


def dumontet_vignes(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, noise: NoiseSpec = "ecnoise", maxiter: int = 30,
    n_lines: int = 2, nf: int = 9, seed: int = 0,
) -> StepResult:
    """Central-difference step from a third derivative estimated with error bounds.

    Dumontet & Vignes (1977): estimate f''' by the four-point formula
    ``(f(x+2k) - 2 f(x+k) + 2 f(x-k) - f(x-2k)) / (2 k**3)`` together with the
    bounds f'''_inf, f'''_sup it takes when every value errs by at most eps_f, and
    search k until the ratio ``L = f'''_sup / f'''_inf`` lies in [1/15, 1/2] or
    [2, 15] (the rounding error is a sizeable but minor part of the estimate);
    L in (1/2, 2) means k is too large, anything else too small. Then
    ``h = (3 eps_f / |f'''|)**(1/3)``, the central-difference optimum.

    The search starts from the well-scaled guess ``(eps_f/|J|)**(1/3) max(1,|x_i|)``,
    moves by factors of 4 until k is bracketed, then bisects in log scale (the paper
    bisects a given bracket); k stays in [4 eps max(1,|x_i|), max(1,|x_i|)]
    (:class:`~gradlab.steps.rules.search.LogBracket`). Status 1 when ``maxiter`` ran
    out, 5 when no truncation was found up to the largest k, 2 when k was still too
    large at the smallest; the fallback step uses the last f''' estimate or, if that is
    below its own error bound, the bound.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"central"}
    noise : "ecnoise", "roundoff" or float
        eps_f (the paper's relative precision of f times |f|).
    maxiter : int
    n_lines, nf, seed
        The ECnoise sample.

    Returns
    -------
    StepResult
        ``info``: ``noise``, ``noise_source``, ``third`` (f'''), ``k``, ``ratio`` (L),
        ``iterations``.

    References
    ----------
    J. Dumontet and J. Vignes, Détermination du pas optimal dans le calcul des dérivées
    sur ordinateur, RAIRO Analyse numérique 11(1):13-25, 1977.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import dumontet_vignes
    >>> res = dumontet_vignes(lambda x: np.sum(np.exp(x)), np.zeros(1), noise=1e-12)
    >>> bool(abs(res.h[0] / (3e-12) ** (1 / 3) - 1) < 0.1), res.status.tolist()
    (True, [0])
    """
    itmax = validation.integer("maxiter", maxiter, 1)
    cf, sch, f0, level = setup_noisy("dumontet_vignes", f, theta, format, scheme, ("central",),
                                     noise, n_lines, nf, seed)
    n, s, eps_f = cf.n, scale(cf), level.eps
    k = LogBracket(eps_rel(eps_f, f0) ** (1 / 3) * s, 4 * cf.fmt.eps * s, s, 4.0)
    third, bound, ratio, kept = (np.full(n, np.nan) for _ in range(4))
    status = np.full(n, Status.ITERATION_LIMIT)

    def trial(idx: np.ndarray, it: int) -> np.ndarray:
        """f''' and its bounds from -2k, -k, k, 2k; the verdict on k from L."""
        kk = k.step[idx]
        vals, offs = probe(cf, idx, kk, (-2, -1, 1, 2))
        dd, gain = divided(offs, vals)
        f3, err = 6 * dd, 6 * eps_f * gain
        f3inf, f3sup = f3 - err, f3 + err
        with np.errstate(divide="ignore", invalid="ignore"):
            L = np.where(f3inf != 0, f3sup / f3inf, np.inf)
        finite = np.all(np.isfinite(vals), axis=1)
        measured = finite & np.isfinite(dd)  # not collapsed onto fewer points by the format
        ok = measured & (((L >= 1 / 15) & (L <= 0.5)) | ((L >= 2) & (L <= 15)))
        too_large = (measured & (L > 0.5) & (L < 2)) | ~finite
        has = np.isfinite(f3)
        j = idx[has]
        third[j], bound[j], ratio[j], kept[j] = f3[has], err[has], L[has], kk[has]
        status[idx[ok]] = Status.SUCCESS
        moves = k.move(idx, ~ok & ~too_large, too_large)
        status[idx[moves.at_ceiling]] = Status.TRUNCATION_NOT_DETECTED
        status[idx[moves.at_floor]] = Status.NO_ACCEPTABLE_STEP
        return ok | moves.at_ceiling | moves.at_floor

    _, iters = active_set(np.ones(n, dtype=bool), itmax, trial)
    with np.errstate(divide="ignore"):
        h = (3 * eps_f / np.abs(third)) ** (1 / 3)
        fallback = np.minimum((3 * eps_f / np.fmax(np.abs(third), bound)) ** (1 / 3), s)
    h = np.where(status == Status.SUCCESS, h, fallback)
    h = np.where(np.isfinite(h) & (h > 0), h, s)
    level.flag(status)
    return result("dumontet_vignes", cf, sch, h, status, {
        **level.info(), "third": third, "k": kept, "ratio": ratio,
        "iterations": iters, "scheme_note": "central differences",
    })
