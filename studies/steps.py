"""Step-size rules, gradlab's error-model predictor and the peers' tools, each ranked
against the oracle step (the grid step with the least exact error) on a benchmark
set of objectives, formats and schemes.

Declares the grid and writes tables, a figure and the numbers its paper quotes.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import gradlab as gl
from gradlab.analysis.engine import fd_gradient
from gradlab.analysis.errors import relative_error
from gradlab.arithmetic.objective import Objective
from gradlab.reporting import plots
from gradlab.reporting.paper import sci
from gradlab.reporting.tables import provenance, write_table
from gradlab.steps import StepResult, oracle
from gradlab.steps.peers import PEERS
from gradlab.steps.rules import RULES

DESCRIPTION = "step-size rules, optimal_step and the peers' tools against the exact optimum"
FORMATS = ["float64", "float32", "float16", "bfloat16"]
SCHEMES = ["forward", "central"]
GRADIENT_FORMATS = ["float64", "float32", "float16"]
PEER_SCHEME = {  # the scheme each peer's default uses (docs/references.md, "What peers do")
    "scipy_approx_fprime": "forward",
    "scipy_approx_derivative_2point": "forward",
    "scipy_approx_derivative_3point": "central",
    "numdifftools_gradient": "central",
    "scipy_derivative": "central",
}


def benchmark_set(quick: bool = False) -> list[Objective]:
    """At least 12 objectives: the seed pair, MLPs of several widths, scales, activations
    and losses, logistic and softmax regression, closed-form smooth sums, a quadratic."""
    ob = gl.objectives
    full = [
        ob.seed_net(),
        ob.seed_net(stable=True),
        ob.mlp((4, 8, 1), "tanh", "bce", sigma=1.0, seed=1),
        ob.mlp((4, 16, 16, 1), "relu", "bce", sigma=1.0, seed=2),
        ob.mlp((6, 12, 1), "tanh", "mse", sigma=0.1, seed=3),
        ob.mlp((6, 12, 1), "tanh", "mse", sigma=3.0, seed=4),
        ob.mlp((5, 10, 3), "sigmoid", "softmax", sigma=1.0, seed=5),
        ob.logistic_regression(n_features=10, n_samples=32, seed=6),
        ob.softmax_regression(n_features=5, n_classes=3, n_samples=16, seed=7),
        ob.smooth_sum("exp", n=8, seed=8),
        ob.smooth_sum("sin", n=8, seed=9),
        ob.smooth_sum("poly", n=8, seed=10),
        ob.quadratic(n=8, cond=100.0, seed=11),
    ]
    return [full[k] for k in (0, 1, 2, 7, 10, 12)] if quick else full


def gradient_set(quick: bool = False) -> list[Objective]:
    """At least 20 smooth objectives for ``gl.gradient`` against numdifftools: networks with
    smooth activations and losses, regressions, closed-form sums and quadratics at several
    parameter scales and sizes."""
    ob = gl.objectives
    full = [
        ob.seed_net(),
        ob.seed_net(stable=True),
        ob.mlp((4, 8, 1), "tanh", "bce", sigma=1.0, seed=1),
        ob.mlp((4, 8, 1), "tanh", "bce", sigma=0.3, seed=20),
        ob.mlp((3, 6, 6, 1), "tanh", "bce", sigma=1.0, seed=16),
        ob.mlp((6, 12, 1), "tanh", "mse", sigma=0.1, seed=3),
        ob.mlp((6, 12, 1), "tanh", "mse", sigma=3.0, seed=4),
        ob.mlp((8, 4, 2), "sigmoid", "mse", sigma=1.0, seed=17),
        ob.mlp((5, 10, 3), "sigmoid", "softmax", sigma=1.0, seed=5),
        ob.logistic_regression(n_features=10, n_samples=32, seed=6),
        ob.logistic_regression(n_features=20, n_samples=64, seed=18),
        ob.softmax_regression(n_features=5, n_classes=3, n_samples=16, seed=7),
        ob.softmax_regression(n_features=8, n_classes=4, n_samples=32, seed=19),
        ob.smooth_sum("exp", n=8, seed=8),
        ob.smooth_sum("exp", n=8, scale=0.1, seed=21),
        ob.smooth_sum("exp", n=16, scale=10.0, seed=12),
        ob.smooth_sum("sin", n=8, seed=9),
        ob.smooth_sum("sin", n=16, scale=0.01, seed=13),
        ob.smooth_sum("poly", n=8, seed=10),
        ob.smooth_sum("poly", n=8, scale=3.0, seed=14),
        ob.quadratic(n=8, cond=100.0, seed=11),
        ob.quadratic(n=20, cond=1e4, scale=10.0, seed=15),
    ]
    return [full[k] for k in (0, 1, 9, 13, 16, 20)] if quick else full


def _bar_row(obj: Objective, fmt: str, tool: str, grad: np.ndarray, approx: np.ndarray,
             bar: np.ndarray, nfev: int, flagged: np.ndarray) -> dict[str, Any]:
    """One tool's gradient and error estimate against the exact gradient."""
    err = np.abs(approx - grad)
    use = ~flagged & np.isfinite(err)
    pos = use & (err > 0)
    norm = float(np.linalg.norm(grad))
    return {
        "objective": obj.name, "n_params": obj.n_params, "format": fmt, "tool": tool,
        "nfev": nfev, "max_abs_error": float(np.max(err[use])) if use.any() else math.nan,
        "max_rel_error": float(np.max(err[use]) / norm) if use.any() and norm > 0 else math.nan,
        "n_components": int(use.sum()), "n_flagged": int((~use).sum()),
        "n_covered": int(np.sum(err[use] <= bar[use])),
        "n_exact": int(np.sum(use & (err == 0))),
        "median_sharpness": float(np.median(bar[pos] / err[pos])) if pos.any() else math.nan,
        "error": "" if use.any() else "no finite estimate",
    }


