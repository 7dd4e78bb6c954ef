//! The rows the store keeps, in the shapes the service reads and writes.

use crate::error::StoreError;
use serde::Serialize;

/// A decision about to be appended to the log. `input` and `decision` are JSON text, stored
/// verbatim so that what is hashed is exactly what is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    /// The decision's id (time-ordered, unique).
    pub id: String,
    /// The flow that decided.
    pub flow: String,
    /// The customer the input names, for history by customer.
    pub customer_id: Option<String>,
    /// The caller's Idempotency-Key; unique in the log when present.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the request body, to tell a retry from a different request reusing a key.
    pub request_sha256: String,
    /// The strategy's name.
    pub strategy: String,
    /// The strategy version (content hash) that decided.
    pub strategy_version: String,
    /// The experiment arm, when the flow has one.
    pub arm: Option<String>,
    /// `approve`, `decline` or `refer`.
    pub outcome: String,
    /// The date the decision was made as of (`YYYY-MM-DD`).
    pub as_of: String,
    /// The language of the reason texts.
    pub language: String,
    /// When the request was received.
    pub created_at_ms: i64,
    /// Time from receiving the request to having the decision, before the log commit.
    pub latency_us: i64,
    /// The input as received: what a replay re-reads.
    pub input: String,
    /// The decision as returned to the caller, with its compact trace.
    pub decision: String,
}

/// A decision as stored: its fields plus its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDecision {
    /// Its position in the log, from 1, without gaps.
    pub seq: i64,
    /// What was appended.
    pub record: NewDecision,
    /// The hash of the decision before it (zeros for the first).
    pub prev_hash: String,
    /// This decision's hash, binding `prev_hash` and its content.
    pub hash: String,
}

/// Where an appended decision landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendReceipt {
    /// The decision's position in the log.
    pub seq: i64,
    /// Its chain hash.
    pub hash: String,
}

/// One line of a history listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionSummary {
    /// The decision's id.
    pub id: String,
    /// Its position in the log.
    pub seq: i64,
    /// The flow that decided.
    pub flow: String,
    /// The customer, when the input named one.
    pub customer_id: Option<String>,
    /// The outcome.
    pub outcome: String,
    /// The experiment arm, if any.
    pub arm: Option<String>,
    /// The strategy (product) that decided.
    pub strategy: String,
    /// The strategy version that decided.
    pub strategy_version: String,
    /// When it was made.
    pub created_at_ms: i64,
}

/// A page of history, newest first. `before_seq` continues from a previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionQuery {
    /// Only this customer's decisions.
    pub customer_id: Option<String>,
    /// Only this flow's decisions.
    pub flow: Option<String>,
    /// Only this strategy's (product's) decisions.
    pub strategy: Option<String>,
    /// Only decisions of this strategy version.
    pub strategy_version: Option<String>,
    /// Made at or after this time.
    pub from_ms: Option<i64>,
    /// Made before this time.
    pub to_ms: Option<i64>,
    /// Older than this log position (the previous page's last).
    pub before_seq: Option<i64>,
    /// The most to return.
    pub limit: u32,
}

impl DecisionQuery {
    /// Whether a stored decision passes the query's filters (not its limit).
    pub fn matches(&self, stored: &StoredDecision) -> bool {
        let r = &stored.record;
        self.customer_id
            .as_ref()
            .is_none_or(|c| r.customer_id.as_ref() == Some(c))
            && self.flow.as_ref().is_none_or(|f| &r.flow == f)
            && self.strategy.as_ref().is_none_or(|s| &r.strategy == s)
            && self
                .strategy_version
                .as_ref()
                .is_none_or(|v| &r.strategy_version == v)
            && self.from_ms.is_none_or(|t| r.created_at_ms >= t)
            && self.to_ms.is_none_or(|t| r.created_at_ms < t)
            && self.before_seq.is_none_or(|b| stored.seq < b)
    }
}

