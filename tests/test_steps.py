"""optimal_step, the oracle and fd_gradient: known optima, agreement with the engine."""

import numpy as np
import pytest

import gradlab as gl
from gradlab.analysis.engine import fd_gradient
from gradlab.analysis.errors import relative_error
from gradlab.arithmetic.coordinate import CoordinateFunction
from gradlab.arithmetic.stencil import stencil
from gradlab.steps import oracle

A = np.array([0.7, 1.3, 2.0, 0.9])
THETA = np.array([0.3, -0.4, 0.8, 1.1])
SIGMA = 1e-9


def _noise(x: np.ndarray) -> float:
    """Deterministic uniform noise of standard deviation SIGMA, a hash of x's bits."""
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)
    mixed = np.bitwise_xor.reduce((bits * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11))
    u = float(mixed & np.uint64((1 << 40) - 1)) / float(1 << 40)
    return SIGMA * np.sqrt(3) * (2 * u - 1)


def noisy_sin(x: np.ndarray) -> float:
    return float(np.sum(np.sin(A * x))) + _noise(x)


def test_optimal_step_finds_the_known_optimum() -> None:
    res = gl.optimal_step(noisy_sin, THETA, format="float64", scheme="central")
    # central: rms error sqrt((h^2 f'''/6)^2 + sigma^2 / (2 h^2)) is least at (3 sigma/|f'''|)^(1/3)
    third = -(A**3) * np.cos(A * THETA)
    want = (3 * SIGMA / np.abs(third)) ** (1 / 3)
    assert 0.5 < res.sigma / SIGMA < 2  # ECnoise recovers the noise
    np.testing.assert_array_less(np.abs(np.log2(res.h / want)), 1.0)
    fwd = gl.optimal_step(noisy_sin, THETA, format="float64", scheme="forward")
    want_f = 2 * np.sqrt(SIGMA / np.abs(A**2 * np.sin(A * THETA)))  # forward: 2 sqrt(sigma/|f''|)
    np.testing.assert_array_less(np.abs(np.log2(fwd.h / want_f)), 1.0)
    assert res.nfev == fwd.nfev > 0


def test_optimal_step_validation() -> None:
    with pytest.raises(ValueError, match="theta"):
        gl.optimal_step(noisy_sin)
    with pytest.raises(ValueError, match="scheme"):
        gl.optimal_step(gl.objectives.seed_net(), scheme="complex")
    with pytest.raises(ValueError, match="format"):
        gl.optimal_step(gl.objectives.seed_net(), format="float8")


def test_fd_gradient_is_the_engines_approx() -> None:
    obj = gl.objectives.seed_net()
    for fmt, scheme, h in [("float32", "central", 1e-3), ("float16", "forward", 1e-2),
                           ("float64", "central4", 1e-3), ("float64", "complex", 1e-20)]:
        df = gl.fd_errors(obj, formats=[fmt], schemes=[scheme], steps=[h], workers=1,
                          noise={fmt: 0.0})
        np.testing.assert_array_equal(fd_gradient(obj, fmt, scheme, h), df.approx.to_numpy())


def test_oracle_is_the_grid_minimum() -> None:
    obj = gl.objectives.smooth_sum("exp", n=3, seed=0)
    g = np.array([float(v) for v in gl.exact(obj, "float32", digits=25, orders=()).grad])
    steps = np.logspace(-6, -1, 11)
    orc = oracle(obj, g, "float32", "central", steps=steps)
    errs = [relative_error(fd_gradient(obj, "float32", "central", h), g) for h in steps]
    assert orc.e_global == min(errs) and orc.h_global == steps[int(np.argmin(errs))]
    assert orc.e_per_coordinate <= orc.e_global


def test_coordinate_function_counts_and_keeps_the_format() -> None:
    cf = CoordinateFunction(gl.objectives.seed_net(), gl.objectives.seed_net().theta0, "float16")
    st = stencil(cf.theta[:3], [1e-3] * 3, (1,), cf.fmt)
    cf.evaluate(cf.points(np.arange(3), st.points[:, 0]))
    cf.center()
    assert cf.nfev == 4 and cf.theta.dtype == np.float16
    up = CoordinateFunction(lambda x: np.sum(x.astype(np.float64)), np.ones(3), "float32")
    up.center()
    assert up.upcasts == 1  # a callable that upcasts is reported, not trusted
