"""Finite-difference step-size rules from the literature, measured the same way.

Every rule is ``rule(f, theta=None, format="float64", scheme=..., **options) ->
StepResult`` (:class:`gradlab.steps.StepResult`): per coordinate the nominal step
``h``, a :data:`gradlab.steps.STATUS` code, and ``nfev``, the evaluations of J the
rule spent. A rule sees J only through a :class:`gradlab.steps.CoordinateFunction`,
so every value is J computed in the format and every evaluation is counted; the
rules iterate all coordinates at once (one batch of points per iteration).

Trial points are formed in the format, ``fl(theta_i + fl(t))``. The rules' own
difference quotients use the offsets the format realised,
``d = fl(theta_i + fl(t)) - theta_i`` (Numerical Recipes §5.7's ``temp = x + h;
h = temp - x``, generalised to a stencil by taking divided differences on the actual
abscissae), so a trial step near the format's spacing is not mistaken for curvature.
With exact offsets every formula below reduces to the paper's.

One quantity, four tests. For a divided difference ``f[x_0..x_m] = sum_j w_j f_j``
of the values on a stencil, ``eps_f sum_j |w_j|`` bounds its noise when every value
errs by at most eps_f, and ``r = |f[x_0..x_m]| / (eps_f sum_j |w_j|)`` measures
curvature against noise. The noise-aware searches all accept a step by a window on
this ratio: Gill et al. (m = 2 on 0, h, 2h) want ``1/C(Phi) = r`` in [10, 1000];
Moré & Wild (m = 2 on -h, 0, h) want ``|Delta| >= 100 eps_f``, i.e. r >= 25;
Dumontet & Vignes (m = 3 on -2k..2k) accept their bound ratio for r in [8/7, 3];
Shi et al. (m = 2 on 0, h, 4h, or m = 3 on -3h, -h, h, 3h) want r in [1.5, 6].

======================  ===============================  =======================================
rule                    schemes                          reference
======================  ===============================  =======================================
fixed                   any (nfev 0)                     the classic defaults 1e-7 ... 1e-3
relative                any (nfev 0)                     Dennis & Schnabel 1983; Nocedal &
                                                         Wright 2006 §8.1
gmsw                    forward, backward; central =     Gill, Murray, Saunders & Wright 1983
                        NPSOL's central interval         (NPSOL's chcore / chfd)
stepleman_winarsky      central                          Stepleman & Winarsky 1979
dumontet_vignes         central                          Dumontet & Vignes 1977
more_wild               forward, backward                Moré & Wild 2012
more_wild_central       central                          Moré & Wild 2012, central analogue
shi_xie_xuan_nocedal    forward, backward, central       Shi, Xie, Xuan & Nocedal 2022
ridders                 central (returns ``approx``)     Ridders 1982; Press et al. 1992 dfridr
fdm_bound               every real scheme                FiniteDifferences.jl's step estimate
======================  ===============================  =======================================

The noise-aware rules take ``noise``: ``"ecnoise"`` (default: Moré & Wild 2011 on
``n_lines`` random-sign lines of ``nf`` points, via :func:`gradlab.steps._noise`;
its evaluations count in ``nfev``; if it detects no noise the level falls back to
one rounding of J and the status of every otherwise successful coordinate is 3),
``"roundoff"`` (``u |J(theta)|``), or a positive number (the noise level, given).
They treat eps_f as the papers do: as the size of the error of one value of J.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import schemes as schs
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.arithmetic.objective import Objective
from gradlab.steps.optimal import _noise
from gradlab.steps.results import StepResult

__all__ = [
    "RULES",
    "dumontet_vignes",
    "fdm_bound",
    "fixed",
    "gmsw",
    "more_wild",
    "more_wild_central",
    "relative",
    "ridders",
    "shi_xie_xuan_nocedal",
    "stepleman_winarsky",
]

FunctionLike = Objective | Callable[[np.ndarray], Any]
NoiseSpec = str | float

_ONE_SIDED = ("forward", "backward")
_REAL = ("forward", "backward", "central", "central4", "central6")


# ---------------------------------------------------------------- validation


def _positive(name: str, value: Any) -> float:
    """A positive finite float, or ValueError naming the parameter."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return v


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _noise_spec(noise: Any) -> NoiseSpec:
    if isinstance(noise, str):
        if noise not in ("ecnoise", "roundoff"):
            raise ValueError(f"noise must be 'ecnoise', 'roundoff' or a positive number, got {noise!r}")
        return noise
    return _positive("noise", noise)


def _ecnoise_options(n_lines: Any, nf: Any, seed: Any) -> tuple[int, int, int]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return _integer("n_lines", n_lines, 1), _integer("nf", nf, 7), int(seed)


def _setup(
    rule: str, f: FunctionLike, theta: Any, format: fmts.Format | str,
    scheme: schs.Scheme | str, allowed: tuple[str, ...] | None,
) -> tuple[CoordinateFunction, schs.Scheme]:
    """Check f, theta, format and scheme for a rule; the counted evaluator and the scheme."""
    sch = schs.get(scheme)  # ValueError naming `scheme` for an unknown name
    if allowed is not None and sch.name not in allowed:
        raise ValueError(f"scheme: {rule} chooses a step for {' or '.join(allowed)} differences, "
                         f"got {sch.name!r}")
    if not callable(f) and not isinstance(f, Objective):
        raise TypeError(f"f must be an Objective or a callable, got {type(f).__name__}")
    fmt = fmts.get(format)  # ValueError naming `format` for an unknown name
    if fmt.dtype is None:
        raise ValueError(f"format: step rules run in hardware formats, got the emulated {fmt.name!r}")
    return CoordinateFunction(f, theta, fmt), sch


# ---------------------------------------------------------------- shared numerics


def _scale(cf: CoordinateFunction) -> np.ndarray:
    """max(1, |theta_i|): the coordinate's typical size (Dennis & Schnabel's typ x = 1)."""
    return np.maximum(np.abs(cf.theta.astype(np.float64)), 1.0)


