"""Evaluation namespaces: the ``xp`` an objective computes with.

An objective is written once, ``fn(theta, xp)``, and evaluated

* in a hardware format by :class:`NumpyNamespace`: numpy arrays of the format's
  dtype, every operation in that dtype (a foreign dtype reaching an ``xp``
  function raises, so nothing is silently upcast);
* in mpmath by :class:`MPNamespace`: object arrays of mpf (or mpc for the complex
  step) from a private mpmath context at a fixed precision, used both for the
  emulated ``binary{p}`` formats (precision p) and for the exact reference
  (precision far above the format's).

Batching. With ``batch_ndim=1`` every array carries one leading batch axis (data
from :meth:`asarray` gets a broadcastable axis of length 1), so one call evaluates
J at many points. Inside ``fn`` use the ``xp`` functions for reductions and shapes
(``xp.sum``, ``xp.matmul``, ``xp.reshape``, ``xp.transpose``, ``xp.unflatten``) and
index the last axis with ``theta[..., i]``: these act on the logical (per-point)
axes whatever the batch.

Branches. ``relu``, ``maximum``, ``abs`` and ``where`` record which branch each
point took when ``record_branches`` is set; two points whose records differ lie
on different sides of a non-differentiable point (a kink).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import mpmath
import numpy as np
from mpmath.libmp import from_man_exp, fzero

from gradlab.arithmetic.formats import Format, exact_mpf, get, round_array, round_exact

_CONTEXTS: dict[int, mpmath.MPContext] = {}


def _context(prec: int) -> mpmath.MPContext:
    """A private mpmath context at ``prec`` bits, shared by all namespaces of that precision.

    Shared so that values computed in one namespace pass into another of the same
    precision without conversion; its precision is never changed.
    """
    if prec not in _CONTEXTS:
        ctx = mpmath.MPContext()
        ctx.prec = prec
        _CONTEXTS[prec] = ctx
    return _CONTEXTS[prec]

__all__ = ["MPNamespace", "Namespace", "NumpyNamespace", "namespace_for"]

_UNARY = ("exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "sqrt")


class Namespace(ABC):
    """Operations shared by both backends; subclasses provide the arithmetic."""

    batch_ndim: int
    is_complex: bool
    branches: list[np.ndarray] | None
    name: str

    def __init__(self, batch_ndim: int, is_complex: bool, record_branches: bool) -> None:
        if batch_ndim not in (0, 1):
            raise ValueError(f"batch_ndim must be 0 or 1, got {batch_ndim}")
        self.batch_ndim = batch_ndim
        self.is_complex = is_complex
        self.branches = [] if record_branches else None

    # -- shapes --------------------------------------------------------------
    def _logical_axes(self, x: np.ndarray, axis: int | Sequence[int] | None) -> tuple[int, ...]:
        nd = x.ndim - self.batch_ndim
        if axis is None:
            return tuple(range(self.batch_ndim, x.ndim))
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        return tuple(self.batch_ndim + (a % nd) for a in axes)

    def reshape(self, x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        """Reshape the logical axes of ``x``."""
        return x.reshape(x.shape[: self.batch_ndim] + tuple(shape))

    def transpose(self, x: np.ndarray) -> np.ndarray:
        """Swap the last two axes (matrix transpose)."""
        return np.swapaxes(x, -1, -2)

    def unflatten(self, theta: np.ndarray, shapes: Sequence[Sequence[int]]) -> list[np.ndarray]:
        """Split a flat parameter vector into arrays of the given shapes."""
        out, start = [], 0
        for shape in shapes:
            size = math.prod(shape)
            out.append(self.reshape(theta[..., start : start + size], shape))
            start += size
        if start != theta.shape[-1]:
            raise ValueError(f"shapes take {start} parameters, theta has {theta.shape[-1]}")
        return out

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Matrix product with numpy's 1-D rules applied to the logical axes."""
        self._check(a, "matmul")
        self._check(b, "matmul")
        vec_a = a.ndim - self.batch_ndim == 1
        vec_b = b.ndim - self.batch_ndim == 1
        if vec_a:
            a = a[..., None, :]
        if vec_b:
            b = b[..., None]
        r = self._matmul(a, b)
        if vec_b:
            r = r[..., 0]
        if vec_a:
            r = r[..., 0, :] if r.ndim - self.batch_ndim >= 2 else r[..., 0]
        return r

    # -- branches ------------------------------------------------------------
    def _record(self, cond: np.ndarray) -> None:
        if self.branches is None:
            return
        c = np.asarray(cond, dtype=bool)
        if self.batch_ndim:
            self.branches.append(c.reshape(c.shape[0], -1))
        else:
            self.branches.append(c.reshape(1, -1))

    def where(self, cond: Any, a: Any, b: Any) -> np.ndarray:
        """Elementwise choice; the condition is recorded as a branch."""
        c = np.asarray(cond, dtype=bool)
        self._record(c)
        return self._where(c, a, b)

    def relu(self, x: np.ndarray) -> np.ndarray:
        """max(x, 0), on the real part for the complex step."""
        self._check(x, "relu")
        return self.where(self._gt(self.real(x), 0), x, self._zero_like(x))

    def maximum(self, x: Any, y: Any) -> np.ndarray:
        """Elementwise maximum, comparing real parts."""
        return self.where(self._ge(self.real(x), self.real(y)), x, y)

    def abs(self, x: np.ndarray) -> np.ndarray:
        """|x|, as the analytic continuation ``sign(Re x) x`` for complex x."""
        self._check(x, "abs")
        return self.where(self._ge(self.real(x), 0), x, -x)

    def mean(
        self, x: np.ndarray, axis: int | Sequence[int] | None = None, keepdims: bool = False
    ) -> np.ndarray:
        """Sum over the axes, divided by their size (both in the namespace)."""
        axes = self._logical_axes(x, axis)
        n = math.prod(x.shape[a] for a in axes)
        return self.sum(x, axis, keepdims) / n

    # -- elementwise functions (each in the namespace's arithmetic) ------------
    def exp(self, x: Any) -> Any:
        """Elementwise exponential."""
        return self._apply("exp", x)

    def log(self, x: Any) -> Any:
        """Elementwise natural logarithm."""
        return self._apply("log", x)

    def log1p(self, x: Any) -> Any:
        """Elementwise log(1 + x)."""
        return self._apply("log1p", x)

    def expm1(self, x: Any) -> Any:
        """Elementwise exp(x) - 1."""
        return self._apply("expm1", x)

    def sin(self, x: Any) -> Any:
        """Elementwise sine."""
        return self._apply("sin", x)

    def cos(self, x: Any) -> Any:
        """Elementwise cosine."""
        return self._apply("cos", x)

    def tanh(self, x: Any) -> Any:
        """Elementwise hyperbolic tangent."""
        return self._apply("tanh", x)

    def sqrt(self, x: Any) -> Any:
        """Elementwise square root."""
        return self._apply("sqrt", x)

    # -- declared here, provided by each backend ----------------------------------
    @abstractmethod
    def asarray(self, x: Any) -> np.ndarray:
        """Data or constants, rounded to the format, with the batch axes."""
        ...

    @abstractmethod
    def from_values(self, values: np.ndarray) -> np.ndarray:
        """Values that are already numbers of the namespace, as its array type."""
        ...

    @abstractmethod
    def max(self, x: np.ndarray, axis: int | Sequence[int] | None = None) -> np.ndarray:
        """Maximum of the real parts over logical axes, kept as dimensions."""
        ...

    # -- backend hooks ---------------------------------------------------------
    @abstractmethod
    def _apply(self, fname: str, x: Any) -> Any:
        ...

    @abstractmethod
    def _check(self, x: Any, op: str) -> None:
        ...

    @abstractmethod
    def _matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ...

    @abstractmethod
    def _where(self, c: np.ndarray, a: Any, b: Any) -> np.ndarray:
        ...

    def _gt(self, a: Any, b: Any) -> np.ndarray:
        return np.asarray(a > b, dtype=bool)

    def _ge(self, a: Any, b: Any) -> np.ndarray:
        return np.asarray(a >= b, dtype=bool)

    @abstractmethod
    def _zero_like(self, x: np.ndarray) -> Any:
        ...

    @abstractmethod
    def real(self, x: Any) -> Any:
        ...

    @abstractmethod
    def sum(
        self, x: np.ndarray, axis: int | Sequence[int] | None = None, keepdims: bool = False
    ) -> np.ndarray:
        ...

    @abstractmethod
    def logaddexp(self, a: Any, b: Any) -> Any:
        ...

    def branch_signature(self) -> list[bytes]:
        """One bytes key per evaluated point: which branches it took."""
        if self.branches is None:
            raise RuntimeError("branches were not recorded")
        if not self.branches:
            return []
        n = max(b.shape[0] for b in self.branches)
        rows = np.concatenate([np.broadcast_to(b, (n, b.shape[1])) for b in self.branches], axis=1)
        packed = np.packbits(rows, axis=1)
        return [r.tobytes() for r in packed]


