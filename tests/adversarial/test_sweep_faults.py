"""The sweep runner under faults, with real processes: workers that die or are killed, a parent
killed mid-run, damaged and swapped cell files, two runs on one folder, orphaned workers.

Every wait is bounded: subprocesses have timeouts, polls have deadlines, and each test kills, by
pid, whatever it started that might survive it.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gradlab.sweeps.runner import (
    SweepLockedError,
    SweepWarning,
    cell_key,
    product,
    read_sweep,
    run_sweep,
)

TIMEOUT = 60  # seconds: the bound on every subprocess and every wait

# cells run in forked workers of this process: module-level functions, calls recorded as files
# <x>-<pid>-<nonce> in $FAULT_CALLS


def _record(p: dict[str, Any]) -> Path:
    calls = Path(os.environ["FAULT_CALLS"])
    (calls / f"{p['x']}-{os.getpid()}-{uuid.uuid4().hex[:8]}").touch()
    return calls


def _rows(p: dict[str, Any]) -> pd.DataFrame:
    _record(p)
    x = p["x"]
    return pd.DataFrame({"x": [x, x], "y": [x * 0.5, -x * 1.5]})


def _dies(p: dict[str, Any]) -> pd.DataFrame:
    """Cell x = 2 ends its process: ``how`` is exit, sigkill (an OOM kill) or segfault."""
    if p["x"] == 2:
        _record(p)
        if p["how"] == "exit":
            os._exit(3)
        if p["how"] == "sigkill":
            os.kill(os.getpid(), signal.SIGKILL)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no core file
        faulthandler.disable()  # pytest's, inherited: no dump of this worker's stack
        ctypes.string_at(0)  # a real segfault
    return _rows(p)


def _waits(p: dict[str, Any]) -> pd.DataFrame:
    """Cell x = 1 waits (at most TIMEOUT s) for the file "go" beside the call records."""
    calls = _record(p)
    deadline = time.monotonic() + TIMEOUT
    while p["x"] == 1 and not (calls / "go").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return pd.DataFrame({"x": [p["x"]]})


def _unpicklable(p: dict[str, Any]) -> pd.DataFrame:
    """Cell x = 1 returns rows that cannot be sent back from the worker."""
    return pd.DataFrame({"f": [lambda: 0]}) if p["x"] == 1 else _rows(p)


def _forks(p: dict[str, Any]) -> pd.DataFrame:
    """Forks a child that outlives the cell (as a pool started by a cell can); its pid is recorded."""
    pid = os.fork()
    if pid == 0:
        time.sleep(TIMEOUT)
        os._exit(0)
    (Path(os.environ["FAULT_CALLS"]) / f"child-{pid}").touch()
    return _rows(p)


# the same cells for subprocesses (which import this text as a module): FAULT_SLEEP s per cell
_HELPER = """
import os, time, uuid
from pathlib import Path
import pandas as pd

def cell(p):
    calls = Path(os.environ["FAULT_CALLS"])
    (calls / f"{p['x']}-{os.getpid()}-{uuid.uuid4().hex[:8]}").touch()
    time.sleep(float(os.environ.get("FAULT_SLEEP", "0")))
    return pd.DataFrame({"x": [p["x"]] * 2, "sq": [p["x"] ** 2, -p["x"]], "name": ["a", "b"]})
"""

_SCRIPT = """
import signal, sys
# a shell starts background jobs with SIGINT ignored, and Python then leaves it ignored: restore
# the handler a terminal's foreground process has, so that Ctrl-C is tested wherever CI runs
signal.signal(signal.SIGINT, signal.default_int_handler)
import faultcells
from gradlab.sweeps.runner import product, run_sweep
run_sweep(faultcells.cell, product(x=range(int(sys.argv[2]))), sys.argv[1], workers=2, progress=False)
"""


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder where cells record their calls (inherited by workers and subprocesses)."""
    path = tmp_path / "calls"
    path.mkdir()
    monkeypatch.setenv("FAULT_CALLS", str(path))
    return path


def _calls(calls: Path) -> list[int]:
    return sorted(int(f.name.split("-")[0]) for f in calls.glob("[0-9]*-*"))


