"""The rules that cost nothing: one fixed step, or a power of the format's unit roundoff."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.steps.results import FunctionLike, Status, StepResult
from gradlab.steps.rules.search import result, scale, setup, short

__all__ = ["fixed", "relative"]


def fixed(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, h: float = 1e-7,
) -> StepResult:
    """One absolute step for every coordinate, format and scheme.

    The defaults of the tools people use: 1e-7 (the classic gradient-checking
    exercise), 1e-6 (torch.autograd.gradcheck), 1e-4 (jax check_grads), 1e-3.
    Costs nothing; ``info["h_realised"]`` shows what the format makes of it (0 when
    the step is below the spacing of theta_i).

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
        Defaults to ``f.theta0`` for an Objective.
    format, scheme : str
        Any hardware format and any scheme (recorded; they do not enter).
    h : float
        The step, positive.

    Returns
    -------
    StepResult
        ``nfev == 0``, status 0.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import fixed
    >>> res = fixed(lambda x: np.sum(x**2), np.ones(3), "float16", h=1e-4)
    >>> res.rule, float(res.h[0]), float(res.info["h_realised"][0]), res.nfev
    ('fixed_1e-4', 0.0001, 0.0, 0)
    """
    step = validation.positive("h", h)
    cf, sch = setup("fixed", f, theta, format, scheme, None)
    return result(f"fixed_{short(step)}", cf, sch, np.full(cf.n, step),
                  np.full(cf.n, Status.SUCCESS), {"note": "fixed absolute step"})


def relative(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, power: float = 0.5,
) -> StepResult:
    """The rule of thumb ``h_i = u**power * max(1, |theta_i|)``, u of the format.

    ``power = 1/2`` balances truncation and rounding for forward differences and
    ``power = 1/3`` for central ones when J is well scaled (Dennis & Schnabel 1983,
    §5.4 and §5.6; Nocedal & Wright 2006, §8.1). scipy's approx_derivative and
    FiniteDiff.jl use the machine epsilon eps = 2u instead: sqrt(eps) and cbrt(eps),
    steps sqrt(2) and 2**(1/3) times these.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format, scheme : str
        The format sets u; the scheme is recorded.
    power : float
        In (0, 1].

    Returns
    -------
    StepResult
        ``nfev == 0``, status 0; ``info["u"]`` is the format's unit roundoff.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import relative
    >>> res = relative(lambda x: np.sum(x**2), np.array([0.5, -4.0]), "float32", power=1/3)
    >>> res.rule, np.allclose(res.h, 2.0**(-24/3) * np.array([1.0, 4.0]))
    ('relative_cbrt_u', True)
    """
    p = validation.in_range("power", power, 0, 1, include_high=True)
    cf, sch = setup("relative", f, theta, format, scheme, None)
    if math.isclose(p, 0.5):
        name = "relative_sqrt_u"
    elif math.isclose(p, 1 / 3):
        name = "relative_cbrt_u"
    else:
        name = f"relative_u^{p:g}"
    u = cf.fmt.u
    return result(name, cf, sch, u**p * scale(cf), np.full(cf.n, Status.SUCCESS),
                  {"u": u, "power": p})
