//! The provider simulator behind `credence sim-providers` and `credence serve --example`: a local stand-in for a credit bureau, an income-verification
//! service and a liabilities provider, with latency and failure injection, for demos and tests.
//!
//! Responses are derived from the Lending Club 2018Q1 loans (`data/lending_club_2018q1.csv`,
//! embedded): a subject (customer id, or a hash of a national id) maps to one loan by a stable
//! hash, so the same subject always gets the same report. Failures are injected with a seeded
//! generator (`--failure-rate`, `--seed`) or switched on at run time through `POST /_sim/mode`,
//! and `GET /_sim/stats` counts calls per provider so tests can prove a cache held.
//!
//! It is a tool for demos, tests and load runs, not part of the decision path: the command
//! line only parses its arguments and starts it.

#![warn(missing_docs)]

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

static LENDING_CLUB: &str = include_str!("../../../data/lending_club_2018q1.csv");

/// The simulator's settings, as `credence sim-providers` takes them.
#[derive(clap::Args)]
pub struct SimArgs {
    /// Where to listen; port 0 picks a free one (printed on the first line).
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub addr: String,
    /// Added to every answer.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of calls (0–1) that fail: a 500, a garbage body, a hang past any sane timeout,
    /// or a slow answer, in turn.
    #[arg(long, default_value_t = 0.0)]
    pub failure_rate: f64,
    /// Seeds the failure draws: the same seed fails the same calls.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// One loan's bureau-style fields.
#[derive(Debug, Clone)]
struct Subject {
    annual_income: f64,
    income_verification: String,
    employment_years: Option<f64>,
    debt_to_income: Option<f64>,
    delinquencies_2y: u32,
    months_since_last_delinquency: Option<u32>,
    inquiries_12m: u32,
    open_lines: u32,
    total_lines: u32,
    credit_limit: f64,
    credit_used: f64,
    accounts_past_due_30d: u32,
    current_delinquent_accounts: u32,
    collections_12m: u32,
    bankruptcies: u32,
    tax_liens: u32,
    instalment_accounts: u32,
    mortgage_accounts: u32,
    homeownership: String,
}

/// What calls do now: failure kind and rate, overridable at run time.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
struct Mode {
    /// `none`, `mixed` (the first four kinds in turn: error, garbage, timeout, slow), `error`
    /// (500), `not_found` (404), `unauthorized` (401), `throttled` (429), `garbage`, `timeout`,
    /// `slow`.
    failure: String,
    /// Share of calls that fail (1 = every call).
    rate: f64,
    latency_ms: u64,
}

/// Wakes sleepers at their deadlines, late by a tenth of a millisecond at most, never early.
///
/// Why not `tokio::time::sleep`: tokio's timer rounds each deadline up to its next 1 ms tick, so
/// an answer asked to take 50 ms took 50–51 ms plus the wake-up — up to a millisecond and a
/// half the simulator added to the latency it was told to inject. One thread keeps the
/// deadlines in a heap and waits on a condition variable for the earliest (the kernel's
/// high-resolution timers make that precise to tens of microseconds); it waits [`COALESCE`]
/// past it, so that sleepers due close together are woken in one pass.
struct PreciseTimer {
    shared: Arc<TimerShared>,
}

/// How long past the earliest deadline the timer thread waits, to wake its neighbours with it.
const COALESCE: Duration = Duration::from_micros(50);

struct TimerShared {
    state: Mutex<TimerState>,
    changed: Condvar,
}

#[derive(Default)]
struct TimerState {
    due: BinaryHeap<Reverse<Due>>,
    next_id: u64,
    stopped: bool,
}

struct Due {
    at: Instant,
    id: u64,
    wake: tokio::sync::oneshot::Sender<()>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.id) == (other.at, other.id)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.id).cmp(&(other.at, other.id))
    }
}

impl PreciseTimer {
    fn start() -> anyhow::Result<PreciseTimer> {
        let shared = Arc::new(TimerShared {
            state: Mutex::new(TimerState::default()),
            changed: Condvar::new(),
        });
        let running = shared.clone();
        std::thread::Builder::new()
            .name("sim-timer".into())
            .spawn(move || run_timer(&running))
            .context("starting the simulator's timer thread")?;
        Ok(PreciseTimer { shared })
    }

