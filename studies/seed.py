"""The exercise's network: why E is about epsilon, where its minimum lies, which
normalisation to use, and what all of it becomes in float32, float16 and bfloat16.

Declares the grid and writes tables, figures and the numbers the paper quotes;
every computation is gradlab's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import gradlab as gl
from gradlab.analysis.minima import minima
from gradlab.reporting import plots
from gradlab.reporting.paper import sci
from gradlab.reporting.tables import provenance, read_table, write_table

DESCRIPTION = "the exercise's 47-parameter network: E(h), its parts and minima, noise, normalisations"
FORMATS = ["bfloat16", "float16", "float32", "float64", "longdouble"]
SCHEMES = ["forward", "central", "central4", "complex"]
EPSILON, THRESHOLD = 1e-7, 2e-7  # the exercise's step and pass threshold
METRICS = ["rel_sum", "rel_2g", "rel_g", "rms", "max_abs"]


def steps(quick: bool) -> np.ndarray:
    """Log-spaced steps from 1e-12 to 1 (121, or 17 for --quick), plus the exercise's."""
    return np.unique(np.r_[np.logspace(-12, 0, 17 if quick else 121), EPSILON])


def _schemes_for(fmt: str) -> list[str]:
    has_complex = gl.formats.get(fmt).complex_dtype is not None
    return [s for s in SCHEMES if s != "complex" or has_complex]


def _numbers(
    coords: pd.DataFrame, summary: pd.DataFrame, mins: pd.DataFrame, noise: pd.DataFrame,
    attribution: pd.DataFrame, exercise: pd.DataFrame, checks: pd.DataFrame, hs: np.ndarray,
) -> pd.DataFrame:
    """Every number the paper quotes, by name, from the tables."""

    out: dict[str, str] = {
        "epsilon": sci(EPSILON), "threshold": sci(THRESHOLD), "n_params": "47",
        "n_steps": str(hs.size), "h_lo": sci(hs.min()), "h_hi": sci(hs.max()),
        "n_rows": str(len(coords)), "n_proven": str(int(coords.proven.sum())),
        "ref_tol_max_rel": sci(float((coords.ref_tol / coords.exact.abs().where(coords.exact != 0)).max())),
    }
    tag = {"seed_net": "naive", "seed_net_stable": "stable"}
    at_eps = summary[(summary.h == EPSILON) & (summary.scheme == "central")]
    for _, r in at_eps.iterrows():
        k = f"{r.format}_{tag[r.objective]}"
        scale = 2 * r.grad_norm
        out[f"E_eps_{k}"] = sci(r.rel_sum)
        out[f"trunc_eps_{k}"] = sci(r.trunc_norm / scale)
        out[f"round_eps_{k}"] = sci(r.round_norm / scale)
        out[f"step_eps_{k}"] = sci(r.step_norm / scale)
        out[f"flagged_eps_{k}"] = str(int(r.n_flagged))
        for m in METRICS:
            out[f"{m}_eps_{k}"] = sci(r[m])
    for _, r in noise.iterrows():
        k = f"{r.format}_{tag[r.objective]}"
        out[f"noise_u_{k}"] = sci(r.sigma_direct_u)
        out[f"noise_ec_u_{k}"] = sci(r.sigma_ecnoise_u)
        out[f"noise_abs_{k}"] = sci(r.sigma_direct)
    for fmt in sorted(set(noise.format)):
        out[f"u_{fmt}"] = sci(gl.formats.get(fmt).u)
        pair = noise[noise.format == fmt].set_index("objective").sigma_direct_u
        out[f"noise_ratio_{fmt}"] = sci(pair["seed_net"] / pair["seed_net_stable"])
    for _, r in mins.iterrows():
        k = f"{r.format}_{r.scheme}_{tag[r.objective]}"
        for col in ("h_measured", "e_measured", "h_predicted", "e_predicted", "h_ratio", "e_ratio"):
            out[f"{col}_{k}"] = sci(r[col])
        out[f"flags_at_min_{k}"] = r.flags_at_min or "none"
        # the kinks the stencil crosses at the grid step nearest the predicted h*
        curve = summary[(summary.objective == r.objective) & (summary.format == r.format)
                        & (summary.scheme == r.scheme)]
        if np.isfinite(r.h_predicted) and r.h_predicted > 0 and len(curve):
            near = curve.iloc[int(np.argmin(np.abs(np.log(curve.h / r.h_predicted))))]
            rows = coords[(coords.objective == r.objective) & (coords.format == r.format)
                          & (coords.scheme == r.scheme) & (coords.h == near.h)]
            out[f"kinks_near_{k}"] = str(int(rows.flag.str.contains("kink").sum()))
    out["check_n"] = str(len(checks))
    for verdict in ("passes", "fails", "undecided"):
        out[f"check_n_{verdict}"] = str(int((checks.verdict == verdict).sum()))
    for _, r in checks.iterrows():
        k = f"{r.format}_{tag[r.objective]}"
        out[f"check_verdict_{k}"] = r.verdict
        out[f"check_rows_{k}"] = r.rows
        out[f"check_fd_{k}"] = r.fd_format
        out[f"check_h_{k}"] = sci(r.h_median)
        out[f"check_nfev_{k}"] = str(int(r.nfev))
    for (obj, fmt), grp in attribution.groupby(["objective", "format"]):
        top = grp.sort_values("share").iloc[-1]
        same_line = grp[grp.code == top.code]
        k = f"{fmt}_{tag[obj]}"
        out[f"attr_top_share_{k}"] = sci(100 * same_line.share.sum(), 3)
        out[f"attr_top_code_{k}"] = top.code
        out[f"attr_n_ops_{k}"] = str(len(grp))
    for _, r in exercise.iterrows():
        k = f"{r.format}_{tag[r.objective]}"
        out[f"ex_diff_{k}"] = sci(r.difference)
        out[f"ex_verdict_{k}"] = "passes" if r.passed else "fails"
        out[f"ex_backprop_{k}"] = sci(r.e_backprop_vs_exact)
    return pd.DataFrame({"name": list(out), "text": list(out.values())})


