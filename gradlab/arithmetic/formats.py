"""Floating-point formats: hardware (numpy / ml_dtypes), emulated binary{p}, and policies.

Every format knows its significand precision ``p`` (hidden bit included), its unit
roundoff ``u = 2**-p``, machine epsilon ``eps = 2**(1 - p)``, largest finite value,
smallest normal value, whether it has infinities, and how its arithmetic runs
(``reduction``). A plain format name means *every* operation rounds to that format:
each elementwise result, each product and each partial sum of a reduction, which runs
sequentially (left to right over the reduced axes in row-major order). gradlab
computes its sums and matrix products itself (:mod:`gradlab.arithmetic.accumulation`)
rather than leaving the order, the accumulator and the use of FMA to numpy or a BLAS.

A :class:`Policy` (mixed precision, :func:`policy`) is a format too: it stores theta,
data and J in one format, computes elementwise operations in another, and may round
matrix-product inputs (TF32) and accumulate products and sums in a wider format,
rounding each reduction's result once. Presets: ``"tf32"``, ``"bf16-mixed"``,
``"fp16-mixed"``; :func:`get` also parses the canonical names ``policy(...)`` writes.

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
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import ml_dtypes
import mpmath
import numpy as np
from flint import arb
from mpmath import libmp

__all__ = [
    "Format",
    "Policy",
    "available",
    "exact_mpf",
    "get",
    "policy",
    "presets",
    "round_array",
    "round_exact",
    "round_to_mpf",
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
        How the arithmetic runs: elementwise operations, products and reductions.
    max_man : int or None
        Significand of the largest finite value, ``max = max_man * 2**(emax - p + 1)``;
        ``None`` for ``2**p - 1`` (IEEE-like). float8_e4m3fn spends its top code on NaN,
        so its largest value is 448, not 480.
    has_inf : bool
        Whether the format has infinities; an overflow in one without them (float8_e4m3fn)
        is NaN, which the namespace counts as an ``overflow`` event.
    """

    name: str
    p: int
    emin: int | None
    emax: int | None
    dtype: np.dtype[Any] | None
    complex_dtype: np.dtype[Any] | None = None
    reduction: str = ""
    max_man: int | None = None
    has_inf: bool = True
    max_exact: mpmath.mpf = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.emax is None:
            max_exact = mpmath.inf
        else:
            man = (1 << self.p) - 1 if self.max_man is None else self.max_man
            max_exact = _mpf_from_man_exp(man, self.emax - self.p + 1)  # exact, from integers
        object.__setattr__(self, "max_exact", max_exact)

    # A plain format is its own policy: every operation in it, nothing rounded on the way in.
    @property
    def storage(self) -> Format:
        """The format of theta, data and J (a plain format: itself)."""
        return self

    @property
    def compute(self) -> Format:
        """The format of elementwise operations and intermediate values."""
        return self

    @property
    def accumulate(self) -> Format:
        """The format in which products are formed and sums accumulated."""
        return self

    @property
    def matmul_inputs(self) -> Format | None:
        """The format matrix-product inputs are rounded to first (``None``: as they are)."""
        return None

    @property
    def data(self) -> Format:
        """The format data and constants are rounded to before they enter storage."""
        return self

    def round_constant(self, x: Any) -> mpmath.mpf:
        """A Python constant in an objective's arithmetic as this format sees it: numpy
        rounds it to compute, after a policy's explicit data format (if any)."""
        v = x if self.data == self.storage else round_exact(x, self.data)
        return round_exact(v, self.compute)

    def round_data(self, x: Any) -> mpmath.mpf:
        """A datum as this format's evaluation sees it, exactly: rounded to data, storage and
        compute in turn (one rounding for a plain format)."""
        v = x
        for f in dict.fromkeys((self.data, self.storage, self.compute)):
            v = round_exact(v, f)
        return v

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
    (longdouble included), ml_dtypes scalars, mpf values and Arb balls (their midpoint).
    """
    if hasattr(x, "_mpf_"):  # an mpf of any mpmath context
        return mpmath.mp.make_mpf(x._mpf_)
    if isinstance(x, arb):
        mid = x.mid()
        if not mid.is_finite():
            return mpmath.mpf(float(mid))
        man_exp = mid.man_exp()
        return _mpf_from_man_exp(int(man_exp[0]), int(man_exp[1]))
    if isinstance(x, np.ndarray):
        if x.ndim != 0:
            raise TypeError(f"expected a number, got an array of shape {x.shape}")
        x = x[()]  # a 0-d array: its scalar (float() would round a longdouble to float64)
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
        The rounded value, exactly; ``+-inf`` on overflow (NaN in a format without
        infinities, as its hardware cast gives). Values in the
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
        return v if fmt.has_inf or not mpmath.isinf(v) else mpmath.nan
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
        if not fmt.has_inf:
            return mpmath.nan
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


def round_to_mpf(values: Any, fmt: Format | str) -> list[mpmath.mpf]:
    """float64 values rounded to a format, as exact mpf: ``[fmt.round(v) for v in values]``,
    vectorised through :func:`round_array` for the hardware formats.

    Examples
    --------
    >>> round_to_mpf([0.1, 3.0], "bfloat16")
    [mpf('0.10009765625'), mpf('3.0')]
    """
    fmt = get(fmt)
    x = np.ascontiguousarray(values, dtype=np.float64)
    key = (fmt.name, x.shape, x.tobytes())  # a reference rounds one theta several times
    if key not in _ROUNDED:
        r = round_array(x, fmt).ravel()
        if r.dtype == object:
            out = list(r)
        elif r.dtype.itemsize <= 8:  # float8 to float64: exact in a double
            out = [mpmath.mpf(v) for v in r.astype(np.float64).tolist()]
        else:
            out = [exact_mpf(v) for v in r]
        while len(_ROUNDED) >= 4:
            _ROUNDED.popitem(last=False)
        _ROUNDED[key] = out
    return list(_ROUNDED[key])


_ROUNDED: OrderedDict[tuple[Any, ...], list[mpmath.mpf]] = OrderedDict()


def _finfo(dt: np.dtype[Any]) -> Any:
    return np.finfo(dt) if dt.kind == "f" and dt.type.__module__ == "numpy" else ml_dtypes.finfo(dt)


def _strict(name: str, elementwise: str) -> str:
    return (f"every operation rounds to {name}: {elementwise}; sums and matrix products "
            f"sequential (left to right over the reduced axes, row-major), each product "
            f"and each partial sum rounded to {name}")


def _hardware(name: str, dtype: Any, complex_dtype: Any, elementwise: str) -> Format:
    dt = np.dtype(dtype)
    fi = _finfo(dt)
    p, emax = int(fi.nmant) + 1, int(fi.maxexp) - 1
    # the largest value's significand, exact: an integer of p bits (np.ldexp keeps longdouble)
    max_man = int(np.ldexp(dt.type(fi.max), p - 1 - emax))
    return Format(
        name=name,
        p=p,
        emin=int(fi.minexp),
        emax=emax,
        dtype=dt,
        complex_dtype=None if complex_dtype is None else np.dtype(complex_dtype),
        reduction=_strict(name, elementwise),
        max_man=None if max_man == (1 << p) - 1 else max_man,
        has_inf=bool(np.isinf(np.array(np.inf).astype(dt))),
    )


_VIA_F32 = ("{}: + - * / sqrt correctly rounded (computed in float32, rounded once); "
            "exp, log, sin, cos, tanh: float32's function rounded once")


@cache
def _registry() -> dict[str, Format]:
    ieee = "+ - * / sqrt correctly rounded (IEEE 754); exp, log, ...: numpy's (libm/SIMD) functions"
    return {
        "float8_e4m3fn": _hardware("float8_e4m3fn", ml_dtypes.float8_e4m3fn, None,
                                   _VIA_F32.format("ml_dtypes") + "; no infinities: an "
                                   "overflow is NaN (counted as an overflow event)"),
        "float8_e5m2": _hardware("float8_e5m2", ml_dtypes.float8_e5m2, None,
                                 _VIA_F32.format("ml_dtypes")),
        "bfloat16": _hardware("bfloat16", ml_dtypes.bfloat16, None, _VIA_F32.format("ml_dtypes")),
        "float16": _hardware("float16", np.float16, None, _VIA_F32.format("numpy")),
        "float32": _hardware("float32", np.float32, np.complex64, ieee),
        "float64": _hardware("float64", np.float64, np.complex128, ieee),
        "longdouble": _hardware("longdouble", np.longdouble, np.clongdouble, ieee),
    }


@cache
def _binary(p: int) -> Format:
    return Format(
        name=f"binary{p}",
        p=p,
        emin=None,
        emax=None,
        dtype=None,
        reduction=f"mpmath emulation, every operation rounds to {p} bits (nearest even, "
        "unbounded exponent); sums and matrix products sequential, each product and each "
        "partial sum rounded",
    )


@dataclass(frozen=True)
class Policy(Format):
    """A mixed-precision arithmetic: a format whose operations are not all in one format.

    Its ``p``, exponent range and ``dtype`` are the storage format's (theta, data and J
    are values of it; the stencil and the reference round to it). Build one with
    :func:`policy`; the parameters are described there.
    """

    storage_format: Format | None = None
    compute_format: Format | None = None
    accumulate_format: Format | None = None
    inputs_format: Format | None = None
    data_format: Format | None = None

    @property
    def data(self) -> Format:
        return self.storage if self.data_format is None else self.data_format

    @property
    def storage(self) -> Format:
        assert self.storage_format is not None
        return self.storage_format

    @property
    def compute(self) -> Format:
        assert self.compute_format is not None
        return self.compute_format

    @property
    def accumulate(self) -> Format:
        assert self.accumulate_format is not None
        return self.accumulate_format

    @property
    def matmul_inputs(self) -> Format | None:
        return self.inputs_format


_POLICY_RE = re.compile(r"^policy\((.*)\)$")
_POLICY_KEYS = ("storage", "compute", "accumulate", "matmul_inputs", "data")
_PRESETS = {
    "tf32": {"storage": "float32", "matmul_inputs": "binary11", "accumulate": "float32"},
    "bf16-mixed": {"storage": "bfloat16", "accumulate": "float32"},
    "fp16-mixed": {"storage": "float16", "accumulate": "float32"},
}
_NAMED: dict[str, Policy] = {}


def _policy_part(value: Format | str, param: str) -> Format:
    try:
        f = get(value)
    except (TypeError, ValueError) as e:
        raise type(e)(f"policy {param}: {e}") from None
    if isinstance(f, Policy) or f.dtype is None or f.p > 53:
        raise ValueError(f"policy {param}={f.name!r}: expected a hardware format of at most 53 "
                         f"bits ({', '.join(n for n in _registry() if n != 'longdouble')})")
    return f


def _inputs_format(value: Format | str, compute: Format) -> Format:
    """Matmul inputs: a hardware format, or binary{p} meaning p bits in compute's range."""
    m = _BINARY_RE.match(value) if isinstance(value, str) else None
    if m is None:
        f = _policy_part(value, "matmul_inputs")
    else:
        get(value)  # the range check of binary{p}
        f = Format(name=m.group(0), p=int(m.group(1)), emin=compute.emin, emax=compute.emax,
                   dtype=compute.dtype, reduction=f"{value} significand, {compute.name} range")
    if f.p > compute.p:
        raise ValueError(f"policy matmul_inputs={f.name!r} ({f.p} bits) is wider than compute "
                         f"{compute.name!r} ({compute.p} bits): inputs cannot gain bits")
    return f


