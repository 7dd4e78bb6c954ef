//! The back-test runner: historical rows evaluated under a champion and an optional challenger
//! on every core, tallied, and the rows whose outcome differs written in input order.
//!
//! Streaming: the caller's [`RowSource`] (CSV, JSON Lines, Parquet, a decision log: the
//! command line opens them) is read on the calling thread and handed in chunks to one worker per
//! [`Job`] through a bounded channel, so memory stays flat whatever the input's size; each
//! worker keeps its own tally; the tallies merge at the end (exact sums, so the summary does not
//! depend on the split), and a writer puts diff lines back in input order.
//!
//! `csv_rows.rs` reads CSV records, `arrow_rows.rs` prints Arrow batches' rows as such records,
//! `cells.rs` types their cells, `evaluate.rs` decides a row with each strategy, `diff.rs`
//! writes the changed outcomes, and `batch.rs` decides Arrow batches row by row into Arrow
//! answers (the Python package and Spark).

mod arrow_rows;
pub mod batch;
mod cells;
mod csv_rows;
mod diff;
mod evaluate;

pub use arrow_rows::{header_of, BatchRows, BatchesSource};
use cells::*;
pub use csv_rows::{CsvRecord, CsvRows};
use diff::*;
use evaluate::*;

use crate::error::{AppError, ErrorCode};
use credence_backtest::{
    Performance, RowResult, StrategyLabel, StrategyResult, Summary, Tally, TallyOptions,
};
use credence_engine::data::{DataAnswer, DataRecord, Evaluation};
use credence_engine::{CompiledStrategy, Decision, EvalOptions, FieldKind, StepDetail};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;
use std::str::FromStr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// Rows per chunk handed to a worker.
pub const CHUNK_ROWS: usize = 512;

/// One historical row as its source read it.
pub enum RawRow {
    /// A CSV or Parquet row: cells by column.
    Csv(CsvRecord),
    /// A JSON line: one flow input.
    Json(String),
    /// A logged decision: its input, its record (with the provider data it used) and its date.
    Logged {
        /// The input as received.
        input: String,
        /// The decision record's JSON.
        decision: String,
        /// The date it was made as of.
        as_of: String,
    },
}

/// Where back-test rows come from; the adapter reads files, the runner asks row by row.
pub trait RowSource: Send {
    /// The next raw row and the bytes read for it (for progress), or `None` at the end.
    fn next_row(&mut self) -> Result<Option<(RawRow, u64)>, AppError>;
}

/// Where each kind of column is, by name.
#[derive(Clone)]
pub struct Columns {
    /// Looked up for every row (outcome, id and segment columns): Fx-hashed, the header being
    /// the user's own file.
    index: FxHashMap<String, usize>,
    /// `step.field` columns: step → (field, column), fields in name order.
    data: BTreeMap<String, Vec<(String, usize)>>,
}

impl Columns {
    /// Whether the header has a column of this name.
    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}

/// One strategy of a back-test, ready to decide rows of one flow.
pub struct Side {
    strategy: CompiledStrategy,
    /// The flow's input fields in schema order, with their kinds (for typing CSV text).
    fields: Vec<(String, FieldKind)>,
    /// For CSV input: the column of each field, in the same order.
    columns: Vec<Option<usize>>,
}

impl Side {
    /// A compiled strategy deciding `flow`; an unknown flow is an error naming the known ones.
    pub fn new(strategy: CompiledStrategy, flow: &str) -> Result<Side, AppError> {
        let fields = strategy
            .flow(flow)?
            .schema
            .fields
            .iter()
            .map(|(name, field)| (name.to_string(), field.kind.clone()))
            .collect();
        Ok(Side {
            strategy,
            fields,
            columns: Vec::new(),
        })
    }

    /// The strategy.
    pub fn strategy(&self) -> &CompiledStrategy {
        &self.strategy
    }

    /// Reads CSV rows by these columns.
    pub fn set_columns(&mut self, columns: &Columns) {
        self.columns = self
            .fields
            .iter()
            .map(|(name, _)| columns.index.get(name).copied())
            .collect();
    }

    fn label(&self) -> StrategyLabel {
        StrategyLabel {
            name: self.strategy.name().to_string(),
            version: self.strategy.version().to_string(),
        }
    }
}