impl DecisionSummary {
    /// The history line of a stored decision.
    pub fn of(stored: &StoredDecision) -> DecisionSummary {
        let r = &stored.record;
        DecisionSummary {
            id: r.id.clone(),
            seq: stored.seq,
            flow: r.flow.clone(),
            customer_id: r.customer_id.clone(),
            outcome: r.outcome.clone(),
            arm: r.arm.clone(),
            strategy: r.strategy.clone(),
            strategy_version: r.strategy_version.clone(),
            created_at_ms: r.created_at_ms,
        }
    }
}

/// A strategy version's review state. Which approved version is live is the activation
/// history's newest entry, not a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyState {
    /// Uploaded, its cases passed; waiting for another user's approval.
    Draft,
    /// Approved: may be activated.
    Approved,
}

impl StrategyState {
    /// The state's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyState::Draft => "draft",
            StrategyState::Approved => "approved",
        }
    }

    /// The state of a stored name.
    pub fn parse(text: &str) -> Option<StrategyState> {
        match text {
            "draft" => Some(StrategyState::Draft),
            "approved" => Some(StrategyState::Approved),
            _ => None,
        }
    }
}

/// A stored strategy version (the package bytes are fetched separately).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StrategyRecord {
    /// The content hash the engine computed: immutable identity.
    pub version: String,
    /// The package's name.
    pub name: String,
    /// Draft or approved.
    pub state: StrategyState,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When it was uploaded.
    pub uploaded_at_ms: i64,
    /// Who approved it (never its uploader).
    pub approved_by: Option<String>,
    /// When it was approved.
    pub approved_at_ms: Option<i64>,
    /// Embedded cases that passed at upload (all of them, or the upload was refused).
    pub cases_passed: i64,
}

/// One entry of a strategy's activation history; its newest entry is the strategy's active
/// version. Every strategy (product) has its own history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activation {
    /// Its position in the history (one sequence across strategies).
    pub seq: i64,
    /// The strategy (package name) the version belongs to.
    pub strategy: String,
    /// The version made active.
    pub version: String,
    /// Who did it.
    pub activated_by: String,
    /// When.
    pub activated_at_ms: i64,
    /// `activate`, `rollback`, `bootstrap` or `promote` (the end of a ramped rollout).
    pub kind: String,
}

/// Who did what, when: every change to strategies and keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// Its position in the audit trail.
    pub seq: i64,
    /// When it happened.
    pub at_ms: i64,
    /// Who did it (a user or key owner).
    pub actor: String,
    /// What was done (`strategy.upload`, `key.revoke`, …).
    pub action: String,
    /// What it was done to (a version, a key id, …).
    pub subject: String,
    /// Anything else worth keeping, as JSON.
    pub detail: serde_json::Value,
}

/// An audit event about to be written with the change it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// When it happened.
    pub at_ms: i64,
    /// Who did it.
    pub actor: String,
    /// What was done.
    pub action: String,
    /// What it was done to.
    pub subject: String,
    /// Anything else worth keeping, as JSON.
    pub detail: serde_json::Value,
}

/// An API key as stored: only the SHA-256 of its secret part is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    /// The key's public id (the part before the secret).
    pub id: String,
    /// SHA-256 of the secret, hex; the secret itself is never stored.
    #[serde(skip)]
    pub secret_sha256: String,
    /// The person or system the key belongs to; maker-checker compares these.
    pub user: String,
    /// The roles' names.
    pub roles: Vec<String>,
    /// The strategies (products) the key may act on; empty: every strategy.
    pub strategies: Vec<String>,
    /// When it was issued.
    pub created_at_ms: i64,
    /// Who issued it.
    pub created_by: String,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

