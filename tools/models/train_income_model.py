#!/usr/bin/env python3
"""Trains the example strategy's income estimate on the Lending Club 2018Q1 loans.

Declared income is unchecked and self-reported; the income provider answers for only part of the
applicants. The estimate gives a third, independent figure from what the liabilities provider
reports about the applicant's credit: lenders extend more credit, and people carry more debt and
mortgages, the more they earn. It is an XGBoost median regression (`reg:absoluteerror`: incomes
are heavy-tailed, and a median is not dragged up by the few very high earners) of monthly gross
income, with monotone constraints so a larger credit limit, higher payments or more mortgages
never lower the estimate.

Features (Lending Club field → model feature → the liabilities provider's field):

  total_credit_limit                     → revolving_limit      ← /liabilities/revolving_limit
  debt_to_income × annual_income / 1200  → monthly_payments     ← /liabilities/monthly_payments_total
  num_mort_accounts                      → mortgage_accounts    ← /liabilities/mortgage_accounts
  open_credit_lines                      → open_accounts        ← /liabilities/open_accounts

The fit report gives the holdout's median absolute percentage error and the quantiles of
actual ÷ estimate. The strategy's inconsistency threshold comes from there: a declared income
above the estimate × the 95th percentile of that ratio is more than 19 in 20 real applicants
would show, and goes to income verification.

    pip install -r tools/models/requirements.txt
    python3 tools/models/train_income_model.py

Writes examples/consumer-loan/models/income.json and income-fit-report.json.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "lending_club_2018q1.csv"
OUT = ROOT / "examples" / "consumer-loan" / "models"
SEED = 20261129

FEATURES = [
    ("revolving_limit", 1),
    ("monthly_payments", 1),
    ("mortgage_accounts", 1),
    ("open_accounts", 0),
]


def features(loans: pd.DataFrame) -> pd.DataFrame:
    monthly_income = loans["annual_income"] / 12.0
    out = pd.DataFrame(index=loans.index)
    out["revolving_limit"] = loans["total_credit_limit"].astype(float)
    out["monthly_payments"] = (loans["debt_to_income"] / 100.0 * monthly_income).round(2)
    out["mortgage_accounts"] = loans["num_mort_accounts"].astype(float)
    out["open_accounts"] = loans["open_credit_lines"].astype(float)
    return out


def main() -> None:
    loans = pd.read_csv(DATA)
    # Joint applications report the pair's income; a single applicant's estimate learns from singles.
    loans = loans[(loans["application_type"] == "individual") & (loans["annual_income"] > 0)]
    loans = loans.reset_index(drop=True)
    x = features(loans)
    y = (loans["annual_income"] / 12.0).to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=SEED)
    model = xgb.XGBRegressor(
        n_estimators=120,
        max_depth=3,
        learning_rate=0.1,
        min_child_weight=20,
        subsample=0.9,
        monotone_constraints="(" + ",".join(str(sign) for _, sign in FEATURES) + ")",
        objective="reg:absoluteerror",
        random_state=SEED,
        n_jobs=1,
        tree_method="hist",
    )
    model.fit(x_train, y_train)
    estimate = model.predict(x_test)
    ratio = y_test / np.maximum(estimate, 1.0)
    ape = np.abs(y_test - estimate) / y_test
    OUT.mkdir(parents=True, exist_ok=True)
    model.get_booster().save_model(str(OUT / "income.json"))
    quantiles = {f"q{q}": round(float(np.quantile(ratio, q / 100)), 3) for q in (5, 10, 25, 50, 75, 90, 95)}
    report = {
        "data": "data/lending_club_2018q1.csv (OpenIntro loans_full_schema, CC BY-SA 3.0), individual applications",
        "rows": int(len(loans)),
        "holdout_rows": int(len(y_test)),
        "target": "monthly gross income (annual_income / 12)",
        "objective": "reg:absoluteerror",
        "holdout_median_absolute_percentage_error": round(float(np.median(ape)), 4),
        "holdout_median_income": round(float(np.median(y_test)), 2),
        "holdout_median_estimate": round(float(np.median(estimate)), 2),
        "holdout_actual_over_estimate": quantiles,
        "features": [name for name, _ in FEATURES],
        "monotone_constraints": {name: sign for name, sign in FEATURES},
        "xgboost": xgb.__version__,
        "seed": SEED,
    }
    (OUT / "income-fit-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
