"""Decimal digits and bits of precision, and the precision cap every reference shares."""

from __future__ import annotations

import math

__all__ = ["LOG2_10", "MAX_PREC", "bits_to_digits", "digits_to_bits"]

LOG2_10 = math.log2(10)
MAX_PREC = 1 << 14
"""The most bits a reference value or gradient is computed at: what is unresolved there is
refused or reported as unproven, not reported as a number."""


def digits_to_bits(digits: float) -> int:
    """Bits of precision that carry ``digits`` decimal digits."""
    return math.ceil(digits * LOG2_10)


def bits_to_digits(bits: float) -> int:
    """Decimal digits that carry ``bits`` bits of precision (rounded up)."""
    return math.ceil(bits / LOG2_10)