/// A review case as stored: columns to find it by, and the case itself as JSON (the review
/// crate owns its shape). `version` increases with every change, for optimistic updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    /// The case's id.
    pub id: String,
    /// The referred decision the case reviews.
    pub decision_id: String,
    /// The strategy (product) whose decision referred it.
    pub strategy: String,
    /// The review queue it waits in.
    pub queue: String,
    /// Higher is worked first.
    pub priority: i64,
    /// The review state (`open`, `claimed`, …, `decided`).
    pub state: String,
    /// When it was opened.
    pub created_at_ms: i64,
    /// Its SLA deadline.
    pub due_at_ms: i64,
    /// Increases with every change (optimistic updates).
    pub version: i64,
    /// The case as JSON, in the review crate's shape.
    pub body: String,
}

/// A page of cases, soonest deadline first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseQuery {
    /// Only this queue.
    pub queue: Option<String>,
    /// Only this state.
    pub state: Option<String>,
    /// Only cases of these strategies (products); `None`: every strategy.
    pub strategies: Option<Vec<String>>,
    /// Only cases whose deadline is before this time (and not decided).
    pub due_before_ms: Option<i64>,
    /// The most to return.
    pub limit: u32,
}

/// A person who signs in to the review workbench; only an argon2 hash of the password is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The sign-in name.
    pub username: String,
    /// The argon2 hash (PHC string).
    pub password_hash: String,
    /// `reviewer` or `senior_reviewer`.
    pub role: String,
    /// The strategies (products) whose cases the user works; empty: every strategy.
    pub strategies: Vec<String>,
    /// When the user was created.
    pub created_at_ms: i64,
    /// When the user was disabled (cannot sign in; their sessions end), if they are.
    pub disabled_at_ms: Option<i64>,
}

/// A third-party answer kept for the provider cache across restarts, until it expires: the same
/// customer within the source's TTL is not pulled (and paid for) again after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAnswerRecord {
    /// The cache's key for the source: its name and a digest of its field mapping.
    pub source_key: String,
    /// Whom the answer is about.
    pub subject: String,
    /// The provider that answered.
    pub provider: String,
    /// The mapped values, as a JSON object.
    pub values_json: String,
    /// When it was fetched.
    pub fetched_at_ms: i64,
    /// When it stops being served.
    pub expires_at_ms: i64,
}

/// A signed-in browser session; the cookie's token is stored only as a SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie's token, hex.
    pub token_sha256: String,
    /// Who signed in.
    pub username: String,
    /// Every form of the session carries this token (CSRF protection).
    pub csrf_token: String,
    /// When the session began.
    pub created_at_ms: i64,
    /// When it ends.
    pub expires_at_ms: i64,
}

/// A registered webhook: where review outcomes are posted, and the secret that signs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookRecord {
    /// The webhook's id.
    pub id: String,
    /// Where events are posted.
    pub url: String,
    /// The HMAC secret that signs each delivery.
    #[serde(skip)]
    pub secret: String,
    /// Who registered it.
    pub created_by: String,
    /// When.
    pub created_at_ms: i64,
}

/// One event on its way to one webhook, retried until delivered or given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The delivery's id (receivers de-duplicate by it).
    pub id: i64,
    /// The webhook it goes to.
    pub webhook_id: String,
    /// Where it is posted.
    pub url: String,
    /// The webhook's signing secret.
    pub secret: String,
    /// The event name (`review.decided`).
    pub event: String,
    /// The JSON body.
    pub body: String,
    /// Attempts made so far.
    pub attempts: i64,
}

/// A credit account as stored: indexed columns plus the account's JSON body (terms, status,
/// behaviour), versioned for optimistic updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    /// The account's id.
    pub id: String,
    /// The customer it belongs to.
    pub customer_id: String,
    /// The approved decision the account was opened from (one account per decision).
    pub decision_id: String,
    /// `active`, `frozen`, `closed` or `charged_off`.
    pub status: String,
    /// Increases with every change (optimistic updates).
    pub version: i64,
    /// When it last changed.
    pub updated_at_ms: i64,
    /// The account as JSON (terms, status, behaviour).
    pub body: String,
}

