"""The exact reference: value, gradient and diagonal derivatives, proven or verified.

Everything is evaluated at the format's rounded inputs (theta and data rounded to
the format once). By default the reference comes from ball arithmetic (Arb), every number
an enclosure whose radius bounds its error (:func:`_from_enclosures`). The mpmath path
below is the fallback and the independent cross-check: every operation exact to the working
precision, twice at two precisions; the digits on which the two agree are reported as
``digits_verified``, and too few raise :class:`VerificationError`. A numerical
gradient also needs its differences of J resolved above J's own rounding, so the
precision follows J's dynamic range (up to :data:`MAX_PREC` bits), and an analytic
gradient is cross-checked against J's own derivative along random directions.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import mpmath
import numpy as np
import pandas as pd
from flint import arb

from gradlab.analysis.bits import MAX_PREC, bits_to_digits, digits_to_bits
from gradlab.analysis.enclosure import (
    Enclosure,
    KinkError,
    enclose,
    enclose_derivatives,
    enclose_value,
    gradient_along,
)
from gradlab.arithmetic import formats
from gradlab.arithmetic.balls import BranchUndecided, mpf_mid, working_precision
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.objective import Objective, call_grad, evaluate_one

__all__ = ["MAX_PREC", "ExactResult", "VerificationError", "bits_to_digits", "computed_from",
           "digits_to_bits", "exact", "reference_bits"]

N_DIRECTIONS = 3  # random directions an analytic gradient is cross-checked along
# allowance, in units of J's last bit, for the rounding J's evaluation accumulates
# (a bound on a difference's rounding error, not an estimate of it)
_ROUNDING_ULPS = 2**16


class VerificationError(ArithmeticError):
    """The reference recomputed at a higher precision did not confirm its digits."""


def reference_bits(fmt: formats.Format | str, h_min: float, order: int) -> int:
    """Working precision of the exact FD sums down to the step ``h_min``, in bits.

    The weighted sum of the stencil's exact values cancels about log2(1/h) bits, and
    D_exact - g, of size h**q for a scheme of order q, about q log2(1/h) more;
    (q + 2) log2(1/h_min) bounds both at the smallest step, on top of twice the format's
    precision and 64 guard bits. :func:`gradlab.fd_errors` checks the result by
    recomputing the smallest step at 64 more bits.

    Parameters
    ----------
    fmt : Format or str
    h_min : float
        The smallest nominal step (> 0); steps of 1 or more cancel nothing.
    order : int
        The largest order q of the schemes.

    Examples
    --------
    >>> reference_bits("float64", 1e-12, 2), reference_bits("float32", 2.0, 1)
    (330, 112)
    """
    return 2 * formats.get(fmt).p + 64 + (order + 2) * max(0, math.ceil(-math.log2(h_min)))


@dataclass(frozen=True)
class ExactResult:
    """The verified exact reference of an objective at one format's inputs.

    Attributes
    ----------
    objective, format : str
    theta : ndarray of mpf
        theta0 rounded to the format (the point everything is evaluated at).
    value : mpf
        J(theta).
    grad : ndarray of mpf, shape (N,)
    derivatives : dict of int -> ndarray of mpf
        Diagonal derivatives d^k J / d theta_i^k for ``coords``, by order k.
    coords : ndarray of int
        Coordinates the derivatives were computed for.
    digits : int
        Decimal digits requested for value and gradient.
    digits_verified : int
        Digits of value and gradient that the balls' radii prove or, on the mpmath path, on
        which they agree with a recomputation at a higher precision (capped at ``digits``),
        each judged on its own scale (a component far below the gradient's largest against
        that largest); a numerical gradient's must also lie above the rounding of J's
        differences.
    derivative_digits : dict of int -> ndarray of float
        Verified digits of each derivative, per coordinate (a coordinate at a
        kink shows few; one whose differences drown in J's rounding shows 0).
    prec : int
        Working precision in bits of the returned values.
    method : str
        ``"analytic"`` (the objective's gradient evaluated in mpmath) or
        ``"numerical"`` (high-precision differentiation of J).
    proven : bool
        Value, gradient and derivatives lie in ball-arithmetic enclosures
        (:func:`gradlab.analysis.enclosure.enclose`) that prove every requested digit
        (``digits``, and ``derivative_digits`` for the derivatives).
    value_radius, grad_radius : float, ndarray
        From the enclosures: rigorous bounds on |value - J| and |grad_i - dJ/dtheta_i| (the
        enclosure's radii, plus the distance of an mpmath value from the balls' midpoints);
        NaN (None) for the mpmath path alone.
    derivative_radius : dict of int -> ndarray
        From the enclosures: rigorous bounds on each reported derivative's error, from
        Taylor series in ball arithmetic (:func:`gradlab.analysis.enclosure.enclose_derivatives`).
    unproven : dict of str -> str
        What the enclosures could not prove, and why.
    """

    objective: str
    format: str
    theta: np.ndarray
    value: Any
    grad: np.ndarray
    derivatives: dict[int, np.ndarray]
    coords: np.ndarray
    digits: int
    digits_verified: int
    derivative_digits: dict[int, np.ndarray] = field(default_factory=dict)
    prec: int = 0
    method: str = "analytic"
    proven: bool = False
    value_radius: float = math.nan
    grad_radius: np.ndarray | None = None
    unproven: dict[str, str] = field(default_factory=dict)
    derivative_radius: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def third(self) -> np.ndarray:
        """Third diagonal derivatives (for ``coords``)."""
        return self._order(3)

    @property
    def second(self) -> np.ndarray:
        """Second diagonal derivatives (for ``coords``)."""
        return self._order(2)

    def _order(self, k: int) -> np.ndarray:
        if k not in self.derivatives:
            raise KeyError(f"derivative of order {k} was not computed; pass orders=(..., {k})")
        return self.derivatives[k]

    def to_frame(self) -> pd.DataFrame:
        """One row per coordinate: theta, grad and the derivatives as float64."""
        df = pd.DataFrame(
            {
                "objective": self.objective,
                "format": self.format,
                "coord": np.arange(self.grad.size),
                "theta": [float(t) for t in self.theta],
                "grad": [float(g) for g in self.grad],
            }
        )
        for k, vals in sorted(self.derivatives.items()):
            col = np.full(self.grad.size, np.nan)
            col[self.coords] = [float(v) for v in vals]
            df[f"d{k}"] = col
        df.attrs.update(
            value=float(self.value),
            digits_verified=self.digits_verified,
            prec=self.prec,
            method=self.method,
        )
        return df


def _mp(x: Any) -> mpmath.mpf:
    """An mpf of any context as a global-context mpf, exactly."""
    return formats.exact_mpf(x)


def _agreement(lo: Iterable[Any], hi: Iterable[Any], digits: int) -> np.ndarray:
    """Per entry, decimal digits on which ``lo`` agrees with ``hi`` (capped at digits).

    An entry far below the vector's largest is judged against that scale times
    10**-digits, so exact zeros and tiny entries do not count as disagreements.
    """
    lo_l = [_mp(v) for v in lo]
    hi_l = [_mp(v) for v in hi]
    ctx = mpmath.MPContext()
    ctx.prec = 64
    scale = max((abs(v) for v in hi_l), default=mpmath.mpf(0))
    out = np.full(len(hi_l), float(digits))
    for i, (a, b) in enumerate(zip(lo_l, hi_l, strict=True)):
        if not (mpmath.isfinite(a) and mpmath.isfinite(b)):
            out[i] = 0.0  # an infinite or NaN derivative has no digits, even if both agree
            continue
        with mpmath.workprec(max(a.context.prec, 64)):
            diff = abs(mpmath.mpf(a) - mpmath.mpf(b))
        if diff == 0:
            continue
        ref = max(abs(b), scale * mpmath.mpf(10) ** (-digits))
        if ref == 0:
            out[i] = 0.0
            continue
        out[i] = min(float(digits), max(0.0, float(-ctx.log10(ctx.mpf(diff) / ctx.mpf(ref)))))
    return out


def _resolution(vals: Sequence[Any], bounds: Sequence[Any], digits: int) -> np.ndarray:
    """Per entry, the decimal digits its rounding-error bound leaves (capped at digits).

    Judged as :func:`_agreement` judges, against ``max(|v|, scale * 10**-digits)``: an
    entry whose bound reaches that reference is not resolved at all (0 digits).
    """
    v_l = [abs(_mp(v)) for v in vals]
    scale = max(v_l, default=mpmath.mpf(0))
    out = np.full(len(v_l), float(digits))
    for i, (v, e) in enumerate(zip(v_l, bounds, strict=True)):
        if e == 0:
            continue
        ref = max(v, scale * mpmath.mpf(10) ** (-digits))
        out[i] = 0.0 if ref == 0 else min(float(digits), max(0.0, float(-mpmath.log10(_mp(e) / ref))))
    return out


def _diag_derivatives(
    obj: Objective,
    theta: Sequence[Any],
    fmt: formats.Format,
    coords: np.ndarray,
    max_order: int,
    prec: int,
) -> tuple[list[list[Any]], list[list[Any]]]:
    """Derivatives 1..max_order of t -> J(theta + t e_i), per coordinate, and a bound on
    each one's rounding error.

    mpmath's step method (``mpmath.diffs``: ``max_order + 2`` points spaced
    ``2 h``, ``h = 2**-(prec + 10)``, at a precision raised in proportion to the
    order, so that the differences keep about ``prec`` bits), with the points of
    all coordinates evaluated in one batch instead of one call per point. The bound
    of order k is ``2**k`` values' rounding (``_ROUNDING_ULPS`` units of the last bit
    of the largest) over ``(2 h)**k``: when J is far larger than its differences, it
    says that they drowned in J's rounding (a 0 that is not a derivative).
    """
    addprec = 10
    b = max_order + 1
    workprec = (prec + 2 * addprec) * (b + 1)
    h = mpmath.ldexp(1, -prec - addprec)
    ks = range(-b, b + 1, 2)
    base = [formats.exact_mpf(t) for t in theta]
    rows = []
    for i in coords:
        for k in ks:
            row = list(base)
            row[int(i)] = mpmath.fadd(base[int(i)], k * h, exact=True)
            rows.append(row)
    ev = Evaluator.reference(obj, fmt, workprec)
    vals, _ = ev(ev.convert(np.asarray(rows, dtype=object)))
    ctx = ev.context
    norm = 2 * ctx.make_mpf(h._mpf_)
    out, bounds = [], []
    n_pts = len(ks)
    for a in range(len(coords)):
        y = list(vals[a * n_pts : (a + 1) * n_pts])
        out.append([ctx.difference(y, k) / norm**k for k in range(1, max_order + 1)])
        ulp = _ROUNDING_ULPS * max(abs(v) for v in y) * ctx.ldexp(1, -workprec)
        bounds.append([2**k * ulp / norm**k for k in range(1, max_order + 1)])
    return out, bounds


def _directional_derivatives(
    obj: Objective, theta: Sequence[Any], fmt: formats.Format, directions: np.ndarray, prec: int,
    workprec: int,
) -> list[Any]:
    """dJ/dv at theta for each row v of ``directions``: the central difference
    ``(J(theta + h v) - J(theta - h v)) / (2 h)``, ``h = 2**-(prec + 10)``, with the points
    formed exactly and J evaluated at ``workprec`` bits (truncation about ``h**2``)."""
    h = mpmath.ldexp(1, -prec - 10)
    base = [formats.exact_mpf(t) for t in theta]
    rows = [[mpmath.fadd(b, mpmath.fmul(k * h, float(vj), exact=True), exact=True)
             for b, vj in zip(base, v, strict=True)] for v in directions for k in (1, -1)]
    ev = Evaluator.reference(obj, fmt, workprec)
    vals, _ = ev(ev.convert(np.asarray(rows, dtype=object)))
    h_w = ev.context.make_mpf(h._mpf_)
    return [_mp((vals[2 * d] - vals[2 * d + 1]) / (2 * h_w)) for d in range(len(directions))]


def _cross_check(obj: Objective, theta: Sequence[Any], fmt: formats.Format, value: Any,
                 grad: Sequence[Any], prec: int, digits: int) -> None:
    """Refuse an analytic gradient that disagrees with J's own derivative.

    Along ``N_DIRECTIONS`` standard normal directions (``numpy.random.default_rng(0)``),
    ``grad . v`` must match ``dJ/dv`` (:func:`_directional_derivatives`) to ``digits``
    digits of ``sum |g_i v_i|``, plus the difference's rounding bound; the working
    precision gets J's dynamic range on top, so that the bound stays below that.
    """
    dirs = np.random.default_rng(0).standard_normal((N_DIRECTIONS, obj.n_params))
    h_bits = prec + 10
    with mpmath.workprec(prec + 64):
        terms = [[g * float(vj) for g, vj in zip(grad, v, strict=True)] for v in dirs]
        dots = [mpmath.fsum(t) for t in terms]
        tols = [mpmath.fsum(abs(x) for x in t) * mpmath.mpf(10) ** (-digits) for t in terms]
        # J's rounding over 2h must stay below each tolerance: log2(|J| / tol) bits above h's
        need = max((h_bits + 18 + int(mpmath.ceil(mpmath.log(abs(value) / t, 2)))
                    for t in tols if t > 0 and value != 0), default=0)
    workprec = max(2 * prec + 40, need)
    if workprec > 4 * MAX_PREC:
        raise VerificationError(
            f"grad of objective {obj.name!r} cannot be cross-checked in {fmt.name}: J = "
            f"{mpmath.nstr(value, 5)} needs {workprec} bits to resolve grad . v"
        )
    slopes = _directional_derivatives(obj, theta, fmt, dirs, prec, workprec)
    for d, (dot, slope, tol) in enumerate(zip(dots, slopes, tols, strict=True)):
        with mpmath.workprec(prec + 64):
            tol = tol + _ROUNDING_ULPS * 2 * abs(value) * mpmath.ldexp(1, h_bits - workprec)
            agrees = abs(dot - slope) <= tol
        if not agrees:
            raise ValueError(
                f"grad of objective {obj.name!r} disagrees with the derivative of its J in "
                f"{fmt.name}: along direction {d} (row {d} of default_rng(0).standard_normal"
                f"(({N_DIRECTIONS}, {obj.n_params}))), grad . v = {mpmath.nstr(dot, 17)} but "
                f"dJ/dv = {mpmath.nstr(slope, 17)} (differentiated at {workprec} bits; tolerance "
                f"{mpmath.nstr(tol, 3)}): grad is wrong, computes another function than fn, "
                "or theta0 lies on a kink of J"
            )


@dataclass(frozen=True)
class _Pass:
    """One computation of the reference at one precision."""

    value: Any
    grad: list[Any]
    grad_bounds: list[Any]  # rounding bounds of a numerical gradient (zeros if analytic)
    derivs: dict[int, list[Any]]
    deriv_bounds: dict[int, list[Any]]


def _compute(
    obj: Objective,
    theta: list[Any],
    fmt: formats.Format,
    prec: int,
    coords: np.ndarray,
    orders: tuple[int, ...],
    deriv_prec: int,
) -> _Pass:
    # the reference's namespace, called directly (confined as every evaluation is): the
    # analytic gradient runs in it too
    ns = Evaluator.reference(obj, fmt, prec).namespace()
    point = np.asarray(theta, dtype=object)
    value = _mp(evaluate_one(obj, point, ns))
    if not mpmath.isfinite(value):
        raise ValueError(f"J of objective {obj.name!r} is not finite at theta0 rounded to "
                         f"{fmt.name}: J = {value} (at {prec} bits)")
    if obj.grad is not None:
        grad = [_mp(v) for v in call_grad(obj, point, ns)]
        grad_bounds: list[Any] = [0] * obj.n_params
    else:
        d1, b1 = _diag_derivatives(obj, theta, fmt, np.arange(obj.n_params), 1, prec)
        grad, grad_bounds = [_mp(d[0]) for d in d1], [b[0] for b in b1]
    bad = [i for i, g in enumerate(grad) if not mpmath.isfinite(g)]
    if bad:
        raise ValueError(f"the gradient of objective {obj.name!r} is not finite at theta0 rounded "
                         f"to {fmt.name} (J = {mpmath.nstr(value, 17)}): components {bad[:10]} are "
                         f"{[str(grad[i]) for i in bad[:10]]}")
    derivs: dict[int, list[Any]] = {}
    bounds: dict[int, list[Any]] = {}
    if orders:
        ds, bs = _diag_derivatives(obj, theta, fmt, coords, max(orders), deriv_prec)
        for k in orders:
            derivs[k] = [_mp(d[k - 1]) for d in ds]
            bounds[k] = [b[k - 1] for b in bs]
    return _Pass(value, grad, grad_bounds, derivs, bounds)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def exact(
    obj: Objective,
    format: formats.Format | str = "float64",
    digits: int = 50,
    orders: Sequence[int] = (2, 3),
    coords: Sequence[int] | None = None,
    derivative_digits: int = 20,
    *,
    prove: bool | None = None,
) -> ExactResult:
    """Exact value, gradient and diagonal derivatives of ``obj`` at a format's inputs.

    Parameters
    ----------
    obj : Objective
    format : str or Format
        theta0 and the objective's data are rounded to this format first.
    digits : int
        Decimal digits wanted for value and gradient.
    orders : sequence of int
        Orders k >= 2 of the diagonal derivatives d^k J / d theta_i^k to compute
        (2 and 3 for forward and central, 5 and 7 for central4 and central6).
    coords : sequence of int, optional
        Coordinates for the derivatives (all by default).
    derivative_digits : int
        Decimal digits wanted for the derivatives (they feed error models). A
        derivative whose differences are not resolved above J's rounding gets 0
        digits in ``derivative_digits``.
    prove : bool or None
        None (the default): the reference comes from ball-arithmetic enclosures
        (:mod:`gradlab.analysis.enclosure`: J, the gradient, the derivatives as Taylor
        coefficients, and an analytic gradient cross-checked against J's enclosed directional
        derivatives), with ``proven``, ``value_radius``, ``grad_radius`` and
        ``derivative_radius`` set; where the balls cannot give it (theta on a kink, a branch
        undecided at the precision cap, fewer digits proven than asked), mpmath computes it as
        with False and ``unproven["reference"]`` says why. False: mpmath only, verified by
        recomputation (the independent cross-check of the balls). True: as None, but the mpmath
        fallback must lie inside the enclosures it is then given (a disagreement raises
        VerificationError).

    Returns
    -------
    ExactResult

    Raises
    ------
    VerificationError
        If value or gradient cannot be verified to ``digits`` digits in three
        attempts (the precision doubled each time) or, for a numerical gradient
        whose differences J's magnitude swamps, up to :data:`MAX_PREC` bits.
    ValueError
        If ``digits`` or ``derivative_digits`` is not a positive integer, J or the
        gradient is not finite, or ``obj.grad`` disagrees with J's own derivative
        along a random direction.
    NamespaceEscapeError
        If fn or grad compute outside the namespace they are given.

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> obj = gl.Objective(lambda t, xp: xp.sum(xp.exp(t)), np.zeros(2),
    ...                    grad=lambda t, xp: xp.exp(t))
    >>> ref = gl.exact(obj, digits=30, orders=(3,))
    >>> float(ref.grad[0]), float(ref.third[1]), ref.digits_verified
    (1.0, 1.0, 30)
    """
    fmt = formats.get(format)
    digits = _positive_int("digits", digits)
    derivative_digits = _positive_int("derivative_digits", derivative_digits)
    orders_t = tuple(sorted(set(int(k) for k in orders)))
    if any(k < 2 for k in orders_t):
        raise ValueError(f"orders must be >= 2 (order 1 is the gradient), got {orders}")
    n = obj.n_params
    coords_a = np.arange(n) if coords is None else np.asarray(coords, dtype=int)
    if coords_a.size and (coords_a.min() < 0 or coords_a.max() >= n):
        raise ValueError(f"coords must lie in [0, {n}), got {coords_a.min()}..{coords_a.max()}")
    theta = formats.round_to_mpf(obj.theta0, fmt)
    if not all(mpmath.isfinite(t) for t in theta):
        raise ValueError(f"theta0 overflows format {fmt.name}")

    if prove is not False:
        enclosed, why = _from_enclosures(obj, fmt, theta, digits, orders_t, coords_a, derivative_digits)
        if enclosed is not None:
            return _recorded(obj, enclosed)
    guard = 64
    prec = digits_to_bits(digits) + guard
    dprec = digits_to_bits(derivative_digits) + guard
    attempt = 0
    while True:
        hi_prec, hi_dprec = prec + max(64, prec // 2), dprec + max(32, dprec // 2)
        lo = _compute(obj, theta, fmt, prec, coords_a, orders_t, dprec)
        hi = _compute(obj, theta, fmt, hi_prec, coords_a, orders_t, hi_dprec)
        # the value and the gradient each judged on its own scale: J's size says nothing of g's
        agree = min(_agreement([lo.value], [hi.value], digits).min(),
                    _agreement(lo.grad, hi.grad, digits).min())
        resolved = _resolution(lo.grad, lo.grad_bounds, digits)
        verified = math.floor(min(agree, resolved.min()))
        if verified >= digits:
            break
        attempt += 1
        unresolved = np.flatnonzero(resolved < digits).tolist()
        # three attempts for a disagreement; a dynamic range is followed up to MAX_PREC
        if (unresolved and 2 * prec > MAX_PREC) or (attempt >= 3 and not unresolved):
            why = (f"; gradient components {unresolved[:10]} drown in the rounding of J = "
                   f"{mpmath.nstr(lo.value, 5)} (the limit is MAX_PREC = {MAX_PREC} bits)"
                   if unresolved else "")
            raise VerificationError(
                f"exact reference of {obj.name!r} in {fmt.name}: only {verified} of {digits} "
                f"digits verified at {prec} bits{why}"
            )
        prec, dprec = 2 * prec, 2 * dprec
    if obj.grad is not None:
        _cross_check(obj, theta, fmt, hi.value, hi.grad, hi_prec, digits)
    dd = {k: np.minimum(_agreement(lo.derivs[k], hi.derivs[k], derivative_digits),
                        _resolution(lo.derivs[k], lo.deriv_bounds[k], derivative_digits))
          for k in orders_t}
    result = ExactResult(
        objective=obj.name,
        format=fmt.name,
        theta=np.asarray(theta, dtype=object),
        value=hi.value,
        grad=np.asarray(hi.grad, dtype=object),
        derivatives={k: np.asarray(v, dtype=object) for k, v in hi.derivs.items()},
        coords=coords_a,
        digits=int(digits),
        digits_verified=verified,
        derivative_digits=dd,
        prec=hi_prec,
        method="analytic" if obj.grad is not None else "numerical",
    )
    if prove:
        return _recorded(obj, _with_proof(result, obj, fmt, derivative_digits))
    return _recorded(obj, result if prove is False else replace(result, unproven={"reference": why}))


# which objective each reference was computed from, without keeping either alive
_SOURCES: weakref.WeakKeyDictionary[Objective, list[weakref.ref[ExactResult]]] = weakref.WeakKeyDictionary()


def _recorded(obj: Objective, result: ExactResult) -> ExactResult:
    live = [r for r in _SOURCES.get(obj, []) if r() is not None]
    _SOURCES[obj] = [*live, weakref.ref(result)]
    return result


def computed_from(result: ExactResult, obj: Objective) -> bool:
    """Whether :func:`exact` computed ``result`` from this very Objective object (fn, grad and
    data are then its own; theta0 may have changed since, which callers check)."""
    return any(r() is result for r in _SOURCES.get(obj, []))


def _proven_digits(mids: Sequence[Any] | np.ndarray, radii: np.ndarray, digits: int) -> np.ndarray:
    """Per entry, the decimal digits its ball's radius proves (capped at ``digits``), judged as
    :func:`_agreement` judges: against ``max(|mid|, scale * 10**-digits)``, so an exact zero,
    or an entry far below the vector's largest, is not a shortfall."""
    mags = np.abs(np.array([float(_mp(m)) for m in mids], dtype=np.float64))
    radii = np.asarray(radii, dtype=np.float64)
    scale = mags.max(initial=0.0)
    ref = np.maximum(mags, scale * 10.0 ** -digits)
    with np.errstate(divide="ignore", invalid="ignore"):
        have = np.floor(-np.log10(radii / ref))
    out = np.where(radii == 0, float(digits), np.where(ref > 0, have, 0.0))
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, float(digits))


