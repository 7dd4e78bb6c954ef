"""Back-tests in Python give the CLI's summary and diff; metrics give scikit-learn's figures."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import numpy as np
import pyarrow.csv as pa_csv
import pytest

import credence
from conftest import AS_OF, EXAMPLE, REPO, read_applications, run_cli


def challenger(tmp_path):
    """The example with a stricter cut-off (tools/backtest/make_challenger.sh)."""
    made = subprocess.run(["tools/backtest/make_challenger.sh", str(tmp_path / "challenger")],
                          cwd=REPO, capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    return tmp_path / "challenger"


def test_a_back_test_is_the_cli_s_summary_and_diff(example, tmp_path):
    other = challenger(tmp_path)
    table = read_applications(3000)
    rows = tmp_path / "rows.csv"
    pa_csv.write_csv(table, rows)
    summary, diff = credence.backtest(example, credence.Strategy.load(other), "application",
                                      table, as_of=AS_OF, by=["grade"])
    cli_summary = tmp_path / "summary.json"
    cli_diff = tmp_path / "diff.csv"
    ran = run_cli("backtest", "--strategy", str(EXAMPLE), "--challenger", str(other),
                  "--flow", "application", "--input", str(rows), "--as-of", AS_OF,
                  "--by", "grade", "--summary-json", str(cli_summary), "--diff", str(cli_diff))
    assert ran.returncode == 0, ran.stderr
    assert summary == json.loads(cli_summary.read_text())
    assert summary["rows"] == 3000 and summary["swap"]
    cli_rows = list(csv.DictReader(io.StringIO(cli_diff.read_text())))
    assert diff.num_rows == len(cli_rows) > 0
    assert [str(v) for v in diff.column(0).to_pylist()] == [r[diff.column_names[0]] for r in cli_rows]


def test_metrics_are_scikit_learn_s():
    sklearn = pytest.importorskip("sklearn.metrics")
    generator = np.random.default_rng(3)
    bads = generator.random(5000) < 0.2
    scores = generator.normal(size=5000) + bads * 0.8
    scores[:100] = np.round(scores[:100], 1)  # some ties
    assert credence.metrics.auc(scores, bads) == pytest.approx(sklearn.roc_auc_score(bads, scores), abs=1e-12)
    fpr, tpr, _ = sklearn.roc_curve(bads, scores)
    assert credence.metrics.ks(scores, bads) == pytest.approx(np.max(tpr - fpr), abs=1e-12)
    assert credence.metrics.gini(scores, bads) == pytest.approx(2 * sklearn.roc_auc_score(bads, scores) - 1, abs=1e-12)
    same = credence.metrics.psi(scores, scores)
    assert same["psi"] == pytest.approx(0.0) and same["drift"] == "stable"
    shifted = credence.metrics.psi(scores, scores + 1.0)
    assert shifted["psi"] > 0.25 and shifted["drift"] == "shift"
    with pytest.raises(credence.CredenceError):
        credence.metrics.auc([0.1, 0.2], [False, False])