/// One applied account event, kept for audit and so that a repeated id is never applied twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEventRecord {
    /// The account it applied to.
    pub account_id: String,
    /// The sender's id of the event: applied once.
    pub event_id: String,
    /// When it happened, by the sender.
    pub event_time_ms: i64,
    /// When it was received.
    pub received_at_ms: i64,
    /// Its kind (`payment`, `drawdown`, …).
    pub kind: String,
    /// The event as received, JSON.
    pub body: String,
}

/// A change to one account, written in one transaction with the events it applied and its
/// audit events; refused if someone else changed the account since `expected_version`.
#[derive(Debug, Clone)]
pub struct AccountUpdate {
    /// The account after the change.
    pub account: AccountRecord,
    /// The version the change was computed from.
    pub expected_version: i64,
    /// The events it applied.
    pub events: Vec<AccountEventRecord>,
    /// What the audit trail records of it.
    pub audit: Vec<NewAuditEvent>,
}

/// Turns a case into the claimed case to store at the next version, or says it cannot be
/// claimed (`None`): the review policy, applied by the caller, inside the store's claim.
pub type CaseClaimer = Box<dyn Fn(&CaseRecord) -> Option<CaseRecord> + Send + Sync>;

/// A page of accounts in id order (keyset pagination: pass the last id seen).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountQuery {
    /// Only this status.
    pub status: Option<String>,
    /// Only this customer's accounts.
    pub customer_id: Option<String>,
    /// After this id (the previous page's last).
    pub after_id: Option<String>,
    /// The most to return.
    pub limit: u32,
}

/// A range of keys (account ids) in a batch job: those after `after_key` (exclusive; empty for
/// the first range) up to `last_key` (inclusive), in byte order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// The key just before the range (the previous range's last), or empty.
    pub after_key: String,
    /// The range's last key.
    pub last_key: String,
}

/// One partition of a batch job, held by the worker that claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPartition {
    /// The job (a portfolio review's run id).
    pub job_id: String,
    /// The partition's number, from 0.
    pub partition_no: i64,
    /// Its keys.
    pub range: KeyRange,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionClaim {
    /// The worker holds this partition until its lease ends.
    Claimed(JobPartition),
    /// Every partition not done is held under a live lease elsewhere: claim again later (a
    /// dead worker's partition is claimable when its lease ends).
    Busy,
    /// Every partition is done.
    Done,
}

impl PartitionClaim {
    /// What a claim that found nothing to take answers, from the job's partitions: `all` of
    /// them, `open` not yet done. A job without partitions does not exist.
    pub fn nothing_claimable(
        job_id: &str,
        all: i64,
        open: i64,
    ) -> Result<PartitionClaim, StoreError> {
        match (all, open) {
            (0, _) => Err(StoreError::Precondition {
                what: format!("there is no job {job_id}"),
            }),
            (_, 0) => Ok(PartitionClaim::Done),
            _ => Ok(PartitionClaim::Busy),
        }
    }
}

/// Makes a completed partition's report (JSON) from the ids of the accounts its completion
/// skipped: what the worker did, exact to the last figure.
pub type PartitionResult = Box<dyn FnOnce(&[String]) -> String + Send>;

/// A partition as stored, for a job's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecord {
    /// The partition's number.
    pub partition_no: i64,
    /// `pending`, `claimed` or `done`.
    pub state: String,
    /// The worker holding it, or that completed it.
    pub claimed_by: Option<String>,
    /// What its worker reported when it completed it (JSON).
    pub result: Option<String>,
}

impl CaseQuery {
    /// Whether a case of `strategy` passes the query's strategy filter.
    pub fn allows_strategy(&self, strategy: &str) -> bool {
        self.strategies
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|s| s == strategy))
    }
}

