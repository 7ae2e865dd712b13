"""A resumable parallel sweep: ``fn(params)`` over a grid of cells, one parquet file per cell.

Every finished cell is written at once, atomically, to ``out/cell-<key>.parquet``, with its sha256
recorded in ``out/_manifest.jsonl``, so a sweep that is killed loses only the cells in flight; a re-run
with the same ``out`` verifies the cells already on disk, reuses those that match and computes the rest.
One run at a time holds ``out/.lock``. A cell whose worker process dies fails alone, named.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import itertools
import json
import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from gradlab.provenance import provenance

__all__ = ["RUNNER_COLUMNS", "SweepLockedError", "SweepResult", "SweepWarning", "cell_key", "product",
           "read_sweep", "run_sweep"]

RUNNER_COLUMNS = ["cell", "cell_index", "status", "error"]
_RESERVED = {*RUNNER_COLUMNS, "traceback"}
_META_KEY = b"gradlab"  # the schema-metadata key of gradlab.reporting.tables
_MANIFEST = "_manifest.jsonl"  # one {"file", "key", "sha256"} line per cell file written; the last one counts
_LOCK = ".lock"
_LOCK_WAIT = 1.0  # seconds to keep trying a lock held by another run before refusing
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_Outcome = tuple[pd.DataFrame | None, str, str]  # (rows, error, traceback); rows is None iff the cell failed
_Fn = Callable[[dict[str, Any]], pd.DataFrame]


class SweepLockedError(RuntimeError):
    """Another run holds the lock of the dataset directory."""


class SweepWarning(UserWarning):
    """A cell file on disk is not trusted (it is recomputed), or carries no checksum (it is adopted)."""


def _plain(x: Any, where: str) -> Any:
    """``x`` as plain JSON types (numpy scalars unwrapped, tuples as lists), else ValueError."""
    if isinstance(x, np.generic):
        x = x.item()
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(x)]
    if isinstance(x, Mapping):
        if not all(isinstance(k, str) for k in x):
            raise ValueError(f"{where or 'the cell'} has a key that is not a str")
        return {k: _plain(v, f"{where}[{k!r}]" if where else repr(k)) for k, v in x.items()}
    raise ValueError(f"parameter {where} is a {type(x).__name__}, not a JSON scalar, list or dict")


def _params(params: Mapping[str, Any], name: str = "cell") -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise TypeError(f"{name} must be a dict of parameters, got {type(params).__name__}: {params!r}")
    try:
        return dict(_plain(params, ""))
    except ValueError as e:
        raise ValueError(f"{name} {dict(params)!r}: {e}") from None


def cell_key(params: Mapping[str, Any]) -> str:
    """A stable short key for a cell: the first 16 hex digits of the sha256 of its sorted JSON.

    Parameters must be JSON scalars, lists or dicts (numpy scalars count as scalars, tuples as
    lists); anything else raises a ValueError naming the cell and the parameter.

    >>> cell_key({"h": 1e-7, "scheme": "central"}) == cell_key({"scheme": "central", "h": 1e-7})
    True
    """
    return hashlib.sha256(json.dumps(_params(params), sort_keys=True).encode()).hexdigest()[:16]


def product(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    """The cartesian product of named axes, in the given order (the last axis varies fastest).

    >>> product(n=[1, 2], scheme=["forward", "central"])  # doctest: +NORMALIZE_WHITESPACE
    [{'n': 1, 'scheme': 'forward'}, {'n': 1, 'scheme': 'central'},
     {'n': 2, 'scheme': 'forward'}, {'n': 2, 'scheme': 'central'}]
    """
    for name, values in axes.items():
        if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
            raise TypeError(f"axis {name!r} must be a sequence of values, got {type(values).__name__}")
    return [dict(zip(axes, combo, strict=True)) for combo in itertools.product(*axes.values())]


@dataclass(frozen=True)
class SweepResult:
    """The outcome of :func:`run_sweep`; ``n_reused + n_computed == n_cells``."""

    table: pd.DataFrame  # all cells' rows, in grid order
    path: Path  # the dataset directory
    n_cells: int
    n_reused: int  # cells read from disk, not recomputed
    n_computed: int  # cells computed in this call
    n_failed: int  # cells whose latest run raised or whose worker died
    n_rejected: int = 0  # cells whose file failed verification (damaged, swapped, unreadable): recomputed
    n_legacy: int = 0  # cell files without a checksum (an older gradlab's) checked in full and adopted


def _grid(cells: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """The validated cells (plain dicts) and their keys."""
    if isinstance(cells, (Mapping, str)) or not isinstance(cells, Iterable):
        raise TypeError(f"cells must be a sequence of dicts, got {type(cells).__name__}")
    grid = [_params(c, f"cells[{i}]") for i, c in enumerate(cells)]
    if not grid:
        raise ValueError("cells is empty: nothing to sweep")
    keys = [cell_key(p) for p in grid]
    seen: dict[str, int] = {}
    for i, (p, k) in enumerate(zip(grid, keys, strict=True)):
        if reserved := _RESERVED & p.keys():
            raise ValueError(f"cells[{i}] {p!r}: parameter names {sorted(reserved)} are reserved")
        if (j := seen.setdefault(k, i)) < i:
            raise ValueError(f"cells[{i}] duplicates cells[{j}]: {p!r}")
    return grid, keys


def _call(fn: _Fn, params: dict[str, Any]) -> _Outcome:
    """Run one cell; an exception becomes error info, so that a pool never breaks."""
    try:
        rows = fn(dict(params))
        if not isinstance(rows, pd.DataFrame):
            raise TypeError(f"fn returned a {type(rows).__name__}, not a pandas DataFrame")
        if clash := _RESERVED & set(rows.columns):
            raise ValueError(f"fn's table has the runner's column names {sorted(clash)}")
        return rows, "", ""
    except Exception as e:
        return None, f"{type(e).__name__}: {e}", traceback.format_exc()


def _atomic(path: Path, write: Callable[[str], object]) -> None:
    """Write ``path`` through a temp file in its directory: a kill leaves the old file or the new."""
    tmp = str(path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"))  # not mkstemp: it makes 0600 files
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


_HELD_LOCKS: set[int] = set()  # the file descriptors of the dataset locks this process holds


def _drop_inherited_locks() -> None:
    """In a forked child, close the parent's lock files: an flock belongs to the open file, which fork
    shares, so a worker (or a pool that ``fn`` forks) would otherwise hold it after the parent died."""
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


os.register_at_fork(after_in_child=_drop_inherited_locks)


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` or raise :class:`SweepLockedError` naming its holder.

    An flock is released by the kernel when its holder exits, however it exits (SIGKILL included),
    so a killed run never leaves a stale lock. It is tried for up to ``_LOCK_WAIT`` seconds: a child
    forked just as its parent was killed shares the lock until it has exited too.
    """
    fd = os.open(out / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + _LOCK_WAIT
        while not _try_flock(fd):
            if time.monotonic() > deadline:
                holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "pid not yet recorded"
                raise SweepLockedError(f"another sweep is running in {out} ({holder}); wait for it to "
                                       "finish or stop it")
            time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        _HELD_LOCKS.add(fd)
        yield
    finally:
        _HELD_LOCKS.discard(fd)
        os.close(fd)


def _sha256(path: Path | str) -> str:
    """The hex sha256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_manifest(out: Path) -> dict[str, dict[str, Any]] | None:
    """File name -> its latest manifest entry; None if ``out`` has no manifest (an older gradlab's).

    A line that does not parse (a write torn by a kill, a damaged byte) is skipped: its file then
    fails verification and is recomputed.
    """
    try:
        lines = (out / _MANIFEST).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    entries: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            entry = json.loads(line)
            entries[str(entry["file"])] = entry
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def _append_manifest(out: Path, name: str, key: str, data: Path | str) -> None:
    """Record the sha256 of ``data`` as that of ``out/name``: one write to a file opened for appending."""
    line = json.dumps({"file": name, "key": key, "sha256": _sha256(data)}) + "\n"
    fd = os.open(out / _MANIFEST, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _inspect(path: Path, key: str, manifest: dict[str, dict[str, Any]] | None,
             version: str | None) -> tuple[str | None, str]:
    """The status (``"ok"`` or ``"error"``) of cell ``key``'s file, and why it is not trusted.

    ``(None, "")`` when there is no file or it was written under another ``version``; ``(None, why)``
    when its sha256 differs from the manifest's (or the manifest has none), it does not read, or it
    holds another cell's parameters. Without a manifest (``None``: a dataset written before checksums)
    the file must read in full, since only decoding every page finds a damaged one.
    """
    if not path.exists():
        return None, ""
    if manifest is not None:
        entry = manifest.get(path.name)
        if entry is None:
            return None, f"has no checksum in {_MANIFEST}"
        if entry.get("sha256") != _sha256(path):
            return None, "does not match its recorded checksum (damaged, or replaced by another file)"
    try:
        table = pq.read_table(path, columns=None if manifest is None else ["status"])
        info = json.loads((table.schema.metadata or {})[_META_KEY])["config"]  # see _save
        if cell_key(info["cell"]) != key:
            return None, f"holds the cell {info['cell']!r}, not this one"
        if version is not None and info.get("version") != version:
            return None, ""
        return ("error" if "error" in table.column("status").to_pylist() else "ok"), ""
    except (OSError, pa.ArrowException, ValueError, KeyError, TypeError, AttributeError) as e:
        return None, f"cannot be read as a cell file ({type(e).__name__}: {e})"


def _adopt(out: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Manifest entries for a dataset written before checksums, and why the files not adopted were not.

    Every cell file that reads in full and holds the cell its name says is adopted (with one warning):
    its checksum is recorded now, so later resumes verify it like any other.
    """
    entries: dict[str, dict[str, Any]] = {}
    rejected: dict[str, str] = {}
    for path in sorted(out.glob("cell-*.parquet")):
        key = path.stem.removeprefix("cell-")
        if why := _inspect(path, key, None, None)[1]:
            rejected[path.name] = why
        else:
            entries[path.name] = {"file": path.name, "key": key, "sha256": _sha256(path)}
    if entries:
        warnings.warn(f"sweep {out}: {len(entries)} cell files carry no checksum (written by a gradlab "
                      "before checksums); reusing those that read in full and hold the cell their name "
                      f"says, and recording their checksums in {_MANIFEST}", SweepWarning, stacklevel=4)
    return entries, rejected


def _resume(out: Path, keys: list[str], version: str | None) -> tuple[list[str | None], int, int]:
    """Verify the grid's cell files: each cell's status (None: compute it), the number of files
    rejected (each named in a warning) and of files adopted from a dataset without checksums.

    The manifest is rewritten, atomically, with the entries of the files that exist, less the rejected.
    """
    manifest = _read_manifest(out)
    rejected: dict[str, str] = {}  # file name -> why, for the files of a dataset without checksums
    n_legacy = 0
    if manifest is None:
        manifest, rejected = _adopt(out)
        n_legacy = len(manifest)
    status: list[str | None] = []
    n_rejected = 0
    for k in keys:
        path = out / f"cell-{k}.parquet"
        s, why = (None, rejected[path.name]) if path.name in rejected else _inspect(path, k, manifest,
                                                                                     version)
        if why:
            warnings.warn(f"sweep {out}: {path.name} {why}; recomputing it", SweepWarning, stacklevel=3)
            manifest.pop(path.name, None)
            n_rejected += 1
        status.append(s)
    lines = "".join(json.dumps(e) + "\n" for name, e in manifest.items() if (out / name).exists())
    _atomic(out / _MANIFEST, lambda tmp: Path(tmp).write_text(lines))
    return status, n_rejected, n_legacy


def _save(out: Path, key: str, index: int, params: dict[str, Any], outcome: _Outcome,
          meta: dict[str, Any]) -> bool:
    """Write one cell's file and its checksum; returns whether the cell is ok.

    The checksum is recorded before the file is renamed into place: a kill in between leaves a
    recorded checksum without its file (the cell is missing) or with an older file (it is rejected),
    never a file that passes unchecked.
    """
    rows, error, tb = outcome
    if rows is not None:
        try:
            table = pa.Table.from_pandas(
                rows.reset_index(drop=True).assign(cell=key, cell_index=index, status="ok", error=""),
                preserve_index=False,
            )
        except Exception as e:  # rows that parquet cannot hold, e.g. a column of mixed types
            rows, error, tb = None, f"{type(e).__name__}: {e}", traceback.format_exc()
    if rows is None:  # one flagged row: the params (non-scalars as JSON) and the error
        flat = {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in params.items()}
        row = {**flat, "cell": key, "cell_index": index, "status": "error", "error": error, "traceback": tb}
        table = pa.Table.from_pandas(pd.DataFrame([row]), preserve_index=False)
    info = json.dumps(provenance({"cell": params, "key": key, **meta}), default=str).encode()
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: info})
    name = f"cell-{key}.parquet"

    def write(tmp: str) -> None:
        pq.write_table(table, tmp)
        _append_manifest(out, name, key, tmp)

    _atomic(out / name, write)
    return rows is not None


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Cells' rows in the given order; columns: fn's, the runner's, then those of failed rows."""
    failed = [bool((f["status"] == "error").any()) for f in frames]
    ok_cols = [c for f, bad in zip(frames, failed, strict=True) if not bad for c in f.columns]
    bad_cols = [c for f, bad in zip(frames, failed, strict=True) if bad for c in f.columns]
    order = list(dict.fromkeys([c for c in ok_cols if c not in RUNNER_COLUMNS] + RUNNER_COLUMNS + bad_cols))
    nonempty = [f for f in frames if len(f)]  # a 0-row cell adds columns, no rows
    table = pd.concat(nonempty, ignore_index=True) if nonempty else pd.DataFrame()
    return table.reindex(columns=order)


