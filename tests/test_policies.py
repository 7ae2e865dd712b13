"""Precision policies and float8 everywhere a format is accepted: the decomposition identity,
the reference on the policy's data, and the checker's verdicts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gradlab as gl
from gradlab.arithmetic import formats
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.objectives import families
from gradlab.objectives.bugs import scaled_component

POLICIES = ["tf32", "bf16-mixed", "fp16-mixed"]
NARROW = ["float8_e4m3fn", "float8_e5m2"]


def _objectives() -> dict[str, gl.Objective]:
    return {"seed-stable": gl.objectives.seed_net(stable=True),
            "mlp": families.mlp((4, 8, 1), batch=8)}


@pytest.mark.parametrize("fmt", POLICIES + NARROW + ["policy(storage=bfloat16, compute=float32)"])
def test_decomposition_identity_under_policies(fmt: str) -> None:
    df = gl.fd_errors(gl.objectives.seed_net(stable=True), formats=[fmt], schemes=["central"],
                      steps=np.logspace(-4, 0, 5), coords=[0, 5, 40])
    assert (df.format == formats.get(fmt).name).all()
    ok = np.isfinite(df.err_total)
    assert ok.any()
    parts = df.err_trunc + df.err_step + df.err_round
    tol = 4 * np.finfo(float).eps * (df.err_trunc.abs() + df.err_step.abs() + df.err_round.abs())
    assert np.all(np.abs(parts - df.err_total)[ok] <= (tol + 3 * df.ref_tol)[ok])


@pytest.mark.parametrize("fmt", POLICIES)
def test_reference_sees_the_storage_formats_theta_and_data(fmt: str) -> None:
    obj = gl.objectives.seed_net(stable=True)
    pol = formats.get(fmt)
    a, b = gl.exact(obj, pol, digits=30), gl.exact(obj, pol.storage, digits=30)
    assert a.value == b.value and all(x == y for x, y in zip(a.grad, b.grad, strict=True))


@pytest.mark.parametrize("name", list(_objectives()))
@pytest.mark.parametrize("fmt", ["float32", "bfloat16", "float16", *POLICIES])
def test_check_passes_correct_and_catches_ten_percent_under_every_policy(name: str, fmt: str) -> None:
    obj = _objectives()[name]
    form = formats.get(fmt)
    ns = namespace_for(form)
    g = np.asarray(obj.grad(ns.from_values(formats.round_array(obj.theta0, form)), ns),
                   dtype=np.float64)
    good = gl.check(obj, format=fmt)
    assert good.passed, str(good)
    # the bug in a gradient function (its rounding measurable in float64), as a user's is
    caught = gl.check(scaled_component(obj, int(np.argmax(np.abs(g))), 1.1), format=fmt)
    assert caught.decided and not caught.passed, str(caught)


@pytest.mark.parametrize("fmt", NARROW)
def test_float8_correct_gradients_raise_no_false_alarm(fmt: str) -> None:
    # in float8 the gradient's own rounding is 6-12%: the check may not resolve a 10% error,
    # but it must not fail a correct gradient
    for obj in _objectives().values():
        res = gl.check(obj, format=fmt)
        assert not (res.report.status == "fail").any(), str(res)


def test_policies_refuse_plain_callables_with_the_reason() -> None:
    with pytest.raises(ValueError, match="precision policy"):
        gl.check(lambda x: np.sum(x * x), lambda x: 2 * x, theta=np.ones(3), format="bf16-mixed")


@pytest.mark.parametrize("ref", ["float16", "binary30", "tf32", 7])
def test_bad_reference_format_names_the_parameter(ref: object) -> None:
    with pytest.raises((ValueError, TypeError), match="reference_format"):
        gl.check(gl.objectives.seed_net(stable=True), format="float32", reference_format=ref)


def test_float8_overflow_is_flagged_not_silent() -> None:
    obj = gl.Objective(lambda t, xp: xp.sum(xp.exp(t)), np.array([5.0, 6.5]), name="exp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = gl.fd_errors(obj, formats=["float8_e4m3fn"], schemes=["central"],
                          steps=[1e-1, 1.0], coords=[0, 1])
    # exp(6.5) = 665 > 448: J is NaN in e4m3fn (no infinities); rows flagged, event counted
    assert df.flag.str.contains("nonfinite").all() and df.flag.str.contains("overflow").all()
    assert df.attrs["fp_events"]["float8_e4m3fn"].get("overflow", 0) > 0


def test_an_array_gradient_in_a_narrow_format_stays_in_the_format() -> None:
    # its rounding can only be estimated, too roughly for float32's FD error: no widening
    obj = gl.objectives.seed_net(stable=True)
    form = formats.get("bfloat16")
    ns = namespace_for(form)
    g = np.asarray(obj.grad(ns.from_values(formats.round_array(obj.theta0, form)), ns),
                   dtype=np.float64)
    res = gl.check(obj, grad=g, format="bfloat16")
    assert res.reference_format == "bfloat16" and res.passed
    assert gl.check(obj, format="bfloat16").reference_format.startswith("policy(storage=float32")


@pytest.mark.parametrize("fmt", ["bf16-mixed", "float8_e4m3fn"])
def test_scaling_cells_and_optimal_step_take_policies_and_float8(fmt: str) -> None:
    from gradlab.sweeps.scaling import measure_cell

    spec = {"family": "mlp", "widths": [3, 4, 1], "batch": 4, "seed": 1}
    row = measure_cell({"objective": spec, "format": fmt, "scheme": "central", "n_coords": 4,
                        "n_boot": 0}).iloc[0]
    assert row["format"] == fmt and row["u"] == formats.get(fmt).u
    assert np.isfinite(row["e_opt"]) and row["e_opt"] > 0
    step = gl.optimal_step(families.mlp((3, 4, 1), batch=4, seed=1), format=fmt)
    assert np.all(np.isfinite(step.h)) and np.all(step.h > 0)


def test_fd_gradient_on_sampled_coordinates_is_the_full_ones() -> None:
    from gradlab.analysis.engine import fd_gradient

    obj = families.mlp((4, 8, 1), batch=8)
    for fmt, h in (("float64", 1e-6), ("bf16-mixed", 0.1)):
        full = fd_gradient(obj, fmt, "central", h)
        some = fd_gradient(obj, fmt, "central", h, coords=[7, 3, 0, 3])  # sorted, no repeats
        assert np.all(full[[0, 3, 7]] != 0) or fmt != "float64"
        assert np.array_equal(some, full[[0, 3, 7]])


def test_the_fd_quotient_under_a_policy_is_formed_in_its_storage_format() -> None:
    # J leaves the policy's compute format rounded to storage, and the stencil, the
    # differences and the division are storage arithmetic (no silent float32 upcast)
    from gradlab.arithmetic.evaluator import Evaluator
    from gradlab.arithmetic.stencil import stencil

    pol = formats.policy("bfloat16", compute="float32")
    obj = gl.objectives.seed_net(stable=True)
    theta = formats.round_array(obj.theta0, pol)
    h = 0.1
    st = stencil(theta[:1], np.array([h]), (-1, 1), pol)
    rows = np.repeat(theta[None, :], 2, axis=0)
    rows[:, 0] = st.points[0]
    j, _ = Evaluator(obj, pol)(rows)
    assert j.dtype == pol.dtype
    want = (j[1] - j[0]) / (pol.dtype.type(2) * st.h[0])
    df = gl.fd_errors(obj, formats=[pol], schemes=["central"], steps=[h], coords=[0])
    assert df.approx.iloc[0] == float(want)
