"""What the step rules share: their argument checks (built on
:mod:`gradlab.arithmetic.validation`), the trial points and their divided
differences, the noise level, the active-set search loop, the log-scale bracket, and the
result.

Every rule sees J through a :class:`~gradlab.arithmetic.coordinate.CoordinateFunction`
and forms its trial points with :func:`gradlab.arithmetic.stencil.stencil`, the one
constructor of FD points: ``fl(theta_i + fl(k_j fl(h)))``. Its difference quotients use
the offsets the format realised (see the package docstring).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from gradlab.analysis.noise import rounding_floor
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.arithmetic.stencil import stencil
from gradlab.steps.optimal import line_noise
from gradlab.steps.results import FunctionLike, Status, StepResult

__all__ = [
    "ONE_SIDED",
    "REAL",
    "LogBracket",
    "Moves",
    "Noise",
    "NoiseSpec",
    "active_set",
    "central_difference",
    "divided",
    "ecnoise_options",
    "eps_rel",
    "noise_level",
    "noise_spec",
    "probe",
    "realised",
    "result",
    "scale",
    "setup",
    "setup_noisy",
    "short",
]

#: ``"ecnoise"``, ``"roundoff"`` or a positive noise level (see the package docstring).
NoiseSpec = str | float

ONE_SIDED = ("forward", "backward")
REAL = ("forward", "backward", "central", "central4", "central6")


# ---------------------------------------------------------------- argument checks


def noise_spec(noise: Any) -> NoiseSpec:
    """``"ecnoise"``, ``"roundoff"`` or a positive number, or ValueError/TypeError naming
    ``noise``."""
    if isinstance(noise, str):
        if noise not in ("ecnoise", "roundoff"):
            raise ValueError(f"noise must be 'ecnoise', 'roundoff' or a positive number, got {noise!r}")
        return noise
    return validation.positive("noise", noise)


def ecnoise_options(n_lines: Any, nf: Any, seed: Any) -> tuple[int, int, int]:
    """The ECnoise sample's ``n_lines >= 1``, ``nf >= 7`` (Moré & Wild) and seed >= 0."""
    return (validation.integer("n_lines", n_lines, 1), validation.integer("nf", nf, 7),
            validation.integer("seed", seed, 0))


def setup(
    rule: str, f: FunctionLike, theta: Any, format: fmts.Format | str,
    scheme: schs.Scheme | str, allowed: tuple[str, ...] | None,
) -> tuple[CoordinateFunction, schs.Scheme]:
    """Check f, theta, format and scheme for a rule; the counted evaluator and the scheme."""
    sch = validation.one_scheme("scheme", scheme)
    if allowed is not None and sch.name not in allowed:
        raise ValueError(f"scheme: {rule} chooses a step for {' or '.join(allowed)} differences, "
                         f"got {sch.name!r}")
    f = validation.function("f", f)
    fmt = validation.one_format("format", format)
    if fmt.dtype is None:
        raise ValueError(f"format: step rules run in hardware formats, got the emulated {fmt.name!r}")
    return CoordinateFunction(f, validation.point("theta", theta, f), fmt), sch


# ---------------------------------------------------------------- trial points and differences


def scale(cf: CoordinateFunction) -> np.ndarray:
    """max(1, |theta_i|): the coordinate's typical size (Dennis & Schnabel's typ x = 1)."""
    return np.maximum(np.abs(cf.theta.astype(np.float64)), 1.0)


