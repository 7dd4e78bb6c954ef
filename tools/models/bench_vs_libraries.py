#!/usr/bin/env python3
"""Times XGBoost, LightGBM and Credence on the same 500-tree depth-6 models and the same rows, in one run.

    pip install -r tools/models/requirements.txt
    python3 tools/models/bench_vs_libraries.py        # writes target/bench-models/results.json

Single-row: one row per call, one thread; for XGBoost through `inplace_predict` (its fastest
Python path) and also its native per-row cost inside a one-thread batch, so the Python call
overhead is visible rather than hidden. Batch: 100,000 rows, one thread and every core.
Credence is timed by crates/credence-model/examples/bench_predict.rs on the same files.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "bench-models"
SEED = 20261129
SINGLE_ROWS = 2000
BATCH_ROWS = 100_000
THREADS = os.cpu_count() or 1

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import lending_club  # noqa: E402


def median_per_row_us(call, rows, rounds=7):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for row in rows:
            call(row)
        times.append((time.perf_counter() - start) * 1e6 / len(rows))
    return float(np.median(times))


def best_rows_per_s(call, batch, rounds=5):
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        call(batch)
        best = min(best, time.perf_counter() - start)
    return len(batch) / best


def credence(model_path, rows_path):
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "credence-model", "--example", "bench_predict"],
                   cwd=ROOT, check=True)
    binary = ROOT / "target" / "release" / "examples" / "bench_predict"
    result = subprocess.run([str(binary), str(model_path), str(rows_path), str(BATCH_ROWS)],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    x, y = lending_club()
    rng = np.random.default_rng(SEED)
    sample = x.iloc[rng.choice(len(x), size=SINGLE_ROWS, replace=False)].reset_index(drop=True)
    rows_path = OUT / "rows.csv"
    sample.to_csv(rows_path, index=False, na_rep="")
    matrix = sample.to_numpy(dtype=np.float32)
    single = [matrix[i:i + 1] for i in range(len(matrix))]
    batch = np.tile(matrix, (BATCH_ROWS // len(matrix) + 1, 1))[:BATCH_ROWS]

    booster = xgb.train({"objective": "binary:logistic", "max_depth": 6, "eta": 0.05, "seed": SEED,
                         "nthread": THREADS}, xgb.DMatrix(x, label=y, missing=np.nan), 500)
    xgb_path = OUT / "xgb_500_depth6.json"
    booster.save_model(xgb_path)
    booster.set_param({"nthread": 1})
    xgb_single = median_per_row_us(lambda r: booster.inplace_predict(r), single)
    xgb_batch_1 = best_rows_per_s(lambda b: booster.inplace_predict(b), batch)
    booster.set_param({"nthread": THREADS})
    xgb_batch_all = best_rows_per_s(lambda b: booster.inplace_predict(b), batch)

    lgb_model = lgb.train({"objective": "binary", "num_leaves": 63, "max_depth": 6, "learning_rate": 0.05,
                           "seed": SEED, "verbose": -1}, lgb.Dataset(x, label=y), 500)
    lgb_path = OUT / "lgb_500_depth6.txt"
    lgb_model.save_model(lgb_path)
    batch64 = batch.astype(np.float64)
    lgb_single = median_per_row_us(lambda r: lgb_model.predict(r.astype(np.float64), num_threads=1), single[:200], rounds=3)
    lgb_batch_1 = best_rows_per_s(lambda b: lgb_model.predict(b, num_threads=1), batch64, rounds=3)
    lgb_batch_all = best_rows_per_s(lambda b: lgb_model.predict(b, num_threads=THREADS), batch64, rounds=3)

    ours_xgb = credence(xgb_path, rows_path)
    ours_lgb = credence(lgb_path, rows_path)
    results = {
        "machine": {"cpus": THREADS, "python": sys.version.split()[0], "xgboost": xgb.__version__,
                    "lightgbm": lgb.__version__},
        "xgboost": {
            "single_row_us_inplace_predict": xgb_single,
            "native_per_row_us_1_thread_batch": 1e6 / xgb_batch_1,
            "batch_rows_per_s_1_thread": xgb_batch_1,
            "batch_rows_per_s_all_threads": xgb_batch_all,
            "credence": ours_xgb,
        },
        "lightgbm": {
            "single_row_us_predict": lgb_single,
            "native_per_row_us_1_thread_batch": 1e6 / lgb_batch_1,
            "batch_rows_per_s_1_thread": lgb_batch_1,
            "batch_rows_per_s_all_threads": lgb_batch_all,
            "credence": ours_lgb,
        },
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    for library, r in (("XGBoost", results["xgboost"]), ("LightGBM", results["lightgbm"])):
        ours = r["credence"]
        python_single = r.get("single_row_us_inplace_predict", r.get("single_row_us_predict"))
        print(f"== {library} 500 trees, depth 6 ==")
        print(f"single row, 1 thread:  {library} (Python call) {python_single:9.2f} µs   "
              f"{library} native in batch {r['native_per_row_us_1_thread_batch']:7.2f} µs   "
              f"Credence {ours['single_row_us']:7.2f} µs   "
              f"→ {python_single / ours['single_row_us']:.1f}× / {r['native_per_row_us_1_thread_batch'] / ours['single_row_us']:.2f}×")
        print(f"batch, 1 thread:       {library} {r['batch_rows_per_s_1_thread']:12,.0f} rows/s   "
              f"Credence {ours['batch_rows_per_s_1_thread']:12,.0f} rows/s   "
              f"→ {ours['batch_rows_per_s_1_thread'] / r['batch_rows_per_s_1_thread']:.2f}×")
        print(f"batch, {THREADS} threads:      {library} {r['batch_rows_per_s_all_threads']:12,.0f} rows/s   "
              f"Credence {ours['batch_rows_per_s_all_threads']:12,.0f} rows/s   "
              f"→ {ours['batch_rows_per_s_all_threads'] / r['batch_rows_per_s_all_threads']:.2f}×")


if __name__ == "__main__":
    main()
