"""A corpus of JAX's differentiable operators with their autodiff gradients.

The JAX counterpart of :mod:`gradlab.objectives.torch_ops`: public ``jax.numpy``,
``jax.nn``, ``jax.scipy.special`` and ``jax.lax`` functions on small inputs inside their
domains, made scalar by fixed weights in the detect study, differentiated by
``jax.grad``. Constants are float64 arrays cast to the input's dtype. JAX is optional:
:func:`corpus` imports it lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gradlab.objectives.torch_ops import Op, _const

__all__ = ["corpus"]


def _k(t: Any, key: str, *shape: int, kind: str = "real") -> Any:
    import jax.numpy as jnp

    return jnp.asarray(_const(key, shape, kind)).astype(t.dtype)


def corpus() -> list[Op]:
    """The operators, in a fixed order (JAX is imported here)."""
    import jax.nn as jnn
    import jax.numpy as jnp
    import jax.scipy.special as jss
    from jax import lax

    Fn = Callable[[Any], Any]
    real: list[tuple[str, Fn]] = [
        ("jnp.sin", jnp.sin),
        ("jnp.cos", jnp.cos),
        ("jnp.tanh", jnp.tanh),
        ("jnp.exp", jnp.exp),
        ("jnp.expm1", jnp.expm1),
        ("jnp.arctan", jnp.arctan),
        ("jnp.sinh", jnp.sinh),
        ("jnp.arcsinh", jnp.arcsinh),
        ("jnp.square", jnp.square),
        ("jnp.logaddexp", lambda t: jnp.logaddexp(t, 0.3 * t)),
        ("jss.erf", jss.erf),
        ("jss.erfc", jss.erfc),
        ("jss.expit", jss.expit),
        ("jss.i0e", jss.i0e),
        ("jss.i1e", jss.i1e),
        ("jss.log_ndtr", jss.log_ndtr),
        ("jss.ndtr", jss.ndtr),
        ("jnn.gelu", jnn.gelu),
        ("jnn.silu", jnn.silu),
        ("jnn.softplus", jnn.softplus),
        ("jnn.sigmoid", jnn.sigmoid),
        ("jnn.log_sigmoid", jnn.log_sigmoid),
        ("jnn.elu", jnn.elu),
        ("jnn.selu", jnn.selu),
        ("jnn.celu", jnn.celu),
        ("jnn.softmax", jnn.softmax),
        ("jnn.log_softmax", jnn.log_softmax),
        ("jnn.standardize", jnn.standardize),
        ("jss.logsumexp", jss.logsumexp),
        ("jnp.cumsum", jnp.cumsum),
        ("jnp.cumprod", jnp.cumprod),
        ("jnp.prod", jnp.prod),
        ("jnp.var", jnp.var),
        ("jnp.std", jnp.std),
        ("jnp.linalg.norm", jnp.linalg.norm),
        ("jnp.convolve", lambda t: jnp.convolve(t, _k(t, "jconv", 3))),
        ("jnp.matmul", lambda t: t.reshape(2, 3) @ _k(t, "jmm", 3, 2)),
        ("jnp.outer", lambda t: jnp.outer(t[:3], t[3:])),
        ("jnp.diff", jnp.diff),
        ("jnp.polyval", lambda t: jnp.polyval(t, 0.7)),
        ("lax.logistic", lax.logistic),
        ("lax.erf_inv", lambda t: lax.erf_inv(0.5 * jnp.tanh(t))),
    ]
    pos: list[tuple[str, Fn]] = [
        ("jnp.log", jnp.log),
        ("jnp.log1p", jnp.log1p),
        ("jnp.sqrt", jnp.sqrt),
        ("jnp.reciprocal", jnp.reciprocal),
        ("jss.gammaln", jss.gammaln),
        ("jss.digamma", jss.digamma),
        ("jss.xlogy", lambda t: jss.xlogy(t, t + 1)),
        ("jss.xlog1py", lambda t: jss.xlog1py(t, t)),
        ("jss.entr", jss.entr),
        ("jnp.power", lambda t: jnp.power(t, 1.5)),
        ("lax.rsqrt", lax.rsqrt),
        ("jnp.cbrt", jnp.cbrt),
    ]
    unit: list[tuple[str, Fn]] = [
        ("jnp.arcsin", jnp.arcsin),
        ("jnp.arctanh", jnp.arctanh),
        ("jss.erfinv", jss.erfinv),
        ("jnp.tan", jnp.tan),
    ]
    kinked: list[tuple[str, Fn]] = [
        ("jnp.abs", jnp.abs),
        ("jnn.relu", jnn.relu),
        ("jnn.relu6", jnn.relu6),
        ("jnn.hard_tanh", jnn.hard_tanh),
        ("jnn.leaky_relu", jnn.leaky_relu),
        ("jnn.hard_sigmoid", jnn.hard_sigmoid),
        ("jnp.clip", lambda t: jnp.clip(t, -0.5, 0.5)),
        ("jnp.maximum", lambda t: jnp.maximum(t, 0.2)),
    ]
    ops = [Op(n, f, 6, "real") for n, f in real]
    ops += [Op(n, f, 6, "pos") for n, f in pos]
    ops += [Op(n, f, 6, "unit") for n, f in unit]
    ops += [Op(n, f, 6, "away", smooth=False) for n, f in kinked]
    ops.append(Op("jss.logit", jss.logit, 6, "prob"))
    names = [o.name for o in ops]
    assert len(names) == len(set(names)), "corpus names must be unique"
    return ops
