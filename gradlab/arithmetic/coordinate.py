"""J in a format along coordinate lines, every evaluation counted: what step rules and the
checker see of an objective."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic.evaluator import Evaluator
from gradlab.arithmetic.objective import Objective, fp_events


class CoordinateFunction:
    """J in a format along coordinate lines, with every evaluation counted.

    Parameters
    ----------
    f : Objective or callable
        An Objective (evaluated in the format, batched) or a plain callable
        ``f(x) -> scalar`` on a 1-D array of the format's dtype. A callable that
        returns another dtype is reported in ``upcasts`` (its values are then not
        the format's), not silently accepted.
    theta : array_like, optional
        The point; rounded once to the format. Defaults to an Objective's theta0.
    format : str or Format

    Attributes
    ----------
    nfev : int
        Evaluations so far.
    theta : ndarray
        theta in the format.
    """

    def __init__(self, f: Objective | Callable[[np.ndarray], Any], theta: Any = None,
                 format: fmts.Format | str = "float64") -> None:
        if theta is None:
            if not isinstance(f, Objective):
                raise ValueError("theta is required when f is a plain callable")
            theta = f.theta0
        self.fmt = fmts.get(format)
        if self.fmt.dtype is None:
            raise ValueError("step rules run in hardware formats; got an emulated format")
        if isinstance(self.fmt, fmts.Policy) and not isinstance(f, Objective):
            raise ValueError(
                f"format {self.fmt.name!r} is a precision policy, which gradlab applies to an "
                "Objective's xp arithmetic; a plain callable computes in its own (numpy's): pass "
                f"the storage format {self.fmt.storage.name!r} for its dtype, or write it as an "
                "Objective")
        t = np.asarray(theta, dtype=np.float64)
        if t.ndim != 1 or t.size == 0:
            raise ValueError(f"theta must be a non-empty 1-D vector, got shape {t.shape}")
        if not np.all(np.isfinite(t)):
            raise ValueError("theta must be finite")
        self.theta = fmts.round_array(t, self.fmt)
        self.f = f
        self.nfev = 0
        self.upcasts = 0
        self.fp_events: dict[str, int] = {}

    @property
    def n(self) -> int:
        """Number of coordinates."""
        return int(self.theta.size)

    def points(self, coords: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Rows theta with ``theta[coords[r]] = values[r]`` (values in the format's dtype)."""
        coords = np.asarray(coords, dtype=int)
        rows = np.repeat(self.theta[None, :], coords.size, axis=0)
        rows[np.arange(coords.size), coords] = np.asarray(values).astype(self.fmt.dtype)
        return rows

    def evaluate(self, rows: np.ndarray) -> np.ndarray:
        """J at each row (already in the format's dtype), as float64; counts evaluations."""
        rows = np.asarray(rows).astype(self.fmt.dtype)
        self.nfev += rows.shape[0]
        with fp_events() as ev:
            if isinstance(self.f, Objective):
                vals, _ = Evaluator(self.f, self.fmt)(rows)
            else:
                out = [self.f(r) for r in rows]
                self.upcasts += sum(1 for v in out if np.asarray(v).dtype != self.fmt.dtype)
                vals = np.asarray([np.asarray(v).reshape(()) for v in out])
        for k, v in ev.items():
            self.fp_events[k] = self.fp_events.get(k, 0) + v
        return np.asarray(vals, dtype=np.float64)

    def center(self) -> float:
        """J at theta."""
        return float(self.evaluate(self.theta[None, :])[0])
