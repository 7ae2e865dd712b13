"""Scaling laws of the optimal step h* and the best error E*: one measured cell, and
the exponents the error model implies.

A cell is one objective (built from a JSON-able spec), one format and one scheme.
:func:`measure_cell` finds the step that minimises the measured relative error
``E(h) = ||g_fd(h) - g|| / ||g||`` against the exact gradient, on a step grid centred
on the model's prediction, and records beside h* and E* their causes: the noise
level of J, the rms diagonal derivative that sets the truncation, and ||g||. With
coordinates sampled, the norms are scaled by ``sqrt(N / n)`` and the sampling
uncertainty is carried as bootstrap intervals over the sampled coordinates.

Why the causes: with truncation norm ``A h**q`` (``A = C sqrt(N) m``, m the rms of
the (q+1)-th diagonal derivative) and rounding norm ``B / h`` (``B = w sqrt(N)
sigma_J``, w the norm of the weights), ``h* ∝ (sigma_J / m)**(1/(q+1))`` and
``E* ∝ sqrt(N) m**(1/(q+1)) sigma_J**(q/(q+1)) / ||g||``. So an exponent of h* or E*
in any variable follows from the exponents of sigma_J, m and ||g|| in it
(:func:`implied_exponent`); in u, with ``sigma_J ∝ u``, these are the classical
1/(q+1) and q/(q+1).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from gradlab import objectives
from gradlab.analysis.engine import fd_errors
from gradlab.analysis.exact import ExactResult, exact
from gradlab.analysis.noise import noise_level
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic.objective import Objective

__all__ = [
    "CAUSES", "FAMILIES", "annotate", "build_objective", "implied_exponent", "implied_from_fits",
    "measure_cell", "n_madds", "optimum",
]

CAUSES = {"noise": "noise", "deriv": "m_rms", "grad": "grad_norm"}
"""The cell columns of the three causes of h* and E* (see :func:`implied_exponent`)."""

FAMILIES = {
    "mlp": objectives.mlp,
    "logistic_regression": objectives.logistic_regression,
    "softmax_regression": objectives.softmax_regression,
    "quadratic": objectives.quadratic,
    "smooth_sum": objectives.smooth_sum,
    "seed_net": objectives.seed_net,
}

_CELL_DEFAULTS: dict[str, Any] = {
    "n_coords": 16, "steps_per_decade": 4, "decades": 2.0, "max_step": 2.0, "n_boot": 200,
    "level": 0.95, "seed": 0, "workers": 1,
}


def build_objective(spec: Mapping[str, Any]) -> Objective:
    """An objective from a spec ``{"family": name, **its keyword arguments}``.

    Examples
    --------
    >>> build_objective({"family": "mlp", "widths": [2, 3, 1]}).n_params
    13
    """
    if "family" not in spec:
        raise ValueError(f"objective spec needs a 'family' key, got {dict(spec)!r}")
    family = spec["family"]
    if family not in FAMILIES:
        raise ValueError(f"objective family must be one of {sorted(FAMILIES)}, got {family!r}")
    kwargs = {k: v for k, v in spec.items() if k != "family"}
    return FAMILIES[family](**kwargs)  # type: ignore[operator]


def n_madds(obj: Objective) -> int | None:
    """Multiply-adds in one evaluation of a network objective's J (None for others).

    A layer of fan-in a and fan-out b costs ``a * b`` per sample; the length of
    the dot products and their number set the classical rounding bounds.
    """
    meta = obj.meta or {}
    if meta.get("family") == "mlp":
        widths, m = meta["widths"], meta["batch"]
    elif meta.get("family") == "logistic_regression":
        widths, m = (meta["n_features"], 1), meta["n_samples"]
    else:
        return None
    return int(m * sum(a * b for a, b in itertools.pairwise(widths)))


def optimum(steps: np.ndarray, errors: np.ndarray) -> tuple[float, float, bool]:
    """The minimising step and the least error of a measured curve E(h).

    The step is refined by the vertex of the parabola through the grid minimum and
    its neighbours in (log h, log E), kept between the neighbours; the error is
    the measured minimum (no interpolation). ``edge`` is True when the minimum is
    the first or last step (h* is then not bracketed by the grid).

    Examples
    --------
    >>> h = np.logspace(-6, 0, 25)
    >>> hs, e, edge = optimum(h, h**2 + 1e-9 / h)
    >>> abs(math.log10(hs / (0.5e-9) ** (1 / 3))) < 0.02, edge  # within 0.02 decades
    (True, False)
    """
    e = np.asarray(errors, dtype=np.float64)
    h = np.asarray(steps, dtype=np.float64)
    if not np.isfinite(e).any():
        return math.nan, math.inf, False
    k = int(np.nanargmin(np.where(np.isfinite(e), e, np.inf)))
    edge = k == 0 or k == h.size - 1
    if edge or e[k] <= 0:  # on the edge, or an exact FD value: nothing to refine
        return float(h[k]), float(e[k]), edge
    x, y = np.log(h[k - 1 : k + 2]), np.log(e[k - 1 : k + 2])
    if not np.all(np.isfinite(y)):
        return float(h[k]), float(e[k]), False
    den = (x[0] - x[1]) * (x[0] - x[2]) * (x[1] - x[2])
    a = (x[2] * (y[1] - y[0]) + x[1] * (y[0] - y[2]) + x[0] * (y[2] - y[1])) / den
    b = (x[2] ** 2 * (y[0] - y[1]) + x[1] ** 2 * (y[2] - y[0]) + x[0] ** 2 * (y[1] - y[2])) / den
    xv = -b / (2 * a) if a > 0 else x[1]
    return float(np.exp(np.clip(xv, x[0], x[2]))), float(e[k]), False


def _step_grid(centre: float, per_decade: int, decades: float, max_step: float, u: float) -> np.ndarray:
    """Log-spaced steps ``centre * 10**(k / per_decade)`` over +-decades, at most max_step.

    Without a model minimum (no truncation) the grid runs from ``u**(1/3) * 10**-decades``
    all the way up to max_step: the optimum then lies where |J| starts to grow.
    """
    if not (np.isfinite(centre) and centre > 0):
        lo = u ** (1 / 3) * 10.0**-decades
        n = max(5, math.ceil(per_decade * math.log10(max_step / lo)) + 1)
        return np.geomspace(lo, max_step, n)
    k = np.arange(-round(decades * per_decade), round(decades * per_decade) + 1)
    steps = centre * 10.0 ** (k / per_decade)
    steps = steps[steps <= max_step]
    if steps.size < 5:
        steps = max_step * 10.0 ** (-np.arange(2 * per_decade + 1)[::-1] / per_decade)
    return steps


def _model_curve(
    scheme: schs.Scheme, steps: np.ndarray, deriv: np.ndarray, sigma: float, n: int, gnorm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Model norms of truncation and rounding over the grid, for all N coordinates."""
    m_rms = float(np.sqrt(np.mean(deriv**2)))
    trunc = float(scheme.leading) * math.sqrt(n) * m_rms * steps**scheme.order
    rnd = math.sqrt(n) * sigma * scheme.weight_norm / steps
    return np.abs(trunc) / gnorm, rnd / gnorm


