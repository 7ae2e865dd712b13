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

Confinement. :meth:`Namespace.call` runs ``fn(theta, xp)`` with every array it hands
out (theta, and whatever an ``xp`` function or an operator returns) of a guarded
ndarray subclass. Arithmetic operators and comparisons on them pass; a numpy
function that would compute, branch or round outside the namespace (``np.exp``,
``np.maximum``, ``np.where``, ``abs``), a conversion to a Python number, Python
control flow on a value, ``xp.asarray`` of a theta-dependent array, a result of
another type or dtype than the namespace's, and (in mpmath) a numpy operand the
format would widen each raise :class:`NamespaceEscapeError`, which names the
objective and the fix. A Python float or int operand is taken as the format takes
it under NEP 50: numpy converts it to the array's dtype, so an :class:`MPNamespace`
with a ``data_format`` first rounds it to that format.
"""

from __future__ import annotations

import functools
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import mpmath
import numpy as np
from mpmath.libmp import from_man_exp, fzero

from gradlab.arithmetic.accumulation import round_to, sequential_matmul, sequential_sum
from gradlab.arithmetic.formats import Format, exact_mpf, get, round_array

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

__all__ = ["MPNamespace", "Namespace", "NamespaceEscapeError", "NumpyNamespace", "ObjectArithmetic",
           "namespace_for", "note_event"]

_UNARY = ("exp", "log", "log1p", "expm1", "sin", "cos", "tanh", "sqrt")

_FIX = ("compute with xp's functions (xp.exp, xp.log, xp.maximum, xp.where, xp.sum, xp.matmul, ...) "
       "on the arrays it is given, and pass data and constants through xp.asarray")


class _EventSinks(threading.local):
    def __init__(self) -> None:
        self.stack: list[Any] = []


_SINKS = _EventSinks()


def note_event(kind: str, count: int = 1) -> None:
    """Count a floating-point event numpy does not flag (ml_dtypes' formats raise no FPU
    flags: their overflow to inf, or to NaN without infinities, is silent). The counters of
    every open :func:`gradlab.arithmetic.objective.fp_events` block receive it."""
    for sink in _SINKS.stack:
        sink[kind] += count


class NamespaceEscapeError(TypeError):
    """An objective's arithmetic left its evaluation namespace ``xp``.

    Raised by :meth:`Namespace.call`, with the function named and the fix stated.
    """


# The ufuncs fn may apply to xp's arrays itself: the arithmetic operators (numpy turns
# x ** 2, x ** 0.5 and x ** -1 into square, sqrt and reciprocal) and the comparisons,
# whose results feed xp.where. Any other ufunc computes or branches outside xp.
_OPERATOR_UFUNCS = frozenset({
    np.add, np.subtract, np.multiply, np.true_divide, np.negative, np.positive, np.power,
    np.square, np.sqrt, np.reciprocal, np.matmul, np.greater, np.greater_equal, np.less,
    np.less_equal, np.equal, np.not_equal, np.logical_and, np.logical_or, np.logical_xor,
    np.logical_not,
})
# numpy functions (not ufuncs) that choose between values: branches xp cannot record
_BRANCHING = frozenset({np.where, np.select, np.piecewise, np.clip, np.sort, np.median, np.max,
                        np.min, np.amax, np.amin, np.argmax, np.argmin})
_XP_NAME = {"absolute": "abs", "fabs": "abs", "fmax": "maximum", "amax": "max"}


class _Confinement(threading.local):
    """Per thread: the namespaces whose functions are running, and the depth inside xp."""

    def __init__(self) -> None:
        self.active: list[Namespace] = []
        self.depth = 0


_STATE = _Confinement()


def _enforcing() -> Namespace | None:
    """The namespace whose function is running, when outside xp's own code; else None."""
    st = _STATE
    return st.active[-1] if st.active and not st.depth else None


def _numpy_call(name: str) -> str:
    alt = _XP_NAME.get(name, name)
    hint = (f"use xp.{alt}" if hasattr(Namespace, alt)
            else "xp has no such function: write it with xp's, a choice with xp.where")
    return f"numpy.{name} was applied to xp's arrays directly ({hint})"


def _plain(x: Any) -> Any:
    return x.view(np.ndarray) if isinstance(x, _Guarded) else x


