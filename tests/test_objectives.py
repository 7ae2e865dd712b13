"""Tests of the built-in objective families (gradlab.objectives.families)."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import mpmath
import numpy as np
import pytest

from gradlab.arithmetic import formats
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.namespaces import MPNamespace, NumpyNamespace
from gradlab.arithmetic.objective import Objective, call_grad
from gradlab.objectives import (
    logistic_regression,
    mlp,
    quadratic,
    seed_net,
    smooth_sum,
    softmax_regression,
)

HARDWARE = ("float64", "float32", "float16", "bfloat16", "longdouble")
REF_PREC = 200  # bits of the analytic gradient's evaluation
DIGITS = 30  # agreement required between the analytic gradient and mpmath.diff

# id -> factory; each family with a few parameter choices (hidden activations,
# losses, depths, no hidden layer, sigma != 1, seeds, scales).
CASES: dict[str, Callable[[], Objective]] = {
    "mlp_default": mlp,
    "mlp_relu_softmax": partial(mlp, (3, 5, 4), "relu", "softmax", batch=6),
    "mlp_sigmoid_mse": partial(mlp, (3, 6, 2), "sigmoid", "mse", batch=5, sigma=2.0, seed=3),
    "mlp_relu_bce_deep": partial(mlp, (2, 4, 3, 1), "relu", "bce", batch=4, sigma=0.5, seed=1),
    "mlp_tanh_softmax_deep": partial(mlp, (3, 4, 4, 3), "tanh", "softmax", batch=5, seed=2),
    "mlp_linear_mse": partial(mlp, (3, 2), "tanh", "mse"),
    "logistic_default": logistic_regression,
    "logistic_small": partial(logistic_regression, 3, 5, sigma=2.0, seed=1),
    "softmax_default": softmax_regression,
    "softmax_small": partial(softmax_regression, 2, 4, 7, seed=2),
    "quadratic_default": quadratic,
    "quadratic_ill": partial(quadratic, 5, 1e4, seed=1, scale=3.0),
    "smooth_exp": partial(smooth_sum, "exp", scale=2.0),
    "smooth_sin": partial(smooth_sum, "sin", n=6, seed=4, scale=2.0),
    "smooth_poly": partial(smooth_sum, "poly", n=7, seed=5, scale=2.0),
}

# (case, format) pairs where J overflows at theta0, with the reason. The test
# checks that they really are non-finite, so the table cannot go stale.
OVERFLOWS = {
    ("quadratic_ill", "float16"): "0.5 theta^T A theta ~ 1.5e5 > float16 max 65504",
}

# |J_F - J| <= SANITY * eps_F * max(1, |J|): a check that every format evaluates the
# same function (largest ratio seen is about 4, for the cubic in float32), not a bound.
SANITY = 32


@pytest.fixture(autouse=True)
def _reset_mpmath() -> Iterator[None]:
    prec = mpmath.mp.prec
    yield
    mpmath.mp.prec = prec


@pytest.fixture(scope="module")
def objectives() -> dict[str, Objective]:
    return {k: f() for k, f in CASES.items()}


def _scalar(v: Any) -> Any:
    return np.asarray(v, dtype=object)[()]


def _grad(obj: Objective, theta: np.ndarray, ns: Any) -> np.ndarray:
    assert obj.grad is not None
    return np.asarray(obj.grad(theta, ns))


def _exact_value(obj: Objective, prec: int = REF_PREC) -> Any:
    ns = MPNamespace(prec, data_format="float64")
    return _scalar(obj.fn(ns.from_values(obj.theta0), ns))


def _exact_grad(obj: Objective, prec: int = REF_PREC) -> np.ndarray:
    ns = MPNamespace(prec, data_format="float64")
    return _grad(obj, ns.from_values(obj.theta0), ns)


def _mp_diff(obj: Objective, i: int, order: int, ctx: Any, data_format: str = "float64") -> Any:
    """d^order J / d theta_i^order by mpmath.diff, J evaluated above diff's working precision."""
    work = (ctx.prec + 20) * (order + 1) + 64  # mpmath's hsteps works at (prec + 20)(n + 1)
    ns = MPNamespace(work, data_format=data_format)
    base = ns.from_values(obj.theta0)

    def f(t: Any) -> Any:
        theta = base.copy()
        theta[i] = ns.convert(t)
        return ctx.make_mpf(_scalar(obj.fn(theta, ns))._mpf_)

    return ctx.diff(f, ctx.mpf(obj.theta0[i]), order)


