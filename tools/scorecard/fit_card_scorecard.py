#!/usr/bin/env python3
"""Fits the credit-card line example's application scorecard on the "Credit Scoring" data.

The same classic method as fit_german_scorecard.py (the shared part in scorecard_fit.py) —
binning, weights of evidence, an unpenalised logistic regression, points — on
data/credit_data.csv (modeldata, MIT), with the
characteristics a revolving line is underwritten on (no loan amount, price or term: a card has
none at application):

* employment_years    <- Seniority (years with the current employer)
* housing             <- Home (owner, rent, parents, private, other; "ignore" pooled as other)
* age                 <- Age
* public_records      <- Records (yes/no -> some/none)
* employment_type     <- Job (fixed, freelance, partime -> part_time, others -> other)
* monthly_income      <- Income x 10   (the data's monthly figures, brought to euros)
* disposable_share    <- (Income - Expenses) / Income
* assets              <- Assets
* debt                <- Debt

Marital status is left out on purpose (equal-credit rules). Rows missing a used field (mostly
Income, 381 rows) are left out of the fit; the strategy requires every field.

Usage (from the repository root):
    pip install -r tools/scorecard/requirements.txt
    python3 tools/scorecard/fit_card_scorecard.py

Writes examples/card-line/scorecards/application.yaml and
examples/card-line/scorecards/fit-report.json. Deterministic (fixed seeds).
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

import scorecard_fit
from scorecard_fit import assign_numeric

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "credit_data.csv"
OUT_DIR = ROOT / "examples" / "card-line" / "scorecards"

CALIBRATION = {"score": 600, "odds": 20, "pdo": 20}
SEED = 20261206
INCOME_TO_EUR = 10

CATEGORICAL = {
    "housing": ("SC_HOUSING", {"owner": "owner", "rent": "rent", "parents": "parents",
                               "priv": "private", "other": "other", "ignore": "other"}),
    "public_records": ("SC_RECORDS", {"no": "none", "yes": "some"}),
    "employment_type": ("SC_EMPLOYMENT_TYPE", {"fixed": "fixed", "freelance": "freelance",
                                               "partime": "part_time", "others": "other"}),
}
SOURCE = {"housing": "Home", "public_records": "Records", "employment_type": "Job"}
NUMERIC = {
    "employment_years": "SC_EMPLOYMENT_YEARS",
    "age": "SC_AGE",
    "monthly_income": "SC_INCOME",
    "disposable_share": "SC_DISPOSABLE",
    "assets": "SC_ASSETS",
    "debt": "SC_DEBT",
}
# Numeric cut points are rounded to these steps (readable bins an analyst can defend).
ROUND_TO = {"employment_years": 1, "age": 1, "monthly_income": 100, "disposable_share": 0.05,
            "assets": 500, "debt": 250}


def numeric_bins(values, bad, step):
    tree = DecisionTreeClassifier(max_leaf_nodes=4, min_samples_leaf=0.08, random_state=SEED)
    tree.fit(values.to_numpy().reshape(-1, 1), bad)
    cuts = set()
    for t, f in zip(tree.tree_.threshold, tree.tree_.feature):
        if f == 0:
            cut = math.ceil(t / step) * step
            cuts.add(round(cut, 2) if step < 1 else int(cut))
    thresholds = sorted(cuts)
    edges = [None] + thresholds + [None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def main():
    raw = pd.read_csv(DATA)
    used = ["Seniority", "Home", "Age", "Records", "Job", "Income", "Expenses", "Assets", "Debt"]
    data = raw.dropna(subset=used).reset_index(drop=True)
    data = data[data["Income"] > 0].reset_index(drop=True)
    fields = pd.DataFrame({
        "employment_years": data["Seniority"],
        "age": data["Age"],
        "monthly_income": data["Income"] * INCOME_TO_EUR,
        "disposable_share": ((data["Income"] - data["Expenses"]) / data["Income"]).round(4),
        "assets": data["Assets"],
        "debt": data["Debt"],
    })
    bad = (data["Status"] == "bad").astype(int).to_numpy()
    train_idx, test_idx = train_test_split(
        np.arange(len(data)), test_size=0.3, stratify=bad, random_state=SEED)

    characteristics = []
    for field, (reason, mapping) in CATEGORICAL.items():
        codes = data[SOURCE[field]].map(mapping)
        assert codes.notna().all(), field
        groups = []
        for code in dict.fromkeys(mapping.values()):
            groups.append([code])
        index_of = {c: i for i, g in enumerate(groups) for c in g}
        characteristics.append((field, field, reason, [("values", g) for g in groups], codes.map(index_of)))
    for field, reason in NUMERIC.items():
        bins = numeric_bins(fields[field].iloc[train_idx], bad[train_idx], ROUND_TO[field])
        characteristics.append((field, field, reason, [("range", b) for b in bins], assign_numeric(fields[field], bins)))

    fitted = scorecard_fit.fit(characteristics, bad, train_idx, test_idx, CALIBRATION)
    score, auc, ks = fitted["score"], fitted["auc"], fitted["ks"]

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    scorecard_fit.write_yaml(OUT_DIR / "application.yaml", [
        "Card-line application scorecard fitted on the Credit Scoring data (modeldata, MIT).",
        "Generated by tools/scorecard/fit_card_scorecard.py — do not edit by hand; re-run it.",
        f"Hold-out ({len(test_idx)} applications): KS {ks:.3f}, AUC {auc:.3f}.",
    ], fitted, CALIBRATION)

    deciles = np.percentile(score, [10, 25, 50, 75, 90]).round().astype(int).tolist()
    report = {
        "data": "data/credit_data.csv",
        "rows": len(raw),
        "rows_used": len(data),
        "train_rows": len(train_idx),
        "holdout_rows": len(test_idx),
        "bad_rate": round(float(bad.mean()), 4),
        "seed": SEED,
        "calibration": CALIBRATION,
        "base_points": fitted["base_points"],
        "intercept": round(fitted["intercept"], 6),
        "coefficients": fitted["coefficients"],
        "information_value": fitted["information_value"],
        "holdout": {"ks": round(ks, 4), "auc": round(auc, 4), "gini": round(2 * auc - 1, 4)},
        "train": {"auc": round(fitted["train_auc"], 4)},
        "score_range": [int(score.min()), int(score.max())],
        "score_percentiles_10_25_50_75_90": deciles,
        "bad_rate_by_score_band": {
            band: round(float(bad[(score >= lo) & (score < hi)].mean()), 4)
            for band, lo, hi in [("< 560", -1e9, 560), ("560–600", 560, 600), ("600–640", 600, 640), (">= 640", 640, 1e9)]
            if ((score >= lo) & (score < hi)).any()
        },
    }
    (OUT_DIR / "fit-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["holdout"]), "score range", report["score_range"], "percentiles", deciles,
          report["bad_rate_by_score_band"])


if __name__ == "__main__":
    main()
