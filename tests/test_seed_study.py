"""The seed study's tables and figures, the CLI around it, and the paper's number check."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gradlab.analysis.summary import SUMMARY_COLUMNS
from gradlab.reporting.cli import load_study, main, papers_dir
from gradlab.reporting.paper import PLACEHOLDER, PaperError, build, check_numbers
from gradlab.reporting.tables import read_table

TEMPLATE = papers_dir() / "seed" / "paper.md"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed")
    load_study("seed").run(out, quick=True, progress=False, formats=["float64", "float16"])
    return out


def test_tables_schema_and_provenance(small_run: Path) -> None:
    summary = read_table(small_run / "tables" / "summary")
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert set(summary.format) == {"float64", "float16"}
    assert set(summary.objective) == {"seed_net", "seed_net_stable"}
    assert summary.h.nunique() >= 17 and 1e-7 in set(summary.h)
    assert not summary[["rel_sum", "rel_2g", "rel_g", "rms", "max_abs"]].isna().any().any()
    meta = summary.attrs
    assert meta["config"]["study"] == "seed" and meta["mpmath"] and meta["numpy"]
    minima = read_table(small_run / "tables" / "minima")
    assert {"h_measured", "e_measured", "h_predicted", "e_predicted", "h_ratio", "e_ratio"} <= set(
        minima.columns
    )
    exercise = read_table(small_run / "tables" / "exercise")
    row = exercise[(exercise.format == "float64") & (exercise.objective == "seed_net")].iloc[0]
    assert row.passed and 3e-8 < row.difference < 2e-7  # the exercise's own result
    assert (small_run / "tables" / "coords.csv").exists()


def test_figures_written(small_run: Path) -> None:
    names = {p.name for p in (small_run / "figures").iterdir()}
    for stem in ["v_curves_seed_net", "components_seed_net", "metrics", "naive_vs_stable",
                 "noise_attribution"]:
        assert f"{stem}.png" in names and f"{stem}.pdf" in names


def test_template_has_no_hand_typed_numbers() -> None:
    template = TEMPLATE.read_text()
    names = {m.group(1) for m in PLACEHOLDER.finditer(template)}
    filled = PLACEHOLDER.sub(lambda m: "@", template)  # every number must be a placeholder
    assert check_numbers(filled, []) == []
    assert len(names) > 50


def test_build_fills_every_placeholder_and_rejects_stray_numbers(tmp_path: Path) -> None:
    names = sorted({m.group(1) for m in PLACEHOLDER.finditer(TEMPLATE.read_text())})
    numbers = pd.DataFrame({"name": names, "text": [f"{k + 1}.5e-3" for k in range(len(names))]})
    built = build(TEMPLATE, numbers, tmp_path / "paper.md", html=False).read_text()  # (no figures)
    assert "{{" not in built and "2.5e-3" in built
    bad = tmp_path / "bad.md"
    bad.write_text("E is {{a}} and the threshold is 0.25.\n")
    with pytest.raises(PaperError, match=r"0\.25"):
        build(bad, pd.DataFrame({"name": ["a"], "text": ["1e-7"]}), tmp_path / "out.md", html=False)
    with pytest.raises(PaperError, match="lacks"):
        build(bad, pd.DataFrame({"name": ["b"], "text": ["1"]}), tmp_path / "out.md", html=False)


def test_check_numbers_exempts_code_math_and_references() -> None:
    text = "Use `h = 1e-7` and $u/2$.\n\n## References\n\n- Smith (2011), 33(3):1292.\n"
    assert check_numbers(text, []) == []
    assert check_numbers("float16 and A3 are names; 0.5 is a number", []) == ["0.5"]


def test_cli_lists_and_rejects(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["studies"]) == 0
    assert re.search(r"^seed\s", capsys.readouterr().out, flags=re.MULTILINE)
    assert main(["study", "no_such_study"]) == 2
    assert "unknown study" in capsys.readouterr().err
    assert main(["paper", "build", "seed", "--results", str(tmp_path)]) == 2
    assert "no numbers table" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["study"])  # the name is required


def test_cli_study_out(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    calls = {}

    def fake_run(out, quick=False, progress=True):
        calls.update(out=out, quick=quick)
        return {"seconds": 0.0, "tables": [], "figures": []}

    module = load_study("seed")
    module.run = fake_run
    monkeypatch.setattr("gradlab.reporting.cli.load_study", lambda name: module)
    assert main(["study", "seed", "--out", str(tmp_path / "x"), "--quick", "--quiet",
                 "--no-paper"]) == 0
    assert calls == {"out": tmp_path / "x", "quick": True}


@pytest.mark.slow
def test_quick_study_and_paper_end_to_end(tmp_path: Path) -> None:
    assert main(["study", "seed", "--quick", "--quiet", "--out", str(tmp_path)]) == 0
    paper = (tmp_path / "paper.md").read_text()
    assert "{{" not in paper
    numbers = read_table(tmp_path / "tables" / "numbers")
    assert check_numbers(paper, list(numbers.text)) == []
    assert np.isfinite(read_table(tmp_path / "tables" / "summary").rel_sum).any()
