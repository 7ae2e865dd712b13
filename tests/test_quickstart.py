"""docs/quickstart.md's Python blocks, run in order as one session."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

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
