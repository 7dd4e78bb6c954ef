//! `credence backtest`: reads historical rows (CSV, JSON Lines, or a data directory's decision
//! log), evaluates each under the strategy and an optional challenger on every core, and
//! writes the summary JSON, the HTML report and the per-row diff of changed outcomes.
//!
//! Streaming: a reader thread hands chunks of raw rows to one worker per core through a bounded
//! channel (memory stays flat whatever the file size); each worker keeps its own tally; the
//! tallies merge at the end (exact sums, so the summary does not depend on the split), and a
//! writer puts diff lines back in input order.
//!
//! `sources.rs` reads the rows (each format a `RowSource`), `cells.rs` types their cells,
//! `evaluate.rs` decides a row with each strategy, `diff.rs` writes the changed outcomes.

mod cells;
mod diff;
mod evaluate;
mod sources;

use cells::*;
use diff::*;
use evaluate::*;
pub use sources::open_for_reading;
use sources::*;

use crate::csv_rows::{CsvRecord, CsvRows};
use anyhow::{bail, Context};
use credence_backtest::report::{self, ReportContext};
use credence_backtest::{
    Performance, RowResult, StrategyLabel, StrategyResult, Tally, TallyOptions,
};
use credence_engine::data::{DataAnswer, DataRecord, Evaluation};
use credence_engine::{CompiledStrategy, Decision, EvalOptions, FieldKind, StepDetail};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

