"""A corpus of PyTorch's differentiable operators with their autograd gradients.

Each entry is a public PyTorch function (``torch``, ``torch.special``, ``torch.linalg``,
``torch.nn.functional``) applied to a small input drawn from its domain, made scalar by
fixed random weights, ``J(x) = sum(w * op(x))``. Its gradient is PyTorch's autograd:
code gradlab did not write and whose backward passes PyTorch tests. The detect study
checks these gradients in every format, and the same gradients with injected errors.

Constants inside an operator (weights, targets, a second operand) are float64 arrays
fixed by a seed and cast to the input's dtype, so every operator runs in the dtype it is
given. PyTorch is optional: :func:`corpus` imports it lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

__all__ = ["DOMAINS", "Op", "corpus"]

#: Samplers of inputs inside each operator's domain (numpy Generator, size) -> float64.
DOMAINS: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "real": lambda r, n: r.standard_normal(n),
    "pos": lambda r, n: r.uniform(0.5, 2.0, n),
    "unit": lambda r, n: r.uniform(-0.8, 0.8, n),
    "prob": lambda r, n: r.uniform(0.15, 0.85, n),
    "gt1": lambda r, n: r.uniform(1.2, 3.0, n),
    "away": lambda r, n: r.choice([-1.0, 1.0], n) * r.uniform(0.3, 1.5, n),  # off 0 (kinks)
}


@dataclass(frozen=True)
class Op:
    """One operator of the corpus.

    Attributes
    ----------
    name : str
        Unique, with the library's spelling (``"F.gelu"``, ``"linalg.det"``).
    fn : callable
        ``fn(t)`` on a 1-D tensor of any floating dtype, returning a tensor of that dtype.
    n : int
        The input size.
    domain : str
        A key of :data:`DOMAINS`.
    smooth : bool
        False for operators with kinks or flat pieces (relu, hardtanh, max_pool, abs, ...).
    """

    name: str
    fn: Callable[[Any], Any]
    n: int
    domain: str = "real"
    smooth: bool = True

    def theta(self, seed: int = 0) -> np.ndarray:
        """The input, float64, drawn from the domain (deterministic in name and seed)."""
        rng = np.random.default_rng([seed, *self.name.encode()])
        return DOMAINS[self.domain](rng, self.n)


@cache
def _const(key: str, shape: tuple[int, ...], kind: str = "real") -> np.ndarray:
    rng = np.random.default_rng(list(key.encode()))
    return DOMAINS[kind](rng, int(np.prod(shape))).reshape(shape)


def _k(t: Any, key: str, *shape: int, kind: str = "real") -> Any:
    """A constant of the given shape in t's dtype."""
    import torch

    return torch.as_tensor(_const(key, shape, kind)).to(t.dtype)


