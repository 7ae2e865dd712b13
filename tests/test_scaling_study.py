"""The scaling study: its declared grid, and (slow) the quick study end to end."""

from pathlib import Path

import numpy as np
import pytest

from gradlab.reporting.cli import load_study, main, papers_dir
from gradlab.reporting.paper import PLACEHOLDER, check_numbers
from gradlab.reporting.tables import read_table
from gradlab.sweeps.scaling import build_objective

TEMPLATE = papers_dir() / "scaling" / "paper.md"


def test_full_grid_covers_the_ranges_asked_for() -> None:
    cells = load_study("scaling").grid(quick=False)
    ps = {int(c["format"][6:]) for c in cells if c["format"].startswith("binary")}
    assert len(ps) >= 10 and min(ps) == 8 and max(ps) == 64
    assert {"bfloat16", "float16", "float32", "float64", "longdouble"} <= {c["format"] for c in cells}
    nets = [c["objective"] for c in cells if c["objective"]["family"] == "mlp"]
    ns = {build_objective({**o, "batch": 1}).n_params for o in nets}
    assert min(ns) <= 50 and max(ns) >= 1e5
    assert {o["sigma"] for o in nets} >= {0.01, 10.0}
    assert {o["activation"] for o in nets} == {"tanh", "relu"} and {o["loss"] for o in nets} == {"bce", "mse"}
    families = {c["objective"]["family"] for c in cells}
    assert families == {"mlp", "logistic_regression", "quadratic"}
    assert len({str(c) for c in cells}) == len(cells)


def test_template_has_no_hand_typed_numbers() -> None:
    filled = PLACEHOLDER.sub(lambda m: "@", TEMPLATE.read_text())
    assert check_numbers(filled, []) == []


@pytest.mark.slow
def test_quick_study_end_to_end(tmp_path: Path) -> None:
    assert main(["study", "scaling", "--quick", "--quiet", "--workers", "2", "--out", str(tmp_path)]) == 0
    fits = read_table(tmp_path / "tables" / "scaling_fits")
    assert {"target", "format", "scheme", "variable", "exponent", "ci_low", "ci_high", "theory"} <= set(fits)
    u = fits[(fits.variable == "u") & (fits.format == "binary{p}") & (fits.label == "mlp tanh bce")]
    for r in u.itertuples():  # the classical exponents, to within 0.05
        assert abs(r.exponent - r.theory) < 0.05, r
    cells = read_table(tmp_path / "tables" / "scaling_cells")
    assert {"h_opt", "e_opt", "noise", "m_rms", "grad_norm", "note"} <= set(cells)
    assert (cells.status == "ok").all() and cells.usable.sum() >= 0.9 * len(cells)
    paper = (tmp_path / "paper.md").read_text()
    assert "{{" not in paper
    assert check_numbers(paper, list(read_table(tmp_path / "tables" / "numbers").text)) == []
    # a re-run resumes: nothing is recomputed
    assert main(["study", "scaling", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    numbers = read_table(tmp_path / "tables" / "numbers")
    assert numbers.set_index("name").text["n_computed"] == "0"
    assert np.isfinite(cells.h_opt[cells.usable]).all()
