//! `credence simulate portfolio` and `credence portfolio review`: argument handling, progress
//! bars and the final JSON line, over `credence_app::portfolio`.

use anyhow::{bail, Context};
use chrono::NaiveDate;
use credence_account::FlowKind;
use credence_app::portfolio::{self, ReviewOptions};
use credence_app::{Clock, Strategies, SystemClock};
use credence_store::{SqliteStore, Store};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Fill this data directory (the layout `credence serve` uses; created if missing).
    #[arg(long, conflicts_with = "server")]
    pub data_dir: Option<PathBuf>,
    /// Or fill this PostgreSQL database (see `credence serve --database-url`).
    #[command(flatten)]
    pub database: crate::database::DatabaseArgs,
    /// Or feed the histories through a running server's API (needs --key with the decide role).
    #[arg(long, requires = "key")]
    pub server: Option<String>,
    /// The API key for --server (role decide).
    #[arg(long, env = "CREDENCE_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// How many accounts.
    #[arg(long)]
    pub accounts: u64,
    /// Months of history per account.
    #[arg(long, default_value_t = 12)]
    pub months: u32,
    /// The same seed gives the same portfolio.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The day the histories end (YYYY-MM-DD) [default: yesterday, UTC, so that every event
    /// has happened: the service refuses events from the future].
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Store only the account states, not the simulated events (large benchmark portfolios).
    #[arg(long)]
    pub skip_event_log: bool,
    /// Concurrent requests against a server.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Events per request against a server [default: one request per account and month, as a
    /// servicing system sending a month's events would].
    #[arg(long)]
    pub events_per_request: Option<usize>,
}

#[derive(clap::Args)]
pub struct ReviewArgs {
    /// The data directory (no server may be running on it: the review appends decisions).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Or the PostgreSQL database of a cluster: the review runs beside the serving nodes, as a
    /// node of its own (--node-id).
    #[command(flatten)]
    pub database: crate::database::DatabaseArgs,
    /// This process's node id on PostgreSQL [default: the host's name, or HOST-2, …].
    #[arg(long, env = "CREDENCE_NODE_ID", value_name = "ID")]
    pub node_id: Option<String>,
    /// Share the review with other processes under this run id: the accounts are split into
    /// partitions that each process claims, a process that dies leaves its partition to the
    /// others when its lease ends, and a process started again with the same id resumes. Each
    /// account is reviewed once per run.
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    /// With --run-id: partitions this process reviews at once [default: every core].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// With --run-id: how long a claimed partition stays this process's, in seconds; longer
    /// than one partition takes [default: 60].
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub lease_seconds: u64,
    /// With --run-id: accounts per partition when the run is split [default: 2000].
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub partition_accounts: u32,
    /// account_review or early_warning.
    #[arg(long, default_value = "account_review")]
    pub flow: String,
    /// Decide and count, but change nothing and record nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Review as of this date (YYYY-MM-DD) [default: today, UTC].
    #[arg(long, value_name = "DATE")]
    pub as_of: Option<String>,
    /// Worker threads [default: every core].
    #[arg(long)]
    pub threads: Option<usize>,
}

fn parse_as_of(as_of: Option<&str>) -> anyhow::Result<NaiveDate> {
    match as_of {
        None => Ok(chrono::Utc::now().date_naive()),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .with_context(|| format!("--as-of {text:?}: write a date as YYYY-MM-DD")),
    }
}

fn progress_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{per_sec}}, ETA {{eta}})"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn threads(requested: Option<usize>) -> usize {
    requested
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn open_appender(data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    let store = SqliteStore::open(data_dir).with_context(|| {
        format!(
            "opening the store in {} (stop a server running on it first: this command writes the decision log)",
            data_dir.display()
        )
    })?;
    Ok(Arc::new(store))
}

/// The last day a simulated history covers when none is given: yesterday. Events fall at
/// any hour of their day, so a history ending today holds events later than now.
fn default_history_end(today: NaiveDate) -> NaiveDate {
    today.pred_opt().unwrap_or(today)
}

pub fn simulate(args: SimulateArgs) -> anyhow::Result<()> {
    let as_of = match args.as_of.as_deref() {
        Some(text) => parse_as_of(Some(text))?,
        None => default_history_end(chrono::Utc::now().date_naive()),
    };
    if args.accounts == 0 {
        bail!("--accounts: give at least 1");
    }
    if args.months == 0 || args.months > 120 {
        bail!("--months: give 1–120");
    }
    match (&args.data_dir, &args.server, args.database.postgres()?) {
        (None, None, Some(_)) => simulate_into_dir(&PathBuf::from(crate::serve::DEFAULT_DATA_DIR), &args, as_of),
        (Some(dir), None, _) => simulate_into_dir(dir, &args, as_of),
        (None, Some(server), None) => simulate_through_api(server, &args, as_of),
        _ => bail!(
            "give --data-dir DIR or --database-url URL (write directly), or --server URL --key KEY (through the API)"
        ),
    }
}

