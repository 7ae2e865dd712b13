"""The resumable sweep runner: parallel = serial, failures kept as rows, resume after a kill, dask."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gradlab.sweeps.runner import RUNNER_COLUMNS, cell_key, product, read_sweep, run_sweep

# cell functions are module-level so that the (forked) worker processes can unpickle them


def _rows(p: dict[str, Any]) -> pd.DataFrame:
    """``x`` rows (0 for x = 0) of two columns."""
    x = p["x"]
    return pd.DataFrame({"k": np.arange(x), "y": np.full(x, x * 0.5)})


def _flaky(p: dict[str, Any]) -> pd.DataFrame:
    """Records each call as a file in ``p["calls"]``; raises for x = 2 unless ``p["calls"]/fixed``."""
    calls = Path(p["calls"])
    (calls / f"{p['x']}-{uuid.uuid4().hex}").touch()
    if p["x"] == 2 and not (calls / "fixed").exists():
        raise ValueError(f"bad x={p['x']}")
    return _rows(p)


def _dies(p: dict[str, Any]) -> pd.DataFrame:
    """Kills its worker process for x = 2."""
    if p["x"] == 2:
        os._exit(3)
    return _rows(p)


_BOOKKEEPING = ["_sweep.json", "_manifest.jsonl", ".lock"]  # the grid, the cells' checksums, the lock


def _calls(calls: Path) -> list[int]:
    return sorted(int(f.name.split("-")[0]) for f in calls.glob("*-*"))


def test_serial_equals_parallel(tmp_path: Path) -> None:
    cells = product(x=[3, 0, 1, 2])
    serial = run_sweep(_rows, cells, tmp_path / "serial", workers=1, progress=False)
    parallel = run_sweep(_rows, cells, tmp_path / "parallel", workers=2, progress=False)
    pd.testing.assert_frame_equal(serial.table, parallel.table)
    t = serial.table
    assert list(t.columns) == ["k", "y", *RUNNER_COLUMNS]
    assert t.cell_index.tolist() == [0, 0, 0, 2, 3, 3]  # grid order; the 0-row cell has no rows
    assert t.cell.tolist() == [cell_key(cells[i]) for i in t.cell_index]
    assert (t.status == "ok").all() and (t.error == "").all()
    assert t.k.tolist() == [0, 1, 2, 0, 0, 1] and t.y.tolist() == [1.5] * 3 + [0.5, 1.0, 1.0]
    assert (serial.n_cells, serial.n_reused, serial.n_computed, serial.n_failed) == (4, 0, 4, 0)
    assert sorted(p.name for p in (tmp_path / "serial").iterdir()) == sorted(
        [f"cell-{cell_key(c)}.parquet" for c in cells] + [*_BOOKKEEPING]
    )
    pd.testing.assert_frame_equal(read_sweep(tmp_path / "serial", cells), t)
    pd.testing.assert_frame_equal(read_sweep(tmp_path / "serial"), t)
    with pytest.raises(FileNotFoundError, match=r"1 of 5 cells .* cells\[4\]"):
        read_sweep(tmp_path / "serial", [*cells, {"x": 9}])


def test_failed_cell_is_a_row_and_is_retried(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    cells = product(x=[1, 2, 3], calls=[str(calls)])
    first = run_sweep(_flaky, cells, tmp_path / "out", workers=2, progress=False)
    t = first.table
    assert (first.n_failed, first.n_computed, first.n_reused) == (1, 3, 0)
    assert t.groupby("cell_index").size().tolist() == [1, 1, 3]  # every cell present
    bad = t[t.status == "error"].iloc[0]
    assert bad.cell_index == 1 and bad.error == "ValueError: bad x=2" and "_flaky" in bad.traceback
    assert (bad.x, bad.calls) == (2, str(calls))  # the failed row holds the params
    assert (t.status == "ok").sum() == 4 and (t[t.status == "ok"].error == "").all()
    assert _calls(calls) == [1, 2, 3]

    kept = run_sweep(_flaky, cells, tmp_path / "out", workers=2, progress=False, retry_failed=False)
    assert (kept.n_failed, kept.n_computed, kept.n_reused) == (1, 0, 3)
    pd.testing.assert_frame_equal(kept.table, t)
    assert _calls(calls) == [1, 2, 3]  # nothing recomputed

    (calls / "fixed").touch()
    retried = run_sweep(_flaky, cells, tmp_path / "out", workers=2, progress=False)
    assert (retried.n_failed, retried.n_computed, retried.n_reused) == (0, 1, 2)
    assert _calls(calls) == [1, 2, 2, 3]  # only the failed cell again
    fresh = run_sweep(_flaky, cells, tmp_path / "fresh", workers=1, progress=False)
    pd.testing.assert_frame_equal(retried.table, fresh.table)
    assert list(fresh.table.columns) == ["k", "y", *RUNNER_COLUMNS]  # no params columns when all ok


def test_version_recomputes_cells_of_other_code(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    (calls / "fixed").touch()
    cells = product(x=[1, 3], calls=[str(calls)])
    first = run_sweep(_flaky, cells, tmp_path / "out", workers=1, progress=False, version="a")
    same = run_sweep(_flaky, cells, tmp_path / "out", workers=1, progress=False, version="a")
    assert (same.n_computed, same.n_reused) == (0, 2) and _calls(calls) == [1, 3]
    pd.testing.assert_frame_equal(same.table, first.table)
    bumped = run_sweep(_flaky, cells, tmp_path / "out", workers=1, progress=False, version="b")
    assert (bumped.n_computed, bumped.n_reused) == (2, 0) and _calls(calls) == [1, 1, 3, 3]
    unversioned = run_sweep(_flaky, cells, tmp_path / "out", workers=1, progress=False)
    assert unversioned.n_computed == 0  # without a version, whatever is there is reused
    with pytest.raises(ValueError, match="reserved"):
        run_sweep(_flaky, cells, tmp_path / "out", workers=1, meta={"version": "c"})


def test_dead_worker_fails_its_cell_not_the_sweep(tmp_path: Path) -> None:
    cells = product(x=[1, 2, 3, 4])
    res = run_sweep(_dies, cells, tmp_path, workers=2, progress=False)
    t = res.table
    assert set(t.cell_index) == {0, 1, 2, 3}
    bad = t[t.status == "error"]
    assert bad.cell_index.tolist() == [1] and bad.x.tolist() == [2]  # the culprit alone, named
    assert bad.error.iloc[0].startswith("WorkerDied: ") and "exit code 3" in bad.error.iloc[0]
    assert (res.n_failed, res.n_computed) == (1, 4)
    again = run_sweep(_rows, cells, tmp_path, workers=2, progress=False)
    assert (again.n_failed, again.n_computed) == (0, 1)


def test_bad_return_and_regrid(tmp_path: Path) -> None:
    # a grid that shares cells with an earlier one reuses them, renumbered; others are ignored
    run_sweep(_rows, product(x=range(4)), tmp_path / "a", workers=1, progress=False)
    cells = [{"x": 3}, {"x": 1}, {"x": 5}]
    res = run_sweep(_rows, cells, tmp_path / "a", workers=1, progress=False)
    assert (res.n_reused, res.n_computed) == (2, 1)
    pd.testing.assert_frame_equal(res.table, run_sweep(_rows, cells, tmp_path / "b", workers=1,
                                                       progress=False).table)
    bad = run_sweep(str, [{"x": 1}], tmp_path / "c", workers=1, progress=False)  # type: ignore[arg-type]
    assert bad.table.error.iloc[0] == "TypeError: fn returned a str, not a pandas DataFrame"


_SLOW = """
import os, time, uuid
from pathlib import Path
import pandas as pd

