"""A resumable parallel sweep: ``fn(params)`` over a grid of cells, one parquet file per cell.

Every finished cell is written at once, atomically, to ``out/cell-<key>.parquet``, so a sweep that
is killed loses only the cells in flight; a re-run with the same ``out`` reads the cells already on
disk and computes the rest.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import pickle
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from gradlab.provenance import provenance

__all__ = ["RUNNER_COLUMNS", "SweepResult", "cell_key", "product", "read_sweep", "run_sweep"]

RUNNER_COLUMNS = ["cell", "cell_index", "status", "error"]
_RESERVED = {*RUNNER_COLUMNS, "traceback"}
_META_KEY = b"gradlab"  # the schema-metadata key of gradlab.reporting.tables
_Outcome = tuple[pd.DataFrame | None, str, str]  # (rows, error, traceback); rows is None iff the cell failed


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
    n_failed: int  # cells whose latest run raised


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


def _call(fn: Callable[[dict[str, Any]], pd.DataFrame], params: dict[str, Any]) -> _Outcome:
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


def _result(future: Any) -> _Outcome:
    try:
        return future.result()
    except Exception as e:  # the worker died (BrokenProcessPool, KilledWorker) or its result was lost
        return None, f"{type(e).__name__}: {e}", "".join(traceback.format_exception(e))


def _atomic(path: Path, write: Callable[[str], object]) -> None:
    """Write ``path`` through a temp file in its directory: a kill leaves the old file or the new."""
    tmp = str(path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"))  # not mkstemp: it makes 0600 files
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _save(out: Path, key: str, index: int, params: dict[str, Any], outcome: _Outcome,
          meta: dict[str, Any]) -> bool:
    """Write one cell's file; returns whether the cell is ok."""
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
    _atomic(out / f"cell-{key}.parquet", lambda tmp: pq.write_table(table, tmp))
    return rows is not None


def _status(path: Path, version: str | None = None) -> str | None:
    """"ok" or "error" for a cell file; None if there is none, it cannot be read, or it was
    written under another ``version`` (when one is given)."""
    try:
        table = pq.read_table(path, columns=["status"])
    except (OSError, pa.ArrowException):
        return None
    if version is not None:
        info = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
        if info.get("config", {}).get("version") != version:
            return None
    return "error" if "error" in table.column("status").to_pylist() else "ok"


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Cells' rows in the given order; columns: fn's, the runner's, then those of failed rows."""
    failed = [bool((f["status"] == "error").any()) for f in frames]
    ok_cols = [c for f, bad in zip(frames, failed, strict=True) if not bad for c in f.columns]
    bad_cols = [c for f, bad in zip(frames, failed, strict=True) if bad for c in f.columns]
    order = list(dict.fromkeys([c for c in ok_cols if c not in RUNNER_COLUMNS] + RUNNER_COLUMNS + bad_cols))
    nonempty = [f for f in frames if len(f)]  # a 0-row cell adds columns, no rows
    table = pd.concat(nonempty, ignore_index=True) if nonempty else pd.DataFrame()
    return table.reindex(columns=order)


def read_sweep(out: Path | str, cells: Sequence[Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """Read a sweep's dataset back: all its cell files, or those of the grid ``cells`` in grid order.

    With ``cells``, ``cell_index`` is the position in that grid and a cell without a file raises
    FileNotFoundError (``read_sweep(out)`` reads the cells done so far). Failed cells are rows
    with ``status == "error"``.
    """
    out = Path(out)
    if cells is None:
        frames = [pd.read_parquet(p) for p in sorted(out.glob("cell-*.parquet"))]
        frames.sort(key=lambda f: int(f["cell_index"].iloc[0]) if len(f) else -1)
        return _concat(frames)
    grid, keys = _grid(cells)
    paths = [out / f"cell-{k}.parquet" for k in keys]
    if missing := [i for i, p in enumerate(paths) if not p.exists()]:
        raise FileNotFoundError(f"{len(missing)} of {len(grid)} cells have no file in {out}, "
                                f"the first cells[{missing[0]}] {grid[missing[0]]!r}")
    return _concat([pd.read_parquet(p).assign(cell_index=i) for i, p in enumerate(paths)])


def _run_local(fn: Callable[[dict[str, Any]], pd.DataFrame], grid: list[dict[str, Any]], todo: list[int],
               workers: int, save: Callable[[int, _Outcome], None]) -> None:
    if workers == 1:
        for i in todo:
            save(i, _call(fn, grid[i]))
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(min(workers, len(todo)), mp_context=multiprocessing.get_context(method))
    try:
        futures = {pool.submit(_call, fn, grid[i]): i for i in todo}
        for future in as_completed(futures):
            save(futures.pop(future), _result(future))
    finally:
        pool.shutdown(cancel_futures=True)


def _run_dask(fn: Callable[[dict[str, Any]], pd.DataFrame], grid: list[dict[str, Any]], todo: list[int],
              keys: list[str], scheduler: Any, save: Callable[[int, _Outcome], None]) -> None:
    import distributed

    own = not isinstance(scheduler, distributed.Client)  # an address or a cluster: our own client
    client = distributed.Client(scheduler) if own else scheduler
    run = uuid.uuid4().hex[:8]  # fresh task keys: a re-run must not get a past run's results back
    futures = {client.submit(_call, fn, grid[i], key=f"sweep-{keys[i]}-{run}", pure=False): i for i in todo}
    try:
        for future in distributed.as_completed(list(futures)):
            save(futures.pop(future), _result(future))
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


def _checked_workers(fn: Callable[[dict[str, Any]], pd.DataFrame], workers: int | None,
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
    """Create the dataset directory, clear a killed run's temp files and write ``_sweep.json``."""
    out.mkdir(parents=True, exist_ok=True)
    for tmp in out.glob(".tmp-*"):  # left behind by a killed run
        tmp.unlink(missing_ok=True)
    name = f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', repr(fn))}"
    sweep = {"fn": name, "cells": [{"key": k, "params": p} for k, p in zip(keys, grid, strict=True)],
             "meta": meta, "provenance": provenance()}
    _atomic(out / "_sweep.json", lambda tmp: Path(tmp).write_text(json.dumps(sweep, indent=1, default=str)))


def run_sweep(
    fn: Callable[[dict[str, Any]], pd.DataFrame],
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
        The dataset directory: one ``cell-<key>.parquet`` per cell (see :func:`cell_key`), written
        atomically as each cell finishes, and ``_sweep.json`` (the grid, ``fn``'s name, ``meta``,
        provenance). Cell files of other grids are left alone. One run per directory at a time.
    workers : int, optional
        Local processes (default ``os.cpu_count()``); 1 runs serially in this process.
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
        cell whose ``fn`` raised (or whose worker died) is one row with ``status == "error"``,
        ``error`` = ``"Type: message"``, a ``traceback`` and its params as columns. The table is
        read back from the files, so a resumed sweep's equals an uninterrupted one's.
    """
    n_workers = _checked_workers(fn, workers, scheduler)
    grid, keys = _grid(cells)
    meta = _checked_meta(meta, version)
    out = Path(out)
    _start(out, fn, grid, keys, meta)
    status = [_status(out / f"cell-{k}.parquet", version) for k in keys]
    todo = [i for i, s in enumerate(status) if s is None or (s == "error" and retry_failed)]
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
    table = read_sweep(out, grid)
    n_failed = int((table["status"] == "error").sum())  # a failed cell is exactly one row
    return SweepResult(table, out, len(grid), len(grid) - len(todo), len(todo), n_failed)
