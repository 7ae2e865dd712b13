"""gradlab.checking.check: correct gradients pass and wrong ones fail, in every format."""

import numpy as np
import pytest

import gradlab as gl
from gradlab.analysis.noise import rounding_floor
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.arithmetic.stencil import stencil

FORMATS = ["float64", "float32", "float16", "bfloat16"]


def _grad_in(obj: gl.Objective, fmt: str) -> np.ndarray:
    assert obj.grad is not None
    ns = namespace_for(fmt)
    return np.asarray(obj.grad(gl.formats.round_array(obj.theta0, fmt), ns)).astype(np.float64)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", ["full", "directional"])
def test_correct_gradients_pass(fmt: str, mode: str) -> None:
    for obj in (gl.objectives.seed_net(stable=True), gl.objectives.smooth_sum("sin", n=6, seed=2),
                gl.objectives.logistic_regression(n_features=4, n_samples=8, seed=1)):
        res = gl.check(obj, format=fmt, mode=mode)
        assert res.passed, (obj.name, fmt, mode, res.report[~res.report.ok])


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_gradients_fail_when_above_the_floor(fmt: str) -> None:
    obj = gl.objectives.smooth_sum("sin", n=6, seed=2)
    good = _grad_in(obj, fmt)
    # an array's own rounding cannot be measured (only floored): take the bounds it gets
    res = gl.check(obj, grad=good, format=fmt)
    for k in range(6):
        bad = good.copy()
        bad[k] += 20 * res.report.bound.iloc[k] + 1e-30  # well above that row's bound
        assert not gl.check(obj, grad=bad, format=fmt).passed
    flipped = -good
    assert not gl.check(obj, grad=flipped, format=fmt, mode="directional").passed


def test_relu_kinks_are_reported_not_failed() -> None:
    # FD in float16 itself: its steps cross ReLU kinks
    res = gl.check(gl.objectives.seed_net(stable=True), format="float16", reference_format=None)
    assert res.passed and res.kinks and (res.report.status == "kink").sum() == len(res.kinks)
    strict = gl.check(gl.objectives.seed_net(stable=True), format="float16", kinks="fail",
                      reference_format=None)
    assert not strict.passed


def test_naive_loss_in_float16_is_unresolved() -> None:
    # J's noise (about 64 u|J|) makes every tolerance exceed its gradient component:
    # the check says it could not decide instead of passing
    # (its dead ReLU units' exact zeros are confirmed, but zeros alone decide nothing while
    # nonzero components are unresolved: most bugs leave a dead unit's 0 alone)
    res = gl.check(gl.objectives.seed_net(), format="float16", reference_format=None)
    assert not res.decided and not res.passed
    assert set(res.report.status) <= {"unresolved", "kink", "zero"}
    # FD in float32 on float16's theta and data resolves it: the float16 gradient is checked
    wide = gl.check(gl.objectives.seed_net(), format="float16")
    assert wide.decided and wide.passed and wide.reference_format.startswith("policy(storage=float32")
    assert (wide.report.format == wide.reference_format).all() and "FD in" in str(wide)


def test_nonfinite_objective_is_flagged() -> None:
    res = gl.check(gl.objectives.seed_net(), format="bfloat16")  # 1 - A3 rounds to 0
    assert not res.passed and (res.report.status == "nonfinite").all()
    assert "not finite" in str(res)


def test_plain_callables_and_upcasts() -> None:
    a = np.array([1.0, 2.0, 3.0])

    def f(x: np.ndarray) -> np.ndarray:
        return np.sum(np.sin(x * x.dtype.type(1.5)))

    def g(x: np.ndarray) -> np.ndarray:
        return 1.5 * np.cos(1.5 * x)

    res = gl.check(f, g, theta=a, format="float32")
    assert res.passed and res.upcasts == 0
    res64 = gl.check(lambda x: np.sum(np.sin(1.5 * x.astype(np.float64))), g, theta=a,
                     format="float32")
    assert res64.upcasts > 0  # reported: the callable computes in float64, not float32


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(grad=np.ones(3)), "shape"),
        (dict(grad=np.full(47, np.nan)), "not finite"),
        (dict(mode="both"), "mode"),
        (dict(false_alarm=0.0), "false_alarm"),
        (dict(scheme="complex"), "scheme"),
        (dict(kinks="maybe"), "kinks"),
        (dict(format="float8"), "format"),
    ],
)
def test_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gl.check(gl.objectives.seed_net(), **kwargs)


