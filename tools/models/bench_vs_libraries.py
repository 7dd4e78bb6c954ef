#!/usr/bin/env python3
"""Times XGBoost, LightGBM and Credence on the same models and rows, through each one's fastest entry point.

    pip install -r tools/models/requirements.txt
    python3 tools/models/bench_vs_libraries.py            # writes target/bench-models/results.json
    python3 tools/models/bench_vs_libraries.py --table    # its tables, as in docs/benchmarks.md

Four models, each trained by both libraries on Lending Club 2018Q1 (data/, OpenIntro CC BY-SA 3.0):

  numeric      500 trees of depth 6, numeric features (missing values as NaN)
  deep         200 leaf-wise trees of up to 255 leaves, no depth limit
  categorical  300 trees over numeric features and five categorical ones (state, purpose, ...)
  multiclass   200 iterations × 4 classes (grades A, B, C, D-or-worse)

The libraries are timed by tools/models/bench_libraries.c through their C APIs (single row:
XGBoosterPredictFromDense on one row, LGBM_BoosterPredictForMatSingleRowFast; batch:
XGBoosterPredictFromDense, LGBM_BoosterPredictForMat), Credence by
crates/credence-model/examples/bench_predict.rs (Model::predict per row). Every measurement runs
three times, interleaved (library, Credence, library, ...), and the table reports each run.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "target" / "bench-models"
DATA = ROOT / "data"
SEED = 20261129
SINGLE_ROWS = 2000
BATCH_ROWS = 100_000
RUNS = 3
THREADS = os.cpu_count() or 1

sys.path.insert(0, str(Path(__file__).parent))
from train_fixtures import lending_club  # noqa: E402

CATEGORICAL = ["state", "homeownership", "verified_income", "loan_purpose", "application_type"]


def datasets():
    x, y = lending_club()
    raw = pd.read_csv(DATA / "lending_club_2018q1.csv")
    grades = raw["grade"].map({"A": 0, "B": 1, "C": 2}).fillna(3).astype(int).to_numpy()
    codes = x.copy()
    for c in CATEGORICAL:
        codes[c] = pd.Categorical(raw[c]).codes.astype("float64")
    return x, y, codes, grades


def train(name, x, y):
    """Both libraries' model for one benchmark model; paths of the saved files."""
    categorical = CATEGORICAL if name == "categorical" else []
    if name == "numeric":
        xp, xr = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.05}, 500
        lp, lr = {"objective": "binary", "num_leaves": 63, "max_depth": 6, "learning_rate": 0.05}, 500
    elif name == "deep":
        xp = {"objective": "binary:logistic", "grow_policy": "lossguide", "max_leaves": 255, "max_depth": 0,
              "eta": 0.05, "min_child_weight": 0.1}
        xr = 200
        lp, lr = {"objective": "binary", "num_leaves": 255, "learning_rate": 0.05, "min_data_in_leaf": 5}, 200
    elif name == "categorical":
        xp = {"objective": "binary:logistic", "max_depth": 6, "eta": 0.05, "max_cat_to_onehot": 1}
        xr = 300
        lp = {"objective": "binary", "num_leaves": 31, "learning_rate": 0.05, "min_data_per_group": 20,
              "cat_smooth": 10}
        lr = 300
    else:
        xp, xr = {"objective": "multi:softprob", "num_class": 4, "max_depth": 6, "eta": 0.1}, 200
        lp, lr = {"objective": "multiclass", "num_class": 4, "num_leaves": 31, "learning_rate": 0.1}, 200
    types = ["c" if c in categorical else "q" for c in x.columns]
    dtrain = xgb.DMatrix(x.to_numpy(), label=y, missing=np.nan, feature_names=list(x.columns),
                         feature_types=types, enable_categorical=bool(categorical))
    booster = xgb.train({"seed": SEED, "nthread": THREADS, "tree_method": "hist", **xp}, dtrain, xr)
    xgb_path = OUT / f"xgb_{name}.json"
    booster.save_model(xgb_path)
    dataset = lgb.Dataset(x, label=y, categorical_feature=categorical or "auto")
    model = lgb.train({"seed": SEED, "verbose": -1, "num_threads": THREADS, **lp}, dataset, lr)
    lgb_path = OUT / f"lgb_{name}.txt"
    model.save_model(lgb_path)
    return xgb_path, lgb_path


