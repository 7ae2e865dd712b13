"""Precision as hardware computes it: strict formats, mixed-precision policies and float8.

Part A, per network and format: J's noise split into its storage and accumulation parts,
the effective unit roundoff (measured, and predicted from float32 by the linear model),
h* and E* of the central difference (measured against the exact gradient, beside the
model's), and gl.check's verdicts on the correct gradient, a x1.1 error in its largest
component and a transposed weight gradient.

Part B, the reduction length: MLPs (n, 8, 1) with n up to 4096 inputs, so the first
layer's dot products have n terms. J's noise (against float64 on the same points and
data) and E* (against the float64 backprop gradient on sampled coordinates) per format,
with power laws in n fitted per format (bootstrap CIs), beside the sqrt(n) u and n u
growth of the classical bounds for sequential summation.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from tqdm.auto import tqdm

import gradlab as gl
from gradlab.analysis.engine import fd_gradient
from gradlab.analysis.policy_noise import policy_noise
from gradlab.arithmetic import formats
from gradlab.arithmetic.namespaces import namespace_for
from gradlab.arithmetic.objective import call_grad
from gradlab.objectives.bugs import inject, scaled_component
from gradlab.reporting import plots
from gradlab.reporting.paper import sci
from gradlab.reporting.tables import provenance, write_table
from gradlab.sweeps.fits import FitError, fit_power_law
from gradlab.sweeps.scaling import build_objective, measure_cell, optimum

DESCRIPTION = "precision as hardware computes it: strict, mixed (tf32, bf16/fp16-mixed) and float8"
FORMATS = ["float32", "tf32", "bfloat16", "bf16-mixed", "float16", "fp16-mixed",
           "float8_e4m3fn", "float8_e5m2"]
WIDTH_FORMATS = ["float32", "tf32", "bfloat16", "bf16-mixed", "float16", "fp16-mixed"]
NETWORKS = {
    "seed net (stable)": {"family": "seed_net", "stable": True},
    "mlp 4-8-1": {"family": "mlp", "widths": [4, 8, 1], "batch": 8, "seed": 1},
    "mlp 16-32-1": {"family": "mlp", "widths": [16, 32, 1], "batch": 16, "seed": 2},
    "mlp 24-24-1": {"family": "mlp", "widths": [24, 24, 1], "batch": 16, "seed": 3},
}
LABELS = {"float32": "float32", "tf32": "tf32", "bfloat16": "bfloat16 (strict)",
          "bf16-mixed": "bf16-mixed", "float16": "float16 (strict)", "fp16-mixed": "fp16-mixed",
          "float8_e4m3fn": "float8 e4m3fn", "float8_e5m2": "float8 e5m2"}


def _gradient_in(obj: gl.Objective, fmt: str) -> np.ndarray:
    """The objective's backprop gradient computed in the format, at its rounded theta."""
    f = formats.get(fmt)
    ns = namespace_for(f)
    return call_grad(obj, formats.round_array(obj.theta0, f), ns).astype(np.float64)


def _verdict(res: Any) -> str:
    return "passes" if res.passed else ("fails" if res.decided else "undecided")


def _checks(obj: gl.Objective, fmt: str) -> dict[str, Any]:
    """gl.check on the correct gradient, a x1.1 error in the largest component ("scaled") and a
    transposed weight gradient (where the network has one)."""
    g = _gradient_in(obj, fmt)
    mode = "full" if obj.n_params <= 1000 else "directional"
    out: dict[str, Any] = {"check_mode": mode}
    # the x1.1 bug as a gradient function (its rounding measurable in float64, so FD runs
    # in float32); the transposed weight gradient as inject's array (FD in the format)
    cases = {"correct": (obj, None),
             "scaled": (scaled_component(obj, int(np.argmax(np.abs(g))), 1.1), None)}
    try:
        cases["transposed"] = (obj, inject(obj, "transposed_weight", fmt))
    except ValueError:
        pass
    for name, (o, grad) in cases.items():
        with np.errstate(all="ignore"):
            res = gl.check(o, grad=grad, format=fmt, mode=mode)
        out[f"check_{name}"] = _verdict(res)
        out[f"check_{name}_reference"] = res.reference_format
    return out


