"""The command line's errors: each one line on stderr, exit code 2, no traceback, found before
anything is computed; an internal error still shows its traceback."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gradlab.reporting.cli import main

TIMEOUT = 60  # seconds, for every subprocess

_STUDIES = {
    # records that it ran, so a test can tell that an error came before any computation
    "probe": """
        from pathlib import Path
        import os
        DESCRIPTION = "records that it ran"

        def run(out, quick=False, progress=True, workers=None, scheduler=None):
            Path(os.environ["PROBE_RAN"]).write_text(str(out))
            return {"seconds": 0.0, "tables": [], "figures": []}
    """,
    "single": """
        DESCRIPTION = "takes no workers"

        def run(out, quick=False, progress=True):
            raise AssertionError("not to be run")
    """,
    "broken": """
        DESCRIPTION = "a bug inside the computation"

        def run(out, quick=False, progress=True):
            raise ValueError("an internal bug")
    """,
    "sweeping": """
        import pandas as pd
        from gradlab.sweeps.runner import run_sweep
        DESCRIPTION = "a sweep into out/cells"

        def cell(p):
            return pd.DataFrame({"x": [p["x"]]})

        def run(out, quick=False, progress=True, workers=None, scheduler=None):
            run_sweep(cell, [{"x": 1}], out / "cells", workers=1, progress=False)
            return {"seconds": 0.0, "tables": [], "figures": []}
    """,
}


@pytest.fixture
def ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Fake studies and papers (the probe study has a paper template); yields the probe's marker."""
    studies, papers = tmp_path / "studies", tmp_path / "papers"
    studies.mkdir()
    for name, text in _STUDIES.items():
        (studies / f"{name}.py").write_text(textwrap.dedent(text))
    (papers / "probe").mkdir(parents=True)
    (papers / "probe" / "paper.md").write_text("The answer is {{answer}}.\n")
    marker = tmp_path / "probe-ran"
    monkeypatch.setenv("GRADLAB_STUDIES", str(studies))
    monkeypatch.setenv("GRADLAB_PAPERS", str(papers))
    monkeypatch.setenv("PROBE_RAN", str(marker))
    yield marker


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the CLI in this process; assert exit code 2 and one line on stderr; return that line."""
    try:
        code: int | str | None = main(argv)
    except SystemExit as e:  # a bad command line exits as argparse does
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("gradlab: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_out_is_a_file(ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("keep me")
    err = _one_line_error(capsys, ["study", "probe", "--out", str(target), "--quiet"])
    assert f"--out {target} is not a directory" in err
    assert not ran.exists() and target.read_text() == "keep me"  # failed before computing


def test_out_under_a_file(ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    err = _one_line_error(capsys, ["study", "probe", "--out", str(tmp_path / "file" / "sub")])
    assert "is not a writable directory" in err and not ran.exists()


@pytest.mark.parametrize("in_the_way", ["tables", "paper.md"])
def test_out_holds_something_in_the_way(ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        in_the_way: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    if in_the_way == "tables":
        (out / "tables").write_text("")
    else:
        (out / "paper.md").mkdir()
    err = _one_line_error(capsys, ["study", "probe", "--out", str(out)])
    assert f"{out / in_the_way} is in the way" in err and not ran.exists()


def test_unknown_study(ran: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _one_line_error(capsys, ["study", "nosuch"])
    assert "unknown study 'nosuch'; available: broken, probe, single, sweeping" in err


@pytest.mark.parametrize(("name", "message"), [("nosuch", "no paper template"),
                                               ("probe", "no numbers table at")])
def test_paper_without_template_or_numbers(ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           name: str, message: str) -> None:
    assert message in _one_line_error(capsys, ["paper", "build", name, "--results", str(tmp_path)])


def test_paper_from_a_damaged_numbers_table(ran: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "numbers.parquet").write_bytes(b"PAR1 not a table PAR1")
    err = _one_line_error(capsys, ["paper", "build", "probe", "--results", str(tmp_path)])
    assert "numbers.parquet cannot be read" in err


@pytest.mark.parametrize("workers", ["0", "-1", "abc", "2.5"])
def test_bad_workers(ran: Path, capsys: pytest.CaptureFixture[str], workers: str) -> None:
    err = _one_line_error(capsys, ["study", "probe", f"--workers={workers}"])
    assert f"argument --workers: must be a positive integer, got {workers!r}" in err and not ran.exists()


@pytest.mark.parametrize(("address", "message"), [("nonsense", "is not a scheduler address"),
                                                  ("tcp://", "is not a scheduler address"),
                                                  ("tcp://127.0.0.1:{port}", "nothing listens there")])
def test_bad_scheduler(ran: Path, capsys: pytest.CaptureFixture[str], address: str, message: str) -> None:
    err = _one_line_error(capsys, ["study", "probe", "--scheduler", address.format(port=_free_port())])
    assert message in err and not ran.exists()


def test_sweep_options_that_do_not_apply(ran: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "takes no --workers" in _one_line_error(capsys, ["study", "single", "--workers", "2"])
    both = _one_line_error(capsys, ["study", "probe", "--workers", "2", "--scheduler", "tcp://h:1"])
    assert "not both" in both and not ran.exists()


def test_usage_errors_are_one_line(ran: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "invalid choice: 'frobnicate'" in _one_line_error(capsys, ["frobnicate"])
    assert "required: name" in _one_line_error(capsys, ["study"])
    assert "unrecognized arguments: --bogus" in _one_line_error(capsys, ["study", "probe", "--bogus"])
    assert "format 'float8'" in _one_line_error(capsys, ["demo", "--formats", "float8", "--quiet"])


def test_a_folder_another_run_holds(ran: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cells = tmp_path / "out" / "cells"
    cells.mkdir(parents=True)
    with open(cells / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write(f"pid {os.getpid()} on here\n")
        lock.flush()
        err = _one_line_error(capsys, ["study", "sweeping", "--out", str(tmp_path / "out"), "--quiet"])
    assert f"another sweep is running in {cells} (pid {os.getpid()} on here)" in err
    assert main(["study", "sweeping", "--out", str(tmp_path / "out"), "--quiet"]) == 0  # released


def test_the_probe_runs_when_nothing_is_wrong(ran: Path, tmp_path: Path) -> None:
    assert main(["study", "probe", "--out", str(tmp_path / "out"), "--no-paper", "--workers", "1"]) == 0
    assert ran.read_text() == str(tmp_path / "out")


def test_an_internal_error_is_not_hidden(ran: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="an internal bug"):  # not turned into a one-line usage error
        main(["study", "broken", "--out", str(tmp_path / "out")])
    proc = subprocess.run([sys.executable, "-m", "gradlab.reporting.cli", "study", "broken", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1 and "Traceback" in proc.stderr
    assert "ValueError: an internal bug" in proc.stderr


@pytest.mark.parametrize("argv", [["study", "scaling", "--out", "{file}", "--quick", "--workers", "2"],
                                  ["study", "scaling", "--workers", "many"]])
def test_the_real_command(tmp_path: Path, argv: list[str]) -> None:
    # the real scaling study, as a process: the error comes at once, before its sweep starts
    target = tmp_path / "file"
    target.write_text("")
    proc = subprocess.run([sys.executable, "-m", "gradlab.reporting.cli",
                           *[a.format(file=target) for a in argv]], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    assert proc.stderr.startswith("gradlab: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing computed, nothing written
