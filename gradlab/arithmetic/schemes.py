"""Finite-difference schemes for a first derivative, with exact weights.

A scheme approximates phi'(0), phi(t) = J(theta + t e_i), by
``D(h) = sum_j c_j phi(k_j h) / h``. The weights solve the Taylor moment
conditions in exact rationals (as FiniteDifferences.jl solves its coefficients in
rationals), so that

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

__all__ = ["Scheme", "available", "fd_weights", "get"]


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
    def truncation_derivative(self) -> int:
        """Order of the derivative the truncation model needs: q + 1."""
        return self.order + 1

    def __str__(self) -> str:
        return self.name


def fd_weights(offsets: tuple[int | Fraction, ...], derivative: int = 1) -> tuple[Fraction, ...]:
    """Exact weights c_j with sum_j c_j phi(k_j h) / h**m = phi^(m)(0) + O(h**p).

    Solves the Taylor moment conditions sum_j c_j k_j**r / r! = [r == m],
    r = 0 .. len(offsets) - 1, in rationals (Gauss-Jordan on Fractions).
    """
    ks = [Fraction(k) for k in offsets]
    size = len(ks)
    if len(set(ks)) != size:
        raise ValueError(f"offsets must be distinct, got {offsets}")
    if not 0 <= derivative < size:
        raise ValueError(f"derivative must lie in [0, {size}) for {size} offsets, got {derivative}")
    mat = [[k**r / math.factorial(r) for k in ks] + [Fraction(int(r == derivative))]
           for r in range(size)]
    for c in range(size):
        p = next(r for r in range(c, size) if mat[r][c] != 0)
        mat[c], mat[p] = mat[p], mat[c]
        piv = mat[c][c]
        mat[c] = [v / piv for v in mat[c]]
        for r in range(size):
            if r != c and mat[r][c] != 0:
                fac = mat[r][c]
                mat[r] = [x - fac * y for x, y in zip(mat[r], mat[c], strict=True)]
    return tuple(mat[r][size] for r in range(size))


def _moments(offsets: tuple[int, ...], weights: tuple[Fraction, ...], m: int) -> Fraction:
    return sum((w * Fraction(k) ** m for k, w in zip(offsets, weights, strict=True)), Fraction(0))


def _make(name: str, offsets: tuple[int, ...]) -> Scheme:
    full = fd_weights(offsets, 1)
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
    >>> from gradlab.arithmetic import schemes
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
