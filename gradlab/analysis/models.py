"""Error models of finite differences: the formulas the tables set beside the measurement.

* truncation: the leading Taylor term ``C h**q phi^(q+1)(0)`` of the scheme
  (central: h**2 J'''/6);
* rounding: ``sigma_F sqrt(sum c_j**2) / h`` with sigma_F the noise level of J
  in the format (the standard deviation of independent errors in the stencil's
  values), and ``u |g_i|`` for the complex step, which has no cancellation;
* the classical optimal steps and best errors (docs/references.md): forward
  h* = 2 sqrt(eps_f / M2), best 2 sqrt(eps_f M2); central h* = (3 eps_f / M3)**(1/3),
  best (9/8)**(1/3) eps_f**(2/3) M3**(1/3).
"""

from __future__ import annotations

import math

import numpy as np

from gradlab.arithmetic.schemes import Scheme

__all__ = [
    "model_round", "model_trunc", "optimal_step_bound", "predicted_error", "predicted_minimum",
]


def model_trunc(scheme: Scheme, h: float, derivative: float | None) -> float:
    """Leading truncation term ``C h**q d`` with d the (q+1)-th diagonal derivative.

    Returns NaN only when the derivative was not computed (``None``).
    """
    if derivative is None:
        return math.nan
    return float(scheme.leading) * h**scheme.order * derivative


def model_round(scheme: Scheme, h: float, sigma: float, u: float, grad: float) -> float:
    """Standard deviation of the rounding error of the scheme at step h.

    Parameters
    ----------
    sigma : float
        Noise level of J in the format.
    u : float
        Unit roundoff (used by the complex step, whose error is about u |g|).
    grad : float
        The exact partial derivative.
    """
    if scheme.complex_step:
        return u * abs(grad)
    return sigma * scheme.weight_norm / h


def optimal_step_bound(order: int, eps_f: float, m: float) -> tuple[float, float]:
    """Classical bound-minimising step and error for forward (1) or central (2) differences.

    Forward: |err| <= M2 h / 2 + 2 eps_f / h; central: |err| <= M3 h**2 / 6 + eps_f / h.

    Examples
    --------
    >>> h, e = optimal_step_bound(2, 1e-16, 1.0)
    >>> round(h / (3e-16) ** (1 / 3), 12), round(e / (1.125 ** (1 / 3) * 1e-16 ** (2 / 3)), 12)
    (1.0, 1.0)
    """
    if eps_f <= 0 or m <= 0:
        raise ValueError("eps_f and m must be positive")
    if order == 1:
        h = 2 * math.sqrt(eps_f / m)
        return h, m * h / 2 + 2 * eps_f / h
    if order == 2:
        h = (3 * eps_f / m) ** (1 / 3)
        return h, m * h**2 / 6 + eps_f / h
    raise ValueError(f"order must be 1 (forward) or 2 (central), got {order}")


def predicted_minimum(
    scheme: Scheme, derivatives: np.ndarray, sigma: float, u: float, grad: np.ndarray
) -> tuple[float, float, str]:
    """Step and value of the minimum of the modelled relative error E(h).

    The model adds the per-coordinate parts in quadrature,
    ``||e(h)||**2 = sum_i (C h**q d_i)**2 + sum_i r_i(h)**2`` with r_i the rounding
    model of :func:`model_round`, and ``E = ||e|| / (2 ||g||)`` (the exercise's
    normalisation when the FD gradient is close to g). For the difference schemes
    ``A h**(2q) + B h**-2`` is least at ``h* = (B / (q A))**(1 / (2q + 2))``.

    Parameters
    ----------
    derivatives : ndarray
        The (q+1)-th diagonal derivatives d_i.
    sigma : float
        Noise level of J in the format.
    grad : ndarray
        The exact gradient (same coordinates).

    Returns
    -------
    h_opt, e_opt : float
    kind : str
        ``"minimum"``; for the complex step, whose rounding does not grow as h
        shrinks, ``"plateau"`` with h_opt the step below which E stays at e_opt.
    """
    d = np.asarray(derivatives, dtype=np.float64)
    g = np.asarray(grad, dtype=np.float64)
    if not (np.isfinite(sigma) and np.all(np.isfinite(d))):
        return math.nan, math.inf, "no model: J or its noise not finite"
    gnorm = float(np.linalg.norm(g))
    c = float(scheme.leading)
    q = scheme.order
    a = c * c * float(np.sum(d * d))
    if scheme.complex_step:
        floor = u * gnorm
        h = (floor**2 / a) ** (1 / (2 * q)) if a > 0 else math.inf
        return h, floor / (2 * gnorm), "plateau"
    b = d.size * (sigma * scheme.weight_norm) ** 2
    if a == 0 or b == 0:
        return (math.inf if a == 0 else 0.0), 0.0, "unbounded"
    h = (b / (q * a)) ** (1 / (2 * q + 2))
    err = math.sqrt(a * h ** (2 * q) + b / h**2)
    return h, err / (2 * gnorm), "minimum"


def predicted_error(
    scheme: Scheme, derivatives: np.ndarray, sigma: float, grad: np.ndarray, h: float
) -> float:
    """The modelled ``||e(h)|| / (2 ||g||)`` at one step for all coordinates (the model of
    :func:`predicted_minimum`, evaluated at ``h`` rather than at its minimum)."""
    d = np.asarray(derivatives, dtype=np.float64)
    gnorm = float(np.linalg.norm(np.asarray(grad, dtype=np.float64)))
    if gnorm == 0 or not np.isfinite(sigma):
        return math.inf
    a = float(scheme.leading) ** 2 * float(np.sum(d * d))
    b = d.size * (sigma * scheme.weight_norm) ** 2
    return math.sqrt(a * h ** (2 * scheme.order) + b / h**2) / (2 * gnorm)