def _cell(spec: dict[str, Any], fmt: str, n_coords: int) -> dict[str, Any]:
    """h* and E* of the central difference, measured and modelled (gradlab.sweeps.scaling)."""
    try:
        row = measure_cell({"objective": spec, "format": fmt, "scheme": "central",
                            "n_coords": n_coords, "n_boot": 0}).iloc[0]
    except (ValueError, ArithmeticError) as e:
        return {"cell_error": f"{type(e).__name__}: {e}"}
    return {"h_opt": row.h_opt, "e_opt": row.e_opt, "h_model": row.h_model,
            "e_model": row.e_model, "edge": bool(row.edge), "cell_error": ""}


def part_a(quick: bool, progress: bool) -> pd.DataFrame:
    """Per network and format: noise parts, u_eff, h*, E*, check verdicts."""
    nets = dict(list(NETWORKS.items())[:2]) if quick else NETWORKS
    rows = []
    for label, spec in tqdm(nets.items(), desc="mixed: networks", disable=not progress):
        obj = build_objective(spec)
        calib = policy_noise(obj, "float32")
        for fmt in FORMATS:
            row: dict[str, Any] = {"network": label, "n_params": obj.n_params,
                                   "format": fmt, "u": formats.get(fmt).u}
            try:
                pn = policy_noise(obj, fmt, calibration=(calib.sigma, calib.sigma_storage))
                row.update({k: v for k, v in pn.to_row().items() if k not in ("objective", "format")})
                noise = gl.noise_level(obj, fmt)
                row["rms"] = noise.rms_direct
                row["noise_error"] = ""
            except (ValueError, ArithmeticError) as e:
                row["noise_error"] = f"{type(e).__name__}: {e}"
            row.update(_cell(spec, fmt, 8 if quick else 16))
            row.update(_checks(obj, fmt))
            rows.append(row)
    return pd.DataFrame(rows)


def _e_star(obj: gl.Objective, fmt: str, coords: np.ndarray, g_ref: np.ndarray,
            steps: np.ndarray) -> tuple[float, float, bool]:
    """(h*, E*, edge) of the central difference on ``coords``: E = ||g_fd - g|| / ||g|| against
    the float64 backprop on the format's theta and data."""
    errors = []
    for h in steps:
        with np.errstate(all="ignore"):
            approx = fd_gradient(obj, fmt, "central", h, coords=coords)
        errors.append(float(np.linalg.norm(approx - g_ref) / np.linalg.norm(g_ref)))
    return optimum(steps, np.asarray(errors))


def part_b(quick: bool, progress: bool) -> pd.DataFrame:
    """Noise and E* against the reduction length n of MLPs (n, 8, 1)."""
    widths = [16, 64, 256] if quick else [16, 64, 256, 1024, 4096]
    seeds = [0, 1] if quick else [0, 1, 2]
    steps = np.logspace(-6, 0, 13 if quick else 25)
    rows = []
    grid = [(n, s) for n in widths for s in seeds]
    for n, seed in tqdm(grid, desc="mixed: widths", disable=not progress):
        obj = gl.objectives.mlp((n, 8, 1), batch=8, seed=seed)
        coords = np.sort(np.random.default_rng(seed).choice(obj.n_params, size=16, replace=False))
        calib = policy_noise(obj, "float32", reference="float64")
        for fmt in WIDTH_FORMATS:
            f = formats.get(fmt)
            pn = policy_noise(obj, fmt, reference="float64",
                              calibration=(calib.sigma, calib.sigma_storage))
            ref_fmt = formats.policy("float64", data=f.data)
            g_ref = _reference_gradient(obj, f, ref_fmt)
            h_opt, e_opt, edge = _e_star(obj, fmt, coords, g_ref[coords], steps)
            rows.append({"n": n, "seed": seed, "n_params": obj.n_params, "format": fmt, "u": f.u,
                         "value": pn.value, "sigma": pn.sigma, "sigma_storage": pn.sigma_storage,
                         "sigma_accumulation": pn.sigma_accumulation,
                         "noise_u": pn.sigma / (f.u * pn.value),
                         "accumulation_u": pn.sigma_accumulation / (f.u * pn.value),
                         "u_eff": pn.u_eff,
                         "u_eff_model": pn.u_eff_model, "h_opt": h_opt, "e_opt": e_opt,
                         "edge": edge})
    return pd.DataFrame(rows)


