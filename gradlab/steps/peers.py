"""The peers' finite-difference gradients, run at their defaults on gradlab objectives.

Each peer is a function ``peer(f, theta=None, format="float64", *, native=False,
**options) -> StepResult`` that calls the peer's own code, unchanged and at its
documented defaults, on a wrapper of J. The wrapper takes the point the peer passes,
rounds it into the format (:func:`gradlab.arithmetic.formats.round_array`), evaluates J in the
format through a :class:`gradlab.arithmetic.coordinate.CoordinateFunction` (which counts every
evaluation) and hands the value back to the peer. So a peer's row reports what a user
gets from that tool on that objective in that format: the gradient it computed
(``approx``), the step it used per coordinate (``h``), the evaluations it spent
(``nfev``) and its own success flags (``status``), in the same
:class:`~gradlab.steps.StepResult` as gradlab's step rules.

========================================  ==========================================
peer                                      what runs
========================================  ==========================================
``numdifftools_gradient``                 ``numdifftools.Gradient(fun)(x)``
``scipy_derivative``                      ``scipy.differentiate.derivative`` per
                                          coordinate, all coordinates in one call
``scipy_approx_fprime``                   ``scipy.optimize.approx_fprime(x, fun)``
``scipy_approx_derivative_2point``        ``approx_derivative(fun, x, "2-point")``
``scipy_approx_derivative_3point``        ``approx_derivative(fun, x, "3-point")``
========================================  ==========================================

By default the peer sees float64 points and float64 values of J (the values of J in
the format, converted exactly). With ``native=True`` the peer is given theta in the
format's numpy dtype and J's values in that dtype, as it would see a user's float32
(or float16) code; peers that adapt to the dtype (scipy's ``approx_derivative``
picks its relative step from it, ``scipy.differentiate`` its tolerances) then do so.

``numdifftools`` is optional (``pip install numdifftools``); ``scipy.differentiate``
needs scipy >= 1.15 and ``approx_derivative`` is imported from scipy's private
``scipy.optimize._numdiff``. :data:`PEERS` holds only the peers that import.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import scipy

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.steps.results import FunctionLike, Status, StepResult

__all__ = [
    "PEERS",
    "Peer",
    "available_peers",
    "numdifftools_gradient",
    "scipy_approx_derivative_2point",
    "scipy_approx_derivative_3point",
    "scipy_approx_fprime",
    "scipy_derivative",
]


class Peer(Protocol):
    """The call every peer answers: ``peer(f, theta, format, *, native, **options)``."""

    def __call__(self, f: FunctionLike, theta: Any = ..., format: fmts.Format | str = ..., *,
                 native: bool = ..., **options: Any) -> StepResult: ...


# scipy.differentiate.derivative's exit codes -> gradlab's Status.
_DIFFERENTIATE_STATUS = {
    0: Status.SUCCESS,  # converged to the tolerances
    -1: Status.NO_ACCEPTABLE_STEP,  # the error estimate increased: stopped, last estimate returned
    -2: Status.ITERATION_LIMIT,  # maxiter reached
    -3: Status.NONFINITE,  # a non-finite value was encountered
    -4: Status.NO_ACCEPTABLE_STEP,  # terminated by callback
}


def _optional(module: str, attr: str) -> Any:
    """``module.attr`` if it imports, else None."""
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return None


# scipy >= 1.15 only.
_derivative: Callable[..., Any] | None = _optional("scipy.differentiate", "derivative")
# Private scipy API (the engine behind approx_fprime, least_squares, minimize's
# finite differences); imported defensively because scipy may move or change it.
_approx_derivative: Callable[..., Any] | None = _optional("scipy.optimize._numdiff",
                                                          "approx_derivative")
_eps_for_method: Callable[..., Any] | None = _optional("scipy.optimize._numdiff", "_eps_for_method")


class _PeerFunction:
    """J for a peer: the peer's points rounded into the format, evaluated and counted.

    Parameters
    ----------
    cf : CoordinateFunction
        The counted evaluator; ``cf.theta`` is theta in the format.
    native : bool
        Hand values back in the format's dtype (else float64).

    Attributes
    ----------
    collapsed : int
        Points the peer placed off theta that rounded back onto theta in the
        format: steps the format cannot resolve (their differences are exactly 0).
    """

    def __init__(self, cf: CoordinateFunction, native: bool) -> None:
        self.cf = cf
        self.native = native
        self.out_dtype = np.dtype(cf.fmt.dtype) if native else np.dtype(np.float64)
        self.theta64 = cf.theta.astype(np.float64)
        self.collapsed = 0

    def start(self) -> np.ndarray:
        """theta as the peer receives it: in the format's dtype if native, else float64."""
        return self.cf.theta.copy() if self.native else self.theta64.copy()

    def _round(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        if np.iscomplexobj(x):
            raise TypeError("the peer passed complex points; gradlab runs real formats only")
        if x.dtype == self.cf.fmt.dtype:
            return x  # already values of the format (a native peer's own arithmetic)
        return fmts.round_array(x.astype(np.float64), self.cf.fmt)

    def __call__(self, x: Any) -> Any:
        """J at one point (a 1-D array of N coordinates), as a scalar."""
        pt = self._round(x)
        if pt.shape != (self.cf.n,):
            raise ValueError(f"the peer passed a point of shape {pt.shape}; expected ({self.cf.n},)")
        off = np.asarray(x, dtype=np.float64) != self.theta64
        if off.any() and np.all(pt == self.cf.theta):
            self.collapsed += 1
        return self.out_dtype.type(self.cf.evaluate(pt[None, :])[0])

    def along(self, xi: Any, coord: Any) -> np.ndarray:
        """J at theta with ``theta[coord] = xi``, elementwise, in one batch of rows."""
        xi = np.asarray(xi)
        coords = np.broadcast_to(np.asarray(coord), xi.shape).ravel().astype(np.intp)
        vals = self._round(xi.ravel())
        moved = xi.ravel().astype(np.float64) != self.theta64[coords]
        self.collapsed += int(np.count_nonzero(moved & (vals == self.cf.theta[coords])))
        out = self.cf.evaluate(self.cf.points(coords, vals)).reshape(xi.shape)
        return out.astype(self.out_dtype)


def _setup(f: FunctionLike, theta: Any, format: fmts.Format | str, native: bool,
           options: dict[str, Any], allowed: frozenset[str], peer: str) -> _PeerFunction:
    """Validate a peer's arguments (one place for all peers) and build its wrapper."""
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"{peer}: unsupported option(s) {unknown}; allowed: {sorted(allowed)}")
    cf = CoordinateFunction(f, theta, format)
    if native and not np.issubdtype(np.dtype(cf.fmt.dtype), np.floating):
        raise ValueError(f"native: format {cf.fmt.name!r} has no numpy floating dtype the peers "
                         "understand; use native=False")
    return _PeerFunction(cf, native)


