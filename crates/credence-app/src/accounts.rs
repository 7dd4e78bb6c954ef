//! Credit accounts over HTTP: opening from an approved decision, applying account events,
//! and running the in-loan flows (drawdown, account review, early warning) on live features.
//!
//! Each account's operations run one at a time in this process (a lock per account stripe),
//! and every write also checks the account's version, so two processes cannot both apply a
//! change read from the same state. A flow's decision goes through [`Decisions`] like any other
//! (durable log first, referrals open a review case); its changes to the account are then
//! written together with their audit events.

use crate::decisions::{DecideRequest, Decisions};
use crate::error::{AppError, ErrorCode};
use crate::strategies::Strategies;
use crate::{metrics as m, Clock};
use chrono::NaiveDate;
use credence_account::{
    parse_event, Account, AccountStatus, BehaviourFeatures, Change, Event, FlowKind, Instalment,
    Opening,
};
use credence_store::{
    AccountEventRecord, AccountQuery, AccountRecord, AccountUpdate, NewAuditEvent, Store,
};
use rust_decimal::Decimal;
use serde::Serialize;
use std::sync::Arc;

/// Lock stripes: operations on accounts hashing to the same stripe run one at a time.
const STRIPES: usize = 256;
/// Most events one request may post.
pub const MAX_EVENTS_PER_REQUEST: usize = 1000;
/// How far ahead of the server's clock an event time may be (clocks differ a little).
const MAX_CLOCK_SKEW_MS: i64 = 15 * 60 * 1000;

/// An account as the API shows it: terms, status, live features and the schedule.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccountView {
    /// The account's id.
    pub id: String,
    /// The customer the account belongs to.
    pub customer_id: String,
    /// The approved decision the account was opened from.
    pub decision_id: String,
    /// The strategy (product) whose in-loan flows decide for it; absent for accounts opened
    /// before products had names (the default strategy's).
    pub strategy: Option<String>,
    /// The day the account was opened.
    #[schema(value_type = String)]
    pub opened_on: NaiveDate,
    /// `active`, `frozen`, `closed` or `charged_off`.
    pub status: &'static str,
    /// Whether the account is in collections.
    pub collections: bool,
    /// The credit limit now (the principal, for an instalment loan).
    #[schema(value_type = String)]
    pub credit_limit: Decimal,
    /// The annual percentage rate now, as a fraction.
    #[schema(value_type = String)]
    pub apr: Decimal,
    /// The term in months (0 for a revolving line).
    pub term_months: u32,
    /// Bumped by every change: what optimistic concurrency compares.
    pub version: i64,
    /// Events applied to the account so far.
    pub events_applied: u64,
    /// Behaviour features as of today (docs/strategy-format.md, "In-loan flows and account
    /// features").
    #[schema(value_type = Object)]
    pub features: BehaviourFeatures,
    /// The repayment schedule, with what has been paid of each instalment.
    #[schema(value_type = Vec<Object>)]
    pub schedule: Vec<Instalment>,
}

/// What an in-loan flow decided and what it changed.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FlowResult {
    /// The id of the in-loan decision recorded.
    pub decision_id: String,
    /// The decision as stored, with its reasons and compact trace.
    #[schema(value_type = Object)]
    pub decision: serde_json::Value,
    /// Changes applied to the account (limit, APR, status, collections, referral).
    #[schema(value_type = Vec<Object>)]
    pub changes: Vec<Change>,
    /// True when this is the stored answer to a repeated Idempotency-Key (nothing re-applied).
    pub replayed: bool,
}

/// The answer to a batch of events.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventsResult {
    /// Events applied now (new ids).
    pub applied: usize,
    /// Ids already applied earlier (or twice in this batch): ignored.
    pub duplicates: Vec<String>,
    /// The early-warning flow's result, when an event triggered it.
    pub early_warning: Option<FlowResult>,
    /// The account after the events.
    pub account: AccountView,
}

/// Everything about accounts the HTTP layer calls.
pub struct Accounts {
    store: Arc<dyn Store>,
    strategies: Arc<Strategies>,
    decisions: Arc<Decisions>,
    cases: Arc<crate::cases::Cases>,
    clock: Arc<dyn Clock>,
    stripes: Vec<tokio::sync::Mutex<()>>,
}

