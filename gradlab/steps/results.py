"""The result every step rule returns, and its status codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

STATUS = {
    0: "success",
    1: "iteration limit reached; last step returned",
    2: "no acceptable step found; fallback step returned",
    3: "noise not detected",
    4: "J not finite at a trial point",
    5: "truncation not detected; step capped",
}


@dataclass(frozen=True)
class StepResult:
    """The step a rule chose, per coordinate, and what it cost.

    Attributes
    ----------
    rule : str
    format, scheme : str
    h : ndarray of float, shape (N,)
        The chosen step per coordinate (nominal, before rounding into the format).
    nfev : int
        Evaluations of J spent choosing it (in the format).
    status : ndarray of int, shape (N,)
        Per coordinate, a code of :data:`STATUS` (0 is success).
    approx : ndarray or None
        The derivative the rule itself produced, for rules that produce one
        (Ridders, the peers); None otherwise.
    info : dict
        Rule-specific diagnostics (noise estimates, iterations, ...).
    """

    rule: str
    format: str
    scheme: str
    h: np.ndarray
    nfev: int
    status: np.ndarray
    approx: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per coordinate: rule, format, scheme, coord, h, status, message."""
        df = pd.DataFrame({
            "rule": self.rule, "format": self.format, "scheme": self.scheme,
            "coord": np.arange(self.h.size), "h": self.h, "status": self.status,
            "message": [STATUS.get(int(s), "?") for s in self.status],
        })
        if self.approx is not None:
            df["approx"] = self.approx
        df.attrs["nfev"] = self.nfev
        return df
