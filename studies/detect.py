"""Bug-injection benchmark: correct gradients and realistic backprop bugs, judged by
gl.check and by the peers' checkers at their defaults, in every format.

Declares the grid and writes tables, a figure and the numbers its paper quotes.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import gradlab as gl
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.arithmetic.objective import call_grad
from gradlab.checking.checkers import CHECKERS
from gradlab.objectives.bugs import BUGS, inject
from gradlab.reporting import plots
from gradlab.reporting.paper import sci
from gradlab.reporting.tables import provenance, write_table

DESCRIPTION = "bug-injection benchmark: false alarms and misses of gl.check and the peers"
FORMATS = ["float64", "float32", "float16", "bfloat16"]


def objectives(quick: bool = False) -> list[gl.Objective]:
    """Networks whose backprop the bugs corrupt."""
    ob = gl.objectives
    nets = [ob.seed_net(), ob.seed_net(stable=True),
            ob.mlp((4, 8, 1), "tanh", "bce", seed=1), ob.mlp((5, 10, 3), "tanh", "softmax", seed=2),
            ob.mlp((6, 12, 1), "sigmoid", "mse", seed=3)]
    return nets[:2] if quick else nets


@contextlib.contextmanager
def _jax_x64() -> Iterator[None]:
    """JAX's 64-bit mode on for the study (so its float64 rows can be checked), restored
    after; nothing without JAX."""
    if importlib.util.find_spec("jax") is None:
        yield
        return
    import jax

    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", before)


def run(out: Path, quick: bool = False, progress: bool = True,
        formats: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark into ``out``; returns timings and paths."""
    with _jax_x64():
        return _run(out, quick, progress, formats)


