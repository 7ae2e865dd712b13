"""Gill, Murray, Saunders & Wright's forward-difference intervals, as NPSOL computes them.

Algorithm FD of Gill, Murray, Saunders & Wright (1983), in the version NPSOL runs (its
routines ``chfd`` and ``chcore``), per coordinate: with eps_A = eps_R (1 + |f|) the
absolute error of J, start from ten times the well-scaled interval
``h_bar = 2 (1 + |x|) sqrt(eps_R)``; from f(x), f(x+h), f(x+2h) form the second
difference Phi = (f0 - 2 f1 + f2)/h**2 and the bound on its relative condition error
``C(Phi) = 4 eps_A / (h**2 |Phi|)``; accept h when 1e-3 <= C(Phi) <= 1e-1, otherwise
grow h by rho = eps_R**(-1/6)/4 (C too large) or shrink it by 10 rho (C too small), at
most ``maxiter`` = 3 trials; accept the previous h if C jumps from too small to too
large. The forward interval is ``h_F = 2 sqrt(eps_A / |Phi|)``.

Failures are NPSOL's: the first differences never rose above the noise ("constant?",
status 2, ``h_F`` = the well-scaled interval), C(Phi) never fell to 0.1 ("linear or
odd?", status 5, ``h_F`` = the last interval whose first difference was reliable),
C(Phi) stayed below 1e-3 ("too nonlinear?", status 1, same fallback). NPSOL's raw codes
are in ``info["inform"]`` (4: forward and central estimates disagree, a warning only;
5, ours: J not finite at a trial point, status 4 and the well-scaled interval).

Schemes: ``forward``; ``backward`` runs the same search on x - h, x - 2h (NPSOL's
negative intervals near an upper bound). For ``central`` the step is NPSOL's own
central-difference interval from the same search (``hcntrl`` in ``chfd``): the interval
h_Phi at which Phi was accepted, or 10 h_F when the search failed. That interval is of
order eps^(1/2), not the eps^(1/3) the central error model wants, so it is smaller than
the central optimum by about (eps_A/|J|)^(-1/6); it is what NPSOL uses.

P. E. Gill, W. Murray, M. A. Saunders and M. H. Wright, Computing forward-difference
intervals for numerical optimization, SIAM J. Sci. Stat. Comput. 4(2):310-321, 1983.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic import validation
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.steps.results import FunctionLike, Status, StepResult
from gradlab.steps.rules.search import (
    NoiseSpec,
    active_set,
    divided,
    probe,
    result,
    setup_noisy,
)

__all__ = ["gmsw"]

_BNDLO, _BNDUP = 1e-3, 1e-1  # chcore's bndlo, bndup: the accepted range of C(Phi)

# chcore's inform -> Status; 0 and 4 (a warning) are successes, 5 (ours) is set directly
_INFORM_STATUS = {1: Status.NO_ACCEPTABLE_STEP, 2: Status.TRUNCATION_NOT_DETECTED,
                  3: Status.ITERATION_LIMIT}


@dataclass
class _Chcore:
    """chcore's variables, one entry per coordinate, under names that say what they hold.

    ==============  =======  ======================================================
    field           NPSOL    GMSW 1983 / meaning
    ==============  =======  ======================================================
    h               h        the trial interval (negative for ``backward``)
    h_old           oldh     the previous trial interval
    rho             rho      the factor h moves by, eps_R**(-1/6)/4 (x10 to shrink)
    first           first    no trial yet
    fd_cond_big     ce1big   C(phi_F) > bndup: the forward difference is noise
    phi_cond_big    ce2big   C(Phi) > bndup: Phi is noise (h too small)
    phi_trunc_big   te2big   C(Phi) < bndlo: Phi's truncation dominates (h too large)
    h_save          hsave    the last interval whose forward difference was reliable
    phi_save        sdsave   Phi at h_save
    phi             sdest    Phi, the second-derivative estimate
    central         cdest    the central-difference estimate of f' from the trial
    h_forward       hopt     h_F = 2 sqrt(eps_A / |Phi|), the forward interval
    h_phi           hphi     h_Phi, the interval at which Phi was accepted
    inform          inform   chcore's exit code (-1 while searching)
    ==============  =======  ======================================================

    ``h_bar`` is the well-scaled interval 2 (1 + |x|) sqrt(eps_R), chfd's first ``hopt``.
    """

    h_bar: np.ndarray
    h: np.ndarray
    h_old: np.ndarray
    rho: np.ndarray
    first: np.ndarray
    fd_cond_big: np.ndarray
    phi_cond_big: np.ndarray
    phi_trunc_big: np.ndarray
    h_save: np.ndarray
    phi_save: np.ndarray
    phi: np.ndarray
    central: np.ndarray
    h_forward: np.ndarray
    h_phi: np.ndarray
    inform: np.ndarray

    @classmethod
    def start(cls, h_bar: np.ndarray, eps_r: float, sign: float) -> _Chcore:
        """The state before the first trial: h = 10 h_bar (signed), nothing measured."""
        n = h_bar.size
        h = sign * 10 * h_bar

        def false() -> np.ndarray:
            return np.zeros(n, dtype=bool)

        return cls(h_bar=h_bar, h=h, h_old=h.copy(), rho=np.full(n, eps_r ** (-1 / 6) / 4),
                   first=np.ones(n, dtype=bool), fd_cond_big=false(), phi_cond_big=false(),
                   phi_trunc_big=false(), h_save=np.full(n, np.nan), phi_save=np.zeros(n),
                   phi=np.zeros(n), central=np.zeros(n),
                   h_forward=h_bar.copy(), h_phi=np.full(n, np.nan), inform=np.full(n, -1))


class _Trial(NamedTuple):
    """One trial's estimates at h, for coordinates idx (chcore's names in brackets)."""

    fd: np.ndarray  # forward difference at h (fdest)
    phi: np.ndarray  # second difference Phi (sdest)
    cd: np.ndarray  # (4 f1 - 3 f0 - f2) / (2h) (cdest)
    fd_cond: np.ndarray  # the forward difference's condition error (fdcerr)
    phi_cond: np.ndarray  # C(Phi) (sdcerr)
    bad: np.ndarray  # J not finite at x + h or x + 2h


def _differences(cf: CoordinateFunction, idx: np.ndarray, h: np.ndarray, f0: float,
                 eps_a: float) -> _Trial:
    """f(x+h), f(x+2h) for coordinates idx (one batch) and chcore's estimates from them,
    on the offsets the format realised."""
    vals, offs = probe(cf, idx, h, (1, 2))
    dd2, _ = divided(np.column_stack([np.zeros(idx.size), offs]),
                     np.column_stack([np.full(idx.size, f0), vals]))
    bad = ~np.all(np.isfinite(vals), axis=1)
    # collapsed nodes (a step below the spacing): the differences are all noise
    flat = ~bad & ~np.isfinite(dd2)
    d1 = np.where(flat | bad, np.abs(h), offs[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        fd = np.where(flat, 0.0, (vals[:, 0] - f0) / d1)
        fd2 = np.where(flat, 0.0, (vals[:, 1] - f0) / np.where(flat, 1.0, offs[:, 1]))
        phi = np.where(flat, 0.0, 2 * dd2)
        cd = np.where(flat, 0.0, fd - d1 * dd2)
        fd_cond = eps_a / (0.5 * np.abs(d1) * np.minimum(np.abs(fd), np.abs(fd2)))
        phi_cond = eps_a / (0.25 * np.abs(phi) * d1**2)
    return _Trial(fd, phi, cd, np.where(np.isnan(fd_cond), np.inf, fd_cond),
                  np.where(np.isnan(phi_cond), np.inf, phi_cond), bad)


def _next_interval(st: _Chcore, idx: np.ndarray, t: _Trial) -> np.ndarray:
    """chcore's decision after a trial at ``st.h[idx]``: which coordinates accept h_Phi
    (returned), and the next interval for the others (written into ``st``)."""
    hk = st.h[idx]
    first, ce1, ce2, te2 = st.first[idx], st.fd_cond_big[idx], st.phi_cond_big[idx], st.phi_trunc_big[idx]
    h, h_old, rho = hk.copy(), st.h_old[idx], st.rho[idx]
    phi, cd = t.phi.copy(), t.cd.copy()
    done = np.zeros(idx.size, dtype=bool)
    save = np.zeros(idx.size, dtype=bool)
    # first trial
    done[first] = (t.phi_cond[first] >= _BNDLO) & (t.phi_cond[first] <= _BNDUP)
    te2[first], ce2[first] = t.phi_cond[first] < _BNDLO, t.phi_cond[first] > _BNDUP
    ce1[first] = t.fd_cond[first] > _BNDUP
    save |= first & ~ce1
    rho[first & te2] *= 10
    shrink, grow = first & te2, first & ce2
    # the interval was grown to reduce C(Phi)
    grown = ~first & ce2
    fix = grown & ce1 & (t.fd_cond <= _BNDUP)
    ce1[fix] = False
    save |= fix
    done[grown] = t.phi_cond[grown] <= _BNDUP
    grow |= grown & ~done
    # the interval was shrunk to reduce the truncation error
    shrunk = ~first & ~ce2 & te2
    jump = shrunk & (t.phi_cond > _BNDUP)  # C(Phi) jumped from too small to too large: take the previous h
    done |= jump
    h[jump], phi[jump], cd[jump] = h_old[jump], st.phi[idx][jump], st.central[idx][jump]
    rest = shrunk & ~jump
    fix = rest & (t.fd_cond <= _BNDUP)
    ce1[fix] = False
    save |= fix
    done[rest] = t.phi_cond[rest] >= _BNDLO
    shrink |= rest & ~done
    h_old[shrink | grow] = h[shrink | grow]
    h[shrink] /= rho[shrink]
    h[grow] *= rho[grow]
    st.h_save[idx[save]], st.phi_save[idx[save]] = hk[save], t.phi[save]
    st.first[idx] = False
    st.fd_cond_big[idx], st.phi_cond_big[idx], st.phi_trunc_big[idx] = ce1, ce2, te2
    st.h[idx], st.h_old[idx], st.rho[idx] = h, h_old, rho
    st.phi[idx], st.central[idx] = phi, cd
    return done


def _conclude(st: _Chcore, idx: np.ndarray, t: _Trial, done: np.ndarray, out: np.ndarray,
              eps_a: float) -> None:
    """chcore's exit for the coordinates that accepted (``done``), ran out of trials
    (``out``) or met a non-finite value: its inform code, h_F and h_Phi."""
    ok = done & ~t.bad
    j, phi = idx[ok], st.phi[idx[ok]]
    st.h_phi[j] = np.abs(st.h[j])
    st.h_forward[j] = 2 * math.sqrt(eps_a) / np.sqrt(np.abs(phi))
    errbnd = np.maximum(st.h_forward[j] * np.abs(phi), np.abs(t.fd[ok] - st.central[j]))
    st.inform[j] = np.where(errbnd > 0.5 * np.abs(t.fd[ok]), 4, 0)
    ce1, ce2 = st.fd_cond_big[idx], st.phi_cond_big[idx]
    j = idx[out & ce1]  # "constant?": the well-scaled interval
    st.inform[j], st.h_phi[j], st.h_forward[j], st.phi[j] = 1, st.h_bar[j], st.h_bar[j], 0.0
    j = idx[out & ~ce1 & ce2]  # "linear or odd?": the last reliable interval
    st.inform[j], st.phi[j] = 2, 0.0
    st.h_phi[j] = st.h_forward[j] = np.abs(st.h_save[j])
    j = idx[out & ~ce1 & ~ce2]  # "too nonlinear?": the same, with its Phi
    st.inform[j], st.phi[j] = 3, st.phi_save[j]
    st.h_phi[j] = st.h_forward[j] = np.abs(st.h_save[j])
    j = idx[t.bad]
    st.inform[j], st.h_phi[j], st.h_forward[j] = 5, st.h_bar[j], st.h_bar[j]


def gmsw(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "forward", *, noise: NoiseSpec = "ecnoise", maxiter: int = 3,
    n_lines: int = 2, nf: int = 9, seed: int = 0,
) -> StepResult:
    """Forward-difference intervals by algorithm FD of Gill, Murray, Saunders & Wright.

    NPSOL's version (``chfd`` / ``chcore``; the search, its failures and the central
    interval are described in :mod:`gradlab.steps.rules.gill`).

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"forward", "backward", "central"}
    noise : "ecnoise", "roundoff" or float
        eps_A (see :mod:`gradlab.steps.rules`); eps_R = eps_A / (1 + |f|).
        NPSOL's own default is eps_R = eps**0.9.
    maxiter : int
        NPSOL's itmax (3).
    n_lines, nf, seed
        The ECnoise sample.

    Returns
    -------
    StepResult
        ``info``: ``noise``, ``noise_source``, ``inform``, ``iterations``, ``phi``
        (the second-derivative estimate), ``h_phi``, ``h_forward``, ``h_central``.

    References
    ----------
    P. E. Gill, W. Murray, M. A. Saunders and M. H. Wright, Computing forward-difference
    intervals for numerical optimization, SIAM J. Sci. Stat. Comput. 4(2):310-321, 1983.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import gmsw
    >>> res = gmsw(lambda x: np.sum(np.sin(x)), np.array([1.0]), noise=1e-10)
    >>> want = 2 * np.sqrt(1e-10 / np.sin(1.0))  # 2 sqrt(eps_A / |f''|)
    >>> bool(abs(res.h[0] / want - 1) < 0.05), res.status.tolist(), res.nfev
    (True, [0], 3)
    """
    itmax = validation.integer("maxiter", maxiter, 1)
    cf, sch, f0, level = setup_noisy("gmsw", f, theta, format, scheme, ("forward", "backward", "central"),
                                     noise, n_lines, nf, seed)
    eps_a = level.eps
    eps_r = eps_a / (1 + abs(f0))
    h_bar = 2 * (1 + np.abs(cf.theta.astype(np.float64))) * math.sqrt(eps_r)
    st = _Chcore.start(h_bar, eps_r, -1.0 if sch.name == "backward" else 1.0)
    status = np.full(cf.n, Status.SUCCESS)

    def trial(idx: np.ndarray, it: int) -> np.ndarray:
        t = _differences(cf, idx, st.h[idx], f0, eps_a)
        done = _next_interval(st, idx, t)
        out = ~done & ~t.bad & (it + 1 >= itmax)
        _conclude(st, idx, t, done, out, eps_a)
        status[idx[t.bad]] = Status.NONFINITE
        return done | out | t.bad

    _, iters = active_set(np.ones(cf.n, dtype=bool), itmax, trial)
    h_central = np.where(st.inform == 0, st.h_phi, 10 * st.h_forward)  # chfd's HCNTRL
    for code, s in _INFORM_STATUS.items():
        status[st.inform == code] = s
    level.flag(status)
    step = h_central if sch.name == "central" else st.h_forward  # chfd's HFD is HOPT
    return result("gmsw", cf, sch, step, status, {
        **level.info(), "eps_r": eps_r, "inform": st.inform,
        "iterations": iters, "phi": st.phi, "h_phi": st.h_phi, "h_forward": st.h_forward,
        "h_central": h_central,
        "scheme_note": "forward-difference interval; central = NPSOL's central interval h_phi",
    })
