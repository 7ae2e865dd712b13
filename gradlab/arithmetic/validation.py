"""Argument validation shared by the public functions: one check per kind of argument.

Every check takes the parameter's name and the value a caller passed, and returns the
value in the form the code uses (a float, an int, a float64 array, a :class:`Format`, ...)
or raises: :class:`TypeError` when the value is the wrong kind of object (a string for a
number, a bool for an integer, complex for real), :class:`ValueError` when it is the right
kind with a bad value (negative, NaN, out of range, an unknown name). The message names
the parameter and shows what was got, so that bad input ends in a clear error instead of
a silent NaN or a wrong number further down.

Examples
--------
>>> positive("h", 1e-3)
0.001
>>> integer("maxiter", True, 1)
Traceback (most recent call last):
    ...
TypeError: maxiter must be an integer, got True (bool)
>>> steps("steps", [1e-3, -1.0])
Traceback (most recent call last):
    ...
ValueError: steps must be positive and finite; steps[1] = -1.0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import mpmath
import numpy as np
import pandas as pd

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic.objective import Objective

__all__ = [
    "ScalarFunction",
    "choice",
    "finite_value",
    "format_list",
    "function",
    "greater",
    "in_range",
    "indices",
    "integer",
    "noise_levels",
    "nonnegative",
    "objective",
    "one_format",
    "one_scheme",
    "per_format",
    "point",
    "positive",
    "real",
    "real_array",
    "real_vector",
    "scheme_list",
    "steps",
    "steps_in_format",
    "table",
]


def _got(value: Any) -> str:
    """What was got, for a message: a short repr and the type."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def _not_a_number(value: Any) -> bool:
    """True for the objects that convert to float but are not real numbers: bools, strings,
    bytes and complex numbers (whose imaginary part a conversion would drop)."""
    return isinstance(value, (bool, np.bool_, str, bytes, complex, np.complexfloating))


def _is_real(value: Any) -> bool:
    """A real number of any type: Python, numpy (ml_dtypes' too, 0-d arrays included) or mpmath."""
    if _not_a_number(value):
        return False
    if isinstance(value, (np.generic, np.ndarray)):
        return value.ndim == 0 and value.dtype.kind in "fiuV"  # V: ml_dtypes' bfloat16
    return isinstance(value, numbers.Real) or hasattr(value, "_mpf_")


# ---------------------------------------------------------------- numbers


def real(name: str, value: Any) -> float:
    """A finite real number as a float."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a real number, got {_got(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def positive(name: str, value: Any) -> float:
    """A positive finite real number as a float."""
    v = real(name, value)
    if not v > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return v


def nonnegative(name: str, value: Any) -> float:
    """A finite real number >= 0, as a float."""
    v = real(name, value)
    if not v >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


def greater(name: str, value: Any, bound: float) -> float:
    """A finite real number above ``bound``, as a float."""
    v = real(name, value)
    if not v > bound:
        raise ValueError(f"{name} must exceed {bound:g}, got {value!r}")
    return v


def in_range(name: str, value: Any, low: float, high: float, *, include_high: bool = False) -> float:
    """A real number in ``(low, high)`` (or ``(low, high]``), as a float; a probability is
    ``in_range(name, p, 0, 1)``."""
    v = real(name, value)
    if not (low < v < high or (include_high and v == high)):
        interval = f"({low:g}, {high:g}{']' if include_high else ')'}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return v


def integer(name: str, value: Any, minimum: int | None = None) -> int:
    """An integer (not a bool, not a float, even an integral one) of at least ``minimum``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {_got(value)}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def choice(name: str, value: Any, options: Sequence[str]) -> str:
    """One of the strings ``options``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {list(options)}, got {_got(value)}")
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value


def finite_value(name: str, value: Any, where: str) -> None:
    """ValueError unless ``value`` (a float, a numpy scalar or an mpmath number) is finite.

    ``where`` completes the message: ``f"{name} is not finite {where}"``.
    """
    if not mpmath.isfinite(fmts.exact_mpf(value)):
        raise ValueError(f"{name} is not finite {where} ({name} = {value})")


# ---------------------------------------------------------------- arrays


def real_array(name: str, value: Any) -> np.ndarray:
    """Real numbers of any shape as float64, refusing strings, bools and complex values."""
    if _not_a_number(value) or value is None:
        raise TypeError(f"{name} must be real numbers, got {_got(value)}")
    arr = value if isinstance(value, np.ndarray) else np.asarray(value, dtype=object)
    if arr.dtype == object:
        for v in arr.flat:
            if not _is_real(v):
                raise TypeError(f"{name} must be real numbers, got the entry {_got(v)}")
    elif arr.dtype.kind in "bcUSMm":
        raise TypeError(f"{name} must be real numbers, got an array of {arr.dtype}")
    try:
        return np.asarray(arr.astype(np.float64))
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be real numbers: {e}") from None


def _first_bad(name: str, arr: np.ndarray, bad: np.ndarray) -> str:
    """``name[i] = v`` for the first few flagged entries of a 1-D array."""
    return ", ".join(f"{name}[{i}] = {arr[i].item()!r}" for i in np.flatnonzero(bad)[:3])


def real_vector(name: str, value: Any) -> np.ndarray:
    """A non-empty 1-D vector of finite real numbers, as float64 (a point theta)."""
    arr = real_array(name, value)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} must be finite; {_first_bad(name, arr, bad)}")
    return arr


def point(name: str, value: Any, f: Any) -> np.ndarray:
    """The point of ``f``: ``value`` as a :func:`real_vector` (of the objective's length for an
    :class:`Objective`), or, when None, an Objective's own theta0."""
    if value is None:
        if isinstance(f, Objective):
            return f.theta0
        raise ValueError(f"{name} is required when f is a plain callable")
    arr = real_vector(name, value)
    if isinstance(f, Objective) and arr.size != f.n_params:
        raise ValueError(f"{name} has {arr.size} entries; objective {f.name!r} has {f.n_params} parameters")
    return arr


