//! Portfolio batches over a store: loading simulated account histories, and running an in-loan
//! flow over every active account with the same engine, plans and audit as the API.
//!
//! Both stream: memory holds a few pages of accounts, not the portfolio. The review reads pages
//! while worker threads decide chunks of the previous ones and the store writes the changes
//! decided before; the decisions of accounts that change are appended to the decision log (and
//! synced) before the accounts are updated, so every applied change has its decision on record.
//!
//! `partitioned.rs` runs the same review split into partitions that several processes claim
//! (on PostgreSQL, on several nodes), each account reviewed once per run.

use crate::accounts::{encode, event_record};
use crate::decisions::{new_id, new_record, request_fingerprint, RecordContext};
use crate::error::{AppError, ErrorCode};
use chrono::NaiveDate;
use credence_account::simulate::simulate_account;
use credence_account::{Account, FlowKind};
use credence_engine::{CompiledStrategy, EvalOptions};
use credence_store::{AccountQuery, AccountUpdate, NewAuditEvent, NewDecision, Store};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

mod partitioned;
pub use partitioned::{review_partitioned, RunOptions, RunSummary};

/// Accounts per page read from the store (and per write transaction).
const PAGE: u32 = 4096;
/// Accounts a worker decides at a time.
const CHUNK: usize = 256;

