"""The paper templates: no sentence that a study's existence has made stale, and the seed
paper's N-law taken from the scaling study's tables when they lie beside its results."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from gradlab.reporting.cli import load_study, papers_dir, studies_dir
from gradlab.reporting.tables import provenance, write_table

STALE = re.compile(r"(has|have|was|were) not (yet )?been run|not (been )?run yet"
                   r"|(is|are) left to the \w+ study", re.IGNORECASE)


def test_no_template_says_an_existing_study_has_not_run() -> None:
    studies = {p.stem for p in studies_dir().glob("*.py") if not p.name.startswith("_")}
    for template in sorted(papers_dir().glob("*/paper.md")):
        for line in template.read_text().splitlines():
            hit = STALE.search(line)
            assert not (hit and any(s in line for s in studies)), f"{template}: stale sentence {line!r}"


def _scaling_tables(where: Path) -> None:
    meta = provenance({"study": "scaling"})
    fits = pd.DataFrame([
        {"label": "mlp tanh bce", "fit": "single", "format": "float64", "scheme": "central",
         "variable": "N", "target": t, "exponent": x, "ci_low": x - 0.05, "ci_high": x + 0.05,
         "at_sigma": 1.0} for t, x in (("e_opt", 0.17), ("grad_norm", 0.23))])
    cells = pd.DataFrame({"sweep": "N_sigma", "format": "float64", "sigma": 1.0, "N": [41, 101121]})
    write_table(fits, where / "scaling_fits", meta)
    write_table(cells, where / "scaling_cells", meta)


def test_the_seed_paper_quotes_the_scaling_law_when_it_exists(tmp_path: Path) -> None:
    seed = load_study("seed")
    alone = seed._n_law(tmp_path / "seed")
    assert "gradlab study scaling" in alone and "N^" not in alone
    _scaling_tables(tmp_path / "scaling" / "tables")
    law = seed._n_law(tmp_path / "seed")
    assert "N^0.17" in law and "N^0.23" in law and "from 41 to 101121" in law
    assert f"N^{np.round(0.17 + 0.23 - 0.5, 2):g}" in law  # the rms error's exponent
