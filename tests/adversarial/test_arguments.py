"""Bad input to the public functions ends in a clear error naming the parameter, a flagged
row, or the right answer: never a silent NaN or a wrong number (issue #11).

Three matrices: ERRORS (the call raises this type, with a message matching the pattern),
FLAGS (the call returns, and its result flags the problem) and ANSWERS (the call returns the
right answer). Every case is cheap: tiny objectives, one or two steps, given noise levels.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import gradlab as gl
import gradlab.analysis.engine as engine
from gradlab.analysis.engine import fd_gradient
from gradlab.steps.rules import (
    RULES,
    dumontet_vignes,
    fdm_bound,
    fixed,
    gmsw,
    more_wild,
    relative,
    ridders,
    shi_xie_xuan_nocedal,
)

THETA = np.array([0.1, 0.2, 0.3])
EXP = gl.Objective(lambda t, xp: xp.sum(xp.exp(t)), THETA, grad=lambda t, xp: xp.exp(t), name="expsum")
QUAD = gl.Objective(lambda t, xp: xp.sum(t * t), THETA, grad=lambda t, xp: 2 * t, name="quad")
NO_GRAD = gl.Objective(lambda t, xp: xp.sum(xp.exp(t)), THETA, name="expsum_nograd")
LOG_NEG = gl.Objective(lambda t, xp: xp.sum(xp.log(t)), np.array([-1.0, 0.2]), name="log_of_negative")
POLE = gl.Objective(lambda t, xp: xp.sum(1 / t), np.array([0.0, 0.2]), name="pole_at_theta")
# J overflows float16 at theta (2 exp(10.6) > 65504) while its gradient does not
BIG16 = gl.Objective(lambda t, xp: xp.sum(xp.exp(t)), np.array([10.6, 10.6]),
                     grad=lambda t, xp: xp.exp(t), name="overflows_float16")
FAST = dict(steps=[1e-3], workers=1, noise={"float64": 1e-16})
CELL = {"objective": {"family": "quadratic", "n": 4}, "format": "float32", "scheme": "central"}


def f_scalar(x: np.ndarray) -> Any:
    return np.sum(np.exp(x))


def f_vector(x: np.ndarray) -> Any:
    return np.exp(x)  # one value per coordinate, not a scalar J


def f_complex(x: np.ndarray) -> Any:
    return np.sum(np.exp(x)) + 1j


def _table() -> pd.DataFrame:
    return gl.fd_errors(EXP, steps=[1e-3, 1e-2], workers=1, noise={"float64": 1e-16})


def _fd(**kw: Any) -> Callable[[], Any]:
    return lambda: gl.fd_errors(kw.pop("obj", EXP), **{**FAST, **kw})


ERRORS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    # fd_errors: steps
    ("fd_errors steps beyond float32", _fd(formats="float32", steps=[1e-3, 1e200], noise=None),
     ValueError, r"steps\[1\] = 1e\+200 is beyond the range of float32"),
    ("fd_errors steps a string", _fd(steps="1e-3"), TypeError, "steps must be real numbers"),
    ("fd_errors steps empty", _fd(steps=[]), ValueError, "steps must be a non-empty 1-D"),
    ("fd_errors steps 2-D", _fd(steps=[[1e-3, 1e-2]]), ValueError, r"steps .*shape \(1, 2\)"),
    ("fd_errors steps bool", _fd(steps=[True]), TypeError, "steps must be real numbers"),
    ("fd_errors steps complex", _fd(steps=[1e-3j]), TypeError, "steps must be real numbers"),
    ("fd_errors steps inf", _fd(steps=[1e-3, np.inf]), ValueError, r"steps\[1\] = inf"),
    ("fd_errors steps negative", _fd(steps=[-1e-3]), ValueError, r"steps must be positive .*steps\[0\]"),
    # fd_errors: coords
    ("fd_errors coords floats", _fd(coords=[0.5, 1.7]), TypeError, r"coords\[0\] must be an integer"),
    ("fd_errors coords float array", _fd(coords=np.array([0.0, 1.0])), TypeError, "coords must be integer"),
    ("fd_errors coords float size", _fd(coords=2.0), TypeError, "coords"),
    ("fd_errors coords bool", _fd(coords=True), TypeError, r"coords \(a sample size\) must be an integer"),
    ("fd_errors coords negative", _fd(coords=[-1]), ValueError, r"coords must be indices in \[0, 3\)"),
    ("fd_errors coords empty", _fd(coords=[]), ValueError, "coords must be a non-empty"),
    ("fd_errors coords zero sample", _fd(coords=0), ValueError, "coords"),
    # fd_errors: noise and references
    ("fd_errors noise negative", _fd(formats="float32", noise={"float32": -1}), ValueError,
     r"noise\['float32'\] must be >= 0"),
    ("fd_errors noise nan", _fd(noise={"float64": np.nan}), ValueError, r"noise\['float64'\] must be finite"),
    ("fd_errors noise unknown format", _fd(noise={"float33": 1e-8}), ValueError,
     "noise key 'float33': unknown format"),
    ("fd_errors noise for another format", _fd(noise={"float32": 1e-8}), ValueError,
     r"noise has an entry for 'float32', which is not among the formats \['float64'\]"),
    ("fd_errors noise a list", _fd(noise=[1e-8]), TypeError, "noise must be a mapping"),
    ("fd_errors references not a result", _fd(references={"float64": "ref"}), TypeError,
     r"references\['float64'\] must be an ExactResult"),
    # fd_errors: formats, schemes and the rest
    ("fd_errors formats None", _fd(formats=None), TypeError, "formats must be a format name"),
    ("fd_errors formats empty", _fd(formats=[]), ValueError, "formats must name at least one format"),
    ("fd_errors formats repeated", _fd(formats=["float64", "float64"]), ValueError,
     r"formats\[1\] repeats formats\[0\]"),
    ("fd_errors formats a number", _fd(formats=[32]), TypeError, r"formats\[0\]: format must be a str"),
    ("fd_errors schemes unknown", _fd(schemes="central3"), ValueError, "schemes: unknown scheme 'central3'"),
    ("fd_errors schemes None", _fd(schemes=None), TypeError, "schemes must be a scheme name"),
    ("fd_errors obj a function", _fd(obj=f_scalar), TypeError, "obj must be a gradlab.Objective"),
    ("fd_errors workers bool", _fd(workers=True), TypeError, "workers must be an integer"),
    ("fd_errors seed negative", _fd(seed=-1), ValueError, "seed must be an integer >= 0"),
    ("fd_errors J nan at theta", _fd(obj=LOG_NEG), ValueError,
     r"J is not finite at obj.theta0 rounded to float64 .*J = nan"),
    ("fd_errors J pole at theta", _fd(obj=POLE), ValueError, "J is not finite .*(divides by zero|pole)"),
    ("fd_gradient h per coordinate", lambda: fd_gradient(EXP, h=[1e-3, 1e-3]), ValueError,
     r"h must be one step or one per coordinate \(3\)"),
    # exact: its own messages (argument validation only)
    ("exact digits zero", lambda: gl.exact(EXP, digits=0), ValueError, "digits"),
    ("exact orders one", lambda: gl.exact(EXP, orders=(1,)), ValueError, "orders must be >= 2"),
    ("exact format unknown", lambda: gl.exact(EXP, "float8"), ValueError, "format"),
    ("exact coords out of range", lambda: gl.exact(EXP, coords=[5]), ValueError,
     r"coords must lie in \[0, 3\)"),
    # summarize
    ("summarize None", lambda: gl.summarize(None), TypeError, "df .*must be a pandas.DataFrame"),
    ("summarize no exact column", lambda: gl.summarize(_table().drop(columns="exact")), ValueError,
     r"lacks the columns \['exact'\]"),
    ("summarize repeated rows", lambda: gl.summarize(pd.concat([_table(), _table()])), ValueError,
     "repeated rows.*counted twice"),
    # noise_level and attribute_noise
    ("noise_level rel_spacing negative", lambda: gl.noise_level(EXP, rel_spacing=-1), ValueError,
     "rel_spacing must be positive"),
    ("noise_level rel_spacing nan", lambda: gl.noise_level(EXP, rel_spacing=np.nan), ValueError,
     "rel_spacing must be finite"),
    ("noise_level rel_spacing a string", lambda: gl.noise_level(EXP, rel_spacing="big"), TypeError,
     "rel_spacing must be a real number"),
    ("noise_level n_lines float", lambda: gl.noise_level(EXP, n_lines=2.5), TypeError,
     "n_lines must be an integer"),
    ("noise_level nf bool", lambda: gl.noise_level(EXP, nf=True), TypeError, "nf must be an integer"),
    ("noise_level nf too few", lambda: gl.noise_level(EXP, nf=5), ValueError, "nf must be an integer >= 7"),
    ("noise_level format None", lambda: gl.noise_level(EXP, None), TypeError, "format"),
    ("noise_level J nan at theta", lambda: gl.noise_level(LOG_NEG), ValueError,
     "J is not finite at obj.theta0"),
    ("attribute_noise obj None", lambda: gl.attribute_noise(None), TypeError,
     "obj must be a gradlab.Objective"),
    ("attribute_noise n_lines zero", lambda: gl.attribute_noise(EXP, n_lines=0), ValueError, "n_lines"),
    # optimal_step
    ("optimal_step complex theta", lambda: gl.optimal_step(EXP, THETA + 1j), TypeError,
     "theta must be real numbers, got an array of complex128"),
    ("optimal_step nan theta", lambda: gl.optimal_step(f_scalar, [0.1, np.nan]), ValueError,
     r"theta must be finite; theta\[1\] = nan"),
    ("optimal_step theta too short", lambda: gl.optimal_step(EXP, [0.1, 0.2]), ValueError,
     "theta has 2 entries; objective 'expsum' has 3 parameters"),
    ("optimal_step f None", lambda: gl.optimal_step(None, THETA), TypeError, "f must be a gradlab.Objective"),
    ("optimal_step f vector", lambda: gl.optimal_step(f_vector, THETA), ValueError,
     r"f must return a scalar J; it returned shape \(3,\)"),
    ("optimal_step nf too few", lambda: gl.optimal_step(EXP, nf=3), ValueError, "nf"),
    # check
    ("check f None", lambda: gl.check(None, grad=np.ones(3), theta=THETA), TypeError,
     "f must be a gradlab.Objective or a callable, got None"),
    ("check f vector", lambda: gl.check(f_vector, grad=np.exp, theta=THETA), ValueError,
     r"f must return a scalar J; it returned shape \(3,\)"),
    ("check f complex", lambda: gl.check(f_complex, grad=np.exp, theta=THETA), TypeError,
     "f must return a real number"),
    ("check complex theta", lambda: gl.check(EXP, theta=THETA + 0.5j), TypeError, "theta must be real"),
    ("check false_alarm above 1", lambda: gl.check(EXP, false_alarm=1.5), ValueError,
     r"false_alarm must lie in \(0, 1\)"),
    ("check false_alarm a string", lambda: gl.check(EXP, false_alarm="0.01"), TypeError,
     "false_alarm must be a real number"),
    ("check n_directions float", lambda: gl.check(EXP, mode="directional", n_directions=2.5), TypeError,
     "n_directions must be an integer"),
    ("check mode None", lambda: gl.check(EXP, mode=None), TypeError, "mode must be one of"),
    ("check grad complex", lambda: gl.check(EXP, grad=np.exp(THETA) + 1j), TypeError, "grad must be real"),
    ("check grad strings", lambda: gl.check(EXP, grad=["a", "b", "c"]), TypeError, "grad must be real"),
    ("check grad nan", lambda: gl.check(EXP, grad=np.full(3, np.nan)), ValueError,
     r"grad is not finite at theta \(coordinates \[0, 1, 2\]\)"),
    # exercise_check: its own messages
    ("exercise_check epsilon zero", lambda: gl.exercise_check(EXP, epsilon=0.0), ValueError, "epsilon"),
    ("exercise_check no gradient", lambda: gl.exercise_check(NO_GRAD), ValueError, "no gradient"),
    ("exercise_check emulated format", lambda: gl.exercise_check(EXP, "binary24"), ValueError,
     "hardware formats"),
    ("exercise_check grad wrong shape", lambda: gl.exercise_check(EXP, grad=np.array([0.1])), ValueError,
     r"grad must have shape \(3,\)"),
    ("exercise_check epsilon string", lambda: gl.exercise_check(EXP, epsilon="1e-7"), TypeError,
     "epsilon must be a real number"),
    ("exercise_check threshold nan", lambda: gl.exercise_check(EXP, threshold=np.nan), ValueError,
     "threshold must be finite"),
    # the step rules
    ("fixed h a string", lambda: fixed(f_scalar, THETA, h="1e-3"), TypeError, "h must be a real number"),
    ("fixed h bool", lambda: fixed(f_scalar, THETA, h=True), TypeError, "h must be a real number"),
    ("gmsw maxiter float", lambda: gmsw(f_scalar, THETA, maxiter=2.0), TypeError,
     "maxiter must be an integer"),
    ("gmsw noise a list", lambda: gmsw(f_scalar, THETA, noise=[1e-10]), TypeError, "noise must be a real"),
    ("more_wild noise nan", lambda: more_wild(f_scalar, THETA, noise=np.nan), ValueError,
     "noise must be finite"),
    ("ridders con one", lambda: ridders(f_scalar, THETA, con=1.0), ValueError, "con must exceed 1"),
    ("relative power above one", lambda: relative(f_scalar, THETA, power=1.5), ValueError,
     r"power must lie in \(0, 1\]"),
    ("shi complex theta", lambda: shi_xie_xuan_nocedal(f_scalar, THETA * 1j, noise=1e-10), TypeError,
     "theta must be real"),
    ("stepleman f None", lambda: RULES["stepleman_winarsky"](None, THETA), TypeError, "f must be"),
    ("dumontet_vignes seed negative", lambda: dumontet_vignes(f_scalar, THETA, seed=-3), ValueError,
     "seed must be an integer >= 0"),
    ("fdm_bound factor inf", lambda: fdm_bound(f_scalar, THETA, factor=np.inf), ValueError,
     "factor must be finite"),
    # measure_cell: its CellSpec validation
    ("measure_cell n_coords zero", lambda: gl.scaling.measure_cell({**CELL, "n_coords": 0}), ValueError,
     "'n_coords' must be an integer >= 1"),
    ("measure_cell format unknown", lambda: gl.scaling.measure_cell({**CELL, "format": "float8"}), ValueError,
     "'format'"),
    ("measure_cell complex scheme", lambda: gl.scaling.measure_cell({**CELL, "scheme": "complex"}),
     ValueError, "'scheme'"),
    ("measure_cell n_boot bool", lambda: gl.scaling.measure_cell({**CELL, "n_boot": True}), ValueError,
     "'n_boot' must be a number"),
    ("measure_cell level above 1", lambda: gl.scaling.measure_cell({**CELL, "level": 1.5}), ValueError,
     r"'level' must lie in \(0, 1\)"),
    ("measure_cell max_step nan", lambda: gl.scaling.measure_cell({**CELL, "max_step": np.nan}), ValueError,
     "'max_step' must be positive and finite"),
    ("measure_cell family unknown", lambda: gl.scaling.measure_cell({**CELL, "objective": {"family": "x"}}),
     ValueError, "'objective' must be a spec"),
]


def _quiet(call: Callable[[], Any]) -> Any:
    """The call with numpy's floating-point warnings off: overflow is the point of these cases."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return call()