def _from_enclosures(obj: Objective, fmt: formats.Format, theta: list[Any], digits: int,
                     orders: tuple[int, ...], coords: np.ndarray, derivative_digits: int
                     ) -> tuple[ExactResult | None, str]:
    """The reference from ball-arithmetic enclosures alone, or None and the reason it cannot be.

    Value and gradient (the analytic one, or J's Taylor coefficients) must prove ``digits``;
    an analytic gradient is cross-checked against ``fn``'s own directional derivatives, also
    enclosed. The derivatives report the digits their balls prove.
    """
    try:
        enc = enclose(obj, fmt, digits=digits)
        if enc.grad is None:
            first = enclose_derivatives(obj, fmt, (1,), None, digits=digits)
            grad_balls, grad_radius, prec = first.derivatives[1], first.radius[1], first.prec
        else:
            assert enc.grad_radius is not None
            grad_balls, grad_radius, prec = enc.grad, enc.grad_radius, enc.prec
        de = enclose_derivatives(obj, fmt, orders, coords, digits=derivative_digits) if orders else None
    except (KinkError, ValueError) as e:
        return None, f"ball arithmetic could not enclose J: {e}"
    if not (enc.value.is_finite() and all(b.is_finite() for b in grad_balls)):
        return None, "a ball of J or of the gradient is not finite"
    try:
        again = enclose_value(obj, fmt, enc.prec + 64)
    except BranchUndecided as e:
        return None, f"ball arithmetic could not enclose J: {e}"
    if not again.overlaps(enc.value):
        # both balls are true if fn is a function of theta: it depends on the precision instead
        raise VerificationError(
            f"exact reference of {obj.name!r} in {fmt.name}: not verified: J's balls at {enc.prec} "
            f"and {enc.prec + 64} bits do not overlap ({enc.value.str(10)} against "
            f"{again.str(10)}): fn depends on the working precision")
    grad = [mpf_mid(b) for b in grad_balls]
    verified = int(min(_proven_digits([mpf_mid(enc.value)], np.array([enc.value_radius]), digits)[0],
                       _proven_digits(grad, grad_radius, digits).min(initial=float(digits))))
    if verified < digits:
        return None, f"the balls prove {verified} of {digits} digits at {prec} bits"
    if obj.grad is not None:
        why = _cross_check_balls(obj, fmt, grad_balls, prec, digits)
        if why:
            return None, why
    derivs = {} if de is None else {k: np.asarray([mpf_mid(b) for b in v], dtype=object)
                                    for k, v in de.derivatives.items()}
    dd = {} if de is None else {k: _proven_digits(derivs[k], de.radius[k], derivative_digits)
                                for k in orders}
    unproven = {f"d{k}[{int(i)}]": f"{int(d)} of {derivative_digits} digits proven"
                for k, ds in dd.items() for i, d in zip(coords, ds, strict=True)
                if d < derivative_digits}
    return ExactResult(
        objective=obj.name, format=fmt.name, theta=np.asarray(theta, dtype=object),
        value=mpf_mid(enc.value), grad=np.asarray(grad, dtype=object), derivatives=derivs,
        coords=coords, digits=int(digits), digits_verified=verified, derivative_digits=dd,
        prec=prec, method="analytic" if obj.grad is not None else "numerical",
        proven=not unproven, value_radius=enc.value_radius, grad_radius=np.asarray(grad_radius),
        unproven=unproven, derivative_radius={} if de is None else dict(de.radius),
    ), ""


