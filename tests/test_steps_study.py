"""The steps study: every rule and peer scored against the oracle, peers present when installed."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gradlab.reporting.cli import studies_dir
from gradlab.reporting.tables import read_table
from gradlab.steps.peers import PEERS
from gradlab.steps.rules import RULES


def test_steps_study_rows(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("steps_study", studies_dir() / "steps.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert len(module.benchmark_set()) >= 12
    module.run(tmp_path, quick=True, progress=False, formats=["float64"])
    table = read_table(tmp_path / "tables" / "rules")
    assert set(RULES) | set(PEERS) | {"optimal_step", "optimal_step_global"} <= set(table.rule)
    assert set(table[table.kind == "peer"].rule) == set(PEERS)  # one row set per installed peer
    ok = table[table.error == ""]
    assert np.isfinite(ok.e_oracle).all() and (ok.nfev >= 0).all()
    pred = ok[ok.rule == "optimal_step_global"]
    assert np.median(pred.log2_h_vs_oracle_global) <= 1
    numbers = read_table(tmp_path / "tables" / "numbers")
    assert {"rules_table", "pred_within2_pct", "pred_median_log2"} <= set(numbers.name)
    assert len(module.gradient_set()) >= 20
    grads = read_table(tmp_path / "tables" / "gradient")
    assert set(grads.format) == set(module.GRADIENT_FORMATS)
    ours = grads[(grads.tool == "gl.gradient") & (grads.error == "")]
    assert ours.n_covered.sum() >= 0.9 * ours.n_components.sum()
    assert (ours.n_covered <= ours.n_components).all()
    assert {"grad_table", "cov_gl_gradient_float64", "grad_failed"} <= set(numbers.name)


@pytest.mark.slow
def test_the_quick_steps_study_builds_its_paper(tmp_path: Path) -> None:
    """The quick run has two formats; the paper's sentences on the others say so."""
    from gradlab.reporting.cli import main

    assert main(["study", "steps", "--quick", "--out", str(tmp_path / "steps")]) == 0
    text = (tmp_path / "steps" / "paper.md").read_text()
    assert "is not in this run's formats" in text and (tmp_path / "steps" / "paper.html").exists()
