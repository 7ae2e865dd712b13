"""Finite-difference step-size rules from the literature, measured the same way.

Every rule is ``rule(f, theta=None, format="float64", scheme=..., **options) ->
StepResult`` (:class:`gradlab.steps.StepResult`; the call is the
:class:`gradlab.steps.results.StepRule` protocol): per coordinate the nominal step
``h``, a :class:`gradlab.steps.results.Status` code, and ``nfev``, the evaluations of J
the rule spent. A rule sees J only through a
:class:`gradlab.arithmetic.coordinate.CoordinateFunction`, so every value is J computed
in the format and every evaluation is counted; the searching rules iterate all
coordinates at once, one batch of points per iteration
(:func:`gradlab.steps.rules.search.active_set`).

Trial points are formed in the format by :func:`gradlab.arithmetic.stencil.stencil`,
``x_j = fl(theta_i + fl(k_j fl(h)))`` for a stencil of offsets k_j h. The rules' own
difference quotients use the offsets the format realised, ``d_j = x_j - theta_i``
(Numerical Recipes §5.7's ``temp = x + h;
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

======================  ==========  ===============================  ====================================
rule                    module      schemes                          reference
======================  ==========  ===============================  ====================================
fixed                   simple      any (nfev 0)                     the classic defaults 1e-7 ... 1e-3
relative                simple      any (nfev 0)                     Dennis & Schnabel 1983; Nocedal &
                                                                     Wright 2006 §8.1
gmsw                    gill        forward, backward; central =     Gill, Murray, Saunders & Wright
                                    NPSOL's central interval         1983 (NPSOL's chcore / chfd)
stepleman_winarsky      stepleman   central                          Stepleman & Winarsky 1979
dumontet_vignes         dumontet    central                          Dumontet & Vignes 1977
more_wild               more        forward, backward                Moré & Wild 2012
more_wild_central       more        central                          Moré & Wild 2012, central analogue
shi_xie_xuan_nocedal    shi         forward, backward, central       Shi, Xie, Xuan & Nocedal 2022
ridders                 dfridr      central (returns ``approx``)     Ridders 1982; Press et al. 1992
                                                                     dfridr
fdm_bound               fdm         every real scheme                FiniteDifferences.jl's step
                                                                     estimate
======================  ==========  ===============================  ====================================

The modules hold one rule family each; :mod:`gradlab.steps.rules.search` holds what they
share (argument checks, trial points, divided differences, the noise level, the
active-set loop, the log-scale bracket, the result).

The noise-aware rules take ``noise``: ``"ecnoise"`` (default: Moré & Wild 2011 on
``n_lines`` random-sign lines of ``nf`` points, :func:`gradlab.analysis.noise.ecnoise_line`;
its evaluations count in ``nfev``; if it detects no noise the level falls back to
one rounding of J, :func:`gradlab.analysis.noise.rounding_floor`, and the status of
every otherwise successful coordinate is ``Status.NOISE_NOT_DETECTED``),
``"roundoff"`` (``u |J(theta)|``), or a positive number (the noise level, given).
They treat eps_f as the papers do: as the size of the error of one value of J.
"""

from __future__ import annotations

from functools import partial

from gradlab.steps.results import StepRule
from gradlab.steps.rules.dfridr import ridders
from gradlab.steps.rules.dumontet import dumontet_vignes
from gradlab.steps.rules.fdm import fdm_bound
from gradlab.steps.rules.gill import gmsw
from gradlab.steps.rules.more import more_wild, more_wild_central
from gradlab.steps.rules.shi import shi_xie_xuan_nocedal
from gradlab.steps.rules.simple import fixed, relative
from gradlab.steps.rules.stepleman import stepleman_winarsky

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

RULES: dict[str, StepRule] = {
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