def _gradient_rows(obj: Objective, fmt: str, grad: np.ndarray) -> list[dict[str, Any]]:
    """gl.gradient and numdifftools' Gradient (if installed), each with its error estimate."""
    rows = []
    try:
        res = gl.gradient(obj, format=fmt)
        rows.append(_bar_row(obj, fmt, "gl.gradient", grad, res.grad, res.error, res.nfev,
                             res.status == "nonfinite"))
    except ValueError as exc:  # J not finite at theta in the format: recorded, not dropped
        rows.append({"objective": obj.name, "n_params": obj.n_params, "format": fmt,
                     "tool": "gl.gradient", "error": str(exc)})
    if "numdifftools_gradient" in PEERS:
        nd = PEERS["numdifftools_gradient"](obj, format=fmt)
        est = np.asarray(nd.info["error_estimate"], dtype=np.float64)
        rows.append(_bar_row(obj, fmt, "numdifftools", grad, nd.approx, est, nd.nfev,
                             ~np.isfinite(nd.approx)))
    return rows


def _gradient_numbers(gt: pd.DataFrame) -> dict[str, str]:
    """The gradient section's numbers: wins in float64, coverage and sharpness per format."""
    out: dict[str, str] = {"n_grad_objectives": str(gt.objective.nunique())}
    ok = gt[gt.error.fillna("") == ""]
    f64 = ok[ok.format == "float64"].pivot(index="objective", columns="tool",
                                           values=["max_abs_error", "nfev"])
    if "numdifftools" in f64["nfev"].columns:
        wins = ((f64["max_abs_error"]["gl.gradient"] <= f64["max_abs_error"]["numdifftools"])
                & (f64["nfev"]["gl.gradient"] < f64["nfev"]["numdifftools"]))
        out["grad_wins"] = str(int(wins.sum()))
        out["grad_pairs"] = str(len(wins))
        out["grad_wins_pct"] = sci(100 * float(wins.mean()), 3)
        out["grad_losses"] = ", ".join(
            f"{o} (max error {sci(f64['max_abs_error']['gl.gradient'][o])} against "
            f"{sci(f64['max_abs_error']['numdifftools'][o])})" for o in wins.index[~wins]) or "none"
        ratio = f64["nfev"]["gl.gradient"] / f64["nfev"]["numdifftools"]
        out["grad_nfev_ratio"] = sci(float(np.median(ratio)))
    lines = ["| format | tool | objectives | components covered | median bar / error "
             r"| median max error / \|\|g\|\| | median nfev | flagged components |",
             "|---|---|---|---|---|---|---|---|"]
    for (fmt, tool), g in ok.groupby(["format", "tool"], sort=False):
        cov = g.n_covered.sum() / g.n_components.sum()
        key = re.sub(r"[^A-Za-z0-9]", "_", f"{tool}_{fmt}")
        out[f"cov_{key}"] = sci(100 * float(cov), 3)
        out[f"sharp_{key}"] = sci(float(np.nanmedian(g.median_sharpness)))
        lines.append(f"| {fmt} | {tool} | {len(g)} | {sci(100 * float(cov), 3)}% "
                     f"({int(g.n_covered.sum())} of {int(g.n_components.sum())}) "
                     f"| {sci(float(np.nanmedian(g.median_sharpness)))} "
                     f"| {sci(float(np.nanmedian(g.max_rel_error)))} | {sci(float(g.nfev.median()))} "
                     f"| {int(g.n_flagged.sum())} |")
    out["grad_table"] = "\n".join(lines)
    failed = gt[gt.error.fillna("") != ""]
    out["grad_failed"] = ", ".join(f"{r.objective} in {r.format} ({r.tool}: {r.error})"
                                   for r in failed.itertuples()) or "none"
    return out


