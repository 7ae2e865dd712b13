"""The peers' FD gradients, run through gradlab's counted evaluator.

Reference: J(x) = sum_i exp(a_i x_i), gradient a_i exp(a_i x_i), second and third
diagonal derivatives a_i**2 exp(a_i x_i), a_i**3 exp(a_i x_i) (closed forms).

Float64 tolerances, per coordinate, from the classical error bounds (docs/references.md,
"Classical optimal steps"), with eps_f = 8 u S the rounding of J (S = sum_i
exp(a_i x_i): one rounding per exp, per product a_i x_i and per addition of the
N = 5 terms, with room to spare). scipy divides by the step realised in float64,
so the step itself adds no error there.

=============================  ==============================  ======================
peer                           scheme, step                    bound on |err_i|
=============================  ==============================  ======================
scipy_approx_fprime            forward, 1.49e-8 absolute       M2 h/2 + 2 eps_f/h
scipy_approx_derivative_2pt    forward, sqrt(eps) max(1,|x|)   M2 h/2 + 2 eps_f/h
scipy_approx_derivative_3pt    central, cbrt(eps) max(1,|x|)   M3 h^2/6 + eps_f/h
numdifftools_gradient          central + Richardson/Wynn       100 eps_f/h at its
                               (truncation extrapolated away)  final step (the
                                                               extrapolation weights
                                                               amplify rounding)
scipy_derivative               order-8 central, iterated to    sqrt(eps) |g_i|: its
                               error < rtol |df|               own stopping rule
                                                               (rtol = sqrt(eps)); its
                                                               error estimate
                                                               |df - df_last| is
                                                               conservative
=============================  ==============================  ======================
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import numpy as np
import pytest

import gradlab as gl
from gradlab.arithmetic.namespaces import NumpyNamespace
from gradlab.steps import STATUS, peers

A = np.array([0.5, -1.0, 2.0, 0.25, -0.75])
THETA = np.array([0.3, -0.2, 0.1, 1.5, -2.0])
U64 = 2.0**-53
SQRT_EPS = math.sqrt(np.finfo(np.float64).eps)


def expsum(theta: np.ndarray = THETA) -> gl.Objective:
    return gl.Objective(
        lambda t, xp: xp.sum(xp.exp(t * xp.asarray(A))), theta,
        grad=lambda t, xp: xp.asarray(A) * xp.exp(t * xp.asarray(A)), name="expsum",
    )


def derivs(theta: np.ndarray = THETA) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """g, M2, M3 (x 1.01 for the step's reach) and eps_f at theta, in closed form."""
    e = np.exp(A * theta)
    return A * e, 1.01 * A**2 * e, 1.01 * np.abs(A) ** 3 * e, 8 * U64 * float(e.sum())


def bound(name: str, res: gl.StepResult) -> np.ndarray:
    g, m2, m3, eps_f = derivs()
    h = res.h
    if name in ("scipy_approx_fprime", "scipy_approx_derivative_2point"):
        return m2 * h / 2 + 2 * eps_f / h
    if name == "scipy_approx_derivative_3point":
        return m3 * h**2 / 6 + eps_f / h
    if name == "numdifftools_gradient":
        return 100 * eps_f / h
    if name == "scipy_derivative":
        return SQRT_EPS * np.abs(g)
    raise AssertionError(name)


def rel_error(res: gl.StepResult, g: np.ndarray) -> float:
    assert res.approx is not None
    return float(np.linalg.norm(res.approx - g) / (np.linalg.norm(res.approx) + np.linalg.norm(g)))


@pytest.fixture(scope="module")
def rows64() -> dict[str, gl.StepResult]:
    return {name: peer(expsum()) for name, peer in peers.PEERS.items()}


def test_registry() -> None:
    names = peers.available_peers()
    assert names == list(peers.PEERS)
    assert {"scipy_approx_fprime", "scipy_approx_derivative_2point",
            "scipy_approx_derivative_3point", "scipy_derivative"} <= set(names)
    has_nd = importlib.util.find_spec("numdifftools") is not None
    assert ("numdifftools_gradient" in names) == has_nd


@pytest.mark.parametrize("name", sorted(peers.PEERS))
def test_float64_matches_analytic_gradient(name: str, rows64: dict[str, gl.StepResult]) -> None:
    res = rows64[name]
    g = derivs()[0]
    assert res.rule == name and res.format == "float64"
    assert res.approx is not None and res.approx.dtype == np.float64
    err = np.abs(res.approx - g)
    assert np.all(err <= bound(name, res)), (err, bound(name, res))
    assert res.nfev > 0
    assert np.all(np.isfinite(res.h)) and np.all(res.h > 0)
    assert np.all(res.status == 0)
    assert res.info["collapsed_points"] == 0
    df = res.to_frame()
    assert len(df) == THETA.size and df.attrs["nfev"] == res.nfev
    assert set(df.message) == {STATUS[0]}


# Evaluations each peer spends at its defaults, N = 5 coordinates.
NFEV = {
    "numdifftools_gradient": 1 + 2 * 15 * 5,  # f(x), then x +- h e_i at 15 steps
    "scipy_approx_fprime": 5 + 1,
    "scipy_approx_derivative_2point": 5 + 1,
    "scipy_approx_derivative_3point": 2 * 5 + 1,  # f(x0) is evaluated though unused
}


@pytest.mark.parametrize("name", sorted(peers.PEERS))
def test_nfev_is_the_peers_count(name: str, rows64: dict[str, gl.StepResult]) -> None:
    res = rows64[name]
    if name in NFEV:
        assert res.nfev == NFEV[name]
    if res.info.get("peer_nfev") is not None:  # the peer reports its own count
        assert res.nfev == res.info["peer_nfev"]
    if name == "scipy_derivative":  # 9 points, then 2 per further iteration, per coordinate
        assert res.nfev == int(np.sum(9 + 2 * (res.info["nit"] - 1)))


class Recorder:
    """A plain callable J that records every point it is given."""

    def __init__(self) -> None:
        self.points: list[np.ndarray] = []

    def __call__(self, x: np.ndarray) -> Any:
        self.points.append(np.array(x))
        return np.sum(np.exp(A * x))


@pytest.mark.parametrize("name", ["scipy_approx_fprime", "scipy_approx_derivative_2point",
                                  "scipy_approx_derivative_3point"])
def test_h_is_the_step_scipy_takes(name: str) -> None:
    if name not in peers.PEERS:
        pytest.skip(f"{name} not available")
    rec = Recorder()
    res = peers.PEERS[name](rec, theta=THETA)
    pts = np.array(rec.points)
    moved = pts != THETA
    assert np.all(moved.sum(axis=1) <= 1)  # one coordinate at a time
    for i in range(THETA.size):
        offs = pts[moved[:, i], i] - THETA[i]
        # x + h is rounded once in float64: the offset is h to half an ulp of x
        assert np.allclose(np.abs(offs), res.h[i], rtol=0, atol=np.spacing(abs(THETA[i])))
        if name == "scipy_approx_derivative_3point":
            assert sorted(np.sign(offs)) == [-1, 1]
        else:
            assert np.all(np.sign(offs) == res.info["direction"][i])
    if name == "scipy_approx_fprime":
        assert np.all(res.h == SQRT_EPS)
    else:
        rel = SQRT_EPS if name.endswith("2point") else np.finfo(np.float64).eps ** (1 / 3)
        assert np.allclose(res.h, rel * np.maximum(1, np.abs(THETA)), rtol=1e-15, atol=0)
    if name == "scipy_approx_derivative_2point":  # backward where x < 0 (scipy's sign(x))
        assert list(res.info["direction"]) == [1, -1, 1, 1, -1]


def test_scipy_derivative_h_reproduces_its_estimate() -> None:
    from scipy.differentiate import derivative

    def j(x: np.ndarray) -> Any:
        return np.sum(np.exp(A * x))

    def along(x: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape)
        for k, c in np.ndenumerate(np.broadcast_to(i, x.shape)):
            t = THETA.copy()
            t[c] = x[k]
            out[k] = j(t)
        return out

    res = peers.scipy_derivative(j, theta=THETA)
    assert np.all(res.info["nit"] >= 2)
    assert np.array_equal(res.info["success"], res.status == 0)
    # One iteration from initial_step = h rebuilds the final stencil h / 2**j, j = 0..3,
    # and the same estimate, bit for bit; initial_step / step_factor**nit (one halving
    # further, the step of the iteration scipy did not run) does not.
    for h, same in ((res.h, True), (res.h / 2, False)):
        redo = derivative(along, THETA, args=(np.arange(THETA.size),), initial_step=h, maxiter=1)
        assert np.array_equal(redo.df, res.approx) == same


def test_numdifftools_final_step_is_on_its_step_sequence(rows64: dict[str, gl.StepResult]) -> None:
    pytest.importorskip("numdifftools")
    res = rows64["numdifftools_gradient"]
    step_nom = np.maximum(np.log(1.718281828459045 + np.abs(THETA)), 1)
    k = np.log2(res.h / (2.0 * step_nom))  # steps 2 s 2**-k, k = 0..14
    assert np.allclose(k, np.round(k), atol=1e-12) and np.all((k <= 0) & (k >= -14))
    assert np.all(np.abs(res.approx - derivs()[0]) <= 10 * res.info["error_estimate"] + 1e-14)


@pytest.mark.parametrize("name", sorted(peers.PEERS))
def test_float32_runs_and_is_worse(name: str, rows64: dict[str, gl.StepResult]) -> None:
    g = derivs()[0]
    res = peers.PEERS[name](expsum(), format="float32")
    assert res.format == "float32" and res.nfev > 0
    assert res.approx is not None and np.all(np.isfinite(res.approx))
    assert rel_error(res, g) > rel_error(rows64[name], g)


def test_float32_fixed_step_below_spacing_gives_zero() -> None:
    # sqrt(eps64) = 2**-26 is below half the float32 spacing of every |x| >= 0.5:
    # x + h rounds back to x and the forward difference is exactly 0.
    res = peers.scipy_approx_fprime(expsum(), format="float32")
    big = np.abs(THETA) >= 0.5
    assert res.approx is not None and np.all(res.approx[big] == 0)
    assert res.info["collapsed_points"] >= int(big.sum())


def test_native_lets_scipy_adapt_to_the_dtype() -> None:
    g = derivs()[0]
    plain = peers.scipy_approx_derivative_2point(expsum(), format="float32")
    native = peers.scipy_approx_derivative_2point(expsum(), format="float32", native=True)
    eps32 = float(np.finfo(np.float32).eps)
    assert np.allclose(native.h, math.sqrt(eps32) * np.maximum(1, np.abs(THETA)), rtol=1e-6)
    assert rel_error(native, g) < 1e-2 < rel_error(plain, g)


@pytest.fixture(scope="module")
def seed_rows() -> dict[str, gl.StepResult]:
    return {name: peer(gl.objectives.seed_net()) for name, peer in peers.PEERS.items()}


@pytest.mark.parametrize("name", sorted(peers.PEERS))
def test_seed_net_rows(name: str, seed_rows: dict[str, gl.StepResult]) -> None:
    obj = gl.objectives.seed_net()
    assert obj.grad is not None
    g = np.asarray(obj.grad(obj.theta0, NumpyNamespace("float64")), dtype=np.float64)
    res = seed_rows[name]
    df = res.to_frame()
    assert len(df) == 47 and res.nfev > 0
    assert np.all(np.isfinite(res.h)) and np.all(res.h > 0)
    assert rel_error(res, g) < 1e-5
    if name in ("scipy_approx_fprime", "scipy_approx_derivative_2point"):
        assert res.nfev == 48
    if name == "scipy_approx_derivative_3point":
        assert res.nfev == 95
    if name == "numdifftools_gradient":
        assert res.nfev == 1 + 30 * 47


def test_plain_callable() -> None:
    res = peers.scipy_approx_derivative_3point(lambda x: np.sum(x**2), theta=[1.0, -2.0])
    assert res.approx is not None and np.allclose(res.approx, [2.0, -4.0], rtol=1e-9)


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="theta is required"):
        peers.scipy_approx_fprime(lambda x: np.sum(x))
    with pytest.raises(TypeError, match=r"unsupported option\(s\) \['bounds'\]"):
        peers.scipy_approx_derivative_2point(expsum(), bounds=(0, 1))
    with pytest.raises(ValueError, match="native: format 'bfloat16'"):
        peers.scipy_approx_fprime(expsum(), format="bfloat16", native=True)
    with pytest.raises(ValueError, match="hardware formats"):
        peers.scipy_approx_fprime(expsum(), format="binary20")


def test_numdifftools_missing_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_numdifftools(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "numdifftools":
            raise ImportError("No module named 'numdifftools'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_numdifftools)
    with pytest.raises(ImportError, match="pip install numdifftools"):
        peers.numdifftools_gradient(expsum())
