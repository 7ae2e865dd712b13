"""No silent wrong answer from the objective or the exact reference (issue #11).

Each test feeds one fault: arithmetic that escapes the namespace ``xp``, a wrong analytic
gradient, a Python float constant, a dynamic range beyond the working precision, a J that is
not finite, bad digits, a complex theta0. Each asserts a clear error naming the objective or
the argument, a flag, or the right answer against an independent computation.
"""

import dataclasses
import math

import mpmath
import numpy as np
import pytest

import gradlab as gl
from gradlab.analysis.exact import VerificationError
from gradlab.arithmetic import formats
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.namespaces import NamespaceEscapeError, namespace_for
from gradlab.arithmetic.objective import call_grad

T0 = np.array([0.5, -1.25, 2.0])
FIX = r"Fix: compute with xp's functions"


def _obj(fn, name, grad=None, theta0=T0):
    return gl.Objective(fn, theta0, grad=grad, name=name, vectorized=True)


def _in_format(obj, fmt="float32", record_branches=False):
    ev = Evaluator(obj, fmt, record_branches=record_branches)
    return ev(formats.round_array(obj.theta0[None, :], fmt))[0]


def _exact(obj, fmt="float32", **kw):
    return gl.exact(obj, fmt, digits=20, orders=(), **kw)


# -- 1. arithmetic that escapes the namespace ------------------------------------------


def test_fn_ignoring_xp_is_refused_by_the_reference_and_the_format() -> None:
    # the old failure: an all-zero "exact" gradient with every digit verified
    obj = _obj(lambda t, xp: np.sum(np.exp(np.asarray(t, dtype=float))), "ignores_xp")
    with pytest.raises(NamespaceEscapeError, match=r"fn of objective 'ignores_xp'.*float64 values.*" + FIX):
        _exact(obj)
    with pytest.raises(NamespaceEscapeError, match=r"'ignores_xp'.*float64 values from a float32 evaluation"):
        _in_format(obj)


def test_grad_ignoring_xp_is_refused() -> None:
    obj = _obj(lambda t, xp: xp.sum(xp.exp(t)), "grad_ignores_xp",
               grad=lambda t, xp: np.exp(np.asarray(t, dtype=float)))
    with pytest.raises(NamespaceEscapeError, match=r"grad of objective 'grad_ignores_xp'.*float64"):
        _exact(obj)
    with pytest.raises(NamespaceEscapeError, match=r"grad of objective 'grad_ignores_xp'"):
        call_grad(obj, formats.round_array(T0, "float16"), namespace_for("float16"))


def test_np_exp_on_xp_arrays_names_the_fix() -> None:
    # used to be numpy's "loop of ufunc does not support argument 0 of type mpf"
    obj = _obj(lambda t, xp: xp.sum(np.exp(t)), "np_exp")
    with pytest.raises(NamespaceEscapeError, match=r"'np_exp'.*numpy\.exp.*use xp\.exp.*xp\.asarray"):
        _exact(obj)
    with pytest.raises(NamespaceEscapeError, match=r"'np_exp'.*numpy\.exp"):
        _in_format(obj)


def test_np_exp_on_one_element_is_caught_too() -> None:
    obj = _obj(lambda t, xp: xp.sum(t) + np.exp(t[1]), "np_exp_element")
    with pytest.raises(NamespaceEscapeError, match=r"'np_exp_element'.*numpy\.exp"):
        _exact(obj)


def test_np_maximum_kink_is_not_invisible() -> None:
    obj = _obj(lambda t, xp: xp.sum(np.maximum(t, 0)), "np_maximum")
    with pytest.raises(NamespaceEscapeError, match=r"'np_maximum'.*numpy\.maximum.*use xp\.maximum"):
        _in_format(obj, "float64", record_branches=True)
    with pytest.raises(NamespaceEscapeError, match=r"'np_maximum'"):
        gl.check(obj, grad=np.ones(3), format="float64")


