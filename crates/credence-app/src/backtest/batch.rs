//! Deciding whole Arrow record batches, for the Python package and Spark: one decision per row, in input order, on every core, each row typed exactly as a back-test types a row of a file — so a batch decides as `credence backtest` and `credence decide` do — and the answers returned as Arrow columns.
//!
//! A [`BatchDecider`] holds one compiled copy of the strategy per worker (shared copies make
//! the workers' reference counts bounce between cores; see [`Job`]). A batch is cut into runs of
//! [`RUN_ROWS`] rows that the workers take in turn; each worker prints its rows into a reused
//! record, decides them and keeps its answers by run, and the runs are put back in order.
//!
//! Money and rates come back as `Decimal128(38, 10)` (exact for every amount below 10²⁸ with up
//! to ten decimals; a strategy's values with more decimals are rounded half-even to ten), the
//! reason codes as a list column, a row that could not be decided as a null outcome with its
//! `error`.

use super::arrow_rows::{header_of, BatchRows};
use super::*;
use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Decimal128Builder, Float64Builder, Int32Builder, ListBuilder,
    StringBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Rows a worker takes at a time.
pub const RUN_ROWS: usize = 1024;

/// The precision and scale of money and rate columns.
pub const DECIMAL_PRECISION: u8 = 38;
/// See [`DECIMAL_PRECISION`].
pub const DECIMAL_SCALE: i8 = 10;

/// How a trace field's column is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFieldType {
    /// Numbers (`Float64`); anything else is null.
    Float64,
    /// Booleans; anything else is null.
    Boolean,
    /// Text as is, other values as JSON text.
    Utf8,
    /// Chosen from the batch's values: numbers, booleans, else text.
    Infer,
}

impl TraceFieldType {
    /// `float64`, `bool`, `string` or `infer`.
    pub fn parse(text: &str) -> Option<TraceFieldType> {
        match text {
            "float64" | "double" | "float" => Some(TraceFieldType::Float64),
            "bool" | "boolean" => Some(TraceFieldType::Boolean),
            "string" | "str" | "utf8" => Some(TraceFieldType::Utf8),
            "infer" => Some(TraceFieldType::Infer),
            _ => None,
        }
    }
}

/// What a batch is decided with.
#[derive(Debug, Clone)]
pub struct BatchOptions {
    /// The date every row is decided as of.
    pub as_of: chrono::NaiveDate,
    /// The language of reason texts (none: the strategy's first).
    pub language: Option<String>,
    /// Trace values to return as columns, by name (`dti`, a feature) or `step.field`
    /// (`app_score.score`), with their column types.
    pub trace_fields: Vec<(String, TraceFieldType)>,
}

/// The answer columns of a run of rows, appended to as each row is decided (its decision then
/// dropped at once, on the thread that made it) and finished into a record batch per run.
struct AnswerColumns {
    outcome: StringBuilder,
    counter_offer: BooleanBuilder,
    limit: Decimal128Builder,
    apr: Decimal128Builder,
    requested: Decimal128Builder,
    term: Int32Builder,
    reasons: ListBuilder<StringBuilder>,
    arm: StringBuilder,
    version: StringBuilder,
    error: StringBuilder,
    /// Each trace field's values of the run's rows.
    trace: Vec<Vec<serde_json::Value>>,
}

impl AnswerColumns {
    fn new(trace_fields: usize) -> Result<AnswerColumns, AppError> {
        let decimal = || {
            Decimal128Builder::with_capacity(RUN_ROWS)
                .with_precision_and_scale(DECIMAL_PRECISION, DECIMAL_SCALE)
        };
        Ok(AnswerColumns {
            outcome: StringBuilder::with_capacity(RUN_ROWS, RUN_ROWS * 7),
            counter_offer: BooleanBuilder::with_capacity(RUN_ROWS),
            limit: decimal()?,
            apr: decimal()?,
            requested: decimal()?,
            term: Int32Builder::with_capacity(RUN_ROWS),
            reasons: ListBuilder::new(StringBuilder::new()),
            arm: StringBuilder::with_capacity(RUN_ROWS, RUN_ROWS * 8),
            version: StringBuilder::with_capacity(RUN_ROWS, RUN_ROWS * 64),
            error: StringBuilder::new(),
            trace: vec![Vec::with_capacity(RUN_ROWS); trace_fields],
        })
    }

