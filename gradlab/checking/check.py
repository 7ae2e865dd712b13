"""A gradient checker whose step and tolerance come from the error model.

For each coordinate (``mode="full"``) or random direction (``mode="directional"``):

* the step is :func:`gradlab.optimal_step`'s, from J's noise level (ECnoise) and
  the estimated truncation derivative, in the format being checked;
* the tolerance is a quantile of the predicted error: rounding of the FD quotient
  (sigma sqrt(sum c_j**2) / h), plus the rounding of the gradient being checked, measured
  as ``g - g_64`` where the same gradient can be computed in float64 on the format's theta
  and data (a bug present in both cancels, so only rounding is left), else the spread of
  its components over points one ulp from theta, with Student's quantile, plus twice
  the truncation, the larger of its model and its observation (the FD quotient at h
  against h/2, Richardson). The quantile z makes the chance that a correct
  gradient fails anywhere at most ``false_alarm`` (Bonferroni over the rows,
  under the Gaussian model);
* a row whose stencil crosses a non-differentiable point (ReLU, abs, max) is a
  kink: reported, and not counted as a failure unless ``kinks="fail"``. For a
  gradlab Objective kinks are found exactly from the branches the format's
  evaluation took; for a plain callable, by the FD quotient at h, h/2 and h/4
  failing to converge at the smooth rate 2**q while both differences stand above
  the rounding noise.

Reference format. In a narrow format FD cannot resolve a 10% gradient error: its best
error is of order u**(q/(q+1)), 2.5% for bfloat16's central difference even on a smooth J.
So by default (``reference_format="auto"``) a format narrower than float32 checks its
gradient, computed in the format, against FD evaluated in float32 on the same point and
(for an Objective) the same data and constants, rounded to the format first
(``policy("float32", data=fmt)``): the rows measure the gradient's own error, not FD's.
The tolerance then adds the gradient's rounding in its format, measured as ``g - g_64``
(the same gradient in float64 on the same theta and data), to the FD error in the
reference format. "auto" widens only such a measurable gradient (an Objective's grad, a
dtype-generic callable): for an array, the rounding is only estimated, too roughly for
float32's small FD error, and FD stays in the format. A plain callable is evaluated on
float32 arrays only if it returns float32 there (dtype-generic); otherwise in the format.

Where J is noiseless to ECnoise, sigma is J's final rounding,
:func:`gradlab.analysis.noise.rounding_floor` (positive where J = 0). The points and
quotients of the rows are :mod:`gradlab.checking.rows`'; :func:`check` runs validation,
the rows (per coordinate or per direction), the retry of non-finite rows, the bounds,
the kinks and the verdict in turn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import erfinv
from scipy.stats import t as student_t

from gradlab.analysis.noise import LINE_SAFETY, ecnoise, rounding_floor
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.arithmetic.objective import Objective, call_grad
from gradlab.arithmetic.stencil import stencil
from gradlab.checking.inputs import Problem, is_structured, masked_note
from gradlab.checking.rows import (
    branch_kinks,
    directional_derivative,
    directional_points,
    directional_spacing,
    fd_rows,
    gradient_noise,
)
from gradlab.steps.optimal import OptimalStep, line_noise, optimal_step

__all__ = ["CheckResult", "check"]


@dataclass(frozen=True)
class CheckResult:
    """The verdict of :func:`check` and everything behind it.

    Attributes
    ----------
    passed : bool
        No row failed (kinks excluded unless ``kinks="fail"``), and the check was
        decided.
    decided : bool
        At least one row is evidence: it failed, or it passed with a tolerance below
        |expected|, or exact zeros were confirmed and no nonzero component was left
        unresolved. Otherwise nothing was checked: not passed, but no evidence of a bug
        either.
    mode, format, scheme : str
        What was checked, in which format, with which difference scheme.
    report : pandas.DataFrame
        One row per coordinate (``coord``) or direction (``direction``): approx,
        expected, error, bound, ok, kink, h, status: ok, fail, kink, nonfinite (J
        was not finite on the stencil even after shrinking the step four times),
        zero (the gradient's component is exactly 0 and FD confirms it within the
        tolerance: an absolute check, to the tolerance's size) or unresolved (the
        tolerance exceeds |expected|: the format cannot resolve this component, so
        passing it is no evidence).
    h : ndarray
        The step(s) used.
    step_reason : str
        Why these steps.
    noise : float
        Noise level of J in the format: ECnoise's, or where it detects none, J's final
        rounding (:func:`gradlab.analysis.noise.rounding_floor`).
    grad_noise : ndarray
        The checked gradient's own rounding per component: ``|g - g_64|``, measured, where
        the gradient can be evaluated in float64 on the format's theta and data (an
        Objective's grad, a dtype-generic callable; formats up to float32), else its
        spread over points one ulp from theta.
    kinks : list of int
        Rows whose stencil crosses a kink.
    nfev : int
        Evaluations of J (step selection, noise estimate and the check itself; the
        evaluation that records an Objective's branches for the kink test is not counted).
    ngev : int
        Evaluations of the gradient being checked.
    z : float
        The quantile the bounds use.
    false_alarm : float
        The probability, under the model, that a correct gradient fails.
    power : str
        For the directional mode, the error it detects with probability 0.95.
    upcasts : int
        Calls of a plain callable that returned another dtype than the format's.
    reference_format : str
        The format the FD rows were evaluated in (also the report's ``format`` column);
        ``format`` itself, or a wider one (see the module docstring).
    info : dict
        Further details: ``J_theta``, J at theta in the format (when it is not finite,
        every row is ``nonfinite`` and the check says so).
    """

    passed: bool
    report: pd.DataFrame
    mode: str
    decided: bool
    format: str
    scheme: str
    h: np.ndarray
    step_reason: str
    noise: float
    grad_noise: np.ndarray
    kinks: list[int]
    nfev: int
    ngev: int
    z: float
    false_alarm: float
    power: str = ""
    upcasts: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    reference_format: str = ""

    def __str__(self) -> str:
        counts = self.report.status.value_counts().to_dict()
        head = "passed" if self.passed else "FAILED"
        parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        j_theta = self.info.get("J_theta", 0.0)
        if not np.isfinite(j_theta):
            note = f"; J is not finite at theta itself in this format (J = {j_theta})"
        else:
            note = "; J is not finite on some stencils in this format" if "nonfinite" in counts else ""
        if not self.decided:
            head, note = "UNDECIDED", note + "; no row resolved in this format: nothing checked"
        elif self.passed and not (self.report.status == "ok").any():
            note += "; every checked component is an exact zero, confirmed by FD"
        where = self.format if self.reference_format in ("", self.format) else (
            f"{self.format} (FD in {self.reference_format})")
        return (f"gradient check in {where} ({self.scheme}, {self.mode}): {head} "
                f"({parts}){note}{masked_note(self)}; {self.nfev} evaluations of J, "
                f"{self.ngev} of the gradient")


@dataclass(frozen=True)
class _Rows:
    """The rows of a check before the verdict: one FD quotient per coordinate or direction.

    ``expected`` is the checked gradient along each row's realised displacement, ``trunc``
    the modelled truncation ``|C h**q d|`` and ``g_sigma`` the checked gradient's noise
    along the row; ``kind`` names the report's row column.
    """

    kind: str
    h: np.ndarray
    approx: np.ndarray
    expected: np.ndarray
    trunc: np.ndarray
    g_sigma: np.ndarray
    reason: str
    dirs: np.ndarray | None = None


def _validated(format: Any, scheme: Any, mode: Any, false_alarm: Any, kinks: Any,
               n_directions: Any, seed: Any) -> tuple[fmts.Format, schs.Scheme, float, int, int]:
    """The format, the scheme, false_alarm, n_directions and seed, once every argument of
    :func:`check` but f, grad and theta is known to be valid."""
    fmt = validation.one_format("format", format)
    sch = validation.one_scheme("scheme", scheme)
    if sch.complex_step:
        raise ValueError("scheme: check uses real difference schemes (forward, central, ...)")
    validation.choice("mode", mode, ("full", "directional"))
    validation.choice("kinks", kinks, ("ignore", "fail"))
    return (fmt, sch, validation.in_range("false_alarm", false_alarm, 0, 1),
            validation.integer("n_directions", n_directions, 1), validation.integer("seed", seed, 0))


def _reference(reference_format: Any, fmt: fmts.Format, f: Any) -> fmts.Format:
    """The format the FD rows are evaluated in (see the module docstring)."""
    if reference_format is None:
        return fmt
    if isinstance(reference_format, str) and reference_format == "auto":
        if fmt.storage.p >= 24:
            return fmt
        ref = fmts.get("float32")
    else:
        ref = validation.one_format("reference_format", reference_format)
        if ref == fmt:
            return fmt
        st = fmt.storage
        if (isinstance(ref, fmts.Policy) or ref.dtype is None or ref.p < st.p
                or (ref.emax or 0) < (st.emax or 0) or (ref.emin or 0) > (st.emin or 0)):
            raise ValueError(f"reference_format {ref.name!r} must be a plain hardware format at "
                             f"least as wide as format {fmt.name!r}, so that it holds theta")
    if not isinstance(f, Objective):
        return ref
    # the same data and constants as the checked format's evaluation, wider arithmetic
    return fmts.policy(ref, data=fmt.data)


def _fd_function(f: Any, cf: CoordinateFunction, ref: fmts.Format) -> CoordinateFunction:
    """J along coordinates in the reference format, at the checked format's theta. The format
    itself where J is not finite at theta in it (the check reports that), or where a plain
    callable does not return the reference's dtype (it is not dtype-generic)."""
    if ref == cf.fmt or not np.isfinite(cf.center()):
        return cf  # J not finite at theta in the format itself: reported as such
    cf_ref = CoordinateFunction(f, cf.theta.astype(np.float64), ref)
    if not isinstance(f, Objective):
        cf_ref.center()
        if cf_ref.upcasts:
            return cf
    return cf_ref


def _gradient(grad: Any, f: Any, theta_f: np.ndarray,
              fmt: fmts.Format) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray]:
    """The gradient to check as a function of a point of the format, and its value at theta
    (float64), checked for shape and finiteness."""
    gfun: Callable[[np.ndarray], np.ndarray]
    if grad is None:
        if not (isinstance(f, Objective) and f.grad is not None):
            raise ValueError("grad is required (a callable or an array), or an Objective with grad")
        ns, obj = namespace_for(fmt), f
        gfun = lambda x: call_grad(obj, x, ns)  # noqa: E731
    elif callable(grad):
        gfun = lambda x: np.asarray(grad(x))  # noqa: E731
    else:
        arr = validation.real_array("grad", grad)
        if arr.shape != theta_f.shape:
            raise ValueError(f"grad has shape {arr.shape}; theta has shape {theta_f.shape}")
        gfun = lambda x: arr  # noqa: E731
    at_theta = gfun(theta_f)
    if at_theta.shape != theta_f.shape:
        raise ValueError(f"grad returned shape {at_theta.shape}; theta has shape {theta_f.shape}")
    g64 = validation.real_array("grad at theta", at_theta)
    if not np.all(np.isfinite(g64)):
        raise ValueError(f"grad is not finite at theta (coordinates "
                         f"{np.flatnonzero(~np.isfinite(g64))[:5].tolist()})")
    return gfun, g64


@dataclass(frozen=True)
class _GradError:
    """The checked gradient's own rounding error in its format.

    ``measured``: ``delta`` is the error itself, g - g_wide, with g_wide the same gradient
    computed in float64 on the format's theta and data; else ``size`` is a spread over points
    one ulp away (Student's quantile with ``dof`` degrees of freedom applies).
    """

    size: np.ndarray
    measured: bool
    dof: int
    n_evals: int
    delta: np.ndarray | None = None


def _wide_gradient(grad: Any, f: Any, theta_f: np.ndarray, fmt: fmts.Format) -> np.ndarray | None:
    """The gradient under test computed in a much wider format on the format's theta and
    data, when that is possible: an Objective's own grad in float64, or a callable that
    keeps its input's dtype (dtype-generic) in float64, or in float32 for formats of at
    most 12 bits where it cannot run in float64 (JAX without its x64 mode); None for an
    array, a format wider than float32 or any other callable."""
    if fmt.storage.p > 24:
        return None
    with np.errstate(all="ignore"):
        if grad is None:
            try:
                ns = namespace_for(fmts.policy("float64", data=fmt.data))
                return _usable(call_grad(f, theta_f.astype(np.float64), ns), theta_f, np.float64)
            except Exception:  # a gradient that cannot run in float64 keeps the spread estimate
                return None
        if not callable(grad):
            return None
        for wide in (np.float64, np.float32) if fmt.storage.p <= 12 else (np.float64,):
            try:
                out = _usable(np.asarray(grad(theta_f.astype(wide))), theta_f, wide)
            except Exception:  # e.g. JAX refusing float64 without x64: try the next
                continue
            if out is not None:
                return out
    return None


def _usable(out: Any, theta_f: np.ndarray, dtype: Any) -> np.ndarray | None:
    """``out`` as float64 when it kept the wide dtype, has theta's shape and is finite."""
    out = np.asarray(out)
    if out.dtype != dtype or out.shape != theta_f.shape or not np.all(np.isfinite(out)):
        return None
    return out.astype(np.float64)


def _gradient_error(grad: Any, f: Any, gfun: Callable[[np.ndarray], np.ndarray],
                    theta_f: np.ndarray, fmt: fmts.Format, g: np.ndarray) -> _GradError:
    """The checked gradient's rounding: measured against a wide format (float64, or float32
    for formats of at most 12 bits) where it can be evaluated there, else its spread over
    points one ulp from theta (floored at u max(|g_i|, rms g),
    where cancellation made g_i small against the terms it sums)."""
    wide = _wide_gradient(grad, f, theta_f, fmt)
    if wide is not None:
        delta = g - wide
        return _GradError(np.abs(delta), True, 0, 1, delta)
    spread, n = gradient_noise(gfun, theta_f, fmt)
    floor = fmt.u * np.maximum(np.abs(g), math.sqrt(float(np.mean(g**2))))
    return _GradError(np.maximum(spread, floor), False, n - 1, n)


def _full_rows(cf: CoordinateFunction, sch: schs.Scheme, pred: OptimalStep, sigma: float,
               g_err: _GradError, grad: np.ndarray) -> _Rows:
    """One row per coordinate, at :func:`gradlab.optimal_step`'s per-coordinate steps."""
    spacing = np.abs(np.spacing(cf.theta)).astype(np.float64)  # the format's ulp at theta
    h = np.maximum(pred.h, 4 * spacing)  # a step below the spacing would not move theta_i
    approx, expected = fd_rows(cf, sch, h, None, grad)
    trunc = np.abs(float(sch.leading) * h**sch.order * pred.derivative)
    reason = ("per-coordinate steps minimising the modelled error: ECnoise sigma = "
              f"{sigma:.3g}, pilot (q+1)-th derivatives; coordinates without measurable "
              "truncation use the global step")
    return _Rows("coord", h, approx, expected, trunc, g_err.size, reason)


def _directional_rows(cf: CoordinateFunction, sch: schs.Scheme, sigma: float,
                      g_err: _GradError, grad: np.ndarray, n_directions: int,
                      seed: int) -> _Rows:
    """One row per random Rademacher direction, each at the step minimising its modelled error
    from the (q+1)-th derivative along it. Nothing here is per coordinate: the cost is
    O(n_directions) evaluations of J, whatever N."""
    dirs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_directions, cf.n))
    c, q = float(sch.leading), sch.order
    d_v = directional_derivative(cf, dirs, q + 1, sigma)
    with np.errstate(divide="ignore"):
        h = (sigma * sch.weight_norm / (math.sqrt(q) * np.abs(c * d_v))) ** (1 / (q + 1))
    # a near-zero derivative along v (cancellation) leaves higher terms: stay within twice
    # the median step of the other directions (the pilot's spacing where none is finite)
    valid = np.isfinite(h) & (h > 0)
    typical = float(np.median(h[valid])) if valid.any() else directional_spacing(cf, q + 1, sigma)
    h = np.where(valid, np.minimum(h, 2 * typical), typical)
    approx, expected = fd_rows(cf, sch, h, dirs, grad)
    trunc = np.abs(c * h**q * d_v)
    # v . e: the measured error along v, or N components' independent spreads (v_n = +-1)
    g_sigma = (np.abs(dirs @ g_err.delta) if g_err.delta is not None
               else np.full(n_directions, float(np.sqrt(np.sum(g_err.size**2)))))
    reason = ("per-direction steps minimising the modelled error, from ECnoise sigma = "
              f"{sigma:.3g} and the (q+1)-th derivative along each direction (pilot stencil)")
    return _Rows("direction", h, approx, expected, trunc, g_sigma, reason, dirs)


