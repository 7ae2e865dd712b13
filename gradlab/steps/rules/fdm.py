"""The step FiniteDifferences.jl picks: the minimiser of its rounding + truncation bound."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.steps.results import FunctionLike, Status, StepResult
from gradlab.steps.rules.search import REAL, probe, result, setup

__all__ = ["fdm_bound"]


def _grid(direction: str, size: int) -> tuple[int, ...]:
    """FiniteDifferences.jl's grids: forward 0..P-1, backward -(P-1)..0, central symmetric."""
    if direction == "forward":
        return tuple(range(size))
    if direction == "backward":
        return tuple(range(1 - size, 1))
    if size % 2:
        return tuple(range((1 - size) // 2, (size - 1) // 2 + 1))
    return tuple(list(range(-(size // 2), 0)) + list(range(1, size // 2 + 1)))


def _spacing(x: np.ndarray, fmt: fmts.Format) -> np.ndarray:
    """The format's spacing at |x| (Julia's eps(x)): 2**(floor(log2|x|) - p + 1), at least
    the subnormal spacing."""
    assert fmt.emin is not None
    x = np.abs(np.asarray(x, dtype=np.float64))
    _, e = np.frexp(np.where(np.isfinite(x), x, 0.0))
    return np.maximum(np.ldexp(1.0, e - fmt.p), math.ldexp(1.0, fmt.emin - fmt.p + 1))


@dataclass(frozen=True)
class _Estimator:
    """The method's bound constants and the stencil that estimates its f^(p).

    Attributes
    ----------
    p : int
        order + 1 (FiniteDifferences.jl's p for a first derivative).
    err_mult, trunc_mult : float
        ``sum|c_j|`` and ``sum|c_j k_j**p| / p!`` of the method.
    grid : tuple of int
        The estimator's (p+2)-point grid, in the method's direction.
    weights : ndarray, shape (3, p+2)
        f^(p) at x + shift * step for the three shifts, from the grid's values.
    step : float
        The estimator's own default step.
    default : float
        The method's default step (``condition`` for its derivative).
    """

    p: int
    err_mult: float
    trunc_mult: float
    grid: tuple[int, ...]
    weights: np.ndarray
    step: float
    default: float

    @classmethod
    def of(cls, sch: schs.Scheme, eps_t: float, condition: float, factor: float) -> _Estimator:
        ks = np.array(sch.offsets, dtype=np.float64)
        cs = np.array([float(c) for c in sch.weights])
        p = sch.order + 1
        err_mult = float(np.sum(np.abs(cs)))
        trunc_mult = float(np.sum(np.abs(cs * ks**p))) / math.factorial(p)
        direction = ("forward" if np.all(ks >= 0) else "backward" if np.all(ks <= 0) else "central")
        grid_b = _grid(direction, p + 2)
        c_b = [float(c) for c in schs.fd_weights(grid_b, p)]
        shifts = {"forward": (2, 1, 0), "backward": (0, -1, -2), "central": (1, 0, -1)}[direction]
        c_nb = np.array([[float(c) for c in schs.fd_weights(tuple(g - sh for g in grid_b), p)]
                         for sh in shifts])  # the p-th derivative at x + shift * step
        gb = np.array(grid_b, dtype=np.float64)
        pb = p + 2
        err_b = sum(abs(c) for c in c_b)
        trunc_b = float(np.sum(np.abs(np.array(c_b) * gb**pb))) / math.factorial(pb)
        step_b = (p / (pb - p) * (eps_t * err_b * factor) / (condition * trunc_b)) ** (1 / pb)
        default = ((eps_t * err_mult * factor) / ((p - 1) * condition * trunc_mult)) ** (1 / p)
        return cls(p, err_mult, trunc_mult, grid_b, c_nb, step_b, default)


def fdm_bound(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, condition: float = 10.0, factor: float = 1.0,
) -> StepResult:
    """The step FiniteDifferences.jl picks: the minimiser of a rounding + truncation bound.

    For a scheme with weights c_j on offsets k_j and order q (here the first
    derivative, Q = 1, from a method of ``p = order + 1`` points in FiniteDifferences.jl's
    terms), the error bound ``C1 / h + C2 h**(p-1)`` with
    ``C1 = eps(|f|) sum|c_j| factor`` (rounding) and
    ``C2 = |f^(p)| sum|c_j k_j**p| / p!`` (truncation) is least at
    ``h = (1/(p-1) C1/C2)**(1/p)``. ``eps(|f|)`` is the format's spacing at the
    largest |J| on the estimator's stencil, and |f^(p)| the largest of three
    estimates of the p-th derivative (at x and at its neighbours one step away)
    from a (p+2)-point stencil of the same direction, exact weights from
    :func:`gradlab.arithmetic.schemes.fd_weights`, at the estimator's own default step
    (``condition`` for its derivative, eps of the format for the error). The step is
    absolute, as in FiniteDifferences.jl, and at most 1000 times the method's default
    step; a zero |f^(p)| or |f| gives the default step (both status 5). The bound knows
    only the rounding of J's value, not its noise.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : str
        Any real scheme (forward, backward, central, central4, central6).
    condition : float
        FiniteDifferences.jl's DEFAULT_CONDITION (10).
    factor : float
        Its DEFAULT_FACTOR (1): a multiple of the rounding bound.

    Returns
    -------
    StepResult
        ``info``: ``derivative`` (|f^(p)|), ``f_magnitude``, ``accuracy`` (the bound at
        h), ``estimator_step``, ``p``.

    References
    ----------
    FiniteDifferences.jl (JuliaDiff), ``estimate_step`` and ``_compute_step_acc`` in
    src/methods.jl.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import fdm_bound
    >>> res = fdm_bound(lambda x: np.sum(np.exp(x)), np.zeros(1))   # |f'''| = 1, eps(1) = 2**-52
    >>> bool(abs(res.h[0] / (3 * 2.0**-52) ** (1 / 3) - 1) < 0.01), res.nfev
    (True, 5)
    """
    condition, factor = validation.positive("condition", condition), validation.positive("factor", factor)
    cf, sch = setup("fdm_bound", f, theta, format, scheme, REAL)
    n, fmt = cf.n, cf.fmt
    est = _Estimator.of(sch, fmt.eps, condition, factor)
    p = est.p
    gb = np.array(est.grid, dtype=np.float64)
    # the estimator's stencil; its centre (if on it) is J(theta), evaluated once
    f0 = cf.center() if 0 in est.grid else math.nan
    off = gb != 0
    vals, _ = probe(cf, np.arange(n), np.full(n, est.step), [k for k in est.grid if k != 0])
    fs = np.empty((n, gb.size))
    fs[:, off] = vals
    fs[:, ~off] = f0
    finite = np.all(np.isfinite(fs), axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        deriv = np.max(np.abs(fs @ est.weights.T), axis=1) / est.step**p
    fmag = np.max(np.abs(fs), axis=1)
    status = np.full(n, Status.SUCCESS)
    usable = finite & (deriv > 0) & (fmag > 0)
    status[~finite] = Status.NONFINITE
    # no derivative or no |f| measured: the default step
    status[finite & ~usable] = Status.TRUNCATION_NOT_DETECTED
    c1 = _spacing(fmag, fmt) * est.err_mult * factor
    c2 = np.where(usable, deriv, 1.0) * est.trunc_mult
    h = np.where(usable, (c1 / ((p - 1) * c2)) ** (1 / p), est.default)
    acc = np.where(usable, c1 / h + c2 * h ** (p - 1), np.nan)
    capped = usable & (h > 1000 * est.default)
    h[capped], acc[capped], status[capped] = 1000 * est.default, np.nan, Status.TRUNCATION_NOT_DETECTED
    return result("fdm_bound", cf, sch, h, status, {
        "derivative": deriv, "f_magnitude": fmag, "accuracy": acc, "estimator_step": est.step,
        "p": p, "estimator_grid": est.grid, "scheme_note": f"{sch.name} differences",
    })