def _coords(n: int, k: int = 5) -> list[int]:
    return sorted({0, n - 1, *np.linspace(0, n - 1, k).astype(int).tolist()})


# -- structure ------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_batch_safe_without_warnings(case: str) -> None:
    obj = CASES[case]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert obj.batch_safe is True


def test_meta_names_and_determinism(objectives: dict[str, Objective]) -> None:
    names = [o.name for o in objectives.values()]
    assert len(set(names)) == len(names)
    for case, obj in objectives.items():
        assert obj.meta["family"] in obj.name
        again = CASES[case]()
        assert again.name == obj.name
        np.testing.assert_array_equal(again.theta0, obj.theta0)
    assert mlp(seed=1).name != mlp().name
    assert not np.array_equal(mlp(seed=1).theta0, mlp().theta0)
    m = mlp((3, 5, 2), "relu", "mse", batch=4, sigma=0.5, seed=7).meta
    assert m == {"family": "mlp", "widths": (3, 5, 2), "activation": "relu", "loss": "mse",
                 "batch": 4, "sigma": 0.5, "seed": 7}


@pytest.mark.parametrize(
    ("widths", "n_params"),
    [((4, 8, 1), 49), ((3, 2), 8), ((2, 4, 3, 1), 31), ((64, 512, 128, 1), 99073)],
)
def test_mlp_parameter_count(widths: tuple[int, ...], n_params: int) -> None:
    # sum over layers of out * in + out
    assert mlp(widths, loss="mse").n_params == n_params


def test_init_scale() -> None:
    # W ~ N(0, sigma^2 / fan_in): the first layer of a wide net has that variance.
    obj = mlp((400, 300, 1), sigma=2.0)
    w1 = obj.theta0[: 400 * 300]
    assert np.var(w1) == pytest.approx(4.0 / 400, rel=0.02)
    b1 = obj.theta0[400 * 300 : 400 * 300 + 300]
    assert np.std(b1) == pytest.approx(0.2, rel=0.2)


def test_large_mlp_grad_and_batch() -> None:
    obj = mlp((64, 512, 128, 1))
    assert obj.batch_safe
    ns = NumpyNamespace("float32")
    g = _grad(obj, ns.from_values(formats.round_array(obj.theta0, "float32")), ns)
    assert g.dtype == np.float32
    assert g.shape == (obj.n_params,)
    assert np.all(np.isfinite(g))


def test_logistic_regression_layout_and_grad() -> None:
    # Intercept last; the gradient is X (a - y) / m and mean(a - y), checked in float64.
    obj = logistic_regression(4, 9, seed=3)
    x, y = obj.fn.keywords["x"], obj.fn.keywords["y"]  # type: ignore[attr-defined]
    w, c = obj.theta0[:4], obj.theta0[4]
    a = 1 / (1 + np.exp(-(w @ x + c)))
    r = (a - y[0]) / 9
    expected = np.concatenate([x @ r, [r.sum()]])
    ns = NumpyNamespace("float64")
    np.testing.assert_allclose(_grad(obj, obj.theta0, ns), expected, rtol=1e-13, atol=1e-16)
    assert set(np.unique(y)) <= {0.0, 1.0}


def test_softmax_labels_are_one_hot() -> None:
    obj = softmax_regression(3, 5, 40, seed=1)
    y = obj.fn.keywords["y"]  # type: ignore[attr-defined]
    assert y.shape == (5, 40)
    np.testing.assert_array_equal(y.sum(axis=0), np.ones(40))
    assert len(np.unique(y.argmax(axis=0))) > 1


def test_quadratic_spectrum() -> None:
    obj = quadratic(8, 1e3, seed=2)
    a = obj.fn.keywords["a"]  # type: ignore[attr-defined]
    np.testing.assert_array_equal(a, a.T)
    eig = np.linalg.eigvalsh(a)
    np.testing.assert_allclose(eig, np.geomspace(1, 1e3, 8), rtol=1e-10)


def test_pickle_roundtrip(objectives: dict[str, Objective]) -> None:
    ns = NumpyNamespace("float64")
    for obj in objectives.values():
        back = pickle.loads(pickle.dumps(obj))
        assert back.name == obj.name
        assert back.fn(obj.theta0, ns) == obj.fn(obj.theta0, ns)
        np.testing.assert_array_equal(_grad(back, obj.theta0, ns), _grad(obj, obj.theta0, ns))
    dd = pickle.loads(pickle.dumps(smooth_sum("sin").meta["diag_derivative"]))
    assert len(dd(np.zeros(10), 2)) == 10