fn corrupt(id: &str, error: impl std::fmt::Display) -> AppError {
    AppError::new(
        ErrorCode::Internal,
        format!("account {id} is stored in a form this version cannot read: {error}"),
    )
}

fn decode(record: &AccountRecord) -> Result<Account, AppError> {
    serde_json::from_str(&record.body).map_err(|e| corrupt(&record.id, e))
}

/// The stored form of an account at a version.
pub fn encode(account: &Account, version: i64, now_ms: i64) -> Result<AccountRecord, AppError> {
    Ok(AccountRecord {
        id: account.id.clone(),
        customer_id: account.customer_id.clone(),
        decision_id: account.decision_id.clone(),
        status: account.status.as_str().to_string(),
        version,
        updated_at_ms: now_ms,
        body: serde_json::to_string(account).map_err(|e| corrupt(&account.id, e))?,
    })
}

/// The stored form of an applied event.
pub fn event_record(account_id: &str, event: &Event, received_at_ms: i64) -> AccountEventRecord {
    AccountEventRecord {
        account_id: account_id.to_string(),
        event_id: event.id.clone(),
        event_time_ms: event.time_ms,
        received_at_ms,
        kind: event.kind.name().to_string(),
        body: serde_json::to_string(event).unwrap_or_default(),
    }
}

/// One audit event per change, naming the decision that made it.
pub fn change_audit(
    account_id: &str,
    decision_id: &str,
    changes: &[Change],
    reasons: &[String],
    actor: &str,
    at_ms: i64,
) -> Vec<NewAuditEvent> {
    changes
        .iter()
        .map(|change| NewAuditEvent {
            at_ms,
            actor: actor.to_string(),
            action: format!("account.{}", change.action_name()),
            subject: account_id.to_string(),
            detail: serde_json::json!({"decision_id": decision_id, "change": change, "reasons": reasons}),
        })
        .collect()
}

fn view(account: &Account, version: i64, today: NaiveDate) -> AccountView {
    AccountView {
        id: account.id.clone(),
        customer_id: account.customer_id.clone(),
        decision_id: account.decision_id.clone(),
        strategy: account.strategy.clone(),
        opened_on: account.opened_on,
        status: account.status.as_str(),
        collections: account.collections,
        credit_limit: account.terms.credit_limit.normalize(),
        apr: account.terms.apr.normalize(),
        term_months: account.terms.term_months,
        version,
        events_applied: account.behaviour.events_applied,
        features: account.features(today),
        schedule: account.schedule(),
    }
}

fn decimal_field(json: &serde_json::Value, field: &str) -> Option<Decimal> {
    json.get(field).and_then(credence_engine::json_decimal)
}

