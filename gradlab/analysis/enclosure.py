"""Proven enclosures of J and its gradient: ball arithmetic, precision raised until proven.

:func:`enclose` evaluates an objective's J and analytic gradient at the format's rounded
theta and data in :class:`~gradlab.arithmetic.balls.BallNamespace`, doubling the working
precision until every requested digit is proven: a ball of midpoint m and radius r proves d
digits when ``r <= 10**-d |m|`` (and does not contain 0). A component whose ball keeps
containing 0 up to the precision cap (an exact zero, or a value below every radius) cannot
have relative digits; it is reported with its absolute radius, never guessed. A branch
whose comparison stays undecided raises the precision too; theta exactly on a branch is a
kink, reported as :class:`KinkError` rather than resolved by picking a side.

This is a proof about the objective's code as written (its ``fn`` and ``grad``), under Arb's
rigorous error bounds: not an agreement of two approximations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flint import arb, arb_mat, arb_series

from gradlab.analysis.bits import MAX_PREC, digits_to_bits
from gradlab.arithmetic import formats, validation
from gradlab.arithmetic.balls import (
    BallNamespace,
    BranchUndecided,
    SeriesNamespace,
    arb_from_mpf,
    arb_upper,
    finite,
    midpoints,
    mpf_mid,
    radii,
    working_precision,
)
from gradlab.arithmetic.objective import Objective, call_grad

__all__ = ["DerivativeEnclosure", "Enclosure", "KinkError", "enclose", "enclose_derivatives",
           "enclose_directional", "enclose_value", "gradient_along"]


class KinkError(ArithmeticError):
    """theta sits exactly on a branch of the objective (ReLU at 0, a tie of a maximum): J is
    not differentiable there, and no precision decides which side the gradient is of."""


@dataclass(frozen=True)
class Enclosure:
    """Balls that provably contain J and its gradient at the format's theta and data.

    Attributes
    ----------
    objective, format : str
    value : flint.arb
    grad : ndarray of flint.arb, or None without an analytic gradient
    value_radius : float
        A float64 upper bound of |value - J|.
    grad_radius : ndarray of float, or None
        Per component, an upper bound of |grad_i - dJ/dtheta_i|.
    digits : int
        The requested relative digits.
    proven : bool
        Every requested digit of the value and of every gradient component is proven.
    unproven : dict of str -> str
        What could not be proven and why (``"value"`` or ``"grad[i]"``).
    prec : int
        The working precision of the final evaluation, in bits.
    """

    objective: str
    format: str
    value: Any
    grad: np.ndarray | None
    value_radius: float
    grad_radius: np.ndarray | None
    digits: int
    proven: bool
    unproven: dict[str, str] = field(default_factory=dict)
    prec: int = 0

    def value_mid(self) -> float:
        """The value's midpoint as a float64 (rounded to nearest)."""
        return float(mpf_mid(self.value))


def _shortfalls(balls: Any, digits: int) -> list[str]:
    """Per ball, why it does not prove ``digits`` relative digits, or "" when it does: a
    ball of midpoint m and radius r proves them when ``r <= 10**-digits |m|``."""
    b = np.atleast_1d(np.asarray(balls, dtype=object))
    ok = finite(b)
    rad = radii(b)
    # |m| rounded down, so that rounding to float64 never proves a digit too many
    mid = np.abs(midpoints(b)) * (1 - 2.0**-52)
    with np.errstate(divide="ignore", invalid="ignore"):
        have = np.floor(-np.log10(rad / mid))
    out = []
    for i in range(b.size):
        if not ok[i]:
            out.append("not finite")
        elif rad[i] == 0 or (mid[i] > rad[i] and have[i] >= digits):
            out.append("")
        elif mid[i] == 0 or rad[i] >= mid[i]:
            out.append(f"its ball contains 0 (radius {rad[i]:.3g}): no relative digit can be proven")
        else:
            out.append(f"{int(have[i])} digits proven")
    return out


def _evaluate(obj: Objective, fmt: formats.Format, theta: np.ndarray, prec: int) -> tuple[Any, Any]:
    ns = BallNamespace(prec, data_format=fmt)
    point = ns.from_values(theta)
    value = ns.call(obj.fn, point, f"fn of objective {obj.name!r}")[()]
    grad = None if obj.grad is None else call_grad(obj, theta, ns)
    return value, grad


def enclose_value(obj: Objective, format: formats.Format | str, prec: int) -> Any:
    """The ball of J at the format's theta and data, evaluated at ``prec`` bits (no retry)."""
    fmt = validation.one_format("format", format)
    ns = BallNamespace(prec, data_format=fmt)
    point = ns.from_values(np.asarray(formats.round_to_mpf(obj.theta0, fmt), dtype=object))
    return ns.call(obj.fn, point, f"fn of objective {obj.name!r}")[()]


