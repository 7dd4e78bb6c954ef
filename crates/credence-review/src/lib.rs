//! Manual review as pure state transitions: a referred decision becomes a [`Case`]; reviewers
//! claim it, decide within the strategy's bounds, and above an amount a second reviewer must
//! confirm (four-eyes). No I/O and no clock: the caller hands in `now_ms` and stores the
//! returned case, whose history is append-only.
//!
//! ```text
//! Open ──claim──▶ (claimed) ──decide──▶ Decided
//!   ▲                │  │  └──decide above four_eyes_above──▶ AwaitingConfirmation ──confirm (other reviewer)──▶ Decided
//!   │                │  └──request_info──▶ MoreInfoRequested ──claim──▶ …                 └──send_back──▶ Open
//!   └──release───────┘──escalate / SLA breach──▶ Escalated (senior reviewers only) ──claim──▶ …
//! ```
#![warn(missing_docs)]

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One queue's service level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuePolicy {
    /// Minutes from opening within which a case of the queue should be decided.
    pub sla_minutes: u32,
}

/// What the strategy allows reviewers to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewPolicy {
    /// The queues the strategy names, with their service levels.
    pub queues: BTreeMap<String, QueuePolicy>,
    /// SLA of a queue the strategy does not list.
    pub default_sla_minutes: u32,
    /// How long a claim holds before another reviewer may take the case.
    pub claim_minutes: u32,
    /// An approval or counter-offer with a limit above this needs a second reviewer.
    pub four_eyes_above: Option<Decimal>,
    /// The lowest limit a reviewer may grant.
    pub limit_min: Option<Decimal>,
    /// The highest limit a reviewer may grant.
    pub limit_max: Option<Decimal>,
    /// The lowest rate a reviewer may set.
    pub apr_min: Option<Decimal>,
    /// The highest rate a reviewer may set.
    pub apr_max: Option<Decimal>,
    /// Reason codes a reviewer may give for a decline: the strategy's codes but those its
    /// steps give only to refer or flag.
    pub reason_codes: BTreeSet<String>,
    /// The strategy's codes that only refer or flag ("we need to review it"): named as such
    /// when a reviewer gives one for a decline.
    pub referral_reason_codes: BTreeSet<String>,
}

impl ReviewPolicy {
    /// The SLA of `queue`, or the default for a queue the strategy does not list.
    pub fn sla_minutes(&self, queue: &str) -> u32 {
        self.queues
            .get(queue)
            .map(|q| q.sla_minutes)
            .unwrap_or(self.default_sla_minutes)
    }
}

/// Where a case stands. Whether it is claimed is separate ([`Case::claim`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// Waiting for a reviewer.
    Open,
    /// A reviewer asked the applicant for more information.
    MoreInfoRequested,
    /// Sent to a senior reviewer.
    Escalated,
    /// Decided by a first reviewer; a second must confirm (four eyes).
    AwaitingConfirmation,
    /// The decision stands.
    Decided,
}

/// A reviewer's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewerRole {
    /// Works the queues.
    Reviewer,
    /// Also takes escalated cases.
    SeniorReviewer,
}

/// Who is acting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    /// The reviewer's user name.
    pub user: String,
    /// Their standing.
    pub role: ReviewerRole,
}

/// What a reviewer decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Approve as offered (or with other terms within the bounds).
    Approve,
    /// Approve for less than was asked.
    CounterOffer,
    /// Decline, with reason codes.
    Decline,
}

/// A reviewer's decision as entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The verdict.
    pub verdict: Verdict,
    /// The limit granted (approvals and counter-offers).
    pub limit: Option<Decimal>,
    /// The rate set (approvals and counter-offers).
    pub apr: Option<Decimal>,
    /// Reason codes (required for a decline).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// Why, in the reviewer's words.
    pub note: String,
}