def _figures(out: Path, summary: pd.DataFrame, attribution: pd.DataFrame) -> list[Path]:
    figs = []
    order = [f for f in FORMATS if f in set(summary.format)]
    for obj in summary.objective.unique():
        sm = summary[summary.objective == obj]
        fig = plots.facet(sm, plots.curves, col="format", col_order=order, y="rel_sum",
                          hue="scheme", title=f"{obj}: E = ||g_fd - g|| / (||g_fd|| + ||g||)")
        figs += plots.save(fig, out / f"v_curves_{obj}")
        fig = plots.facet(sm[sm.scheme == "central"], plots.components, col="format",
                          col_order=order, title=f"{obj}, central differences: the three parts")
        figs += plots.save(fig, out / f"components_{obj}")
    central = summary[(summary.scheme == "central") & (summary.objective == "seed_net")]
    long = central.melt(id_vars=["format", "h"], value_vars=METRICS, var_name="metric",
                        value_name="value")
    fig = plots.facet(long, plots.curves, col="format", col_order=order, y="value", hue="metric",
                      title="seed_net, central: five normalisations of the same error")
    figs += plots.save(fig, out / "metrics")
    both = summary[summary.scheme == "central"]
    fig = plots.facet(both, plots.curves, col="format", col_order=order, y="rel_sum",
                      hue="objective", title="naive loss against its stable twin (central)")
    figs += plots.save(fig, out / "naive_vs_stable")
    att = attribution.copy()
    att["label"] = (att["op"] + "  " + att["code"].str.slice(0, 34) + "  [op "
                    + att["site"].astype(str) + "]")
    att = att[np.isfinite(att.sigma_u) & (att.sigma_u > 0)]
    fig = plots.facet(att, plots.attribution_bars, col="objective", ncols=2, size=(5.2, 3.2),
                      sharey=False, hue="format", top=6,
                      title="where J's rounding noise comes from (one operation rounded at a time)")
    figs += plots.save(fig, out / "noise_attribution")
    return figs


def _check_row(obj: gl.Objective, fmt: str) -> pd.DataFrame:
    """gl.check's verdict on the correct network in one format: its step and tolerance come
    from the error model, and narrow formats run their differences in float32."""
    r = gl.check(obj, format=fmt)
    counts = r.report.status.value_counts()
    return pd.DataFrame([{
        "objective": obj.name, "format": fmt,
        "verdict": "passes" if r.passed else ("fails" if r.decided else "undecided"),
        "rows": ", ".join(f"{int(n)} {status}" for status, n in sorted(counts.items())),
        "fd_format": r.reference_format or fmt,
        "h_median": float(np.median(r.h)), "nfev": int(r.nfev),
    }])


