//! `credence backtest`: reads historical rows (CSV, JSON Lines, or a data directory's decision
//! log), evaluates each under the strategy and an optional challenger on every core, and
//! writes the summary JSON, the HTML report and the per-row diff of changed outcomes.
//!
//! Streaming: a reader thread hands chunks of raw rows to one worker per core through a bounded
//! channel (memory stays flat whatever the file size); each worker keeps its own tally; the
//! tallies merge at the end (exact sums, so the summary does not depend on the split), and a
//! writer puts diff lines back in input order.

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

/// A Parquet file read as text cells, so that its rows take the CSV path (typed by the flow's
/// schema, `step.field` columns as provider answers): numbers print in their shortest exact
/// form, decimals exactly, dates as YYYY-MM-DD, nulls as empty cells.
struct ParquetSource {
    header: CsvRecord,
    rows: u64,
    batches: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    pending: std::collections::VecDeque<CsvRecord>,
}

impl ParquetSource {
    fn open(path: &Path) -> anyhow::Result<ParquetSource> {
        let file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
        let rows = u64::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let header = builder
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        let batches = builder
            .with_batch_size(CHUNK_ROWS)
            .build()
            .with_context(|| format!("{}: reading the Parquet row groups", path.display()))?;
        Ok(ParquetSource {
            header,
            rows,
            batches,
            pending: std::collections::VecDeque::new(),
        })
    }
}

impl RowSource for ParquetSource {
    fn next_row(&mut self) -> anyhow::Result<Option<(RawRow, u64)>> {
        use arrow_array::Array;
        loop {
            if let Some(record) = self.pending.pop_front() {
                return Ok(Some((RawRow::Csv(record), 1)));
            }
            let Some(batch) = self.batches.next() else {
                return Ok(None);
            };
            let batch = batch.context("decoding a Parquet record batch")?;
            let options = arrow_cast::display::FormatOptions::default().with_null("");
            let formatters = batch
                .columns()
                .iter()
                .map(|column| {
                    arrow_cast::display::ArrayFormatter::try_new(column.as_ref(), &options)
                })
                .collect::<Result<Vec<_>, _>>()
                .context("a Parquet column of a type that cannot be read as text")?;
            for row in 0..batch.num_rows() {
                let mut record = CsvRecord::default();
                for (formatter, column) in formatters.iter().zip(batch.columns()) {
                    if column.is_null(row) {
                        record.push_field("");
                    } else {
                        record.push_field(&formatter.value(row).to_string());
                    }
                }
                self.pending.push_back(record);
            }
        }
    }
}

trait RowSource: Send {
    /// The next raw row, or None at the end; `bytes` is advanced by what was read.
    fn next_row(&mut self) -> anyhow::Result<Option<(RawRow, u64)>>;
}

struct CsvSource {
    rows: CsvRows<std::fs::File>,
}

impl RowSource for CsvSource {
    fn next_row(&mut self) -> anyhow::Result<Option<(RawRow, u64)>> {
        Ok(self
            .rows
            .next_record()?
            .map(|(record, bytes)| (RawRow::Csv(record), bytes)))
    }
}

struct JsonLinesSource {
    lines: BufReader<std::fs::File>,
}

impl RowSource for JsonLinesSource {
    fn next_row(&mut self) -> anyhow::Result<Option<(RawRow, u64)>> {
        loop {
            let mut line = String::new();
            let read = self
                .lines
                .read_line(&mut line)
                .context("reading a JSON line")?;
            if read == 0 {
                return Ok(None);
            }
            if !line.trim().is_empty() {
                return Ok(Some((RawRow::Json(line), read as u64)));
            }
        }
    }
}

/// The decision log of a data directory, oldest first, for one flow.
struct LogSource {
    records: std::vec::IntoIter<(String, String, String)>,
}