def policy(
    storage: Format | str,
    compute: Format | str | None = None,
    accumulate: Format | str | None = None,
    matmul_inputs: Format | str | None = None,
    name: str | None = None,
    data: Format | str | None = None,
) -> Format:
    """A precision policy: which format each kind of operation runs in.

    Parameters
    ----------
    storage : Format or str
        Format of theta, data and the returned J (and gradient).
    compute : Format or str, optional
        Format of elementwise operations and the values between them (default: storage).
        Theta and data enter it from storage by one rounding, J leaves it by one.
    accumulate : Format or str, optional
        Format in which the products of a matrix product are formed and every sum is
        accumulated (sequentially); each reduction's result is rounded once to compute.
        Default: compute (every partial sum rounded to compute). At least compute's width.
    matmul_inputs : Format or str, optional
        Format the inputs of a matrix product are rounded to first: a hardware format, or
        ``"binary{p}"`` for ``p`` significand bits in compute's exponent range (TF32 is
        ``"binary11"``: 10 fraction bits).
    name : str, optional
        Label for tables; :func:`get` resolves it in this process. Default: the canonical
        ``"policy(storage=..., ...)"``, which :func:`get` parses anywhere.
    data : Format or str, optional
        Format data and constants (``xp.asarray``) are rounded to before they enter storage
        (default: storage). A check's reference uses it: FD in float32 on the data a
        bfloat16 evaluation sees is ``policy("float32", data="bfloat16")``.

    Returns
    -------
    Format
        A :class:`Policy`; the storage format itself when nothing differs from it.

    Examples
    --------
    >>> from gradlab.arithmetic import formats
    >>> formats.policy("bfloat16", accumulate="float32").name
    'policy(storage=bfloat16, accumulate=float32)'
    >>> formats.get("bf16-mixed").accumulate.name
    'float32'
    """
    st = _policy_part(storage, "storage")
    cp = st if compute is None else _policy_part(compute, "compute")
    acc = cp if accumulate is None else _policy_part(accumulate, "accumulate")
    if acc.p < cp.p:
        raise ValueError(f"policy accumulate={acc.name!r} ({acc.p} bits) is narrower than compute "
                         f"{cp.name!r} ({cp.p} bits)")
    if (acc.emin or 0) > (cp.emin or 0) or (acc.emax or 0) < (cp.emax or 0):
        raise ValueError(f"policy accumulate={acc.name!r} does not hold compute {cp.name!r}'s "
                         "exponent range")
    ins = None if matmul_inputs is None else _inputs_format(matmul_inputs, cp)
    if ins == cp:
        ins = None  # rounding to compute itself changes nothing
    dat = None if data is None else _policy_part(data, "data")
    if dat == st:
        dat = None
    if cp == st and acc == st and ins is None and dat is None and name is None:
        return st
    parts = {"storage": st, "compute": cp, "accumulate": acc, "matmul_inputs": ins, "data": dat}
    canon = "policy(" + ", ".join(
        f"{k}={v.name}" for k, v in parts.items()
        if v is not None and (k in ("storage", "matmul_inputs", "data")
                              or v != (st if k == "compute" else cp))) + ")"
    label = canon if name is None else name
    if not isinstance(label, str) or not label or label in _registry() or _BINARY_RE.match(label):
        raise ValueError(f"policy name must be a new, non-empty str, got {label!r}")
    text = ((f"data rounded to {dat.name}; " if dat else "")
            + f"storage {st.name}; elementwise in {cp.name}; "
            + (f"matmul inputs rounded to {ins.name} ({ins.p} bits); " if ins else "")
            + f"products and sums accumulated sequentially in {acc.name}, "
            + ("each partial sum rounded" if acc == cp else f"rounded once to {cp.name}"))
    pol = Policy(name=label, p=st.p, emin=st.emin, emax=st.emax, dtype=st.dtype,
                 complex_dtype=st.complex_dtype if cp.complex_dtype is not None else None,
                 reduction=text, max_man=st.max_man, has_inf=st.has_inf, storage_format=st,
                 compute_format=cp, accumulate_format=acc, inputs_format=ins, data_format=dat)
    if name is not None:
        if name in _NAMED and _NAMED[name] != pol:
            raise ValueError(f"policy name {name!r} is taken by another policy")
        _NAMED[name] = pol
    return pol