def _run(out: Path, quick: bool, progress: bool, formats: list[str] | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    fmts = (["float64", "float32"] if quick else FORMATS) if formats is None else formats
    objs = objectives(quick)
    meta = provenance({"study": "detect", "quick": quick, "formats": fmts, "bugs": list(BUGS),
                       "checkers": list(CHECKERS), "objectives": [o.name for o in objs]})
    rows: list[dict[str, Any]] = []
    for obj in tqdm(objs, desc="detect study", disable=not progress):
        for fmt in fmts:
            exact = np.array([float(v) for v in gl.exact(obj, fmt, digits=25, orders=()).grad])
            floor = gl.optimal_step(obj, format=fmt).predicted_error
            ns = namespace_for(fmt)
            good = call_grad(obj, gl.formats.round_array(obj.theta0, fmt), ns)
            cases = [("none", good.astype(np.float64))]
            for bug in BUGS:
                try:
                    cases.append((bug, inject(obj, bug, fmt)))
                except ValueError:
                    continue  # this bug is not built for this network
            for bug, grad in cases:
                size = float(np.linalg.norm(grad - exact) / np.linalg.norm(exact))
                for name, checker in CHECKERS.items():
                    with np.errstate(all="ignore"):
                        v = checker(obj, grad, fmt)
                    rows.append({"objective": obj.name, "format": fmt, "bug": bug,
                                 "size": size, "floor": 2 * floor, "above_floor": size > 2 * floor,
                                 "checker": name, "passed": v.passed, "undecided": v.undecided,
                                 "statistic": v.statistic, "nfev": v.nfev})
    table = pd.DataFrame(rows)
    rates = _rates(table)
    corpus_table = _corpus(quick, fmts, progress)
    numbers = _numbers(rates, table, corpus_table)
    paths = [write_table(table, out / "tables" / "verdicts", meta),
             write_table(rates, out / "tables" / "rates", meta),
             write_table(numbers, out / "tables" / "numbers", meta)]
    if corpus_table is not None:
        paths.append(write_table(corpus_table, out / "tables" / "corpus", meta))
    long = rates.melt(id_vars=["checker", "format"], value_vars=["false_alarm", "miss_above_floor"],
                      var_name="rate", value_name="value")
    fig = plots.facet(long, plots.rate_bars, col="rate", ncols=2, size=(5.0, 3.4), sharey=False,
                      title="false alarms on correct gradients, misses of bugs above the FD floor")
    figures = plots.save(fig, out / "figures" / "detection")
    return {"seconds": time.perf_counter() - t0, "tables": paths, "figures": figures}


# -- the PyTorch corpus --------------------------------------------------------------

#: The errors injected into a correct gradient: a factor on one component, a sign flip of
#: one component, and a transposed 2x2 block of the operator's Jacobian.
CORPUS_BUGS = ("none", "x1.1", "x1.01", "sign", "transposed")
CORPUS_FORMATS = ["float64", "float32", "float16", "bfloat16"]


def _weights(op: Any, m: int) -> np.ndarray:
    """Fixed weights w that make an operator scalar, J = sum(w * op(x))."""
    rng = np.random.default_rng([7, *op.name.encode()])
    return rng.uniform(0.5, 1.5, m) * rng.choice([-1.0, 1.0], m)


def _hit_component(op: Any, grad: np.ndarray) -> int:
    """The component the injected errors hit: a random one (fixed by the operator's name)
    among those at least a tenth of the largest, so that a factor on it is an error."""
    big = np.flatnonzero(np.abs(grad) >= 0.1 * np.max(np.abs(grad)))
    rng = np.random.default_rng([11, *op.name.encode()])
    return int(rng.choice(big)) if big.size else 0


def _transposable_block(jac: np.ndarray, n_inputs: int) -> tuple[int, int] | None:
    """The 2x2 block (a, b) of the Jacobian most changed by transposing it; None where every
    such block is symmetric (to 1e-3 of the largest entry: elementwise operators, softmax)."""
    n = min(jac.shape[0], n_inputs)
    if n < 2:
        return None
    asym = np.abs(jac[:n, :n] - jac[:n, :n].T)
    a, b = np.unravel_index(int(np.argmax(np.triu(asym, 1))), asym.shape)
    return (int(a), int(b)) if asym[a, b] > 1e-3 * max(np.max(np.abs(jac)), 1e-300) else None


def _applicable(bugs: tuple[str, ...], block: tuple[int, int] | None) -> list[str]:
    """The injections that apply: all but the transposed block where the Jacobian has none."""
    return [b for b in bugs if b != "transposed" or block is not None]


class _CorpusCase:
    """An operator made scalar, its autograd gradient and the injected errors, in torch."""

    def __init__(self, op: Any) -> None:
        import torch

        self.torch, self.op = torch, op
        self.theta = op.theta()
        t64 = torch.as_tensor(self.theta)
        self.m = int(op.fn(t64).numel())
        self.w = _weights(op, self.m)
        self.k = _hit_component(op, self._grad(t64).numpy())
        jac = torch.autograd.functional.jacobian(lambda t: op.fn(t).reshape(-1), t64).numpy()
        self.block = _transposable_block(jac, op.n)

    def J(self, t: Any) -> Any:
        """The scalar J(t) = sum(w * op(t)), in t's dtype."""
        y = self.op.fn(t).reshape(-1)
        return (y * self.torch.as_tensor(self.w).to(t.dtype)).sum()

    def _grad(self, t: Any, row: int | None = None) -> Any:
        """J's gradient at t (or row ``row`` of the operator's Jacobian), by autograd; grad
        mode on, for calls from inside a backward (gradcheck's)."""
        with self.torch.enable_grad():
            t = t.detach().clone().requires_grad_(True)
            y = self.J(t) if row is None else self.op.fn(t).reshape(-1)[row]
            (g,) = self.torch.autograd.grad(y, t)
        return g

    def gradient(self, bug: str) -> Callable[[np.ndarray], np.ndarray]:
        """The gradient under test, dtype-generic (it runs in its input's dtype)."""
        from gradlab.checking.adapters import _input_format, _to_numpy, _to_torch

        torch, k = self.torch, self.k

        def grad(x: np.ndarray) -> np.ndarray:
            fmt = _input_format(x, None)
            t = _to_torch(x, fmt)
            g = self._grad(t)
            if bug == "x1.1":
                g[k] = g[k] * 1.1
            elif bug == "x1.01":
                g[k] = g[k] * 1.01
            elif bug == "sign":
                g[k] = -g[k]
            elif bug == "transposed":
                assert self.block is not None
                a, b = self.block
                jab, jba = self._grad(t, a)[b], self._grad(t, b)[a]  # J[a, b] and J[b, a]
                w = torch.as_tensor(self.w).to(t.dtype)
                g[b] = g[b] + w[a] * (jba - jab)
                g[a] = g[a] + w[b] * (jab - jba)
            return _to_numpy(g, fmt)

        return grad

    def bugs(self) -> list[str]:
        """The injections that apply (:func:`_applicable`)."""
        return _applicable(CORPUS_BUGS, self.block)


def _gradcheck(case: _CorpusCase, grad: Callable[[np.ndarray], np.ndarray], fmt: str) -> dict[str, Any]:
    """torch.autograd.gradcheck at its defaults, on J in the format's dtype with the gradient
    under test as its backward."""
    import warnings

    import torch

    from gradlab.checking.adapters import _to_numpy, _to_torch

    f = gl.formats.get(fmt)

    class _Fn(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, t: Any) -> Any:
            ctx.save_for_backward(t)
            return case.J(t)

        @staticmethod
        def backward(ctx: Any, go: Any) -> Any:
            (t,) = ctx.saved_tensors
            return go * _to_torch(grad(_to_numpy(t, f)), f)

    x = _to_torch(gl.formats.round_array(case.theta, f), f).requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gradcheck warns for every dtype but float64
        try:
            ok = bool(torch.autograd.gradcheck(_Fn.apply, (x,), raise_exception=False))
            return {"passed": ok, "decided": True, "error": ""}
        except RuntimeError:  # gradcheck's own refusal of the gradient: a failure
            return {"passed": False, "decided": True, "error": ""}
        except Exception as exc:  # recorded as undecided: the study goes on
            return {"passed": False, "decided": False, "error": f"{type(exc).__name__}: {exc}"}


def _check_grads(case: _CorpusCase, grad: Callable[[np.ndarray], np.ndarray], fmt: str) -> dict[str, Any]:
    """jax.test_util.check_grads at its defaults (order 1, reverse mode) on J in the format's
    dtype, through a custom_vjp whose backward returns the gradient under test. JAX runs
    float64 only in its x64 mode, which gradlab does not switch on: that row is undecided."""
    import jax
    from jax.test_util import check_grads

    f = gl.formats.get(fmt)
    if f.name == "float64" and not jax.config.read("jax_enable_x64"):
        return {"passed": False, "decided": False, "error": "JAX computes float64 only in x64 mode"}
    assert f.dtype is not None
    dtype = f.dtype
    value_fn, _ = gl.adapters.from_torch(case.J)

    def value(t: Any) -> Any:
        return np.asarray(value_fn(np.asarray(t, dtype=dtype)), dtype=dtype)

    def vjp_value(t: Any) -> Any:
        return np.asarray(grad(np.asarray(t, dtype=dtype)), dtype=dtype)

    @jax.custom_vjp
    def j(t: Any) -> Any:
        return jax.pure_callback(value, jax.ShapeDtypeStruct((), dtype), t)

    def bwd(t: Any, go: Any) -> Any:
        return (go * jax.pure_callback(vjp_value, jax.ShapeDtypeStruct(t.shape, dtype), t),)

    j.defvjp(lambda t: (j(t), t), bwd)
    x = jax.numpy.asarray(gl.formats.round_array(case.theta, f))
    try:
        check_grads(j, (x,), order=1, modes=("rev",))
        return {"passed": True, "decided": True, "error": ""}
    except AssertionError:
        return {"passed": False, "decided": True, "error": ""}
    except Exception as exc:  # recorded as undecided: the study goes on
        return {"passed": False, "decided": False, "error": f"{type(exc).__name__}: {exc}"}


class _JaxCase:
    """A JAX operator made scalar, its jax.grad gradient and the injected errors, in JAX."""

    def __init__(self, op: Any) -> None:
        import jax
        import jax.numpy as jnp

        self.jax, self.jnp, self.op = jax, jnp, op
        self.theta = op.theta()
        t64 = jnp.asarray(self.theta, dtype=jnp.float64)
        self.m = int(jnp.size(op.fn(t64)))
        self.w = _weights(op, self.m)
        self.k = _hit_component(op, np.asarray(jax.grad(self.J)(t64)))
        self.block = _transposable_block(np.asarray(jax.jacrev(lambda t: jnp.ravel(op.fn(t)))(t64)), op.n)

    def J(self, t: Any) -> Any:
        """The scalar J(t) = sum(w * op(t)), in t's dtype."""
        return self.jnp.sum(self.jnp.ravel(self.op.fn(t)) * self.jnp.asarray(self.w).astype(t.dtype))

    def bugs(self) -> list[str]:
        """The injections that apply (:func:`_applicable`)."""
        return _applicable(CORPUS_BUGS, self.block)

    def buggy(self, bug: str) -> Callable[[Any], Any]:
        """J with jax.grad's gradient replaced by the gradient under test (a custom_vjp)."""
        jax, jnp, k = self.jax, self.jnp, self.k

        def wrong(t: Any) -> Any:
            g = jax.grad(self.J)(t)
            if bug == "x1.1":
                g = g.at[k].multiply(1.1)
            elif bug == "x1.01":
                g = g.at[k].multiply(1.01)
            elif bug == "sign":
                g = g.at[k].multiply(-1.0)
            elif bug == "transposed":
                assert self.block is not None
                a, b = self.block
                jac = jax.jacrev(lambda s: jnp.ravel(self.op.fn(s)))(t)
                w = jnp.asarray(self.w).astype(t.dtype)
                g = g.at[b].add(w[a] * (jac[b, a] - jac[a, b])).at[a].add(w[b] * (jac[a, b] - jac[b, a]))
            return g

        if bug == "none":
            return self.J

        @jax.custom_vjp
        def j(t: Any) -> Any:
            return self.J(t)

        j.defvjp(lambda t: (self.J(t), t), lambda t, go: (go * wrong(t),))
        return j


def jax_rows(op: Any, formats: list[str]) -> list[dict[str, Any]]:
    """gl.check and JAX's own check_grads on one JAX operator: correct and injected gradients."""
    import jax
    from jax.test_util import check_grads

    case = _JaxCase(op)
    rows = []
    for fmt in formats:
        base = {"op": op.name, "n": op.n, "smooth": op.smooth, "format": fmt, "library": "jax"}
        x_f = gl.formats.round_array(case.theta, fmt)
        try:
            f, g0 = gl.adapters.from_jax(case.J)
            correct = np.asarray(g0(x_f), dtype=np.float64)
            f(x_f)
        except Exception as exc:  # no kernel for this dtype: left out, and said
            first = str(exc).splitlines()[0][:120] if str(exc) else ""
            rows.append({**base, "bug": "none", "checker": "gradlab", "supported": False,
                         "injected": True, "error": f"{type(exc).__name__}: {first}"})
            continue
        for bug in case.bugs():
            fn = case.buggy(bug)
            f, grad = gl.adapters.from_jax(fn)
            with np.errstate(all="ignore"):
                injected = bug == "none" or not np.array_equal(
                    np.asarray(grad(x_f), dtype=np.float64), correct, equal_nan=True)
            t0 = time.perf_counter()
            try:
                with np.errstate(all="ignore"):
                    res = gl.check(f, grad, theta=case.theta, format=fmt)
                verdict = {"passed": res.passed, "decided": res.decided, "nfev": res.nfev, "error": ""}
            except Exception as exc:  # a row that says why, never a stopped study
                verdict = {"passed": False, "decided": False, "nfev": 0,
                           "error": f"{type(exc).__name__}: {exc}"}
            rows.append({**base, "bug": bug, "injected": injected, "checker": "gradlab",
                         "supported": True, "seconds": time.perf_counter() - t0, **verdict})
            try:
                check_grads(fn, (jax.numpy.asarray(x_f),), order=1, modes=("rev",))
                peer = {"passed": True, "decided": True, "error": ""}
            except AssertionError:
                peer = {"passed": False, "decided": True, "error": ""}
            except Exception as exc:  # recorded as undecided: the study goes on
                peer = {"passed": False, "decided": False, "error": f"{type(exc).__name__}: {exc}"}
            rows.append({**base, "bug": bug, "injected": injected, "checker": "jax_check_grads",
                         "supported": True, **peer})
    return rows


def _arbiter(case: _CorpusCase, grad: Callable[[np.ndarray], np.ndarray], fmt: str
             ) -> tuple[float, float]:
    """How far the float64 gradient at the format's theta lies from J's derivative as PyTorch
    computes J: in units of gl.gradient's error bar (float64 J; above 1, the backward is
    inconsistent with the forward, a real defect and not a false alarm), and relative to
    the largest component."""
    f, _ = gl.adapters.from_torch(case.J)
    x = gl.formats.round_array(case.theta, fmt).astype(np.float64)
    est = gl.gradient(f, x, "float64")
    gap = np.abs(np.asarray(grad(x), dtype=np.float64) - est.grad)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.max(gap / est.error)), float(np.max(gap) / np.max(np.abs(est.grad)))


