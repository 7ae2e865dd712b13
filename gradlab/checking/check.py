"""A gradient checker whose step and tolerance come from the error model.

For each coordinate (``mode="full"``) or random direction (``mode="directional"``):

* the step is :func:`gradlab.optimal_step`'s, from J's noise level (ECnoise) and
  the estimated truncation derivative, in the format being checked;
* the tolerance is a quantile of the predicted error: rounding of the FD quotient
  (sigma sqrt(sum c_j**2) / h), rounding of the gradient being checked (ECnoise on
  its components along a line), both taken as independent Gaussians, plus twice
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
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import erfinv

from gradlab.analysis.noise import ecnoise
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.arithmetic.objective import Objective
from gradlab.steps.optimal import optimal_step

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
        |expected|. When every row is a kink, non-finite or unresolved, nothing was
        checked: not passed, but no evidence of a bug either.
    report : pandas.DataFrame
        One row per coordinate (``coord``) or direction (``direction``): approx,
        expected, error, bound, ok, kink, h, status: ok, fail, kink, nonfinite (J
        was not finite on the stencil even after shrinking the step four times) or
        unresolved (the tolerance exceeds |expected|: the format cannot resolve this
        component, so passing it is no evidence).
    h : ndarray
        The step(s) used.
    step_reason : str
        Why these steps.
    noise : float
        Noise level of J in the format (ECnoise).
    grad_noise : ndarray
        Noise level of each gradient component (ECnoise along a line).
    kinks : list of int
        Rows whose stencil crosses a kink.
    nfev : int
        Evaluations of J (step selection, noise estimate and the check itself).
    ngev : int
        Evaluations of the gradient being checked.
    z : float
        The quantile the bounds use.
    power : str
        For the directional mode, the error it detects with probability 0.95.
    upcasts : int
        Calls of a plain callable that returned another dtype than the format's.
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

    def __str__(self) -> str:
        counts = self.report.status.value_counts().to_dict()
        head = "passed" if self.passed else "FAILED"
        parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        note = ("; J is not finite on some stencils in this format" if "nonfinite" in counts
                else "")
        if not self.decided:
            head, note = "UNDECIDED", note + "; no row resolved in this format: nothing checked"
        return (f"gradient check in {self.format} ({self.scheme}, {self.mode}): {head} "
                f"({parts}){note}; {self.nfev} evaluations of J, {self.ngev} of the gradient")


def _grad_values(
    grad: Any, theta_f: np.ndarray, f: Any, fmt: fmts.Format
) -> Callable[[np.ndarray], np.ndarray]:
    """The gradient to check as a function of a point in the format."""
    if grad is None:
        if isinstance(f, Objective) and f.grad is not None:
            ns = namespace_for(fmt)
            return lambda x: np.asarray(f.grad(ns.from_values(x), ns))  # type: ignore[misc]
        raise ValueError("grad is required (a callable or an array), or an Objective with grad")
    if callable(grad):
        return lambda x: np.asarray(grad(x))
    arr = np.asarray(grad)
    if arr.shape != theta_f.shape:
        raise ValueError(f"grad has shape {arr.shape}; theta has shape {theta_f.shape}")
    return lambda x: arr


def _grad_noise(gfun: Callable[[np.ndarray], np.ndarray], theta_f: np.ndarray,
                fmt: fmts.Format, nf: int = 9) -> tuple[np.ndarray, int]:
    """ECnoise of each component of the gradient along one random line (0 where undetected;
    the caller floors it at one rounding of the component)."""
    rng = np.random.default_rng(1)
    d = rng.choice([-1.0, 1.0], size=theta_f.size) * np.maximum(np.abs(theta_f.astype(float)), 1.0)
    ts = (np.arange(nf) - nf // 2) * math.sqrt(fmt.u)
    pts = fmts.round_array(theta_f.astype(np.float64)[None, :] + ts[:, None] * d[None, :], fmt)
    vals = np.stack([np.asarray(gfun(p), dtype=np.float64) for p in pts])  # (nf, N)
    out = np.zeros(theta_f.size)
    for i in range(theta_f.size):
        s, status, _ = ecnoise(vals[:, i])
        out[i] = s if status == 1 else 0.0
    return out, nf


def _kinks_objective(obj: Objective, theta_f: np.ndarray, fmt: fmts.Format,
                     scheme: schs.Scheme, h: np.ndarray, directions: np.ndarray | None) -> np.ndarray:
    """Rows whose stencil points took other branches than theta (exact, from xp's records)."""
    n_rows = theta_f.size if directions is None else directions.shape[0]
    offs = [k for k in scheme.offsets if k != 0]
    rows = [theta_f]
    for r in range(n_rows):
        for k in offs:
            if directions is None:
                p = theta_f.copy()
                p[r] = p[r] + fmt.dtype.type(k * h[r])  # type: ignore[union-attr]
            else:
                p = fmts.round_array(theta_f.astype(np.float64) + k * h[r] * directions[r], fmt)
            rows.append(p)
    _, sigs = Evaluator(obj, fmt, record_branches=True)(np.stack(rows))
    if sigs is None:
        return np.zeros(n_rows, dtype=bool)
    center, rest = sigs[0], np.asarray(sigs[1:], dtype=object).reshape(n_rows, len(offs))
    return np.array([any(s != center for s in row) for row in rest])


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
        Every coordinate (about 2N evaluations plus the step selection), or
        ``n_directions`` random Rademacher directions (O(k) evaluations).
    false_alarm : float
        Probability, under the model, that a correct gradient fails.
    kinks : {"ignore", "fail"}
        Whether rows whose stencil crosses a kink count as failures.

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
    fmt = fmts.get(format)
    sch = schs.get(scheme)
    if sch.complex_step:
        raise ValueError("scheme: check uses real difference schemes (forward, central, ...)")
    if mode not in ("full", "directional"):
        raise ValueError(f"mode must be 'full' or 'directional', got {mode!r}")
    if not 0 < false_alarm < 1:
        raise ValueError(f"false_alarm must lie in (0, 1), got {false_alarm}")
    if kinks not in ("ignore", "fail"):
        raise ValueError(f"kinks must be 'ignore' or 'fail', got {kinks!r}")
    cf = CoordinateFunction(f, theta, fmt)
    theta_f = cf.theta
    gfun = _grad_values(grad, theta_f, f, fmt)
    expected = gfun(theta_f)
    ngev = 1
    if expected.shape != theta_f.shape:
        raise ValueError(f"grad returned shape {expected.shape}; theta has shape {theta_f.shape}")
    exp64 = expected.astype(np.float64)
    if not np.all(np.isfinite(exp64)):
        raise ValueError(f"grad is not finite at theta (coordinates "
                         f"{np.flatnonzero(~np.isfinite(exp64))[:5].tolist()})")
    pred = optimal_step(f, theta, fmt, sch, seed=seed)
    nfev = pred.nfev
    sigma = pred.sigma if np.isfinite(pred.sigma) else fmt.u * abs(cf.center())
    g_noise, n_g = _grad_noise(gfun, theta_f, fmt)
    g_noise = np.maximum(g_noise, fmt.u * np.abs(exp64))  # at least its own final rounding
    ngev += n_g
    c, q, w = float(sch.leading), sch.order, sch.weight_norm

    spacing = np.abs(np.spacing(theta_f)).astype(np.float64)  # the format's ulp at theta
    if mode == "full":
        h = np.maximum(pred.h, 4 * spacing)  # a step below the spacing would not move theta_i
        rows_kind = "coord"
        dirs = None
        approx, _ = _fd(cf, sch, h, None)
        trunc = np.abs(c * h**q * pred.derivative)
        g_sigma = g_noise
        expected_rows = exp64
        reason = ("per-coordinate steps minimising the modelled error: ECnoise sigma = "
                  f"{sigma:.3g}, pilot (q+1)-th derivatives; coordinates without measurable "
                  "truncation use the global step")
    else:
        if n_directions < 1:
            raise ValueError(f"n_directions must be at least 1, got {n_directions}")
        rng = np.random.default_rng(seed)
        dirs = rng.choice([-1.0, 1.0], size=(n_directions, theta_f.size))
        rows_kind = "direction"
        d_v = _directional_derivative(cf, dirs, q + 1, sigma)
        with np.errstate(divide="ignore"):
            h = (sigma * w / (math.sqrt(q) * np.abs(c * d_v))) ** (1 / (q + 1))
        # a near-zero derivative along v (cancellation) leaves higher terms: stay near the
        # coordinates' global step
        h = np.where(np.isfinite(h) & (h > 0), np.minimum(h, 2 * pred.h_global), pred.h_global)
        approx, eff_opt = _fd(cf, sch, h, dirs)
        assert eff_opt is not None
        eff = eff_opt
        trunc = np.abs(c * h**q * d_v)
        g_sigma = np.full(n_directions, float(np.sqrt(np.sum(g_noise**2))))
        expected_rows = eff @ exp64
        reason = ("per-direction steps minimising the modelled error, from ECnoise sigma = "
                  f"{sigma:.3g} and the (q+1)-th derivative along each direction (pilot stencil)")
    # a stencil point where J is not finite: shrink that row's step (at most 4 times by 4)
    for _ in range(4):
        bad = ~np.isfinite(approx)
        if not bad.any():
            break
        h = np.where(bad, h / 4, h)
        retry, eff_r = _fd(cf, sch, h, dirs)
        approx = np.where(bad, retry, approx)
        if dirs is not None and eff_r is not None:
            expected_rows = np.where(bad, eff_r @ exp64, expected_rows)
        trunc = np.where(bad, trunc / 4**q, trunc)
    n_rows = len(h)
    z = NormalDist().inv_cdf(1 - false_alarm / (2 * n_rows))
    # the truncation as observed: D(h) - D(h/2) = (1 - 2**-q) C h**q d + rounding (Richardson)
    half, _ = _fd(cf, sch, h / 2, dirs)
    observed = np.abs(approx - half) / (1 - 2.0**-q)
    observed = np.where(np.isfinite(observed), observed, 0.0)
    rounding = np.sqrt((sigma * w / h) ** 2 + g_sigma**2)
    bound = z * rounding + 2 * np.maximum(trunc, observed)
    error = np.abs(approx - expected_rows)
    if isinstance(f, Objective):
        kink = _kinks_objective(f, theta_f, fmt, sch, h, dirs)
    else:  # the quotient does not converge at the smooth rate: D(h) - D(h/2) ~ 2**q (D(h/2) - D(h/4))
        quarter, _ = _fd(cf, sch, h / 4, dirs)
        d1, d2 = np.abs(approx - half), np.abs(half - quarter)
        noise = z * sigma * w / h
        kink = ((d1 > noise * math.sqrt(5)) & (d2 > noise * math.sqrt(20))
                & (d1 < 2.0 ** (q - 1) * d2))
    nfev = cf.nfev + pred.nfev
    finite = np.isfinite(approx)
    ok = (error <= bound) & finite
    ok = ok | (kink & finite) if kinks == "ignore" else ok & ~kink
    # a row whose tolerance exceeds the gradient's own size could not see even a 100% error
    unresolved = finite & ~kink & ok & (bound >= np.abs(expected_rows))
    status = np.where(~finite, "nonfinite", np.where(kink, "kink", np.where(
        ~ok, "fail", np.where(unresolved, "unresolved", "ok"))))
    report = pd.DataFrame({rows_kind: np.arange(n_rows), "approx": approx, "expected": expected_rows,
                           "error": error, "bound": bound, "ok": ok, "kink": kink, "h": h,
                           "status": status})
    power = ""
    if mode == "directional":
        b = float(np.median(bound))
        miss = 0.05 ** (1 / n_directions)
        power = (f"detects with probability 0.95 a gradient error e with ||e|| >= "
                 f"{b / (math.sqrt(2) * float(erfinv(miss))):.3g} (v.e ~ N(0, ||e||^2) for "
                 f"Rademacher v, {n_directions} directions)")
    # evidence either way: a failed row, or a row that passed with a resolving tolerance
    decided = bool((~ok & finite).any() or (status == "ok").any())
    return CheckResult(
        passed=bool(ok.all()) and decided, decided=decided, report=report, mode=mode,
        format=fmt.name, scheme=sch.name,
        h=h, step_reason=reason, noise=float(sigma), grad_noise=g_noise,
        kinks=np.flatnonzero(kink).tolist(), nfev=nfev, ngev=ngev, z=float(z),
        false_alarm=false_alarm, power=power, upcasts=cf.upcasts,
    )


def _directional_derivative(cf: CoordinateFunction, dirs: np.ndarray, order: int,
                            sigma: float) -> np.ndarray:
    """The ``order``-th derivative of t -> J(theta + t v) per direction, from a pilot stencil
    spaced where its rounding is about its truncation for unit derivatives."""
    k_max = order // 2 + 1
    ks = tuple(range(-k_max, k_max + 1))
    scale = max(1.0, float(np.sqrt(np.mean(cf.theta.astype(np.float64) ** 2))))
    j0 = abs(cf.center())
    rel = min(0.1, (sigma / max(j0, 1e-300)) ** (1 / (order + 2)))
    s = rel * scale
    pts = [fmts.round_array(cf.theta.astype(np.float64) + k * s * v, cf.fmt) for v in dirs for k in ks]
    vals = cf.evaluate(np.stack(pts)).reshape(len(dirs), len(ks))
    wd = np.array([float(x) for x in schs.fd_weights(ks, order)])
    return np.asarray(np.where(np.isfinite(vals), vals, 0.0) @ wd / s**order)


def _fd(
    cf: CoordinateFunction, sch: schs.Scheme, h: np.ndarray, dirs: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """The FD quotient from J evaluated in the format, free of step-representation error.

    The stencil points are formed in the format; their displacements from theta are then
    known exactly. Along a coordinate, the weights are solved for the realised offsets;
    along a direction, the quotient is compared with g . (sum_j c_j delta_j / h) instead
    of g . v, the displacement the points really have. Returns (approx, effective
    directions or None).
    """
    n_rows = len(h)
    theta = cf.theta.astype(np.float64)
    pts, disp = [], []
    for r in range(n_rows):
        for k in sch.offsets:
            if dirs is None:
                p = cf.theta.copy()
                with np.errstate(over="ignore"):
                    p[r] = p[r] + cf.fmt.dtype.type(k * h[r])  # type: ignore[union-attr]
            else:
                p = fmts.round_array(theta + k * h[r] * dirs[r], cf.fmt)
            pts.append(p)
            disp.append(p.astype(np.float64) - theta)  # exact: nearby values of the format
    vals = cf.evaluate(np.stack(pts)).reshape(n_rows, len(sch.offsets))
    delta = np.stack(disp).reshape(n_rows, len(sch.offsets), -1)
    if dirs is None:
        approx = np.empty(n_rows)
        for r in range(n_rows):
            t = delta[r, :, r]
            if len(set(t.tolist())) < len(t):  # the step did not move the coordinate
                approx[r] = np.nan
                continue
            v = np.array([[tj**m / math.factorial(m) for tj in t] for m in range(len(t))])
            e1 = np.zeros(len(t))
            e1[1] = 1.0
            approx[r] = float(np.linalg.solve(v, e1) @ vals[r])
        return approx, None
    c = np.array([float(w) for w in sch.weights])
    approx = (vals @ c) / h
    eff = np.einsum("j,rjn->rn", c, delta) / h[:, None]
    return approx, eff
