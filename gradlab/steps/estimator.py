"""The most accurate FD gradient in a format, with a calibrated error bar per component.

:func:`gradient` differentiates J, evaluated in the format, along each coordinate with a
central scheme at three steps ``h, 2h, 4h`` (powers of two, so that every offset ``k h``
is exact and the steps share points). With ``D_l`` the quotient at step ``l h`` and q the
scheme's order:

* ``Delta_1 = D_2 - D_1`` is ``(2^q - 1) T(h)`` plus noise, T the truncation error of
  ``D_1`` (the leading term ``C h^q`` scales exactly by ``2^q``);
* the reported value is the Richardson extrapolation ``E = D_1 - Delta_1 / (2^q - 1)``,
  whose truncation is of order ``q + 2``;
* its error bar is ``|Delta_1| / (2^q - 1) + z sigma ||c_E||``: the truncation of D_1,
  which bounds E's in the asymptotic regime, plus z = 3 standard deviations of the
  rounding, with sigma J's noise level (ECnoise on random lines, as
  :func:`gradlab.optimal_step` measures it) and ``c_E`` the weights E gives the values
  of J (the noise at distinct points is independent);
* ``Delta_2 = D_4 - D_2`` checks that h lies in the asymptotic regime: where both
  differences rise above their noise, ``Delta_2 / Delta_1`` must be near ``2^q``.

Where neither difference rises above its noise (no truncation seen), the quotient at the
largest step, D_4, is reported instead when its bar is the smaller.

The step starts at ``(sigma / |J|)^(1/(q+3)) s_i`` (the noise-limited step of the order
q + 2 the extrapolation reaches) with the scale ``s_i = max(log(e - 1 + |theta_i|), 1)``, and
moves, per coordinate, to the step that minimises the error bar (``q T = z sigma ||c_E||``),
to half of itself where the ratio test fails, to a sixteenth where a point is not finite,
and up eightfold, to at most ``s_i / 8``, where no truncation is seen; it stops within a
factor 2 of that step, or when a move makes the bar worse, after at most 8 rounds, and
never goes below 64 spacings of theta_i. Points evaluated in one round are reused by the
next. Last, each settled coordinate's bar is recomputed with the noise measured along that
coordinate alone (ECnoise on its nine points ``theta_i + k h``, k = -4..4, times
:data:`gradlab.analysis.noise.LINE_SAFETY`), where ECnoise detects it: terms of J that do
not depend on theta_i round alike at every point and cancel, so one coordinate's noise can
lie far below J's.

Where the symmetric second difference ``(J(lh) + J(-lh) - 2 J(0)) / (lh)`` is the same at
every step and above its noise, the one-sided derivatives differ: a kink. The step
shrinks fourfold, while rounds remain, until the kink leaves the stencil; where it does
not (theta on the kink) the status says so, the value is the mean of the one-sided
derivatives and the bar half their difference (or the quotients' spread, if larger).
Where the second differences grow as 1/h, or the quotients do, J jumps inside the stencil:
the step shrinks the same way, and where the jump stays the status is "discontinuous",
with no bar.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import numpy as np
import pandas as pd

from gradlab.analysis.noise import LINE_SAFETY, ecnoise, rounding_floor
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.arithmetic.objective import Objective
from gradlab.arithmetic.stencil import stencil
from gradlab.arithmetic.trees import FlatView, is_structured
from gradlab.steps.optimal import line_noise
from gradlab.steps.results import FunctionLike

__all__ = ["METHODS", "STATUSES", "GradientResult", "gradient"]

#: The schemes ``method`` may name; "auto" picks one by the format's unit roundoff.
METHODS = ("auto", "central", "central4", "central6")
#: ``method="auto"``: the highest order whose farthest point (12 h for central6, 8 h for
#: central4, 4 h for central) stays within a few percent of the coordinate's scale at the
#: step the noise sets for unit derivatives.
_AUTO = ((2.0**-40, "central6"), (2.0**-20, "central4"), (math.inf, "central"))
LEVELS = (1, 2, 4)
Z = 3.0  # the rounding term's multiple of its standard deviation
MAX_ROUNDS = 8
_MAX_REL = 1 / 8  # the largest step, relative to the coordinate's scale
_GROWTH = 8  # where no truncation is seen, the next step is this many times larger
_ROWS_PER_BATCH = 1 << 22  # matrix entries per evaluated batch (memory bound)

#: Per-component outcome, in ``GradientResult.status``.
STATUSES = {
    "ok": "truncation measured and in its asymptotic regime: the bar is truncation plus 3 sd "
          "of the rounding",
    "rounding": "no truncation seen up to the largest step: the bar is the rounding plus the "
                "largest truncation the noise could hide",
    "kink": "theta lies on a kink: the one-sided derivatives differ; the value is their mean "
            "and the bar half their difference",
    "discontinuous": "J jumps within the smallest stencil tried: the value is the quotient "
                     "there, with no bar (inf)",
    "not_asymptotic": "the differences never followed the scheme's order: the bar is the "
                      "spread of the estimates at the last three steps",
    "nonfinite": "J was not finite at a stencil point at every step tried: no estimate",
}


@dataclass(frozen=True)
class GradientResult:
    """A finite-difference gradient with its error bar.

    Attributes
    ----------
    grad : ndarray of float64
        The gradient at theta as the format stores it (``fl(theta)``), from values of J
        computed in the format; the quotients are formed in float64. NaN only where
        ``status`` is "nonfinite".
    error : ndarray of float64
        Per component, an estimate of ``|grad - true gradient|`` (a bound with about 99%
        coverage where the models hold; inf where there is no estimate).
    nfev : int
        Evaluations of J spent (ECnoise lines, J at theta, every stencil point).
    h : ndarray of float64
        Per component, the base step h of the last round (points at ``k h, 2 k h, 4 k h``).
    method : str
        The scheme, and "+ Richardson".
    format : str
    sigma : float
        J's noise level used for the rounding term.
    status : ndarray of str
        Per component, a key of :data:`STATUSES`.
    upcasts : int
        Calls of a plain callable that returned another dtype than the format's (its values
        are then that dtype's; a narrower one sets the rounding floor).
    view : FlatView or None
        For a tree (or masked) theta, its structure: the arrays above hold its free entries
        in order, :meth:`tree` rebuilds them and ``table()`` names them.
    """

    grad: np.ndarray
    error: np.ndarray
    nfev: int
    h: np.ndarray
    method: str
    format: str
    sigma: float
    status: np.ndarray
    upcasts: int = 0
    view: FlatView | None = None

    def table(self) -> pd.DataFrame:
        """One row per component: grad, error, h, status (and its name, for a tree theta)."""
        out = pd.DataFrame({"component": np.arange(self.grad.size), "grad": self.grad,
                            "error": self.error, "h": self.h, "status": self.status})
        if self.view is not None:
            out["component"] = self.view.keep
            out.insert(1, "name", self.view.names)
        return out

    def tree(self) -> tuple[Any, Any]:
        """``(grad, error)`` in theta's structure (NaN at masked entries); the arrays
        themselves for a flat theta."""
        if self.view is None:
            return self.grad, self.error
        return self.view.expand(self.grad), self.view.expand(self.error)


class _Points:
    """J at ``theta + o e_i``, cached by coordinate and nominal offset (exact floats)."""

    def __init__(self, cf: CoordinateFunction, j0: float) -> None:
        self.cf = cf
        self.j0 = j0
        self.value: list[dict[float, float]] = [{} for _ in range(cf.n)]
        self.realised: list[dict[float, float]] = [{} for _ in range(cf.n)]

    def fetch(self, idx: np.ndarray, h: np.ndarray, mult: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Values and realised offsets at ``m h_i`` for m in ``mult``, shape (len(idx), len(mult))."""
        missing: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for r, (i, hi) in enumerate(zip(idx, h, strict=True)):
            have = self.value[i]
            need = tuple(m for m in mult if m * hi not in have)
            if need:
                missing[need].append(r)
        for need, rows in missing.items():
            self._evaluate(idx[rows], h[rows], need)
        vals = np.empty((idx.size, len(mult)))
        offs = np.empty((idx.size, len(mult)))
        for r, (i, hi) in enumerate(zip(idx, h, strict=True)):
            vals[r] = [self.value[i][m * hi] for m in mult]
            offs[r] = [self.realised[i][m * hi] for m in mult]
        return vals, offs

    def _evaluate(self, idx: np.ndarray, h: np.ndarray, ks: tuple[int, ...]) -> None:
        st = stencil(self.cf.theta[idx], h, ks, self.cf.fmt)
        coords = np.repeat(idx, len(ks))
        per = max(1, _ROWS_PER_BATCH // max(self.cf.n, 1))
        flat_pts = st.points.ravel()
        vals = np.concatenate([
            self.cf.evaluate(self.cf.points(coords[a:a + per], flat_pts[a:a + per]))
            for a in range(0, coords.size, per)]).reshape(idx.size, len(ks))
        for r, (i, hi) in enumerate(zip(idx, h, strict=True)):
            for j, k in enumerate(ks):
                self.value[i][k * hi] = float(vals[r, j])
                self.realised[i][k * hi] = float(st.offsets[r, j])


@dataclass(frozen=True)
class _Round:
    """One round's estimates for a set of coordinates (arrays over them)."""

    quotients: np.ndarray  # D_l, shape (n, len(LEVELS))
    value: np.ndarray  # E
    truncation: np.ndarray  # Delta_1 / (2^q - 1)
    rounding_sd: np.ndarray  # sigma ||c_E||
    quotient_sd: np.ndarray  # sigma ||c_l|| per level, shape (n, len(LEVELS))
    delta_sd: np.ndarray  # sigma ||c_2 - c_1||, sigma ||c_4 - c_2||: shape (n, 2)
    deltas: np.ndarray  # Delta_1, Delta_2: shape (n, 2)
    second: np.ndarray  # (J(lh) + J(-lh) - 2 J0) / (lh) per level, shape (n, len(LEVELS))
    second_sd: np.ndarray
    finite: np.ndarray


def _weights(ks: tuple[int, ...], offsets: np.ndarray, step: np.ndarray) -> np.ndarray:
    """First-derivative weights on the realised offsets: the scheme's own where they are the
    nominal ``k step``, else exact rationals for those offsets (a point rounded off its grid)."""
    exact = np.all(offsets == np.outer(step, np.array(ks, dtype=np.float64)), axis=1)
    w = np.array([float(c) for c in schs.fd_weights(ks, 1)])
    out = w[None, :] / step[:, None]
    for r in np.flatnonzero(~exact):
        out[r] = [float(c) for c in schs.fd_weights(tuple(Fraction(float(o)) for o in offsets[r]), 1)]
    return out


def _round(pts: _Points, idx: np.ndarray, h: np.ndarray, scheme: schs.Scheme,
           sigma: float | np.ndarray) -> _Round:
    """The quotients at h, 2h and 4h of the coordinates ``idx``, their differences, the
    Richardson value and the standard deviations noise ``sigma`` gives each (linear in J's
    values: ``sigma`` times the norm of their weights)."""
    ks = scheme.offsets
    mult = tuple(sorted({k * lv for k in ks for lv in LEVELS}))
    col = {m: j for j, m in enumerate(mult)}
    vals, offs = pts.fetch(idx, h, mult)
    sd = np.broadcast_to(np.asarray(sigma, dtype=np.float64), idx.shape)
    finite = np.all(np.isfinite(vals), axis=1)
    diff = np.where(np.isfinite(vals), vals - pts.j0, 0.0)  # exact or nearly: J near J0
    n = idx.size
    coef = np.zeros((len(LEVELS), n, len(mult)))  # D_l = coef[l] @ diff
    for li, lv in enumerate(LEVELS):
        cols = [col[k * lv] for k in ks]
        coef[li][:, cols] = _weights(ks, offs[:, cols], lv * h)
    quot = np.einsum("lnm,nm->nl", coef, diff)
    r = 2.0**scheme.order - 1
    c_e = coef[0] - (coef[1] - coef[0]) / r
    deltas = np.stack([quot[:, 1] - quot[:, 0], quot[:, 2] - quot[:, 1]], axis=1)
    delta_sd = sd[:, None] * np.stack([np.linalg.norm(coef[1] - coef[0], axis=1),
                                       np.linalg.norm(coef[2] - coef[1], axis=1)], axis=1)
    second = np.stack([(diff[:, col[lv]] + diff[:, col[-lv]]) / (lv * h) for lv in LEVELS], axis=1)
    second_sd = sd[:, None] * math.sqrt(6) / (np.array(LEVELS)[None, :] * h[:, None])  # J(lh), J(-lh), 2 J0
    return _Round(quotients=quot, value=np.einsum("nm,nm->n", c_e, diff), truncation=deltas[:, 0] / r,
                  rounding_sd=sd * np.linalg.norm(c_e, axis=1),
                  quotient_sd=sd[:, None] * np.linalg.norm(coef, axis=2).T, delta_sd=delta_sd, deltas=deltas,
                  second=second, second_sd=second_sd, finite=finite)


class _Best:
    """Per coordinate, the estimate with the smallest error bar so far."""

    def __init__(self, n: int) -> None:
        self.grad = np.full(n, math.nan)
        self.error = np.full(n, math.inf)
        self.h = np.full(n, math.nan)
        self.status = np.full(n, "nonfinite", dtype=object)

    def keep(self, idx: np.ndarray, grad: np.ndarray, error: np.ndarray | float, h: np.ndarray,
             status: Any) -> None:
        self.grad[idx], self.error[idx], self.h[idx], self.status[idx] = grad, error, h, status


def _line_noise(pts: _Points, idx: np.ndarray, h: np.ndarray, sigma: float, floor: float) -> np.ndarray:
    """Per coordinate, ECnoise on the nine points ``theta_i + k h``, k = -4..4, where it
    detects noise (J's rounding along that coordinate alone: terms that do not depend on
    theta_i round the same at every point, and cancel); sigma where it does not (among them
    the lines where J barely changes: its steps there are the noise)."""
    mult = (-4, -3, -2, -1, 1, 2, 3, 4)
    vals, _ = pts.fetch(idx, h, mult)
    out = np.full(idx.size, sigma)
    for r, row in enumerate(vals):
        est, status, _ = ecnoise([*row[:4], pts.j0, *row[4:]])
        if status == 1:
            out[r] = max(LINE_SAFETY * est, floor)
    return out


def _power_of_two(h: np.ndarray) -> np.ndarray:
    return np.ldexp(1.0, np.round(np.log2(h)).astype(np.int64))


def _kinks(rd: _Round) -> tuple[np.ndarray, np.ndarray]:
    """Kinks and jumps in the stencil, from the second differences over l h, where they are
    resolved at every step: a smooth J's grow in proportion to the step (4x from h to 4h,
    or more where J'' = 0), a kink's stay the same (the jump in the slope), a
    discontinuity's shrink as 1 / h."""
    s = rd.second
    resolved = np.all(np.abs(s) > Z * rd.second_sd, axis=1)
    d = rd.quotients
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(s[:, 2] / s[:, 0])
        # an odd jump leaves the second differences alone; the quotients grow as 1 / h
        growth = d[:, 0] / d[:, 2]
    odd = np.all(np.abs(rd.deltas) > Z * rd.delta_sd, axis=1) & (growth > 2.5) & (growth < 6)
    return resolved & (ratio >= 0.5) & (ratio < 2), (resolved & (ratio < 0.5)) | odd


def _assess(rd: _Round, q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per coordinate: asymptotic, truncation resolved, the estimate and its error bar.

    Where neither difference rises above its noise (the rounding regime) the quotient at
    the largest step, ``D_4``, may have the smaller bar: its rounding is a quarter of
    D_1's, and its truncation is at most ``2^q (|Delta_2| + z sd) / (2^q - 1)``. The
    estimate with the smaller bar is reported.
    """
    res = np.abs(rd.deltas) > Z * rd.delta_sd
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = rd.deltas[:, 1] / rd.deltas[:, 0]
    in_window = (ratio > 2.0 ** (q - 2)) & (ratio < 2.0 ** (q + 2))
    # both resolved: the ratio decides; only Delta_1: Delta_2, 2^q times larger, should be too
    asymptotic = np.where(res[:, 0] & res[:, 1], in_window, ~(res[:, 0] & ~res[:, 1]))
    resolved = res[:, 0] | res[:, 1]
    r = 2.0**q - 1
    hidden = (np.abs(rd.deltas) + Z * rd.delta_sd) / r  # the truncation the noise could hide
    bar_e = np.where(resolved, np.abs(rd.truncation), hidden[:, 0]) + Z * rd.rounding_sd
    bar_4 = 2.0**q * hidden[:, 1] + Z * rd.quotient_sd[:, 2]
    use_4 = ~resolved & (bar_4 < bar_e)
    value = np.where(use_4, rd.quotients[:, 2], rd.value)
    return asymptotic, resolved, value, np.where(use_4, bar_4, bar_e)


def _next_step(rd: _Round, h: np.ndarray, cap: np.ndarray, asymptotic: np.ndarray,
               resolved: np.ndarray, q: int) -> np.ndarray:
    """The step minimising the bar ``C h^q + z s h_now / h`` (half where the ratio test
    failed, four times larger where no truncation was seen), a power of two within the cap."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(np.abs(rd.deltas[:, 0]) > Z * rd.delta_sd[:, 0], np.abs(rd.truncation),
                     np.abs(rd.deltas[:, 1]) / (2.0**q * (2.0**q - 1)))
        best = h * (Z * rd.rounding_sd / (q * t)) ** (1 / (q + 1))
    target = np.where(~asymptotic, h / 2, np.where(resolved & np.isfinite(best), best, _GROWTH * h))
    return np.minimum(_power_of_two(np.maximum(target, np.finfo(np.float64).tiny)), cap)


def _sharpen(best: _Best, pts: _Points, scheme: schs.Scheme, sigma: float, floor: float) -> None:
    """Recompute the bars of the settled smooth coordinates with their own noise level
    (:func:`_line_noise`), where the estimate stays in the asymptotic regime with it."""
    idx = np.flatnonzero(np.isin(best.status, ("ok", "rounding")))
    if not idx.size:
        return
    h = best.h[idx]
    rd = _round(pts, idx, h, scheme, _line_noise(pts, idx, h, sigma, floor))
    asym, resolved, value, bar = _assess(rd, scheme.order)
    keep = asym
    best.keep(idx[keep], value[keep], bar[keep], h[keep],
              np.where(resolved[keep], "ok", "rounding"))


def _value_format(cf: CoordinateFunction) -> fmts.Format:
    """The format J's values are in: the format, or the narrower dtype a plain callable
    returned instead (its values then carry that dtype's rounding, not the format's)."""
    if not cf.upcasts or isinstance(cf.f, Objective):
        return cf.fmt
    returned = np.asarray(cf.f(cf.theta)).dtype
    try:
        got = fmts.get(returned.name)
    except ValueError:
        return cf.fmt
    return got if got.dtype is not None and got.p < cf.fmt.p else cf.fmt


def _method(method: Any, fmt: fmts.Format) -> schs.Scheme:
    name = validation.choice("method", method, METHODS)
    if name == "auto":
        name = next(s for limit, s in _AUTO if fmt.u <= limit)
    return schs.get(name)


def gradient(
    f: FunctionLike,
    theta: Any = None,
    format: fmts.Format | str = "float64",
    method: str = "auto",
    *,
    seed: int = 0,
) -> GradientResult:
    """The most accurate FD gradient gradlab gives in a format, with an error bar per component.

    See the module docstring for the estimator and its error model. The bar is calibrated
    by the study ``gradlab study steps`` (its ``gradient`` table): it is checked against
    the exact gradient (:func:`gradlab.exact`) on a benchmark of smooth objectives in
    float64, float32 and float16, beside numdifftools' ``Gradient`` and its error estimate.

    Parameters
    ----------
    f : Objective or callable
        An Objective, or a plain callable ``f(x) -> scalar`` that computes in the dtype of
        its 1-D argument.
    theta : array_like, optional
        The point (rounded once to the format). Defaults to an Objective's theta0.
    format : str
        A hardware format (float64, float32, float16, bfloat16, ...): J is evaluated in it.
    method : {"auto", "central", "central4", "central6"}
        The scheme extrapolated. "auto": central6 where the unit roundoff is at most
        2**-40, central4 down to 2**-20 (float32), central below (float16, bfloat16).
    seed : int
        The ECnoise lines' random directions.

    Returns
    -------
    GradientResult

    Raises
    ------
    ValueError
        For an unknown method or format, a bad theta, or J not finite at theta.

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> res = gl.gradient(lambda x: np.sum(np.exp(x)), [0.5, -1.0])
    >>> bool(np.all(np.abs(res.grad - np.exp([0.5, -1.0])) <= res.error)), res.method
    (True, 'central6 + Richardson')
    >>> res.status.tolist()
    ['ok', 'ok']
    """
    if not isinstance(f, Objective) and callable(f) and is_structured(theta):
        view, user = FlatView(theta), cast(Callable[..., Any], f)
        flat = gradient(lambda x: view.call(user, x), view.theta, format, method, seed=seed)
        return dataclasses.replace(flat, view=view)
    f = validation.function("f", f)
    fmt = validation.one_format("format", format)
    if fmt.dtype is None:
        raise ValueError(f"format {fmt.name!r} is emulated; gradient evaluates J in a hardware "
                         "format (float64, float32, float16, bfloat16, ...)")
    scheme = _method(method, fmt)
    seed = validation.integer("seed", seed, 0)
    cf = CoordinateFunction(f, validation.point("theta", theta, f), fmt)
    q = scheme.order
    sigma = line_noise(cf, 2, 9, seed)
    j0 = cf.center()
    if not math.isfinite(j0):
        raise ValueError(f"f is not finite at theta in {fmt.name} (J = {j0}): no gradient there")
    floor = rounding_floor(_value_format(cf), j0) / math.sqrt(3)  # sd of one rounding to nearest
    sigma = max(sigma, floor) if math.isfinite(sigma) else floor
    pts = _Points(cf, j0)
    # the coordinate's scale grows as log |theta_i| (numdifftools' nominal step does too):
    # a large theta_i says little about how fast J varies along it
    scale = np.maximum(np.log(math.e - 1 + np.abs(cf.theta.astype(np.float64))), 1.0)
    cap = _power_of_two(scale * _MAX_REL)
    # the smallest step: 64 spacings of theta_i, where the offsets are still exact and distinct
    spacing = np.spacing(np.abs(cf.theta)).astype(np.float64)
    floor_h = np.minimum(np.ldexp(1.0, np.ceil(np.log2(64 * spacing)).astype(np.int64)), cap)
    rel = min((sigma / max(abs(j0), floor)) ** (1 / (q + 3)), _MAX_REL)  # order q + 2 after Richardson
    h = np.minimum(_power_of_two(rel * scale), cap)

    best = _Best(cf.n)
    todo = np.arange(cf.n)
    for rnd in range(MAX_ROUNDS):
        rd = _round(pts, todo, h[todo], scheme, sigma)
        asym, resolved, value, bar = _assess(rd, q)
        kink, jump = _kinks(rd)
        kink &= rd.finite
        jump &= rd.finite
        valid = rd.finite & asym & ~kink & ~jump
        improved = valid & (bar < best.error[todo])
        had = np.isfinite(best.error[todo])
        best.keep(todo[improved], value[improved], bar[improved], h[todo][improved],
                  np.where(resolved[improved], "ok", "rounding"))
        # second = g+ - g- on a kink at theta; the quotients' spread covers a jump nearby
        spread = np.max(np.abs(rd.quotients - rd.quotients[:, :1]), axis=1)
        kink_bar = np.maximum(np.abs(rd.second[:, 0]) / 2, spread) + Z * rd.rounding_sd
        better = kink & (kink_bar < best.error[todo])
        best.keep(todo[better], rd.quotients[better, 0], kink_bar[better], h[todo][better], "kink")
        first = jump & ~np.isfinite(best.error[todo]) & (best.status[todo] != "discontinuous")
        best.keep(todo[first], rd.quotients[first, 0], math.inf, h[todo][first], "discontinuous")
        # a kink within the stencil but off theta leaves it at a smaller step
        # a point beyond J's domain (or range): 16 times closer
        nxt = np.where(~rd.finite, h[todo] / 16, np.where(
            kink | jump, h[todo] / 4, _next_step(rd, h[todo], cap[todo], asym, resolved, q)))
        nxt = np.maximum(nxt, floor_h[todo])
        # settled: within a factor 2 of the best step; past the best step seen (worse, or
        # out of the asymptotic regime again); or at the smallest step
        done = valid & (np.abs(np.log2(nxt / h[todo])) <= 1)
        done |= ~valid & (h[todo] <= floor_h[todo])
        # shrinking until the kink or jump leaves the stencil
        kinked = np.isin(best.status[todo], ("kink", "discontinuous"))
        done |= had & ~kinked & ((valid & ~improved) | (rd.finite & ~asym))
        if rnd == MAX_ROUNDS - 1:
            done[:] = True
        # never in the asymptotic regime: the estimate of the last round, with the spread
        # of its quotients as the bar
        lost = done & ~np.isfinite(best.error[todo]) & rd.finite & (best.status[todo] != "discontinuous")
        spread = np.max(np.abs(rd.quotients[lost] - rd.value[lost, None]), axis=1)
        best.keep(todo[lost], rd.value[lost], np.maximum(bar[lost], spread), h[todo][lost],
                  "not_asymptotic")
        h[todo[~done]] = nxt[~done]
        todo = todo[~done]
        if not todo.size:
            break
    _sharpen(best, pts, scheme, sigma, floor)
    return GradientResult(grad=best.grad, error=best.error, nfev=cf.nfev, h=best.h,
                          method=f"{scheme.name} + Richardson", format=fmt.name, sigma=sigma,
                          status=best.status.astype(str), upcasts=cf.upcasts)
