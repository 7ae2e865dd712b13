"""Which operations of an objective make J noisy in a format.

Method: one operation at a time in the low format, everything else exact. J is
evaluated in mpmath at a high precision through a tracing namespace that numbers
every rounding operation of one evaluation (the arithmetic operators + - * / **,
``xp.matmul``, ``xp.sum`` and the elementwise functions), each labelled with the
line of the objective's source that issued it. For each operation k the sample is
evaluated again with only k's result rounded to the format (a correctly rounded
operation on exact inputs); the standard deviation of ``J_k - J`` over the sample
is operation k's noise. Operations are independent to first order, so their
variances add up to about the variance of J with every operation rounded, which
is reported beside the format's own (hardware) noise.

A matrix product or a sum counts as one operation, rounded as the format runs it
(:mod:`gradlab.arithmetic.accumulation`): its inputs rounded to a policy's matmul-input
format, every product and partial sum to the accumulator, in sequence, and the result
once to the compute format. So a strict format's reduction carries its partial sums'
rounding, and a mixed policy's mostly its final rounding.
"""

from __future__ import annotations

import linecache
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pandas as pd

from gradlab.analysis.noise import exact_at_theta, line_points, noise_level
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import validation
from gradlab.arithmetic.namespaces import MPNamespace
from gradlab.arithmetic.objective import Objective, call_batched

__all__ = ["AttributionResult", "attribute_noise"]

_SYMBOLS = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "true_divide": "/",
            "power": "**", "matmul": "matmul", "add.reduce": "sum"}
_ROUNDING_UFUNCS = {"add", "subtract", "multiply", "divide", "true_divide", "power", "matmul"}
_PACKAGE = Path(__file__).parents[1]
_INTERNAL_FILES = {str(_PACKAGE / f) for f in
                   ("analysis/attribution.py", "arithmetic/namespaces.py", "arithmetic/objective.py")}
_NUMPY = str(Path(np.__file__).parent)
_ACTIVE: list[_Tracer] = []


def _caller() -> tuple[str, str]:
    """(file:line, source text) of the objective's line that issued the operation."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name not in _INTERNAL_FILES and not name.startswith(_NUMPY):
            code = linecache.getline(name, frame.f_lineno).strip()
            return f"{Path(name).name}:{frame.f_lineno}", code
        frame = frame.f_back  # type: ignore[assignment]
    return "?", ""


class _Traced(np.ndarray):
    """An object array whose arithmetic is numbered (and optionally rounded) by the tracer."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        plain = [x.view(np.ndarray) if isinstance(x, _Traced) else x for x in inputs]
        result = getattr(ufunc, method)(*plain, **kwargs)
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        if _ACTIVE and (ufunc.__name__ in _ROUNDING_UFUNCS):
            return _ACTIVE[-1].after(name, result)
        return _wrap(result)


def _wrap(x: Any) -> Any:
    return x.view(_Traced) if isinstance(x, np.ndarray) and x.dtype == object else x


class _Tracer:
    def __init__(self, ns: MPNamespace, fmt: fmts.Format, rounded: set[int] | None) -> None:
        self.ns, self.fmt, self.rounded = ns, fmt, rounded  # None: round every operation
        self.sites: list[tuple[str, str, str]] = []

    def after(self, name: str, result: Any) -> Any:
        k = len(self.sites)
        self.sites.append((_SYMBOLS.get(name, name), *_caller()))
        if self.rounded is None or k in self.rounded:
            result = self._round(result)
        return _wrap(result)

    def reduction(self, name: str, exact: Any, emulated: Any) -> Any:
        """A sum or matrix product: one site, its exact result or (rounded) the format's."""
        k = len(self.sites)
        self.sites.append((_SYMBOLS.get(name, name), *_caller()))
        return _wrap(emulated() if self.rounded is None or k in self.rounded else exact)

    def _round(self, x: Any, fmt: fmts.Format | None = None) -> Any:
        ctx, fmt = self.ns.ctx, fmt or self.fmt.compute
        if isinstance(x, np.ndarray):
            flat = [ctx.make_mpf(fmts.round_exact(v, fmt)._mpf_) for v in x.reshape(-1)]
            out = np.empty(len(flat), dtype=object)
            out[:] = flat
            return out.reshape(x.shape)
        return ctx.make_mpf(fmts.round_exact(x, fmt)._mpf_)

    def sequential(self, terms: Any, axis: int) -> Any:
        """The sum over ``axis`` of exact terms, each partial sum rounded to the accumulator
        and the result once to compute, as the format's reduction runs."""
        acc = self.fmt.accumulate
        terms = np.moveaxis(np.asarray(terms, dtype=object), axis, 0)
        if terms.shape[0] == 0:
            return np.zeros(terms.shape[1:], dtype=object) + self.ns.ctx.mpf(0)
        s = terms[0]
        for t in terms[1:]:
            s = self._round(np.asarray(s + t, dtype=object), acc)
        return self._round(np.asarray(s, dtype=object)) if acc != self.fmt.compute else s


