"""Scaling laws of the optimal step h* and the best error E* in the unit roundoff u,
the number of parameters N and the init scale sigma, with their causes (the noise
of J, the truncating derivative, ||g||) and predictions for configurations held out.

Declares the grid of cells (run by :func:`gradlab.sweeps.runner.run_sweep`, resumable and
parallel) and the fits, tables and figures; the numerics are in gradlab.sweeps.scaling and
gradlab.sweeps.fits.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from gradlab.analysis.attribution import attribute_noise
from gradlab.arithmetic.schemes import get as get_scheme
from gradlab.reporting import plots
from gradlab.reporting.paper import sci
from gradlab.reporting.tables import provenance, write_table
from gradlab.sweeps.fits import factor, fit_power_law, fit_table, holdout, median_factor
from gradlab.sweeps.runner import run_sweep
from gradlab.sweeps.scaling import (
    CAUSES,
    annotate,
    build_objective,
    implied_exponent,
    implied_from_fits,
    measure_cell,
    measure_noise,
    noise_cells,
    with_noise,
)

DESCRIPTION = "scaling laws of h* and E* in u, N and sigma, their causes, held-out predictions"
P_FULL = [8, 11, 14, 17, 20, 24, 28, 32, 40, 48, 56, 64]
P_QUICK = [8, 11, 14, 20, 28, 40, 64]
HARDWARE = ["bfloat16", "float16", "float32", "float64", "longdouble"]
SCHEMES = ["central", "forward"]
# widths (N = 41, 161, 1089, 6337, 24961, 101121, 1050625): width and depth both grow
NETS = [[8, 4, 1], [8, 16, 1], [16, 32, 16, 1], [32, 64, 64, 1], [64, 128, 128, 1],
        [136, 256, 256, 1], [512, 1024, 512, 1]]
HUGE = 10**6  # nets from this size run at sigma = 1 only, on 4 sampled coordinates
SIGMAS = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]
BASE_NET = {"family": "mlp", "widths": [8, 16, 1], "activation": "tanh", "loss": "bce", "batch": 8,
            "sigma": 1.0, "seed": 0}
U_OBJECTIVES = {
    "mlp tanh bce": BASE_NET,
    "logistic": {"family": "logistic_regression", "n_features": 10, "n_samples": 32, "seed": 0},
    "quadratic": {"family": "quadratic", "n": 10, "cond": 10.0, "seed": 0},
}
MAX_STEP = {"quadratic": 16.0}  # no truncation: central's optimum lies where |J| grows
CELL_VERSION = "2"  # of what gradlab.sweeps.scaling.measure_cell computes: bump it when that changes


def grid(quick: bool = False) -> list[dict[str, Any]]:
    """The cells: a u sweep, an (N, sigma) grid in float32/float64, activation/loss variants."""
    cells: list[dict[str, Any]] = []

    def add(sweep: str, label: str, spec: dict[str, Any], fmt: str, n_coords: int = 16) -> None:
        for scheme in SCHEMES:
            cell = {"sweep": sweep, "label": label, "objective": spec, "format": fmt, "scheme": scheme,
                    "n_coords": n_coords}
            if label in MAX_STEP:
                cell["max_step"] = MAX_STEP[label]
            cells.append(cell)

    p_values = P_QUICK if quick else P_FULL
    u_formats = [f"binary{p}" for p in p_values] + (HARDWARE[:4] if quick else HARDWARE)
    for label, spec in (list(U_OBJECTIVES.items())[:1] if quick else U_OBJECTIVES.items()):
        for fmt in u_formats:
            if not (spec is BASE_NET and fmt in ("float32", "float64")):  # those are in N_sigma
                add("u", label, spec, fmt)
    nets = NETS[:4] if quick else NETS
    sigmas = [0.01, 0.1, 1.0, 10.0] if quick else SIGMAS
    for widths in nets:
        n = build_objective({**BASE_NET, "widths": widths}).n_params
        for sigma in ([1.0] if n >= HUGE else sigmas):
            for fmt in ("float32", "float64"):
                add("N_sigma", "mlp tanh bce", {**BASE_NET, "widths": widths, "sigma": sigma}, fmt,
                    n_coords=4 if n >= HUGE else (8 if widths[1] >= 64 else 16))
    if not quick:
        for activation, loss in (("relu", "bce"), ("tanh", "mse")):
            for widths in NETS[1:4]:
                for fmt in ("float32", "float64"):
                    add("variant", f"mlp {activation} {loss}",
                        {**BASE_NET, "widths": widths, "activation": activation, "loss": loss}, fmt)
    return cells


def _u_cells(use: pd.DataFrame) -> pd.DataFrame:
    """The u sweep, with the base network's float32/float64 cells (measured once, in N_sigma)."""
    base = ((use.sweep == "N_sigma") & (use.widths == "-".join(map(str, BASE_NET["widths"])))
            & np.isclose(use.sigma, BASE_NET["sigma"]))
    return use[(use.sweep == "u") | base]


