"""Where E(h) is least: measured on the step grid and predicted by the error model."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gradlab.analysis.errors import rel_2g, rel_g, rel_sum
from gradlab.analysis.models import predicted_minimum
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs

__all__ = ["minima"]

_GROUP = ["objective", "format", "scheme"]
_METRICS = ("rel_sum", "rel_2g", "rel_g", "rms")


def _in_metric(metric: str, err_norm: float, grad_norm: float, n: int) -> float:
    """The model's ``||e||`` in the normalisation of ``metric``.

    The model predicts ``||e||`` only; for rel_sum it takes e uncorrelated with g, so
    ``||g_fd||**2 = ||g||**2 + ||e||**2`` (rel_2g's value when e << g, and at most 1/2
    less when e dominates, as the measurement's own rel_sum is).
    """
    if metric == "rel_sum":
        return float(rel_sum(err_norm, np.hypot(grad_norm, err_norm), grad_norm))
    if metric == "rel_2g":
        return float(rel_2g(err_norm, grad_norm))
    if metric == "rel_g":
        return float(rel_g(err_norm, grad_norm))
    return err_norm / np.sqrt(n)


def minima(coords: pd.DataFrame, summary: pd.DataFrame, metric: str = "rel_sum") -> pd.DataFrame:
    """Measured and predicted minimum of ``metric`` per (objective, format, scheme).

    The measured minimum is the least finite value on the step grid. The model's
    inputs are read back from the per-coordinate model columns: the derivative
    d_i from ``model_trunc = C h**q d_i`` and the noise level from
    ``model_round = sigma sqrt(sum c_j**2) / h`` (see :func:`predicted_minimum`). The
    predicted error is stated in ``metric``'s own normalisation, so ``e_ratio`` compares
    like with like.

    Parameters
    ----------
    coords, summary : pandas.DataFrame
        :func:`gradlab.fd_errors`'s table and its :func:`gradlab.summarize`.
    metric : {"rel_sum", "rel_2g", "rel_g", "rms"}

    Returns
    -------
    pandas.DataFrame
        objective, format, scheme, h_measured, e_measured, h_predicted,
        e_predicted, h_ratio (predicted / measured), e_ratio, kind, and
        flags_at_min (the flags of the measured minimum's row).
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS} (the model predicts no other), got {metric!r}")
    rows = []
    for key, sm in summary.groupby(_GROUP, sort=True):
        obj, fmt_name, scheme_name = key
        scheme = schs.get(str(scheme_name))
        fmt = fmts.get(str(fmt_name))
        ok = sm[np.isfinite(sm[metric])]
        best = ok.loc[ok[metric].idxmin()] if len(ok) else None
        c = coords[(coords.objective == obj) & (coords.format == fmt_name)
                   & (coords.scheme == scheme_name)]
        h_top = c.h.max()
        top = c[c.h == h_top].sort_values("coord")
        deriv = top.model_trunc.to_numpy() / (float(scheme.leading) * h_top**scheme.order)
        sigma = float(np.median(top.model_round * h_top / scheme.weight_norm))
        grad = top.exact.to_numpy()
        h_p, e_p_2g, kind = predicted_minimum(scheme, deriv, sigma, fmt.u, grad)
        g_norm = float(np.linalg.norm(grad))
        e_p = _in_metric(metric, 2 * g_norm * e_p_2g, g_norm, grad.size) if np.isfinite(e_p_2g) else e_p_2g
        h_m = float(best.h) if best is not None else np.inf
        e_m = float(best[metric]) if best is not None else np.inf
        rows.append({
            "objective": obj, "format": fmt_name, "scheme": scheme_name,
            "h_measured": h_m, "e_measured": e_m, "h_predicted": h_p, "e_predicted": e_p,
            "h_ratio": h_p / h_m if h_m > 0 else np.inf,
            "e_ratio": e_p / e_m if e_m > 0 else np.inf,
            "kind": kind,
            "flags_at_min": "" if best is None else str(best["flags"]),
        })
    return pd.DataFrame(rows)