impl LogSource {
    fn open(dir: &Path, flow: &str) -> anyhow::Result<LogSource> {
        let store = open_for_reading(dir)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let records = runtime.block_on(async {
            let mut ids = Vec::new();
            let mut before_seq = None;
            loop {
                let page = store
                    .list_decisions(&credence_store::DecisionQuery {
                        flow: Some(flow.to_string()),
                        before_seq,
                        limit: 1000,
                        ..Default::default()
                    })
                    .await?;
                let Some(last) = page.last() else { break };
                before_seq = Some(last.seq);
                ids.extend(page.into_iter().map(|d| d.id));
            }
            ids.reverse();
            let mut records = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(stored) = store.decision(&id).await? {
                    records.push((
                        stored.record.input,
                        stored.record.decision,
                        stored.record.as_of,
                    ));
                }
            }
            anyhow::Ok(records)
        })?;
        Ok(LogSource {
            records: records.into_iter(),
        })
    }
}

impl RowSource for LogSource {
    fn next_row(&mut self) -> anyhow::Result<Option<(RawRow, u64)>> {
        Ok(self.records.next().map(|(input, decision, as_of)| {
            (
                RawRow::Logged {
                    input,
                    decision,
                    as_of,
                },
                0,
            )
        }))
    }
}

/// Opens a data directory to read its history. As the appender when no server holds it, so
/// that the log's tail is indexed first; beside a running server the index may lag a moment.
pub fn open_for_reading(dir: &Path) -> anyhow::Result<Arc<dyn credence_store::Store>> {
    let store = match credence_store::SqliteStore::open(dir) {
        Ok(store) => store,
        Err(_) => {
            eprintln!(
                "note: a server is running on {}; decisions it has not indexed yet are left out",
                dir.display()
            );
            credence_store::SqliteStore::open_shared(dir)
                .with_context(|| format!("opening the store in {}", dir.display()))?
        }
    };
    Ok(Arc::new(store))
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

/// Writes diff lines in input order (chunks arrive in any order) and counts them.
fn write_diff(
    file: Option<std::fs::File>,
    lines: Receiver<(u64, Vec<String>)>,
) -> anyhow::Result<u64> {
    let Some(file) = file else {
        for _ in lines {}
        return Ok(0);
    };
    let mut out = std::io::BufWriter::new(file);
    writeln!(
        out,
        "row,id,champion_outcome,challenger_outcome,champion_limit,challenger_limit,champion_apr,challenger_apr,champion_reasons,challenger_reasons,bad"
    )?;
    let mut pending: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut next = 0u64;
    let mut written = 0u64;
    for (number, chunk) in lines {
        pending.insert(number, chunk);
        while let Some(chunk) = pending.remove(&next) {
            for line in chunk {
                writeln!(out, "{line}")?;
                written += 1;
            }
            next += 1;
        }
    }
    for (_, chunk) in pending {
        for line in chunk {
            writeln!(out, "{line}")?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

fn diff_line(row_number: u64, id: Option<&str>, row: &RowResult) -> Option<String> {
    let b = row.challenger.as_ref()?;
    let a = &row.champion;
    if a.outcome == b.outcome {
        return None;
    }
    let text = |d: Option<Decimal>| d.map(|d| d.normalize().to_string()).unwrap_or_default();
    let reasons = |r: &StrategyResult| {
        r.reasons
            .iter()
            .map(|c| c.as_ref())
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(format!(
        "{row_number},{},{},{},{},{},{},{},{},{},{}",
        csv_field(id.unwrap_or("")),
        a.outcome.as_str(),
        b.outcome.as_str(),
        text(a.limit),
        text(b.limit),
        text(a.apr),
        text(b.apr),
        csv_field(&reasons(a)),
        csv_field(&reasons(b)),
        row.performance
            .bad
            .map_or("", |bad| if bad { "1" } else { "0" })
    ))
}

/// A CSV cell as the JSON value its field's kind expects; text that does not parse stays text,
/// so validation names the field and what it expected.
fn typed_cell(kind: Option<&FieldKind>, text: &str) -> serde_json::Value {
    match kind {
        // Numbers stay text: the schema parses it as an exact decimal (never via a float).
        Some(FieldKind::Number { .. }) => text.into(),
        Some(FieldKind::Integer { .. }) => text
            .parse::<i64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| text.into()),
        Some(FieldKind::Boolean) => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true.into(),
            "false" | "0" | "no" => false.into(),
            _ => text.into(),
        },
        Some(FieldKind::List { .. }) => serde_json::from_str(text).unwrap_or_else(|_| text.into()),
        _ => text.into(),
    }
}

thread_local! {
    /// One back-test worker's typed cells of the row in hand, reused from row to row.
    static CELLS: std::cell::RefCell<Vec<serde_json::Value>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `text.trim()`, answered without decoding characters when both ends are plain ASCII (a CSV
/// cell nearly always): then there is nothing to trim.
fn trim_cell(text: &str) -> &str {
    let plain = |b: &u8| b.is_ascii_graphic();
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if plain(first) && plain(last) => text,
        _ => text.trim(),
    }
}

/// [`typed_cell`] into `cell`, reusing the string it holds: an empty cell is null.
#[inline]
fn type_cell_into(kind: &FieldKind, text: &str, cell: &mut serde_json::Value) {
    if text.is_empty() {
        *cell = serde_json::Value::Null;
        return;
    }
    match kind {
        FieldKind::Integer { .. } if text.parse::<i64>().is_ok() => {
            *cell = typed_cell(Some(kind), text);
        }
        FieldKind::Boolean | FieldKind::List { .. } => *cell = typed_cell(Some(kind), text),
        // Everything else is validated from its text.
        _ => match cell {
            serde_json::Value::String(held) => {
                held.clear();
                held.push_str(text);
            }
            _ => *cell = serde_json::Value::String(text.to_string()),
        },
    }
}

/// A recorded provider value from a CSV cell: a number, a boolean or text.
fn data_cell(text: &str) -> serde_json::Value {
    if let Some(number) = json_number(text) {
        return serde_json::Value::Number(number);
    }
    match text {
        "true" => true.into(),
        "false" => false.into(),
        _ => text.into(),
    }
}

/// `text` as the JSON number it spells, as `serde_json` reads one (an integer when it fits,
/// else a double), without running a JSON parser: `None` unless the whole text is a JSON number.
fn json_number(text: &str) -> Option<serde_json::Number> {
    let bytes = text.as_bytes();
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = usize::from(bytes.first() == Some(&b'-'));
    let whole = digits(at);
    if whole == 0 || (whole > 1 && bytes[at] == b'0') {
        return None;
    }
    at += whole;
    let integer = at == bytes.len();
    if bytes.get(at) == Some(&b'.') {
        let fraction = digits(at + 1);
        if fraction == 0 {
            return None;
        }
        at += 1 + fraction;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(at);
        if exponent == 0 {
            return None;
        }
        at += exponent;
    }
    if at != bytes.len() {
        return None;
    }
    // serde_json reads `-0` as the double -0.0.
    if integer && text != "-0" {
        if let Ok(i) = text.parse::<i64>() {
            return Some(i.into());
        }
        if let Ok(u) = text.parse::<u64>() {
            return Some(u.into());
        }
    }
    serde_json::Number::from_f64(text.parse::<f64>().ok()?)
}

fn bad_flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "bad" | "yes" => Ok(true),
        "0" | "false" | "good" | "no" => Ok(false),
        other => Err(format!(
            "bad flag {other:?}: give 1/0, true/false or bad/good"
        )),
    }
}

/// A row's cell by column (or input field) name; `None` when absent or empty.
type CellLookup<'r> = Box<dyn Fn(&str) -> Option<Cow<'r, str>> + 'r>;

/// One row's inputs, however it was read.
struct Row<'r> {
    cell: CellLookup<'r>,
    /// The CSV record, read by column position for the input fields.
    csv: Option<&'r CsvRecord>,
    json: Option<serde_json::Value>,
    data: Cow<'r, DataRecord>,
    as_of: Option<chrono::NaiveDate>,
}

/// A row given as a JSON object (a JSON line, a logged input): its fields are the cells.
fn json_row<'r>(
    value: serde_json::Value,
    data: Cow<'r, DataRecord>,
    as_of: Option<chrono::NaiveDate>,
) -> Row<'r> {
    let lookup = value.clone();
    Row {
        cell: Box::new(move |name: &str| match lookup.get(name)? {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) => Some(Cow::Owned(s.clone())),
            other => Some(Cow::Owned(other.to_string())),
        }),
        csv: None,
        json: Some(value),
        data,
        as_of,
    }
}

