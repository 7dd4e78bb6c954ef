#!/usr/bin/env python3
"""Trains the parity fixtures for Credence's native XGBoost and LightGBM inference.

Each fixture is a folder under crates/credence-model/tests/fixtures/<name>/ with:

  model.json | model.txt   the model as the library saves it
  input.csv                the rows scored: a header of feature names; an empty cell is a
                           missing value; a categorical feature is its integer category code
  expected.csv             the library's own raw score (`margin`, predict(output_margin=True) /
                           predict(raw_score=True)) and prediction (`prediction`, what predict()
                           returns) for every row, written with repr() so the Rust tests compare
                           bit for bit; a multi-class model has `margin_<k>` and `prediction_<k>`
                           per class (multi:softmax: one `prediction`, the class)
  contribs.csv             the library's SHAP contributions (pred_contribs / pred_contrib): one
                           column per feature, then the bias; a multi-class model repeats that
                           block per class (`c<k>_<feature>`)

The Rust tests read only these files, so they need no Python. Re-run after changing this script:

    pip install -r tools/models/requirements.txt
    python3 tools/models/train_fixtures.py

Data (copied into data/, see data/README.md): German Credit (CC BY 4.0), credit_data
(modeldata, MIT), Lending Club 2018Q1 (OpenIntro, CC BY-SA 3.0).
"""
import json
import shutil
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import xgboost as xgb

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
OUT = ROOT / "crates" / "credence-model" / "tests" / "fixtures"
SEED = 20261129
ROWS = 400  # rows scored per fixture: enough to cover every path, small enough to commit


def credit_data():
    """Consumer loans with missing income, assets and debt; bad = Status 'bad'."""
    d = pd.read_csv(DATA / "credit_data.csv")
    d = d[d["Status"].notna()]
    y = (d["Status"] == "bad").astype(int).to_numpy()
    numeric = ["Seniority", "Time", "Age", "Expenses", "Income", "Assets", "Debt", "Amount", "Price"]
    x = d[numeric].astype("float64")
    return x.reset_index(drop=True), y


def german_categorical():
    """German Credit with its categorical columns as pandas categories; bad = 'bad'."""
    d = pd.read_csv(DATA / "german_credit.csv")
    y = (d["creditability"] == "bad").astype(int).to_numpy()
    x = d.drop(columns=["creditability"]).copy()
    categorical = [c for c in x.columns if x[c].dtype == object]
    for c in categorical:
        x[c] = pd.Categorical(x[c], categories=sorted(x[c].unique()))
    x.columns = [c.replace(" ", "_") for c in x.columns]
    return x, y, [c.replace(" ", "_") for c in categorical]


def lending_club():
    """Bureau-style Lending Club fields; bad = the lender's grade D or worse."""
    d = pd.read_csv(DATA / "lending_club_2018q1.csv")
    y = d["grade"].isin(["D", "E", "F", "G"]).astype(int).to_numpy()
    numeric = [
        "annual_income", "debt_to_income", "delinq_2y", "months_since_last_delinq", "inquiries_last_12m",
        "total_credit_lines", "open_credit_lines", "total_credit_limit", "total_credit_utilized",
        "num_collections_last_12m", "num_historical_failed_to_pay", "months_since_90d_late",
        "current_accounts_delinq", "accounts_opened_24m", "months_since_last_credit_inquiry",
        "num_satisfactory_accounts", "num_active_debit_accounts", "total_debit_limit", "num_total_cc_accounts",
        "num_open_cc_accounts", "num_cc_carrying_balance", "num_mort_accounts", "account_never_delinq_percent",
        "tax_liens", "public_record_bankrupt", "loan_amount", "term",
    ]
    return d[numeric].astype("float64"), y


def sample_rows(x, n=ROWS):
    rng = np.random.default_rng(SEED)
    index = np.sort(rng.choice(len(x), size=min(n, len(x)), replace=False))
    return x.iloc[index].reset_index(drop=True)


def codes_of(rows, categorical):
    """Pandas categories → their integer codes (missing → NaN), as a float frame."""
    frame = rows.copy()
    for c in categorical:
        codes = frame[c].cat.codes.astype("float64")
        frame[c] = codes.where(codes >= 0, np.nan)
    return frame


def with_unseen_categories(rows, categorical, count=20):
    """Appends copies of the first rows with a categorical feature set to a code never seen in
    training (99), missing (NaN), or negative (-1)."""
    extra = rows.head(count).copy().reset_index(drop=True)
    for i in range(len(extra)):
        column = categorical[i % len(categorical)]
        extra.loc[i, column] = [99.0, np.nan, -1.0][i % 3]
    return pd.concat([rows, extra], ignore_index=True)