def steps(name: str, value: Any) -> np.ndarray:
    """Nominal steps: a scalar or a non-empty 1-D array of positive finite numbers, as float64
    in the order given."""
    arr = np.atleast_1d(real_array(name, value))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of steps, got shape {arr.shape}")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        raise ValueError(f"{name} must be positive and finite; {_first_bad(name, arr, bad)}")
    return arr


def steps_in_format(name: str, value: np.ndarray, fmt: fmts.Format) -> None:
    """ValueError if a step is beyond the format's range (``fl(h)`` would be infinite).

    A step the format holds but whose stencil points ``theta + k h`` overflow is data, not
    an error: the engine flags its rows ``overflow``.
    """
    bad = ~np.isfinite(fmts.round_array(value, fmt).astype(np.float64))
    if bad.any():
        raise ValueError(f"{name}: {_first_bad(name, value, bad)} is beyond the range of "
                         f"{fmt.name} (largest finite {float(fmt.max):.6g}): fl(h) is infinite")


def indices(name: str, value: Any, n: int) -> np.ndarray:
    """Coordinate indices in ``[0, n)``: a non-empty sequence of integers (no bools, no floats),
    returned sorted and without repeats."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Iterable, np.ndarray)):
        raise TypeError(f"{name} must be a sequence of integer indices, got {_got(value)}")
    arr = np.asarray(value) if isinstance(value, np.ndarray) else np.asarray(list(value), dtype=object)
    if arr.dtype == object:
        for i, v in enumerate(arr.flat):
            integer(f"{name}[{i}]", v)
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integer indices, got an array of {arr.dtype}: {arr.ravel()[:3]}")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of indices, got shape {arr.shape}")
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        raise ValueError(f"{name} must be indices in [0, {n}); {_first_bad(name, arr, bad)}")
    return np.unique(arr.astype(np.int64))


# ---------------------------------------------------------------- formats and schemes


def one_format(name: str, value: Any) -> fmts.Format:
    """A format by name (``"float32"``, ``"binary24"``, ...) or a :class:`Format`."""
    try:
        return fmts.get(value)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{name}: {e}") from None


def one_scheme(name: str, value: Any) -> schs.Scheme:
    """A scheme by name (``"central"``, ...) or a :class:`Scheme`."""
    if not isinstance(value, (str, schs.Scheme)):
        raise TypeError(f"{name} must be a scheme name or a Scheme, got {_got(value)}")
    try:
        return schs.get(value)
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None


def _named_list(name: str, value: Any, kind: type, what: str, get: Callable[[str, Any], Any]) -> list[Any]:
    """One name or object of ``kind``, or a non-empty sequence of them without repeats."""
    if isinstance(value, (str, kind)):
        return [get(name, value)]
    if value is None or isinstance(value, (bytes, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a {what} name, a {kind.__name__} or a sequence of them, "
                        f"got {_got(value)}")
    items = [get(f"{name}[{i}]", v) for i, v in enumerate(value)]
    if not items:
        raise ValueError(f"{name} must name at least one {what}, got {_got(value)}")
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item.name in seen:
            raise ValueError(f"{name}[{i}] repeats {name}[{seen[item.name]}] ({item.name!r}): "
                             "its rows would be counted twice")
        seen[item.name] = i
    return items


def format_list(name: str, value: Any) -> list[fmts.Format]:
    """A format, or a non-empty sequence of distinct formats."""
    return _named_list(name, value, fmts.Format, "format", one_format)


def scheme_list(name: str, value: Any) -> list[schs.Scheme]:
    """A scheme, or a non-empty sequence of distinct schemes."""
    return _named_list(name, value, schs.Scheme, "scheme", one_scheme)


def per_format(name: str, value: Any, formats: Sequence[fmts.Format]) -> dict[str, Any]:
    """A mapping keyed by format (name or :class:`Format`) as ``{format name: value}``; None is
    empty. A key that is not one of ``formats`` is refused: its value would be ignored."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a mapping from format names, got {_got(value)}")
    names = [f.name for f in formats]
    out = {}
    for key, v in value.items():
        fmt = one_format(f"{name} key {key!r}", key)
        if fmt.name not in names:
            raise ValueError(f"{name} has an entry for {fmt.name!r}, which is not among the "
                             f"formats {names}")
        out[fmt.name] = v
    return out