/// A proposal as recorded, with who and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewDecision {
    /// What was decided.
    #[serde(flatten)]
    pub proposal: Proposal,
    /// By whom.
    pub by: String,
    /// When (milliseconds since the epoch).
    pub at_ms: i64,
}

/// A reviewer's hold on a case, so that two do not work it at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The reviewer holding it.
    pub by: String,
    /// When the hold lapses (milliseconds since the epoch).
    pub until_ms: i64,
}

/// One line of a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEvent {
    /// When (milliseconds since the epoch).
    pub at_ms: i64,
    /// Who acted (a reviewer, or `system` for the SLA clock).
    pub actor: String,
    /// What was done (`claim`, `decide`, `escalate`, …).
    pub action: String,
    /// The note given, if any.
    pub note: Option<String>,
}

/// A manual-review case: one per referred decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// The case's id.
    pub id: String,
    /// The referred decision this case reviews; the final decision overrides it.
    pub decision_id: String,
    /// The strategy (product) that referred it; empty in cases stored before products had names.
    #[serde(default)]
    pub strategy: String,
    /// The customer the referred decision was about, when its input named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// Why it was referred: the decision's reasons, `CODE — text`, most important first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referred_for: Vec<String>,
    /// The queue it waits in.
    pub queue: String,
    /// Higher first among cases due at the same time.
    pub priority: i64,
    /// Where it stands.
    pub state: CaseState,
    /// When it was opened (milliseconds since the epoch).
    pub created_at_ms: i64,
    /// When it should be decided by (the queue's SLA).
    pub due_at_ms: i64,
    /// What the customer asked for, for counter-offers.
    pub requested_amount: Option<Decimal>,
    /// Who holds it, if anyone.
    pub claim: Option<Claim>,
    /// The first reviewer's decision while it awaits a second one.
    pub pending: Option<ReviewDecision>,
    /// The decision that stands.
    pub decision: Option<ReviewDecision>,
    /// The second reviewer who confirmed a four-eyes decision.
    pub confirmed_by: Option<String>,
    /// Everything done to the case, oldest first.
    pub history: Vec<CaseEvent>,
}

/// What a reviewer (or the SLA clock) does to a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Take the case (for the policy's claim time).
    Claim,
    /// Give it back to the queue.
    Release,
    /// Decide it.
    Decide(Proposal),
    /// Confirm a first reviewer's decision (four eyes).
    Confirm {
        /// Why.
        note: String,
    },
    /// Send a first reviewer's decision back to be decided again.
    SendBack {
        /// Why.
        note: String,
    },
    /// Ask the applicant for more information.
    RequestInfo {
        /// What is needed.
        note: String,
    },
    /// Send the case to a senior reviewer.
    Escalate {
        /// Why.
        note: String,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Claim => "claim",
            Command::Release => "release",
            Command::Decide(_) => "decide",
            Command::Confirm { .. } => "confirm",
            Command::SendBack { .. } => "send_back",
            Command::RequestInfo { .. } => "request_info",
            Command::Escalate { .. } => "escalate",
        }
    }
}

