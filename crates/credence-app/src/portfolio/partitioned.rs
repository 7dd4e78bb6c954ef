//! A portfolio review split into partitions of accounts that worker processes — on one machine or on every node of a cluster — claim, review and complete, each account reviewed once per run even when a worker dies.
//!
//! The first worker of a run splits the active accounts into ranges of ids (`KeyRange`s) and
//! stores them as the run's partitions; a worker started later with the same run id finds them
//! and joins (or resumes, after a crash). A worker claims a partition under a lease, decides
//! its accounts, appends the decisions of the accounts that change to the log, then hands the
//! account updates to [`JobPartitions::complete_partition`], which applies them and marks the
//! partition done in one transaction — only if the worker still holds it. A worker that dies
//! before completing leaves its partition to be taken over when the lease ends: its accounts
//! were not changed, and the next worker reviews them (the decisions the dead worker appended
//! stay in the log, never applied; the run's audit events name only applied ones).
//!
//! [`JobPartitions::complete_partition`]: credence_store::JobPartitions::complete_partition

use super::{review_chunk, tally, ReviewOptions, ReviewSummary, PAGE};
use crate::error::{AppError, ErrorCode};
use credence_engine::CompiledStrategy;
use credence_store::{AccountQuery, JobPartition, KeyRange, NewAuditEvent, PartitionClaim, Store};
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a review run is shared between workers.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The run's id: workers with the same id share (and resume) one run.
    pub run_id: String,
    /// This worker's name (host and process), recorded on the partitions it holds.
    pub worker: String,
    /// How long a claimed partition stays this worker's; longer than reviewing one partition.
    pub lease_ms: i64,
    /// Accounts per partition when the run is split.
    pub partition_accounts: u32,
    /// Partitions this process reviews at once.
    pub concurrent_partitions: usize,
}

/// What one worker process did, and the run's totals once every partition is done.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The run.
    pub run_id: String,
    /// Its partitions.
    pub partitions: u64,
    /// Those this process completed.
    pub partitions_completed_here: u64,
    /// Those this process reviewed but lost to another worker after its lease ended (nothing
    /// of them was applied).
    pub partitions_lost_here: u64,
    /// What this process reviewed and applied.
    pub here: ReviewSummary,
    /// The whole run, summed over its partitions, when all are done.
    pub run: Option<ReviewSummary>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Splits the active accounts into ranges of `size` ids.
async fn plan(store: &dyn Store, size: u32) -> Result<Vec<KeyRange>, AppError> {
    let mut ranges = Vec::new();
    let mut after = String::new();
    loop {
        let page = store
            .accounts(&AccountQuery {
                status: Some("active".into()),
                customer_id: None,
                after_id: (!after.is_empty()).then(|| after.clone()),
                limit: size.max(1),
            })
            .await?;
        let Some(last) = page.last() else { break };
        ranges.push(KeyRange {
            after_key: after.clone(),
            last_key: last.id.clone(),
        });
        if page.len() < size.max(1) as usize {
            break;
        }
        after = last.id.clone();
    }
    Ok(ranges)
}

/// Reviews one claimed partition; `Ok(None)` when another worker took it over first.
async fn review_partition(
    store: &Arc<dyn Store>,
    strategy: &Arc<CompiledStrategy>,
    options: &Arc<ReviewOptions>,
    run: &RunOptions,
    partition: &JobPartition,
) -> Result<Option<ReviewSummary>, AppError> {
    let mut records = Vec::new();
    let mut after = partition.range.after_key.clone();
    'pages: loop {
        let page = store
            .accounts(&AccountQuery {
                status: Some("active".into()),
                customer_id: None,
                after_id: (!after.is_empty()).then(|| after.clone()),
                limit: PAGE,
            })
            .await?;
        let full = page.len() == PAGE as usize;
        for record in page {
            if record.id > partition.range.last_key {
                break 'pages;
            }
            after = record.id.clone();
            records.push(record);
        }
        if !full {
            break;
        }
    }
    let results = {
        let (strategy, options) = (strategy.clone(), options.clone());
        tokio::task::spawn_blocking(move || review_chunk(&records, &strategy, &options))
            .await
            .map_err(|e| AppError::new(ErrorCode::Internal, format!("review failed: {e}")))?
    };
    let mut summary = ReviewSummary {
        flow: options.flow.flow_name().to_string(),
        as_of: options.as_of.to_string(),
        strategy_version: strategy.version().to_string(),
        ..ReviewSummary::default()
    };
    let mut writes = Vec::new();
    tally(results, &mut summary, &mut writes);
    // Decisions first: every applied change has its decision on record.
    let mut appends = tokio::task::JoinSet::new();
    let mut updates = Vec::with_capacity(writes.len());
    let mut entries = Vec::with_capacity(writes.len());
    for write in writes {
        let store = store.clone();
        appends.spawn(async move { store.append_decision(write.decision).await });
        updates.push(write.update);
        entries.push(write.audit_entry);
    }
    while let Some(result) = appends.join_next().await {
        result.map_err(|e| AppError::new(ErrorCode::Internal, format!("append failed: {e}")))??;
        summary.decisions_recorded += 1;
    }
    let flow = options.flow.flow_name();
    let audit = (!entries.is_empty()).then(|| NewAuditEvent {
        at_ms: now_ms(),
        actor: options.actor.clone(),
        action: "account.batch_review".into(),
        subject: flow.to_string(),
        detail: serde_json::json!({
            "flow": flow,
            "run_id": run.run_id,
            "partition": partition.partition_no,
            "accounts": entries,
        }),
    });
    // The stored report counts the accounts the completion skipped, known only inside it.
    let report = summary.clone();
    let result: credence_store::PartitionResult = Box::new(move |stale: &[String]| {
        let mut report = report;
        report.skipped_changed = stale.len() as u64;
        serde_json::to_string(&report).unwrap_or_else(|_| "{}".to_string())
    });
    let completed = store
        .complete_partition(
            partition,
            &run.worker,
            now_ms(),
            result,
            updates,
            audit.into_iter().collect(),
        )
        .await?;
    Ok(completed.map(|stale| {
        summary.skipped_changed = stale.len() as u64;
        summary
    }))
}