def noise_levels(name: str, value: Any, formats: Sequence[fmts.Format]) -> dict[str, float]:
    """Noise levels of J per format (see :func:`per_format`): >= 0, 0 being a noiseless J
    (no rounding modelled) and +inf a noise :func:`gradlab.noise_level` could not bound (J
    not finite at its sample points; the rounding model is then inf, as it is when the
    engine measures that noise itself). NaN and negative levels are refused."""
    out = {}
    for k, v in per_format(name, value, formats).items():
        label = f"{name}[{k!r}]"
        out[k] = math.inf if _is_real(v) and float(v) == math.inf else nonnegative(label, v)
    return out


# ---------------------------------------------------------------- functions and tables


def objective(name: str, value: Any) -> Objective:
    """A :class:`gradlab.Objective`."""
    if not isinstance(value, Objective):
        raise TypeError(f"{name} must be a gradlab.Objective, got {_got(value)}")
    return value


class ScalarFunction:
    """A plain callable ``f(x) -> J`` whose every value is checked to be one real number.

    The value itself is returned untouched (so its dtype still tells whether ``f``
    upcast); a vector, a complex number, a bool or a non-number raises, naming the
    parameter and what ``f`` returned.
    """

    def __init__(self, name: str, f: Callable[[np.ndarray], Any]) -> None:
        self.name, self.f = name, f

    def __call__(self, x: np.ndarray) -> Any:
        value = self.f(x)
        arr = np.asarray(value)
        if arr.size != 1:
            raise ValueError(f"{self.name} must return a scalar J; it returned shape {arr.shape} "
                             f"at a point of shape {np.shape(x)}")
        if arr.dtype.kind in "bcUSMm" or (arr.dtype == object and not _is_real(arr.reshape(())[()])):
            raise TypeError(f"{self.name} must return a real number; it returned {_got(value)}")
        return value


def function(name: str, value: Any) -> Objective | ScalarFunction:
    """An :class:`Objective` as it is, or a plain callable wrapped in :class:`ScalarFunction`."""
    if isinstance(value, Objective):
        return value
    if isinstance(value, ScalarFunction):
        return value
    if not callable(value):
        raise TypeError(f"{name} must be a gradlab.Objective or a callable, got {_got(value)}")
    return ScalarFunction(name, value)


def table(name: str, value: Any, columns: Iterable[str]) -> pd.DataFrame:
    """A DataFrame holding ``columns``."""
    if not isinstance(value, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas.DataFrame, got {_got(value)}")
    missing = sorted(set(columns) - set(value.columns))
    if missing:
        raise ValueError(f"{name} lacks the columns {missing}")
    return value
