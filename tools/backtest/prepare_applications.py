#!/usr/bin/env python3
"""Turns the German Credit and Lending Club data into application rows the example strategy's
`application` flow takes, with their outcomes, for back-tests (`credence backtest`).

Every mapping is deterministic (no randomness) and written down here, because a back-test is only
as honest as the way history was fed to it.

German Credit (1,000 applications, outcome `creditability`):
  * the scorecard characteristics map one to one (the scorecard was fitted on these data:
    tools/scorecard/fit_german_scorecard.py);
  * amounts are 1970s Deutsche Mark: they are brought to today's euros with one price factor
    (DM → EUR at 1.95583, German consumer prices about ×4 since then: factor 2);
    requested_amount = 2 × credit_amount, term_months = duration_in_month; birth date from
    age_in_years as of 2026-11-29;
  * the data hold no income, only the instalment's share of disposable income in four classes
    (1: ≥ 35%, 2: 25–35%, 3: 20–25%, 4: < 20%, taken at 40%, 30%, 22.5% and 15%). Declared living
    costs are 900 + 300 per dependant, and declared monthly income = living costs + disposable
    income, where disposable income = the monthly instalment (amount ÷ term) ÷ its share;
    existing debt payments 150 per other credit at this bank;
  * no bureau report: accounts past due 0, open accounts = existing credits at this bank;
  * outcome: bad = creditability is "bad"; exposure = the requested amount.

Lending Club 2018Q1 (10,000 loans, outcome `loan_status` at the snapshot):
  * declared income = annual_income ÷ 12; verified when `verified_income` says so;
    existing debt payments = debt_to_income × income; requested_amount = loan_amount, term;
  * employment length, housing and purpose map to the flow's categories; property: real estate
    for MORTGAGE/OWN; other instalment plans: "bank" when installment accounts are open; credit
    history from delinquencies (critical after a 90-day lateness, delayed after any in 2 years);
    checking account and savings are not in the data: "no_account" and "none";
  * the liabilities and bureau answers the providers would have given are included as
    `liabilities.*` and `bureau_report.*` columns (the same derivation as
    `credence sim-providers`), so a back-test uses them as recorded provider data;
  * birth dates are not in the data: 25 + (row × 7 mod 40) years before 2026-11-29;
  * outcome: bad = In Grace Period, Late or Charged Off; exposure = loan_amount; `grade` and
    `issue_month` kept for breakdowns, `months_on_book` at the snapshot for vintages.

    python3 tools/backtest/prepare_applications.py

Writes data/backtest/german_credit_applications.csv and data/backtest/lending_club_applications.csv.
"""
import csv
import hashlib
import math
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "data" / "backtest"
AS_OF_YEAR = 2026

GERMAN = {
    "status_of_existing_checking_account": ("checking_account", {
        "no checking account": "no_account", "... < 0 DM": "negative", "0 <= ... < 200 DM": "low",
        "... >= 200 DM / salary assignments for at least 1 year": "high"}),
    "credit_history": ("credit_history", {
        "critical account/ other credits existing (not at this bank)": "critical",
        "delay in paying off in the past": "delayed",
        "existing credits paid back duly till now": "paying_duly",
        "all credits at this bank paid back duly": "all_paid_here",
        "no credits taken/ all credits paid back duly": "none_or_all_paid"}),
    "purpose": ("purpose", {
        "radio/television": "electronics", "car (new)": "car_new", "furniture/equipment": "furniture",
        "car (used)": "car_used", "business": "business", "education": "education", "repairs": "repairs",
        "domestic appliances": "appliances", "others": "other", "retraining": "retraining"}),
    "savings_account_and_bonds": ("savings", {
        "... < 100 DM": "under_100", "unknown/ no savings account": "none", "100 <= ... < 500 DM": "100_to_500",
        "500 <= ... < 1000 DM": "500_to_1000", "... >= 1000 DM": "1000_plus"}),
    "present_employment_since": ("employment_length", {
        "unemployed": "unemployed", "... < 1 year": "under_1y", "1 <= ... < 4 years": "1_to_4y",
        "4 <= ... < 7 years": "4_to_7y", "... >= 7 years": "7y_plus"}),
    "property": ("property", {
        "real estate": "real_estate", "building society savings agreement/ life insurance": "savings_or_insurance",
        "car or other, not in attribute Savings account/bonds": "car_or_other", "unknown / no property": "none"}),
    "other_installment_plans": ("other_instalment_plans", {"none": "none", "bank": "bank", "stores": "stores"}),
    "housing": ("housing", {"own": "own", "rent": "rent", "for free": "free"}),
}
PRICE_FACTOR = 2
INSTALMENT_SHARE = {1: 0.40, 2: 0.30, 3: 0.225, 4: 0.15}
# The file is a snapshot taken when January loans had made about 5 payments, February 4 and
# March 3 (as tools/models/train_behaviour_model.py establishes).
MONTHS_ON_BOOK = {"Jan-2018": 5, "Feb-2018": 4, "Mar-2018": 3}
LC_BAD = {"In Grace Period", "Late (16-30 days)", "Late (31-120 days)", "Charged Off"}
LC_PURPOSE = {
    "debt_consolidation": "other", "credit_card": "other", "other": "other", "home_improvement": "repairs",
    "major_purchase": "appliances", "medical": "other", "house": "repairs", "car": "car_used",
    "small_business": "business", "moving": "furniture", "vacation": "other", "renewable_energy": "repairs",
}


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def birth_date(age, row):
    return f"{AS_OF_YEAR - age - 1}-{1 + row % 12:02d}-{1 + row % 28:02d}"