def _elementwise(torch: Any, F: Any) -> list[Op]:
    sp = torch.special
    real = [
        ("sin", torch.sin),
        ("cos", torch.cos),
        ("atan", torch.atan),
        ("sinh", torch.sinh),
        ("cosh", torch.cosh),
        ("tanh", torch.tanh),
        ("asinh", torch.asinh),
        ("exp", torch.exp),
        ("exp2", torch.exp2),
        ("expm1", torch.expm1),
        ("erf", torch.erf),
        ("erfc", torch.erfc),
        ("sigmoid", torch.sigmoid),
        ("square", torch.square),
        ("neg", torch.neg),
        ("deg2rad", torch.deg2rad),
        ("sinc", torch.sinc),
        ("special.expit", sp.expit),
        ("special.i0e", sp.i0e),
        ("special.i1e", sp.i1e),
        ("special.ndtr", sp.ndtr),
        ("special.log_ndtr", sp.log_ndtr),
        ("special.erfcx", sp.erfcx),
        ("F.gelu", F.gelu),
        ("F.gelu_tanh", lambda t: F.gelu(t, approximate="tanh")),
        ("F.silu", F.silu),
        ("F.mish", F.mish),
        ("F.softplus", F.softplus),
        ("F.softsign", F.softsign),
        ("F.elu", F.elu),
        ("F.selu", F.selu),
        ("F.celu", F.celu),
        ("F.logsigmoid", F.logsigmoid),
        ("F.tanhshrink", F.tanhshrink),
        ("special.i0", sp.i0),
        ("log1p(exp)", lambda t: torch.log1p(torch.exp(t))),
    ]
    pos = [
        ("log", torch.log),
        ("log2", torch.log2),
        ("log10", torch.log10),
        ("log1p", torch.log1p),
        ("sqrt", torch.sqrt),
        ("rsqrt", torch.rsqrt),
        ("reciprocal", torch.reciprocal),
        ("lgamma", torch.lgamma),
        ("digamma", torch.digamma),
        ("special.polygamma1", lambda t: sp.polygamma(1, t)),
        ("special.entr", sp.entr),
        ("special.xlogy", lambda t: sp.xlogy(t, t + 1)),
        ("special.xlog1py", lambda t: sp.xlog1py(t, t)),
        ("pow_1.5", lambda t: torch.pow(t, 1.5)),
        ("special.gammaln", sp.gammaln),
        ("special.multigammaln", lambda t: sp.multigammaln(t + 1, 2)),
        ("special.i1", sp.i1),
    ]
    unit = [
        ("asin", torch.asin),
        ("acos", torch.acos),
        ("atanh", torch.atanh),
        ("erfinv", torch.erfinv),
        ("tan", torch.tan),
    ]
    kinked = [
        ("abs", torch.abs),
        ("F.relu", F.relu),
        ("F.relu6", F.relu6),
        ("F.leaky_relu", F.leaky_relu),
        ("F.hardtanh", F.hardtanh),
        ("F.hardsigmoid", F.hardsigmoid),
        ("F.hardswish", F.hardswish),
        ("F.hardshrink", F.hardshrink),
        ("F.softshrink", F.softshrink),
        ("F.threshold", lambda t: F.threshold(t, 0.1, -0.5)),
        ("clamp", lambda t: torch.clamp(t, -0.5, 0.5)),
        ("F.rrelu_eval", lambda t: F.rrelu(t, training=False)),
        ("frac", torch.frac),
        ("round", torch.round),
        ("floor", torch.floor),
    ]
    ops = [Op(n, fn, 6, "real") for n, fn in real]
    ops += [Op(n, fn, 6, "pos") for n, fn in pos]
    ops += [Op(n, fn, 6, "unit") for n, fn in unit]
    ops += [Op(n, fn, 6, "away", smooth=False) for n, fn in kinked]
    ops.append(Op("acosh", torch.acosh, 6, "gt1"))
    ops.append(Op("special.logit", sp.logit, 6, "prob"))
    return ops


def _binary(torch: Any) -> list[Op]:
    def pair(f: Callable[[Any, Any], Any]) -> Callable[[Any], Any]:
        return lambda t: f(t[:4], t[4:])

    ops = [
        ("mul", torch.mul),
        ("div", torch.div),
        ("atan2", torch.atan2),
        ("hypot", torch.hypot),
        ("add", torch.add),
        ("sub", torch.sub),
        ("lerp", lambda a, b: torch.lerp(a, b, 0.3)),
        ("addcmul", lambda a, b: torch.addcmul(a, a, b, value=0.5)),
        ("addcdiv", lambda a, b: torch.addcdiv(a, a, b * b + 1, value=0.5)),
        ("dot", torch.dot),
        ("outer", torch.outer),
        ("cross", lambda a, b: torch.linalg.cross(a[:3], b[:3])),
        ("kron", torch.kron),
        ("F.cosine_similarity", lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim=0)),
        ("F.pairwise_distance", lambda a, b: torch.nn.functional.pairwise_distance(a[None], b[None])),
    ]
    out = [Op(n, pair(f), 8, "pos" if n in ("div",) else "real") for n, f in ops]
    out.append(Op("pow", pair(torch.pow), 8, "pos"))
    out += [
        Op("maximum", pair(torch.maximum), 8, "real", smooth=False),
        Op("minimum", pair(torch.minimum), 8, "real", smooth=False),
    ]
    return out


