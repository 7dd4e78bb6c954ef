//! Manual review over the API: a case is opened for every referred decision; reviewers claim
//! and decide it under the strategy's review policy; the review's decision becomes the
//! record's final word (returned with the decision by `GET /v1/decisions/{id}`).

use crate::error::{AppError, ErrorCode};
use crate::strategies::Strategies;
use crate::Clock;
use credence_engine::{CompiledStrategy, Referral};
use credence_review::{Case, Command, QueuePolicy, ReviewError, ReviewPolicy, Reviewer};
use credence_store::{CaseQuery, CaseRecord, Store};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Cases looked at, soonest deadline first, when a reviewer takes the next one.
const NEXT_CASE_CANDIDATES: u32 = 50;

/// The webhook event sent when a review case reaches its final decision.
pub const EVENT_REVIEW_DECIDED: &str = "review.decided";
/// Reviews decided, by `queue` and `verdict`.
pub const REVIEW_DECISIONS_TOTAL: &str = "credence_review_decisions_total";
/// Minutes from a case's opening to its final decision, by `queue`.
pub const REVIEW_MINUTES: &str = "credence_review_minutes";
/// Cases decided after their SLA deadline, by `queue`.
pub const REVIEW_SLA_BREACHES_TOTAL: &str = "credence_review_sla_breaches_total";
/// Reviews whose decision differs from the engine's offer (a decline, or other terms), by
/// `queue`, `reviewer` and the referral's first `reason`. With
/// `credence_review_decisions_total` this gives the override rate.
pub const REVIEW_OVERRIDES_TOTAL: &str = "credence_review_overrides_total";
/// Cases escalated because their SLA passed, by `queue`.
pub const REVIEW_ESCALATIONS_TOTAL: &str = "credence_review_escalations_total";

/// The strategy's review settings, caps and reason codes as the review rules need them.
pub fn policy_for(strategy: &CompiledStrategy) -> ReviewPolicy {
    let review = strategy.review();
    let caps = strategy.caps();
    ReviewPolicy {
        queues: review
            .queues
            .iter()
            .map(|(name, minutes)| {
                (
                    name.clone(),
                    QueuePolicy {
                        sla_minutes: *minutes,
                    },
                )
            })
            .collect(),
        default_sla_minutes: review.default_sla_minutes,
        claim_minutes: review.claim_minutes,
        four_eyes_above: review.four_eyes_above,
        limit_min: caps.limit_min,
        limit_max: caps.limit_max,
        apr_min: review.apr_min,
        apr_max: caps.apr_max,
        reason_codes: strategy
            .decline_reason_codes()
            .map(str::to_string)
            .collect(),
        referral_reason_codes: strategy
            .reason_codes()
            .filter(|code| strategy.is_referral_only_reason(code))
            .map(str::to_string)
            .collect(),
    }
}

/// Whether a review departs from what the engine offered with its referral: a decline, or an
/// approval on other terms.
/// Whether a reviewer's proposal overrides what the engine offered (`limit`, `apr`).
fn is_override(
    limit: Option<Decimal>,
    apr: Option<Decimal>,
    proposal: &credence_review::Proposal,
) -> bool {
    proposal.verdict == credence_review::Verdict::Decline
        || proposal.limit.map(|l| l.normalize()) != limit.map(|l| l.normalize())
        || proposal.apr.map(|a| a.normalize()) != apr.map(|a| a.normalize())
}

/// A case as the API shows it.
#[cfg(test)]
mod tests {
    use super::*;
    use credence_review::{Proposal, Verdict};

    #[test]
    fn overrides_are_declines_or_other_terms_than_the_engine_offered() {
        let (limit, apr) = (Some(Decimal::from(6000)), Some(Decimal::new(899, 4)));
        let proposal = |verdict, limit: &str, apr: &str| Proposal {
            verdict,
            limit: limit.parse().ok(),
            apr: apr.parse().ok(),
            reasons: vec![],
            note: "n".into(),
        };
        let cases = [
            (proposal(Verdict::Approve, "6000", "0.0899"), false),
            (proposal(Verdict::Approve, "6000.00", "0.08990"), false),
            (proposal(Verdict::Approve, "5000", "0.0899"), true),
            (proposal(Verdict::CounterOffer, "6000", "0.12"), true),
            (proposal(Verdict::Decline, "", ""), true),
        ];
        for (p, expected) in cases {
            assert_eq!(is_override(limit, apr, &p), expected, "{p:?}");
        }
    }
}