def _finite_status(approx: np.ndarray) -> np.ndarray:
    """SUCCESS where the peer's derivative is finite, NONFINITE elsewhere."""
    return np.where(np.isfinite(approx), Status.SUCCESS, Status.NONFINITE)


def _result(pf: _PeerFunction, rule: str, scheme: str, h: np.ndarray, approx: np.ndarray,
            status: np.ndarray, caught: list[warnings.WarningMessage],
            info: dict[str, Any]) -> StepResult:
    cf = pf.cf
    info = {
        **info,
        "native": pf.native,
        "collapsed_points": pf.collapsed,
        "fp_events": dict(cf.fp_events),
        "upcasts": cf.upcasts,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }
    return StepResult(rule=rule, format=cf.fmt.name, scheme=scheme,
                      h=np.asarray(h, dtype=np.float64).reshape(cf.n), nfev=cf.nfev,
                      status=np.asarray(status, dtype=int).reshape(cf.n),
                      approx=np.asarray(approx, dtype=np.float64).reshape(cf.n), info=info)


def numdifftools_gradient(f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
                          *, native: bool = False, **options: Any) -> StepResult:
    """``numdifftools.Gradient`` at its defaults.

    numdifftools' defaults (``Gradient(fun, step=None, method="central", order=2)``,
    ``richardson_terms=2``, ``MaxStepGenerator(base_step=2.0, step_ratio=2,
    num_steps=15, step_nom=max(log(e - 1 + |x|), 1))``; numdifftools 0.11
    documentation and ``numdifftools/step_generators.py``): central differences at
    the 15 steps ``2 s 2**-i`` (i = 0..14), Richardson extrapolation, Wynn's epsilon
    algorithm, and per coordinate the estimate with the least estimated error.
    It evaluates J at x once and at ``x +- h e_i`` for every step and coordinate,
    one point per call: ``1 + 30 N`` evaluations.

    Parameters
    ----------
    f : Objective or callable
        J; a plain callable ``f(x) -> scalar`` needs ``theta``.
    theta : array_like, optional
        The point; defaults to ``f.theta0``. Rounded once to the format.
    format : str or Format
        A hardware format; J is evaluated in it.
    native : bool
        Give numdifftools theta and J in the format's dtype instead of float64.
    **options
        Passed to ``numdifftools.Gradient`` (to study non-default settings);
        ``full_output`` is reserved.

    Returns
    -------
    StepResult
        ``h`` is numdifftools' own ``final_step`` (``full_output=True``): the
        step of the extrapolated estimate it selected. ``status`` is 0 where the
        gradient is finite (numdifftools has no success flag), 4 elsewhere;
        ``info["error_estimate"]`` is its error estimate.

    Raises
    ------
    ImportError
        If numdifftools is not installed.

    Examples
    --------
    >>> import pytest, gradlab as gl
    >>> nd = pytest.importorskip("numdifftools")
    >>> from gradlab.steps.peers import numdifftools_gradient
    >>> numdifftools_gradient(gl.objectives.seed_net()).nfev   # 1 + 30 * 47
    1411
    """
    try:
        import numdifftools as nd
    except ImportError as exc:
        raise ImportError("numdifftools_gradient needs numdifftools: pip install numdifftools "
                          "(or gradlab[peers])") from exc
    allowed = frozenset(inspect.signature(nd.Gradient.__init__).parameters) - {"self", "fun", "options"}
    allowed |= {"richardson_terms", "base_step", "step_ratio", "num_steps", "step_nom", "offset",
                "num_extrap", "use_exact_steps", "check_num_steps", "scale"}
    pf = _setup(f, theta, format, native, options, allowed, "numdifftools_gradient")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = nd.Gradient(pf, full_output=True, **options)(pf.start())
    approx = np.asarray(res.estimate, dtype=np.float64).ravel()
    method = str(options.get("method", "central"))
    return _result(
        pf, "numdifftools_gradient", method,
        h=np.abs(np.asarray(res.final_step, dtype=np.float64)).ravel(),
        approx=approx, status=_finite_status(approx), caught=caught,
        info={"h_source": "numdifftools full_output final_step (step of the selected "
                          "extrapolated estimate)",
              "error_estimate": np.asarray(res.error_estimate, dtype=np.float64).ravel(),
              "peer_version": nd.__version__},
    )