def _read_cell(path: Path, manifest: dict[str, dict[str, Any]] | None) -> pd.DataFrame:
    """One cell file, checked against the manifest when the dataset has one."""
    if manifest is not None and manifest.get(path.name, {}).get("sha256") != _sha256(path):
        raise ValueError(f"cell file {path} does not match its checksum in {_MANIFEST} (damaged, or "
                         "replaced by another file); run_sweep recomputes it")
    try:
        return pd.read_parquet(path)
    except (OSError, pa.ArrowException) as e:
        raise ValueError(f"cell file {path} cannot be read ({type(e).__name__}: {e}); run_sweep "
                         "recomputes it") from e


def read_sweep(out: Path | str, cells: Sequence[Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Read a sweep's dataset back: all its cell files, or those of the grid ``cells`` in grid order.

    With ``cells``, ``cell_index`` is the position in that grid and a cell without a file raises
    FileNotFoundError (``read_sweep(out)`` reads the cells done so far). Failed cells are rows
    with ``status == "error"``. A file that does not match its checksum, or does not read, raises a
    ValueError naming it (a dataset written before checksums is read unchecked).
    """
    out = Path(out)
    manifest = _read_manifest(out)
    if cells is None:
        frames = [_read_cell(p, manifest) for p in sorted(out.glob("cell-*.parquet"))]
        frames.sort(key=lambda f: int(f["cell_index"].iloc[0]) if len(f) else -1)
        return _concat(frames)
    grid, keys = _grid(cells)
    paths = [out / f"cell-{k}.parquet" for k in keys]
    if missing := [i for i, p in enumerate(paths) if not p.exists()]:
        raise FileNotFoundError(f"{len(missing)} of {len(grid)} cells have no file in {out}, "
                                f"the first cells[{missing[0]}] {grid[missing[0]]!r}")
    return _concat([_read_cell(p, manifest).assign(cell_index=i) for i, p in enumerate(paths)])


def _watch_parent(parent: int, interval: float = 0.2) -> None:
    """Exit this process once ``parent`` is no longer its parent: it died and the orphan was re-parented."""
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def _die_with_parent(parent: int) -> None:
    """Make this worker exit when the sweep's process does, even by SIGKILL, which runs no cleanup.

    On Linux the kernel kills the worker at once (PR_SET_PDEATHSIG); a thread polling the parent's pid
    covers the other systems, a parent that died before prctl took effect, and a libc without prctl.
    """
    if sys.platform == "linux":
        with contextlib.suppress(AttributeError, OSError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-parent", daemon=True).start()


def _worker(conn: Connection, fn: _Fn, parent: int) -> None:
    """A pool worker's loop: run each cell that ``conn`` brings and send back its outcome, until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool
    _die_with_parent(parent)
    with contextlib.suppress(EOFError):
        while (params := conn.recv()) is not None:
            outcome = _call(fn, params)
            try:
                conn.send(outcome)
            except Exception as e:  # rows that do not pickle: nothing was sent yet
                conn.send((None, f"{type(e).__name__}: the cell's result cannot be sent back: {e}",
                           traceback.format_exc()))


def _ended(exitcode: int | None) -> str:
    """How a worker process ended, from its exit code (``-n``: killed by signal n)."""
    if exitcode is None or exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:
        name = "unknown signal"
    return f"killed by signal {-exitcode} ({name})"


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    cell: int | None = None  # the grid index it is running; None when idle


class _Pool:
    """Local worker processes that run one cell at a time each.

    concurrent.futures' pool breaks as a whole when one worker dies, failing every pending cell and
    naming none. This one knows which cell each worker runs: a dead worker takes only its cell with
    it, and is replaced. Workers are not daemonic, so ``fn`` may start a pool of its own.
    """

    def __init__(self, ctx: ForkContext | SpawnContext, fn: _Fn, size: int) -> None:
        self._ctx, self._fn, self._size = ctx, fn, size
        self._workers: list[_Worker] = []

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, grid: list[dict[str, Any]], cells: Iterable[int],
            done: Callable[[int, _Outcome], None]) -> dict[int, str]:
        """Run ``grid[i]`` for each ``i`` in ``cells``, calling ``done(i, outcome)`` as each arrives.

        Returns, for each cell whose worker died running it, how the worker ended (:func:`_ended`).
        """
        queue, died = deque(cells), {}
        while queue or any(w.cell is not None for w in self._workers):
            self._dispatch(grid, queue)
            ready = set(wait([x for w in self._workers for x in (w.conn, w.process.sentinel)]))
            for w in [v for v in self._workers if {v.conn, v.process.sentinel} & ready]:
                i, outcome = w.cell, self._receive(w)
                if outcome is None:  # died: reaped and dropped; a dead idle worker is blamed for nothing
                    self._workers.remove(w)
                    w.conn.close()
                    if i is not None:
                        died[i] = _ended(w.process.exitcode)
                elif i is not None:
                    w.cell = None
                    done(i, outcome)
        return died

    def _dispatch(self, grid: list[dict[str, Any]], queue: deque[int]) -> None:
        """Give each idle worker the next cell, starting workers (up to the pool's size) as needed."""
        idle = [w for w in self._workers if w.cell is None]
        while len(idle) < len(queue) and len(self._workers) < self._size:
            parent, child = self._ctx.Pipe()
            process = self._ctx.Process(target=_worker, args=(child, self._fn, os.getpid()),
                                        name="gradlab-sweep-worker")
            process.start()
            child.close()
            idle.append(_Worker(process, parent))
            self._workers.append(idle[-1])
        for w in idle[:len(queue)]:
            i = queue.popleft()
            try:
                w.conn.send(grid[i])
                w.cell = i
            except OSError:  # it died idle: the next wait() reaps it, and the cell goes to another
                queue.appendleft(i)

    @staticmethod
    def _receive(w: _Worker) -> _Outcome | None:
        """The outcome that ``w`` sent; None if it died (it is then reaped)."""
        if w.conn.poll():
            try:
                return w.conn.recv()
            except (EOFError, OSError):
                pass
            except Exception as e:  # rows that do not unpickle here
                return None, f"{type(e).__name__}: the cell's result cannot be received: {e}", \
                    traceback.format_exc()
        w.process.join(5)
        if w.process.exitcode is None:  # its pipe broke, yet it lives
            w.process.kill()
            w.process.join()
        return None

    def close(self) -> None:
        """Stop the workers: idle ones are told to exit, busy ones (the parent is failing) are killed."""
        for w in self._workers:
            if w.cell is None:
                with contextlib.suppress(OSError):
                    w.conn.send(None)
            else:
                w.process.kill()
        for w in self._workers:
            w.process.join(5)
            if w.process.exitcode is None:
                w.process.kill()
                w.process.join()
            w.conn.close()
        self._workers.clear()


def _run_local(fn: _Fn, grid: list[dict[str, Any]], todo: list[int], workers: int,
               save: Callable[[int, _Outcome], None]) -> None:
    """Run ``todo`` in ``workers`` local processes (1: in this one).

    A cell whose worker dies is run once more once the others are done, alone in a fresh process:
    the death may have had a cause outside the cell (the OOM killer choosing among all running cells,
    a kill from outside). If it dies again, the cell fails as ``WorkerDied``, with both exits.
    """
    if workers == 1:
        for i in todo:
            save(i, _call(fn, grid[i]))
        return
    fork = "fork" in multiprocessing.get_all_start_methods()  # fast: the workers inherit fn and its imports
    ctx = multiprocessing.get_context("fork") if fork else multiprocessing.get_context("spawn")
    with _Pool(ctx, fn, min(workers, len(todo))) as pool:
        died = pool.run(grid, todo, save)
    for i, first in died.items():
        with _Pool(ctx, fn, 1) as pool:
            again = pool.run(grid, [i], save)
        if i in again:
            save(i, (None, f"WorkerDied: the worker process died running this cell ({first}), and again "
                           f"when it ran alone in a fresh process ({again[i]})", ""))


def _dask_outcome(future: Any, killed_worker: type[Exception]) -> _Outcome:
    """A finished dask task's outcome; a task whose workers all died (``KilledWorker``: dask reruns a
    task whose worker dies on other workers, up to its ``allowed-failures``) fails as ``WorkerDied``."""
    try:
        return future.result()
    except killed_worker as e:
        return None, (f"WorkerDied: every dask worker that ran this cell died, also when it ran alone "
                      f"({type(e).__name__}: {e})"), ""
    except Exception as e:  # its result was lost, or it was cancelled
        return None, f"{type(e).__name__}: {e}", "".join(traceback.format_exception(e))


def _run_dask(fn: _Fn, grid: list[dict[str, Any]], todo: list[int], keys: list[str], scheduler: Any,
              save: Callable[[int, _Outcome], None]) -> None:
    """Run ``todo`` on dask. Dask blames every task on a worker that dies, the cells queued beside the
    culprit too, so a cell whose workers all died is rerun alone, once the others are done."""
    import distributed

    own = not isinstance(scheduler, distributed.Client)  # an address or a cluster: our own client
    client = distributed.Client(scheduler) if own else scheduler
    run = uuid.uuid4().hex[:8]  # fresh task keys: a re-run must not get a past run's results back
    futures = {client.submit(_call, fn, grid[i], key=f"sweep-{keys[i]}-{run}", pure=False): i for i in todo}
    suspects = []
    try:
        for future in distributed.as_completed(list(futures)):
            i = futures.pop(future)
            if future.status == "error" and isinstance(future.exception(), distributed.KilledWorker):
                suspects.append(i)
            else:
                save(i, _dask_outcome(future, distributed.KilledWorker))
        for i in suspects:
            future = client.submit(_call, fn, grid[i], key=f"sweep-{keys[i]}-{run}-alone", pure=False)
            futures[future] = i
            distributed.wait(future)
            save(futures.pop(future), _dask_outcome(future, distributed.KilledWorker))
    finally:
        client.cancel(list(futures))
        if own:
            client.close()


def _checked_meta(meta: Mapping[str, Any] | None, version: str | None) -> dict[str, Any]:
    """The provenance stored with every cell: ``meta`` and the runner's ``version`` entry."""
    out = dict(meta or {})
    if version is not None and not isinstance(version, str):
        raise TypeError(f"version must be a str, got {type(version).__name__}")
    if reserved := {"cell", "key", "version"} & out.keys():
        raise ValueError(f"meta: the keys {sorted(reserved)} are reserved for the cell's provenance")
    if version is not None:
        out["version"] = version
    return out


def _checked_workers(fn: _Fn, workers: int | None,
                     scheduler: str | Any | None) -> int:
    """The number of local processes, once ``fn``, ``workers`` and ``scheduler`` are checked."""
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive int or None, got {workers!r}")
    if scheduler is not None and workers is not None:
        raise ValueError("give workers (local processes) or scheduler (dask), not both")
    n_workers = workers or os.cpu_count() or 1
    if scheduler is None and n_workers > 1:
        try:
            pickle.dumps(fn)
        except Exception as e:
            raise TypeError(f"fn {fn!r} cannot be pickled for worker processes ({e}); make it a "
                            "module-level function, or pass workers=1") from None
    if scheduler is not None:
        import distributed

        if not (isinstance(scheduler, (str, distributed.Client)) or hasattr(scheduler, "scheduler_address")):
            raise TypeError(f"scheduler must be an address, a distributed.Client or a cluster, "
                            f"got {type(scheduler).__name__}")
    return n_workers


def _start(out: Path, fn: Callable[..., Any], grid: list[dict[str, Any]], keys: list[str],
           meta: dict[str, Any]) -> None:
    """Clear a killed run's temp files and write ``_sweep.json`` (under the lock: a live run's temp
    files must not be cleared, nor its ``_sweep.json`` overwritten)."""
    for tmp in out.glob(".tmp-*"):  # left behind by a killed run
        tmp.unlink(missing_ok=True)
    name = f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', repr(fn))}"
    sweep = {"fn": name, "cells": [{"key": k, "params": p} for k, p in zip(keys, grid, strict=True)],
             "meta": meta, "provenance": provenance()}
    _atomic(out / "_sweep.json", lambda tmp: Path(tmp).write_text(json.dumps(sweep, indent=1, default=str)))


def _compute(fn: _Fn, grid: list[dict[str, Any]], keys: list[str], todo: list[int], out: Path,
             meta: dict[str, Any], n_workers: int, scheduler: Any, progress: bool) -> None:
    """Compute the cells ``todo``, saving each as it finishes, with a progress bar."""
    bar = tqdm(total=len(todo), desc="sweep", unit="cell", disable=not progress)
    n_new_failed = 0

    def save(i: int, outcome: _Outcome) -> None:
        nonlocal n_new_failed
        n_new_failed += not _save(out, keys[i], i, grid[i], outcome, meta)
        bar.update()
        bar.set_postfix(failed=n_new_failed)

    try:
        if todo and scheduler is not None:
            _run_dask(fn, grid, todo, keys, scheduler, save)
        elif todo:
            _run_local(fn, grid, todo, n_workers, save)
    finally:
        bar.close()


def run_sweep(
    fn: _Fn,
    cells: Sequence[Mapping[str, Any]],
    out: Path | str,
    *,
    workers: int | None = None,
    scheduler: str | Any | None = None,
    progress: bool = True,
    retry_failed: bool = True,
    meta: Mapping[str, Any] | None = None,
    version: str | None = None,
) -> SweepResult:
    """Run ``fn(params)`` for every cell of a grid, in parallel, resumably, into a parquet dataset.

    Parameters
    ----------
    fn : callable
        ``fn(params) -> pandas.DataFrame`` (any number of rows; its index is dropped). It runs in
        other processes, so it must be picklable (a module-level function) unless ``workers=1``.
        Dask worker processes are daemonic: there ``fn`` cannot start a multiprocessing pool (e.g.
        ``gradlab.fd_errors(..., workers>1)``) unless the cluster is started under
        ``dask.config.set({"distributed.worker.daemon": False})``; the local pool's workers can.
    cells : sequence of dict
        The grid (see :func:`product`): parameters that are JSON scalars, lists or dicts; ``fn``
        gets a plain copy (numpy scalars unwrapped, tuples as lists).
    out : path
        The dataset directory: one ``cell-<key>.parquet`` per cell (see :func:`cell_key`; its schema
        metadata holds the cell's parameters and provenance), written atomically as each cell
        finishes, its sha256 in ``_manifest.jsonl``, and ``_sweep.json`` (the grid, ``fn``'s name,
        ``meta``, provenance). Cell files of other grids are left alone. One run at a time holds
        ``out/.lock``.
    workers : int, optional
        Local processes (default ``os.cpu_count()``); 1 runs serially in this process (where a cell
        that kills its process kills the run). The workers exit when this process dies, even by
        SIGKILL.
    scheduler : str, distributed.Client or cluster, optional
        Run on dask instead: a scheduler address (a client is opened and closed), a Client (used
        as is) or a cluster such as ``distributed.LocalCluster``. Exclusive with ``workers``.
    progress : bool
        Show a progress bar over the cells to compute.
    retry_failed : bool
        Recompute cells whose file records a failure; otherwise keep them.
    meta : dict, optional
        Extra provenance (e.g. the study config), stored with every cell and in ``_sweep.json``.
    version : str, optional
        The version of what ``fn`` computes (bump it when its numerics change). Stored with
        every cell; cells written under another version (or none) are recomputed, so a resume
        never mixes results of different code. Without it, existing cells are reused as they are.

    Returns
    -------
    SweepResult
        ``table`` holds, in grid order, each cell's rows plus :data:`RUNNER_COLUMNS` (``cell``: the
        key, ``cell_index``: the position in the grid, ``status`` ``"ok"`` and ``error`` ``""``). A
        cell whose ``fn`` raised is one row with ``status == "error"``, ``error`` = ``"Type:
        message"``, a ``traceback`` and its params as columns; so is a cell whose worker process
        died, also when the cell was rerun alone in a fresh one (``error`` ``"WorkerDied: ..."``,
        with the exit code or signal); the other cells complete. The table is read back from the
        files, so a resumed sweep's equals an uninterrupted one's.

    Raises
    ------
    SweepLockedError
        Another run is using ``out``; its pid is in the message.

    Warns
    -----
    SweepWarning
        For each existing cell file that is recomputed because it does not match its checksum, does
        not read, or holds another cell (counted in ``n_rejected``); once for a dataset written
        without checksums, whose files are adopted if they read in full and hold their own cell
        (``n_legacy``).
    """
    n_workers = _checked_workers(fn, workers, scheduler)
    grid, keys = _grid(cells)
    meta = _checked_meta(meta, version)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _locked(out):
        _start(out, fn, grid, keys, meta)
        status, n_rejected, n_legacy = _resume(out, keys, version)
        todo = [i for i, s in enumerate(status) if s is None or (s == "error" and retry_failed)]
        _compute(fn, grid, keys, todo, out, meta, n_workers, scheduler, progress)
        table = read_sweep(out, grid)
    n_failed = int((table["status"] == "error").sum())  # a failed cell is exactly one row
    return SweepResult(table, out, len(grid), len(grid) - len(todo), len(todo), n_failed, n_rejected,
                       n_legacy)