class NumpyNamespace(Namespace):
    """numpy arrays in one hardware format's dtype (or its complex twin)."""

    def __init__(
        self,
        fmt: Format | str,
        batch_ndim: int = 0,
        is_complex: bool = False,
        record_branches: bool = False,
    ) -> None:
        super().__init__(batch_ndim, is_complex, record_branches)
        self.fmt = get(fmt)
        if self.fmt.dtype is None:
            raise ValueError(f"format {self.fmt.name} is emulated; use MPNamespace")
        if is_complex and self.fmt.complex_dtype is None:
            raise ValueError(
                f"format {self.fmt.name} has no complex type in numpy, so the complex "
                "step is not available in it"
            )
        self.dtype: np.dtype[Any] = self.fmt.complex_dtype if is_complex else self.fmt.dtype  # type: ignore[assignment]
        self.name = self.fmt.name

    def _apply(self, fname: str, x: Any) -> Any:
        self._check(x, fname)
        return getattr(np, fname)(x)

    def _check(self, x: Any, op: str) -> None:
        dt = getattr(x, "dtype", None)
        if dt is not None and dt != self.dtype and dt != np.bool_:
            raise TypeError(
                f"an array of dtype {dt} reached xp.{op} while evaluating in "
                f"{self.name} ({self.dtype}): a value was upcast or entered without "
                "xp.asarray (use xp.asarray for data and constants, xp.matmul for products)"
            )

    def asarray(self, x: Any) -> np.ndarray:
        """Data or constants (float values), rounded once to the format.

        The result carries the batch axes (of length 1), so it is meant for
        inputs, not for arrays computed inside the objective.
        """
        a = round_array(np.asarray(x, dtype=np.float64), self.fmt).astype(self.dtype)
        return a.reshape((1,) * self.batch_ndim + a.shape)

    def from_values(self, values: np.ndarray) -> np.ndarray:
        """Points that are already values of the format (as the format's dtype)."""
        return np.asarray(values).astype(self.dtype)

    def _matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        r = np.matmul(a, b)
        if r.dtype != self.dtype:  # ml_dtypes' bfloat16 matmul returns float32
            r = r.astype(self.dtype)
        return r

    def _where(self, c: np.ndarray, a: Any, b: Any) -> np.ndarray:
        r = np.where(c, a, b)
        if r.dtype != self.dtype:
            r = r.astype(self.dtype)  # a Python scalar branch: exact in the format
        return r

    def _zero_like(self, x: np.ndarray) -> Any:
        return np.zeros((), dtype=self.dtype)

    def real(self, x: Any) -> Any:
        return np.real(x) if np.iscomplexobj(x) else x

    def sum(
        self, x: np.ndarray, axis: int | Sequence[int] | None = None, keepdims: bool = False
    ) -> np.ndarray:
        """Sum over logical axes (all of them by default), as numpy sums the dtype."""
        self._check(x, "sum")
        return np.sum(x, axis=self._logical_axes(x, axis), keepdims=keepdims)

    def logaddexp(self, a: Any, b: Any) -> Any:
        """log(exp(a) + exp(b)) without overflow; smooth, so no branch is recorded."""
        self._check(a, "logaddexp")
        self._check(b, "logaddexp")
        if not self.is_complex:
            return np.logaddexp(a, b)
        m = np.maximum(np.real(a), np.real(b)).astype(self.dtype)
        return m + np.log(np.exp(a - m) + np.exp(b - m))

    def max(self, x: np.ndarray, axis: int | Sequence[int] | None = None) -> np.ndarray:
        """Maximum of the real parts over logical axes (a constant for the complex step)."""
        self._check(x, "max")
        return np.max(np.real(x), axis=self._logical_axes(x, axis), keepdims=True).astype(self.dtype)


