"""Every caller evaluates J at stencil points: each point that perturbs one coordinate,
in the engine, fd_gradient, every step rule and the checker, is bit for bit a point that
:func:`gradlab.arithmetic.stencil.stencil` produced for that call."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import gradlab as gl
from gradlab.analysis import noise as noise_module
from gradlab.analysis.engine import fd_gradient
from gradlab.arithmetic import formats as fmts
from gradlab.arithmetic import stencil as stencil_module
from gradlab.steps.rules import RULES

FORMATS = ["bfloat16", "float16", "float32", "float64"]


class _Recorder:
    """Records the points J is evaluated at and the points every stencil() call built."""

    def __init__(self) -> None:
        self.evaluated: list[np.ndarray] = []
        self.built: set[bytes] = set()
        self.in_line = False  # inside an ECnoise line, whose points are not a stencil

    def objective(self) -> gl.Objective:
        theta0 = np.array([0.37, -1.21, 2.5, 0.0, 1e-3, 3.0])
        a = np.linspace(0.5, 1.5, theta0.size)

        def fn(t: Any, xp: Any) -> Any:
            if np.asarray(t).dtype != object and not self.in_line:  # in the format, not exact
                self.evaluated.append(np.array(t, copy=True).reshape(-1, theta0.size))
            return xp.sum(xp.asarray(a) * xp.tanh(t) * t)

        return gl.Objective(fn, theta0, name="recorded")

    def wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def recording(theta: Any, h: Any, offsets: Any, fmt: Any) -> Any:
            st = original(theta, h, offsets, fmt)
            for v in np.asarray(st.points).ravel():
                self.built.add(_key(v))
            return st

        return recording

    def wrap_line(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def marked(*args: Any, **kwargs: Any) -> Any:
            self.in_line = True
            try:
                return original(*args, **kwargs)
            finally:
                self.in_line = False

        return marked


def _key(v: Any) -> bytes:
    return np.asarray(v).tobytes()


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Recorder]:
    rec = _Recorder()
    original = stencil_module.stencil
    wrapped = rec.wrap(original)
    line, marked = noise_module.ecnoise_line, rec.wrap_line(noise_module.ecnoise_line)
    for name, module in list(sys.modules.items()):
        if name.startswith("gradlab") and getattr(module, "stencil", None) is original:
            monkeypatch.setattr(module, "stencil", wrapped)
        if name.startswith("gradlab") and getattr(module, "ecnoise_line", None) is line:
            monkeypatch.setattr(module, "ecnoise_line", marked)
    yield rec


def _assert_from_stencil(rec: _Recorder, theta: np.ndarray) -> int:
    """Every evaluated point that moves exactly one coordinate was built by stencil()."""
    checked = 0
    for rows in rec.evaluated:
        for row in rows:
            moved = np.flatnonzero(row.astype(np.float64) != theta.astype(np.float64))
            if moved.size != 1:
                continue  # theta itself, or an ECnoise line (all coordinates move)
            v = row[moved[0]]
            assert _key(v) in rec.built, f"coordinate {moved[0]} = {v!r} was not built by stencil()"
            checked += 1
    return checked


@pytest.mark.parametrize("fmt", FORMATS)
def test_fd_gradient_and_engine(recorder: _Recorder, fmt: str) -> None:
    obj = recorder.objective()
    theta = fmts.round_array(obj.theta0, fmt)
    fd_gradient(obj, fmt, "central4", 1e-2)
    gl.fd_errors(obj, formats=[fmt], schemes=["central", "forward"], steps=[1e-3, 0.3],
                 noise={fmt: 1e-3}, progress=False)
    assert _assert_from_stencil(recorder, theta) > 0


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("rule", sorted(RULES))
def test_step_rules(recorder: _Recorder, fmt: str, rule: str) -> None:
    obj = recorder.objective()
    theta = fmts.round_array(obj.theta0, fmt)
    res = RULES[rule](obj, format=fmt)
    checked = _assert_from_stencil(recorder, theta)
    assert checked > 0 or res.nfev == 0  # the nfev-free rules evaluate nothing


@pytest.mark.parametrize("fmt", FORMATS)
def test_check(recorder: _Recorder, fmt: str) -> None:
    obj = recorder.objective()
    theta = fmts.round_array(obj.theta0, fmt)
    g = np.asarray([1.0] * obj.n_params)
    gl.check(obj, lambda t: g, format=fmt)
    assert _assert_from_stencil(recorder, theta) > 0