def scipy_derivative(f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
                     *, native: bool = False, **options: Any) -> StepResult:
    """``scipy.differentiate.derivative`` at its defaults, one coordinate at a time,
    all coordinates in one vectorised call.

    scipy's defaults (``derivative(f, x, tolerances=None, maxiter=10, order=8,
    initial_step=0.5, step_factor=2.0, step_direction=0)``; scipy >= 1.15
    documentation): an order-8 central formula on the nested stencil
    ``x +- h/2**j`` (j = 0..3), h starting at the absolute 0.5 and halved each
    iteration, until ``error < atol + rtol |df|`` (atol the smallest normal, rtol
    the square root of eps of the dtype), the error grows tenfold, or 10
    iterations. Coordinate i is the scalar function ``t -> J(theta with theta_i =
    t)``; scipy evaluates all active coordinates' abscissae in one call, which is
    one batch of rows here. It evaluates each coordinate's centre too (N copies of
    J(theta)): ``sum_i (9 + 2 (nit_i - 1))`` evaluations, its own ``nfev``.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str or Format
    native : bool
        Give scipy theta and J in the format's dtype (its tolerances follow).
    **options
        Any of ``tolerances``, ``maxiter``, ``order``, ``initial_step``,
        ``step_factor``, ``step_direction``.

    Returns
    -------
    StepResult
        ``h`` is the largest step of the stencil that produced the returned
        derivative: ``initial_step / step_factor**(nit - 1)``. scipy does not expose
        it; it halves ``h`` after each estimate, so ``initial_step /
        step_factor**nit`` would be the step of the iteration it did not run.
        ``status`` maps scipy's: 0 -> 0 (converged), -1 (error increased) -> 2,
        -2 (maxiter) -> 1, -3 (non-finite) -> 4; the raw codes are in
        ``info["peer_status"]`` and ``info["success"]``.

    Examples
    --------
    >>> import gradlab as gl
    >>> from gradlab.steps.peers import PEERS
    >>> res = PEERS["scipy_derivative"](gl.objectives.seed_net(stable=True))
    >>> res.nfev == res.info["peer_nfev"]
    True
    """
    if _derivative is None:
        raise ImportError("scipy_derivative needs scipy.differentiate (scipy >= 1.15), "
                          f"found scipy {scipy.__version__}")
    allowed = frozenset({"tolerances", "maxiter", "order", "initial_step", "step_factor",
                         "step_direction"})
    pf = _setup(f, theta, format, native, options, allowed, "scipy_derivative")
    n = pf.cf.n
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = _derivative(pf.along, pf.start(), args=(np.arange(n),), **options)
    sig = inspect.signature(_derivative).parameters
    h0 = np.broadcast_to(np.asarray(options.get("initial_step", sig["initial_step"].default),
                                    dtype=np.float64), (n,))
    fac = float(options.get("step_factor", sig["step_factor"].default))
    nit = np.asarray(res.nit, dtype=np.float64).reshape(n)
    h = np.abs(h0) / fac ** np.maximum(nit - 1, 0)
    peer_status = np.asarray(res.status, dtype=int).reshape(n)
    status = np.array([_DIFFERENTIATE_STATUS.get(int(s), Status.NO_ACCEPTABLE_STEP)
                       for s in peer_status], dtype=int)
    approx = np.asarray(res.df, dtype=np.float64).reshape(n)
    status[(status == Status.SUCCESS) & ~np.isfinite(approx)] = Status.NONFINITE
    order = int(options.get("order", sig["order"].default))
    return _result(
        pf, "scipy_derivative", f"central{order + order % 2}",
        h=h, approx=approx, status=status, caught=caught,
        info={"h_source": "initial_step / step_factor**(nit - 1): largest step of the final "
                          "stencil (derived; scipy does not expose it)",
              "nit": np.asarray(res.nit, dtype=int).reshape(n),
              "peer_nfev": int(np.sum(res.nfev)),
              "peer_status": peer_status,
              "success": np.asarray(res.success, dtype=bool).reshape(n),
              "error_estimate": np.asarray(res.error, dtype=np.float64).reshape(n),
              "peer_version": scipy.__version__},
    )


