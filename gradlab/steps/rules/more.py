"""Moré & Wild (2012): the step from the noise level and a second (or, for central
differences, third) difference accepted by two tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.steps.results import FunctionLike, Status, StepResult
from gradlab.steps.rules.search import (
    ONE_SIDED,
    NoiseSpec,
    divided,
    eps_rel,
    probe,
    result,
    scale,
    setup_noisy,
)

__all__ = ["more_wild", "more_wild_central"]


def _more_wild(
    rule: str, order: int, f: FunctionLike, theta: Any, format: fmts.Format | str,
    scheme: schs.Scheme | str, allowed: tuple[str, ...], noise: Any, tau1: Any, tau2: Any,
    n_lines: Any, nf: Any, seed: Any,
) -> StepResult:
    """Shared body of :func:`more_wild` (order 2) and :func:`more_wild_central` (order 3)."""
    tau1, tau2 = validation.positive("tau1", tau1), validation.positive("tau2", tau2)
    cf, sch, f0, level = setup_noisy(rule, f, theta, format, scheme, allowed, noise, n_lines, nf, seed)
    n, s, eps_f = cf.n, scale(cf), level.eps
    ks = (-1, 1) if order == 2 else (-2, -1, 1, 2)
    unit = 1.0 if order == 2 else 2.0  # Delta = unit h**order |f^(order)|

    def trial(idx: np.ndarray, hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The derivative estimate mu and the acceptance of the tests, for coordinates idx."""
        vals, offs = probe(cf, idx, hh, ks)
        if order == 2:  # -h, 0, h
            dd, _ = divided(np.column_stack([offs[:, :1], np.zeros(idx.size), offs[:, 1:]]),
                             np.column_stack([vals[:, :1], np.full(idx.size, f0), vals[:, 1:]]))
        else:  # -2h, -h, h, 2h; f(x) enters the tau2 test only
            dd, _ = divided(offs, vals)
        mu = math.factorial(order) * dd
        h_eff = (offs[:, -1] - offs[:, 0]) / (ks[-1] - ks[0])
        delta = unit * np.abs(mu) * h_eff**order
        with np.errstate(invalid="ignore"):
            near = np.all(np.abs(vals - f0) <= tau2 * np.maximum(abs(f0), np.abs(vals)), axis=1)
            ok = np.isfinite(mu) & (delta >= tau1 * eps_f) & near
        return mu, ok

    iters = np.ones(n, dtype=int)
    status = np.full(n, Status.SUCCESS)
    h_a = eps_f ** (1 / (order + 2)) * s
    idx = np.arange(n)
    mu_a, ok_a = trial(idx, h_a)
    mu = np.where(ok_a, np.abs(mu_a), np.nan)
    h_b = np.full(n, np.nan)
    mu_b = np.full(n, np.nan)
    retry = ~ok_a & np.isfinite(mu_a) & (mu_a != 0)
    status[~ok_a & ~np.isfinite(mu_a)] = Status.NONFINITE
    status[~ok_a & (mu_a == 0)] = Status.TRUNCATION_NOT_DETECTED
    idx = np.flatnonzero(retry)
    if idx.size:
        h_b[idx] = np.minimum((eps_f / np.abs(mu_a[idx])) ** (1 / (order + 2)), s[idx])
        mb, ok_b = trial(idx, h_b[idx])
        iters[idx] += 1
        mu_b[idx] = mb
        agree = np.abs(np.abs(mu_a[idx]) - np.abs(mb)) <= 0.5 * np.abs(mb)
        acc = np.isfinite(mb) & (ok_b | agree)
        mu[idx[acc]] = np.abs(mb[acc])
        status[idx[~acc]] = np.where(np.isfinite(mb[~acc]), Status.NO_ACCEPTABLE_STEP, Status.NONFINITE)
        use = ~acc & np.isfinite(mb) & (mb != 0)
        mu[idx[use]] = np.abs(mb[use])  # the fallback: the last estimate, flagged
    with np.errstate(divide="ignore", invalid="ignore"):
        if order == 2:
            h = 8 ** 0.25 * np.sqrt(eps_f / mu)
            thumb = math.sqrt(eps_rel(eps_f, f0)) * s
        else:
            h = (3 * eps_f / mu) ** (1 / 3)
            thumb = eps_rel(eps_f, f0) ** (1 / 3) * s
    h = np.where(np.isfinite(h) & (h > 0), h, thumb)
    level.flag(status)
    name = "second" if order == 2 else "third"
    return result(rule, cf, sch, h, status, {
        **level.info(), name: mu, "mu_a": mu_a, "mu_b": mu_b, "h_a": h_a,
        "h_b": h_b, "iterations": iters,
        "scheme_note": "forward differences" if order == 2 else "central differences",
    })


