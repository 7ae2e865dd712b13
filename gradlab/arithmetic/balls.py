"""Ball arithmetic (python-flint's Arb) as an evaluation namespace: proven enclosures.

:class:`BallNamespace` evaluates an objective written once (``fn(theta, xp)``) on object
arrays of ``flint.arb``: midpoint-radius intervals whose every operation (the arithmetic
operators, ``exp``, ``log``, ``log1p``, ``expm1``, ``sin``, ``cos``, ``tanh``, ``sqrt``, sums and
matrix products) returns a ball that provably contains the exact result of the operation on
every point of its input balls. So J and its analytic gradient come out as balls that contain
the exact J and gradient of the code as written, at the format's rounded theta and data.

Branches. ``relu``, ``maximum``, ``abs`` and ``where`` need a comparison's sign. A ball
comparison is decided only when the balls do not overlap; otherwise :class:`BranchUndecided`
is raised: the caller raises the precision, and where both sides are exact and equal (theta
sits exactly on the branch), no precision decides it and the error says ``on_branch``: a kink,
reported rather than guessed. ``max`` (the shift of a stable log-sum-exp) uses the midpoints'
maximum, an exact constant: the function's value does not depend on the shift, so no branch
is taken.

Precision. Arb's working precision is a process-wide setting; the namespace sets it for the
duration of :meth:`BallNamespace.call` and restores it after.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import mpmath
import numpy as np
from flint import acb, acb_mat, arb, arb_mat, arb_series, arf, ctx

from gradlab.arithmetic.formats import Format, exact_mpf, get
from gradlab.arithmetic.namespaces import (
    Namespace,
    NamespaceEscapeError,
    ObjectArithmetic,
    _data,
    _format_constant,
    _xp,
    refuse_widening,
)

__all__ = [
    "BallNamespace",
    "BranchUndecided",
    "SeriesNamespace",
    "acb_from_mpc",
    "arb_ball",
    "arb_from_mpf",
    "arb_upper",
    "ball_from_raw",
    "ball_raw",
    "finite",
    "midpoints",
    "mpf_mid",
    "radii",
    "working_precision",
]

_MAT_MIN_INNER = 16  # inner dimension from which arb_mat beats an object matmul (measured)
_FUNCS = ("exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "sqrt")


@contextmanager
def working_precision(prec: int, cap: int | None = None) -> Iterator[None]:
    """Arb's process-wide working precision set to ``prec`` bits (and, for series, the
    truncation to ``cap`` terms) inside the block, restored after. Arithmetic on balls
    outside such a block rounds at whatever the setting is: 53 bits by default."""
    old_prec, old_cap = ctx.prec, ctx.cap
    ctx.prec = prec
    if cap is not None:
        ctx.cap = cap
    try:
        yield
    finally:
        ctx.prec, ctx.cap = old_prec, old_cap


class BranchUndecided(ArithmeticError):
    """A comparison on which a branch depends has overlapping balls.

    ``on_branch`` is True when both sides are exact and equal: theta sits on the branch.
    """

    def __init__(self, message: str, on_branch: bool) -> None:
        super().__init__(message)
        self.on_branch = on_branch


def arb_from_mpf(x: Any) -> arb:
    """An exact number (mpf, float, int, numpy scalar) as an exact ball (radius 0), whatever
    the working precision (it is raised to the number's bits for the conversion)."""
    if (type(x) is float or type(x) is np.float64) and math.isfinite(x):
        return arb(x)  # exact: a double
    v = exact_mpf(x)
    if not mpmath.isfinite(v):
        return arb("nan") if mpmath.isnan(v) else (arb.pos_inf() if v > 0 else arb.neg_inf())
    sign, man, exp, _ = v._mpf_
    return arb(arf((-int(man) if sign else int(man), int(exp))))  # an arf is exact at any size


def arb_ball(mid: Any, radius: float) -> arb:
    """The ball of an exact midpoint (mpf, float, ...) and a radius, neither rounded (the
    radius may be rounded up to Arb's radius type)."""
    b = arb_from_mpf(mid)
    return arb(b.mid(), radius) if b.is_finite() else b


def ball_raw(b: arb | acb) -> tuple[Any, ...]:
    """A ball as plain integers, exactly (balls do not pickle): see :func:`ball_from_raw`."""
    if isinstance(b, acb):
        return ("c", ball_raw(b.real), ball_raw(b.imag))
    mid = b.mid()
    if not mid.is_finite():
        return ("f", float(mid))
    (m, e), (rm, re) = mid.man_exp(), b.rad().man_exp()
    return ("r", int(m), int(e), int(rm), int(re))


def ball_from_raw(t: tuple[Any, ...]) -> arb | acb:
    """The ball of :func:`ball_raw`: the same midpoint, its radius rounded up at most."""
    if t[0] == "c":
        re, im = ball_from_raw(t[1]), ball_from_raw(t[2])
        assert isinstance(re, arb) and isinstance(im, arb)
        return acb(re, im)
    if t[0] == "f":
        return arb(t[1])
    return arb(arf((t[1], t[2])), arf((t[3], t[4])))


def acb_from_mpc(z: Any) -> acb:
    """An exact complex number (mpc, or a real) as an exact complex ball."""
    if hasattr(z, "_mpc_") or isinstance(z, complex):
        return acb(arb_from_mpf(z.real), arb_from_mpf(z.imag))
    return acb(arb_from_mpf(z))


def mpf_mid(b: arb) -> mpmath.mpf:
    """The ball's midpoint, exactly (NaN, or an infinity, for a ball that is not finite)."""
    return exact_mpf(b)


def arb_upper(b: arb) -> float:
    """A float64 upper bound of |b| (rounded up): the radius of a ball as a float."""
    v = abs(b).upper()
    if not v.is_finite():
        return float("inf")
    if v.is_zero():
        return 0.0
    f = float(mpf_mid(v))  # nearest: one step up bounds it
    return float(np.nextafter(f, np.inf))


_FROM_DOUBLE = np.frompyfunc(arb, 1, 1)
_RAD = np.frompyfunc(lambda b: float(b.rad()), 1, 1)
_MID = np.frompyfunc(float, 1, 1)
_FINITE = np.frompyfunc(lambda b: b.is_finite(), 1, 1)


def radii(balls: Any) -> np.ndarray:
    """Float64 upper bounds of the balls' radii, elementwise (vectorised :func:`arb_upper` of
    ``b.rad()``)."""
    r = np.asarray(_RAD(np.asarray(balls, dtype=object)), dtype=np.float64)
    return np.where(r > 0, np.nextafter(r, np.inf), r)


def midpoints(balls: Any) -> np.ndarray:
    """The balls' midpoints rounded to the nearest float64, elementwise."""
    return np.asarray(_MID(np.asarray(balls, dtype=object)), dtype=np.float64)


def finite(balls: Any) -> np.ndarray:
    """Whether each ball is finite."""
    return np.asarray(_FINITE(np.asarray(balls, dtype=object)), dtype=bool)


def _ball(v: Any) -> arb:
    return v if isinstance(v, arb) else arb_from_mpf(v)


_GT = np.frompyfunc(lambda x, y: x > y, 2, 1)  # True only where every point of x is above y
_LT = np.frompyfunc(lambda x, y: x < y, 2, 1)
_EQ = np.frompyfunc(lambda x, y: x == y, 2, 1)  # True only for two exact, equal balls


def _decided(a: Any, b: Any) -> np.ndarray:
    """Elementwise ``a > b`` for balls, raising where the balls decide nothing.

    A ball comparison holds only when it holds for every pair of points, so ``a > b`` and
    ``a < b`` are both False exactly where the balls overlap or are the same exact number:
    the point on the branch, refused for ``>`` and ``>=`` alike (the function has a kink
    there, whichever side the code picks).
    """
    a_arr = np.asarray(a, dtype=object)
    b_arr = np.asarray(b, dtype=object)
    if not isinstance(b_arr.flat[0] if b_arr.size else None, arb):
        b_arr = np.asarray(np.frompyfunc(_ball, 1, 1)(b_arr), dtype=object)
    if a_arr.size and not isinstance(a_arr.flat[0], arb):
        a_arr = np.asarray(np.frompyfunc(_ball, 1, 1)(a_arr), dtype=object)
    above = np.asarray(_GT(a_arr, b_arr), dtype=bool)
    undecided = ~(above | np.asarray(_LT(a_arr, b_arr), dtype=bool))
    if undecided.any():
        x, y = np.broadcast_arrays(a_arr, b_arr)
        if np.asarray(_EQ(x[undecided], y[undecided]), dtype=bool).any():
            raise BranchUndecided("a comparison's two sides are exactly equal: the point sits "
                                  "on the branch (a kink)", on_branch=True)
        k = int(np.flatnonzero(undecided)[0])
        raise BranchUndecided(f"a comparison's balls overlap ({x.flat[k]} against {y.flat[k]})",
                              on_branch=False)
    return above


class BallNamespace(ObjectArithmetic):
    """Object arrays of ``flint.arb`` at a fixed working precision.

    Parameters
    ----------
    prec : int
        Arb's working precision in bits during :meth:`call`.
    data_format : Format or str, optional
        Data and constants are rounded to this format first (exactly, as the format's own
        evaluation sees them), so the enclosure is of J at the format's data.
    batch_ndim, record_branches
        As for every namespace.
    """

    def __init__(self, prec: int, data_format: Format | str | None = None, batch_ndim: int = 0,
                 record_branches: bool = False, is_complex: bool = False) -> None:
        super().__init__(batch_ndim, is_complex, record_branches)
        if prec < 8:
            raise ValueError(f"prec must be at least 8 bits, got {prec}")
        self.prec = prec
        self.data_format = None if data_format is None else get(data_format)
        self.name = f"arb[{prec} bits]"
        kind = acb if is_complex else arb  # its unbound methods: no attribute lookup per element
        self._funcs: dict[str, Callable[[Any], Any]] = {
            f: np.frompyfunc(getattr(kind, f), 1, 1) for f in _FUNCS}
        self._type = acb if is_complex else arb
        self._to_arb = np.frompyfunc(acb_from_mpc if is_complex else arb_from_mpf, 1, 1)

    def call(self, f: Callable[[Any, Namespace], Any], theta: np.ndarray, label: str) -> np.ndarray:
        """``f(theta, self)`` with Arb's precision set to this namespace's."""
        with working_precision(self.prec):
            return super().call(f, theta, label)

    def _operand(self, x: Any) -> Any:
        """A Python constant as an exact ball, rounded as the data format takes it."""
        t = type(x)
        if t is float or t is int:
            r = _format_constant(x, self.data_format) if self.data_format is not None else None
            return arb_from_mpf(x if r is None else r)
        if isinstance(x, np.generic) and x.dtype.kind in "iuf":
            if self.data_format is not None:
                refuse_widening(x, self.data_format, self.is_complex)
            return arb_from_mpf(x)  # exact: a numpy number the format holds
        return x

    def _wrong_values(self, out: np.ndarray) -> str:
        if out.dtype != object:
            return f"{out.dtype} values, not balls"
        bad = next((v for v in out.flat if not isinstance(v, self._type)), None)
        return "" if bad is None else f"{type(bad).__name__} values where xp's numbers are balls"

    def _check(self, x: Any, op: str) -> None:
        dt = getattr(x, "dtype", None)
        if dt is not None and dt not in (np.dtype(object), np.dtype(bool)):
            raise NamespaceEscapeError(f"an array of dtype {dt} reached xp.{op} while evaluating "
                                       f"in {self.name}: data must enter through xp.asarray")

    def _apply(self, fname: str, x: Any) -> Any:
        self._check(x, fname)
        return np.asarray(self._funcs[fname](x), dtype=object)

    def _data_balls(self, x: Any) -> np.ndarray:
        """Data rounded to ``data_format`` (if set) exactly, as exact balls with the batch axes."""
        a = np.asarray(x, dtype=np.float64)
        fmt = self.data_format
        make = acb_from_mpc if self.is_complex else arb_from_mpf
        vals = [make(fmt.round_data(float(v)) if fmt is not None else float(v))
                for v in a.ravel()]
        out = np.empty(len(vals), dtype=object)
        out[:] = vals
        return out.reshape((1,) * self.batch_ndim + a.shape)

    @_data
    def asarray(self, x: Any) -> np.ndarray:
        """Data or constants, rounded to ``data_format`` (if set) exactly, as exact balls."""
        return self._data_balls(x)

    @_xp
    def from_values(self, values: np.ndarray) -> np.ndarray:
        """Exact numbers (mpf, floats, numpy scalars) or balls, as an object array of balls."""
        raw = np.asarray(values)
        if raw.dtype.kind in "fV" and raw.dtype.itemsize <= 8 and not self.is_complex:
            raw = raw.astype(np.float64)  # float8 to float64: exact doubles, converted in C
            out = np.asarray(_FROM_DOUBLE(raw), dtype=object).reshape(raw.shape)
            bad = ~np.isfinite(raw)
            if bad.any():  # an infinity as Arb's infinity, not a ball of infinite radius
                out[bad] = [arb_from_mpf(x) for x in raw[bad].tolist()]
            return out
        v = np.asarray(values, dtype=object)
        if not v.size or isinstance(v.flat[0], self._type):
            return v
        return np.asarray(self._to_arb(v), dtype=object)

    def _matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Products of long dot products in Arb's ``arb_mat`` (C, and tighter balls than a
        sum of products); short ones, where converting costs more, as object arrays."""
        balls = a.size and b.size and isinstance(a.flat[0], self._type) and isinstance(
            b.flat[0], self._type)
        if a.shape[-1] < _MAT_MIN_INNER or not balls:
            return np.asarray(np.matmul(a, b), dtype=object)
        mat = acb_mat if self.is_complex else arb_mat
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        a_b = np.broadcast_to(a, batch + a.shape[-2:])
        b_b = np.broadcast_to(b, batch + b.shape[-2:])
        out = np.empty((*batch, a.shape[-2], b.shape[-1]), dtype=object)
        shared = b.shape[:-2] == (1,) * len(batch) or not b.shape[:-2]
        b_mat = mat(b_b[(0,) * len(batch)].tolist()) if shared else None
        for idx in np.ndindex(*batch):
            right = b_mat if b_mat is not None else mat(b_b[idx].tolist())
            product = (mat(a_b[idx].tolist()) * right).entries()
            flat = np.empty(len(product), dtype=object)
            flat[:] = product
            out[idx] = flat.reshape(out.shape[-2:])
        return out

    def _where(self, c: np.ndarray, a: Any, b: Any) -> np.ndarray:
        return np.asarray(np.where(c, a, b), dtype=object)

    def _gt(self, a: Any, b: Any) -> np.ndarray:
        return _decided(a, b)

    def _ge(self, a: Any, b: Any) -> np.ndarray:
        return _decided(a, b)  # a tie is refused (see _decided)

    def _zero_like(self, x: np.ndarray) -> Any:
        return acb(0) if self.is_complex else arb(0)


    @_xp
    def max(self, x: np.ndarray, axis: int | Sequence[int] | None = None) -> np.ndarray:
        """The midpoints' maximum over logical axes, as exact balls (module docstring)."""
        self._check(x, "max")
        mids = np.frompyfunc(lambda v: float(mpf_mid(v.real if isinstance(v, acb) else v)),
                             1, 1)(x).astype(np.float64)
        r = np.max(mids, axis=self._logical_axes(x, axis), keepdims=True)
        return np.asarray(np.frompyfunc(arb_from_mpf, 1, 1)(r.astype(object)), dtype=object)


