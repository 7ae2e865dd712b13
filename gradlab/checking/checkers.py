"""Gradient checkers side by side: gradlab's and the peers' real ones, at their defaults.

Each checker is ``checker(obj, grad, format) -> CheckerVerdict`` judging a gradient
``grad`` (float64 values of the format's numbers, at theta0 rounded to the format)
with J evaluated in the format:

* ``gradlab`` and ``gradlab_directional``: :func:`gradlab.check`;
* ``exercise``: central differences at 1e-7 in the format, E < 2e-7;
* ``scipy_check_grad``: :func:`scipy.optimize.check_grad` (forward differences,
  epsilon 1.49e-8, on float64 points rounded into the format), with the threshold
  commonly used with it, an absolute 2-norm below 1e-5.

* ``torch_gradcheck`` when PyTorch is installed: :func:`torch.autograd.gradcheck`
  at its defaults (eps 1e-6, atol 1e-5, rtol 1e-3) on a ``torch.autograd.Function``
  whose forward evaluates J in the format's torch dtype and whose backward returns
  the gradient under test;
* ``jax_check_grads`` when JAX is installed: ``jax.test_util.check_grads`` at its
  defaults (order 1, reverse mode) on a ``custom_vjp`` function returning the
  gradient under test. JAX runs float64 only in its 64-bit mode, which gradlab does
  not switch on: there the row is "could not check".
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.optimize

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.arithmetic.objective import Objective
from gradlab.checking.adapters import _to_numpy, _to_torch, _torch_dtype
from gradlab.checking.check import check
from gradlab.checking.exercise import exercise_check

__all__ = ["CHECKERS", "CheckerVerdict", "available_checkers"]


@dataclass(frozen=True)
class CheckerVerdict:
    """passed, the checker's own statistic and its threshold, evaluations of J.

    ``undecided`` marks a check that could not be carried out: J or the FD quotient
    was not finite (the verdict is then not a pass, and not evidence of a bug).
    """

    checker: str
    passed: bool
    statistic: float
    threshold: float
    nfev: int
    undecided: bool = False


def _gradlab(obj: Objective, grad: np.ndarray, fmt: str, mode: str = "full") -> CheckerVerdict:
    res = check(obj, grad=grad, format=fmt, mode=mode)
    nonfinite = bool((res.report.status == "nonfinite").any()) or not res.decided
    with np.errstate(invalid="ignore"):
        worst = float(np.nanmax(res.report.error / res.report.bound)) if not nonfinite else np.inf
    return CheckerVerdict(f"gradlab{'' if mode == 'full' else '_directional'}", res.passed, worst,
                          1.0, res.nfev, undecided=nonfinite)


def _exercise(obj: Objective, grad: np.ndarray, fmt: str) -> CheckerVerdict:
    res = exercise_check(obj, fmt, grad=grad)
    return CheckerVerdict("exercise", res.passed, res.difference, res.threshold, 2 * obj.n_params,
                          undecided=res.n_nonfinite > 0)


def _scipy_check_grad(obj: Objective, grad: np.ndarray, fmt: str) -> CheckerVerdict:
    cf = CoordinateFunction(obj, format=fmt)
    fmt_ = fmts.get(fmt)

    def f(x: np.ndarray) -> float:
        return float(cf.evaluate(fmts.round_array(x, fmt_)[None, :])[0])

    x0 = cf.theta.astype(np.float64)
    with np.errstate(all="ignore"):
        err = float(scipy.optimize.check_grad(f, lambda x: grad, x0))
    return CheckerVerdict("scipy_check_grad", bool(err < 1e-5), err if np.isfinite(err) else np.inf,
                          1e-5, cf.nfev, undecided=not np.isfinite(err))


def _torch_gradcheck(obj: Objective, grad: np.ndarray, fmt: str) -> CheckerVerdict:
    import torch  # optional: only registered below when installed

    f = fmts.get(fmt)
    cf = CoordinateFunction(obj, format=f)
    dtype = _torch_dtype(f)
    g_t = _to_torch(fmts.round_array(grad, f), f)

    class _J(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, t: Any) -> Any:
            value = cf.evaluate(_to_numpy(t, f)[None, :])[0]
            return _to_torch(fmts.round_array(np.array([value]), f), f)[0]

        @staticmethod
        def backward(ctx: Any, grad_out: Any) -> Any:
            return grad_out * g_t

    x = _to_torch(cf.theta, f).requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gradcheck warns for every dtype but float64
        try:
            ok = bool(torch.autograd.gradcheck(_J.apply, (x,), raise_exception=False))
        except RuntimeError:
            ok = False
    assert x.dtype == dtype
    return CheckerVerdict("torch_gradcheck", ok, 0.0 if ok else 1.0, 0.5, cf.nfev)  # pass/fail only


def _jax_check_grads(obj: Objective, grad: np.ndarray, fmt: str) -> CheckerVerdict:
    import jax
    from jax.test_util import check_grads

    f = fmts.get(fmt)
    cf = CoordinateFunction(obj, format=f)
    if f.name == "float64" and not jax.config.read("jax_enable_x64"):
        return CheckerVerdict("jax_check_grads", False, np.inf, 0.5, 0, undecided=True)
    assert f.dtype is not None
    dtype = f.dtype
    g = jax.numpy.asarray(fmts.round_array(grad, f))

    def value(t: Any) -> Any:
        return np.asarray(cf.evaluate(np.asarray(t, dtype=dtype)[None, :])[0], dtype=dtype)

    @jax.custom_vjp
    def j(t: Any) -> Any:
        return jax.pure_callback(value, jax.ShapeDtypeStruct((), dtype), t)

    j.defvjp(lambda t: (j(t), None), lambda _, go: (go * g,))
    try:
        check_grads(j, (jax.numpy.asarray(cf.theta),), order=1, modes=("rev",))
        ok = True
    except AssertionError:
        ok = False
    return CheckerVerdict("jax_check_grads", ok, 0.0 if ok else 1.0, 0.5, cf.nfev)


CHECKERS: dict[str, Callable[[Objective, np.ndarray, str], CheckerVerdict]] = {
    "gradlab": _gradlab,
    "gradlab_directional": lambda o, g, f: _gradlab(o, g, f, "directional"),
    "exercise": _exercise,
    "scipy_check_grad": _scipy_check_grad,
}


# the optional frameworks are registered when installed, without importing them here: JAX
# (and PyTorch) start threads at import, and a process that forks later (the sweeps) would
# inherit them
if importlib.util.find_spec("torch") is not None:
    CHECKERS["torch_gradcheck"] = _torch_gradcheck
if importlib.util.find_spec("jax") is not None:
    CHECKERS["jax_check_grads"] = _jax_check_grads


def available_checkers() -> list[str]:
    """The checkers that can run here."""
    return list(CHECKERS)
