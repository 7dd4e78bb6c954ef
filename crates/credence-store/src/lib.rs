//! Credence's durable state behind one trait per aggregate: the decision log, strategy versions, keys and users, audit, cases, accounts, provider answers, webhooks.
//!
//! The service holds an `Arc<dyn Store>`; [`SqliteStore`] is the embedded default: the
//! decision log in append-only segment files under `log/` (see `log.rs` for why), everything
//! else — the log's index, strategies, activations, keys, audit events — in one SQLite file.
//! The SQL sticks to what PostgreSQL also accepts (keys assigned by the store, no
//! `AUTOINCREMENT`, no `INSERT OR …`, partial indexes both know), so a second implementation
//! is a port of statements, not of design; `seq INTEGER PRIMARY KEY` is the one SQLite
//! spelling (`BIGINT PRIMARY KEY` in PostgreSQL).
//!
//! Invariants every implementation keeps:
//! - an append returns only after its record is durable (written and synced);
//! - decisions form one hash chain in `seq` order ([`chain`]); records are never changed;
//! - a reused idempotency key is refused and leaves no record;
//! - a change to a strategy or a key is written in the same transaction as its audit event.

#![warn(missing_docs)]

/// The hash chain of the decision log: record hashes and their verification.
pub mod chain;
mod error;
pub mod group_commit;
mod log;
mod memory;
/// The decision log of a cluster: a hash chain per node, bound by chained checkpoints.
pub mod node_chain;
mod priority;
mod records;
mod sqlite;

pub use chain::{ChainProblem, ChainReport};
pub use error::StoreError;
pub use memory::MemoryStore;
pub use priority::lower_this_thread as lower_this_thread_priority;
pub use records::*;
pub use sqlite::{SqliteStore, DATABASE_FILE, LOG_DIR};

/// Durable state, one trait per aggregate; a store implements them all. Methods are async so
/// that a networked database can implement them. Call them with [`prelude`] in scope.
pub trait Store:
    DecisionLog
    + StrategyStore
    + AccessStore
    + AuditLog
    + CaseStore
    + AccountStore
    + ProviderAnswerStore
    + WebhookOutbox
    + JobPartitions
    + ShadowLog
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: DecisionLog
        + StrategyStore
        + AccessStore
        + AuditLog
        + CaseStore
        + AccountStore
        + ProviderAnswerStore
        + WebhookOutbox
        + JobPartitions
        + ShadowLog
        + Send
        + Sync
        + 'static
{
}

/// The store traits, to bring their methods into scope: `use credence_store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        AccessStore, AccountStore, AuditLog, CaseStore, DecisionLog, JobPartitions,
        ProviderAnswerStore, ShadowLog, Store, StrategyStore, WebhookOutbox,
    };
}