@pytest.mark.parametrize("fn,what", [
    (lambda t, xp: xp.sum(np.where(t > 0, t, -t)), r"numpy\.where"),
    (lambda t, xp: xp.sum(abs(t)), r"numpy\.absolute.*use xp\.abs"),
    (lambda t, xp: xp.sum(t) if xp.sum(t) > 0 else -xp.sum(t), r"Python control flow"),
], ids=["np.where", "abs", "if"])
def test_hidden_branches_are_refused(fn, what) -> None:
    with pytest.raises(NamespaceEscapeError, match=r"'branchy'.*" + what):
        _exact(_obj(fn, "branchy"))


def test_python_float_return_is_refused() -> None:
    # used to be AttributeError '_mpf_' far from the cause
    obj = _obj(lambda t, xp: 2.5, "py_float")
    with pytest.raises(NamespaceEscapeError,
                       match=r"'py_float'.*returned float64 values, not (mpmath|balls)"):
        _exact(obj)


def test_values_turned_into_python_floats_are_refused() -> None:
    obj = _obj(lambda t, xp: xp.sum(t) + math.exp(t[0]), "math_exp")
    with pytest.raises(NamespaceEscapeError, match=r"'math_exp'.*float\(\) took a value out"):
        _exact(obj)


def test_float64_from_a_float32_evaluation_is_refused() -> None:
    obj = _obj(lambda t, xp: xp.sum(t).astype(np.float64) * 2, "widened")
    with pytest.raises(NamespaceEscapeError, match=r"'widened'.*float64 values from a float32 evaluation"):
        _in_format(obj, "float32")


def test_global_mpmath_numbers_are_refused() -> None:
    # a number of mpmath's global 53-bit context is not the reference's arithmetic
    obj = _obj(lambda t, xp: mpmath.mpf(1) / 3, "global_mp")
    with pytest.raises(NamespaceEscapeError,
                       match=r"'global_mp'.*(another mpmath context|mpf values where xp's numbers are ball)"):
        _exact(obj)


def test_asarray_of_theta_is_refused() -> None:
    # xp.asarray rounds to the format: in the reference it would drop the perturbation
    obj = _obj(lambda t, xp: xp.sum(xp.asarray(t) ** 2), "asarray_theta")
    with pytest.raises(NamespaceEscapeError, match=r"'asarray_theta'.*xp\.asarray was given an array"):
        _exact(obj)


def test_numpy_float64_operand_in_a_float32_reference_is_refused() -> None:
    obj = _obj(lambda t, xp: xp.sum(t * np.float64(1.3)), "f64_const")
    with pytest.raises(NamespaceEscapeError, match=r"'f64_const'.*numpy float64 operand.*upcast"):
        _exact(obj, "float32")


def test_escapes_are_refused_by_noise_level_and_optimal_step() -> None:
    obj = _obj(lambda t, xp: np.sum(np.asarray(t, dtype=float) ** 2), "quiet_float64")
    with pytest.raises(NamespaceEscapeError, match="'quiet_float64'"):
        gl.noise_level(obj, "float32")
    with pytest.raises(NamespaceEscapeError, match="'quiet_float64'"):
        gl.optimal_step(obj, format="float32")


@pytest.mark.parametrize("make", [
    lambda: gl.objectives.seed_net(), lambda: gl.objectives.seed_net(stable=True),
    lambda: gl.objectives.mlp(widths=(3, 4, 1), activation="relu"),
    lambda: gl.objectives.mlp(widths=(3, 4, 2), activation="sigmoid", loss="softmax"),
    lambda: gl.objectives.mlp(widths=(2, 3, 2), loss="mse"),
    lambda: gl.objectives.logistic_regression(n_features=3, n_samples=5),
    lambda: gl.objectives.softmax_regression(n_features=2, n_classes=3, n_samples=4),
    lambda: gl.objectives.quadratic(n=4), lambda: gl.objectives.smooth_sum("sin", n=3),
], ids=["seed", "seed_stable", "mlp_relu", "mlp_softmax", "mlp_mse", "logistic", "softmax", "quadratic",
        "smooth_sin"])