def test_seed_net_still_exported() -> None:
    assert seed_net().n_params == 47


# -- evaluation in every format -------------------------------------------------


@pytest.mark.parametrize("fmt", HARDWARE)
@pytest.mark.parametrize("case", CASES)
def test_hardware_format_keeps_dtype(
    objectives: dict[str, Objective], case: str, fmt: str
) -> None:
    obj = objectives[case]
    f = formats.get(fmt)
    pts = np.stack([obj.theta0, obj.theta0 * 0.75, obj.theta0 + 0.125])
    with np.errstate(over="ignore", invalid="ignore"):
        values, _ = Evaluator(obj, f)(formats.round_array(pts, f))
    assert values.dtype == f.dtype
    assert values.shape == (3,)
    ns = NumpyNamespace(f)
    g = _grad(obj, ns.from_values(formats.round_array(obj.theta0, f)), ns)
    assert g.dtype == f.dtype
    assert g.shape == (obj.n_params,)
    if (case, fmt) in OVERFLOWS:
        assert not np.isfinite(values[0])
        return
    assert np.all(np.isfinite(values))
    assert np.all(np.isfinite(g))
    exact = _exact_value(obj)
    err = abs(formats.exact_mpf(values[0]) - exact)
    assert err <= SANITY * f.eps * max(1, abs(exact))


@pytest.mark.parametrize("case", CASES)
def test_emulated_and_exact_evaluation(objectives: dict[str, Objective], case: str) -> None:
    obj = objectives[case]
    pts = np.stack([obj.theta0, obj.theta0 * 0.75])
    exact = _exact_value(obj)
    f = formats.get("binary20")
    values, _ = Evaluator(obj, f)(formats.round_array(pts, f))
    assert values.dtype == object
    assert all(hasattr(v, "_mpf_") for v in values)
    assert abs(values[0] - exact) <= SANITY * f.eps * max(1, abs(exact))
    ref = Evaluator.reference(obj, "float64", REF_PREC)
    values, _ = ref(ref.convert(pts))
    assert abs(values[0] - exact) <= mpmath.mpf(2) ** (20 - REF_PREC) * max(1, abs(exact))


# -- analytic gradients ---------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_grad_matches_mpmath_diff(objectives: dict[str, Objective], case: str) -> None:
    obj = objectives[case]
    g = _exact_grad(obj)
    assert g.shape == (obj.n_params,)
    ctx = mpmath.MPContext()
    ctx.dps = DIGITS + 10
    scale = max(abs(v) for v in g)
    for i in _coords(obj.n_params):
        d = _mp_diff(obj, i, 1, ctx)
        assert abs(ctx.mpf(g[i]) - d) <= ctx.mpf(10) ** -DIGITS * max(abs(d), scale), (i, g[i], d)


@pytest.mark.parametrize("case", ["mlp_default", "mlp_relu_softmax", "softmax_default"])
def test_complex_step_agrees_with_grad(objectives: dict[str, Objective], case: str) -> None:
    # fn is analytic (no abs / real parts), so the complex step recovers the gradient.
    obj = objectives[case]
    ns = NumpyNamespace("float64", is_complex=True)
    g = _grad(obj, obj.theta0, NumpyNamespace("float64"))
    h = 1e-30
    for i in _coords(obj.n_params):
        theta = obj.theta0.astype(np.complex128)
        theta[i] += 1j * h
        assert np.imag(obj.fn(ns.from_values(theta), ns)) / h == pytest.approx(g[i], rel=1e-12,
                                                                               abs=1e-15)


def test_quadratic_central_difference_has_no_truncation() -> None:
    obj = quadratic(6, 50.0, seed=3)
    ns = MPNamespace(REF_PREC, data_format="float64")
    g = _exact_grad(obj)
    h = mpmath.mpf(2) ** -3
    for i in range(obj.n_params):
        plus, minus = ns.from_values(obj.theta0), ns.from_values(obj.theta0)
        plus[i] += h
        minus[i] -= h
        d = (_scalar(obj.fn(plus, ns)) - _scalar(obj.fn(minus, ns))) / (2 * h)
        assert abs(d - g[i]) <= mpmath.mpf(2) ** (10 - REF_PREC) * max(1, abs(g[i]))


