"""The stencil constructor: fl(theta + fl(k fl(h))), one rounding per operation, in every
format, against an independent exact computation (mpmath, then one audited rounding)."""

from __future__ import annotations

import ml_dtypes
import mpmath
import numpy as np
import pytest

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic.stencil import realised_offsets, stencil

FORMATS = ["bfloat16", "float16", "float32", "float64", "longdouble", "binary20"]
OFFSETS = (-3, -2, -1, 0, 1, 2, 3)


def _expected(theta: mpmath.mpf, h: float, k: int, fmt: fmts.Format) -> mpmath.mpf:
    h_f = fmts.round_exact(h, fmt)
    kh = fmts.round_exact(mpmath.fmul(k, h_f, exact=True), fmt)
    return fmts.round_exact(mpmath.fadd(theta, kh, exact=True), fmt)


@pytest.mark.parametrize("name", FORMATS)
def test_points_are_one_rounding_per_operation(name: str) -> None:
    fmt = fmts.get(name)
    rng = np.random.default_rng(7)
    theta64 = np.concatenate([rng.normal(size=12) * 10.0 ** rng.integers(-3, 4, size=12),
                              [0.0, 1.0, -1.0, 3.0]])
    theta = fmts.round_array(theta64, fmt)
    hs = 10.0 ** rng.uniform(-9, 0, size=theta.size) * rng.uniform(0.5, 2, size=theta.size)
    st = stencil(theta, hs, OFFSETS, fmt)
    assert st.points.shape == (theta.size, len(OFFSETS))
    if fmt.dtype is not None:
        assert st.points.dtype == fmt.dtype
    for r in range(theta.size):
        t = fmts.exact_mpf(theta[r])
        for j, k in enumerate(OFFSETS):
            want = _expected(t, float(hs[r]), k, fmt)
            got = fmts.exact_mpf(st.points[r, j])
            assert got == want, (name, r, k, got, want)
            diff = mpmath.fsub(got, t, exact=True)
            assert st.offsets[r, j] == float(diff)  # correctly rounded (exact where it fits)


def test_broadcast_grid_matches_rows() -> None:
    theta = fmts.round_array([0.3, -2.0, 7.5], "float16")
    hs = np.array([1e-3, 1e-2])
    grid = stencil(theta[:, None], hs[None, :], (-1, 1), "float16")
    assert grid.points.shape == (3, 2, 2)
    for s, h in enumerate(hs):
        row = stencil(theta, np.full(3, h), (-1, 1), "float16")
        assert np.array_equal(grid.points[:, s, :], row.points)


def test_bfloat16_step_is_not_double_rounded() -> None:
    # fl(h) = 2**-8 * 1.0078125: 1 + fl(h) lies above the midpoint 1 + 2**-8 and rounds up;
    # rounding h through float32 first would land on the midpoint and tie down to 1.0
    h = 2.0**-8 * (1 + 2.0**-8 + 2.0**-30)
    one = np.ones(1, dtype=ml_dtypes.bfloat16)
    st = stencil(one, [h], (1,), "bfloat16")
    assert float(st.points[0, 0]) == 1.0078125
    via_float32 = np.float32(h).astype(ml_dtypes.bfloat16)
    assert float(one[0] + via_float32) == 1.0


def test_realised_offset_far_from_theta_is_correctly_rounded() -> None:
    theta = np.array([1e-30], dtype=np.float64)
    st = stencil(theta, [0.1], (1,), "float64")
    want = float(mpmath.fsub(fmts.exact_mpf(st.points[0, 0]), fmts.exact_mpf(theta[0]), exact=True))
    assert st.offsets[0, 0] == want
    assert realised_offsets(st.points, theta[:, None], "float64")[0, 0] == want


def test_overflow_gives_inf_points() -> None:
    st = stencil(fmts.round_array([60000.0], "float16"), [8000.0], (1, -1), "float16")
    assert np.isinf(st.points[0, 0]) and np.isfinite(st.points[0, 1])


@pytest.mark.parametrize("bad", [(), (1.5,), (True,), (1 << 30,)])
def test_bad_offsets_are_refused(bad: tuple) -> None:
    with pytest.raises(ValueError, match="offsets"):
        stencil(np.ones(1), [1e-3], bad, "float64")
