"""Bugs, the peers' checkers and the detection benchmark's tables."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import gradlab as gl
import gradlab.arithmetic.namespaces
from gradlab.checking.checkers import CHECKERS
from gradlab.objectives.bugs import BUGS, inject, layer_blocks
from gradlab.reporting.cli import studies_dir
from gradlab.reporting.tables import read_table


def test_layer_blocks_cover_the_parameters() -> None:
    for obj in (gl.objectives.seed_net(), gl.objectives.mlp((4, 8, 3), "tanh", "softmax")):
        blocks = layer_blocks(obj)
        assert blocks[0][1].start == 0 and blocks[-1][1].stop == obj.n_params
        assert [b[0] for b in blocks[:2]] == ["W1", "b1"]


@pytest.mark.parametrize("bug", BUGS)
def test_every_bug_changes_the_gradient(bug: str) -> None:
    obj = gl.objectives.seed_net()
    ns = gradlab.arithmetic.namespaces.namespace_for("float64")
    good = np.asarray(obj.grad(obj.theta0, ns))
    bad = inject(obj, bug, "float64")
    assert bad.shape == good.shape and not np.array_equal(bad, good)
    exact = np.array([float(v) for v in gl.exact(obj, digits=20, orders=()).grad])
    assert np.linalg.norm(bad - exact) > 1e-4 * np.linalg.norm(exact)


def test_bug_validation() -> None:
    with pytest.raises(ValueError, match="bug"):
        inject(gl.objectives.seed_net(), "typo")
    with pytest.raises(ValueError, match="network"):
        inject(gl.objectives.quadratic(n=3), "sign_flip")


def test_peer_checkers_at_their_defaults() -> None:
    obj = gl.objectives.seed_net()
    good = np.array([float(v) for v in gl.exact(obj, digits=20, orders=()).grad])
    for name, checker in CHECKERS.items():
        verdict = checker(obj, good, "float64")
        assert verdict.passed or verdict.undecided, name  # JAX without x64 cannot check float64
    # in float32 the exercise's rule and scipy's check fail a correct gradient; gradlab does not
    g32 = np.array([float(v) for v in gl.exact(obj, "float32", digits=20, orders=()).grad])
    verdicts = {name: checker(obj, g32, "float32") for name, checker in CHECKERS.items()}
    assert not verdicts["exercise"].passed and not verdicts["scipy_check_grad"].passed
    assert verdicts["gradlab"].passed


def test_detect_study_tables(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("detect_study", studies_dir() / "detect.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.run(tmp_path, quick=True, progress=False, formats=["float64", "float32"])
    rates = read_table(tmp_path / "tables" / "rates")
    g = rates[rates.checker == "gradlab"]
    assert (g.n_false_alarms == 0).all()
    assert {"false_alarm", "miss_above_floor", "n_undecided"} <= set(rates.columns)
    assert (tmp_path / "figures" / "detection.png").exists()


def test_torch_gradcheck_row_when_installed() -> None:
    pytest.importorskip("torch")
    obj = gl.objectives.seed_net(stable=True)
    good = np.array([float(v) for v in gl.exact(obj, digits=20, orders=()).grad])
    assert CHECKERS["torch_gradcheck"](obj, good, "float64").passed
    assert not CHECKERS["torch_gradcheck"](obj, inject(obj, "sign_flip"), "float64").passed