def _shrink_nonfinite(cf: CoordinateFunction, sch: schs.Scheme, rows: _Rows,
                      grad: np.ndarray) -> _Rows:
    """The rows where J is not finite on the stencil, retried at steps shrunk by 4, up to 4 times."""
    h, approx, expected, trunc = rows.h, rows.approx, rows.expected, rows.trunc
    for _ in range(4):
        bad = ~np.isfinite(approx)
        if not bad.any():
            break
        h = np.where(bad, h / 4, h)
        retry, retry_expected = fd_rows(cf, sch, h, rows.dirs, grad)
        approx = np.where(bad, retry, approx)
        expected = np.where(bad, retry_expected, expected)
        trunc = np.where(bad, trunc / 4**sch.order, trunc)
    return replace(rows, h=h, approx=approx, expected=expected, trunc=trunc)


def _bounds(cf: CoordinateFunction, sch: schs.Scheme, rows: _Rows, sigma: float,
            false_alarm: float, grad: np.ndarray, g_err: _GradError) -> tuple[float, np.ndarray, np.ndarray]:
    """The quantile z, every row's tolerance, and the quotient at h/2 the tolerance uses.

    The tolerance combines the rounding of the quotient, z sigma ||c|| / h, with the checked
    gradient's own rounding: added as it is where it was measured (it is the error itself),
    else as t g_sigma, independent of the quotient's (t is Student's quantile for a spread
    estimated with ``g_err.dof`` degrees of freedom). Then twice the truncation, the larger
    of its model and its observation ``|D(h) - D(h/2)| / (1 - 2**-q)`` (Richardson). The level
    is Bonferroni's: a correct gradient fails some row with probability ``false_alarm``.
    """
    q = sch.order
    level = 1 - false_alarm / (2 * len(rows.h))
    z = NormalDist().inv_cdf(level)
    half, _ = fd_rows(cf, sch, rows.h / 2, rows.dirs, grad)
    observed = np.abs(rows.approx - half) / (1 - 2.0**-q)
    observed = np.where(np.isfinite(observed), observed, 0.0)
    fd_rounding = z * sigma * sch.weight_norm / rows.h
    if g_err.measured:
        rounding = fd_rounding + rows.g_sigma
    else:
        rounding = np.hypot(fd_rounding, float(student_t.ppf(level, g_err.dof)) * rows.g_sigma)
    return z, rounding + 2 * np.maximum(rows.trunc, observed), half