    async fn sleep(&self, duration: Duration) {
        let (wake, woken) = tokio::sync::oneshot::channel();
        let at = Instant::now() + duration;
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            let earliest = state.due.peek().is_none_or(|Reverse(first)| at < first.at);
            let id = state.next_id;
            state.next_id += 1;
            state.due.push(Reverse(Due { at, id, wake }));
            if earliest {
                self.shared.changed.notify_one();
            }
        }
        let _ = woken.await;
    }
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stopped = true;
        self.shared.changed.notify_one();
    }
}

fn run_timer(shared: &TimerShared) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        if state.stopped {
            return;
        }
        let now = Instant::now();
        while state
            .due
            .peek()
            .is_some_and(|Reverse(first)| first.at <= now)
        {
            if let Some(Reverse(due)) = state.due.pop() {
                let _ = due.wake.send(());
            }
        }
        let wait = state
            .due
            .peek()
            .map(|Reverse(first)| first.at.saturating_duration_since(now) + COALESCE);
        state = match wait {
            Some(wait) => {
                shared
                    .changed
                    .wait_timeout(state, wait)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
            None => shared
                .changed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner()),
        };
    }
}

struct Sim {
    timer: PreciseTimer,
    subjects: Vec<Subject>,
    mode: Mutex<Mode>,
    rng: Mutex<u64>,
    turn: AtomicU64,
    calls: Mutex<BTreeMap<String, u64>>,
}

impl Sim {
    fn subject(&self, key: &str) -> &Subject {
        // FNV-1a: stable across runs and platforms.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        &self.subjects[(hash % self.subjects.len() as u64) as usize]
    }

