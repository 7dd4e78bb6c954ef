//! The rows the store keeps, in the shapes the service reads and writes.

use serde::Serialize;

/// A decision about to be appended to the log. `input` and `decision` are JSON text, stored
/// verbatim so that what is hashed is exactly what is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDecision {
    pub id: String,
    pub flow: String,
    pub customer_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the request body, to tell a retry from a different request reusing a key.
    pub request_sha256: String,
    pub strategy: String,
    pub strategy_version: String,
    pub arm: Option<String>,
    pub outcome: String,
    pub as_of: String,
    pub language: String,
    pub created_at_ms: i64,
    /// Time from receiving the request to having the decision, before the log commit.
    pub latency_us: i64,
    pub input: String,
    /// The decision as returned to the caller, with its compact trace.
    pub decision: String,
}

/// A decision as stored: its fields plus its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDecision {
    pub seq: i64,
    pub record: NewDecision,
    pub prev_hash: String,
    pub hash: String,
}

/// Where an appended decision landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendReceipt {
    pub seq: i64,
    pub hash: String,
}

/// One line of a history listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecisionSummary {
    pub id: String,
    pub seq: i64,
    pub flow: String,
    pub customer_id: Option<String>,
    pub outcome: String,
    pub arm: Option<String>,
    pub strategy_version: String,
    pub created_at_ms: i64,
}

/// A page of history, newest first. `before_seq` continues from a previous page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionQuery {
    pub customer_id: Option<String>,
    pub flow: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub before_seq: Option<i64>,
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
    Draft,
    Approved,
}

impl StrategyState {
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyState::Draft => "draft",
            StrategyState::Approved => "approved",
        }
    }

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
    pub name: String,
    pub state: StrategyState,
    pub uploaded_by: String,
    pub uploaded_at_ms: i64,
    pub approved_by: Option<String>,
    pub approved_at_ms: Option<i64>,
    /// Embedded cases that passed at upload (all of them, or the upload was refused).
    pub cases_passed: i64,
}

/// One entry of the activation history; the newest is the active version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activation {
    pub seq: i64,
    pub version: String,
    pub activated_by: String,
    pub activated_at_ms: i64,
    /// `activate`, `rollback` or `bootstrap`.
    pub kind: String,
}

/// Who did what, when: every change to strategies and keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: serde_json::Value,
}

/// An audit event about to be written with the change it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    pub at_ms: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: serde_json::Value,
}

/// An API key as stored: only the SHA-256 of its secret part is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKeyRecord {
    pub id: String,
    #[serde(skip)]
    pub secret_sha256: String,
    /// The person or system the key belongs to; maker-checker compares these.
    pub user: String,
    pub roles: Vec<String>,
    pub created_at_ms: i64,
    pub created_by: String,
    pub revoked_at_ms: Option<i64>,
}

/// A review case as stored: columns to find it by, and the case itself as JSON (the review
/// crate owns its shape). `version` increases with every change, for optimistic updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    pub id: String,
    pub decision_id: String,
    pub queue: String,
    pub priority: i64,
    pub state: String,
    pub created_at_ms: i64,
    pub due_at_ms: i64,
    pub version: i64,
    pub body: String,
}

/// A page of cases, soonest deadline first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseQuery {
    pub queue: Option<String>,
    pub state: Option<String>,
    /// Only cases whose deadline is before this time (and not decided).
    pub due_before_ms: Option<i64>,
    pub limit: u32,
}

/// A person who signs in to the review workbench; only an argon2 hash of the password is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: String,
    pub password_hash: String,
    /// `reviewer` or `senior_reviewer`.
    pub role: String,
    pub created_at_ms: i64,
}

/// A third-party answer kept for the provider cache across restarts, until it expires: the same
/// customer within the source's TTL is not pulled (and paid for) again after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAnswerRecord {
    /// The cache's key for the source: its name and a digest of its field mapping.
    pub source_key: String,
    pub subject: String,
    /// The provider that answered.
    pub provider: String,
    /// The mapped values, as a JSON object.
    pub values_json: String,
    pub fetched_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A signed-in browser session; the cookie's token is stored only as a SHA-256 hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub token_sha256: String,
    pub username: String,
    /// Every form of the session carries this token (CSRF protection).
    pub csrf_token: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A registered webhook: where review outcomes are posted, and the secret that signs them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookRecord {
    pub id: String,
    pub url: String,
    #[serde(skip)]
    pub secret: String,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// One event on its way to one webhook, retried until delivered or given up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: i64,
    pub webhook_id: String,
    pub url: String,
    pub secret: String,
    pub event: String,
    pub body: String,
    pub attempts: i64,
}

/// A credit account as stored: indexed columns plus the account's JSON body (terms, status,
/// behaviour), versioned for optimistic updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub id: String,
    pub customer_id: String,
    /// The approved decision the account was opened from (one account per decision).
    pub decision_id: String,
    pub status: String,
    pub version: i64,
    pub updated_at_ms: i64,
    pub body: String,
}

/// One applied account event, kept for audit and so that a repeated id is never applied twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEventRecord {
    pub account_id: String,
    pub event_id: String,
    pub event_time_ms: i64,
    pub received_at_ms: i64,
    pub kind: String,
    pub body: String,
}

/// A change to one account, written in one transaction with the events it applied and its
/// audit events; refused if someone else changed the account since `expected_version`.
#[derive(Debug, Clone)]
pub struct AccountUpdate {
    pub account: AccountRecord,
    pub expected_version: i64,
    pub events: Vec<AccountEventRecord>,
    pub audit: Vec<NewAuditEvent>,
}

/// A page of accounts in id order (keyset pagination: pass the last id seen).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountQuery {
    pub status: Option<String>,
    pub customer_id: Option<String>,
    pub after_id: Option<String>,
    pub limit: u32,
}