def _series_funcs() -> dict[str, Callable[[Any], Any]]:
    """Elementwise functions on Taylor series of balls (Arb has no tanh, log1p or expm1 of a
    series: they are composed from exp and log, which changes the balls, not their truth)."""
    one = arb(1)
    return {
        "exp": lambda s: s.exp(), "log": lambda s: s.log(), "sin": lambda s: s.sin(),
        "cos": lambda s: s.cos(), "sqrt": lambda s: s.sqrt(),
        "log1p": lambda s: (s + one).log(), "expm1": lambda s: s.exp() - one,
        "tanh": lambda s: one - arb(2) / ((s * arb(2)).exp() + one),
    }


class SeriesNamespace(BallNamespace):
    """Object arrays of ``flint.arb_series``: truncated Taylor series in one variable t whose
    coefficients are balls. Seeding a coordinate as ``theta_i + t`` makes J come out as the
    series of ``J(theta + t e_i)``: its coefficient of ``t**k`` times k! encloses
    ``d^k J / d theta_i^k``. Branches are decided on the series' constant terms.

    Parameters
    ----------
    prec : int
        Working precision in bits.
    order : int
        The highest power of t kept.
    data_format, batch_ndim, record_branches
        As for :class:`BallNamespace`.
    """

    def __init__(self, prec: int, order: int, data_format: Format | str | None = None,
                 batch_ndim: int = 0, record_branches: bool = False) -> None:
        super().__init__(prec, data_format, batch_ndim, record_branches)
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order = order
        self.name = f"arb_series[{prec} bits, order {order}]"
        self._funcs = {f: np.frompyfunc(g, 1, 1) for f, g in _series_funcs().items()}
        self._const = np.frompyfunc(self._constant, 1, 1)

    def _constant(self, v: Any) -> arb_series:
        """A constant series, built at the working precision (a series rounds its coefficients
        to the precision it is built at: at 53 bits its balls would be float64's)."""
        with working_precision(max(ctx.prec, self.prec)):
            return arb_series([v if isinstance(v, arb) else arb_from_mpf(v)])

    def call(self, f: Callable[[Any, Namespace], Any], theta: np.ndarray, label: str) -> np.ndarray:
        with working_precision(self.prec, cap=self.order + 1):
            return super().call(f, theta, label)

    def seeded(self, theta: np.ndarray, coords: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows theta with ``theta[coords[r]] + t`` in row r (a batch for ``batch_ndim=1``)."""
        rows = np.empty((len(coords), len(theta)), dtype=object)
        base = [arb_from_mpf(v) for v in theta]
        with working_precision(max(ctx.prec, self.prec)):
            constants = [self._constant(b) for b in base]  # shared by the rows: series are values
            for r, i in enumerate(coords):
                rows[r, :] = constants
                rows[r, i] = arb_series([base[i], arb(1)])
        return rows

    def _wrong_values(self, out: np.ndarray) -> str:
        if out.dtype != object:
            return f"{out.dtype} values, not series"
        bad = next((v for v in out.flat if not isinstance(v, arb_series)), None)
        return "" if bad is None else f"{type(bad).__name__} values where xp's numbers are series"

    def _constant_terms(self, x: Any) -> Any:
        if isinstance(x, np.ndarray) and x.dtype == object:
            return np.asarray(np.frompyfunc(lambda s: s.coeffs()[0] if isinstance(s, arb_series)
                                            else s, 1, 1)(x), dtype=object)
        return x.coeffs()[0] if isinstance(x, arb_series) else x

    def _gt(self, a: Any, b: Any) -> np.ndarray:
        return _decided(self._constant_terms(a), self._constant_terms(b))

    def _ge(self, a: Any, b: Any) -> np.ndarray:
        return _decided(self._constant_terms(a), self._constant_terms(b))

    def _zero_like(self, x: np.ndarray) -> Any:
        zero = np.empty((), dtype=object)  # a bare series would be read as its coefficients
        zero[()] = self._constant(arb(0))
        return zero

    @_data
    def asarray(self, x: Any) -> np.ndarray:
        """Data or constants as constant series (rounded like :class:`BallNamespace`'s)."""
        return np.asarray(self._const(self._data_balls(x)), dtype=object)

    @_xp
    def from_values(self, values: np.ndarray) -> np.ndarray:
        """Series as they are; exact numbers or balls as constant series."""
        v = np.asarray(values, dtype=object)
        if not v.size or isinstance(v.flat[0], arb_series):
            return v
        return np.asarray(self._const(v), dtype=object)

    @_xp
    def max(self, x: np.ndarray, axis: int | Sequence[int] | None = None) -> np.ndarray:
        """The constant terms' midpoints' maximum, as constant series (a shift, as in
        :meth:`BallNamespace.max`)."""
        self._check(x, "max")
        mids = np.frompyfunc(lambda v: float(mpf_mid(v.coeffs()[0])), 1, 1)(x).astype(np.float64)
        r = np.max(mids, axis=self._logical_axes(x, axis), keepdims=True)
        return np.asarray(self._const(r.astype(object)), dtype=object)
