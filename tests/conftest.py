"""Shared fixtures: mpmath's global state is reset around every test; deterministic noise."""

from collections.abc import Callable, Iterator

import mpmath
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _reset_mpmath() -> Iterator[None]:
    prec = mpmath.mp.prec
    yield
    mpmath.mp.prec = prec


def _hash_noise(x: np.ndarray, sigma: float) -> float:
    """Deterministic uniform noise of standard deviation sigma, a hash of x's bits."""
    bits = np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)
    mixed = np.bitwise_xor.reduce((bits * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11))
    u = float(mixed & np.uint64((1 << 40) - 1)) / float(1 << 40)
    return sigma * np.sqrt(3) * (2 * u - 1)


@pytest.fixture
def hash_noise() -> Callable[[np.ndarray, float], float]:
    """``noise(x, sigma)``: noise of J that a step rule or a checker must measure."""
    return _hash_noise


# JAX (and PyTorch) start threads when imported, and tests of the sweeps and the engine fork
# worker processes; forking a process that runs JAX's threads can deadlock the child. The
# modules that import the frameworks therefore run after all the others.
_FRAMEWORK_MODULES = ("test_adapters.py", "test_adapters_jax.py", "test_detect.py",
                      "test_quickstart.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name in _FRAMEWORK_MODULES)  # stable: order kept otherwise