def measure_cell(params: Mapping[str, Any]) -> pd.DataFrame:
    """Measure h*, E* and their causes for one objective, format and scheme.

    Parameters
    ----------
    params : mapping
        ``objective`` (a spec for :func:`build_objective`), ``format``, ``scheme``
        (not the complex step: its error has no interior minimum) and optionally
        ``n_coords`` (coordinates sampled, default 16; all if N is smaller, the
        sample drawn with ``seed`` so every format and scheme sees the same ones),
        ``steps_per_decade`` (4) and ``decades`` (2: the grid spans the model's h*
        times 10**(+-2), widened once if the minimum falls on its edge),
        ``max_step`` (2.0), ``n_boot`` (200) and ``level`` (0.95) of the
        intervals, ``seed`` (0) and ``workers`` (1) of the exact evaluations.
        Any other keys (a study's labels) are copied into the row's first columns.

    Returns
    -------
    pandas.DataFrame
        One row: the objective's parameters, ``format``, ``u``, ``scheme``, ``q``
        (its order), ``n_params`` (also as ``N``), ``n_madds``, ``n_coords``, ``h_opt`` and
        ``e_opt`` with bootstrap intervals (``*_low``, ``*_high``), ``edge``, the
        model's ``h_model`` and ``e_model`` (from the measured noise and exact
        derivatives; ``inf`` and NaN when the model has no minimum, as for a
        quadratic's central difference), ``noise`` (sigma_J, exact), ``noise_u`` (in units of u|J|),
        ``noise_ecnoise``, ``value`` (|J|), ``grad_norm`` (exact, all
        coordinates), ``m_rms`` (rms of the (q+1)-th diagonal derivative over the
        sample), the measured ``trunc_at_opt``, ``step_at_opt``, ``round_at_opt``
        (relative norms at the grid minimum), ``n_flagged_at_opt`` and
        ``flags_at_opt``, ``n_steps``, ``ref_digits``.
    """
    p = {**_CELL_DEFAULTS, **params}
    for key in ("objective", "format", "scheme"):
        if key not in p:
            raise ValueError(f"a scaling cell needs {key!r}, got keys {sorted(params)}")
    obj = build_objective(p["objective"])
    fmt = fmts.get(p["format"])
    scheme = schs.get(p["scheme"])
    if scheme.complex_step:
        raise ValueError("scheme: the complex step has no interior optimum; use a difference scheme")
    n = obj.n_params
    rng = np.random.default_rng(int(p["seed"]))
    k = min(int(p["n_coords"]), n)
    coords = np.sort(rng.choice(n, size=k, replace=False))
    q = scheme.order
    # digits enough for fd_errors to reuse this reference down to steps 10**-5 u**(1/(q+1))
    h_lo = fmt.u ** (1 / (q + 1)) * 1e-5
    bits = 2 * fmt.p + 64 + (q + 2) * math.ceil(-math.log2(h_lo))
    ref = exact(obj, fmt, digits=math.ceil(bits / math.log2(10)), orders=(q + 1,), coords=coords.tolist())
    g_all = np.asarray([float(v) for v in ref.grad])
    gnorm = float(np.linalg.norm(g_all))
    deriv = np.asarray([float(v) for v in ref.derivatives[q + 1]])
    nz = noise_level(obj, fmt, seed=int(p["seed"]))
    sigma = nz.sigma
    m_rms = float(np.sqrt(np.mean(deriv**2)))

    # the model's optimum over a continuum, then the measured curve around it
    fine = np.logspace(-20, 1, 2101)
    mt, mr = _model_curve(scheme, fine, deriv, sigma, n, gnorm)
    h_model, e_model, no_min = optimum(fine, np.hypot(mt, mr)) if gnorm > 0 else (math.nan, math.inf, True)
    if no_min:  # no truncation (or no gradient): the model has no minimum
        h_model, e_model = math.inf, math.nan
    steps = _step_grid(h_model, int(p["steps_per_decade"]), float(p["decades"]), float(p["max_step"]),
                       fmt.u)
    def measure(hs: np.ndarray) -> dict[str, np.ndarray]:
        return _measure(obj, fmt, scheme, hs, coords, sigma, ref, n, gnorm, int(p["seed"]),
                        int(p["workers"]))

    curve = measure(steps)
    h_opt, e_opt, edge = optimum(steps, curve["e"])
    if edge and e_opt > 0 and h_opt < float(p["max_step"]) / 2:  # widen once, on the same lattice
        ks = np.arange(1, round(float(p["decades"]) * int(p["steps_per_decade"])) + 1)
        ratio = 10.0 ** (ks / int(p["steps_per_decade"]))
        extra = steps[0] / ratio if h_opt == steps[0] else steps[-1] * ratio
        extra = extra[extra <= float(p["max_step"])]
        if extra.size:
            curve = _merged(curve, measure(extra))
            steps = curve["h"]
            h_opt, e_opt, edge = optimum(steps, curve["e"])
    h_ci, e_ci = _bootstrap(steps, curve["e2"], n, gnorm, int(p["n_boot"]), float(p["level"]),
                            int(p["seed"]))
    at = int(np.argmin(np.where(np.isfinite(curve["e"]), curve["e"], np.inf)))
    spec = {k2: (_joined(v) if isinstance(v, (list, tuple)) else v)
            for k2, v in p["objective"].items()}
    known = {"objective", "format", "scheme", *_CELL_DEFAULTS}
    row = {
        **{k2: v for k2, v in params.items() if k2 not in known},
        **spec,
        "format": fmt.name, "u": fmt.u, "p": fmt.p, "scheme": scheme.name, "q": q,
        "n_params": n, "N": n, "n_madds": n_madds(obj), "n_coords": k,
        "h_opt": h_opt, "h_opt_low": h_ci[0], "h_opt_high": h_ci[1],
        "e_opt": e_opt, "e_opt_low": e_ci[0], "e_opt_high": e_ci[1], "edge": edge,
        "h_model": h_model, "e_model": e_model,
        "noise": sigma, "noise_u": nz.in_units(sigma), "noise_ecnoise": nz.sigma_ecnoise,
        "value": nz.value, "grad_norm": gnorm, "m_rms": m_rms,
        "trunc_at_opt": curve["trunc"][at], "step_at_opt": curve["step"][at],
        "round_at_opt": curve["round"][at],
        "n_flagged_at_opt": int(curve["n_flagged"][at]), "flags_at_opt": curve["flags"][at],
        "n_steps": int(steps.size), "ref_digits": float(ref.digits_verified),
    }
    return pd.DataFrame([row])