def _cross_check_balls(obj: Objective, fmt: formats.Format, grad: np.ndarray, prec: int,
                       digits: int) -> str:
    """Refuse an analytic gradient whose ``grad . v`` ball misses ``dJ/dv``'s, along the
    directions of :func:`_cross_check`: a proof that grad is not J's gradient. Returns why the
    check could not decide (balls too wide to resolve ``digits``), or "" when it passed."""
    dirs = np.random.default_rng(0).standard_normal((N_DIRECTIONS, obj.n_params))
    try:
        pairs = gradient_along(obj, fmt, grad, dirs, prec)
    except KinkError as e:
        return f"the cross-check of grad could not be enclosed: {e}"
    with working_precision(prec):
        for d, (dot, size, slope) in enumerate(pairs):
            if not dot.overlaps(slope):
                raise ValueError(
                    f"grad of objective {obj.name!r} disagrees with the derivative of its J in "
                    f"{fmt.name}: along direction {d} (row {d} of default_rng(0).standard_normal"
                    f"(({N_DIRECTIONS}, {obj.n_params}))), grad . v = {dot.str(17, radius=False)} "
                    f"but dJ/dv = {slope.str(17, radius=False)}, both proven by ball arithmetic: "
                    "grad is wrong, computes another function than fn, or theta0 lies on a kink of J")
            if dot.rad() + slope.rad() > size * arb(10) ** -digits:
                return f"the cross-check of grad along direction {d} is not resolved at {prec} bits"
    return ""