def _guard(x: Any) -> Any:
    """x as guarded arrays; a scalar becomes a 0-d array, so it stays guarded."""
    if type(x) is np.ndarray:
        return x.view(_Guarded)
    if isinstance(x, (tuple, list)):  # two-output ufuncs, unflatten
        return type(x)(_guard(v) for v in x)
    if isinstance(x, np.ndarray):  # guarded already, or another namespace's own array type
        return x
    if isinstance(x, np.generic):
        return np.asarray(x).view(_Guarded)
    a = np.empty((), dtype=object)
    a[()] = x
    return a.view(_Guarded)


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def _leaving(what: str) -> None:
    if _enforcing() is not None:
        raise NamespaceEscapeError(what)


class _Guarded(np.ndarray):
    """An array handed to fn inside :meth:`Namespace.call`: operators pass, the rest is checked.

    Outside a call (or inside xp's own functions) it behaves as a plain ndarray.
    """

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        ns = _enforcing()
        args = tuple(_plain(x) for x in inputs)
        out = kwargs.get("out")
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        if ns is None:
            return getattr(ufunc, method)(*args, **kwargs)
        if ufunc not in _OPERATOR_UFUNCS:
            raise NamespaceEscapeError(_numpy_call(ufunc.__name__))
        operands = tuple(ns._operand(a) for a in args)
        result = getattr(ufunc, method)(*operands, **kwargs)
        ns._after(ufunc.__name__, operands, result)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _guard(result)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        enforcing = _enforcing() is not None
        if enforcing and func in _BRANCHING:
            raise NamespaceEscapeError(_numpy_call(func.__name__))
        r = super().__array_function__(func, types, args, kwargs)
        return r.view(_Guarded) if enforcing and type(r) is np.ndarray else r

    def __getitem__(self, key: Any) -> Any:
        r = super().__getitem__(key)
        # an element stays a 0-d guarded array, so np.exp(theta[0]) is caught as well
        return r if isinstance(r, np.ndarray) or _enforcing() is None else _guard(r)

    def __float__(self) -> float:
        _leaving("float() took a value out of the namespace (what follows it is Python arithmetic)")
        return float(self.view(np.ndarray))

    def __complex__(self) -> complex:
        _leaving("complex() took a value out of the namespace")
        return complex(self.view(np.ndarray))

    def __int__(self) -> int:
        _leaving("int() took a value out of the namespace")
        return int(self.view(np.ndarray))

    def __bool__(self) -> bool:
        _leaving("Python control flow (if, while, and/or, min/max) depends on a value computed "
                 "in xp: a branch that kink detection cannot see (use xp.where, xp.maximum, "
                 "xp.relu or xp.abs)")
        return bool(self.view(np.ndarray))


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _xp(method: _Method) -> _Method:
    """An xp function: run on plain arrays, unchecked inside, its result guarded."""

    @functools.wraps(method)
    def confined(self: Namespace, *args: Any, **kwargs: Any) -> Any:
        st = _STATE
        if not st.active:
            return method(self, *args, **kwargs)
        st.depth += 1
        try:
            r = method(self, *(_plain(a) for a in args), **{k: _plain(v) for k, v in kwargs.items()})
        finally:
            st.depth -= 1
        return r if st.depth else _guard(r)

    return confined  # type: ignore[return-value]


def _from_xp(x: Any) -> bool:
    if isinstance(x, (list, tuple)):
        return any(_from_xp(v) for v in x)
    return isinstance(x, _Guarded)


def _data(method: _Method) -> _Method:
    """xp.asarray: data and constants from outside; xp's own arrays are refused."""

    confined = _xp(method)

    @functools.wraps(method)
    def entry(self: Namespace, x: Any) -> np.ndarray:
        if _enforcing() is not None and _from_xp(x):
            raise NamespaceEscapeError(
                "xp.asarray was given an array from xp (theta, or a value computed from it): "
                "xp.asarray rounds data and constants into the format, and would drop what "
                "the arithmetic carries beyond it; use the array as it is"
            )
        return confined(self, x)

    return entry  # type: ignore[return-value]


def refuse_widening(x: Any, fmt: Format, is_complex: bool) -> None:
    """Refuse a numpy number that the format's compute dtype does not hold: the format's own
    evaluation would upcast to it, so no reference of the format can take it."""
    dt = getattr(x, "dtype", None)
    compute = fmt.compute
    if dt is not None and dt.kind in "iufc" and compute.dtype is not None:
        target = compute.complex_dtype if is_complex else compute.dtype
        if target is not None and not np.can_cast(dt, target, "safe"):
            raise NamespaceEscapeError(
                f"a numpy {dt} operand entered {compute.name} arithmetic, which the format would "
                f"upcast to {np.result_type(dt, target)}"
            )


