"""The stencil: the points at which an FD quotient evaluates J, formed in the format.

Every FD evaluation in gradlab (the engine, every step rule, the checker) perturbs one
coordinate at the points

    x_j = fl(theta_i + fl(k_j * fl(h)))

with one rounding per operation and no other: ``fl(h)`` is the step as the format stores
it, ``fl(k_j fl(h))`` the offset as the format computes it, and the sum is rounded once
to the format. This module is the only place such points are built, so every caller
evaluates J at bit-identical points.

Why each rounding is single:

* ``fl(h)`` and ``fl(k fl(h))`` go through :func:`gradlab.arithmetic.formats.round_array`
  (one round-to-nearest-even from an exact float64) or, for emulated formats,
  :func:`~gradlab.arithmetic.formats.round_exact` on the exact product. The product
  ``k fl(h)`` is exact in float64 for the formats of at most 50 bits and the small
  integers a stencil uses; float64 and longdouble compute it in their own dtype, which
  is the correctly rounded product. (A cast of a float64 value with the dtype
  constructor is not relied on: a float64 -> bfloat16 conversion through float32
  double-rounds, e.g. 1 + 2**-8 + 2**-30 to 1.0 instead of 1.0078125.)
* ``theta_i + fl(k fl(h))`` is an IEEE addition of two values of the format in its
  dtype. numpy and ml_dtypes evaluate float16 and bfloat16 additions in float32 and
  round once more; that is still the correctly rounded sum, because float32 carries at
  least 2p + 2 bits of a p-bit format's operands (the classical condition under which
  double rounding of +, -, *, / and sqrt is innocuous). The tests check it bit for bit.

The realised offsets ``x_j - theta_i`` are returned as float64: exact wherever float64
holds the difference (always for formats of at most 26 bits near theta), otherwise the
correctly rounded value of the exact difference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from gradlab.arithmetic import formats as fmts

__all__ = ["Stencil", "realised_offsets", "stencil"]

_MAX_OFFSET = 1 << 20  # |k| fits in float64's spare bits for every format of <= 33 bits


@dataclass(frozen=True)
class Stencil:
    """The points of a coordinate stencil and the offsets the format realised.

    Attributes
    ----------
    h : ndarray
        ``fl(h)``, the step as the format stores it (shape of ``h``; format dtype, or
        object mpf for emulated formats).
    points : ndarray, shape (B..., J)
        ``fl(theta_i + fl(k_j fl(h)))``, B the broadcast shape of theta and h, J the
        number of offsets; format dtype, or object mpf for emulated formats.
    offsets : ndarray of float64, shape (B..., J)
        ``points - theta_i``, exact where float64 holds it, else correctly rounded.
    """

    h: np.ndarray
    points: np.ndarray
    offsets: np.ndarray


def _check_offsets(offsets: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(offsets)
    if not ks:
        raise ValueError("offsets must name at least one stencil offset")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or abs(int(k)) > _MAX_OFFSET:
            raise ValueError(f"offsets must be integers of magnitude <= {_MAX_OFFSET}, got {k!r}")
    return tuple(int(k) for k in ks)


def _scaled(h_f: np.ndarray, k: int, fmt: fmts.Format) -> np.ndarray:
    """``fl(k * h_f)`` in the format, one rounding."""
    if fmt.dtype is None:
        flat = [fmts.round_exact(mpmath.fmul(k, v, exact=True), fmt) for v in h_f.ravel()]
        return np.array(flat, dtype=object).reshape(h_f.shape)
    if fmt.p >= 53:
        with np.errstate(over="ignore"):
            return (k * h_f).astype(fmt.dtype)  # the dtype's own correctly rounded product
    return fmts.round_array(k * h_f.astype(np.float64), fmt)  # k * h_f exact in float64


def _added(theta: np.ndarray, d: np.ndarray, fmt: fmts.Format) -> np.ndarray:
    """``fl(theta + d)`` for values of the format, one rounding (broadcast)."""
    if fmt.dtype is None:
        t, dd = np.broadcast_arrays(theta, d)
        flat = [fmts.round_exact(mpmath.fadd(fmts.exact_mpf(a), b, exact=True), fmt)
                for a, b in zip(t.ravel(), dd.ravel(), strict=True)]
        return np.array(flat, dtype=object).reshape(t.shape)
    with np.errstate(over="ignore", invalid="ignore"):  # a point beyond the range is data
        return np.asarray(theta + d, dtype=fmt.dtype)


def realised_offsets(points: np.ndarray, theta: np.ndarray, fmt: fmts.Format | str) -> np.ndarray:
    """``points - theta`` as float64: exact where float64 holds it, else correctly rounded.

    Parameters
    ----------
    points, theta : ndarray
        Values of the format (broadcastable).
    fmt : Format or str
    """
    fmt = fmts.get(fmt)
    if fmt.dtype is None:
        p, t = np.broadcast_arrays(points, theta)
        flat = [float(mpmath.fsub(fmts.exact_mpf(a), fmts.exact_mpf(b), exact=True))
                for a, b in zip(p.ravel(), t.ravel(), strict=True)]
        return np.array(flat, dtype=np.float64).reshape(p.shape)
    wide = np.longdouble if fmt.p > 53 else np.float64
    a: Any = np.asarray(points).astype(wide)
    b: Any = np.broadcast_to(np.asarray(theta).astype(wide), a.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        d = a - b
        # TwoSum's error term: zero exactly when a - b is exact in the wide type
        bb = d - a
        err = (a - (d - bb)) + (-b - bb)
    out = d.astype(np.float64)
    inexact = np.isfinite(d) & (err != 0)
    if fmt.p > 53:  # longdouble -> float64 rounds again: exact only if it round-trips
        inexact |= np.isfinite(d) & (out.astype(wide) != d)
    for idx in zip(*np.nonzero(inexact), strict=True):
        exact = mpmath.fsub(fmts.exact_mpf(a[idx]), fmts.exact_mpf(b[idx]), exact=True)
        out[idx] = float(exact)  # mpf -> float rounds to nearest once
    return out


def stencil(theta: Any, h: Any, offsets: Sequence[int], fmt: fmts.Format | str) -> Stencil:
    """The points ``fl(theta + fl(k_j fl(h)))`` of the perturbed coordinate.

    Parameters
    ----------
    theta : array_like
        The coordinate's stored value(s): values of the format (its dtype, or mpf for an
        emulated format; other floats are rounded once to the format); broadcast
        against ``h``.
    h : array_like of float
        Nominal steps (float64, taken as exact).
    offsets : sequence of int
        The stencil's k_j.
    fmt : Format or str

    Returns
    -------
    Stencil

    Examples
    --------
    >>> import numpy as np
    >>> import ml_dtypes
    >>> h = 2.0**-8 * (1 + 2.0**-8 + 2.0**-30)  # fl(h) = 2**-8 * 1.0078125 in bfloat16
    >>> s = stencil(np.ones(1, dtype=ml_dtypes.bfloat16), [h], (-1, 1), "bfloat16")
    >>> s.points.astype(float).tolist(), s.offsets.tolist()
    ([[0.99609375, 1.0078125]], [[-0.00390625, 0.0078125]])
    """
    fmt = fmts.get(fmt)
    ks = _check_offsets(offsets)
    h64 = np.asarray(h, dtype=np.float64)
    theta_a = np.asarray(theta)
    if fmt.dtype is None:
        theta_a = theta_a.astype(object)
    elif theta_a.dtype != fmt.dtype:
        theta_a = fmts.round_array(theta_a.astype(np.float64), fmt)  # one rounding, not a cast
    h_f = fmts.round_array(h64, fmt)
    shape = np.broadcast_shapes(theta_a.shape, h64.shape)
    cols = [np.broadcast_to(_added(theta_a, _scaled(h_f, k, fmt), fmt), shape) for k in ks]
    points = np.stack(cols, axis=-1)
    offs = realised_offsets(points, np.asarray(theta_a)[..., None], fmt)
    return Stencil(h=h_f, points=points, offsets=offs)
