"""Figures: seaborn on tidy tables, one shared style, no pyplot state.

Functions take a long-form DataFrame and column names, draw on ``ax`` (a new
figure if None) and return the Axes. Figures are built with
:class:`matplotlib.figure.Figure` directly, so nothing is shown and no backend is
chosen for the caller; :func:`save` writes PNG and PDF.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure

__all__ = [
    "FORMAT_COLORS", "SCHEME_COLORS", "STYLE", "WORDS", "attribution_bars", "components", "curves", "facet",
    "heatmap", "law", "rate_bars", "ratio_strip", "save", "style", "words",
]

STYLE: dict[str, Any] = {
    **sns.axes_style("whitegrid"),
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "lines.linewidth": 1.4,
    "figure.dpi": 110,
    "savefig.dpi": 160,
    "savefig.bbox": "tight",
    "axes.prop_cycle": cycler(color=sns.color_palette("colorblind")),
}
PART_COLORS = {"total": "black", "truncation": "#0072B2", "step": "#009E73", "rounding": "#D55E00"}

WORDS: dict[str, str] = {
    # columns and levels, as a reader says them (axis labels and legend entries)
    "h": "step h", "h_opt": "optimal step h*", "e_opt": "best error E*", "N": "parameters N",
    "sigma": "init scale sigma", "u": "unit roundoff u", "p": "precision p (bits)",
    "value": "error (normalised)", "ratio": "ratio to the reference",
    "rel_sum": "||e|| / (||g|| + ||g_fd||)", "rel_2g": "||e|| / (2 ||g||)", "rel_g": "||e|| / ||g||",
    "rms": "||e|| / sqrt(N)", "max_abs": "max |e_i|",
    "err_total": "total", "err_trunc": "truncation", "err_step": "step", "err_round": "rounding",
    "noise": "noise of J", "noise_u": "noise of J [u |J|]", "m_rms": "rms truncating derivative",
    "grad_norm": "||g||", "sigma_u": "noise of J [u |J|]", "n_madds": "multiply-adds in one evaluation of J",
    "forward": "forward", "central": "central", "central4": "central, 4th order",
    "central6": "central, 6th order", "complex": "complex step",
    "seed_net": "naive loss", "seed_net_stable": "stable loss (logaddexp)",
    "false_alarm": "false alarms: correct gradients failed",
    "miss_above_floor": "misses: bugs above the FD floor passed", "rate": "share of cases",
}

# one colour per format and per scheme, in every figure
_FORMAT_ORDER = ["float8_e4m3fn", "float8_e5m2", "bfloat16", "float16", "float32", "float64",
                 "longdouble", "tf32", "bf16-mixed", "fp16-mixed"]
FORMAT_COLORS = dict(zip(_FORMAT_ORDER, sns.color_palette("colorblind", len(_FORMAT_ORDER)), strict=True))
SCHEME_COLORS = dict(zip(["forward", "central", "central4", "central6", "complex"],
                         sns.color_palette("dark", 5), strict=True))


def words(name: Any) -> Any:
    """A column name or level in words (itself when there are none)."""
    return WORDS.get(name, name) if isinstance(name, str) else name


def _fixed_colour(level: Any) -> Any:
    """A format's or scheme's own colour, for its name or a label that starts with it
    ("bfloat16 (strict)"); None for anything else."""
    if not isinstance(level, str):
        return None
    name = level.split(" (")[0]
    return FORMAT_COLORS.get(name, SCHEME_COLORS.get(name))


def _palette(hue: str | None, levels: Sequence[Any]) -> dict[Any, Any] | None:
    """The fixed colours of formats or schemes (in words, as the legend shows them), where
    every level is one; None otherwise (the plot's own palette)."""
    colours = [_fixed_colour(lev) for lev in levels]
    if hue is None or any(c is None for c in colours) or len(set(colours)) < len(colours):
        return None
    return {words(lev): c for lev, c in zip(levels, colours, strict=True)}


@contextmanager
def style() -> Any:
    """The one style every gradlab figure uses."""
    with mpl.rc_context(STYLE):  # type: ignore[arg-type]
        yield


def _raw_palette(hue: str | None, data: pd.DataFrame) -> dict[Any, Any] | None:
    """:func:`_palette` keyed by the levels as they are (for plots that keep them)."""
    if hue is None:
        return None
    levels = list(pd.unique(data[hue]))
    fixed = _palette(hue, levels)
    return None if fixed is None else {lev: fixed[words(lev)] for lev in levels}


def _axes(ax: Axes | None) -> Axes:
    if ax is not None:
        return ax
    with style():
        return Figure(figsize=(4.5, 3.2)).subplots()


def _loglog(ax: Axes, x: str, y: str, xs: Any = None) -> None:
    """Log axes in words; a few distinct x values (a grid of sizes) are the x ticks, in
    plain numbers, instead of minor ticks whose labels collide within one decade."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(words(x))
    ax.set_ylabel(words(y))
    values = np.unique(np.asarray(xs, dtype=np.float64)) if xs is not None else np.array([])
    values = values[np.isfinite(values) & (values > 0)]
    if 0 < values.size <= 8:
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def curves(
    data: pd.DataFrame, x: str = "h", y: str = "rel_sum", hue: str | None = "scheme",
    style_col: str | None = None, ax: Axes | None = None, **kwargs: Any,
) -> Axes:
    """y against x on log-log axes, one line per hue (and style) level.

    Non-positive and non-finite y are left out of the line (log axes), not hidden
    silently: the caller's table still holds them with their flags.
    """
    ax = _axes(ax)
    d = data[np.isfinite(data[y]) & (data[y] > 0)].copy()
    palette = None
    if hue is not None and len(d):  # (an empty panel has no hue to colour)
        palette = _palette(hue, list(pd.unique(d[hue])))
        d[hue] = d[hue].map(words)
    if style_col is not None:
        d[style_col] = d[style_col].map(words)
    with style():
        sns.lineplot(data=d, x=x, y=y, hue=hue, style=style_col, ax=ax, estimator=None,
                     sort=True, palette=palette, **kwargs)
    _loglog(ax, x, y)
    return ax


def components(
    summary: pd.DataFrame, x: str = "h", ax: Axes | None = None, legend: bool = True
) -> Axes:
    """|total| and its truncation, step and rounding parts (relative to 2||g||),
    with the model's truncation and rounding as dashed lines."""
    ax = _axes(ax)
    scale = 2 * summary["grad_norm"]
    parts = {"total": "err_norm", "truncation": "trunc_norm", "step": "step_norm",
             "rounding": "round_norm"}
    models = {"truncation": "model_trunc_norm", "rounding": "model_round_norm"}
    with style():
        for label, col in parts.items():
            v = summary[col] / scale
            ok = np.isfinite(v) & (v > 0)
            ax.plot(summary[x][ok], v[ok], color=PART_COLORS[label], label=label,
                    lw=2.2 if label == "total" else 1.3, alpha=0.85 if label == "total" else 1)
        for label, col in models.items():
            v = summary[col] / scale
            ok = np.isfinite(v) & (v > 0)
            ax.plot(summary[x][ok], v[ok], color=PART_COLORS[label], ls="--", lw=1,
                    label=f"{label} model")
    _loglog(ax, x, "error / (2 ||g||)")
    ax.set_ylim(1e-20, 1e3)  # relative errors outside this range say nothing more
    if legend:
        ax.legend(loc="best")
    return ax


def facet(
    data: pd.DataFrame, draw: Callable[..., Axes], col: str, col_order: Sequence[Any] | None = None,
    ncols: int = 3, size: tuple[float, float] = (3.6, 2.9), sharey: bool = True,
    title: str | None = None, **kwargs: Any,
) -> Figure:
    """One panel per level of ``col``, each drawn by ``draw(subset, ax=..., **kwargs)``;
    one legend for the figure, and a note in any panel left empty."""
    levels = list(col_order) if col_order is not None else list(pd.unique(data[col]))
    nrows = int(np.ceil(len(levels) / ncols))
    with style():
        fig = Figure(figsize=(size[0] * min(ncols, len(levels)), size[1] * nrows))
        axes = np.atleast_1d(fig.subplots(nrows, min(ncols, len(levels)), sharey=sharey,
                                          squeeze=False)).ravel()
        handles: list[Any] = []
        labels: list[str] = []
        for lev, ax in zip(levels, axes, strict=False):
            draw(data[data[col] == lev], ax=ax, **kwargs)
            ax.set_title(f"{words(lev)}")
            if not ax.lines and not ax.patches:
                ax.text(0.5, 0.5, "no finite, positive values\n(see the table's flags)",
                        transform=ax.transAxes, ha="center", va="center", color="0.4")
                ax.set_xticks([])  # an empty panel's x range means nothing
                ax.set_xlabel("")
            leg = ax.get_legend()
            if leg is not None:
                lab = [t.get_text() for t in leg.get_texts()]
                if len(lab) > len(labels):
                    handles, labels = list(leg.legend_handles), lab
                leg.remove()
        for ax in axes[len(levels):]:
            ax.set_visible(False)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        if labels:
            fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5),
                       frameon=False)
    return fig