/// What `credence simulate portfolio` did.
#[derive(Debug, Clone, Serialize)]
pub struct SimulationSummary {
    /// Accounts simulated.
    pub accounts: u64,
    /// Account events generated.
    pub events: u64,
    /// Months of history per account.
    pub months: u32,
    /// The generator's seed.
    pub seed: u64,
    /// The day the histories end.
    pub as_of: NaiveDate,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulationPlan {
    /// Seeds the generator: the same seed, the same portfolio.
    pub seed: u64,
    /// Accounts to simulate.
    pub accounts: u64,
    /// Months of history per account.
    pub months: u32,
    /// The day the histories end.
    pub as_of: NaiveDate,
    /// Store every event too, so their ids count as applied (off for large benchmarks).
    pub keep_events: bool,
    /// Worker threads.
    pub threads: usize,
}

/// Generates the plan's simulated histories and writes the accounts (and, with `keep_events`,
/// their events) into the store.
pub async fn load_simulated(
    store: Arc<dyn Store>,
    plan: SimulationPlan,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SimulationSummary, AppError> {
    let SimulationPlan {
        seed,
        accounts,
        months,
        as_of,
        keep_events,
        threads,
    } = plan;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let batch = u64::from(PAGE);
    let mut pending = std::collections::VecDeque::new();
    let mut next = 0u64;
    let mut events_total = 0u64;
    let mut written = 0u64;
    let generate = move |start: u64, end: u64| -> Result<(Vec<_>, u64), AppError> {
        let mut rows = Vec::with_capacity((end - start) as usize);
        let mut events_n = 0u64;
        for index in start..end {
            let (account, events, _) = simulate_account(seed, index, as_of, months);
            events_n += events.len() as u64;
            let record = encode(&account, 1, now_ms)?;
            let events = if keep_events {
                events
                    .iter()
                    .map(|e| event_record(&account.id, e, now_ms))
                    .collect()
            } else {
                Vec::new()
            };
            rows.push((record, events));
        }
        Ok((rows, events_n))
    };
    loop {
        while pending.len() < threads.max(1) + 1 && next < accounts {
            let end = (next + batch).min(accounts);
            let start = next;
            pending.push_back(tokio::task::spawn_blocking(move || generate(start, end)));
            next = end;
        }
        let Some(job) = pending.pop_front() else {
            break;
        };
        let (rows, events_n) = job
            .await
            .map_err(|e| AppError::new(ErrorCode::Internal, format!("simulation failed: {e}")))??;
        let n = rows.len() as u64;
        store.insert_accounts(rows).await?;
        events_total += events_n;
        written += n;
        progress(written);
    }
    Ok(SimulationSummary {
        accounts: written,
        events: events_total,
        months,
        seed,
        as_of,
    })
}

/// How to run a portfolio review.
#[derive(Debug, Clone)]
pub struct ReviewOptions {
    /// The in-loan flow to run on every account.
    pub flow: FlowKind,
    /// The day the review is run as of.
    pub as_of: NaiveDate,
    /// Decide and count, change nothing and record nothing.
    pub dry_run: bool,
    /// Worker threads.
    pub threads: usize,
    /// Who the audit events name.
    pub actor: String,
    /// The language of reason texts in the recorded decisions.
    pub language: String,
}

/// What a portfolio review did: the one JSON line `credence portfolio review` ends with.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct ReviewSummary {
    /// The flow run.
    pub flow: String,
    /// The day the review was run as of.
    pub as_of: String,
    /// The strategy version that decided.
    pub strategy_version: String,
    /// True when nothing was changed or recorded.
    pub dry_run: bool,
    /// Accounts decided.
    pub accounts_reviewed: u64,
    /// Accounts per action (`limit_increase`, `limit_decrease`, `apr_change`, `freeze`,
    /// `collections`, `refer`, `no_change`); an account with two changes counts in both.
    pub actions: BTreeMap<String, u64>,
    /// Decisions written to the log.
    pub decisions_recorded: u64,
    /// Accounts the flow could not decide (their input did not validate); the first few are named.
    pub errors: u64,
    /// The first few errors, naming the account.
    pub error_examples: Vec<String>,
    /// Accounts skipped because another process changed them during the review.
    pub skipped_changed: u64,
}

impl ReviewSummary {
    /// Adds another part of the same review (a partition's) to this one.
    pub fn add(&mut self, other: &ReviewSummary) {
        for (mine, theirs) in [
            (&mut self.flow, &other.flow),
            (&mut self.as_of, &other.as_of),
            (&mut self.strategy_version, &other.strategy_version),
        ] {
            if mine.is_empty() {
                mine.clone_from(theirs);
            }
        }
        self.dry_run |= other.dry_run;
        self.accounts_reviewed += other.accounts_reviewed;
        for (action, count) in &other.actions {
            *self.actions.entry(action.clone()).or_default() += count;
        }
        self.decisions_recorded += other.decisions_recorded;
        self.errors += other.errors;
        for example in &other.error_examples {
            if self.error_examples.len() < 5 {
                self.error_examples.push(example.clone());
            }
        }
        self.skipped_changed += other.skipped_changed;
    }
}

/// One account's changes ready to write: the account, its decision, and its line of the page's
/// audit event.
pub(super) struct PendingWrite {
    update: AccountUpdate,
    decision: NewDecision,
    audit_entry: serde_json::Value,
}

pub(super) struct AccountResult {
    actions: Vec<&'static str>,
    write: Option<PendingWrite>,
    error: Option<String>,
}

fn review_one(
    record: &credence_store::AccountRecord,
    strategy: &CompiledStrategy,
    options: &ReviewOptions,
    eval: &EvalOptions,
    now_ms: i64,
) -> Result<AccountResult, String> {
    let mut account: Account = serde_json::from_str(&record.body)
        .map_err(|e| format!("{}: unreadable account: {e}", record.id))?;
    let flow = options.flow.flow_name();
    let features = account.features(options.as_of);
    let input = strategy
        .validate_fields(flow, |name| {
            account
                .input_value(&features, options.as_of, name)
                .map(std::borrow::Cow::Owned)
        })
        .map_err(|e| format!("{}: {e}", record.id))?;
    let decision = strategy
        .decide(flow, &input, eval)
        .map_err(|e| format!("{}: {e}", record.id))?;
    let changes = account.plan(options.flow, &decision);
    let actions: Vec<&'static str> = if changes.is_empty() {
        vec!["no_change"]
    } else {
        changes.iter().map(|c| c.action_name()).collect()
    };
    if changes.is_empty() || options.dry_run {
        return Ok(AccountResult {
            actions,
            write: None,
            error: None,
        });
    }
    account.apply_changes(&changes, options.as_of);
    let id = new_id(now_ms).map_err(|e| e.message)?;
    // The flow's declared inputs: what a replay re-validates and re-decides.
    let input_text = input.to_json().to_string();
    let reasons: Vec<String> = decision
        .reasons
        .iter()
        .map(|r| r.code.to_string())
        .collect();
    let decision_record = new_record(
        flow,
        &decision,
        RecordContext {
            id: id.clone(),
            customer_id: Some(account.customer_id.clone()),
            idempotency_key: None,
            request_sha256: request_fingerprint(flow, input_text.as_bytes()),
            language: eval.language.clone(),
            created_at_ms: now_ms,
            latency_us: 0,
            input: input_text,
        },
    )
    .map_err(|e| e.message)?;
    let update = AccountUpdate {
        account: encode(&account, record.version + 1, now_ms).map_err(|e| e.message)?,
        expected_version: record.version,
        events: Vec::new(),
        audit: Vec::new(),
    };
    let audit_entry = serde_json::json!({
        "account_id": account.id,
        "decision_id": id,
        "changes": changes,
        "reasons": reasons,
    });
    Ok(AccountResult {
        actions,
        write: Some(PendingWrite {
            update,
            decision: decision_record,
            audit_entry,
        }),
        error: None,
    })
}

