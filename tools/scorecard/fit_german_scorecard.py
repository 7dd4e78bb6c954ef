#!/usr/bin/env python3
"""Fits the example application scorecard on the German Credit data.

Binning -> weights of evidence -> logistic regression -> points, the classic way (the fit
itself is scorecard_fit.py, shared with fit_card_scorecard.py):

* numeric characteristics are binned by a shallow decision tree on the training split
  (at most 4 bins, each at least 8% of applicants), cut points rounded up to whole units;
* categories with fewer than 30 applicants are pooled into one bin;
* WoE = ln(share of goods / share of bads) with a 0.5 smoothing count;
* a logistic regression of "bad" on the WoE values, without penalty;
* points = -factor * coefficient * WoE, rounded; base points = offset - factor * intercept,
  where factor = PDO / ln 2 and offset = score - factor * ln(odds) for the declared calibration.

Sex / marital status and foreign-worker status are left out on purpose: lenders may not use
them (equal-credit rules), however predictive they are.

Usage (from the repository root):
    pip install -r tools/scorecard/requirements.txt
    python3 tools/scorecard/fit_german_scorecard.py

Writes examples/consumer-loan/scorecards/application.yaml and
examples/consumer-loan/scorecards/fit-report.json. Deterministic: the split and the tree use
fixed seeds, so a re-run writes the same files.
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
DATA = ROOT / "data" / "german_credit.csv"
OUT_DIR = ROOT / "examples" / "consumer-loan" / "scorecards"

CALIBRATION = {"score": 600, "odds": 30, "pdo": 20}
SEED = 20261129

# Source column -> (input field the strategy reads, reason code, {source value: input code})
CATEGORICAL = {
    "status_of_existing_checking_account": ("checking_account", "SC_CHECKING", {
        "no checking account": "no_account",
        "... < 0 DM": "negative",
        "0 <= ... < 200 DM": "low",
        "... >= 200 DM / salary assignments for at least 1 year": "high",
    }),
    "credit_history": ("credit_history", "SC_HISTORY", {
        "critical account/ other credits existing (not at this bank)": "critical",
        "delay in paying off in the past": "delayed",
        "existing credits paid back duly till now": "paying_duly",
        "all credits at this bank paid back duly": "all_paid_here",
        "no credits taken/ all credits paid back duly": "none_or_all_paid",
    }),
    "purpose": ("purpose", "SC_PURPOSE", {
        "radio/television": "electronics",
        "car (new)": "car_new",
        "furniture/equipment": "furniture",
        "car (used)": "car_used",
        "business": "business",
        "education": "education",
        "repairs": "repairs",
        "domestic appliances": "appliances",
        "others": "other",
        "retraining": "retraining",
    }),
    "savings_account_and_bonds": ("savings", "SC_SAVINGS", {
        "... < 100 DM": "under_100",
        "unknown/ no savings account": "none",
        "100 <= ... < 500 DM": "100_to_500",
        "500 <= ... < 1000 DM": "500_to_1000",
        "... >= 1000 DM": "1000_plus",
    }),
    "present_employment_since": ("employment_length", "SC_EMPLOYMENT", {
        "unemployed": "unemployed",
        "... < 1 year": "under_1y",
        "1 <= ... < 4 years": "1_to_4y",
        "4 <= ... < 7 years": "4_to_7y",
        "... >= 7 years": "7y_plus",
    }),
    "property": ("property", "SC_PROPERTY", {
        "real estate": "real_estate",
        "building society savings agreement/ life insurance": "savings_or_insurance",
        "car or other, not in attribute Savings account/bonds": "car_or_other",
        "unknown / no property": "none",
    }),
    "other_installment_plans": ("other_instalment_plans", "SC_OTHER_PLANS", {
        "none": "none", "bank": "bank", "stores": "stores",
    }),
    "housing": ("housing", "SC_HOUSING", {"own": "own", "rent": "rent", "for free": "free"}),
}
NUMERIC = {
    "duration_in_month": ("term_months", "SC_TERM"),
    "credit_amount": ("requested_amount", "SC_AMOUNT"),
    "age_in_years": ("age", "SC_AGE"),
}
RARE_CATEGORY_COUNT = 30


def numeric_bins(values, bad):
    tree = DecisionTreeClassifier(max_leaf_nodes=4, min_samples_leaf=0.08, random_state=SEED)
    tree.fit(values.to_numpy().reshape(-1, 1), bad)
    thresholds = sorted({math.floor(t) + 1 for t, f in zip(tree.tree_.threshold, tree.tree_.feature) if f == 0})
    edges = [None] + thresholds + [None]
    return [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]


def main():
    data = pd.read_csv(DATA)
    bad = (data["creditability"] == "bad").astype(int).to_numpy()
    train_idx, test_idx = train_test_split(
        np.arange(len(data)), test_size=0.3, stratify=bad, random_state=SEED)

    characteristics = []  # (name, field, reason, bins[(kind, payload)], bin index per row)
    for column, (field, reason, mapping) in CATEGORICAL.items():
        codes = data[column].map(mapping)
        assert codes.notna().all(), column
        counts = codes.iloc[train_idx].value_counts()
        rare = sorted(c for c in mapping.values() if counts.get(c, 0) < RARE_CATEGORY_COUNT)
        groups = [[c] for c in mapping.values() if c not in rare]
        if rare:
            groups.append(rare)
        index_of = {c: i for i, g in enumerate(groups) for c in g}
        characteristics.append((field, field, reason, [("values", g) for g in groups], codes.map(index_of)))
    for column, (field, reason) in NUMERIC.items():
        bins = numeric_bins(data[column].iloc[train_idx], bad[train_idx])
        characteristics.append((field, field, reason, [("range", b) for b in bins], assign_numeric(data[column], bins)))

    fitted = scorecard_fit.fit(characteristics, bad, train_idx, test_idx, CALIBRATION)
    score, auc, ks = fitted["score"], fitted["auc"], fitted["ks"]

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    scorecard_fit.write_yaml(OUT_DIR / "application.yaml", [
        "Application scorecard fitted on the German Credit data (UCI Statlog, CC BY 4.0).",
        "Generated by tools/scorecard/fit_german_scorecard.py — do not edit by hand; re-run it.",
        f"Hold-out ({len(test_idx)} applications): KS {ks:.3f}, AUC {auc:.3f}.",
    ], fitted, CALIBRATION)

    report = {
        "data": "data/german_credit.csv",
        "rows": len(data),
        "train_rows": len(train_idx),
        "holdout_rows": len(test_idx),
        "seed": SEED,
        "calibration": CALIBRATION,
        "base_points": fitted["base_points"],
        "intercept": round(fitted["intercept"], 6),
        "coefficients": fitted["coefficients"],
        "information_value": fitted["information_value"],
        "holdout": {"ks": round(ks, 4), "auc": round(auc, 4), "gini": round(2 * auc - 1, 4)},
        "train": {"auc": round(fitted["train_auc"], 4)},
        "score_range": [int(score.min()), int(score.max())],
    }
    (OUT_DIR / "fit-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["holdout"]), "score range", report["score_range"])


if __name__ == "__main__":
    main()