def attribution_bars(
    table: pd.DataFrame, x: str = "sigma_u", y: str = "label", hue: str | None = None,
    top: int = 6, ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of the noisiest operations (noise in units of u|J|): the ``top``
    operations by their largest value over the hue levels, each shown for every level."""
    ax = _axes(ax)
    worst = table.groupby(y)[x].max().sort_values(ascending=False).head(top).index
    t = table[table[y].isin(worst)].copy()
    t[y] = pd.Categorical(t[y], categories=list(worst), ordered=True)
    with style():
        sns.barplot(data=t, x=x, y=y, hue=hue, ax=ax, orient="h",
                    palette=_raw_palette(hue, t))
    ax.set_xscale("log")
    ax.set_xlabel("noise of J from this operation [u |J|]")
    ax.set_ylabel("")
    return ax


def ratio_strip(
    data: pd.DataFrame, x: str = "ratio", y: str = "rule", hue: str | None = "format",
    ax: Axes | None = None,
) -> Axes:
    """The distribution of a positive ratio per category: boxes and points, log x axis,
    with the line at 1 (equal to the reference) and 2 (twice it) marked."""
    ax = _axes(ax)
    order = data.groupby(y)[x].median().sort_values().index.tolist()
    with style():
        sns.boxplot(data=data, x=x, y=y, hue=hue, order=order, ax=ax, log_scale=True,
                    fliersize=0, linewidth=0.7, palette=_raw_palette(hue, data))
        sns.stripplot(data=data, x=x, y=y, hue=hue, order=order, ax=ax, dodge=True, size=2,
                      alpha=0.5, legend=False, palette=_raw_palette(hue, data))
    for ref, ls in ((1, "-"), (2, "--")):
        ax.axvline(ref, color="0.3", lw=0.8, ls=ls)
    ax.set_xlabel(f"{words(x)} (log scale)")
    ax.set_ylabel("")
    return ax


def rate_bars(
    data: pd.DataFrame, x: str = "value", y: str = "checker", hue: str | None = "format",
    ax: Axes | None = None,
) -> Axes:
    """Horizontal bars of a rate in [0, 1] per category and hue."""
    ax = _axes(ax)
    with style():
        sns.barplot(data=data, x=x, y=y, hue=hue, ax=ax, orient="h", errorbar=None,
                    palette=_raw_palette(hue, data))
        for bars in ax.containers:  # the value at each bar's end: a rate of 0 is seen, not absent
            if isinstance(bars, BarContainer):
                values = [float(b.get_width()) for b in bars]
                ax.bar_label(bars, labels=[f"{v:.2g}" if np.isfinite(v) else "n/a" for v in values],
                             fontsize=6, padding=2)
    ax.set_xlim(0, 1.08)
    ax.set_xlabel(words("rate"))
    ax.set_ylabel("")
    return ax


def law(
    data: pd.DataFrame, x: str, y: str, hue: str | None = None, lines: pd.DataFrame | None = None,
    err: tuple[str, str] | None = None, ax: Axes | None = None,
) -> Axes:
    """Measured points (with intervals) of a power law on log-log axes, and its lines.

    Parameters
    ----------
    data : DataFrame
        One row per measurement; non-finite or non-positive y are left out.
    x, y, hue : str
        Columns; points of one hue level share a colour.
    lines : DataFrame, optional
        Lines ``y = exp(intercept) * x**exponent`` with columns ``exponent``,
        ``intercept``, ``legend``, ``dashed`` (bool) and, if ``hue`` is given, that
        column (a line takes its level's colour), drawn over the x range of its level.
    err : (str, str), optional
        Columns of the lower and upper ends of y's interval.
    """
    ax = _axes(ax)
    d = data[np.isfinite(data[y]) & (data[y] > 0)]
    levels = list(pd.unique(d[hue])) if hue else [None]
    fixed = _palette(hue, levels) if hue else None
    colors = ({lev: fixed[words(lev)] for lev in levels} if fixed is not None else
              dict(zip(levels, sns.color_palette("colorblind", max(len(levels), 1)), strict=False)))
    with style():
        for lev in levels:
            sub = d if lev is None else d[d[hue] == lev]
            c = colors[lev]
            if err is not None:
                lo = np.clip(sub[y] - sub[err[0]], 0, None)
                hi = np.clip(sub[err[1]] - sub[y], 0, None)
                ok = np.isfinite(lo) & np.isfinite(hi)
                ax.errorbar(sub[x][ok], sub[y][ok], yerr=[lo[ok], hi[ok]], fmt="none", ecolor=c,
                            alpha=0.5, lw=0.8)
            label = str(words(lev)) if lev is not None else words(y)
            ax.plot(sub[x], sub[y], "o", ms=3.5, color=c, label=label)
            if lines is None:
                continue
            own = lines if lev is None or hue not in lines else lines[lines[hue] == lev]
            xs = np.geomspace(float(sub[x].min()), float(sub[x].max()), 50)
            for _, ln in own.iterrows():
                ax.plot(xs, math.exp(float(ln["intercept"])) * xs ** float(ln["exponent"]), color=c,
                        lw=1, ls="--" if bool(ln["dashed"]) else "-", label=str(ln["legend"]))
    _loglog(ax, x, y, d[x])
    if hue or lines is not None:
        ax.legend(loc="best")
    return ax


def heatmap(
    data: pd.DataFrame, x: str, y: str, value: str, ax: Axes | None = None, fmt: str = ".1f",
    label: str | None = None,
) -> Axes:
    """log10 of ``value`` over two grid columns, annotated; missing cells stay blank."""
    ax = _axes(ax)
    d = data[np.isfinite(data[value]) & (data[value] > 0)].copy()
    d["log10"] = np.log10(d[value])
    grid = d.pivot_table(index=y, columns=x, values="log10", aggfunc="median").sort_index(ascending=False)
    with style():
        sns.heatmap(grid, annot=True, fmt=fmt, cmap="viridis", ax=ax,
                    cbar_kws={"label": label or f"log10 {value}"}, annot_kws={"size": 7})
    ax.set_xlabel(words(x))
    ax.set_ylabel(words(y))
    return ax


def save(fig: Figure, path: Path | str) -> list[Path]:
    """Write ``fig`` as PNG and PDF next to each other; returns both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in (".png", ".pdf"):
        p = path.with_suffix(ext)
        with style():
            fig.savefig(p, bbox_inches="tight")  # keeps the figure legend on the right
        out.append(p)
    return out