/// The decision log: an append-only, hash-chained record of every decision, with an index to find them.
#[async_trait::async_trait]
pub trait DecisionLog: Send + Sync {
    /// Appends a decision to the chain; returns once it is durable. A reused idempotency key
    /// is a [`StoreError::Conflict`] and leaves no record.
    async fn append_decision(&self, decision: NewDecision) -> Result<AppendReceipt, StoreError>;
    /// Whether the decision log can take appends now; `Unavailable` with the reason when it
    /// cannot (a full device). Readiness checks ask this.
    async fn writable(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// A decision by id.
    async fn decision(&self, id: &str) -> Result<Option<StoredDecision>, StoreError>;
    /// The decision recorded under an Idempotency-Key, if any.
    async fn decision_by_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<StoredDecision>, StoreError>;
    /// A page of history summaries, newest first.
    async fn list_decisions(
        &self,
        query: &DecisionQuery,
    ) -> Result<Vec<DecisionSummary>, StoreError>;
    /// Checks the whole chain and its head.
    async fn verify_chain(&self) -> Result<ChainReport, StoreError>;
}

/// Strategy versions: packages, approvals (maker-checker) and the activation history.
#[async_trait::async_trait]
pub trait StrategyStore: Send + Sync {
    /// Stores a new draft version. Returns false (and writes nothing) when it already exists.
    async fn insert_strategy(
        &self,
        record: StrategyRecord,
        package: Vec<u8>,
        audit: NewAuditEvent,
    ) -> Result<bool, StoreError>;
    /// A version's record.
    async fn strategy(&self, version: &str) -> Result<Option<StrategyRecord>, StoreError>;
    /// A version's package bytes (a `.tar.gz`).
    async fn strategy_package(&self, version: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every version, newest upload first.
    async fn strategies(&self) -> Result<Vec<StrategyRecord>, StoreError>;
    /// Moves a draft to approved; a [`StoreError::Precondition`] if it is not a draft.
    async fn approve_strategy(
        &self,
        version: &str,
        approver: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// Appends to the activation history of the version's strategy (its newest entry is that
    /// strategy's active version); refused unless the version is approved.
    async fn record_activation(
        &self,
        version: &str,
        actor: &str,
        kind: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<Activation, StoreError>;
    /// The activation history of one strategy (or of all, `None`), newest first.
    async fn activations(
        &self,
        strategy: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Activation>, StoreError>;
    /// The newest activation of every strategy: the active version of each.
    async fn active_versions(&self) -> Result<Vec<Activation>, StoreError>;
    /// Rollouts of one strategy (or of all), newest first.
    async fn rollouts(
        &self,
        strategy: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RolloutRecord>, StoreError>;
    /// Stores a rollout with its audit event: a new one when `expected_revision` is `None`
    /// (a conflict if its id exists, a precondition if its strategy has another running
    /// rollout), else a change of the stored one if it is still at that revision (a
    /// precondition otherwise). The stored revision is the record's.
    async fn save_rollout(
        &self,
        record: RolloutRecord,
        expected_revision: Option<i64>,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
}

/// Shadow results: what a candidate version would have decided for each live decision, kept
/// beside the log (never part of its chain) for the comparison of a rollout.
#[async_trait::async_trait]
pub trait ShadowLog: Send + Sync {
    /// Stores shadow results; one already stored for the same decision and candidate is kept
    /// as it is (a retried batch writes nothing twice).
    async fn append_shadow_results(&self, records: Vec<ShadowRecord>) -> Result<(), StoreError>;
    /// Shadow results matching `query`, oldest first.
    async fn shadow_results(&self, query: &ShadowQuery) -> Result<Vec<ShadowRecord>, StoreError>;
}

/// Who may call: API keys, workbench users and their sessions.
#[async_trait::async_trait]
pub trait AccessStore: Send + Sync {
    /// Stores a new key with its audit event.
    async fn insert_key(&self, key: ApiKeyRecord, audit: NewAuditEvent) -> Result<(), StoreError>;
    /// A key by id (revoked ones too).
    async fn key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Every key.
    async fn keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;
    /// Revokes a key, with its audit event; refused if it is unknown or already revoked.
    async fn revoke_key(
        &self,
        id: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// Adds a workbench user; an existing username is a conflict.
    async fn insert_user(&self, user: UserRecord, audit: NewAuditEvent) -> Result<(), StoreError>;
    /// A workbench user by name.
    async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// Every workbench user, by name.
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Replaces a user's password hash, role, strategies and disabled time, with its audit
    /// event; a disabled user's sessions end with it. Refused for an unknown user.
    async fn update_user(&self, user: UserRecord, audit: NewAuditEvent) -> Result<(), StoreError>;
    /// Stores a new workbench session.
    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError>;
    /// A session by the hash of its token.
    async fn session(&self, token_sha256: &str) -> Result<Option<SessionRecord>, StoreError>;
    /// Ends a session (signing out).
    async fn delete_session(&self, token_sha256: &str) -> Result<(), StoreError>;
}

/// The audit trail: who changed what, newest first.
#[async_trait::async_trait]
pub trait AuditLog: Send + Sync {
    /// Audit events, newest first.
    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError>;
    /// Records an audit event on its own (e.g. a reviewer revealing personal data).
    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError>;
}

/// Manual review cases, one per referred decision, changed under optimistic concurrency.
#[async_trait::async_trait]
pub trait CaseStore: Send + Sync {
    /// Stores a new review case; a second case for the same decision is a conflict.
    async fn insert_case(&self, case: CaseRecord) -> Result<(), StoreError>;
    /// A case by id.
    async fn case(&self, id: &str) -> Result<Option<CaseRecord>, StoreError>;
    /// The case opened for a decision, if any.
    async fn case_for_decision(&self, decision_id: &str) -> Result<Option<CaseRecord>, StoreError>;
    /// The cases matching `query`, soonest deadline first.
    async fn cases(&self, query: &CaseQuery) -> Result<Vec<CaseRecord>, StoreError>;
    /// The ids of referred decisions, among the newest `recent` in the log, that have no review
    /// case, oldest first: cases whose opening a crash cut short (the service opens them at
    /// start). Looks at indexed decisions only; at start, all are indexed.
    async fn referrals_without_case(&self, recent: u32) -> Result<Vec<String>, StoreError>;
    /// Replaces a case if it is still at `expected_version` (its new version is one more);
    /// a [`StoreError::Precondition`] if someone changed it first.
    async fn update_case(&self, case: CaseRecord, expected_version: i64) -> Result<(), StoreError>;
    /// Takes the first case matching `query` (soonest deadline first; not decided unless
    /// `query.state` says so) that `claim` turns into a claimed case, and stores that at the
    /// next version. Cases another writer holds at that moment are skipped (on PostgreSQL,
    /// `FOR UPDATE SKIP LOCKED`): reviewers on several nodes taking "the next case" at once get
    /// different cases. `None` when no case qualifies.
    async fn claim_next_case(
        &self,
        query: &CaseQuery,
        claim: CaseClaimer,
    ) -> Result<Option<CaseRecord>, StoreError>;
}

/// Credit accounts after approval, with the events they were built from.
#[async_trait::async_trait]
pub trait AccountStore: Send + Sync {
    /// Opens an account; a second account for the same decision is a conflict.
    async fn insert_account(
        &self,
        account: AccountRecord,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// Loads accounts with the events they were built from, in one transaction (bulk loads).
    async fn insert_accounts(
        &self,
        accounts: Vec<(AccountRecord, Vec<AccountEventRecord>)>,
    ) -> Result<(), StoreError>;
    /// An account by id.
    async fn account(&self, id: &str) -> Result<Option<AccountRecord>, StoreError>;
    /// The account opened from a decision, if any.
    async fn account_for_decision(
        &self,
        decision_id: &str,
    ) -> Result<Option<AccountRecord>, StoreError>;
    /// A page of accounts in id order.
    async fn accounts(&self, query: &AccountQuery) -> Result<Vec<AccountRecord>, StoreError>;
    /// How many accounts there are (with this status).
    async fn count_accounts(&self, status: Option<&str>) -> Result<u64, StoreError>;
    /// Which of `event_ids` this account has already applied.
    async fn known_event_ids(
        &self,
        account_id: &str,
        event_ids: Vec<String>,
    ) -> Result<Vec<String>, StoreError>;
    /// An account's applied events, newest (by event time) first.
    async fn account_events(
        &self,
        account_id: &str,
        limit: u32,
    ) -> Result<Vec<AccountEventRecord>, StoreError>;
    /// Writes account updates, each with its events and audit events, plus `audit` for the
    /// batch as a whole, in one transaction; returns the ids of accounts skipped because they
    /// changed since they were read. An event id the account already has fails the whole call
    /// (nothing is applied twice).
    async fn update_accounts(
        &self,
        updates: Vec<AccountUpdate>,
        audit: Vec<NewAuditEvent>,
    ) -> Result<Vec<String>, StoreError>;
}

/// Third-party answers kept for the cache across restarts.
#[async_trait::async_trait]
pub trait ProviderAnswerStore: Send + Sync {
    /// Keeps provider answers for the cache (a newer answer for the same source key and subject
    /// replaces the older), and deletes every answer expired by `now_ms`. Not synced to disk:
    /// an answer lost in a crash is at worst pulled again.
    async fn put_provider_answers(
        &self,
        answers: Vec<ProviderAnswerRecord>,
        now_ms: i64,
    ) -> Result<(), StoreError>;
    /// Unexpired provider answers at `now_ms`, those expiring last first, at most `limit`.
    async fn provider_answers(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<ProviderAnswerRecord>, StoreError>;
    /// The unexpired answer for one source and subject at `now_ms`, if one is kept: the
    /// second-level cache a node asks before it buys an answer that another node may have
    /// bought within the TTL.
    async fn provider_answer(
        &self,
        source_key: &str,
        subject: &str,
        now_ms: i64,
    ) -> Result<Option<ProviderAnswerRecord>, StoreError> {
        Ok(self
            .provider_answers(now_ms, u32::MAX)
            .await?
            .into_iter()
            .find(|a| a.source_key == source_key && a.subject == subject))
    }
}

/// Webhook registrations and the outbox of their deliveries.
#[async_trait::async_trait]
pub trait WebhookOutbox: Send + Sync {
    /// Registers a webhook, with its audit event.
    async fn insert_webhook(
        &self,
        hook: WebhookRecord,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError>;
    /// Every registered webhook.
    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError>;
    /// Removes a webhook, with its audit event.
    async fn delete_webhook(&self, id: &str, audit: NewAuditEvent) -> Result<(), StoreError>;
    /// Queues `body` for every registered webhook; returns how many deliveries were queued.
    async fn enqueue_deliveries(
        &self,
        event: &str,
        body: &str,
        at_ms: i64,
    ) -> Result<usize, StoreError>;
    /// Deliveries whose next attempt is due, oldest first.
    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// Records an attempt: delivered, or the time of the next try (`None`: give up).
    async fn record_attempt(
        &self,
        id: i64,
        delivered_at_ms: Option<i64>,
        next_attempt_ms: Option<i64>,
        error: Option<String>,
    ) -> Result<(), StoreError>;
}

/// Batch jobs split into partitions that workers — threads or processes on several nodes —
/// claim under a lease and complete once: a worker that dies mid-partition loses its claim when
/// the lease ends, and another takes the partition over.
#[async_trait::async_trait]
pub trait JobPartitions: Send + Sync {
    /// Splits a job into partitions, in order; a job that already exists is left as it is (a
    /// restarted run resumes). Returns whether the partitions were created now.
    async fn create_job(&self, job_id: &str, ranges: Vec<KeyRange>) -> Result<bool, StoreError>;
    /// Claims the first partition that is pending or whose lease ended before `now_ms`, for
    /// `lease_ms`.
    async fn claim_partition(
        &self,
        job_id: &str,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<PartitionClaim, StoreError>;
    /// Applies the partition's account updates and its audit events and marks it done with
    /// the report `result` makes of the accounts skipped (those that changed since they were
    /// read), in one transaction — only while `worker` still holds it. `None` (and nothing
    /// written) when another worker took it over; otherwise the ids of the skipped accounts.
    /// Each partition's changes are applied once.
    async fn complete_partition(
        &self,
        partition: &JobPartition,
        worker: &str,
        now_ms: i64,
        result: PartitionResult,
        updates: Vec<AccountUpdate>,
        audit: Vec<NewAuditEvent>,
    ) -> Result<Option<Vec<String>>, StoreError>;
    /// A job's partitions in order; empty for an unknown job.
    async fn job_partitions(&self, job_id: &str) -> Result<Vec<PartitionRecord>, StoreError>;
}

/// Seconds to write and sync one batch of decisions to the log.
pub const METRIC_COMMIT_SECONDS: &str = "credence_log_commit_seconds";
/// Decisions per synced batch.
pub const METRIC_BATCH_SIZE: &str = "credence_log_batch_size";

/// Declares this crate's metrics to whichever recorder is installed.
pub fn describe_metrics() {
    metrics::describe_histogram!(
        METRIC_COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "Time to write and sync one batch of decisions to the log"
    );
    metrics::describe_histogram!(
        METRIC_BATCH_SIZE,
        metrics::Unit::Count,
        "Decisions written and synced together in one batch"
    );
}
