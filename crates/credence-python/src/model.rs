//! `NativeModel`: an XGBoost, LightGBM or logistic-regression model scored natively on Arrow columns — predictions, margins and TreeSHAP contributions as the libraries give them.

use crate::arrow::{read_stream, stream_capsule};
use crate::error;
use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use credence_model::{Model, RowOutput};
use pyo3::prelude::*;
use std::sync::Arc;

/// A loaded model.
#[pyclass(frozen, module = "credence._credence")]
pub struct NativeModel {
    model: Model,
}

fn output_of(text: &str) -> PyResult<RowOutput> {
    match text {
        "predict" => Ok(RowOutput::Predict),
        "margin" => Ok(RowOutput::Margin),
        "contributions" => Ok(RowOutput::Contributions),
        other => Err(error(
            "invalid_input",
            format!("output {other:?}: predict, margin or contributions"),
        )),
    }
}

/// A column as float64 values, nulls as NaN (missing).
fn floats(column: &ArrayRef, name: &str) -> PyResult<Vec<f64>> {
    let cast = arrow_cast::cast(column, &DataType::Float64).map_err(|e| {
        error(
            "invalid_input",
            format!(
                "feature {name}: a column of type {} cannot be read as numbers: {e}",
                column.data_type()
            ),
        )
    })?;
    let values = cast.as_primitive::<Float64Type>();
    Ok((0..values.len())
        .map(|i| {
            if values.is_null(i) {
                f64::NAN
            } else {
                values.value(i)
            }
        })
        .collect())
}

impl NativeModel {
    /// The batch's rows as a row-major matrix of the model's features: columns found by the
    /// model's feature names when the batch has them all, else taken in order.
    fn matrix<'b>(
        &self,
        batch: &'b RecordBatch,
        width: Option<usize>,
    ) -> PyResult<std::borrow::Cow<'b, [f64]>> {
        let features = &self.model.metadata().features;
        let n = features.len();
        // A flat row-major matrix (numpy's own memory): one float64 column of rows × width.
        if let Some(width) = width {
            if width != n {
                return Err(error(
                    "invalid_input",
                    format!("the matrix has {width} columns; the model reads {n} features"),
                ));
            }
            let column = batch.column(0);
            return match column.as_primitive_opt::<Float64Type>() {
                // numpy's memory, read in place.
                Some(values) if values.null_count() == 0 => {
                    Ok(std::borrow::Cow::Borrowed(&values.values()[..]))
                }
                _ => floats(column, "matrix").map(std::borrow::Cow::Owned),
            };
        }
        let schema = batch.schema();
        let by_name = features.iter().all(|f| schema.index_of(f).is_ok());
        if !by_name && batch.num_columns() != n {
            return Err(error(
                "invalid_input",
                format!(
                    "the data has {} columns and not every feature's name; the model reads {n} features: {}",
                    batch.num_columns(),
                    features.join(", ")
                ),
            ));
        }
        let columns = features
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let at = if by_name {
                    schema.index_of(name).unwrap_or(i)
                } else {
                    i
                };
                floats(batch.column(at), name)
            })
            .collect::<PyResult<Vec<_>>>()?;
        let rows = batch.num_rows();
        let mut matrix = vec![0.0; rows * n];
        for (j, column) in columns.iter().enumerate() {
            for (i, value) in column.iter().enumerate() {
                matrix[i * n + j] = *value;
            }
        }
        Ok(std::borrow::Cow::Owned(matrix))
    }
}

#[pymethods]
impl NativeModel {
    /// Reads a model file (XGBoost JSON/UBJSON, LightGBM text, Credence logistic regression).
    #[staticmethod]
    fn load(path: std::path::PathBuf) -> PyResult<NativeModel> {
        let bytes = std::fs::read(&path).map_err(|e| {
            error(
                "invalid_input",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let model = Model::load(&file, &bytes).map_err(|e| error(e.code(), e.to_string()))?;
        Ok(NativeModel { model })
    }

    /// Name, version, sha256, format, objective, features, categorical features and trees,
    /// as JSON text.
    fn metadata(&self) -> String {
        let m = self.model.metadata();
        serde_json::json!({
            "name": m.name, "version": m.version, "sha256": m.sha256, "format": m.format,
            "objective": m.objective, "features": m.features,
            "categorical_features": m.categorical_features, "trees": m.trees,
            "classes": self.model.objective().classes(),
        })
        .to_string()
    }

    /// Values per row of `output`.
    fn values_per_row(&self, output: &str) -> PyResult<usize> {
        Ok(self.model.values_per_row(output_of(output)?))
    }

    /// Scores every row of an Arrow stream: `output` is `predict`, `margin` or
    /// `contributions`; `width` says the stream is one flat row-major column of that many
    /// features a row. The answer: one float64 column `value` of rows × values_per_row.
    #[pyo3(signature = (data, output="predict", width=None, threads=None))]
    fn score(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        output: &str,
        width: Option<usize>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        let output = output_of(output)?;
        let (_, batches) = read_stream(data)?;
        let workers = crate::threads(threads);
        let mut answers = Vec::with_capacity(batches.len());
        let schema = Arc::new(Schema::new(vec![Field::new(
            "value",
            DataType::Float64,
            false,
        )]));
        for batch in &batches {
            let matrix = self.matrix(batch, width)?;
            let values = py.detach(|| self.model.score_rows(&matrix, output, workers));
            let column: ArrayRef = Arc::new(Float64Array::from(values));
            answers.push(
                RecordBatch::try_new(schema.clone(), vec![column])
                    .map_err(|e| error("internal", e.to_string()))?,
            );
        }
        stream_capsule(py, schema, answers)
    }
}