def _probe(cf: CoordinateFunction, coords: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """J at ``fl(theta_c + fl(t))`` for each (coord, t) pair, and the offsets realised.

    The offset ``fl(theta_c + fl(t)) - theta_c`` is computed exactly (in float64 for
    formats of at most 53 bits, where the difference of two of their values near each
    other is exact; in longdouble for longdouble).
    """
    coords = np.asarray(coords, dtype=int).ravel()
    steps = np.asarray(steps, dtype=np.float64).ravel()
    if coords.size == 0:
        return np.empty(0), np.empty(0)
    base = cf.theta[coords]
    wide = np.longdouble if cf.fmt.p > 53 else np.float64
    with np.errstate(over="ignore"):  # a point beyond the format's range: J's value there says so
        x = base + fmts.round_array(steps, cf.fmt)
        offsets = (x.astype(wide) - base.astype(wide)).astype(np.float64)
    return cf.evaluate(cf.points(coords, x)), offsets


def _divided(nodes: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise divided difference ``f[x_0..x_m] = sum_j w_j f_j``, ``w_j = 1/prod_{k!=j}
    (x_j - x_k)``, and its noise gain ``sum_j |w_j|``.

    The values enter as differences from the first (sum_j w_j = 0), which keeps
    float64's own rounding of the sum below the values' noise. Rows whose nodes
    coincide, or whose values are not finite, give NaN.
    """
    m1 = nodes.shape[1]
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


def _noise_level(
    cf: CoordinateFunction, noise: NoiseSpec, f0: float, n_lines: int, nf: int, seed: int
) -> tuple[float, str, bool]:
    """The noise level eps_f, where it came from, and whether it was found as asked."""
    floor = cf.fmt.u * max(abs(f0), float(cf.fmt.smallest_normal))
    if noise == "roundoff":
        return floor, "roundoff: u |J(theta)|", True
    if noise == "ecnoise":
        sigma = _noise(cf, n_lines, nf, seed)
        if math.isfinite(sigma) and sigma > 0:
            return sigma, "ecnoise", True
        return floor, "roundoff: u |J(theta)| (ECnoise detected no noise)", False
    return float(noise), "given", True


def _eps_rel(eps_f: float, f0: float) -> float:
    """Relative noise eps_f / |J|, capped at 1 (for the well-scaled starting guesses)."""
    return min(1.0, eps_f / max(abs(f0), np.finfo(np.float64).tiny))


def _realised(cf: CoordinateFunction, h: np.ndarray) -> np.ndarray:
    """``fl(theta_i + fl(h_i)) - theta_i``: the forward step the format realises (no evaluation)."""
    base = cf.theta
    wide = np.longdouble if cf.fmt.p > 53 else np.float64
    with np.errstate(over="ignore", invalid="ignore"):
        x = base + fmts.round_array(np.where(np.isfinite(h), h, 0.0), cf.fmt)
        return (x.astype(wide) - base.astype(wide)).astype(np.float64)


def _result(
    rule: str, cf: CoordinateFunction, sch: schs.Scheme, h: np.ndarray, status: np.ndarray,
    info: dict[str, Any], approx: np.ndarray | None = None,
) -> StepResult:
    h = np.asarray(h, dtype=np.float64)
    info = {**info, "h_realised": _realised(cf, h), "fp_events": dict(cf.fp_events),
            "upcasts": cf.upcasts}
    return StepResult(rule=rule, format=cf.fmt.name, scheme=sch.name, h=h, nfev=cf.nfev,
                      status=np.asarray(status, dtype=int), approx=approx, info=info)


def _short(x: float) -> str:
    """1e-07 -> '1e-7', 2.5e-04 -> '2.5e-4'."""
    mant, exp = f"{x:.6e}".split("e")
    return f"{mant.rstrip('0').rstrip('.')}e{int(exp)}"


# ---------------------------------------------------------------- nfev-free rules


def fixed(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, h: float = 1e-7,
) -> StepResult:
    """One absolute step for every coordinate, format and scheme.

    The defaults of the tools people use: 1e-7 (the classic gradient-checking
    exercise), 1e-6 (torch.autograd.gradcheck), 1e-4 (jax check_grads), 1e-3.
    Costs nothing; ``info["h_realised"]`` shows what the format makes of it (0 when
    the step is below the spacing of theta_i).

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
        Defaults to ``f.theta0`` for an Objective.
    format, scheme : str
        Any hardware format and any scheme (recorded; they do not enter).
    h : float
        The step, positive.

    Returns
    -------
    StepResult
        ``nfev == 0``, status 0.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import fixed
    >>> res = fixed(lambda x: np.sum(x**2), np.ones(3), "float16", h=1e-4)
    >>> res.rule, float(res.h[0]), float(res.info["h_realised"][0]), res.nfev
    ('fixed_1e-4', 0.0001, 0.0, 0)
    """
    step = _positive("h", h)
    cf, sch = _setup("fixed", f, theta, format, scheme, None)
    return _result(f"fixed_{_short(step)}", cf, sch, np.full(cf.n, step), np.zeros(cf.n, dtype=int),
                   {"note": "fixed absolute step"})


def relative(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, power: float = 0.5,
) -> StepResult:
    """The rule of thumb ``h_i = u**power * max(1, |theta_i|)``, u of the format.

    ``power = 1/2`` balances truncation and rounding for forward differences and
    ``power = 1/3`` for central ones when J is well scaled (Dennis & Schnabel 1983,
    §5.4 and §5.6; Nocedal & Wright 2006, §8.1; scipy's approx_derivative uses
    u**(1/2) and u**(1/3) of the dtype, FiniteDiff.jl sqrt(eps) and cbrt(eps)).

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format, scheme : str
        The format sets u; the scheme is recorded.
    power : float
        In (0, 1].

    Returns
    -------
    StepResult
        ``nfev == 0``, status 0; ``info["u"]`` is the format's unit roundoff.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import relative
    >>> res = relative(lambda x: np.sum(x**2), np.array([0.5, -4.0]), "float32", power=1/3)
    >>> res.rule, np.allclose(res.h, 2.0**(-24/3) * np.array([1.0, 4.0]))
    ('relative_cbrt_u', True)
    """
    p = _positive("power", power)
    if p > 1:
        raise ValueError(f"power must lie in (0, 1], got {power!r}")
    cf, sch = _setup("relative", f, theta, format, scheme, None)
    if math.isclose(p, 0.5):
        name = "relative_sqrt_u"
    elif math.isclose(p, 1 / 3):
        name = "relative_cbrt_u"
    else:
        name = f"relative_u^{p:g}"
    u = cf.fmt.u
    return _result(name, cf, sch, u**p * _scale(cf), np.zeros(cf.n, dtype=int), {"u": u, "power": p})


# ---------------------------------------------------------------- Gill, Murray, Saunders & Wright


def gmsw(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "forward", *, noise: NoiseSpec = "ecnoise", maxiter: int = 3,
    n_lines: int = 2, nf: int = 9, seed: int = 0,
) -> StepResult:
    """Forward-difference intervals by algorithm FD of Gill, Murray, Saunders & Wright.

    The version NPSOL runs (its routines ``chfd`` and ``chcore``), per coordinate:
    with eps_A = eps_R (1 + |f|) the absolute error of J, start from ten times the
    well-scaled interval ``2 (1 + |x|) sqrt(eps_R)``; from f(x), f(x+h), f(x+2h)
    form the second difference Phi = (f0 - 2 f1 + f2)/h**2 and the bound on its
    relative condition error ``C(Phi) = 4 eps_A / (h**2 |Phi|)``; accept h when
    1e-3 <= C(Phi) <= 1e-1, otherwise grow h by rho = eps_R**(-1/6)/4 (C too large)
    or shrink it by 10 rho (C too small), at most ``maxiter`` = 3 trials; accept the
    previous h if C jumps from too small to too large. The forward interval is
    ``h_F = 2 sqrt(eps_A / |Phi|)``.

    Failures are NPSOL's: the first differences never rose above the noise ("constant?",
    status 2, ``h_F`` = the well-scaled interval), C(Phi) never fell to 0.1 ("linear or
    odd?", status 5, ``h_F`` = the last interval whose first difference was reliable),
    C(Phi) stayed below 1e-3 ("too nonlinear?", status 1, same fallback). NPSOL's
    raw codes are in ``info["inform"]`` (4: forward and central estimates disagree,
    a warning only; 5, ours: J not finite at a trial point, status 4 and the
    well-scaled interval).

    Schemes: ``forward``; ``backward`` runs the same search on x - h, x - 2h (NPSOL's
    negative intervals near an upper bound). For ``central`` the step is NPSOL's own
    central-difference interval from the same search (``hcntrl`` in ``chfd``): the
    interval h_Phi at which Phi was accepted, or 10 h_F when the search failed. That
    interval is of order eps^(1/2), not the eps^(1/3) the central error model wants,
    so it is smaller than the central optimum by about (eps_A/|J|)^(-1/6); it is what
    NPSOL uses.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"forward", "backward", "central"}
    noise : "ecnoise", "roundoff" or float
        eps_A (see the module docstring); eps_R = eps_A / (1 + |f|).
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
    noise = _noise_spec(noise)
    itmax = _integer("maxiter", maxiter, 1)
    n_lines, nf, seed = _ecnoise_options(n_lines, nf, seed)
    cf, sch = _setup("gmsw", f, theta, format, scheme, ("forward", "backward", "central"))
    n = cf.n
    f0 = cf.center()
    eps_a, source, found = _noise_level(cf, noise, f0, n_lines, nf, seed)
    eps_r = eps_a / (1 + abs(f0))
    bndlo, bndup = 1e-3, 1e-1
    sign = -1.0 if sch.name == "backward" else 1.0
    hopt0 = 2 * (1 + np.abs(cf.theta.astype(np.float64))) * math.sqrt(eps_r)
    h = sign * 10 * hopt0
    rho = np.full(n, eps_r ** (-1 / 6) / 4)
    first = np.ones(n, dtype=bool)
    ce1big = np.zeros(n, dtype=bool)
    ce2big = np.zeros(n, dtype=bool)
    te2big = np.zeros(n, dtype=bool)
    oldh = h.copy()
    hsave = np.full(n, np.nan)
    sdsave = np.zeros(n)
    sdest = np.zeros(n)
    fdest = np.zeros(n)
    cdest = np.zeros(n)
    hopt = hopt0.copy()
    hphi = np.full(n, np.nan)
    inform = np.full(n, -1)
    iters = np.zeros(n, dtype=int)
    status = np.zeros(n, dtype=int)
    active = np.ones(n, dtype=bool)
    while active.any():
        idx = np.flatnonzero(active)
        hk = h[idx]
        vals, offs = _probe(cf, np.repeat(idx, 2), np.stack([hk, 2 * hk], axis=1))
        vals, offs = vals.reshape(-1, 2), offs.reshape(-1, 2)
        iters[idx] += 1
        nodes = np.column_stack([np.zeros(idx.size), offs])
        v = np.column_stack([np.full(idx.size, f0), vals])
        dd2, _ = _divided(nodes, v)
        bad = ~np.all(np.isfinite(vals), axis=1)
        # collapsed nodes (a step below the spacing): the differences are all noise
        flat = ~bad & ~np.isfinite(dd2)
        d1 = np.where(flat | bad, np.abs(hk), offs[:, 0])
        with np.errstate(divide="ignore", invalid="ignore"):
            fd = np.where(flat, 0.0, (vals[:, 0] - f0) / d1)
            fd2 = np.where(flat, 0.0, (vals[:, 1] - f0) / np.where(flat, 1.0, offs[:, 1]))
            sd = np.where(flat, 0.0, 2 * dd2)
            cd = np.where(flat, 0.0, fd - d1 * dd2)  # (4 f1 - 3 f0 - f2) / (2h)
            fdcerr = eps_a / (0.5 * np.abs(d1) * np.minimum(np.abs(fd), np.abs(fd2)))
            sdcerr = eps_a / (0.25 * np.abs(sd) * d1**2)
        fdcerr = np.where(np.isnan(fdcerr), np.inf, fdcerr)
        sdcerr = np.where(np.isnan(sdcerr), np.inf, sdcerr)
        old_sd, old_cd = sdest[idx].copy(), cdest[idx].copy()
        F, CE1, CE2, TE2 = first[idx], ce1big[idx].copy(), ce2big[idx].copy(), te2big[idx].copy()
        H, OLDH, R = hk.copy(), oldh[idx].copy(), rho[idx].copy()
        SD, CD = sd.copy(), cd.copy()
        done = np.zeros(idx.size, dtype=bool)
        save = np.zeros(idx.size, dtype=bool)
        # first trial
        done[F] = (sdcerr[F] >= bndlo) & (sdcerr[F] <= bndup)
        TE2[F], CE2[F], CE1[F] = sdcerr[F] < bndlo, sdcerr[F] > bndup, fdcerr[F] > bndup
        save |= F & ~CE1
        R[F & TE2] *= 10
        shrink, grow = F & TE2, F & CE2
        # the interval was grown to reduce C(Phi)
        m2 = ~F & CE2
        fix = m2 & CE1 & (fdcerr <= bndup)
        CE1[fix] = False
        save |= fix
        done[m2] = sdcerr[m2] <= bndup
        grow |= m2 & ~done
        # the interval was shrunk to reduce the truncation error
        m3 = ~F & ~CE2 & TE2
        jump = m3 & (sdcerr > bndup)  # C(Phi) jumped from too small to too large: take the previous h
        done |= jump
        H[jump], SD[jump], CD[jump] = OLDH[jump], old_sd[jump], old_cd[jump]
        rest = m3 & ~jump
        fix = rest & (fdcerr <= bndup)
        CE1[fix] = False
        save |= fix
        done[rest] = sdcerr[rest] >= bndlo
        shrink |= rest & ~done
        OLDH[shrink | grow] = H[shrink | grow]
        H[shrink] /= R[shrink]
        H[grow] *= R[grow]
        hsave[idx[save]] = hk[save]
        sdsave[idx[save]] = sd[save]
        # write back
        first[idx] = False
        ce1big[idx], ce2big[idx], te2big[idx] = CE1, CE2, TE2
        h[idx], oldh[idx], rho[idx] = H, OLDH, R
        sdest[idx], cdest[idx], fdest[idx] = SD, CD, fd
        ok = done & ~bad
        j = idx[ok]
        hphi[j] = np.abs(H[ok])
        hopt[j] = 2 * math.sqrt(eps_a) / np.sqrt(np.abs(SD[ok]))
        errbnd = np.maximum(hopt[j] * np.abs(SD[ok]), np.abs(fd[ok] - CD[ok]))
        inform[j] = np.where(errbnd > 0.5 * np.abs(fd[ok]), 4, 0)
        out = ~done & ~bad & (iters[idx] >= itmax)
        j = idx[out & CE1]
        inform[j], hphi[j], hopt[j], sdest[j] = 1, hopt0[j], hopt0[j], 0.0
        j = idx[out & ~CE1 & CE2]
        inform[j], sdest[j] = 2, 0.0
        hphi[j] = hopt[j] = np.abs(hsave[j])
        j = idx[out & ~CE1 & ~CE2]
        inform[j], sdest[j] = 3, sdsave[j]
        hphi[j] = hopt[j] = np.abs(hsave[j])
        j = idx[bad]
        inform[j], status[j], hphi[j], hopt[j] = 5, 4, hopt0[j], hopt0[j]
        active[idx[done | out | bad]] = False
    h_forward = hopt  # chfd's HFD for a single function is HOPT
    h_central = np.where(inform == 0, hphi, 10 * h_forward)  # chfd's HCNTRL
    status = np.where(inform == 1, 2, np.where(inform == 2, 5, np.where(inform == 3, 1, status)))
    if not found:
        status[status == 0] = 3
    step = h_central if sch.name == "central" else h_forward
    return _result("gmsw", cf, sch, step, status, {
        "noise": eps_a, "noise_source": source, "eps_r": eps_r, "inform": inform, "iterations": iters,
        "phi": sdest, "h_phi": hphi, "h_forward": h_forward, "h_central": h_central,
        "scheme_note": "forward-difference interval; central = NPSOL's central interval h_phi",
    })


# ---------------------------------------------------------------- Stepleman & Winarsky


def _central_difference(cf: CoordinateFunction, idx: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(f(x + d+) - f(x - d-)) / (d+ + d-) at the realised offsets, for coordinates idx."""
    vals, offs = _probe(cf, np.repeat(idx, 2), np.stack([h, -h], axis=1))
    vals, offs = vals.reshape(-1, 2), offs.reshape(-1, 2)
    dd, _ = _divided(offs, vals)
    return dd


def stepleman_winarsky(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, h0: float | None = None, beta: float = 4.0,
    maxiter: int = 40,
) -> StepResult:
    """Shrink the central-difference step until successive differences stop decreasing.

    Stepleman & Winarsky (1979): with ``h_k = h0 / beta**k`` and central differences
    ``D_k``, the differences ``|D_k - D_{k-1}|`` fall like ``beta**-2k`` while
    truncation dominates and grow once rounding takes over. Stop at the first k with
    ``|D_k - D_{k-1}| >= |D_{k-1} - D_{k-2}|`` and return ``h_{k-1}``, the last
    step before the noise. The start must lie where truncation dominates; the default
    ``h0 = 0.1 max(1, |x_i|)``.

    Status 5 when every difference was zero up to the stop (no truncation seen),
    1 when the step fell below the format's spacing of theta_i (or ``maxiter``) without
    a stop, 4 when J was not finite. Central differences only.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"central"}
    h0 : float, optional
        Absolute first step; default ``0.1 max(1, |theta_i|)``.
    beta : float
        Reduction factor, > 1 (4 is the usual choice).
    maxiter : int
        Most reductions.

    Returns
    -------
    StepResult
        ``info``: ``iterations``, ``derivative`` (D at the returned step).

    References
    ----------
    R. S. Stepleman and N. D. Winarsky, Adaptive numerical differentiation, Math. Comp.
    33(148):1257-1264, 1979.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import stepleman_winarsky
    >>> res = stepleman_winarsky(lambda x: np.sum(np.exp(x)), np.zeros(2))
    >>> bool(1e-7 < res.h[0] < 1e-4), res.status.tolist()
    (True, [0, 0])
    """
    beta = _positive("beta", beta)
    if beta <= 1:
        raise ValueError(f"beta must exceed 1, got {beta!r}")
    if h0 is not None:
        h0 = _positive("h0", h0)
    itmax = _integer("maxiter", maxiter, 2)
    cf, sch = _setup("stepleman_winarsky", f, theta, format, scheme, ("central",))
    n = cf.n
    s = _scale(cf)
    start = 0.1 * s if h0 is None else np.full(n, h0)
    floor = 2 * cf.fmt.eps * s
    idx = np.arange(n)
    d_prev = _central_difference(cf, idx, start)  # D_0
    h_prev = start.copy()
    h_cur = start / beta
    d_cur = _central_difference(cf, idx, h_cur)  # D_1
    gap = np.abs(d_cur - d_prev)
    seen = gap > 0  # some truncation was measured
    out_h = h_cur.copy()
    out_d = d_cur.copy()
    status = np.zeros(n, dtype=int)
    iters = np.ones(n, dtype=int)
    bad = ~np.isfinite(d_cur)
    status[bad] = 4
    out_h[bad] = np.where(np.isfinite(d_prev[bad]), h_prev[bad], start[bad])
    out_d[bad] = d_prev[bad]
    active = ~bad
    for _k in range(2, itmax + 1):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        h_new = h_cur[idx] / beta
        d_new = _central_difference(cf, idx, h_new)
        iters[idx] += 1
        gap_new = np.abs(d_new - d_cur[idx])
        nonfinite = ~np.isfinite(d_new)
        stop = ~nonfinite & (gap_new >= gap[idx])
        tiny = ~stop & ~nonfinite & (h_new < floor[idx])
        for mask, code in ((stop, 0), (nonfinite, 4), (tiny, 1)):
            j = idx[mask]
            out_h[j], out_d[j] = h_cur[j], d_cur[j]
            status[j] = code
            active[j] = False
        j = idx[stop & ~seen[idx]]
        status[j] = 5
        h_cur[idx], d_cur[idx], gap[idx] = h_new, d_new, gap_new
        seen[idx] |= gap_new > 0
    j = np.flatnonzero(active)
    out_h[j], out_d[j], status[j] = h_cur[j], d_cur[j], 1
    return _result("stepleman_winarsky", cf, sch, out_h, status, {
        "iterations": iters, "derivative": out_d, "beta": beta,
        "scheme_note": "central differences",
    })


# ---------------------------------------------------------------- Dumontet & Vignes


def dumontet_vignes(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, noise: NoiseSpec = "ecnoise", maxiter: int = 30,
    n_lines: int = 2, nf: int = 9, seed: int = 0,
) -> StepResult:
    """Central-difference step from a third derivative estimated with error bounds.

    Dumontet & Vignes (1977): estimate f''' by the four-point formula
    ``(f(x+2k) - 2 f(x+k) + 2 f(x-k) - f(x-2k)) / (2 k**3)`` together with the
    bounds f'''_inf, f'''_sup it takes when every value errs by at most eps_f, and
    search k until the ratio ``L = f'''_sup / f'''_inf`` lies in [1/15, 1/2] or
    [2, 15] (the rounding error is a sizeable but minor part of the estimate);
    L in (1/2, 2) means k is too large, anything else too small. Then
    ``h = (3 eps_f / |f'''|)**(1/3)``, the central-difference optimum.

    The search starts from the well-scaled guess ``(eps_f/|J|)**(1/3) max(1,|x_i|)``,
    moves by factors of 4 until k is bracketed, then bisects in log scale (the paper
    bisects a given bracket). k is kept in [4 eps max(1,|x_i|), max(1,|x_i|)].
    Status 1 when ``maxiter`` ran out, 5 when no truncation was found up to the largest
    k, 2 when the bracket closed below; the fallback step uses the last f''' estimate or,
    if that is below its own error bound, the bound.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"central"}
    noise : "ecnoise", "roundoff" or float
        eps_f (the paper's relative precision of f times |f|).
    maxiter : int
    n_lines, nf, seed
        The ECnoise sample.

    Returns
    -------
    StepResult
        ``info``: ``noise``, ``noise_source``, ``third`` (f'''), ``k``, ``ratio`` (L),
        ``iterations``.

    References
    ----------
    J. Dumontet and J. Vignes, Détermination du pas optimal dans le calcul des dérivées
    sur ordinateur, RAIRO Analyse numérique 11(1):13-25, 1977.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import dumontet_vignes
    >>> res = dumontet_vignes(lambda x: np.sum(np.exp(x)), np.zeros(1), noise=1e-12)
    >>> bool(abs(res.h[0] / (3e-12) ** (1 / 3) - 1) < 0.1), res.status.tolist()
    (True, [0])
    """
    noise = _noise_spec(noise)
    itmax = _integer("maxiter", maxiter, 1)
    n_lines, nf, seed = _ecnoise_options(n_lines, nf, seed)
    cf, sch = _setup("dumontet_vignes", f, theta, format, scheme, ("central",))
    n = cf.n
    s = _scale(cf)
    f0 = cf.center()
    eps_f, source, found = _noise_level(cf, noise, f0, n_lines, nf, seed)
    kmin, kmax = 4 * cf.fmt.eps * s, s
    k = np.clip(_eps_rel(eps_f, f0) ** (1 / 3) * s, kmin, kmax)
    lo = np.zeros(n)
    hi = np.full(n, np.inf)
    third = np.full(n, np.nan)
    bound = np.full(n, np.nan)
    ratio = np.full(n, np.nan)
    kept = np.full(n, np.nan)
    iters = np.zeros(n, dtype=int)
    status = np.full(n, 1)
    active = np.ones(n, dtype=bool)
    mult = np.array([-2.0, -1.0, 1.0, 2.0])
    for _it in range(itmax):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        kk = k[idx]
        vals, offs = _probe(cf, np.repeat(idx, 4), kk[:, None] * mult[None, :])
        dd, gain = _divided(offs.reshape(-1, 4), vals.reshape(-1, 4))
        iters[idx] += 1
        f3, err = 6 * dd, 6 * eps_f * gain
        f3inf, f3sup = f3 - err, f3 + err
        with np.errstate(divide="ignore", invalid="ignore"):
            L = np.where(f3inf != 0, f3sup / f3inf, np.inf)
        finite = np.all(np.isfinite(vals.reshape(-1, 4)), axis=1)
        collapsed = finite & ~np.isfinite(dd)
        ok = finite & ~collapsed & (((L >= 1 / 15) & (L <= 0.5)) | ((L >= 2) & (L <= 15)))
        too_large = (finite & ~collapsed & (L > 0.5) & (L < 2)) | ~finite
        too_small = ~ok & ~too_large
        has = np.isfinite(f3)
        third[idx[has]], bound[idx[has]], ratio[idx[has]], kept[idx[has]] = f3[has], err[has], L[has], kk[has]
        j = idx[ok]
        status[j] = 0
        active[j] = False
        lo[idx[too_small]] = kk[too_small]
        hi[idx[too_large]] = kk[too_large]
        up = too_small & np.isinf(hi[idx])
        down = too_large & (lo[idx] == 0)
        both = (too_small | too_large) & ~up & ~down
        at_top = up & (kk >= kmax[idx])
        at_bottom = down & (kk <= kmin[idx])
        status[idx[at_top]] = 5
        status[idx[at_bottom]] = 2
        active[idx[at_top | at_bottom]] = False
        k[idx[up]] = np.minimum(4 * kk[up], kmax[idx[up]])
        k[idx[down]] = np.maximum(kk[down] / 4, kmin[idx[down]])
        k[idx[both]] = np.sqrt(lo[idx[both]] * hi[idx[both]])
    with np.errstate(divide="ignore"):
        h = (3 * eps_f / np.abs(third)) ** (1 / 3)
        fallback = np.minimum((3 * eps_f / np.fmax(np.abs(third), bound)) ** (1 / 3), s)
    h = np.where(status == 0, h, fallback)
    h = np.where(np.isfinite(h) & (h > 0), h, s)
    if not found:
        status[status == 0] = 3
    return _result("dumontet_vignes", cf, sch, h, status, {
        "noise": eps_f, "noise_source": source, "third": third, "k": kept, "ratio": ratio,
        "iterations": iters, "scheme_note": "central differences",
    })


# ---------------------------------------------------------------- Moré & Wild


def _more_wild(
    rule: str, order: int, f: FunctionLike, theta: Any, format: fmts.Format | str,
    scheme: schs.Scheme | str, allowed: tuple[str, ...], noise: Any, tau1: Any, tau2: Any,
    n_lines: Any, nf: Any, seed: Any,
) -> StepResult:
    """Shared body of :func:`more_wild` (order 2) and :func:`more_wild_central` (order 3)."""
    noise = _noise_spec(noise)
    tau1, tau2 = _positive("tau1", tau1), _positive("tau2", tau2)
    n_lines, nf, seed = _ecnoise_options(n_lines, nf, seed)
    cf, sch = _setup(rule, f, theta, format, scheme, allowed)
    n = cf.n
    s = _scale(cf)
    f0 = cf.center()
    eps_f, source, found = _noise_level(cf, noise, f0, n_lines, nf, seed)
    mult = np.array([-1.0, 1.0]) if order == 2 else np.array([-2.0, -1.0, 1.0, 2.0])
    unit = 1.0 if order == 2 else 2.0  # Delta = unit h**order |f^(order)|

    def trial(idx: np.ndarray, hh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The derivative estimate mu and the acceptance of the tests, for coordinates idx."""
        vals, offs = _probe(cf, np.repeat(idx, mult.size), hh[:, None] * mult[None, :])
        vals, offs = vals.reshape(-1, mult.size), offs.reshape(-1, mult.size)
        if order == 2:  # -h, 0, h
            dd, _ = _divided(np.column_stack([offs[:, :1], np.zeros(idx.size), offs[:, 1:]]),
                             np.column_stack([vals[:, :1], np.full(idx.size, f0), vals[:, 1:]]))
        else:  # -2h, -h, h, 2h; f(x) enters the tau2 test only
            dd, _ = _divided(offs, vals)
        mu = math.factorial(order) * dd
        h_eff = (offs[:, -1] - offs[:, 0]) / (mult[-1] - mult[0])
        delta = unit * np.abs(mu) * h_eff**order
        with np.errstate(invalid="ignore"):
            near = np.all(np.abs(vals - f0) <= tau2 * np.maximum(abs(f0), np.abs(vals)), axis=1)
            ok = np.isfinite(mu) & (delta >= tau1 * eps_f) & near
        return mu, ok

    iters = np.ones(n, dtype=int)
    status = np.zeros(n, dtype=int)
    h_a = eps_f ** (1 / (order + 2)) * s
    idx = np.arange(n)
    mu_a, ok_a = trial(idx, h_a)
    mu = np.where(ok_a, np.abs(mu_a), np.nan)
    h_b = np.full(n, np.nan)
    mu_b = np.full(n, np.nan)
    retry = ~ok_a & np.isfinite(mu_a) & (mu_a != 0)
    status[~ok_a & ~np.isfinite(mu_a)] = 4
    status[~ok_a & (mu_a == 0)] = 5
    idx = np.flatnonzero(retry)
    if idx.size:
        h_b[idx] = np.minimum((eps_f / np.abs(mu_a[idx])) ** (1 / (order + 2)), s[idx])
        mb, ok_b = trial(idx, h_b[idx])
        iters[idx] += 1
        mu_b[idx] = mb
        agree = np.abs(np.abs(mu_a[idx]) - np.abs(mb)) <= 0.5 * np.abs(mb)
        acc = np.isfinite(mb) & (ok_b | agree)
        mu[idx[acc]] = np.abs(mb[acc])
        status[idx[~acc]] = np.where(np.isfinite(mb[~acc]), 2, 4)
        use = ~acc & np.isfinite(mb) & (mb != 0)
        mu[idx[use]] = np.abs(mb[use])  # the fallback: the last estimate, flagged
    with np.errstate(divide="ignore", invalid="ignore"):
        if order == 2:
            h = 8 ** 0.25 * np.sqrt(eps_f / mu)
            thumb = math.sqrt(_eps_rel(eps_f, f0)) * s
        else:
            h = (3 * eps_f / mu) ** (1 / 3)
            thumb = _eps_rel(eps_f, f0) ** (1 / 3) * s
    h = np.where(np.isfinite(h) & (h > 0), h, thumb)
    if not found:
        status[status == 0] = 3
    name = "second" if order == 2 else "third"
    return _result(rule, cf, sch, h, status, {
        "noise": eps_f, "noise_source": source, name: mu, "mu_a": mu_a, "mu_b": mu_b, "h_a": h_a,
        "h_b": h_b, "iterations": iters,
        "scheme_note": "forward differences" if order == 2 else "central differences",
    })


