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


def _numbers(table: pd.DataFrame) -> pd.DataFrame:
    out: dict[str, str] = {}
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
    return pd.DataFrame({"name": list(out), "text": list(out.values())})


def run(out: Path, quick: bool = False, progress: bool = True,
        formats: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark into ``out``; returns timings and paths."""
    t0 = time.perf_counter()
    fmts = (["float64", "float32"] if quick else FORMATS) if formats is None else formats
    objectives = benchmark_set(quick)
    meta = provenance({"study": "steps", "quick": quick, "formats": fmts, "schemes": SCHEMES,
                       "objectives": [o.name for o in objectives], "rules": list(RULES),
                       "peers": list(PEERS)})
    rows: list[dict[str, Any]] = []
    for obj in tqdm(objectives, desc="steps study", disable=not progress):
        for fmt in fmts:
            grad = np.array([float(v) for v in gl.exact(obj, fmt, digits=30, orders=()).grad])
            orcs = {s: oracle(obj, grad, fmt, s) for s in SCHEMES}
            rows += _score(obj, fmt, grad, orcs)
    table = pd.DataFrame(rows)
    numbers = _numbers(table)
    paths = [write_table(table, out / "tables" / "rules", meta),
             write_table(numbers, out / "tables" / "numbers", meta)]
    finite = table[np.isfinite(table.ratio) & (table.ratio > 0)]
    fig = plots.facet(finite, plots.ratio_strip, col="scheme", ncols=2, size=(6.0, 7.5),
                      sharey=True, title="achieved error / oracle error, per rule (log scale)")
    figures = plots.save(fig, out / "figures" / "rule_ratios")
    return {"seconds": time.perf_counter() - t0, "tables": paths, "figures": figures}
