"""Noise attribution: on an objective built so that one operation dominates, it is found."""

import numpy as np

import gradlab as gl


def _amplified(theta, xp):
    s = theta[..., 0] * xp.asarray(0.99)  # rounded product near 1: the noisy operation
    return -xp.log(1 - s) + xp.sum(theta * theta)  # log(1 - s) amplifies its error 100-fold


def test_dominant_operation_is_found() -> None:
    obj = gl.Objective(_amplified, np.array([1.0, 0.5, 0.25]), name="amplified")
    res = gl.attribute_noise(obj, "float32")
    top = res.table.sort_values("share").iloc[-1]
    assert top.op == "*" and "s = theta" in top.code
    assert top.share > 0.8
    others = res.table.drop(index=top.name)
    assert (others.sigma < top.sigma / 2).all()
    # the sum of the parts reproduces the format's own noise within a factor of 2
    assert 0.5 < res.sigma_all / res.sigma_hardware < 2


def test_seed_net_naive_noise_comes_from_the_sigmoid() -> None:
    res = gl.attribute_noise(gl.objectives.seed_net(), "float32")
    sigmoid = res.table[res.table.code.str.contains("a3 = 1 / ")]
    assert sigmoid.share.sum() > 0.95
    stable = gl.attribute_noise(gl.objectives.seed_net(stable=True), "float32")
    assert stable.table.share.max() < 0.5  # no single dominant operation