def _u_theory(label: str, target: str, scheme: str) -> float:
    """Exponent in u of h* or E*: 1/(q+1) and q/(q+1); for a quadratic's central
    difference (no truncation) E* ~ u at a step that does not depend on u."""
    if (label, scheme) == ("quadratic", "central"):
        return 0.0 if target == "h_opt" else 1.0
    return implied_exponent(target, "u", get_scheme(scheme).order, noise=1.0, deriv=0.0, grad=0.0)


def _usable(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells with a bracketed, finite optimum (the others stay in scaling_cells with a note)."""
    return cells[cells["usable"]].copy()


def _fits(cells: pd.DataFrame, n_boot: int) -> pd.DataFrame:
    """scaling_fits: u laws per objective and scheme (theory 1/(q+1), q/(q+1)); N and
    sigma laws per format and scheme with the exponents their causes imply; and the
    joint law in (u, N, sigma)."""
    use = _usable(cells)
    rows = []
    emulated = use[(use.sweep == "u") & use.format.str.startswith("binary")]
    f_u = fit_table(emulated, ["h_opt", "e_opt"], ["u"], by=["label", "scheme"], joint=True,
                    single=False, n_boot=n_boot)
    f_u["format"] = "binary{p}"
    f_u["theory"] = [_u_theory(lab, t, sch)
                     for lab, t, sch in zip(f_u.label, f_u.target, f_u.scheme, strict=True)]
    f_u["theory_basis"] = [
        "no truncation: E* is rounding at a step set by theta's scale, so E* ~ u and h* free of u"
        if (lab, sch) == ("quadratic", "central") else "rounding model: noise of J proportional to u"
        for lab, sch in zip(f_u.label, f_u.scheme, strict=True)]
    rows.append(f_u)

    grid_cells = use[use.sweep == "N_sigma"]
    targets = ["h_opt", "e_opt", *CAUSES.values(), "noise_u"]
    f_ns = fit_table(grid_cells, targets, ["N", "sigma"], by=["format", "scheme"], n_boot=n_boot)
    f_ns["theory"] = implied_from_fits(f_ns)
    f_ns.loc[(f_ns.target == "noise_u") & (f_ns.variable == "N"), "theory"] = 0.5  # sqrt(n) u
    f_ns["label"] = "mlp tanh bce"
    f_ns["theory_basis"] = np.where(
        f_ns.target.isin(["h_opt", "e_opt"]), "implied by the fitted noise, derivative and ||g|| laws",
        np.where((f_ns.target == "noise_u") & (f_ns.variable == "N"),
                 "probabilistic rounding: sqrt(n) u", ""))
    rows.append(f_ns)

    joint_cells = use[use.label == "mlp tanh bce"]
    f_j = fit_table(joint_cells, ["h_opt", "e_opt"], ["u", "N", "sigma"], by=["scheme"], single=False,
                    n_boot=n_boot)
    f_j["label"] = "mlp tanh bce"
    f_j["format"] = "all"
    f_j["theory"] = [_u_theory("", t, sch) if v == "u" else math.nan
                     for t, sch, v in zip(f_j.target, f_j.scheme, f_j.variable, strict=True)]
    f_j["theory_basis"] = np.where(f_j.variable == "u", "rounding model: noise of J proportional to u", "")
    rows.append(f_j)

    # noise in units of u|J| against the length of the dot products (n multiply-adds)
    nets = use[use.sweep.isin(["N_sigma", "variant"]) & (use.sigma == 1.0)
               & (use.scheme == "central")].copy()  # the noise of J does not depend on the scheme
    if len(nets) > 3:
        law = fit_power_law(nets, "noise_u", ["n_madds"], n_boot=n_boot)
        fr = law.to_frame()
        fr["format"], fr["scheme"], fr["label"], fr["fit"] = "float32+float64", "both", "mlp sigma=1", "joint"
        fr["theory"], fr["theory_basis"] = 0.5, "probabilistic rounding sqrt(n) u (worst case n u: 1)"
        rows.append(fr)
    return pd.concat(rows, ignore_index=True)


def _holdout(cells: pd.DataFrame) -> pd.DataFrame:
    """Each (N, sigma) configuration of the tanh/bce network left out in turn: the joint
    law fitted on the rest predicts its h* and E* in every format."""
    use = _usable(cells)
    use = use[use.label == "mlp tanh bce"].copy()
    use["config"] = use["widths"].astype(str) + " sigma=" + use["sigma"].astype(str)
    parts = []
    for target in ("h_opt", "e_opt"):
        h = holdout(use, target, ["u", "N", "sigma"], groups="config", by=["scheme"])
        h["target"] = target
        parts.append(h)
    return pd.concat(parts, ignore_index=True)


ATTRIBUTION_NETS = [[8, 16, 1], [16, 32, 16, 1]]


def _attribution() -> pd.DataFrame:
    """Which operations make J noisy, for two network sizes in float32 (one rounded at a time)."""
    parts = []
    for widths in ATTRIBUTION_NETS:
        spec = {**BASE_NET, "widths": widths}
        obj = build_objective(spec)
        t = attribute_noise(obj, "float32").to_frame()
        t["N"] = obj.n_params
        last_mm = int(t.loc[t.op == "matmul", "site"].max())
        t["part"] = np.select([t.op == "matmul", t.site > last_mm + 1], ["matmul", "output and loss"],
                              default="other")
        parts.append(t)
    return pd.concat(parts, ignore_index=True)


def _attribution_numbers(attribution: pd.DataFrame) -> dict[str, str]:
    """The shares of J's noise from the matrix products and from the output and loss, per N."""
    out: dict[str, str] = {}
    shares = attribution.groupby(["N", "part"]).share.sum()
    for n_params in attribution.N.unique():
        out[f"matmul_share_{n_params}"] = sci(100 * float(shares.get((n_params, "matmul"), 0.0)))
        out[f"loss_share_{n_params}"] = sci(100 * float(shares.get((n_params, "output and loss"), 0.0)))
    out["attribution_ns"] = " and ".join(str(n) for n in attribution.N.unique())
    return out


def _grid_numbers(cells: pd.DataFrame, fits: pd.DataFrame, seconds: float, sweep_info: Any
                  ) -> dict[str, str]:
    """What the grid holds and how it ran: counts, unusable cells, ranges of p, N and sigma."""
    out: dict[str, str] = {}
    out["n_cells"] = str(len(cells))
    out["n_failed"] = str(int((cells.status != "ok").sum()))
    out["n_edge"] = str(int(cells.note.str.contains("edge").sum()))
    out["edge_which"] = _which(cells[cells.note.str.contains("edge")])
    out["n_nonfinite"] = str(int(cells.note.str.startswith("no finite").sum()))
    out["nonfinite_cells"] = ", ".join(
        f"{r.label} {r.widths} sigma={r.sigma:g} {r.format} {r.scheme}"
        for r in cells[cells.note.str.startswith("no finite")].itertuples()) or "none"
    out["n_formats_u"] = str(_u_cells(cells).format.nunique())
    out["n_p"] = str(cells[(cells.sweep == "u") & cells.format.str.startswith("binary")].format.nunique())
    grid_ok = cells[(cells.sweep == "N_sigma") & (cells.status == "ok")]
    out["n_max"] = str(int(grid_ok.N.max()))
    out["n_min"] = str(int(grid_ok.N.min()))
    ps = cells[cells.format.str.startswith("binary")].format.str[6:].astype(int)
    out["p_min"], out["p_max"] = str(int(ps.min())), str(int(ps.max()))
    out["n_u_net"] = str(build_objective(BASE_NET).n_params)
    nets = cells[cells.sweep == "N_sigma"]
    out["sigma_min"], out["sigma_max"] = sci(float(nets.sigma.min())), sci(float(nets.sigma.max()))
    out["level_pct"] = sci(100 * float(fits.level.dropna().iloc[0]))
    use = _usable(cells)
    out["n_sigma_slice"] = str(_sigma_slice(use[use.sweep == "N_sigma"]))
    out["minutes"] = sci(seconds / 60)
    out["n_computed"] = str(sweep_info.n_computed)
    return out


def _u_fits(fits: pd.DataFrame) -> pd.DataFrame:
    """The u laws of the base network, fitted over the emulated formats."""
    return fits[(fits.variable == "u") & (fits.format == "binary{p}") & (fits.label == "mlp tanh bce")]


def _u_numbers(fits: pd.DataFrame) -> dict[str, str]:
    """The u exponents of the base network with intervals, theory and bends, and the u table."""
    out: dict[str, str] = {}
    for r in _u_fits(fits).itertuples():
        k = f"u_{r.target}_{r.scheme}"
        out[k] = sci(r.exponent, 3)
        out[k + "_ci"] = f"[{sci(r.ci_low, 3)}, {sci(r.ci_high, 3)}]"
        out[k + "_theory"] = sci(r.theory, 3)
        out[k + "_bends"] = "bends" if r.bends else "no detectable bend"
    lines = ["| objective | scheme | target | exponent in u | 95% CI | theory | R^2 |",
             "|---|---|---|---|---|---|---|"]
    for r in fits[(fits.variable == "u") & (fits.format == "binary{p}")].itertuples():
        lines.append(f"| {r.label} | {r.scheme} | {r.target} | {sci(r.exponent, 3)} | "
                     f"[{sci(r.ci_low, 3)}, {sci(r.ci_high, 3)}] | {sci(r.theory, 3)} | {sci(r.r2, 3)} |")
    out["u_table"] = "\n".join(lines)
    return out


def _ns_numbers(fits: pd.DataFrame) -> dict[str, str]:
    """The joint (N, sigma) laws in float32 and float64: the table of h* and E* beside the
    exponents their causes imply, how many fall inside the intervals, and the causes' table."""
    out: dict[str, str] = {}
    joint = fits[(fits.fit == "joint") & (fits.format.isin(["float32", "float64"]))
                 & fits.target.isin(["h_opt", "e_opt", "noise", "m_rms", "grad_norm", "noise_u"])]
    lines = ["| format | scheme | target | variable | exponent | 95% CI | implied by the causes |",
             "|---|---|---|---|---|---|---|"]
    for r in joint[joint.target.isin(["h_opt", "e_opt"])].itertuples():
        lines.append(f"| {r.format} | {r.scheme} | {r.target} | {r.variable} | {sci(r.exponent, 3)} | "
                     f"[{sci(r.ci_low, 3)}, {sci(r.ci_high, 3)}] | {sci(r.theory, 3)} |")
    out["ns_table"] = "\n".join(lines)
    hd = joint[joint.target.isin(["h_opt", "e_opt"]) & np.isfinite(joint.theory)]
    out["n_implied"] = str(len(hd))
    out["n_implied_within"] = str(int(((hd.theory >= hd.ci_low) & (hd.theory <= hd.ci_high)).sum()))
    out["max_implied_gap"] = sci(float((hd.theory - hd.exponent).abs().max()), 2) if len(hd) else "—"
    cause_names = {"noise": "noise of J", "noise_u": "noise of J in u|J|", "grad_norm": "||g||"}
    lines = ["| format | cause | variable | exponent | 95% CI |", "|---|---|---|---|---|"]
    for r in joint[~joint.target.isin(["h_opt", "e_opt"])].itertuples():
        if r.target == "m_rms":
            name = "rms d3J (central)" if r.scheme == "central" else "rms d2J (forward)"
        elif r.scheme == "central":
            name = cause_names[r.target]
        else:
            continue  # the same cells as central's
        lines.append(f"| {r.format} | {name} | {r.variable} | {sci(r.exponent, 3)} | "
                     f"[{sci(r.ci_low, 3)}, {sci(r.ci_high, 3)}] |")
    out["causes_table"] = "\n".join(lines)
    for r in joint.itertuples():
        out[f"ns_{r.format}_{r.scheme}_{r.target}_{r.variable}"] = sci(r.exponent, 3)
    return out


def _noise_and_holdout_numbers(fits: pd.DataFrame, use: pd.DataFrame, held: pd.DataFrame
                               ) -> dict[str, str]:
    """The noise law in the dot-product length, the range of the noise in u|J|, and the
    held-out prediction factors."""
    out: dict[str, str] = {}
    nl = fits[fits.target == "noise_u"]
    nl = nl[nl.variable == "n_madds"]
    if len(nl):
        r = nl.iloc[0]
        out["noise_n_exp"] = sci(r.exponent, 3)
        out["noise_n_ci"] = f"[{sci(r.ci_low, 3)}, {sci(r.ci_high, 3)}]"
    nu = use[use.sweep.isin(["N_sigma", "variant"])].noise_u
    out["noise_u_min"], out["noise_u_max"] = sci(float(nu.min())), sci(float(nu.max()))
    for target in ("h_opt", "e_opt"):
        h = held[held.target == target]
        out[f"holdout_{target}"] = sci(median_factor(h), 3)
        finite = h.factor[np.isfinite(h.factor)]
        out[f"holdout_{target}_p90"] = sci(float(np.quantile(finite, 0.9)), 3) if len(finite) else "—"
    out["n_holdout_configs"] = str(held.drop_duplicates(["config"]).shape[0]) if "config" in held else "0"
    return out


def _model_numbers(use: pd.DataFrame, fits: pd.DataFrame) -> dict[str, str]:
    """How far the model's h* and E* and the u law's h* in hardware formats are from the measured."""
    out: dict[str, str] = {}
    modelled = use[np.isfinite(use.h_model) & np.isfinite(use.e_model)]
    out["n_no_model"] = str(len(use) - len(modelled))  # no truncation: the model has no minimum
    out["no_model_which"] = _which(use[~use.index.isin(modelled.index)])
    model = factor(modelled.h_model, modelled.h_opt)
    out["model_h_factor"] = sci(float(np.median(model)), 3)
    out["model_h_within2_pct"] = sci(100 * float((model <= 2).mean()), 3)
    emodel = factor(modelled.e_model, modelled.e_opt)
    out["model_e_factor"] = sci(float(np.median(emodel)), 3)
    u_use = _u_cells(use)
    hw = u_use[~u_use.format.str.startswith("binary") & (u_use.label == "mlp tanh bce")]
    hw_rows = []
    ufit = _u_fits(fits)
    for r in ufit[ufit.target == "h_opt"].itertuples():
        sub = hw[hw.scheme == r.scheme]
        pred = np.exp(r.intercept) * sub.u**r.exponent
        hw_rows += list(factor(pred, sub.h_opt))
    out["hardware_factor"] = sci(float(np.median(hw_rows)), 3) if hw_rows else "—"
    return out


def _numbers(cells: pd.DataFrame, fits: pd.DataFrame, held: pd.DataFrame, seconds: float,
             sweep_info: Any, attribution: pd.DataFrame) -> pd.DataFrame:
    """The paper's numbers, as text, in the order the table lists them."""
    use = _usable(cells)
    out = {
        **_attribution_numbers(attribution),
        **_grid_numbers(cells, fits, seconds, sweep_info),
        **_u_numbers(fits),
        **_ns_numbers(fits),
        **_noise_and_holdout_numbers(fits, use, held),
        **_model_numbers(use, fits),
    }
    return pd.DataFrame({"name": list(out), "text": list(out.values())})


def _law_grid(data: pd.DataFrame, x: str, hue: str, lines: Any, title: Any) -> Figure:
    """h* and E* (rows) for central and forward differences (columns) against x, with
    ``lines(target, scheme, subset)`` drawn over the points; one legend, in the first panel."""
    with plots.style():
        fig = Figure(figsize=(9.0, 6.4))
        axes = fig.subplots(2, 2)
        for i, target in enumerate(("h_opt", "e_opt")):
            for j, scheme in enumerate(SCHEMES):
                ax = axes[i, j]
                sub = data[data.scheme == scheme]
                plots.law(sub, x, target, hue=hue, lines=lines(target, scheme, sub),
                          err=(f"{target}_low", f"{target}_high"), ax=ax)
                ax.set_title(title(target, scheme))
                leg = ax.get_legend()
                if (i or j) and leg is not None:
                    leg.remove()
                elif leg is not None:
                    ax.legend(fontsize=6, loc="best")
        fig.tight_layout()
    return fig


def _which(cells: pd.DataFrame) -> str:
    """The objectives and schemes of some cells, e.g. "quadratic central (6)"."""
    if cells.empty:
        return "none"
    counts = cells.groupby(["label", "scheme"]).size()
    return ", ".join(f"{lab} {sch} ({n})" for (lab, sch), n in counts.items())


def _figures(cells: pd.DataFrame, fits: pd.DataFrame, out: Path) -> list[Path]:
    use = _usable(cells)
    paths: list[Path] = []
    # h* and E* against u: emulated formats with the fitted law, theory slope dashed
    u_cells = _u_cells(use).copy()
    u_cells["series"] = np.where(u_cells.format.str.startswith("binary"), u_cells.label,
                                 u_cells.label + " (hardware)")
    fig = _law_grid(u_cells, "u", "series", lambda t, sch, sub: _lines(fits, t, sch, "u", sub, "series"),
                    lambda t, sch: f"{sch}: {t} against u")
    paths += plots.save(fig, out / "figures" / "u_laws")

    grid = use[use.sweep == "N_sigma"]
    for var, fixed, other in (("N", "sigma", 1.0), ("sigma", "N", _sigma_slice(grid))):
        sl = grid[np.isclose(grid[fixed], other)]
        fig = _law_grid(
            sl, var, "format",
            lambda t, sch, sub, v=var, f=fixed, o=other: _lines(fits, t, sch, v, sub, "format", at={f: o}),
            lambda t, sch, v=var, f=fixed, o=other: f"{sch}: {t} against {v} ({f} = {o:g})")
        paths += plots.save(fig, out / "figures" / f"{var}_laws")

    # causes: noise in units of u|J| against the dot-product length; derivative, ||g||
    nets = use[use.sweep.isin(["N_sigma", "variant"]) & np.isclose(use.sigma, 1.0)]
    with plots.style():
        fig = Figure(figsize=(10.5, 3.3))
        axes = fig.subplots(1, 3)
        plots.law(nets[nets.scheme == "central"], "n_madds", "noise_u", hue="format", ax=axes[0])
        xs = np.geomspace(float(nets.n_madds.min()), float(nets.n_madds.max()), 20)
        y0 = float(nets[nets.n_madds == nets.n_madds.min()].noise_u.median())  # from the smallest net
        axes[0].plot(xs, y0 * np.sqrt(xs / xs[0]), "k--", lw=0.8, label="grows as sqrt(n) (probabilistic)")
        axes[0].plot(xs, y0 * xs / xs[0], "k:", lw=0.8, label="grows as n (worst case)")
        axes[0].legend(fontsize=6)
        axes[0].set_title("noise of J [u |J|]")
        central = nets[(nets.scheme == "central") & (nets.format == "float64")]
        plots.law(central, "N", "m_rms", hue="label", ax=axes[1])
        axes[1].set_title("rms d3J/dθ³ (central's truncation)")
        plots.law(central, "N", "grad_norm", hue="label", ax=axes[2])
        axes[2].set_title("||g||")
        fig.tight_layout()
    paths += plots.save(fig, out / "figures" / "causes")

    with plots.style():
        fig = Figure(figsize=(9.5, 3.6))
        axes = fig.subplots(1, 2)
        for ax, fmt in zip(axes, ("float32", "float64"), strict=True):
            sub = grid[(grid.format == fmt) & (grid.scheme == "central")]
            plots.heatmap(sub, "N", "sigma", "h_opt", ax=ax, label="log10 h* (central)")
            ax.set_title(f"{fmt}: central h* over (N, sigma)")
        fig.tight_layout()
    paths += plots.save(fig, out / "figures" / "h_opt_heatmap")
    return paths


def _sigma_slice(grid: pd.DataFrame) -> int:
    """The largest N of the (N, sigma) grid that has the most sigma values."""
    counts = grid.groupby("N").sigma.nunique().sort_values(kind="stable")
    return int(counts.index[-1]) if len(counts) else 0


def _lines(fits: pd.DataFrame, target: str, scheme: str, var: str, data: pd.DataFrame, hue: str,
           at: dict[str, float] | None = None) -> pd.DataFrame:
    """Fitted lines (solid) and the theory slope through the data's centre (dashed), per hue level."""
    rows = []
    for lev, sub in data.groupby(hue):
        if var == "u":
            f = fits[(fits.variable == "u") & (fits.format == "binary{p}") & (fits.label == lev)]
        else:
            f = fits[(fits.variable == var) & (fits.format == lev) & (fits.fit == "single")]
            for k, v in (at or {}).items():
                col = f"at_{k}"
                if col in f:
                    f = f[np.isclose(f[col].astype(float), v)]
        f = f[(f.target == target) & (f.scheme == scheme)]
        if f.empty or not np.isfinite(f.exponent.iloc[0]):
            continue
        r = f.iloc[0]
        x, y = np.log(sub[var].astype(float)), np.log(sub[target].astype(float))
        icpt = float(np.mean(y - r.exponent * x))
        rows.append({hue: lev, "exponent": r.exponent, "intercept": icpt, "dashed": False,
                     "legend": f"{lev}: fit {sci(r.exponent, 3)}"})
        if np.isfinite(r.theory):
            rows.append({hue: lev, "exponent": r.theory, "intercept": float(np.mean(y - r.theory * x)),
                         "dashed": True,
                         "legend": f"{lev}: {'theory' if var == 'u' else 'implied'} {sci(r.theory, 3)}"})
    return pd.DataFrame(rows, columns=[hue, "exponent", "intercept", "dashed", "legend"])


def run(out: Path, quick: bool = False, progress: bool = True, formats: list[str] | None = None,
        workers: int | None = None, scheduler: str | None = None) -> dict[str, Any]:
    """Run the sweep (resuming any cells already in ``out/cells``), fit, and write
    tables, figures and the paper's numbers; returns timings and paths."""
    t0 = time.perf_counter()
    cells_grid = grid(quick)
    if formats is not None:
        cells_grid = [c for c in cells_grid if c["format"] in formats]
    config = {"study": "scaling", "quick": quick, "n_cells": len(cells_grid)}
    # J's noise once per (objective, format), shared by the schemes' cells
    noise = run_sweep(measure_noise, noise_cells(cells_grid), out / "noise", workers=workers,
                      scheduler=scheduler, progress=progress, meta=config, version=CELL_VERSION)
    cells_grid = with_noise(cells_grid, noise.table)
    res = run_sweep(measure_cell, cells_grid, out / "cells", workers=workers, scheduler=scheduler,
                    progress=progress, meta=config, version=CELL_VERSION)
    cells = annotate(res.table)
    n_boot = 500 if quick else 2000
    fits = _fits(cells, n_boot)
    held = _holdout(cells)
    attribution = _attribution()
    seconds = time.perf_counter() - t0
    numbers = _numbers(cells, fits, held, seconds, res, attribution)
    meta = provenance(config)
    paths = [write_table(cells, out / "tables" / "scaling_cells", meta),
             write_table(fits, out / "tables" / "scaling_fits", meta),
             write_table(held, out / "tables" / "scaling_holdout", meta),
             write_table(attribution, out / "tables" / "noise_attribution", meta),
             write_table(numbers, out / "tables" / "numbers", meta)]
    figures = _figures(cells, fits, out)
    return {"seconds": time.perf_counter() - t0, "tables": paths, "figures": figures}
