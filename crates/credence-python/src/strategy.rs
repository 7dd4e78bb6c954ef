//! `NativeStrategy`: a compiled strategy package — its facts, its embedded cases, one decision from JSON and whole Arrow batches on every core.

use crate::arrow::{read_stream, stream_capsule};
use crate::{as_of_date, engine_error, error, native_error};
use credence_app::backtest::batch::{BatchDecider, BatchOptions, TraceFieldType};
use credence_app::error::AppError;
use credence_engine::{CompiledStrategy, EvalOptions, PackageSource};
use pyo3::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A compiled strategy package, with batch deciders kept per flow and worker count.
#[pyclass(frozen, module = "credence._credence")]
pub struct NativeStrategy {
    source: PackageSource,
    pub(crate) compiled: Arc<CompiledStrategy>,
    deciders: Mutex<HashMap<(String, usize), BatchDecider>>,
}

impl NativeStrategy {
    /// A fresh compiled copy (a worker's own; see `credence_app::backtest::Job`).
    pub(crate) fn copy(&self) -> PyResult<CompiledStrategy> {
        credence_engine::compile(&self.source).map_err(engine_error)
    }
}

#[pymethods]
impl NativeStrategy {
    /// Reads and compiles a package directory or `.tar.gz`.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<NativeStrategy> {
        py.detach(|| {
            let source = credence_app::package_dir::read(&path).map_err(native_error)?;
            let compiled = credence_engine::compile(&source).map_err(|e| {
                let message = format!("{}: {e}", path.display());
                let app = AppError::from(e);
                crate::NativeError::new_err((
                    app.code.to_string(),
                    message,
                    app.details.to_string(),
                ))
            })?;
            Ok(NativeStrategy {
                source,
                compiled: Arc::new(compiled),
                deciders: Mutex::new(HashMap::new()),
            })
        })
    }

    #[getter]
    fn name(&self) -> String {
        self.compiled.name().to_string()
    }

    #[getter]
    fn version(&self) -> String {
        self.compiled.version().to_string()
    }

    #[getter]
    fn label(&self) -> Option<String> {
        self.compiled.label().map(str::to_string)
    }

    #[getter]
    fn currency(&self) -> String {
        self.compiled.currency().to_string()
    }

    #[getter]
    fn languages(&self) -> Vec<String> {
        self.compiled.languages().to_vec()
    }

    #[getter]
    fn flows(&self) -> Vec<String> {
        self.compiled.flow_names().map(str::to_string).collect()
    }

    /// The input fields `flow` declares, in schema order.
    fn input_fields(&self, flow: &str) -> PyResult<Vec<String>> {
        let flow = self.compiled.flow(flow).map_err(engine_error)?;
        Ok(flow
            .schema
            .fields
            .iter()
            .map(|(name, _)| name.to_string())
            .collect())
    }

    /// Runs the embedded test cases: a JSON list of `{name, file, flow, passed, error,
    /// mismatches: [{field, expected, got}]}`.
    fn validate(&self, py: Python<'_>) -> String {
        py.detach(|| {
            let results: Vec<serde_json::Value> = self
                .compiled
                .run_cases()
                .into_iter()
                .map(|r| {
                    serde_json::json!({
                        "name": r.name,
                        "file": r.file,
                        "flow": r.flow,
                        "passed": r.mismatches.is_empty() && r.error.is_none(),
                        "error": r.error,
                        "mismatches": r.mismatches.iter().map(|m| serde_json::json!({
                            "field": m.field, "expected": m.expected, "got": m.got,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            serde_json::Value::Array(results).to_string()
        })
    }

    /// The embedded test cases as JSON text: `[{name, file, flow, as_of, input, with_data}]`,
    /// each input with what it extends resolved; `with_data` when the case gives provider
    /// answers.
    fn cases(&self) -> String {
        let cases: Vec<serde_json::Value> = self
            .compiled
            .cases()
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name, "file": c.file, "flow": c.flow,
                    "as_of": c.as_of.to_string(), "input": c.input,
                    "with_data": !c.data.is_empty(),
                })
            })
            .collect();
        serde_json::Value::Array(cases).to_string()
    }

    /// Decides one input (JSON text) offline, as `credence decide` does; the decision as JSON
    /// text, the same bytes the command prints on one line.
    #[pyo3(signature = (flow, input_json, as_of=None, language=None, trace=false))]
    fn decide_json(
        &self,
        py: Python<'_>,
        flow: &str,
        input_json: &str,
        as_of: Option<&str>,
        language: Option<String>,
        trace: bool,
    ) -> PyResult<String> {
        let as_of = as_of_date(as_of)?;
        py.detach(|| {
            let input: serde_json::Value = serde_json::from_str(input_json).map_err(|e| {
                error(
                    "invalid_input",
                    format!(
                        "the input is not JSON: {e} at line {}, column {}",
                        e.line(),
                        e.column()
                    ),
                )
            })?;
            let options = EvalOptions {
                as_of,
                language: language.unwrap_or_else(|| "en".into()),
                full_trace: trace,
            };
            let decision = self
                .compiled
                .decide_json(flow, &input, &options)
                .map_err(engine_error)?;
            serde_json::to_string(&decision)
                .map_err(|e| error("internal", format!("serialising the decision: {e}")))
        })
    }

    /// Decides every row of an Arrow stream on `threads` workers; the answers as an Arrow
    /// stream, one row per input row in order. `trace_fields` are (name, type) pairs, the type
    /// `float64`, `bool`, `string` or `infer` (from the first batch).
    #[pyo3(signature = (flow, data, as_of=None, language=None, trace_fields=Vec::new(), threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn decide_batch(
        &self,
        py: Python<'_>,
        flow: &str,
        data: &Bound<'_, PyAny>,
        as_of: Option<&str>,
        language: Option<String>,
        trace_fields: Vec<(String, String)>,
        threads: Option<usize>,
    ) -> PyResult<Py<PyAny>> {
        let as_of = as_of_date(as_of)?;
        let mut fields = Vec::new();
        for (name, kind) in trace_fields {
            let kind = TraceFieldType::parse(&kind).ok_or_else(|| {
                error(
                    "invalid_input",
                    format!(
                        "trace field {name}: type {kind:?} is not float64, bool, string or infer"
                    ),
                )
            })?;
            fields.push((name, kind));
        }
        self.compiled.flow(flow).map_err(engine_error)?;
        let (_, batches) = read_stream(data)?;
        let workers = crate::threads(threads);
        let key = (flow.to_string(), workers);
        let mut options = BatchOptions {
            as_of,
            language,
            trace_fields: fields,
        };
        // The deciders' lock is taken with the GIL released: a thread waiting for it while
        // holding the GIL would keep the thread that holds it from taking the GIL back.
        let (schema, answers) = py.detach(|| -> PyResult<_> {
            let mut deciders = self
                .deciders
                .lock()
                .map_err(|_| error("internal", "a batch decider panicked earlier"))?;
            if !deciders.contains_key(&key) {
                let copies = (0..workers)
                    .map(|_| self.copy())
                    .collect::<PyResult<Vec<_>>>()?;
                let decider = BatchDecider::new(copies, flow).map_err(native_error)?;
                deciders.insert(key.clone(), decider);
            }
            let decider = deciders
                .get_mut(&key)
                .ok_or_else(|| error("internal", "the batch decider vanished"))?;
            let mut answers = Vec::with_capacity(batches.len());
            for batch in &batches {
                let answer = decider.decide(batch, &options).map_err(native_error)?;
                // Inferred trace types are fixed by the first batch: every batch of the
                // answer has one schema.
                for (field, (_, kind)) in answer
                    .schema()
                    .fields()
                    .iter()
                    .skip(answer.num_columns() - options.trace_fields.len())
                    .zip(options.trace_fields.iter_mut())
                {
                    if *kind == TraceFieldType::Infer {
                        *kind = match field.data_type() {
                            arrow_schema::DataType::Float64 => TraceFieldType::Float64,
                            arrow_schema::DataType::Boolean => TraceFieldType::Boolean,
                            _ => TraceFieldType::Utf8,
                        };
                    }
                }
                answers.push(answer);
            }
            let schema = match answers.first() {
                Some(first) => first.schema(),
                None => {
                    let types: Vec<(String, arrow_schema::DataType)> = options
                        .trace_fields
                        .iter()
                        .map(|(name, kind)| {
                            let data_type = match kind {
                                TraceFieldType::Float64 => arrow_schema::DataType::Float64,
                                TraceFieldType::Boolean => arrow_schema::DataType::Boolean,
                                _ => arrow_schema::DataType::Utf8,
                            };
                            (name.clone(), data_type)
                        })
                        .collect();
                    Arc::new(BatchDecider::schema(&types))
                }
            };
            Ok((schema, answers))
        })?;
        stream_capsule(py, schema, answers)
    }
}