/// Why a command was refused; the message says what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Someone else holds the case.
    #[error("{by} holds this case until {until_ms} (ms since the epoch); wait, or ask them to release it")]
    ClaimedByOther {
        /// Who holds it.
        by: String,
        /// Until when (milliseconds since the epoch).
        until_ms: i64,
    },
    /// The command needs the case claimed first.
    #[error("claim the case before you {action} it")]
    NotClaimed {
        /// The command refused.
        action: &'static str,
    },
    /// The command does not apply in the case's state.
    #[error("a case that is {state:?} cannot be given `{action}`")]
    InvalidState {
        /// The case's state.
        state: CaseState,
        /// The command refused.
        action: &'static str,
    },
    /// The case is decided.
    #[error("the case is decided; its decision stands")]
    AlreadyDecided,
    /// The command needs a note.
    #[error("a note is required: say why")]
    NoteRequired,
    /// A decline needs reason codes.
    #[error("a decline needs at least one reason code")]
    ReasonsRequired,
    /// A reason code the strategy does not have.
    #[error("unknown reason code {code}; a decline gives one or more of the strategy's decline reasons: {valid}")]
    UnknownReason {
        /// The code given.
        code: String,
        /// The decline reasons, comma-separated.
        valid: String,
    },
    /// A code the strategy gives to refer or flag, not to decline.
    #[error("{code} is a referral reason (it asks for a review); the customer's notice would say the wrong thing. A decline gives one or more of the strategy's decline reasons: {valid}")]
    NotADeclineReason {
        /// The code given.
        code: String,
        /// The decline reasons, comma-separated.
        valid: String,
    },
    /// A field the verdict needs is missing.
    #[error("{field} is required for this decision")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A limit or rate outside the strategy's bounds.
    #[error("{field} {value} is outside the strategy's bounds [{min}, {max}]")]
    OutOfBounds {
        /// The field.
        field: &'static str,
        /// The value given.
        value: Decimal,
        /// The lowest allowed (or `-inf`).
        min: String,
        /// The highest allowed (or `inf`).
        max: String,
    },
    /// A counter-offer at or above what was asked.
    #[error("a counter-offer must be below the requested amount {requested}")]
    NotACounterOffer {
        /// What the customer asked for.
        requested: Decimal,
    },
    /// The second reviewer is the first one.
    #[error("the second reviewer must be someone other than {0}, who made the first decision")]
    SameReviewer(String),
    /// Escalated cases are for senior reviewers.
    #[error("escalated cases are for senior reviewers")]
    SeniorOnly,
}

impl ReviewError {
    /// The stable machine code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            ReviewError::ClaimedByOther { .. } => "claimed_by_other",
            ReviewError::NotClaimed { .. } => "not_claimed",
            ReviewError::InvalidState { .. } => "invalid_state",
            ReviewError::AlreadyDecided => "already_decided",
            ReviewError::NoteRequired => "note_required",
            ReviewError::ReasonsRequired => "reasons_required",
            ReviewError::UnknownReason { .. } => "unknown_reason",
            ReviewError::NotADeclineReason { .. } => "not_a_decline_reason",
            ReviewError::Missing { .. } => "missing_field",
            ReviewError::OutOfBounds { .. } => "out_of_bounds",
            ReviewError::NotACounterOffer { .. } => "not_a_counter_offer",
            ReviewError::SameReviewer(_) => "same_reviewer",
            ReviewError::SeniorOnly => "senior_only",
        }
    }
}

/// Opens the case for a referred decision.
pub fn open_case(
    id: String,
    decision_id: String,
    queue: String,
    priority: i64,
    requested_amount: Option<Decimal>,
    policy: &ReviewPolicy,
    now_ms: i64,
) -> Case {
    let due_at_ms = now_ms + i64::from(policy.sla_minutes(&queue)) * 60_000;
    Case {
        id,
        decision_id,
        strategy: String::new(),
        customer_id: None,
        referred_for: Vec::new(),
        queue,
        priority,
        state: CaseState::Open,
        created_at_ms: now_ms,
        due_at_ms,
        requested_amount,
        claim: None,
        pending: None,
        decision: None,
        confirmed_by: None,
        history: vec![CaseEvent {
            at_ms: now_ms,
            actor: "system".into(),
            action: "open".into(),
            note: None,
        }],
    }
}

impl Case {
    /// Who holds the case now (an expired claim holds nothing).
    pub fn claimed_by(&self, now_ms: i64) -> Option<&str> {
        self.claim
            .as_ref()
            .filter(|c| c.until_ms > now_ms)
            .map(|c| c.by.as_str())
    }

    /// Whether the case is past its due time without a decision.
    pub fn sla_breached(&self, now_ms: i64) -> bool {
        self.state != CaseState::Decided && now_ms > self.due_at_ms
    }