def test_builtin_objectives_pass_every_check(make) -> None:
    obj = make()
    for fmt in ("bfloat16", "float16", "float32", "float64", "binary12"):
        with np.errstate(all="ignore"):
            ev = Evaluator(obj, fmt)
            ev(ev.convert(formats.round_array(obj.theta0[None, :], "float16")))
    ref = gl.exact(obj, "float32", digits=20, orders=(2,))  # fn, grad and the cross-check
    assert ref.digits_verified == 20 and ref.method == "analytic"


# -- 2. a wrong analytic gradient ----------------------------------------------------------


def _seed_with(grad, name):
    seed = gl.objectives.seed_net()
    return gl.Objective(seed.fn, seed.theta0, grad=grad, name=name)


def test_gradient_with_the_wrong_sign_is_refused() -> None:
    seed = gl.objectives.seed_net()
    obj = _seed_with(lambda t, xp: -seed.grad(t, xp), "minus_grad")
    with pytest.raises(ValueError, match=r"grad of objective 'minus_grad' disagrees.*direction 0.*"
                                         r"grad \. v = -1\.27.* dJ/dv = 1\.27"):
        gl.exact(obj, digits=20, orders=())


def test_gradient_wrong_by_ten_percent_in_one_component_is_refused() -> None:
    seed = gl.objectives.seed_net()

    def grad(t, xp):
        g = seed.grad(t, xp)
        return xp.where(np.arange(47) == 42, g * xp.asarray(1.1), g)  # g_42 = 0.198

    with pytest.raises(ValueError, match=r"grad of objective 'x1.1' disagrees.*grad \. v = .*dJ/dv = "):
        gl.exact(_seed_with(grad, "x1.1"), "float16", digits=20, orders=())


def test_correct_zero_gradient_at_a_stationary_point_passes() -> None:
    obj = _obj(lambda t, xp: xp.sum(t * t) + 1, "bowl", grad=lambda t, xp: 2 * t, theta0=np.zeros(3))
    assert all(g == 0 for g in gl.exact(obj, "float64", digits=20, orders=()).grad)


# -- 3. a Python float constant --------------------------------------------------------------


def test_float_constant_is_seen_as_the_format_sees_it() -> None:
    obj = _obj(lambda t, xp: xp.sum(t * 1.3), "times_1.3")
    ref = gl.exact(obj, "float16", digits=30, orders=())
    c16 = formats.round_exact(1.3, "float16")  # 1.2998046875
    with mpmath.workprec(300):
        want = mpmath.fsum(formats.round_exact(v, "float16") for v in T0) * c16
        assert abs(ref.value - want) <= abs(want) * mpmath.mpf(10) ** -30
    assert all(g == c16 for g in ref.grad)
    # what float16 computes (NEP 50: the Python float is converted to the array's dtype)
    x = formats.round_array(T0, "float16").astype(np.float16)
    assert np.array_equal(x * 1.3, x * np.float16(1.3))


# -- 4. a dynamic range beyond the working precision -----------------------------------------


def _huge(log_j):
    return _obj(lambda t, xp: xp.exp(xp.asarray(log_j)) + xp.sum(xp.exp(t)), f"exp({log_j:g})",
                theta0=np.array([1.0]))


def test_gradient_under_a_huge_value_is_resolved() -> None:
    # |J| / g = e**699: at the digits' precision every difference of J vanished (g = 0, "verified")
    with np.errstate(over="ignore"):
        ref = gl.exact(_huge(700.0), "float64", digits=30, orders=(2,), prove=False)
        proven = gl.exact(_huge(700.0), "float64", digits=30, orders=(2,))
    with mpmath.workprec(200):
        for r in (ref, proven):
            assert abs(r.grad[0] - mpmath.e) <= mpmath.e * mpmath.mpf(10) ** -30
    assert ref.digits_verified == 30 and ref.prec > 2 * 228  # 228 bits: a J of modest size
    assert ref.derivative_digits[2][0] >= 20  # the derivatives followed the precision too
    # Taylor series in balls differentiate without differences: J's size costs no digit
    assert proven.proven and proven.derivative_digits[2][0] == 20


