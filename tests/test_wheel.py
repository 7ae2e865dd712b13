"""A wheel installed into a fresh environment runs its studies from any folder (slow: it builds
the wheel and installs gradlab's dependencies into a new virtual environment)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, timeout: float = 1200) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_a_wheel_runs_the_seed_study_from_another_folder(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(REPO)], tmp_path)
    (wheel,) = dist.glob("gradlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"gradlab/studies/seed.py", "gradlab/papers/seed/paper.md", "gradlab/py.typed"} <= set(names)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "--quiet", str(wheel)], tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    gradlab = str(venv / "bin" / "gradlab")
    listed = _run([gradlab, "studies"], elsewhere)
    for name in ("seed", "steps", "detect", "scaling", "mixed"):
        assert name in listed
    _run([gradlab, "study", "seed", "--quick", "--out", "results/seed"], elsewhere)
    res = elsewhere / "results" / "seed"
    paper = (res / "paper.md").read_text()
    assert "{{" not in paper and "E ≈ ε" in paper
    assert (res / "tables" / "numbers.parquet").exists()
    page = (res / "paper.html").read_text()
    assert "<math" in page and "data:image/png;base64," in page
    assert 'href="seed/paper.html"' in (elsewhere / "results" / "index.html").read_text()
    # the installed gradlab, not this checkout's
    where = _run([str(py), "-c", "import gradlab; print(gradlab.__file__)"], elsewhere)
    assert str(venv) in where