def _local_noise(cf: CoordinateFunction, sch: schs.Scheme, rows: _Rows, bound: np.ndarray,
                 z: float, sigma: float, kink: np.ndarray) -> np.ndarray:
    """The tolerance of rows that would fail, with J's noise measured along the row itself.

    J's noise level comes from ECnoise on random lines through theta, but one coordinate's
    (or direction's) noise can be larger: terms that only it moves may round worse than the
    average. For each row whose error exceeds its tolerance (a kink's excepted: ECnoise
    would take the corner for noise), ECnoise runs on nine points
    ``theta + k h/2 d`` (k = -4..4, d the row's axis or direction; 9 evaluations); where it
    detects a noise above sigma, the rounding part of that row's tolerance grows with it.
    """
    with np.errstate(invalid="ignore"):
        suspect = (np.isfinite(rows.approx) & ~(np.abs(rows.approx - rows.expected) <= bound)
                   & ~kink)
    out = bound.copy()
    ks = np.arange(-4, 5)
    for r in np.flatnonzero(suspect):
        step = rows.h[r] / 2
        if rows.dirs is None:
            pts = stencil(cf.theta[r], np.array([step]), tuple(int(k) for k in ks), cf.fmt).points
            block = cf.points(np.full(ks.size, r), pts.ravel())
        else:
            block = directional_points(cf.theta, ks * step, rows.dirs[r], cf.fmt)
        local, status, _ = ecnoise(cf.evaluate(block))
        if status == 1 and LINE_SAFETY * local > sigma:
            out[r] += z * (LINE_SAFETY * local - sigma) * sch.weight_norm / rows.h[r]
    return out