def _pids(calls: Path) -> set[int]:
    return {int(f.name.split("-")[1]) for f in calls.glob("[0-9]*-*")}


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return not Path("/proc").is_dir()  # no /proc (not Linux): take os.kill's word


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@contextlib.contextmanager
def _reaped(pids: Callable[[], set[int]]) -> Iterator[None]:
    """On the way out, SIGKILL (by pid) any of ``pids()`` still alive, so no test leaks a process."""
    try:
        yield
    finally:
        for pid in pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _spawn_sweep(tmp_path: Path, out: Path, n_cells: int, sleep: float) -> subprocess.Popen[bytes]:
    """A sweep of ``faultcells.cell`` in its own process (and session), two workers."""
    (tmp_path / "faultcells.py").write_text(textwrap.dedent(_HELPER))
    (tmp_path / "run.py").write_text(textwrap.dedent(_SCRIPT))
    env = {**os.environ, "FAULT_SLEEP": str(sleep),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(tmp_path / "run.py"), str(out), str(n_cells)], env=env,
                            start_new_session=True, stderr=subprocess.DEVNULL)


def _helper_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("FAULT_SLEEP", raising=False)
    import faultcells

    return faultcells


def _holder(out: Path) -> str:
    lock = out / ".lock"
    return lock.read_text() if lock.exists() else ""


# --- a cell whose process dies ------------------------------------------------------------------


@pytest.mark.parametrize(("how", "ended"), [("exit", "exit code 3"),
                                            ("sigkill", "killed by signal 9 (SIGKILL)"),
                                            ("segfault", "killed by signal 11 (SIGSEGV)")])
def test_a_dying_cell_fails_alone_and_is_named(tmp_path: Path, calls: Path, how: str, ended: str) -> None:
    cells = product(x=range(6), how=[how])
    res = run_sweep(_dies, cells, tmp_path / "out", workers=2, progress=False)
    t = res.table
    assert (res.n_cells, res.n_computed, res.n_failed) == (6, 6, 1)
    bad = t[t.status == "error"]
    assert bad.cell_index.tolist() == [2] and (bad.x.iloc[0], bad.how.iloc[0]) == (2, how)
    assert bad.error.iloc[0] == (f"WorkerDied: the worker process died running this cell ({ended}), "
                                 f"and again when it ran alone in a fresh process ({ended})")
    assert t[t.status == "ok"].groupby("cell_index").size().to_dict() == {i: 2 for i in (0, 1, 3, 4, 5)}
    assert _calls(calls) == [0, 1, 2, 2, 3, 4, 5]  # retried once, then blamed; the rest ran once
    kept = run_sweep(_dies, cells, tmp_path / "out", workers=2, progress=False, retry_failed=False)
    assert (kept.n_reused, kept.n_computed, kept.n_failed) == (6, 0, 1)  # a resume does not repeat it


def test_a_worker_killed_from_outside_is_retried_alone(tmp_path: Path, calls: Path) -> None:
    cells = product(x=range(4))
    with ThreadPoolExecutor(1) as pool:
        run = pool.submit(run_sweep, _waits, cells, tmp_path / "out", workers=2, progress=False)
        _wait_for(lambda: 1 in _calls(calls), "cell 1 to start")
        (victim,) = [int(f.name.split("-")[1]) for f in calls.glob("1-*")]
        os.kill(victim, signal.SIGKILL)
        _wait_for(lambda: not _alive(victim), "the worker to die")
        (calls / "go").touch()
        res = run.result(timeout=TIMEOUT)
    assert (res.n_computed, res.n_failed) == (4, 0)  # the outside kill was not the cell's fault
    assert _calls(calls) == [0, 1, 1, 2, 3] and victim in _pids(calls)
    serial = run_sweep(_waits, cells, tmp_path / "serial", workers=1, progress=False)
    pd.testing.assert_frame_equal(res.table, serial.table)