def number(x, places=2):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    value = round(float(x), places)
    return str(int(value)) if value == int(value) else str(value)


def german():
    data = pd.read_csv(ROOT / "data" / "german_credit.csv")
    rows = []
    for i, r in data.iterrows():
        amount = PRICE_FACTOR * r["credit_amount"]
        dependants = int(r["number_of_people_being_liable_to_provide_maintenance_for"])
        living = 900 + 300 * dependants
        instalment = amount / r["duration_in_month"]
        share = INSTALMENT_SHARE[int(r["installment_rate_in_percentage_of_disposable_income"])]
        income = living + instalment / share
        row = {
            "application_id": f"GC-{i + 1:04d}", "customer_id": f"GC-C-{i + 1:04d}",
            "national_id_sha256": sha(f"GC-{i + 1}"), "phone": f"+49301{i:06d}",
            "birth_date": birth_date(int(r["age_in_years"]), i),
        }
        for column, (field, mapping) in GERMAN.items():
            row[field] = mapping[r[column]]
        row.update({
            "requested_amount": number(amount), "term_months": int(r["duration_in_month"]),
            "declared_monthly_income": number(income), "verified_monthly_income": "",
            "monthly_living_expenses": number(living),
            "monthly_debt_payments": number(150 * (int(r["number_of_existing_credits_at_this_bank"]) - 1)),
            "household_size": 1 + dependants,
            "bureau_open_accounts": int(r["number_of_existing_credits_at_this_bank"]),
            "bureau_accounts_past_due": 0, "bureau_inquiries_6m": "",
            "bad": int(r["creditability"] == "bad"), "exposure": number(amount),
            "age_band": "under 25" if r["age_in_years"] < 25 else "25–34" if r["age_in_years"] < 35
            else "35–49" if r["age_in_years"] < 50 else "50+",
        })
        rows.append(row)
    return rows


def lending_club():
    data = pd.read_csv(ROOT / "data" / "lending_club_2018q1.csv")
    rows = []
    for i, r in data.iterrows():
        income = r["annual_income"] / 12.0
        dti = r["debt_to_income"]
        payments = None if math.isnan(dti) else dti / 100.0 * income
        emp = r["emp_length"]
        employment = ("unemployed" if math.isnan(emp) else "under_1y" if emp < 1 else "1_to_4y" if emp < 4
                      else "4_to_7y" if emp < 7 else "7y_plus")
        home = r["homeownership"]
        delinquent_history = ("critical" if not math.isnan(r["months_since_90d_late"])
                              else "delayed" if r["delinq_2y"] > 0 else "paying_duly")
        limit = r["total_credit_limit"]
        row = {
            "application_id": f"LC-{i + 1:05d}", "customer_id": f"LC-C-{i + 1:05d}",
            "national_id_sha256": sha(f"LC-{i + 1}"), "phone": f"+1555{i:07d}",
            "birth_date": birth_date(25 + (i * 7) % 40, i),
            "checking_account": "no_account", "credit_history": delinquent_history,
            "purpose": LC_PURPOSE[r["loan_purpose"]], "savings": "none", "employment_length": employment,
            "property": "real_estate" if home in ("MORTGAGE", "OWN") else "none",
            "other_instalment_plans": "bank" if r["current_installment_accounts"] > 0 else "none",
            "housing": "own" if home in ("MORTGAGE", "OWN") else "rent",
            "requested_amount": number(r["loan_amount"]), "term_months": int(r["term"]),
            "declared_monthly_income": number(income),
            "verified_monthly_income": number(income) if r["verified_income"] != "Not Verified" else "",
            "monthly_living_expenses": 900,
            "monthly_debt_payments": number(payments if payments is not None else 0),
            "household_size": "",
            "bureau_open_accounts": int(r["open_credit_lines"]),
            "bureau_accounts_past_due": int(r["num_accounts_30d_past_due"]),
            "bureau_inquiries_6m": int(r["inquiries_last_12m"]) // 2,
            "liabilities.monthly_payments_total": number(payments),
            "liabilities.revolving_limit": number(limit),
            "liabilities.revolving_balance": number(r["total_credit_utilized"]),
            "liabilities.mortgage_accounts": int(r["num_mort_accounts"]),
            "liabilities.open_accounts": int(r["open_credit_lines"]),
            "bureau_report.delinquent_now": int(r["current_accounts_delinq"]),
            "bureau_report.accounts_30d_past_due": int(r["num_accounts_30d_past_due"]),
            "bureau_report.collections_12m": int(r["num_collections_last_12m"]),
            "bureau_report.revolving_utilisation": number(r["total_credit_utilized"] / limit, 4) if limit > 0 else "",
            "bureau_report.inquiries_12m": int(r["inquiries_last_12m"]),
            "bureau_report.bankruptcies": int(r["public_record_bankrupt"]),
            "bad": int(r["loan_status"] in LC_BAD), "exposure": number(r["loan_amount"]),
            "grade": r["grade"], "issue_month": r["issue_month"],
            "months_on_book": MONTHS_ON_BOOK[r["issue_month"]],
        }
        rows.append(row)
    return rows


def write(name, rows):
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / name, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0].keys()), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{OUT / name}: {len(rows)} rows")


if __name__ == "__main__":
    write("german_credit_applications.csv", german())
    write("lending_club_applications.csv", lending_club())