def _kink_rows(f: Any, cf: CoordinateFunction, sch: schs.Scheme, rows: _Rows, half: np.ndarray,
               z: float, sigma: float, grad: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """The rows whose stencil crosses a kink.

    For an Objective, exactly: a stencil point took another branch than theta. For a plain
    callable, either the quotient does not converge at the smooth rate, ``D(h) - D(h/2) ~ 2**q
    (D(h/2) - D(h/4))``, while both differences stand above the rounding noise; or a row that
    would fail sits on a corner (:func:`_one_sided_kinks`).
    """
    if isinstance(f, Objective):
        return branch_kinks(f, cf.theta, cf.fmt, sch, rows.h, rows.dirs)
    quarter, _ = fd_rows(cf, sch, rows.h / 4, rows.dirs, grad)
    d1, d2 = np.abs(rows.approx - half), np.abs(half - quarter)
    noise = z * sigma * sch.weight_norm / rows.h
    kink = np.asarray((d1 > noise * math.sqrt(5)) & (d2 > noise * math.sqrt(20))
                      & (d1 < 2.0 ** (sch.order - 1) * d2))
    with np.errstate(invalid="ignore"):
        suspect = ~kink & np.isfinite(rows.approx) & ~(np.abs(rows.approx - rows.expected) <= bound)
    return kink | _one_sided_kinks(cf, rows, grad, bound, z, sigma, suspect)


def _one_sided_kinks(cf: CoordinateFunction, rows: _Rows, grad: np.ndarray, bound: np.ndarray,
                     z: float, sigma: float, suspect: np.ndarray) -> np.ndarray:
    """Rows of a plain callable at a corner: their one-sided quotients differ by a jump that
    does not shrink with the step, and the checked derivative lies between them.

    For a smooth J, ``D+(h) - D-(h) ~ h J''`` halves with h; at a kink at or beside theta
    (relu6, hardsigmoid, clamp, abs at their corners) it stays the jump in slope, which the
    central quotient averages away, and no step can resolve. A one-sided derivative (or any
    value between them) is then as right as the other: a kink, not a failure. A value outside
    them is still a failure. Only ``suspect`` rows, those that would fail, cost the four
    one-sided passes.
    """
    out = np.zeros(len(rows.h), dtype=bool)
    if not suspect.any():
        return out
    fwd, bwd = schs.get("forward"), schs.get("backward")
    with np.errstate(invalid="ignore", over="ignore"):
        jump, lo, hi = [], None, None
        for h in (rows.h, rows.h / 2):
            plus, _ = fd_rows(cf, fwd, h, rows.dirs, grad)
            minus, _ = fd_rows(cf, bwd, h, rows.dirs, grad)
            jump.append(np.abs(plus - minus))
            lo, hi = np.minimum(plus, minus), np.maximum(plus, minus)
        noise = z * sigma * 2.0 / (rows.h / 2)  # of the difference of two one-sided quotients
        corner = (jump[1] > 2 * noise) & (jump[1] > 0.75 * jump[0])
        between = (rows.expected >= lo - bound) & (rows.expected <= hi + bound)
    return suspect & corner & between


def _verdict(rows: _Rows, bound: np.ndarray, kink: np.ndarray,
             kinks: str) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """The report, which rows are ok, and whether any row is evidence either way."""
    error = np.abs(rows.approx - rows.expected)
    finite = np.isfinite(rows.approx)
    ok = (error <= bound) & finite
    ok = ok | (kink & finite) if kinks == "ignore" else ok & ~kink
    # a row whose tolerance exceeds the gradient's own size could not see even a 100% error;
    # but an exact zero that FD confirms within the tolerance is evidence, absolute in size
    zero = finite & ~kink & ok & (rows.expected == 0)
    unresolved = finite & ~kink & ok & ~zero & (bound >= np.abs(rows.expected))
    status = np.where(~finite, "nonfinite", np.where(kink, "kink", np.where(
        ~ok, "fail", np.where(zero, "zero", np.where(unresolved, "unresolved", "ok")))))
    report = pd.DataFrame({rows.kind: np.arange(len(rows.h)), "approx": rows.approx,
                           "expected": rows.expected, "error": error, "bound": bound, "ok": ok,
                           "kink": kink, "h": rows.h, "status": status})
    # evidence either way: a failed row, a row that passed with a resolving tolerance, or
    # confirmed zeros when no nonzero component was left unresolved (zeros alone must not pass
    # a gradient whose nonzero components nothing could see: a dead unit stays 0 under most bugs)
    decided = bool((~ok & finite).any() or (status == "ok").any()
                   or ((status == "zero").any() and not (status == "unresolved").any()))
    return report, ok, decided


def _power(bound: np.ndarray, n_directions: int) -> str:
    """The gradient error the directional check detects with probability 0.95."""
    miss = 0.05 ** (1 / n_directions)
    e = float(np.median(bound)) / (math.sqrt(2) * float(erfinv(miss)))
    return (f"detects with probability 0.95 a gradient error e with ||e|| >= {e:.3g} "
            f"(v.e ~ N(0, ||e||^2) for Rademacher v, {n_directions} directions)")


def check(
    f: Objective | Callable[[np.ndarray], Any],
    grad: Any = None,
    theta: Any = None,
    format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central",
    mode: str = "full",
    *,
    n_directions: int = 8,
    false_alarm: float = 1e-3,
    kinks: str = "ignore",
    seed: int = 0,
    reference_format: fmts.Format | str | None = "auto",
) -> CheckResult:
    """Check a gradient against finite differences, with step and tolerance from the model.

    Parameters
    ----------
    f : Objective or callable
        J. A plain callable takes a 1-D array of the format's dtype and should
        return a scalar of that dtype (if it upcasts, the check says so in
        ``upcasts`` and its noise estimate reflects the wider format).
    grad : callable, array or None
        The gradient to check: ``grad(x)`` on a point of the format, or an array
        at theta. None uses the Objective's own ``grad`` evaluated in the format.
    theta : array_like, optional
        The point (default: the Objective's theta0); rounded to the format.
    format, scheme : str
    mode : {"full", "directional"}
        Every coordinate (about 2N evaluations per quotient, at h and at h/2, plus
        the step selection: about 4N + the step's), or
        ``n_directions`` random Rademacher directions (O(k) evaluations).
    n_directions : int
        The number of directions of ``mode="directional"``.
    false_alarm : float
        Probability, under the model, that a correct gradient fails.
    kinks : {"ignore", "fail"}
        Whether rows whose stencil crosses a kink count as failures.
    seed : int
        Seeds the ECnoise sample and the directions.
    reference_format : "auto", str, Format or None
        Where the FD rows are evaluated: ``"auto"`` (float32 for formats narrower than
        float32 when the gradient's own rounding can be measured in float64, else the
        format; module docstring), a plain hardware format at least as wide as ``format``,
        or None for the format itself.

    Returns
    -------
    CheckResult

    Examples
    --------
    >>> import gradlab as gl
    >>> res = gl.check(gl.objectives.seed_net(), format="float32")
    >>> res.passed, len(res.report)
    (True, 47)
    """
    if not isinstance(f, Objective) and is_structured(theta):
        if not callable(f):
            raise TypeError(f"f must be a gradlab.Objective or a callable, got {type(f).__name__}")
        problem = Problem(f, grad, theta)
        flat = check(problem.f, problem.grad, problem.theta, format, scheme, mode,
                     n_directions=n_directions, false_alarm=false_alarm, kinks=kinks, seed=seed,
                     reference_format=reference_format)
        return problem.relabel(flat)
    fmt, sch, false_alarm, n_directions, seed = _validated(format, scheme, mode, false_alarm, kinks,
                                                           n_directions, seed)
    f = validation.function("f", f)
    theta = validation.point("theta", theta, f)
    cf = CoordinateFunction(f, theta, fmt)
    gfun, g = _gradient(grad, f, cf.theta, fmt)
    g_err = _gradient_error(grad, f, gfun, cf.theta, fmt, g)
    # "auto" widens only a gradient whose own rounding was measured: the spread estimate
    # (an array, a callable fixed to its dtype) is too rough against float32's small FD error
    auto = isinstance(reference_format, str) and reference_format == "auto"
    ref = fmt if auto and not g_err.measured else _reference(reference_format, fmt, f)
    fd = _fd_function(f, cf, ref)
    if mode == "full":
        pred = optimal_step(f, cf.theta.astype(np.float64) if fd is not cf else theta, fd.fmt, sch,
                            seed=seed)
        pred_nfev, j_theta = pred.nfev, pred.value  # optimal_step counts its own evaluations
        sigma = pred.sigma if np.isfinite(pred.sigma) else rounding_floor(fd.fmt, fd.center())
        rows = _full_rows(fd, sch, pred, sigma, g_err, g)
    else:  # J's noise along random lines only (in fd's count): a pilot per coordinate is O(N)
        pred_nfev, raw_sigma, j_theta = 0, line_noise(fd, 2, 9, seed), fd.center()
        sigma = raw_sigma if np.isfinite(raw_sigma) else rounding_floor(fd.fmt, j_theta)
        rows = _directional_rows(fd, sch, sigma, g_err, g, n_directions, seed)
    rows = _shrink_nonfinite(fd, sch, rows, g)
    z, bound, half = _bounds(fd, sch, rows, sigma, false_alarm, g, g_err)
    kink = _kink_rows(f, fd, sch, rows, half, z, sigma, g, bound)
    bound = _local_noise(fd, sch, rows, bound, z, sigma, kink)
    report, ok, decided = _verdict(rows, bound, kink, kinks)
    report.insert(1, "format", fd.fmt.name)
    return CheckResult(
        passed=bool(ok.all()) and decided, decided=decided, report=report, mode=mode,
        format=fmt.name, scheme=sch.name, h=rows.h, step_reason=rows.reason, noise=float(sigma),
        grad_noise=g_err.size, kinks=np.flatnonzero(kink).tolist(),
        nfev=cf.nfev + (fd.nfev if fd is not cf else 0) + pred_nfev,
        ngev=1 + g_err.n_evals, z=float(z), false_alarm=false_alarm,
        power=_power(bound, n_directions) if mode == "directional" else "",
        upcasts=cf.upcasts + (fd.upcasts if fd is not cf else 0),
        info={"J_theta": j_theta}, reference_format=fd.fmt.name,
    )
