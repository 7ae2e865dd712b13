"""Objective families for the scaling studies (docs/design.md, "Objectives").

Every family returns an :class:`~gradlab.arithmetic.objective.Objective` whose ``fn`` and
analytic ``grad`` are written once with the evaluation namespace ``xp``
(:mod:`gradlab.arithmetic.namespaces`): data and constants enter only through
``xp.asarray``, non-integer constants never appear as Python floats (a Python
float would upcast bfloat16 to float32), and both functions are batch-safe.
They are ``functools.partial`` objects over module-level functions, so every
objective pickles. Data and the point of interest ``theta0`` are drawn from
``numpy.random.default_rng(seed)``, so a family is a pure function of its
arguments.

Families
--------
mlp
    Fully connected networks of any widths, activation and loss.
logistic_regression, softmax_regression
    Single-layer networks with labels drawn from a random teacher.
quadratic
    ``0.5 theta^T A theta + b^T theta``: central differences have no truncation.
smooth_sum
    Separable sums of exp, sin or a cubic, with closed-form derivatives of any
    order along each coordinate (``meta["diag_derivative"]``).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence
from functools import partial
from typing import Any

import mpmath
import numpy as np

from gradlab.arithmetic.formats import Format, exact_mpf, round_exact
from gradlab.arithmetic.namespaces import Namespace
from gradlab.arithmetic.objective import Objective

__all__ = ["logistic_regression", "mlp", "quadratic", "smooth_sum", "softmax_regression"]

ACTIVATIONS = ("relu", "tanh", "sigmoid")
LOSSES = ("bce", "mse", "softmax")
KINDS = ("exp", "sin", "poly")

Shapes = tuple[tuple[int, int], ...]


# -- argument validation --------------------------------------------------------


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def _check_real(name: str, value: Any, *, minimum: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    ok = math.isfinite(v) and (v > minimum if strict else v >= minimum)
    if not ok:
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return v


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return str(value)


# -- networks -------------------------------------------------------------------


def _net_shapes(widths: Sequence[int]) -> Shapes:
    """W (out x in) then b (out x 1) for each layer, in parameter order."""
    shapes: list[tuple[int, int]] = []
    for fan_in, fan_out in itertools.pairwise(widths):
        shapes += [(fan_out, fan_in), (fan_out, 1)]
    return tuple(shapes)


def _init_params(rng: np.random.Generator, widths: Sequence[int], sigma: float) -> np.ndarray:
    """W ~ N(0, sigma^2 / fan_in), b ~ N(0, (0.1 sigma)^2), drawn layer by layer."""
    parts = []
    for fan_in, fan_out in itertools.pairwise(widths):
        parts.append(rng.normal(0.0, sigma / math.sqrt(fan_in), size=(fan_out, fan_in)))
        parts.append(rng.normal(0.0, 0.1 * sigma, size=(fan_out, 1)))
    return np.concatenate([p.ravel() for p in parts])


def _one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Integer labels (m,) as a one-hot (n_classes, m) float array."""
    return (np.arange(n_classes)[:, None] == labels[None, :]).astype(np.float64)


def _sigmoid(z: Any, xp: Namespace) -> Any:
    return 1 / (1 + xp.exp(-z))


def _activate(z: Any, xp: Namespace, activation: str | None) -> Any:
    if activation == "relu":
        return xp.relu(z)
    if activation == "tanh":
        return xp.tanh(z)
    return _sigmoid(z, xp)


def _activate_backward(da: Any, a: Any, xp: Namespace, activation: str | None) -> Any:
    """dL/dz from dL/da, written with the activation's output a."""
    if activation == "relu":
        return xp.where(a > 0, da, xp.asarray(0.0))
    if activation == "tanh":
        return da * (1 - a * a)
    return da * (a * (1 - a))


def _max0(z: Any, xp: Namespace) -> Any:
    return xp.max(z, axis=0)  # over classes, kept as an axis of length 1


def _logsumexp0(z: Any, xp: Namespace) -> Any:
    mx = _max0(z, xp)
    return mx + xp.log(xp.sum(xp.exp(z - mx), axis=0, keepdims=True))


