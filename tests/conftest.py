"""Shared fixtures: mpmath's global state is reset around every test."""

from collections.abc import Iterator

import mpmath
import pytest


@pytest.fixture(autouse=True)
def _reset_mpmath() -> Iterator[None]:
    prec = mpmath.mp.prec
    yield
    mpmath.mp.prec = prec