/// A rollout of a candidate version of one strategy on live traffic: in shadow (evaluated
/// beside every live decision, never answered) or ramped (a growing share of customers decided
/// with it, under guard rails). `plan` is the rollout's declaration as JSON (the application
/// owns its shape); `revision` increases with every change, for optimistic updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutRecord {
    /// The rollout's id (also the salt of its customer hash).
    pub id: String,
    /// The strategy (package name) rolled out.
    pub strategy: String,
    /// The candidate version.
    pub version: String,
    /// The live version it was compared with when it started.
    pub baseline_version: String,
    /// `shadow` or `ramp`.
    pub mode: String,
    /// `running`, `halted`, `promoted`, `aborted` or `ended`.
    pub state: String,
    /// The declaration (steps, guard rails) as JSON.
    pub plan: String,
    /// The ramp step in force, from 0.
    pub step: i64,
    /// When that step began.
    pub step_started_at_ms: i64,
    /// Who started the rollout.
    pub started_by: String,
    /// When.
    pub started_at_ms: i64,
    /// When its state last changed.
    pub updated_at_ms: i64,
    /// Why it is in its state (a breached guard, who promoted it), as JSON.
    pub note: String,
    /// Increases with every change (optimistic updates), from 1.
    pub revision: i64,
}

impl RolloutRecord {
    /// Whether the rollout still acts on traffic.
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }

    /// The refusal of a new rollout while `running` runs for the same strategy.
    pub fn already_running(&self, running: &str) -> StoreError {
        StoreError::Precondition {
            what: format!(
                "strategy {} already has rollout {running} running; promote or abort it first",
                self.strategy
            ),
        }
    }

    /// The refusal of a change to a rollout someone changed first.
    pub fn changed_first(&self) -> StoreError {
        StoreError::Precondition {
            what: format!(
                "rollout {} was changed by someone else; reload it and try again",
                self.id
            ),
        }
    }
}

/// A candidate version's result for one live decision, stored beside the live record (never
/// returned to the caller): the twin a shadow comparison reads. `live` and `candidate` are the
/// comparable parts of each result as JSON (outcome, limit, APR, term, reasons, or an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShadowRecord {
    /// The live decision's id.
    pub decision_id: String,
    /// The strategy (package name).
    pub strategy: String,
    /// The rollout that asked for it.
    pub rollout_id: String,
    /// The version that decided live.
    pub live_version: String,
    /// The candidate version evaluated in shadow.
    pub candidate_version: String,
    /// The flow.
    pub flow: String,
    /// When the live decision was made.
    pub created_at_ms: i64,
    /// The live result's comparable parts (JSON).
    pub live: String,
    /// The candidate's comparable parts, or its error (JSON).
    pub candidate: String,
}

/// Which shadow results to read, oldest first (keyset pagination on time and decision id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShadowQuery {
    /// Only this strategy's.
    pub strategy: String,
    /// Only this candidate version's.
    pub candidate_version: Option<String>,
    /// Made at or after this time.
    pub from_ms: Option<i64>,
    /// Made before this time.
    pub to_ms: Option<i64>,
    /// After this (time, decision id): the previous page's last.
    pub after: Option<(i64, String)>,
    /// The most to return.
    pub limit: u32,
}

impl ShadowQuery {
    /// Whether a shadow result passes the query's filters (not its limit).
    pub fn matches(&self, record: &ShadowRecord) -> bool {
        record.strategy == self.strategy
            && self
                .candidate_version
                .as_ref()
                .is_none_or(|v| &record.candidate_version == v)
            && self.from_ms.is_none_or(|t| record.created_at_ms >= t)
            && self.to_ms.is_none_or(|t| record.created_at_ms < t)
            && self.after.as_ref().is_none_or(|(at, id)| {
                (record.created_at_ms, record.decision_id.as_str()) > (*at, id.as_str())
            })
    }
}

/// The refusal of a change to a user who does not exist.
pub fn unknown_user(username: &str) -> StoreError {
    StoreError::Precondition {
        what: format!("there is no user {username}; list users with `credence users list`"),
    }
}