def _softmax0(z: Any, xp: Namespace) -> Any:
    e = xp.exp(z - _max0(z, xp))
    return e / xp.sum(e, axis=0, keepdims=True)


def _forward(
    theta: Any, xp: Namespace, x: np.ndarray, shapes: Shapes, activation: str | None
) -> tuple[list[Any], list[Any], Any]:
    """Parameters, layer inputs (X, then each hidden activation) and output logits."""
    params = xp.unflatten(theta, shapes)
    a = xp.asarray(x)
    inputs = [a]
    n_layers = len(params) // 2
    z = a
    for k in range(n_layers):
        z = xp.matmul(params[2 * k], a) + params[2 * k + 1]
        if k < n_layers - 1:
            a = _activate(z, xp, activation)
            inputs.append(a)
    return params, inputs, z


def _net_cost(
    theta: Any,
    xp: Namespace,
    *,
    x: np.ndarray,
    y: np.ndarray,
    shapes: Shapes,
    activation: str | None,
    loss: str,
) -> Any:
    z = _forward(theta, xp, x, shapes, activation)[2]
    yd = xp.asarray(y)
    m = x.shape[1]
    if loss == "bce":
        a = _sigmoid(z, xp)
        terms = -xp.log(a) * yd - xp.log(1 - a) * (1 - yd)  # the naive form, as seed_net
        return xp.sum(terms) / m
    if loss == "mse":
        r = z - yd
        return xp.sum(r * r) / (2 * m)
    # softmax cross-entropy per sample: logsumexp(z) - z[y], with one-hot y
    terms = _logsumexp0(z, xp) - xp.sum(z * yd, axis=0, keepdims=True)
    return xp.sum(terms) / m


