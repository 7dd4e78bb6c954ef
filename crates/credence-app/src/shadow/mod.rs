//! Shadow evaluation: every live decision of a strategy with a candidate in shadow is also
//! evaluated with the candidate — after the live record is durable, off the request's path,
//! on the live decision's own third-party answers (nothing is bought twice) — and stored as a
//! shadow result linked to the live record, never returned.
//!
//! The candidate sees exactly the answers the live decision got, offline: a data step the live
//! decision did not run is, for the candidate, a source that did not answer (its `on_failure`
//! applies), as for a package's shadow arms and in a back-test of the log — which is why the
//! comparison's counts equal a back-test's of the same inputs.
//!
//! A bounded queue feeds one worker thread per process, at a lower scheduling priority than the
//! threads requests wait on (a woken request thread gets the core at once; on two cores the
//! evaluation runs in the gaps), which gathers jobs for up to 250 ms, evaluates them and writes
//! them in one store call (a few commits a second whatever the rate: a commit per live
//! decision cost as much CPU as the evaluation). A full queue drops the job (counted in
//! `credence_shadow_dropped_total`) rather than hold a live request, and a crash loses what was
//! queued; [`catch_up`] then evaluates, from the log, every live decision of a running shadow
//! that has no twin (the service runs it at start and every few seconds), so every live record
//! gets its twin. The comparison counts any live record still without one.

mod catch_up;
mod report;

pub use catch_up::{catch_up, CaughtUp};

pub use report::{shadow_report, ReasonShift, ShadowReport, ShadowReportQuery, TermsDiff};

use crate::metrics as m;
use crate::strategies::LiveRollout;
use credence_engine::data::{DataRecord, Evaluation};
use credence_engine::EvalOptions;
use credence_store::{ShadowRecord, Store};
use std::sync::mpsc::{sync_channel, RecvTimeoutError, SyncSender};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Live decisions waiting for their shadow evaluation, at most.
pub const SHADOW_QUEUE: usize = 65_536;
/// Shadow results written in one store call, at most.
const BATCH: usize = 4_096;
/// The longest a shadow result waits for others to be written with.
const BATCH_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// One live decision to evaluate again with the candidate.
pub struct ShadowJob {
    /// The rollout whose candidate evaluates it.
    pub rollout: Arc<LiveRollout>,
    /// The live decision's id.
    pub decision_id: String,
    /// The flow.
    pub flow: String,
    /// The input as the caller sent it.
    pub raw: serde_json::Value,
    /// The live decision's date and language.
    pub options: EvalOptions,
    /// The third-party answers the live decision was made with (evaluated offline).
    pub data: DataRecord,
    /// The live result's comparable parts ([`comparable`]).
    pub live: serde_json::Value,
    /// The version that decided live.
    pub live_version: String,
    /// When the live decision was made.
    pub created_at_ms: i64,
}

/// The parts of a decision a comparison looks at: outcome, limit, APR, term, reason codes, arm.
pub fn comparable(decision: &credence_engine::Decision) -> serde_json::Value {
    serde_json::json!({
        "outcome": decision.outcome.as_str(),
        "limit": decision.limit.map(|d| d.normalize().to_string()),
        "apr": decision.apr.map(|d| d.normalize().to_string()),
        "term_months": decision.term_months,
        "reasons": decision.reasons.iter().map(|r| &*r.code).collect::<Vec<_>>(),
        "arm": decision.arm.as_deref(),
    })
}

/// The parts of a logged decision a comparison looks at, as [`comparable`] gives them.
pub fn comparable_record(record: &credence_engine::DecisionRecord) -> serde_json::Value {
    serde_json::json!({
        "outcome": record.outcome.as_str(),
        "limit": record.limit.map(|d| d.normalize().to_string()),
        "apr": record.apr.map(|d| d.normalize().to_string()),
        "term_months": record.term_months,
        "reasons": record.reasons.iter().map(|r| &*r.code).collect::<Vec<_>>(),
        "arm": record.arm.as_deref(),
    })
}

