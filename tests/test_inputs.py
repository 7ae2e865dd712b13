"""gl.check on trees of arrays, several inputs and masked (infinite) entries."""

import math

import numpy as np
import pytest

import gradlab as gl

RNG = np.random.default_rng(0)
W = RNG.standard_normal((3, 4))
B = RNG.standard_normal(3)
X = RNG.standard_normal(4)


def layer(p: dict) -> float:
    return np.sum(np.tanh(p["W"] @ X.astype(p["W"].dtype) + p["b"]))


def layer_grad(p: dict) -> dict:
    s = 1 - np.tanh(p["W"] @ X.astype(p["W"].dtype) + p["b"]) ** 2
    return {"W": np.outer(s, X).astype(p["W"].dtype), "b": s.astype(p["b"].dtype)}


@pytest.mark.parametrize("fmt", ["float64", "float32", "bfloat16"])
def test_a_dict_of_arrays_is_checked_and_named(fmt: str) -> None:
    res = gl.check(layer, layer_grad, theta={"W": W, "b": B}, format=fmt)
    assert res.passed and len(res.report) == W.size + B.size
    assert res.report.name.tolist()[:2] == ["W[0, 0]", "W[0, 1]"] and res.report.name.iloc[-1] == "b[2]"


def test_a_wrong_entry_of_a_tree_is_named() -> None:
    def bad(p: dict) -> dict:
        g = layer_grad(p)
        g["W"][1, 2] *= 1.1
        return g

    res = gl.check(layer, bad, theta={"W": W, "b": B}, format="float32")
    assert not res.passed
    assert res.report[res.report.status == "fail"].name.tolist() == ["W[1, 2]"]


def test_several_inputs_as_a_tuple_and_nested_trees() -> None:
    res = gl.check(lambda a, c: np.sum(a * a) * c[0],
                   lambda a, c: (2 * a * c[0], np.array([np.sum(a * a)], dtype=a.dtype)),
                   theta=(np.ones(3), np.array([2.0])))
    assert res.passed and res.report.name.tolist() == ["arg0[0]", "arg0[1]", "arg0[2]", "arg1[0]"]
    nested = {"layer": {"W": W, "b": B}}
    res = gl.check(lambda p: layer(p["layer"]), lambda p: {"layer": layer_grad(p["layer"])},
                   theta=nested, mode="directional")
    assert res.passed


def test_a_gradient_of_another_structure_is_refused() -> None:
    with pytest.raises(ValueError, match="keys"):
        gl.check(layer, lambda p: {"W": layer_grad(p)["W"]}, theta={"W": W, "b": B})
    with pytest.raises(ValueError, match="shape"):
        gl.check(layer, lambda p: {"W": layer_grad(p)["W"].T, "b": layer_grad(p)["b"]},
                 theta={"W": W, "b": B})


def _lse(z: np.ndarray) -> float:
    m = np.max(z)
    return m + np.log(np.sum(np.exp(z - m)))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - np.max(z))
    return e / np.sum(e)


@pytest.mark.parametrize("fmt", ["float64", "float32", "float16", "bfloat16"])
def test_masked_logits_are_left_out_and_listed(fmt: str) -> None:
    logits = np.array([0.5, -np.inf, 1.0, 0.2, -np.inf])
    res = gl.check(_lse, _softmax, theta=logits, format=fmt)
    assert res.passed
    assert res.report.coord.tolist() == [0, 2, 3]
    assert res.info["masked"] == ["theta[1]", "theta[4]"] and "2 masked" in str(res)
    wrong = lambda z: _softmax(z) * np.array([1, 1, 1.1, 1, 1], dtype=z.dtype)  # noqa: E731
    bad = gl.check(_lse, wrong, theta=logits, format=fmt)
    assert not bad.passed and bad.report[bad.report.status == "fail"].coord.tolist() == [2]


def test_nan_is_never_a_mask_and_all_masked_is_refused() -> None:
    with pytest.raises(ValueError, match="theta"):
        gl.check(_lse, _softmax, theta=np.array([0.5, math.nan]))
    with pytest.raises(ValueError, match="masked"):
        gl.check(_lse, _softmax, theta=np.array([-np.inf, -np.inf]))
    with pytest.raises(ValueError, match="NaN"):
        gl.check(layer, layer_grad, theta={"W": W, "b": np.array([1.0, math.nan, 0.0])})


def test_a_format_without_infinities_refuses_masks() -> None:
    with pytest.raises(ValueError, match="cannot hold"):
        gl.check(_lse, _softmax, theta=np.array([0.5, -np.inf, 1.0]), format="float8_e4m3fn")
