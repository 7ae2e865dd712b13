"""Checking the Jacobian of a vector-valued function through scalar checks.

A Jacobian ``D f(x)`` (M outputs, N inputs) is checked as the gradients of scalar
functions ``J_v(x) = <v, f(x)>``, whose gradient is the vector-Jacobian product
``v^T D f(x)``: exactly what a framework's backward computes for an output cotangent v.

* ``projections=k``: k random Rademacher vectors v. One wrong entry ``(m, n)`` of the
  Jacobian by ``delta`` shifts component n of every projection by ``v_m delta``, of the
  same size ``|delta|``; errors in several entries of one column cancel in a projection
  only for sign patterns of v that a fair coin gives with probability at most 1/2, so k
  projections miss them with probability at most ``2**-k``.
* ``projections="full"``: the unit vectors, one check per output (M checks): every
  entry is checked on its own.

Each projection is an ordinary :func:`gradlab.check`, with its step and tolerance from
the error model and the check's options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import validation
from gradlab.checking.check import CheckResult, check

__all__ = ["JacobianCheckResult", "check_jacobian"]


@dataclass(frozen=True)
class JacobianCheckResult:
    """The verdict of :func:`check_jacobian`.

    Attributes
    ----------
    passed : bool
        Every projection's check passed.
    decided : bool
        Every projection's check was decided.
    projections : ndarray, shape (K, M)
        The cotangents v, one per check.
    results : list of CheckResult
        One per projection.
    report : pandas.DataFrame
        The checks' reports one after the other, with a ``projection`` column.
    nfev, ngev : int
        Evaluations of f and of the Jacobian (or vector-Jacobian product), over all checks.
    """

    passed: bool
    decided: bool
    projections: np.ndarray
    results: list[CheckResult]
    report: pd.DataFrame
    nfev: int
    ngev: int

    def __str__(self) -> str:
        head = "passed" if self.passed else ("UNDECIDED" if not self.decided else "FAILED")
        failed = [k for k, r in enumerate(self.results) if not r.passed]
        where = f"; projections not passed: {failed}" if failed else ""
        return (f"Jacobian check ({len(self.results)} projections of {self.projections.shape[1]} "
                f"outputs): {head}{where}; {self.nfev} evaluations of f, {self.ngev} of the "
                f"Jacobian\n" + "\n".join(f"  [{k}] {r}" for k, r in enumerate(self.results)))


def _cotangents(projections: Any, m: int, seed: int) -> np.ndarray:
    if isinstance(projections, str):
        validation.choice("projections", projections, ["full"])
        return np.eye(m)
    k = validation.integer("projections", projections, 1)
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(k, m))


def _vjp_of(jac: Any, vjp: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | np.ndarray:
    """A vector-Jacobian product from exactly one of ``jac`` (callable or (M, N) array at
    theta) and ``vjp`` (callable ``vjp(x, v)``)."""
    if (jac is None) == (vjp is None):
        raise ValueError("check_jacobian needs exactly one of jac (the Jacobian) and vjp "
                         "(the vector-Jacobian product)")
    if vjp is not None:
        if not callable(vjp):
            raise TypeError(f"vjp must be a callable vjp(x, v), got {type(vjp).__name__}")
        return vjp
    if callable(jac):
        def from_jac(x: np.ndarray, v: np.ndarray) -> np.ndarray:
            jx = np.asarray(jac(x))
            if jx.ndim != 2 or jx.shape != (v.size, x.size):
                raise ValueError(f"jac must return an array of shape (M, N) = {(v.size, x.size)}, "
                                 f"got {jx.shape}")
            return np.asarray(v.astype(jx.dtype) @ jx)
        return from_jac
    arr = np.asarray(jac, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"jac must be a callable or a 2-D array, got shape {arr.shape}")
    return arr


def check_jacobian(
    f: Callable[[np.ndarray], Any],
    jac: Any = None,
    theta: Any = None,
    format: fmts.Format | str = "float64",
    *,
    vjp: Callable[[np.ndarray, np.ndarray], Any] | None = None,
    projections: int | str = 4,
    seed: int = 0,
    **options: Any,
) -> JacobianCheckResult:
    """Check a Jacobian (or a vector-Jacobian product) against finite differences.

    Parameters
    ----------
    f : callable
        ``f(x) -> array of M values`` on a 1-D array of the format's dtype (keeping it).
    jac : callable or array, optional
        ``jac(x)`` returning the (M, N) Jacobian, or that array at theta.
    theta : array_like
        The point (1-D; +-inf entries are masks, as in :func:`gradlab.check`).
    format : str
    vjp : callable, optional
        ``vjp(x, v)`` returning ``v^T D f(x)`` (what a backward pass computes), instead of jac.
    projections : int or "full"
        The number of random Rademacher cotangents, or "full" for one per output.
    seed : int
        The cotangents' seed (each check gets ``seed + k`` for its own sampling).
    **options
        Passed to each :func:`gradlab.check` (scheme, mode, false_alarm, reference_format, ...).

    Returns
    -------
    JacobianCheckResult

    Examples
    --------
    >>> import numpy as np, gradlab as gl
    >>> a = np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
    >>> f = lambda x: np.sin(a.astype(x.dtype) @ x)
    >>> jac = lambda x: np.cos(a @ x)[:, None] * a
    >>> gl.check_jacobian(f, jac, theta=[0.3, -0.2]).passed
    True
    """
    if not callable(f):
        raise TypeError(f"f must be a callable f(x) -> array, got {type(f).__name__}")
    seed = validation.integer("seed", seed, 0)
    x0 = validation.real_array("theta", theta)
    if x0.ndim != 1 or x0.size == 0:
        raise ValueError(f"theta must be a non-empty 1-D vector, got shape {x0.shape}")
    fmt = validation.one_format("format", format)
    if fmt.dtype is None:
        raise ValueError(f"format {fmt.name!r} is emulated; check_jacobian takes a hardware format")
    product = _vjp_of(jac, vjp)
    with np.errstate(invalid="ignore", over="ignore"):
        y0 = np.asarray(f(x0.astype(fmt.dtype)))  # the output size (+-inf masks pass through)
    if y0.ndim != 1 or y0.size == 0:
        raise ValueError(f"f must return a 1-D array of outputs, got shape {y0.shape}")
    vs = _cotangents(projections, y0.size, seed)
    results = []
    for k, v in enumerate(vs):
        def scalar(x: np.ndarray, v: np.ndarray = v) -> Any:
            y = np.asarray(f(x))
            return np.sum(v.astype(y.dtype) * y)

        if isinstance(product, np.ndarray):
            grad: Any = v @ product
        else:
            def grad(x: np.ndarray, v: np.ndarray = v) -> np.ndarray:
                return np.asarray(product(x, v.astype(np.asarray(x).dtype)))

        results.append(check(scalar, grad, theta, format, seed=seed + k, **options))
    frames = []
    for k, res in enumerate(results):
        rep = res.report.copy()
        rep.insert(0, "projection", k)
        frames.append(rep)
    return JacobianCheckResult(
        passed=all(r.passed for r in results), decided=all(r.decided for r in results),
        projections=vs, results=results, report=pd.concat(frames, ignore_index=True),
        nfev=sum(r.nfev for r in results), ngev=sum(r.ngev for r in results))
