"""The mixed-precision study: its pieces on small cases, and (slow) the quick study end to end."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import gradlab as gl
from gradlab.reporting.cli import main, studies_dir
from gradlab.reporting.paper import check_numbers
from gradlab.reporting.tables import read_table


def _study() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mixed_study", studies_dir() / "mixed.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checks_record_a_verdict_for_every_gradient() -> None:
    out = _study()._checks(gl.objectives.mlp((4, 8, 1), batch=8, seed=1), "bf16-mixed")
    assert out["check_correct"] == "passes" and out["check_scaled"] == "fails"
    assert out["check_correct_reference"].startswith("policy(storage=float32")
    assert out["check_transposed_reference"] == "bf16-mixed"  # an array: FD in the format


def test_e_star_is_the_minimum_of_the_measured_curve() -> None:
    m = _study()
    obj = gl.objectives.mlp((16, 8, 1), batch=8, seed=0)
    f = gl.formats.get("float32")
    ref = gl.formats.policy("float64", data="float32")
    g = m._reference_gradient(obj, f, ref)
    coords = np.arange(8)
    steps = np.logspace(-5, -1, 9)
    h, e, edge = m._e_star(obj, "float32", coords, g[coords], steps)
    assert steps[0] <= h <= steps[-1] and not edge
    assert 1e-8 < e < 1e-3  # float32's central difference: about u**(2/3)


def test_ordering_counts_only_networks_with_every_format() -> None:
    import pandas as pd

    m = _study()
    a = pd.DataFrame({"network": ["a", "a", "b"], "format": ["x", "y", "x"],
                      "sigma": [1.0, 2.0, 1.0], "value": [1.0, 1.0, 1.0]})
    assert m._ordering(a, ["x", "y"], [True]) == (1, 1)


@pytest.mark.slow
def test_quick_mixed_study_and_paper_end_to_end(tmp_path: Path) -> None:
    assert main(["study", "mixed", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    paper = (tmp_path / "paper.md").read_text()
    assert "{{" not in paper
    numbers = read_table(tmp_path / "tables" / "numbers")
    assert check_numbers(paper, list(numbers.text)) == []
    widths = read_table(tmp_path / "tables" / "widths")
    assert set(widths.format) == set(_study().WIDTH_FORMATS)
    assert (tmp_path / "figures" / "noise_width.png").exists()