def scipy_approx_fprime(f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
                        *, native: bool = False, **options: Any) -> StepResult:
    """``scipy.optimize.approx_fprime`` at its default epsilon.

    scipy's default (``approx_fprime(xk, f, epsilon=sqrt(np.finfo(float).eps))``;
    scipy.optimize documentation): forward differences with the absolute step
    ``1.4901161193847656e-08`` for every coordinate and every dtype (``xk`` is
    converted to float64), falling back to a relative step only where ``(x + h) -
    x == 0`` in float64. It evaluates J at x once and at ``x + h e_i`` per
    coordinate: ``N + 1`` evaluations.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str or Format
    native : bool
        Hand J back in the format's dtype (scipy still converts theta to float64).
    **options
        ``epsilon``.

    Returns
    -------
    StepResult
        ``h`` is ``|epsilon|``, with scipy's fallback where float64 cannot resolve
        it (``sqrt(EPS) sign(x) max(1, |x|)``); the sign is in ``info["direction"]``.
        ``status`` is 0 where the derivative is finite, 4 elsewhere
        (approx_fprime has no success flag).

    Examples
    --------
    >>> import gradlab as gl
    >>> from gradlab.steps.peers import scipy_approx_fprime
    >>> res = scipy_approx_fprime(gl.objectives.seed_net())
    >>> res.nfev, float(res.h[0])
    (48, 1.4901161193847656e-08)
    """
    from scipy.optimize import approx_fprime

    pf = _setup(f, theta, format, native, options, frozenset({"epsilon"}), "scipy_approx_fprime")
    eps_default = inspect.signature(approx_fprime).parameters["epsilon"].default
    epsilon = options.get("epsilon", eps_default)
    x0 = pf.start().astype(np.float64)  # approx_fprime converts xk to float64 itself
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        approx = np.asarray(approx_fprime(x0, pf, epsilon), dtype=np.float64).ravel()
    h = np.broadcast_to(np.asarray(epsilon, dtype=np.float64), x0.shape).astype(np.float64)
    fallback = (x0 + h) - x0 == 0
    sign = np.where(x0 >= 0, 1.0, -1.0)
    h = np.where(fallback, math.sqrt(np.finfo(np.float64).eps) * sign * np.maximum(1.0, np.abs(x0)), h)
    return _result(
        pf, "scipy_approx_fprime", "forward", h=np.abs(h), approx=approx,
        status=_finite_status(approx), caught=caught,
        info={"h_source": "approx_fprime's epsilon (default sqrt(float64 eps)); relative "
                          "fallback where x + epsilon == x in float64",
              "direction": np.where(h >= 0, 1, -1),
              "h_fallback": int(np.count_nonzero(fallback)),
              "peer_version": scipy.__version__},
    )


