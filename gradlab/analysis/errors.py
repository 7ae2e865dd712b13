"""The relative error E of an FD gradient, one function per normalisation.

With e = g_fd - g (norms are 2-norms over the coordinates):

* :func:`rel_sum` ``||e|| / (||g_fd|| + ||g||)``: the exercise's E, at most 1 for any
  g_fd of the right sign, and symmetric in g_fd and g;
* :func:`rel_2g` ``||e|| / (2 ||g||)``: rel_sum with g_fd replaced by g;
* :func:`rel_g` ``||e|| / ||g||``: the error relative to the exact gradient (the
  scaling study's E).

They take norms already computed (and already scaled when coordinates are sampled), as
floats or arrays, and share one set of conventions, so that no normalisation ever
returns a silent NaN:

* a non-finite ``||e||`` (inf or NaN: the FD gradient is not finite) gives inf;
* 0 / 0 gives 0 (an exact FD gradient of a zero gradient);
* x / 0 gives inf for x > 0;
* otherwise the quotient, rounded once (a finite error over an infinite norm is 0).

:func:`relative_error` is rel_sum of two vectors, for callers that hold the vectors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["rel_2g", "rel_g", "rel_sum", "relative_error"]


def _ratio(num: Any, den: Any) -> Any:
    """``num / den`` under the conventions of this module (elementwise; a scalar for scalars)."""
    n, d = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = n / d
    r = np.where((d == 0) & (n == 0), 0.0, r)
    r = np.where((d == 0) & (n != 0), np.inf, r)
    r = np.where(np.isfinite(n), r, np.inf)
    return r[()] if r.ndim == 0 else r


def rel_sum(err_norm: Any, approx_norm: Any, grad_norm: Any) -> Any:
    """``||e|| / (||g_fd|| + ||g||)``, the exercise's E (conventions: module docstring).

    Examples
    --------
    >>> float(rel_sum(1.0, 2.0, 2.0)), float(rel_sum(0.0, 0.0, 0.0)), float(rel_sum(np.inf, 1.0, 1.0))
    (0.25, 0.0, inf)
    """
    return _ratio(err_norm, np.asarray(approx_norm, dtype=np.float64) + grad_norm)


def rel_2g(err_norm: Any, grad_norm: Any) -> Any:
    """``||e|| / (2 ||g||)`` (conventions: module docstring)."""
    return _ratio(err_norm, 2 * np.asarray(grad_norm, dtype=np.float64))


def rel_g(err_norm: Any, grad_norm: Any) -> Any:
    """``||e|| / ||g||``, the error relative to the exact gradient (conventions: module docstring).

    Examples
    --------
    >>> rel_g(np.array([0.5, 0.0, 1.0]), 2.0).tolist(), float(rel_g(1.0, 0.0))
    ([0.25, 0.0, 0.5], inf)
    """
    return _ratio(err_norm, grad_norm)


def relative_error(approx: np.ndarray, grad: np.ndarray) -> float:
    """``||approx - g|| / (||approx|| + ||g||)``: :func:`rel_sum` of two gradient vectors.

    inf when ``approx`` is not finite; 0 when both vectors are zero.

    Examples
    --------
    >>> relative_error(np.array([1.0, 1.0]), np.array([1.0, 1.0])), relative_error([np.nan], [1.0])
    (0.0, inf)
    """
    a, g = np.asarray(approx, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        return math.inf
    return float(rel_sum(np.linalg.norm(a - g), np.linalg.norm(a), np.linalg.norm(g)))