def corpus_rows(op: Any, formats: list[str]) -> list[dict[str, Any]]:
    """gl.check and torch's gradcheck on one operator: correct and injected gradients."""
    case = _CorpusCase(op)
    f, _ = gl.adapters.from_torch(case.J)
    rows = []
    for fmt in formats:
        base = {"op": op.name, "n": op.n, "smooth": op.smooth, "format": fmt}
        try:
            case.gradient("none")(gl.formats.round_array(case.theta, fmt))
            f(gl.formats.round_array(case.theta, fmt))
        except (NotImplementedError, RuntimeError) as exc:  # PyTorch has no kernel here
            rows.append({**base, "bug": "none", "checker": "gradlab", "supported": False,
                         "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"})
            continue
        x_f = gl.formats.round_array(case.theta, fmt)
        with np.errstate(all="ignore"):
            correct = np.asarray(case.gradient("none")(x_f), dtype=np.float64)
        for bug in case.bugs():
            grad = case.gradient(bug)
            with np.errstate(all="ignore"):
                injected = bug == "none" or not np.array_equal(
                    np.asarray(grad(x_f), dtype=np.float64), correct, equal_nan=True)
            base["injected"] = injected  # x1.1 of a zero component changes nothing: no bug
            t0 = time.perf_counter()
            try:
                with np.errstate(all="ignore"):
                    res = gl.check(f, grad, theta=case.theta, format=fmt)
                verdict = {"passed": res.passed, "decided": res.decided, "nfev": res.nfev,
                           "reference_format": res.reference_format, "error": ""}
            except Exception as exc:  # e.g. the gradient is not finite at theta:
                # a row that says why, never a study that stops and loses the others
                verdict = {"passed": False, "decided": False, "nfev": 0, "reference_format": "",
                           "error": f"{type(exc).__name__}: {exc}"}
            seconds = time.perf_counter() - t0
            gap, rel = (_arbiter(case, grad, fmt) if bug == "none" and not verdict["passed"]
                        and verdict["decided"] else (np.nan, np.nan))
            rows.append({**base, "bug": bug, "checker": "gradlab", "supported": True,
                         "seconds": seconds, "arbiter": gap, "arbiter_rel": rel, **verdict})
            rows.append({**base, "bug": bug, "checker": "torch_gradcheck", "supported": True,
                         **_gradcheck(case, grad, fmt)})
            if importlib.util.find_spec("jax") is not None:
                rows.append({**base, "bug": bug, "checker": "jax_check_grads", "supported": True,
                             **_check_grads(case, grad, fmt)})
    return rows