/// Puts a CSV row's recorded provider answers into `recorded`, one answer per data step that
/// has a non-empty column, keeping the maps and keys of the previous row where it can: a value
/// is replaced in place, and a map still shared with an earlier decision is copied first.
fn refill_recorded_answers(
    steps: &BTreeMap<String, Vec<(String, usize)>>,
    record: &CsvRecord,
    recorded: &mut DataRecord,
) {
    for (step, fields) in steps {
        let cell = |i: usize| record.get(i).map_or("", trim_cell);
        if fields.iter().all(|(_, i)| cell(*i).is_empty()) {
            recorded.remove(step);
            continue;
        }
        if recorded.get(step).is_none() {
            recorded.insert(
                step.clone(),
                DataAnswer {
                    ok: true,
                    values: Arc::default(),
                    reason: None,
                    meta: serde_json::Value::Null,
                },
            );
        }
        let Some(answer) = recorded.get_mut(step) else {
            continue;
        };
        let values = Arc::make_mut(&mut answer.values);
        // Columns of one field (a header naming it twice) are adjacent: the last non-empty wins.
        let field_texts = || {
            fields.chunk_by(|a, b| a.0 == b.0).map(|columns| {
                let text = columns
                    .iter()
                    .rev()
                    .map(|(_, i)| cell(*i))
                    .find(|t| !t.is_empty());
                (&columns[0].0, text)
            })
        };
        // Most rows fill the same fields as the row before: the map then holds exactly the
        // fields with text, in the same (name) order, and each value is replaced where it is.
        let mut held = values.iter_mut();
        let same_fields = field_texts()
            .filter_map(|(field, text)| Some((field, text?)))
            .all(|(field, text)| match held.next() {
                Some((key, value)) if key == field => {
                    *value = data_cell(text);
                    true
                }
                _ => false,
            });
        if same_fields && held.next().is_none() {
            continue;
        }
        // Otherwise field by field (values already replaced above are set again, to the same).
        for (field, text) in field_texts() {
            match text {
                None => {
                    values.remove(field.as_str());
                }
                Some(text) => match values.get_mut(field.as_str()) {
                    Some(value) => *value = data_cell(text),
                    None => {
                        values.insert(field.clone(), data_cell(text));
                    }
                },
            }
        }
    }
}

