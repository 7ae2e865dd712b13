"""Sums and matrix products in a stated order and precision, computed by gradlab itself.

numpy and the BLAS choose the order of a sum (pairwise, blocked), its accumulator
(float16 sums accumulate in float32) and whether products are fused (FMA), and these
choices change with the memory layout, the CPU and the library version. A format's
arithmetic is a claim in every table, so gradlab states it and computes it:

* a sum is **sequential**: ``s_1 = x_1``, ``s_k = fl(s_{k-1} + x_k)``, over the reduced
  axes in row-major order, each partial sum rounded to the accumulator's format;
* a matrix product forms each product ``fl(a_ik b_kj)`` in the accumulator's format and
  sums them sequentially over ``k``;
* the result is rounded once from the accumulator to the output format (a no-op when they
  are the same: then every partial sum rounds to the format, as a plain format says).

Both run as numpy ufuncs on whole arrays (``np.add.accumulate`` for sums, one
multiply-add per ``k`` for products), so the rounding of each step is numpy's correctly
rounded elementwise arithmetic in the accumulator's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gradlab.arithmetic.formats import Format, get, round_array

__all__ = ["round_to", "sequential_matmul", "sequential_sum"]


def round_to(x: np.ndarray, fmt: Format, dtype: np.dtype[Any]) -> np.ndarray:
    """Values of at most 53 bits rounded once to ``fmt``, returned as ``dtype``.

    ``dtype`` holds fmt's values exactly: fmt's own dtype, a wider one, or their complex
    twin (the real and imaginary parts are rounded separately).
    """
    real = np.real(np.zeros((), dtype=x.dtype)).dtype
    if x.dtype == dtype and real == fmt.dtype and fmt == get(fmt.name):
        return x  # already values of fmt (fmt is its dtype's own format)
    if np.iscomplexobj(x):
        re = round_array(np.real(x).astype(np.float64), fmt)
        im = round_array(np.imag(x).astype(np.float64), fmt)
        out = np.empty(x.shape, dtype=dtype)
        out.real, out.imag = re, im
        return out
    return round_array(x.astype(np.float64), fmt).astype(dtype)


def sequential_sum(x: np.ndarray, axes: Sequence[int], acc: np.dtype[Any], keepdims: bool) -> np.ndarray:
    """The sequential sum of ``x`` over ``axes`` in dtype ``acc`` (not yet rounded to output).

    Parameters
    ----------
    x : ndarray
        Values exactly representable in ``acc`` (the caller casts them).
    axes : sequence of int
        Non-negative axes to reduce, in any order; reduced in row-major order of ``x``.
    acc : numpy.dtype
        The accumulator's dtype: every partial sum rounds to it.
    keepdims : bool
        Keep the reduced axes with length 1.
    """
    axes = sorted(set(axes))
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = np.transpose(x.astype(acc, copy=False), kept + axes)
    lead: tuple[int, ...] = tuple(moved.shape[: len(kept)])
    flat = moved.reshape((*lead, -1))
    if flat.shape[-1] == 0:
        out = np.zeros(lead, dtype=acc)
    else:
        out = np.add.accumulate(flat, axis=-1)[..., -1]
    if keepdims:
        out = out.reshape([1 if a in axes else x.shape[a] for a in range(x.ndim)])
    return out


def sequential_matmul(a: np.ndarray, b: np.ndarray, acc: np.dtype[Any]) -> np.ndarray:
    """``a @ b`` (both at least 2-D, batch axes broadcast) with sequential sums in ``acc``.

    Each product is rounded to ``acc`` (exact when the inputs' significands fit, as for
    bfloat16 or float16 inputs in float32) and added to the running sum, which is
    rounded to ``acc`` after every addition: ``s = fl(s + fl(a_ik b_kj))``.
    """
    a = a.astype(acc, copy=False)
    b = b.astype(acc, copy=False)
    n = a.shape[-1]
    if b.shape[-2] != n:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")
    shape = (*np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), a.shape[-2], b.shape[-1])
    if n == 0:
        return np.zeros(shape, dtype=acc)
    out = np.empty(shape, dtype=acc)
    np.multiply(a[..., :, 0:1], b[..., 0:1, :], out=out)
    term = np.empty(shape, dtype=acc)
    for k in range(1, n):
        np.multiply(a[..., :, k : k + 1], b[..., k : k + 1, :], out=term)
        np.add(out, term, out=out)
    return out
