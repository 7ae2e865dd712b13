"""Adapters: check gradients where they live, in PyTorch.

:func:`from_torch` turns a PyTorch function of a flat parameter tensor into the
plain callables :func:`gradlab.check` takes: J on a numpy array of the format's
dtype (evaluated by PyTorch in the matching dtype, nothing upcast) and the
gradient PyTorch's autograd (or the user's custom backward) returns. PyTorch is an
optional dependency (``pip install gradlab[torch]``); the adapter imports it lazily.
:func:`from_jax` does the same for JAX (``pip install gradlab[jax]``), with
``jax.grad`` (or the user's ``custom_vjp``) as the gradient checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np

from gradlab.arithmetic import formats as fmts

__all__ = ["from_jax", "from_torch"]


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ImportError("from_torch needs PyTorch: pip install 'gradlab[torch]'") from exc
    return torch


def _torch_dtype(fmt: fmts.Format) -> Any:
    torch = _torch()
    table = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
             "bfloat16": torch.bfloat16}
    if fmt.name not in table:
        raise ValueError(f"format {fmt.name} has no PyTorch dtype")
    return table[fmt.name]


def _to_torch(x: np.ndarray, fmt: fmts.Format) -> Any:
    torch = _torch()
    if fmt.name == "bfloat16":  # same bits: numpy's bfloat16 (ml_dtypes) viewed as torch's
        return torch.from_numpy(np.ascontiguousarray(x).view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(x).astype(fmt.dtype).copy())


def _to_numpy(t: Any, fmt: fmts.Format) -> np.ndarray:
    torch = _torch()
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return np.asarray(t.numpy())


def from_torch(
    fn: Callable[[Any], Any], format: fmts.Format | str = "float32"
) -> tuple[Callable[[np.ndarray], Any], Callable[[np.ndarray], np.ndarray]]:
    """Wrap ``fn(theta: torch.Tensor) -> scalar tensor`` for :func:`gradlab.check`.

    Parameters
    ----------
    fn : callable
        A PyTorch function of a 1-D parameter tensor. Its backward (autograd or a
        custom ``torch.autograd.Function``) is the gradient that gets checked.
    format : str
        float64, float32, float16 or bfloat16: the tensor dtype ``fn`` is run in.

    Returns
    -------
    f, grad : callables on numpy arrays of the format's dtype
        ``f(x)`` returns J as a scalar of the format's dtype, ``grad(x)`` the
        gradient from PyTorch's backward, in the same dtype.

    Examples
    --------
    Needs PyTorch, so not run as a doctest (tests/test_adapters.py runs it):

    >>> import numpy as np, gradlab as gl  # doctest: +SKIP
    >>> f, g = gl.adapters.from_torch(lambda t: (t.sin() ** 2).sum(), "float32")  # doctest: +SKIP
    >>> gl.check(f, g, theta=np.ones(4)).passed  # doctest: +SKIP
    True
    """
    fmt = fmts.get(format)
    dtype = _torch_dtype(fmt)
    torch = _torch()

    def f(x: np.ndarray) -> Any:
        with torch.no_grad():
            y = fn(_to_torch(x, fmt))
        if y.dtype != dtype:
            raise TypeError(f"fn returned {y.dtype} for a {dtype} input: it upcasts")
        if y.numel() != 1:
            raise ValueError(f"fn must return a scalar, got shape {tuple(y.shape)}")
        return _to_numpy(y.reshape(()), fmt)[()]

    def grad(x: np.ndarray) -> np.ndarray:
        t = _to_torch(x, fmt).requires_grad_(True)
        y = fn(t)
        (g,) = torch.autograd.grad(y, t)
        return _to_numpy(g, fmt)

    return f, grad


def _jax() -> Any:
    try:
        import jax
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ImportError("from_jax needs JAX: pip install 'gradlab[jax]'") from exc
    return jax


def from_jax(
    fn: Callable[[Any], Any], format: fmts.Format | str = "float32"
) -> tuple[Callable[[np.ndarray], Any], Callable[[np.ndarray], np.ndarray]]:
    """Wrap a JAX function ``fn(theta) -> scalar`` and its ``jax.grad`` for :func:`gradlab.check`.

    JAX computes in float32 unless 64-bit mode is on; for ``format="float64"`` this
    raises unless ``jax.config.update("jax_enable_x64", True)`` was set (gradlab does
    not change JAX's global configuration).

    Returns
    -------
    f, grad : callables on numpy arrays of the format's dtype, keeping that dtype.
    """
    jax = _jax()
    jnp = jax.numpy
    fmt = fmts.get(format)
    if fmt.name not in ("float64", "float32", "float16", "bfloat16"):
        raise ValueError(f"format {fmt.name} has no JAX dtype")
    if fmt.name == "float64" and not jax.config.read("jax_enable_x64"):
        raise ValueError("format float64 needs jax.config.update('jax_enable_x64', True)")
    assert fmt.dtype is not None
    dtype = fmt.dtype
    grad_fn = jax.grad(fn)

    def f(x: np.ndarray) -> Any:
        y = fn(jnp.asarray(np.asarray(x, dtype=dtype)))
        if y.dtype != dtype:
            raise TypeError(f"fn returned {y.dtype} for a {dtype} input: it upcasts")
        if y.size != 1:
            raise ValueError(f"fn must return a scalar, got shape {tuple(y.shape)}")
        return np.asarray(y).reshape(())[()]

    def grad(x: np.ndarray) -> np.ndarray:
        return np.asarray(grad_fn(jnp.asarray(np.asarray(x, dtype=dtype))))

    return f, grad
