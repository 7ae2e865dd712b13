"""Power-law (scaling-law) fits: bootstrap CIs, curvature checks and held-out prediction.

A power law ``y = C prod_k x_k^b_k`` is fitted as the linear model
``log y = sum_k b_k log x_k + d`` by least squares (natural logs). The exponents get
bootstrap percentile CIs (rows resampled with replacement); for each variable the model
is refitted with an extra ``(log x_k - mean)^2`` term, whose coefficient and CI say
whether the law bends over the measured range. :func:`holdout` asks how well a law
fitted on the other configurations predicts a held-out one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = ["FitError", "PowerLaw", "factor", "fit_power_law", "fit_table", "holdout", "median_factor"]

FRAME_COLUMNS = [
    "target", "variable", "exponent", "ci_low", "ci_high", "intercept", "level", "n", "n_dropped",
    "r2", "resid_sd", "max_resid", "curvature", "curvature_low", "curvature_high", "bends",
]
_DEGENERATE = 1e-12  # a resample whose Gram matrix has eigenvalue ratio below this is rank deficient
_ROUNDOFF = 1e-9  # curvature within this (relative to the size of log y) is roundoff, not a bend
_CHUNK = 4_000_000  # bootstrap draws are processed in chunks of about this many counts


class FitError(ValueError):
    """The data cannot determine the fit (too few rows, a constant or collinear variable, ...)."""


@dataclass(frozen=True)
class PowerLaw:
    """A fitted power law ``target = exp(intercept) * prod_k variable_k ** exponents[k]``.

    ``ci`` and ``curvature_ci`` are bootstrap percentile intervals at ``level`` (NaN when
    ``n_boot=0``). ``resid_sd`` (the regression standard error, ``n - k - 1`` degrees of
    freedom) and ``max_resid`` are in decades (log10 units). ``curvature[v]`` is the
    coefficient of ``(log v)^2`` (natural logs) when that term is added to the model: NaN
    when it cannot be estimated (fewer than 3 distinct values of ``v``). ``n_dropped``
    rows had a non-finite or non-positive target; ``n_degenerate`` bootstrap resamples
    were rank deficient and skipped.
    """

    target: str
    variables: tuple[str, ...]
    exponents: dict[str, float]
    ci: dict[str, tuple[float, float]]
    intercept: float
    level: float
    n: int
    r2: float
    resid_sd: float
    max_resid: float
    curvature: dict[str, float]
    curvature_ci: dict[str, tuple[float, float]]
    n_dropped: int = 0
    n_degenerate: int = 0

    def bends(self, variable: str) -> bool:
        """Whether the curvature CI of ``variable`` excludes 0 (beyond roundoff)."""
        lo, hi = self.curvature_ci[variable]
        return bool(lo > 0 or hi < 0)

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """The target predicted at the rows of ``df`` (which must hold the variables)."""
        logx = _log_variables(df, self.variables, "predict")
        b = np.array([self.exponents[v] for v in self.variables])
        return np.asarray(np.exp(self.intercept + logx @ b))

    def to_frame(self) -> pd.DataFrame:
        """One row per variable, columns :data:`FRAME_COLUMNS`."""
        rows = [{
            "target": self.target, "variable": v, "exponent": self.exponents[v],
            "ci_low": self.ci[v][0], "ci_high": self.ci[v][1], "intercept": self.intercept,
            "level": self.level, "n": self.n, "n_dropped": self.n_dropped, "r2": self.r2,
            "resid_sd": self.resid_sd, "max_resid": self.max_resid, "curvature": self.curvature[v],
            "curvature_low": self.curvature_ci[v][0], "curvature_high": self.curvature_ci[v][1],
            "bends": self.bends(v),
        } for v in self.variables]
        return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def _check_columns(df: pd.DataFrame, cols: Sequence[str], what: str, where: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{where}: {what} column(s) {missing} not in df (columns: {list(df.columns)})")


def _as_float(df: pd.DataFrame, col: str, where: str) -> np.ndarray:
    try:
        return np.asarray(df[col].to_numpy(dtype=float, na_value=np.nan))
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where}: column {col!r} is not numeric ({df[col].dtype})") from e


def _log_variables(df: pd.DataFrame, variables: Sequence[str], where: str) -> np.ndarray:
    """log of the variables, shape (rows, k); non-positive or non-finite values raise."""
    _check_columns(df, variables, "variable", where)
    out = np.empty((len(df), len(variables)))
    for j, v in enumerate(variables):
        x = _as_float(df, v, where)
        bad = ~(np.isfinite(x) & (x > 0))
        if bad.any():
            first = df.index[np.flatnonzero(bad)[0]]
            raise ValueError(f"{where}: variable {v!r} has {int(bad.sum())} non-positive or non-finite "
                             f"row(s) (first at index {first!r}, value {x[bad][0]!r})")
        out[:, j] = np.log(x)
    return out


def _log_target(df: pd.DataFrame, target: str, where: str) -> np.ndarray:
    """log of the target with NaN where it is non-finite or non-positive (those rows are dropped)."""
    _check_columns(df, [target], "target", where)
    y = _as_float(df, target, where)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(y) & (y > 0), np.log(np.where(y > 0, y, 1.0)), np.nan)


def _check_names(target: str, variables: Sequence[str], where: str) -> list[str]:
    if isinstance(variables, str):
        variables = [variables]
    variables = list(variables)
    if not variables:
        raise ValueError(f"{where}: variables is empty")
    if len(set(variables)) < len(variables) or target in variables:
        raise ValueError(f"{where}: variables {variables} repeat a name or contain the target {target!r}")
    return variables


def _ols(logx: np.ndarray, logy: np.ndarray, variables: Sequence[str]) -> tuple[np.ndarray, float]:
    """Exponents and intercept of the least-squares fit; FitError when they are not determined."""
    n, k = logx.shape
    if n < k + 3:
        raise FitError(f"too few rows: {n} usable, a fit on {k} variable(s) needs at least {k + 3}")
    for j, v in enumerate(variables):
        if np.all(logx[:, j] == logx[0, j]):
            raise FitError(f"variable {v!r} is constant ({np.exp(logx[0, j]):g}): "
                           "its exponent is undetermined")
    mean, sd = logx.mean(axis=0), logx.std(axis=0)
    X = np.column_stack([np.ones(n), (logx - mean) / sd])
    beta, _, rank, _ = np.linalg.lstsq(X, logy, rcond=None)
    if rank < k + 1:
        raise FitError(f"variables {list(variables)} are collinear in log space: exponents undetermined")
    b = beta[1:] / sd
    return b, float(beta[0] - b @ mean)


def _boot(designs: list[np.ndarray], y: np.ndarray, n_boot: int, seed: int) -> list[tuple[np.ndarray, int]]:
    """Bootstrap coefficients of each design (same row resamples for all): (coefs, n_degenerate)."""
    n = len(y)
    rng = np.random.default_rng(seed)
    grams = [(X[:, :, None] * X[:, None, :]).reshape(n, -1) for X in designs]
    xys = [X * y[:, None] for X in designs]
    coefs: list[list[np.ndarray]] = [[] for _ in designs]
    bad = [0] * len(designs)
    chunk = max(1, _CHUNK // n)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(m, n)) + n * np.arange(m)[:, None]
        counts = np.bincount(idx.ravel(), minlength=m * n).reshape(m, n).astype(float)
        for i, X in enumerate(designs):
            p = X.shape[1]
            gram = (counts @ grams[i]).reshape(m, p, p)  # X' W X, W = resample counts
            w, vec = np.linalg.eigh(gram)
            ok = w[:, 0] > _DEGENERATE * w[:, -1]
            rhs = np.einsum("bpq,bp->bq", vec[ok], counts[ok] @ xys[i])  # V' X' W y
            coefs[i].append(np.einsum("bpq,bq->bp", vec[ok], rhs / w[ok]))
            bad[i] += int((~ok).sum())
    return [(np.concatenate(c), nb) for c, nb in zip(coefs, bad, strict=True)]


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def fit_power_law(df: pd.DataFrame, target: str, variables: Sequence[str], *, n_boot: int = 2000,
                  level: float = 0.95, seed: int = 0) -> PowerLaw:
    """Fit ``target = C prod_k variables_k ** b_k`` by least squares on logs.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per measurement; the target and the variables are columns.
    target : str
        The column to explain. Rows where it is NaN, infinite or non-positive (a failed
        cell) are dropped and counted in ``n_dropped``.
    variables : sequence of str
        The explanatory columns; each must be finite and positive (else ValueError).
    n_boot : int
        Bootstrap resamples of the rows for the CIs (0: no CIs, NaN). Rank-deficient
        resamples are skipped; if more than half of them are, FitError is raised.
    level : float
        Confidence level of the percentile intervals.
    seed : int
        Seed of :func:`numpy.random.default_rng` drawing the resamples.

    Returns
    -------
    PowerLaw

    Raises
    ------
    FitError
        (a ValueError) when the data cannot determine the exponents: fewer than
        ``len(variables) + 3`` usable rows, a constant variable, collinear variables.

    Examples
    --------
    >>> u = np.logspace(-16, -3, 8)
    >>> law = fit_power_law(pd.DataFrame({"u": u, "h": 2 * u ** (1 / 3)}), "h", ["u"], n_boot=200)
    >>> round(law.exponents["u"], 12), round(float(np.exp(law.intercept)), 12), law.bends("u")
    (0.333333333333, 2.0, False)
    """
    where = "fit_power_law"
    variables = _check_names(target, variables, where)
    if not 0 < level < 1:
        raise ValueError(f"{where}: level must be in (0, 1), got {level}")
    if n_boot < 0:
        raise ValueError(f"{where}: n_boot must be >= 0, got {n_boot}")
    logx, logy = _log_variables(df, variables, where), _log_target(df, target, where)
    keep = np.isfinite(logy)
    logx, logy = logx[keep], logy[keep]
    n, k = logx.shape
    try:
        b, d = _ols(logx, logy, variables)
    except FitError as e:
        raise FitError(f"{where}: target {target!r}: {e}") from None
    resid = logy - d - logx @ b
    sst = float(np.sum((logy - logy.mean()) ** 2))
    ssr = float(np.sum(resid**2))
    r2 = 1.0 - ssr / sst if sst > 0 else (1.0 if ssr == 0 else np.nan)

    mean, sd = logx.mean(axis=0), logx.std(axis=0)
    z = (logx - mean) / sd
    main = np.column_stack([np.ones(n), z])
    designs = [main] + [np.column_stack([main, z[:, j] ** 2]) for j in range(k)]
    if n_boot:
        boots = _boot(designs, logy, n_boot, seed)
    else:
        boots = [(np.empty((0, X.shape[1])), 0) for X in designs]
    coefs, n_bad = boots[0]
    if n_bad > n_boot / 2:
        raise FitError(f"{where}: target {target!r}: {n_bad} of {n_boot} bootstrap resamples are rank "
                       "deficient: the data barely determine the exponents")
    nan2 = (np.nan, np.nan)
    ci = {v: _interval(coefs[:, j + 1] / sd[j], level) if n_boot else nan2 for j, v in enumerate(variables)}

    roundoff = _ROUNDOFF * max(1.0, float(np.max(np.abs(logy))))
    curvature: dict[str, float] = {}
    curvature_ci: dict[str, tuple[float, float]] = {}
    for j, v in enumerate(variables):
        X = designs[j + 1]
        gamma, _, rank, _ = np.linalg.lstsq(X, logy, rcond=None)
        qcoefs, q_bad = boots[j + 1]
        if rank < X.shape[1] or len(np.unique(logx[:, j])) < 3:
            curvature[v], curvature_ci[v] = np.nan, nan2
            continue
        curvature[v] = float(gamma[-1] / sd[j] ** 2)
        if not n_boot or q_bad > n_boot / 2:
            curvature_ci[v] = nan2
            continue
        g = qcoefs[:, -1]
        g = np.where(np.abs(g) <= roundoff, 0.0, g)  # roundoff is not curvature
        lo, hi = _interval(g, level)
        curvature_ci[v] = (float(lo / sd[j] ** 2), float(hi / sd[j] ** 2))

    return PowerLaw(
        target=target, variables=tuple(variables), exponents=dict(zip(variables, map(float, b), strict=True)),
        ci=ci, intercept=d, level=level, n=n, r2=float(r2),
        resid_sd=float(np.sqrt(ssr / (n - k - 1)) / np.log(10)),
        max_resid=float(np.max(np.abs(resid)) / np.log(10)), curvature=curvature,
        curvature_ci=curvature_ci, n_dropped=int((~keep).sum()), n_degenerate=n_bad,
    )


def _groups(df: pd.DataFrame, by: Sequence[str]) -> list[tuple[tuple[object, ...], pd.DataFrame]]:
    if not by:
        return [((), df)]
    return [(key if isinstance(key, tuple) else (key,), sub)
            for key, sub in df.groupby(list(by), sort=True, dropna=False)]


def _failed(target: str, variables: Sequence[str], reason: str) -> pd.DataFrame:
    out = pd.DataFrame({c: np.nan for c in FRAME_COLUMNS}, index=range(len(variables)))
    out["target"], out["variable"], out["bends"], out["status"] = target, list(variables), False, reason
    return out


def fit_table(df: pd.DataFrame, targets: Sequence[str], variables: Sequence[str], by: Sequence[str] = (), *,
              joint: bool = True, single: bool = True, n_boot: int = 2000, level: float = 0.95,
              seed: int = 0) -> pd.DataFrame:
    """Joint and single-variable power-law fits of each target within each ``by`` group.

    ``fit="joint"`` rows fit all ``variables`` at once. ``fit="single"`` rows fit one
    variable within a sub-group where the other variables are constant (their values
    are in the ``at_<variable>`` columns); only sub-groups with at least 3 distinct
    values of the variable are fitted. A fit that cannot be done (too few rows, a
    constant variable, no suitable sub-group) is a row with NaN exponents and the
    reason in ``status`` ("ok" otherwise): flagged, never silently missing.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``fit``, the ``at_`` columns (with ``single``), then
        :data:`FRAME_COLUMNS` and ``status``; one row per (group, target, fit, variable).

    Examples
    --------
    >>> g = pd.MultiIndex.from_product([np.logspace(-16, -3, 5), [10, 100, 1000]], names=["u", "N"])
    >>> d = g.to_frame(index=False).assign(E=lambda t: t.u ** 0.5 * t.N ** 0.25)
    >>> t = fit_table(d, ["E"], ["u", "N"], n_boot=100)
    >>> t[["fit", "at_N", "variable", "exponent", "status"]].round(6).head(4)
          fit   at_N variable  exponent status
    0   joint    NaN        u      0.50     ok
    1   joint    NaN        N      0.25     ok
    2  single   10.0        u      0.50     ok
    3  single  100.0        u      0.50     ok
    >>> print(t.status.iloc[-1])  # 3 values of N at each u: too few for a fit with CIs
    too few rows: 3 usable, a fit on 1 variable(s) needs at least 4
    """
    where = "fit_table"
    targets = [targets] if isinstance(targets, str) else list(targets)
    variables = _check_names("", variables, where)
    _check_columns(df, [*targets, *by], "target/by", where)
    _log_variables(df, variables, where)  # non-positive variables are an error, not a failed fit
    at = [f"at_{v}" for v in variables] if single else []
    frames: list[pd.DataFrame] = []

    def add(rows: pd.DataFrame, key: tuple[object, ...], fit: str, at_values: dict[str, object]) -> None:
        head = {**dict(zip(by, key, strict=True)), "fit": fit, **{a: at_values.get(a, np.nan) for a in at}}
        frames.append(pd.concat([pd.DataFrame(head, index=rows.index), rows], axis=1))

    def one(sub: pd.DataFrame, target: str, vs: list[str]) -> pd.DataFrame:
        try:
            law = fit_power_law(sub, target, vs, n_boot=n_boot, level=level, seed=seed)
            return law.to_frame().assign(status="ok")
        except FitError as e:
            return _failed(target, vs, str(e).split(": ", 2)[-1])

    for key, sub in _groups(df, by):
        for target in targets:
            if joint:
                add(one(sub, target, variables), key, "joint", {})
            if not single or len(variables) < 2:
                continue
            for v in variables:
                others = [w for w in variables if w != v]
                fitted = 0
                for at_key, cell in _groups(sub, others):
                    if cell[v].nunique() >= 3:
                        add(one(cell, target, [v]), key, "single",
                            {f"at_{w}": x for w, x in zip(others, at_key, strict=True)})
                        fitted += 1
                if not fitted:
                    add(_failed(target, [v], f"no sub-group with >= 3 distinct values of {v!r} at fixed "
                                f"{others}"), key, "single", {})
    cols = [*by, "fit", *at, *FRAME_COLUMNS, "status"]
    if not frames:
        return pd.DataFrame(columns=cols)
    out = pd.concat(frames, ignore_index=True)[cols]
    return out.astype({"bends": bool, "n": "Int64", "n_dropped": "Int64"})


def holdout(df: pd.DataFrame, target: str, variables: Sequence[str], groups: str | Sequence[str], *,
            by: Sequence[str] = ()) -> pd.DataFrame:
    """Leave-one-configuration-out prediction of ``target`` by a joint power law.

    Within each ``by`` group, for each distinct value of the ``groups`` column(s), the
    power law is fitted (least squares, no bootstrap) on the group's other rows with a
    usable target and predicts the held-out rows.

    Returns
    -------
    pandas.DataFrame
        One row per row of ``df``, in order: the ``by`` and ``groups`` columns, the
        variables, ``measured``, ``predicted``, ``factor = exp(|log(predicted /
        measured)|)`` (>= 1; NaN when the measurement failed) and ``status`` ("ok" or
        why the training rows could not be fitted, then ``predicted`` is NaN).

    Examples
    --------
    >>> d = pd.DataFrame({"u": np.logspace(-16, -3, 6)}).assign(h=lambda t: t.u ** 0.25)
    >>> float(holdout(d, "h", ["u"], "u").factor.max()) < 1 + 1e-9
    True
    """
    where = "holdout"
    variables = _check_names(target, variables, where)
    groups = [groups] if isinstance(groups, str) else list(groups)
    if not groups:
        raise ValueError(f"{where}: groups is empty")
    _check_columns(df, [*groups, *by], "groups/by", where)
    df = df.reset_index(drop=True)
    logx, logy = _log_variables(df, variables, where), _log_target(df, target, where)
    pred = np.full(len(df), np.nan)
    status = np.full(len(df), "ok", dtype=object)
    by_code = df.groupby(list(by), sort=True, dropna=False).ngroup().to_numpy() if by else np.zeros(len(df))
    g_code = df.groupby(groups, sort=True, dropna=False).ngroup().to_numpy()
    for b in np.unique(by_code):
        in_b = by_code == b
        for g in np.unique(g_code[in_b]):
            held = in_b & (g_code == g)
            train = in_b & ~held & np.isfinite(logy)
            try:
                slope, icpt = _ols(logx[train], logy[train], variables)
            except FitError as e:
                status[held] = str(e)
                continue
            pred[held] = np.exp(icpt + logx[held] @ slope)
    cols = list(dict.fromkeys([*by, *groups, *variables]))
    out = df[cols].copy()
    out["measured"] = df[target].to_numpy(dtype=float, na_value=np.nan)
    out["predicted"] = pred
    out["factor"] = factor(pred, np.exp(logy))  # NaN where the target is not usable
    out["status"] = status
    return out


def factor(predicted: ArrayLike, measured: ArrayLike) -> np.ndarray:
    """How far off a prediction is, either way: ``exp(|log(predicted / measured)|) >= 1``.

    Examples
    --------
    >>> factor([2.0, 0.5], [1.0, 1.0]).tolist()
    [2.0, 2.0]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(np.abs(np.log(np.asarray(predicted, float)) - np.log(np.asarray(measured, float))))


def median_factor(holdout_df: pd.DataFrame) -> float:
    """The median prediction factor of a :func:`holdout` table (NaN factors ignored)."""
    f = holdout_df["factor"].to_numpy(dtype=float, na_value=np.nan)
    f = f[np.isfinite(f)]
    return float(np.median(f)) if f.size else float("nan")
