"""The write-once objective and its evaluation in any namespace."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from gradlab.arithmetic.namespaces import Namespace, NumpyNamespace

__all__ = ["Objective", "evaluate", "fp_events"]

ObjectiveFn = Callable[[Any, Namespace], Any]


@dataclass(frozen=True, eq=False)
class Objective:
    """A scalar objective J(theta), written once for every format.

    Parameters
    ----------
    fn : callable
        ``fn(theta, xp) -> scalar``. ``theta`` is the parameter vector (with a
        leading batch axis when evaluated in batches) and ``xp`` the evaluation
        namespace (:mod:`gradlab.arithmetic.namespaces`); data and constants must enter
        through ``xp.asarray`` so they are rounded to the format like theta.
    theta0 : array_like
        The point of interest: a finite 1-D vector, taken as exact float64 values.
    grad : callable, optional
        ``grad(theta, xp) -> array of shape (N,)``: an analytic gradient written
        the same way (the gradient a user wants to check, or a closed form).
    name : str
        Label used in tables.
    vectorized : bool, optional
        Whether ``fn`` evaluates a batch of points in one call. ``None`` (the
        default) tests it once on two points and falls back to a point-by-point
        loop, with a warning, if the batched call fails or disagrees.

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> obj = gl.Objective(lambda t, xp: xp.sum(xp.exp(t)), np.zeros(3), name="expsum")
    >>> obj.n_params
    3
    """

    fn: ObjectiveFn
    theta0: np.ndarray
    grad: ObjectiveFn | None = None
    name: str = "objective"
    vectorized: bool | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise TypeError(f"fn must be callable, got {type(self.fn).__name__}")
        if self.grad is not None and not callable(self.grad):
            raise TypeError(f"grad must be callable or None, got {type(self.grad).__name__}")
        try:
            theta = np.array(self.theta0, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"theta0 must be an array of real numbers: {exc}") from None
        if theta.ndim != 1 or theta.size == 0:
            raise ValueError(f"theta0 must be a non-empty 1-D vector, got shape {theta.shape}")
        if not np.all(np.isfinite(theta)):
            bad = np.flatnonzero(~np.isfinite(theta))[:5].tolist()
            raise ValueError(f"theta0 must be finite; non-finite entries at {bad}")
        theta.setflags(write=False)
        object.__setattr__(self, "theta0", theta)

    @property
    def n_params(self) -> int:
        """Number of parameters N."""
        return int(self.theta0.size)

    @cached_property
    def batch_safe(self) -> bool:
        """Whether batched evaluation agrees with point-by-point evaluation."""
        if self.vectorized is not None:
            return self.vectorized
        pts = np.stack([self.theta0, self.theta0 * (1 + 2.0**-10) + 2.0**-12])
        single = [_evaluate_one(self, p, NumpyNamespace("float64")) for p in pts]
        try:
            with np.errstate(all="ignore"):
                batched = _call_batched(self, pts, NumpyNamespace("float64", batch_ndim=1))
            ok = bool(np.allclose(np.asarray(batched, dtype=np.float64), single,
                                  rtol=1e-12, atol=0, equal_nan=True))
        except Exception:
            ok = False
        if not ok:
            warnings.warn(
                f"objective {self.name!r} is not batch-safe (see gradlab.arithmetic.namespaces); "
                "evaluating it point by point, which is slower",
                stacklevel=3,
            )
        return ok


@contextmanager
def fp_events() -> Iterator[Counter[str]]:
    """Count numpy floating-point events (overflow, underflow, invalid, divide).

    Floating-point events are data here: inside the block numpy calls a counter
    instead of warning, and the caller records the counts.
    """
    counts: Counter[str] = Counter()

    def count(kind: str, flag: int) -> None:
        for name in kind.split(" or "):
            counts[name.strip()] += 1

    old = np.seterrcall(count)
    try:
        with np.errstate(all="call"):
            yield counts
    finally:
        np.seterrcall(old)


def _check_scalar(obj: Objective, value: Any) -> Any:
    shape = np.shape(value)
    if shape != ():
        raise ValueError(
            f"fn of objective {obj.name!r} must return a scalar J, got shape {shape}"
        )
    return value


def _evaluate_one(obj: Objective, point: np.ndarray, ns: Namespace) -> Any:
    value = _check_scalar(obj, obj.fn(ns.from_values(point), ns))
    return np.asarray(value)[()]


def _call_batched(obj: Objective, points: np.ndarray, ns: Namespace) -> np.ndarray:
    out = obj.fn(ns.from_values(points), ns)
    out = np.asarray(out)
    b = points.shape[0]
    if out.shape == (1,) and b != 1:
        out = np.broadcast_to(out, (b,))
    if out.shape != (b,):
        raise ValueError(
            f"fn of objective {obj.name!r} must return a scalar J per point; "
            f"a batch of {b} points gave shape {out.shape}"
        )
    return out


def evaluate(
    obj: Objective, points: np.ndarray, make_ns: Callable[[int], Namespace]
) -> tuple[np.ndarray, list[bytes] | None]:
    """Evaluate J at each row of ``points``.

    Parameters
    ----------
    obj : Objective
    points : ndarray, shape (B, N)
        Points already in the namespace's number type (format dtype or exact mpf).
    make_ns : callable
        ``make_ns(batch_ndim)`` builds a fresh namespace for the evaluation.

    Returns
    -------
    values : ndarray, shape (B,)
    signatures : list of bytes or None
        Branch signature per point, if the namespace records branches.
    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != obj.n_params:
        raise ValueError(f"points must have shape (B, {obj.n_params}), got {points.shape}")
    if obj.batch_safe:
        ns = make_ns(1)
        values = _call_batched(obj, points, ns)
        sigs = ns.branch_signature() if ns.branches is not None else None
        if sigs == []:
            sigs = [b""] * points.shape[0]
        return values, sigs
    values = np.empty(points.shape[0], dtype=getattr(make_ns(0), "dtype", object))
    sigs_l: list[bytes] = []
    record = False
    for k, p in enumerate(points):
        ns = make_ns(0)
        values[k] = _evaluate_one(obj, p, ns)
        if ns.branches is not None:
            record = True
            s = ns.branch_signature()
            sigs_l.append(s[0] if s else b"")
    return values, (sigs_l if record else None)
