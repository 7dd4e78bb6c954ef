//! `credence monitor`: population drift (PSI/CSI), score performance (KS, AUC, Gini) and
//! vintages from CSV files, and the live view (rates by month, score drift, overrides,
//! vintages, roll rates) of a data directory. Every command prints one JSON document.

use anyhow::{bail, Context};
use credence_backtest::metrics::{discrimination, psi_categorical, psi_numeric};
use credence_backtest::vintage::{vintage_curves, LoanHistory};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Subcommand)]
pub enum MonitorCommand {
    /// PSI of numeric columns (bins at the baseline's deciles) and CSI of categorical ones
    /// between a baseline and a current CSV; flags at 0.1 (watch) and 0.25 (shift).
    Drift {
        /// The baseline CSV (e.g. the development sample).
        #[arg(long)]
        baseline: PathBuf,
        /// The current CSV compared with it (e.g. this month's applications).
        #[arg(long)]
        current: PathBuf,
        /// A column to compare; repeat for several.
        #[arg(long = "column", required = true)]
        columns: Vec<String>,
        /// Quantile bins for numeric columns.
        #[arg(long, default_value_t = 10)]
        bins: usize,
    },
    /// KS, AUC and Gini of a score column for a bad-outcome column (matured rows only: rows
    /// without an outcome are left out).
    Performance {
        /// The CSV of scored rows with their outcomes.
        #[arg(long)]
        input: PathBuf,
        /// The score column.
        #[arg(long)]
        score: String,
        /// The bad-outcome column (1/0, true/false, bad/good; empty: not matured).
        #[arg(long)]
        bad: String,
        /// The score is a credit score (higher is safer): its sign is flipped so that AUC
        /// measures how well it ranks bads below goods.
        #[arg(long)]
        higher_is_better: bool,
    },
    /// Vintage curves: the bad rate by months on book per origination cohort.
    Vintage {
        /// The CSV of loans with their performance.
        #[arg(long)]
        input: PathBuf,
        /// The origination cohort column (e.g. issue month).
        #[arg(long)]
        cohort: String,
        /// Months on book observed for the row.
        #[arg(long)]
        months_on_book: String,
        /// The bad flag at the end of the observation.
        #[arg(long)]
        bad: String,
        /// The month on book the row first went bad [default: the months observed, for bads].
        #[arg(long)]
        bad_month: Option<String>,
    },
    /// Rates by month, the score's drift against the first month, override rates, vintages
    /// and roll rates, over a data directory's decision log, cases and accounts.
    Log {
        /// The embedded store's directory (ignored with --database-url).
        #[arg(long, default_value = crate::serve::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
        #[command(flatten)]
        database: crate::database::DatabaseArgs,
        /// The flow whose decisions are monitored.
        #[arg(long, default_value = "application")]
        flow: String,
        /// Only this strategy (product) [default: every strategy's decisions together].
        #[arg(long)]
        strategy: Option<String>,
        /// How many of the newest decisions (and decided cases) to read.
        #[arg(long, default_value_t = 10_000)]
        limit: u32,
    },
}

pub fn run(command: MonitorCommand) -> anyhow::Result<()> {
    let json = match command {
        MonitorCommand::Drift {
            baseline,
            current,
            columns,
            bins,
        } => drift(&baseline, &current, &columns, bins)?,
        MonitorCommand::Performance {
            input,
            score,
            bad,
            higher_is_better,
        } => performance(&input, &score, &bad, higher_is_better)?,
        MonitorCommand::Vintage {
            input,
            cohort,
            months_on_book,
            bad,
            bad_month,
        } => vintage(&input, &cohort, &months_on_book, &bad, bad_month.as_deref())?,
        MonitorCommand::Log {
            data_dir,
            database,
            flow,
            strategy,
            limit,
        } => log(&data_dir, &database, strategy.as_deref(), &flow, limit)?,
    };
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}

/// A CSV read into named columns of text (empty cells as None).
struct Table {
    columns: BTreeMap<String, Vec<Option<String>>>,
    rows: usize,
}

fn read_table(path: &Path, wanted: &[&str]) -> anyhow::Result<Table> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("opening {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let mut at = Vec::new();
    for name in wanted {
        let index = headers.iter().position(|h| h == *name).with_context(|| {
            format!(
                "{} has no column {name} (columns: {})",
                path.display(),
                headers.iter().collect::<Vec<_>>().join(", ")
            )
        })?;
        at.push((name.to_string(), index));
    }
    let mut columns: BTreeMap<String, Vec<Option<String>>> =
        wanted.iter().map(|n| (n.to_string(), Vec::new())).collect();
    let mut rows = 0;
    for record in reader.records() {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        for (name, index) in &at {
            let text = record.get(*index).unwrap_or("").trim();
            if let Some(column) = columns.get_mut(name) {
                column.push((!text.is_empty()).then(|| text.to_string()));
            }
        }
        rows += 1;
    }
    Ok(Table { columns, rows })
}

fn numbers(values: &[Option<String>]) -> Option<Vec<Option<f64>>> {
    values
        .iter()
        .map(|v| match v {
            None => Some(None),
            Some(text) => text.parse::<f64>().ok().filter(|x| x.is_finite()).map(Some),
        })
        .collect()
}