def _approx_derivative_peer(method: str, rule: str, f: FunctionLike, theta: Any,
                            format: fmts.Format | str, native: bool,
                            options: dict[str, Any]) -> StepResult:
    if _approx_derivative is None or _eps_for_method is None:
        raise ImportError(f"{rule} needs scipy.optimize._numdiff.approx_derivative, a private "
                          f"scipy API not found in scipy {scipy.__version__}")
    pf = _setup(f, theta, format, native, options, frozenset({"rel_step", "abs_step"}), rule)
    x0 = pf.start()
    kwargs: dict[str, Any] = {"method": method, **options}
    full = "full_output" in inspect.signature(_approx_derivative).parameters
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _approx_derivative(pf, x0, full_output=True, **kwargs) if full else \
            _approx_derivative(pf, x0, **kwargs)
    jac, peer_info = out if full else (out, {})
    approx = np.asarray(jac, dtype=np.float64).ravel()
    # The step, as scipy's _compute_absolute_step forms it (sign convention included).
    eps_rel = float(_eps_for_method(x0.dtype, pf.out_dtype, method))
    sign = np.where(x0 >= 0, 1.0, -1.0)
    default = eps_rel * sign * np.maximum(1.0, np.abs(x0))
    rel, absolute = options.get("rel_step"), options.get("abs_step")
    if absolute is not None:
        h = np.broadcast_to(np.asarray(absolute, dtype=np.float64), x0.shape)
    elif rel is not None:
        h = np.asarray(rel, dtype=np.float64) * sign * np.abs(x0)
    else:
        h = default
    if absolute is not None or rel is not None:
        with np.errstate(over="ignore"):
            h = np.where((x0 + h) - x0 == 0, default, h)
    peer_nfev = peer_info.get("nfev")
    return _result(
        pf, rule, "forward" if method == "2-point" else "central",
        h=np.abs(h), approx=approx, status=_finite_status(approx), caught=caught,
        info={"h_source": f"scipy's relative step EPS**{'1/2' if method == '2-point' else '1/3'} "
                          "* sign(x) * max(1, |x|), EPS of the dtypes it sees "
                          f"({x0.dtype}, {pf.out_dtype}: rel {eps_rel:.3g})",
              "direction": (sign if method == "2-point" else np.ones_like(sign)).astype(int),
              "peer_nfev": None if peer_nfev is None else int(peer_nfev),
              "peer_version": scipy.__version__},
    )