def write_input(folder, x, categorical=()):
    frame = x.copy()
    for c in categorical:
        codes = frame[c].cat.codes.astype("int64")
        frame[c] = codes.astype("object").where(codes >= 0, "")
    lines = [",".join(frame.columns)]
    for row in frame.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float):
                cells.append("" if np.isnan(value) else repr(value))
            else:
                cells.append(str(value))
        lines.append(",".join(cells))
    (folder / "input.csv").write_text("\n".join(lines) + "\n")


def columns(name, values):
    """One column, or one per class when `values` has a column per class."""
    values = np.asarray(values)
    if values.ndim == 1:
        return [name], values.reshape(-1, 1)
    return [f"{name}_{k}" for k in range(values.shape[1])], values


def write_expected(folder, margins, predictions):
    margin_names, margins = columns("margin", margins)
    prediction_names, predictions = columns("prediction", predictions)
    lines = [",".join(margin_names + prediction_names)]
    for m, p in zip(margins, predictions):
        lines.append(",".join(repr(float(v)) for v in list(m) + list(p)))
    (folder / "expected.csv").write_text("\n".join(lines) + "\n")


def write_contribs(folder, names, contribs, classes=1):
    """`contribs`: rows of (features + 1) values per class, classes one after the other."""
    contribs = np.asarray(contribs).reshape(len(contribs), -1)
    block = list(names) + ["bias"]
    header = block if classes == 1 else [f"c{k}_{n}" for k in range(classes) for n in block]
    lines = [",".join(header)]
    for row in contribs:
        lines.append(",".join(repr(float(v)) for v in row))
    (folder / "contribs.csv").write_text("\n".join(lines) + "\n")


def fresh(name):
    folder = OUT / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def xgboost_fixture(name, x, y, params, rounds, categorical=(), early_stopping=None, note="", file="model.json"):
    folder = fresh(name)
    dtrain = xgb.DMatrix(x, label=y, enable_categorical=bool(categorical), missing=np.nan)
    evals, kwargs = [], {}
    if early_stopping:
        split = int(len(x) * 0.8)
        dtrain = xgb.DMatrix(x.iloc[:split], label=y[:split], missing=np.nan)
        dvalid = xgb.DMatrix(x.iloc[split:], label=y[split:], missing=np.nan)
        evals = [(dvalid, "valid")]
        kwargs = {"early_stopping_rounds": early_stopping, "verbose_eval": False}
    booster = xgb.train({"seed": SEED, "nthread": 1, **params}, dtrain, rounds, evals=evals, **kwargs)
    booster.save_model(folder / file)
    rows = sample_rows(x)
    if categorical:
        # Score integer codes, as Credence receives them, plus rows with unseen and missing categories.
        rows = with_unseen_categories(codes_of(rows, categorical), categorical)
        write_input(folder, rows)
        types = ["c" if c in categorical else "q" for c in rows.columns]
        drows = xgb.DMatrix(rows.to_numpy(dtype="float64"), feature_names=list(rows.columns), feature_types=types,
                            enable_categorical=True, missing=np.nan)
    else:
        write_input(folder, rows)
        drows = xgb.DMatrix(rows, missing=np.nan)
    # As scikit-learn's predict_proba does: trees up to the best iteration when early stopping ran.
    limit = (0, booster.best_iteration + 1) if early_stopping else (0, 0)
    margins = booster.predict(drows, output_margin=True, iteration_range=limit)
    transformed = booster.predict(drows, iteration_range=limit)
    write_expected(folder, margins, transformed)
    if not categorical:
        contribs = booster.predict(drows, pred_contribs=True, iteration_range=limit)
        classes = contribs.shape[1] if contribs.ndim == 3 else 1
        write_contribs(folder, rows.columns, contribs, classes)
    (folder / "README.md").write_text(
        f"# {name}\n\nXGBoost {xgb.__version__}: {note}\n\nparams: `{json.dumps(params)}`, rounds: {rounds}"
        + (f", early stopping after {early_stopping} (best iteration {booster.best_iteration})" if early_stopping else "")
        + "\n"
    )


