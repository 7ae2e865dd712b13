"""The normalisations of the relative error E and their conventions."""

import math

import numpy as np
import pytest

import gradlab as gl
from gradlab.analysis.errors import rel_2g, rel_g, rel_sum, relative_error


def test_each_normalisation_and_its_conventions() -> None:
    assert rel_sum(1.0, 1.0, 3.0) == 0.25 and rel_2g(1.0, 2.0) == 0.25 and rel_g(1.0, 4.0) == 0.25
    for f in (lambda e, g: rel_sum(e, 0.0, g), rel_2g, rel_g):
        assert f(0.0, 0.0) == 0.0  # an exact FD gradient of a zero gradient
        assert f(1e-300, 0.0) == math.inf
        assert f(math.inf, 1.0) == math.inf and f(math.nan, 1.0) == math.inf  # never a silent NaN
        assert f(1.0, math.inf) == 0.0
    e = rel_g(np.array([0.0, 1.0, np.nan, np.inf]), np.array([0.0, 2.0, 1.0, 1.0]))
    assert e.tolist() == [0.0, 0.5, math.inf, math.inf]


@pytest.mark.parametrize("approx,grad", [([1.0, 2.0], [1.5, 2.0]), ([0.0, 0.0], [0.0, 0.0]),
                                         ([1e-310, 0.0], [0.0, 0.0]), ([np.inf, 1.0], [1.0, 1.0])])
def test_relative_error_is_rel_sum_of_the_vectors(approx: list, grad: list) -> None:
    a, g = np.array(approx), np.array(grad)
    want = (math.inf if not np.isfinite(a).all()
            else rel_sum(np.linalg.norm(a - g), np.linalg.norm(a), np.linalg.norm(g)))
    assert relative_error(a, g) == want
    assert isinstance(relative_error(a, g), float)


def test_the_summary_uses_them() -> None:
    df = gl.fd_errors(gl.objectives.seed_net(), formats=["float32"], schemes=["central"],
                      steps=[1e-4, 1e-2], coords=[0, 3, 9], workers=1, noise={"float32": 1e-7})
    for r in gl.summarize(df).itertuples():
        assert r.rel_sum == rel_sum(r.err_norm, r.approx_norm, r.grad_norm)
        assert r.rel_2g == rel_2g(r.err_norm, r.grad_norm) and r.rel_g == rel_g(r.err_norm, r.grad_norm)
