"""Step-size rules (gradlab.steps.rules) against the optimum each one targets.

The test function is ``J(x) = sum_i sin(a_i x_i) + n(x)``, evaluated in float64, with
``n(x) = SIGMA sqrt(3) (2 U(x) - 1)`` and ``U(x)`` a hash of x's bytes: deterministic,
reproducible, uniform on [-sqrt(3) SIGMA, sqrt(3) SIGMA], so of standard deviation
SIGMA and bounded by ``BOUND = sqrt(3) SIGMA``. Every distinct point gets its own draw,
so the values on a stencil carry independent noise. (float64's own rounding, about
1e-16, is negligible beside SIGMA = 1e-9.) Along coordinate i,
``f'' = -a_i**2 sin(a_i x_i)`` and ``f''' = -a_i**3 cos(a_i x_i)``, both far from zero
at the chosen point.

The optima, and how the noise enters them:

* central, ``(f(x+h) - f(x-h)) / 2h``: truncation ``f''' h**2 / 6``; the two values'
  independent noise gives an error of standard deviation ``SIGMA / (sqrt(2) h)``. The
  mean squared error ``(f''' h**2/6)**2 + SIGMA**2/(2 h**2)`` is least at
  ``H_C = (3 SIGMA / |f'''|)**(1/3)`` (factor 1 on the classical formula with
  eps_f = SIGMA); the worst-case bound ``|f'''| h**2/6 + BOUND/h`` is least at
  ``(3 BOUND/|f'''|)**(1/3) = 1.20 H_C``.
* forward, ``(f(x+h) - f(x)) / h``: truncation ``f'' h / 2``, noise of standard
  deviation ``sqrt(2) SIGMA / h``; the mean squared error is least at
  ``8**(1/4) sqrt(SIGMA/|f''|) = 0.84 H_F`` with the classical ``H_F = 2 sqrt(SIGMA/|f''|)``
  (docs/references.md), the worst-case bound at ``2 sqrt(BOUND/|f''|) = 1.32 H_F``.

Each rule is run with the noise level its paper assumes (a standard deviation for
Moré & Wild, a bound for the bound-based searches) so that its guarantee can be
checked exactly, and once more with the default ECnoise estimate.

====================  ========  ===========================  ================================
rule                  noise     reference h*                 asserted
====================  ========  ===========================  ================================
fixed, relative       --        the formula                  exactly; nfev = 0
gmsw forward          SIGMA     2 sqrt(SIGMA/|f''|)          h/h* in [0.90, 1.12]        (a)
gmsw central          SIGMA     NPSOL's h_phi                C(Phi) <= 0.1 at h          (b)
stepleman_winarsky    --        H_C                          h/h* in [1/64, 1.5],
                                                             median in [1/8, 1]          (c)
dumontet_vignes       BOUND     (3 BOUND/|f'''|)**(1/3)      h/h* in [0.5, 1.24]         (d)
more_wild             SIGMA     8**(1/4) sqrt(SIGMA/|f''|)   h/h* in [0.96, 1.04]        (e)
more_wild_central     SIGMA     H_C                          h/h* in [0.96, 1.04]        (e)
shi_xie_xuan_nocedal  BOUND     2 sqrt(BOUND/|f''|)          h/h* in [0.41, 1.53]        (f)
  (central)           BOUND     (3 BOUND/|f'''|)**(1/3)      h/h* in [0.55, 1.33]        (f)
ridders               --        --                           |approx - f'| <= 1.04
                                                             SIGMA**(2/3) |f'''|**(1/3)  (g)
fdm_bound             none      (3 eps/|f'''|)**(1/3),       h/h* in [0.98, 1.02]        (h)
                                2 sqrt(eps/|f''|),
                                (6.75 eps/|f^(5)|)**(1/5)
noise-aware, default  ECnoise   as above with SIGMA          median in [0.5, 1.5],
                                                             all in [1/16, 2]            (i)
====================  ========  ===========================  ================================

(a) the accepted C(Phi) <= 0.1 bounds Phi's noise by 0.1 BOUND/SIGMA = 17%, h ~ Phi**(-1/2):
    [0.92, 1.10], plus < 1% one-sided truncation of Phi.
(b) NPSOL's central interval is h_phi, the interval at which C(Phi) was accepted.
(c) the steps lie on a grid of factor 4, and the search stops once rounding is *seen* to
    overtake the truncation differences (which fall 16x per step): typically one or two
    steps past h*, further when the rounding differences happen to be small.
(d) accepted when the bound E is 1/3 to 7/8 of the f''' estimate, and the noise is at
    most E: f'''/estimate in [1/8, 15/8], h ~ f'''**(-1/3).
(e) tau1 = 100: the noise is at most 4 BOUND = 6.9% (second difference) or 6 BOUND =
    10.4% (third) of Delta; h ~ mu**(-1/2) or mu**(-1/3).
(f) the paper's guarantee, sqrt([(rl-1)/3, (ru+1)/3]); central: the same window, cube root.
(g) Richardson's extrapolation removes the h**2 truncation, so Ridders works at larger
    steps (less rounding) than the best plain central difference.
(h) noise-free J: the bound's C1 uses eps(|f|) only, and f^(p) comes from a (p+2)-point
    stencil at an O(eps**(1/(p+2))) step, accurate to far better than 2%.
(i) ECnoise's estimate (checked within [0.4, 2.5] SIGMA) replaces the level, and no
    longer bounds the noise: DV and SXXN then accept a window reached by noise alone now
    and then (over 30 noise seeds the worst coordinate was 0.18 h*).
"""

