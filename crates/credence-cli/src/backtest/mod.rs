//! `credence backtest`: the arguments, the input file opened as a row source, a progress bar,
//! and the summary JSON, the HTML report and the diff written where asked. The runner itself —
//! rows evaluated under both strategies on every core, tallied, diffed — is
//! `credence_app::backtest`.
//!
//! `sources.rs` reads the rows (each format a `RowSource`).

mod sources;

pub use sources::open_for_reading;
use sources::*;

use anyhow::{bail, Context};
use credence_app::backtest::{self as runner, columns_of, Columns, CsvRecord, CsvRows, Job, Side};
use credence_app::backtest::{RawRow, RowSource, CHUNK_ROWS};
use credence_backtest::report::{self, ReportContext};
use credence_backtest::TallyOptions;
use rust_decimal::Decimal;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

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
    /// With --database-url and no --input: that database's decision log.
    #[arg(long, required_unless_present = "database_url")]
    pub input: Option<PathBuf>,
    #[command(flatten)]
    pub database: crate::database::DatabaseArgs,
    /// From a decision log: only the decisions of this strategy (product), by its name.
    #[arg(long, value_name = "NAME")]
    pub log_strategy: Option<String>,
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
    let postgres = args.database.postgres()?;
    let input = args.input.clone().unwrap_or_default();
    let log_export = sources::is_log_export(&input);
    let from_log = postgres.is_some() || input.is_dir() || log_export;
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
    let format = if postgres.is_some() {
        Format::DecisionLog
    } else {
        Format::of(&input)?
    };
    let total_bytes = if from_log {
        0
    } else {
        std::fs::metadata(&input)
            .with_context(|| format!("reading {}", input.display()))?
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
            let file = std::fs::File::open(&input)
                .with_context(|| format!("opening {}", input.display()))?;
            let mut rows = CsvRows::new(file);
            let headers = rows.header().map_err(|e| {
                anyhow::anyhow!("{}: reading the header: {}", input.display(), e.message)
            })?;
            let columns = columns_of(&headers);
            check_segments(&args.segments, &columns, &input, &headers)?;
            champion.set_columns(&columns);
            if let Some(challenger) = challenger.as_mut() {
                challenger.set_columns(&columns);
            }
            (Some(columns), Box::new(CsvSource { rows }))
        }
        Format::Parquet if log_export => {
            let source = ParquetSource::open(&input)?.replay_log(&args.flow)?;
            progress.set_length(source.rows);
            (None, Box::new(source))
        }
        Format::Parquet => {
            let source = ParquetSource::open(&input)?;
            let columns = columns_of(&source.header);
            check_segments(&args.segments, &columns, &input, &source.header)?;
            champion.set_columns(&columns);
            if let Some(challenger) = challenger.as_mut() {
                challenger.set_columns(&columns);
            }
            progress.set_length(source.rows);
            (Some(columns), Box::new(source))
        }
        Format::JsonLines => {
            let file = std::fs::File::open(&input)
                .with_context(|| format!("opening {}", input.display()))?;
            (
                None,
                Box::new(JsonLinesSource {
                    lines: BufReader::new(file),
                }),
            )
        }
        Format::DecisionLog => (
            None,
            Box::new(LogSource::open(
                &input,
                postgres.as_ref(),
                &args.flow,
                args.log_strategy.as_deref(),
            )?),
        ),
    };
    let job = |champion: Side, challenger: Option<Side>| Job {
        champion,
        challenger,
        flow: args.flow.clone(),
        as_of,
        columns: columns.clone(),
        segments: args.segments.clone(),
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

    // Each worker evaluates with its own compiled copy of the strategies (`runner::Job` says
    // why).
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
            std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))
                .map(|file| Box::new(file) as Box<dyn std::io::Write + Send>)
        })
        .transpose()?;
    let report_progress = |rows_read: u64, bytes: u64| {
        progress.inc(bytes);
        if rows_read.is_multiple_of(CHUNK_ROWS as u64) {
            progress.set_message(format!("{rows_read} rows"));
        }
    };
    let outcome = runner::run(&jobs, options, reader, diff_file, &report_progress)
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    progress.finish_and_clear();

    let context = &jobs[0];
    let summary = outcome.summary(context);
    let rejected = outcome.rejected;
    let json = outcome
        .summary_json(&summary, context, args.diff.is_some())
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
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
                    context.champion.strategy().name(),
                    b.strategy().name()
                ),
                None => format!("Back-test: {}", context.champion.strategy().name()),
            },
            flow: args.flow.clone(),
            input: input.file_name().map_or_else(
                || input.display().to_string(),
                |n| n.to_string_lossy().into(),
            ),
            score_step: args.score_step.clone(),
            as_of: as_of.map_or_else(
                || "each decision's recorded date".to_string(),
                |d| d.to_string(),
            ),
            reason_texts: {
                let strategy = context.champion.strategy();
                let language = strategy
                    .languages()
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "en".into());
                strategy
                    .reason_codes()
                    .map(|code| (code.to_string(), strategy.reason_text(code, &language)))
                    .collect()
            },
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
    let source = credence_app::package_dir::read(dir).map_err(|e| anyhow::anyhow!(e.message))?;
    let strategy =
        credence_engine::compile(&source).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    Side::new(strategy, flow).map_err(|e| anyhow::anyhow!("{}: {}", dir.display(), e.message))
}

fn check_segments(
    segments: &[String],
    columns: &Columns,
    input: &Path,
    headers: &CsvRecord,
) -> anyhow::Result<()> {
    for segment in segments {
        if !columns.has(segment) {
            bail!(
                "--by {segment}: {} has no such column (columns: {})",
                input.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            );
        }
    }
    Ok(())
}
