"""The error model's step, predicted from a few evaluations in the format."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradlab.analysis.models import predicted_error, predicted_minimum
from gradlab.analysis.noise import as_dtype, ecnoise_line, rounding_floor
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.arithmetic.stencil import stencil
from gradlab.steps.results import FunctionLike, Status, StepResult


@dataclass(frozen=True)
class OptimalStep:
    """The error model's step, predicted from a few evaluations in the format.

    Attributes
    ----------
    h : ndarray
        Per-coordinate step minimising that coordinate's predicted error.
    h_global : float
        One step for all coordinates, minimising the predicted error norm.
    predicted_error : float
        Predicted ``||g_fd - g|| / (2 ||g||)`` at ``h_global`` (the model's rel_2g,
        close to rel_sum while g_fd is close to g).
    nfev : int
        Evaluations spent, as counted by
        :class:`~gradlab.arithmetic.coordinate.CoordinateFunction`: the ECnoise lines,
        J at theta, one pilot stencil of ``2 K + 1`` points per coordinate (K =
        (q + 1) // 2 + 1; 5 points for forward and central) and, where the first
        cannot resolve the derivative from noise, a second, wider one.
    sigma : float
        The noise level of J estimated by ECnoise (NaN if not detected).
    derivative : ndarray
        Estimated (q+1)-th diagonal derivatives.
    grad_estimate : ndarray
        The gradient estimated from the same pilot evaluations.
    status : ndarray of int
        Per coordinate, a :class:`~gradlab.steps.results.Status` value.
    value : float
        J at theta in the format (where it is not finite, so is the pilot stencil of every
        coordinate, whose status is then ``NONFINITE``).
    """

    format: str
    scheme: str
    h: np.ndarray
    h_global: float
    predicted_error: float
    nfev: int
    sigma: float
    derivative: np.ndarray
    grad_estimate: np.ndarray
    status: np.ndarray
    value: float = math.nan

    def as_step_result(self, rule: str = "optimal_step") -> StepResult:
        """The per-coordinate steps as a :class:`StepResult`."""
        return StepResult(rule=rule, format=self.format, scheme=self.scheme, h=self.h,
                          nfev=self.nfev, status=self.status,
                          info={"h_global": self.h_global, "sigma": self.sigma,
                                "predicted_error": self.predicted_error})


def line_noise(cf: CoordinateFunction, n_lines: int, nf: int, seed: int) -> float:
    """ECnoise on lines of points exactly representable in the format (as
    :func:`gradlab.noise_level` samples them), median over the lines that detect noise."""
    rng = np.random.default_rng(seed)
    # float64 holds every value of a format of at most 53 bits exactly: the lines are then
    # built vectorised (noise.line_points), with no mpf per coordinate
    theta = (list(cf.theta.astype(np.float64)) if cf.fmt.p <= 53
             else [fmts.exact_mpf(t) for t in cf.theta])
    est = []

    def in_format(block: np.ndarray) -> np.ndarray:
        return cf.evaluate(as_dtype(block, cf.fmt))

    for _ in range(n_lines):
        signs = rng.choice([-1, 1], size=cf.n)
        line = ecnoise_line(theta, cf.fmt, nf, math.sqrt(cf.fmt.u), signs, in_format)
        if line.status == 1:
            est.append(line.sigma)
    return float(np.median(est)) if est else math.nan


def _pilot_derivatives(
    cf: CoordinateFunction, order: int, rel: float, sigma: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``order``-th diagonal derivative and the gradient, per coordinate, from one
    symmetric pilot stencil theta_i + k s_i (k = -K..K), s_i = rel max(|theta_i|, 1).

    Returns (derivative, gradient, finite, resolution): ``finite`` marks coordinates
    whose pilot values were all finite, ``resolution`` is the standard deviation the
    noise ``sigma`` of J alone gives the derivative estimate.
    """
    k_max = order // 2 + 1
    ks = tuple(range(-k_max, k_max + 1))
    n = cf.n
    theta = cf.theta.astype(np.float64)
    s = fmts.round_array(rel * np.maximum(np.abs(theta), 1.0), cf.fmt).astype(np.float64)
    points = stencil(cf.theta, s, ks, cf.fmt).points  # s is in the format: fl(theta + fl(k s))
    vals = cf.evaluate(cf.points(np.repeat(np.arange(n), len(ks)), points.ravel())).reshape(n, len(ks))
    finite = np.all(np.isfinite(vals), axis=1)
    v = np.where(np.isfinite(vals), vals, 0.0)
    wd = np.array([float(w) for w in schs.fd_weights(ks, order)])
    wg = np.array([float(w) for w in schs.fd_weights(ks, 1)])
    resolution = sigma * float(np.linalg.norm(wd)) / s**order  # per coordinate (s varies)
    return (v @ wd) / s**order, (v @ wg) / s, finite, resolution


def optimal_step(
    f: FunctionLike,
    theta: Any = None,
    format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central",
    *,
    n_lines: int = 2,
    nf: int = 9,
    seed: int = 0,
) -> OptimalStep:
    """Predict the best FD step from the error model, without a sweep.

    Cost: ECnoise on ``n_lines`` lines of ``nf`` points for the noise level of J,
    and one symmetric pilot stencil per coordinate (``2 K + 1`` points, K =
    (q+1)//2 + 1) for the (q+1)-th derivative that sets the truncation, plus a
    second, 8 times wider, where the first cannot resolve the derivative from noise. With them
    the model of :func:`gradlab.analysis.models.predicted_minimum` gives the per-coordinate
    step ``(sigma w / (sqrt(q) |C d_i|))**(1/(q+1))`` and the one step minimising
    the predicted error norm of the whole gradient.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
        Defaults to ``f.theta0`` for an Objective.
    format, scheme : str
    n_lines, nf, seed
        The ECnoise sample.

    Returns
    -------
    OptimalStep

    Examples
    --------
    >>> import gradlab as gl
    >>> res = gl.optimal_step(gl.objectives.seed_net(stable=True), format="float64")
    >>> 1e-6 < res.h_global < 1e-4, res.nfev
    (True, 489)
    """
    sch = validation.one_scheme("scheme", scheme)
    if sch.complex_step:
        raise ValueError("scheme: the complex step has no rounding/truncation trade-off to optimise")
    n_lines, nf = validation.integer("n_lines", n_lines, 1), validation.integer("nf", nf, 7)
    seed = validation.integer("seed", seed, 0)
    f = validation.function("f", f)
    cf = CoordinateFunction(f, validation.point("theta", theta, f), validation.one_format("format", format))
    q = sch.order
    sigma = line_noise(cf, n_lines, nf, seed)
    noise_found = np.isfinite(sigma)
    j0 = cf.center()  # one evaluation of J(theta), for the floor and the pilot spacing
    if not noise_found:
        sigma = rounding_floor(cf.fmt, j0)
    # pilot spacing: where a (q+1)-th difference's rounding is ~ its truncation for unit derivatives
    rel = (sigma / max(abs(j0), 1e-300) if noise_found else cf.fmt.u) ** (1 / (q + 3))
    rel = min(rel, 0.1)
    deriv, grad, finite, resolution = _pilot_derivatives(cf, q + 1, rel, sigma)
    # a derivative within three noise deviations of zero is not measured: truncation is
    # not detected along that coordinate (a quadratic's third derivative, a dead unit).
    # A wider pilot (8x, once) resolves smaller derivatives; where it still cannot, the
    # estimate's resolution bounds the derivative and the step is chosen for that bound.
    detected = finite & (np.abs(deriv) > 3 * resolution)
    if (~detected & finite).any() and rel < 0.1:
        d_w, _, f_w, r_w = _pilot_derivatives(cf, q + 1, min(8 * rel, 0.5), sigma)
        use = ~detected & finite & f_w
        deriv = np.where(use, d_w, deriv)
        resolution = np.where(use, r_w, resolution)
        detected = finite & (np.abs(deriv) > 3 * resolution)
    deriv = np.where(detected, deriv, 3 * resolution)
    c = float(sch.leading)
    w = sch.weight_norm
    status = np.full(cf.n, Status.SUCCESS)
    status[~finite] = Status.NONFINITE
    # the global step from the measured derivatives; with none measured anywhere the
    # gradient is in the pure rounding regime, where the largest step is best
    if detected.any():
        h_g, e_g, _ = predicted_minimum(sch, deriv[detected], sigma, cf.fmt.u, grad[detected])
    else:
        h_g = math.inf
    cap = float(np.max(np.maximum(np.abs(cf.theta.astype(np.float64)), 1.0)))
    if not np.isfinite(h_g) or h_g <= 0:
        h_g = cap
    h_g = min(h_g, cap)
    e_g = predicted_error(sch, deriv[finite], sigma, grad[finite], h_g)
    with np.errstate(divide="ignore", invalid="ignore"):  # non-finite h: the global step, below
        h = (sigma * w / (math.sqrt(q) * np.abs(c * deriv))) ** (1 / (q + 1))
    # no measurable truncation along a coordinate: the whole gradient's step serves it
    flat = ~np.isfinite(h) | (h > cap) | ~finite
    h = np.where(flat, h_g, h)
    status[(flat | ~detected) & finite] = Status.TRUNCATION_NOT_DETECTED
    # a step far above the global one rests on a (q+1)-th derivative estimated near zero,
    # where the terms the model omits take over: keep within a factor 4 of the global step
    h = np.minimum(h, 4 * h_g)
    if not noise_found:
        status[status == Status.SUCCESS] = Status.NOISE_NOT_DETECTED
    return OptimalStep(
        format=cf.fmt.name, scheme=sch.name, h=h, h_global=float(h_g),
        predicted_error=float(e_g), nfev=cf.nfev, sigma=float(sigma) if noise_found else math.nan,
        derivative=deriv, grad_estimate=grad, status=status, value=j0,
    )
