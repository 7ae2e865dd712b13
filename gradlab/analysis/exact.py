"""The exact reference: value, gradient and diagonal derivatives in mpmath.

Everything is evaluated at the format's rounded inputs (theta and data rounded to
the format once, then every operation exact to the working precision), twice at
two precisions; the digits on which the two agree are reported as
``digits_verified``, and too few raise :class:`VerificationError`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
import pandas as pd

from gradlab.arithmetic import formats
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.objective import Objective

__all__ = ["ExactResult", "VerificationError", "bits_to_digits", "digits_to_bits", "exact", "reference_bits"]

LOG2_10 = math.log2(10)


class VerificationError(ArithmeticError):
    """The reference recomputed at a higher precision did not confirm its digits."""


def digits_to_bits(digits: float) -> int:
    """Bits of precision that carry ``digits`` decimal digits."""
    return math.ceil(digits * LOG2_10)


def bits_to_digits(bits: float) -> int:
    """Decimal digits that carry ``bits`` bits of precision (rounded up)."""
    return math.ceil(bits / LOG2_10)


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
        Digits on which value and gradient agree with a recomputation at a
        higher precision (capped at ``digits``).
    derivative_digits : dict of int -> ndarray of float
        Verified digits of each derivative, per coordinate (a coordinate at a
        kink shows few).
    prec : int
        Working precision in bits of the returned values.
    method : str
        ``"analytic"`` (the objective's gradient evaluated in mpmath) or
        ``"numerical"`` (high-precision differentiation of J).
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
            out[i] = digits if a == b else 0.0
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


def _diag_derivatives(
    obj: Objective,
    theta: Sequence[Any],
    fmt: formats.Format,
    coords: np.ndarray,
    max_order: int,
    prec: int,
) -> list[list[Any]]:
    """Derivatives 1..max_order of t -> J(theta + t e_i), per coordinate.

    mpmath's step method (``mpmath.diffs``: ``max_order + 2`` points spaced
    ``2 h``, ``h = 2**-(prec + 10)``, at a precision raised in proportion to the
    order, so that the differences keep about ``prec`` bits), with the points of
    all coordinates evaluated in one batch instead of one call per point.
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
    out = []
    n_pts = len(ks)
    for a in range(len(coords)):
        y = list(vals[a * n_pts : (a + 1) * n_pts])
        out.append([ctx.difference(y, k) / norm**k for k in range(1, max_order + 1)])
    return out


def _compute(
    obj: Objective,
    theta: list[Any],
    fmt: formats.Format,
    prec: int,
    coords: np.ndarray,
    orders: tuple[int, ...],
    deriv_prec: int,
) -> tuple[Any, list[Any], dict[int, list[Any]]]:
    # the reference's namespace, called directly: the analytic gradient runs in it too
    ns = Evaluator.reference(obj, fmt, prec).namespace()
    th = ns.from_values(np.asarray(theta, dtype=object))
    raw = np.asarray(obj.fn(th, ns))
    if raw.shape != ():
        raise ValueError(f"fn of objective {obj.name!r} must return a scalar J, got shape {raw.shape}")
    value = _mp(raw[()])
    derivs: dict[int, list[Any]] = {}
    if obj.grad is not None:
        g = np.asarray(obj.grad(th, ns), dtype=object)
        if g.shape != (obj.n_params,):
            raise ValueError(
                f"grad of objective {obj.name!r} must return shape ({obj.n_params},), "
                f"got {g.shape}"
            )
        grad = [_mp(v) for v in g]
    else:
        all_coords = np.arange(obj.n_params)
        d1 = _diag_derivatives(obj, theta, fmt, all_coords, 1, prec)
        grad = [_mp(d[0]) for d in d1]
    if orders:
        ds = _diag_derivatives(obj, theta, fmt, coords, max(orders), deriv_prec)
        for k in orders:
            derivs[k] = [_mp(d[k - 1]) for d in ds]
    return value, grad, derivs


def exact(
    obj: Objective,
    format: formats.Format | str = "float64",
    digits: int = 50,
    orders: Sequence[int] = (2, 3),
    coords: Sequence[int] | None = None,
    derivative_digits: int = 20,
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
        Decimal digits wanted for the derivatives (they feed error models).

    Returns
    -------
    ExactResult

    Raises
    ------
    VerificationError
        If value or gradient cannot be verified to ``digits`` digits even after
        raising the working precision twice.

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
    if not isinstance(digits, (int, np.integer)) or digits < 1:
        raise ValueError(f"digits must be a positive integer, got {digits!r}")
    orders_t = tuple(sorted(set(int(k) for k in orders)))
    if any(k < 2 for k in orders_t):
        raise ValueError(f"orders must be >= 2 (order 1 is the gradient), got {orders}")
    n = obj.n_params
    coords_a = np.arange(n) if coords is None else np.asarray(coords, dtype=int)
    if coords_a.size and (coords_a.min() < 0 or coords_a.max() >= n):
        raise ValueError(f"coords must lie in [0, {n}), got {coords_a.min()}..{coords_a.max()}")
    theta = [formats.round_exact(t, fmt) for t in obj.theta0]
    if not all(mpmath.isfinite(t) for t in theta):
        raise ValueError(f"theta0 overflows format {fmt.name}")

    guard = 64
    prec = digits_to_bits(digits) + guard
    dprec = digits_to_bits(derivative_digits) + guard
    for _attempt in range(3):
        hi_prec, hi_dprec = prec + max(64, prec // 2), dprec + max(32, dprec // 2)
        v_lo, g_lo, d_lo = _compute(obj, theta, fmt, prec, coords_a, orders_t, dprec)
        v_hi, g_hi, d_hi = _compute(obj, theta, fmt, hi_prec, coords_a, orders_t, hi_dprec)
        agree = _agreement([v_lo, *g_lo], [v_hi, *g_hi], digits)
        verified = math.floor(agree.min())
        if verified >= digits:
            break
        prec, dprec = 2 * prec, 2 * dprec
    else:
        raise VerificationError(
            f"exact reference of {obj.name!r} in {fmt.name}: only {verified} of {digits} "
            f"digits verified at {prec // 2} bits"
        )
    dd = {k: _agreement(d_lo[k], d_hi[k], derivative_digits) for k in orders_t}
    return ExactResult(
        objective=obj.name,
        format=fmt.name,
        theta=np.asarray(theta, dtype=object),
        value=v_hi,
        grad=np.asarray(g_hi, dtype=object),
        derivatives={k: np.asarray(v, dtype=object) for k, v in d_hi.items()},
        coords=coords_a,
        digits=int(digits),
        digits_verified=verified,
        derivative_digits=dd,
        prec=hi_prec,
        method="analytic" if obj.grad is not None else "numerical",
    )
