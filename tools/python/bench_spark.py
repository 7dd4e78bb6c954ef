#!/usr/bin/env python3
"""Spark `local[2]`: `credence.spark.decide` (mapInArrow, whole batches) against a per-row Python
UDF calling `Strategy.decide` — the way a rules engine is usually called from Spark — over a
Parquet file of applications resampled from the Lending Club data.

    python3 tools/python/bench_spark.py [ROWS] [UDF_ROWS]

Writes ROWS rows (default 1,000,000: the 10,000 applications of data/backtest/ resampled with
replacement, each with its own id) to Parquet, then times, on one session: an identity
mapInArrow pass over the same batches (what crossing to Python and back costs), the Credence
pass, and the per-row UDF over the same Parquet rows (UDF_ROWS, default all of them). Each pass
ends in a count of a column computed from the decisions, so that Spark cannot skip the work.

A UDF_ROWS below ROWS times the UDF on the first rows only (cached, in two partitions), which
is quicker but overstates its cost: a Spark job's start, the Python workers' and each task's
loading of the strategy weigh on a short run (20,000 rows ran at about half the UDF's rate over
1,000,000).
Needs `pip install ./python pyspark` and Java. Not a test: its numbers go in docs/benchmarks.md."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
UDF_ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else ROWS
AS_OF = "2026-11-29"
TEXT = ["application_id", "customer_id", "national_id_sha256", "phone"]


def resampled(rows: int) -> pa.Table:
    options = pa_csv.ConvertOptions(column_types={c: pa.string() for c in TEXT})
    base = pa_csv.read_csv(REPO / "data/backtest/lending_club_applications.csv", convert_options=options)
    base = base.select([n for n in base.column_names if "." not in n])
    picks = np.random.default_rng(2026).integers(0, base.num_rows, size=rows)
    table = base.take(pa.array(picks))
    ids = pa.array([f"R-{i:08d}" for i in range(rows)])
    return table.set_column(table.schema.get_field_index("application_id"), "application_id", ids)


def timed(label: str, rows: int, action) -> float:
    start = time.perf_counter()
    result = action()
    wall = time.perf_counter() - start
    print(f"{label}: {rows:,} rows in {wall:.1f} s = {rows / wall:,.0f} rows/s (result {result})", flush=True)
    return rows / wall


def main() -> None:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession, functions as F, types as T

    import credence
    import credence.spark

    spark = (SparkSession.builder.master("local[2]").appName("credence-bench")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "4g").getOrCreate())
    batch_rows = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "applications.parquet"
        pq.write_table(resampled(ROWS), path, row_group_size=100_000)
        df = spark.read.parquet(str(path))
        df.count()
        batches = -(-ROWS // batch_rows)
        print(f"{os.cpu_count()} cores; {ROWS:,} rows of Parquet ({path.stat().st_size / 1e6:.0f} MB); "
              f"Arrow batches of {batch_rows:,} rows")

        def identity(iterator):
            for batch in iterator:
                yield batch

        crossing = timed("identity mapInArrow, every column (the crossing alone)", ROWS,
                         lambda: df.mapInArrow(identity, df.schema).agg(F.count("application_id")).first()[0])
        strategy = credence.Strategy.load(REPO / "examples/consumer-loan")
        read = set(strategy.input_fields("application")) | {"application_id"}
        projected = df.select(*[c for c in df.columns if c in read])

        def key_only(iterator):
            for batch in iterator:
                yield batch.select(["application_id"])

        key_schema = T.StructType([df.schema["application_id"]])
        timed("identity mapInArrow, the flow's columns in, the key out", ROWS,
              lambda: projected.mapInArrow(key_only, key_schema).agg(F.count("application_id")).first()[0])
        decided = credence.spark.decide(df, REPO / "examples/consumer-loan", "application", as_of=AS_OF)
        rate_all = timed("credence.spark.decide (mapInArrow), every column kept", ROWS,
                         lambda: decided.where(F.col("decision.outcome") == "approve").count())
        keyed = credence.spark.decide(df, REPO / "examples/consumer-loan", "application", as_of=AS_OF,
                                      keep=["application_id"])
        rate = timed("credence.spark.decide (mapInArrow), keep=[application_id]", ROWS,
                     lambda: keyed.where(F.col("decision.outcome") == "approve").count())

        package = str(REPO / "examples/consumer-loan")
        compiled = {}

        @F.udf(returnType=T.StringType())
        def decide_row(row):
            strategy = compiled.get("s")
            if strategy is None:
                strategy = compiled["s"] = credence.Strategy.load(package)
            application = {k: v for k, v in row.asDict().items() if v is not None}
            return strategy.decide("application", application, as_of=AS_OF)["outcome"]

        # The UDF is given the flow's inputs only (a JSON input may hold nothing else).
        inputs = [c for c in df.columns if c not in ("bad", "exposure", "grade", "issue_month", "months_on_book")]
        if UDF_ROWS >= ROWS:
            few = df
        else:
            few = df.limit(UDF_ROWS).repartition(2).cache()
            few.count()
        udf_rate = timed("per-row Python UDF", UDF_ROWS,
                         lambda: few.select(decide_row(F.struct(*inputs)).alias("o"))
                         .where(F.col("o") == "approve").count())
        crossing_ms = 1000 * (ROWS / crossing) / batches
        print()
        print(json.dumps({
            "rows": ROWS, "batch_rows": batch_rows, "identity_rows_per_s": round(crossing),
            "credence_rows_per_s": round(rate), "credence_all_columns_rows_per_s": round(rate_all),
            "udf_rows_per_s": round(udf_rate),
            "speedup": round(rate / udf_rate, 1), "crossing_ms_per_batch": round(crossing_ms, 1),
        }, indent=1))
    spark.stop()


if __name__ == "__main__":
    main()
