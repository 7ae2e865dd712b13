"""The write-once objective, the calls of its function and gradient in a namespace (each
confined to it by :meth:`~gradlab.arithmetic.namespaces.Namespace.call`), and the count of
floating-point events (evaluation itself: :class:`gradlab.arithmetic.evaluator.Evaluator`)."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from gradlab.arithmetic.namespaces import _SINKS, Namespace, NumpyNamespace

__all__ = ["Objective", "call_batched", "call_grad", "evaluate_one", "fp_events"]

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
        through ``xp.asarray`` so they are rounded to the format like theta. Arithmetic
        that leaves ``xp`` (numpy functions on its arrays, Python numbers out of them,
        results of another type) raises
        :class:`~gradlab.arithmetic.namespaces.NamespaceEscapeError` at evaluation.
    theta0 : array_like
        The point of interest: a finite, real 1-D vector, taken as exact float64 values.
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
        if np.iscomplexobj(self.theta0):
            # a float64 cast would drop the imaginary part without a word
            raise TypeError(f"theta0 must be real, got complex values "
                            f"({np.asarray(self.theta0).dtype}); the complex step is a scheme, "
                            "not a point")
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
        single = [evaluate_one(self, p, NumpyNamespace("float64")) for p in pts]
        try:
            with np.errstate(all="ignore"):
                batched = call_batched(self, pts, NumpyNamespace("float64", batch_ndim=1))
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
    _SINKS.stack.append(counts)  # events numpy cannot flag (ml_dtypes' formats)
    try:
        with np.errstate(all="call"):
            yield counts
    finally:
        _SINKS.stack.remove(counts)
        np.seterrcall(old)


def evaluate_one(obj: Objective, point: np.ndarray, ns: Namespace) -> Any:
    """J at one point (numbers of any exact type) in ``ns``: one number of the namespace."""
    value = ns.call(obj.fn, ns.from_values(point), f"fn of objective {obj.name!r}")
    if value.shape != ():
        raise ValueError(f"fn of objective {obj.name!r} must return a scalar J, got shape {value.shape}")
    return value[()]


def call_grad(obj: Objective, point: np.ndarray, ns: Namespace) -> np.ndarray:
    """``obj.grad`` at one point in ``ns``, confined like fn: an array of shape (N,)."""
    if obj.grad is None:
        raise ValueError(f"objective {obj.name!r} has no grad")
    g = ns.call(obj.grad, ns.from_values(point), f"grad of objective {obj.name!r}")
    if g.shape != (obj.n_params,):
        raise ValueError(f"grad of objective {obj.name!r} must return shape ({obj.n_params},), "
                         f"got {g.shape}")
    return g


def call_batched(obj: Objective, points: np.ndarray, ns: Namespace) -> np.ndarray:
    """J at each row of ``points`` in one call of fn (``ns`` has ``batch_ndim=1``)."""
    out = ns.call(obj.fn, ns.from_values(points), f"fn of objective {obj.name!r}")
    b = points.shape[0]
    if out.shape == (1,) and b != 1:
        out = np.broadcast_to(out, (b,))
    if out.shape != (b,):
        raise ValueError(
            f"fn of objective {obj.name!r} must return a scalar J per point; "
            f"a batch of {b} points gave shape {out.shape}"
        )
    return out
