"""The scorecard fit both example scripts share: weights of evidence per bin, an unpenalised
logistic regression of "bad" on them, points on the declared calibration, and the YAML body a
`scorecard` step reads. fit_german_scorecard.py and fit_card_scorecard.py choose the data, the
characteristics and their bins; this does the rest the same way for both.

A characteristic is (name, input field, reason code, bins, bin index per row), a bin
("values", [codes]) or ("range", (low, high)) with None for an open end.
"""
import json
import math

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score


def woe_table(codes, bad):
    """Per bin: WoE = ln(good share / bad share), smoothed by 0.5 counts; and the IV."""
    frame = pd.DataFrame({"bin": codes, "bad": bad})
    grouped = frame.groupby("bin", sort=False)["bad"].agg(["sum", "count"])
    bads = grouped["sum"] + 0.5
    goods = grouped["count"] - grouped["sum"] + 0.5
    woe = np.log((goods / goods.sum()) / (bads / bads.sum()))
    iv = float((((goods / goods.sum()) - (bads / bads.sum())) * woe).sum())
    return woe.to_dict(), iv


def range_text(low, high):
    left = "(-inf" if low is None else f"[{low}"
    right = "inf)" if high is None else f"{high})"
    return f"{left}..{right}"


def assign_numeric(values, bins):
    def which(x):
        for i, (low, high) in enumerate(bins):
            if (low is None or x >= low) and (high is None or x < high):
                return i
        raise ValueError(x)
    return values.map(which)


def ks_statistic(score, bad):
    order = np.argsort(score)
    bad_sorted = bad[order]
    cum_bad = np.cumsum(bad_sorted) / bad_sorted.sum()
    cum_good = np.cumsum(1 - bad_sorted) / (1 - bad_sorted).sum()
    # Only compare at the last index of each distinct score (ties move together).
    distinct = np.r_[np.diff(score[order]) != 0, True]
    return float(np.max(np.abs(cum_bad - cum_good)[distinct]))


def fit(characteristics, bad, train_idx, test_idx, calibration):
    """Fits the points; returns a dict with the scorecard and its fit statistics."""
    woe_columns, tables, ivs = [], [], {}
    for name, _, _, _, bin_index in characteristics:
        table, iv = woe_table(bin_index.iloc[train_idx].to_numpy(), bad[train_idx])
        tables.append(table)
        ivs[name] = round(iv, 4)
        woe_columns.append(bin_index.map(table).fillna(0.0).to_numpy())
    woe = np.column_stack(woe_columns)

    model = LogisticRegression(penalty=None, max_iter=1000)
    model.fit(woe[train_idx], bad[train_idx])
    coefficients = model.coef_[0]
    intercept = float(model.intercept_[0])

    factor = calibration["pdo"] / math.log(2)
    offset = calibration["score"] - factor * math.log(calibration["odds"])
    base_points = round(offset - factor * intercept)

    out = []
    points_matrix = np.zeros_like(woe)
    for j, (name, field, reason, bins, bin_index) in enumerate(characteristics):
        points = {i: int(round(-factor * coefficients[j] * tables[j].get(i, 0.0))) for i in range(len(bins))}
        points_matrix[:, j] = bin_index.map(points).to_numpy()
        out_bins = []
        for i, (kind, payload) in enumerate(bins):
            if kind == "values":
                out_bins.append({"values": payload, "points": points[i]})
            else:
                out_bins.append({"range": range_text(*payload), "points": points[i]})
        if bins[0][0] == "values":
            # Unseen categories score as the worst bin: a conservative default.
            out_bins.append({"else": True, "points": min(points.values()), "label": "unseen category"})
        out.append({"name": name, "value": field, "reason": reason, "bins": out_bins})

    score = base_points + points_matrix.sum(axis=1)
    test_score, test_bad = score[test_idx], bad[test_idx]
    return {
        "characteristics": out,
        "base_points": base_points,
        "intercept": intercept,
        "coefficients": {c[0]: round(float(b), 6) for c, b in zip(characteristics, coefficients)},
        "information_value": ivs,
        "score": score,
        "auc": float(roc_auc_score(test_bad, -test_score)),
        "ks": ks_statistic(test_score, test_bad),
        "train_auc": float(roc_auc_score(bad[train_idx], -score[train_idx])),
    }


def write_yaml(path, header, fitted, calibration):
    """The scorecard body, with `header` comment lines first."""
    lines = [f"# {line}" for line in header] + [
        f"base_points: {fitted['base_points']}",
        f"calibration: {{score: {calibration['score']}, odds: {calibration['odds']}, pdo: {calibration['pdo']}}}",
        "characteristics:",
    ]
    for c in fitted["characteristics"]:
        lines.append(f"  - name: {c['name']}")
        lines.append(f"    value: {c['value']}")
        lines.append(f"    reason: {c['reason']}")
        lines.append("    bins:")
        for b in c["bins"]:
            if "values" in b:
                values = ", ".join(json.dumps(v) for v in b["values"])
                lines.append(f"      - {{values: [{values}], points: {b['points']}}}")
            elif "range" in b:
                lines.append(f"      - {{range: \"{b['range']}\", points: {b['points']}}}")
            else:
                lines.append(f"      - {{else: true, points: {b['points']}, label: {b['label']}}}")
    path.write_text("\n".join(lines) + "\n")
