"""Formats: the audited rounding against numpy/ml_dtypes casts and the binary{p} emulation."""

import math

import ml_dtypes
import mpmath
import numpy as np
import pytest

from gradlab.arithmetic import formats
from gradlab.arithmetic.namespaces import MPNamespace


def _special_values(fmt: formats.Format, rng: np.random.Generator, n: int) -> np.ndarray:
    """Random values spanning normal, subnormal and overflow ranges, plus exact ties."""
    assert fmt.emin is not None and fmt.emax is not None
    exps = rng.uniform(fmt.emin - fmt.p - 2, fmt.emax + 2, n)
    vals = rng.choice([-1.0, 1.0], n) * np.exp2(exps)
    grid = np.exp2(np.floor(np.log2(np.abs(vals))) - fmt.p + 1)
    grid = np.maximum(grid, 2.0 ** (fmt.emin - fmt.p + 1))
    ties = np.round(vals / grid) * grid + grid / 2  # exactly halfway between two values
    return np.concatenate([vals, ties, [float(fmt.max_exact), -float(fmt.max_exact), 0.0]])


@pytest.mark.parametrize("name", ["float16", "float32"])
def test_round_matches_numpy_casts(name: str) -> None:
    fmt = formats.get(name)
    x = _special_values(fmt, np.random.default_rng(1), 60_000)  # 120k values
    with np.errstate(over="ignore"):
        want = x.astype(fmt.dtype)  # numpy's float64 casts round once, correctly
    got = formats.round_array(x, fmt)
    np.testing.assert_array_equal(got, want)
    sample = np.random.default_rng(2).choice(x.size, 3000, replace=False)
    for k in sample:  # the scalar audited function agrees too
        r = formats.round_exact(x[k], fmt)
        assert float(r) == float(want[k]) or (math.isinf(float(r)) and np.isinf(want[k]))


def test_round_matches_ml_dtypes_bfloat16_from_float32() -> None:
    fmt = formats.get("bfloat16")
    with np.errstate(over="ignore"):
        x = _special_values(fmt, np.random.default_rng(3), 60_000).astype(np.float32)
    x = x[np.isfinite(x)]
    want = x.astype(ml_dtypes.bfloat16)  # a single rounding from float32
    got = formats.round_array(x.astype(np.float64), fmt)
    np.testing.assert_array_equal(got.astype(np.float64), want.astype(np.float64))
    assert x.size > 100_000


def test_bfloat16_from_float64_is_rounded_once() -> None:
    # 1 + 2**-8 + 2**-30 lies above the tie 1 + 2**-8: correct rounding goes up. ml_dtypes'
    # float64 cast goes through float32, loses 2**-30, and rounds the tie to even (1.0).
    x = 1 + 2.0**-8 + 2.0**-30
    assert float(formats.round_exact(x, "bfloat16")) == 1 + 2.0**-7
    assert float(formats.round_array([x], "bfloat16")[0]) == 1 + 2.0**-7


def test_subnormals_and_overflow() -> None:
    f16 = formats.get("float16")
    tiny = 2.0**-24  # smallest float16 subnormal
    assert float(f16.round(tiny / 2)) == 0.0  # tie to even: 0
    assert float(f16.round(tiny * 1.5)) == 2 * tiny  # tie to even: 2 tiny
    assert math.isinf(float(f16.round(65520)))  # halfway to 2**16 overflows
    assert float(f16.round(65519)) == 65504.0


def test_format_constants() -> None:
    table = {"bfloat16": (8, 3.39e38), "float16": (11, 65504), "float32": (24, 3.40e38),
             "float64": (53, 1.79e308)}
    for name, (p, mx) in table.items():
        f = formats.get(name)
        assert f.p == p and f.u == 2.0**-p and f.eps == 2.0 ** (1 - p)
        assert math.isclose(float(f.max), mx, rel_tol=1e-2)
    assert formats.get("binary24").u == formats.get("float32").u


def test_longdouble_exact_roundtrip() -> None:
    ld = formats.get("longdouble")
    x = np.longdouble(1) + np.ldexp(np.longdouble(1), -(ld.p - 1))
    m = formats.exact_mpf(x)
    assert m - 1 == mpmath.mpf(2) ** -(ld.p - 1)
    assert ld.from_mpf(m) == x


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary11_emulation_matches_float16(op: str) -> None:
    rng = np.random.default_rng(4)
    a = rng.uniform(-100, 100, 2000).astype(np.float16)
    b = rng.uniform(0.5, 100, 2000).astype(np.float16)
    want = getattr(np, {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide"}[op])(a, b)
    ns = MPNamespace(11)
    ea, eb = ns.from_values(a.astype(np.float64)), ns.from_values(b.astype(np.float64))
    got = {"add": ea + eb, "sub": ea - eb, "mul": ea * eb, "div": ea / eb}[op]
    finite = np.abs(want.astype(np.float64)) < 65504
    np.testing.assert_array_equal(np.array([float(v) for v in got])[finite],
                                  want.astype(np.float64)[finite])


@pytest.mark.parametrize("bad", ["float8", "binary3", "binary238", "Float32"])
def test_unknown_format_names_the_parameter(bad: str) -> None:
    with pytest.raises(ValueError, match="format"):
        formats.get(bad)


@pytest.mark.parametrize("fmt", ["float8_e4m3fn", "float8_e5m2", "bfloat16", "float16", "float32",
                                 "float64", "longdouble", "binary11", "bf16-mixed"])
def test_round_to_mpf_is_round_exact_elementwise(fmt: str) -> None:
    rng = np.random.default_rng(3)
    vals = np.concatenate([rng.standard_normal(50) * 10.0 ** rng.integers(-45, 40, 50),
                           [0.0, -0.0, 1e-310, 5e-324, 1e300, -1e300, 65504.0, 65520.0, 448.0, 464.0]])
    f = formats.get(fmt)
    got = formats.round_to_mpf(vals, f)
    want = [f.round(v) for v in vals]
    for g, w, v in zip(got, want, vals, strict=True):
        assert (mpmath.isnan(g) and mpmath.isnan(w)) or g == w, (v, g, w)