/// Evaluates one row. `recorded` is the worker's record of provider answers, refilled in place
/// for each CSV row so that its maps and keys are allocated once per worker, not once per row.
fn evaluate_row<'r>(
    context: &'r Job,
    raw: &'r RawRow,
    recorded: &'r mut DataRecord,
) -> Result<(RowResult, Option<String>), String> {
    let row = match raw {
        RawRow::Csv(record) => {
            let columns = context.columns.as_ref().ok_or("CSV row without a header")?;
            refill_recorded_answers(&columns.data, record, recorded);
            let data = Cow::Borrowed(&*recorded);
            Row {
                cell: Box::new(move |name: &str| {
                    let i = *columns.index.get(name)?;
                    let text = trim_cell(record.get(i)?);
                    (!text.is_empty()).then_some(Cow::Borrowed(text))
                }),
                csv: Some(record),
                json: None,
                data,
                as_of: context.as_of,
            }
        }
        RawRow::Json(line) => {
            let value: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format!("malformed JSON at column {}: {e}", e.column()))?;
            if !value.is_object() {
                return Err("a JSON line must be an object of input fields".into());
            }
            json_row(value, Cow::Owned(DataRecord::offline()), context.as_of)
        }
        RawRow::Logged {
            input,
            decision,
            as_of,
        } => {
            let value: serde_json::Value = serde_json::from_str(input)
                .map_err(|e| format!("logged input is not JSON: {e}"))?;
            let recorded: serde_json::Value = serde_json::from_str(decision)
                .map_err(|e| format!("logged decision is not JSON: {e}"))?;
            let date = chrono::NaiveDate::parse_from_str(as_of, "%Y-%m-%d")
                .map_err(|_| format!("logged as_of {as_of} is not a date"))?;
            json_row(
                value,
                Cow::Owned(DataRecord::from_decision_json(&recorded).offline_copy()),
                context.as_of.or(Some(date)),
            )
        }
    };
    let as_of = row.as_of.ok_or("no as-of date")?;
    let champion = decide(&context.champion, context, &row, as_of)?;
    let challenger = context
        .challenger
        .as_ref()
        .map(|side| decide(side, context, &row, as_of))
        .transpose()?;
    let cell = &row.cell;
    let performance = Performance {
        bad: cell(&context.bad_column)
            .map(|t| bad_flag(&t))
            .transpose()
            .map_err(|e| format!("{}: {e}", context.bad_column))?,
        exposure: cell(&context.exposure_column)
            .map(|t| {
                Decimal::from_str(t.trim())
                    .map_err(|_| format!("{}: {t:?} is not an amount", context.exposure_column))
            })
            .transpose()?,
        loss: cell(&context.loss_column)
            .map(|t| {
                Decimal::from_str(t.trim())
                    .map_err(|_| format!("{}: {t:?} is not an amount", context.loss_column))
            })
            .transpose()?,
        pd: cell(&context.pd_column)
            .map(|t| {
                t.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| format!("{}: {t:?} is not a probability", context.pd_column))
            })
            .transpose()?,
    };
    let segments = context
        .args_segments
        .iter()
        .map(|column| cell(column).map(|t| t.into_owned()))
        .collect();
    let id = cell(&context.id_column).map(|t| t.into_owned());
    Ok((
        RowResult {
            champion,
            challenger,
            performance,
            segments,
        },
        id,
    ))
}