def lightgbm_fixture(name, x, y, params, rounds, categorical=(), note=""):
    """`categorical` names integer-coded columns that LightGBM treats as categories."""
    folder = fresh(name)
    dataset = lgb.Dataset(x, label=y, categorical_feature=list(categorical) or "auto", free_raw_data=False)
    booster = lgb.train({"seed": SEED, "num_threads": 1, "verbose": -1, "deterministic": True, **params}, dataset, rounds)
    booster.save_model(folder / "model.txt")
    rows = sample_rows(x)
    if categorical:
        rows = with_unseen_categories(rows.astype({c: "float64" for c in categorical}), categorical)
    write_input(folder, rows)
    margins = booster.predict(rows, raw_score=True)
    probabilities = booster.predict(rows)
    write_expected(folder, margins, probabilities)
    if not params.get("linear_tree"):
        # LightGBM gives no contributions for linear trees.
        contribs = booster.predict(rows, pred_contrib=True)
        write_contribs(folder, rows.columns, contribs, params.get("num_class", 1))
    (folder / "README.md").write_text(
        f"# {name}\n\nLightGBM {lgb.__version__}: {note}\n\nparams: `{json.dumps(params)}`, rounds: {rounds}\n"
    )


def main():
    cd_x, cd_y = credit_data()
    cd_complete = cd_x.dropna().reset_index(drop=True)
    cd_complete_y = cd_y[cd_x.dropna().index]
    gc_x, gc_y, gc_cat = german_categorical()
    lc_x, lc_y = lending_club()

    xgboost_fixture("xgb_numeric", cd_complete, cd_complete_y,
                    {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1}, 60,
                    note="numeric features only, no missing values")
    xgboost_fixture("xgb_missing", cd_x, cd_y,
                    {"objective": "binary:logistic", "max_depth": 5, "eta": 0.1}, 80,
                    note="missing income, assets and debt follow default_left")
    xgboost_fixture("xgb_categorical", gc_x, gc_y,
                    {"objective": "binary:logistic", "max_depth": 4, "eta": 0.1, "max_cat_to_onehot": 1,
                     "tree_method": "hist"}, 50, categorical=gc_cat,
                    note="categorical splits (partition-based) on the German Credit categories")
    xgboost_fixture("xgb_early_stopping", lc_x, lc_y,
                    {"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "eval_metric": "logloss"}, 400,
                    early_stopping=10, note="saved after early stopping; scored up to best_iteration")
    xgboost_fixture("xgb_deep", lc_x, lc_y,
                    {"objective": "binary:logistic", "max_depth": 10, "eta": 0.2, "min_child_weight": 0.5}, 30,
                    note="depth 10")
    xgboost_fixture("xgb_wide", cd_x, cd_y,
                    {"objective": "binary:logistic", "max_depth": 2, "eta": 0.02}, 1000,
                    note="1,000 trees")
    xgboost_fixture("xgb_logitraw", cd_x, cd_y,
                    {"objective": "binary:logitraw", "max_depth": 3, "eta": 0.1}, 40, note="binary:logitraw")
    xgboost_fixture("xgb_reg_logistic", cd_x, cd_y,
                    {"objective": "reg:logistic", "max_depth": 3, "eta": 0.1}, 40, note="reg:logistic")
    xgboost_fixture("xgb_squarederror", lc_x, lc_x["debt_to_income"].fillna(0).to_numpy(),
                    {"objective": "reg:squarederror", "max_depth": 4, "eta": 0.1}, 40,
                    note="reg:squarederror on debt-to-income (a regression)")
    xgboost_fixture("xgb_absoluteerror", lc_x, lc_x["debt_to_income"].fillna(0).to_numpy(),
                    {"objective": "reg:absoluteerror", "max_depth": 4, "eta": 0.1}, 40,
                    note="reg:absoluteerror on debt-to-income (median regression, identity link)")

    lightgbm_fixture("lgb_numeric", cd_complete, cd_complete_y,
                     {"objective": "binary", "num_leaves": 15, "learning_rate": 0.1}, 60,
                     note="numeric features only, no missing values (NaN is then treated as 0.0)")
    lightgbm_fixture("lgb_missing", cd_x, cd_y,
                     {"objective": "binary", "num_leaves": 31, "learning_rate": 0.1}, 80,
                     note="missing values (missing type NaN)")
    lightgbm_fixture("lgb_missing_shallow", cd_x, cd_y,
                     {"objective": "binary", "num_leaves": 31, "max_depth": 6, "learning_rate": 0.1}, 80,
                     note="missing values (missing type NaN), depth at most 6 (the complete-tree path)")
    lightgbm_fixture("lgb_zero_as_missing", lc_x.fillna(0.0), lc_y,
                     {"objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "zero_as_missing": True}, 40,
                     note="zero_as_missing (missing type Zero)")
    lightgbm_fixture("lgb_numeric_shallow", cd_complete, cd_complete_y,
                     {"objective": "binary", "num_leaves": 15, "max_depth": 5, "learning_rate": 0.1}, 40,
                     note="numeric, no missing values (type None: NaN read as 0.0), depth at most 5 "
                          "(the complete-tree path)")
    lightgbm_fixture("lgb_zero_as_missing_shallow", lc_x.fillna(0.0), lc_y,
                     {"objective": "binary", "num_leaves": 15, "max_depth": 6, "learning_rate": 0.1,
                      "zero_as_missing": True}, 40,
                     note="zero_as_missing (missing type Zero), depth at most 6 (the complete-tree path)")
    gc_codes = gc_x.copy()
    for c in gc_cat:
        gc_codes[c] = gc_codes[c].cat.codes.astype("int32")
    lightgbm_fixture("lgb_categorical", gc_codes, gc_y,
                     {"objective": "binary", "num_leaves": 15, "learning_rate": 0.1, "min_data_per_group": 5,
                      "cat_smooth": 1, "max_cat_to_onehot": 4}, 50, categorical=gc_cat,
                     note="categorical bitset splits on integer-coded German Credit categories")
    lightgbm_fixture("lgb_deep", lc_x, lc_y,
                     {"objective": "binary", "num_leaves": 255, "max_depth": 10, "learning_rate": 0.2,
                      "min_data_in_leaf": 5}, 30, note="depth 10")
    lightgbm_fixture("lgb_wide", cd_x, cd_y,
                     {"objective": "binary", "num_leaves": 4, "learning_rate": 0.02}, 1000, note="1,000 trees")


    # Regression, count and multi-class objectives (loss given default, exposure, collections
    # amounts, roll rates), and the formats and boosters data scientists save.
    lc_amount = lc_x.drop(columns=["loan_amount"])
    amount = lc_x["loan_amount"].to_numpy()
    inquiries = lc_x["inquiries_last_12m"].fillna(0).to_numpy()
    lc_no_inquiries = lc_x.drop(columns=["inquiries_last_12m"])
    cd_debt = cd_x.drop(columns=["Debt"])
    debt = cd_x["Debt"].fillna(0.0).to_numpy()
    never_delinquent = (lc_x["account_never_delinq_percent"].fillna(100.0) / 100.0).clip(0, 1).to_numpy()
    lc_no_delinq = lc_x.drop(columns=["account_never_delinq_percent"])
    grades = pd.read_csv(DATA / "lending_club_2018q1.csv")["grade"]
    grade_class = grades.map({"A": 0, "B": 1, "C": 2}).fillna(3).astype(int).to_numpy()

    xgboost_fixture("xgb_ubj", cd_x, cd_y, {"objective": "binary:logistic", "max_depth": 5, "eta": 0.1}, 60,
                    note="saved as UBJSON (model.ubj), missing values", file="model.ubj")
    xgboost_fixture("xgb_dart", cd_x, cd_y,
                    {"objective": "binary:logistic", "booster": "dart", "max_depth": 4, "eta": 0.1,
                     "rate_drop": 0.2, "skip_drop": 0.3}, 60, note="booster=dart: trees weighted by weight_drop")
    xgboost_fixture("xgb_hinge", cd_x, cd_y, {"objective": "binary:hinge", "max_depth": 4, "eta": 0.1}, 40,
                    note="binary:hinge: predicts 1 when the margin is positive, else 0")
    xgboost_fixture("xgb_poisson", lc_no_inquiries, inquiries,
                    {"objective": "count:poisson", "max_depth": 4, "eta": 0.1}, 60,
                    note="count:poisson on inquiries in the last 12 months (exp link)")
    xgboost_fixture("xgb_tweedie", cd_debt, debt,
                    {"objective": "reg:tweedie", "tweedie_variance_power": 1.4, "max_depth": 4, "eta": 0.1}, 60,
                    note="reg:tweedie on debt, zero for most applicants (exp link)")
    xgboost_fixture("xgb_gamma", lc_amount, amount,
                    {"objective": "reg:gamma", "max_depth": 4, "eta": 0.1}, 60, note="reg:gamma on loan amount (exp link)")
    xgboost_fixture("xgb_pseudohuber", lc_amount, amount / 1000.0,
                    {"objective": "reg:pseudohubererror", "huber_slope": 5.0, "max_depth": 4, "eta": 0.3}, 40,
                    note="reg:pseudohubererror on loan amount in thousands")
    xgboost_fixture("xgb_squaredlogerror", lc_amount, amount,
                    {"objective": "reg:squaredlogerror", "max_depth": 4, "eta": 0.3}, 40,
                    note="reg:squaredlogerror on loan amount")
    xgboost_fixture("xgb_quantile", lc_amount, amount,
                    {"objective": "reg:quantileerror", "quantile_alpha": 0.9, "max_depth": 4, "eta": 0.1}, 40,
                    note="reg:quantileerror, the 90th percentile of loan amount")
    xgboost_fixture("xgb_multi_softprob", lc_x, grade_class,
                    {"objective": "multi:softprob", "num_class": 4, "max_depth": 4, "eta": 0.1}, 30,
                    note="multi:softprob over grades A, B, C, D-or-worse")
    xgboost_fixture("xgb_multi_softmax", lc_x, grade_class,
                    {"objective": "multi:softmax", "num_class": 4, "max_depth": 4, "eta": 0.1}, 30,
                    note="multi:softmax over grades A, B, C, D-or-worse (predict returns the class)")

    lightgbm_fixture("lgb_rf", cd_x, cd_y,
                     {"objective": "binary", "boosting": "rf", "num_leaves": 31, "bagging_freq": 1,
                      "bagging_fraction": 0.7, "feature_fraction": 0.8}, 50,
                     note="random forest (average_output): the prediction is the sigmoid of the trees' mean")
    lightgbm_fixture("lgb_reg_sqrt", lc_amount, amount,
                     {"objective": "regression", "reg_sqrt": True, "num_leaves": 15, "learning_rate": 0.1}, 40,
                     note="regression with reg_sqrt: trained on sqrt(amount), predictions squared back")
    lightgbm_fixture("lgb_l1", lc_amount, amount,
                     {"objective": "regression_l1", "num_leaves": 15, "learning_rate": 0.1}, 40, note="regression_l1")
    lightgbm_fixture("lgb_huber", lc_amount, amount / 1000.0,
                     {"objective": "huber", "alpha": 5.0, "num_leaves": 15, "learning_rate": 0.1}, 40, note="huber")
    lightgbm_fixture("lgb_fair", lc_amount, amount / 1000.0,
                     {"objective": "fair", "num_leaves": 15, "learning_rate": 0.1}, 40, note="fair")
    lightgbm_fixture("lgb_quantile", lc_amount, amount,
                     {"objective": "quantile", "alpha": 0.9, "num_leaves": 15, "learning_rate": 0.1}, 40,
                     note="quantile, the 90th percentile")
    lightgbm_fixture("lgb_mape", lc_amount, amount,
                     {"objective": "mape", "num_leaves": 15, "learning_rate": 0.1}, 40, note="mape")
    lightgbm_fixture("lgb_poisson", lc_no_inquiries, inquiries,
                     {"objective": "poisson", "num_leaves": 15, "learning_rate": 0.1}, 40, note="poisson (exp link)")
    lightgbm_fixture("lgb_gamma", lc_amount, amount,
                     {"objective": "gamma", "num_leaves": 15, "learning_rate": 0.1}, 40, note="gamma (exp link)")
    lightgbm_fixture("lgb_tweedie", cd_debt, debt,
                     {"objective": "tweedie", "tweedie_variance_power": 1.4, "num_leaves": 15, "learning_rate": 0.1}, 40,
                     note="tweedie (exp link) on debt, zero for most applicants")
    lightgbm_fixture("lgb_cross_entropy", lc_no_delinq, never_delinquent,
                     {"objective": "cross_entropy", "num_leaves": 15, "learning_rate": 0.1}, 40,
                     note="cross_entropy on the share of accounts never delinquent")
    lightgbm_fixture("lgb_xentlambda", lc_no_delinq, never_delinquent,
                     {"objective": "cross_entropy_lambda", "num_leaves": 15, "learning_rate": 0.1}, 40,
                     note="cross_entropy_lambda (log1p(exp) output)")
    lightgbm_fixture("lgb_multiclass", lc_x, grade_class,
                     {"objective": "multiclass", "num_class": 4, "num_leaves": 15, "learning_rate": 0.1}, 30,
                     note="multiclass (softmax) over grades A, B, C, D-or-worse")
    lightgbm_fixture("lgb_multiclassova", lc_x, grade_class,
                     {"objective": "multiclassova", "num_class": 4, "num_leaves": 15, "learning_rate": 0.1}, 30,
                     note="multiclassova (one sigmoid per class)")
    lightgbm_fixture("lgb_linear", cd_x, cd_y,
                     {"objective": "binary", "linear_tree": True, "num_leaves": 15, "learning_rate": 0.1}, 40,
                     note="linear_tree: a linear model in each leaf, the constant alone when a feature it uses is missing")
    lightgbm_fixture("lgb_dart", cd_x, cd_y,
                     {"objective": "binary", "boosting": "dart", "num_leaves": 31, "learning_rate": 0.1}, 40,
                     note="boosting=dart (trees saved already scaled)")


if __name__ == "__main__":
    main()