def more_wild(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "forward", *, noise: NoiseSpec = "ecnoise", tau1: float = 100.0,
    tau2: float = 0.1, n_lines: int = 2, nf: int = 9, seed: int = 0,
) -> StepResult:
    """Forward-difference step of Moré & Wild (2012) from the noise level and f''.

    ``h = 8**(1/4) sqrt(eps_f / mu)``, which minimises the mean squared error
    ``(mu h / 2)**2 + 2 eps_f**2 / h**2`` of a forward difference when the values
    carry independent noise of standard deviation eps_f. mu estimates |f''| by the
    second difference ``Delta = f(x+h) - 2 f(x) + f(x-h)``, ``mu = |Delta| / h**2``,
    accepted when ``|Delta| >= tau1 eps_f`` (the difference is not noise) and
    ``|f(x +- h) - f(x)| <= tau2 max(|f(x)|, |f(x +- h)|)`` (h is not too large),
    tau1 = 100, tau2 = 0.1. The first trial is ``h_a = eps_f**(1/4) max(1,|x_i|)``
    (the paper's eps_f**(1/4) for a unit direction, scaled by the coordinate); if it
    fails, ``h_b = (eps_f / mu_a)**(1/4)``, the step that balances the second
    difference's truncation and noise, and mu_b is accepted if it passes the tests
    or agrees with mu_a within half of itself. Otherwise status 2 and the step from
    mu_b (the last estimate).

    Forward (or backward, the same step) differences only: for central differences
    use :func:`more_wild_central`.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"forward", "backward"}
    noise : "ecnoise", "roundoff" or float
        eps_f (see the module docstring).
    tau1, tau2 : float
        The tests' constants.
    n_lines, nf, seed
        The ECnoise sample.

    Returns
    -------
    StepResult
        ``info``: ``noise``, ``noise_source``, ``second`` (mu), ``mu_a``, ``mu_b``,
        ``h_a``, ``h_b``, ``iterations`` (1 or 2 trials).

    References
    ----------
    J. J. Moré and S. M. Wild, Estimating derivatives of noisy simulations, ACM Trans.
    Math. Softw. 38(3):19, 2012. J. J. Moré and S. M. Wild, Estimating computational
    noise, SIAM J. Sci. Comput. 33(3):1292-1314, 2011.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import more_wild
    >>> res = more_wild(lambda x: np.sum(np.exp(x)), np.zeros(1), noise=1e-10)
    >>> bool(abs(res.h[0] / (8**0.25 * 1e-5) - 1) < 0.01), res.nfev
    (True, 3)
    """
    return _more_wild("more_wild", 2, f, theta, format, scheme, _ONE_SIDED, noise, tau1, tau2,
                      n_lines, nf, seed)


