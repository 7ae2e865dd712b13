"""Bad input to precision policies, enclosures, reference formats and assert_gradient: a clear
error naming the parameter, never a silent default."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradlab as gl
from gradlab.arithmetic import formats
from gradlab.testing import assert_gradient

SEED = gl.objectives.seed_net()

CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("policy storage not a format", lambda: formats.policy(3), TypeError, "policy storage"),
    ("policy storage None", lambda: formats.policy(None), TypeError, "policy storage"),
    ("policy unknown accumulator",
     lambda: formats.get("policy(storage=bfloat16, accumulate=float99)"), ValueError,
     "policy accumulate"),
    ("policy without storage", lambda: formats.get("policy(accumulate=float32)"), ValueError,
     "needs storage"),
    ("policy empty name", lambda: formats.policy("bfloat16", accumulate="float32", name=""),
     ValueError, "policy name"),
    ("policy name of a format", lambda: formats.policy("bfloat16", accumulate="float32",
                                                       name="float32"), ValueError, "policy name"),
    ("enclose digits 0", lambda: gl.enclose(SEED, digits=0), ValueError, "digits"),
    ("enclose digits str", lambda: gl.enclose(SEED, digits="a"), TypeError, "digits"),
    ("enclose digits huge", lambda: gl.enclose(SEED, digits=10**6), ValueError, "digits"),
    ("enclose a plain callable", lambda: gl.enclose(lambda x: x), TypeError, "obj"),
    ("enclose J not finite",
     lambda: gl.enclose(gl.Objective(lambda t, xp: xp.sum(xp.log(t)), np.array([0.0, 1.0]))),
     ValueError, "not finite"),
    ("enclose numpy escape",
     lambda: gl.enclose(gl.Objective(lambda t, xp: np.sum(np.exp(t)), np.array([1.0]))),
     gl.arithmetic.namespaces.NamespaceEscapeError, "numpy.exp"),
    ("check unknown reference format",
     lambda: gl.check(SEED, reference_format="float99"), ValueError, "reference_format"),
    ("noise_level reference not a format",
     lambda: gl.noise_level(SEED, "bfloat16", reference=3), TypeError, "reference"),
    ("assert_gradient unknown format",
     lambda: assert_gradient(SEED, format="float99"), ValueError, "format"),
]


@pytest.mark.parametrize("name, call, kind, match", CASES, ids=[c[0] for c in CASES])
def test_bad_input_names_the_parameter(name: str, call: Callable[[], Any], kind: type[Exception],
                                       match: str) -> None:
    with pytest.raises(kind, match=match):
        call()