def more_wild(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "forward", *, noise: NoiseSpec = "ecnoise", tau1: float = 100.0,
    tau2: float = 0.1, n_lines: int = 2, nf: int = 9, seed: int = 0,
) -> StepResult:
    """Forward-difference step of Moré & Wild (2012) from the noise level and f''.

    ``h = 8**(1/4) sqrt(eps_f / mu)``, which minimises the mean squared error
    ``(mu h / 2)**2 + 2 eps_f**2 / h**2`` of a forward difference when the values
    carry independent noise of standard deviation eps_f. mu estimates |f''| by the
    second difference ``Delta = f(x+h) - 2 f(x) + f(x-h)``, ``mu = |Delta| / h**2``,
    accepted when ``|Delta| >= tau1 eps_f`` (the difference is not noise) and
    ``|f(x +- h) - f(x)| <= tau2 max(|f(x)|, |f(x +- h)|)`` (h is not too large),
    tau1 = 100, tau2 = 0.1. The first trial is ``h_a = eps_f**(1/4) max(1,|x_i|)``
    (the paper's eps_f**(1/4) for a unit direction, scaled by the coordinate); if it
    fails, ``h_b = (eps_f / mu_a)**(1/4)``, the step that balances the second
    difference's truncation and noise, and mu_b is accepted if it passes the tests
    or agrees with mu_a within half of itself. Otherwise status 2 and the step from
    mu_b (the last estimate).

    Forward (or backward, the same step) differences only: for central differences
    use :func:`more_wild_central`.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"forward", "backward"}
    noise : "ecnoise", "roundoff" or float
        eps_f (see the module docstring).
    tau1, tau2 : float
        The tests' constants.
    n_lines, nf, seed
        The ECnoise sample.

    Returns
    -------
    StepResult
        ``info``: ``noise``, ``noise_source``, ``second`` (mu), ``mu_a``, ``mu_b``,
        ``h_a``, ``h_b``, ``iterations`` (1 or 2 trials).

    References
    ----------
    J. J. Moré and S. M. Wild, Estimating derivatives of noisy simulations, ACM Trans.
    Math. Softw. 38(3):19, 2012. J. J. Moré and S. M. Wild, Estimating computational
    noise, SIAM J. Sci. Comput. 33(3):1292-1314, 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import more_wild
    >>> res = more_wild(lambda x: np.sum(np.exp(x)), np.zeros(1), noise=1e-10)
    >>> bool(abs(res.h[0] / (8**0.25 * 1e-5) - 1) < 0.01), res.nfev
    (True, 3)
    """
    return _more_wild("more_wild", 2, f, theta, format, scheme, ONE_SIDED, noise, tau1, tau2,
                      n_lines, nf, seed)


def more_wild_central(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, noise: NoiseSpec = "ecnoise", tau1: float = 100.0,
    tau2: float = 0.1, n_lines: int = 2, nf: int = 9, seed: int = 0,
) -> StepResult:
    """The central-difference analogue of :func:`more_wild`.

    ``h = (3 eps_f / mu)**(1/3)`` minimises the mean squared error
    ``(mu h**2 / 6)**2 + eps_f**2 / (2 h**2)`` of a central difference with
    independent noise of standard deviation eps_f. mu estimates |f'''| by the third
    difference ``Delta = f(x+2h) - 2 f(x+h) + 2 f(x-h) - f(x-2h) = 2 h**3 f'''``,
    ``mu = |Delta| / (2 h**3)``, with Moré & Wild's tests carried over:
    ``|Delta| >= tau1 eps_f`` and ``|f(x + j h) - f(x)| <= tau2 max |f|`` over the
    stencil. The trials are ``h_a = eps_f**(1/5) max(1,|x_i|)`` and
    ``h_b = (eps_f / mu_a)**(1/5)``: the estimate's truncation ``h**2 f^(5) / 4``
    and noise ``~ eps_f / h**3`` balance at ``h ~ (eps_f / f^(5))**(1/5)``, and
    f^(5) is replaced by mu as Moré & Wild replace f'''' by mu for the second
    difference. Acceptance and fallback as in :func:`more_wild`.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"central"}
    noise, tau1, tau2, n_lines, nf, seed
        As in :func:`more_wild`.

    Returns
    -------
    StepResult
        ``info``: as :func:`more_wild`, with ``third`` (mu) for ``second``.

    References
    ----------
    J. J. Moré and S. M. Wild, Estimating derivatives of noisy simulations, ACM Trans.
    Math. Softw. 38(3):19, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import more_wild_central
    >>> res = more_wild_central(lambda x: np.sum(np.exp(x)), np.zeros(1), noise=1e-12)
    >>> bool(abs(res.h[0] / (3e-12) ** (1 / 3) - 1) < 0.01), res.nfev
    (True, 5)
    """
    return _more_wild("more_wild_central", 3, f, theta, format, scheme, ("central",), noise, tau1,
                      tau2, n_lines, nf, seed)