def _flags_all(df: pd.DataFrame, flag: str) -> bool:
    return bool(df["flag"].str.split(",").apply(lambda fl: flag in fl).all())


def _nan_summary() -> pd.DataFrame:
    df = _table()
    df.loc[0, "exact"] = np.nan  # a reference lost by hand
    return gl.summarize(df)


FLAGS: list[tuple[str, Callable[[], Any], Callable[[Any], bool]]] = [
    # theta + h and the FD quotient overflow float64; the exact parts stay right: D_exact = g
    ("fd_errors h = 1e300 overflows", lambda: gl.fd_errors(QUAD, **{**FAST, "steps": [1e300]}),
     lambda df: _flags_all(df, "overflow") and bool((df.err_trunc == 0).all())),
    # central4's 2h overflows float32 at h = 2e38, though h itself is in range
    ("fd_errors 2h beyond float32", lambda: gl.fd_errors(QUAD, "float32", "central4", steps=[2e38],
                                                         workers=1, noise={"float32": 0.0}),
     lambda df: _flags_all(df, "overflow")),
    # the denominator fl(2 h) overflows: D_F = x / inf would be a silent 0
    ("fd_errors 2h denominator overflows", lambda: gl.fd_errors(QUAD, "float32", steps=[3e38], workers=1,
                                                                noise={"float32": 0.0}),
     lambda df: _flags_all(df, "overflow")),
    # an emulated D_F beyond float64's table
    ("fd_errors binary24 D_F beyond float64", lambda: gl.fd_errors(EXP, "binary24", steps=[1e300], coords=[0],
                                                                   workers=1, noise={"binary24": 0.0}),
     lambda df: _flags_all(df, "overflow")),
    # a stencil point lands on J's pole: the exact J there is NaN, not a ZeroDivisionError
    ("fd_errors pole on the stencil", lambda: gl.fd_errors(
        gl.Objective(lambda t, xp: xp.sum(1 / t), np.array([1e-3, 0.2])), steps=[1e-3], coords=[0],
        workers=1, noise={"float64": 0.0}),
     lambda df: _flags_all(df, "overflow")),
    ("fd_errors sqrt of a negative point", lambda: gl.fd_errors(
        gl.Objective(lambda t, xp: xp.sum(xp.sqrt(t)), np.array([1e-4, 0.2])), steps=[1e-3], coords=[0],
        workers=1, noise={"float64": 0.0}),
     lambda df: _flags_all(df, "nonfinite")),
    ("fd_errors J overflows float16", lambda: gl.fd_errors(BIG16, "float16", steps=[1e-2], workers=1,
                                                           noise={"float16": 0.0}),
     lambda df: _flags_all(df, "overflow")),
    # summarize: a NaN exact is flagged and its metrics NaN, never 0
    ("summarize nan exact", _nan_summary,
     lambda sm: sm["flags"].iloc[0] == "exact_nonfinite:1" and sm.n_flagged.iloc[0] == 1
     and bool(sm[["grad_norm", "err_norm", "rel_sum", "rel_2g", "rel_g"]].iloc[0].isna().all())
     and sm.rel_sum.iloc[1] > 0),
    # J is inf at theta in float16: every row is nonfinite and the check says where
    ("check J inf at theta", lambda: gl.check(BIG16, format="float16"),
     lambda res: (res.report.status == "nonfinite").all() and not res.decided
     and "not finite at theta itself" in str(res)),
    ("optimal_step J inf at theta", lambda: gl.optimal_step(BIG16, format="float16"),
     lambda res: bool((res.status == gl.steps.Status.NONFINITE).all()) and not np.isfinite(res.value)),
    ("noise_level J inf at theta", lambda: gl.noise_level(BIG16, "float16"),
     lambda res: res.n_nonfinite > 0 and res.to_frame().n_nonfinite.iloc[0] == res.n_nonfinite),
]