def test_rows_that_cannot_be_sent_back_fail_their_cell_only(tmp_path: Path, calls: Path) -> None:
    res = run_sweep(_unpicklable, product(x=range(4)), tmp_path, workers=2, progress=False)
    bad = res.table[res.table.status == "error"]
    assert bad.cell_index.tolist() == [1] and "cannot be sent back" in bad.error.iloc[0]
    assert res.n_failed == 1 and _calls(calls) == [0, 2, 3]


# --- the parent killed --------------------------------------------------------------------------


def test_parent_killed_mid_run_then_resumed(tmp_path: Path, calls: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    proc = _spawn_sweep(tmp_path, out, 10, sleep=0.3)
    with _reaped(lambda: _pids(calls) | {proc.pid}):
        _wait_for(lambda: len(list(out.glob("cell-*.parquet"))) >= 2, "two cells to finish")
        os.kill(proc.pid, signal.SIGKILL)  # the parent only: its workers must follow by themselves
        proc.wait(TIMEOUT)
        workers = _pids(calls)
        _wait_for(lambda: not any(_alive(p) for p in workers), "the orphaned workers to exit", 5)
    done = {p.name for p in out.glob("cell-*.parquet")}
    assert 2 <= len(done) < 10, "the kill came too late to test resuming"
    for call in calls.iterdir():
        call.unlink()

    faultcells = _helper_module(tmp_path, monkeypatch)
    cells = product(x=range(10))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SweepWarning)  # every file the killed run left is trusted
        res = run_sweep(faultcells.cell, cells, out, workers=2, progress=False)
    missing = [c["x"] for c in cells if f"cell-{cell_key(c)}.parquet" not in done]
    assert _calls(calls) == missing  # only the missing cells were computed
    assert (res.n_reused, res.n_computed, res.n_failed, res.n_rejected) == (len(done), len(missing), 0, 0)
    ref = run_sweep(faultcells.cell, cells, tmp_path / "ref", workers=1, progress=False)
    pd.testing.assert_frame_equal(res.table, ref.table)


def test_orphaned_workers_exit_when_the_parent_is_killed(tmp_path: Path, calls: Path) -> None:
    proc = _spawn_sweep(tmp_path, tmp_path / "out", 4, sleep=TIMEOUT)

    def pool() -> set[int]:  # every process running the script: the parent and its forked workers
        script = str(tmp_path / "run.py").encode()
        found = set()
        for d in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                if script in (d / "cmdline").read_bytes() and _alive(int(d.name)):
                    found.add(int(d.name))
        return found

    with _reaped(lambda: _pids(calls) | pool() | {proc.pid}):
        _wait_for(lambda: len(_pids(calls)) == 2, "both workers to be running a cell")
        assert _pids(calls) <= pool()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(TIMEOUT)
        _wait_for(lambda: not pool(), "no process of the pool to survive", 5)