/// Runs (or joins, or resumes) review run `run.run_id`: claims partitions until every one is
/// done, `progress` called with the accounts this process reviewed so far.
pub async fn review_partitioned(
    store: Arc<dyn Store>,
    strategy: Arc<CompiledStrategy>,
    options: ReviewOptions,
    run: RunOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RunSummary, AppError> {
    strategy.flow(options.flow.flow_name())?;
    if options.dry_run {
        return Err(AppError::new(
            ErrorCode::InvalidInput,
            "a dry run changes nothing and needs no run to share: drop the run id",
        ));
    }
    if store.job_partitions(&run.run_id).await?.is_empty() {
        let ranges = plan(&*store, run.partition_accounts).await?;
        if ranges.is_empty() {
            return Err(AppError::new(
                ErrorCode::InvalidState,
                "there are no active accounts to review",
            ));
        }
        store.create_job(&run.run_id, ranges).await?;
    }
    let options = Arc::new(options);
    let here = Arc::new(Mutex::new((
        ReviewSummary {
            flow: options.flow.flow_name().to_string(),
            as_of: options.as_of.to_string(),
            strategy_version: strategy.version().to_string(),
            ..ReviewSummary::default()
        },
        0u64,
        0u64,
    )));
    let reviewed = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..run.concurrent_partitions.max(1) {
        let (store, strategy, options, run) = (
            store.clone(),
            strategy.clone(),
            options.clone(),
            run.clone(),
        );
        let (here, reviewed) = (here.clone(), reviewed.clone());
        workers.spawn(async move {
            loop {
                let claim = store
                    .claim_partition(&run.run_id, &run.worker, now_ms(), run.lease_ms)
                    .await?;
                let partition = match claim {
                    PartitionClaim::Claimed(partition) => partition,
                    PartitionClaim::Done => return Ok::<(), AppError>(()),
                    PartitionClaim::Busy => {
                        // Held elsewhere: wait for them to finish, or their leases to end.
                        let wait = (run.lease_ms / 10).clamp(50, 1_000) as u64;
                        tokio::time::sleep(Duration::from_millis(wait)).await;
                        continue;
                    }
                };
                let outcome =
                    review_partition(&store, &strategy, &options, &run, &partition).await?;
                let mut guard = here
                    .lock()
                    .map_err(|_| AppError::new(ErrorCode::Internal, "a review worker panicked"))?;
                match outcome {
                    Some(summary) => {
                        reviewed.fetch_add(summary.accounts_reviewed, Ordering::Relaxed);
                        guard.0.add(&summary);
                        guard.1 += 1;
                    }
                    None => guard.2 += 1,
                }
            }
        });
    }
    let mut failure = None;
    loop {
        tokio::select! {
            next = workers.join_next() => match next {
                None => break,
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(error))) => { failure.get_or_insert(error); }
                Some(Err(error)) => {
                    failure.get_or_insert(AppError::new(ErrorCode::Internal, format!("review failed: {error}")));
                }
            },
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        progress(reviewed.load(Ordering::Relaxed));
    }
    progress(reviewed.load(Ordering::Relaxed));
    if let Some(error) = failure {
        return Err(error);
    }
    let partitions = store.job_partitions(&run.run_id).await?;
    let total = if partitions.iter().all(|p| p.state == "done") {
        let mut total = ReviewSummary::default();
        for partition in &partitions {
            if let Some(result) = &partition.result {
                let part: ReviewSummary = serde_json::from_str(result).map_err(|e| {
                    AppError::new(
                        ErrorCode::Internal,
                        format!("a partition's stored result: {e}"),
                    )
                })?;
                total.add(&part);
            }
        }
        Some(total)
    } else {
        None
    };
    let (here, completed, lost) = here
        .lock()
        .map(|g| g.clone())
        .map_err(|_| AppError::new(ErrorCode::Internal, "a review worker panicked"))?;
    Ok(RunSummary {
        run_id: run.run_id,
        partitions: partitions.len() as u64,
        partitions_completed_here: completed,
        partitions_lost_here: lost,
        here,
        run: total,
    })
}
