"""The FD engine: the decomposition identity, the laws of each scheme, flags and bad input."""

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradlab as gl
from gradlab.arithmetic import formats
from gradlab.arithmetic.evaluator import Evaluator

SMALL = {
    "exp": lambda: gl.objectives.smooth_sum("exp", n=3, seed=0),
    "sin": lambda: gl.objectives.smooth_sum("sin", n=3, seed=1),
    "logistic": lambda: gl.objectives.logistic_regression(n_features=3, n_samples=4, seed=0),
    "seed_net": lambda: gl.objectives.seed_net(),
}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(SMALL)),
    fmt=st.sampled_from(["bfloat16", "float16", "float32", "float64", "longdouble", "binary20"]),
    scheme=st.sampled_from(["forward", "backward", "central", "central4", "central6"]),
    log_h=st.floats(-10, -0.5),
)
def test_parts_sum_to_total(name: str, fmt: str, scheme: str, log_h: float) -> None:
    df = gl.fd_errors(SMALL[name](), formats=[fmt], schemes=[scheme], steps=[10.0**log_h],
                      coords=2, noise={fmt: 0.0}, workers=1)
    ok = np.isfinite(df.err_total)
    parts = df.err_trunc + df.err_step + df.err_round
    # each part is an exact number rounded once to float64; the tolerance is that rounding
    # plus the reference's stated resolution
    tol = 4 * np.finfo(float).eps * (df.err_trunc.abs() + df.err_step.abs() + df.err_round.abs())
    assert np.all(np.abs(parts - df.err_total)[ok] <= (tol + 3 * df.ref_tol)[ok])
    assert np.all(df.flag[~ok].str.contains("nonfinite|overflow"))


@pytest.mark.parametrize("scheme,order", [("forward", 1), ("central", 2), ("central4", 4),
                                          ("central6", 6), ("complex", 2)])
def test_truncation_slope_is_the_order(scheme: str, order: int) -> None:
    obj = gl.objectives.smooth_sum("exp", n=2, seed=3)
    steps = np.logspace(-4, -2, 5) if order < 6 else np.logspace(-3, -1.5, 5)
    df = gl.fd_errors(obj, formats=["float64"], schemes=[scheme], steps=steps,
                      noise={"float64": 0.0}, workers=1)
    for _, grp in df.groupby("coord"):
        slope = np.polyfit(np.log(grp.h), np.log(grp.err_trunc.abs()), 1)[0]
        assert abs(slope - order) < 0.05


def test_rounding_falls_with_slope_minus_one() -> None:
    obj = gl.objectives.seed_net(stable=True)
    steps = np.logspace(-5.5, -3.5, 16)  # above float32 spacing, below the truncation regime
    df = gl.fd_errors(obj, formats=["float32"], schemes=["central"], steps=steps,
                      coords=[0, 1, 2, 3, 44], workers=1)
    sm = gl.summarize(df)
    slope = np.polyfit(np.log(sm.h), np.log(sm.round_norm), 1)[0]
    assert abs(slope + 1) < 0.15  # a noisy quantity: fitted over 16 steps and 5 coordinates


def test_cubic_truncation_is_exactly_the_model() -> None:
    obj = gl.objectives.smooth_sum("poly", n=3, seed=0)
    df = gl.fd_errors(obj, formats=["float64"], schemes=["central"], steps=[1e-3, 1e-2, 0.3],
                      noise={"float64": 0.0}, workers=1)
    # a cubic has J''' constant and no higher terms: truncation = h^2 J''' / 6 exactly
    # (model_trunc is evaluated in float64: a few of its ulps)
    assert np.all(
        np.abs(df.err_trunc - df.model_trunc) <= 3 * df.ref_tol + 1e-15 * df.model_trunc.abs()
    )


def test_quadratic_has_no_central_truncation() -> None:
    obj = gl.objectives.quadratic(n=4, cond=10.0, seed=0)
    df = gl.fd_errors(obj, formats=["float32", "float64"], schemes=["central", "central4"],
                      steps=[1e-6, 1e-3, 0.5], workers=1)
    assert np.all(df.err_trunc.abs() <= df.ref_tol)
    assert (df.err_round.abs() > 0).any()