def test_function_returning_an_array_is_rejected() -> None:
    with pytest.raises(ValueError, match="scalar"):
        gl.check(gl.Objective(lambda t, xp: xp.exp(t), np.ones(3), name="vector"),
                 grad=np.ones(3))


def test_all_kinks_is_undecided_not_passed() -> None:
    res = gl.check(gl.objectives.seed_net(), format="float16", mode="directional",
                   reference_format=None)
    # every direction crosses a ReLU kink here, or its step is too small to resolve it
    assert set(res.report.status) <= {"kink", "unresolved"} and (res.report.status == "kink").any()
    assert not res.decided and not res.passed and "UNDECIDED" in str(res)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("scheme", ["central", "central6"])
def test_coordinate_points_are_the_stencils(fmt: str, scheme: str) -> None:
    # every point of every coordinate row (at h, h/2 and h/4: a plain callable's kink test
    # takes the quarter step) is gradlab.arithmetic.stencil's, bit for bit
    seen: set[bytes] = set()

    def f(x: np.ndarray) -> np.ndarray:
        seen.add(x.tobytes())
        return np.sum(np.sin(x * x.dtype.type(1.5)))

    res = gl.check(f, lambda x: 1.5 * np.cos(1.5 * x), theta=np.linspace(0.3, 4.1, 12),
                   format=fmt, scheme=scheme, reference_format=None)
    form, offsets = gl.formats.get(fmt), gl.schemes.get(scheme).offsets
    assert form.dtype is not None
    theta = gl.formats.round_array(np.linspace(0.3, 4.1, 12), form)
    moved = 0  # points where the former cast theta_i + dtype(k h) would have differed
    for h in (res.h, res.h / 2, res.h / 4):
        st = stencil(theta, h, offsets, form)
        for i in range(theta.size):
            for j, k in enumerate(offsets):
                row = theta.copy()
                row[i] = st.points[i, j]
                assert row.tobytes() in seen, (i, k, float(h[i]))
                moved += int(theta[i] + form.dtype.type(k * h[i]) != st.points[i, j])
    if scheme == "central6" and fmt in ("float16", "bfloat16"):
        assert moved > 0  # fl(3 fl(h)) != fl(3 h) somewhere: the test tells the two apart


@pytest.mark.parametrize("fmt", ["float64", "float32", "float16", "bfloat16"])
def test_zero_objective_gets_a_positive_noise_floor(fmt: str) -> None:
    # J(theta0) = 0 exactly and noiseless to ECnoise: the floor is one rounding of J at the
    # smallest normal number, not u|J| = 0
    obj = gl.Objective(lambda t, xp: xp.sum(t), np.array([1.0, -1.0, 0.5, -0.5]), name="zero_sum",
                       grad=lambda t, xp: t * 0 + 1)
    res = gl.check(obj, format=fmt, reference_format=None)
    assert res.noise == rounding_floor(fmt, 0.0)
    assert res.noise > 0
    assert res.passed


def test_exact_zero_components_confirmed_by_fd_are_evidence() -> None:
    # J = t0**2 + sin(t1) at t0 = 0: the first component is exactly 0, and FD confirms it
    obj = gl.Objective(lambda t, xp: t[..., 0] * t[..., 0] + xp.sin(t[..., 1]), np.array([0.0, 0.7]))
    res = gl.check(obj, grad=np.array([0.0, np.cos(0.7)]), format="float64")
    assert res.passed and res.report.status.tolist() == ["zero", "ok"]
    # a gradient that is 0 everywhere, confirmed everywhere: decided, passed
    only_zero = gl.check(lambda t: np.sum(t * t), lambda t: 2 * t, theta=np.zeros(3))
    assert only_zero.decided and only_zero.passed and set(only_zero.report.status) == {"zero"}
    assert "exact zero, confirmed" in str(only_zero)
    # a zero where J has slope 1: FD refutes it
    assert not gl.check(lambda t: np.sum(t * t) + t[0], lambda t: 2 * t, theta=np.zeros(3)).passed


