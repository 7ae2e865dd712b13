"""The reference namespaces' matmul: an exact dot product rounded once."""

import mpmath
import numpy as np
import pytest

from gradlab.arithmetic.namespaces import MPNamespace, namespace_for


@pytest.mark.parametrize("prec", [24, 60, 200])
def test_exact_dot_is_correctly_rounded(prec: int) -> None:
    rng = np.random.default_rng(prec)
    a = rng.standard_normal((2, 5, 40)) * np.exp(rng.uniform(-30, 30, (2, 5, 40)))
    a[0, 0, :3] = 0.0
    b = rng.standard_normal((40, 3))
    fast = MPNamespace(prec, batch_ndim=1, exact_dot=True)
    slow = MPNamespace(prec, batch_ndim=1)
    am, bm = fast.from_values(a.astype(object)), fast.from_values(b.astype(object))  # rounded to prec
    r = fast.matmul(am, bm[None])
    r_ops = slow.matmul(am, bm[None])
    with mpmath.workprec(4000):  # the products and sums of these inputs, exactly
        exact = [mpmath.fsum(mpmath.mpf(x) * mpmath.mpf(y) for x, y in zip(row, col, strict=True))
                 for row, col in ((am[i, j], bm[:, k]) for i in range(2) for j in range(5)
                                  for k in range(3))]
        for got, want in zip(r.reshape(-1), exact, strict=True):
            rounded = mpmath.mpf(mpmath.libmp.normalize(*want._mpf_, prec, "n")) if want else want
            assert got == rounded  # one rounding of the exact sum
    assert any(x != y for x, y in zip(r.reshape(-1), r_ops.reshape(-1), strict=True)) or prec == 200


def test_non_finite_entries_fall_back_to_op_by_op() -> None:
    ns = MPNamespace(53, exact_dot=True)
    a = ns.from_values(np.array([[1.0, np.inf]], dtype=object))
    b = ns.from_values(np.array([[1.0], [2.0]], dtype=object))
    assert mpmath.isinf(ns.matmul(a, b)[0, 0])


def test_emulated_formats_round_every_operation() -> None:
    ns = namespace_for("binary11")
    assert isinstance(ns, MPNamespace) and not ns.exact_dot