def _corpus_numbers(ct: pd.DataFrame) -> dict[str, str]:
    """The corpus tables, one per library (the JAX one's names start with ``jax_``)."""
    library = ct.library if "library" in ct else pd.Series("torch", ct.index)
    out = _library_numbers(ct[library == "torch"])
    jax_rows = ct[library == "jax"]
    if len(jax_rows):
        out.update({f"jax_{k}": v for k, v in _library_numbers(jax_rows).items()})
    else:
        out["jax_corpus_table"] = ("JAX is not installed where these tables were made: its "
                                   "operators were not run (`pip install 'jax[cpu]'`).")
        for key in ("n_ops", "corpus_seconds", "corpus_nfev", "corpus_undecided", "unsupported_formats"):
            out[f"jax_{key}"] = "(not measured: no JAX)"
    return out


def _library_numbers(ct: pd.DataFrame) -> dict[str, str]:
    """One library's table: false alarms, decided, detection of x1.1 and the other errors."""
    run = ct[ct.supported.astype(bool)]
    lines = ["| checker | format | operators | false alarms | decided | x1.1 caught | x1.01 caught "
             "| sign flip caught | transposed block caught |", "|---|---|---|---|---|---|---|---|---|"]
    out: dict[str, str] = {"n_ops": str(ct.op.nunique()),
                           "n_ops_kinked": str(ct[~ct.smooth.astype(bool)].op.nunique())}
    for (checker, fmt), g in run.groupby(["checker", "format"], sort=False):
        good = g[g.bug == "none"]
        # a FAIL of a correct gradient whose float64 backward is inconsistent with PyTorch's
        # own forward (beyond gl.gradient's error bar) is a real defect, not a false alarm
        defect = good.arbiter.fillna(0) > 1 if "arbiter" in good else pd.Series(False, good.index)
        alarms = good[~good.passed.astype(bool) & good.decided.astype(bool) & ~defect]
        cells = []
        for bug in ("x1.1", "x1.01", "sign", "transposed"):
            b = g[(g.bug == bug) & g.injected.astype(bool)]
            caught = int((~b.passed.astype(bool) & b.decided.astype(bool)).sum())
            cells.append(f"{caught} of {len(b)}")
            key = f"{checker}_{fmt}_{bug}".replace(".", "_")
            out[f"caught_{key}"] = sci(100 * caught / max(len(b), 1), 3)
        g = g[g.injected.astype(bool)]
        decided = int(g.decided.astype(bool).sum())
        key = f"{checker}_{fmt}"
        out[f"alarms_{key}"] = str(len(alarms))
        out[f"decided_{key}"] = sci(100 * decided / len(g), 3)
        out[f"defects_{key}"] = ", ".join(
            f"{r.op} (off by {sci(r.arbiter_rel)} of the largest component, {sci(r.arbiter)} bars)"
            for r in good[defect].sort_values("op").itertuples()) or "none"
        lines.append(f"| {checker} | {fmt} | {len(good)} | {len(alarms)} | "
                     f"{sci(100 * decided / len(g), 3)}% | " + " | ".join(cells) + " |")
    out["corpus_table"] = "\n".join(lines)
    gl_rows = run[run.checker == "gradlab"]
    out["corpus_seconds"] = sci(float(gl_rows.seconds.median()), 2)
    out["corpus_nfev"] = sci(float(gl_rows.nfev.median()))
    unsupported = ct[~ct.supported.astype(bool)]
    out["n_unsupported"] = str(len(unsupported))
    noop = run[(run.checker == "gradlab") & ~run.injected.astype(bool)]
    out["noop_injections"] = ", ".join(
        f"{op} ({', '.join(sorted(set(g.format), key=CORPUS_FORMATS.index))})"
        for op, g in noop.groupby("op")) or "none"
    undecided = run[(run.checker == "gradlab") & run.injected.astype(bool) & ~run.decided.astype(bool)]
    out["corpus_undecided"] = ", ".join(
        f"{r.op} in {r.format} ({r.bug}{': ' + r.error if r.error else ''})"
        for r in undecided.itertuples()) or "none"
    out["unsupported_formats"] = ", ".join(
        f"{fmt} ({len(g)})" for fmt, g in unsupported.groupby("format")) or "none"
    return out


