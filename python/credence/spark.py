"""Credence on Spark: decide a DataFrame with ``mapInArrow`` — each task compiles the strategy once
and decides whole Arrow batches, never row by row.

The package travels inside the job (packed on the driver), so executors need only the
``credence`` wheel installed in their Python (docs/python.md says how to ship it)."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from typing import Any, Dict, Iterator, Mapping, Optional, Sequence, Union

import pyarrow as pa

from .strategy import AsOf, Strategy, as_of_text

__all__ = ["decide", "decision_schema"]

# Compiled strategies of this Python worker, by package version: a worker process that runs
# several tasks compiles each package once.
_COMPILED: Dict[str, Strategy] = {}


def _pack(path: str) -> bytes:
    """A package directory (or .tar.gz) as .tar.gz bytes."""
    if os.path.isfile(path):
        with open(path, "rb") as file:
            return file.read()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                full = os.path.join(root, name)
                archive.add(full, arcname=os.path.relpath(full, path))
    return buffer.getvalue()


def _strategy(version: str, package: bytes) -> Strategy:
    strategy = _COMPILED.get(version)
    if strategy is None:
        with tempfile.NamedTemporaryFile(suffix=".tar.gz", delete=False) as file:
            file.write(package)
        try:
            strategy = Strategy.load(file.name)
        finally:
            os.unlink(file.name)
        _COMPILED[version] = strategy
    return strategy


def _spark_type(arrow_type: pa.DataType) -> Any:
    from pyspark.sql import types as T

    if pa.types.is_decimal(arrow_type):
        return T.DecimalType(arrow_type.precision, arrow_type.scale)
    if pa.types.is_list(arrow_type):
        return T.ArrayType(_spark_type(arrow_type.value_type))
    return {
        pa.string(): T.StringType(),
        pa.bool_(): T.BooleanType(),
        pa.int32(): T.IntegerType(),
        pa.float64(): T.DoubleType(),
    }[arrow_type]


def decision_schema(answer_schema: pa.Schema) -> Any:
    """The Spark struct type of a decision answer's columns."""
    from pyspark.sql import types as T

    return T.StructType(
        [T.StructField(f.name, _spark_type(f.type), True) for f in answer_schema]
    )


def decide(
    df: Any,
    strategy_path: Union[str, "os.PathLike[str]"],
    flow: str,
    as_of: AsOf,
    lang: Optional[str] = None,
    trace_fields: Union[Sequence[str], Mapping[str, str], None] = None,
    column: str = "decision",
    threads_per_task: int = 1,
    keep: Optional[Sequence[str]] = None,
) -> Any:
    """Decides every row of the Spark DataFrame ``df`` with ``flow`` of the package at
    ``strategy_path`` (read on the driver) as of ``as_of``; returns ``df`` with one more column,
    ``column``, a struct of the decision: ``outcome``, ``counter_offer``, ``limit``, ``apr``,
    ``term_months``, ``requested_amount``, ``reason_codes``, ``arm``, ``strategy_version``,
    ``error`` and the trace fields, exactly as :meth:`Strategy.decide_batch` gives them.

    Trace fields given as a list have their types read from deciding the first rows on the
    driver; a dict of name → ``"float64"`` / ``"bool"`` / ``"string"`` fixes them. Each task
    decides on ``threads_per_task`` threads (Spark runs a task per core already).

    Only the columns the flow reads (its inputs and ``step.field`` recorded answers) and the
    columns to ``keep`` cross to Python and back: ``keep`` (default: every column of ``df``)
    names the input columns the result carries beside ``column`` — keep just the key
    (``keep=["application_id"]``) when the rest is not needed, and the crossing is cheaper."""
    from pyspark.sql import types as T

    if as_of is None:
        raise ValueError("as_of is required: every task must decide as of the same date")
    path = os.fspath(strategy_path)
    strategy = Strategy.load(path)
    if flow not in strategy.flows:
        strategy.decide_batch(flow, pa.table({}))  # raises UnknownFlowError naming the flows
    package = _pack(path)
    version = strategy.version
    day = as_of_text(as_of)
    if trace_fields is None:
        fields: Dict[str, str] = {}
    elif isinstance(trace_fields, Mapping):
        fields = dict(trace_fields)
    else:
        sample = df.limit(200).toPandas()
        probe = strategy.decide_batch(flow, sample, day, lang, list(trace_fields), threads=1)
        fields = {}
        for name in trace_fields:
            kind = probe.schema.field(name).type
            fields[name] = (
                "float64" if pa.types.is_floating(kind) else "bool" if pa.types.is_boolean(kind) else "string"
            )
    empty = strategy.decide_batch(flow, pa.table({}), day, lang, fields, threads=1)
    # The version is the same on every row: it is added on the JVM side, not sent back from
    # Python 64 bytes a row.
    answer_fields = [f for f in empty.schema if f.name != "strategy_version"]
    struct = decision_schema(pa.schema(answer_fields))
    kept = list(df.columns) if keep is None else list(keep)
    missing = [name for name in kept if name not in df.columns]
    if missing:
        raise ValueError(f"keep: the DataFrame has no column {missing[0]!r}")
    read = set(strategy.input_fields(flow))
    sent = [c for c in df.columns if c in kept or c in read or "." in c]
    # mapInArrow reads its input columns by name, where a dot means a struct's field: recorded
    # answers (`bureau_report.delinquent_now`) cross under names without one, and get theirs
    # back on either side.
    safe = {c: c.replace(".", "__dot__") for c in sent}
    original = {v: k for k, v in safe.items()}
    by_name = {f.name: f for f in df.schema.fields}
    out_schema = T.StructType(
        [T.StructField(safe[c], by_name[c].dataType, by_name[c].nullable) for c in kept]
        + [T.StructField(column, struct, True)]
    )

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        compiled = _strategy(version, package)
        for batch in batches:
            named = batch.rename_columns([original.get(n, n) for n in batch.schema.names])
            answer = compiled.decide_batch(flow, named, day, lang, fields, threads_per_task)
            decision = pa.StructArray.from_arrays(
                [answer.column(f.name).combine_chunks() for f in answer_fields],
                fields=answer_fields,
            )
            yield pa.RecordBatch.from_arrays(
                [batch.column(safe[name]) for name in kept] + [decision],
                names=[safe[name] for name in kept] + [column],
            )

    from pyspark.sql import functions as F

    projected = df.select(*[F.col(f"`{c}`").alias(safe[c]) for c in sent])
    decided = projected.mapInArrow(run, out_schema)
    # The decision's fields in decide_batch's order, the version among them.
    fields_in_order = [
        F.lit(version).alias(f.name) if f.name == "strategy_version" else F.col(f"{column}.`{f.name}`")
        for f in empty.schema
    ]
    decided = decided.withColumn(column, F.struct(*fields_in_order))
    for name in kept:
        if safe[name] != name:
            decided = decided.withColumnRenamed(safe[name], name)
    return decided
