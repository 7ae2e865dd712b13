"""The proven reference: exact() from enclosures by default, mpmath as its cross-check, and
fd_errors' exact parts as balls whose radii bound them."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

import gradlab as gl
from gradlab.arithmetic import formats
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.objectives import families

BUILT_IN = {
    "seed": lambda: gl.objectives.seed_net(),
    "seed_stable": lambda: gl.objectives.seed_net(stable=True),
    "mlp_tanh": lambda: families.mlp((3, 4, 1), "tanh", "bce", seed=2),
    "mlp_relu_softmax": lambda: families.mlp((3, 4, 3), "relu", "softmax", seed=3),
    "logistic": lambda: families.logistic_regression(n_features=4, seed=1),
    "softmax": lambda: families.softmax_regression(n_features=3, n_classes=3, seed=1),
    "quadratic": lambda: families.quadratic(n=6, seed=1),
    "smooth_exp": lambda: families.smooth_sum("exp", n=5, seed=1),
    "smooth_sin": lambda: families.smooth_sum("sin", n=5, seed=1),
    "smooth_poly": lambda: families.smooth_sum("poly", n=5, seed=1),
}
FORMATS = ["float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "binary20"]


def _mp(x: object) -> mpmath.mpf:
    return formats.exact_mpf(x)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_both_backends_agree_within_the_enclosures(name: str, fmt: str) -> None:
    obj = BUILT_IN[name]()
    with np.errstate(all="ignore"):
        balls = gl.exact(obj, fmt, digits=30, orders=(3,), derivative_digits=12)
        mp = gl.exact(obj, fmt, digits=30, orders=(3,), derivative_digits=12, prove=False)
    assert balls.proven and balls.unproven == {} and balls.digits_verified == 30
    assert not mp.proven and math.isnan(mp.value_radius)
    with mpmath.workprec(400):
        # mpmath verified 30 digits: it lies within the ball's radius plus those digits
        slack = mpmath.mpf(10) ** -29
        assert abs(_mp(balls.value) - _mp(mp.value)) <= balls.value_radius + slack * abs(_mp(mp.value))
        scale = max(abs(_mp(g)) for g in mp.grad)
        for b, m, r in zip(balls.grad, mp.grad, balls.grad_radius, strict=True):
            assert abs(_mp(b) - _mp(m)) <= r + slack * max(abs(_mp(m)), scale)
        dscale = max(abs(_mp(d)) for d in mp.derivatives[3])
        for b, m, r, d in zip(balls.derivatives[3], mp.derivatives[3], balls.derivative_radius[3],
                              mp.derivative_digits[3], strict=True):
            assert abs(_mp(b) - _mp(m)) <= r + mpmath.mpf(10) ** -(d - 1) * max(abs(_mp(m)), dscale)


def test_decomposition_rows_are_proven_and_sum_within_their_bound() -> None:
    obj = gl.objectives.seed_net(stable=True)  # (the naive loss overflows bfloat16)
    df = gl.fd_errors(obj, ["float32", "bfloat16"], ["forward", "central4"],
                      steps=[1e-9, 1e-4, 0.3, 2.0], coords=[0, 7, 30])
    assert df.proven.all() and (df.ref_tol >= 0).all() and np.isfinite(df.err_total).all()
    parts = df.err_trunc + df.err_step + df.err_round
    # each float64 part is its ball's midpoint rounded once: within half an ulp of it, and the
    # midpoint within ref_tol of the true part
    ulp = np.spacing(np.maximum.reduce([df.err_total.abs(), df.err_trunc.abs(), df.err_step.abs(),
                                        df.err_round.abs()]))
    assert np.all(np.abs(parts - df.err_total) <= 4 * df.ref_tol + 2 * ulp)


def test_exact_parts_contain_an_independent_mpmath_computation() -> None:
    obj = families.mlp((3, 4, 1), "tanh", "bce", seed=2)
    fmt = formats.get("float16")
    steps, coords = [1e-6, 0.01], [1, 9]
    df = gl.fd_errors(obj, [fmt], ["central"], steps=steps, coords=coords)
    ref = gl.exact(obj, fmt, digits=60, orders=(), prove=False)  # mpmath alone
    theta = [fmt.round(t) for t in obj.theta0]
    ev = Evaluator.reference(obj, fmt, 400)  # mpmath, not balls
    with mpmath.workprec(450):
        for row in df.itertuples():
            pts = []
            for k in (-1, 1):
                p = list(theta)
                p[row.coord] = theta[row.coord] + k * mpmath.mpf(row.h)  # exact at 450 bits
                pts.append(p)
            vals, _ = ev(ev.convert(np.asarray(pts, dtype=object)))
            d_exact = (_mp(vals[1]) - _mp(vals[0])) / (2 * mpmath.mpf(row.h))
            trunc = d_exact - _mp(ref.grad[row.coord])
            assert abs(trunc - row.err_trunc) <= row.ref_tol + abs(trunc) * 2.0**-52


def test_a_stencil_point_on_a_kink_gives_an_unproven_row_not_a_guess() -> None:
    # theta - h = 0 exactly: relu's ball comparison there is a tie, so mpmath evaluates that
    # batch; its row is flagged as a kink and not proven, the others stay proven
    obj = gl.Objective(lambda t, xp: xp.sum(xp.relu(t) + t * t), np.array([1.0, 3.0]),
                       grad=lambda t, xp: xp.where(t > 0, 1.0, 0.0) + 2 * t, name="relu_sq")
    df = gl.fd_errors(obj, ["float64"], ["central"], steps=[1.0, 0.25], coords=[0, 1], workers=1)
    kinked = df[(df.coord == 0) & (df.h == 1.0)].iloc[0]
    assert "kink" in kinked.flag and not kinked.proven
    assert kinked.ref_tol > 0  # the assumed resolution stands in for a radius
    assert df[df.coord == 1].proven.all()