def _n_law(out: Path) -> str:
    """The scaling study's N-laws of E* and ||g||, in words, when its results lie beside this
    study's (``out/../scaling``), or how to produce them."""
    where = out.parent / "scaling" / "tables"
    how = (f"The scaling study measures it: run `gradlab study scaling --out {out.parent / 'scaling'}`, "
           "then this study again, and this sentence gives the law.")
    if not (where / "scaling_fits.parquet").exists() or not (where / "scaling_cells.parquet").exists():
        return how
    fits, cells = read_table(where / "scaling_fits.parquet"), read_table(where / "scaling_cells.parquet")

    def law(target: str) -> pd.Series | None:
        sel = fits[(fits.label == "mlp tanh bce") & (fits.fit == "single") & (fits.format == "float64")
                   & (fits.scheme == "central") & (fits.variable == "N") & (fits.target == target)
                   & np.isclose(fits.at_sigma.astype(float), 1.0)]
        ok = sel[np.isfinite(sel.exponent.astype(float))]
        return None if ok.empty else ok.iloc[0]

    e, g = law("e_opt"), law("grad_norm")
    if e is None or g is None:
        return f"The scaling study's results in {where} hold no N-law of E* and ||g|| to quote. " + how
    n = cells[(cells.sweep == "N_sigma") & (cells.format == "float64") & np.isclose(cells.sigma, 1.0)].N
    rms = float(e.exponent) + float(g.exponent) - 0.5
    return (f"The scaling study measured it on tanh networks (float64, central differences, sigma = 1, "
            f"N from {int(n.min())} to {int(n.max())}). At the optimal step, E* = ||e||/||g|| grows as "
            f"N^{sci(float(e.exponent))} (95% interval {sci(float(e.ci_low))} to {sci(float(e.ci_high))}) "
            f"and ||g|| as N^{sci(float(g.exponent))}, so the rms error there moves as N^{sci(rms)}: a "
            "threshold on it that suits one N does not suit another.")


def run(
    out: Path, quick: bool = False, progress: bool = True, formats: list[str] | None = None
) -> dict[str, Any]:
    """Run the study into ``out`` (tables/ and figures/); returns timings and paths.

    ``formats`` narrows the declared grid (for tests); the paper needs all of them.
    """
    t0 = time.perf_counter()
    hs = steps(quick)
    fmts = FORMATS if formats is None else formats
    objectives = [gl.objectives.seed_net(), gl.objectives.seed_net(stable=True)]
    config = {"study": "seed", "quick": quick, "formats": fmts, "schemes": SCHEMES,
              "steps": hs.tolist(), "epsilon": EPSILON, "threshold": THRESHOLD, "seed": 0}
    meta = provenance(config)
    coords, noise, attribution, exercise, checks = [], [], [], [], []
    jobs = [(o, f) for o in objectives for f in fmts]
    for obj, fmt in tqdm(jobs, desc="seed study", disable=not progress):
        coords.append(gl.fd_errors(obj, formats=[fmt], schemes=_schemes_for(fmt), steps=hs,
                                   progress=progress))
        noise.append(gl.noise_level(obj, fmt).to_frame())
        attribution.append(gl.attribute_noise(obj, fmt).to_frame())
        exercise.append(pd.DataFrame([gl.exercise_check(obj, fmt, EPSILON, THRESHOLD).as_row()]))
        checks.append(_check_row(obj, fmt))
    tables = {
        "coords": pd.concat(coords, ignore_index=True),
        "noise": pd.concat(noise, ignore_index=True),
        "attribution": pd.concat(attribution, ignore_index=True),
        "exercise": pd.concat(exercise, ignore_index=True),
        "check": pd.concat(checks, ignore_index=True),
    }
    tables["summary"] = gl.summarize(tables["coords"])
    tables["minima"] = minima(tables["coords"], tables["summary"])
    tables["numbers"] = _numbers(tables["coords"], tables["summary"], tables["minima"], tables["noise"],
                                 tables["attribution"], tables["exercise"], tables["check"], hs)
    tables["numbers"] = pd.concat([tables["numbers"], pd.DataFrame([{"name": "n_law", "text": _n_law(out)}])],
                                  ignore_index=True)
    paths = [write_table(df, out / "tables" / name, meta) for name, df in tables.items()]
    figures = _figures(out / "figures", tables["summary"], tables["attribution"])
    return {"seconds": time.perf_counter() - t0, "tables": paths, "figures": figures}