def more_wild_central(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, noise: NoiseSpec = "ecnoise", tau1: float = 100.0,
    tau2: float = 0.1, n_lines: int = 2, nf: int = 9, seed: int = 0,
) -> StepResult:
    """The central-difference analogue of :func:`more_wild`.

    ``h = (3 eps_f / mu)**(1/3)`` minimises the mean squared error
    ``(mu h**2 / 6)**2 + eps_f**2 / (2 h**2)`` of a central difference with
    independent noise of standard deviation eps_f. mu estimates |f'''| by the third
    difference ``Delta = f(x+2h) - 2 f(x+h) + 2 f(x-h) - f(x-2h) = 2 h**3 f'''``,
    ``mu = |Delta| / (2 h**3)``, with Moré & Wild's tests carried over:
    ``|Delta| >= tau1 eps_f`` and ``|f(x + j h) - f(x)| <= tau2 max |f|`` over the
    stencil. The trials are ``h_a = eps_f**(1/5) max(1,|x_i|)`` and
    ``h_b = (eps_f / mu_a)**(1/5)``: the estimate's truncation ``h**2 f^(5) / 4``
    and noise ``~ eps_f / h**3`` balance at ``h ~ (eps_f / f^(5))**(1/5)``, and
    f^(5) is replaced by mu as Moré & Wild replace f'''' by mu for the second
    difference. Acceptance and fallback as in :func:`more_wild`.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"central"}
    noise, tau1, tau2, n_lines, nf, seed
        As in :func:`more_wild`.

    Returns
    -------
    StepResult
        ``info``: as :func:`more_wild`, with ``third`` (mu) for ``second``.

    References
    ----------
    J. J. Moré and S. M. Wild, Estimating derivatives of noisy simulations, ACM Trans.
    Math. Softw. 38(3):19, 2012.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import more_wild_central
    >>> res = more_wild_central(lambda x: np.sum(np.exp(x)), np.zeros(1), noise=1e-12)
    >>> bool(abs(res.h[0] / (3e-12) ** (1 / 3) - 1) < 0.01), res.nfev
    (True, 5)
    """
    return _more_wild("more_wild_central", 3, f, theta, format, scheme, ("central",), noise, tau1,
                      tau2, n_lines, nf, seed)