fn simulate_into_dir(dir: &Path, args: &SimulateArgs, as_of: NaiveDate) -> anyhow::Result<()> {
    runtime()?.block_on(async {
        let store = match args.database.postgres()? {
            Some(options) => Arc::new(
                credence_store_postgres::PostgresStore::connect(&options)
                    .await
                    .with_context(|| format!("opening {}", options.redacted_url()))?,
            ) as Arc<dyn Store>,
            None => open_appender(dir)?,
        };
        let strategies = Strategies::new(store.clone());
        strategies
            .bootstrap(
                crate::serve::bundled_package()?,
                SystemClock.now().timestamp_millis(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("activating the bundled strategy: {e}"))?;
        let bar = progress_bar(args.accounts, "accounts");
        let started = Instant::now();
        let summary = portfolio::load_simulated(
            store,
            portfolio::SimulationPlan {
                seed: args.seed,
                accounts: args.accounts,
                months: args.months,
                as_of,
                keep_events: !args.skip_event_log,
                threads: threads(None),
            },
            &|n| bar.set_position(n),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        bar.finish_and_clear();
        let mut line = serde_json::to_value(&summary)?;
        line["seconds"] =
            serde_json::json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
        line["store"] = serde_json::json!(args.database.describe(dir));
        println!("{line}");
        Ok(())
    })
}

/// Opens each account from an approved application decision, then posts its events month by
/// month — the way a servicing system would — from `connections` threads.
fn simulate_through_api(server: &str, args: &SimulateArgs, as_of: NaiveDate) -> anyhow::Result<()> {
    let server = server.trim_end_matches('/').to_string();
    let key = args.key.clone().unwrap_or_default();
    let application: serde_json::Value = serde_json::from_str(include_str!(
        "../../../examples/consumer-loan/samples/application-approve.json"
    ))?;
    let next = AtomicU64::new(0);
    let events_posted = AtomicU64::new(0);
    let requests = AtomicU64::new(0);
    let event_seconds_micros = AtomicU64::new(0);
    let bar = progress_bar(args.accounts, "accounts");
    let started = Instant::now();
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(30))
        .build();
    let post = |path: &str, body: &serde_json::Value| -> anyhow::Result<serde_json::Value> {
        let response = agent
            .post(&format!("{server}{path}"))
            .set("Authorization", &format!("Bearer {key}"))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string());
        match response {
            Ok(r) => Ok(r.into_json()?),
            Err(ureq::Error::Status(code, r)) => {
                bail!(
                    "POST {path}: {code} {}",
                    r.into_string().unwrap_or_default()
                )
            }
            Err(e) => bail!("POST {path}: {e}"),
        }
    };
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut workers = Vec::new();
        for _ in 0..args.connections.max(1) {
            workers.push(scope.spawn(|| -> anyhow::Result<()> {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= args.accounts {
                        return Ok(());
                    }
                    let (sim, events, _) = credence_account::simulate::simulate_account(
                        args.seed,
                        index,
                        as_of,
                        args.months,
                    );
                    let mut input = application.clone();
                    input["customer_id"] = sim.customer_id.clone().into();
                    input["application_id"] = format!("APP-{}", sim.id).into();
                    let decision = post("/v1/decisions/application", &input)?;
                    let decision_id = decision["id"].as_str().unwrap_or_default().to_string();
                    if decision["outcome"] != "approve" {
                        continue;
                    }
                    post(
                        "/v1/accounts",
                        &serde_json::json!({"decision_id": decision_id, "account_id": sim.id}),
                    )?;
                    // One request per month of events.
                    let mut batch: Vec<serde_json::Value> = Vec::new();
                    let mut month = None;
                    let flush = |batch: &mut Vec<serde_json::Value>| -> anyhow::Result<()> {
                        if batch.is_empty() {
                            return Ok(());
                        }
                        let sent = Instant::now();
                        post(
                            &format!("/v1/accounts/{}/events", sim.id),
                            &serde_json::json!({"events": batch}),
                        )?;
                        event_seconds_micros
                            .fetch_add(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
                        events_posted.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        requests.fetch_add(1, Ordering::Relaxed);
                        batch.clear();
                        Ok(())
                    };
                    for event in &events {
                        let this_month = event.day() / 30;
                        let full = match args.events_per_request {
                            Some(n) => batch.len() >= n.max(1),
                            None => month.is_some_and(|m| m != this_month),
                        };
                        if full {
                            flush(&mut batch)?;
                        }
                        month = Some(this_month);
                        let mut json = serde_json::to_value(event)?;
                        json["time"] = chrono::DateTime::from_timestamp_millis(event.time_ms)
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                            .unwrap_or_default()
                            .into();
                        if let Some(object) = json.as_object_mut() {
                            object.remove("time_ms");
                        }
                        batch.push(json);
                    }
                    flush(&mut batch)?;
                    bar.inc(1);
                }
            }));
        }
        for worker in workers {
            worker
                .join()
                .map_err(|_| anyhow::anyhow!("a worker panicked"))??;
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let events = events_posted.load(Ordering::Relaxed);
    println!(
        "{}",
        serde_json::json!({
            "accounts": args.accounts,
            "events": events,
            "event_requests": requests.load(Ordering::Relaxed),
            "months": args.months,
            "seed": args.seed,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "events_per_second": (events as f64 / seconds).round(),
            "connections": args.connections,
            "event_request_ms_mean": (event_seconds_micros.load(Ordering::Relaxed) as f64 / requests.load(Ordering::Relaxed).max(1) as f64 / 100.0).round() / 10.0,
            "events_per_request": (events as f64 / requests.load(Ordering::Relaxed).max(1) as f64 * 10.0).round() / 10.0,
        })
    );
    Ok(())
}

pub fn review(args: ReviewArgs) -> anyhow::Result<()> {
    let as_of = parse_as_of(args.as_of.as_deref())?;
    let flow = FlowKind::parse(&args.flow)
        .filter(|f| *f != FlowKind::Drawdown)
        .with_context(|| format!("--flow {}: give account_review or early_warning", args.flow))?;
    let postgres = args.database.postgres()?;
    let data_dir = match (&args.data_dir, &postgres) {
        (Some(dir), None) => {
            if !dir.join(credence_store::DATABASE_FILE).is_file() {
                bail!(
                    "{} holds no Credence store; run `credence serve --data-dir {0}` or `credence simulate portfolio --data-dir {0}` first",
                    dir.display()
                );
            }
            dir.clone()
        }
        (None, Some(_)) => PathBuf::from(crate::serve::DEFAULT_DATA_DIR),
        _ => bail!("give --data-dir DIR or --database-url URL"),
    };
    runtime()?.block_on(async {
        let store: Arc<dyn Store> = match &postgres {
            Some(options) => Arc::new(
                credence_store_postgres::PostgresStore::connect_node(
                    options,
                    args.node_id.as_deref(),
                )
                .await
                .with_context(|| format!("opening {}", options.redacted_url()))?,
            ),
            None => open_appender(&data_dir)?,
        };
        let strategies = Strategies::new(store.clone());
        strategies
            .refresh()
            .await
            .map_err(|e| anyhow::anyhow!("loading the active strategy: {e}"))?;
        let active = strategies
            .active()
            .context("no strategy is active in this data directory; activate one first")?;
        let language = active
            .strategy
            .languages()
            .first()
            .cloned()
            .unwrap_or_else(|| "en".into());
        let total = store
            .count_accounts(Some("active"))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let bar = progress_bar(total, "accounts");
        let started = Instant::now();
        let options = ReviewOptions {
            flow,
            as_of,
            dry_run: args.dry_run,
            threads: threads(args.threads),
            actor: format!(
                "cli:{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into())
            ),
            language,
        };
        if let Some(run_id) = &args.run_id {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "host".into());
            let run = portfolio::RunOptions {
                run_id: run_id.clone(),
                worker: format!("{host}:{}", std::process::id()),
                lease_ms: (args.lease_seconds.max(1) * 1000) as i64,
                partition_accounts: args.partition_accounts.max(1),
                concurrent_partitions: threads(args.workers),
            };
            let summary =
                portfolio::review_partitioned(store, active.strategy.clone(), options, run, &|n| {
                    bar.set_position(n)
                })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            bar.finish_and_clear();
            let mut line = serde_json::to_value(&summary)?;
            line["seconds"] =
                serde_json::json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
            println!("{line}");
            return Ok(());
        }
        let summary = portfolio::review_portfolio(store, active.strategy.clone(), options, &|n| {
            bar.set_position(n)
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        let mut line = serde_json::to_value(&summary)?;
        line["seconds"] = serde_json::json!((seconds * 1000.0).round() / 1000.0);
        line["accounts_per_second"] =
            serde_json::json!((summary.accounts_reviewed as f64 / seconds.max(1e-9)).round());
        println!("{line}");
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_ends_the_day_before_by_default() {
        let cases = [
            ((2026, 11, 30), (2026, 11, 29)),
            ((2026, 3, 1), (2026, 2, 28)),
            ((2024, 3, 1), (2024, 2, 29)),
            ((2027, 1, 1), (2026, 12, 31)),
        ];
        for ((y, m, d), (ey, em, ed)) in cases {
            let today = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(
                default_history_end(today),
                NaiveDate::from_ymd_opt(ey, em, ed).unwrap(),
                "{today}"
            );
        }
    }
}