/// A review case as the API and the workbench show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseView {
    /// The case as the review rules keep it.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub case: Case,
    /// `open`, `claimed`, `more_info_requested`, `escalated`, `awaiting_confirmation`, `decided`.
    pub status: &'static str,
    /// The reviewer holding the case, if claimed.
    pub claimed_by: Option<String>,
    /// Whether the case is past its SLA deadline.
    pub sla_breached: bool,
}

fn review_error(error: ReviewError) -> AppError {
    let code = match &error {
        ReviewError::ClaimedByOther { .. }
        | ReviewError::NotClaimed { .. }
        | ReviewError::InvalidState { .. }
        | ReviewError::AlreadyDecided => ErrorCode::InvalidState,
        ReviewError::SameReviewer(_) => ErrorCode::MakerChecker,
        ReviewError::SeniorOnly => ErrorCode::Forbidden,
        ReviewError::NoteRequired
        | ReviewError::ReasonsRequired
        | ReviewError::UnknownReason { .. }
        | ReviewError::NotADeclineReason { .. }
        | ReviewError::Missing { .. }
        | ReviewError::OutOfBounds { .. }
        | ReviewError::NotACounterOffer { .. } => ErrorCode::InvalidInput,
    };
    let field = match &error {
        ReviewError::NoteRequired => Some("note"),
        ReviewError::ReasonsRequired
        | ReviewError::UnknownReason { .. }
        | ReviewError::NotADeclineReason { .. } => Some("reasons"),
        ReviewError::Missing { field } | ReviewError::OutOfBounds { field, .. } => Some(*field),
        ReviewError::NotACounterOffer { .. } => Some("limit"),
        _ => None,
    };
    AppError::new(code, error.to_string()).with_details(serde_json::json!({ "field": field }))
}

/// The manual-review use cases: open, claim, decide, escalate, reconcile.
pub struct Cases {
    store: Arc<dyn Store>,
    strategies: Arc<Strategies>,
    clock: Arc<dyn Clock>,
    opening: Mutex<Opening>,
    /// Signalled whenever a case opened in the background is stored (or failed to be).
    opened: Notify,
}

/// Cases being opened in the background, by ticket.
#[derive(Default)]
struct Opening {
    next_ticket: u64,
    open: BTreeSet<u64>,
}

/// Ends a background opening however its task ends, waking the readers waiting for it.
struct OpeningTicket {
    cases: Arc<Cases>,
    ticket: u64,
}

impl Drop for OpeningTicket {
    fn drop(&mut self) {
        self.cases
            .opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .open
            .remove(&self.ticket);
        self.cases.opened.notify_waiters();
    }
}

/// What a case shows of the decision that referred it, so that a queue can list it without
/// reading the decision: the customer and the reasons (`CODE — text`).
#[derive(Debug, Clone, Default)]
pub struct ReferralFacts {
    /// The customer the input named, if any.
    pub customer_id: Option<String>,
    /// The decision's reasons, most important first.
    pub reasons: Vec<String>,
}

impl ReferralFacts {
    /// The facts of a decision made from `input` with `reasons`.
    pub fn of(input: &serde_json::Value, reasons: &[credence_engine::Reason]) -> ReferralFacts {
        ReferralFacts {
            customer_id: input
                .get("customer_id")
                .and_then(|v| v.as_str())
                .map(str::to_string),
            reasons: reasons
                .iter()
                .map(|r| format!("{} — {}", r.code, r.text))
                .collect(),
        }
    }
}

/// How many of the newest decisions [`Cases::open_missing`] looks through at start: far more
/// than are answered while a case is being opened.
pub const RECONCILE_RECENT_DECISIONS: u32 = 100_000;