def probe(
    cf: CoordinateFunction, idx: np.ndarray, h: np.ndarray, offsets: Sequence[int],
    need: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """J at the stencil points ``fl(theta_i + fl(k_j fl(h_i)))`` of coordinates ``idx``.

    Parameters
    ----------
    cf : CoordinateFunction
    idx : ndarray of int, shape (B,)
        The coordinates.
    h : ndarray of float, shape (B,)
        Their nominal steps (a trial offset t that is not a multiple of a step is
        ``h = t`` with ``offsets = (1,)``).
    offsets : sequence of int, length M
        The stencil's k_j.
    need : ndarray of bool, shape (B, M), optional
        Evaluate only these points (the others' values are NaN); default all.

    Returns
    -------
    values, realised : ndarray of float64, shape (B, M)
        J at the points (one batch, coordinate-major) and the offsets the format
        realised, ``points - theta_i``.
    """
    idx = np.asarray(idx, dtype=int).ravel()
    m = len(offsets)
    if idx.size == 0:
        return np.empty((0, m)), np.empty((0, m))
    st = stencil(cf.theta[idx], h, offsets, cf.fmt)
    rows, cols = np.nonzero(np.ones((idx.size, m), dtype=bool) if need is None else need)
    values = np.full((idx.size, m), np.nan)
    if rows.size:
        values[rows, cols] = cf.evaluate(cf.points(idx[rows], st.points[rows, cols]))
    return values, st.offsets


def central_difference(cf: CoordinateFunction, idx: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(f(x + d+) - f(x - d-)) / (d+ + d-) at the realised offsets, for coordinates idx."""
    values, offs = probe(cf, idx, h, (1, -1))
    dd, _ = divided(offs, values)
    return dd


def divided(nodes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise divided difference ``f[x_0..x_m] = sum_j w_j f_j``, ``w_j = 1/prod_{k!=j}
    (x_j - x_k)``, and its noise gain ``sum_j |w_j|``.

    The values enter as differences from the first (sum_j w_j = 0), which keeps
    float64's own rounding of the sum below the values' noise. Rows whose nodes
    coincide, or whose values are not finite, give NaN.
    """
    m1 = nodes.shape[1]
    with np.errstate(invalid="ignore"):  # an offset beyond the range (inf) gives NaN: data
        diff = nodes[:, :, None] - nodes[:, None, :]
    diff[:, np.arange(m1), np.arange(m1)] = 1.0
    distinct = np.all(diff != 0, axis=(1, 2))
    diff[~distinct] = 1.0
    w = 1.0 / np.prod(diff, axis=2)
    with np.errstate(invalid="ignore", over="ignore"):  # non-finite values give NaN, checked by callers
        dd = np.sum(w * (values - values[:, :1]), axis=1)
    gain = np.sum(np.abs(w), axis=1)
    bad = ~distinct | ~np.all(np.isfinite(values), axis=1)
    dd[bad] = np.nan
    gain[bad] = np.nan
    return dd, gain


def realised(cf: CoordinateFunction, h: np.ndarray) -> np.ndarray:
    """``fl(theta_i + fl(h_i)) - theta_i``: the forward step the format realises (no evaluation)."""
    h = np.where(np.isfinite(h), h, 0.0)
    return stencil(cf.theta, h, (1,), cf.fmt).offsets[:, 0]


# ---------------------------------------------------------------- the noise level


@dataclass(frozen=True)
class Noise:
    """The noise level eps_f a noise-aware rule uses, where it came from, and whether it
    was found as asked."""

    eps: float
    source: str
    found: bool

    def flag(self, status: np.ndarray) -> None:
        """Mark the successes NOISE_NOT_DETECTED when ECnoise found no noise: they rest on
        the floor of one rounding, which may be below J's real noise."""
        if not self.found:
            status[status == Status.SUCCESS] = Status.NOISE_NOT_DETECTED

    def info(self) -> dict[str, Any]:
        """The result's ``noise`` and ``noise_source``."""
        return {"noise": self.eps, "noise_source": self.source}


def noise_level(
    cf: CoordinateFunction, noise: NoiseSpec, f0: float, n_lines: int, nf: int, seed: int
) -> Noise:
    """The noise level as ``noise`` asks: one rounding of J, ECnoise's estimate (one
    rounding if it detects none), or the given level."""
    floor = rounding_floor(cf.fmt, f0)
    if noise == "roundoff":
        return Noise(floor, "roundoff: u |J(theta)|", True)
    if noise == "ecnoise":
        sigma = line_noise(cf, n_lines, nf, seed)
        if math.isfinite(sigma) and sigma > 0:
            return Noise(sigma, "ecnoise", True)
        return Noise(floor, "roundoff: u |J(theta)| (ECnoise detected no noise)", False)
    return Noise(float(noise), "given", True)


def setup_noisy(
    rule: str, f: FunctionLike, theta: Any, format: fmts.Format | str,
    scheme: schs.Scheme | str, allowed: tuple[str, ...], noise: Any, n_lines: Any, nf: Any,
    seed: Any,
) -> tuple[CoordinateFunction, schs.Scheme, float, Noise]:
    """:func:`setup` for a noise-aware rule: also checks ``noise`` and the ECnoise sample,
    evaluates J(theta) and finds the noise level. Returns (cf, scheme, J(theta), noise)."""
    spec = noise_spec(noise)
    n_lines, nf, seed = ecnoise_options(n_lines, nf, seed)
    cf, sch = setup(rule, f, theta, format, scheme, allowed)
    f0 = cf.center()
    return cf, sch, f0, noise_level(cf, spec, f0, n_lines, nf, seed)


def eps_rel(eps_f: float, f0: float) -> float:
    """Relative noise eps_f / |J|, capped at 1 (for the well-scaled starting guesses)."""
    return min(1.0, eps_f / max(abs(f0), np.finfo(np.float64).tiny))


# ---------------------------------------------------------------- the search


def active_set(
    active: np.ndarray, maxiter: int, trial: Callable[[np.ndarray, int], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Iterate a search over the coordinates that have not finished, one batch at a time.

    Iteration ``it`` (0, 1, ...) calls ``trial(idx, it)`` with the unfinished
    coordinates ``idx``; the trial evaluates all their points in one batch (one call of
    the evaluator), updates the rule's state and returns a bool mask over ``idx`` of
    those that are finished (accepted, failed or at a cap). The loop ends when every
    coordinate has finished or after ``maxiter`` iterations.

    Parameters
    ----------
    active : ndarray of bool, shape (N,)
        The coordinates that search (the others are finished before the loop).
    maxiter : int
    trial : callable

    Returns
    -------
    unfinished : ndarray of bool, shape (N,)
        Still searching when ``maxiter`` ran out.
    iterations : ndarray of int, shape (N,)
        The trials each coordinate took part in.
    """
    active = np.array(active, dtype=bool)
    iterations = np.zeros(active.size, dtype=int)
    for it in range(maxiter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        iterations[idx] += 1
        active[idx[trial(idx, it)]] = False
    return active, iterations


class Moves(NamedTuple):
    """How :meth:`LogBracket.move` moved each coordinate's step (masks over ``idx``)."""

    grown: np.ndarray  #: moved up by the full ``factor`` (not stopped at the ceiling)
    shrunk: np.ndarray  #: moved down by the full ``factor`` (not stopped at the floor)
    at_ceiling: np.ndarray  #: rejected as too small at the ceiling: the search is over
    at_floor: np.ndarray  #: rejected as too large at the floor: the search is over


@dataclass
class LogBracket:
    """Per coordinate, a search in log scale for a step a test finds neither too small
    nor too large (Dumontet & Vignes's k, Shi et al.'s h).

    The step moves by ``factor`` until a step found too small (``lower``) and one found
    too large (``upper``) bracket it, then bisects the bracket in log scale,
    ``sqrt(lower upper)``. It stays in ``[floor, ceiling]``: a move past a cap stops at
    the cap, and the cap itself is tried; the search has hit its cap when the step at the
    cap is rejected towards it. (So "no truncation up to the largest step" means the
    largest step was tried.)

    Attributes
    ----------
    step : ndarray
        The next trial step (the start is clipped to the caps).
    floor, ceiling : ndarray
        The caps.
    factor : float
        The move before a bracket forms (> 1).
    lower, upper : ndarray
        The largest step found too small (0: none yet), the smallest found too large
        (inf: none yet).
    """

    step: np.ndarray
    floor: np.ndarray
    ceiling: np.ndarray
    factor: float
    lower: np.ndarray = field(init=False)
    upper: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.step = np.clip(self.step, self.floor, self.ceiling)
        self.lower = np.zeros(self.step.shape)
        self.upper = np.full(self.step.shape, np.inf)

    def move(self, idx: np.ndarray, too_small: np.ndarray, too_large: np.ndarray) -> Moves:
        """Record the verdicts on the steps just tried at ``idx`` and set the next steps.

        A coordinate with neither verdict (accepted) keeps its step.
        """
        h = self.step[idx]
        self.lower[idx[too_small]] = h[too_small]
        self.upper[idx[too_large]] = h[too_large]
        up = too_small & np.isinf(self.upper[idx])
        down = too_large & (self.lower[idx] == 0)
        bisect = (too_small | too_large) & ~up & ~down
        ceiling, floor = self.ceiling[idx], self.floor[idx]
        # h * (1/factor), not h / factor: the sequence Shi et al.'s search always took
        # (the same numbers for factor 4; for 3 they may differ in the last bit)
        grown, shrunk = h * self.factor, h * (1 / self.factor)
        new = h.copy()
        new[up] = np.minimum(grown[up], ceiling[up])
        new[down] = np.maximum(shrunk[down], floor[down])
        new[bisect] = np.sqrt(self.lower[idx[bisect]] * self.upper[idx[bisect]])
        self.step[idx] = new
        return Moves(grown=up & (grown <= ceiling), shrunk=down & (shrunk >= floor),
                     at_ceiling=up & (h >= ceiling), at_floor=down & (h <= floor))

    def middle(self, mask: np.ndarray) -> None:
        """Set the step of the coordinates in ``mask`` that are bracketed to the bracket's
        log-middle (a search out of iterations inside a bracket)."""
        j = np.flatnonzero(mask & (self.lower > 0) & np.isfinite(self.upper))
        self.step[j] = np.sqrt(self.lower[j] * self.upper[j])


# ---------------------------------------------------------------- the result


def result(
    rule: str, cf: CoordinateFunction, sch: schs.Scheme, h: np.ndarray, status: np.ndarray,
    info: dict[str, Any], approx: np.ndarray | None = None,
) -> StepResult:
    """The rule's StepResult; ``info`` gains the realised steps, the fp events and upcasts."""
    h = np.asarray(h, dtype=np.float64)
    info = {**info, "h_realised": realised(cf, h), "fp_events": dict(cf.fp_events),
            "upcasts": cf.upcasts}
    return StepResult(rule=rule, format=cf.fmt.name, scheme=sch.name, h=h, nfev=cf.nfev,
                      status=np.asarray(status, dtype=int), approx=approx, info=info)


def short(x: float) -> str:
    """1e-07 -> '1e-7', 2.5e-04 -> '2.5e-4'."""
    mant, exp = f"{x:.6e}".split("e")
    return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"