    fn draw(&self) -> f64 {
        let mut state = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Counts the call, waits the latency, and decides whether (and how) it fails.
    async fn serve(&self, provider: &str, body: impl FnOnce() -> serde_json::Value) -> Response {
        *self
            .calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(provider.to_string())
            .or_default() += 1;
        let mode = self.mode.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let failure = if mode.failure != "none" && self.draw() < mode.rate {
            match mode.failure.as_str() {
                "mixed" => ["error", "garbage", "timeout", "slow"]
                    [(self.turn.fetch_add(1, Ordering::Relaxed) % 4) as usize],
                "error" => "error",
                "not_found" => "not_found",
                "unauthorized" => "unauthorized",
                "throttled" => "throttled",
                "garbage" => "garbage",
                "timeout" => "timeout",
                _ => "slow",
            }
        } else {
            "none"
        };
        let latency = match failure {
            "timeout" => Duration::from_secs(60),
            "slow" => Duration::from_millis(mode.latency_ms.max(100) * 10),
            _ => Duration::from_millis(mode.latency_ms),
        };
        if !latency.is_zero() {
            self.timer.sleep(latency).await;
        }
        match failure {
            "error" => (StatusCode::INTERNAL_SERVER_ERROR, "provider unavailable").into_response(),
            "not_found" => (StatusCode::NOT_FOUND, "no report for this subject").into_response(),
            "unauthorized" => (StatusCode::UNAUTHORIZED, "bad credentials").into_response(),
            "throttled" => (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response(),
            "garbage" => (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{\"report\": <html>oops",
            )
                .into_response(),
            _ => Json(body()).into_response(),
        }
    }
}

fn parse(text: &str) -> anyhow::Result<Vec<Subject>> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("the Lending Club data has no column {name}"))
    };
    let columns = [
        "annual_income",
        "verified_income",
        "emp_length",
        "debt_to_income",
        "delinq_2y",
        "months_since_last_delinq",
        "inquiries_last_12m",
        "open_credit_lines",
        "total_credit_lines",
        "total_credit_limit",
        "total_credit_utilized",
        "num_accounts_30d_past_due",
        "current_accounts_delinq",
        "num_collections_last_12m",
        "public_record_bankrupt",
        "tax_liens",
        "current_installment_accounts",
        "num_mort_accounts",
        "homeownership",
    ]
    .map(column);
    let mut at = Vec::with_capacity(columns.len());
    for c in columns {
        at.push(c?);
    }
    let mut subjects = Vec::new();
    for record in reader.records() {
        let record = record?;
        let text = |i: usize| record.get(at[i]).unwrap_or_default().trim();
        let number = |i: usize| text(i).parse::<f64>().ok();
        let count = |i: usize| number(i).map_or(0, |n| n.max(0.0) as u32);
        subjects.push(Subject {
            annual_income: number(0).unwrap_or(0.0),
            income_verification: text(1).to_string(),
            employment_years: number(2),
            debt_to_income: number(3),
            delinquencies_2y: count(4),
            months_since_last_delinquency: number(5).map(|n| n as u32),
            inquiries_12m: count(6),
            open_lines: count(7),
            total_lines: count(8),
            credit_limit: number(9).unwrap_or(0.0),
            credit_used: number(10).unwrap_or(0.0),
            accounts_past_due_30d: count(11),
            current_delinquent_accounts: count(12),
            collections_12m: count(13),
            bankruptcies: count(14),
            tax_liens: count(15),
            instalment_accounts: count(16),
            mortgage_accounts: count(17),
            homeownership: text(18).to_lowercase(),
        });
    }
    anyhow::ensure!(!subjects.is_empty(), "the Lending Club data is empty");
    Ok(subjects)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn bureau(subject: &str, s: &Subject) -> serde_json::Value {
    let utilisation = if s.credit_limit > 0.0 {
        Some((s.credit_used / s.credit_limit * 10_000.0).round() / 10_000.0)
    } else {
        None
    };
    serde_json::json!({
        "subject": subject,
        "report": {
            "tradelines": {"open": s.open_lines, "total": s.total_lines,
                           "instalment": s.instalment_accounts, "mortgage": s.mortgage_accounts},
            "revolving": {"limit": s.credit_limit, "balance": s.credit_used, "utilisation": utilisation},
            "delinquency": {"last_2y": s.delinquencies_2y,
                            "months_since_last": s.months_since_last_delinquency,
                            "accounts_30d_past_due": s.accounts_past_due_30d,
                            "accounts_delinquent_now": s.current_delinquent_accounts,
                            "collections_12m": s.collections_12m},
            "inquiries_12m": s.inquiries_12m,
            "public_records": {"bankruptcies": s.bankruptcies, "tax_liens": s.tax_liens}
        }
    })
}

fn income(subject: &str, s: &Subject) -> serde_json::Value {
    let verified = s.income_verification != "Not Verified";
    serde_json::json!({
        "subject": subject,
        "income": {
            "verified": verified,
            "method": if s.income_verification == "Verified" { "payroll" } else if verified { "bank_statements" } else { "none" },
            "monthly_gross": if verified { Some(round2(s.annual_income / 12.0)) } else { None },
            "employment_years": s.employment_years
        }
    })
}

fn liabilities(subject: &str, s: &Subject) -> serde_json::Value {
    let monthly_income = s.annual_income / 12.0;
    let total = s
        .debt_to_income
        .map(|dti| round2(dti / 100.0 * monthly_income));
    // Revolving minimum payments at 3% of the balance; the rest is instalments and housing.
    let revolving = round2(s.credit_used * 0.03);
    serde_json::json!({
        "subject": subject,
        "liabilities": {
            "monthly_payments_total": total,
            "revolving_minimum_payment": revolving,
            "revolving_balance": s.credit_used,
            "revolving_limit": s.credit_limit,
            "open_accounts": s.open_lines,
            "instalment_accounts": s.instalment_accounts,
            "mortgage_accounts": s.mortgage_accounts,
            "housing": s.homeownership,
            "debt_to_income": s.debt_to_income.map(|d| d / 100.0)
        }
    })
}

async fn bureau_route(State(sim): State<Arc<Sim>>, Path(subject): Path<String>) -> Response {
    let s = sim.subject(&subject).clone();
    sim.serve("bureau", || bureau(&subject, &s)).await
}

async fn income_route(State(sim): State<Arc<Sim>>, Path(subject): Path<String>) -> Response {
    let s = sim.subject(&subject).clone();
    sim.serve("income", || income(&subject, &s)).await
}

async fn liabilities_route(State(sim): State<Arc<Sim>>, Path(subject): Path<String>) -> Response {
    let s = sim.subject(&subject).clone();
    sim.serve("liabilities", || liabilities(&subject, &s)).await
}

async fn set_mode(State(sim): State<Arc<Sim>>, Json(mode): Json<Mode>) -> Response {
    let known = [
        "none",
        "mixed",
        "error",
        "not_found",
        "unauthorized",
        "throttled",
        "garbage",
        "timeout",
        "slow",
    ];
    if !known.contains(&mode.failure.as_str()) || !(0.0..=1.0).contains(&mode.rate) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("failure: one of {known:?}; rate: 0–1"),
        )
            .into_response();
    }
    *sim.mode.lock().unwrap_or_else(|e| e.into_inner()) = mode.clone();
    Json(mode).into_response()
}

async fn stats(State(sim): State<Arc<Sim>>) -> Response {
    let calls = sim.calls.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mode = sim.mode.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Json(serde_json::json!({"calls": calls, "mode": mode})).into_response()
}

