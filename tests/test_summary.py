"""Summary metrics: the normalisations and their relations."""

import numpy as np

import gradlab as gl


def test_metrics_relations_and_exercise_value() -> None:
    df = gl.fd_errors(gl.objectives.seed_net(), formats=["float64"], schemes=["central"],
                      steps=[1e-7], workers=1)
    sm = gl.summarize(df).iloc[0]
    assert sm.rel_2g * 2 == sm.rel_g
    assert np.isclose(sm.rms, sm.err_norm / np.sqrt(47))
    assert np.isclose(sm.rel_sum, sm.err_norm / (sm.approx_norm + sm.grad_norm))
    # the exercise's observation: E is about 1e-7 at epsilon = 1e-7, set by rounding
    assert 3e-8 < sm.rel_sum < 3e-7
    assert sm.round_norm > 100 * sm.trunc_norm


def test_sampled_coordinates_scale_the_norms() -> None:
    obj = gl.objectives.seed_net(stable=True)
    df = gl.fd_errors(obj, formats=["float64"], schemes=["central"], steps=[1e-3],
                      coords=[0, 1, 2, 3], workers=1)
    sm = gl.summarize(df).iloc[0]
    assert sm.n_coords == 4
    assert np.isclose(sm.grad_norm, np.linalg.norm(df.exact) * np.sqrt(47 / 4))


def test_sampled_norms_carry_their_standard_error() -> None:
    """Sampled coordinates: err_norm estimates the full norm, err_norm_rse its uncertainty."""
    obj = gl.objectives.mlp((6, 10, 1), seed=3)
    df = gl.fd_errors(obj, formats="float32", steps=[1e-2], workers=1)
    full = gl.summarize(df).iloc[0]
    assert full.err_norm_rse == 0
    rng = np.random.default_rng(0)
    sq, z = [], []
    for _ in range(200):
        sub = df[df.coord.isin(rng.choice(obj.n_params, 20, replace=False))]
        sm = gl.summarize(sub).iloc[0]
        sq.append((sm.err_norm / full.err_norm) ** 2)
        z.append((sm.err_norm / full.err_norm - 1) / sm.err_norm_rse)
    assert abs(np.mean(sq) - 1) < 0.1  # the squared norm is estimated without bias
    # the standard error is the scale of the deviations, but with heavy-tailed e_i**2 a
    # sample that misses the largest errors also underestimates their spread: +-2 rse
    # covers the truth in only about 55% of these samples (documented as a lower bound)
    assert 1 < np.median(np.abs(z)) < 2 and np.mean(np.abs(z) < 2) > 0.45
