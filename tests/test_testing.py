"""gradlab.testing.assert_gradient: passes correct gradients, and fails with the reasons."""

from __future__ import annotations

import numpy as np
import pytest

import gradlab as gl
from gradlab.objectives.bugs import scaled_component
from gradlab.testing import GradientAssertionError, assert_gradient

THETA = np.linspace(0.1, 1.0, 5)


def _f(x: np.ndarray) -> np.ndarray:
    return np.sum(np.sin(x))


def test_a_correct_gradient_passes_and_returns_the_check() -> None:
    res = assert_gradient(_f, np.cos, theta=THETA)
    assert res.passed and len(res.report) == 5


def test_a_wrong_component_is_named_with_its_numbers() -> None:
    bad = lambda x: np.cos(x) * np.where(np.arange(5) == 2, 1.1, 1.0)  # noqa: E731
    with pytest.raises(GradientAssertionError) as info:
        assert_gradient(_f, bad, theta=THETA)
    text = str(info.value)
    assert "1 of 5 rows" in text and "coord 2:" in text and "tolerance" in text
    assert "coord 1:" not in text and "false-alarm probability" in text
    assert not info.value.result.passed


def test_policies_and_the_reference_format_appear_in_the_message() -> None:
    obj = gl.objectives.seed_net(stable=True)
    assert_gradient(obj, format="bf16-mixed")
    buggy = scaled_component(obj, 45, 1.1)  # its largest component
    with pytest.raises(GradientAssertionError, match=r"finite differences in policy\(storage=float32"):
        assert_gradient(buggy, format="bf16-mixed")


def test_an_undecided_check_fails_and_says_why() -> None:
    # J = 1000 + 1e-3 sum(x) in float16: J's ulp (0.5) swamps every component's FD
    f = lambda x: x.dtype.type(1000) + x.dtype.type(1e-3) * np.sum(x)  # noqa: E731
    with pytest.raises(GradientAssertionError, match="UNDECIDED"):
        assert_gradient(f, lambda x: np.full(x.shape, 1e-3), theta=np.ones(4), format="float16",
                        reference_format=None)


def test_many_failures_are_listed_worst_first_and_capped() -> None:
    with pytest.raises(GradientAssertionError) as info:
        assert_gradient(_f, lambda x: -np.cos(x), theta=THETA, max_listed=2)
    text = str(info.value)
    assert "5 of 5 rows" in text and "... and 3 more" in text
