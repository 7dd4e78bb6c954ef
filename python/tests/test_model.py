"""Model: predictions as the CLI's native scoring gives them, margins, TreeSHAP that sums to the
margin, numpy and Arrow inputs."""

from __future__ import annotations

import csv
import io

import numpy as np
import pyarrow as pa
import pytest

import credence
from conftest import EXAMPLE, run_cli

BEHAVIOUR = EXAMPLE / "models" / "behaviour.json"


def features(model: credence.Model, rows: int = 500) -> np.ndarray:
    generator = np.random.default_rng(7)
    matrix = generator.uniform(0, 60, size=(rows, len(model.features)))
    matrix[::17, 0] = np.nan  # missing values take the trees' default branches
    return matrix


def test_predictions_are_the_cli_s_and_every_input_form_agrees(tmp_path):
    model = credence.Model.load(BEHAVIOUR)
    assert model.metadata["format"].startswith("xgboost")
    x = features(model)
    predicted = model.predict(x)
    assert predicted.shape == (len(x),)
    path = tmp_path / "rows.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(model.features)
        for row in x:
            writer.writerow(["" if np.isnan(v) else repr(float(v)) for v in row])
    out = tmp_path / "scores.csv"
    scored = run_cli("model", "score", "--model", str(BEHAVIOUR), "--input", str(path),
                     "--output", str(out))
    assert scored.returncode == 0, scored.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    cli = np.array([float(r["prediction"]) for r in rows])
    np.testing.assert_array_equal(predicted, cli)
    # A DataFrame or an Arrow table by feature name (in any column order), and one thread.
    table = pa.table({name: x[:, j] for j, name in reversed(list(enumerate(model.features)))})
    np.testing.assert_array_equal(model.predict(table), predicted)
    np.testing.assert_array_equal(model.predict(table.to_pandas(), threads=1), predicted)


def test_explanations_sum_to_the_margin():
    model = credence.Model.load(BEHAVIOUR)
    x = features(model, 200)
    contributions = model.explain(x)
    assert contributions.shape == (200, len(model.features) + 1)
    np.testing.assert_allclose(contributions.sum(axis=1), model.predict_margin(x), rtol=1e-6, atol=1e-5)
    probability = 1 / (1 + np.exp(-model.predict_margin(x)))
    np.testing.assert_allclose(probability, model.predict(x), rtol=1e-6)


def test_a_matrix_of_the_wrong_width_names_the_features():
    model = credence.Model.load(BEHAVIOUR)
    with pytest.raises(credence.InvalidInputError, match="features"):
        model.predict(np.zeros((3, len(model.features) + 1)))
