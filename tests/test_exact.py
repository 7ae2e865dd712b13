"""The exact reference: closed forms to 30+ digits, verification, both gradient paths, the
working precision of the FD sums."""

import math

import mpmath
import numpy as np
import pytest

import gradlab as gl
from gradlab.analysis.exact import VerificationError, bits_to_digits, reference_bits
from gradlab.arithmetic import formats


def _digits(a: object, b: object) -> float:
    with mpmath.workprec(400):
        a_, b_ = formats.exact_mpf(a), formats.exact_mpf(b)
        if a_ == b_:
            return 1000.0
        return float(-mpmath.log10(abs(a_ - b_) / max(abs(b_), mpmath.mpf(10) ** -300)))


@pytest.mark.parametrize("kind", ["exp", "sin", "poly"])
@pytest.mark.parametrize("fmt", ["float64", "float16"])
def test_closed_form_gradient_and_third_to_30_digits(kind: str, fmt: str) -> None:
    obj = gl.objectives.smooth_sum(kind, n=6, seed=1)
    ref = gl.exact(obj, format=fmt, digits=50, orders=(3,), derivative_digits=35)
    closed = obj.meta["diag_derivative"]
    with mpmath.workprec(400):
        g = closed(list(ref.theta), 1, data_format=fmt)
        t3 = closed(list(ref.theta), 3, data_format=fmt)
    assert ref.digits_verified == 50
    assert min(_digits(a, b) for a, b in zip(ref.grad, g, strict=False)) >= 30
    assert min(_digits(a, b) for a, b in zip(ref.third, t3, strict=False)) >= 30


def test_black_box_gradient_is_numerical_and_verified() -> None:
    obj = gl.objectives.smooth_sum("exp", n=4, seed=2)
    bb = gl.Objective(obj.fn, obj.theta0, name="bb")
    ref = gl.exact(bb, digits=40, orders=())
    assert ref.method == "numerical" and ref.digits_verified == 40
    with mpmath.workprec(300):
        g = obj.meta["diag_derivative"](list(ref.theta), 1, data_format="float64")
    assert min(_digits(a, b) for a, b in zip(ref.grad, g, strict=False)) >= 30


def test_reference_uses_the_formats_rounded_inputs() -> None:
    obj = gl.objectives.seed_net()
    r64, r16 = gl.exact(obj, "float64", digits=20, orders=()), gl.exact(obj, "float16", digits=20, orders=())
    assert [float(t) for t in r16.theta] == [float(formats.round_exact(t, "float16")) for t in obj.theta0]
    assert float(r64.value) != float(r16.value)


def test_bad_arguments() -> None:
    obj = gl.objectives.seed_net()
    with pytest.raises(ValueError, match="digits"):
        gl.exact(obj, digits=0)
    with pytest.raises(ValueError, match="orders"):
        gl.exact(obj, orders=(1,))
    with pytest.raises(ValueError, match="format"):
        gl.exact(obj, format="float8")
    with pytest.raises(ValueError, match="grad"):
        gl.exact(gl.Objective(obj.fn, obj.theta0, grad=lambda t, xp: t[..., :3]), digits=10, orders=())


def test_verification_failure_raises() -> None:
    # J drifts with the working precision (by 1/prec), so no two precisions agree.
    def drifting(theta, xp):
        return xp.sum(theta) + xp.asarray(1.0) / getattr(xp, "prec", 1)

    obj = gl.Objective(drifting, np.ones(2), grad=lambda t, xp: xp.exp(t * 0))
    with pytest.raises(VerificationError, match="verified"):
        gl.exact(obj, digits=10, orders=())


@pytest.mark.parametrize("fmt", ["bfloat16", "float32", "float64", "longdouble", "binary11", "binary64"])
@pytest.mark.parametrize("order", [1, 2, 4])
def test_reference_bits_is_the_working_precision_rule(fmt: str, order: int) -> None:
    """2p + 64 + (q + 2) ceil(log2(1/h_min)) bits, none for the step above 1."""
    p = formats.get(fmt).p
    for h in (1e-12, 3e-5, 0.7):
        assert reference_bits(fmt, h, order) == 2 * p + 64 + (order + 2) * math.ceil(-math.log2(h))
    assert reference_bits(fmt, 4.0, order) == 2 * p + 64
    assert bits_to_digits(reference_bits(fmt, 1e-6, order)) == math.ceil(
        reference_bits(fmt, 1e-6, order) / math.log2(10))