def enclose(obj: Objective, format: formats.Format | str = "float64", digits: int = 30, *,
            max_prec: int = MAX_PREC) -> Enclosure:
    """Prove ``digits`` relative digits of J and of its analytic gradient at the format's theta.

    Parameters
    ----------
    obj : Objective
        Batch safety is not needed: one point is evaluated.
    format : str or Format
        The format whose rounded theta, data and constants J is enclosed at.
    digits : int
        Requested relative digits (1 to 4000).
    max_prec : int
        The precision cap in bits; what is unproven there is reported in ``unproven``.

    Returns
    -------
    Enclosure

    Raises
    ------
    KinkError
        If theta sits exactly on a branch.

    Examples
    --------
    >>> import gradlab as gl
    >>> e = enclose(gl.objectives.seed_net(stable=True), "float32", digits=25)
    >>> e.proven, e.value_radius < 1e-25 * abs(e.value_mid())
    (True, True)
    """
    validation.objective("obj", obj)
    fmt = validation.one_format("format", format)
    digits = validation.integer("digits", digits, 1)
    if digits > 4000:
        raise ValueError(f"digits must be at most 4000, got {digits}")
    theta = np.asarray(formats.round_to_mpf(obj.theta0, fmt), dtype=object)
    if not all(np.isfinite(float(t)) for t in theta):
        raise ValueError(f"theta0 overflows format {fmt.name}")
    prec = digits_to_bits(digits) + 32
    while True:
        try:
            value, grad = _evaluate(obj, fmt, theta, prec)
        except BranchUndecided as e:
            if e.on_branch:
                raise KinkError(f"objective {obj.name!r} at theta0 rounded to {fmt.name}: {e}; "
                                "its gradient there is one-sided only") from None
            if prec >= max_prec:
                raise KinkError(f"objective {obj.name!r}: a branch is still undecided at the "
                                f"precision cap of {max_prec} bits ({e})") from None
            prec = min(2 * prec, max_prec)
            continue
        short = {"value": _shortfalls(value, digits)[0]}
        if grad is not None:
            short.update({f"grad[{i}]": why for i, why in enumerate(_shortfalls(grad, digits))})
        unproven = {k: v for k, v in short.items() if v}
        # a ball around 0 may hold a small value that more bits separate from 0
        retry = any("not finite" not in v for v in unproven.values())
        if not retry or prec >= max_prec:
            break
        prec = min(2 * prec, max_prec)
    if not value.is_finite():
        raise ValueError(f"J of objective {obj.name!r} is not finite at theta0 rounded to "
                         f"{fmt.name}: its ball is {value}")
    return Enclosure(
        objective=obj.name, format=fmt.name, value=value, grad=grad,
        value_radius=arb_upper(value.rad()),
        grad_radius=None if grad is None else radii(grad),
        digits=digits, proven=not unproven, unproven=unproven, prec=prec,
    )


@dataclass(frozen=True)
class DerivativeEnclosure:
    """Balls that provably contain diagonal derivatives ``d^k J / d theta_i^k``.

    Attributes
    ----------
    coords : ndarray of int
    derivatives : dict of int -> ndarray of flint.arb
        By order k, one ball per coordinate.
    radius : dict of int -> ndarray of float
        Upper bounds of each ball's radius.
    proven : bool
        Every requested digit of every derivative is proven.
    unproven : dict of str -> str
        What could not be proven (``"d3[i]"``), and why.
    prec : int
    """

    coords: np.ndarray
    derivatives: dict[int, np.ndarray]
    radius: dict[int, np.ndarray]
    proven: bool
    unproven: dict[str, str]
    prec: int


def _series_rows(obj: Objective, fmt: formats.Format, theta: np.ndarray, coords: np.ndarray,
                 order: int, prec: int) -> np.ndarray:
    """The Taylor series of ``t -> J(theta + t e_i)`` for each coordinate, to ``order``."""
    ns = SeriesNamespace(prec, order, data_format=fmt, batch_ndim=1 if obj.batch_safe else 0)
    if obj.batch_safe:
        return ns.call(obj.fn, ns.seeded(theta, coords), f"fn of objective {obj.name!r}")
    one = [ns.call(obj.fn, row, f"fn of objective {obj.name!r}")[()]
           for row in ns.seeded(theta, coords)]
    out = np.empty(len(one), dtype=object)
    out[:] = one
    return out