def _with_proof(result: ExactResult, obj: Objective, fmt: formats.Format,
                derivative_digits: int) -> ExactResult:
    """``result`` with the enclosure's proof attached, once its values are inside the balls.

    Each radius is the ball's radius plus the distance of the verified value from the ball's
    midpoint, so it bounds the reported value's own error."""
    if obj.grad is None:
        raise ValueError("prove: only an analytic gradient (obj.grad) can be enclosed")
    enc: Enclosure = enclose(obj, fmt, digits=result.digits)
    assert enc.grad is not None and enc.grad_radius is not None

    def bound(value: Any, ball: Any, radius: float, label: str) -> float:
        gap = float(abs(_mp(value) - mpf_mid(ball)))
        if gap > radius and gap > 0:
            raise VerificationError(f"{label} of objective {obj.name!r}: the verified value "
                                    f"{mpmath.nstr(_mp(value), 20)} lies outside its proven "
                                    f"enclosure {ball} (radius {radius:.3g})")
        return float(np.nextafter(radius + gap, np.inf)) if gap else radius

    value_radius = bound(result.value, enc.value, enc.value_radius, "J")
    grad_radius = np.array([bound(g, b, r, f"grad[{i}]") for i, (g, b, r) in
                            enumerate(zip(result.grad, enc.grad, enc.grad_radius, strict=True))])
    unproven = dict(enc.unproven)
    radii: dict[int, np.ndarray] = {}
    if result.derivatives:
        de = enclose_derivatives(obj, fmt, tuple(result.derivatives), result.coords,
                                 digits=derivative_digits)
        unproven.update(de.unproven)
        for k, vals in result.derivatives.items():
            # a verified derivative carries derivative_digits only: its gap to the ball's
            # midpoint may exceed the ball's radius by that much, and the bound includes it
            radii[k] = np.array([
                float(np.nextafter(r + float(abs(_mp(v) - mpf_mid(b))), np.inf))
                for v, b, r in zip(vals, de.derivatives[k], de.radius[k], strict=True)])
            tol = [10.0 ** -max(float(d), 1.0) * abs(float(_mp(v))) for v, d in
                   zip(vals, result.derivative_digits[k], strict=True)]
            far = [i for i, (rad, r, t) in enumerate(zip(radii[k], de.radius[k], tol, strict=True))
                   if rad > 2 * (r + t) + 1e-300]
            if far:
                raise VerificationError(f"derivative of order {k} of objective {obj.name!r}: the "
                                        f"verified values at coords {result.coords[far][:5].tolist()} "
                                        "lie outside their proven enclosures")
    return replace(result, proven=enc.proven and not unproven, value_radius=value_radius,
                   grad_radius=grad_radius, unproven=unproven, derivative_radius=radii)