def _reuse(obj: gl.Objective, ref: gl.ExactResult) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """fd_errors with and without a given reference, and how often it computed one itself."""
    calls = []
    exact = engine.exact
    kw = dict(steps=[1e-3, 1e-2], workers=1, noise={"float64": 1e-16})
    plain = gl.fd_errors(obj, **kw)
    try:
        engine.exact = lambda *a, **k: calls.append(1) or exact(*a, **k)
        given = gl.fd_errors(obj, references={"float64": ref}, **kw)
    finally:
        engine.exact = exact
    return plain, given, len(calls)


def _same_name_reference(other: gl.Objective) -> bool:
    """Another objective's reference, both of the default name: recomputed, the table right."""
    plain, given, computed = _reuse(other, gl.exact(A_OBJ, digits=80, orders=(3,)))
    cols = ["exact", "err_total", "err_trunc", "model_trunc"]
    return computed == 1 and given[cols].equals(plain[cols])


# three objectives of the default name at one theta: C has another J; B has A's J(theta) and
# gradient, and differs only in the third derivative along the last coordinate
A_OBJ = gl.Objective(lambda t, xp: xp.sum(xp.exp(t)), THETA)
B_OBJ = gl.Objective(lambda t, xp: xp.sum(xp.exp(t)) + (t[..., 2] - xp.asarray(0.3)) ** 3, THETA)
C_OBJ = gl.Objective(lambda t, xp: xp.sum(xp.sin(t)), THETA)

