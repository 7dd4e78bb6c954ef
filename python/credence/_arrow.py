"""Arrow in and out: pandas, pyarrow and anything with ``__arrow_c_stream__`` become Arrow
streams for the native module, and its answers (stream capsules) become pyarrow tables."""

from __future__ import annotations

from typing import Any

import pyarrow as pa


class _Capsule:
    """Hands a native ``arrow_array_stream`` capsule to pyarrow (once)."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        capsule, self._capsule = self._capsule, None
        if capsule is None:
            raise ValueError("the stream was read already")
        return capsule


def table_of(capsule: Any) -> pa.Table:
    """A native answer as a pyarrow Table."""
    return pa.RecordBatchReader.from_stream(_Capsule(capsule)).read_all()


def to_arrow(data: Any) -> Any:
    """``data`` as something with ``__arrow_c_stream__``: pyarrow data as is, a pandas
    DataFrame converted (its index left out), a dict of columns or a list of row dicts as a
    table."""
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if hasattr(data, "__arrow_c_stream__"):
        return data
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pd = None
    if pd is not None and isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, dict):
        return pa.table(data)
    if isinstance(data, list):
        return pa.Table.from_pylist(data)
    raise TypeError(
        f"expected a pyarrow Table or RecordBatch, a pandas DataFrame, a dict of columns or a "
        f"list of row dicts, got {type(data).__name__}"
    )
