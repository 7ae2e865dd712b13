"""minima: the model's predicted error is stated in the measured metric's normalisation."""

from __future__ import annotations

import numpy as np
import pytest

import gradlab as gl
from gradlab.analysis.minima import minima


@pytest.fixture(scope="module")
def tables() -> tuple:
    obj = gl.objectives.smooth_sum("exp", n=4, seed=0)
    coords = gl.fd_errors(obj, formats=["float16"], schemes=["central"],
                          steps=np.logspace(-4, -0.5, 8), noise={"float16": 2e-4})
    return coords, gl.summarize(coords)


def test_predicted_error_follows_the_metric(tables: tuple) -> None:
    coords, summary = tables
    by = {m: minima(coords, summary, metric=m).iloc[0] for m in ("rel_sum", "rel_2g", "rel_g", "rms")}
    e2g = by["rel_2g"].e_predicted
    g = float(np.linalg.norm(summary.grad_norm.iloc[0]))
    assert by["rel_g"].e_predicted == pytest.approx(2 * e2g, rel=1e-15)
    assert by["rms"].e_predicted == pytest.approx(2 * e2g * g / 2.0, rel=1e-12)  # sqrt(N) = 2
    assert e2g / 2 < by["rel_sum"].e_predicted <= e2g  # ||g_fd|| >= ||g|| when e is not along g
    assert len({by[m].h_predicted for m in by}) == 1  # the step does not depend on the metric
    for m, row in by.items():
        assert row.e_ratio == pytest.approx(row.e_predicted / row.e_measured)
        assert row.e_measured == summary[m].min()


def test_unmodelled_metric_is_refused(tables: tuple) -> None:
    with pytest.raises(ValueError, match="metric"):
        minima(*tables, metric="max_abs")