def _reductions(torch: Any, F: Any) -> list[Op]:
    lin = torch.linalg
    ops = [
        ("sum", torch.sum),
        ("mean", torch.mean),
        ("prod", torch.prod),
        ("logsumexp", lambda t: torch.logsumexp(t, 0)),
        ("special.logsumexp", lambda t: torch.special.logsumexp(t, 0)),
        ("var", torch.var),
        ("std", torch.std),
        ("cumsum", lambda t: torch.cumsum(t, 0)),
        ("cumprod", lambda t: torch.cumprod(t, 0)),
        ("logcumsumexp", lambda t: torch.logcumsumexp(t, 0)),
        ("F.softmax", lambda t: F.softmax(t, 0)),
        ("F.log_softmax", lambda t: F.log_softmax(t, 0)),
        ("F.softmin", lambda t: F.softmin(t, 0)),
        ("F.normalize", lambda t: F.normalize(t, dim=0)),
        ("linalg.vector_norm", lin.vector_norm),
        ("linalg.vector_norm3", lambda t: lin.vector_norm(t, 3)),
        ("norm", torch.norm),
        ("diff", torch.diff),
        ("trapezoid", torch.trapezoid),
        ("softmax-weighted mean", lambda t: (F.softmax(t, 0) * t).sum()),
        ("flip", lambda t: torch.flip(t, (0,))),
        ("roll", lambda t: torch.roll(t, 2)),
        ("F.glu", lambda t: F.glu(t, 0)),
        ("var_mean", lambda t: torch.stack(torch.var_mean(t))),
        ("std_mean", lambda t: torch.stack(torch.std_mean(t))),
        ("F.layer_norm", lambda t: F.layer_norm(t, (8,))),
        (
            "F.layer_norm_affine",
            lambda t: F.layer_norm(t, (8,), _k(t, "lnw", 8, kind="pos"), _k(t, "lnb", 8)),
        ),
        ("F.rms_norm", lambda t: F.rms_norm(t, (8,))),
        ("F.group_norm", lambda t: F.group_norm(t.reshape(1, 4, 2), 2)),
        ("F.instance_norm", lambda t: F.instance_norm(t.reshape(1, 2, 4))),
        ("F.batch_norm_train", lambda t: F.batch_norm(t.reshape(4, 2), None, None, training=True)),
        (
            "F.batch_norm_eval",
            lambda t: F.batch_norm(t.reshape(4, 2), _k(t, "bm", 2), _k(t, "bv", 2, kind="pos")),
        ),
        ("F.local_response_norm", lambda t: F.local_response_norm(t.reshape(1, 4, 2), 2)),
    ]
    out = [Op(n, f, 8, "real") for n, f in ops]
    out += [
        Op("amax", lambda t: torch.amax(t), 8, "real", smooth=False),
        Op("linalg.vector_norm_inf", lambda t: lin.vector_norm(t, float("inf")), 8, "real", smooth=False),
        Op("linalg.vector_norm1", lambda t: lin.vector_norm(t, 1), 8, "away", smooth=False),
        Op("sort", lambda t: torch.sort(t).values, 8, "real", smooth=False),
        Op("topk", lambda t: torch.topk(t, 3).values, 8, "real", smooth=False),
    ]
    return out