def _reference_gradient(obj: gl.Objective, fmt: formats.Format, ref: formats.Format) -> np.ndarray:
    """The backprop gradient in float64 at the format's theta, on the format's data."""
    ns = namespace_for(ref)
    theta = formats.round_array(obj.theta0, fmt).astype(np.float64)
    return call_grad(obj, theta, ns).astype(np.float64)


def fits(widths: pd.DataFrame) -> pd.DataFrame:
    """Power laws in n of the noise and of its accumulation part (in u|J|) and of E*, per
    format (an accumulation part that is 0 everywhere, as with float32 accumulation, is
    reported as not fitted)."""
    rows = []
    for fmt, g in widths.groupby("format", sort=False):
        for target in ("noise_u", "accumulation_u", "e_opt"):
            try:
                law = fit_power_law(g, target, ["n"], n_boot=2000, seed=0)
                b = law.exponents["n"]
                lo, hi = law.ci["n"]
                rows.append({"format": fmt, "target": target, "exponent": b, "low": lo, "high": hi,
                             "intercept": law.intercept, "n_rows": law.n, "note": ""})
            except FitError as e:
                rows.append({"format": fmt, "target": target, "exponent": math.nan, "low": math.nan,
                             "high": math.nan, "intercept": math.nan, "n_rows": len(g),
                             "note": str(e)})
    return pd.DataFrame(rows)


def _ordering(a: pd.DataFrame, chain: list[str], strict: list[bool]) -> tuple[int, int]:
    """In how many networks (of how many with every format measured) sigma/|J| follows the
    chain, ``<`` where ``strict`` and ``<=`` within 10% otherwise."""
    held = total = 0
    for _, g in a.groupby("network", sort=False):
        rel = g.set_index("format")["sigma"] / g.set_index("format")["value"]
        if not all(f in rel.index and np.isfinite(rel[f]) for f in chain):
            continue
        total += 1
        ok = all((rel[x] < rel[y]) if st else (rel[x] <= 1.1 * rel[y])
                 for x, y, st in zip(chain, chain[1:], strict, strict=False))
        held += int(ok)
    return held, total


