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



def test_a_wider_input_is_rounded_once_to_the_format() -> None:
    f, g = from_torch(lambda t: (t * t).sum(), "bfloat16")
    x64 = np.array([1.0 + 2.0**-9, 0.5])  # rounds to 1.0 in bfloat16
    assert float(f(x64)) == 1.25 and np.asarray(g(x64)).shape == (2,)


def test_several_torch_inputs() -> None:
    f, g = from_torch(lambda w, b: (torch.tanh(w @ torch.ones(3, dtype=w.dtype) + b) ** 2).sum(),
                      "float32")
    res = gl.check(f, g, theta=(np.full((2, 3), 0.1), np.array([0.2, -0.1])), format="float32")
    assert res.passed and len(res.report) == 8 and res.report.name.iloc[-1] == "arg1[1]"


@pytest.mark.parametrize("fmt", ["float64", "float32", "bfloat16"])
def test_a_modules_parameters_are_checked(fmt: str) -> None:
    torch.manual_seed(0)
    nn = torch.nn
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    before = [p.detach().clone() for p in net.parameters()]
    problem = gl.adapters.from_torch_module(net, nn.functional.mse_loss,
                                            (torch.randn(8, 3), torch.randn(8, 1)), fmt)
    f, g, theta = problem
    assert set(theta) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    res = gl.check(f, g, theta=theta, format=fmt)
    assert res.passed and len(res.report) == 21 and "0.weight[0, 0]" in set(res.report.name)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


class _WrongTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t):  # type: ignore[no-untyped-def]
        y = torch.tanh(t)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):  # type: ignore[no-untyped-def]
        (y,) = ctx.saved_tensors
        return g * (1 - y)  # should be 1 - y**2


def test_a_modules_custom_backward_is_caught() -> None:
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return _WrongTanh.apply(self.lin(x)).sum(dim=1)

    torch.manual_seed(1)
    f, g, theta = gl.adapters.from_torch_module(Net(), torch.nn.functional.mse_loss,
                                                (torch.randn(6, 3), torch.randn(6)))
    assert not gl.check(f, g, theta=theta, format="float32").passed


def test_module_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match=r"torch\.nn\.Module"):
        gl.adapters.from_torch_module(lambda x: x, torch.nn.functional.mse_loss, (1, 2))
    with pytest.raises(ValueError, match="pair"):
        gl.adapters.from_torch_module(torch.nn.Linear(2, 1), torch.nn.functional.mse_loss,
                                      (torch.ones(2),))


def test_a_vector_functions_backward_through_vjp() -> None:
    fv, vjp = gl.adapters.from_torch_vjp(lambda t: torch.tanh(t[:3] * t[1:]), "float32")
    theta = np.array([0.1, 0.5, -0.3, 0.8])
    assert gl.check_jacobian(fv, vjp=vjp, theta=theta, format="float32").passed
    fw, wrong = gl.adapters.from_torch_vjp(lambda t: _WrongTanh.apply(t[:3] * t[1:]), "float32")
    assert not gl.check_jacobian(fw, vjp=wrong, theta=theta, format="float32").passed