def annotate(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells with ``usable`` (a bracketed, finite optimum: fit it) and ``note`` (why not).

    Works on the rows of :func:`measure_cell` and on failed rows of a sweep (those
    with ``status`` other than "ok").
    """
    out = cells.copy()
    for col in ("h_opt", "e_opt", "edge", "flags_at_opt"):  # all cells failed: no measurements
        if col not in out:
            out[col] = np.nan
    status = out["status"] if "status" in out else pd.Series("ok", index=out.index)
    finite = np.isfinite(out["h_opt"].astype(float)) & np.isfinite(out["e_opt"].astype(float))
    positive = out["e_opt"].astype(float) > 0
    edge = out["edge"].fillna(False).astype(bool)
    notes = np.select(
        [status != "ok", ~finite, ~positive, edge],
        ["the cell failed: see its error",
         "no finite FD gradient at any step (flags: " + out["flags_at_opt"].astype(str) + ")",
         "the FD gradient is exact at the best step",
         "the minimum lies on the step grid's edge"],
        default="",
    )
    out["note"] = notes
    out["usable"] = notes == ""
    return out


def _joined(v: Any) -> str:
    """A list parameter as a compact string column (``"8-16-1"`` for widths)."""
    return "-".join(str(x) for x in v)


def _merged(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Two measured curves as one, ordered by step (the step axis is the last)."""
    both = {key: np.concatenate([a[key], b[key]], axis=-1) for key in a}
    order = np.argsort(both["h"])
    return {key: v[..., order] for key, v in both.items()}


def _measure(
    obj: Objective, fmt: fmts.Format, scheme: schs.Scheme, steps: np.ndarray, coords: np.ndarray,
    sigma: float, ref: ExactResult, n: int, gnorm: float, seed: int, workers: int,
) -> dict[str, np.ndarray]:
    """E(h) and its parts over the grid from the exact decomposition of the sampled coordinates."""
    df = fd_errors(obj, formats=[fmt], schemes=[scheme], steps=steps, coords=coords,
                   noise={fmt.name: sigma}, references={fmt.name: ref}, seed=seed, workers=workers)
    df = df.sort_values(["h", "coord"])
    hs = np.unique(df["h"].to_numpy())
    shape = (hs.size, coords.size)

    def part(col: str) -> np.ndarray:
        return df[col].to_numpy(dtype=np.float64).reshape(shape)

    scale = math.sqrt(n / coords.size) / gnorm if gnorm > 0 else math.inf
    e2 = part("err_total") ** 2
    flags = df["flag"].to_numpy().reshape(shape)

    def norm(col: str) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.sqrt(np.sum(part(col) ** 2, axis=1)) * scale

    return {
        "h": hs, "e": norm("err_total"), "e2": e2.T, "trunc": norm("err_trunc"),
        "step": norm("err_step"), "round": norm("err_round"),
        "n_flagged": (flags != "").sum(axis=1),
        "flags": np.asarray([",".join(sorted(set(f) - {""})) for f in flags], dtype=object),
    }


def _bootstrap(
    steps: np.ndarray, e2: np.ndarray, n: int, gnorm: float, n_boot: int, level: float, seed: int
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile intervals of h* and E* over resamples of the sampled coordinates."""
    k = e2.shape[0]
    if n_boot < 1 or k < 2:
        return (math.nan, math.nan), (math.nan, math.nan)
    rng = np.random.default_rng(seed + 1)
    hs, es = [], []
    for _ in range(n_boot):
        idx = rng.integers(0, k, size=k)
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.sqrt(n * np.mean(e2[idx], axis=0)) / gnorm
        h, err, _ = optimum(steps, e)
        hs.append(h)
        es.append(err)
    a = (1 - level) / 2

    def interval(v: list[float]) -> tuple[float, float]:
        x = np.asarray(v)
        if np.isinf(x).any():  # some resamples have no finite curve: the interval is unbounded
            x = np.where(np.isnan(x), np.inf, x)
        x = x[~np.isnan(x)]
        if not x.size:
            return math.nan, math.nan
        lo, hi = np.quantile(np.sort(x), [a, 1 - a], method="inverted_cdf")
        return float(lo), float(hi)

    return interval(hs), interval(es)


def implied_exponent(target: str, variable: str, q: int, noise: float, deriv: float, grad: float
                     ) -> float:
    """Exponent of h* or E* in a variable implied by the exponents of its causes.

    Parameters
    ----------
    target : {"h_opt", "e_opt"}
    variable : str
        ``"N"`` adds the 1/2 of ``sqrt(N)`` to E*'s exponent (the norms of N
        coordinates); other variables (u, sigma) do not.
    q : int
        Order of the scheme (1 forward, 2 central).
    noise, deriv, grad : float
        Exponents in the variable of sigma_J, of the rms (q+1)-th diagonal
        derivative and of ||g||.

    Examples
    --------
    >>> implied_exponent("h_opt", "u", 2, 1.0, 0.0, 0.0), implied_exponent("e_opt", "u", 1, 1.0, 0, 0)
    (0.3333333333333333, 0.5)
    """
    if target == "h_opt":
        return (noise - deriv) / (q + 1)
    if target == "e_opt":
        return (0.5 if variable == "N" else 0.0) + deriv / (q + 1) + q * noise / (q + 1) - grad
    raise ValueError(f"target must be 'h_opt' or 'e_opt', got {target!r}")


def implied_from_fits(fits: pd.DataFrame) -> pd.Series:
    """For the h_opt and e_opt rows of a :func:`gradlab.sweeps.fits.fit_table` that also fitted the
    causes (targets ``noise``, ``m_rms``, ``grad_norm``), the exponent the causes imply.

    Rows are matched on every column that identifies a fit (``by`` columns, ``fit``,
    ``variable``, ``at_*``); the scheme's order comes from its ``scheme`` column. Other
    rows, and rows whose causes were not fitted, get NaN.
    """
    ident = [c for c in fits.columns if c in ("format", "scheme", "fit", "variable", "label")
             or c.startswith("at_")]
    causes = {name: fits[fits.target == col].set_index(ident)["exponent"] for name, col in CAUSES.items()}
    out = []
    for _, r in fits.iterrows():
        key = tuple(r[c] for c in ident)
        if r["target"] not in ("h_opt", "e_opt") or not all(key in c.index for c in causes.values()):
            out.append(math.nan)
            continue
        b = {name: float(c.loc[key]) for name, c in causes.items()}
        out.append(implied_exponent(str(r["target"]), str(r["variable"]), schs.get(r["scheme"]).order,
                                    b["noise"], b["deriv"], b["grad"]))
    return pd.Series(out, index=fits.index, dtype=float)