/// The simulator's routes over its state.
fn router(args: &SimArgs) -> anyhow::Result<Router> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.failure_rate),
        "--failure-rate: give a share from 0 to 1, e.g. 0.1"
    );
    let sim = Arc::new(Sim {
        timer: PreciseTimer::start()?,
        subjects: parse(LENDING_CLUB)?,
        mode: Mutex::new(Mode {
            failure: if args.failure_rate > 0.0 {
                "mixed"
            } else {
                "none"
            }
            .into(),
            rate: args.failure_rate,
            latency_ms: args.latency_ms,
        }),
        rng: Mutex::new(args.seed),
        turn: AtomicU64::new(0),
        calls: Mutex::new(BTreeMap::new()),
    });
    Ok(Router::new()
        .route("/bureau/v1/reports/{subject}", get(bureau_route))
        .route("/income/v1/verifications/{subject}", get(income_route))
        .route(
            "/liabilities/v1/summaries/{subject}",
            get(liabilities_route),
        )
        .route("/_sim/mode", post(set_mode))
        .route("/_sim/stats", get(stats))
        .with_state(sim))
}

/// Starts the simulator on a free loopback port inside the calling runtime (for
/// `credence serve --example`); returns its base URL.
pub async fn spawn_local() -> anyhow::Result<String> {
    let app = router(&SimArgs {
        addr: "127.0.0.1:0".into(),
        latency_ms: 0,
        failure_rate: 0.0,
        seed: 1,
    })?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen for the provider simulator")?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            tracing::error!(%error, "the provider simulator stopped");
        }
    });
    Ok(url)
}

/// Serves the simulator on `args.addr` until the process is stopped.
pub fn run(args: SimArgs) -> anyhow::Result<()> {
    let app = router(&args)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(&args.addr)
                .await
                .with_context(|| format!("cannot listen on {}", args.addr))?;
            let local = listener.local_addr()?;
            println!("credence sim-providers listening on http://{local}");
            println!("  GET /bureau/v1/reports/{{subject}}  GET /income/v1/verifications/{{subject}}  GET /liabilities/v1/summaries/{{subject}}");
            println!("  POST /_sim/mode {{\"failure\": \"none|mixed|error|not_found|unauthorized|throttled|garbage|timeout|slow\", \"rate\": 0.5, \"latency_ms\": 0}}  GET /_sim/stats");
            use std::io::Write;
            let _ = std::io::stdout().flush();
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = tokio::signal::ctrl_c().await;
                })
                .await
                .context("serving")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_timer_wakes_every_sleeper_and_none_early() {
        let timer = Arc::new(PreciseTimer::start().unwrap());
        // Deadlines pushed out of order: a later one first, earlier ones after it.
        let sleeps: Vec<_> = [30u64, 2, 17, 2, 9, 0, 25, 5]
            .into_iter()
            .map(|ms| {
                let timer = timer.clone();
                tokio::spawn(async move {
                    let asked = Duration::from_millis(ms);
                    let started = Instant::now();
                    timer.sleep(asked).await;
                    (asked, started.elapsed())
                })
            })
            .collect();
        for sleep in sleeps {
            let (asked, slept) = sleep.await.unwrap();
            assert!(slept >= asked, "woken after {slept:?}, asked {asked:?}");
        }
        assert!(timer.shared.state.lock().unwrap().due.is_empty());
    }

    #[test]
    fn every_lending_club_loan_becomes_a_subject_with_consistent_answers() {
        let subjects = parse(LENDING_CLUB).unwrap();
        assert_eq!(subjects.len(), 10_000);
        let delinquent = subjects.iter().filter(|s| s.delinquencies_2y > 0).count();
        assert!(delinquent > 500 && delinquent < 5000, "{delinquent}");
        for s in subjects.iter().take(200) {
            let b = bureau("x", s);
            if let Some(u) = b["report"]["revolving"]["utilisation"].as_f64() {
                assert!((0.0..=5.0).contains(&u));
            }
            let l = liabilities("x", s);
            if let (Some(total), Some(dti)) = (
                l["liabilities"]["monthly_payments_total"].as_f64(),
                s.debt_to_income,
            ) {
                assert!((total - dti / 100.0 * s.annual_income / 12.0).abs() < 0.01);
            }
            let i = income("x", s);
            assert_eq!(
                i["income"]["monthly_gross"].is_null(),
                s.income_verification == "Not Verified"
            );
        }
    }
}
