"""Summary metrics: the normalisations and their relations."""

import numpy as np

import gradlab as gl


def test_metrics_relations_and_exercise_value() -> None:
    df = gl.fd_errors(gl.objectives.seed_net(), formats=["float64"], schemes=["central"],
                      steps=[1e-7], workers=1)
    sm = gl.summarize(df).iloc[0]
    assert sm.rel_2g * 2 == sm.rel_g
    assert np.isclose(sm.rms, sm.err_norm / np.sqrt(47))
    assert np.isclose(sm.rel_course, sm.err_norm / (sm.approx_norm + sm.grad_norm))
    # the exercise's observation: E is about 1e-7 at epsilon = 1e-7, set by rounding
    assert 3e-8 < sm.rel_course < 3e-7
    assert sm.round_norm > 100 * sm.trunc_norm


def test_sampled_coordinates_scale_the_norms() -> None:
    obj = gl.objectives.seed_net(stable=True)
    df = gl.fd_errors(obj, formats=["float64"], schemes=["central"], steps=[1e-3],
                      coords=[0, 1, 2, 3], workers=1)
    sm = gl.summarize(df).iloc[0]
    assert sm.n_coords == 4
    assert np.isclose(sm.grad_norm, np.linalg.norm(df.exact) * np.sqrt(47 / 4))
