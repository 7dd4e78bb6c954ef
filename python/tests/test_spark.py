"""Spark: `credence.spark.decide` over a Parquet file of applications on a local[2] session
gives, row by row, the decisions `Strategy.decide_batch` gives, and the CLI back-test's counts.

Needs pyspark and Java; skipped without them unless CREDENCE_REQUIRE_SPARK is set (as in CI)."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

import credence
from conftest import AS_OF, EXAMPLE, read_applications, run_cli

ROWS = 4000


@pytest.fixture(scope="module")
def spark():
    required = bool(os.environ.get("CREDENCE_REQUIRE_SPARK"))
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        if required:
            raise
        pytest.skip("pyspark is not installed (pip install pyspark)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if required:
            pytest.fail("Java is required for Spark: apt-get install openjdk-17-jre-headless")
        pytest.skip("no Java for Spark")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("credence-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "1000")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_spark_decides_as_decide_batch_and_the_cli(spark, example, tmp_path):
    # With the recorded provider answers: `step.field` columns cross too.
    table = read_applications(ROWS)
    path = tmp_path / "applications.parquet"
    pq.write_table(table, path)
    df = spark.read.parquet(str(path)).repartition(4)
    decided = credence.spark.decide(df, EXAMPLE, "application", as_of=AS_OF,
                                    trace_fields=["dti", "app_score.score"])
    rows = decided.select("application_id", "decision.*").toPandas()
    assert len(rows) == ROWS
    local = example.decide_batch("application", table, as_of=AS_OF,
                                 trace_fields=["dti", "app_score.score"]).to_pandas()
    local.insert(0, "application_id", table.column("application_id").to_pylist())
    rows = rows.sort_values("application_id").reset_index(drop=True)
    local = local.sort_values("application_id").reset_index(drop=True)
    def values(frame, column):
        return [None if v is None or v != v else v for v in frame[column].astype(object)]

    for column in ["outcome", "limit", "apr", "term_months", "arm", "strategy_version", "error",
                   "dti", "app_score.score"]:
        assert values(rows, column) == values(local, column), column
    assert [list(r) for r in rows["reason_codes"]] == [list(r) for r in local["reason_codes"]]

    # Keeping only the key sends only the flow's columns across, and decides the same.
    keyed = credence.spark.decide(df, EXAMPLE, "application", as_of=AS_OF, keep=["application_id"])
    assert keyed.columns == ["application_id", "decision"]
    keyed_rows = keyed.select("application_id", "decision.outcome", "decision.strategy_version") \
        .toPandas().sort_values("application_id").reset_index(drop=True)
    assert keyed_rows["outcome"].tolist() == rows["outcome"].tolist()
    assert set(keyed_rows["strategy_version"]) == {example.version}

    csv_path = tmp_path / "applications.csv"
    pa_csv.write_csv(table, csv_path)
    summary = tmp_path / "summary.json"
    ran = run_cli("backtest", "--strategy", str(EXAMPLE), "--flow", "application",
                  "--input", str(csv_path), "--as-of", AS_OF, "--summary-json", str(summary))
    assert ran.returncode == 0, ran.stderr
    champion = json.loads(summary.read_text())["strategies"]["champion"]
    counts = rows["outcome"].value_counts()
    assert (counts.get("approve", 0), counts.get("refer", 0), counts.get("decline", 0)) == (
        champion["approved"], champion["referred"], champion["declined"])