import hashlib
import math

import numpy as np
import pytest

import gradlab as gl
from gradlab.steps import STATUS
from gradlab.steps import rules as sr
from gradlab.steps.rules import search

A = np.array([0.7, 1.3, 2.0, 0.9, 1.6, 1.1, 0.8, 1.9])
THETA = np.array([0.6, 0.75, 0.9, 1.0, 0.65, 0.8, 0.95, 0.7]) / A  # a x in [0.6, 1] rad
SIGMA = 1e-9
BOUND = math.sqrt(3) * SIGMA
F1 = A * np.cos(A * THETA)
F2 = np.abs(A**2 * np.sin(A * THETA))
F3 = np.abs(A**3 * np.cos(A * THETA))
F5 = np.abs(A**5 * np.cos(A * THETA))
H_C = (3 * SIGMA / F3) ** (1 / 3)
H_F = 2 * np.sqrt(SIGMA / F2)

NOISE_AWARE = ["gmsw", "dumontet_vignes", "more_wild", "more_wild_central", "shi_xie_xuan_nocedal"]
SCHEMES = {  # the schemes each rule serves
    "gmsw": {"forward", "backward", "central"},
    "stepleman_winarsky": {"central"},
    "dumontet_vignes": {"central"},
    "more_wild": {"forward", "backward"},
    "more_wild_central": {"central"},
    "shi_xie_xuan_nocedal": {"forward", "backward", "central"},
    "ridders": {"central"},
    "fdm_bound": {"forward", "backward", "central", "central4", "central6"},
}