# ---------------------------------------------------------------- Shi, Xie, Xuan & Nocedal


def shi_xie_xuan_nocedal(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, noise: NoiseSpec = "ecnoise", h0: float | None = None,
    rl: float = 1.5, ru: float = 6.0, maxiter: int = 40, n_lines: int = 2, nf: int = 9, seed: int = 0,
) -> StepResult:
    """Bisection on a curvature-to-noise test ratio (Shi, Xie, Xuan & Nocedal 2022).

    Forward: ``r(h) = |f(x+4h) - 4 f(x+h) + 3 f(x)| / (8 eps_f)``; the combination is
    ``6 h**2 f''`` plus at most ``8 eps_f`` of noise, so at the forward optimum
    ``h* = 2 sqrt(eps_f/|f''|)`` r = 3, and r in [rl, ru] = [1.5, 6] puts h in
    ``[sqrt((rl-1)/3), sqrt((ru+1)/3)] h* = [0.41, 1.53] h*`` when eps_f bounds the noise.
    r < rl: h too small (lower bound l = h); r > ru: too large (upper bound u = h);
    h is multiplied by 4 while there is no upper bound, divided by 4 while there is
    no lower bound (both reuse a value: 4h becomes h), and then bisected (we bisect
    in log scale, ``sqrt(l u)``).

    Central (derived the same way): ``r(h) = |f(x+3h) - 3 f(x+h) + 3 f(x-h) -
    f(x-3h)| / (8 eps_f)``; the combination is ``8 h**3 f'''`` plus at most
    ``8 eps_f`` of noise, so at the central optimum ``h* = (3 eps_f/|f'''|)**(1/3)``
    again r = 3, and the same window gives ``[((rl-1)/3)**(1/3), ((ru+1)/3)**(1/3)] h*
    = [0.55, 1.33] h*``. The search moves by factors of 3 (3h becomes h).
    Backward mirrors forward.

    With realised offsets the ratio is ``|f[x_0..x_m]| / (eps_f sum|w_j|)`` (module
    docstring), the paper's r for exact ones. Non-finite values count as "too large".
    The search is confined to [4 eps, 1] max(1,|x_i|): status 5 when no curvature was
    found at the top, 2 when r stayed too large at the bottom, 1 after ``maxiter``.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"forward", "backward", "central"}
    noise : "ecnoise", "roundoff" or float
        eps_f (see the module docstring).
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
        ``info``: ``noise``, ``noise_source``, ``ratio`` (r at the returned step),
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
    noise = _noise_spec(noise)
    rl, ru = _positive("rl", rl), _positive("ru", ru)
    if not 1 < rl < ru:
        raise ValueError(f"rl and ru must satisfy 1 < rl < ru, got rl={rl!r}, ru={ru!r}")
    if h0 is not None:
        h0 = _positive("h0", h0)
    itmax = _integer("maxiter", maxiter, 1)
    n_lines, nf, seed = _ecnoise_options(n_lines, nf, seed)
    cf, sch = _setup("shi_xie_xuan_nocedal", f, theta, format, scheme, ("forward", "backward", "central"))
    n = cf.n
    s = _scale(cf)
    f0 = cf.center()
    eps_f, source, found = _noise_level(cf, noise, f0, n_lines, nf, seed)
    central = sch.name == "central"
    if central:
        mult, factor = np.array([-3.0, -1.0, 1.0, 3.0]), 3.0
        guess = (3 * _eps_rel(eps_f, f0)) ** (1 / 3)
    else:
        sign = -1.0 if sch.name == "backward" else 1.0
        mult, factor = sign * np.array([1.0, 4.0]), 4.0
        guess = 2 * math.sqrt(_eps_rel(eps_f, f0))
    m = mult.size
    hmin, hmax = 4 * cf.fmt.eps * s, s
    h = np.clip(guess * s if h0 is None else np.full(n, h0), hmin, hmax)
    offs = np.full((n, m), np.nan)
    vals = np.full((n, m), np.nan)
    need = np.ones((n, m), dtype=bool)  # which stencil values must be (re)evaluated
    lo = np.zeros(n)
    hi = np.full(n, np.inf)
    ratio = np.full(n, np.nan)
    iters = np.zeros(n, dtype=int)
    status = np.full(n, 1)
    active = np.ones(n, dtype=bool)
    grow_map = [int(np.flatnonzero(mult == k * factor)[0]) if np.any(mult == k * factor) else -1
                for k in mult]  # after h *= factor, slot j holds the old slot grow_map[j]
    shrink_map = [int(np.flatnonzero(mult == k / factor)[0]) if np.any(mult == k / factor) else -1
                  for k in mult]
    for _it in range(itmax):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        rows, slots = np.nonzero(need[idx])
        coords = idx[rows]
        v, d = _probe(cf, coords, h[coords] * mult[slots])
        vals[coords, slots], offs[coords, slots] = v, d
        need[idx] = False
        iters[idx] += 1
        if central:
            dd, gain = _divided(offs[idx], vals[idx])
        else:
            dd, gain = _divided(np.column_stack([np.zeros(idx.size), offs[idx]]),
                                np.column_stack([np.full(idx.size, f0), vals[idx]]))
        r = np.abs(dd) / (eps_f * gain)
        ratio[idx] = r
        finite = np.all(np.isfinite(vals[idx]), axis=1)
        collapsed = finite & ~np.isfinite(r)
        ok = finite & ~collapsed & (r >= rl) & (r <= ru)
        too_large = ~finite | (~collapsed & (r > ru))
        too_small = ~ok & ~too_large
        status[idx[ok]] = 0
        active[idx[ok]] = False
        hk = h[idx]
        lo[idx[too_small]] = hk[too_small]
        hi[idx[too_large]] = hk[too_large]
        up = too_small & np.isinf(hi[idx])
        down = too_large & (lo[idx] == 0)
        both = (too_small | too_large) & ~up & ~down
        at_top = up & (hk * factor > hmax[idx])
        at_bottom = down & (hk / factor < hmin[idx])
        status[idx[at_top]] = 5
        status[idx[at_bottom]] = 2
        active[idx[at_top | at_bottom]] = False
        for mask, scale, slot_map in ((up & ~at_top, factor, grow_map),
                                      (down & ~at_bottom, 1 / factor, shrink_map)):
            j = idx[mask]
            if j.size == 0:
                continue
            old_v, old_d = vals[j].copy(), offs[j].copy()
            h[j] = hk[mask] * scale
            for slot, src in enumerate(slot_map):
                if src >= 0:
                    vals[j, slot], offs[j, slot] = old_v[:, src], old_d[:, src]
                else:
                    need[j, slot] = True
        j = idx[both]
        h[j] = np.sqrt(lo[j] * hi[j])
        need[j] = True
    j = np.flatnonzero(active & (lo > 0) & np.isfinite(hi))
    h[j] = np.sqrt(lo[j] * hi[j])  # out of iterations inside a bracket: its middle
    if not found:
        status[status == 0] = 3
    return _result("shi_xie_xuan_nocedal", cf, sch, h, status, {
        "noise": eps_f, "noise_source": source, "ratio": ratio, "iterations": iters,
        "scheme_note": "central differences" if central else "forward differences",
    })


# ---------------------------------------------------------------- Ridders


def ridders(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, h0: float | None = None, con: float = 1.4,
    safe: float = 2.0, ntab: int = 10,
) -> StepResult:
    """Ridders' extrapolation of central differences (Numerical Recipes' dfridr).

    Central differences at ``h0 / con**i`` fill the first row of a Neville tableau;
    entry (j, i) extrapolates with factor ``con**(2j)`` (the error of a central
    difference is even in h). After each new step the entry with the least error
    estimate ``max(|a[j,i] - a[j-1,i]|, |a[j,i] - a[j-1,i-1]|)`` so far is kept; the
    search stops when the highest-order entry moves by ``safe`` times that error
    (rounding has taken over) or after ``ntab`` steps. con = 1.4, safe = 2, ntab = 10
    and a large start, by default ``h0 = 0.1 max(1, |x_i|)``.

    Returns the extrapolated derivative in ``approx`` and, as ``h``, the step whose
    difference completed the best entry (the smallest step it uses). Status 4 when J
    was not finite before any estimate.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : {"central"}
    h0 : float, optional
        Absolute first step.
    con : float
        Step reduction factor, > 1.
    safe : float
        Stop when the error grows by this factor, > 1.
    ntab : int
        Most rows of the tableau, >= 2.

    Returns
    -------
    StepResult
        ``approx``: the derivative estimates; ``info``: ``error`` (dfridr's err),
        ``rows`` (central differences used), ``stopped`` (by the safe test).

    References
    ----------
    C. J. F. Ridders, Accurate computation of F'(x) and F'(x)F''(x), Adv. Eng. Software
    4(2):75-76, 1982. W. H. Press et al., Numerical Recipes, 2nd ed., §5.7, 1992.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import ridders
    >>> res = ridders(lambda x: np.sum(np.exp(x)), np.zeros(2))
    >>> bool(np.all(np.abs(res.approx - 1) < 1e-12)), res.status.tolist()
    (True, [0, 0])
    """
    con = _positive("con", con)
    safe = _positive("safe", safe)
    if con <= 1:
        raise ValueError(f"con must exceed 1, got {con!r}")
    if safe <= 1:
        raise ValueError(f"safe must exceed 1, got {safe!r}")
    if h0 is not None:
        h0 = _positive("h0", h0)
    ntab = _integer("ntab", ntab, 2)
    cf, sch = _setup("ridders", f, theta, format, scheme, ("central",))
    n = cf.n
    con2 = con * con
    hh = 0.1 * _scale(cf) if h0 is None else np.full(n, h0)
    a = np.full((n, ntab, ntab), np.nan)
    idx = np.arange(n)
    a[:, 0, 0] = _central_difference(cf, idx, hh)
    err = np.full(n, np.inf)
    ans = np.full(n, np.nan)
    best_h = hh.copy()
    rows = np.ones(n, dtype=int)
    stopped = np.zeros(n, dtype=bool)
    active = np.isfinite(a[:, 0, 0])
    for i in range(1, ntab):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        hh[idx] /= con
        a[idx, 0, i] = _central_difference(cf, idx, hh[idx])
        rows[idx] += 1
        fac = con2
        for j in range(1, i + 1):
            a[idx, j, i] = (a[idx, j - 1, i] * fac - a[idx, j - 1, i - 1]) / (fac - 1)
            fac *= con2
            errt = np.maximum(np.abs(a[idx, j, i] - a[idx, j - 1, i]),
                              np.abs(a[idx, j, i] - a[idx, j - 1, i - 1]))
            better = errt <= err[idx]
            k = idx[better]
            err[k], ans[k], best_h[k] = errt[better], a[k, j, i], hh[k]
        grew = np.abs(a[idx, i, i] - a[idx, i - 1, i - 1]) >= safe * err[idx]
        stopped[idx[grew]] = True
        active[idx[grew | ~np.isfinite(a[idx, 0, i])]] = False
    status = np.zeros(n, dtype=int)
    none = ~np.isfinite(ans)
    status[none] = 4
    best_h[none] = np.where(np.isfinite(hh[none]), hh[none], 0.1)
    return _result("ridders", cf, sch, best_h, status, {
        "error": err, "rows": rows, "stopped": stopped, "con": con, "safe": safe,
        "scheme_note": "central differences with Richardson extrapolation; h is the best entry's step",
    }, approx=ans)


# ---------------------------------------------------------------- FiniteDifferences.jl


def _grid(direction: str, size: int) -> tuple[int, ...]:
    """FiniteDifferences.jl's grids: forward 0..P-1, backward -(P-1)..0, central symmetric."""
    if direction == "forward":
        return tuple(range(size))
    if direction == "backward":
        return tuple(range(1 - size, 1))
    if size % 2:
        return tuple(range((1 - size) // 2, (size - 1) // 2 + 1))
    return tuple(list(range(-(size // 2), 0)) + list(range(1, size // 2 + 1)))


def _spacing(x: np.ndarray, fmt: fmts.Format) -> np.ndarray:
    """The format's spacing at |x| (Julia's eps(x)): 2**(floor(log2|x|) - p + 1), at least
    the subnormal spacing."""
    assert fmt.emin is not None
    x = np.abs(np.asarray(x, dtype=np.float64))
    _, e = np.frexp(np.where(np.isfinite(x), x, 0.0))
    return np.maximum(np.ldexp(1.0, e - fmt.p), math.ldexp(1.0, fmt.emin - fmt.p + 1))


def fdm_bound(
    f: FunctionLike, theta: Any = None, format: fmts.Format | str = "float64",
    scheme: schs.Scheme | str = "central", *, condition: float = 10.0, factor: float = 1.0,
) -> StepResult:
    """The step FiniteDifferences.jl picks: the minimiser of a rounding + truncation bound.

    For a scheme with weights c_j on offsets k_j and order q (here the first
    derivative, Q = 1, from a method of ``p = order + 1`` points in FiniteDifferences.jl's
    terms), the error bound ``C1 / h + C2 h**(p-1)`` with
    ``C1 = eps(|f|) sum|c_j| factor`` (rounding) and
    ``C2 = |f^(p)| sum|c_j k_j**p| / p!`` (truncation) is least at
    ``h = (1/(p-1) C1/C2)**(1/p)``. ``eps(|f|)`` is the format's spacing at the
    largest |J| on the estimator's stencil, and |f^(p)| the largest of three
    estimates of the p-th derivative (at x and at its neighbours one step away)
    from a (p+2)-point stencil of the same direction, exact weights from
    :func:`gradlab.arithmetic.schemes.fd_weights`, at the estimator's own default step
    (``condition`` for its derivative, eps of the format for the error). The step is
    absolute, as in FiniteDifferences.jl, and at most 1000 times the method's default
    step; a zero |f^(p)| or |f| gives the default step (both status 5). The bound knows
    only the rounding of J's value, not its noise.

    Parameters
    ----------
    f : Objective or callable
    theta : array_like, optional
    format : str
    scheme : str
        Any real scheme (forward, backward, central, central4, central6).
    condition : float
        FiniteDifferences.jl's DEFAULT_CONDITION (10).
    factor : float
        Its DEFAULT_FACTOR (1): a multiple of the rounding bound.

    Returns
    -------
    StepResult
        ``info``: ``derivative`` (|f^(p)|), ``f_magnitude``, ``accuracy`` (the bound at
        h), ``estimator_step``, ``p``.

    References
    ----------
    FiniteDifferences.jl (JuliaDiff), ``estimate_step`` and ``_compute_step_acc`` in
    src/methods.jl.

    Examples
    --------
    >>> import numpy as np
    >>> from gradlab.steps.rules import fdm_bound
    >>> res = fdm_bound(lambda x: np.sum(np.exp(x)), np.zeros(1))   # |f'''| = 1, eps(1) = 2**-52
    >>> bool(abs(res.h[0] / (3 * 2.0**-52) ** (1 / 3) - 1) < 0.01), res.nfev
    (True, 5)
    """
    condition, factor = _positive("condition", condition), _positive("factor", factor)
    cf, sch = _setup("fdm_bound", f, theta, format, scheme, _REAL)
    n = cf.n
    fmt = cf.fmt
    eps_t = fmt.eps
    ks = np.array(sch.offsets, dtype=np.float64)
    cs = np.array([float(c) for c in sch.weights])
    p = sch.order + 1
    err_mult = float(np.sum(np.abs(cs)))
    trunc_mult = float(np.sum(np.abs(cs * ks**p))) / math.factorial(p)
    direction = ("forward" if np.all(ks >= 0) else "backward" if np.all(ks <= 0) else "central")
    grid_b = _grid(direction, p + 2)
    c_b = [float(c) for c in schs.fd_weights(grid_b, p)]
    shifts = {"forward": (2, 1, 0), "backward": (0, -1, -2), "central": (1, 0, -1)}[direction]
    c_nb = np.array([[float(c) for c in schs.fd_weights(tuple(g - sh for g in grid_b), p)]
                     for sh in shifts])  # the p-th derivative at x + shift * step
    gb = np.array(grid_b, dtype=np.float64)
    pb = p + 2
    err_b = sum(abs(c) for c in c_b)
    trunc_b = float(np.sum(np.abs(np.array(c_b) * gb**pb))) / math.factorial(pb)
    step_b = (p / (pb - p) * (eps_t * err_b * factor) / (condition * trunc_b)) ** (1 / pb)
    default = ((eps_t * err_mult * factor) / ((p - 1) * condition * trunc_mult)) ** (1 / p)
    # the estimator's stencil; its centre (if on it) is J(theta), evaluated once
    f0 = cf.center() if 0 in grid_b else math.nan
    off = gb != 0
    coords = np.repeat(np.arange(n), int(off.sum()))
    vals, _ = _probe(cf, coords, np.tile(gb[off] * step_b, n))
    fs = np.empty((n, gb.size))
    fs[:, off] = vals.reshape(n, -1)
    fs[:, ~off] = f0
    finite = np.all(np.isfinite(fs), axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        deriv = np.max(np.abs(fs @ c_nb.T), axis=1) / step_b**p
    fmag = np.max(np.abs(fs), axis=1)
    status = np.zeros(n, dtype=int)
    usable = finite & (deriv > 0) & (fmag > 0)
    status[~finite] = 4
    status[finite & ~usable] = 5  # no derivative or no |f| measured: the default step
    c1 = _spacing(fmag, fmt) * err_mult * factor
    c2 = np.where(usable, deriv, 1.0) * trunc_mult
    h = np.where(usable, (c1 / ((p - 1) * c2)) ** (1 / p), default)
    acc = np.where(usable, c1 / h + c2 * h ** (p - 1), np.nan)
    capped = usable & (h > 1000 * default)
    h[capped], acc[capped], status[capped] = 1000 * default, np.nan, 5
    return _result("fdm_bound", cf, sch, h, status, {
        "derivative": deriv, "f_magnitude": fmag, "accuracy": acc, "estimator_step": step_b, "p": p,
        "estimator_grid": grid_b, "scheme_note": f"{sch.name} differences",
    })


RULES: dict[str, Callable[..., StepResult]] = {
    "fixed_1e-7": partial(fixed, h=1e-7),
    "fixed_1e-6": partial(fixed, h=1e-6),
    "fixed_1e-4": partial(fixed, h=1e-4),
    "fixed_1e-3": partial(fixed, h=1e-3),
    "relative_sqrt_u": partial(relative, power=1 / 2),
    "relative_cbrt_u": partial(relative, power=1 / 3),
    "gmsw": gmsw,
    "stepleman_winarsky": stepleman_winarsky,
    "dumontet_vignes": dumontet_vignes,
    "more_wild": more_wild,
    "more_wild_central": more_wild_central,
    "shi_xie_xuan_nocedal": shi_xie_xuan_nocedal,
    "ridders": ridders,
    "fdm_bound": fdm_bound,
}
"""Stable names -> rules, each ``rule(f, theta=None, format=..., scheme=..., **options)``."""