def test_zero_step_is_flagged_not_silent() -> None:
    df = gl.fd_errors(gl.objectives.seed_net(), formats=["float16"], schemes=["central"],
                      steps=[1e-7], coords=[0, 1], workers=1)
    assert (df.flag == "zero_step").all()
    sm = gl.summarize(df)
    assert sm.n_flagged.iloc[0] == 2 and "zero_step:2" in sm["flags"].iloc[0]
    assert np.isfinite(sm[["rel_sum", "rel_2g", "rel_g", "rms"]].to_numpy()).all()


def test_overflow_and_nonfinite_are_flagged() -> None:
    obj = gl.objectives.smooth_sum("exp", n=2, seed=0, scale=1.0)
    big = gl.Objective(obj.fn, obj.theta0 + 10.5, grad=obj.grad, name="exp_near_overflow")
    df = gl.fd_errors(big, formats=["float16"], schemes=["central"], steps=[1.0], workers=1,
                      noise={"float16": 0.0})
    assert df.flag.str.contains("overflow").all()
    sm = gl.summarize(df)
    assert not sm[["rel_sum", "err_norm", "max_abs"]].isna().any().any()
    assert np.isinf(sm.err_norm).all()
    # the naive loss in bfloat16: 1 - A3 rounds to 0, J is not finite
    df = gl.fd_errors(gl.objectives.seed_net(), formats=["bfloat16"], schemes=["central"],
                      steps=[0.1], coords=[0], workers=1, noise={"bfloat16": 0.0})
    assert df.flag.str.contains("nonfinite|overflow").all()


def test_kink_is_flagged_on_relu() -> None:
    obj = gl.objectives.seed_net()
    df = gl.fd_errors(obj, formats=["float64"], schemes=["central"], steps=[1e-6, 3.0],
                      coords=list(range(20)), workers=1, noise={"float64": 0.0})
    assert not df[df.h == 1e-6].flag.str.contains("kink").any()
    assert df[df.h == 3.0].flag.str.contains("kink").any()


def test_complex_step_has_no_cancellation() -> None:
    obj = gl.objectives.seed_net(stable=True)
    df = gl.fd_errors(obj, formats=["float64"], schemes=["complex"], steps=[1e-20, 1e-30],
                      workers=1)
    assert (df.err_total.abs() <= 1e-14).all()


def test_parallel_equals_serial() -> None:
    obj = gl.objectives.seed_net()
    kw = dict(formats=["float32"], schemes=["central"], steps=[1e-4, 1e-3], coords=[0, 7, 30],
              noise={"float32": 1e-6})
    a = gl.fd_errors(obj, workers=1, **kw)
    b = gl.fd_errors(obj, workers=2, **kw)
    assert a.equals(b)


def test_no_silent_upcast_in_a_format() -> None:
    def leaky(theta, xp):
        return xp.sum(xp.exp(theta * np.float64(0.5)))  # a float64 scalar upcasts float32

    obj = gl.Objective(leaky, np.ones(3), vectorized=True)
    with pytest.raises(TypeError, match="upcast"):
        gl.fd_errors(obj, formats=["float32"], steps=[1e-3], workers=1)


def test_builtin_objectives_keep_the_dtype() -> None:
    for make in SMALL.values():
        obj = make()
        for fmt in ["bfloat16", "float16", "float32", "longdouble"]:
            pts = gl.formats.round_array(obj.theta0[None, :], fmt)
            with np.errstate(all="ignore"):
                vals, _ = Evaluator(obj, fmt)(pts)
            assert vals.dtype == gl.formats.get(fmt).dtype


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(steps=[0.0]), "steps"),
        (dict(steps=[-1e-3]), "steps"),
        (dict(steps=[np.nan]), "steps"),
        (dict(formats=["float8"]), "format"),
        (dict(schemes=["central3"]), "scheme"),
        (dict(formats=["float16"], schemes=["complex"]), "complex"),
        (dict(coords=[99]), "coords"),
        (dict(workers=0), "workers"),
    ],
)
def test_bad_arguments_name_the_parameter(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        gl.fd_errors(gl.objectives.seed_net(), **kwargs)


def test_bad_objectives() -> None:
    with pytest.raises(ValueError, match="theta0"):
        gl.Objective(lambda t, xp: xp.sum(t), np.array([1.0, np.inf]))
    vec = gl.Objective(lambda t, xp: xp.exp(t), np.ones(3), name="vector_valued")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="scalar J"):
            gl.fd_errors(vec, steps=[1e-3], workers=1)