def _uniform(x: np.ndarray) -> float:
    """U(x) in [0, 1): a hash of the float64 bytes of x."""
    digest = hashlib.blake2b(np.ascontiguousarray(x, dtype=np.float64).tobytes(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def noisy_sin(x: np.ndarray) -> np.float64:
    return np.float64(np.sum(np.sin(A * x)) + SIGMA * math.sqrt(3) * (2 * _uniform(x) - 1))


def smooth_sin(x: np.ndarray) -> np.float64:
    return np.float64(np.sum(np.sin(A * x)))


class Counted:
    """A callable that counts its own calls, to check a rule's nfev."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, x):
        self.calls += 1
        return self.fn(x)


def _within(ratio: np.ndarray, lo: float, hi: float) -> None:
    assert np.all(np.isfinite(ratio))
    assert ratio.min() >= lo and ratio.max() <= hi, (ratio.min(), ratio.max())


def test_registry_names_and_exports() -> None:
    assert list(sr.RULES) == [
        "fixed_1e-7", "fixed_1e-6", "fixed_1e-4", "fixed_1e-3", "relative_sqrt_u", "relative_cbrt_u",
        "gmsw", "stepleman_winarsky", "dumontet_vignes", "more_wild", "more_wild_central",
        "shi_xie_xuan_nocedal", "ridders", "fdm_bound",
    ]
    for name in sr.__all__:
        assert hasattr(sr, name)


def test_fixed_and_relative_cost_nothing() -> None:
    for name, h in [("fixed_1e-7", 1e-7), ("fixed_1e-6", 1e-6), ("fixed_1e-4", 1e-4), ("fixed_1e-3", 1e-3)]:
        res = sr.RULES[name](noisy_sin, THETA, "float32", "forward")
        assert res.rule == name and res.nfev == 0 and res.format == "float32" and res.scheme == "forward"
        np.testing.assert_array_equal(res.h, np.full(A.size, h))
        np.testing.assert_array_equal(res.status, 0)
    theta = np.array([0.25, -3.0, 40.0])
    for name, p in [("relative_sqrt_u", 1 / 2), ("relative_cbrt_u", 1 / 3)]:
        for fmt, u in [("float64", 2.0**-53), ("float32", 2.0**-24), ("bfloat16", 2.0**-8)]:
            res = sr.RULES[name](noisy_sin, theta, fmt)
            assert res.rule == name and res.nfev == 0
            np.testing.assert_allclose(res.h, u**p * np.array([1.0, 3.0, 40.0]), rtol=1e-15)
    # a step below theta's spacing is realised as zero, and the result says so
    res = sr.fixed(noisy_sin, np.ones(2), "float16", h=1e-4)
    np.testing.assert_array_equal(res.info["h_realised"], 0.0)


def test_gmsw_forward_interval() -> None:
    f = Counted(noisy_sin)
    res = sr.gmsw(f, THETA, scheme="forward", noise=SIGMA)
    assert res.rule == "gmsw" and res.scheme == "forward"
    np.testing.assert_array_equal(res.status, 0)
    _within(res.h / H_F, 0.90, 1.12)
    # one value of J at theta, then f(x+h), f(x+2h) per trial
    assert res.nfev == f.calls == 1 + 2 * int(res.info["iterations"].sum())
    assert res.info["iterations"].max() <= 3  # NPSOL's itmax
    back = sr.gmsw(noisy_sin, THETA, scheme="backward", noise=SIGMA)
    _within(back.h / H_F, 0.90, 1.12)


def test_gmsw_central_is_npsols_interval() -> None:
    res = sr.gmsw(noisy_sin, THETA, scheme="central", noise=SIGMA)
    info = res.info
    ok = info["inform"] == 0
    np.testing.assert_array_equal(res.h[ok], info["h_phi"][ok])
    np.testing.assert_array_equal(res.h[~ok], 10 * info["h_forward"][~ok])
    c_phi = 4 * SIGMA / (res.h[ok] ** 2 * np.abs(info["phi"][ok]))  # GMSW's condition error of Phi
    assert np.all(c_phi <= 0.1 * (1 + 1e-12))


def test_stepleman_winarsky() -> None:
    f = Counted(noisy_sin)
    res = sr.stepleman_winarsky(f, THETA)
    assert res.scheme == "central"
    np.testing.assert_array_equal(res.status, 0)
    ratio = res.h / H_C
    _within(ratio, 1 / 64, 1.5)
    assert 1 / 8 <= np.median(ratio) <= 1
    # the returned steps lie on the grid 0.1 max(1, |x|) / 4**k
    k = np.log(0.1 * np.maximum(1, np.abs(THETA)) / res.h) / np.log(4)
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    # two values per central difference: D_0, D_1 and one more per further reduction
    assert res.nfev == f.calls == 2 * int((res.info["iterations"] + 1).sum())


def test_dumontet_vignes_with_a_noise_bound() -> None:
    res = sr.dumontet_vignes(noisy_sin, THETA, noise=BOUND)
    np.testing.assert_array_equal(res.status, 0)
    _within(res.h / (3 * BOUND / F3) ** (1 / 3), 0.5, 1.24)
    ratio = res.info["ratio"]  # L = f'''_sup / f'''_inf in DV's windows
    assert np.all(((ratio >= 1 / 15) & (ratio <= 0.5)) | ((ratio >= 2) & (ratio <= 15)))


def test_more_wild_forward_and_central() -> None:
    f = Counted(noisy_sin)
    res = sr.more_wild(f, THETA, noise=SIGMA)
    np.testing.assert_array_equal(res.status, 0)
    _within(res.h / (8**0.25 * np.sqrt(SIGMA / F2)), 0.96, 1.04)
    assert res.nfev == f.calls == 1 + 2 * A.size  # f(x), then f(x +- h_a): the first trial passes
    np.testing.assert_allclose(res.info["second"], F2, rtol=0.07)
    f = Counted(noisy_sin)
    cen = sr.more_wild_central(f, THETA, noise=SIGMA)
    np.testing.assert_array_equal(cen.status, 0)
    _within(cen.h / H_C, 0.96, 1.04)
    assert cen.nfev == f.calls == 1 + 4 * A.size
    np.testing.assert_allclose(cen.info["third"], F3, rtol=0.11)


def test_shi_xie_xuan_nocedal_guarantees() -> None:
    f = Counted(noisy_sin)
    fwd = sr.shi_xie_xuan_nocedal(f, THETA, scheme="forward", noise=BOUND)
    np.testing.assert_array_equal(fwd.status, 0)
    _within(fwd.h / (2 * np.sqrt(BOUND / F2)), 0.41, 1.53)
    assert np.all((fwd.info["ratio"] >= 1.5) & (fwd.info["ratio"] <= 6))
    assert fwd.nfev == f.calls
    cen = sr.shi_xie_xuan_nocedal(noisy_sin, THETA, scheme="central", noise=BOUND)
    np.testing.assert_array_equal(cen.status, 0)
    _within(cen.h / (3 * BOUND / F3) ** (1 / 3), 0.55, 1.33)
    back = sr.shi_xie_xuan_nocedal(noisy_sin, THETA, scheme="backward", noise=BOUND)
    _within(back.h / (2 * np.sqrt(BOUND / F2)), 0.41, 1.53)


def test_ridders_extrapolates_past_the_central_optimum() -> None:
    f = Counted(noisy_sin)
    res = sr.ridders(f, THETA)
    assert res.approx is not None
    np.testing.assert_array_equal(res.status, 0)
    best_central = 1.04 * SIGMA ** (2 / 3) * F3 ** (1 / 3)
    assert np.all(np.abs(res.approx - F1) <= best_central)
    h0 = 0.1 * np.maximum(1, np.abs(THETA))
    i = np.log(h0 / res.h) / np.log(1.4)  # h = h0 / 1.4**i, 1 <= i <= 9
    np.testing.assert_allclose(i, np.round(i), atol=1e-9)
    assert np.all((np.round(i) >= 1) & (np.round(i) <= 9))
    assert res.nfev == f.calls == 2 * int(res.info["rows"].sum())


def test_fdm_bound_on_a_noise_free_function() -> None:
    eps = np.spacing(abs(smooth_sin(THETA)))  # eps(|f|), Julia's; the stencil's |f| shares its binade
    cases = [("central", (3 * eps / F3) ** (1 / 3)),
             ("forward", 2 * np.sqrt(eps / F2)),
             # central4: C1 = eps 18/12, C2 = |f^(5)| (80/12)/5!, h = (C1/(4 C2))**(1/5)
             ("central4", (6.75 * eps / F5) ** (1 / 5))]
    for scheme, want in cases:
        f = Counted(smooth_sin)
        res = sr.fdm_bound(f, THETA, scheme=scheme)
        np.testing.assert_array_equal(res.status, 0)
        _within(res.h / want, 0.98, 1.02)
        assert res.nfev == f.calls == 1 + (res.info["p"] + 1) * A.size


def test_default_ecnoise_level() -> None:
    refs = {"gmsw": H_F, "dumontet_vignes": H_C, "more_wild": 8**0.25 * np.sqrt(SIGMA / F2),
            "more_wild_central": H_C, "shi_xie_xuan_nocedal": H_C}
    for name in NOISE_AWARE:
        f = Counted(noisy_sin)
        res = sr.RULES[name](f, THETA)
        given = sr.RULES[name](noisy_sin, THETA, noise=SIGMA)
        assert res.info["noise_source"] == "ecnoise"
        assert 0.4 <= res.info["noise"] / SIGMA <= 2.5
        assert res.nfev == f.calls >= 19  # ECnoise: at least 2 lines of 9 points, and J(theta)
        if name == "more_wild":  # same path either way: the difference is ECnoise's cost
            assert res.nfev - given.nfev >= 18
        ratio = res.h / refs[name]
        assert 0.5 <= np.median(ratio) <= 1.5, name
        _within(ratio, 1 / 16, 2)


@pytest.mark.parametrize("name", ["gmsw", "dumontet_vignes", "more_wild", "more_wild_central",
                                  "shi_xie_xuan_nocedal"])
def test_no_curvature_is_reported(name: str) -> None:
    """A noisy linear J has no truncation to find: status 5 (or 2, no acceptable step),
    never a made-up success, when the noise level passed bounds the noise; a constant J
    gives GMSW's "constant?" (status 2) and fdm_bound's default step (status 5).
    (fdm_bound's bound knows no noise: on the noisy line it measures the noise as f''')."""
    slope = np.array([1.0, -2.0, 0.5])

    def linear(x: np.ndarray) -> np.float64:
        return np.float64(slope @ x + BOUND * (2 * _uniform(x) - 1))

    theta = np.array([0.3, -0.4, 0.8])
    res = sr.RULES[name](linear, theta, noise=BOUND)
    assert np.all(np.isin(res.status, [2, 5])), res.status
    assert np.all(np.isfinite(res.h) & (res.h > 0))
    const = sr.gmsw(lambda x: np.float64(2.0), theta, noise=SIGMA)
    np.testing.assert_array_equal(const.info["inform"], 1)
    np.testing.assert_array_equal(const.status, 2)
    flat = sr.fdm_bound(lambda x: np.float64(2.0), theta)
    np.testing.assert_array_equal(flat.status, 5)


def test_noise_not_detected_sets_status_3(monkeypatch: pytest.MonkeyPatch) -> None:
    """When ECnoise finds no noise the level falls back to one rounding of J, u |J|, and
    every coordinate that otherwise succeeded says so with status 3."""
    monkeypatch.setattr(search, "line_noise", lambda *args: math.nan)
    res = sr.more_wild(noisy_sin, THETA)
    assert "ECnoise detected no noise" in res.info["noise_source"]
    assert res.info["noise"] == 2.0**-53 * abs(noisy_sin(THETA))
    np.testing.assert_array_equal(res.status, 3)


def test_schemes_served_and_refused() -> None:
    for name, served in SCHEMES.items():
        for scheme in ["forward", "backward", "central", "central4", "central6", "complex"]:
            if scheme in served:
                res = sr.RULES[name](noisy_sin, THETA, scheme=scheme, **(
                    {"noise": SIGMA} if name in NOISE_AWARE else {}))
                assert res.scheme == scheme
            else:
                with pytest.raises(ValueError, match="scheme"):
                    sr.RULES[name](noisy_sin, THETA, scheme=scheme)
    with pytest.raises(ValueError, match="scheme"):
        sr.gmsw(noisy_sin, THETA, scheme="sideways")


def test_validation() -> None:
    cases = [
        (lambda: sr.fixed(noisy_sin, THETA, h=0.0), "h"),
        (lambda: sr.fixed(noisy_sin, THETA, h=float("nan")), "h"),
        (lambda: sr.fixed(noisy_sin, THETA, h=-1e-6), "h"),
        (lambda: sr.relative(noisy_sin, THETA, power=0.0), "power"),
        (lambda: sr.relative(noisy_sin, THETA, power=2.0), "power"),
        (lambda: sr.fixed(noisy_sin, THETA, format="float8"), "format"),
        (lambda: sr.gmsw(noisy_sin, THETA, format="binary20"), "format"),
        (lambda: sr.gmsw(noisy_sin), "theta"),
        (lambda: sr.gmsw(noisy_sin, np.zeros((2, 2))), "theta"),
        (lambda: sr.gmsw(noisy_sin, THETA, noise=-1.0), "noise"),
        (lambda: sr.gmsw(noisy_sin, THETA, noise="loud"), "noise"),
        (lambda: sr.gmsw(noisy_sin, THETA, maxiter=0), "maxiter"),
        (lambda: sr.more_wild(noisy_sin, THETA, nf=5), "nf"),
        (lambda: sr.more_wild(noisy_sin, THETA, n_lines=0), "n_lines"),
        (lambda: sr.more_wild(noisy_sin, THETA, tau1=0), "tau1"),
        (lambda: sr.more_wild_central(noisy_sin, THETA, tau2=-0.1), "tau2"),
        (lambda: sr.dumontet_vignes(noisy_sin, THETA, maxiter=0), "maxiter"),
        (lambda: sr.shi_xie_xuan_nocedal(noisy_sin, THETA, rl=6.0, ru=1.5), "rl"),
        (lambda: sr.shi_xie_xuan_nocedal(noisy_sin, THETA, h0=0.0), "h0"),
        (lambda: sr.stepleman_winarsky(noisy_sin, THETA, beta=1.0), "beta"),
        (lambda: sr.stepleman_winarsky(noisy_sin, THETA, h0=-0.1), "h0"),
        (lambda: sr.ridders(noisy_sin, THETA, con=0.9), "con"),
        (lambda: sr.ridders(noisy_sin, THETA, safe=0.0), "safe"),
        (lambda: sr.ridders(noisy_sin, THETA, ntab=1), "ntab"),
        (lambda: sr.fdm_bound(noisy_sin, THETA, condition=0.0), "condition"),
        (lambda: sr.fdm_bound(noisy_sin, THETA, factor=-1.0), "factor"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


@pytest.mark.parametrize("fmt", ["float64", "float32", "float16", "bfloat16"])
def test_every_rule_on_the_seed_net(fmt: str) -> None:
    obj = gl.objectives.seed_net(stable=True)
    for name, rule in sr.RULES.items():
        for scheme in ["forward", "central"]:
            try:
                res = rule(obj, format=fmt, scheme=scheme)
            except ValueError as exc:
                assert "scheme" in str(exc) and scheme not in SCHEMES.get(name, {scheme})
                continue
            assert res.format == fmt and res.scheme == scheme
            assert res.h.shape == res.status.shape == (obj.n_params,)
            assert np.all(np.isfinite(res.h) & (res.h > 0)), (name, scheme)
            assert set(res.status.tolist()) <= set(STATUS), (name, res.status)
            if name.startswith(("fixed", "relative")):
                assert res.nfev == 0
            else:
                assert res.nfev > 0
            if res.approx is not None:
                assert res.approx.shape == (obj.n_params,)
            assert len(res.to_frame()) == obj.n_params