def slow(p):
    time.sleep(float(os.environ.get("SLOWCELL_SLEEP", "0")))
    calls = Path(__file__).with_name("calls")
    calls.mkdir(exist_ok=True)
    (calls / f"{p['x']}-{uuid.uuid4().hex}").touch()
    return pd.DataFrame({"x": [p["x"]] * 2, "sq": [p["x"] ** 2, -p["x"]], "name": ["a", "b"]})
"""


def test_resume_after_kill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sweep_slowcell.py").write_text(textwrap.dedent(_SLOW))
    script = tmp_path / "run.py"
    script.write_text("import sys\nimport sweep_slowcell\n"
                      "from gradlab.sweeps.runner import product, run_sweep\n"
                      "run_sweep(sweep_slowcell.slow, product(x=range(10)), sys.argv[1], workers=2)\n")
    out = tmp_path / "out"
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path, "SLOWCELL_SLEEP": "0.3"}
    proc = subprocess.Popen([sys.executable, str(script), str(out)], env=env, start_new_session=True,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while len(list(out.glob("cell-*.parquet"))) < 2:
        assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before the kill"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its pool workers
    proc.wait()
    done = {p.name for p in out.glob("cell-*.parquet")}
    assert 2 <= len(done) < 10, "the kill came too late to test resuming"
    for p in done:  # atomic writes: every cell file is complete
        assert pd.read_parquet(out / p).status.eq("ok").all()

    for call in (tmp_path / "calls").iterdir():
        call.unlink()
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("SLOWCELL_SLEEP", raising=False)
    import sweep_slowcell

    cells = product(x=range(10))
    res = run_sweep(sweep_slowcell.slow, cells, out, workers=2, progress=False)
    missing = [c["x"] for c in cells if f"cell-{cell_key(c)}.parquet" not in done]
    assert _calls(tmp_path / "calls") == missing  # only the missing cells were computed
    assert (res.n_reused, res.n_computed, res.n_failed) == (len(done), len(missing), 0)
    assert not list(out.glob(".tmp-*"))  # no temp files left behind
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"cell-{cell_key(c)}.parquet" for c in cells] + [*_BOOKKEEPING]
    )
    ref = run_sweep(sweep_slowcell.slow, cells, tmp_path / "ref", workers=1, progress=False)
    pd.testing.assert_frame_equal(res.table, ref.table)


def test_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cells\[2\] duplicates cells\[0\]"):
        run_sweep(_rows, [{"x": 1}, {"x": 2}, {"x": 1}], tmp_path)
    with pytest.raises(ValueError, match="workers"):
        run_sweep(_rows, [{"x": 1}], tmp_path, workers=0)
    with pytest.raises(TypeError, match=r"fn .*lambda.* cannot be pickled"):
        run_sweep(lambda p: _rows(p), [{"x": 1}], tmp_path, workers=2)
    with pytest.raises(ValueError, match="cells is empty"):
        run_sweep(_rows, [], tmp_path)
    with pytest.raises(TypeError, match=r"cells\[1\] must be a dict"):
        run_sweep(_rows, [{"x": 1}, 2], tmp_path)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="cells must be a sequence"):
        run_sweep(_rows, {"x": 1}, tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"cells\[0\] .*parameter 'x' is a ndarray"):
        run_sweep(_rows, [{"x": np.ones(2)}], tmp_path)
    with pytest.raises(ValueError, match=r"parameter names \['status'\] are reserved"):
        run_sweep(_rows, [{"x": 1, "status": 1}], tmp_path)
    with pytest.raises(ValueError, match=r"workers .* or scheduler .*, not both"):
        run_sweep(_rows, [{"x": 1}], tmp_path, workers=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(TypeError, match="scheduler must be"):
        run_sweep(_rows, [{"x": 1}], tmp_path, scheduler=3)
    with pytest.raises(ValueError, match="meta"):
        run_sweep(_rows, [{"x": 1}], tmp_path, meta={"key": 1})
    with pytest.raises(TypeError, match="axis 'x'"):
        product(x="abc")
    assert not list(tmp_path.iterdir())  # bad input is caught before anything is written


def test_cell_key_and_product() -> None:
    a = cell_key({"h": 1e-7, "scheme": "central", "opts": {"b": 1, "a": [1, 2]}})
    assert a == cell_key({"opts": {"a": [1, 2], "b": 1}, "scheme": "central", "h": 1e-7})
    assert len(a) == 16 and int(a, 16) >= 0
    assert a != cell_key({"h": 1e-6, "scheme": "central", "opts": {"b": 1, "a": [1, 2]}})
    assert cell_key({"n": np.int64(3), "t": (1, 2)}) == cell_key({"n": 3, "t": [1, 2]})
    assert cell_key({"n": 3}) != cell_key({"n": "3"})
    with pytest.raises(ValueError, match=r"cell .*parameter 'f' is a function"):
        cell_key({"f": _rows})
    assert product(a=[1, 2], b="xy".split("x")) == [
        {"a": 1, "b": ""}, {"a": 1, "b": "y"}, {"a": 2, "b": ""}, {"a": 2, "b": "y"}
    ]
    assert product(a=[1], b=[]) == [] and product() == [{}]


def test_dask_local_cluster(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    cells = product(x=[2, 0, 3], calls=[str(tmp_path)])
    serial = run_sweep(_flaky, cells, tmp_path / "serial", workers=1, progress=False).table
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        on_cluster = run_sweep(_flaky, cells, tmp_path / "cluster", scheduler=cluster, progress=False)
        pd.testing.assert_frame_equal(on_cluster.table, serial)
        assert (on_cluster.n_computed, on_cluster.n_failed) == (3, 1)
        by_address = run_sweep(_flaky, cells, tmp_path / "cluster", scheduler=cluster.scheduler_address,
                               progress=False)  # a string address; retries the failed cell
        assert (by_address.n_reused, by_address.n_computed) == (2, 1)
        with distributed.Client(cluster) as client:
            by_client = run_sweep(_flaky, cells, tmp_path / "client", scheduler=client, progress=False)
            assert client.status == "running"  # the caller's client is left open
        pd.testing.assert_frame_equal(by_client.table, serial)
        pd.testing.assert_frame_equal(by_address.table, serial)
