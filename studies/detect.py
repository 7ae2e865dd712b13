"""Bug-injection benchmark: correct gradients and realistic backprop bugs, judged by
gl.check and by the peers' checkers at their defaults, in every format.

Declares the grid and writes tables, a figure and the numbers its paper quotes.
"""

from __future__ import annotations

import time
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


def run(out: Path, quick: bool = False, progress: bool = True,
        formats: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark into ``out``; returns timings and paths."""
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
    numbers = _numbers(rates, table)
    paths = [write_table(table, out / "tables" / "verdicts", meta),
             write_table(rates, out / "tables" / "rates", meta),
             write_table(numbers, out / "tables" / "numbers", meta)]
    long = rates.melt(id_vars=["checker", "format"], value_vars=["false_alarm", "miss_above_floor"],
                      var_name="rate", value_name="value")
    fig = plots.facet(long, plots.rate_bars, col="rate", ncols=2, size=(5.0, 3.4), sharey=False,
                      title="false alarms on correct gradients, misses of bugs above the FD floor")
    figures = plots.save(fig, out / "figures" / "detection")
    return {"seconds": time.perf_counter() - t0, "tables": paths, "figures": figures}


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
            "false_alarm": float((~correct.passed).mean()) if len(correct) else 0.0,
            "miss_above_floor": float(above.passed.mean()) if len(above) else 0.0,
            "median_nfev": nfev,
        })
    return pd.DataFrame(out)


def _numbers(rates: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
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
    return pd.DataFrame({"name": list(out), "text": list(out.values())})