fn drift(
    baseline: &Path,
    current: &Path,
    columns: &[String],
    bins: usize,
) -> anyhow::Result<serde_json::Value> {
    let wanted: Vec<&str> = columns.iter().map(String::as_str).collect();
    let base = read_table(baseline, &wanted)?;
    let cur = read_table(current, &wanted)?;
    let mut out = serde_json::Map::new();
    for name in columns {
        let (b, c) = (&base.columns[name], &cur.columns[name]);
        let result = match (numbers(b), numbers(c)) {
            (Some(b), Some(c)) if b.iter().any(Option::is_some) => {
                let (binning, psi) =
                    psi_numeric(&b, &c, bins).map_err(|e| anyhow::anyhow!("column {name}: {e}"))?;
                serde_json::json!({"kind": "numeric", "psi": psi.psi, "drift": psi.drift,
                    "edges": binning.edges, "bins": psi.bins})
            }
            _ => {
                let count = |values: &[Option<String>]| {
                    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
                    for v in values {
                        *counts
                            .entry(v.clone().unwrap_or_else(|| "(missing)".into()))
                            .or_default() += 1;
                    }
                    counts
                };
                let psi = psi_categorical(&count(b), &count(c))
                    .map_err(|e| anyhow::anyhow!("column {name}: {e}"))?;
                serde_json::json!({"kind": "categorical", "psi": psi.psi, "drift": psi.drift, "bins": psi.bins})
            }
        };
        out.insert(name.clone(), result);
    }
    Ok(serde_json::json!({
        "baseline_rows": base.rows, "current_rows": cur.rows, "columns": out
    }))
}

fn bad_value(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "bad" | "yes" => Some(true),
        "0" | "false" | "good" | "no" => Some(false),
        _ => None,
    }
}

fn performance(
    input: &Path,
    score: &str,
    bad: &str,
    higher_is_better: bool,
) -> anyhow::Result<serde_json::Value> {
    let table = read_table(input, &[score, bad])?;
    let mut rows = Vec::new();
    let mut skipped = 0u64;
    for (s, b) in table.columns[score].iter().zip(&table.columns[bad]) {
        let parsed = s
            .as_deref()
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|x| x.is_finite())
            .zip(b.as_deref().and_then(bad_value));
        match parsed {
            Some((s, b)) => rows.push((if higher_is_better { -s } else { s }, b)),
            None => skipped += 1,
        }
    }
    let d = discrimination(&rows).map_err(|e| anyhow::anyhow!("{score} for {bad}: {e}"))?;
    let mut json = serde_json::to_value(&d)?;
    if let Some(o) = json.as_object_mut() {
        o.insert("rows_without_score_or_outcome".into(), skipped.into());
        if higher_is_better {
            o.insert("ks_score".into(), (-d.ks_score).into());
        }
    }
    Ok(json)
}

fn vintage(
    input: &Path,
    cohort: &str,
    months_on_book: &str,
    bad: &str,
    bad_month: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let mut wanted = vec![cohort, months_on_book, bad];
    if let Some(column) = bad_month {
        wanted.push(column);
    }
    let table = read_table(input, &wanted)?;
    let mut loans = Vec::with_capacity(table.rows);
    for i in 0..table.rows {
        let get = |name: &str| table.columns[name][i].as_deref();
        let Some(cohort_value) = get(cohort) else {
            continue;
        };
        let months: u32 = match get(months_on_book).map(str::parse) {
            Some(Ok(m)) => m,
            _ => bail!(
                "row {}: {months_on_book} must be a whole number of months",
                i + 1
            ),
        };
        let is_bad = get(bad).and_then(bad_value).unwrap_or(false);
        let first_bad =
            match bad_month.and_then(get) {
                Some(text) => Some(text.parse::<u32>().with_context(|| {
                    format!("row {}: the bad month must be a whole number", i + 1)
                })?),
                None => is_bad.then_some(months),
            };
        loans.push(LoanHistory {
            cohort: cohort_value.to_string(),
            months_observed: months,
            first_bad_month: first_bad,
        });
    }
    Ok(serde_json::json!({"loans": loans.len(), "vintages": vintage_curves(&loans)}))
}

fn log(
    data_dir: &Path,
    database: &crate::database::DatabaseArgs,
    strategy: Option<&str>,
    flow: &str,
    limit: u32,
) -> anyhow::Result<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let today = chrono::Utc::now().date_naive();
    if database.database_url.is_some() {
        let report = runtime.block_on(async {
            let store = crate::database::open_admin(database, data_dir, false).await?;
            credence_app::monitoring::report(&store, strategy, flow, limit, today)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message))
        })?;
        return Ok(serde_json::to_value(report)?);
    }
    if !data_dir.join(credence_store::DATABASE_FILE).is_file() {
        bail!(
            "{} holds no Credence store; run `credence serve --data-dir {0}` first",
            data_dir.display()
        );
    }
    let store = crate::backtest::open_for_reading(data_dir)?;
    let report = runtime
        .block_on(credence_app::monitoring::report(
            &store, strategy, flow, limit, today,
        ))
        .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    Ok(serde_json::to_value(report)?)
}
