"""Schemes: exact weights satisfy the moment conditions that define their order."""

from fractions import Fraction
from math import factorial

import pytest

from gradlab.arithmetic import schemes


@pytest.mark.parametrize("name,order", [("forward", 1), ("backward", 1), ("central", 2),
                                        ("central4", 4), ("central6", 6)])
def test_moments_define_order(name: str, order: int) -> None:
    s = schemes.get(name)
    moment = [sum((w * Fraction(k) ** m for k, w in zip(s.offsets, s.weights, strict=False)), Fraction(0))
              for m in range(order + 2)]
    assert moment[0] == 0 and moment[1] == 1
    assert all(mom == 0 for mom in moment[2 : order + 1])
    assert s.order == order
    assert s.leading == moment[order + 1] / factorial(order + 1) != 0


def test_known_leading_terms() -> None:
    assert schemes.get("central").leading == Fraction(1, 6)
    assert schemes.get("forward").leading == Fraction(1, 2)
    assert schemes.get("central4").leading == Fraction(-1, 30)
    assert schemes.get("central6").leading == Fraction(1, 140)
    assert schemes.get("complex").leading == Fraction(-1, 6)


def test_unknown_scheme_names_the_parameter() -> None:
    with pytest.raises(ValueError, match="scheme"):
        schemes.get("central3")