# -- smooth_sum closed forms ----------------------------------------------------


@pytest.mark.parametrize("kind", ["exp", "sin", "poly"])
def test_diag_derivative_matches_mpmath_diff(kind: str) -> None:
    obj = smooth_sum(kind, n=5, seed=2, scale=1.5)
    dd = obj.meta["diag_derivative"]
    ctx = mpmath.MPContext()
    ctx.dps = DIGITS + 10
    exact_ctx = mpmath.MPContext()
    exact_ctx.prec = REF_PREC
    theta = MPNamespace(REF_PREC).from_values(obj.theta0)
    for order in (1, 2, 3, 4):
        closed = dd(theta, order, ctx=exact_ctx)
        assert len(closed) == obj.n_params
        for i in (0, 2, 4):
            d = _mp_diff(obj, i, order, ctx)
            tol = ctx.mpf(10) ** -DIGITS * max(abs(d), 1)
            assert abs(ctx.mpf(closed[i]) - d) <= tol, (order, i)
    # order 1 is the gradient
    g = _exact_grad(obj)
    assert all(abs(a - b) <= mpmath.mpf(2) ** (8 - REF_PREC) for a, b in
               zip(g, dd(theta, 1, ctx=exact_ctx), strict=True))


def test_diag_derivative_uses_workprec_and_data_format() -> None:
    obj = smooth_sum("exp", n=4, seed=1)
    dd = obj.meta["diag_derivative"]
    exact_ctx = mpmath.MPContext()
    exact_ctx.prec = REF_PREC
    with mpmath.workprec(REF_PREC):
        hi = dd(obj.theta0, 2)
    assert hi == dd(obj.theta0, 2, ctx=exact_ctx)  # same operations at the same precision
    lo = dd(obj.theta0, 2)  # at mpmath's default 53 bits
    assert all(abs(a - b) <= 1e-14 * abs(a) for a, b in zip(hi, lo, strict=True))
    assert hi != lo
    # With the data rounded to bfloat16, the closed form matches the function whose
    # data enter through xp.asarray in bfloat16 (an exact reference for bfloat16).
    ctx = mpmath.MPContext()
    ctx.dps = DIGITS + 10
    with mpmath.workprec(REF_PREC):
        rounded = dd(obj.theta0, 2, data_format="bfloat16")
    d = _mp_diff(obj, 1, 2, ctx, data_format="bfloat16")
    assert abs(ctx.mpf(rounded[1]) - d) <= ctx.mpf(10) ** -DIGITS * abs(d)
    assert abs(ctx.mpf(hi[1]) - d) > 1e-6 * abs(d)  # the unrounded data differ


def test_poly_central_truncation_is_exactly_h2_third_over_6() -> None:
    # A cubic: D_central(h) - g = h^2 J''' / 6 with no higher-order terms.
    obj = smooth_sum("poly", n=4, seed=3)
    ns = MPNamespace(REF_PREC, data_format="float64")
    g = _exact_grad(obj)
    ctx = mpmath.MPContext()
    ctx.prec = REF_PREC
    third = obj.meta["diag_derivative"](obj.theta0, 3, ctx=ctx)
    for h in (ctx.mpf(2) ** -2, ctx.mpf(2) ** -9):
        for i in range(obj.n_params):
            plus, minus = ns.from_values(obj.theta0), ns.from_values(obj.theta0)
            plus[i] += h
            minus[i] -= h
            d = (_scalar(obj.fn(plus, ns)) - _scalar(obj.fn(minus, ns))) / (2 * h)
            law = h**2 * third[i] / 6
            assert abs((d - g[i]) - law) <= ctx.mpf(2) ** (30 - REF_PREC) / h


def test_diag_derivative_rejects_order_zero() -> None:
    with pytest.raises(ValueError, match="order"):
        smooth_sum().meta["diag_derivative"](np.zeros(10), 0)


