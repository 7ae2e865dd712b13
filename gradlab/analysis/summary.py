"""Summaries of the per-coordinate table: norms and the normalisations of the FD error."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gradlab.analysis.errors import rel_2g, rel_g, rel_sum
from gradlab.arithmetic import validation

__all__ = ["SUMMARY_COLUMNS", "summarize"]

SUMMARY_COLUMNS = [
    "objective", "n_params", "format", "scheme", "h", "grad_norm", "approx_norm", "err_norm",
    "trunc_norm", "step_norm", "round_norm", "rel_sum", "rel_2g", "rel_g", "rms", "max_abs",
    "n_flagged", "flags", "n_coords", "err_norm_rse", "model_trunc_norm", "model_round_norm",
]
_KEYS = ["objective", "n_params", "format", "scheme", "h"]


def _sampling_rse(e_abs: np.ndarray, n_params: int) -> float:
    """Relative standard error of sqrt(N mean(e_i**2)) estimated from n sampled |e_i|."""
    n = e_abs.size
    if n >= n_params:
        return 0.0
    if not np.all(np.isfinite(e_abs)):
        return np.inf
    sq = e_abs**2
    mean = float(np.mean(sq))
    if mean == 0:
        return 0.0
    if n < 2:
        return np.inf  # one coordinate says nothing about the spread
    se = float(np.std(sq, ddof=1)) / np.sqrt(n) * np.sqrt(1 - n / n_params)
    return 0.5 * se / mean


def _norm(grp: pd.DataFrame, col: str, scale: float) -> float:
    """The 2-norm of a column times ``scale``; inf when an entry is not finite."""
    v = grp[col].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(v)):
        return np.inf
    return float(np.linalg.norm(v) * scale)


_NEEDS_EXACT = ["grad_norm", "err_norm", "trunc_norm", "step_norm", "round_norm", "rel_sum", "rel_2g",
                "rel_g", "rms", "max_abs", "err_norm_rse"]
"""The metrics that compare with the exact gradient: NaN where it is not finite."""


def _group_row(key: tuple[Any, ...], grp: pd.DataFrame) -> dict[str, Any]:
    """The summary row of one (objective, format, scheme, h)."""
    n_coords = len(grp)
    n_params = int(grp["n_params"].iloc[0])
    scale = np.sqrt(n_params / n_coords)  # sampled coordinates: estimate the full norms
    err = _norm(grp, "err_total", scale)
    gn, an = _norm(grp, "exact", scale), _norm(grp, "approx", scale)
    flags = grp["flag"].astype(str)
    # a row without its exact gradient (a table edited or joined by hand) has no error to
    # measure: flagged, and the metrics that need g are NaN, never a finite number
    no_exact = ~np.isfinite(grp["exact"].to_numpy(dtype=np.float64))
    flags = flags.mask(no_exact, (flags + ",").str.lstrip(",") + "exact_nonfinite")
    flagged = flags != ""
    counts = flags[flagged].str.split(",").explode().value_counts()
    e_abs = grp["err_total"].abs().to_numpy(dtype=np.float64)
    row = {
        **dict(zip(_KEYS, key, strict=True)),
        "grad_norm": gn,
        "approx_norm": an,
        "err_norm": err,
        "trunc_norm": _norm(grp, "err_trunc", scale),
        "step_norm": _norm(grp, "err_step", scale),
        "round_norm": _norm(grp, "err_round", scale),
        "rel_sum": float(rel_sum(err, an, gn)),
        "rel_2g": float(rel_2g(err, gn)),
        "rel_g": float(rel_g(err, gn)),
        "rms": err / np.sqrt(n_params) if np.isfinite(err) else np.inf,
        "max_abs": float(np.max(np.where(np.isfinite(e_abs), e_abs, np.inf))),
        "n_flagged": int(flagged.sum()),
        "flags": ";".join(f"{k}:{v}" for k, v in sorted(counts.items())),
        "n_coords": n_coords,
        "err_norm_rse": _sampling_rse(e_abs, n_params),
        "model_trunc_norm": _norm(grp, "model_trunc", scale) if "model_trunc" in grp else np.nan,
        "model_round_norm": _norm(grp, "model_round", scale) if "model_round" in grp else np.nan,
    }
    if no_exact.any():
        row.update(dict.fromkeys(_NEEDS_EXACT, np.nan))
    return row


def summarize(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (objective, format, scheme, h) with norms and error metrics.

    Parameters
    ----------
    df : pandas.DataFrame
        The per-coordinate table of :func:`gradlab.fd_errors`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS`. With e = g_fd - g:
        rel_sum = ||e|| / (||g_fd|| + ||g||) (the exercise's E),
        rel_2g = ||e|| / (2 ||g||), rel_g = ||e|| / ||g|| (the normalisations of
        :mod:`gradlab.analysis.errors`, with its conventions), rms = ||e|| / sqrt(N),
        max_abs = max |e_i|. When only a sample of n_coords < n_params coordinates
        is in the table, the 2-norms are scaled by sqrt(N / n_coords) to estimate
        the full-gradient norms (the ratios are unaffected) and max_abs is the
        sample's; ``err_norm_rse`` is then the relative standard error of the
        estimated ``err_norm`` from sampling (delta method on the mean of e_i**2,
        with the finite-population correction; 0 when every coordinate is in the
        table), and every normalised error carries that relative uncertainty from
        its numerator. It is a lower bound of the uncertainty when a few
        coordinates carry most of the error: a sample that misses them also
        underestimates the spread (tests/test_summary.py measures this).
        ``model_trunc_norm`` and ``model_round_norm`` are the norms of the
        model columns (the parts as the error model predicts them). A non-finite FD
        value makes the metrics of its row ``inf`` (the FD gradient is not finite),
        never NaN; ``flags`` counts each flag. A non-finite ``exact`` (no reference: a
        table edited or joined by hand) adds the flag ``exact_nonfinite`` and makes every
        metric that compares with g NaN, never a finite number.

    Raises
    ------
    TypeError, ValueError
        When ``df`` is not a DataFrame, lacks a column of fd_errors, or repeats a
        (objective, format, scheme, h, coord) row, which would be counted twice.

    Examples
    --------
    >>> import gradlab as gl
    >>> df = gl.fd_errors(gl.objectives.seed_net(), formats="float64", steps=[1e-7])
    >>> sm = gl.summarize(df)
    >>> float(sm.rel_sum.iloc[0]) < 1e-6, int(sm.n_flagged.iloc[0])
    (True, 0)
    """
    validation.table("df (the table of fd_errors)", df,
                     [*_KEYS, "coord", "err_total", "err_trunc", "err_step", "err_round", "exact",
                      "approx", "flag"])
    repeated = df.duplicated([*_KEYS, "coord"])
    if repeated.any():
        first = df[repeated].iloc[0]
        raise ValueError(
            f"df has {int(repeated.sum())} repeated rows, e.g. coord {first['coord']} of "
            f"{first['objective']!r} in {first['format']}/{first['scheme']} at h = {first['h']}: "
            "they would be counted twice (tables of two objectives with the same name?)")
    out = [_group_row(key, grp) for key, grp in df.groupby(_KEYS, sort=True)]
    res = pd.DataFrame(out, columns=SUMMARY_COLUMNS)
    res.attrs.update(df.attrs)
    return res