    /// The state as a reviewer sees it: `claimed` when someone holds an open case.
    pub fn status(&self, now_ms: i64) -> &'static str {
        match (self.state, self.claimed_by(now_ms)) {
            (CaseState::Decided, _) => "decided",
            (_, Some(_)) => "claimed",
            (CaseState::Open, None) => "open",
            (CaseState::MoreInfoRequested, None) => "more_info_requested",
            (CaseState::Escalated, None) => "escalated",
            (CaseState::AwaitingConfirmation, None) => "awaiting_confirmation",
        }
    }
}

fn note_of(note: &str) -> Result<String, ReviewError> {
    let note = note.trim();
    if note.is_empty() {
        return Err(ReviewError::NoteRequired);
    }
    Ok(note.to_string())
}

fn within(
    field: &'static str,
    value: Option<Decimal>,
    min: Option<Decimal>,
    max: Option<Decimal>,
) -> Result<Decimal, ReviewError> {
    let value = value.ok_or(ReviewError::Missing { field })?;
    let below = min.is_some_and(|m| value < m);
    let above = max.is_some_and(|m| value > m);
    if below || above || value.is_sign_negative() {
        let show =
            |bound: Option<Decimal>| bound.map(|b| b.to_string()).unwrap_or_else(|| "-".into());
        return Err(ReviewError::OutOfBounds {
            field,
            value,
            min: show(min),
            max: show(max),
        });
    }
    Ok(value)
}

/// Checks a proposal against the policy.
pub fn validate(
    proposal: &Proposal,
    case: &Case,
    policy: &ReviewPolicy,
) -> Result<(), ReviewError> {
    note_of(&proposal.note)?;
    for code in &proposal.reasons {
        if !policy.reason_codes.contains(code) {
            let valid = policy
                .reason_codes
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let code = code.clone();
            return Err(if policy.referral_reason_codes.contains(&code) {
                ReviewError::NotADeclineReason { code, valid }
            } else {
                ReviewError::UnknownReason { code, valid }
            });
        }
    }
    match proposal.verdict {
        Verdict::Decline => {
            if proposal.reasons.is_empty() {
                return Err(ReviewError::ReasonsRequired);
            }
        }
        Verdict::Approve | Verdict::CounterOffer => {
            let limit = within("limit", proposal.limit, policy.limit_min, policy.limit_max)?;
            within("apr", proposal.apr, policy.apr_min, policy.apr_max)?;
            if proposal.verdict == Verdict::CounterOffer {
                if let Some(requested) = case.requested_amount {
                    if limit >= requested {
                        return Err(ReviewError::NotACounterOffer { requested });
                    }
                }
            }
        }
    }
    Ok(())
}

fn needs_second_reviewer(proposal: &Proposal, policy: &ReviewPolicy) -> bool {
    proposal.verdict != Verdict::Decline
        && match (policy.four_eyes_above, proposal.limit) {
            (Some(threshold), Some(limit)) => limit > threshold,
            _ => false,
        }
}