/// What one worker decides rows with: its own compiled copy of the strategies (a decision
/// clones many of the strategy's shared strings into its trace and drops them again; with one
/// copy for all workers, those reference counts bounce between cores on every row, which cost
/// a quarter more CPU than separate copies), and the columns that hold each row's outcome.
pub struct Job {
    /// The champion.
    pub champion: Side,
    /// The challenger, if any.
    pub challenger: Option<Side>,
    /// The flow decided.
    pub flow: String,
    /// The date rows are decided as of (none: each logged decision's own date).
    pub as_of: Option<chrono::NaiveDate>,
    /// For CSV input: where each column is.
    pub columns: Option<Columns>,
    /// Columns to break results down by.
    pub segments: Vec<String>,
    /// The outcome column (1/0, true/false, bad/good).
    pub bad_column: String,
    /// The exposure-at-default column.
    pub exposure_column: String,
    /// The realised-loss column.
    pub loss_column: String,
    /// The probability-of-default column.
    pub pd_column: String,
    /// The column that names a row in the diff.
    pub id_column: String,
    /// The scorecard or model step whose score is charted (none: the first in the trace).
    pub score_step: Option<String>,
}

/// What a back-test found.
pub struct BacktestRun {
    /// The merged tally of every row decided.
    pub tally: Tally,
    /// Rows read from the source.
    pub rows_read: u64,
    /// Rows that could not be decided.
    pub rejected: u64,
    /// The first few of them, by row number, with why.
    pub rejections: Vec<(u64, String)>,
    /// Rows written to the diff.
    pub diff_rows: u64,
}

impl BacktestRun {
    /// The summary, with each side named by its strategy.
    pub fn summary(&self, job: &Job) -> Summary {
        self.tally.summary(
            job.champion.label(),
            job.challenger.as_ref().map(Side::label),
        )
    }

    /// The summary as `credence backtest` writes it: the tally's summary plus the flow, the rows
    /// read and rejected, the date and, with a diff, its row count.
    pub fn summary_json(
        &self,
        summary: &Summary,
        job: &Job,
        with_diff: bool,
    ) -> Result<serde_json::Value, AppError> {
        let mut json = serde_json::to_value(summary).map_err(|e| {
            AppError::new(ErrorCode::Internal, format!("serialising the summary: {e}"))
        })?;
        if let Some(object) = json.as_object_mut() {
            object.insert("flow".into(), job.flow.clone().into());
            object.insert("rows_read".into(), self.rows_read.into());
            object.insert("rejected_rows".into(), self.rejected.into());
            object.insert(
                "rejections".into(),
                self.rejections
                    .iter()
                    .map(|(row, message)| serde_json::json!({"row": row, "message": message}))
                    .collect(),
            );
            object.insert(
                "as_of".into(),
                job.as_of
                    .map_or("recorded".to_string(), |d| d.to_string())
                    .into(),
            );
            if with_diff {
                object.insert("diff_rows".into(), self.diff_rows.into());
            }
        }
        Ok(json)
    }
}