fn invalid_events(violations: Vec<credence_account::EventViolation>) -> AppError {
    AppError::new(
        ErrorCode::InvalidInput,
        format!(
            "{} problem(s) in the events; nothing was applied: {}",
            violations.len(),
            violations
                .iter()
                .map(|v| format!("{}: {}", v.path, v.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
    )
    .with_details(serde_json::json!({ "violations": violations }))
}

impl Accounts {
    /// The account use cases over a store, deciding in-loan flows with the active strategy.
    pub fn new(
        store: Arc<dyn Store>,
        strategies: Arc<Strategies>,
        decisions: Arc<Decisions>,
        cases: Arc<crate::cases::Cases>,
        clock: Arc<dyn Clock>,
    ) -> Accounts {
        Accounts {
            store,
            strategies,
            decisions,
            cases,
            clock,
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
        }
    }

    fn stripe(&self, account_id: &str) -> &tokio::sync::Mutex<()> {
        let hash = account_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        &self.stripes[(hash % STRIPES as u64) as usize]
    }

    fn today(&self) -> NaiveDate {
        self.clock.now().date_naive()
    }

    async fn load(&self, id: &str) -> Result<(Account, i64), AppError> {
        let record = self
            .store
            .account(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no account {id}")))?;
        Ok((decode(&record)?, record.version))
    }

    /// Opens an account from an approved decision (by the engine, or by a reviewer on a
    /// referred one). Opening twice from one decision returns the first account.
    pub async fn open(
        &self,
        decision_id: &str,
        account_id: Option<String>,
        opened_on: Option<NaiveDate>,
        actor: &str,
    ) -> Result<(AccountView, bool), AppError> {
        let today = self.today();
        if opened_on.is_some_and(|date| date > today) {
            return Err(AppError::parameter(
                "opened_on",
                "the opening date cannot be in the future; leave it out to open today",
            ));
        }
        if let Some(existing) = self.store.account_for_decision(decision_id).await? {
            return Ok((view(&decode(&existing)?, existing.version, today), false));
        }
        let stored = self.store.decision(decision_id).await?.ok_or_else(|| {
            AppError::not_found(format!("decision_id: there is no decision {decision_id}"))
                .with_details(serde_json::json!({"field": "decision_id"}))
        })?;
        let record = crate::decisions::read_record(&stored.record)?;
        let input: serde_json::Value =
            serde_json::from_str(&stored.record.input).unwrap_or(serde_json::Value::Null);
        let (limit, apr) = match stored.record.outcome.as_str() {
            "approve" => (record.limit, record.apr),
            outcome => {
                // A referral opens an account only once a reviewer has approved it.
                let review = self.cases.for_decision(decision_id).await?;
                let approved = review
                    .as_ref()
                    .and_then(|case| case.case.decision.as_ref())
                    .filter(|d| d.proposal.verdict != credence_review::Verdict::Decline);
                match approved {
                    Some(reviewed) => (reviewed.proposal.limit, reviewed.proposal.apr),
                    None => {
                        return Err(AppError::new(
                            ErrorCode::InvalidState,
                            format!("decision {decision_id} is a {outcome} without a reviewer's approval; only an approved decision opens an account"),
                        )
                        .with_details(serde_json::json!({"field": "decision_id"})))
                    }
                }
            }
        };
        let customer_id = stored.record.customer_id.clone().unwrap_or_default();
        let account_id =
            account_id.unwrap_or_else(|| format!("acc_{}", decision_id.trim_start_matches("dec_")));
        if account_id.is_empty()
            || account_id.len() > 64
            || !account_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(AppError::parameter(
                "account_id",
                "use 1–64 letters, digits, '-', '_' or '.'",
            ));
        }
        let mut account = Account::open(Opening {
            account_id: account_id.clone(),
            customer_id,
            decision_id: decision_id.to_string(),
            opened_on: opened_on.unwrap_or(today),
            credit_limit: limit,
            apr,
            term_months: record.term_months,
            monthly_income: decimal_field(&input, "verified_monthly_income")
                .or_else(|| decimal_field(&input, "declared_monthly_income"))
                .or_else(|| decimal_field(&input, "monthly_income")),
        })
        .map_err(|e| {
            AppError::new(ErrorCode::InvalidState, e.to_string())
                .with_details(serde_json::json!({"field": "decision_id"}))
        })?;
        account.strategy = Some(stored.record.strategy.clone());
        let now_ms = self.clock.now().timestamp_millis();
        let record = encode(&account, 1, now_ms)?;
        let audit = NewAuditEvent {
            at_ms: now_ms,
            actor: actor.to_string(),
            action: "account.open".into(),
            subject: account_id.clone(),
            detail: serde_json::json!({
                "decision_id": decision_id,
                "credit_limit": account.terms.credit_limit,
                "apr": account.terms.apr,
                "term_months": account.terms.term_months,
            }),
        };
        match self.store.insert_account(record, audit).await {
            Ok(()) => {}
            Err(credence_store::StoreError::Conflict { .. }) => {
                // Opened concurrently from the same decision, or the id is taken.
                if let Some(existing) = self.store.account_for_decision(decision_id).await? {
                    return Ok((view(&decode(&existing)?, existing.version, today), false));
                }
                return Err(AppError::new(
                    ErrorCode::InvalidState,
                    format!("account id {account_id} is taken; choose another account_id"),
                )
                .with_details(serde_json::json!({"field": "account_id"})));
            }
            Err(other) => return Err(other.into()),
        }
        metrics::counter!(m::ACCOUNTS_OPENED_TOTAL).increment(1);
        Ok((view(&account, 1, today), true))
    }

    /// The account with this id, its features computed as of today.
    pub async fn get(&self, id: &str) -> Result<AccountView, AppError> {
        let (account, version) = self.load(id).await?;
        Ok(view(&account, version, self.today()))
    }

    /// The accounts that match `query`, by id.
    pub async fn list(&self, query: AccountQuery) -> Result<Vec<AccountView>, AppError> {
        let today = self.today();
        self.store
            .accounts(&query)
            .await?
            .iter()
            .map(|record| Ok(view(&decode(record)?, record.version, today)))
            .collect()
    }

    /// An account's applied events, newest first.
    pub async fn events(&self, id: &str, limit: u32) -> Result<Vec<serde_json::Value>, AppError> {
        self.load(id).await?;
        Ok(self
            .store
            .account_events(id, limit)
            .await?
            .into_iter()
            .map(|record| {
                let mut event: serde_json::Value =
                    serde_json::from_str(&record.body).unwrap_or(serde_json::Value::Null);
                if let Some(object) = event.as_object_mut() {
                    object.insert("received_at_ms".into(), record.received_at_ms.into());
                }
                event
            })
            .collect())
    }

    /// Applies a batch of events (each id at most once, in event-time order whatever order they
    /// arrive in), then runs the early-warning flow if one of them calls for it.
    pub async fn post_events(
        &self,
        id: &str,
        body: &[u8],
        actor: &str,
    ) -> Result<EventsResult, AppError> {
        let raw: serde_json::Value = crate::strict_json::parse_value(body).map_err(|e| {
            AppError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}; send an event object, an array of them, or {{\"events\": [...]}}"),
            )
        })?;
        let (list, path): (Vec<&serde_json::Value>, &str) = match &raw {
            serde_json::Value::Array(items) => (items.iter().collect(), ""),
            serde_json::Value::Object(object) if object.contains_key("events") => {
                match object.get("events") {
                    Some(serde_json::Value::Array(items)) => (items.iter().collect(), "events"),
                    _ => {
                        return Err(AppError::parameter(
                            "events",
                            "give an array of event objects",
                        ))
                    }
                }
            }
            object @ serde_json::Value::Object(_) => (vec![object], ""),
            _ => {
                return Err(AppError::new(
                    ErrorCode::InvalidInput,
                    "send an event object, an array of them, or {\"events\": [...]}",
                ))
            }
        };
        if list.is_empty() || list.len() > MAX_EVENTS_PER_REQUEST {
            return Err(AppError::parameter(
                "events",
                format!("send 1–{MAX_EVENTS_PER_REQUEST} events per request"),
            ));
        }
        let mut events = Vec::with_capacity(list.len());
        let mut violations = Vec::new();
        // An event from the future would move every window (and age out real history).
        let latest_ms = self.clock.now().timestamp_millis() + MAX_CLOCK_SKEW_MS;
        for (i, item) in list.into_iter().enumerate() {
            let at = if path.is_empty() && !raw.is_array() {
                "event".to_string()
            } else if path.is_empty() {
                format!("[{i}]")
            } else {
                format!("{path}[{i}]")
            };
            match parse_event(&at, item) {
                Ok(event) if event.time_ms > latest_ms => {
                    violations.push(credence_account::EventViolation {
                        path: format!("{at}.time"),
                        message: "the event time is in the future; send events once they have happened, with their own time".into(),
                    })
                }
                Ok(event) => events.push(event),
                Err(problems) => violations.extend(problems),
            }
        }
        if !violations.is_empty() {
            return Err(invalid_events(violations));
        }

        let _turn = self.stripe(id).lock().await;
        let (mut account, version) = self.load(id).await?;
        let mut seen: std::collections::HashSet<String> = self
            .store
            .known_event_ids(id, events.iter().map(|e| e.id.clone()).collect())
            .await?
            .into_iter()
            .collect();
        let mut duplicates = Vec::new();
        let mut fresh: Vec<Event> = Vec::with_capacity(events.len());
        for event in events {
            if seen.insert(event.id.clone()) {
                fresh.push(event);
            } else {
                duplicates.push(event.id);
            }
        }
        let now_ms = self.clock.now().timestamp_millis();
        let mut version = version;
        if !fresh.is_empty() {
            for event in &fresh {
                account.apply(event);
            }
            let records = fresh
                .iter()
                .map(|event| event_record(id, event, now_ms))
                .collect();
            self.write(&account, version, records, Vec::new(), now_ms)
                .await?;
            version += 1;
            metrics::counter!(m::ACCOUNT_EVENTS_TOTAL).increment(fresh.len() as u64);
        }
        if !duplicates.is_empty() {
            metrics::counter!(m::ACCOUNT_EVENTS_DUPLICATE_TOTAL).increment(duplicates.len() as u64);
        }
        // The newest triggering event (by event time) names the trigger.
        let trigger = fresh
            .iter()
            .filter(|e| e.kind.triggers_early_warning())
            .max_by_key(|e| (e.time_ms, e.id.clone()));
        let has_flow = self
            .strategies
            .resolve(account.strategy.as_deref())
            .is_ok_and(|active| active.strategy.flow("early_warning").is_ok());
        let early_warning = match trigger {
            Some(trigger) if has_flow => {
                let mut extra = serde_json::Map::new();
                extra.insert("trigger_event".into(), trigger.kind.name().into());
                extra.insert("trigger_event_id".into(), trigger.id.clone().into());
                let (result, after) = self
                    .run_flow(
                        account,
                        version,
                        FlowKind::EarlyWarning,
                        extra,
                        None,
                        None,
                        actor,
                    )
                    .await?;
                account = after.0;
                version = after.1;
                Some(result)
            }
            _ => None,
        };
        Ok(EventsResult {
            applied: fresh.len(),
            duplicates,
            early_warning,
            account: view(&account, version, self.today()),
        })
    }

    /// Decides a drawdown on the account's live features; an approval applies the drawdown,
    /// an interception (a rule with the `freeze` action) freezes the line.
    pub async fn drawdown(
        &self,
        id: &str,
        body: &[u8],
        idempotency_key: Option<String>,
        actor: &str,
    ) -> Result<FlowResult, AppError> {
        let raw: serde_json::Value = crate::strict_json::parse_value(body).map_err(|e| {
            AppError::new(
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}; send {{\"amount\": \"500.00\"}}"),
            )
        })?;
        let amount = raw
            .get("amount")
            .and_then(credence_engine::json_decimal)
            .filter(|a| *a > Decimal::ZERO)
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::InvalidInput,
                    "amount: give the amount to draw, a positive number or decimal string",
                )
                .with_details(serde_json::json!({"field": "amount"}))
            })?;
        let _turn = self.stripe(id).lock().await;
        let (account, version) = self.load(id).await?;
        let mut extra = serde_json::Map::new();
        extra.insert("requested_amount".into(), amount.to_string().into());
        let mut caller_request = id.as_bytes().to_vec();
        caller_request.push(b'\n');
        caller_request.extend_from_slice(body);
        let (result, _) = self
            .run_flow(
                account,
                version,
                FlowKind::Drawdown,
                extra,
                idempotency_key,
                Some(&caller_request),
                actor,
            )
            .await?;
        Ok(result)
    }

    /// Runs the account-review flow now: limit up or down, APR change, or nothing.
    pub async fn review(&self, id: &str, actor: &str) -> Result<FlowResult, AppError> {
        let _turn = self.stripe(id).lock().await;
        let (account, version) = self.load(id).await?;
        let (result, _) = self
            .run_flow(
                account,
                version,
                FlowKind::AccountReview,
                serde_json::Map::new(),
                None,
                None,
                actor,
            )
            .await?;
        Ok(result)
    }

    /// Sets the status by hand (unfreeze after review, close, charge off), audited.
    pub async fn set_status(
        &self,
        id: &str,
        status: &str,
        note: &str,
        actor: &str,
    ) -> Result<AccountView, AppError> {
        let status = AccountStatus::parse(status).ok_or_else(|| {
            AppError::parameter("status", "give active, frozen, closed or charged_off")
        })?;
        if note.trim().is_empty() {
            return Err(AppError::parameter(
                "note",
                "say why the status changes; the note is audited",
            ));
        }
        let _turn = self.stripe(id).lock().await;
        let (mut account, version) = self.load(id).await?;
        let change = account
            .set_status(status)
            .map_err(|e| AppError::new(ErrorCode::InvalidState, e.to_string()))?;
        let now_ms = self.clock.now().timestamp_millis();
        let audit = vec![NewAuditEvent {
            at_ms: now_ms,
            actor: actor.to_string(),
            action: format!("account.{}", change.action_name()),
            subject: id.to_string(),
            detail: serde_json::json!({"change": change, "note": note}),
        }];
        self.write(&account, version, Vec::new(), audit, now_ms)
            .await?;
        Ok(view(&account, version + 1, self.today()))
    }

    async fn write(
        &self,
        account: &Account,
        expected_version: i64,
        events: Vec<AccountEventRecord>,
        audit: Vec<NewAuditEvent>,
        now_ms: i64,
    ) -> Result<(), AppError> {
        let stale = self
            .store
            .update_accounts(
                vec![AccountUpdate {
                    account: encode(account, expected_version + 1, now_ms)?,
                    expected_version,
                    events,
                    audit,
                }],
                Vec::new(),
            )
            .await?;
        if stale.is_empty() {
            Ok(())
        } else {
            Err(AppError::new(
                ErrorCode::InvalidState,
                format!(
                    "account {} was changed by another process; retry the request",
                    account.id
                ),
            ))
        }
    }

    /// Decides `kind` on the account's features (plus `extra` inputs), records the decision,
    /// and applies what it implies. Returns the result and the account after it.
    #[allow(clippy::too_many_arguments)]
    async fn run_flow(
        &self,
        mut account: Account,
        version: i64,
        kind: FlowKind,
        extra: serde_json::Map<String, serde_json::Value>,
        idempotency_key: Option<String>,
        caller_request: Option<&[u8]>,
        actor: &str,
    ) -> Result<(FlowResult, (Account, i64)), AppError> {
        let today = self.today();
        let drawdown_amount = extra
            .get("requested_amount")
            .and_then(credence_engine::json_decimal);
        let mut input = account.flow_input(today);
        input.extend(extra);
        let body = serde_json::to_vec(&serde_json::Value::Object(input)).map_err(|e| {
            AppError::new(
                ErrorCode::Internal,
                format!("cannot build the flow input: {e}"),
            )
        })?;
        let answer = self
            .decisions
            .decide(DecideRequest {
                strategy: account.strategy.as_deref(),
                flow: kind.flow_name(),
                body: &body,
                idempotency_key,
                language: None,
                caller_request,
            })
            .await?;
        let decision_json: serde_json::Value =
            serde_json::from_str(&answer.json).unwrap_or(serde_json::Value::Null);
        let Some(decision) = answer.decision.clone() else {
            // A repeated Idempotency-Key: the first request already applied everything.
            return Ok((
                FlowResult {
                    decision_id: answer.id,
                    decision: decision_json,
                    changes: Vec::new(),
                    replayed: true,
                },
                (account, version),
            ));
        };
        let changes = account.plan(kind, &decision);
        account.apply_changes(&changes, today);
        let now = self.clock.now();
        let now_ms = now.timestamp_millis();
        let mut events = Vec::new();
        if kind == FlowKind::Drawdown && decision.outcome == credence_engine::Outcome::Approve {
            if let Some(amount) = drawdown_amount {
                let event = Event {
                    id: format!("drawdown:{}", answer.id),
                    time_ms: now_ms,
                    kind: credence_account::EventKind::Drawdown { amount },
                };
                account.apply(&event);
                events.push(event_record(&account.id, &event, now_ms));
            }
        }
        let reasons: Vec<String> = decision
            .reasons
            .iter()
            .map(|r| r.code.to_string())
            .collect();
        let audit = change_audit(&account.id, &answer.id, &changes, &reasons, actor, now_ms);
        let mut version = version;
        if !events.is_empty() || !changes.is_empty() {
            self.write(&account, version, events, audit, now_ms).await?;
            version += 1;
        }
        for change in &changes {
            metrics::counter!(m::ACCOUNT_ACTIONS_TOTAL, "flow" => kind.flow_name(), "action" => change.action_name())
                .increment(1);
        }
        Ok((
            FlowResult {
                decision_id: answer.id,
                decision: decision_json,
                changes,
                replayed: false,
            },
            (account, version),
        ))
    }
}
