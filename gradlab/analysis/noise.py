"""The noise level of J in a format: by ECnoise and directly against the exact J.

Both estimators use the same sample: ``nf`` equally spaced points along a few
coordinate lines through theta (rounded to the format), spaced by a power of two
chosen so that every point is exactly representable in the format, so the only
noise in the format's values is J's own rounding.

* ECnoise (Moré & Wild 2011, SIAM J. Sci. Comput. 33(3):1292-1314) looks only at
  the format's values: it builds the difference table and accepts the first
  order k at which the scaled levels sigma_k = sqrt(gamma_k mean((Delta^k f)^2)),
  gamma_k = (k!)^2/(2k)!, agree within a factor 4 over k..k+2 and Delta^k f
  changes sign.
* The direct estimate subtracts the exact J (mpmath) at the same points: the
  standard deviation of ``J_F - J`` is the noise, its mean the bias.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import pandas as pd
from flint import arb

from gradlab.arithmetic import formats, validation
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.objective import Objective, fp_events

__all__ = [
    "ECNOISE_STATUS",
    "LINE_SAFETY",
    "LineSample",
    "NoiseResult",
    "ecnoise",
    "ecnoise_line",
    "exact_at_theta",
    "line_points",
    "mp_values",
    "noise_level",
    "rounding_floor",
]

ECNOISE_STATUS = {
    1: "noise detected",
    2: "spacing too small: half the first differences are zero",
    3: "noise not detected: spacing too large",
    4: "J is not finite at some points",
}


def mp_values(ev: Evaluator, points: np.ndarray) -> tuple[np.ndarray, list[bytes] | None]:
    """J at each row of ``points``, as :class:`Evaluator` computes it, and a NaN where an
    mpmath arithmetic (exact or emulated) meets a pole.

    mpmath raises ZeroDivisionError where IEEE arithmetic would give an infinity (J has a
    pole at a point): the batch is then evaluated point by point, and such a point's J is
    NaN (its branch signature empty), data for the caller to flag rather than a crash.
    """
    try:
        return ev(points)
    except ZeroDivisionError:
        if ev.dtype is not object:
            raise
    ctx = ev.context
    nan = ctx.mpc(ctx.nan, ctx.nan) if ev.is_complex else ctx.nan
    values = np.empty(len(points), dtype=object)
    sigs: list[bytes] = []
    for r in range(len(points)):
        try:
            v, s = ev(points[r : r + 1])
            values[r], sig = v[0], (s or [b""])[0]
        except ZeroDivisionError:
            values[r], sig = nan, b""
        sigs.append(sig)
    return values, (sigs if ev.record_branches else None)


def exact_at_theta(obj: Objective, fmt: formats.Format, prec: int, theta: list[Any],
                   record_branches: bool = False) -> tuple[Any, bytes]:
    """The exact J at theta (values of the format) and its branch signature, refusing a J that
    is not finite there: no reference, noise level or error exists at such a point.

    Raises
    ------
    ValueError
        Naming the objective and the format, with the value mpmath found.
    """
    if not all(mpmath.isfinite(t) for t in theta):
        raise ValueError(f"obj.theta0 overflows format {fmt.name}")
    ev = Evaluator.reference(obj, fmt, prec, record_branches=record_branches, backend="arb")
    where = f"at obj.theta0 rounded to {fmt.name} (objective {obj.name!r})"
    try:
        vals, sigs = ev(ev.convert(np.asarray([theta], dtype=object)))
    except ZeroDivisionError:
        raise ValueError(f"J is not finite {where}: its exact evaluation divides by zero") from None
    if isinstance(vals[0], arb) and not vals[0].is_finite():
        raise ValueError(f"J is not finite {where}: J = nan in ball arithmetic (its enclosure "
                         f"is {vals[0]}: a pole, a division by zero or a function outside its "
                         "domain)")
    value = formats.exact_mpf(vals[0])  # a ball's midpoint
    validation.finite_value("J", value, where)
    return value, (sigs or [b""])[0]


def ecnoise(values: Any) -> tuple[float, int, np.ndarray]:
    """Noise level of equally spaced function values (Moré & Wild 2011).

    Parameters
    ----------
    values : sequence of numbers
        f at ``nf >= 4`` equally spaced points (exact numbers: the difference
        table is built in exact arithmetic, so longdouble values lose nothing).

    Returns
    -------
    sigma : float
        The noise estimate (NaN unless ``status == 1``).
    status : int
        1, 2, 3 or 4; see :data:`ECNOISE_STATUS`.
    levels : ndarray
        sigma_k for k = 1 .. nf-1.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> f = 1 + 1e-3 * np.arange(12) + 1e-6 * rng.standard_normal(12)
    >>> sigma, status, _ = ecnoise(f)
    >>> status, 0.3e-6 < sigma < 3e-6
    (1, True)
    """
    f = [formats.exact_mpf(v) for v in values]
    nf = len(f)
    if nf < 4:
        raise ValueError(f"values must hold at least 4 points, got {nf}")
    if not all(mpmath.isfinite(v) for v in f):
        return math.nan, 4, np.full(nf - 1, np.nan)
    ctx = mpmath.MPContext()
    ctx.prec = 256
    f = [ctx.make_mpf(v._mpf_) for v in f]
    fmin, fmax = min(f), max(f)
    levels = np.full(nf - 1, np.nan)
    denom = max(abs(fmax), abs(fmin))
    if denom > 0 and (fmax - fmin) / denom > ctx.mpf("0.1"):
        return math.nan, 3, levels
    signs = np.zeros(nf - 1, dtype=bool)
    d = list(f)
    gamma = ctx.mpf(1)
    for j in range(1, nf):
        d = [d[i + 1] - d[i] for i in range(len(d) - 1)]  # exact at 256 bits
        if j == 1 and sum(1 for v in d if v == 0) >= nf / 2:
            return math.nan, 2, levels
        gamma *= ctx.mpf(j) / (2 * (2 * j - 1))  # gamma_j = (j!)^2 / (2j)!
        levels[j - 1] = float(ctx.sqrt(gamma * ctx.fsum(v * v for v in d) / len(d)))
        signs[j - 1] = min(d) < 0 < max(d)
    for k in range(nf - 3):
        window = levels[k : k + 3]
        if window.max() <= 4 * window.min() and signs[k]:
            return float(levels[k]), 1, levels
    return math.nan, 3, levels


@dataclass(frozen=True)
class NoiseResult:
    """Noise level of J in one format.

    Attributes
    ----------
    objective, format : str
    value : float
        |J(theta)| (exact, at the format's inputs).
    u : float
        The format's unit roundoff.
    sigma_ecnoise : float
        Median ECnoise estimate over the lines where it detected noise (NaN if none).
    sigma_direct : float
        Pooled standard deviation of J_F - J over the sample.
    bias_direct, rms_direct : float
        Mean and root mean square of J_F - J.
    n_nonfinite : int
        Sample points where J_F is not finite (left out of the direct estimate;
        if every point is, the estimates are ``inf``).
    fp_events : dict
        numpy floating-point events counted while evaluating in the format.
    lines : pandas.DataFrame
        One row per line: relative spacing, ECnoise sigma and status, direct sigma.
    nfev : int
        Evaluations of J in the format (the exact ones are not counted).
    """

    objective: str
    format: str
    value: float
    u: float
    sigma_ecnoise: float
    sigma_direct: float
    bias_direct: float
    rms_direct: float
    lines: pd.DataFrame
    nfev: int
    n_nonfinite: int = 0
    fp_events: dict[str, int] | None = None

    @property
    def sigma(self) -> float:
        """The noise level the error models use: the direct (exact) estimate."""
        return self.sigma_direct

    def in_units(self, sigma: float) -> float:
        """A noise level in units of u|J|."""
        scale = self.u * self.value
        return sigma / scale if scale > 0 else math.inf

    def to_frame(self) -> pd.DataFrame:
        """One row: both estimates, absolute and in units of u|J|."""
        return pd.DataFrame(
            [
                {
                    "objective": self.objective,
                    "format": self.format,
                    "J": self.value,
                    "u": self.u,
                    "sigma_ecnoise": self.sigma_ecnoise,
                    "sigma_direct": self.sigma_direct,
                    "sigma_ecnoise_u": self.in_units(self.sigma_ecnoise),
                    "sigma_direct_u": self.in_units(self.sigma_direct),
                    "bias_direct": self.bias_direct,
                    "rms_direct": self.rms_direct,
                    "n_lines": len(self.lines),
                    "n_detected": int((self.lines["status"] == 1).sum()),
                    "n_nonfinite": self.n_nonfinite,
                    "nfev": self.nfev,
                }
            ]
        )


def line_points(
    theta: list[Any], fmt: formats.Format, nf: int, rel: float, signs: np.ndarray
) -> tuple[np.ndarray, float]:
    """``nf`` equally spaced points theta + k s d, every coordinate exact in the format.

    Coordinate j moves by a power of two near ``rel * max(|theta_j|, 1)`` with a
    random sign; a coordinate whose points would not all be representable (they would
    cross into a coarser binade) stays put. Only when that leaves fewer than half of the
    coordinates moving (in float8 a step of sqrt(u) |theta_j| spans a whole binade) do
    the stuck ones try half the step, down to one ulp of theta_j: the line keeps one
    spacing where it can. Returns the points (object array of mpf, shape (nf, N)) and the median
    relative step. For a hardware format of at most 53 bits the same points are built
    in float64, vectorised (:func:`_line_points_float64`; they are returned as float64).
    """
    build = _line_points_float64 if fmt.dtype is not None and fmt.p <= 53 else _line_points_mp
    block, rel_step = build(theta, fmt, nf, rel, signs, False)
    moved = np.mean(block[0] != block[-1]) if block.size else 1
    if moved < 0.5:  # one spacing where it can; smaller steps only where it cannot (float8)
        block, rel_step = build(theta, fmt, nf, rel, signs, True)
    return block, rel_step


def _line_points_mp(theta: list[Any], fmt: formats.Format, nf: int, rel: float,
                    signs: np.ndarray, halve: bool) -> tuple[np.ndarray, float]:
    """:func:`line_points` in exact mpmath arithmetic (any format); ``halve`` tries the
    smaller steps."""
    half = (nf - 1) // 2
    ks = range(-half, nf - half)
    block = np.empty((nf, len(theta)), dtype=object)
    rel_steps = []
    for j, t in enumerate(theta):
        mag = max(abs(float(t)), 1.0)
        e = math.ceil(math.log2(rel * mag))
        e_min = e if fmt.dtype is None or t == 0 else math.frexp(float(t))[1] - fmt.p
        col = [t] * nf
        for e_try in range(e, (min(e, e_min) if halve else e) - 1, -1):
            step = mpmath.ldexp(int(signs[j]), e_try)
            trial = [mpmath.fadd(t, k * step, exact=True) for k in ks]
            if all(formats.round_exact(p, fmt) == p for p in trial):
                col = trial
                rel_steps.append(abs(float(step)) / mag)
                break
        block[:, j] = col
    return block, float(np.median(rel_steps)) if rel_steps else 0.0


def _line_points_float64(theta: list[Any], fmt: formats.Format, nf: int, rel: float,
                         signs: np.ndarray, halve: bool) -> tuple[np.ndarray, float]:
    """:func:`line_points` in float64: a point is kept when ``t + k step`` is exact in
    float64 (TwoSum's error is 0) and a value of the format, which together say that the
    exact sum is representable (the format has at most 53 bits)."""
    t = np.array([float(v) for v in theta])
    ks = np.arange(nf) - (nf - 1) // 2
    mag = np.maximum(np.abs(t), 1.0)
    e = np.array([math.ceil(math.log2(rel * m)) for m in mag])  # as the mpmath path rounds
    e_min = np.where(t == 0, e, np.frexp(t)[1] - fmt.p)
    block = np.repeat(t[None, :], nf, axis=0)
    step_of = np.zeros(t.size)
    todo = np.ones(t.size, dtype=bool)
    for d in range((int(np.max(e - np.minimum(e, e_min))) + 1 if halve else 1) if t.size else 0):
        idx = np.flatnonzero(todo & (e - d >= np.minimum(e, e_min)))
        if not idx.size:
            break
        step = np.ldexp(signs[idx].astype(np.float64), (e[idx] - d).astype(np.int64))
        inc = ks[:, None] * step[None, :]  # exact: small integers times powers of two
        x = t[idx][None, :] + inc
        bv = x - t[idx][None, :]
        err = (t[idx][None, :] - (x - bv)) + (inc - bv)  # TwoSum: x + err == t + inc exactly
        with np.errstate(over="ignore", invalid="ignore"):
            ok = np.all((err == 0) & (formats.round_array(x, fmt).astype(np.float64) == x), axis=0)
        good = idx[ok]
        block[:, good] = x[:, ok]
        step_of[good] = np.abs(step[ok])
        todo[good] = False
    moved = ~todo
    rel_steps = step_of[moved] / mag[moved]
    return block, float(np.median(rel_steps)) if rel_steps.size else 0.0


#: ECnoise on one line of nine points underestimates the noise by more than 1.5x in about
#: a fifth of the lines (measured on Gaussian and uniform noise: its 10th percentile is
#: 0.52 sigma, its median 0.9 sigma). Callers that bound errors with one line's estimate
#: take 1.5 times it.
LINE_SAFETY = 1.5


def rounding_floor(fmt: formats.Format | str, value: Any) -> float:
    """The noise level of J's one final rounding, ``u max(|J|, m)``: the least noise any
    evaluation in the format has.

    ``m`` is the smallest normal number (float64's for the emulated formats, which have
    none): near 0 the rounding error is at most half the subnormal spacing, ``u m``. The
    result is at least float64's smallest subnormal, so it is positive where J = 0 even
    for float64 and longdouble, whose ``u m`` float64 cannot hold.

    Examples
    --------
    >>> rounding_floor("float16", 0.0) == 2.0**-25, rounding_floor("float64", 0.0) > 0
    (True, True)
    >>> rounding_floor("float32", -3.0) == 3 * 2.0**-24
    True
    """
    fmt = formats.get(fmt)
    tiny = float(fmt.smallest_normal) or float(np.finfo(np.float64).tiny)
    with np.errstate(invalid="ignore"):
        return max(fmt.u * max(abs(float(value)), tiny), math.ulp(0.0))


@dataclass(frozen=True)
class LineSample:
    """ECnoise on one line of points, after the respacing it asked for.

    Attributes
    ----------
    block : ndarray of mpf, shape (nf, N)
        The last line's points (exact values of the format).
    rel_spacing : float
        Its median relative step.
    values : ndarray, shape (nf,)
        J in the format at those points.
    sigma : float
    status : int
        ECnoise's status for the last line (:data:`ECNOISE_STATUS`).
    attempts : int
        Lines evaluated (each ``nf`` evaluations).
    """

    block: np.ndarray
    rel_spacing: float
    values: np.ndarray
    sigma: float
    status: int
    attempts: int


def ecnoise_line(
    theta: list[Any], fmt: formats.Format, nf: int, rel: float, signs: np.ndarray,
    values_of: Callable[[np.ndarray], np.ndarray], attempts: int = 3,
) -> LineSample:
    """ECnoise on a line (:func:`line_points`), respaced as ECnoise advises.

    The spacing shrinks by 100 when ECnoise finds the line too wide for noise (status 3)
    and grows by 100, to at most 1%, when the values are too close or not finite (2, 4);
    at most ``attempts`` lines. ``values_of(block)`` evaluates J in the format at an
    object array of exact points.
    """
    for attempt in range(1, attempts + 1):
        block, s = line_points(theta, fmt, nf, rel, signs)
        values = values_of(block)
        sigma, status, _ = ecnoise(values)
        if status == 1 or attempt == attempts:
            return LineSample(block, s, values, sigma, status, attempt)
        rel = rel / 100 if status == 3 else min(rel * 100, 0.01)
    raise ValueError(f"attempts must be at least 1, got {attempts}")


def noise_level(
    obj: Objective,
    format: formats.Format | str = "float64",
    *,
    n_lines: int = 4,
    nf: int = 9,
    rel_spacing: float | None = None,
    seed: int = 0,
    reference: formats.Format | str = "exact",
) -> NoiseResult:
    """Estimate the noise level of J in a format, by ECnoise and directly.

    Parameters
    ----------
    obj : Objective
    format : str or Format
    n_lines : int
        Lines sampled, each along a random sign vector (drawn with ``seed``).
    nf : int
        Points per line (Moré & Wild recommend at least 7).
    rel_spacing : float, optional
        Spacing relative to ``max(|theta_i|, 1)``; default ``sqrt(u)``, small
        enough that J's smooth part vanishes from third differences yet large
        enough that the points differ. ECnoise's own advice (spacing too
        large / too small) is followed by a factor of 100, at most twice
        (:func:`ecnoise_line`).
    seed : int
    reference : "exact" or str or Format
        What the direct estimate measures J's deviations against: the exact value (mpmath,
        the default), or a hardware format at least ``2 p + 4`` bits wide evaluated on the
        same points, data and constants (``policy(reference, data=format)``), whose own
        rounding is then below ``2**-(p + 4)`` of the format's: float64 for the formats up to
        float32 (1.5 times faster on an 8209-parameter MLP, where the exact J is the bulk).

    Returns
    -------
    NoiseResult

    Examples
    --------
    >>> import gradlab as gl
    >>> naive = gl.noise_level(gl.objectives.seed_net(), "float32")
    >>> stable = gl.noise_level(gl.objectives.seed_net(stable=True), "float32")
    >>> round(naive.in_units(naive.sigma_direct)), round(stable.in_units(stable.sigma_direct), 1)
    (78, 0.9)
    """
    validation.objective("obj", obj)
    fmt = validation.one_format("format", format)
    n_lines, nf = validation.integer("n_lines", n_lines, 1), validation.integer("nf", nf, 7)
    seed = validation.integer("seed", seed, 0)
    rel0 = math.sqrt(fmt.u) if rel_spacing is None else validation.positive("rel_spacing", rel_spacing)
    n = obj.n_params
    rng = np.random.default_rng(seed)
    theta = formats.round_to_mpf(obj.theta0, fmt)
    prec = 2 * fmt.p + 64
    ref = _reference_evaluator(obj, fmt, reference, prec)
    j0, _ = exact_at_theta(obj, fmt, prec, theta) if ref.exact else mp_values(
        ref, ref.convert(np.asarray([theta], dtype=object)))
    j0 = j0 if ref.exact else j0[0]
    in_fmt = Evaluator(obj, fmt)
    rows, nfev = [], 0
    events: Counter[str] = Counter()
    errors: list[np.ndarray] = []
    for line in range(n_lines):
        signs = rng.choice([-1, 1], size=n)

        def in_format(block: np.ndarray) -> np.ndarray:
            with fp_events() as ev:
                vals, _ = in_fmt(in_fmt.convert(block) if fmt.dtype is None else as_dtype(block, fmt))
            events.update(ev)
            return vals

        line_sample = ecnoise_line(theta, fmt, nf, rel0, signs, in_format)
        nfev += nf * line_sample.attempts
        block, s, vals_f = line_sample.block, line_sample.rel_spacing, line_sample.values
        sigma_ec, status = line_sample.sigma, line_sample.status
        e = _deviations(vals_f, mp_values(ref, ref.convert(block))[0], prec)
        finite = np.isfinite(e)
        errors.append(e[finite])
        rows.append(
            {
                "line": line,
                "rel_spacing": s,
                "sigma_ecnoise": sigma_ec,
                "status": status,
                "sigma_direct": float(np.std(e[finite], ddof=1)) if finite.sum() > 1 else np.inf,
                "n_nonfinite": int((~finite).sum()),
            }
        )
    lines = pd.DataFrame(rows)
    all_e = np.concatenate(errors)
    usable = [e for e in errors if e.size > 1]
    pooled = float(np.sqrt(np.mean([np.var(e, ddof=1) for e in usable]))) if usable else np.inf
    detected = lines.loc[lines["status"] == 1, "sigma_ecnoise"]
    return NoiseResult(
        objective=obj.name,
        format=fmt.name,
        value=abs(float(formats.exact_mpf(j0))),
        u=fmt.u,
        sigma_ecnoise=float(np.median(detected)) if len(detected) else math.nan,
        sigma_direct=pooled,
        bias_direct=float(np.mean(all_e)) if all_e.size else np.inf,
        rms_direct=float(np.sqrt(np.mean(all_e**2))) if all_e.size else np.inf,
        lines=lines,
        nfev=nfev,
        n_nonfinite=int(lines["n_nonfinite"].sum()),
        fp_events=dict(events),
    )


def _reference_evaluator(obj: Objective, fmt: formats.Format, reference: Any, prec: int) -> Evaluator:
    """The evaluator the direct estimate compares with: exact, or a wide hardware format on the
    format's points, data and constants."""
    if isinstance(reference, str) and reference == "exact":
        return Evaluator.reference(obj, fmt, prec, backend="arb")
    wide = validation.one_format("reference", reference)
    if isinstance(wide, formats.Policy) or wide.dtype is None or wide.p < 2 * fmt.p + 4:
        raise ValueError(f"reference: {wide.name!r} must be 'exact' or a plain hardware format of "
                         f"at least {2 * fmt.p + 4} bits for {fmt.name}")
    return Evaluator(obj, formats.policy(wide, data=fmt.data))


def _deviations(values: np.ndarray, exact: np.ndarray, prec: int) -> np.ndarray:
    """J_F - J per point, each difference formed at ``prec`` bits and converted to float64."""
    with mpmath.workprec(prec):
        return np.array([float(formats.exact_mpf(a) - formats.exact_mpf(b))
                         for a, b in zip(values, exact, strict=True)])


def as_dtype(block: np.ndarray, fmt: formats.Format) -> np.ndarray:
    """Exact values of the format (float64, or mpf) as an array of its dtype."""
    assert fmt.dtype is not None
    if block.dtype == np.float64:
        return block.astype(fmt.dtype)
    out = np.empty(block.shape, dtype=fmt.dtype)
    flat = out.reshape(-1)
    for k, v in enumerate(block.reshape(-1)):
        flat[k] = fmt.from_mpf(v)
    return out
