"""Power-law fits: exponent recovery, CI coverage, curvature, tables and held-out prediction."""

import time

import numpy as np
import pandas as pd
import pytest

from gradlab.sweeps.fits import FitError, fit_power_law, fit_table, holdout, median_factor

TRUE = {"u": 1 / 3, "N": 0.5, "s": -1.0}
VARS = list(TRUE)


def grid(noise: float = 0.0, seed: int = 0, C: float = 3.0) -> pd.DataFrame:
    """y = C u^(1/3) N^(1/2) s^-1 exp(noise) on a 10 x 5 x 4 grid."""
    g = pd.MultiIndex.from_product(
        [np.logspace(-16, -2, 10), [10.0, 100.0, 1e3, 1e4, 1e5], [0.1, 0.3, 1.0, 3.0]], names=VARS
    ).to_frame(index=False)
    eps = np.random.default_rng(seed).normal(0.0, noise, len(g)) if noise else 0.0
    g["y"] = C * np.prod([g[v] ** b for v, b in TRUE.items()], axis=0) * np.exp(eps)
    return g


def test_recovers_exponents_with_noise() -> None:
    law = fit_power_law(grid(0.05), "y", VARS, n_boot=1000)
    assert law.n == 200 and law.n_dropped == 0 and law.n_degenerate == 0
    for v, b in TRUE.items():
        lo, hi = law.ci[v]
        assert lo < b < hi
        assert lo < law.exponents[v] < hi
        assert hi - lo < 0.05
    assert law.r2 > 0.999
    assert 0.5 * 0.05 / np.log(10) < law.resid_sd < 1.5 * 0.05 / np.log(10)  # decades
    assert law.max_resid > law.resid_sd
    assert not any(law.bends(v) for v in VARS)
    fr = law.to_frame()
    assert list(fr.variable) == VARS and fr.bends.dtype == bool
    assert {"ci_low", "ci_high", "curvature_low", "curvature_high", "resid_sd", "n_dropped"} <= set(fr)


def test_exact_data_fit_is_exact() -> None:
    df = grid()
    law = fit_power_law(df, "y", VARS, n_boot=200)
    assert abs(law.r2 - 1) < 1e-12
    assert np.isclose(np.exp(law.intercept), 3.0, rtol=1e-12)
    for v, b in TRUE.items():
        assert abs(law.exponents[v] - b) < 1e-12
        assert law.ci[v][1] - law.ci[v][0] < 1e-12
        assert law.curvature_ci[v][0] <= 0 <= law.curvature_ci[v][1]
    assert law.max_resid < 1e-12
    np.testing.assert_allclose(law.predict(df), df.y, rtol=1e-12)


def test_fast_and_deterministic() -> None:
    df = grid(0.05).sample(50, random_state=1)
    t = time.perf_counter()
    a = fit_power_law(df, "y", VARS, n_boot=2000, seed=3)
    assert time.perf_counter() - t < 1.0
    b = fit_power_law(df, "y", VARS, n_boot=2000, seed=3)
    assert a == b


def test_ci_coverage() -> None:
    df = grid()
    hits = 0
    for seed in range(40):
        d = df.assign(y=df.y * np.exp(np.random.default_rng(100 + seed).normal(0, 0.1, len(df))))
        law = fit_power_law(d, "y", VARS, n_boot=300, seed=seed)
        lo, hi = law.ci["N"]
        hits += lo < TRUE["N"] < hi
    assert hits >= 34  # nominal 95% of 40 = 38


def test_curvature_flags_a_bend_only_when_there_is_one() -> None:
    u = np.logspace(-16, -2, 15)
    straight = fit_power_law(pd.DataFrame({"u": u, "y": u ** (1 / 3)}), "y", ["u"], n_boot=500)
    lo, hi = straight.curvature_ci["u"]
    assert lo <= 0 <= hi and not straight.bends("u")
    assert not straight.to_frame().bends.iloc[0]
    noise = np.exp(np.random.default_rng(0).normal(0, 0.05, len(u)))
    kinked = pd.DataFrame({"u": u, "y": (u ** (1 / 3) + 1e-8 * u**-0.5) * noise})  # a V: kink at u ~ 1e-10
    law = fit_power_law(kinked, "y", ["u"], n_boot=500)
    assert law.bends("u") and law.curvature["u"] > 0 and law.curvature_ci["u"][0] > 0
    assert bool(law.to_frame().bends.iloc[0])
    # two values: no curvature can be estimated
    two = pd.DataFrame({"u": [1e-8, 1e-8, 1e-4, 1e-4, 1e-4], "y": [1.0, 1.1, 2.0, 2.1, 1.9]})
    assert np.isnan(fit_power_law(two, "y", ["u"], n_boot=100).curvature["u"])


def test_failed_rows_dropped_and_counted() -> None:
    df = grid(0.05)
    df.loc[[0, 5, 7], "y"] = [np.nan, 0.0, np.inf]
    law = fit_power_law(df, "y", VARS, n_boot=200)
    assert law.n == 197 and law.n_dropped == 3
    assert law.to_frame().n_dropped.iloc[0] == 3


