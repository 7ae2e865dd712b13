"""Writing and reading result tables with their provenance."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from gradlab.provenance import provenance

__all__ = ["provenance", "read_table", "write_table"]

_KEY = b"gradlab"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
        return str(x)
    if hasattr(x, "item"):
        return _jsonable(x.item())
    return x


def _atomic(path: Path, write: Callable[[str], object]) -> None:
    """Write ``path`` through a temp file beside it: a kill leaves the old file or the new, never a
    truncated one that a later ``gradlab paper build`` would choke on."""
    tmp = str(path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}"))
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_table(df: pd.DataFrame, path: Path | str, meta: dict[str, Any]) -> Path:
    """Write ``df`` as ``path.parquet`` (with ``meta`` and ``df.attrs``) and ``path.csv``, each
    atomically.

    Returns the parquet path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    info = _jsonable({**meta, "attrs": dict(df.attrs)})
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          _KEY: json.dumps(info).encode()})
    out = path.with_suffix(".parquet")
    _atomic(out, lambda tmp: pq.write_table(table, tmp))
    _atomic(path.with_suffix(".csv"), lambda tmp: df.to_csv(tmp, index=False))
    return out


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a table written by :func:`write_table`; its provenance is in ``df.attrs``.

    A missing file raises FileNotFoundError; a damaged one a ValueError that names it.
    """
    path = Path(path).with_suffix(".parquet")
    if not path.exists():
        raise FileNotFoundError(f"no table {path}")
    try:
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(_KEY)
        attrs = json.loads(raw) if raw else {}
    except (OSError, pa.ArrowException, ValueError) as e:
        raise ValueError(f"table {path} cannot be read ({type(e).__name__}: {e})") from e
    df = table.to_pandas()
    df.attrs = attrs
    return df
