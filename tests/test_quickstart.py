"""docs/quickstart.md: its Python blocks, run in order as one session, and its gradlab commands."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[1] / "docs" / "quickstart.md"


def test_the_quickstart_runs_as_written(capsys) -> None:
    blocks = re.findall(r"^```python\n(.*?)^```", QUICKSTART.read_text(), flags=re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 5
    session: dict[str, object] = {}
    for k, code in enumerate(blocks):
        if "import torch" in code and importlib.util.find_spec("torch") is None:
            continue  # the PyTorch block needs PyTorch
        exec(compile(code, f"{QUICKSTART.name}[block {k}]", "exec"), session)
    assert "fail" in capsys.readouterr().out  # the check's report was printed


@pytest.mark.slow
def test_the_quickstarts_commands_run(tmp_path: Path) -> None:
    """The gradlab commands of the bash blocks (the install itself is the wheel test's)."""
    blocks = re.findall(r"^```bash\n(.*?)^```", QUICKSTART.read_text(), flags=re.MULTILINE | re.DOTALL)
    commands = [line.split("#")[0].split() for block in blocks for line in block.splitlines()
                if line.startswith(".venv/bin/gradlab")]
    assert commands, "the quickstart shows no gradlab command"
    exe = Path(sys.executable).parent / "gradlab"
    for argv in commands:
        done = subprocess.run([str(exe), *argv[1:]], cwd=tmp_path, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, (argv, done.stderr[-2000:])
    assert (tmp_path / "results" / "seed" / "paper.html").exists()