#[derive(Debug, clap::Args)]
pub struct BacktestArgs {
    /// The strategy package directory (the champion).
    #[arg(long)]
    pub strategy: PathBuf,
    /// A second package directory to compare against (the challenger).
    #[arg(long)]
    pub challenger: Option<PathBuf>,
    /// The flow to run, e.g. application.
    #[arg(long)]
    pub flow: String,
    /// A CSV or Parquet file (columns = input field names; `step.field` columns are recorded
    /// provider answers), a JSON Lines file (`.jsonl`/`.ndjson`, one flow input per line, as `credence
    /// decide` takes it), or a data directory (its decision log, with recorded provider data).
    #[arg(long)]
    pub input: PathBuf,
    /// Write the summary JSON here (`-` for standard output, the default).
    #[arg(long)]
    pub summary_json: Option<PathBuf>,
    /// Write the self-contained HTML report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write a CSV of the rows whose outcome differs between the strategies here.
    #[arg(long)]
    pub diff: Option<PathBuf>,
    /// A column to break results down by (grade, segment, channel); repeat for several.
    #[arg(long = "by", value_name = "COLUMN")]
    pub segments: Vec<String>,
    /// The outcome column: 1/0, true/false, bad/good. Used when present.
    #[arg(long, default_value = "bad")]
    pub bad_column: String,
    /// Exposure at default (else the granted limit). Used when present.
    #[arg(long, default_value = "exposure")]
    pub exposure_column: String,
    /// A realised loss amount. Used when present.
    #[arg(long, default_value = "loss")]
    pub loss_column: String,
    /// A probability of default given with the row (else the strategy's scorecard or model PD,
    /// else the observed outcome). Used when present.
    #[arg(long, default_value = "pd")]
    pub pd_column: String,
    /// Loss given default for expected loss (PD × EAD × LGD).
    #[arg(long, default_value = "0.45")]
    pub lgd: String,
    /// Decide as of this date (YYYY-MM-DD). Required for files (a back-test must not depend on
    /// the day it runs); a decision log replays each decision at its recorded date.
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// The scorecard or model step whose score is charted [default: the first in the trace].
    #[arg(long)]
    pub score_step: Option<String>,
    /// Width of a score-distribution bin.
    #[arg(long, default_value_t = 10.0)]
    pub score_bin_width: f64,
    /// The column that names a row in the diff file.
    #[arg(long, default_value = "application_id")]
    pub id_column: String,
    /// Worker threads [default: one per core].
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Rows per chunk handed to a worker.
const CHUNK_ROWS: usize = 512;

enum RawRow {
    Csv(CsvRecord),
    Json(String),
    Logged {
        input: String,
        decision: String,
        as_of: String,
    },
}

/// Where each kind of column is, by name.
#[derive(Clone)]
struct Columns {
    /// Looked up for every row (outcome, id and segment columns): Fx-hashed, the header being
    /// the user's own file.
    index: FxHashMap<String, usize>,
    /// `step.field` columns: step → (field, column), fields in name order.
    data: BTreeMap<String, Vec<(String, usize)>>,
}

struct Side {
    strategy: CompiledStrategy,
    /// The flow's input fields in schema order, with their kinds (for typing CSV text).
    fields: Vec<(String, FieldKind)>,
    /// For CSV input: the column of each field, in the same order.
    columns: Vec<Option<usize>>,
}

impl Side {
    fn set_columns(&mut self, columns: &Columns) {
        self.columns = self
            .fields
            .iter()
            .map(|(name, _)| columns.index.get(name).copied())
            .collect();
    }
}

struct Job {
    champion: Side,
    challenger: Option<Side>,
    flow: String,
    as_of: Option<chrono::NaiveDate>,
    columns: Option<Columns>,
    args_segments: Vec<String>,
    bad_column: String,
    exposure_column: String,
    loss_column: String,
    pd_column: String,
    id_column: String,
    score_step: Option<String>,
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

pub fn run(args: BacktestArgs) -> anyhow::Result<()> {
    let lgd = Decimal::from_str(&args.lgd)
        .ok()
        .filter(|l| *l >= Decimal::ZERO && *l <= Decimal::ONE)
        .with_context(|| {
            format!(
                "--lgd {}: give a fraction between 0 and 1, e.g. 0.45",
                args.lgd
            )
        })?;
    if !(args.score_bin_width.is_finite() && args.score_bin_width > 0.0) {
        bail!("--score-bin-width must be a positive number");
    }
    let as_of = args
        .as_of
        .as_deref()
        .map(|text| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .with_context(|| format!("--as-of must be a date written YYYY-MM-DD, got {text}"))
        })
        .transpose()?;
    let from_log = args.input.is_dir();
    if !from_log && as_of.is_none() {
        bail!("--as-of DATE is required for a file input: a back-test must not depend on the day it runs");
    }
    let sides = || -> anyhow::Result<(Side, Option<Side>)> {
        let champion = side(&args.strategy, &args.flow)?;
        let challenger = args
            .challenger
            .as_deref()
            .map(|dir| side(dir, &args.flow))
            .transpose()?;
        Ok((champion, challenger))
    };
    let (mut champion, mut challenger) = sides()?;
    let format = Format::of(&args.input)?;
    let total_bytes = if from_log {
        0
    } else {
        std::fs::metadata(&args.input)
            .with_context(|| format!("reading {}", args.input.display()))?
            .len()
    };
    let progress = indicatif::ProgressBar::with_draw_target(
        (total_bytes > 0).then_some(total_bytes),
        indicatif::ProgressDrawTarget::stderr(),
    );
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} back-testing [{elapsed_precise}] {wide_bar} {percent}% ETA {eta} ({msg})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (columns, reader): (Option<Columns>, Box<dyn RowSource>) = match format {
        Format::Csv => {
            let file = std::fs::File::open(&args.input)
                .with_context(|| format!("opening {}", args.input.display()))?;
            let mut rows = CsvRows::new(file);
            let headers = rows
                .header()
                .with_context(|| format!("{}: reading the header", args.input.display()))?;
            let columns = columns_of(&headers);
            check_segments(&args.segments, &columns, &args.input, &headers)?;
            champion.set_columns(&columns);
            if let Some(challenger) = challenger.as_mut() {
                challenger.set_columns(&columns);
            }
            (Some(columns), Box::new(CsvSource { rows }))
        }
        Format::Parquet => {
            let source = ParquetSource::open(&args.input)?;
            let columns = columns_of(&source.header);
            check_segments(&args.segments, &columns, &args.input, &source.header)?;
            champion.set_columns(&columns);
            if let Some(challenger) = challenger.as_mut() {
                challenger.set_columns(&columns);
            }
            progress.set_length(source.rows);
            (Some(columns), Box::new(source))
        }
        Format::JsonLines => {
            let file = std::fs::File::open(&args.input)
                .with_context(|| format!("opening {}", args.input.display()))?;
            (
                None,
                Box::new(JsonLinesSource {
                    lines: BufReader::new(file),
                }),
            )
        }
        Format::DecisionLog => (None, Box::new(LogSource::open(&args.input, &args.flow)?)),
    };
    let job = |champion: Side, challenger: Option<Side>| Job {
        champion,
        challenger,
        flow: args.flow.clone(),
        as_of,
        columns: columns.clone(),
        args_segments: args.segments.clone(),
        bad_column: args.bad_column.clone(),
        exposure_column: args.exposure_column.clone(),
        loss_column: args.loss_column.clone(),
        pd_column: args.pd_column.clone(),
        id_column: args.id_column.clone(),
        score_step: args.score_step.clone(),
    };
    let options = TallyOptions {
        lgd,
        segments: args.segments.clone(),
        score_bin_width: args.score_bin_width,
    };
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);

    // Each worker evaluates with its own compiled copy of the strategies. A decision clones
    // many of the strategy's shared strings (step ids, reason codes, bin labels) into its trace
    // and drops them again; with one copy for all workers, those reference counts bounce
    // between cores on every row, which cost a quarter more CPU than separate copies.
    let mut jobs = vec![job(champion, challenger)];
    for _ in 1..threads {
        let (mut champion, mut challenger) = sides()?;
        if let Some(columns) = &columns {
            champion.set_columns(columns);
            if let Some(challenger) = challenger.as_mut() {
                challenger.set_columns(columns);
            }
        }
        jobs.push(job(champion, challenger));
    }
    let diff_file = args
        .diff
        .as_ref()
        .map(|path| {
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))
        })
        .transpose()?;
    let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(threads * 2);
    let chunk_rx = Arc::new(Mutex::new(chunk_rx));
    let (diff_tx, diff_rx) = sync_channel::<(u64, Vec<String>)>(threads * 4);

    let (outputs, rows_read, diff_rows) = std::thread::scope(|scope| -> anyhow::Result<_> {
        let writer = scope.spawn(move || write_diff(diff_file, diff_rx));
        let workers: Vec<_> = jobs
            .iter()
            .map(|context| {
                let chunk_rx = chunk_rx.clone();
                let diff_tx = diff_tx.clone();
                let options = options.clone();
                let want_diff = args.diff.is_some();
                scope.spawn(move || work(context, options, &chunk_rx, &diff_tx, want_diff))
            })
            .collect();
        drop(diff_tx);
        let rows_read = read_chunks(reader, &chunk_tx, &progress);
        drop(chunk_tx);
        let outputs: Vec<WorkerOutput> = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow::anyhow!("a back-test worker panicked"))
            })
            .collect::<anyhow::Result<_>>()?;
        let diff_rows = writer
            .join()
            .map_err(|_| anyhow::anyhow!("the diff writer panicked"))??;
        Ok((outputs, rows_read?, diff_rows))
    })?;
    progress.finish_and_clear();

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
    let context = &jobs[0];
    let label = |side: &Side| StrategyLabel {
        name: side.strategy.name().to_string(),
        version: side.strategy.version().to_string(),
    };
    let summary = tally.summary(
        label(&context.champion),
        context.challenger.as_ref().map(label),
    );
    let mut json = serde_json::to_value(&summary).context("serialising the summary")?;
    if let Some(object) = json.as_object_mut() {
        object.insert("flow".into(), args.flow.clone().into());
        object.insert("rows_read".into(), rows_read.into());
        object.insert("rejected_rows".into(), rejected.into());
        object.insert(
            "rejections".into(),
            rejections
                .iter()
                .map(|(row, message)| serde_json::json!({"row": row, "message": message}))
                .collect(),
        );
        object.insert(
            "as_of".into(),
            as_of
                .map_or("recorded".to_string(), |d| d.to_string())
                .into(),
        );
        if args.diff.is_some() {
            object.insert("diff_rows".into(), diff_rows.into());
        }
    }
    let text = serde_json::to_string_pretty(&json).context("serialising the summary")?;
    match args.summary_json.as_deref() {
        Some(path) if path != Path::new("-") => {
            std::fs::write(path, format!("{text}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        _ => println!("{text}"),
    }
    if let Some(path) = &args.report {
        let context = ReportContext {
            title: match &context.challenger {
                Some(b) => format!(
                    "Back-test: {} vs {}",
                    context.champion.strategy.name(),
                    b.strategy.name()
                ),
                None => format!("Back-test: {}", context.champion.strategy.name()),
            },
            flow: args.flow.clone(),
            input: args.input.file_name().map_or_else(
                || args.input.display().to_string(),
                |n| n.to_string_lossy().into(),
            ),
            score_step: args.score_step.clone(),
        };
        std::fs::write(path, report::html(&summary, &context))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let champion = &summary.strategies["champion"];
    eprintln!(
        "back-tested {} rows ({} rejected): champion approves {}{}",
        summary.rows,
        rejected,
        champion.approve_rate,
        summary
            .strategies
            .get("challenger")
            .map(|c| format!(", challenger {}", c.approve_rate))
            .unwrap_or_default()
    );
    Ok(())
}

enum Format {
    Csv,
    Parquet,
    JsonLines,
    DecisionLog,
}

impl Format {
    fn of(path: &Path) -> anyhow::Result<Format> {
        if path.is_dir() {
            if !path.join(credence_store::DATABASE_FILE).is_file() {
                bail!(
                    "{} is a directory without a Credence store ({} is missing)",
                    path.display(),
                    credence_store::DATABASE_FILE
                );
            }
            return Ok(Format::DecisionLog);
        }
        let name = path.to_string_lossy().to_lowercase();
        if name.ends_with(".csv") {
            Ok(Format::Csv)
        } else if name.ends_with(".parquet") {
            Ok(Format::Parquet)
        } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Ok(Format::JsonLines)
        } else {
            bail!(
                "--input {}: give a .csv, .parquet, .jsonl or .ndjson file, or a data directory",
                path.display()
            )
        }
    }
}

fn side(dir: &Path, flow: &str) -> anyhow::Result<Side> {
    let source = crate::package_dir::read(dir)?;
    let strategy =
        credence_engine::compile(&source).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let spec = strategy
        .flow(flow)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let fields = spec
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

fn columns_of(headers: &CsvRecord) -> Columns {
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

fn check_segments(
    segments: &[String],
    columns: &Columns,
    input: &Path,
    headers: &CsvRecord,
) -> anyhow::Result<()> {
    for segment in segments {
        if !columns.index.contains_key(segment) {
            bail!(
                "--by {segment}: {} has no such column (columns: {})",
                input.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(())
}

fn read_chunks(
    mut source: Box<dyn RowSource>,
    chunks: &SyncSender<Chunk>,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<u64> {
    let mut rows_read = 0u64;
    let mut number = 0u64;
    let mut rows = Vec::with_capacity(CHUNK_ROWS);
    let mut first_row = 1u64;
    while let Some((row, bytes)) = source.next_row()? {
        rows.push(row);
        rows_read += 1;
        progress.inc(bytes);
        if rows.len() == CHUNK_ROWS {
            progress.set_message(format!("{rows_read} rows"));
            let full = std::mem::replace(&mut rows, Vec::with_capacity(CHUNK_ROWS));
            if chunks
                .send(Chunk {
                    number,
                    first_row,
                    rows: full,
                })
                .is_err()
            {
                bail!("the back-test workers stopped early");
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
                    assert!(answer.ok && answer.reason.is_none() && answer.meta.is_null());
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