/// Runs a back-test: one worker per job (at least one), rows from `source`, the changed
/// outcomes to `diff` in input order. `progress` is told the rows read so far and the bytes of
/// each row as it is read.
pub fn run(
    jobs: &[Job],
    options: TallyOptions,
    source: Box<dyn RowSource>,
    diff: Option<Box<dyn Write + Send>>,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<BacktestRun, AppError> {
    if jobs.is_empty() {
        return Err(AppError::new(
            ErrorCode::Internal,
            "a back-test needs at least one worker",
        ));
    }
    let threads = jobs.len();
    let want_diff = diff.is_some();
    let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(threads * 2);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    let (diff_tx, diff_rx) = sync_channel::<(u64, Vec<String>)>(threads * 4);

    let (outputs, rows_read, diff_rows) = std::thread::scope(|scope| -> Result<_, AppError> {
        let writer = scope.spawn(move || write_diff(diff, diff_rx));
        let workers: Vec<_> = jobs
            .iter()
            .map(|job| {
                let chunk_rx = chunk_rx.clone();
                let diff_tx = diff_tx.clone();
                let options = options.clone();
                scope.spawn(move || work(job, options, &chunk_rx, &diff_tx, want_diff))
            })
            .collect();
        drop(diff_tx);
        let rows_read = read_chunks(source, &chunk_tx, progress);
        drop(chunk_tx);
        let panicked = |what: &str| AppError::new(ErrorCode::Internal, format!("{what} panicked"));
        let outputs: Vec<WorkerOutput> = workers
            .into_iter()
            .map(|w| w.join().map_err(|_| panicked("a back-test worker")))
            .collect::<Result<_, _>>()?;
        let diff_rows = writer
            .join()
            .map_err(|_| panicked("the diff writer"))?
            .map_err(|e| AppError::new(ErrorCode::Internal, format!("writing the diff: {e}")))?;
        Ok((outputs, rows_read?, diff_rows))
    })?;

    let mut tally = Tally::new(options);
    let mut rejected = 0;
    let mut rejections = Vec::new();
    for output in outputs {
        tally.merge(output.tally);
        rejected += output.rejected;
        rejections.extend(output.rejections);
    }
    rejections.sort();
    rejections.truncate(10);
    Ok(BacktestRun {
        tally,
        rows_read,
        rejected,
        rejections,
        diff_rows,
    })
}

struct Chunk {
    number: u64,
    first_row: u64,
    rows: Vec<RawRow>,
}

struct WorkerOutput {
    tally: Tally,
    rejected: u64,
    rejections: Vec<(u64, String)>,
}

/// Where each column of a header is: by name, and `step.field` columns by step.
pub fn columns_of(headers: &CsvRecord) -> Columns {
    let mut index = FxHashMap::default();
    let mut data: BTreeMap<String, Vec<(String, usize)>> = BTreeMap::new();
    for (i, name) in headers.iter().enumerate() {
        index.insert(name.to_string(), i);
        if let Some((step, field)) = name.split_once('.') {
            data.entry(step.to_string())
                .or_default()
                .push((field.to_string(), i));
        }
    }
    // In name order, as each row's answer map is built from them (a sorted build is linear).
    for fields in data.values_mut() {
        fields.sort();
    }
    Columns { index, data }
}

fn read_chunks(
    mut source: Box<dyn RowSource>,
    chunks: &SyncSender<Chunk>,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<u64, AppError> {
    let mut rows_read = 0u64;
    let mut number = 0u64;
    let mut rows = Vec::with_capacity(CHUNK_ROWS);
    let mut first_row = 1u64;
    while let Some((row, bytes)) = source.next_row()? {
        rows.push(row);
        rows_read += 1;
        progress(rows_read, bytes);
        if rows.len() == CHUNK_ROWS {
            let full = std::mem::replace(&mut rows, Vec::with_capacity(CHUNK_ROWS));
            if chunks
                .send(Chunk {
                    number,
                    first_row,
                    rows: full,
                })
                .is_err()
            {
                return Err(AppError::new(
                    ErrorCode::Internal,
                    "the back-test workers stopped early",
                ));
            }
            number += 1;
            first_row = rows_read + 1;
        }
    }
    if !rows.is_empty() {
        let _ = chunks.send(Chunk {
            number,
            first_row,
            rows,
        });
    }
    Ok(rows_read)
}

fn work(
    context: &Job,
    options: TallyOptions,
    chunks: &Mutex<Receiver<Chunk>>,
    diffs: &SyncSender<(u64, Vec<String>)>,
    want_diff: bool,
) -> WorkerOutput {
    let mut output = WorkerOutput {
        tally: Tally::new(options),
        rejected: 0,
        rejections: Vec::new(),
    };
    let mut recorded = DataRecord::offline();
    loop {
        let chunk = match chunks.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => break,
        };
        let Ok(chunk) = chunk else { break };
        let mut lines = Vec::new();
        for (offset, raw) in chunk.rows.iter().enumerate() {
            let row_number = chunk.first_row + offset as u64;
            match evaluate_row(context, raw, &mut recorded) {
                Ok((row, id)) => {
                    if want_diff {
                        if let Some(line) = diff_line(row_number, id.as_deref(), &row) {
                            lines.push(line);
                        }
                    }
                    output.tally.add(&row);
                }
                Err(message) => {
                    output.rejected += 1;
                    if output.rejections.len() < 10 {
                        output.rejections.push((row_number, message));
                    }
                }
            }
        }
        if want_diff && diffs.send((chunk.number, lines)).is_err() {
            break;
        }
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn recorded_answers_are_refilled_row_by_row_as_if_built_afresh() {
        let steps: BTreeMap<String, Vec<(String, usize)>> = [
            (
                "income".to_string(),
                vec![("monthly".to_string(), 0), ("employer".to_string(), 1)],
            ),
            ("liabilities".to_string(), vec![("debt".to_string(), 2)]),
        ]
        .into();
        // (cells, expected answers): income values, then liabilities values; None = no answer.
        let rows: [(
            [&str; 3],
            Option<serde_json::Value>,
            Option<serde_json::Value>,
        ); 5] = [
            (
                ["4200", "Acme", "310"],
                Some(json!({"monthly": 4200, "employer": "Acme"})),
                Some(json!({"debt": 310})),
            ),
            (
                ["3900", " ", "0.5"],
                Some(json!({"monthly": 3900})),
                Some(json!({"debt": 0.5})),
            ),
            (["", "", "12"], None, Some(json!({"debt": 12}))),
            (
                ["", "Initech", ""],
                Some(json!({"employer": "Initech"})),
                None,
            ),
            (
                ["true", "Acme", "-1"],
                Some(json!({"monthly": true, "employer": "Acme"})),
                Some(json!({"debt": -1})),
            ),
        ];
        let mut recorded = DataRecord::offline();
        let mut held = Vec::new();
        for (number, (cells, income, liabilities)) in rows.into_iter().enumerate() {
            let record = cells.iter().copied().collect::<CsvRecord>();
            refill_recorded_answers(&steps, &record, &mut recorded);
            for (step, expected) in [("income", income), ("liabilities", liabilities)] {
                let got = recorded.get(step).map(|answer| {
                    assert!(answer.ok && answer.reason.is_none() && answer.meta.is_none());
                    serde_json::to_value(answer.values.as_ref()).unwrap()
                });
                assert_eq!(got, expected, "row {number}, step {step}");
            }
            // A decision of an earlier row still holding its answer keeps what it saw.
            if let Some(answer) = recorded.get("liabilities") {
                held.push((number, answer.values.clone()));
            }
        }
        assert_eq!(
            held[0].1.get("debt"),
            Some(&json!(310)),
            "a held answer was overwritten"
        );

        // A header naming a field twice: the last non-empty column wins, an empty one is skipped.
        let twice: BTreeMap<String, Vec<(String, usize)>> = [(
            "income".to_string(),
            vec![("monthly".to_string(), 0), ("monthly".to_string(), 1)],
        )]
        .into();
        for (cells, expected) in [
            (["100", ""], json!(100)),
            (["100", "200"], json!(200)),
            (["", "300"], json!(300)),
        ] {
            let mut recorded = DataRecord::offline();
            refill_recorded_answers(
                &twice,
                &cells.iter().copied().collect::<CsvRecord>(),
                &mut recorded,
            );
            let answer = recorded.get("income").expect("an answer");
            assert_eq!(answer.values.get("monthly"), Some(&expected), "{cells:?}");
        }
    }

    #[test]
    fn recorded_numbers_read_as_serde_json_reads_them() {
        for text in [
            "0",
            "-0",
            "7",
            "-12",
            "5000.25",
            "0.1",
            "1e3",
            "-2.5E-3",
            "1E+2",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999",
            "01",
            "+5",
            ".5",
            "5.",
            "1e",
            "--1",
            "1.2.3",
            "NaN",
            "inf",
            "",
            "-",
            "12a",
            "1e400",
        ] {
            assert_eq!(
                json_number(text),
                serde_json::Number::from_str(text).ok(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn cells_are_trimmed_as_str_trim_trims() {
        for text in [
            "",
            " ",
            "12",
            " 12",
            "12 ",
            "\t12\n",
            "\u{0B}12",
            "12\u{A0}",
            "\u{3000}x",
            "é",
            " é ",
            "a b",
            "-1.5",
        ] {
            assert_eq!(trim_cell(text), text.trim(), "{text:?}");
        }
    }

    #[test]
    fn cells_take_the_type_their_field_declares() {
        let number = FieldKind::Number {
            min: None,
            max: None,
        };
        // Numbers stay text, parsed by the schema as exact decimals.
        assert_eq!(
            typed_cell(Some(&number), "1350.75"),
            serde_json::json!("1350.75")
        );
        let integer = FieldKind::Integer {
            min: None,
            max: None,
        };
        assert_eq!(typed_cell(Some(&integer), "12"), serde_json::json!(12));
        assert_eq!(
            typed_cell(Some(&FieldKind::Boolean), "yes"),
            serde_json::json!(true)
        );
        assert_eq!(typed_cell(None, "rent"), serde_json::json!("rent"));
        assert_eq!(data_cell("0.5476"), serde_json::json!(0.5476));
        assert_eq!(data_cell("true"), serde_json::json!(true));
        assert_eq!(bad_flag("bad"), Ok(true));
        assert_eq!(bad_flag("0"), Ok(false));
        assert!(bad_flag("maybe").is_err());
        assert_eq!(csv_field("a,b"), "\"a,b\"");
    }
}