pub(super) fn review_chunk(
    records: &[credence_store::AccountRecord],
    strategy: &CompiledStrategy,
    options: &ReviewOptions,
) -> Vec<AccountResult> {
    let eval = EvalOptions {
        as_of: options.as_of,
        language: options.language.clone(),
        full_trace: false,
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    records
        .iter()
        .map(|record| {
            review_one(record, strategy, options, &eval, now_ms).unwrap_or_else(|error| {
                AccountResult {
                    actions: Vec::new(),
                    write: None,
                    error: Some(error),
                }
            })
        })
        .collect()
}

/// Counts decided accounts into `summary` and collects their changes into `writes`.
fn tally(results: Vec<AccountResult>, summary: &mut ReviewSummary, writes: &mut Vec<PendingWrite>) {
    for result in results {
        summary.accounts_reviewed += 1;
        if let Some(error) = result.error {
            summary.errors += 1;
            if summary.error_examples.len() < 5 {
                summary.error_examples.push(error);
            }
            continue;
        }
        for action in result.actions {
            *summary.actions.entry(action.to_string()).or_default() += 1;
        }
        if let Some(write) = result.write {
            writes.push(write);
        }
    }
}

/// Writes one page's changes: decisions first (durable), then the accounts, with one audit
/// event listing every account change of the page (each change's decision is in the log).
async fn write_page(
    store: Arc<dyn Store>,
    writes: Vec<PendingWrite>,
    flow: &'static str,
    actor: String,
) -> Result<(u64, u64), AppError> {
    if writes.is_empty() {
        return Ok((0, 0));
    }
    let mut appends = tokio::task::JoinSet::new();
    let mut updates = Vec::with_capacity(writes.len());
    let mut entries = Vec::with_capacity(writes.len());
    for write in writes {
        let store = store.clone();
        let decision = write.decision;
        appends.spawn(async move { store.append_decision(decision).await });
        updates.push(write.update);
        entries.push(write.audit_entry);
    }
    let mut recorded = 0u64;
    while let Some(result) = appends.join_next().await {
        result.map_err(|e| AppError::new(ErrorCode::Internal, format!("append failed: {e}")))??;
        recorded += 1;
    }
    let audit = NewAuditEvent {
        at_ms: chrono::Utc::now().timestamp_millis(),
        actor,
        action: "account.batch_review".into(),
        subject: flow.to_string(),
        detail: serde_json::json!({"flow": flow, "accounts": entries}),
    };
    let stale = store.update_accounts(updates, vec![audit]).await?;
    Ok((recorded, stale.len() as u64))
}

async fn finish_write(
    write: tokio::task::JoinHandle<Result<(u64, u64), AppError>>,
    summary: &mut ReviewSummary,
) -> Result<(), AppError> {
    let (recorded, stale) = write
        .await
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("write failed: {e}")))??;
    summary.decisions_recorded += recorded;
    summary.skipped_changed += stale;
    Ok(())
}