ANSWERS: list[tuple[str, Callable[[], Any], Callable[[Any], bool]]] = [
    ("reference of another J, same name", lambda: C_OBJ, _same_name_reference),
    ("reference of the same J and g, same name", lambda: B_OBJ, _same_name_reference),
    ("own reference reused", lambda: _reuse(A_OBJ, gl.exact(A_OBJ, digits=80, orders=(3,))),
     lambda r: r[2] == 0 and r[1].equals(r[0])),
    ("coords repeated and unsorted", lambda: gl.fd_errors(EXP, coords=np.array([2, 0, 2]), **FAST),
     lambda df: df.coord.tolist() == [0, 2]),
    ("coords a numpy integer sample size", lambda: gl.fd_errors(EXP, coords=np.int64(2), **FAST),
     lambda df: df.coord.nunique() == 2),
    ("noise zero: a noiseless model", lambda: gl.fd_errors(EXP, **{**FAST, "noise": {"float64": 0.0}}),
     lambda df: bool((df.model_round == 0).all())),
    ("steps a scalar", lambda: gl.fd_errors(EXP, **{**FAST, "steps": 1e-3}),
     lambda df: df.h.tolist() == [1e-3] * 3),
    ("formats a Format", lambda: gl.fd_errors(EXP, gl.formats.get("float32"), steps=[1e-2], workers=1,
                                              noise={gl.formats.get("float32"): 1e-8}),
     lambda df: set(df.format) == {"float32"} and df.attrs["noise"] == {"float32": 1e-8}),
    # (fixed and relative never call f: their step is the right answer whatever f returns)
    ("every rule that calls f refuses a vector f",
     lambda: [_raises(lambda r=r: r(f_vector, THETA)) for name, r in RULES.items()
              if not name.startswith(("fixed", "relative"))],
     lambda msgs: len(msgs) == 8 and all("f must return a scalar J" in m for m in msgs)),
]


def _raises(call: Callable[[], Any]) -> str:
    """The message of the ValueError the call raises."""
    with pytest.raises(ValueError) as exc:
        call()
    return str(exc.value)


@pytest.mark.parametrize(("call", "error", "match"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_bad_input_is_a_clear_error(call: Callable[[], Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _quiet(call)


@pytest.mark.parametrize(("call", "check"), [c[1:] for c in FLAGS], ids=[c[0] for c in FLAGS])
def test_bad_input_is_flagged(call: Callable[[], Any], check: Callable[[Any], bool]) -> None:
    assert check(_quiet(call))


@pytest.mark.parametrize(("call", "check"), [c[1:] for c in ANSWERS], ids=[c[0] for c in ANSWERS])
def test_bad_input_gets_the_right_answer(call: Callable[[], Any], check: Callable[[Any], bool]) -> None:
    assert check(_quiet(call))
