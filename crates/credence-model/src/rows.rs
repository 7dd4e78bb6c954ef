//! Scoring many rows at once — a row-major matrix of features — on several threads, into the shapes the libraries' `predict()`, `predict(output_margin=True)` and `pred_contribs` return.

use crate::{Model, Prediction};

/// What to return for each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutput {
    /// What the library's `predict()` returns: one value per row, or one probability per
    /// class for a multi-class model.
    Predict,
    /// The raw score (`output_margin=True` / `raw_score=True`): one per row or per class.
    Margin,
    /// TreeSHAP contributions with the bias last, per class for a multi-class model.
    Contributions,
}

impl Model {
    /// How many values [`Model::score_rows`] gives per row for `output`.
    pub fn values_per_row(&self, output: RowOutput) -> usize {
        let classes = self.objective().classes();
        match output {
            RowOutput::Predict | RowOutput::Margin => classes,
            RowOutput::Contributions => classes * (self.metadata().features.len() + 1),
        }
    }

    /// Scores every row of `features` (row-major, `metadata().features.len()` values a row,
    /// NaN missing) on up to `threads` threads; `values_per_row(output)` values a row, in row
    /// order. A row a logistic regression cannot score (a missing value) gives NaN.
    pub fn score_rows(&self, features: &[f64], output: RowOutput, threads: usize) -> Vec<f64> {
        let width = self.metadata().features.len().max(1);
        let per_row = self.values_per_row(output);
        let rows = features.len() / width;
        let mut out = vec![f64::NAN; rows * per_row];
        let threads = threads.clamp(1, rows.max(1));
        let rows_per_thread = rows.div_ceil(threads).max(1);
        let trees = self.default_tree_limit();
        std::thread::scope(|scope| {
            for (inputs, outputs) in features
                .chunks(rows_per_thread * width)
                .zip(out.chunks_mut(rows_per_thread * per_row))
            {
                scope.spawn(move || {
                    for (row, values) in inputs
                        .chunks_exact(width)
                        .zip(outputs.chunks_exact_mut(per_row))
                    {
                        self.score_row_into(row, output, trees, values);
                    }
                });
            }
        });
        out
    }

    fn score_row_into(&self, row: &[f64], output: RowOutput, trees: usize, values: &mut [f64]) {
        match output {
            RowOutput::Contributions => values.copy_from_slice(&self.contributions(row, trees)),
            RowOutput::Predict | RowOutput::Margin => match self.predict_with_trees(row, trees) {
                None => {}
                Some(Prediction::Single { margin, output: o }) => {
                    values[0] = if output == RowOutput::Margin {
                        margin
                    } else {
                        o
                    };
                }
                Some(Prediction::Classes {
                    margins,
                    probabilities,
                    ..
                }) => {
                    let source = if output == RowOutput::Margin {
                        &margins
                    } else {
                        &probabilities
                    };
                    values.copy_from_slice(source);
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let text = r#"{"format": "credence.logistic_regression.v1", "name": "m", "version": "1",
            "intercept": -1.0, "coefficients": [{"feature": "a", "weight": 0.5},
                                                {"feature": "b", "weight": 2.0}]}"#;
        Model::load("m.json", text.as_bytes()).unwrap()
    }

    #[test]
    fn rows_score_in_order_on_any_number_of_threads_as_one_row_does() {
        let model = model();
        let rows: Vec<f64> = (0..101)
            .flat_map(|i| [i as f64 / 10.0, -(i as f64) / 50.0])
            .collect();
        let one = model.score_rows(&rows, RowOutput::Predict, 1);
        assert_eq!(one, model.score_rows(&rows, RowOutput::Predict, 3));
        assert_eq!(one.len(), 101);
        for (row, value) in rows.chunks(2).zip(&one) {
            assert_eq!(Some(*value), model.predict(row).and_then(|p| p.output()));
        }
        let margins = model.score_rows(&rows[..2], RowOutput::Margin, 2);
        assert_eq!(margins, [-1.0]);
        let contributions = model.score_rows(&rows[..4], RowOutput::Contributions, 2);
        assert_eq!(contributions.len(), 2 * 3);
        assert_eq!(contributions[2], -1.0, "the bias is last");
        assert!(model.score_rows(&[f64::NAN, 1.0], RowOutput::Predict, 1)[0].is_nan());
    }
}
