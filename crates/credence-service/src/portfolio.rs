//! Portfolio batches over a store: loading simulated account histories, and running an in-loan
//! flow over every active account with the same engine, plans and audit as the API.
//!
//! Both stream in pages: memory holds a few pages of accounts, not the portfolio. The review
//! reads page k+1 while the worker threads decide page k and the store writes page k−1; the
//! decisions of accounts that change are appended to the decision log (and synced) before the
//! accounts are updated, so every applied change has its decision on record.

use crate::accounts::{change_audit, encode, event_record};
use crate::decisions::{body_with_id, new_id};
use crate::error::{ApiError, ErrorCode};
use chrono::NaiveDate;
use credence_account::simulate::simulate_account;
use credence_account::{Account, FlowKind};
use credence_engine::{CompiledStrategy, EvalOptions};
use credence_store::{AccountQuery, AccountUpdate, NewDecision, Store};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Accounts per page read from the store (and per write transaction).
const PAGE: u32 = 4096;

/// What `credence simulate portfolio` did.
#[derive(Debug, Clone, Serialize)]
pub struct SimulationSummary {
    pub accounts: u64,
    pub events: u64,
    pub months: u32,
    pub seed: u64,
    pub as_of: NaiveDate,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimulationPlan {
    pub seed: u64,
    pub accounts: u64,
    pub months: u32,
    /// The day the histories end.
    pub as_of: NaiveDate,
    /// Store every event too, so their ids count as applied (off for large benchmarks).
    pub keep_events: bool,
    pub threads: usize,
}

/// Generates the plan's simulated histories and writes the accounts (and, with `keep_events`,
/// their events) into the store.
pub async fn load_simulated(
    store: Arc<dyn Store>,
    plan: SimulationPlan,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<SimulationSummary, ApiError> {
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
    let generate = move |start: u64, end: u64| -> Result<(Vec<_>, u64), ApiError> {
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
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("simulation failed: {e}")))??;
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
    pub flow: FlowKind,
    pub as_of: NaiveDate,
    /// Decide and count, change nothing and record nothing.
    pub dry_run: bool,
    pub threads: usize,
    /// Who the audit events name.
    pub actor: String,
    pub language: String,
}

/// What a portfolio review did: the one JSON line `credence portfolio review` ends with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReviewSummary {
    pub flow: String,
    pub as_of: String,
    pub strategy_version: String,
    pub dry_run: bool,
    pub accounts_reviewed: u64,
    /// Accounts per action (`limit_increase`, `limit_decrease`, `apr_change`, `freeze`,
    /// `collections`, `refer`, `no_change`); an account with two changes counts in both.
    pub actions: BTreeMap<String, u64>,
    pub decisions_recorded: u64,
    /// Accounts the flow could not decide (their input did not validate); the first few are named.
    pub errors: u64,
    pub error_examples: Vec<String>,
    /// Accounts skipped because another process changed them during the review.
    pub skipped_changed: u64,
}

struct AccountResult {
    actions: Vec<&'static str>,
    write: Option<(AccountUpdate, NewDecision)>,
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
    let input = serde_json::Value::Object(account.flow_input(options.as_of));
    let flow = options.flow.flow_name();
    let decision = strategy
        .decide_json(flow, &input, eval)
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
    let body = body_with_id(&id, &decision).map_err(|e| e.message)?;
    let input_text = input.to_string();
    let reasons: Vec<String> = decision
        .reasons
        .iter()
        .map(|r| r.code.to_string())
        .collect();
    let decision_record = NewDecision {
        id: id.clone(),
        flow: flow.to_string(),
        customer_id: Some(account.customer_id.clone()),
        idempotency_key: None,
        request_sha256: credence_store::chain::sha256_hex(input_text.as_bytes()),
        strategy: decision.strategy.to_string(),
        strategy_version: decision.strategy_version.to_string(),
        arm: decision.arm.as_deref().map(str::to_string),
        outcome: decision.outcome.as_str().to_string(),
        as_of: decision.as_of.clone(),
        language: eval.language.clone(),
        created_at_ms: now_ms,
        latency_us: 0,
        input: input_text,
        decision: body,
    };
    let update = AccountUpdate {
        account: encode(&account, record.version + 1, now_ms).map_err(|e| e.message)?,
        expected_version: record.version,
        events: Vec::new(),
        audit: change_audit(&account.id, &id, &changes, &reasons, &options.actor, now_ms),
    };
    Ok(AccountResult {
        actions,
        write: Some((update, decision_record)),
        error: None,
    })
}

