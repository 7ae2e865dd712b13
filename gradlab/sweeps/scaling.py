"""Scaling laws of the optimal step h* and the best error E*: one measured cell, and
the exponents the error model implies.

A cell is one objective (built from a JSON-able spec), one format and one scheme.
:func:`measure_cell` finds the step that minimises the measured relative error
``E(h) = ||g_fd(h) - g|| / ||g||`` against the exact gradient
(:func:`gradlab.analysis.errors.rel_g`), on a step grid centred
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
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from gradlab import objectives
from gradlab.analysis.engine import fd_errors
from gradlab.analysis.errors import rel_g
from gradlab.analysis.exact import ExactResult, bits_to_digits, exact, reference_bits
from gradlab.analysis.noise import noise_level
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic.objective import Objective

__all__ = [
    "CAUSES", "FAMILIES", "CellSpec", "NoiseLevel", "annotate", "build_objective", "implied_exponent",
    "implied_from_fits", "measure_cell", "measure_noise", "n_madds", "noise_cells", "noise_key", "optimum",
    "with_noise",
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


def _model_curve(scheme: schs.Scheme, steps: np.ndarray, m_rms: float, sigma: float, n: int, gnorm: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Model norms of truncation and rounding over the grid, for all N coordinates, relative to ||g||."""
    trunc = float(scheme.leading) * math.sqrt(n) * m_rms * steps**scheme.order
    rnd = math.sqrt(n) * sigma * scheme.weight_norm / steps
    return rel_g(np.abs(trunc), gnorm), rel_g(rnd, gnorm)


_INT_KEYS = {"n_coords": 1, "steps_per_decade": 1, "n_boot": 0, "seed": 0, "workers": 1}  # key: least value


