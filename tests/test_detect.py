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
    if importlib.util.find_spec("torch") is not None:
        corpus = read_table(tmp_path / "tables" / "corpus")
        ours = corpus[(corpus.checker == "gradlab") & corpus.supported.astype(bool)]
        good = ours[ours.bug == "none"]
        assert len(good) >= 20 and good.passed.astype(bool).all()
        bugs = ours[(ours.bug == "x1.1") & ours.injected.astype(bool)]
        assert (~bugs.passed.astype(bool)).mean() >= 0.9
        numbers = read_table(tmp_path / "tables" / "numbers")
        assert {"corpus_table", "alarms_gradlab_float32", "jax_corpus_table"} <= set(numbers.name)
        if importlib.util.find_spec("jax") is not None:
            import jax

            jx = corpus[(corpus.library == "jax") & (corpus.checker == "gradlab")]
            assert len(jx) and jx[jx.bug == "none"].passed.astype(bool).all()
            assert not jax.config.read("jax_enable_x64")  # the study restored JAX's mode


def test_the_jax_corpus_runs_in_float64() -> None:
    jax = pytest.importorskip("jax")
    from gradlab.objectives.jax_ops import corpus

    ops = corpus()
    assert len(ops) >= 50 and len({o.name for o in ops}) == len(ops)
    before = jax.config.read("jax_enable_x64")
    jax.config.update("jax_enable_x64", True)
    try:
        for op in ops:
            y = op.fn(jax.numpy.asarray(op.theta()))
            assert y.dtype == jax.numpy.float64 and bool(jax.numpy.all(jax.numpy.isfinite(y))), op.name
    finally:
        jax.config.update("jax_enable_x64", before)


def test_the_corpus_is_pytorchs_and_runs_in_float64() -> None:
    torch = pytest.importorskip("torch")
    from gradlab.objectives.torch_ops import corpus

    ops = corpus()
    assert len(ops) >= 150 and len({o.name for o in ops}) == len(ops)
    for op in ops:
        y = op.fn(torch.as_tensor(op.theta()))
        assert y.dtype == torch.float64 and torch.isfinite(y).all(), op.name


def test_injections_change_the_gradient_they_claim_to() -> None:
    pytest.importorskip("torch")
    from gradlab.objectives.torch_ops import corpus

    spec = importlib.util.spec_from_file_location("detect_study", studies_dir() / "detect.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    op = next(o for o in corpus() if o.name == "cumsum")  # a triangular Jacobian
    case = module._CorpusCase(op)
    assert case.block is not None and "transposed" in case.bugs()
    x = case.theta
    good = case.gradient("none")(x)
    for bug, factor in (("x1.1", 1.1), ("sign", -1.0)):
        bad = case.gradient(bug)(x)
        assert np.flatnonzero(bad != good).tolist() == [case.k]
        assert bad[case.k] == pytest.approx(factor * good[case.k], rel=1e-15)
    moved = np.flatnonzero(case.gradient("transposed")(x) != good)
    assert set(moved.tolist()) <= set(case.block) and moved.size >= 1
    sin = module._CorpusCase(next(o for o in corpus() if o.name == "sin"))
    assert sin.block is None and "transposed" not in sin.bugs()  # a diagonal Jacobian


def test_torch_gradcheck_row_when_installed() -> None:
    pytest.importorskip("torch")
    obj = gl.objectives.seed_net(stable=True)
    good = np.array([float(v) for v in gl.exact(obj, digits=20, orders=()).grad])
    assert CHECKERS["torch_gradcheck"](obj, good, "float64").passed
    assert not CHECKERS["torch_gradcheck"](obj, inject(obj, "sign_flip"), "float64").passed