    /// Appends one row's answer.
    fn push(
        &mut self,
        decision: &Result<Decision, String>,
        version: &str,
        trace: Vec<serde_json::Value>,
    ) {
        self.version.append_value(version);
        match decision {
            Ok(d) => {
                self.outcome.append_value(d.outcome.as_str());
                self.counter_offer.append_value(d.counter_offer);
                self.limit.append_option(d.limit.and_then(scaled));
                self.apr.append_option(d.apr.and_then(scaled));
                self.requested
                    .append_option(d.requested_amount.and_then(scaled));
                self.term
                    .append_option(d.term_months.and_then(|t| i32::try_from(t).ok()));
                for reason in &d.reasons {
                    self.reasons.values().append_value(&reason.code);
                }
                self.reasons.append(true);
                self.arm.append_option(d.arm.as_deref());
                self.error.append_null();
            }
            Err(message) => {
                self.outcome.append_null();
                self.counter_offer.append_null();
                self.limit.append_null();
                self.apr.append_null();
                self.requested.append_null();
                self.term.append_null();
                self.reasons.append(true);
                self.arm.append_null();
                self.error.append_value(message);
            }
        }
        let mut values = trace.into_iter();
        for field in &mut self.trace {
            field.push(values.next().unwrap_or(serde_json::Value::Null));
        }
    }

    /// The run's record batch; the builders start over for the next run.
    fn finish(
        &mut self,
        trace_fields: &[(String, TraceFieldType)],
    ) -> Result<RecordBatch, AppError> {
        let rows = self.outcome.len();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.outcome.finish()),
            Arc::new(self.counter_offer.finish()),
            Arc::new(self.limit.finish()),
            Arc::new(self.apr.finish()),
            Arc::new(self.term.finish()),
            Arc::new(self.requested.finish()),
            Arc::new(self.reasons.finish()),
            Arc::new(self.arm.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.error.finish()),
        ];
        let mut trace_types = Vec::new();
        for ((name, kind), values) in trace_fields.iter().zip(&mut self.trace) {
            let (data_type, column) = trace_column(*kind, values.iter().map(Some), rows);
            values.clear();
            trace_types.push((name.clone(), data_type));
            columns.push(column);
        }
        RecordBatch::try_new(Arc::new(BatchDecider::schema(&trace_types)), columns).map_err(|e| {
            AppError::new(
                ErrorCode::Internal,
                format!("assembling the batch's answer: {e}"),
            )
        })
    }
}

/// Decides record batches with one strategy's flow on every worker.
pub struct BatchDecider {
    jobs: Vec<Job>,
}