/// Applies a command; returns the new case (the input is unchanged) or why it was refused.
pub fn apply(
    case: &Case,
    command: Command,
    actor: &Reviewer,
    policy: &ReviewPolicy,
    now_ms: i64,
) -> Result<Case, ReviewError> {
    if case.state == CaseState::Decided {
        return Err(ReviewError::AlreadyDecided);
    }
    let action = command.name();
    let holder = case.claimed_by(now_ms);
    let held_by_actor = holder == Some(actor.user.as_str());
    if let Some(other) = holder.filter(|h| *h != actor.user) {
        return Err(ReviewError::ClaimedByOther {
            by: other.to_string(),
            until_ms: case.claim.as_ref().map(|c| c.until_ms).unwrap_or(now_ms),
        });
    }
    let mut next = case.clone();
    let mut note = None;
    match command {
        Command::Claim => {
            if case.state == CaseState::Escalated && actor.role != ReviewerRole::SeniorReviewer {
                return Err(ReviewError::SeniorOnly);
            }
            if let (CaseState::AwaitingConfirmation, Some(first)) = (case.state, &case.pending) {
                if first.by == actor.user {
                    return Err(ReviewError::SameReviewer(first.by.clone()));
                }
            }
            next.claim = Some(Claim {
                by: actor.user.clone(),
                until_ms: now_ms + i64::from(policy.claim_minutes) * 60_000,
            });
        }
        Command::Release => {
            if !held_by_actor {
                return Err(ReviewError::NotClaimed { action });
            }
            next.claim = None;
        }
        Command::Decide(proposal) => {
            if !held_by_actor {
                return Err(ReviewError::NotClaimed { action });
            }
            if !matches!(
                case.state,
                CaseState::Open | CaseState::MoreInfoRequested | CaseState::Escalated
            ) {
                return Err(ReviewError::InvalidState {
                    state: case.state,
                    action,
                });
            }
            validate(&proposal, case, policy)?;
            let proposal = Proposal {
                note: note_of(&proposal.note)?,
                ..proposal
            };
            note = Some(proposal.note.clone());
            let second = needs_second_reviewer(&proposal, policy);
            let recorded = ReviewDecision {
                proposal,
                by: actor.user.clone(),
                at_ms: now_ms,
            };
            next.claim = None;
            if second {
                next.state = CaseState::AwaitingConfirmation;
                next.pending = Some(recorded);
            } else {
                next.state = CaseState::Decided;
                next.decision = Some(recorded);
            }
        }
        Command::Confirm { note: text } | Command::SendBack { note: text } => {
            if !held_by_actor {
                return Err(ReviewError::NotClaimed { action });
            }
            let Some(first) = case
                .pending
                .as_ref()
                .filter(|_| case.state == CaseState::AwaitingConfirmation)
            else {
                return Err(ReviewError::InvalidState {
                    state: case.state,
                    action,
                });
            };
            if first.by == actor.user {
                return Err(ReviewError::SameReviewer(first.by.clone()));
            }
            note = Some(note_of(&text)?);
            next.claim = None;
            next.pending = None;
            if action == "confirm" {
                next.state = CaseState::Decided;
                next.decision = Some(first.clone());
                next.confirmed_by = Some(actor.user.clone());
            } else {
                next.state = CaseState::Open;
            }
        }
        Command::RequestInfo { note: text } | Command::Escalate { note: text } => {
            // The SLA clock escalates without a claim.
            let by_system = actor.user == "system" && action == "escalate";
            if !held_by_actor && !by_system {
                return Err(ReviewError::NotClaimed { action });
            }
            if !matches!(
                case.state,
                CaseState::Open | CaseState::MoreInfoRequested | CaseState::Escalated
            ) {
                return Err(ReviewError::InvalidState {
                    state: case.state,
                    action,
                });
            }
            note = Some(note_of(&text)?);
            next.claim = None;
            next.state = if action == "escalate" {
                CaseState::Escalated
            } else {
                CaseState::MoreInfoRequested
            };
        }
    }
    next.history.push(CaseEvent {
        at_ms: now_ms,
        actor: actor.user.clone(),
        action: action.to_string(),
        note,
    });
    Ok(next)
}

/// Escalates a breached case to the senior reviewers (what the SLA clock runs).
pub fn escalate_if_breached(case: &Case, policy: &ReviewPolicy, now_ms: i64) -> Option<Case> {
    let waiting = matches!(case.state, CaseState::Open | CaseState::MoreInfoRequested);
    if !waiting || !case.sla_breached(now_ms) || case.claimed_by(now_ms).is_some() {
        return None;
    }
    let system = Reviewer {
        user: "system".into(),
        role: ReviewerRole::SeniorReviewer,
    };
    apply(
        case,
        Command::Escalate {
            note: "SLA breached".into(),
        },
        &system,
        policy,
        now_ms,
    )
    .ok()
}

#[cfg(test)]
mod tests;
