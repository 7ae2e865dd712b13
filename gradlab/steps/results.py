"""What every step rule returns: :class:`StepResult` and its :class:`Status` codes (the
peers return them too), and :class:`StepRule`, the call every rule answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Protocol

import numpy as np
import pandas as pd

from gradlab.arithmetic.formats import Format
from gradlab.arithmetic.objective import Objective
from gradlab.arithmetic.schemes import Scheme

__all__ = ["STATUS", "FunctionLike", "Status", "StepResult", "StepRule"]

#: What a rule differentiates: an Objective, or a callable on arrays that keeps their dtype.
FunctionLike = Objective | Callable[[np.ndarray], Any]


class Status(IntEnum):
    """Per-coordinate outcome of a step rule (``StepResult.status`` holds these values).

    Every code but SUCCESS still comes with a usable step: the rule's fallback.

    Attributes
    ----------
    SUCCESS
        The rule's acceptance test passed.
    ITERATION_LIMIT
        The search ran out of iterations (or below the format's spacing); its last step
        is returned.
    NO_ACCEPTABLE_STEP
        No trial step passed the test (e.g. the search reached its smallest step with
        the values still too far apart, or GMSW's "constant?"); a fallback step is
        returned.
    NOISE_NOT_DETECTED
        The test passed, but with the noise level of one rounding of J because ECnoise
        detected no noise: the step may be too small for J's real noise.
    NONFINITE
        J was not finite at a trial point.
    TRUNCATION_NOT_DETECTED
        No truncation error was seen up to the rule's largest step (J looks linear, or
        odd for a central difference): the step is capped.
    """

    SUCCESS = 0
    ITERATION_LIMIT = 1
    NO_ACCEPTABLE_STEP = 2
    NOISE_NOT_DETECTED = 3
    NONFINITE = 4
    TRUNCATION_NOT_DETECTED = 5

    @property
    def message(self) -> str:
        """The one-line text tables show for the code."""
        return _MESSAGES[self]


_MESSAGES = {
    Status.SUCCESS: "success",
    Status.ITERATION_LIMIT: "iteration limit reached; last step returned",
    Status.NO_ACCEPTABLE_STEP: "no acceptable step found; fallback step returned",
    Status.NOISE_NOT_DETECTED: "noise not detected",
    Status.NONFINITE: "J not finite at a trial point",
    Status.TRUNCATION_NOT_DETECTED: "truncation not detected; step capped",
}

#: {code: message} for every :class:`Status`, as tables print them.
STATUS: dict[int, str] = {int(s): s.message for s in Status}


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
        Per coordinate, a :class:`Status` value (0 is success).
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


class StepRule(Protocol):
    """The call every step rule answers: ``rule(f, theta, format, scheme) -> StepResult``.

    A rule's own options (``noise``, ``maxiter``, ...) are keyword-only and optional, so
    every rule is a StepRule; pass them by calling the rule itself.
    """

    def __call__(self, f: FunctionLike, theta: Any = ..., format: Format | str = ...,
                 scheme: Scheme | str = ...) -> StepResult: ...
