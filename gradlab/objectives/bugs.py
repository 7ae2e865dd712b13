"""Realistic backpropagation bugs, injected into a network's gradient.

A network objective (``seed_net`` or the ``mlp`` family) lays its parameters out
as W1, b1, W2, b2, ... (row-major). Each bug maps the correct gradient, computed
in a format, to what a backprop with that mistake returns:

======================  ==============================================================
``layer_factor``        a wrong factor (2) on the first layer's weight gradient
``transposed_weight``   the second layer's weight gradient transposed before flattening
``missing_bias``        the last hidden layer's bias gradient left at zero
``activation_derivative`` the first hidden layer's activation derivative dropped (taken
                        as 1: the mask or slope never applied), from a real backprop
``batch_average``       the batch sum where the mean belongs (every entry times m)
``sign_flip``           the last layer's weight gradient with the wrong sign
``single_coord_1e-3``   a relative error of 1e-3 in the largest coordinate
======================  ==============================================================
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.arithmetic.objective import Objective, call_grad
from gradlab.objectives import seed

__all__ = ["BUGS", "inject", "layer_blocks", "scaled_component"]

BUGS = ("layer_factor", "transposed_weight", "missing_bias", "activation_derivative",
        "batch_average", "sign_flip", "single_coord_1e-3")


def layer_blocks(obj: Objective) -> list[tuple[str, slice, tuple[int, int]]]:
    """(name, slice, shape) of each W and b block of a network objective."""
    meta = obj.meta
    if meta.get("family") == "seed_net":
        shapes = list(seed.SHAPES)
    elif "widths" in meta:
        w = list(meta["widths"])
        shapes = [s for a, b in itertools.pairwise(w) for s in ((b, a), (b, 1))]
    else:
        raise ValueError(f"objective {obj.name!r} is not a network (seed_net or mlp)")
    out, start = [], 0
    for k, shape in enumerate(shapes):
        size = shape[0] * shape[1]
        out.append((f"{'W' if k % 2 == 0 else 'b'}{k // 2 + 1}", slice(start, start + size), shape))
        start += size
    return out


def _batch_size(obj: Objective) -> int:
    if obj.meta.get("family") == "seed_net":
        return 3
    return int(obj.meta.get("batch", obj.meta.get("n_samples", 1)))


def inject(obj: Objective, bug: str, format: fmts.Format | str = "float64") -> np.ndarray:
    """The gradient a backprop with ``bug`` returns at theta0, computed in ``format``.

    Returns float64 values of the format's numbers.
    """
    fmt = fmts.get(format)
    if bug not in BUGS:
        raise ValueError(f"bug must be one of {BUGS}, got {bug!r}")
    if obj.grad is None:
        raise ValueError(f"objective {obj.name!r} has no gradient to corrupt")
    ns = namespace_for(fmt)
    theta = fmts.round_array(obj.theta0, fmt)
    blocks = layer_blocks(obj)
    weights = [b for b in blocks if b[0].startswith("W")]
    biases = [b for b in blocks if b[0].startswith("b")]
    if bug == "activation_derivative":
        grad_fn = _no_activation_derivative(obj)
        return ns.call(grad_fn, ns.from_values(theta), f"grad of {obj.name!r} without "
                       "its activation derivative").astype(np.float64)
    g = call_grad(obj, theta, ns).astype(np.float64)
    if bug == "layer_factor":
        g[weights[0][1]] *= 2
    elif bug == "transposed_weight":
        _, sl, (r, c) = weights[1 % len(weights)]
        g[sl] = g[sl].reshape(r, c).T.reshape(-1)
    elif bug == "missing_bias":
        g[biases[max(0, len(biases) - 2)][1]] = 0.0
    elif bug == "batch_average":
        g *= _batch_size(obj)
    elif bug == "sign_flip":
        g[weights[-1][1]] *= -1
    elif bug == "single_coord_1e-3":
        k = int(np.argmax(np.abs(g)))
        g[k] *= 1 + 1e-3
    return fmts.round_array(g, fmt).astype(np.float64)


def _no_activation_derivative(obj: Objective) -> Callable[[Any, Any], Any]:
    """A backprop of the same network that forgets the first hidden activation's derivative."""
    meta = obj.meta
    if meta.get("family") == "seed_net":
        x, y, _ = seed._data()
        return partial(seed._backprop, x=x, y=y, skip_relu_derivative=True)
    raise ValueError(f"the activation-derivative bug is built for seed_net, not {obj.name!r}")


def scaled_component(obj: Objective, k: int, factor: float) -> Objective:
    """``obj`` with a gradient whose component ``k`` is off by ``factor``, written in xp.

    Unlike :func:`inject`'s arrays, the buggy gradient is a function that runs in every
    format, so a checker can measure its rounding in float64 (the factor enters through
    ``xp.asarray``, rounded to the format like any constant).
    """
    if obj.grad is None:
        raise ValueError(f"objective {obj.name!r} has no gradient to corrupt")
    if not 0 <= k < obj.n_params:
        raise ValueError(f"k must be a coordinate of {obj.name!r} (0..{obj.n_params - 1}), got {k}")
    grad = obj.grad
    weights = np.ones(obj.n_params)
    weights[k] = factor

    def buggy(theta: Any, xp: Any) -> Any:
        return grad(theta, xp) * xp.asarray(weights)

    return Objective(obj.fn, obj.theta0, grad=buggy, name=f"{obj.name}_g{k}x{factor:g}",
                     vectorized=obj.vectorized, meta=obj.meta)