@functools.lru_cache(maxsize=4096)
def _format_constant(x: float | int, fmt: Format) -> mpmath.mpf | None:
    """A Python number as fmt's arithmetic takes it, or None when that is exact."""
    r = fmt.round_constant(x)
    return None if r == x else r


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

    # -- confinement -----------------------------------------------------------
    def call(self, f: Callable[[Any, Namespace], Any], theta: np.ndarray, label: str) -> np.ndarray:
        """``f(theta, self)``, its arithmetic confined to this namespace (module docstring).

        Parameters
        ----------
        f : callable
            An objective's ``fn`` or ``grad``.
        theta : ndarray
            Numbers of this namespace (from :meth:`from_values`). A plain ndarray is handed
            to ``f`` guarded; a subclass (a namespace's own array type) as it is.
        label : str
            Names ``f`` in errors, e.g. ``"fn of objective 'net'"``.

        Returns
        -------
        ndarray
            The result, as a plain array of this namespace's numbers.

        Raises
        ------
        NamespaceEscapeError
            If ``f``'s arithmetic left the namespace.
        """
        guard = type(theta) is np.ndarray
        st = _STATE
        if guard:
            st.active.append(self)
        try:
            out = f(theta.view(_Guarded) if guard else theta, self)
        except NamespaceEscapeError as exc:
            raise NamespaceEscapeError(f"{label} computed outside its namespace xp ({self.name}): "
                                       f"{exc}. Fix: {_FIX}") from exc
        except ZeroDivisionError as exc:  # mpmath raises where numpy returns inf
            raise ZeroDivisionError(f"{label} divided by zero in {self.name}: its value is not "
                                    "finite") from exc
        except TypeError as exc:
            if not self._foreign(exc):
                raise
            raise NamespaceEscapeError(f"{label} computed outside its namespace xp ({self.name}): "
                                       f"code that does not know xp's numbers got them ({exc}). "
                                       f"Fix: {_FIX}") from exc
        finally:
            if guard:
                st.active.pop()
        out = np.asarray(out)
        wrong = self._wrong_values(out)
        if wrong:
            raise NamespaceEscapeError(f"{label} computed outside its namespace xp ({self.name}): "
                                       f"it returned {wrong}. Fix: {_FIX}")
        return self._leave(out)

    def _leave(self, out: np.ndarray) -> np.ndarray:
        """A result as it leaves the namespace (a policy rounds it to its storage format)."""
        return out

    def _after(self, op: str, operands: tuple[Any, ...], result: Any) -> None:  # noqa: B027
        """Called after every operator on xp's arrays: a backend may count events here."""

    def _operand(self, x: Any) -> Any:
        """An operand of the arithmetic as the format takes it (numpy: as it is)."""
        return x

    def _foreign(self, exc: TypeError) -> bool:
        """Whether a TypeError raised inside fn means its numbers reached foreign code."""
        return False

    @abstractmethod
    def _wrong_values(self, out: np.ndarray) -> str:
        """What is wrong with a result's number type, or "" if nothing."""
        ...

    # -- shapes --------------------------------------------------------------
    def _logical_axes(self, x: np.ndarray, axis: int | Sequence[int] | None) -> tuple[int, ...]:
        nd = x.ndim - self.batch_ndim
        if axis is None:
            return tuple(range(self.batch_ndim, x.ndim))
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
        return tuple(self.batch_ndim + (a % nd) for a in axes)

    @_xp
    def reshape(self, x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        """Reshape the logical axes of ``x``."""
        return x.reshape(x.shape[: self.batch_ndim] + tuple(shape))

    @_xp
    def transpose(self, x: np.ndarray) -> np.ndarray:
        """Swap the last two axes (matrix transpose)."""
        return np.swapaxes(x, -1, -2)

    @_xp
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

    @_xp
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

    @_xp
    def where(self, cond: Any, a: Any, b: Any) -> np.ndarray:
        """Elementwise choice; the condition is recorded as a branch."""
        c = np.asarray(cond, dtype=bool)
        self._record(c)
        return self._where(c, self._operand(a), self._operand(b))

    @_xp
    def relu(self, x: np.ndarray) -> np.ndarray:
        """max(x, 0), on the real part for the complex step."""
        self._check(x, "relu")
        return self.where(self._gt(self.real(x), 0), x, self._zero_like(x))

    @_xp
    def maximum(self, x: Any, y: Any) -> np.ndarray:
        """Elementwise maximum, comparing real parts."""
        x, y = self._operand(x), self._operand(y)
        return self.where(self._ge(self.real(x), self.real(y)), x, y)

    @_xp
    def abs(self, x: np.ndarray) -> np.ndarray:
        """|x|, as the analytic continuation ``sign(Re x) x`` for complex x."""
        self._check(x, "abs")
        return self.where(self._ge(self.real(x), 0), x, -x)

    @_xp
    def mean(
        self, x: np.ndarray, axis: int | Sequence[int] | None = None, keepdims: bool = False
    ) -> np.ndarray:
        """Sum over the axes, divided by their size (both in the namespace)."""
        axes = self._logical_axes(x, axis)
        n = math.prod(x.shape[a] for a in axes)
        return self.sum(x, axis, keepdims) / self._operand(n)

    # -- elementwise functions (each in the namespace's arithmetic) ------------
    @_xp
    def exp(self, x: Any) -> Any:
        """Elementwise exponential."""
        return self._apply("exp", x)

    @_xp
    def log(self, x: Any) -> Any:
        """Elementwise natural logarithm."""
        return self._apply("log", x)

    @_xp
    def log1p(self, x: Any) -> Any:
        """Elementwise log(1 + x)."""
        return self._apply("log1p", x)

    @_xp
    def expm1(self, x: Any) -> Any:
        """Elementwise exp(x) - 1."""
        return self._apply("expm1", x)

    @_xp
    def sin(self, x: Any) -> Any:
        """Elementwise sine."""
        return self._apply("sin", x)

    @_xp
    def cos(self, x: Any) -> Any:
        """Elementwise cosine."""
        return self._apply("cos", x)

    @_xp
    def tanh(self, x: Any) -> Any:
        """Elementwise hyperbolic tangent."""
        return self._apply("tanh", x)

    @_xp
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
    """numpy arrays of a hardware format's (or a policy's compute) dtype.

    Elementwise operations are numpy's in that dtype; sums and matrix products are
    gradlab's own, sequential, in the format's accumulator
    (:mod:`gradlab.arithmetic.accumulation`), with a policy's matmul inputs rounded first
    and each reduction rounded once from a wider accumulator. Under a policy whose compute
    format differs from its storage, theta and data enter by one rounding to compute and
    the returned J leaves by one rounding to storage.
    """

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
        self.compute, self.acc_fmt = self.fmt.compute, self.fmt.accumulate
        if is_complex and (self.fmt.complex_dtype is None or self.acc_fmt.complex_dtype is None):
            raise ValueError(
                f"format {self.fmt.name} has no complex type in numpy, so the complex "
                "step is not available in it"
            )
        pick = (lambda f: f.complex_dtype) if is_complex else (lambda f: f.dtype)
        self.dtype: np.dtype[Any] = pick(self.compute)
        self.acc_dtype: np.dtype[Any] = pick(self.acc_fmt)
        self.storage_dtype: np.dtype[Any] = pick(self.fmt)
        # ml_dtypes' formats raise no FPU flags: their overflows are counted here
        self._silent = self.dtype.type.__module__ != "numpy"
        self.name = self.fmt.name

    def _apply(self, fname: str, x: Any) -> Any:
        self._check(x, fname)
        if not self._silent:
            return getattr(np, fname)(x)
        # ml_dtypes computes these in float32 and rounds once; done here explicitly so that
        # float32's own overflow and the format's silent one are counted once per call
        with np.errstate(all="ignore"):
            wide = getattr(np, fname)(np.asarray(x).astype(np.complex64 if self.is_complex
                                                           else np.float32))
        r = wide.astype(self.dtype)
        self._after(fname, (x,), r, wide)
        return r

    def _after(self, op: str, operands: tuple[Any, ...], result: Any, wide: Any = None) -> None:
        """Count, once per call, a silent overflow (or NaN) of an ml_dtypes format.

        ``wide``: the float32 value before rounding, when the caller has it.
        """
        if not self._silent or not isinstance(result, np.ndarray) or result.dtype != self.dtype:
            return
        bad = ~np.isfinite(result)
        for x in operands:  # a value that was not finite already is no new event
            if isinstance(x, np.ndarray) and bad.any():
                fin = np.isfinite(x)
                bad &= fin if _broadcasts_to(x.shape, result.shape) else fin.all()
        if not bad.any():
            return
        if wide is None:  # + - * and reductions of finite values: only an overflow is possible
            note_event("overflow")
            return
        with np.errstate(invalid="ignore"):
            big = bad & (~np.isfinite(wide) | (np.abs(wide) > float(self.compute.max_exact)))
            big &= ~np.isnan(wide)
        if big.any():
            note_event("overflow")
        if (bad & ~big).any():
            note_event("invalid")

    def _check(self, x: Any, op: str) -> None:
        dt = getattr(x, "dtype", None)
        if dt is not None and dt != self.dtype and dt != np.bool_:
            raise NamespaceEscapeError(
                f"an array of dtype {dt} reached xp.{op} while evaluating in "
                f"{self.name} ({self.dtype}): a value was upcast or entered without "
                "xp.asarray (use xp.asarray for data and constants, xp.matmul for products)"
            )

    def _wrong_values(self, out: np.ndarray) -> str:
        if out.dtype == self.dtype:
            return ""
        return f"{out.dtype} values from a {self.name} evaluation, whose numbers are {self.dtype}"

    def _operand(self, x: Any) -> Any:
        """A Python constant under a policy with an explicit data format is rounded to it
        first, like data (numpy then rounds it to compute); otherwise as it is."""
        if self.fmt.data == self.fmt.storage:
            return x
        t = type(x)
        if t is float or t is int:
            return float(self.fmt.data.round(x))
        if t is complex:
            return complex(float(self.fmt.data.round(x.real)), float(self.fmt.data.round(x.imag)))
        return x

    def _leave(self, out: np.ndarray) -> np.ndarray:
        if self.compute == self.fmt.storage:
            return out
        return round_to(out, self.fmt.storage, self.storage_dtype)

    def _into_compute(self, a: np.ndarray) -> np.ndarray:
        if self.compute == self.fmt.storage:
            return a.astype(self.dtype)
        return round_to(a, self.compute, self.dtype)

    @_data
    def asarray(self, x: Any) -> np.ndarray:
        """Data or constants (float values), rounded once to the format (storage, then compute).

        The result carries the batch axes (of length 1), so it is meant for
        inputs, not for arrays computed inside the objective.
        """
        a = np.asarray(x, dtype=np.float64)
        if self.fmt.data != self.fmt.storage:
            a = round_array(a, self.fmt.data).astype(np.float64)
        a = self._into_compute(round_array(a, self.fmt))
        return a.reshape((1,) * self.batch_ndim + a.shape)

    @_xp
    def from_values(self, values: np.ndarray) -> np.ndarray:
        """Points that are already values of the (storage) format, in the namespace's dtype."""
        v = np.asarray(values)
        return self._into_compute(v.astype(self.storage_dtype) if v.dtype == object else v)

    def _matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        inputs = self.fmt.matmul_inputs
        if inputs is not None:
            a, b = round_to(a, inputs, self.acc_dtype), round_to(b, inputs, self.acc_dtype)
        r = sequential_matmul(a, b, self.acc_dtype)
        self._after("matmul", (a, b), r)
        return self._from_acc(r)

    def _from_acc(self, r: np.ndarray) -> np.ndarray:
        """A reduction's result, rounded once from the accumulator to compute."""
        return r if self.acc_dtype == self.dtype else round_to(r, self.compute, self.dtype)

    def _where(self, c: np.ndarray, a: Any, b: Any) -> np.ndarray:
        r = np.where(c, a, b)
        if r.dtype != self.dtype:
            r = r.astype(self.dtype)  # a Python scalar branch: exact in the format
        return r

    def _zero_like(self, x: np.ndarray) -> Any:
        return np.zeros((), dtype=self.dtype)

    @_xp
    def real(self, x: Any) -> Any:
        return np.real(x) if np.iscomplexobj(x) else x

    @_xp
    def sum(
        self, x: np.ndarray, axis: int | Sequence[int] | None = None, keepdims: bool = False
    ) -> np.ndarray:
        """Sequential sum over logical axes (all of them by default) in the accumulator."""
        self._check(x, "sum")
        r = sequential_sum(x, self._logical_axes(x, axis), self.acc_dtype, keepdims)
        self._after("sum", (x,), r)
        return self._from_acc(r)

    @_xp
    def logaddexp(self, a: Any, b: Any) -> Any:
        """log(exp(a) + exp(b)) without overflow; smooth, so no branch is recorded."""
        self._check(a, "logaddexp")
        self._check(b, "logaddexp")
        if not self.is_complex:
            return np.logaddexp(a, b)
        m = np.maximum(np.real(a), np.real(b)).astype(self.dtype)
        return m + np.log(np.exp(a - m) + np.exp(b - m))

    @_xp
    def max(self, x: np.ndarray, axis: int | Sequence[int] | None = None) -> np.ndarray:
        """Maximum of the real parts over logical axes (a constant for the complex step)."""
        self._check(x, "max")
        return np.max(np.real(x), axis=self._logical_axes(x, axis), keepdims=True).astype(self.dtype)


_REAL_OF = np.frompyfunc(lambda z: z.real, 1, 1)


class ObjectArithmetic(Namespace):
    """Reductions shared by the namespaces of Python number objects (mpmath numbers, Arb balls),
    whose own arithmetic rounds (or encloses) every operation and never overflows."""

    @_xp
    def real(self, x: Any) -> Any:
        """The real part (the values themselves in real arithmetic)."""
        if not self.is_complex:
            return x
        if isinstance(x, np.ndarray):
            return np.asarray(_REAL_OF(x), dtype=object)
        return getattr(x, "real", x)

    @_xp
    def sum(
        self, x: np.ndarray, axis: int | Sequence[int] | None = None, keepdims: bool = False
    ) -> np.ndarray:
        """Sequential sum over logical axes, each addition in the numbers' own arithmetic."""
        self._check(x, "sum")
        return np.asarray(
            np.sum(x, axis=self._logical_axes(x, axis), keepdims=keepdims), dtype=object
        )

    @_xp
    def logaddexp(self, a: Any, b: Any) -> Any:
        """log(exp(a) + exp(b)) as written: these numbers do not overflow."""
        return self.log(self.exp(a) + self.exp(b))


class MPNamespace(ObjectArithmetic):
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
            raise NamespaceEscapeError(
                f"an array of dtype {dt} reached xp.{op} while evaluating in {self.name}: "
                "data must enter through xp.asarray"
            )

    def _operand(self, x: Any) -> Any:
        """An operand as the format takes it: under NEP 50 numpy converts a Python number to
        the array's dtype, so it is rounded to ``data_format`` (kept as it is when exact); a
        numpy number the format's dtype does not hold would widen the format's arithmetic."""
        t, fmt = type(x), self.data_format
        if fmt is None:
            return x
        if t is float or t is int:
            r = _format_constant(x, fmt)
            return x if r is None else self.convert(r)
        if t is complex:
            re, im = (_format_constant(v, fmt) for v in (x.real, x.imag))
            if re is None and im is None:
                return x
            return self.ctx.mpc(x.real if re is None else re, x.imag if im is None else im)
        refuse_widening(x, fmt, self.is_complex)
        return x

    def _foreign(self, exc: TypeError) -> bool:
        text = str(exc)  # numpy's "loop of ufunc does not support argument 0 of type mpf ..."
        return "mpf" in text or "mpc" in text

    def _wrong_values(self, out: np.ndarray) -> str:
        want = self.ctx.mpc if self.is_complex else self.ctx.mpf
        if out.dtype != object:
            return f"{out.dtype} values, not mpmath numbers"
        bad = next((v for v in out.flat if type(v) is not want), None)
        if bad is None:
            return ""
        kind = type(bad).__name__
        if kind in ("mpf", "mpc") and type(bad) not in (self.ctx.mpf, self.ctx.mpc):
            kind += " of another mpmath context than xp's (such as the global mpmath.mp)"
        return f"{kind} values where xp's numbers are {want.__name__} at {self.prec} bits"

    @_data
    def asarray(self, x: Any) -> np.ndarray:
        """Data or constants (float values), rounded to ``data_format`` (if set), then to prec."""
        a = np.asarray(x, dtype=np.float64)
        flat = a.ravel()
        fmt = self.data_format
        if fmt is not None:
            vals = [self.convert(fmt.round_data(float(v))) for v in flat]
        else:
            vals = [self.convert(float(v)) for v in flat]
        out = np.empty(len(vals), dtype=object)
        out[:] = vals
        return out.reshape((1,) * self.batch_ndim + a.shape)

    @_xp
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


    @_xp
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
