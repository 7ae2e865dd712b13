"""Floating-point formats: hardware (numpy / ml_dtypes) and emulated binary{p}.

Every format knows its significand precision ``p`` (hidden bit included), its unit
roundoff ``u = 2**-p``, machine epsilon ``eps = 2**(1 - p)``, largest finite value,
smallest normal value, how numpy evaluates it and how its reductions accumulate.

Rounding into a format goes through one audited function, :func:`round_exact`,
which rounds an exact binary number (an ``mpmath.mpf``, ``int`` or any float) to
the format with a single round-to-nearest-even, including gradual underflow and
overflow to infinity. :func:`round_array` is its vectorised twin for float64
arrays; the tests check that the two agree with each other and with the correctly
rounded numpy casts. (ml_dtypes' float64 -> bfloat16 cast goes through float32 and
can double-round; gradlab never uses it on values that are not already exact.)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import ml_dtypes
import mpmath
import numpy as np
from mpmath import libmp

__all__ = [
    "Format",
    "available",
    "exact_mpf",
    "get",
    "round_array",
    "round_exact",
]

_BINARY_RE = re.compile(r"^binary(\d+)$")
P_MIN, P_MAX = 4, 237


@dataclass(frozen=True)
class Format:
    """A binary floating-point format.

    Parameters
    ----------
    name : str
        Registry name (``"float16"``, ``"binary24"``, ...).
    p : int
        Significand bits, the hidden bit included.
    emin, emax : int or None
        Exponents of the smallest and largest normal binades; ``None`` for the
        emulated formats, whose exponent range is unbounded.
    dtype : numpy.dtype or None
        The numpy dtype that evaluates the format; ``None`` when it is emulated
        with mpmath (round to nearest even after every operation).
    complex_dtype : numpy.dtype or None
        The matching complex dtype, if numpy has one (used by the complex step).
    reduction : str
        How sums and matrix products accumulate in this format, as numpy runs them.
    """

    name: str
    p: int
    emin: int | None
    emax: int | None
    dtype: np.dtype[Any] | None
    complex_dtype: np.dtype[Any] | None = None
    reduction: str = ""
    max_exact: mpmath.mpf = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.emax is None:
            max_exact = mpmath.inf
        else:
            # (2 - 2**(1-p)) * 2**emax, built exactly from integers.
            max_exact = _mpf_from_man_exp((1 << self.p) - 1, self.emax - self.p + 1)
        object.__setattr__(self, "max_exact", max_exact)

    @property
    def emulated(self) -> bool:
        """True when the format runs in mpmath rather than a numpy dtype."""
        return self.dtype is None

    @property
    def u(self) -> float:
        """Unit roundoff, ``2**-p``."""
        return math.ldexp(1.0, -self.p)

    @property
    def eps(self) -> float:
        """Machine epsilon, the spacing just above 1: ``2**(1 - p)``."""
        return math.ldexp(1.0, 1 - self.p)

    @property
    def max(self) -> Any:
        """Largest finite value, as a scalar of the format (``inf`` if unbounded)."""
        if self.dtype is None:
            return math.inf
        return self.from_mpf(self.max_exact)

    @property
    def smallest_normal(self) -> Any:
        """Smallest positive normal value (``0.0`` if the exponent is unbounded)."""
        if self.dtype is None or self.emin is None:
            return 0.0
        return self.from_mpf(_mpf_from_man_exp(1, self.emin))

    def round(self, x: Any) -> mpmath.mpf:
        """Round an exact number to this format; see :func:`round_exact`."""
        return round_exact(x, self)

    def from_mpf(self, x: mpmath.mpf) -> Any:
        """Convert an mpf that is already a value of this format to a numpy scalar.

        For emulated formats the mpf itself is returned.
        """
        if self.dtype is None:
            return x
        return _exact_to_dtype(x, self.dtype)

    def __str__(self) -> str:
        return self.name


def _mpf_from_man_exp(man: int, exp: int) -> mpmath.mpf:
    """The exact value ``man * 2**exp`` as an mpf, with no rounding."""
    return mpmath.mp.make_mpf(libmp.from_man_exp(man, exp))


def exact_mpf(x: Any) -> mpmath.mpf:
    """Convert a number to an mpf exactly (no rounding at any precision).

    Accepts Python ints and floats, numpy scalars of every float dtype
    (longdouble included), ml_dtypes scalars and mpf values.
    """
    if hasattr(x, "_mpf_"):  # an mpf of any mpmath context
        return mpmath.mp.make_mpf(x._mpf_)
    if isinstance(x, (bool, np.bool_)):
        raise TypeError("expected a number, got a bool")
    if isinstance(x, (int, np.integer)):
        return mpmath.mp.make_mpf(libmp.from_int(int(x)))
    if isinstance(x, np.longdouble) and np.finfo(np.longdouble).nmant > 52:
        if not np.isfinite(x):
            return mpmath.mpf(float(x))
        mant, exp = np.frexp(x)
        nbits = np.finfo(np.longdouble).nmant + 1
        man = int(np.ldexp(mant, nbits))  # exact: an integer of nbits bits
        return _mpf_from_man_exp(man, int(exp) - nbits)
    # float, float16/32/64 and ml_dtypes scalars convert to a double exactly.
    return mpmath.mp.make_mpf(libmp.from_float(float(x)))


def _exact_to_dtype(x: mpmath.mpf, dtype: np.dtype[Any]) -> Any:
    """Convert an mpf that is exactly representable in ``dtype`` to that dtype."""
    if not mpmath.isfinite(x):
        return dtype.type(float(x))
    if dtype == np.longdouble and np.finfo(np.longdouble).nmant > 52:
        sign, man, exp, _ = x._mpf_
        man = int(man)
        hi, lo = man >> 32, man & 0xFFFFFFFF  # both exact in longdouble
        val = np.longdouble(hi) * np.longdouble(2**32) + np.longdouble(lo)
        val = np.ldexp(val, exp)
        return -val if sign else val
    return dtype.type(float(x))  # exact: the value has at most 53 bits


def round_exact(x: Any, fmt: Format | str) -> mpmath.mpf:
    """Round a number to a format with one round-to-nearest-even.

    Parameters
    ----------
    x : int, float, numpy scalar or mpmath.mpf
        The value to round, taken exactly (no intermediate rounding).
    fmt : Format or str
        Target format.

    Returns
    -------
    mpmath.mpf
        The rounded value, exactly; ``+-inf`` on overflow. Values in the
        subnormal range round to the subnormal grid ``2**(emin - p + 1)``.
        mpmath has no negative zero, so an underflow to zero loses its sign.

    Examples
    --------
    >>> from gradlab.arithmetic import formats
    >>> float(formats.round_exact(1 + 2**-11, "float16"))   # a tie: to even
    1.0
    >>> float(formats.round_exact(70000, "float16"))
    inf
    """
    fmt = get(fmt)
    v = exact_mpf(x)
    if not mpmath.isfinite(v) or v == 0:
        return v
    sign, man, exp, bc = v._mpf_
    man = int(man)
    quantum = exp + bc - fmt.p  # exponent of the last kept bit: leading exponent - p + 1
    if fmt.emin is not None:
        quantum = max(quantum, fmt.emin - fmt.p + 1)
    if exp < quantum:
        shift = quantum - exp
        q, rem = divmod(man, 1 << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and q & 1):
            q += 1
        man, exp = q, quantum
    r = _mpf_from_man_exp(-man if sign else man, exp)
    if abs(r) > fmt.max_exact:
        return mpmath.inf if not sign else -mpmath.inf
    return r


def round_array(values: Any, fmt: Format | str) -> np.ndarray:
    """Round float64 values to a format, elementwise, with a single rounding.

    Parameters
    ----------
    values : array_like of float
        Values taken as exact float64 numbers.
    fmt : Format or str
        Target format.

    Returns
    -------
    numpy.ndarray
        An array of ``fmt.dtype`` for hardware formats; an object array of mpf
        for emulated ones.
    """
    fmt = get(fmt)
    x = np.asarray(values, dtype=np.float64)
    if fmt.dtype is None:
        flat = [round_exact(float(v), fmt) for v in x.ravel()]
        return np.array(flat, dtype=object).reshape(x.shape)
    if fmt.p >= 53:
        return x.astype(fmt.dtype)  # float64 values are exact in float64/longdouble
    assert fmt.emin is not None
    with np.errstate(invalid="ignore"):  # frexp/ldexp of inf and nan pass them through
        _, e = np.frexp(x)
        # x = m 2**e with 0.5 <= |m| < 1: the last kept bit has exponent e - p.
        quantum = np.maximum(e - fmt.p, fmt.emin - fmt.p + 1)
        r = np.ldexp(np.rint(np.ldexp(x, -quantum)), quantum)  # every step exact
        r = np.where(np.isfinite(x), r, x)
        big = np.abs(r) > float(fmt.max_exact)
        r = np.where(big, np.copysign(np.inf, x), r)
    return r.astype(fmt.dtype)  # exact: r is already a value of the format


def _hardware(name: str, dtype: Any, complex_dtype: Any, reduction: str) -> Format:
    dt = np.dtype(dtype)
    fi = ml_dtypes.finfo(dt) if dt == np.dtype(ml_dtypes.bfloat16) else np.finfo(dt)
    return Format(
        name=name,
        p=int(fi.nmant) + 1,
        emin=int(fi.minexp),
        emax=int(fi.maxexp) - 1,
        dtype=dt,
        complex_dtype=None if complex_dtype is None else np.dtype(complex_dtype),
        reduction=reduction,
    )


@cache
def _registry() -> dict[str, Format]:
    return {
        "bfloat16": _hardware(
            "bfloat16",
            ml_dtypes.bfloat16,
            None,
            "ml_dtypes: each ufunc computes in float32 and rounds once (the correctly "
            "rounded result); sums reduce sequentially, every partial sum rounded to "
            "bfloat16; matmul accumulates in float32 and the result is rounded once",
        ),
        "float16": _hardware(
            "float16",
            np.float16,
            None,
            "numpy: elementwise ops via float32, rounded once (correctly rounded); "
            "contiguous sums accumulate in float32 (pairwise) and round once, strided "
            "(axis) sums round every partial sum to float16; matmul accumulates in "
            "float32 and rounds once",
        ),
        "float32": _hardware(
            "float32",
            np.float32,
            np.complex64,
            "numpy: contiguous sums pairwise (blocks of 8); matmul by BLAS (sgemm)",
        ),
        "float64": _hardware(
            "float64",
            np.float64,
            np.complex128,
            "numpy: contiguous sums pairwise (blocks of 8); matmul by BLAS (dgemm)",
        ),
        "longdouble": _hardware(
            "longdouble",
            np.longdouble,
            np.clongdouble,
            "numpy: pairwise sums; matmul by numpy's own loops (no BLAS)",
        ),
    }


@cache
def _binary(p: int) -> Format:
    return Format(
        name=f"binary{p}",
        p=p,
        emin=None,
        emax=None,
        dtype=None,
        reduction="mpmath emulation: every operation rounded to nearest even; "
        "sums and dot products sequential, each addition rounded",
    )


def get(fmt: Format | str) -> Format:
    """Look up a format by name (or pass a :class:`Format` through).

    Parameters
    ----------
    fmt : str or Format
        ``"bfloat16"``, ``"float16"``, ``"float32"``, ``"float64"``,
        ``"longdouble"`` or ``"binary{p}"`` with ``4 <= p <= 237``.

    Raises
    ------
    ValueError
        If the name is unknown; the message names the parameter ``format``.
    """
    if isinstance(fmt, Format):
        return fmt
    if not isinstance(fmt, str):
        raise TypeError(f"format must be a str or Format, got {type(fmt).__name__}")
    reg = _registry()
    if fmt in reg:
        return reg[fmt]
    m = _BINARY_RE.match(fmt)
    if m:
        p = int(m.group(1))
        if not P_MIN <= p <= P_MAX:
            raise ValueError(f"format {fmt!r}: binary{{p}} needs {P_MIN} <= p <= {P_MAX}")
        return _binary(p)
    raise ValueError(
        f"unknown format {fmt!r}; expected one of {sorted(reg)} or 'binary{{p}}'"
    )


def available() -> list[str]:
    """Names of the hardware formats (emulated ``binary{p}`` are always available)."""
    return list(_registry())
