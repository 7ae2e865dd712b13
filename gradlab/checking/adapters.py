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
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from gradlab.arithmetic import formats as fmts

__all__ = ["ModuleProblem", "from_jax", "from_torch", "from_torch_module", "from_torch_vjp"]


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
    arr = np.ascontiguousarray(np.asarray(x).astype(fmt.dtype))  # a wider x is rounded once
    if fmt.name == "bfloat16":  # same bits: numpy's bfloat16 (ml_dtypes) viewed as torch's
        return torch.from_numpy(arr.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(arr.copy())


def _to_numpy(t: Any, fmt: fmts.Format) -> np.ndarray:
    torch = _torch()
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return np.asarray(t.numpy())


_FRAMEWORK_FORMATS = ("float64", "float32", "float16", "bfloat16")


def _input_format(x: np.ndarray, fixed: fmts.Format | None) -> fmts.Format:
    """The format a call runs in: the fixed one, or that of the input's dtype (one of the
    four the frameworks share)."""
    if fixed is not None:
        return fixed
    name = np.asarray(x).dtype.name
    if name not in _FRAMEWORK_FORMATS:
        raise TypeError(f"the input's dtype {name} has no framework counterpart; pass float64, "
                        "float32, float16 or bfloat16 arrays (or fix the format)")
    return fmts.get(name)


def from_torch(
    fn: Callable[..., Any], format: fmts.Format | str | None = None
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Wrap ``fn(*tensors) -> scalar tensor`` for :func:`gradlab.check`.

    Parameters
    ----------
    fn : callable
        A PyTorch function of one or several parameter tensors. Its backward (autograd
        or a custom ``torch.autograd.Function``) is the gradient that gets checked.
    format : str or None
        None (the default): dtype-generic, each call runs in the dtype of the arrays it
        is given (float64, float32, float16 or bfloat16), so :func:`gradlab.check` can
        evaluate finite differences in a wider format and measure the gradient's own
        rounding against float64. A format name fixes the tensor dtype ``fn`` runs in
        (wider inputs are rounded once to it).

    Returns
    -------
    f, grad : callables on numpy arrays
        ``f(*xs)`` returns J as a scalar of the call's dtype, ``grad(*xs)`` the gradient
        from PyTorch's backward in the same dtype (a tuple for several inputs).

    Examples
    --------
    Needs PyTorch, so not run as a doctest (tests/test_adapters.py runs it):

    >>> import numpy as np, gradlab as gl  # doctest: +SKIP
    >>> f, g = gl.adapters.from_torch(lambda t: (t.sin() ** 2).sum())  # doctest: +SKIP
    >>> gl.check(f, g, theta=np.ones(4), format="bfloat16").passed  # doctest: +SKIP
    True
    """
    fixed = None if format is None else fmts.get(format)
    if fixed is not None:
        _torch_dtype(fixed)  # refuses a format PyTorch has no dtype for, now
    torch = _torch()

    def f(*xs: np.ndarray) -> Any:
        fmt = _input_format(xs[0], fixed)
        dtype = _torch_dtype(fmt)
        with torch.no_grad():
            y = fn(*(_to_torch(x, fmt) for x in xs))
        if y.dtype != dtype:
            raise TypeError(f"fn returned {y.dtype} for a {dtype} input: it upcasts")
        if y.numel() != 1:
            raise ValueError(f"fn must return a scalar, got shape {tuple(y.shape)}; for a vector "
                             "output use from_torch_vjp and gradlab.check_jacobian")
        return _to_numpy(y.reshape(()), fmt)[()]

    def grad(*xs: np.ndarray) -> Any:
        fmt = _input_format(xs[0], fixed)
        ts = [_to_torch(x, fmt).requires_grad_(True) for x in xs]
        gs = torch.autograd.grad(fn(*ts), ts)
        out = tuple(_to_numpy(g, fmt) for g in gs)
        return out[0] if len(out) == 1 else out

    return f, grad


def from_torch_vjp(
    fn: Callable[[Any], Any], format: fmts.Format | str = "float32"
) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]:
    """Wrap a vector-valued ``fn(theta: torch.Tensor) -> tensor`` for :func:`gradlab.check_jacobian`.

    Returns
    -------
    f, vjp : callables on numpy arrays of the format's dtype
        ``f(x)`` returns the outputs, flattened; ``vjp(x, v)`` the vector-Jacobian product
        PyTorch's backward computes for the cotangent ``v`` (``torch.autograd.grad`` with
        ``grad_outputs``).
    """
    fmt = fmts.get(format)
    dtype = _torch_dtype(fmt)
    torch = _torch()

    def f(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            y = fn(_to_torch(x, fmt))
        if y.dtype != dtype:
            raise TypeError(f"fn returned {y.dtype} for a {dtype} input: it upcasts")
        return _to_numpy(y.reshape(-1), fmt)

    def vjp(x: np.ndarray, v: np.ndarray) -> np.ndarray:
        t = _to_torch(x, fmt).requires_grad_(True)
        y = fn(t)
        (g,) = torch.autograd.grad(y, t, grad_outputs=_to_torch(v, fmt).reshape(y.shape))
        return _to_numpy(g, fmt)

    return f, vjp


@dataclass(frozen=True)
class ModuleProblem:
    """A ``torch.nn.Module``'s loss as a function of its parameters, for :func:`gradlab.check`.

    ``f(params)`` and ``grad(params)`` take a dict of numpy arrays (one per trainable
    parameter, named as ``module.named_parameters()`` names them) in the format's dtype;
    ``theta`` holds the module's current parameters. Unpacks as ``f, grad, theta``.
    """

    f: Callable[[dict[str, np.ndarray]], Any]
    grad: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
    theta: dict[str, np.ndarray]

    def __iter__(self) -> Any:
        return iter((self.f, self.grad, self.theta))


def from_torch_module(
    module: Any, loss_fn: Callable[[Any, Any], Any], batch: tuple[Any, Any],
    format: fmts.Format | str = "float32",
) -> ModuleProblem:
    """A module's loss ``loss_fn(module(x), y)`` on ``batch = (x, y)``, as a function of its
    trainable parameters, run in the format's dtype.

    The module is copied and cast to the format's dtype (the original is not touched);
    floating-point batch tensors are cast too, integer targets kept. The parameters are
    passed with ``torch.func.functional_call``, so buffers (batch-norm statistics) stay
    as they are, and the gradient checked is autograd's (the module's own backward).

    Examples
    --------
    Needs PyTorch, so not run as a doctest (tests/test_adapters.py runs it):

    >>> nn = torch.nn  # doctest: +SKIP
    >>> net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))  # doctest: +SKIP
    >>> f, g, theta = gl.adapters.from_torch_module(net, torch.nn.functional.mse_loss,  # doctest: +SKIP
    ...                                              (torch.randn(8, 3), torch.randn(8, 1)))
    >>> gl.check(f, g, theta=theta, format="float32").passed  # doctest: +SKIP
    True
    """
    import copy

    fmt = fmts.get(format)
    dtype = _torch_dtype(fmt)
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"module must be a torch.nn.Module, got {type(module).__name__}")
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ValueError("batch must be a pair (x, y): the loss is loss_fn(module(x), y)")
    mod = copy.deepcopy(module).to(dtype)
    names = [n for n, p in mod.named_parameters() if p.requires_grad]
    if not names:
        raise ValueError("module has no trainable parameters")

    def cast(t: Any) -> Any:
        t = torch.as_tensor(t)
        return t.to(dtype) if t.is_floating_point() else t

    x, y = (cast(b) for b in batch)

    def loss(params: dict[str, Any]) -> Any:
        out = loss_fn(torch.func.functional_call(mod, params, (x,)), y)
        if out.dtype != dtype:
            raise TypeError(f"the loss is {out.dtype} for {dtype} parameters: it upcasts")
        return out

    def f(params: dict[str, np.ndarray]) -> Any:
        with torch.no_grad():
            out = loss({n: _to_torch(params[n], fmt) for n in names})
        return _to_numpy(out.reshape(()), fmt)[()]

    def grad(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ts = {n: _to_torch(params[n], fmt).requires_grad_(True) for n in names}
        gs = torch.autograd.grad(loss(ts), list(ts.values()))
        return {n: _to_numpy(g, fmt) for n, g in zip(names, gs, strict=True)}

    theta = {n: p.detach().to(torch.float64).numpy().copy()
             for n, p in module.named_parameters() if p.requires_grad}
    return ModuleProblem(f=f, grad=grad, theta=theta)


def _jax() -> Any:
    try:
        import jax
    except ImportError as exc:  # pragma: no cover - depends on the machine
        raise ImportError("from_jax needs JAX: pip install 'gradlab[jax]'") from exc
    return jax


def from_jax(
    fn: Callable[[Any], Any], format: fmts.Format | str | None = None
) -> tuple[Callable[[np.ndarray], Any], Callable[[np.ndarray], np.ndarray]]:
    """Wrap a JAX function ``fn(theta) -> scalar`` and its ``jax.grad`` for :func:`gradlab.check`.

    ``format=None`` (the default) is dtype-generic: each call runs in its input's dtype, so
    the check can run FD in float32 for float16 and bfloat16. A format name fixes the
    dtype. JAX computes in float32 unless 64-bit mode is on: a float64 call (or
    ``format="float64"``) raises unless ``jax.config.update("jax_enable_x64", True)`` was
    set (gradlab does not change JAX's global configuration).

    Returns
    -------
    f, grad : callables on numpy arrays, keeping their dtype.
    """
    jax = _jax()
    jnp = jax.numpy
    fixed = None if format is None else fmts.get(format)

    if fixed is not None and fixed.name not in _FRAMEWORK_FORMATS:
        raise ValueError(f"format {fixed.name} has no JAX dtype")

    def dtype_of(x: np.ndarray) -> Any:
        fmt = _input_format(x, fixed)
        if fmt.name == "float64" and not jax.config.read("jax_enable_x64"):
            raise ValueError("float64 needs jax.config.update('jax_enable_x64', True)")
        assert fmt.dtype is not None
        return fmt.dtype

    if fixed is not None:
        dtype_of(np.zeros(1, dtype=fixed.dtype))  # refuses a format JAX cannot run, now
    grad_fn = jax.grad(fn)

    def f(x: np.ndarray) -> Any:
        dtype = dtype_of(x)
        y = fn(jnp.asarray(np.asarray(x).astype(dtype)))
        if y.dtype != dtype:
            raise TypeError(f"fn returned {y.dtype} for a {dtype} input: it upcasts")
        if y.size != 1:
            raise ValueError(f"fn must return a scalar, got shape {tuple(y.shape)}")
        return np.asarray(y).reshape(())[()]

    def grad(x: np.ndarray) -> np.ndarray:
        return np.asarray(grad_fn(jnp.asarray(np.asarray(x).astype(dtype_of(x)))))

    return f, grad