def test_input_validation() -> None:
    df = grid(0.05)
    with pytest.raises(ValueError, match="'zz'"):
        fit_power_law(df, "y", ["u", "zz"])
    with pytest.raises(ValueError, match="'q'"):
        fit_power_law(df, "q", ["u"])
    bad = df.copy()
    bad.loc[[1, 2], "N"] = [-1.0, np.nan]
    with pytest.raises(ValueError, match=r"variable 'N' has 2 non-positive"):
        fit_power_law(bad, "y", VARS)
    with pytest.raises(FitError, match="'s' is constant"):
        fit_power_law(df[df.s == 1.0], "y", VARS)
    with pytest.raises(ValueError, match="too few rows"):
        fit_power_law(df.head(5), "y", VARS)
    with pytest.raises(ValueError, match="collinear"):
        fit_power_law(df.assign(w=df.u**2), "y", ["u", "w"])


def test_fit_table_joint_single_and_flags() -> None:
    df = grid(0.02)
    df["fmt"] = "a"
    other = df.head(4).assign(fmt="b")  # too few rows to fit
    tab = fit_table(pd.concat([df, other]), ["y"], VARS, by=["fmt"], n_boot=100)
    assert {"fmt", "target", "fit", "at_u", "at_N", "at_s", "status", "exponent"} <= set(tab)
    a = tab[tab.fmt == "a"]
    joint = a[a.fit == "joint"].set_index("variable")
    assert (joint.status == "ok").all()
    for v, b in TRUE.items():
        assert joint.ci_low[v] < b < joint.ci_high[v]
    single = a[a.fit == "single"]
    su = single[single.variable == "u"]
    assert len(su) == 5 * 4 and (su.status == "ok").all()  # one fit per (N, s)
    assert su.at_u.isna().all() and su[["at_N", "at_s"]].notna().all().all()
    assert set(zip(su.at_N, su.at_s, strict=True)) == set(zip(df.N, df.s, strict=True))
    assert np.allclose(su.exponent, TRUE["u"], atol=0.02)
    assert (single[single.variable == "N"].status == "ok").all()  # 5 values of N, one per cell
    ss = single[single.variable == "s"]  # 4 values of s per (u, N)
    assert len(ss) == 50 and (ss.status == "ok").all()
    st = tab[tab.fmt == "b"].set_index(["fit", "variable"]).status  # 4 values of s at one (u, N)
    assert st["joint"].str.contains("too few rows").all() and len(st["joint"]) == 3
    assert st["single", "u"].startswith("no sub-group") and st["single", "N"].startswith("no sub-group")
    assert st["single", "s"] == "ok"
    assert tab[tab.status != "ok"].exponent.isna().all()


def test_fit_table_constant_variable_is_flagged() -> None:
    df = grid(0.02)
    df = df[df.s == 1.0]
    tab = fit_table(df, ["y"], VARS, single=False, n_boot=100)
    assert len(tab) == 3 and tab.status.str.contains("'s' is constant").all()
    assert tab.exponent.isna().all()
    with pytest.raises(ValueError, match="variable 'N'"):
        fit_table(df.assign(N=0.0), ["y"], VARS)


def test_holdout_exact_and_noisy() -> None:
    h = holdout(grid(), "y", VARS, ["N", "s"])
    assert len(h) == 200 and (h.status == "ok").all()
    assert {"N", "s", "u", "measured", "predicted", "factor"} <= set(h)
    np.testing.assert_allclose(h.factor, 1.0, atol=1e-9)
    df = grid(0.05, seed=2)
    df.loc[3, "y"] = np.nan
    h = holdout(df, "y", VARS, "u")
    assert np.isnan(h.factor.iloc[3]) and np.isfinite(h.predicted.iloc[3])
    assert (h.factor.dropna() >= 1).all()
    mf = median_factor(h)
    assert np.exp(0.5 * 0.6745 * 0.05) < mf < np.exp(2 * 0.6745 * 0.05)  # median |noise| = 0.6745 sd


def test_holdout_by_groups_and_unfittable_training() -> None:
    df = pd.concat([grid().assign(fmt="a"), grid(C=5.0).assign(fmt="b")], ignore_index=True)
    h = holdout(df, "y", VARS, "N", by=["fmt"])
    np.testing.assert_allclose(h.factor, 1.0, atol=1e-9)  # each format has its own constant
    two = grid()
    h = holdout(two[two.N <= 100.0], "y", VARS, "N")  # only 2 values of N
    assert (h.status.str.contains("'N' is constant")).all() and h.predicted.isna().all()
    assert np.isnan(median_factor(h))


def test_degenerate_resamples_counted_or_raise() -> None:
    y = np.random.default_rng(0).uniform(1, 2, 6)
    one = np.ones((6, 3))
    one[[1, 2, 3], [0, 1, 2]] = 2.0  # each variable differs from 1 in a single row
    d = pd.DataFrame(one, columns=["a", "b", "c"]).assign(y=y)
    law = fit_power_law(d, "y", ["a"], n_boot=500)  # resamples without row 1 are skipped
    assert 0 < law.n_degenerate < 250
    with pytest.raises(FitError, match="rank deficient"):
        fit_power_law(d, "y", ["a", "b", "c"], n_boot=500)
