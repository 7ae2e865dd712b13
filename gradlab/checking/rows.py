"""The rows of a gradient check: the points J is evaluated at and the FD quotients.

A row is one coordinate (``mode="full"``) or one random direction
(``mode="directional"``) of :func:`gradlab.check`. Along a coordinate the
points are the stencil's, :func:`gradlab.arithmetic.stencil.stencil`, the one
constructor of ``fl(theta_i + fl(k_j fl(h)))`` that the engine and the step rules use
too; along a direction they are built by :func:`directional_points`. Either way the
displacement each point really has from theta is measured after rounding, and the
quotient is taken against that displacement, so the representation error of the step
does not enter the check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.objective import Objective
from gradlab.arithmetic.stencil import realised_offsets, stencil

__all__ = [
    "RowPoints",
    "branch_kinks",
    "directional_derivative",
    "directional_points",
    "fd_rows",
    "gradient_noise",
    "row_points",
]


@dataclass(frozen=True)
class RowPoints:
    """The stencil points of every row, and how far each really is from theta.

    Attributes
    ----------
    points : ndarray, shape (R, J, N)
        Point j of row r, in the format's dtype (R rows, J offsets, N coordinates).
    shift : ndarray of float64, shape (R, J, N)
        ``points - theta``, exact where float64 holds it, else correctly rounded.
    """

    points: np.ndarray
    shift: np.ndarray


def directional_points(theta: np.ndarray, ts: Any, v: np.ndarray,
                       fmt: fmts.Format) -> np.ndarray:
    """The points ``theta + t v``, one per ``t``: formed in float64, rounded once to the format.

    Off the coordinate axes there is no single step to round first, as the stencil does
    along an axis: ``theta_n + t v_n`` is computed in float64 and then rounded once per
    coordinate to the format (:func:`gradlab.arithmetic.formats.round_array`). Callers
    measure the displacement the rounded point has, rather than assume ``t v``.

    Parameters
    ----------
    theta : ndarray, shape (N,)
        Values of the format.
    ts : array_like of float, shape (K,)
        The multiples of ``v``.
    v : ndarray of float, shape (N,)
        The direction.
    fmt : Format

    Returns
    -------
    ndarray, shape (K, N), the format's dtype
    """
    t = np.asarray(ts, dtype=np.float64)
    return fmts.round_array(theta.astype(np.float64)[None, :] + t[:, None] * v[None, :], fmt)


def row_points(theta: np.ndarray, sch: schs.Scheme, h: np.ndarray, dirs: np.ndarray | None,
               fmt: fmts.Format) -> RowPoints:
    """Every row's stencil points: row r moves coordinate r (``dirs`` None, R = N) or along
    ``dirs[r]``.

    Coordinate rows are :func:`gradlab.arithmetic.stencil.stencil`'s points and realised
    offsets (``theta_r``, ``h[r]``, the scheme's offsets); direction rows are
    :func:`directional_points` at ``k_j h[r]``.
    """
    n_rows = len(h)
    if dirs is None:
        st = stencil(theta, h, sch.offsets, fmt)
        points = np.broadcast_to(theta, (n_rows, len(sch.offsets), theta.size)).copy()
        shift = np.zeros(points.shape)
        rows = np.arange(n_rows)
        points[rows, :, rows] = st.points
        shift[rows, :, rows] = st.offsets
        return RowPoints(points, shift)
    ks = np.asarray(sch.offsets)
    points = np.stack([directional_points(theta, ks * h[r], dirs[r], fmt) for r in range(n_rows)])
    return RowPoints(points, realised_offsets(points, theta, fmt))


def fd_rows(cf: CoordinateFunction, sch: schs.Scheme, h: np.ndarray, dirs: np.ndarray | None,
            grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The FD quotient of every row, and the checked gradient along the same displacement.

    Along a coordinate the weights are solved for the realised offsets, so the quotient
    estimates dJ/dtheta_r itself (NaN where the step did not move the coordinate); the
    gradient it is compared with is ``grad[r]``. Along a direction the quotient
    ``sum_j c_j J(x_j) / h`` is compared with ``grad . (sum_j c_j delta_j / h)``, the
    displacement the points really have, instead of ``grad . v``.

    Parameters
    ----------
    cf : CoordinateFunction
        J in the format (evaluations counted).
    sch : Scheme
    h : ndarray of float, shape (R,)
        The nominal step of each row.
    dirs : ndarray, shape (R, N), or None
        The directions; None for coordinate rows (R = N).
    grad : ndarray of float64, shape (N,)
        The gradient being checked.

    Returns
    -------
    approx, expected : ndarray of float64, shape (R,)
    """
    rp = row_points(cf.theta, sch, h, dirs, cf.fmt)
    n_rows, n_offsets = rp.points.shape[:2]
    vals = cf.evaluate(rp.points.reshape(n_rows * n_offsets, -1)).reshape(n_rows, n_offsets)
    if dirs is not None:
        c = np.array([float(w) for w in sch.weights])
        eff = np.einsum("j,rjn->rn", c, rp.shift) / h[:, None]
        return (vals @ c) / h, eff @ grad
    approx = np.empty(n_rows)
    for r in range(n_rows):
        t = rp.shift[r, :, r]
        if len(set(t.tolist())) < len(t):  # the step did not move the coordinate
            approx[r] = np.nan
            continue
        # the weights of the first derivative for these very offsets (Taylor moments)
        v = np.array([[tj**m / math.factorial(m) for tj in t] for m in range(len(t))])
        e1 = np.zeros(len(t))
        e1[1] = 1.0
        with np.errstate(invalid="ignore", over="ignore"):  # a non-finite J: NaN, flagged by the caller
            approx[r] = float(np.linalg.solve(v, e1) @ vals[r])
    return approx, grad


def branch_kinks(obj: Objective, theta: np.ndarray, fmt: fmts.Format, sch: schs.Scheme,
                 h: np.ndarray, dirs: np.ndarray | None) -> np.ndarray:
    """Rows whose stencil points took other branches than theta (exact, from xp's records).

    The points are :func:`row_points`', the very ones :func:`fd_rows` evaluates.
    """
    need = [j for j, k in enumerate(sch.offsets) if k != 0]
    points = row_points(theta, sch, h, dirs, fmt).points[:, need]
    n_rows = points.shape[0]
    _, sigs = Evaluator(obj, fmt, record_branches=True)(
        np.concatenate([theta[None, :], points.reshape(n_rows * len(need), -1)]))
    if sigs is None:
        return np.zeros(n_rows, dtype=bool)
    center, rest = sigs[0], np.asarray(sigs[1:], dtype=object).reshape(n_rows, len(need))
    return np.array([any(s != center for s in row) for row in rest])


def directional_spacing(cf: CoordinateFunction, order: int, sigma: float) -> float:
    """The pilot's spacing along a direction: where an ``order``-th difference's rounding
    (noise ``sigma``) is about its truncation for unit derivatives, on theta's rms scale."""
    scale = max(1.0, float(np.sqrt(np.mean(cf.theta.astype(np.float64) ** 2))))
    j0 = abs(cf.center())
    return min(0.1, (sigma / max(j0, 1e-300)) ** (1 / (order + 2))) * scale


def directional_derivative(cf: CoordinateFunction, dirs: np.ndarray, order: int,
                           sigma: float) -> np.ndarray:
    """The ``order``-th derivative of ``t -> J(theta + t v)`` for each direction v.

    From a pilot stencil of :func:`directional_points`, spaced where its rounding
    (noise ``sigma``) is about its truncation for unit derivatives.
    """
    k_max = order // 2 + 1
    ks = tuple(range(-k_max, k_max + 1))
    s = directional_spacing(cf, order, sigma)
    pts = np.concatenate([directional_points(cf.theta, [k * s for k in ks], v, cf.fmt)
                          for v in dirs])
    vals = cf.evaluate(pts).reshape(len(dirs), len(ks))
    wd = np.array([float(x) for x in schs.fd_weights(ks, order)])
    return np.asarray(np.where(np.isfinite(vals), vals, 0.0) @ wd / s**order)


def gradient_noise(gfun: Callable[[np.ndarray], np.ndarray], theta: np.ndarray,
                   fmt: fmts.Format, n: int = 16, seed: int = 1) -> tuple[np.ndarray, int]:
    """The rounding error of each gradient component in its format, as a sample spread.

    The gradient is evaluated at ``n`` points whose coordinates are theta's moved by -1, 0
    or +1 ulp of the format at random: a change of the last bit changes the rounding of
    every operation after it, so the spread of g_i over these points samples g_i's rounding
    error (its smooth change over one ulp, ``|H| ulp``, adds a little: conservative).
    Measured on MLPs in bfloat16, float16 and their mixed policies, the true error is
    below 2-3 times this spread in 95% of components; ECnoise along a line through theta,
    used before, missed the noise in most components (its steps of sqrt(u) |theta| are
    smooth-dominated in narrow formats), leaving errors up to 1000 times the floor u |g_i|.

    Returns
    -------
    sigma : ndarray
        The sample standard deviation (``n - 1`` degrees of freedom) of each component; 0
        where every point gave the same value (the caller floors it at u |g_i|).
    n : int
        The number of gradient evaluations.
    """
    rng = np.random.default_rng(seed)
    t64 = theta.astype(np.float64)
    ulp = np.abs(np.spacing(theta)).astype(np.float64)
    vals = np.stack([np.asarray(gfun(fmts.round_array(t64 + rng.integers(-1, 2, t64.size) * ulp,
                                                      fmt)), dtype=np.float64)
                     for _ in range(n)])  # (n, N)
    with np.errstate(invalid="ignore"):
        sigma = np.std(vals, axis=0, ddof=1)
    return np.where(np.isfinite(sigma), sigma, 0.0), n
