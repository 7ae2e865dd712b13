"""Papers as self-contained HTML pages, and the results index."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest
from matplotlib.figure import Figure

from gradlab.reporting.html import maybe_write_index, paper_html, write_index, write_paper_html

matplotlib.use("Agg")

PAPER = """# A title

## First part

Central differences are accurate to $O(\\varepsilon^2)$.

| metric | value |
|---|---|
| `\\|\\|e\\|\\| / \\|\\|g\\|\\|` | 1.2e-7 |

![E against h](figures/e.png)

## Second part

Text.
"""


def _figure(folder: Path) -> None:
    (folder / "figures").mkdir(parents=True)
    fig = Figure(figsize=(2, 1))
    fig.subplots().plot([1, 2], [3, 4])
    fig.savefig(folder / "figures" / "e.png")


def test_a_page_embeds_its_figures_renders_math_and_tables(tmp_path: Path) -> None:
    _figure(tmp_path)
    (tmp_path / "paper.md").write_text(PAPER)
    page = write_paper_html(tmp_path / "paper.md", {"gradlab": "0.2.0", "created": "2026-12-02",
                                                    "config": {"study": "x"}}).read_text()
    assert "<title>A title</title>" in page and 'src="data:image/png;base64,' in page
    assert "figures/e.png" not in page  # nothing links outside the page
    assert '<span class="caption">E against h</span>' in page
    assert "<math" in page and "<mi>O</mi>" in page and "$" not in page
    assert "<td><code>||e|| / ||g||</code></td>" in page  # the pipes stay inside their cell
    assert 'href="#first-part"' in page and 'id="second-part"' in page  # the contents
    assert "Provenance" in page and "0.2.0" in page and "<th>study</th><td><code>&quot;x&quot;" in page
    moved = tmp_path / "moved.html"  # the page works anywhere: no relative link left
    moved.write_text(page)


def test_a_missing_figure_is_refused_not_written_as_a_broken_image(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"figures/e\.png"):
        paper_html(PAPER, tmp_path)


def test_the_index_links_every_study(tmp_path: Path) -> None:
    for name in ("seed", "scaling"):
        (tmp_path / name / "tables").mkdir(parents=True)
        (tmp_path / name / "tables" / "numbers.parquet").write_bytes(b"")
    (tmp_path / "seed" / "paper.html").write_text("<html></html>")
    (tmp_path / "unrelated").mkdir()
    page = write_index(tmp_path).read_text()
    assert 'href="seed/paper.html"' in page and 'href="scaling/tables/numbers.parquet"' in page
    assert "no paper yet" in page and "unrelated" not in page


def test_the_index_is_written_only_into_a_results_folder_or_over_its_own(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "mine" / "tables").mkdir(parents=True)
    assert maybe_write_index(home) is None and not (home / "index.html").exists()
    results = tmp_path / "results"
    (results / "seed" / "tables").mkdir(parents=True)
    assert maybe_write_index(results) == results / "index.html"
    moved = tmp_path / "archive"
    results.rename(moved)
    assert maybe_write_index(moved) == moved / "index.html"  # gradlab's own index: kept up to date
