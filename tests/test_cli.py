"""The command line's demo and its errors."""

import pytest

from gradlab.reporting.cli import main


def test_demo_prints_the_decomposition(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--formats", "float32", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "rel_sum" in out and "float32" in out


def test_bad_format_exits_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--formats", "float8", "--quiet"]) == 2
    assert "format" in capsys.readouterr().err


def test_missing_command_exits_nonzero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    err = capsys.readouterr().err  # one line, without argparse's usage
    assert err.startswith("gradlab: error: the following arguments are required") and err.count("\n") == 1