def _net_grad(
    theta: Any,
    xp: Namespace,
    *,
    x: np.ndarray,
    y: np.ndarray,
    shapes: Shapes,
    activation: str | None,
    loss: str,
) -> Any:
    """Backpropagation; returns dJ/dtheta in the parameter layout."""
    params, inputs, z = _forward(theta, xp, x, shapes, activation)
    yd = xp.asarray(y)
    m = x.shape[1]
    if loss == "bce":
        dz = _sigmoid(z, xp) - yd
    elif loss == "mse":
        dz = z - yd
    else:
        dz = _softmax0(z, xp) - yd
    dz = dz / m
    grads: list[Any] = []
    for k in reversed(range(len(params) // 2)):
        grads.append(xp.sum(dz, axis=1, keepdims=True))  # db
        grads.append(xp.matmul(dz, xp.transpose(inputs[k])))  # dW
        if k > 0:
            da = xp.matmul(xp.transpose(params[2 * k]), dz)
            dz = _activate_backward(da, inputs[k], xp, activation)
    grads.reverse()
    return np.concatenate([xp.reshape(g, (-1,)) for g in grads], axis=-1)


def _net_objective(
    name: str,
    meta: dict[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    widths: Sequence[int],
    activation: str | None,
    loss: str,
    theta0: np.ndarray,
) -> Objective:
    kw: dict[str, Any] = {
        "x": x, "y": y, "shapes": _net_shapes(widths), "activation": activation, "loss": loss
    }
    return Objective(
        fn=partial(_net_cost, **kw),
        theta0=theta0,
        grad=partial(_net_grad, **kw),
        name=name,
        meta=meta,
    )


def mlp(
    widths: Sequence[int] = (4, 8, 1),
    activation: str = "tanh",
    loss: str = "bce",
    batch: int = 8,
    sigma: float = 1.0,
    seed: int = 0,
) -> Objective:
    """A fully connected network with a data batch, as an objective of its parameters.

    ``z_1 = W_1 X + b_1``, ``a_k = act(z_k)`` on the hidden layers, and the last
    layer's ``z_L`` (linear) goes to the loss, averaged over the batch of m samples:

    * ``"bce"``: ``sum(-log(a) * y - log(1 - a) * (1 - y)) / m`` with
      ``a = 1 / (1 + exp(-z_L))``, the naive form of the classic exercise
      (output width 1, labels 0/1);
    * ``"mse"``: ``sum((z_L - Y)**2) / (2 m)`` (targets standard normal);
    * ``"softmax"``: ``sum(logsumexp(z_L) - z_L[y]) / m`` with the logsumexp
      stabilised by the maximum over classes (integer labels, one-hot data).

    Parameters
    ----------
    widths : sequence of int
        Layer widths: input dimension, hidden widths, output dimension
        (at least two entries, all >= 1).
    activation : {"tanh", "relu", "sigmoid"}
        Hidden-layer activation.
    loss : {"bce", "mse", "softmax"}
        Loss on the output layer; ``"bce"`` needs output width 1 and
        ``"softmax"`` at least 2 classes.
    batch : int
        Number of samples m.
    sigma : float
        Initialisation scale: ``W ~ N(0, sigma^2 / fan_in)`` (``sigma = 1`` is
        LeCun's scaling) and ``b ~ N(0, (0.1 sigma)^2)``.
    seed : int
        Seed of ``numpy.random.default_rng``; X (standard normal,
        ``widths[0] x batch``), then the targets, then the parameters layer by
        layer (W then b) are drawn from it in that order.

    Returns
    -------
    Objective
        Parameters flattened as W_1, b_1, W_2, b_2, ... (each row-major, W of
        shape out x in and b of shape out x 1), with the backpropagation
        gradient; ``meta`` holds the family and these arguments.

    Examples
    --------
    >>> from gradlab.objectives import mlp
    >>> obj = mlp(widths=(4, 8, 1))
    >>> obj.n_params, obj.name
    (49, 'mlp_4-8-1_tanh_bce_m8_sigma1_seed0')
    >>> mlp(widths=(3, 5, 4), activation="relu", loss="softmax").n_params
    44
    """
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(f"widths must be a sequence of int, got {type(widths).__name__}")
    if len(widths) < 2:
        raise ValueError(f"widths must have at least 2 entries (input, output), got {widths!r}")
    ws = tuple(_check_int(f"widths[{k}]", w, 1) for k, w in enumerate(widths))
    activation = _check_choice("activation", activation, ACTIVATIONS)
    loss = _check_choice("loss", loss, LOSSES)
    if loss == "bce" and ws[-1] != 1:
        raise ValueError(f"loss='bce' needs output width widths[-1] == 1, got {ws[-1]}")
    if loss == "softmax" and ws[-1] < 2:
        raise ValueError(f"loss='softmax' needs output width widths[-1] >= 2, got {ws[-1]}")
    batch = _check_int("batch", batch, 1)
    sigma = _check_real("sigma", sigma, minimum=0.0, strict=True)
    seed = _check_int("seed", seed, 0)

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((ws[0], batch))
    if loss == "bce":
        y = rng.integers(0, 2, size=(1, batch)).astype(np.float64)
    elif loss == "mse":
        y = rng.standard_normal((ws[-1], batch))
    else:
        y = _one_hot(rng.integers(0, ws[-1], size=batch), ws[-1])
    theta0 = _init_params(rng, ws, sigma)
    name = f"mlp_{'-'.join(map(str, ws))}_{activation}_{loss}_m{batch}_sigma{sigma:g}_seed{seed}"
    meta = {"family": "mlp", "widths": ws, "activation": activation, "loss": loss,
            "batch": batch, "sigma": sigma, "seed": seed}
    return _net_objective(name, meta, x, y, ws, activation, loss, theta0)


def _teacher_logits(rng: np.random.Generator, x: np.ndarray, n_out: int) -> np.ndarray:
    """Logits of a random linear teacher with weights N(0, 1 / n_features)."""
    w = rng.normal(0.0, 1.0 / math.sqrt(x.shape[0]), size=(n_out, x.shape[0]))
    return w @ x


def logistic_regression(
    n_features: int = 10, n_samples: int = 32, sigma: float = 1.0, seed: int = 0
) -> Objective:
    """Binary logistic regression with the naive cross-entropy, intercept last.

    ``J = sum(-log(a) * y - log(1 - a) * (1 - y)) / m`` with
    ``a = 1 / (1 + exp(-(w^T X + c)))``, X standard normal (``n_features x
    n_samples``) and labels ``y ~ Bernoulli(sigmoid(w*^T X))`` from a random
    teacher ``w* ~ N(0, I / n_features)``. This is :func:`mlp` with no hidden
    layer and these data.

    Parameters
    ----------
    n_features : int
        Number of features d (>= 1).
    n_samples : int
        Number of samples m (>= 1).
    sigma : float
        Initialisation scale of theta0: ``w ~ N(0, sigma^2 / d)``,
        ``c ~ N(0, (0.1 sigma)^2)``.
    seed : int
        Seed of ``numpy.random.default_rng`` (X, teacher, labels, theta0 in that
        order).

    Returns
    -------
    Objective
        ``theta = (w_1, ..., w_d, c)``, with the analytic gradient
        ``X (a - y) / m`` and ``sum(a - y) / m``.

    Examples
    --------
    >>> from gradlab.objectives import logistic_regression
    >>> obj = logistic_regression(n_features=10, n_samples=32)
    >>> obj.n_params, obj.name
    (11, 'logistic_regression_d10_m32_sigma1_seed0')
    """
    d = _check_int("n_features", n_features, 1)
    m = _check_int("n_samples", n_samples, 1)
    sigma = _check_real("sigma", sigma, minimum=0.0, strict=True)
    seed = _check_int("seed", seed, 0)

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((d, m))
    p = 1.0 / (1.0 + np.exp(-_teacher_logits(rng, x, 1)))
    y = (rng.random((1, m)) < p).astype(np.float64)
    theta0 = _init_params(rng, (d, 1), sigma)
    name = f"logistic_regression_d{d}_m{m}_sigma{sigma:g}_seed{seed}"
    meta = {"family": "logistic_regression", "n_features": d, "n_samples": m,
            "sigma": sigma, "seed": seed}
    return _net_objective(name, meta, x, y, (d, 1), None, "bce", theta0)


def softmax_regression(
    n_features: int = 5, n_classes: int = 3, n_samples: int = 16, sigma: float = 1.0, seed: int = 0
) -> Objective:
    """Multinomial logistic (softmax) regression with the stabilised cross-entropy.

    ``J = sum(logsumexp(z) - z[y]) / m`` with ``z = W X + b`` (W of shape
    ``n_classes x n_features``), X standard normal and classes drawn from the
    softmax of a random teacher ``W* ~ N(0, 1 / n_features)``. This is
    :func:`mlp` with no hidden layer and these data.

    Parameters
    ----------
    n_features : int
        Number of features d (>= 1).
    n_classes : int
        Number of classes k (>= 2).
    n_samples : int
        Number of samples m (>= 1).
    sigma : float
        Initialisation scale of theta0: ``W ~ N(0, sigma^2 / d)``,
        ``b ~ N(0, (0.1 sigma)^2)``.
    seed : int
        Seed of ``numpy.random.default_rng`` (X, teacher, labels, theta0 in that
        order).

    Returns
    -------
    Objective
        Parameters W (row-major) then b, with the analytic gradient
        ``(softmax(z) - Y) X^T / m`` and ``sum(softmax(z) - Y) / m``.

    Examples
    --------
    >>> from gradlab.objectives import softmax_regression
    >>> obj = softmax_regression(n_features=5, n_classes=3)
    >>> obj.n_params, obj.name
    (18, 'softmax_regression_d5_k3_m16_sigma1_seed0')
    """
    d = _check_int("n_features", n_features, 1)
    k = _check_int("n_classes", n_classes, 2)
    m = _check_int("n_samples", n_samples, 1)
    sigma = _check_real("sigma", sigma, minimum=0.0, strict=True)
    seed = _check_int("seed", seed, 0)

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((d, m))
    logits = _teacher_logits(rng, x, k)
    p = np.exp(logits - logits.max(axis=0))
    cdf = np.cumsum(p / p.sum(axis=0), axis=0)
    labels = np.minimum((rng.random(m)[None, :] > cdf).sum(axis=0), k - 1)
    y = _one_hot(labels, k)
    theta0 = _init_params(rng, (d, k), sigma)
    name = f"softmax_regression_d{d}_k{k}_m{m}_sigma{sigma:g}_seed{seed}"
    meta = {"family": "softmax_regression", "n_features": d, "n_classes": k,
            "n_samples": m, "sigma": sigma, "seed": seed}
    return _net_objective(name, meta, x, y, (d, k), None, "softmax", theta0)


# -- quadratic ------------------------------------------------------------------


def _quadratic_cost(theta: Any, xp: Namespace, *, a: np.ndarray, b: np.ndarray) -> Any:
    at = xp.matmul(xp.asarray(a), theta)
    return xp.sum(theta * at) / 2 + xp.sum(xp.asarray(b) * theta)


def _quadratic_grad(theta: Any, xp: Namespace, *, a: np.ndarray, b: np.ndarray) -> Any:
    return xp.matmul(xp.asarray(a), theta) + xp.asarray(b)


def quadratic(n: int = 10, cond: float = 10.0, seed: int = 0, scale: float = 1.0) -> Objective:
    """A convex quadratic ``J = 0.5 theta^T A theta + b^T theta``.

    ``A = Q diag(lambda) Q^T`` with Q a random orthogonal matrix (Haar, from the
    QR factorisation of a standard normal matrix) and eigenvalues ``lambda``
    geometrically spaced from 1 to ``cond``; A is symmetrised exactly in float64,
    so its condition number is ``cond`` up to float64 rounding (and rounding A to
    a format keeps it symmetric). ``b`` is standard normal. J has no third
    derivative, so central differences have no truncation error here: their
    whole error is step and rounding.

    Parameters
    ----------
    n : int
        Number of parameters (>= 1). A is dense, so keep n to a few thousand.
    cond : float
        Condition number of A (>= 1; must be 1 when ``n == 1``).
    seed : int
        Seed of ``numpy.random.default_rng`` (Q, b, theta0 in that order).
    scale : float
        ``theta0 = scale * N(0, I)`` (>= 0).

    Returns
    -------
    Objective
        With the analytic gradient ``A theta + b``.

    Examples
    --------
    >>> from gradlab.objectives import quadratic
    >>> obj = quadratic(n=4, cond=100.0)
    >>> obj.n_params, obj.name
    (4, 'quadratic_n4_cond100_scale1_seed0')
    """
    n = _check_int("n", n, 1)
    cond = _check_real("cond", cond, minimum=1.0, strict=False)
    if n == 1 and cond != 1.0:
        raise ValueError(f"cond must be 1 when n == 1 (one eigenvalue), got {cond:g}")
    seed = _check_int("seed", seed, 0)
    scale = _check_real("scale", scale, minimum=0.0, strict=False)

    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)  # Haar-distributed
    eig = np.geomspace(1.0, cond, n)
    a = (q * eig) @ q.T
    a = (a + a.T) / 2
    b = rng.standard_normal(n)
    theta0 = scale * rng.standard_normal(n)
    return Objective(
        fn=partial(_quadratic_cost, a=a, b=b),
        theta0=theta0,
        grad=partial(_quadratic_grad, a=a, b=b),
        name=f"quadratic_n{n}_cond{cond:g}_scale{scale:g}_seed{seed}",
        meta={"family": "quadratic", "n": n, "cond": cond, "seed": seed, "scale": scale},
    )


# -- smooth separable sums ------------------------------------------------------


def _smooth_cost(
    theta: Any, xp: Namespace, *, kind: str, a: np.ndarray, coef: tuple[float, float, float]
) -> Any:
    x = xp.asarray(a) * theta
    if kind == "exp":
        f = xp.exp(x)
    elif kind == "sin":
        f = xp.sin(x)
    else:
        c1, c2, c3 = (xp.asarray(c) for c in coef)
        f = ((c3 * x + c2) * x + c1) * x
    return xp.sum(f)


def _smooth_grad(
    theta: Any, xp: Namespace, *, kind: str, a: np.ndarray, coef: tuple[float, float, float]
) -> Any:
    ad = xp.asarray(a)
    x = ad * theta
    if kind == "exp":
        return ad * xp.exp(x)
    if kind == "sin":
        return ad * xp.cos(x)
    c1, c2, c3 = (xp.asarray(c) for c in coef)
    return ad * ((3 * c3 * x + 2 * c2) * x + c1)


def _smooth_diag_derivative(
    theta: Any,
    order: int,
    *,
    kind: str,
    a: np.ndarray,
    coef: tuple[float, float, float],
    ctx: Any = None,
    data_format: Format | str | None = None,
) -> list[Any]:
    """``d^order J / d theta_i^order`` for every i, in closed form (see smooth_sum)."""
    order = _check_int("order", order, 1)
    ctx = mpmath.mp if ctx is None else ctx

    def data(v: float) -> Any:
        e = exact_mpf(v) if data_format is None else round_exact(v, data_format)
        return ctx.mpf(e)

    c1, c2, c3 = (data(c) for c in coef)
    out = []
    for t, ai in zip(np.asarray(theta, dtype=object).ravel(), np.asarray(a).ravel(), strict=True):
        s = data(float(ai))
        x = s * ctx.mpf(exact_mpf(t))
        if kind == "exp":
            d = ctx.exp(x)
        elif kind == "sin":
            d = (ctx.sin(x), ctx.cos(x), -ctx.sin(x), -ctx.cos(x))[order % 4]
        elif order == 1:
            d = (3 * c3 * x + 2 * c2) * x + c1
        elif order == 2:
            d = 6 * c3 * x + 2 * c2
        elif order == 3:
            d = 6 * c3
        else:
            d = ctx.zero
        out.append(s**order * d)
    return out


def smooth_sum(kind: str = "exp", n: int = 10, seed: int = 0, scale: float = 1.0) -> Objective:
    """A separable smooth sum ``J = sum_i f(a_i theta_i)`` with closed-form derivatives.

    ``f`` is ``exp``, ``sin`` or the cubic ``c3 x^3 + c2 x^2 + c1 x`` (Horner
    form; all fourth and higher derivatives vanish, so central differences
    truncate exactly at ``h^2 J'''/6``). ``a_i ~ U(0.5, 1.5)``,
    ``(c1, c2, c3) ~ N(0, I)``, ``theta0 = scale * N(0, I)``, drawn in that order
    for every kind, so the kinds share a and theta0 for the same seed.

    Parameters
    ----------
    kind : {"exp", "sin", "poly"}
        The elementwise function f.
    n : int
        Number of parameters (>= 1).
    seed : int
        Seed of ``numpy.random.default_rng``.
    scale : float
        Magnitude of theta0 (>= 0).

    Returns
    -------
    Objective
        With the closed-form gradient ``a_i f'(a_i theta_i)``, and in
        ``meta["diag_derivative"]`` a picklable callable
        ``diag_derivative(theta, order, *, ctx=None, data_format=None)`` returning
        the list of ``d^order J / d theta_i^order = a_i^order f^(order)(a_i theta_i)``
        (``order >= 1``) as mpf, computed with mpmath in ``ctx`` (default
        ``mpmath.mp``, so ``mpmath.workprec`` sets its precision). The data
        a_i, c_j are taken exactly, or rounded to ``data_format`` first to match
        a reference computed with data rounded to that format.

    Examples
    --------
    >>> import numpy as np, mpmath
    >>> from gradlab.objectives import smooth_sum
    >>> obj = smooth_sum("poly", n=3)
    >>> obj.name
    'smooth_sum_poly_n3_scale1_seed0'
    >>> d4 = obj.meta["diag_derivative"](obj.theta0, 4)  # a cubic: exactly zero
    >>> [float(v) for v in d4]
    [0.0, 0.0, 0.0]
    """
    kind = _check_choice("kind", kind, KINDS)
    n = _check_int("n", n, 1)
    seed = _check_int("seed", seed, 0)
    scale = _check_real("scale", scale, minimum=0.0, strict=False)

    rng = np.random.default_rng(seed)
    a = rng.uniform(0.5, 1.5, size=n)
    coef = tuple(float(c) for c in rng.standard_normal(3))
    theta0 = scale * rng.standard_normal(n)
    kw: dict[str, Any] = {"kind": kind, "a": a, "coef": coef}
    return Objective(
        fn=partial(_smooth_cost, **kw),
        theta0=theta0,
        grad=partial(_smooth_grad, **kw),
        name=f"smooth_sum_{kind}_n{n}_scale{scale:g}_seed{seed}",
        meta={"family": "smooth_sum", "kind": kind, "n": n, "seed": seed, "scale": scale,
              "diag_derivative": partial(_smooth_diag_derivative, **kw)},
    )