def _row(obj: Objective, fmt: str, scheme: str, rule: str, kind: str, res: StepResult | None,
         approx: np.ndarray | None, grad: np.ndarray, orc: Any, error: str = "") -> dict[str, Any]:
    e = relative_error(approx, grad) if approx is not None else math.inf
    h = np.asarray(res.h, dtype=np.float64) if res is not None else np.array([np.nan])
    ok = np.isfinite(h) & (h > 0)
    log2 = np.log2(h[ok] / orc.h[ok]) if ok.any() and h.size == orc.h.size else np.array([np.nan])
    return {
        "objective": obj.name, "n_params": obj.n_params, "format": fmt, "scheme": scheme,
        "rule": rule, "kind": kind, "e_achieved": e, "e_oracle": orc.e_global,
        "ratio": e / orc.e_global if 0 < orc.e_global < math.inf else math.inf,
        "h_median": float(np.median(h[ok])) if ok.any() else math.nan,
        "h_oracle": orc.h_global,
        "log2_h_vs_oracle": float(np.median(np.abs(log2))) if log2.size else math.nan,
        "log2_h_vs_oracle_global": (abs(math.log2(float(np.median(h[ok])) / orc.h_global))
                                    if ok.any() else math.nan),
        "nfev": res.nfev if res is not None else 0,
        "n_bad_status": int(np.count_nonzero(res.status)) if res is not None else obj.n_params,
        "error": error or ("" if math.isfinite(orc.e_global)
                           else "no finite FD gradient at any grid step: J is not finite here"),
    }