class MPNamespace(Namespace):
    """Object arrays of mpmath numbers from a private context of fixed precision.

    Parameters
    ----------
    prec : int
        Working precision in bits; every operation rounds to it (nearest even).
    data_format : Format or str, optional
        Data and constants entering through :meth:`asarray` are first rounded to
        this format, so an exact reference sees the inputs the format sees.
    exact_dot : bool
        Reference mode: each entry of a real :meth:`matmul` is summed exactly in
        integer arithmetic and rounded once to prec (a correctly rounded dot
        product, more accurate than op-by-op and about 10x faster for large
        matrices). Off for the emulated formats, whose point is op-by-op rounding.
    """

    def __init__(
        self,
        prec: int,
        data_format: Format | str | None = None,
        batch_ndim: int = 0,
        is_complex: bool = False,
        record_branches: bool = False,
        exact_dot: bool = False,
    ) -> None:
        super().__init__(batch_ndim, is_complex, record_branches)
        if prec < 2:
            raise ValueError(f"prec must be at least 2 bits, got {prec}")
        self.ctx = _context(prec)
        self.prec = prec
        self.data_format = None if data_format is None else get(data_format)
        self.name = f"mpmath[{prec} bits]"
        self.exact_dot = exact_dot and not is_complex
        self._zero = self.ctx.mpc(0) if is_complex else self.ctx.mpf(0)
        self._real_of = np.frompyfunc(lambda z: z.real, 1, 1)
        self._to_ctx = np.frompyfunc(self.convert, 1, 1)
        self._ufuncs = {f: self._make_ufunc(f) for f in _UNARY}

    def convert(self, v: Any) -> Any:
        """One number into this context: exact for mpf/int/float, then rounded to prec."""
        ctx = self.ctx
        if hasattr(v, "_mpc_"):
            r = ctx.mpc(ctx.make_mpf(v.real._mpf_), ctx.make_mpf(v.imag._mpf_))
        else:
            r = ctx.make_mpf(exact_mpf(v)._mpf_)
            r = +r  # round to the context's precision once
        if self.is_complex and not isinstance(r, ctx.mpc):
            r = ctx.mpc(r)
        return r

    def _apply(self, fname: str, x: Any) -> Any:
        self._check(x, fname)
        return np.asarray(self._ufuncs[fname](x), dtype=object)

    def _make_ufunc(self, fname: str) -> Any:
        f = getattr(self.ctx, fname)
        ctx = self.ctx
        nan = ctx.nan
        if self.is_complex:
            vf = np.frompyfunc(f, 1, 1)
        else:

            def real_only(x: Any) -> Any:
                r = f(x)
                return nan if isinstance(r, ctx.mpc) else r  # outside the real domain

            vf = np.frompyfunc(real_only, 1, 1)
        return vf

    def _check(self, x: Any, op: str) -> None:
        dt = getattr(x, "dtype", None)
        if dt is not None and dt not in (np.dtype(object), np.dtype(bool)):
            raise TypeError(
                f"an array of dtype {dt} reached xp.{op} while evaluating in {self.name}: "
                "data must enter through xp.asarray"
            )

    def asarray(self, x: Any) -> np.ndarray:
        """Data or constants (float values), rounded to ``data_format`` (if set), then to prec."""
        a = np.asarray(x, dtype=np.float64)
        flat = a.ravel()
        if self.data_format is not None:
            vals = [self.convert(round_exact(float(v), self.data_format)) for v in flat]
        else:
            vals = [self.convert(float(v)) for v in flat]
        out = np.empty(len(vals), dtype=object)
        out[:] = vals
        return out.reshape((1,) * self.batch_ndim + a.shape)

    def from_values(self, values: np.ndarray) -> np.ndarray:
        """Exact numbers (mpf, floats, numpy scalars) as an object array of this context.

        An array whose first element already belongs to this context is taken to
        be wholly of it and passes through unconverted.
        """
        v = np.asarray(values, dtype=object)
        if not v.size:
            return v
        first = v.flat[0]
        if type(first) is self.ctx.mpf or type(first) is self.ctx.mpc:
            return v
        return np.asarray(self._to_ctx(v), dtype=object)

    def _matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.exact_dot:
            fa, fb = _fixed_point(a, self.prec), _fixed_point(b, self.prec)
            if fa is not None and fb is not None:
                prod = np.matmul(fa[0], fb[0])  # Python ints: every sum exact
                e, prec, make = fa[1] + fb[1], self.prec, self.ctx.make_mpf
                return np.asarray(
                    np.frompyfunc(lambda m: make(from_man_exp(m, e, prec, "n")), 1, 1)(prod),
                    dtype=object,
                )
        return np.asarray(np.matmul(a, b), dtype=object)

    def _where(self, c: np.ndarray, a: Any, b: Any) -> np.ndarray:
        return np.asarray(np.where(c, a, b), dtype=object)

    def _gt(self, a: Any, b: Any) -> np.ndarray:
        if isinstance(b, int) and b == 0 and isinstance(a, np.ndarray):
            return np.asarray(_POSITIVE(a), dtype=bool)  # sign bit of the raw mpf: fast
        return np.asarray(np.greater(a, b), dtype=bool)

    def _ge(self, a: Any, b: Any) -> np.ndarray:
        if isinstance(b, int) and b == 0 and isinstance(a, np.ndarray):
            return np.asarray(_NONNEGATIVE(a), dtype=bool)
        return np.asarray(np.greater_equal(a, b), dtype=bool)

    def _zero_like(self, x: np.ndarray) -> Any:
        return self._zero

    def real(self, x: Any) -> Any:
        if not self.is_complex:
            return x
        if isinstance(x, np.ndarray):
            return np.asarray(self._real_of(x), dtype=object)
        return getattr(x, "real", x)

    def sum(
        self, x: np.ndarray, axis: int | Sequence[int] | None = None, keepdims: bool = False
    ) -> np.ndarray:
        """Sequential sum over logical axes; every addition rounds to prec."""
        self._check(x, "sum")
        return np.asarray(
            np.sum(x, axis=self._logical_axes(x, axis), keepdims=keepdims), dtype=object
        )

    def logaddexp(self, a: Any, b: Any) -> Any:
        """log(exp(a) + exp(b)), each operation rounded to prec (no overflow in mpmath)."""
        return self.log(self.exp(a) + self.exp(b))

    def max(self, x: np.ndarray, axis: int | Sequence[int] | None = None) -> np.ndarray:
        """Maximum of the real parts over logical axes, kept as dimensions."""
        self._check(x, "max")
        r = np.max(self.real(x), axis=self._logical_axes(x, axis), keepdims=True)
        return self.from_values(np.asarray(r, dtype=object))


