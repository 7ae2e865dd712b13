"""Writing and reading result tables with their provenance."""

from __future__ import annotations

import json
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


def write_table(df: pd.DataFrame, path: Path | str, meta: dict[str, Any]) -> Path:
    """Write ``df`` as ``path.parquet`` (with ``meta`` and ``df.attrs``) and ``path.csv``.

    Returns the parquet path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    info = _jsonable({**meta, "attrs": dict(df.attrs)})
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          _KEY: json.dumps(info).encode()})
    out = path.with_suffix(".parquet")
    pq.write_table(table, out)
    df.to_csv(path.with_suffix(".csv"), index=False)
    return out


def read_table(path: Path | str) -> pd.DataFrame:
    """Read a table written by :func:`write_table`; its provenance is in ``df.attrs``."""
    path = Path(path).with_suffix(".parquet")
    table = pq.read_table(path)
    df = table.to_pandas()
    raw = (table.schema.metadata or {}).get(_KEY)
    df.attrs = json.loads(raw) if raw else {}
    return df
