"""Every format's and policy's sums and matrix products, bit for bit against an exact emulation.

The emulation is independent of numpy's arithmetic: each value is an exact mpmath number and
every rounding goes through the audited :func:`gradlab.arithmetic.formats.round_exact`, in the
order and precision the format's ``reduction`` states.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

from gradlab.arithmetic import formats
from gradlab.arithmetic.namespaces import NumpyNamespace
from gradlab.arithmetic.objective import fp_events

STRICT = [n for n in formats.available()]
POLICIES = ["tf32", "bf16-mixed", "fp16-mixed",
            "policy(storage=bfloat16, accumulate=float32, matmul_inputs=float8_e4m3fn)",
            "policy(storage=float16, compute=float32)",
            "policy(storage=float32, compute=bfloat16, accumulate=float32)"]


def _exact(v: object) -> mpmath.mpf:
    return formats.exact_mpf(v)


@mpmath.workprec(4000)  # wide enough that the emulation's own additions are exact
def _emulate_sum(values: list[object], fmt: formats.Format) -> mpmath.mpf:
    acc, out = fmt.accumulate, fmt.compute
    s = _exact(values[0])
    for v in values[1:]:
        s = formats.round_exact(s + _exact(v), acc)
    return formats.round_exact(s, out)


@mpmath.workprec(4000)
def _emulate_matmul(a: np.ndarray, b: np.ndarray, fmt: formats.Format) -> list[list[mpmath.mpf]]:
    acc, out, ins = fmt.accumulate, fmt.compute, fmt.matmul_inputs
    rnd = (lambda v: _exact(v)) if ins is None else (lambda v: formats.round_exact(v, ins))
    rows = []
    for i in range(a.shape[0]):
        row = []
        for j in range(b.shape[1]):
            terms = [formats.round_exact(rnd(a[i, k]) * rnd(b[k, j]), acc) for k in range(a.shape[1])]
            s = terms[0]
            for t in terms[1:]:
                s = formats.round_exact(s + t, acc)
            row.append(formats.round_exact(s, out))
        rows.append(row)
    return rows


def _inputs(fmt: formats.Format, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values of the format's compute type with magnitudes spread so that order matters."""
    top = 6.0 if fmt.compute.p < 5 else 30.0
    v = rng.normal(size=shape) * np.exp2(rng.integers(-4, 5, size=shape)) * top / 16
    return formats.round_array(v, fmt.compute).astype(fmt.compute.dtype)


def _same(got: object, want: mpmath.mpf) -> bool:
    g = _exact(got)
    return (mpmath.isnan(g) and mpmath.isnan(want)) or g == want


@pytest.mark.parametrize("name", STRICT + POLICIES)
def test_sum_is_what_the_format_says(name: str) -> None:
    fmt = formats.get(name)
    ns = NumpyNamespace(fmt)
    rng = np.random.default_rng(7)
    x = _inputs(fmt, rng, (3, 40))
    got_rows = ns.sum(x, axis=1)
    for i in range(3):
        assert _same(got_rows[i], _emulate_sum(list(x[i]), fmt)), (name, i)
    # all axes: row-major order
    assert _same(ns.sum(x), _emulate_sum(list(x.reshape(-1)), fmt))
    # along the first axis (numpy would stride; the order is still k = 0, 1, ...)
    col = ns.sum(x, axis=0)
    assert all(_same(col[j], _emulate_sum(list(x[:, j]), fmt)) for j in range(40))


@pytest.mark.parametrize("name", STRICT + POLICIES)
def test_matmul_is_what_the_format_says(name: str) -> None:
    fmt = formats.get(name)
    ns = NumpyNamespace(fmt)
    rng = np.random.default_rng(11)
    a, b = _inputs(fmt, rng, (4, 24)), _inputs(fmt, rng, (24, 3))
    got = ns.matmul(a, b)
    want = _emulate_matmul(a, b, fmt)
    for i in range(4):
        for j in range(3):
            assert _same(got[i, j], want[i][j]), (name, i, j)


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float32"])
def test_batched_matmul_equals_one_point_at_a_time(name: str) -> None:
    fmt = formats.get(name)
    rng = np.random.default_rng(5)
    a, b = _inputs(fmt, rng, (6, 3, 17)), _inputs(fmt, rng, (1, 17, 2))  # data: batch axis 1
    batched = NumpyNamespace(fmt, batch_ndim=1).matmul(a, b)
    for i in range(6):
        assert np.array_equal(batched[i], NumpyNamespace(fmt).matmul(a[i], b[0]), equal_nan=True)