def _table_a(a: pd.DataFrame) -> str:
    lines = ["| network | format | noise (u\\|J\\|) | storage part | accumulation part | rms error "
             "| u_eff / u | model | h* | E* | E* model | correct | x1.1 | transposed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    def cell(x: float, unit: float) -> str:
        return sci(x / unit) if np.isfinite(x) and np.isfinite(unit) and unit > 0 else "n/a"

    for r in a.itertuples():
        unit = r.u * getattr(r, "value", np.nan)
        lines.append(
            f"| {r.network} | {LABELS[r.format]} | {cell(r.sigma, unit)} "
            f"| {cell(r.sigma_storage, unit)} | {cell(r.sigma_accumulation, unit)} "
            f"| {cell(r.rms, unit)} | {sci(r.u_eff / r.u)} "
            f"| {sci(r.u_eff_model / r.u) if np.isfinite(r.u_eff_model) else 'not modelled'} "
            f"| {sci(r.h_opt)} | {sci(r.e_opt)} | {sci(r.e_model)} | {r.check_correct} "
            f"| {r.check_scaled} | {getattr(r, 'check_transposed', 'n/a')} |")
    return "\n".join(lines)


def _table_fits(f: pd.DataFrame) -> str:
    lines = ["| format | noise / (u\\|J\\|) | accumulation part / (u\\|J\\|) | E* |",
             "|---|---|---|---|"]
    for fmt, g in f.groupby("format", sort=False):
        cells = []
        for target in ("noise_u", "accumulation_u", "e_opt"):
            r = g[g.target == target].iloc[0]
            cells.append(f"{r.exponent:.2f} [{r.low:.2f}, {r.high:.2f}]" if np.isfinite(r.exponent)
                         else "not fitted (zero or too few values)")
        lines.append(f"| {LABELS[fmt]} | {cells[0]} | {cells[1]} | {cells[2]} |")
    return "\n".join(lines)


def _ci(fe: pd.DataFrame, fmt: str, target: str) -> str:
    r = fe.loc[(fmt, target)]
    if not np.isfinite(r["exponent"]):
        return "not fitted"
    return f"{r['exponent']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"


def _rate(fe: pd.DataFrame, formats_: list[str]) -> str:
    """Where the accumulation part's exponents stand against 1/2 (random walk) and 1 (bound)."""
    lows = [fe.loc[(f, "accumulation_u"), "low"] for f in formats_]
    highs = [fe.loc[(f, "accumulation_u"), "high"] for f in formats_]
    if not all(np.isfinite(lows + highs)):
        return "not determined by these widths"
    if max(highs) < 0.5:
        return ("below even the random-walk rate: every interval lies under 1/2, and far "
                "under the worst-case bound's 1")
    if min(lows) > 0.5:
        return "above the random-walk rate, though below the worst-case bound's 1" if max(
            highs) < 1 else "at or above the worst-case bound's rate"
    return "consistent with the random-walk rate (the intervals hold 1/2)"


def _numbers(a: pd.DataFrame, b: pd.DataFrame, f: pd.DataFrame) -> pd.DataFrame:
    mlps = a[a.network.str.startswith("mlp")]
    chain_held, chain_total = _ordering(mlps, ["float32", "tf32", "bf16-mixed", "bfloat16"],
                                        [True, True, False])
    fp_held, fp_total = _ordering(mlps, ["fp16-mixed", "float16"], [False])
    pols = a[a.format.isin(["tf32", "bf16-mixed", "fp16-mixed", "float32", "bfloat16", "float16"])]
    fe = f.set_index(["format", "target"])
    widest = b[b.n == b.n.max()].groupby("format").noise_u.median()
    out = {
        "table_a": _table_a(a),
        "table_fits": _table_fits(f),
        "n_networks": str(a.network.nunique()),
        "widths": ", ".join(str(n) for n in sorted(b.n.unique())),
        "n_seeds": str(b.seed.nunique()),
        "chain_held": str(chain_held), "chain_total": str(chain_total),
        "fp_held": str(fp_held), "fp_total": str(fp_total),
        "n_policy_cases": str(len(pols)),
        "n_correct_pass": str(int((pols.check_correct == "passes").sum())),
        "n_scaled_caught": str(int((pols.check_scaled == "fails").sum())),
        "n_float8_false_alarms": str(int((a[a.format.str.startswith("float8")].check_correct
                                          == "fails").sum())),
        "b_bf16": f"{fe.loc[('bfloat16', 'noise_u'), 'exponent']:.2f}",
        "b_bf16_mixed": f"{fe.loc[('bf16-mixed', 'noise_u'), 'exponent']:.2f}",
        "b_fp16": f"{fe.loc[('float16', 'noise_u'), 'exponent']:.2f}",
        "b_fp16_mixed": f"{fe.loc[('fp16-mixed', 'noise_u'), 'exponent']:.2f}",
        "b_f32": f"{fe.loc[('float32', 'noise_u'), 'exponent']:.2f}",
        "a_bf16": _ci(fe, "bfloat16", "accumulation_u"),
        "a_fp16": _ci(fe, "float16", "accumulation_u"),
        "a_f32": _ci(fe, "float32", "accumulation_u"),
        "rate": _rate(fe, ["bfloat16", "float16", "float32"]),
        "e_bf16": _ci(fe, "bfloat16", "e_opt"),
        "e_bf16_mixed": _ci(fe, "bf16-mixed", "e_opt"),
        "e_f32": _ci(fe, "float32", "e_opt"),
        "n_max": str(int(b.n.max())),
        "strict_over_mixed_bf16": sci(widest["bfloat16"] / widest["bf16-mixed"]),
        "strict_over_mixed_fp16": sci(widest["float16"] / widest["fp16-mixed"]),
    }
    return pd.DataFrame({"name": list(out), "text": list(out.values())})


def _figures(a: pd.DataFrame, b: pd.DataFrame, f: pd.DataFrame, out: Path) -> list[Path]:
    paths: list[Path] = []
    b = b.assign(arithmetic=b.format.map(LABELS))
    # tf32's noise is its inputs' 11-bit rounding, hundreds of float32 units: in the table,
    # not here, where it would flatten every other line
    for target, ylabel, name, keep in (
            ("noise_u", "noise of J / (u |J|)", "noise_width", b.format != "tf32"),
            ("accumulation_u", "accumulation part of the noise / (u |J|)", "accumulation_width",
             b.format.isin(["float32", "bfloat16", "float16"])),
            ("e_opt", "best error E* = ||g_fd - g|| / ||g||", "estar_width", b.format == b.format)):
        lines = f[f.target == target].assign(arithmetic=lambda d: d.format.map(LABELS),
                                             legend="", dashed=False)
        lines = lines[np.isfinite(lines.exponent)]
        ax = plots.law(b[keep], "n", target, hue="arithmetic", lines=lines)
        ax.set_xlabel("reduction length n (inputs of the first layer)")
        ax.set_ylabel(ylabel)
        handles, labels = ax.get_legend_handles_labels()
        pairs = [(h, lab) for h, lab in zip(handles, labels, strict=True) if lab]
        ax.legend([h for h, _ in pairs], [lab for _, lab in pairs], fontsize=7, loc="best")
        paths += plots.save(ax.figure, out / "figures" / name)
    parts = a[a.format != "tf32"].dropna(subset=["sigma"]).assign(
        storage=lambda d: d.sigma_storage / (d.u * d.value),
        accumulation=lambda d: d.sigma_accumulation / (d.u * d.value),
        arithmetic=lambda d: d.format.map(LABELS))
    long = parts.melt(id_vars=["network", "arithmetic"], value_vars=["storage", "accumulation"],
                      var_name="part", value_name="noise_u")

    def bars(d: pd.DataFrame, ax: Any) -> Any:
        with plots.style():
            sns.barplot(data=d, y="arithmetic", x="noise_u", hue="part", ax=ax, orient="h")
        ax.set_xlabel("noise of J / (u |J|)")
        ax.set_ylabel("")
        return ax

    fig = plots.facet(long, bars, col="network", ncols=2, size=(4.2, 3.4), sharey=True,
                      title="J's noise: storage (elementwise, reduction outputs) and accumulation "
                            "parts (tf32: in the table)")
    paths += plots.save(fig, out / "figures" / "noise_parts")
    return paths


def run(out: Path, quick: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run the study into ``out``; returns timings and paths."""
    t0 = time.perf_counter()
    meta = provenance({"study": "mixed", "quick": quick, "formats": FORMATS,
                       "width_formats": WIDTH_FORMATS, "networks": NETWORKS})
    a = part_a(quick, progress)
    b = part_b(quick, progress)
    f = fits(b)
    paths = [write_table(a, out / "tables" / "formats", meta),
             write_table(b, out / "tables" / "widths", meta),
             write_table(f, out / "tables" / "fits", meta)]
    paths.append(write_table(_numbers(a, b, f), out / "tables" / "numbers", meta))
    figures = _figures(a, b, f, out)
    return {"seconds": time.perf_counter() - t0, "tables": paths, "figures": figures}