fn decide(
    side: &Side,
    context: &Job,
    row: &Row,
    as_of: chrono::NaiveDate,
) -> Result<StrategyResult, String> {
    let strategy = &side.strategy;
    let input = match (&row.json, row.csv) {
        (Some(json), _) => strategy.validate_input(&context.flow, json),
        (None, Some(record)) => CELLS.with_borrow_mut(|cells| {
            // Each field's cell, typed, into this thread's reused values (text keeps its
            // string's capacity from row to row, so a row allocates no cell).
            cells.resize(side.fields.len(), serde_json::Value::Null);
            for ((cell, (_, kind)), column) in cells.iter_mut().zip(&side.fields).zip(&side.columns)
            {
                let text = column.and_then(|c| record.get(c)).map_or("", trim_cell);
                type_cell_into(kind, text, cell);
            }
            // Fields are asked for in schema order: a cursor finds each without hashing.
            let mut next = 0usize;
            strategy.validate_fields(&context.flow, |name| {
                let i = if side.fields.get(next).is_some_and(|(n, _)| n == name) {
                    next
                } else {
                    side.fields.iter().position(|(n, _)| n == name)?
                };
                next = i + 1;
                let cell = &cells[i];
                (!cell.is_null()).then_some(Cow::Borrowed(cell))
            })
        }),
        (None, None) => strategy.validate_fields(&context.flow, |name| {
            let text = (row.cell)(name)?;
            let kind = side.fields.iter().find(|(n, _)| n == name).map(|f| &f.1);
            Some(Cow::Owned(typed_cell(kind, &text)))
        }),
    }
    .map_err(|e| e.to_string())?;
    let options = EvalOptions {
        as_of,
        language: strategy
            .languages()
            .first()
            .cloned()
            .unwrap_or_else(|| "en".into()),
        full_trace: false,
    };
    let decision = match strategy
        .evaluate(&context.flow, &input, &options, row.data.as_ref())
        .map_err(|e| e.to_string())?
    {
        Evaluation::Decided(decision) => decision,
        Evaluation::NeedsData(_) => return Err("an offline evaluation asked for data".into()),
    };
    Ok(strategy_result(&decision, context.score_step.as_deref()))
}

fn strategy_result(decision: &Decision, score_step: Option<&str>) -> StrategyResult {
    let mut score = None;
    let mut pd = None;
    for step in &decision.trace.steps {
        if score_step.is_some_and(|id| id != step.step.as_ref()) {
            continue;
        }
        match &step.detail {
            StepDetail::Scorecard {
                score: s,
                probability_of_default,
                ..
            } => {
                score = s.to_f64();
                pd = *probability_of_default;
                break;
            }
            StepDetail::Model {
                probability,
                margin,
                ..
            } if score_step.is_some() => {
                score = probability.or(*margin);
                pd = *probability;
                break;
            }
            _ => {}
        }
    }
    StrategyResult {
        outcome: decision.outcome,
        limit: decision.limit,
        apr: decision.apr,
        reasons: decision.reasons.iter().map(|r| r.code.clone()).collect(),
        score,
        pd,
    }
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