def _parse_policy(text: str) -> Format:
    m = _POLICY_RE.match(text)
    assert m is not None
    kw: dict[str, str] = {}
    for item in filter(None, (t.strip() for t in m.group(1).split(","))):
        key, eq, val = item.partition("=")
        if not eq or key.strip() not in _POLICY_KEYS or key.strip() in kw:
            raise ValueError(f"format {text!r}: expected policy(storage=..., compute=..., "
                             "accumulate=..., matmul_inputs=...)")
        kw[key.strip()] = val.strip()
    if "storage" not in kw:
        raise ValueError(f"format {text!r}: a policy needs storage=")
    return policy(**kw)


def presets() -> list[str]:
    """Names of the preset precision policies."""
    return list(_PRESETS)


def get(fmt: Format | str) -> Format:
    """Look up a format by name (or pass a :class:`Format` through).

    Parameters
    ----------
    fmt : str or Format
        A hardware format (``"float8_e4m3fn"``, ``"float8_e5m2"``, ``"bfloat16"``,
        ``"float16"``, ``"float32"``, ``"float64"``, ``"longdouble"``), ``"binary{p}"``
        with ``4 <= p <= 237``, a preset policy (``"tf32"``, ``"bf16-mixed"``,
        ``"fp16-mixed"``), a canonical ``"policy(...)"`` name or a policy's own name.

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
    if fmt in _PRESETS:
        return _preset(fmt)
    if fmt in _NAMED:
        return _NAMED[fmt]
    if _POLICY_RE.match(fmt):
        return _parse_policy(fmt)
    raise ValueError(
        f"unknown format {fmt!r}; expected one of {sorted(reg)}, 'binary{{p}}', a policy "
        f"({', '.join(_PRESETS)}) or 'policy(storage=..., ...)'"
    )


@cache
def _preset(name: str) -> Format:
    return policy(**_PRESETS[name], name=name)


def available() -> list[str]:
    """Names of the hardware formats (emulated ``binary{p}`` are always available)."""
    return list(_registry())