def _rates(table: pd.DataFrame) -> pd.DataFrame:
    out = []
    for (checker, fmt), g in table.groupby(["checker", "format"]):
        undecided = g[g.undecided]
        nfev = float(g.nfev.median())
        g = g[~g.undecided]
        correct = g[g.bug == "none"]
        bugs = g[g.bug != "none"]
        above = bugs[bugs.above_floor]
        out.append({
            "checker": checker, "format": fmt, "n_undecided": len(undecided),
            "n_correct": len(correct), "n_false_alarms": int((~correct.passed).sum()),
            "n_above_floor": len(above), "n_missed_above": int(above.passed.sum()),
            "n_bugs": len(bugs), "n_missed": int(bugs.passed.sum()),
            # no case to count (every one undecided, or no bug above the floor): no rate
            "false_alarm": float((~correct.passed).mean()) if len(correct) else math.nan,
            "miss_above_floor": float(above.passed.mean()) if len(above) else math.nan,
            "median_nfev": nfev,
        })
    return pd.DataFrame(out)


def _corpus(quick: bool, fmts: list[str], progress: bool) -> pd.DataFrame | None:
    """The PyTorch corpus's verdicts (None without PyTorch: the paper says so)."""
    if importlib.util.find_spec("torch") is None:
        return None
    from gradlab.objectives.torch_ops import corpus

    ops = corpus()
    ops = ops[::10] if quick else ops
    wanted = [f for f in CORPUS_FORMATS if f in fmts]
    rows: list[dict[str, Any]] = []
    for op in tqdm(ops, desc="PyTorch corpus", disable=not progress):
        rows += [{**r, "library": "torch"} for r in corpus_rows(op, wanted)]
    if importlib.util.find_spec("jax") is not None:
        from gradlab.objectives.jax_ops import corpus as jax_corpus

        jops = jax_corpus()
        for op in tqdm(jops[::20] if quick else jops, desc="JAX corpus", disable=not progress):
            rows += jax_rows(op, wanted)
    return pd.DataFrame(rows)


