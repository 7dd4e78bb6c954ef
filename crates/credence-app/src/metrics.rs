//! The names of the metrics the use cases emit, declared once: the HTTP adapter describes
//! them to its recorder and renders them at `/metrics`.

/// Decisions made, by `strategy`, `flow`, `outcome` and `arm`.
pub const DECISIONS_TOTAL: &str = "credence_decisions_total";
/// Seconds from receiving a decision request to having the decision (before the log commit),
/// by `strategy` and `flow`.
pub const DECISION_SECONDS: &str = "credence_decision_seconds";
/// Requests answered from a stored decision because of a repeated Idempotency-Key.
pub const IDEMPOTENT_REPLAYS_TOTAL: &str = "credence_idempotent_replays_total";
/// Accounts opened from approved decisions.
pub const ACCOUNTS_OPENED_TOTAL: &str = "credence_accounts_opened_total";
/// Account events applied (first time seen).
pub const ACCOUNT_EVENTS_TOTAL: &str = "credence_account_events_total";
/// Account events ignored because their id was already applied.
pub const ACCOUNT_EVENTS_DUPLICATE_TOTAL: &str = "credence_account_events_duplicate_total";
/// Changes in-loan flows made to accounts, by `flow` and `action`.
pub const ACCOUNT_ACTIONS_TOTAL: &str = "credence_account_actions_total";
/// Calls to third-party data providers, by `provider` and `status` (ok, timeout, http_error,
/// unreachable, invalid_response, circuit_open).
pub const PROVIDER_CALLS_TOTAL: &str = "credence_provider_calls_total";
/// Third-party answers served from the cache (no call, nothing paid), by `source`.
pub const PROVIDER_CACHE_HITS_TOTAL: &str = "credence_provider_cache_hits_total";
/// Seconds one call to a provider took, retries included, by `provider` and `status`: the
/// latency a decision waits on, to watch against the provider's SLA and the call's timeout.
pub const PROVIDER_CALL_SECONDS: &str = "credence_provider_call_seconds";
/// Webhook deliveries by `outcome` (`delivered`, `retrying`, `failed`).
pub const WEBHOOK_DELIVERIES_TOTAL: &str = "credence_webhook_deliveries_total";
/// Shadow results stored (a candidate's evaluation of a live decision).
pub const SHADOW_RESULTS_TOTAL: &str = "credence_shadow_results_total";
/// Shadow evaluations dropped (a full queue, or a store that kept failing): live records
/// without their twin, which the comparison report counts too.
pub const SHADOW_DROPPED_TOTAL: &str = "credence_shadow_dropped_total";
/// Seconds a sampled decision spent in each `stage` of serving it (fingerprint, idempotency,
/// parse, route, validate, decide, record, commit, after): see `decisions::stages`.
pub const DECISION_STAGE_SECONDS: &str = "credence_decision_stage_seconds";