def enclose_derivatives(obj: Objective, format: formats.Format | str = "float64",
                        orders: tuple[int, ...] = (2, 3), coords: Any = None, digits: int = 20, *,
                        max_prec: int = MAX_PREC) -> DerivativeEnclosure:
    """Prove ``digits`` digits of the diagonal derivatives of J at the format's theta.

    J is evaluated in :class:`~gradlab.arithmetic.balls.SeriesNamespace`, one Taylor series
    per coordinate; the coefficient of ``t**k`` times k! encloses the k-th derivative. The
    precision doubles until every digit is proven or ``max_prec`` is reached, as in
    :func:`enclose`.

    Raises
    ------
    KinkError
        If theta sits exactly on a branch.
    """
    validation.objective("obj", obj)
    fmt = validation.one_format("format", format)
    digits = validation.integer("digits", digits, 1)
    orders = tuple(sorted({validation.integer("orders", k, 1) for k in orders}))
    idx = (np.arange(obj.n_params) if coords is None
           else validation.indices("coords", coords, obj.n_params))
    theta = np.asarray(formats.round_to_mpf(obj.theta0, fmt), dtype=object)
    prec = digits_to_bits(digits) + 32
    while True:
        try:
            series = _series_rows(obj, fmt, theta, idx, max(orders), prec)
        except BranchUndecided as e:
            if e.on_branch or prec >= max_prec:
                raise KinkError(f"objective {obj.name!r} at theta0 rounded to {fmt.name}: "
                                f"{e}") from None
            prec = min(2 * prec, max_prec)
            continue
        derivs: dict[int, np.ndarray] = {}
        for k in orders:
            with working_precision(prec):  # k! c_k at the series' precision, not at 53 bits
                balls = [(s.coeffs()[k] if len(s.coeffs()) > k else arb(0)) * math.factorial(k)
                         for s in series]
            derivs[k] = np.empty(len(balls), dtype=object)
            derivs[k][:] = balls
        unproven = {f"d{k}[{int(i)}]": why for k in orders
                    for i, why in zip(idx, _shortfalls(derivs[k], digits), strict=True) if why}
        if not any("not finite" not in v for v in unproven.values()) or prec >= max_prec:
            break
        prec = min(2 * prec, max_prec)
    return DerivativeEnclosure(
        coords=idx, derivatives=derivs,
        radius={k: radii(v) for k, v in derivs.items()},
        proven=not unproven, unproven=unproven, prec=prec)


def enclose_directional(obj: Objective, format: formats.Format | str, directions: np.ndarray,
                        prec: int) -> np.ndarray:
    """Balls of ``dJ/dv`` at the format's theta, one per row v of ``directions``: the
    coefficient of t in the Taylor series of ``t -> J(theta + t v)``, from ``fn`` alone.

    The independent side of an analytic gradient's cross-check: a ball of ``grad . v`` that
    does not meet this one proves that ``grad`` is not J's gradient.

    Raises
    ------
    KinkError
        If theta sits on a branch, or a branch stays undecided at ``prec`` bits.
    """
    fmt = validation.one_format("format", format)
    theta = [arb_from_mpf(t) for t in formats.round_to_mpf(obj.theta0, fmt)]
    dirs = np.asarray(directions, dtype=np.float64)
    ns = SeriesNamespace(prec, 1, data_format=fmt, batch_ndim=1 if obj.batch_safe else 0)
    rows = np.empty(dirs.shape, dtype=object)
    with working_precision(prec):
        for r, v in enumerate(dirs):
            rows[r, :] = [arb_series([t, arb(x)]) for t, x in zip(theta, v.tolist(), strict=True)]
    try:
        label = f"fn of objective {obj.name!r}"
        series: Any = (ns.call(obj.fn, rows, label) if obj.batch_safe
                       else [ns.call(obj.fn, row, label)[()] for row in rows])
    except BranchUndecided as e:
        raise KinkError(f"objective {obj.name!r} at theta0 rounded to {fmt.name}: {e}") from None
    out = np.empty(len(rows), dtype=object)
    out[:] = [s.coeffs()[1] if len(s.coeffs()) > 1 else arb(0) for s in series]
    return out


def gradient_along(obj: Objective, format: formats.Format | str, grad: Any, directions: np.ndarray,
                   prec: int) -> list[tuple[Any, Any, Any]]:
    """Per row v of ``directions``, the balls of ``grad . v``, of ``sum |grad_i v_i|`` (the
    dot product's scale) and of fn's own ``dJ/dv`` (:func:`enclose_directional`): balls of
    ``grad . v`` and ``dJ/dv`` that miss each other prove that ``grad`` is not J's gradient.

    Raises
    ------
    KinkError
        As :func:`enclose_directional`.
    """
    dirs = np.asarray(directions, dtype=np.float64)
    slopes = enclose_directional(obj, format, dirs, prec)
    with working_precision(prec):  # the dot products in Arb's C
        cols = dirs.T.tolist()
        dots = (arb_mat([list(grad)]) * arb_mat([[arb(x) for x in row] for row in cols])).entries()
        sizes = (arb_mat([[abs(g) for g in grad]])
                 * arb_mat([[arb(abs(x)) for x in row] for row in cols])).entries()
    return list(zip(dots, sizes, slopes, strict=True))
