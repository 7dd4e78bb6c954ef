#!/usr/bin/env python3
"""Reference values for Credence's monitoring metrics, computed with scikit-learn and numpy on the
data in data/ (pinned versions: tools/models/requirements.txt). The Rust tests
(crates/credence-backtest/tests/reference.rs) recompute each figure and compare; they need no
Python.

  * KS and AUC (with ties): sklearn.metrics.roc_curve / roc_auc_score; KS = max |TPR − FPR| over
    every threshold; Gini = 2·AUC − 1.
  * PSI: bins at the baseline's order statistics ⌊k·n/10⌋ (k = 1…9, duplicates removed), a value
    x in bin searchsorted(edges, x, side="right"), missing values in a bin of their own, bins
    empty in both samples left out, shares floored at 0.0001;
    PSI = Σ (current − baseline) · ln(current / baseline). CSI: one bin per category.
  * Vintage: the bad rate of each Lending Club issue month at its months on book (5, 4, 3).

    python3 tools/monitoring/reference_metrics.py
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.metrics import roc_auc_score, roc_curve

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
OUT = ROOT / "crates" / "credence-backtest" / "tests" / "fixtures" / "reference_metrics.json"
LC_BAD = {"In Grace Period", "Late (16-30 days)", "Late (31-120 days)", "Charged Off"}
MONTHS_ON_BOOK = {"Jan-2018": 5, "Feb-2018": 4, "Mar-2018": 3}
FLOOR = 0.0001


def discrimination(name, file, score, bad):
    keep = ~np.isnan(score)
    score, bad = score[keep], bad[keep]
    fpr, tpr, _ = roc_curve(bad, score, drop_intermediate=False)
    auc = float(roc_auc_score(bad, score))
    return {"name": name, "file": file, "rows": int(len(score)), "bads": int(bad.sum()),
            "auc": auc, "gini": 2 * auc - 1, "ks": float(np.max(np.abs(tpr - fpr)))}


def edges_of(baseline, bins=10):
    s = np.sort(baseline[~np.isnan(baseline)])
    n = len(s)
    return np.unique(s[(np.arange(1, bins) * n) // bins])


def counts(edges, x):
    index = np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, np.nan_to_num(x), side="right"))
    return np.bincount(index, minlength=len(edges) + 2)


def psi_of(b, c):
    keep = (b + c) > 0
    bs, cs = b[keep] / b.sum(), c[keep] / c.sum()
    bf, cf = np.maximum(bs, FLOOR), np.maximum(cs, FLOOR)
    return float(np.sum((cf - bf) * np.log(cf / bf)))


def psi_numeric(name, file, baseline, current):
    edges = edges_of(baseline)
    return {"name": name, "file": file, "edges": [float(e) for e in edges],
            "baseline_counts": [int(v) for v in counts(edges, baseline)],
            "current_counts": [int(v) for v in counts(edges, current)],
            "psi": psi_of(counts(edges, baseline), counts(edges, current))}


def psi_categorical(name, file, baseline, current):
    categories = sorted(set(baseline) | set(current))
    b = np.array([int((baseline == c).sum()) for c in categories])
    c = np.array([int((current == c).sum()) for c in categories])
    return {"name": name, "file": file, "categories": categories, "psi": psi_of(b, c)}


def main():
    credit = pd.read_csv(DATA / "credit_data.csv")
    german = pd.read_csv(DATA / "german_credit.csv")
    lc = pd.read_csv(DATA / "lending_club_2018q1.csv")
    credit_bad = (credit["Status"] == "bad").to_numpy().astype(int)
    german_bad = (german["creditability"] == "bad").to_numpy().astype(int)
    lc_bad = lc["loan_status"].isin(LC_BAD).to_numpy().astype(int)
    jan, mar = (lc["issue_month"] == "Jan-2018").to_numpy(), (lc["issue_month"] == "Mar-2018").to_numpy()
    income = credit["Income"].to_numpy(dtype=float)
    result = {
        "sklearn": sklearn.__version__,
        "numpy": np.__version__,
        "discrimination": [
            discrimination("credit_data income", "credit_data.csv", income, credit_bad),
            discrimination("credit_data seniority", "credit_data.csv", credit["Seniority"].to_numpy(dtype=float), credit_bad),
            discrimination("german duration", "german_credit.csv", german["duration_in_month"].to_numpy(dtype=float), german_bad),
            discrimination("lending club interest rate", "lending_club_2018q1.csv", lc["interest_rate"].to_numpy(dtype=float), lc_bad),
        ],
        "psi": [
            psi_numeric("lending club annual income, Jan vs Mar", "lending_club_2018q1.csv",
                        lc.loc[jan, "annual_income"].to_numpy(dtype=float), lc.loc[mar, "annual_income"].to_numpy(dtype=float)),
            psi_numeric("lending club interest rate, Jan vs Mar", "lending_club_2018q1.csv",
                        lc.loc[jan, "interest_rate"].to_numpy(dtype=float), lc.loc[mar, "interest_rate"].to_numpy(dtype=float)),
            psi_numeric("credit_data income, first 2000 vs the rest", "credit_data.csv", income[:2000], income[2000:]),
        ],
        "csi": [
            psi_categorical("lending club homeownership, Jan vs Mar", "lending_club_2018q1.csv",
                            lc.loc[jan, "homeownership"].to_numpy(), lc.loc[mar, "homeownership"].to_numpy()),
        ],
        "vintage": [
            {"cohort": month, "months_on_book": mob,
             "loans": int((lc["issue_month"] == month).sum()),
             "bad_rate": float(lc_bad[(lc["issue_month"] == month).to_numpy()].mean())}
            for month, mob in MONTHS_ON_BOOK.items()
        ],
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2)[:2000])


if __name__ == "__main__":
    main()