/// The candidate's comparable result for one job, or its error.
fn evaluate(job: &ShadowJob) -> serde_json::Value {
    let candidate = &job.rollout.candidate;
    let error = |message: String| serde_json::json!({"outcome": "error", "error": message});
    let input = match candidate.validate_input(&job.flow, &job.raw) {
        Ok(input) => input,
        Err(e) => return error(e.to_string()),
    };
    match candidate.evaluate(&job.flow, &input, &job.options, &job.data) {
        Ok(Evaluation::Decided(decision)) => comparable(&decision),
        // Offline, a missing answer is a failed source, never a request; kept for safety.
        Ok(Evaluation::NeedsData(requests)) => {
            let steps: Vec<&str> = requests.iter().map(|r| r.step.as_str()).collect();
            error(format!(
                "the candidate asked for data step {}; a shadow never buys data",
                steps.join(", ")
            ))
        }
        Err(e) => error(e.to_string()),
    }
}

/// Evaluates jobs on the blocking pool: their shadow results.
async fn evaluate_all(jobs: Vec<ShadowJob>) -> Option<Vec<ShadowRecord>> {
    tokio::task::spawn_blocking(move || {
        jobs.iter()
            .map(|job| record(job, evaluate(job)))
            .collect::<Vec<_>>()
    })
    .await
    .ok()
}

fn record(job: &ShadowJob, candidate: serde_json::Value) -> ShadowRecord {
    ShadowRecord {
        decision_id: job.decision_id.clone(),
        strategy: job.rollout.record.strategy.clone(),
        rollout_id: job.rollout.record.id.clone(),
        live_version: job.live_version.clone(),
        candidate_version: job.rollout.record.version.clone(),
        flow: job.flow.clone(),
        created_at_ms: job.created_at_ms,
        live: job.live.to_string(),
        candidate: candidate.to_string(),
    }
}

/// The process's shadow worker, started with the first job.
pub struct ShadowRunner {
    store: Arc<dyn Store>,
    sender: OnceLock<SyncSender<ShadowJob>>,
}

impl ShadowRunner {
    /// A runner writing to `store`.
    pub fn new(store: Arc<dyn Store>) -> ShadowRunner {
        ShadowRunner {
            store,
            sender: OnceLock::new(),
        }
    }

    /// Queues a job without waiting; a full queue drops it (counted; the catch-up makes its
    /// twin later). Call it from within the runtime: the worker stores through it.
    pub fn submit(&self, job: ShadowJob) {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = sync_channel(SHADOW_QUEUE);
            let store = self.store.clone();
            let runtime = tokio::runtime::Handle::current();
            let spawned = std::thread::Builder::new()
                .name("credence-shadow".into())
                .spawn(move || work(store, runtime, receiver));
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start the shadow worker; the catch-up makes the twins");
            }
            sender
        });
        if sender.try_send(job).is_err() {
            metrics::counter!(m::SHADOW_DROPPED_TOTAL).increment(1);
        }
    }
}

fn work(
    store: Arc<dyn Store>,
    runtime: tokio::runtime::Handle,
    receiver: std::sync::mpsc::Receiver<ShadowJob>,
) {
    credence_store::lower_this_thread_priority();
    while let Ok(first) = receiver.recv() {
        // Twins are not urgent: a batch gathers for up to BATCH_WAIT, so that the store
        // commits a few times a second, not once per live decision.
        let mut jobs = vec![first];
        let deadline = Instant::now() + BATCH_WAIT;
        while jobs.len() < BATCH {
            match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => jobs.push(job),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let records: Vec<ShadowRecord> =
            jobs.iter().map(|job| record(job, evaluate(job))).collect();
        let count = records.len() as u64;
        let mut attempt = 0;
        loop {
            match runtime.block_on(store.append_shadow_results(records.clone())) {
                Ok(()) => {
                    metrics::counter!(m::SHADOW_RESULTS_TOTAL).increment(count);
                    break;
                }
                Err(error) if attempt < 5 => {
                    attempt += 1;
                    tracing::warn!(%error, attempt, "cannot store shadow results; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(200 << attempt));
                }
                Err(error) => {
                    tracing::error!(%error, count, "shadow results not stored; the catch-up will make them again");
                    metrics::counter!(m::SHADOW_DROPPED_TOTAL).increment(count);
                    break;
                }
            }
        }
    }
}
