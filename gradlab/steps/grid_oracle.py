"""The oracle: the grid steps that minimise the exact error."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradlab.analysis.engine import fd_gradient
from gradlab.analysis.errors import relative_error
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic.objective import Objective


@dataclass(frozen=True)
class Oracle:
    """The steps that minimise the exact error, found on a grid.

    Attributes
    ----------
    steps : ndarray
        The grid.
    h : ndarray, shape (N,)
        Per coordinate, the grid step with the least |g_fd,i - g_i|.
    err : ndarray, shape (N,)
        That least error.
    h_global : float
        The grid step with the least relative error of the whole gradient.
    e_global : float
        That error, ``||g_fd - g|| / (||g_fd|| + ||g||)``.
    e_per_coordinate : float
        The relative error of the gradient assembled from each coordinate's best step.
    """

    steps: np.ndarray
    h: np.ndarray
    err: np.ndarray
    h_global: float
    e_global: float
    e_per_coordinate: float


def oracle(
    obj: Objective, grad: np.ndarray, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", steps: np.ndarray | None = None,
) -> Oracle:
    """The best steps on a log grid, judged against the exact gradient ``grad``.

    Parameters
    ----------
    obj : Objective
    grad : ndarray
        The exact gradient at the format's theta (:func:`gradlab.analysis.exact`).
    steps : ndarray, optional
        Default: 85 log-spaced steps from 1e-14 to 1 (ratio 10**(1/6)).
    """
    grid = np.logspace(-14, 0, 85) if steps is None else np.asarray(steps, dtype=np.float64)
    g = np.asarray(grad, dtype=np.float64)
    approx = np.stack([fd_gradient(obj, format, scheme, h) for h in grid])  # (S, N)
    err = np.abs(approx - g[None, :])
    err = np.where(np.isfinite(err), err, np.inf)
    best = np.argmin(err, axis=0)
    cols = np.arange(g.size)
    e_rows = np.array([relative_error(a, g) for a in approx])
    k = int(np.argmin(e_rows))
    return Oracle(steps=grid, h=grid[best], err=err[best, cols], h_global=float(grid[k]),
                  e_global=float(e_rows[k]),
                  e_per_coordinate=relative_error(approx[best, cols], g))