def test_an_orphan_polling_its_parent_exits(tmp_path: Path) -> None:
    # the portable guard alone (on Linux the kernel's PR_SET_PDEATHSIG also acts): a forked child
    # that polls its parent's pid exits soon after the parent is SIGKILLed
    script = ("import os, time\nfrom gradlab.sweeps.runner import _watch_parent\n"
              "parent = os.getpid()\npid = os.fork()\n"
              f"if pid == 0:\n    _watch_parent(parent)\nprint(pid, flush=True)\ntime.sleep({TIMEOUT})\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True)
    child = 0
    with _reaped(lambda: {proc.pid, child} - {0}):
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        assert _alive(child)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(TIMEOUT)
        _wait_for(lambda: not _alive(child), "the orphan to exit", 5)


def test_ctrl_c_stops_the_workers(tmp_path: Path, calls: Path) -> None:
    proc = _spawn_sweep(tmp_path, tmp_path / "out", 4, sleep=TIMEOUT)
    with _reaped(lambda: _pids(calls) | {proc.pid}):
        _wait_for(lambda: len(_pids(calls)) == 2, "both workers to be running a cell")
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group
        assert proc.wait(TIMEOUT) != 0
        workers = _pids(calls)
        _wait_for(lambda: not any(_alive(p) for p in workers), "the workers to be stopped", 5)


# --- damaged, swapped and old cell files --------------------------------------------------------


def _dataset(out: Path, n: int = 5) -> tuple[list[dict[str, Any]], pd.DataFrame, list[Path]]:
    cells = product(x=range(n))
    table = run_sweep(_rows, cells, out, workers=1, progress=False).table
    return cells, table, [out / f"cell-{cell_key(c)}.parquet" for c in cells]


def _flip(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def test_truncated_cell_file_is_named_and_recomputed(tmp_path: Path, calls: Path) -> None:
    cells, table, paths = _dataset(tmp_path)
    paths[3].write_bytes(paths[3].read_bytes()[: paths[3].stat().st_size // 2])
    with pytest.raises(ValueError, match=rf"{paths[3].name} does not match its checksum"):
        read_sweep(tmp_path, cells)
    with pytest.warns(SweepWarning, match=rf"{paths[3].name} does not match its recorded checksum"):
        res = run_sweep(_rows, cells, tmp_path, workers=1, progress=False)
    assert (res.n_rejected, res.n_computed, res.n_reused) == (1, 1, 4)
    pd.testing.assert_frame_equal(res.table, table)


@pytest.mark.parametrize("where", ["magic", "data", "footer"])
def test_a_flipped_bit_is_caught(tmp_path: Path, calls: Path, where: str) -> None:
    cells, table, paths = _dataset(tmp_path)
    size = paths[1].stat().st_size
    _flip(paths[1], {"magic": 0, "data": size // 3, "footer": size - 12}[where], bit=3)
    with pytest.warns(SweepWarning, match=paths[1].name):
        res = run_sweep(_rows, cells, tmp_path, workers=1, progress=False)
    assert (res.n_rejected, res.n_computed) == (1, 1) and _calls(calls) == [0, 1, 1, 2, 3, 4]
    pd.testing.assert_frame_equal(res.table, table)


def test_two_swapped_cell_files_are_both_recomputed(tmp_path: Path, calls: Path) -> None:
    cells, table, paths = _dataset(tmp_path)
    a, b = paths[0].read_bytes(), paths[4].read_bytes()
    paths[0].write_bytes(b)
    paths[4].write_bytes(a)
    with pytest.warns(SweepWarning) as caught:
        res = run_sweep(_rows, cells, tmp_path, workers=1, progress=False)
    named = {str(w.message).split(": ")[1].split()[0] for w in caught}
    assert named == {paths[0].name, paths[4].name}
    assert (res.n_rejected, res.n_computed) == (2, 2)
    pd.testing.assert_frame_equal(res.table, table)  # each cell's own rows, not its neighbour's


def test_a_dataset_without_checksums_is_checked_and_adopted(tmp_path: Path, calls: Path) -> None:
    cells, table, paths = _dataset(tmp_path)
    (tmp_path / "_manifest.jsonl").unlink()  # as an older gradlab wrote it
    data = bytearray(paths[0].read_bytes())
    data[4:24] = b"\xff" * 20  # the first page's header: the footer still reads, the page does not
    paths[0].write_bytes(bytes(data))
    a, b = paths[1].read_bytes(), paths[2].read_bytes()
    paths[1].write_bytes(b)
    paths[2].write_bytes(a)
    with pytest.raises(ValueError, match=rf"{paths[0].name} cannot be read"):
        read_sweep(tmp_path, cells)  # unchecked, but the damaged file is named
    with pytest.warns(SweepWarning) as caught:
        res = run_sweep(_rows, cells, tmp_path, workers=1, progress=False)
    text = [str(w.message) for w in caught]
    assert any("2 cell files carry no checksum" in m for m in text)
    assert any(paths[0].name in m and "cannot be read as a cell file" in m for m in text)
    assert any(paths[1].name in m and "holds the cell {'x': 2}, not this one" in m for m in text)
    assert (res.n_legacy, res.n_rejected, res.n_computed, res.n_reused) == (2, 3, 3, 2)
    pd.testing.assert_frame_equal(res.table, table)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SweepWarning)  # adopted: checksums recorded, no more warnings
        again = run_sweep(_rows, cells, tmp_path, workers=1, progress=False)
    assert (again.n_computed, again.n_legacy) == (0, 0)


def test_a_damaged_manifest_costs_only_its_cells(tmp_path: Path, calls: Path) -> None:
    cells, table, _ = _dataset(tmp_path)
    manifest = tmp_path / "_manifest.jsonl"
    lines = manifest.read_text().splitlines()
    entry = json.loads(lines[2])
    lines[2] = lines[2][:25]  # a torn line, as a kill mid-write would leave
    manifest.write_text("\n".join(lines) + '\n{"file": "cell-')
    with pytest.warns(SweepWarning, match=rf"{entry['file']} has no checksum in _manifest.jsonl"):
        res = run_sweep(_rows, cells, tmp_path, workers=1, progress=False)
    assert (res.n_rejected, res.n_computed, res.n_reused) == (1, 1, 4)
    pd.testing.assert_frame_equal(res.table, table)


# --- two runs on one folder ---------------------------------------------------------------------


def test_a_second_run_on_a_busy_folder_is_refused(tmp_path: Path, calls: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    proc = _spawn_sweep(tmp_path, out, 4, sleep=1.5)  # a 3 s window for the second run
    with _reaped(lambda: _pids(calls) | {proc.pid}):
        _wait_for(lambda: f"pid {proc.pid} " in _holder(out) and (out / "_sweep.json").exists(),
                  "the first run to take the lock and write its grid")
        grid = (out / "_sweep.json").read_text()
        with pytest.raises(SweepLockedError, match=rf"another sweep is running in {out} \(pid {proc.pid} "):
            run_sweep(_rows, product(x=[7, 8]), out, workers=2, progress=False)  # another grid
        assert (out / "_sweep.json").read_text() == grid  # not interleaved
        assert proc.wait(TIMEOUT) == 0
    assert 7 not in _calls(calls)
    faultcells = _helper_module(tmp_path, monkeypatch)
    after = run_sweep(faultcells.cell, product(x=range(4)), out, workers=2, progress=False)
    assert (after.n_reused, after.n_computed) == (4, 0)  # the first run's work, none duplicated


def test_the_lock_of_a_killed_run_is_released(tmp_path: Path, calls: Path) -> None:
    out = tmp_path / "out"
    proc = _spawn_sweep(tmp_path, out, 4, sleep=TIMEOUT)
    with _reaped(lambda: _pids(calls) | {proc.pid}):
        _wait_for(lambda: f"pid {proc.pid} " in _holder(out), "the first run to take the lock")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(TIMEOUT)
        res = run_sweep(_rows, product(x=[5, 6]), out, workers=2, progress=False)
    assert (res.n_computed, res.n_failed) == (2, 0)


def test_a_process_forked_by_a_cell_does_not_keep_the_lock(tmp_path: Path, calls: Path) -> None:
    children = lambda: {int(f.name.split("-")[1]) for f in calls.glob("child-*")}  # noqa: E731
    with _reaped(children):
        run_sweep(_forks, product(x=[1]), tmp_path, workers=1, progress=False)
        assert children() and all(_alive(p) for p in children())
        res = run_sweep(_rows, product(x=[2]), tmp_path, workers=1, progress=False)
    assert res.n_computed == 1


# --- dask ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dask_worker_death_fails_its_cell_only(tmp_path: Path, calls: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    dask = pytest.importorskip("dask")
    (tmp_path / "faultdask.py").write_text(textwrap.dedent("""
        import os
        import pandas as pd

        def cell(p):
            if p["x"] == 2:
                os._exit(3)
            return pd.DataFrame({"x": [p["x"]]})
    """))
    monkeypatch.syspath_prepend(str(tmp_path))  # the spawned dask workers inherit sys.path
    import faultdask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}), distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        res = run_sweep(faultdask.cell, product(x=range(5)), tmp_path / "out", scheduler=cluster,
                        progress=False)
    bad = res.table[res.table.status == "error"]
    assert bad.cell_index.tolist() == [2] and bad.error.iloc[0].startswith("WorkerDied: ")
    assert res.n_failed == 1 and np.array_equal(res.table[res.table.status == "ok"].x, [0, 1, 3, 4])
