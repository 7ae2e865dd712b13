"""Ball-arithmetic enclosures: they contain independent high-precision values, decide branches
by raising the precision, report a kink exactly on a branch, and prove digits or say why not."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from flint import arb

import gradlab as gl
from gradlab.analysis.enclosure import KinkError, enclose
from gradlab.arithmetic import formats
from gradlab.arithmetic.balls import BallNamespace, arb_from_mpf, mpf_mid
from gradlab.arithmetic.namespaces import MPNamespace
from gradlab.arithmetic.objective import call_grad, evaluate_one
from gradlab.objectives import families


def _builtin() -> list[gl.Objective]:
    return [gl.objectives.seed_net(), gl.objectives.seed_net(stable=True),
            families.mlp((4, 8, 1), "tanh", "bce", seed=1),
            families.mlp((5, 10, 3), "tanh", "softmax", seed=2),
            families.mlp((6, 12, 1), "sigmoid", "mse", seed=3),
            families.logistic_regression(n_features=4, n_samples=8, seed=1),
            families.softmax_regression(),
            families.quadratic(),
            families.smooth_sum("sin", n=6, seed=2)]


def _inside(ball: object, value: mpmath.mpf) -> bool:
    """|value - mid| <= radius, decided exactly (the high-precision value's own error is far
    below the ball's radius)."""
    b = ball
    with mpmath.workprec(4000):
        gap = abs(value - mpf_mid(b))
        rad = mpf_mid(b.rad()) if not b.rad().is_zero() else mpmath.mpf(0)
        return bool(gap <= rad)


@pytest.mark.parametrize("fmt", ["float64", "float32", "bfloat16"])
def test_enclosures_contain_independent_high_precision_values(fmt: str) -> None:
    f = formats.get(fmt)
    for obj in _builtin():
        enc = enclose(obj, f, digits=20)
        # independently: mpmath op by op at 600 bits on the same rounded theta and data
        ns = MPNamespace(600, data_format=f)
        theta = np.asarray([f.round(t) for t in obj.theta0], dtype=object)
        value = formats.exact_mpf(evaluate_one(obj, theta, ns))
        assert _inside(enc.value, value), (obj.name, fmt)
        if obj.grad is not None:
            assert enc.grad is not None
            grad = call_grad(obj, ns.from_values(theta), ns)
            for i, (b, g) in enumerate(zip(enc.grad, grad, strict=True)):
                assert _inside(b, formats.exact_mpf(g)), (obj.name, fmt, i)
        assert enc.value_radius <= 10.0**-20 * abs(enc.value_mid()) or "value" in enc.unproven


@pytest.mark.parametrize("fn", [
    lambda t, xp: xp.sum(xp.relu(t)),
    lambda t, xp: xp.sum(xp.abs(t)),
    lambda t, xp: xp.sum(xp.maximum(t, t * 0)),
])
def test_a_kink_exactly_on_a_branch_is_reported_not_guessed(fn: object) -> None:
    obj = gl.Objective(fn, np.array([0.0, 1.5]), grad=lambda t, xp: t * 0 + 1)  # type: ignore[arg-type]
    with pytest.raises(KinkError, match="on the branch"):
        enclose(obj, "float64")


def test_an_undecided_branch_is_decided_by_raising_the_precision() -> None:
    # (t + 1e-40) - t is 1e-40 exactly, but at the first working precision (about 100 bits)
    # the ball of t + 1e-40 is wider than 1e-40 and straddles t: relu cannot decide
    obj = gl.Objective(lambda t, xp: xp.sum(xp.relu((t + 1e-40) - t)) + xp.sum(t),
                       np.array([1.0]), grad=lambda t, xp: t * 0 + 1)
    enc = enclose(obj, "float64", digits=10)
    assert enc.prec > 100 and enc.proven
    assert abs(enc.value_mid() - (1 + 1e-40)) < 1e-15


def test_unprovable_digits_are_named_with_the_reason() -> None:
    # grad = exp(t) - exp(t): exactly 0, but the ball of a difference of two inexact balls
    # always contains 0 and is never exact: no relative digit can be proven, and it says so
    obj = gl.Objective(lambda t, xp: xp.sum(t * t), np.array([0.5, 2.0]),
                       grad=lambda t, xp: xp.exp(t) - xp.exp(t))
    enc = enclose(obj, "float64", digits=15, max_prec=512)
    assert not enc.proven
    assert set(enc.unproven) == {"grad[0]", "grad[1]"}
    assert all("contains 0" in why for why in enc.unproven.values())
    assert enc.grad_radius is not None and np.all(enc.grad_radius < 1e-100)


def test_exact_zero_gradient_components_are_proven_exactly() -> None:
    enc = enclose(gl.objectives.seed_net(stable=True), "float32", digits=25)
    assert enc.proven and enc.grad_radius is not None
    dead = enc.grad_radius == 0
    assert dead.any() and all(b.is_zero() for b in enc.grad[dead])  # dead ReLU units


def test_exact_with_prove_attaches_rigorous_radii() -> None:
    obj = families.mlp((4, 8, 1), "tanh", "bce", seed=1)
    r = gl.exact(obj, "float32", digits=30, orders=(), prove=True)
    assert r.proven and r.value_radius < 1e-30 * abs(float(r.value))
    assert r.grad_radius is not None and np.all(r.grad_radius <= 1e-30 * np.abs(
        np.array([float(g) for g in r.grad])) + 1e-300)
    plain = gl.exact(obj, "float32", digits=30, orders=(), prove=False)  # mpmath alone
    assert not plain.proven and np.isnan(plain.value_radius)


def test_ball_namespace_refuses_foreign_numbers() -> None:
    ns = BallNamespace(64)
    with pytest.raises(gl.arithmetic.namespaces.NamespaceEscapeError):
        ns.call(lambda t, xp: np.exp(t), ns.from_values(np.array([1.0])), "fn")
    assert arb_from_mpf(mpmath.mpf(2) ** -3000 + 1).is_exact()  # exact whatever the precision


@pytest.mark.parametrize("fmt", ["float64", "bfloat16"])
def test_derivative_enclosures_contain_the_verified_derivatives(fmt: str) -> None:
    # the verified derivatives come from mpmath's high-precision differences: another method
    from gradlab.analysis.enclosure import enclose_derivatives

    for obj in _builtin()[1:6]:
        ref = gl.exact(obj, fmt, digits=20, orders=(2, 3), coords=[0, 1, 2], derivative_digits=30)
        enc = enclose_derivatives(obj, fmt, (2, 3), [0, 1, 2], digits=20)
        assert enc.proven, (obj.name, enc.unproven)
        for k in (2, 3):
            for v, b, r in zip(ref.derivatives[k], enc.derivatives[k], enc.radius[k], strict=True):
                gap = abs(float(formats.exact_mpf(v) - mpf_mid(b)))
                assert gap <= r + 1e-25 * abs(float(v)) + 1e-300, (obj.name, k)


def test_exact_with_prove_bounds_the_derivatives_too() -> None:
    r = gl.exact(gl.objectives.seed_net(stable=True), "float32", digits=25, orders=(3,),
                 coords=[0, 4, 40], prove=True)
    assert r.proven and set(r.derivative_radius) == {3}
    assert np.all(r.derivative_radius[3] <= 1e-18 * np.abs([float(v) for v in r.third]) + 1e-300)


def test_the_arb_reference_backend_agrees_with_mpmath_and_falls_back_on_a_kink() -> None:
    from gradlab.arithmetic.evaluator import Evaluator

    obj = gl.objectives.seed_net()
    f = formats.get("float32")
    theta = np.asarray([f.round(t) for t in obj.theta0], dtype=object)
    pts = np.stack([theta, theta.copy()])
    pts[1, 3] = f.round(float(theta[3]) + 0.01)
    balls = Evaluator.reference(obj, f, 200, backend="arb")
    mp = Evaluator.reference(obj, f, 200)
    a, _ = balls(balls.convert(pts))
    b, _ = mp(mp.convert(pts))
    with mpmath.workprec(400):  # (at mpmath's default 53 bits the test would see nothing)
        for x, y in zip(a, b, strict=True):
            assert isinstance(x, arb) and x.rad() < 2.0**-190 * abs(x.mid())
            assert abs(formats.exact_mpf(x) - formats.exact_mpf(y)) <= 2.0**-190 * abs(formats.exact_mpf(y))
    # relu exactly at 0: the ball comparison cannot decide, so the batch runs in mpmath
    kinked = gl.Objective(lambda t, xp: xp.sum(xp.relu(t)), np.array([0.0, 1.0]))
    ev = Evaluator.reference(kinked, "float64", 100, backend="arb", record_branches=True)
    vals, sigs = ev(ev.convert(np.array([[0.0, 1.0]])))
    assert float(vals[0]) == 1.0 and sigs is not None
    with pytest.raises(ValueError, match="backend"):
        Evaluator.reference(kinked, "float64", 100, backend="gmp")
