#!/usr/bin/env python3
"""decide_batch against the command-line back-test, interleaved: ROWS application rows (the 10,000
Lending Club applications of data/backtest/ repeated, each copy with its own ids, recorded provider
answers included) through the example `application` flow (scorecard, income model — XGBoost,
120 trees — rules, tables, matrix, caps).

    python3 tools/python/bench_batch.py [ROWS] [ROUNDS]

Each round runs, in turn: `credence backtest` on the CSV (champion only) on all cores and on one;
`Strategy.decide_batch` from an Arrow table on all cores and on one; and from a pandas DataFrame
(its conversion to Arrow included) on all cores. The CLI's time is its whole run (reading and
parsing the CSV, deciding, tallying); decide_batch's is the call (rows printed to cells, decided,
answers built as Arrow columns), the table already in memory. Needs `cargo build --release` and
`pip install ./python`. Not a test: its numbers go in docs/benchmarks.md."""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

import credence

REPO = Path(__file__).resolve().parents[2]
ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
AS_OF = "2026-11-29"
CORES = os.cpu_count() or 2
TEXT = ["application_id", "customer_id", "national_id_sha256", "phone"]


def rows() -> pa.Table:
    options = pa_csv.ConvertOptions(column_types={c: pa.string() for c in TEXT})
    base = pa_csv.read_csv(REPO / "data/backtest/lending_club_applications.csv", convert_options=options)
    copies = []
    for copy in range(-(-ROWS // base.num_rows)):
        table = base
        for column in ("application_id", "customer_id"):
            ids = pc.binary_join_element_wise(pa.scalar(f"{copy}-"), table.column(column), "")
            table = table.set_column(table.schema.get_field_index(column), column, ids)
        copies.append(table)
    return pa.concat_tables(copies).slice(0, ROWS).combine_chunks()


def cli(csv_path: Path, threads: int) -> tuple:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [str(REPO / "target/release/credence"), "backtest", "--strategy", "examples/consumer-loan",
         "--flow", "application", "--input", str(csv_path), "--as-of", AS_OF,
         "--threads", str(threads), "--summary-json", os.devnull],
        cwd=REPO, check=True, capture_output=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def batch(strategy: credence.Strategy, data, threads: int) -> tuple:
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    answer = strategy.decide_batch("application", data, as_of=AS_OF, threads=threads)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    assert answer.num_rows == ROWS and answer.column("error").null_count == ROWS
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    table = rows()
    frame = table.to_pandas()
    strategy = credence.Strategy.load(REPO / "examples/consumer-loan")
    with tempfile.TemporaryDirectory() as scratch:
        csv_path = Path(scratch) / "rows.csv"
        pa_csv.write_csv(table, csv_path)
        print(f"machine: {CORES} cores; rows: {ROWS:,} ({csv_path.stat().st_size / 1e6:.0f} MB of CSV)")
        modes = {
            f"CLI back-test, {CORES} threads": lambda: cli(csv_path, CORES),
            f"decide_batch from Arrow, {CORES} threads": lambda: batch(strategy, table, CORES),
            f"decide_batch from pandas, {CORES} threads": lambda: batch(strategy, frame, CORES),
            "CLI back-test, 1 thread": lambda: cli(csv_path, 1),
            "decide_batch from Arrow, 1 thread": lambda: batch(strategy, table, 1),
        }
        results = {name: [] for name in modes}
        for round_ in range(ROUNDS):
            for name, run in modes.items():
                wall, cpu = run()
                results[name].append((wall, cpu))
                print(f"round {round_ + 1}: {name}: {wall:.2f} s wall, {cpu:.2f} s CPU, {ROWS / wall:,.0f} rows/s", flush=True)
    print()
    print("| run | rows/s (median, range) | wall s (median) | CPU µs per row (median) |")
    print("| --- | --- | --- | --- |")
    for name, runs in results.items():
        rates = [ROWS / wall for wall, _ in runs]
        print(f"| {name} | {statistics.median(rates):,.0f} ({min(rates):,.0f}–{max(rates):,.0f}) | "
              f"{statistics.median(w for w, _ in runs):.2f} | {statistics.median(c for _, c in runs) / ROWS * 1e6:.1f} |")


if __name__ == "__main__":
    main()