# -- argument validation --------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (mlp, {"activation": "gelu"}, "activation"),
        (mlp, {"loss": "hinge"}, "loss"),
        (mlp, {"widths": (4, 8, 2)}, r"bce.*widths\[-1\]"),
        (mlp, {"widths": (4, 8, 1), "loss": "softmax"}, r"softmax.*widths\[-1\]"),
        (mlp, {"widths": (4,)}, "widths"),
        (mlp, {"widths": (4, 0, 1)}, r"widths\[1\]"),
        (mlp, {"batch": 0}, "batch"),
        (mlp, {"sigma": 0.0}, "sigma"),
        (mlp, {"sigma": -1.0}, "sigma"),
        (mlp, {"sigma": float("inf")}, "sigma"),
        (mlp, {"seed": -1}, "seed"),
        (logistic_regression, {"n_features": 0}, "n_features"),
        (logistic_regression, {"n_samples": 0}, "n_samples"),
        (logistic_regression, {"sigma": 0.0}, "sigma"),
        (softmax_regression, {"n_classes": 1}, "n_classes"),
        (softmax_regression, {"n_features": -2}, "n_features"),
        (softmax_regression, {"n_samples": 0}, "n_samples"),
        (softmax_regression, {"sigma": -0.5}, "sigma"),
        (quadratic, {"n": 0}, "n must"),
        (quadratic, {"cond": 0.0}, "cond"),
        (quadratic, {"cond": 0.5}, "cond"),
        (quadratic, {"n": 1, "cond": 10.0}, "cond"),
        (quadratic, {"scale": -1.0}, "scale"),
        (smooth_sum, {"kind": "cosh"}, "kind"),
        (smooth_sum, {"n": 0}, "n must"),
        (smooth_sum, {"scale": float("nan")}, "scale"),
    ],
)
def test_invalid_arguments(factory: Callable[..., Objective], kwargs: dict[str, Any],
                           match: str) -> None:
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)


@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (mlp, {"widths": 4}, "widths"),
        (mlp, {"widths": (4, 2.5, 1)}, r"widths\[1\]"),
        (mlp, {"batch": 2.0}, "batch"),
        (quadratic, {"cond": "10"}, "cond"),
        (smooth_sum, {"n": True}, "n must"),
    ],
)
def test_wrong_types(factory: Callable[..., Objective], kwargs: dict[str, Any],
                     match: str) -> None:
    with pytest.raises(TypeError, match=match):
        factory(**kwargs)


# -- confinement to the namespace ------------------------------------------------------


def test_confinement_hands_back_plain_arrays(objectives: dict[str, Objective]) -> None:
    """Guarded arrays live only inside a call: its results, and xp used outside one, are plain."""
    obj = objectives["mlp_default"]
    for fmt in ("float32", "binary16"):
        ev = Evaluator(obj, fmt)
        vals, _ = ev(ev.convert(formats.round_array(obj.theta0[None, :], "float16")))
        assert type(vals) is np.ndarray
    ns = MPNamespace(REF_PREC, data_format="float64")
    g = call_grad(obj, obj.theta0, ns)
    assert type(g) is np.ndarray and all(type(v) is ns.ctx.mpf for v in g)
    assert np.array_equal(g, _exact_grad(obj))  # the same numbers as an unconfined call
    f32 = NumpyNamespace("float32")
    assert type(f32.exp(f32.asarray([1.0]))) is np.ndarray


def test_python_numbers_enter_as_the_format_takes_them() -> None:
    """Operators, xp.where and xp.maximum take a Python number as numpy does (NEP 50): rounded to
    the format, in the reference as in the format itself."""
    t0 = np.array([0.25, -2.0])

    def fn(t: Any, xp: Any) -> Any:
        return xp.sum(xp.maximum(t, 1.3) + xp.where(t > 0, 0.1, t) + t * 0.7 + t * 2049)

    obj = Objective(fn, t0, vectorized=True)
    ref = Evaluator.reference(obj, "float16", REF_PREC)
    value = ref(ref.convert(t0[None, :]))[0][0]
    c = {x: formats.round_exact(x, "float16") for x in (1.3, 0.1, 0.7, 2049)}  # 2049 -> 2048
    with mpmath.workprec(REF_PREC):
        want = 2 * c[1.3] + c[0.1] - 2 + (0.25 - 2) * (c[0.7] + c[2049])
        assert formats.exact_mpf(value) == want
    x = t0.astype(np.float16)
    in_format = np.maximum(x, np.float16(1.3)) + np.where(x > 0, np.float16(0.1), x) + x * np.float16(0.7)
    assert np.array_equal(in_format + x * np.float16(2048), np.maximum(x, 1.3) + np.where(x > 0, 0.1, x)
                          + x * 0.7 + x * 2049)
