"""Finite-difference schemes for a first derivative, with exact weights.

A scheme approximates phi'(0), phi(t) = J(theta + t e_i), by
``D(h) = sum_j c_j phi(k_j h) / h``. The weights are the derivatives at 0 of the
Lagrange basis on the offsets k_j, computed in exact rationals (as
FiniteDifferences.jl solves its coefficients in rationals), so that

    D(h) - phi'(0) = C h**q phi^(q+1)(0) + O(h**(q+1)),

with order q and leading coefficient C = sum_j c_j k_j**(q+1) / (q+1)! also exact.
The complex step (Squire & Trapp 1998) is ``Im phi(i h) / h`` with
``C = -1/6`` and q = 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

__all__ = ["Scheme", "available", "get"]


@dataclass(frozen=True)
class Scheme:
    """A first-derivative stencil.

    Attributes
    ----------
    name : str
    offsets : tuple of int
        The k_j, in the order the terms are summed.
    weights : tuple of Fraction
        The c_j (exact).
    order : int
        q: the truncation error is O(h**q).
    leading : Fraction
        C in ``truncation ~ C h**q phi^(q+1)(0)``.
    complex_step : bool
        True for the complex step (offsets/weights then describe ``Im phi(i h)``).
    """

    name: str
    offsets: tuple[int, ...]
    weights: tuple[Fraction, ...]
    order: int
    leading: Fraction
    complex_step: bool = False

    @property
    def denominator(self) -> int:
        """Least common denominator of the weights."""
        return math.lcm(*(w.denominator for w in self.weights))

    @property
    def numerators(self) -> tuple[int, ...]:
        """Integer weights n_j with c_j = n_j / denominator."""
        d = self.denominator
        return tuple(int(w * d) for w in self.weights)

    @property
    def weight_norm(self) -> float:
        """sqrt(sum c_j**2): multiplies the noise level in the rounding model."""
        return math.sqrt(sum(float(w) ** 2 for w in self.weights))

    @property
    def derivative_order(self) -> int:
        """Order of the derivative the truncation model needs: q + 1."""
        return self.order + 1

    def __str__(self) -> str:
        return self.name


def lagrange_weights(offsets: tuple[int, ...]) -> tuple[Fraction, ...]:
    """Exact weights c_j = L_j'(0) of the Lagrange basis on ``offsets``."""
    ks = [Fraction(k) for k in offsets]
    if len(set(ks)) != len(ks):
        raise ValueError(f"offsets must be distinct, got {offsets}")
    weights = []
    for j, kj in enumerate(ks):
        others = [k for m, k in enumerate(ks) if m != j]
        total = Fraction(0)
        for skip in range(len(others)):
            term = Fraction(1, 1) / (kj - others[skip])
            for m, km in enumerate(others):
                if m != skip:
                    term *= (0 - km) / (kj - km)
            total += term
        weights.append(total)
    return tuple(weights)


def _moments(offsets: tuple[int, ...], weights: tuple[Fraction, ...], m: int) -> Fraction:
    return sum((w * Fraction(k) ** m for k, w in zip(offsets, weights, strict=True)), Fraction(0))


def _make(name: str, offsets: tuple[int, ...]) -> Scheme:
    full = lagrange_weights(offsets)
    kept = [(k, w) for k, w in zip(offsets, full, strict=True) if w != 0]
    ks = tuple(k for k, _ in kept)
    ws = tuple(w for _, w in kept)
    assert _moments(ks, ws, 0) == 0 and _moments(ks, ws, 1) == 1
    q = 1
    while _moments(ks, ws, q + 1) == 0:
        q += 1
    leading = _moments(ks, ws, q + 1) / math.factorial(q + 1)
    return Scheme(name=name, offsets=ks, weights=ws, order=q, leading=leading)


@cache
def _registry() -> dict[str, Scheme]:
    return {
        "forward": _make("forward", (0, 1)),
        "backward": _make("backward", (-1, 0)),
        "central": _make("central", (-1, 1)),
        "central4": _make("central4", (-2, -1, 1, 2)),
        "central6": _make("central6", (-3, -2, -1, 1, 2, 3)),
        "complex": Scheme(
            name="complex",
            offsets=(1,),
            weights=(Fraction(1),),
            order=2,
            leading=Fraction(-1, 6),
            complex_step=True,
        ),
    }


def get(scheme: Scheme | str) -> Scheme:
    """Look up a scheme by name.

    Raises
    ------
    ValueError
        For an unknown name; the message names the parameter ``scheme``.

    Examples
    --------
    >>> from gradlab import schemes
    >>> s = schemes.get("central4")
    >>> s.order, s.leading, s.numerators, s.denominator
    (4, Fraction(-1, 30), (1, -8, 8, -1), 12)
    """
    if isinstance(scheme, Scheme):
        return scheme
    reg = _registry()
    if scheme not in reg:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {sorted(reg)}")
    return reg[scheme]


def available() -> list[str]:
    """Names of the built-in schemes."""
    return list(_registry())