def test_strict_and_mixed_accumulation_differ_where_they_must() -> None:
    # 1 + 2048 * 2**-12 in float16: strict rounds every partial sum back to 1 (2**-12 is
    # below half an ulp of 1), float32 accumulation keeps them and rounds once to 1.5
    x = np.array([1.0] + [2.0**-12] * 2048, dtype=np.float16)
    assert float(NumpyNamespace("float16").sum(x)) == 1.0
    assert float(NumpyNamespace("fp16-mixed").sum(x)) == 1.5
    assert float(np.sum(x)) == 1.5  # what numpy itself does (float32 pairwise): not float16


def test_tf32_rounds_matmul_inputs_to_ten_fraction_bits() -> None:
    a = np.array([[1 + 2.0**-11]], dtype=np.float32)  # a tie at 11 bits: to even, 1
    b = np.array([[1 + 3 * 2.0**-12]], dtype=np.float32)  # rounds up to 1 + 2**-10
    assert float(NumpyNamespace("tf32").matmul(a, b)[0, 0]) == 1 + 2.0**-10
    assert float(NumpyNamespace("float32").matmul(a, b)[0, 0]) == float(a[0, 0] * b[0, 0])
    # elementwise products stay float32's
    prod = NumpyNamespace("tf32").call(lambda t, xp: t * xp.asarray(b[0]), a[0], "fn")
    assert float(prod[0]) == float(a[0, 0] * b[0, 0])


@pytest.mark.parametrize("name", ["float8_e4m3fn", "float8_e5m2", "bfloat16"])
def test_overflow_in_ml_dtypes_formats_is_counted(name: str) -> None:
    fmt = formats.get(name)
    big = np.array([float(fmt.max_exact)] * 2, dtype=fmt.dtype)
    ns = NumpyNamespace(fmt)
    with fp_events() as ev:
        r = ns.call(lambda t, xp: xp.sum(t * t), big, "fn")
    assert not np.isfinite(r.astype(np.float64))
    assert ev["overflow"] >= 1
    with fp_events() as ev:
        ns.call(lambda t, xp: xp.exp(t), big, "fn")
    assert ev["overflow"] == 1  # once per call, as numpy counts its own flags


def test_float8_e4m3fn_largest_value_is_448() -> None:
    fmt = formats.get("float8_e4m3fn")
    assert float(fmt.max_exact) == 448.0 and not fmt.has_inf
    assert mpmath.isnan(formats.round_exact(465, fmt)) and formats.round_exact(464, fmt) == 448


@pytest.mark.parametrize("kw, match", [
    ({"storage": "binary20"}, "storage"),
    ({"storage": "longdouble"}, "storage"),
    ({"storage": "float32", "accumulate": "float16"}, "accumulate"),
    ({"storage": "bfloat16", "accumulate": "float16"}, "accumulate"),
    ({"storage": "bfloat16", "matmul_inputs": "float32"}, "matmul_inputs"),
    ({"storage": "float32", "compute": "tf32"}, "compute"),
    ({"storage": "float32", "accumulate": 3}, "format"),
])
def test_bad_policies_name_the_parameter(kw: dict[str, object], match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        formats.policy(**kw)  # type: ignore[arg-type]


def test_policy_names_round_trip_and_trivial_policies_are_the_format() -> None:
    p = formats.policy("bfloat16", accumulate="float32", matmul_inputs="float8_e4m3fn")
    assert formats.get(p.name) == p
    assert formats.policy("float32") is formats.get("float32")
    assert formats.get("bf16-mixed") == formats.policy("bfloat16", accumulate="float32", name="bf16-mixed")
    with pytest.raises(ValueError, match="policy"):
        formats.get("policy(storage=float32, fused=yes)")