def _fixed_point(a: np.ndarray, prec: int) -> tuple[np.ndarray, int] | None:
    """Integers m and one exponent e with ``a == m * 2**e`` exactly.

    None when an entry is not a finite mpf or the exponents span so widely that
    the integers would be unreasonably long (the caller then multiplies op by op).
    """
    raw: list[tuple[int, Any, int, int]] = []
    for v in a.reshape(-1):
        r = getattr(v, "_mpf_", None)
        if r is None or (r[1] == 0 and r != fzero):
            return None
        raw.append(r)
    exps = [r[2] for r in raw if r[1]]
    if not exps:
        return np.zeros(a.shape, dtype=object), 0
    e0 = min(exps)
    if max(r[2] + r[3] for r in raw if r[1]) - e0 > 8 * prec + 4096:
        return None
    ints = np.empty(len(raw), dtype=object)
    ints[:] = [((-r[1] if r[0] else r[1]) << (r[2] - e0)) if r[1] else 0 for r in raw]
    return ints.reshape(a.shape), e0


# mpf._mpf_ = (sign, mantissa, exponent, bitcount); zero is (0, 0, 0, 0), nan/inf have
# mantissa 0 and a special exponent, so "positive" needs a non-zero mantissa or +inf.
_POSITIVE = np.frompyfunc(
    lambda v: v._mpf_[0] == 0 and (v._mpf_[1] != 0 or v._mpf_ == mpmath.libmp.finf), 1, 1
)
_NONNEGATIVE = np.frompyfunc(
    lambda v: (v._mpf_[0] == 0 and v._mpf_ != mpmath.libmp.fnan) or v._mpf_ == mpmath.libmp.fzero,
    1,
    1,
)


def namespace_for(
    fmt: Format | str, batch_ndim: int = 0, is_complex: bool = False, record_branches: bool = False
) -> Namespace:
    """The namespace that evaluates ``fmt``: numpy for hardware, mpmath for binary{p}."""
    f = get(fmt)
    if f.dtype is None:
        return MPNamespace(f.p, data_format=f, batch_ndim=batch_ndim, is_complex=is_complex,
                           record_branches=record_branches)
    return NumpyNamespace(f, batch_ndim=batch_ndim, is_complex=is_complex,
                          record_branches=record_branches)