def scipy_approx_derivative_2point(f: FunctionLike, theta: Any = None,
                                   format: fmts.Format | str = "float64", *, native: bool = False,
                                   **options: Any) -> StepResult:
    """scipy's ``approx_derivative(fun, x0, method="2-point")`` at its default step.

    ``approx_derivative`` lives in the private module ``scipy.optimize._numdiff``
    (it is the engine of ``approx_fprime``, ``least_squares`` and ``minimize``'s
    ``jac="2-point"``); it is imported defensively, and this peer is left out of
    :data:`PEERS` if the import fails. Default step (scipy documentation of
    ``approx_derivative``, ``rel_step``): ``h = sqrt(EPS) * sign(x) * max(1,
    |x|)`` with ``sign(0) = +1``, EPS the machine epsilon of the smaller of x's
    and f's float dtypes (float64 unless ``native``). The step is forward where
    ``x >= 0`` and backward where ``x < 0``. ``N + 1`` evaluations.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str or Format
    native : bool
        Give scipy theta and J in the format's dtype: it then takes EPS from it.
    **options
        ``rel_step`` or ``abs_step``.

    Returns
    -------
    StepResult
        ``h`` is ``|h|`` as above (scipy's formula, reproduced); the sign is in
        ``info["direction"]``. ``status`` is 0 where the derivative is finite,
        4 elsewhere. ``info["peer_nfev"]`` is scipy's own count (``full_output``,
        scipy >= 1.15; None before).

    Examples
    --------
    >>> import gradlab as gl
    >>> from gradlab.steps.peers import scipy_approx_derivative_2point
    >>> res = scipy_approx_derivative_2point(gl.objectives.seed_net())
    >>> res.nfev, res.info["peer_nfev"]
    (48, 48)
    """
    return _approx_derivative_peer("2-point", "scipy_approx_derivative_2point", f, theta, format,
                                   native, options)


def scipy_approx_derivative_3point(f: FunctionLike, theta: Any = None,
                                   format: fmts.Format | str = "float64", *, native: bool = False,
                                   **options: Any) -> StepResult:
    """scipy's ``approx_derivative(fun, x0, method="3-point")`` at its default step.

    Imported from the private ``scipy.optimize._numdiff`` (see
    :func:`scipy_approx_derivative_2point`). Default step (scipy documentation of
    ``approx_derivative``): ``h = cbrt(EPS) * max(1, |x|)``, central (the sign of
    the relative step is dropped for the two-sided scheme). ``2 N + 1``
    evaluations: scipy evaluates f(x0) although the central formula does not use it.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str or Format
    native : bool
        Give scipy theta and J in the format's dtype: it then takes EPS from it.
    **options
        ``rel_step`` or ``abs_step``.

    Returns
    -------
    StepResult
        As :func:`scipy_approx_derivative_2point`, scheme ``"central"``.

    Examples
    --------
    >>> import gradlab as gl
    >>> from gradlab.steps.peers import scipy_approx_derivative_3point
    >>> scipy_approx_derivative_3point(gl.objectives.seed_net()).nfev
    95
    """
    return _approx_derivative_peer("3-point", "scipy_approx_derivative_3point", f, theta, format,
                                   native, options)


def _peers() -> dict[str, Peer]:
    peers: dict[str, Peer] = {}
    if importlib.util.find_spec("numdifftools") is not None:
        peers["numdifftools_gradient"] = numdifftools_gradient
    if _derivative is not None:
        peers["scipy_derivative"] = scipy_derivative
    peers["scipy_approx_fprime"] = scipy_approx_fprime
    if _approx_derivative is not None and _eps_for_method is not None:
        peers["scipy_approx_derivative_2point"] = scipy_approx_derivative_2point
        peers["scipy_approx_derivative_3point"] = scipy_approx_derivative_3point
    return peers


#: The peers whose code imports here, by name: ``PEERS[name](f, theta, format)``.
PEERS: dict[str, Peer] = _peers()


def available_peers() -> list[str]:
    """Names of the peers that can run here (numdifftools is optional).

    Examples
    --------
    >>> from gradlab.steps.peers import available_peers
    >>> "scipy_approx_fprime" in available_peers()
    True
    """
    return list(PEERS)