def test_gradient_beyond_the_precision_limit_is_refused() -> None:
    with np.errstate(over="ignore"), pytest.raises(VerificationError, match=r"components \[0\] drown"):
        gl.exact(_huge(30000.0), "float64", digits=30, orders=())


def test_unresolved_derivatives_are_flagged() -> None:
    obj = gl.Objective(lambda t, xp: xp.exp(xp.asarray(700.0)) + xp.sum(xp.exp(t)), np.array([1.0]),
                       grad=lambda t, xp: xp.exp(t), name="analytic_huge")
    with np.errstate(over="ignore"):
        ref = gl.exact(obj, "float64", digits=30, orders=(2,), prove=False)
        proven = gl.exact(obj, "float64", digits=30, orders=(2,))
    assert ref.derivative_digits[2][0] == 0  # J's rounding swamps mpmath's d2: flagged, not a verified 0
    assert proven.derivative_digits[2][0] == 20 and proven.derivative_radius[2][0] < 1e-19 * math.e


# -- 5. J not finite, bad digits, complex theta0 ------------------------------------------------


@pytest.mark.parametrize("theta0,value", [(np.array([-1.0, 1.0]), "nan"), (np.array([0.0, 1.0]), "-inf")])
def test_nonfinite_j_says_so(theta0, value) -> None:
    obj = _obj(lambda t, xp: xp.sum(xp.log(t)), "log_sum", theta0=theta0)
    with pytest.raises(ValueError, match=rf"J of objective 'log_sum' is not finite.*J = {value}"):
        gl.exact(obj, "float64", digits=20, orders=())


def test_nonfinite_gradient_names_the_components() -> None:
    obj = _obj(lambda t, xp: xp.sum(t), "inf_grad",
               grad=lambda t, xp: xp.log(xp.where(t > 0, t * 0, t * 0 + 1)))  # log 0 where t > 0
    with pytest.raises(ValueError, match=r"'inf_grad' is not finite.*components \[0, 2\]"):
        gl.exact(obj, "float64", digits=20, orders=())


@pytest.mark.parametrize("kw,name", [
    ({"digits": 0}, "digits"), ({"digits": -3}, "digits"), ({"digits": math.inf}, "digits"),
    ({"digits": True}, "digits"), ({"derivative_digits": -5}, "derivative_digits"),
    ({"derivative_digits": math.nan}, "derivative_digits"), ({"derivative_digits": 0}, "derivative_digits"),
])
def test_bad_digits_are_refused(kw, name) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must be a positive integer"):
        gl.exact(_obj(lambda t, xp: xp.sum(t), "lin"), **kw)


def test_division_by_zero_in_the_reference_names_the_objective() -> None:
    obj = _obj(lambda t, xp: xp.sum(1 / (t - t)), "one_over_zero")
    with pytest.raises(ZeroDivisionError, match=r"fn of objective 'one_over_zero' divided by zero"):
        _exact(obj)


def test_complex_theta0_is_refused() -> None:
    with pytest.raises(TypeError, match="theta0 must be real"):
        gl.Objective(lambda t, xp: xp.sum(t), np.array([1.0 + 0.5j, 2.0]))


def test_exercise_check_fails_a_wrong_own_gradient() -> None:
    # the objective's own grad is the one checked: the reference differentiates J instead of
    # trusting it (with it, exact() would refuse the objective rather than fail the check)
    obj = gl.objectives.seed_net()
    bad = dataclasses.replace(obj, grad=lambda t, xp: obj.grad(t, xp) * xp.asarray(1.1))
    res = gl.exercise_check(bad)
    assert not res.passed and res.e_backprop_vs_exact == pytest.approx(0.1 / 2.1, rel=1e-6)
