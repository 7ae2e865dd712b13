"""Shi, Xie, Xuan & Nocedal (2022): bisection on a curvature-to-noise test ratio.

Forward: ``r(h) = |f(x+4h) - 4 f(x+h) + 3 f(x)| / (8 eps_f)``; the combination is
``6 h**2 f''`` plus at most ``8 eps_f`` of noise, so at the forward optimum
``h* = 2 sqrt(eps_f/|f''|)`` r = 3, and r in [rl, ru] = [1.5, 6] puts h in
``[sqrt((rl-1)/3), sqrt((ru+1)/3)] h* = [0.41, 1.53] h*`` when eps_f bounds the noise.
r < rl: h too small (lower bound l = h); r > ru: too large (upper bound u = h); h is
multiplied by 4 while there is no upper bound, divided by 4 while there is no lower bound
(both reuse a value: 4h becomes h), and then bisected (we bisect in log scale,
``sqrt(l u)``).

Central (derived the same way): ``r(h) = |f(x+3h) - 3 f(x+h) + 3 f(x-h) - f(x-3h)| /
(8 eps_f)``; the combination is ``8 h**3 f'''`` plus at most ``8 eps_f`` of noise, so at
the central optimum ``h* = (3 eps_f/|f'''|)**(1/3)`` again r = 3, and the same window
gives ``[((rl-1)/3)**(1/3), ((ru+1)/3)**(1/3)] h* = [0.55, 1.33] h*``. The search moves
by factors of 3 (3h becomes h). Backward mirrors forward.

With realised offsets the ratio is ``|f[x_0..x_m]| / (eps_f sum|w_j|)`` (see
:mod:`gradlab.steps.rules`), the paper's r for exact ones. A reused value keeps the point
it was computed at (``fl(theta + fl(3 fl(h)))`` may differ from ``fl(theta + fl(3h))``
in the last bit); its realised offset goes with it, so every ratio is that of the points
actually evaluated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.steps.results import FunctionLike, Status, StepResult
from gradlab.steps.rules.search import (
    LogBracket,
    Moves,
    NoiseSpec,
    active_set,
    divided,
    eps_rel,
    probe,
    result,
    scale,
    setup_noisy,
)

__all__ = ["shi_xie_xuan_nocedal"]


@dataclass(frozen=True)
class _Test:
    """The test ratio's stencil for one scheme: the offsets k_j (f(x) aside), the move
    factor, and the well-scaled optimum relative to max(1, |x_i|)."""

    ks: tuple[int, ...]
    factor: int
    central: bool

    @classmethod
    def of(cls, scheme: str) -> _Test:
        if scheme == "central":
            return cls((-3, -1, 1, 3), 3, True)
        return cls((-1, -4) if scheme == "backward" else (1, 4), 4, False)

    def guess(self, eps_r: float) -> float:
        """The optimum for a well-scaled J: (3 eps_r)**(1/3) (central), 2 sqrt(eps_r)."""
        return (3 * eps_r) ** (1 / 3) if self.central else 2 * math.sqrt(eps_r)

    def reuse(self, grown: bool) -> list[int]:
        """After h moves by the factor (up if ``grown``), slot j holds the point of the old
        slot ``reuse(grown)[j]`` (-1: none, evaluate anew)."""
        c = self.factor
        return [next((src for src, k in enumerate(self.ks)
                      if (k == kj * c if grown else k * c == kj)), -1) for kj in self.ks]

    def ratio(self, offs: np.ndarray, vals: np.ndarray, f0: float, eps_f: float) -> np.ndarray:
        """r = |f[x_0..x_m]| / (eps_f sum_j |w_j|) on the realised nodes (NaN if collapsed)."""
        if not self.central:  # f(x) is a node of the one-sided stencil
            offs = np.column_stack([np.zeros(offs.shape[0]), offs])
            vals = np.column_stack([np.full(vals.shape[0], f0), vals])
        dd, gain = divided(offs, vals)
        return np.abs(dd) / (eps_f * gain)


@dataclass
class _Values:
    """Each coordinate's stencil values and realised offsets, kept across a move by the
    factor: 4h becomes h (3h for central), so one value is reused, not re-evaluated."""

    test: _Test
    vals: np.ndarray
    offs: np.ndarray
    need: np.ndarray  # which values must be (re)evaluated

    @classmethod
    def empty(cls, test: _Test, n: int) -> _Values:
        shape = (n, len(test.ks))
        return cls(test, np.full(shape, np.nan), np.full(shape, np.nan), np.ones(shape, dtype=bool))

    def update(self, cf: CoordinateFunction, idx: np.ndarray, h: np.ndarray) -> None:
        """Evaluate the values coordinates idx need at their steps h (one batch)."""
        rows, slots = np.nonzero(self.need[idx])
        v, d = probe(cf, idx, h, self.test.ks, self.need[idx])
        self.vals[idx[rows], slots], self.offs[idx[rows], slots] = v[rows, slots], d[rows, slots]
        self.need[idx] = False

    def moved(self, idx: np.ndarray, moved: np.ndarray, moves: Moves) -> None:
        """After the steps of idx[moved] moved: their values are all needed but those a
        move by exactly the factor keeps."""
        self.need[idx[moved]] = True
        for mask, grown in ((moves.grown, True), (moves.shrunk, False)):
            j = idx[mask]
            old_v, old_d = self.vals[j].copy(), self.offs[j].copy()
            for slot, src in enumerate(self.test.reuse(grown)):
                if src >= 0:
                    self.vals[j, slot], self.offs[j, slot] = old_v[:, src], old_d[:, src]
                    self.need[j, slot] = False


def shi_xie_xuan_nocedal(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, noise: NoiseSpec = "ecnoise", h0: float | None = None,
    rl: float = 1.5, ru: float = 6.0, maxiter: int = 40, n_lines: int = 2, nf: int = 9, seed: int = 0,
) -> StepResult:
    """Bisection on a curvature-to-noise test ratio (Shi, Xie, Xuan & Nocedal 2022).

    The ratios, their windows and the moves are derived in :mod:`gradlab.steps.rules.shi`.
    Non-finite values count as "too large". The search stays in [4 eps, 1] max(1,|x_i|)
    (:class:`~gradlab.steps.rules.search.LogBracket`): status 5 when no curvature was
    found at the top, 2 when r was still too large at the bottom, 1 after ``maxiter``
    (inside a bracket, the step is then its log-middle).

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"forward", "backward", "central"}
    noise : "ecnoise", "roundoff" or float
        eps_f (see :mod:`gradlab.steps.rules`).
    h0 : float, optional
        Absolute first step; default the optimum for a well-scaled J,
        ``2 sqrt(eps_f/|J|)`` (forward) or ``(3 eps_f/|J|)**(1/3)`` (central) times
        ``max(1, |x_i|)``.
    rl, ru : float
        The window, 1 < rl < ru.
    maxiter : int
    n_lines, nf, seed
        The ECnoise sample.

    Returns
    -------
    StepResult
        ``info``: ``noise``, ``noise_source``, ``ratio`` (r at the last step tried),
        ``iterations``.

    References
    ----------
    H.-J. M. Shi, Y. Xie, M. Q. Xuan and J. Nocedal, Adaptive finite-difference interval
    estimation for noisy derivative-free optimization, SIAM J. Sci. Comput.
    44(4):A2302-A2321, 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import shi_xie_xuan_nocedal
    >>> res = shi_xie_xuan_nocedal(lambda x: np.sum(np.exp(x)), np.zeros(2), scheme="forward",
    ...                            noise=1e-10)
    >>> hstar = 2 * np.sqrt(1e-10 / 1.0)
    >>> bool(np.all((0.41 * hstar <= res.h) & (res.h <= 1.53 * hstar))), res.status.tolist()
    (True, [0, 0])
    """
    rl, ru = validation.positive("rl", rl), validation.positive("ru", ru)
    if not 1 < rl < ru:
        raise ValueError(f"rl and ru must satisfy 1 < rl < ru, got rl={rl!r}, ru={ru!r}")
    if h0 is not None:
        h0 = validation.positive("h0", h0)
    itmax = validation.integer("maxiter", maxiter, 1)
    cf, sch, f0, level = setup_noisy("shi_xie_xuan_nocedal", f, theta, format, scheme,
                                     ("forward", "backward", "central"), noise, n_lines, nf, seed)
    n, s, eps_f = cf.n, scale(cf), level.eps
    test = _Test.of(sch.name)
    start = test.guess(eps_rel(eps_f, f0)) * s if h0 is None else np.full(n, h0)
    h = LogBracket(start, 4 * cf.fmt.eps * s, s, float(test.factor))
    values = _Values.empty(test, n)
    ratio = np.full(n, np.nan)
    status = np.full(n, Status.ITERATION_LIMIT)

    def trial(idx: np.ndarray, it: int) -> np.ndarray:
        """r at h for coordinates idx; the verdict on h."""
        values.update(cf, idx, h.step[idx])
        vals = values.vals[idx]
        r = ratio[idx] = test.ratio(values.offs[idx], vals, f0, eps_f)
        finite = np.all(np.isfinite(vals), axis=1)
        measured = finite & np.isfinite(r)  # not collapsed onto fewer points by the format
        ok = measured & (r >= rl) & (r <= ru)
        too_large = ~finite | (measured & (r > ru))
        status[idx[ok]] = Status.SUCCESS
        moves = h.move(idx, ~ok & ~too_large, too_large)
        status[idx[moves.at_ceiling]] = Status.TRUNCATION_NOT_DETECTED
        status[idx[moves.at_floor]] = Status.NO_ACCEPTABLE_STEP
        over = ok | moves.at_ceiling | moves.at_floor
        values.moved(idx, ~over, moves)
        return over

    unfinished, iters = active_set(np.ones(n, dtype=bool), itmax, trial)
    h.middle(unfinished)  # out of iterations inside a bracket: its middle
    level.flag(status)
    return result("shi_xie_xuan_nocedal", cf, sch, h.step, status, {
        **level.info(), "ratio": ratio, "iterations": iters,
        "scheme_note": "central differences" if test.central else "forward differences",
    })