def _score(obj: Objective, fmt: str, grad: np.ndarray, orcs: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for scheme in SCHEMES:
        orc = orcs[scheme]
        pred = gl.optimal_step(obj, format=fmt, scheme=scheme)
        glob = StepResult("optimal_step_global", fmt, scheme, np.full(obj.n_params, pred.h_global),
                          pred.nfev, pred.status)
        rows.append(_row(obj, fmt, scheme, "optimal_step_global", "gradlab", glob,
                         fd_gradient(obj, fmt, scheme, pred.h_global), grad, orc))
        rows.append(_row(obj, fmt, scheme, "optimal_step", "gradlab", pred.as_step_result(),
                         fd_gradient(obj, fmt, scheme, pred.h), grad, orc))
        for name, rule in RULES.items():
            try:
                res = rule(obj, format=fmt, scheme=scheme)
            except ValueError as exc:  # a rule that does not serve this scheme says so
                rows.append(_row(obj, fmt, scheme, name, "rule", None, None, grad, orc, str(exc)))
                continue
            bad = ~(np.isfinite(res.h) & (res.h > 0))
            if res.approx is None and bad.any():  # recorded as the rule's failure
                rows.append(_row(obj, fmt, scheme, name, "rule", res, None, grad, orc,
                                 f"no usable step for {int(bad.sum())} coordinates"))
                continue
            approx = res.approx if res.approx is not None else fd_gradient(obj, fmt, scheme, res.h)
            rows.append(_row(obj, fmt, scheme, name, "rule", res, approx, grad, orc))
    for name, peer in PEERS.items():
        scheme = PEER_SCHEME.get(name, "central")
        try:
            res = peer(obj, format=fmt)
            rows.append(_row(obj, fmt, scheme, name, "peer", res, res.approx, grad, orcs[scheme]))
        except Exception as exc:
            rows.append(_row(obj, fmt, scheme, name, "peer", None, None, grad, orcs[scheme],
                             f"{type(exc).__name__}: {exc}"))
    return rows


def _numbers(table: pd.DataFrame, gradients: pd.DataFrame) -> pd.DataFrame:
    out: dict[str, str] = _gradient_numbers(gradients)
    core = table[table.format.isin(["float64", "float32"])]
    pred = core[core.rule == "optimal_step_global"]
    out["n_objectives"] = str(table.objective.nunique())
    out["n_cases_core"] = str(len(pred))
    out["pred_median_log2"] = sci(float(np.median(pred.log2_h_vs_oracle_global)))
    within = pred.ratio <= 2
    out["pred_within2_pct"] = sci(100 * float(within.mean()), 3)
    out["pred_misses"] = ", ".join(
        f"{r.objective} {r.format} {r.scheme} (E ratio {sci(r.ratio)})" for r in pred[~within].itertuples()
    ) or "none"
    per = core[core.rule == "optimal_step"]
    out["per_within2_pct"] = sci(100 * float((per.ratio <= 2).mean()), 3)
    summary = (table[np.isfinite(table.ratio) | (table.error == "")]
               .groupby(["rule", "format"])
               .agg(median_ratio=("ratio", "median"), within2=("ratio", lambda r: (r <= 2).mean()),
                    failed=("ratio", lambda r: int((~np.isfinite(r)).sum())),
                    nfev=("nfev", "median"))
               .reset_index())
    lines = ["| rule | format | median E / E_oracle | within 2x | failed | median nfev |",
             "|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        lines.append(f"| {r.rule} | {r.format} | {sci(r.median_ratio)} | {sci(100 * r.within2, 3)}% "
                     f"| {r.failed} | {sci(r.nfev)} |")
    out["rules_table"] = "\n".join(lines)
    for r in summary.itertuples():  # per rule and format, for the prose
        key = re.sub(r"[^A-Za-z0-9]", "_", f"{r.rule}_{r.format}")
        out[f"med_{key}"] = sci(r.median_ratio)
        out[f"within_{key}"] = sci(100 * r.within2, 3)
        out[f"nfev_{key}"] = sci(r.nfev)
    run = set(table.format)
    for rule in table.rule.unique():  # formats a run left out (the quick one) say so in the prose
        for fmt in FORMATS:
            if fmt not in run:
                key = re.sub(r"[^A-Za-z0-9]", "_", f"{rule}_{fmt}")
                for prefix in ("med", "within", "nfev"):
                    out[f"{prefix}_{key}"] = f"(n/a: {fmt} is not in this run's formats)"
    return pd.DataFrame({"name": list(out), "text": list(out.values())})


def run(out: Path, quick: bool = False, progress: bool = True,
        formats: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark into ``out``; returns timings and paths."""
    t0 = time.perf_counter()
    fmts = (["float64", "float32"] if quick else FORMATS) if formats is None else formats
    objectives = benchmark_set(quick)
    meta = provenance({"study": "steps", "quick": quick, "formats": fmts, "schemes": SCHEMES,
                       "objectives": [o.name for o in objectives], "rules": list(RULES),
                       "gradient_objectives": [o.name for o in gradient_set(quick)],
                       "peers": list(PEERS)})
    rows: list[dict[str, Any]] = []
    for obj in tqdm(objectives, desc="steps study", disable=not progress):
        for fmt in fmts:
            grad = np.array([float(v) for v in gl.exact(obj, fmt, digits=30, orders=()).grad])
            orcs = {s: oracle(obj, grad, fmt, s) for s in SCHEMES}
            rows += _score(obj, fmt, grad, orcs)
    table = pd.DataFrame(rows)
    grad_rows: list[dict[str, Any]] = []
    for obj in tqdm(gradient_set(quick), desc="gradient estimates", disable=not progress):
        for fmt in GRADIENT_FORMATS:
            grad = np.array([float(v) for v in gl.exact(obj, fmt, digits=30, orders=()).grad])
            grad_rows += _gradient_rows(obj, fmt, grad)
    gradients = pd.DataFrame(grad_rows)
    numbers = _numbers(table, gradients)
    paths = [write_table(table, out / "tables" / "rules", meta),
             write_table(gradients, out / "tables" / "gradient", meta),
             write_table(numbers, out / "tables" / "numbers", meta)]
    finite = table[np.isfinite(table.ratio) & (table.ratio > 0)]
    fig = plots.facet(finite, plots.ratio_strip, col="scheme", ncols=2, size=(6.0, 7.5),
                      sharey=True, title="achieved error / oracle error, per rule (log scale)")
    figures = plots.save(fig, out / "figures" / "rule_ratios")
    return {"seconds": time.perf_counter() - t0, "tables": paths, "figures": figures}