@dataclass(frozen=True)
class CellSpec:
    """One scaling cell, validated: what :func:`measure_cell` measures and how.

    Attributes
    ----------
    objective : dict
        A spec for :func:`build_objective` (``{"family": name, **kwargs}``).
    format : Format
    scheme : Scheme
        A difference scheme (not the complex step: its error has no interior minimum).
    n_coords : int
        Coordinates sampled (all if N is smaller), drawn with ``seed`` so that every
        format and scheme sees the same ones.
    steps_per_decade : int
        Density of the step grid.
    decades : float
        The grid spans the model's h* times 10**(+-decades), widened once by as much
        if the minimum falls on its edge.
    max_step : float
        The largest step measured.
    n_boot : int
        Bootstrap resamples of the sampled coordinates (0: no intervals).
    level : float
        Confidence level of the intervals, in (0, 1).
    seed : int
        Seed of the coordinate sample, the noise estimate and the bootstrap.
    workers : int
        Processes of the exact evaluations.
    j_noise : NoiseLevel, optional
        J's noise level, measured once for the cells of every scheme (:func:`measure_noise`);
        measured by the cell when absent. (Its parameter is ``j_noise``: ``noise`` is the
        cell's output column.)
    labels : dict
        Any other parameters (a study's labels), copied into the row's first columns.
    """

    objective: dict[str, Any]
    format: fmts.Format
    scheme: schs.Scheme
    n_coords: int = 16
    steps_per_decade: int = 4
    decades: float = 2.0
    max_step: float = 2.0
    n_boot: int = 200
    level: float = 0.95
    seed: int = 0
    workers: int = 1
    j_noise: NoiseLevel | None = None
    labels: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> CellSpec:
        """The spec of a sweep cell's JSON-able parameters.

        Raises
        ------
        ValueError
            For a missing or bad parameter; the message names its key.

        Examples
        --------
        >>> spec = CellSpec.from_params({"objective": {"family": "quadratic", "n": 4},
        ...                              "format": "float32", "scheme": "central", "label": "q"})
        >>> spec.format.name, spec.n_coords, spec.labels
        ('float32', 16, {'label': 'q'})
        """
        for key in ("objective", "format", "scheme"):
            if key not in params:
                raise ValueError(f"a scaling cell needs {key!r}, got keys {sorted(params)}")
        objective = params["objective"]
        if not isinstance(objective, Mapping) or objective.get("family") not in FAMILIES:
            raise ValueError(f"'objective' must be a spec {{'family': one of {sorted(FAMILIES)}, ...}}, "
                             f"got {objective!r}")
        try:
            fmt = fmts.get(params["format"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"'format': {e}") from None
        try:
            scheme = schs.get(params["scheme"])
        except (TypeError, ValueError) as e:
            raise ValueError(f"'scheme': {e}") from None
        if scheme.complex_step:
            raise ValueError("'scheme': the complex step has no interior optimum; use a difference scheme")
        known = {f.name for f in fields(cls)} - {"labels"}
        numeric = known - {"objective", "format", "scheme", "j_noise"}
        values: dict[str, Any] = {key: _checked(key, params[key]) for key in numeric if key in params}
        noise = NoiseLevel.from_params(params["j_noise"], fmt) if "j_noise" in params else None
        return cls(objective=dict(objective), format=fmt, scheme=scheme, **values, j_noise=noise,
                   labels={k: v for k, v in params.items() if k not in known})


def _checked(key: str, value: Any) -> int | float:
    """A numeric cell parameter, converted as the cell uses it, or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{key!r} must be a number, got {value!r}")
    x = float(value)
    if key in _INT_KEYS:
        if not (math.isfinite(x) and x == int(x) and x >= _INT_KEYS[key]):
            raise ValueError(f"{key!r} must be an integer >= {_INT_KEYS[key]}, got {value!r}")
        return int(value)
    if key == "level" and not 0 < x < 1:
        raise ValueError(f"'level' must lie in (0, 1), got {value!r}")
    if not 0 < x < math.inf:
        raise ValueError(f"{key!r} must be positive and finite, got {value!r}")
    return x


@dataclass(frozen=True)
class NoiseLevel:
    """J's noise level in one format, as a cell uses it: measured by :func:`measure_noise` once
    per (objective, format, seed) and shared by the cells of every scheme.

    Attributes
    ----------
    sigma : float
        The direct estimate (the exact J's deviations), the model's noise.
    sigma_ecnoise : float
        ECnoise's estimate (NaN when no line detected noise).
    value : float
        |J| at theta.
    u : float
        The format's unit roundoff.
    """

    sigma: float
    sigma_ecnoise: float
    value: float
    u: float

    def in_units(self, sigma: float) -> float:
        """A noise level in units of u|J|."""
        scale = self.u * self.value
        return sigma / scale if scale > 0 else math.inf

    @classmethod
    def from_params(cls, params: Any, fmt: fmts.Format) -> NoiseLevel:
        """The ``j_noise`` parameter of a cell: ``{"sigma", "sigma_ecnoise", "value"}``."""
        if not isinstance(params, Mapping) or not {"sigma", "sigma_ecnoise", "value"} <= params.keys():
            raise ValueError(f"'j_noise' must be a dict with sigma, sigma_ecnoise and value, got {params!r}")
        sigma, ec, value = (params[k] for k in ("sigma", "sigma_ecnoise", "value"))
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (sigma, ec, value)):
            raise ValueError(f"'j_noise' values must be numbers, got {params!r}")
        # sigma is infinite where J is not finite along the noise lines (such a cell is kept
        # and flagged, as when it measures its noise itself)
        if not (sigma >= 0 and math.isfinite(value) and value >= 0):
            raise ValueError(f"'j_noise': sigma must be >= 0 and value finite and >= 0, got {params!r}")
        return cls(float(sigma), float(ec), float(value), fmt.u)


def measure_noise(params: Mapping[str, Any]) -> pd.DataFrame:
    """J's noise level for one objective and format (``{"objective", "format", "seed"}``): the
    first stage of a scaling sweep, shared by the cells of every scheme (:func:`with_noise`).

    Returns
    -------
    pandas.DataFrame
        One row: ``noise_key`` (see :func:`noise_key`), ``sigma``, ``sigma_ecnoise``, ``value``.
    """
    fmt = fmts.get(params["format"])
    seed = int(params.get("seed", 0))
    nz = noise_level(build_objective(params["objective"]), fmt, seed=seed)
    return pd.DataFrame([{"noise_key": noise_key(params), "sigma": nz.sigma,
                          "sigma_ecnoise": nz.sigma_ecnoise, "value": nz.value}])


def noise_key(params: Mapping[str, Any]) -> str:
    """What a cell's noise depends on: its objective, format and seed, as canonical JSON."""
    return json.dumps({"objective": params["objective"], "format": params["format"],
                       "seed": int(params.get("seed", 0))}, sort_keys=True)


def noise_cells(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The distinct (objective, format, seed) of a grid, as :func:`measure_noise`'s cells."""
    out: dict[str, dict[str, Any]] = {}
    for c in cells:
        out.setdefault(noise_key(c), {"objective": c["objective"], "format": c["format"],
                                      "seed": int(c.get("seed", 0))})
    return list(out.values())


def with_noise(cells: Sequence[Mapping[str, Any]], noise: pd.DataFrame) -> list[dict[str, Any]]:
    """The cells with their measured noise as the ``j_noise`` parameter; a cell whose noise
    measurement failed keeps none (it measures, and fails, itself)."""
    ok = noise[noise["status"] == "ok"] if "status" in noise else noise
    by_key = {str(k): {"sigma": float(a), "sigma_ecnoise": float(b), "value": float(c)}
              for k, a, b, c in zip(ok["noise_key"], ok["sigma"], ok["sigma_ecnoise"], ok["value"],
                                    strict=True)}
    return [{**c, "j_noise": by_key[k]} if (k := noise_key(c)) in by_key else dict(c) for c in cells]


@dataclass(frozen=True, eq=False)
class _Causes:
    """What a cell measures once, before any step: the sample, the exact reference and the
    causes of h* and E* (the noise of J, the truncating derivative, ||g||)."""

    obj: Objective
    coords: np.ndarray
    ref: ExactResult
    noise: NoiseLevel
    grad_norm: float
    deriv: np.ndarray  # the (q+1)-th diagonal derivatives at the sampled coordinates

    @property
    def m_rms(self) -> float:
        """The rms of :attr:`deriv`."""
        return float(np.sqrt(np.mean(self.deriv**2)))


def _causes(spec: CellSpec) -> _Causes:
    """The objective, its coordinate sample, the exact reference, the noise level and ||g||."""
    obj = build_objective(spec.objective)
    fmt, q, n = spec.format, spec.scheme.order, obj.n_params
    rng = np.random.default_rng(spec.seed)
    coords = np.sort(rng.choice(n, size=min(spec.n_coords, n), replace=False))
    # digits enough for fd_errors to reuse this reference down to steps 10**-5 u**(1/(q+1))
    h_lo = fmt.u ** (1 / (q + 1)) * 1e-5
    digits = bits_to_digits(reference_bits(fmt, h_lo, q))
    ref = exact(obj, fmt, digits=digits, orders=(q + 1,), coords=coords.tolist())
    gnorm = float(np.linalg.norm(np.asarray([float(v) for v in ref.grad])))
    deriv = np.asarray([float(v) for v in ref.derivatives[q + 1]])
    noise = spec.j_noise
    if noise is None:
        nz = noise_level(obj, fmt, seed=spec.seed)
        noise = NoiseLevel(nz.sigma, nz.sigma_ecnoise, nz.value, fmt.u)
    return _Causes(obj, coords, ref, noise, gnorm, deriv)


def _model_optimum(scheme: schs.Scheme, cause: _Causes) -> tuple[float, float]:
    """The model's h* and E* over a continuum of steps; (inf, NaN) when it has no minimum."""
    if cause.grad_norm > 0:
        fine = np.logspace(-20, 1, 2101)
        mt, mr = _model_curve(scheme, fine, cause.m_rms, cause.noise.sigma, cause.obj.n_params,
                              cause.grad_norm)
        h_model, e_model, no_min = optimum(fine, np.hypot(mt, mr))
        if not no_min:
            return h_model, e_model
    return math.inf, math.nan  # no truncation (or no gradient): the model has no minimum


def _measured_curve(spec: CellSpec, cause: _Causes, steps: np.ndarray
                    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The steps and E(h) with its parts on them: the grid, widened once on its lattice when
    the minimum lies on an edge below ``max_step / 2``."""
    curve = _measure(spec, cause, steps)
    h_opt, e_opt, edge = optimum(steps, curve["e"])
    if edge and e_opt > 0 and h_opt < spec.max_step / 2:
        ks = np.arange(1, round(spec.decades * spec.steps_per_decade) + 1)
        ratio = 10.0 ** (ks / spec.steps_per_decade)
        extra = steps[0] / ratio if h_opt == steps[0] else steps[-1] * ratio
        extra = extra[extra <= spec.max_step]
        if extra.size:
            curve = _merged(curve, _measure(spec, cause, extra))
            return curve["h"], curve
    return steps, curve


def measure_cell(params: Mapping[str, Any]) -> pd.DataFrame:
    """Measure h*, E* and their causes for one objective, format and scheme.

    Parameters
    ----------
    params : mapping
        The cell's JSON-able parameters (see :class:`CellSpec`; ``objective``,
        ``format`` and ``scheme`` are required).

    Returns
    -------
    pandas.DataFrame
        One row: the labels, the objective's parameters, ``format``, ``u``, ``scheme``, ``q``
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
    spec = CellSpec.from_params(params)
    cause = _causes(spec)
    h_model, e_model = _model_optimum(spec.scheme, cause)
    grid = _step_grid(h_model, spec.steps_per_decade, spec.decades, spec.max_step, spec.format.u)
    steps, curve = _measured_curve(spec, cause, grid)
    h_opt, e_opt, edge = optimum(steps, curve["e"])
    h_ci, e_ci = _bootstrap(steps, curve["e2"], cause.obj.n_params, cause.grad_norm, spec.n_boot,
                            spec.level, spec.seed)
    at = int(np.argmin(np.where(np.isfinite(curve["e"]), curve["e"], np.inf)))
    fmt, obj, nz = spec.format, cause.obj, cause.noise
    row = {
        **spec.labels,
        **{k: (_joined(v) if isinstance(v, (list, tuple)) else v) for k, v in spec.objective.items()},
        "format": fmt.name, "u": fmt.u, "p": fmt.p, "scheme": spec.scheme.name, "q": spec.scheme.order,
        "n_params": obj.n_params, "N": obj.n_params, "n_madds": n_madds(obj), "n_coords": cause.coords.size,
        "h_opt": h_opt, "h_opt_low": h_ci[0], "h_opt_high": h_ci[1],
        "e_opt": e_opt, "e_opt_low": e_ci[0], "e_opt_high": e_ci[1], "edge": edge,
        "h_model": h_model, "e_model": e_model,
        "noise": nz.sigma, "noise_u": nz.in_units(nz.sigma), "noise_ecnoise": nz.sigma_ecnoise,
        "value": nz.value, "grad_norm": cause.grad_norm, "m_rms": cause.m_rms,
        "trunc_at_opt": curve["trunc"][at], "step_at_opt": curve["step"][at],
        "round_at_opt": curve["round"][at],
        "n_flagged_at_opt": int(curve["n_flagged"][at]), "flags_at_opt": curve["flags"][at],
        "n_steps": int(steps.size), "ref_digits": float(cause.ref.digits_verified),
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


def _measure(spec: CellSpec, cause: _Causes, steps: np.ndarray) -> dict[str, np.ndarray]:
    """E(h) and its parts over the grid from the exact decomposition of the sampled coordinates.

    Returns the steps ``h``, ``e`` (E = rel_g of the estimated error norm), its parts
    ``trunc``, ``step`` and ``round`` normalised alike, ``e2`` (the squared errors, coordinates
    by steps, for the bootstrap), ``n_flagged`` and ``flags`` per step.
    """
    fmt, coords = spec.format, cause.coords
    df = fd_errors(cause.obj, formats=[fmt], schemes=[spec.scheme], steps=steps, coords=coords,
                   noise={fmt.name: cause.noise.sigma}, references={fmt.name: cause.ref}, seed=spec.seed,
                   workers=spec.workers)
    df = df.sort_values(["h", "coord"])
    hs = np.unique(df["h"].to_numpy())
    shape = (hs.size, coords.size)

    def part(col: str) -> np.ndarray:
        return df[col].to_numpy(dtype=np.float64).reshape(shape)

    # E = rel_g(sqrt(N / n) ||e_S||, ||g||) is linear in the sampled norm ||e_S||: the factor
    # sqrt(N / n) / ||g|| is formed once and multiplies the four norms (in this order: the
    # cells' numbers depend on it)
    factor = rel_g(math.sqrt(cause.obj.n_params / coords.size), cause.grad_norm)
    flags = df["flag"].to_numpy().reshape(shape)

    def norm(col: str) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            return np.sqrt(np.sum(part(col) ** 2, axis=1)) * factor

    return {
        "h": hs, "e": norm("err_total"), "e2": (part("err_total") ** 2).T, "trunc": norm("err_trunc"),
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
            e = rel_g(np.sqrt(n * np.mean(e2[idx], axis=0)), gnorm)
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
