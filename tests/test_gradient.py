"""gl.gradient: values against exact derivatives, calibrated error bars, kinks, domains,
the Richardson identity, its cost against numdifftools, and bad input."""

import math

import numpy as np
import pytest

import gradlab as gl
from gradlab.arithmetic import schemes
from gradlab.steps.estimator import STATUSES

A = np.array([0.7, 1.3, 2.0, 0.9])
THETA = np.array([0.3, -0.4, 0.8, 1.1])
SIGMA = 1e-9


def test_smooth_function_to_near_full_precision_with_a_covering_bar() -> None:
    theta = np.array([0.5, -1.0, 2.0, 0.1])
    res = gl.gradient(lambda x: np.sum(np.exp(x)) + np.sin(x[0] * x[1]), theta)
    true = np.exp(theta) + np.cos(theta[0] * theta[1]) * np.array([theta[1], theta[0], 0, 0])
    err = np.abs(res.grad - true)
    assert np.all(err <= res.error)
    assert np.max(err / np.abs(true)) < 1e-12
    assert np.all(res.error < 1e3 * np.maximum(err, 1e-16))  # sharp, not a blanket bound
    assert res.method == "central6 + Richardson" and res.format == "float64"
    assert set(res.status) <= set(STATUSES)


def test_known_noise_is_measured_and_the_bar_scales_with_it(hash_noise) -> None:
    res = gl.gradient(lambda x: float(np.sum(np.sin(A * x))) + hash_noise(x, SIGMA), THETA)
    true = A * np.cos(A * THETA)
    assert 0.3 * SIGMA < res.sigma < 3 * SIGMA
    err = np.abs(res.grad - true)
    assert np.all(err <= res.error)
    # the model's best error for central6 + Richardson: ~ sigma^(8/9); a noise 1e7 above
    # float64's cannot give 1e-13
    assert np.all(res.error > 1e-9) and np.all(res.error < 1e-6)


@pytest.mark.parametrize("fmt", ["float64", "float32", "float16", "bfloat16"])
def test_bars_cover_the_exact_gradient_of_objectives(fmt: str) -> None:
    objs = [gl.objectives.seed_net(stable=True), gl.objectives.smooth_sum("exp", 6, seed=1),
            gl.objectives.logistic_regression(n_features=5, n_samples=16, seed=2)]
    covered = total = 0
    for obj in objs:
        true = gl.exact(obj, format=fmt).grad.astype(np.float64)
        res = gl.gradient(obj, format=fmt)
        ok = res.status != "nonfinite"
        covered += int(np.sum(np.abs(res.grad - true)[ok] <= res.error[ok]))
        total += int(ok.sum())
    assert total > 0 and covered / total >= 0.9


def test_richardson_identity_on_the_reported_steps() -> None:
    obj = gl.objectives.smooth_sum("sin", 5, seed=3)
    res = gl.gradient(obj, method="central4")
    sch = schemes.get("central4")
    w = [float(c) for c in sch.weights]

    def quotient(i: int, h: float) -> float:
        vals = []
        for k in sch.offsets:
            x = obj.theta0.copy()
            x[i] += k * h  # exact: h is a power of two above theta's spacing
            vals.append(obj.fn(x, np))
        return math.fsum(wk * v for wk, v in zip(w, vals, strict=True)) / h

    for i, h in enumerate(res.h):
        d1, d2 = quotient(i, h), quotient(i, 2 * h)
        expected = d1 - (d2 - d1) / (2**sch.order - 1)
        assert abs(res.grad[i] - expected) <= 1e-12 * abs(expected) + 1e-15
        assert math.log2(h) == int(math.log2(h))


def test_cheaper_than_numdifftools_and_at_least_as_accurate() -> None:
    nd = pytest.importorskip("numdifftools")
    theta = np.linspace(-1, 1, 10)

    def f(x: np.ndarray) -> float:
        return float(np.sum(np.exp(0.5 * x) * np.cos(x)))

    true = np.exp(0.5 * theta) * (0.5 * np.cos(theta) - np.sin(theta))
    res = gl.gradient(f, theta)
    peer = nd.Gradient(f)(theta)
    assert res.nfev < 1 + 30 * theta.size
    assert np.max(np.abs(res.grad - true)) <= np.max(np.abs(peer - true))


def test_a_kink_at_theta_is_named_with_half_the_jump_as_bar() -> None:
    res = gl.gradient(lambda x: np.sum(np.abs(x)), [0.0, 1.0])
    assert res.status[0] == "kink" and res.status[1] != "kink"
    assert res.grad[0] == 0.0 and 1.0 <= res.error[0] < 1.01
    assert abs(res.grad[1] - 1.0) <= res.error[1] < 1e-6