/// Runs `options.flow` over every active account and applies (or with `dry_run`, only counts)
/// the changes. `progress` is called with the number of accounts reviewed so far.
pub async fn review_portfolio(
    store: Arc<dyn Store>,
    strategy: Arc<CompiledStrategy>,
    options: ReviewOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ReviewSummary, AppError> {
    strategy.flow(options.flow.flow_name())?;
    let options = Arc::new(options);
    let mut summary = ReviewSummary {
        flow: options.flow.flow_name().to_string(),
        as_of: options.as_of.to_string(),
        strategy_version: strategy.version().to_string(),
        dry_run: options.dry_run,
        ..ReviewSummary::default()
    };
    // reader ──chunks──▶ worker threads ──results──▶ this task ──pages of writes──▶ store.
    // No barrier between pages: a worker takes the next chunk as soon as it is free.
    let (chunk_tx, chunk_rx) = tokio::sync::mpsc::channel::<Vec<credence_store::AccountRecord>>(
        4 * options.threads.max(1),
    );
    let (result_tx, mut result_rx) = tokio::sync::mpsc::channel::<Vec<AccountResult>>(64);
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut after_id = None;
            loop {
                let query = AccountQuery {
                    status: Some("active".into()),
                    customer_id: None,
                    after_id: after_id.take(),
                    limit: PAGE,
                };
                let mut page = store.accounts(&query).await?;
                let full = page.len() as u32 == PAGE;
                after_id = page.last().map(|r| r.id.clone());
                while !page.is_empty() {
                    let rest = page.split_off(page.len().min(CHUNK));
                    if chunk_tx
                        .send(std::mem::replace(&mut page, rest))
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                if !full {
                    return Ok::<(), AppError>(());
                }
            }
        })
    };
    let chunk_rx = Arc::new(std::sync::Mutex::new(chunk_rx));
    let mut workers = Vec::new();
    for _ in 0..options.threads.max(1) {
        let (chunk_rx, result_tx) = (chunk_rx.clone(), result_tx.clone());
        let (strategy, options) = (strategy.clone(), options.clone());
        workers.push(tokio::task::spawn_blocking(move || loop {
            let chunk = match chunk_rx.lock() {
                Ok(mut receiver) => receiver.blocking_recv(),
                Err(_) => None,
            };
            let Some(chunk) = chunk else { return };
            if result_tx
                .blocking_send(review_chunk(&chunk, &strategy, &options))
                .is_err()
            {
                return;
            }
        }));
    }
    drop(result_tx);
    let mut writing: Option<tokio::task::JoinHandle<Result<(u64, u64), AppError>>> = None;
    let mut writes = Vec::new();
    let flush = |writes: Vec<PendingWrite>| {
        tokio::spawn(write_page(
            store.clone(),
            writes,
            options.flow.flow_name(),
            options.actor.clone(),
        ))
    };
    while let Some(results) = result_rx.recv().await {
        tally(results, &mut summary, &mut writes);
        if writes.len() >= PAGE as usize {
            if let Some(previous) = writing.take() {
                finish_write(previous, &mut summary).await?;
            }
            writing = Some(flush(std::mem::take(&mut writes)));
        }
        progress(summary.accounts_reviewed);
    }
    if let Some(previous) = writing.take() {
        finish_write(previous, &mut summary).await?;
    }
    if !writes.is_empty() {
        finish_write(flush(writes), &mut summary).await?;
    }
    reader
        .await
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("read failed: {e}")))??;
    for worker in workers {
        worker
            .await
            .map_err(|e| AppError::new(ErrorCode::Internal, format!("review failed: {e}")))?;
    }
    Ok(summary)
}
