"""The PyTorch adapter: correct and wrong backward passes in every format (needs torch)."""

import numpy as np
import pytest

import gradlab as gl

torch = pytest.importorskip("torch")
from gradlab.checking.adapters import from_torch  # noqa: E402


class _WrongBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(t)
        return (t.sin() ** 2).sum()

    @staticmethod
    def backward(ctx, grad_out):  # type: ignore[no-untyped-def]
        (t,) = ctx.saved_tensors
        return grad_out * 2 * t.sin() * t.cos() * 1.5  # a wrong factor


@pytest.mark.parametrize("fmt", ["float64", "float32", "float16", "bfloat16"])
def test_torch_gradients_checked_in_their_dtype(fmt: str) -> None:
    theta = np.linspace(0.3, 1.2, 5)
    f, g = from_torch(lambda t: (t.sin() ** 2).sum() + (t[:2] * t[1:3]).sum(), fmt)
    assert np.asarray(f(gl.formats.round_array(theta, fmt))).dtype == gl.formats.get(fmt).dtype
    res = gl.check(f, g, theta=theta, format=fmt)
    assert res.passed and res.upcasts == 0
    fb, gb = from_torch(_WrongBackward.apply, fmt)
    assert not gl.check(fb, gb, theta=theta, format=fmt).passed


def test_upcasting_torch_function_is_rejected() -> None:
    f, _ = from_torch(lambda t: t.double().sum(), "float32")
    with pytest.raises(TypeError, match="upcasts"):
        f(np.ones(3, dtype=np.float32))

