"""The JAX adapter: correct and wrong VJPs in low precision (needs JAX)."""

import numpy as np
import pytest

import gradlab as gl


@pytest.mark.parametrize("fmt", ["float32", "float16", "bfloat16"])
def test_jax_gradients_checked_in_their_dtype(fmt: str) -> None:
    jax = pytest.importorskip("jax")
    from gradlab.checking.adapters import from_jax

    theta = np.linspace(0.3, 1.2, 5)
    f, g = from_jax(lambda t: jax.numpy.sum(jax.numpy.sin(t) ** 2), fmt)
    res = gl.check(f, g, theta=theta, format=fmt)
    assert res.passed and res.upcasts == 0

    @jax.custom_vjp
    def wrong(t):  # type: ignore[no-untyped-def]
        return jax.numpy.sum(jax.numpy.sin(t) ** 2)

    wrong.defvjp(lambda t: (wrong(t), t),
                 lambda t, go: (go * 3 * jax.numpy.sin(t) * jax.numpy.cos(t),))  # 1.5x too big
    fb, gb = from_jax(wrong, fmt)
    assert not gl.check(fb, gb, theta=theta, format=fmt).passed


@pytest.mark.parametrize("fmt", ["float16", "bfloat16"])
def test_dtype_generic_jax_functions_check_in_float32(fmt: str) -> None:
    jax = pytest.importorskip("jax")
    from gradlab.checking.adapters import from_jax

    f, g = from_jax(lambda t: jax.numpy.sum(jax.numpy.sin(t) ** 2))
    assert np.asarray(f(np.ones(3, dtype=gl.formats.get(fmt).dtype))).dtype == gl.formats.get(fmt).dtype
    res = gl.check(f, g, theta=np.linspace(0.3, 1.2, 5), format=fmt)
    assert res.passed and res.reference_format == "float32"
    if not jax.config.read("jax_enable_x64"):
        with pytest.raises(ValueError, match="x64"):
            f(np.ones(3))


def test_jax_check_grads_row() -> None:
    pytest.importorskip("jax")
    from gradlab.checking.checkers import CHECKERS
    from gradlab.objectives.bugs import inject

    obj = gl.objectives.seed_net(stable=True)
    good = np.array([float(v) for v in gl.exact(obj, "float32", digits=20, orders=()).grad])
    assert CHECKERS["jax_check_grads"](obj, good, "float32").passed
    assert not CHECKERS["jax_check_grads"](obj, inject(obj, "sign_flip", "float32"), "float32").passed
    assert CHECKERS["jax_check_grads"](obj, good, "float64").undecided  # no 64-bit mode