def test_a_jump_at_theta_has_no_bar() -> None:
    res = gl.gradient(lambda x: np.sum(np.sign(x)), [0.0, 1.0])
    assert res.status[0] == "discontinuous" and res.error[0] == math.inf
    assert res.grad[1] == 0.0 and res.status[1] != "discontinuous"


@pytest.mark.parametrize("fn,theta,true", [
    (lambda x: np.sum(np.abs(x - 1e-3)), [0.0], [-1.0]),  # a kink inside the first stencil
    (lambda x: np.sum(np.clip(x, 0, 6)), [5.99], [1.0]),  # relu6 just below its corner
    (lambda x: np.sum(np.round(x)), [0.49], [0.0]),  # a jump nearby
    (lambda x: np.sum(np.sqrt(x)), [1e-6], [500.0]),  # the domain ends 1e-6 away
])
def test_steps_shrink_until_the_function_is_smooth_in_the_stencil(fn, theta, true) -> None:
    res = gl.gradient(fn, theta)
    assert res.status[0] in ("ok", "rounding")
    assert np.all(np.abs(res.grad - true) <= res.error)
    assert np.all(res.error <= 1e-6 * np.maximum(np.abs(true), 1))


def test_no_finite_value_near_theta_is_flagged_not_guessed() -> None:
    def f(x: np.ndarray) -> float:
        return float(x[1] ** 2) + (0.0 if x[0] == 0.5 else math.nan)

    res = gl.gradient(f, [0.5, 1.0])
    assert res.status[0] == "nonfinite" and math.isnan(res.grad[0]) and res.error[0] == math.inf
    assert res.status[1] != "nonfinite" and abs(res.grad[1] - 2.0) <= res.error[1]
    table = res.table()
    assert list(table.columns) == ["component", "grad", "error", "h", "status"]


def test_linear_and_constant_functions() -> None:
    lin = gl.gradient(lambda x: 3 * x[0] - 2 * x[1], [1.0, 2.0])
    assert lin.grad.tolist() == [3.0, -2.0] and np.all(lin.error < 1e-13)
    const = gl.gradient(lambda x: 0 * x[0] + 3.0, [1.0, 2.0])
    assert const.grad.tolist() == [0.0, 0.0]


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(method="ridders"), ValueError, "method"),
    (dict(format="binary20"), ValueError, "emulated"),
    (dict(format="float12"), ValueError, "format"),
    (dict(theta=[math.nan, 1.0]), ValueError, "theta"),
    (dict(theta="ab"), TypeError, "theta"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(theta=[1e300, 1.0], f=lambda x: x[0] * x[0] * 1e300), ValueError, "not finite at theta"),
])
def test_bad_input_names_the_parameter(kwargs, exc, words) -> None:
    args = dict(f=lambda x: np.sum(x * x), theta=[1.0, 2.0])
    args.update(kwargs)
    with pytest.raises(exc, match=words):
        gl.gradient(**args)


def test_not_a_function() -> None:
    with pytest.raises(TypeError, match="f must be"):
        gl.gradient(3.0, [1.0])


def test_a_callable_returning_a_narrower_dtype_gets_that_dtypes_bar() -> None:
    theta = np.array([1.0, 2.0])
    res = gl.gradient(lambda x: np.float32(np.sum(np.sin(x))), theta)  # float32 values of a float64 J
    assert res.upcasts > 0
    assert np.all(np.abs(res.grad - np.cos(theta)) <= res.error)
    assert np.all(res.error > 1e-9)  # float32's rounding, not float64's


def test_trees_and_masks_as_the_checker_takes_them() -> None:
    w, b, x = np.array([[0.5, -0.3], [0.2, 0.8]]), np.array([0.1, -0.2]), np.array([1.0, 2.0])
    res = gl.gradient(lambda p: np.sum(np.tanh(p["W"] @ x + p["b"])), {"W": w, "b": b})
    s = 1 - np.tanh(w @ x + b) ** 2
    grad, error = res.tree()
    assert np.all(np.abs(grad["W"] - np.outer(s, x)) <= error["W"])
    assert np.all(np.abs(grad["b"] - s) <= error["b"])
    assert res.table().name.tolist() == ["W[0, 0]", "W[0, 1]", "W[1, 0]", "W[1, 1]", "b[0]", "b[1]"]
    masked = gl.gradient(lambda z: np.log(np.sum(np.exp(z))), np.array([0.5, -np.inf, 1.0]))
    g, _ = masked.tree()
    assert np.isnan(g[1]) and masked.table().component.tolist() == [0, 2]
    soft = np.exp([0.5, 1.0]) / np.sum(np.exp([0.5, 1.0]))
    assert np.all(np.abs(g[[0, 2]] - soft) <= masked.error)
    two = gl.gradient(lambda a, c: np.sum(a * a) * c[0], (np.ones(2), np.array([3.0])))
    assert np.allclose(two.tree()[0][0], [6.0, 6.0]) and np.allclose(two.tree()[0][1], [2.0])