_CORNERS = {  # piecewise-linear and flat functions, their gradients, and points on their corners
    "relu6": (lambda t: np.clip(t, 0, 6).sum(), lambda t: ((t > 0) & (t < 6)).astype(float), [0.0, 6.0]),
    "hardsigmoid": (lambda t: np.clip(t / 6 + 0.5, 0, 1).sum(), lambda t: ((t > -3) & (t < 3)) / 6.0,
                    [-3.0, 3.0]),
    "hardtanh": (lambda t: np.clip(t, -1, 1).sum(), lambda t: ((t > -1) & (t < 1)).astype(float),
                 [-1.0, 1.0]),
    "clamp": (lambda t: np.clip(t, -2, 0.5).sum(), lambda t: ((t > -2) & (t < 0.5)).astype(float),
              [-2.0, 0.5]),
    "round": (lambda t: np.round(t).sum(), lambda t: np.zeros_like(t), [0.5, 1.5]),
    "abs": (lambda t: np.abs(t).sum(), lambda t: np.sign(t), [0.0]),
}


@pytest.mark.parametrize("fmt", ["float64", "float32"])
@pytest.mark.parametrize("name", sorted(_CORNERS))
def test_corners_of_piecewise_linear_functions_are_kinks_not_failures(name: str, fmt: str) -> None:
    f, g, corners = _CORNERS[name]
    t = np.concatenate([np.random.default_rng(1).uniform(-4, 8, 20), corners, [1e-9]]).astype(fmt)
    r = gl.check(f, g(t), t, format=fmt)
    assert r.passed, r.report[r.report.status == "fail"]
    assert set(r.report.status) <= {"ok", "zero", "kink"}


def test_a_value_outside_the_one_sided_slopes_still_fails_at_a_corner() -> None:
    f, g, _ = _CORNERS["relu6"]
    t = np.array([0.0, 2.0, 3.0])
    bad = g(t)
    bad[0] = 2.0  # relu6's slopes at 0 are 0 and 1
    r = gl.check(f, bad, t)
    assert not r.passed and r.report.status[0] == "fail"


def test_a_curved_smooth_function_is_no_corner() -> None:
    # exp(10 t) bends hard, but its one-sided quotients converge: a 10% error still fails
    t = np.array([0.1, -0.2, 0.3])
    grad = 10 * np.exp(10 * t)
    grad[1] *= 1.1
    r = gl.check(lambda x: np.exp(10 * x).sum(), grad, t)
    assert r.report.status[1] == "fail" and not r.passed


def test_directional_mode_costs_the_same_evaluations_whatever_n() -> None:
    """O(n_directions) evaluations of J: nothing per coordinate (no pilot, no O(N) rows)."""
    costs = []
    for n in (50, 20000):
        a = np.linspace(0.5, 1.5, n)
        theta = np.linspace(-1, 1, n)
        res = gl.check(lambda x, a=a: np.sum(np.sin(a.astype(x.dtype) * x)),
                       lambda x, a=a: a.astype(x.dtype) * np.cos(a.astype(x.dtype) * x),
                       theta=theta, mode="directional")
        assert res.passed
        costs.append(res.nfev)
    assert costs[0] == costs[1]


def test_a_row_noisier_than_the_lines_said_is_measured_not_failed(monkeypatch, hash_noise) -> None:
    """Where ECnoise on random lines underestimates J's noise, the rows that would fail
    measure it along themselves (nine points) and keep a correct gradient from failing."""
    import gradlab.steps.optimal as optimal

    a = np.array([0.7, 1.3, 2.0, 0.9])
    theta = np.array([0.3, -0.4, 0.8, 1.1])

    def f(x: np.ndarray) -> float:
        return float(np.sum(np.sin(a * x))) + hash_noise(x, 1e-7)

    def g(x: np.ndarray) -> np.ndarray:
        return a * np.cos(a * x)

    monkeypatch.setattr(optimal, "line_noise", lambda *args: 1e-7 / 30)  # a 30x underestimate
    # without the rows' own noise, 5 of these 20 checks fail a row of the correct gradient
    # (the others call the noisy rows kinks: undecided, not failed)
    for s in range(20):
        res = gl.check(f, g, theta=theta + 0.01 * s, seed=s)
        assert not (res.report.status == "fail").any(), (s, res.report)
    bad = lambda x: g(x) * np.array([1, 1, 2.0, 1])  # noqa: E731
    assert (gl.check(f, bad, theta=theta).report.status == "fail").any()
