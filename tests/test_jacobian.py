"""gl.check_jacobian: projections and the full Jacobian, wrong entries, transposed blocks."""

import numpy as np
import pytest

import gradlab as gl

A = np.array([[1.0, 2.0, 0.0], [0.5, -1.0, 0.3], [3.0, 0.0, -0.7], [0.2, 0.4, 1.1]])
THETA = np.array([0.3, -0.2, 0.5])


def f(x: np.ndarray) -> np.ndarray:
    return np.sin(A.astype(x.dtype) @ x) + x[0] * x[1]


def jac(x: np.ndarray) -> np.ndarray:
    j = np.cos(A.astype(x.dtype) @ x)[:, None] * A.astype(x.dtype)
    j[:, 0] += x[1]
    j[:, 1] += x[0]
    return j


@pytest.mark.parametrize("fmt", ["float64", "float32", "float16"])
@pytest.mark.parametrize("projections", [4, "full"])
def test_a_correct_jacobian_passes(fmt: str, projections) -> None:
    res = gl.check_jacobian(f, jac, THETA, fmt, projections=projections)
    assert res.passed and res.decided
    k = 4 if projections == 4 else A.shape[0]
    assert res.projections.shape == (k, A.shape[0]) and len(res.results) == k
    assert set(res.report.projection) == set(range(k))


def _wrong(kind: str):
    def j(x: np.ndarray) -> np.ndarray:
        out = jac(x).copy()
        if kind == "entry":
            out[2, 1] *= 1.1
        elif kind == "sign":
            out[1, 2] = -out[1, 2]
        else:  # a transposed 2x2 block
            out[:2, :2] = out[:2, :2].T.copy()
        return out
    return j


@pytest.mark.parametrize("kind", ["entry", "sign", "transposed"])
@pytest.mark.parametrize("projections", [4, "full"])
def test_wrong_jacobians_fail(kind: str, projections) -> None:
    assert not gl.check_jacobian(f, _wrong(kind), THETA, "float32", projections=projections).passed


def test_the_full_mode_names_the_output_and_input() -> None:
    res = gl.check_jacobian(f, _wrong("entry"), THETA, projections="full")
    bad = res.report[res.report.status == "fail"]
    assert bad.projection.tolist() == [2] and bad.coord.tolist() == [1]
    assert "projections not passed: [2]" in str(res)


def test_a_vjp_and_an_array_jacobian() -> None:
    vjp = lambda x, v: v @ jac(x)  # noqa: E731
    assert gl.check_jacobian(f, vjp=vjp, theta=THETA).passed
    assert gl.check_jacobian(f, jac(THETA), THETA).passed


@pytest.mark.parametrize("kwargs,exc,words", [
    (dict(), ValueError, "exactly one"),
    (dict(jac=jac, vjp=lambda x, v: v), ValueError, "exactly one"),
    (dict(jac=jac, projections=0), ValueError, "projections"),
    (dict(jac=jac, projections="some"), ValueError, "projections"),
    (dict(jac=np.ones(3)), ValueError, "2-D"),
    (dict(jac=lambda x: np.ones((2, 2))), ValueError, "shape"),
    (dict(vjp=3.0), TypeError, "vjp"),
])
def test_bad_arguments_are_named(kwargs, exc, words) -> None:
    with pytest.raises(exc, match=words):
        gl.check_jacobian(f, theta=THETA, **kwargs)


def test_a_scalar_output_is_refused() -> None:
    with pytest.raises(ValueError, match="1-D array"):
        gl.check_jacobian(lambda x: np.sum(x), lambda x: np.ones((1, 3)), THETA)