class _TracingNamespace(MPNamespace):
    """An exact namespace whose operations report to the active tracer."""

    def _matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = (x.view(np.ndarray) if isinstance(x, _Traced) else x for x in (a, b))
        tracer = _ACTIVE[-1]
        fmt = tracer.fmt

        def emulated() -> Any:
            ins = fmt.matmul_inputs
            x, y = (a, b) if ins is None else (tracer._round(a, ins), tracer._round(b, ins))
            prods = tracer._round(np.asarray(x[..., :, :, None] * y[..., None, :, :], dtype=object),
                                  fmt.accumulate)
            return tracer.sequential(prods, -2)

        return tracer.reduction("matmul", np.asarray(np.matmul(a, b), dtype=object), emulated)

    def sum(self, x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        self._check(x, "sum")
        x = x.view(np.ndarray) if isinstance(x, _Traced) else x
        axes = self._logical_axes(x, axis)
        tracer = _ACTIVE[-1]

        def emulated() -> Any:
            kept = [d for d in range(x.ndim) if d not in axes]
            moved = np.transpose(x, kept + sorted(axes))
            flat = moved.reshape((*moved.shape[: len(kept)], -1))
            r = tracer.sequential(flat, -1)
            shape = [1 if d in axes else x.shape[d] for d in range(x.ndim)]
            return np.asarray(r, dtype=object).reshape(shape) if keepdims else r

        exact = np.asarray(np.sum(x, axis=axes, keepdims=keepdims), dtype=object)
        return tracer.reduction("add.reduce", exact, emulated)

    def _apply(self, fname: str, x: Any) -> Any:
        r = super()._apply(fname, x.view(np.ndarray) if isinstance(x, _Traced) else x)
        return _ACTIVE[-1].after(fname, r)

    def logaddexp(self, a: Any, b: Any) -> Any:
        """One operation, rounded once (as numpy's logaddexp ufunc is)."""
        plain = MPNamespace(self.prec, self.data_format, self.batch_ndim)
        r = plain.logaddexp(*(x.view(np.ndarray) if isinstance(x, _Traced) else x for x in (a, b)))
        return _ACTIVE[-1].after("logaddexp", r)

    def asarray(self, x: Any) -> np.ndarray:
        return _wrap(super().asarray(x))

    def from_values(self, values: np.ndarray) -> np.ndarray:
        return _wrap(super().from_values(values))


@contextmanager
def _tracing(tracer: _Tracer) -> Iterator[_Tracer]:
    _ACTIVE.append(tracer)
    try:
        yield tracer
    finally:
        _ACTIVE.pop()


@dataclass(frozen=True)
class AttributionResult:
    """Noise of J per operation.

    Attributes
    ----------
    objective, format : str
    table : pandas.DataFrame
        One row per operation: site (its index in one evaluation), op, where
        (file:line), code (that line), sigma, n_nonfinite (sample points where J with
        that operation rounded is not finite), sigma_u (in units of u|J|), share (of
        the summed variance).
    sigma_all : float
        Noise with every operation rounded (the sum the shares divide).
    sigma_hardware : float
        The format's own noise level (:func:`gradlab.noise_level`, direct).
    value : float
        |J|: the median of the exact J over the sample points (the unit of ``sigma_u``).
    """

    objective: str
    format: str
    table: pd.DataFrame
    sigma_all: float
    sigma_hardware: float
    value: float

    def to_frame(self) -> pd.DataFrame:
        """The per-operation table with the objective and format columns."""
        df = self.table.copy()
        df.insert(0, "format", self.format)
        df.insert(0, "objective", self.objective)
        return df


def attribute_noise(
    obj: Objective,
    format: fmts.Format | str = "float32",
    *,
    n_lines: int = 3,
    nf: int = 9,
    seed: int = 0,
) -> AttributionResult:
    """Attribute J's rounding noise in a format to the operations that cause it.

    Parameters
    ----------
    obj : Objective
    format : str or Format
    n_lines, nf, seed
        The sample: ``n_lines`` lines of ``nf`` points through theta, as in
        :func:`gradlab.noise_level`.

    Returns
    -------
    AttributionResult

    Examples
    --------
    >>> import gradlab as gl
    >>> res = gl.attribute_noise(gl.objectives.seed_net(), "float32")
    >>> top = res.table.sort_values("share").iloc[-1]
    >>> top.op, top.code
    ('+', 'a3 = 1 / (1 + xp.exp(-z3))')
    """
    validation.objective("obj", obj)
    fmt = validation.one_format("format", format)
    n_lines, nf = validation.integer("n_lines", n_lines, 1), validation.integer("nf", nf, 7)
    rng = np.random.default_rng(validation.integer("seed", seed, 0))
    theta = fmts.round_to_mpf(obj.theta0, fmt)
    exact_at_theta(obj, fmt, 2 * fmt.p + 64, theta)  # refuses a J not finite at theta, before the work
    rel = float(np.sqrt(fmt.u))
    blocks = [line_points(theta, fmt, nf, rel, rng.choice([-1, 1], size=obj.n_params))[0]
              for _ in range(n_lines)]
    points = np.concatenate(blocks, axis=0)
    prec = 2 * fmt.p + 96

    def run(rounded: set[int] | None) -> tuple[np.ndarray, list[tuple[str, str, str]]]:
        ns = _TracingNamespace(prec, data_format=fmt, batch_ndim=1)
        tracer = _Tracer(ns, fmt, rounded)
        with _tracing(tracer):
            # the tracing namespace is its own arithmetic (every operation numbered), so
            # the (batch-safe) objective is called in it directly
            vals = call_batched(obj, ns.from_values(points), ns)
        return np.array([fmts.exact_mpf(v) for v in vals], dtype=object), tracer.sites

    def deviation(j: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """j - ref formed exactly, then rounded once to float64 (longdouble's noise is
        far below float64's resolution of J itself)."""
        with mpmath.workprec(prec + 64):
            return np.array([float(a - b) for a, b in zip(j, ref, strict=True)])

    if not obj.batch_safe:
        raise ValueError(f"objective {obj.name!r} must be batch-safe to attribute its noise")
    j_exact, sites = run(set())
    rows = []
    for k, (op, where, code) in enumerate(sites):
        j_k, _ = run({k})
        e = deviation(j_k, j_exact)
        finite = np.isfinite(e)
        sigma = float(np.std(e[finite], ddof=1)) if finite.sum() > 1 else np.inf
        rows.append({"site": k, "op": op, "where": where, "code": code, "sigma": sigma,
                     "n_nonfinite": int((~finite).sum())})
    j_all, _ = run(None)
    e_all = deviation(j_all, j_exact)
    value = abs(float(np.median([float(v) for v in j_exact])))
    table = pd.DataFrame(rows)
    scale = fmt.u * value
    table["sigma_u"] = table["sigma"] / scale if scale > 0 else np.inf
    var = table["sigma"] ** 2
    total = float(var[np.isfinite(var)].sum())
    table["share"] = var / total if total > 0 else 0.0
    finite_all = np.isfinite(e_all)
    return AttributionResult(
        objective=obj.name,
        format=fmt.name,
        table=table,
        sigma_all=float(np.std(e_all[finite_all], ddof=1)) if finite_all.sum() > 1 else np.inf,
        sigma_hardware=noise_level(obj, fmt, seed=seed).sigma_direct,
        value=value,
    )