def test_a_given_reference_is_reused_only_when_it_serves(monkeypatch) -> None:
    """fd_errors takes a verified reference instead of recomputing it, and the table is the same."""
    import gradlab.analysis.engine as engine

    obj = gl.objectives.mlp((3, 4, 1), seed=2)
    kw = dict(formats=["float32"], schemes=["central"], steps=[1e-3, 1e-2], coords=[0, 5], workers=1,
              noise={"float32": 1e-8})
    plain = gl.fd_errors(obj, **kw)
    rich = gl.exact(obj, "float32", digits=60, orders=(3,), coords=[0, 5, 7])
    poor = gl.exact(obj, "float32", digits=10, orders=(3,), coords=[0, 5])
    calls = []
    monkeypatch.setattr(engine, "exact", lambda *a, **k: calls.append(k) or gl.exact(*a, **k))
    reused = gl.fd_errors(obj, **kw, references={"float32": rich})
    assert calls == []
    cols = ["err_total", "err_trunc", "err_step", "err_round"]
    pd.testing.assert_frame_equal(reused[cols], plain[cols])
    gl.fd_errors(obj, **kw, references={"float32": poor})  # too few digits: computed again
    other = gl.exact(gl.objectives.mlp((3, 4, 1), seed=3), "float32", digits=60, orders=(3,))
    gl.fd_errors(obj, **kw, references={"float32": other})  # another point: computed again
    impostor = gl.Objective(lambda t, xp: xp.sum(xp.tanh(t)), obj.theta0, name=obj.name)
    gl.fd_errors(impostor, **kw, references={"float32": rich})  # its name and point, another J
    t0 = formats.round_array(obj.theta0, "float32").astype(np.float64)
    cubic = gl.Objective(lambda t, xp: obj.fn(t, xp) + xp.sum((t - xp.asarray(t0)) ** 3), obj.theta0,
                         grad=obj.grad, name=obj.name)  # J and the gradient at theta alike, not d3
    gl.fd_errors(cubic, **kw, references={"float32": rich})
    assert len(calls) == 4


def test_nominal_points_are_exact_for_every_offset() -> None:
    # central6 is exact for a polynomial of degree 6, so D_exact(h) = g up to the reference's
    # precision; a nominal point 3h rounded to 53 bits (3 * 0.1 needs 55) would leave a
    # truncation of about 1e-17 |g|
    obj = gl.Objective(lambda t, xp: xp.sum(t**6 + t**3), np.array([0.3, -1.7]), name="poly6")
    df = gl.fd_errors(obj, formats=["float64"], schemes=["central6"], steps=[0.1, 0.0137],
                      noise={"float64": 1e-16})
    assert np.all(np.abs(df["err_trunc"]) <= 1e-30 * np.abs(df["exact"]))


def test_a_reference_of_this_very_objective_is_taken_without_probes(monkeypatch) -> None:
    import gradlab.analysis.engine as engine

    obj = gl.objectives.mlp((3, 4, 1), seed=2)
    ref = gl.exact(obj, "float32", digits=60, orders=(3,), coords=[0, 5])
    twin = gl.Objective(obj.fn, obj.theta0, grad=obj.grad, name=obj.name)  # same code, another object
    probed = []
    monkeypatch.setattr(engine, "_enclosures_agree", lambda *a: probed.append(1) or True)
    kw = dict(formats=["float32"], schemes=["central"], steps=[1e-3], coords=[0, 5], workers=1,
              noise={"float32": 1e-8}, references={"float32": ref})
    gl.fd_errors(obj, **kw)
    assert probed == []
    gl.fd_errors(twin, **kw)
    assert probed == [1]  # not computed from twin: its content is checked
