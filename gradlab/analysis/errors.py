"""Error norms of an FD gradient against the exact one."""

from __future__ import annotations

import math

import numpy as np


def relative_error(approx: np.ndarray, grad: np.ndarray) -> float:
    """``||approx - g|| / (||approx|| + ||g||)``: inf when approx is not finite, 0/0 = 0."""
    a, g = np.asarray(approx, dtype=np.float64), np.asarray(grad, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        return math.inf
    num = float(np.linalg.norm(a - g))
    den = float(np.linalg.norm(a) + np.linalg.norm(g))
    return num / den if den > 0 else (0.0 if num == 0 else math.inf)
