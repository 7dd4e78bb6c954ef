//! Back-tests over Arrow data (the same runner, summary and diff as `credence backtest`) and the monitoring metrics: KS, AUC, Gini, PSI.

use crate::arrow::read_stream;
use crate::strategy::NativeStrategy;
use crate::{as_of_date, error, native_error};
use credence_app::backtest::{self as runner, columns_of, header_of, BatchesSource, Job, Side};
use credence_backtest::TallyOptions;
use pyo3::prelude::*;
use rust_decimal::Decimal;

/// Back-tests `flow` of `champion` (and `challenger`) on every row of an Arrow stream as of
/// one date; returns the summary as JSON text (what `credence backtest` writes) and the diff
/// (rows whose outcome differs) as CSV text, as `--diff` writes it.
#[pyfunction]
#[pyo3(signature = (champion, flow, data, as_of, challenger=None, by=Vec::new(), bad_column="bad".to_string(),
    exposure_column="exposure".to_string(), loss_column="loss".to_string(), pd_column="pd".to_string(),
    id_column="application_id".to_string(), lgd="0.45", score_step=None, score_bin_width=10.0, threads=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn backtest(
    py: Python<'_>,
    champion: &Bound<'_, NativeStrategy>,
    flow: &str,
    data: &Bound<'_, PyAny>,
    as_of: &str,
    challenger: Option<&Bound<'_, NativeStrategy>>,
    by: Vec<String>,
    bad_column: String,
    exposure_column: String,
    loss_column: String,
    pd_column: String,
    id_column: String,
    lgd: &str,
    score_step: Option<String>,
    score_bin_width: f64,
    threads: Option<usize>,
) -> PyResult<(String, String)> {
    let as_of = as_of_date(Some(as_of))?;
    let lgd: Decimal = lgd
        .parse()
        .ok()
        .filter(|l| *l >= Decimal::ZERO && *l <= Decimal::ONE)
        .ok_or_else(|| {
            error(
                "invalid_input",
                format!("lgd {lgd}: give a fraction between 0 and 1, e.g. 0.45"),
            )
        })?;
    if !(score_bin_width.is_finite() && score_bin_width > 0.0) {
        return Err(error(
            "invalid_input",
            "score_bin_width must be a positive number",
        ));
    }
    let (schema, batches) = read_stream(data)?;
    let columns = columns_of(&header_of(&schema));
    for column in &by {
        if !columns.has(column) {
            return Err(error(
                "invalid_input",
                format!("by={column:?}: the data has no such column"),
            ));
        }
    }
    let side = |strategy: &Bound<'_, NativeStrategy>| -> PyResult<Side> {
        let mut side = Side::new(strategy.get().copy()?, flow).map_err(native_error)?;
        side.set_columns(&columns);
        Ok(side)
    };
    let mut jobs = Vec::new();
    for _ in 0..crate::threads(threads) {
        jobs.push(Job {
            champion: side(champion)?,
            challenger: challenger.map(side).transpose()?,
            flow: flow.to_string(),
            as_of: Some(as_of),
            columns: Some(columns.clone()),
            segments: by.clone(),
            bad_column: bad_column.clone(),
            exposure_column: exposure_column.clone(),
            loss_column: loss_column.clone(),
            pd_column: pd_column.clone(),
            id_column: id_column.clone(),
            score_step: score_step.clone(),
        });
    }
    let options = TallyOptions {
        lgd,
        segments: by,
        score_bin_width,
    };
    py.detach(|| {
        let diff = SharedBuffer::default();
        let outcome = runner::run(
            &jobs,
            options,
            Box::new(BatchesSource::new(batches)),
            Some(Box::new(diff.clone())),
            &|_, _| {},
        )
        .map_err(native_error)?;
        let summary = outcome.summary(&jobs[0]);
        let json = outcome
            .summary_json(&summary, &jobs[0], true)
            .map_err(native_error)?;
        let diff = diff.text();
        Ok((json.to_string(), diff))
    })
}

/// The diff's bytes, written by the runner's writer thread and read here once it is done.
#[derive(Clone, Default)]
struct SharedBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for SharedBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("the diff buffer is poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// KS, AUC and Gini of `scores` for `bads` (higher scores riskier), as JSON text:
/// `{rows, bads, auc, gini, ks, ks_score}`.
#[pyfunction]
pub(crate) fn discrimination(scores: Vec<f64>, bads: Vec<bool>) -> PyResult<String> {
    if scores.len() != bads.len() {
        return Err(error(
            "invalid_input",
            format!("{} scores but {} outcomes", scores.len(), bads.len()),
        ));
    }
    let rows: Vec<(f64, bool)> = scores.into_iter().zip(bads).collect();
    let result = credence_backtest::metrics::discrimination(&rows)
        .map_err(|e| error(e.code(), e.to_string()))?;
    serde_json::to_string(&result).map_err(|e| error("internal", e.to_string()))
}

/// PSI of `actual` against `expected`, binned at the expected values' quantiles (`bins`), as
/// JSON text: `{psi, drift, bins: [...]}`. NaN is a missing value (its own bin).
#[pyfunction]
#[pyo3(signature = (expected, actual, bins=10))]
pub(crate) fn psi(expected: Vec<f64>, actual: Vec<f64>, bins: usize) -> PyResult<String> {
    let present = |values: Vec<f64>| -> Vec<Option<f64>> {
        values
            .into_iter()
            .map(|v| (!v.is_nan()).then_some(v))
            .collect()
    };
    let (_, result) =
        credence_backtest::metrics::psi_numeric(&present(expected), &present(actual), bins)
            .map_err(|e| error(e.code(), e.to_string()))?;
    serde_json::to_string(&result).map_err(|e| error("internal", e.to_string()))
}