fn to_record(case: &Case, version: i64) -> Result<CaseRecord, AppError> {
    Ok(CaseRecord {
        id: case.id.clone(),
        decision_id: case.decision_id.clone(),
        strategy: case.strategy.clone(),
        queue: case.queue.clone(),
        priority: case.priority,
        state: serde_json::to_value(case.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        created_at_ms: case.created_at_ms,
        due_at_ms: case.due_at_ms,
        version,
        body: serde_json::to_string(case).map_err(|e| {
            AppError::new(ErrorCode::Internal, format!("cannot store the case: {e}"))
        })?,
    })
}

fn from_record(record: &CaseRecord) -> Result<Case, AppError> {
    serde_json::from_str(&record.body).map_err(|e| {
        AppError::new(
            ErrorCode::Internal,
            format!("stored case {} is unreadable: {e}", record.id),
        )
    })
}

impl Cases {
    /// The review use cases over a store, with each strategy's review policy.
    pub fn new(store: Arc<dyn Store>, strategies: Arc<Strategies>, clock: Arc<dyn Clock>) -> Cases {
        Cases {
            store,
            strategies,
            clock,
            opening: Mutex::new(Opening::default()),
            opened: Notify::new(),
        }
    }

    fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    fn view(&self, case: Case) -> CaseView {
        let now = self.now_ms();
        CaseView {
            status: case.status(now),
            claimed_by: case.claimed_by(now).map(str::to_string),
            sla_breached: case.sla_breached(now),
            case,
        }
    }

    /// The case a referred decision opens.
    fn case_for(
        decision_id: &str,
        referral: &Referral,
        requested_amount: Option<Decimal>,
        facts: ReferralFacts,
        strategy: &CompiledStrategy,
        now_ms: i64,
    ) -> Result<CaseRecord, AppError> {
        let mut case = credence_review::open_case(
            format!("case_{}", decision_id.trim_start_matches("dec_")),
            decision_id.to_string(),
            referral.queue.clone(),
            referral.priority,
            requested_amount,
            &policy_for(strategy),
            now_ms,
        );
        case.strategy = strategy.name().to_string();
        case.customer_id = facts.customer_id;
        case.referred_for = facts.reasons;
        to_record(&case, 1)
    }

    /// Opens the case of a referred decision, already in the log, without making its answer
    /// wait for a second commit: the case is stored by a task of its own. Reads of cases wait
    /// for the openings begun before them ([`Cases::settled`]), so a reviewer or a client who
    /// looks after the answer finds the case; a crash before it is stored is made good at the
    /// next start ([`Cases::open_missing`]), the decision in the log being the record of it.
    pub fn open_in_background(
        self: &Arc<Self>,
        decision_id: &str,
        referral: &Referral,
        requested_amount: Option<Decimal>,
        facts: ReferralFacts,
        strategy: &CompiledStrategy,
        now_ms: i64,
    ) {
        let record = match Self::case_for(
            decision_id,
            referral,
            requested_amount,
            facts,
            strategy,
            now_ms,
        ) {
            Ok(record) => record,
            Err(error) => {
                tracing::error!(decision_id, %error, "cannot open the review case");
                return;
            }
        };
        let ticket = {
            let mut opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
            let ticket = opening.next_ticket;
            opening.next_ticket += 1;
            opening.open.insert(ticket);
            OpeningTicket {
                cases: self.clone(),
                ticket,
            }
        };
        tokio::spawn(async move {
            let decision_id = record.decision_id.clone();
            if let Err(error) = ticket.cases.store.insert_case(record).await {
                tracing::error!(%decision_id, %error, "cannot open the review case");
            }
            drop(ticket);
        });
    }

    /// Waits until every case whose opening began before this call is stored (or failed).
    pub async fn settled(&self) {
        let mark = self
            .opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_ticket;
        loop {
            let notified = self.opened.notified();
            tokio::pin!(notified);
            // Registered before looking, so a wake-up between the look and the wait is kept.
            notified.as_mut().enable();
            let waiting = {
                let opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
                opening.open.range(..mark).next().is_some()
            };
            if !waiting {
                return;
            }
            notified.await;
        }
    }

    /// Opens the cases of referred decisions, among the newest `recent`, that have none (a
    /// crash came between a referral's answer and its case being stored); returns how many.
    /// Run it once at start, before serving. A decision whose case cannot be rebuilt is
    /// logged with the reason and skipped: it must not keep the service from starting.
    pub async fn open_missing(&self, recent: u32) -> Result<usize, AppError> {
        let mut opened = 0;
        for decision_id in self.store.referrals_without_case(recent).await? {
            match self.reopen(&decision_id).await {
                Ok(true) => opened += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(%decision_id, %error, "cannot open the review case of a referred decision");
                }
            }
        }
        Ok(opened)
    }

    /// Opens the case of one referred decision from its record in the log; false when there
    /// was nothing to open (no such decision, or a case exists by now).
    async fn reopen(&self, decision_id: &str) -> Result<bool, AppError> {
        let Some(stored) = self.store.decision(decision_id).await? else {
            return Ok(false);
        };
        let record = &stored.record;
        let unreadable = |what: &str, e: serde_json::Error| {
            AppError::new(
                ErrorCode::Internal,
                format!("the stored {what} of decision {decision_id} is unreadable: {e}"),
            )
        };
        let recorded = crate::decisions::read_record(record)?;
        let referral: Referral = recorded.referral.ok_or_else(|| {
            AppError::new(
                ErrorCode::Internal,
                format!("the stored decision {decision_id} has no referral to open a case for"),
            )
        })?;
        let input: serde_json::Value =
            serde_json::from_str(&record.input).map_err(|e| unreadable("input", e))?;
        // Version 1 records hold no requested amount: the input's field of that name was
        // what those builds read.
        let requested_amount = recorded.requested_amount.or_else(|| {
            input
                .get("requested_amount")
                .and_then(credence_engine::json_decimal)
        });
        let strategy = self.strategies.compiled(&record.strategy_version).await?;
        let facts = ReferralFacts {
            customer_id: record.customer_id.clone(),
            ..ReferralFacts::of(&serde_json::Value::Null, &recorded.reasons)
        };
        let case = Self::case_for(
            decision_id,
            &referral,
            requested_amount,
            facts,
            &strategy,
            record.created_at_ms,
        )?;
        match self.store.insert_case(case).await {
            Ok(()) => Ok(true),
            // Opened meanwhile: nothing to make good.
            Err(credence_store::StoreError::Conflict { .. }) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// The cases that match `query`.
    pub async fn list(&self, query: CaseQuery) -> Result<Vec<CaseView>, AppError> {
        self.settled().await;
        let records = self.store.cases(&query).await?;
        records
            .iter()
            .map(|r| from_record(r).map(|case| self.view(case)))
            .collect()
    }

    /// A case's stored record; an unknown id is `not_found`.
    async fn stored(&self, id: &str) -> Result<CaseRecord, AppError> {
        self.store
            .case(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("there is no case {id}")))
    }

    /// One case by id.
    pub async fn get(&self, id: &str) -> Result<CaseView, AppError> {
        self.settled().await;
        let record = self.stored(id).await?;
        Ok(self.view(from_record(&record)?))
    }

    /// Claims, for `actor`, the first case in `queue` (any queue when `None`) that nobody holds
    /// and the review policy lets them take, soonest deadline first: "the next case" of a reviewer working a
    /// queue. Two reviewers asking at once — on one node or several — get different cases;
    /// `None` when nothing is waiting that they may take.
    pub async fn claim_next(
        &self,
        queue: Option<String>,
        strategies: Option<Vec<String>>,
        actor: &Reviewer,
    ) -> Result<Option<CaseView>, AppError> {
        self.settled().await;
        let query = CaseQuery {
            queue,
            strategies,
            state: None,
            due_before_ms: None,
            limit: NEXT_CASE_CANDIDATES,
        };
        // Each candidate's policy is its strategy version's: resolved before the claim, which
        // runs inside the store.
        let mut policies = std::collections::HashMap::new();
        let mut by_version: std::collections::HashMap<String, ReviewPolicy> =
            std::collections::HashMap::new();
        for record in self.store.cases(&query).await? {
            if record.state == "decided" {
                continue;
            }
            let Some(stored) = self.store.decision(&record.decision_id).await? else {
                continue;
            };
            let version = stored.record.strategy_version;
            if !by_version.contains_key(&version) {
                let strategy = self.strategies.compiled(&version).await?;
                by_version.insert(version.clone(), policy_for(&strategy));
            }
            policies.insert(record.id, by_version[&version].clone());
        }
        let (actor, now) = (actor.clone(), self.now_ms());
        let claimer: credence_store::CaseClaimer = Box::new(move |record| {
            let policy = policies.get(&record.id)?;
            let case = from_record(record).ok()?;
            // The next case is one nobody holds, the caller included.
            if case.claimed_by(now).is_some() {
                return None;
            }
            let next = credence_review::apply(&case, Command::Claim, &actor, policy, now).ok()?;
            to_record(&next, record.version + 1).ok()
        });
        match self.store.claim_next_case(&query, claimer).await? {
            Some(record) => Ok(Some(self.view(from_record(&record)?))),
            None => Ok(None),
        }
    }

    /// The review part of a decision's record, if it was referred.
    pub async fn for_decision(&self, decision_id: &str) -> Result<Option<CaseView>, AppError> {
        self.settled().await;
        match self.store.case_for_decision(decision_id).await? {
            Some(record) => Ok(Some(self.view(from_record(&record)?))),
            None => Ok(None),
        }
    }

    /// Escalates every waiting case past its SLA to the senior reviewers; returns how many.
    pub async fn escalate_breached(&self) -> Result<usize, AppError> {
        self.settled().await;
        let now = self.now_ms();
        let breached = self
            .store
            .cases(&CaseQuery {
                due_before_ms: Some(now),
                limit: 1000,
                ..Default::default()
            })
            .await?;
        let mut escalated = 0;
        for record in breached {
            let case = from_record(&record)?;
            let Some(stored) = self.store.decision(&case.decision_id).await? else {
                continue;
            };
            let strategy = self
                .strategies
                .compiled(&stored.record.strategy_version)
                .await?;
            if let Some(next) =
                credence_review::escalate_if_breached(&case, &policy_for(&strategy), now)
            {
                // Someone acting on the case meanwhile wins; the next sweep looks again.
                if self
                    .store
                    .update_case(to_record(&next, record.version + 1)?, record.version)
                    .await
                    .is_ok()
                {
                    metrics::counter!(REVIEW_ESCALATIONS_TOTAL, "queue" => next.queue.clone())
                        .increment(1);
                    escalated += 1;
                }
            }
        }
        Ok(escalated)
    }

    /// Applies a reviewer's command under the policy of the strategy version that referred it.
    pub async fn act(
        &self,
        id: &str,
        command: Command,
        actor: &Reviewer,
    ) -> Result<CaseView, AppError> {
        self.settled().await;
        let record = self.stored(id).await?;
        let case = from_record(&record)?;
        let stored = self
            .store
            .decision(&case.decision_id)
            .await?
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::Internal,
                    format!("case {id} names a missing decision"),
                )
            })?;
        let version = stored.record.strategy_version.clone();
        let strategy = self.strategies.compiled(&version).await?;
        let policy = policy_for(&strategy);
        let now = self.now_ms();
        let next =
            credence_review::apply(&case, command, actor, &policy, now).map_err(review_error)?;
        self.store
            .update_case(to_record(&next, record.version + 1)?, record.version)
            .await?;
        if next.state == credence_review::CaseState::Decided && case.state != next.state {
            if let Some(decision) = &next.decision {
                let verdict = serde_json::to_value(decision.proposal.verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                metrics::counter!(REVIEW_DECISIONS_TOTAL, "queue" => next.queue.clone(), "verdict" => verdict)
                    .increment(1);
                metrics::histogram!(REVIEW_MINUTES, "queue" => next.queue.clone())
                    .record((now - next.created_at_ms) as f64 / 60_000.0);
                if now > next.due_at_ms {
                    metrics::counter!(REVIEW_SLA_BREACHES_TOTAL, "queue" => next.queue.clone())
                        .increment(1);
                }
                let event = serde_json::json!({
                    "event": EVENT_REVIEW_DECIDED,
                    "decision_id": next.decision_id,
                    "case_id": next.id,
                    "queue": next.queue,
                    "final_decision": decision,
                    "confirmed_by": next.confirmed_by,
                });
                if let Err(error) = self
                    .store
                    .enqueue_deliveries(EVENT_REVIEW_DECIDED, &event.to_string(), now)
                    .await
                {
                    tracing::error!(%error, case = %next.id, "cannot queue the review's webhooks");
                }
                // The case is decided and stored: an unreadable record costs the metric, not
                // the answer.
                let engine = match crate::decisions::read_record(&stored.record) {
                    Ok(engine) => Some(engine),
                    Err(error) => {
                        tracing::error!(error = %error.message, case = %next.id, "override metric skipped");
                        None
                    }
                };
                if let Some(engine) =
                    engine.filter(|e| is_override(e.limit, e.apr, &decision.proposal))
                {
                    let reason = engine
                        .reasons
                        .first()
                        .map_or_else(|| "none".to_string(), |r| r.code.to_string());
                    metrics::counter!(REVIEW_OVERRIDES_TOTAL,
                        "queue" => next.queue.clone(),
                        "reason" => reason)
                    .increment(1);
                }
            }
        }
        Ok(self.view(next))
    }
}