def run(command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    harness = OUT / "bench_libraries"
    libs = [Path(xgb.__file__).parent / "lib", Path(lgb.__file__).parent / "lib"]
    subprocess.run(["cc", "-O2", "-o", str(harness), str(Path(__file__).parent / "bench_libraries.c")]
                   + [f"-L{d}" for d in libs] + [f"-Wl,-rpath,{d}" for d in libs]
                   + ["-lxgboost", "-l_lightgbm", "-lm"], check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "credence-model", "--example", "bench_predict"],
                   cwd=ROOT, check=True)
    credence = ROOT / "target" / "release" / "examples" / "bench_predict"

    x, y, codes, grades = datasets()
    rng = np.random.default_rng(SEED)
    sample_index = rng.choice(len(x), size=SINGLE_ROWS, replace=False)
    results = {"machine": {"cpus": THREADS, "xgboost": xgb.__version__, "lightgbm": lgb.__version__,
                           "single_rows": SINGLE_ROWS, "batch_rows": BATCH_ROWS}, "models": {}}
    for name in ["numeric", "deep", "categorical", "multiclass"]:
        features = codes if name == "categorical" else x
        labels = grades if name == "multiclass" else y
        xgb_path, lgb_path = train(name, features, labels)
        sample = features.iloc[sample_index].reset_index(drop=True)
        rows_csv, rows_bin = OUT / f"rows_{name}.csv", OUT / f"rows_{name}.f64"
        sample.to_csv(rows_csv, index=False, na_rep="")
        sample.to_numpy(dtype="<f8").tofile(rows_bin)
        entry = {}
        for library, path in (("xgboost", xgb_path), ("lightgbm", lgb_path)):
            runs = []
            for _ in range(RUNS):
                theirs = run([str(harness), library, str(path), str(rows_bin), str(sample.shape[1]),
                              str(BATCH_ROWS), str(THREADS)])
                ours = run([str(credence), str(path), str(rows_csv), str(BATCH_ROWS)])
                runs.append({"library": theirs, "credence": ours})
            entry[library] = runs
            print(f"{name:12} {library:9} " + "  ".join(
                f"1-row {r['library']['single_row_us']:.2f}/{r['credence']['single_row_us']:.2f} µs, "
                f"1-thread {r['credence']['batch_rows_per_s_1_thread'] / r['library']['batch_rows_per_s_1_thread']:.2f}×"
                for r in runs), flush=True)
        results["models"][name] = entry
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")


def table():
    """The markdown tables of docs/benchmarks.md from results.json: each run's numbers, library
    then Credence, and Credence's speed-up."""
    results = json.loads((OUT / "results.json").read_text())
    rows = [
        ("single row, 1 thread (µs)", "single_row_us", False),
        ("batch, 1 thread (rows/s)", "batch_rows_per_s_1_thread", True),
        (f"batch, {results['machine']['cpus']} threads (rows/s)", "batch_rows_per_s_all_threads", True),
        ("batch, 1 thread: CPU µs per row", "batch_cpu_us_per_row_1_thread", False),
    ]
    for name, entry in results["models"].items():
        for library, runs in entry.items():
            label = "XGBoost" if library == "xgboost" else "LightGBM"
            path = runs[0]["credence"]["scoring_path"]
            print(f"\n**{name}, {label}** (Credence path: `{path}`)\n")
            print(f"| | run 1: {label} / Credence | run 2 | run 3 | speed-up (runs) |")
            print("| --- | --- | --- | --- | --- |")
            for title, key, higher_is_better in rows:
                cells, ratios = [], []
                for run in runs:
                    theirs, ours = run["library"][key], run["credence"][key]
                    fmt = (lambda v: f"{v:,.0f}") if higher_is_better else (lambda v: f"{v:.2f}")
                    cells.append(f"{fmt(theirs)} / {fmt(ours)}")
                    ratios.append(ours / theirs if higher_is_better else theirs / ours)
                print(f"| {title} | " + " | ".join(cells)
                      + f" | {min(ratios):.1f}–{max(ratios):.1f}× |")


if __name__ == "__main__":
    if sys.argv[1:] == ["--table"]:
        table()
    else:
        main()