impl BatchDecider {
    /// A decider with one worker per compiled copy of the strategy (at least one) for `flow`.
    pub fn new(copies: Vec<CompiledStrategy>, flow: &str) -> Result<BatchDecider, AppError> {
        if copies.is_empty() {
            return Err(AppError::new(
                ErrorCode::Internal,
                "a batch decider needs at least one compiled strategy",
            ));
        }
        let jobs = copies
            .into_iter()
            .map(|strategy| {
                Ok(Job {
                    champion: Side::new(strategy, flow)?,
                    challenger: None,
                    flow: flow.to_string(),
                    as_of: None,
                    columns: None,
                    segments: Vec::new(),
                    bad_column: String::new(),
                    exposure_column: String::new(),
                    loss_column: String::new(),
                    pd_column: String::new(),
                    id_column: String::new(),
                    score_step: None,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok(BatchDecider { jobs })
    }

    /// How many workers decide a batch.
    pub fn workers(&self) -> usize {
        self.jobs.len()
    }

    /// The strategy.
    pub fn strategy(&self) -> &CompiledStrategy {
        self.jobs[0].champion.strategy()
    }

    /// The columns a batch's answer has, in order.
    pub fn schema(trace_fields: &[(String, DataType)]) -> Schema {
        let decimal = DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE);
        let mut fields = vec![
            Field::new("outcome", DataType::Utf8, true),
            Field::new("counter_offer", DataType::Boolean, true),
            Field::new("limit", decimal.clone(), true),
            Field::new("apr", decimal.clone(), true),
            Field::new("term_months", DataType::Int32, true),
            Field::new("requested_amount", decimal, true),
            Field::new(
                "reason_codes",
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                false,
            ),
            Field::new("arm", DataType::Utf8, true),
            Field::new("strategy_version", DataType::Utf8, false),
            Field::new("error", DataType::Utf8, true),
        ];
        fields.extend(
            trace_fields
                .iter()
                .map(|(name, kind)| Field::new(name, kind.clone(), true)),
        );
        Schema::new(fields)
    }

    /// Decides every row of `batch`; the answer has one row per input row, in order.
    pub fn decide(
        &mut self,
        batch: &RecordBatch,
        options: &BatchOptions,
    ) -> Result<RecordBatch, AppError> {
        let header = header_of(batch.schema_ref());
        let columns = columns_of(&header);
        let rows = BatchRows::new(batch)?;
        let language = options.language.clone().unwrap_or_else(|| {
            self.strategy()
                .languages()
                .first()
                .cloned()
                .unwrap_or_else(|| "en".into())
        });
        let eval = EvalOptions {
            as_of: options.as_of,
            language,
            full_trace: !options.trace_fields.is_empty(),
        };
        let trace_names: Vec<&str> = options
            .trace_fields
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        for job in &mut self.jobs {
            job.champion.set_columns(&columns);
            job.columns = Some(columns.clone());
            job.as_of = Some(options.as_of);
        }
        let total = rows.len();
        drop(rows);
        let version = self.strategy().version().to_string();
        let trace_kinds: Vec<(String, TraceFieldType)> = options.trace_fields.clone();
        let runs = total.div_ceil(RUN_ROWS);
        let next_run = AtomicUsize::new(0);
        type Run = (usize, Result<RecordBatch, AppError>);
        let answered: Vec<Vec<Run>> = std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .jobs
                .iter()
                .take(runs.max(1))
                .map(|job| {
                    let (next_run, eval, trace_names) = (&next_run, &eval, &trace_names);
                    let (version, trace_kinds) = (&version, &trace_kinds);
                    scope.spawn(move || {
                        // Formatters are the worker's own (they are not shared between threads).
                        let Ok(rows) = BatchRows::new(batch) else {
                            return Vec::new();
                        };
                        let mut done = Vec::new();
                        let mut record = CsvRecord::default();
                        let mut recorded = DataRecord::offline();
                        let mut columns = match AnswerColumns::new(trace_kinds.len()) {
                            Ok(columns) => columns,
                            Err(error) => return vec![(0, Err(error))],
                        };
                        loop {
                            let run = next_run.fetch_add(1, Ordering::Relaxed);
                            if run >= runs {
                                break;
                            }
                            let end = ((run + 1) * RUN_ROWS).min(total);
                            for row in run * RUN_ROWS..end {
                                rows.record_into(row, &mut record);
                                let (decision, trace) =
                                    answer_row(job, &record, &mut recorded, eval, trace_names);
                                columns.push(&decision, version, trace);
                            }
                            done.push((run, columns.finish(trace_kinds)));
                        }
                        done
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_default())
                .collect()
        });
        let mut by_run: Vec<Option<RecordBatch>> = (0..runs).map(|_| None).collect();
        for (run, columns) in answered.into_iter().flatten() {
            by_run[run] = Some(columns?);
        }
        if by_run.iter().any(Option::is_none) {
            return Err(AppError::new(
                ErrorCode::Internal,
                "a batch worker panicked; no answer is returned for the batch",
            ));
        }
        let runs: Vec<RecordBatch> = by_run.into_iter().flatten().collect();
        match runs.first() {
            None => AnswerColumns::new(trace_kinds.len())?.finish(&trace_kinds),
            Some(first) => {
                // Inferred trace types follow the first run, so every run has one schema.
                let schema = first.schema();
                let runs = runs
                    .iter()
                    .map(|run| conform(run, &schema))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(arrow_select::concat::concat_batches(&schema, &runs)?)
            }
        }
    }
}

/// `run` with its columns cast to `schema`'s types (a trace field inferred as text in one run
/// and as numbers in another becomes text).
fn conform(run: &RecordBatch, schema: &arrow_schema::SchemaRef) -> Result<RecordBatch, AppError> {
    if run.schema_ref() == schema {
        return Ok(run.clone());
    }
    let columns = run
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| arrow_cast::cast(column, field.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// A decimal as the mantissa of a `Decimal128(_, DECIMAL_SCALE)` value.
/// Computed in `i128` (a decimal's 96-bit mantissa times a power of ten fits), so amounts up to
/// the column's 10²⁸ are exact; none beyond (the engine's decimals stop at 7.9 · 10²⁸).
fn scaled(value: Decimal) -> Option<i128> {
    let value = value.round_dp(DECIMAL_SCALE as u32);
    let shift = DECIMAL_SCALE as u32 - value.scale();
    let mantissa = value.mantissa().checked_mul(10i128.pow(shift))?;
    (mantissa.unsigned_abs() < 10u128.pow(u32::from(DECIMAL_PRECISION))).then_some(mantissa)
}

/// One row decided: its record's cells typed and validated, evaluated with its recorded
/// provider answers; with trace fields, their values from the full trace.
fn answer_row(
    job: &Job,
    record: &CsvRecord,
    recorded: &mut DataRecord,
    eval: &EvalOptions,
    trace_names: &[&str],
) -> (Result<Decision, String>, Vec<serde_json::Value>) {
    let decision =
        csv_row(job, record, recorded).and_then(|row| decision_of(&job.champion, job, &row, eval));
    let trace = match (&decision, trace_names.is_empty()) {
        (Ok(decision), false) => trace_values(decision, trace_names),
        _ => Vec::new(),
    };
    (decision, trace)
}

/// The values of `names` in a decision's full trace: `step.field` is a field of a step's
/// result or values, a bare name any step's value of that name (a feature, a table output).
fn trace_values(decision: &Decision, names: &[&str]) -> Vec<serde_json::Value> {
    let steps = serde_json::to_value(&decision.trace.steps).unwrap_or_default();
    let steps = steps.as_array().map(Vec::as_slice).unwrap_or_default();
    names
        .iter()
        .map(|name| {
            let found = match name.split_once('.') {
                Some((step, field)) => steps
                    .iter()
                    .find(|s| s["step"] == *step)
                    .and_then(|s| s.get(field).or_else(|| s["values"].get(field))),
                None => steps.iter().rev().find_map(|s| s["values"].get(*name)),
            };
            found.cloned().unwrap_or(serde_json::Value::Null)
        })
        .collect()
}

/// A trace field's column: typed as asked, or by its values.
fn trace_column<'v>(
    kind: TraceFieldType,
    values: impl Iterator<Item = Option<&'v serde_json::Value>> + Clone,
    rows: usize,
) -> (DataType, ArrayRef) {
    let kind = match kind {
        TraceFieldType::Infer => {
            let mut present = values.clone().flatten().filter(|v| !v.is_null()).peekable();
            if present.peek().is_none() {
                TraceFieldType::Utf8
            } else if present.clone().all(|v| {
                // Decimals (scores, money) are written as exact decimal strings in traces.
                v.is_number() || v.as_str().is_some_and(|t| t.parse::<Decimal>().is_ok())
            }) {
                TraceFieldType::Float64
            } else if present.all(serde_json::Value::is_boolean) {
                TraceFieldType::Boolean
            } else {
                TraceFieldType::Utf8
            }
        }
        other => other,
    };
    match kind {
        TraceFieldType::Float64 => {
            let mut column = Float64Builder::with_capacity(rows);
            for value in values {
                column.append_option(value.and_then(|v| {
                    v.as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                }));
            }
            (DataType::Float64, Arc::new(column.finish()))
        }
        TraceFieldType::Boolean => {
            let mut column = BooleanBuilder::with_capacity(rows);
            for value in values {
                column.append_option(value.and_then(serde_json::Value::as_bool));
            }
            (DataType::Boolean, Arc::new(column.finish()))
        }
        TraceFieldType::Utf8 | TraceFieldType::Infer => {
            let mut column = StringBuilder::new();
            for value in values {
                match value {
                    None | Some(serde_json::Value::Null) => column.append_null(),
                    Some(serde_json::Value::String(s)) => column.append_value(s),
                    Some(other) => column.append_value(other.to_string()),
                }
            }
            (DataType::Utf8, Arc::new(column.finish()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::{Array, StringArray};

    const ROWS: usize = 2_500;

    fn example() -> CompiledStrategy {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/consumer-loan");
        credence_engine::compile(&crate::package_dir::read(&dir).unwrap()).unwrap()
    }

    /// The first rows of the bundled back-test data as text, as CSV text and as an Arrow batch
    /// of string columns.
    fn rows() -> (String, RecordBatch) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/backtest/lending_club_applications.csv");
        let text: String = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .take(ROWS + 1)
            .map(|l| format!("{l}\n"))
            .collect();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let headers = reader.headers().unwrap().clone();
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let columns: Vec<(String, ArrayRef)> = headers
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let cells: StringArray = records
                    .iter()
                    .map(|r| Some(r[i].to_string()).filter(|c| !c.is_empty()))
                    .collect();
                (name.to_string(), Arc::new(cells) as ArrayRef)
            })
            .collect();
        (text, RecordBatch::try_from_iter(columns).unwrap())
    }

    /// A batch decides as the back-test runner does on the same rows read from CSV, and the
    /// answer is the same whether one worker or two decide it (the runs come back in order).
    #[test]
    fn a_batch_decides_as_the_back_test_and_in_input_order_on_any_number_of_workers() {
        let (text, batch) = rows();
        let options = BatchOptions {
            as_of: chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
            language: None,
            trace_fields: vec![("app_score.score".into(), TraceFieldType::Infer)],
        };
        let mut one = BatchDecider::new(vec![example()], "application").unwrap();
        let mut two = BatchDecider::new(vec![example(), example()], "application").unwrap();
        let by_one = one.decide(&batch, &options).unwrap();
        let by_two = two.decide(&batch, &options).unwrap();
        assert_eq!(by_one, by_two);
        assert_eq!(by_one.num_rows(), ROWS);
        let outcomes = by_one.column(0).as_string::<i32>();
        let count = |o: &str| outcomes.iter().filter(|v| *v == Some(o)).count() as u64;

        let mut header_rows = CsvRows::new(std::io::Cursor::new(text.into_bytes()));
        let header = header_rows.header().unwrap();
        let columns = columns_of(&header);
        let mut side = Side::new(example(), "application").unwrap();
        side.set_columns(&columns);
        struct Rows<R: std::io::Read + Send>(CsvRows<R>);
        impl<R: std::io::Read + Send> RowSource for Rows<R> {
            fn next_row(&mut self) -> Result<Option<(RawRow, u64)>, AppError> {
                Ok(self
                    .0
                    .next_record()?
                    .map(|(r, bytes)| (RawRow::Csv(r), bytes)))
            }
        }
        let job = Job {
            columns: Some(columns),
            ..BatchDecider::new(vec![example()], "application")
                .unwrap()
                .jobs
                .remove(0)
        };
        let job = Job {
            champion: side,
            as_of: Some(options.as_of),
            ..job
        };
        let run = run(
            &[job],
            TallyOptions::default(),
            Box::new(Rows(header_rows)),
            None,
            &|_, _| {},
        )
        .unwrap();
        let summary = run.tally.summary(
            StrategyLabel {
                name: "a".into(),
                version: "v".into(),
            },
            None,
        );
        let champion = &summary.strategies["champion"];
        assert_eq!(run.rejected, 0);
        assert_eq!(
            (count("approve"), count("refer"), count("decline")),
            (champion.approved, champion.referred, champion.declined)
        );
        assert_eq!(by_one.column(9).null_count(), ROWS, "no row failed");
        let scores = by_one.column_by_name("app_score.score").unwrap();
        assert_eq!(scores.data_type(), &DataType::Float64);
        assert_eq!(scores.null_count(), 0);
    }

    #[test]
    fn a_row_that_cannot_be_decided_says_why_and_the_others_are_decided() {
        let (_, batch) = rows();
        let batch = batch.slice(0, 3);
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let at = batch.schema().index_of("requested_amount").unwrap();
        columns[at] = Arc::new(StringArray::from(vec![Some("6000"), Some("lots"), None]));
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[at] = Field::new("requested_amount", DataType::Utf8, true);
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let mut decider = BatchDecider::new(vec![example()], "application").unwrap();
        let options = BatchOptions {
            as_of: chrono::NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
            language: None,
            trace_fields: Vec::new(),
        };
        let answer = decider.decide(&batch, &options).unwrap();
        let errors = answer.column_by_name("error").unwrap().as_string::<i32>();
        assert!(errors.is_null(0));
        assert!(
            errors.value(1).contains("requested_amount"),
            "{}",
            errors.value(1)
        );
        assert!(
            errors.value(2).contains("requested_amount"),
            "{}",
            errors.value(2)
        );
        assert!(answer.column(0).is_null(1));
    }

    #[test]
    fn decimals_keep_ten_places_exactly() {
        assert_eq!(scaled(Decimal::new(899, 4)), Some(899_000_000));
        assert_eq!(scaled(Decimal::from(6000)), Some(60_000_000_000_000));
        assert_eq!(
            scaled(Decimal::new(1, 12)),
            Some(0),
            "beyond ten places: rounded"
        );
        // Large amounts stay exact: 10¹⁹ does not fit a decimal rescaled to ten places.
        let large = Decimal::from(10_000_000_000_000_000_000u128);
        assert_eq!(scaled(large), Some(10i128.pow(29)));
        assert_eq!(scaled(-large), Some(-(10i128.pow(29))));
        let mut column = Decimal128Builder::new()
            .with_precision_and_scale(DECIMAL_PRECISION, DECIMAL_SCALE)
            .unwrap();
        column.append_option(scaled(Decimal::new(1299, 4)));
        let array = column.finish();
        assert_eq!(array.value_as_string(0), "0.1299000000");
    }

    #[test]
    fn trace_columns_are_typed_by_their_values_or_as_asked() {
        let values = [
            serde_json::json!(0.25),
            serde_json::Value::Null,
            serde_json::json!(3),
        ];
        let (kind, column) = trace_column(TraceFieldType::Infer, values.iter().map(Some), 3);
        assert_eq!(kind, DataType::Float64);
        assert_eq!(column.null_count(), 1);
        let texts = [serde_json::json!("A"), serde_json::json!({"a": 1})];
        let (kind, column) = trace_column(TraceFieldType::Infer, texts.iter().map(Some), 2);
        assert_eq!(kind, DataType::Utf8);
        assert_eq!(column.as_string::<i32>().value(1), "{\"a\":1}");
        let (kind, column) = trace_column(TraceFieldType::Float64, texts.iter().map(Some), 2);
        assert_eq!(kind, DataType::Float64);
        assert_eq!(column.null_count(), 2, "text is no number");
    }
}