def _numbers(rates: pd.DataFrame, table: pd.DataFrame, corpus_table: pd.DataFrame | None) -> pd.DataFrame:
    lines = ["| checker | format | false alarms | misses above floor | misses, all bugs "
             "| could not check | median evaluations |", "|---|---|---|---|---|---|---|"]
    for r in rates.sort_values(["checker", "format"]).itertuples():
        lines.append(f"| {r.checker} | {r.format} | {r.n_false_alarms} of {r.n_correct} "
                     f"| {r.n_missed_above} of {r.n_above_floor} | {r.n_missed} of {r.n_bugs} "
                     f"| {r.n_undecided} | {sci(r.median_nfev)} |")
    g = rates[rates.checker == "gradlab"]
    above = int(g.n_above_floor.sum())
    out = {
        "rates_table": "\n".join(lines),
        "gl_false_alarms": str(int(g.n_false_alarms.sum())),
        "gl_correct_cases": str(int(g.n_correct.sum())),
        "gl_detect_pct": sci(100 * (1 - int(g.n_missed_above.sum()) / max(1, above)), 3),
        "gl_above_floor": str(above),
        "gl_undecided": str(int(g.n_undecided.sum())),
        "n_objectives": str(table.objective.nunique()),
        "n_bugs": str(table[table.bug != "none"].bug.nunique()),
    }
    if corpus_table is not None:
        out.update(_corpus_numbers(corpus_table))
    else:
        out["corpus_table"] = ("PyTorch is not installed where these tables were made: the corpus "
                               "was not run (`pip install torch==2.13.0`, the CPU build).")
    return pd.DataFrame({"name": list(out), "text": list(out.values())})
