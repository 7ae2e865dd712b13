"""Figures speak words and keep one colour per format and scheme."""

from __future__ import annotations

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd

from gradlab.reporting import plots


def _table(hue: str, levels: list[str]) -> pd.DataFrame:
    h = np.logspace(-8, -1, 8)
    return pd.concat([pd.DataFrame({"h": h, "rel_g": h * (k + 1), hue: lev}) for k, lev in enumerate(levels)])


def test_legends_and_axes_are_in_words() -> None:
    ax = plots.curves(_table("metric", ["rel_sum", "max_abs"]), y="rel_g", hue="metric")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["||e|| / (||g|| + ||g_fd||)", "max |e_i|"]
    assert ax.get_xlabel() == "step h" and ax.get_ylabel() == "||e|| / ||g||"


def test_a_format_has_the_same_colour_in_every_figure() -> None:
    for levels in (["float32", "float64"], ["bfloat16", "float64", "float16"]):
        ax = plots.curves(_table("format", levels), y="rel_g", hue="format")
        got = {line.get_label(): mcolors.to_hex(line.get_color()) for line in ax.get_legend().get_lines()}
        assert got["float64"] == mcolors.to_hex(plots.FORMAT_COLORS["float64"])