def _linalg(torch: Any) -> list[Op]:
    lin = torch.linalg

    def sq(f: Callable[[Any], Any], shift: float = 0.0) -> Callable[[Any], Any]:
        return lambda t: f(t.reshape(3, 3) + shift * torch.eye(3, dtype=t.dtype))

    def spd(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def g(t: Any) -> Any:
            a = t.reshape(3, 3)
            return f(a @ a.T + torch.eye(3, dtype=t.dtype))

        return g

    ops = [
        ("linalg.det", sq(lin.det, 2.0)),
        ("linalg.slogdet", sq(lambda a: lin.slogdet(a)[1], 2.0)),
        ("linalg.inv", sq(lin.inv, 2.0)),
        ("linalg.solve", sq(lambda a: lin.solve(a, _k(a, "rhs", 3)), 2.0)),
        ("linalg.matrix_exp", sq(lin.matrix_exp)),
        ("linalg.matrix_norm_fro", sq(lin.matrix_norm)),
        ("linalg.pinv", sq(lin.pinv, 2.0)),
        ("linalg.matrix_power", sq(lambda a: lin.matrix_power(a, 3))),
        ("linalg.cholesky", spd(lin.cholesky)),
        ("linalg.eigvalsh", spd(lin.eigvalsh)),
        ("linalg.svdvals", spd(lin.svdvals)),
        ("linalg.logdet_spd", spd(torch.logdet)),
        (
            "linalg.solve_triangular",
            sq(
                lambda a: lin.solve_triangular(
                    torch.triu(a) + 3 * torch.eye(3, dtype=a.dtype), _k(a, "tri", 3, 2), upper=True
                )
            ),
        ),
        ("trace", sq(torch.trace)),
        ("tril", sq(torch.tril)),
        ("triu", sq(torch.triu)),
        ("diag", sq(torch.diag)),
        ("matmul", sq(lambda a: a @ _k(a, "mm", 3, 4))),
        ("einsum", sq(lambda a: torch.einsum("ij,jk->ik", a, a))),
        ("linalg.multi_dot", sq(lambda a: lin.multi_dot([a, _k(a, "md", 3, 3), a]))),
        ("linalg.qr_r", sq(lambda a: lin.qr(a)[1], 2.0)),
        ("linalg.cond_spd", spd(lambda a: lin.cond(a))),
    ]
    return [Op(n, f, 9, "real") for n, f in ops]


def _layers(torch: Any, F: Any) -> list[Op]:
    ops = [
        ("F.linear", 8, lambda t: F.linear(t.reshape(2, 4), _k(t, "lw", 3, 4), _k(t, "lb", 3))),
        (
            "F.bilinear",
            8,
            lambda t: F.bilinear(t[:4].reshape(1, 4), t[4:].reshape(1, 4), _k(t, "bw", 2, 4, 4)),
        ),
        ("F.conv1d", 10, lambda t: F.conv1d(t.reshape(1, 1, 10), _k(t, "c1", 2, 1, 3))),
        (
            "F.conv1d_stride_pad",
            10,
            lambda t: F.conv1d(t.reshape(1, 2, 5), _k(t, "c1s", 2, 2, 3), stride=2, padding=1),
        ),
        ("F.conv2d", 16, lambda t: F.conv2d(t.reshape(1, 1, 4, 4), _k(t, "c2", 2, 1, 3, 3))),
        ("F.conv_transpose1d", 6, lambda t: F.conv_transpose1d(t.reshape(1, 2, 3), _k(t, "ct1", 2, 1, 3))),
        (
            "F.conv_transpose2d",
            8,
            lambda t: F.conv_transpose2d(t.reshape(1, 2, 2, 2), _k(t, "ct2", 2, 1, 2, 2)),
        ),
        ("F.avg_pool1d", 8, lambda t: F.avg_pool1d(t.reshape(1, 1, 8), 2)),
        ("F.avg_pool2d", 16, lambda t: F.avg_pool2d(t.reshape(1, 1, 4, 4), 2)),
        ("F.lp_pool1d", 8, lambda t: F.lp_pool1d(t.reshape(1, 1, 8) ** 2 + 0.5, 2, 2)),
        ("F.adaptive_avg_pool1d", 9, lambda t: F.adaptive_avg_pool1d(t.reshape(1, 1, 9), 4)),
        ("F.interpolate_linear", 6, lambda t: F.interpolate(t.reshape(1, 1, 6), size=9, mode="linear")),
        (
            "F.interpolate_bilinear",
            9,
            lambda t: F.interpolate(t.reshape(1, 1, 3, 3), size=(4, 4), mode="bilinear"),
        ),
        (
            "F.interpolate_bicubic",
            9,
            lambda t: F.interpolate(t.reshape(1, 1, 3, 3), size=(5, 5), mode="bicubic"),
        ),
        ("F.pad_reflect", 6, lambda t: F.pad(t.reshape(1, 1, 6), (2, 2), mode="reflect")),
        ("F.pad_replicate", 6, lambda t: F.pad(t.reshape(1, 1, 6), (2, 1), mode="replicate")),
        ("F.pad_circular", 6, lambda t: F.pad(t.reshape(1, 1, 6), (1, 2), mode="circular")),
        ("F.pixel_shuffle", 8, lambda t: F.pixel_shuffle(t.reshape(1, 4, 1, 2), 2)),
        ("F.unfold", 16, lambda t: F.unfold(t.reshape(1, 1, 4, 4), 2)),
        ("F.fold", 8, lambda t: F.fold(t.reshape(1, 4, 2), (3, 2), (2, 2))),
        ("indexing", 8, lambda t: t.reshape(4, 2)[torch.tensor([0, 2, 2, 3])].sum(0)),
        (
            "F.scaled_dot_product_attention",
            12,
            lambda t: F.scaled_dot_product_attention(
                t[:4].reshape(1, 2, 2), t[4:8].reshape(1, 2, 2), t[8:].reshape(1, 2, 2)
            ),
        ),
        ("softmax(matmul)", 12, lambda t: F.softmax(t[:6].reshape(2, 3) @ t[6:].reshape(3, 2), 0)),
        (
            "F.grid_sample",
            9,
            lambda t: F.grid_sample(
                t.reshape(1, 1, 3, 3), _k(t, "grid", 1, 2, 2, 2, kind="unit"), align_corners=False
            ),
        ),
        ("F.affine_grid", 6, lambda t: F.affine_grid(t.reshape(1, 2, 3), [1, 1, 2, 2], align_corners=False)),
    ]
    out = [Op(n, f, size, "real") for n, size, f in ops]
    out += [
        Op("F.max_pool1d", lambda t: F.max_pool1d(t.reshape(1, 1, 8), 2), 8, "real", smooth=False),
        Op("F.max_pool2d", lambda t: F.max_pool2d(t.reshape(1, 1, 4, 4), 2), 16, "real", smooth=False),
        Op(
            "F.adaptive_max_pool1d",
            lambda t: F.adaptive_max_pool1d(t.reshape(1, 1, 8), 3),
            8,
            "real",
            smooth=False,
        ),
    ]
    return out


def _losses(torch: Any, F: Any) -> list[Op]:
    def y(t: Any, key: str, *shape: int, kind: str = "real") -> Any:
        return _k(t, key, *shape, kind=kind)

    cls = torch.tensor([1, 0, 2, 1])
    ops = [
        ("F.mse_loss", 8, "real", lambda t: F.mse_loss(t, y(t, "mse", 8))),
        ("F.smooth_l1_loss", 8, "real", lambda t: F.smooth_l1_loss(t, y(t, "sl1", 8) * 0.1, beta=2.0)),
        ("F.huber_loss", 8, "real", lambda t: F.huber_loss(t, y(t, "hub", 8) * 0.1, delta=3.0)),
        (
            "F.kl_div",
            8,
            "real",
            lambda t: F.kl_div(F.log_softmax(t, 0), y(t, "kl", 8, kind="prob"), reduction="sum"),
        ),
        ("F.cross_entropy", 12, "real", lambda t: F.cross_entropy(t.reshape(4, 3), cls)),
        (
            "F.cross_entropy_smooth",
            12,
            "real",
            lambda t: F.cross_entropy(t.reshape(4, 3), cls, label_smoothing=0.1),
        ),
        (
            "F.cross_entropy_probs",
            12,
            "real",
            lambda t: F.cross_entropy(t.reshape(4, 3), F.softmax(y(t, "cep", 4, 3), 1)),
        ),
        ("F.nll_loss", 12, "real", lambda t: F.nll_loss(F.log_softmax(t.reshape(4, 3), 1), cls)),
        (
            "F.binary_cross_entropy",
            8,
            "prob",
            lambda t: F.binary_cross_entropy(t, y(t, "bce", 8, kind="prob")),
        ),
        (
            "F.binary_cross_entropy_with_logits",
            8,
            "real",
            lambda t: F.binary_cross_entropy_with_logits(t, y(t, "bcel", 8, kind="prob")),
        ),
        ("F.poisson_nll_loss", 8, "real", lambda t: F.poisson_nll_loss(t, y(t, "pois", 8, kind="pos"))),
        ("F.gaussian_nll_loss", 8, "pos", lambda t: F.gaussian_nll_loss(y(t, "gm", 8), y(t, "gt", 8), t)),
        ("F.soft_margin_loss", 8, "real", lambda t: F.soft_margin_loss(t, torch.sign(y(t, "smg", 8)))),
        (
            "F.multilabel_soft_margin_loss",
            8,
            "real",
            lambda t: F.multilabel_soft_margin_loss(t.reshape(2, 4), (y(t, "mlsm", 2, 4) > 0).to(t.dtype)),
        ),
        (
            "F.cosine_embedding_loss",
            8,
            "real",
            lambda t: F.cosine_embedding_loss(t[:4].reshape(1, 4), t[4:].reshape(1, 4), torch.tensor([1])),
        ),
        (
            "F.triplet_margin_loss",
            12,
            "real",
            lambda t: F.triplet_margin_loss(
                t[:4].reshape(1, 4), t[4:8].reshape(1, 4), t[8:].reshape(1, 4), margin=10.0
            ),
        ),
        (
            "F.margin_ranking_loss",
            8,
            "real",
            lambda t: F.margin_ranking_loss(t[:4], t[4:], torch.ones(4, dtype=t.dtype), margin=10.0),
        ),
    ]
    out = [Op(n, f, size, dom) for n, size, dom, f in ops]
    out += [
        Op("F.l1_loss", lambda t: F.l1_loss(t, y(t, "l1", 8)), 8, "real", smooth=False),
        Op(
            "F.hinge_embedding_loss",
            lambda t: F.hinge_embedding_loss(t, torch.sign(y(t, "hel", 8))),
            8,
            "real",
            smooth=False,
        ),
        Op(
            "F.multi_margin_loss",
            lambda t: F.multi_margin_loss(t.reshape(4, 3), cls),
            12,
            "real",
            smooth=False,
        ),
    ]
    return out


def corpus() -> list[Op]:
    """The operators, in a fixed order (PyTorch is imported here)."""
    import torch
    import torch.nn.functional as F

    ops = (
        _elementwise(torch, F)
        + _binary(torch)
        + _reductions(torch, F)
        + _linalg(torch)
        + _layers(torch, F)
        + _losses(torch, F)
    )
    names = [o.name for o in ops]
    assert len(names) == len(set(names)), "corpus names must be unique"
    return ops