fn review_chunk(
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

/// Writes one page's changes: decisions first (durable), then the accounts with their audit.
async fn write_page(
    store: Arc<dyn Store>,
    writes: Vec<(AccountUpdate, NewDecision)>,
) -> Result<(u64, u64), ApiError> {
    if writes.is_empty() {
        return Ok((0, 0));
    }
    let mut appends = tokio::task::JoinSet::new();
    let mut updates = Vec::with_capacity(writes.len());
    for (update, decision) in writes {
        let store = store.clone();
        appends.spawn(async move { store.append_decision(decision).await });
        updates.push(update);
    }
    let mut recorded = 0u64;
    while let Some(result) = appends.join_next().await {
        result.map_err(|e| ApiError::new(ErrorCode::Internal, format!("append failed: {e}")))??;
        recorded += 1;
    }
    let stale = store.update_accounts(updates).await?;
    Ok((recorded, stale.len() as u64))
}

/// Runs `options.flow` over every active account and applies (or with `dry_run`, only counts)
/// the changes. `progress` is called with the number of accounts reviewed so far.
pub async fn review_portfolio(
    store: Arc<dyn Store>,
    strategy: Arc<CompiledStrategy>,
    options: ReviewOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<ReviewSummary, ApiError> {
    strategy.flow(options.flow.flow_name())?;
    let options = Arc::new(options);
    let mut summary = ReviewSummary {
        flow: options.flow.flow_name().to_string(),
        as_of: options.as_of.to_string(),
        strategy_version: strategy.version().to_string(),
        dry_run: options.dry_run,
        ..ReviewSummary::default()
    };
    let page_query = |after_id: Option<String>| AccountQuery {
        status: Some("active".into()),
        customer_id: None,
        after_id,
        limit: PAGE,
    };
    let mut next_page = {
        let store = store.clone();
        let query = page_query(None);
        tokio::spawn(async move { store.accounts(&query).await })
    };
    let mut writing: Option<tokio::task::JoinHandle<Result<(u64, u64), ApiError>>> = None;
    loop {
        let page = next_page
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("read failed: {e}")))??;
        if page.is_empty() {
            break;
        }
        let last_id = page.last().map(|r| r.id.clone());
        let full = page.len() as u32 == PAGE;
        next_page = {
            let store = store.clone();
            let query = page_query(last_id);
            tokio::spawn(async move {
                if full {
                    store.accounts(&query).await
                } else {
                    Ok(Vec::new())
                }
            })
        };
        // Decide the page on the worker threads.
        let page = Arc::new(page);
        let threads = options.threads.max(1);
        let chunk = page.len().div_ceil(threads);
        let mut workers = Vec::with_capacity(threads);
        for t in 0..threads {
            let (page, strategy, options) = (page.clone(), strategy.clone(), options.clone());
            workers.push(tokio::task::spawn_blocking(move || {
                let start = (t * chunk).min(page.len());
                let end = ((t + 1) * chunk).min(page.len());
                review_chunk(&page[start..end], &strategy, &options)
            }));
        }
        let mut writes = Vec::new();
        for worker in workers {
            let results = worker
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, format!("review failed: {e}")))?;
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
        if let Some(previous) = writing.take() {
            let (recorded, stale) = previous
                .await
                .map_err(|e| ApiError::new(ErrorCode::Internal, format!("write failed: {e}")))??;
            summary.decisions_recorded += recorded;
            summary.skipped_changed += stale;
        }
        writing = Some(tokio::spawn(write_page(store.clone(), writes)));
        progress(summary.accounts_reviewed);
    }
    if let Some(previous) = writing.take() {
        let (recorded, stale) = previous
            .await
            .map_err(|e| ApiError::new(ErrorCode::Internal, format!("write failed: {e}")))??;
        summary.decisions_recorded += recorded;
        summary.skipped_changed += stale;
    }
    Ok(summary)
}
