#!/usr/bin/env python3
"""Trains the example strategy's behaviour model on the Lending Club 2018Q1 loans.

The model scores an existing customer's risk of going delinquent from how they use credit. It is
an XGBoost binary:logistic model with monotone constraints (more utilisation, more delinquency,
more inquiries never lower the risk; paying more of what is due never raises it), so every
explanation reads the way a customer would expect.

Features (Lending Club field → model feature → the account feature the strategy maps to it):

  total_credit_utilized / total_credit_limit   → revolving_utilisation   ← utilisation
  paid_total / (installment × payments due)     → payment_ratio           ← payment_to_due_3m
  delinq_2y                                     → delinquencies_2y        ← missed_instalments_12m
  inquiries_last_12m                            → inquiries_12m           ← bureau_inquiries_90d × 4

Accounts currently delinquent elsewhere (current_accounts_delinq, num_accounts_30d_past_due) are
left out: one loan in 10,000 has any, so the model could learn nothing from them; the strategy's
rules handle delinquency elsewhere instead (drawdown interception, early warning).

Payments due: the file is a snapshot taken when January loans had made about 5 payments,
February 4 and March 3 (the median of paid_total / installment per issue month), so those are
the payments due. Target: bad = In Grace Period, Late (16-30 days), Late (31-120 days) or
Charged Off at the snapshot; good = Current or Fully Paid.

Caveat, stated in the fit report: delinquency and the payment ratio are observed at the same
snapshot, so payment_ratio separates goods from bads more sharply here than a true behaviour
model (features before the outcome window) would. The example shows the mechanics; a lender
retrains on its own account history.

    pip install -r tools/models/requirements.txt
    python3 tools/models/train_behaviour_model.py

Writes examples/consumer-loan/models/behaviour.json and behaviour-fit-report.json.
"""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data" / "lending_club_2018q1.csv"
OUT = ROOT / "examples" / "consumer-loan" / "models"
SEED = 20261129

BAD = {"In Grace Period", "Late (16-30 days)", "Late (31-120 days)", "Charged Off"}
PAYMENTS_DUE = {"Jan-2018": 5, "Feb-2018": 4, "Mar-2018": 3}
FEATURES = [
    ("revolving_utilisation", 1),
    ("payment_ratio", -1),
    ("delinquencies_2y", 1),
    ("inquiries_12m", 1),
]


def features(loans: pd.DataFrame) -> pd.DataFrame:
    limit = loans["total_credit_limit"].replace(0, np.nan)
    out = pd.DataFrame(index=loans.index)
    out["revolving_utilisation"] = (loans["total_credit_utilized"] / limit).clip(0, 2)
    due = loans["installment"] * loans["issue_month"].map(PAYMENTS_DUE)
    out["payment_ratio"] = (loans["paid_total"] / due).clip(0, 1.5)
    out["delinquencies_2y"] = loans["delinq_2y"].clip(0, 6).astype(float)
    out["inquiries_12m"] = loans["inquiries_last_12m"].clip(0, 20).astype(float)
    return out


def main() -> None:
    loans = pd.read_csv(DATA)
    x = features(loans)
    y = loans["loan_status"].isin(BAD).astype(int).to_numpy()
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.3, random_state=SEED, stratify=y
    )
    model = xgb.XGBClassifier(
        n_estimators=80,
        max_depth=3,
        learning_rate=0.1,
        min_child_weight=5,
        subsample=0.9,
        colsample_bytree=1.0,
        monotone_constraints="(" + ",".join(str(sign) for _, sign in FEATURES) + ")",
        objective="binary:logistic",
        random_state=SEED,
        n_jobs=1,
        tree_method="hist",
    )
    model.fit(x_train, y_train)
    p_test = model.predict_proba(x_test)[:, 1]
    fpr, tpr, _ = roc_curve(y_test, p_test)
    OUT.mkdir(parents=True, exist_ok=True)
    model.get_booster().save_model(str(OUT / "behaviour.json"))
    report = {
        "data": "data/lending_club_2018q1.csv (OpenIntro loans_full_schema, CC BY-SA 3.0)",
        "rows": int(len(loans)),
        "bad_rate": round(float(y.mean()), 4),
        "holdout_rows": int(len(y_test)),
        "holdout_auc": round(float(roc_auc_score(y_test, p_test)), 4),
        "holdout_ks": round(float(np.max(tpr - fpr)), 4),
        "features": [name for name, _ in FEATURES],
        "monotone_constraints": {name: sign for name, sign in FEATURES},
        "xgboost": xgb.__version__,
        "seed": SEED,
        "caveat": "payment_ratio and the target are observed at the same snapshot; separation is optimistic",
    }
    (OUT / "behaviour-fit-report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
