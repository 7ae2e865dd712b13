"""The classic gradient-checking exercise's network (docs/design.md, "The seed network")."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from gradlab.arithmetic.namespaces import Namespace
from gradlab.arithmetic.objective import Objective

SHAPES = ((5, 4), (5, 1), (3, 5), (3, 1), (1, 3), (1, 1))  # W1, b1, W2, b2, W3, b3


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X, Y and theta0, drawn as the exercise draws them (legacy global generator)."""
    state = np.random.get_state()
    try:
        np.random.seed(1)
        x = np.random.randn(4, 3)
        y = np.array([[1.0, 1.0, 0.0]])
        params = [np.random.randn(*shape) for shape in SHAPES]
    finally:
        np.random.set_state(state)  # leave the caller's global generator untouched
    return x, y, np.concatenate([p.ravel() for p in params])


def _forward(theta: Any, xp: Namespace, x: np.ndarray) -> tuple[Any, ...]:
    w1, b1, w2, b2, w3, b3 = xp.unflatten(theta, SHAPES)
    xd = xp.asarray(x)
    z1 = xp.matmul(w1, xd) + b1
    a1 = xp.relu(z1)
    z2 = xp.matmul(w2, a1) + b2
    a2 = xp.relu(z2)
    z3 = xp.matmul(w3, a2) + b3
    a3 = 1 / (1 + xp.exp(-z3))
    return xd, z1, a1, z2, a2, z3, a3


def _cost(theta: Any, xp: Namespace, x: np.ndarray, y: np.ndarray, stable: bool) -> Any:
    m = x.shape[1]
    yd = xp.asarray(y)
    if stable:
        # -log(sigmoid(z)) = logaddexp(0, -z), -log(1 - sigmoid(z)) = logaddexp(0, z).
        z3 = _forward(theta, xp, x)[5]
        zero = xp.asarray(0.0)
        logprobs = xp.logaddexp(zero, -z3) * yd + xp.logaddexp(zero, z3) * (1 - yd)
    else:
        a3 = _forward(theta, xp, x)[6]
        logprobs = -xp.log(a3) * yd + -xp.log(1 - a3) * (1 - yd)  # the exercise's form
    return xp.asarray(1.0) / m * xp.sum(logprobs)


def _backprop(
    theta: Any, xp: Namespace, x: np.ndarray, y: np.ndarray, skip_relu_derivative: bool = False
) -> Any:
    """The exercise's backpropagation, with its deliberate bugs corrected.

    ``skip_relu_derivative`` injects a realistic bug (for :mod:`gradlab.objectives.bugs`): the first
    hidden layer's ReLU derivative is never applied.
    """
    _w1, _b1, w2, _b2, w3, _b3 = xp.unflatten(theta, SHAPES)
    xd, _z1, a1, _z2, a2, _z3, a3 = _forward(theta, xp, x)
    m = x.shape[1]
    inv_m = xp.asarray(1.0) / m
    zero = xp.asarray(0.0)
    dz3 = a3 - xp.asarray(y)
    dw3 = inv_m * xp.matmul(dz3, xp.transpose(a2))
    db3 = inv_m * xp.sum(dz3, axis=1, keepdims=True)
    da2 = xp.matmul(xp.transpose(w3), dz3)
    dz2 = xp.where(a2 > 0, da2, zero)
    dw2 = inv_m * xp.matmul(dz2, xp.transpose(a1))
    db2 = inv_m * xp.sum(dz2, axis=1, keepdims=True)
    da1 = xp.matmul(xp.transpose(w2), dz2)
    dz1 = da1 if skip_relu_derivative else xp.where(a1 > 0, da1, zero)
    dw1 = inv_m * xp.matmul(dz1, xp.transpose(xd))
    db1 = inv_m * xp.sum(dz1, axis=1, keepdims=True)
    parts = (dw1, db1, dw2, db2, dw3, db3)
    return np.concatenate([xp.reshape(p, (-1,)) for p in parts], axis=-1)


def seed_net(stable: bool = False) -> Objective:
    """The 47-parameter network of the classic gradient-checking exercise.

    ``X = randn(4, 3)``, ``Y = [1, 1, 0]``, then W1 (5x4), b1, W2 (3x5), b2, W3
    (1x3), b3 drawn in that order after ``np.random.seed(1)``;
    LINEAR->RELU->LINEAR->RELU->LINEAR->SIGMOID, cost
    ``(1/m) * sum(-log(A3)*Y - log(1 - A3)*(1 - Y))`` exactly as the exercise
    writes it. Parameters are flattened W1, b1, W2, b2, W3, b3 (row-major).

    Parameters
    ----------
    stable : bool
        Use the stable twin: the same network and data with the cost written as
        ``logaddexp(0, -z) * Y + logaddexp(0, z) * (1 - Y)`` on the logits z.

    Returns
    -------
    Objective
        With the exercise's backprop gradient (its deliberate bugs corrected),
        exact for both forms since both costs are the same function.

    Examples
    --------
    >>> import gradlab as gl
    >>> gl.objectives.seed_net().n_params
    47
    """
    x, y, theta0 = _data()
    return Objective(
        fn=partial(_cost, x=x, y=y, stable=stable),
        theta0=theta0,
        grad=partial(_backprop, x=x, y=y),
        name="seed_net_stable" if stable else "seed_net",
        meta={"family": "seed_net", "stable": stable},
    )
