//! Review rules as tables of scenarios.

use super::*;
use rust_decimal::Decimal;
use std::str::FromStr;

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn policy() -> ReviewPolicy {
    ReviewPolicy {
        queues: [(
            "income_verification".to_string(),
            QueuePolicy { sla_minutes: 60 },
        )]
        .into(),
        default_sla_minutes: 240,
        claim_minutes: 15,
        four_eyes_above: Some(d("10000")),
        limit_min: Some(d("500")),
        limit_max: Some(d("20000")),
        apr_min: Some(d("0.05")),
        apr_max: Some(d("0.24")),
        reason_codes: ["DEC_AFFORDABILITY".to_string(), "DEC_SCORE".to_string()].into(),
        referral_reason_codes: ["REF_INCOME_MISMATCH".to_string()].into(),
    }
}

fn ann() -> Reviewer {
    Reviewer {
        user: "ann".into(),
        role: ReviewerRole::Reviewer,
    }
}
fn bob() -> Reviewer {
    Reviewer {
        user: "bob".into(),
        role: ReviewerRole::Reviewer,
    }
}
fn sue() -> Reviewer {
    Reviewer {
        user: "sue".into(),
        role: ReviewerRole::SeniorReviewer,
    }
}

fn case() -> Case {
    open_case(
        "case_1".into(),
        "dec_1".into(),
        "income_verification".into(),
        2,
        Some(d("12000")),
        &policy(),
        0,
    )
}

fn approve(limit: &str, apr: &str) -> Command {
    Command::Decide(Proposal {
        verdict: Verdict::Approve,
        limit: Some(d(limit)),
        apr: Some(d(apr)),
        reasons: vec![],
        note: "payslips confirm the declared income".into(),
    })
}

const MINUTE: i64 = 60_000;

/// Runs steps in order; each step's expected result is Ok(state) or the error.
fn run(steps: Vec<(Reviewer, Command, i64, Result<CaseState, ReviewError>)>) -> Case {
    let policy = policy();
    let mut current = case();
    for (i, (actor, command, at, expected)) in steps.into_iter().enumerate() {
        let result = apply(&current, command.clone(), &actor, &policy, at);
        match (result, expected) {
            (Ok(next), Ok(state)) => {
                assert_eq!(next.state, state, "step {i} ({command:?})");
                current = next;
            }
            (Err(error), Err(wanted)) => assert_eq!(error, wanted, "step {i}"),
            (got, wanted) => panic!("step {i} ({command:?}): got {got:?}, wanted {wanted:?}"),
        }
    }
    current
}

#[test]
fn the_sla_comes_from_the_queue() {
    assert_eq!(case().due_at_ms, 60 * MINUTE);
    let other = open_case(
        "c".into(),
        "d".into(),
        "fraud".into(),
        1,
        None,
        &policy(),
        0,
    );
    assert_eq!(other.due_at_ms, 240 * MINUTE);
    assert!(case().sla_breached(61 * MINUTE) && !case().sla_breached(59 * MINUTE));
}

#[test]
fn a_claimed_case_cannot_be_decided_or_taken_by_another_reviewer_until_the_claim_expires() {
    let held = ReviewError::ClaimedByOther {
        by: "ann".into(),
        until_ms: 15 * MINUTE,
    };
    run(vec![
        (ann(), Command::Claim, 0, Ok(CaseState::Open)),
        (bob(), Command::Claim, MINUTE, Err(held.clone())),
        (bob(), approve("5000", "0.12"), MINUTE, Err(held)),
        (
            bob(),
            Command::Release,
            MINUTE,
            Err(ReviewError::ClaimedByOther {
                by: "ann".into(),
                until_ms: 15 * MINUTE,
            }),
        ),
        // After expiry the case is free again.
        (bob(), Command::Claim, 16 * MINUTE, Ok(CaseState::Open)),
        (
            bob(),
            approve("5000", "0.12"),
            17 * MINUTE,
            Ok(CaseState::Decided),
        ),
        (
            ann(),
            Command::Claim,
            18 * MINUTE,
            Err(ReviewError::AlreadyDecided),
        ),
    ]);
}

#[test]
fn deciding_needs_a_claim_a_note_and_terms_within_bounds() {
    let no_note = Command::Decide(Proposal {
        verdict: Verdict::Approve,
        limit: Some(d("5000")),
        apr: Some(d("0.1")),
        reasons: vec![],
        note: "  ".into(),
    });
    let decline_without_reason = Command::Decide(Proposal {
        verdict: Verdict::Decline,
        limit: None,
        apr: None,
        reasons: vec![],
        note: "bank statements show gambling".into(),
    });
    let unknown_reason = Command::Decide(Proposal {
        verdict: Verdict::Decline,
        limit: None,
        apr: None,
        reasons: vec!["MADE_UP".into()],
        note: "x".into(),
    });
    let referral_reason = Command::Decide(Proposal {
        verdict: Verdict::Decline,
        limit: None,
        apr: None,
        reasons: vec!["REF_INCOME_MISMATCH".into()],
        note: "x".into(),
    });
    let counter_too_high = Command::Decide(Proposal {
        verdict: Verdict::CounterOffer,
        limit: Some(d("12000")),
        apr: Some(d("0.1")),
        reasons: vec![],
        note: "x".into(),
    });
    let out_of_bounds =
        |field: &'static str, value: &str, min: &str, max: &str| ReviewError::OutOfBounds {
            field,
            value: d(value),
            min: min.into(),
            max: max.into(),
        };
    run(vec![
        (
            ann(),
            approve("5000", "0.12"),
            0,
            Err(ReviewError::NotClaimed { action: "decide" }),
        ),
        (ann(), Command::Claim, 0, Ok(CaseState::Open)),
        (ann(), no_note, 0, Err(ReviewError::NoteRequired)),
        (
            ann(),
            approve("25000", "0.12"),
            0,
            Err(out_of_bounds("limit", "25000", "500", "20000")),
        ),
        (
            ann(),
            approve("5000", "0.30"),
            0,
            Err(out_of_bounds("apr", "0.30", "0.05", "0.24")),
        ),
        (
            ann(),
            approve("-1", "0.10"),
            0,
            Err(out_of_bounds("limit", "-1", "500", "20000")),
        ),
        (
            ann(),
            decline_without_reason,
            0,
            Err(ReviewError::ReasonsRequired),
        ),
        (
            ann(),
            unknown_reason,
            0,
            Err(ReviewError::UnknownReason {
                code: "MADE_UP".into(),
                valid: "DEC_AFFORDABILITY, DEC_SCORE".into(),
            }),
        ),
        (
            ann(),
            referral_reason,
            0,
            Err(ReviewError::NotADeclineReason {
                code: "REF_INCOME_MISMATCH".into(),
                valid: "DEC_AFFORDABILITY, DEC_SCORE".into(),
            }),
        ),
        (
            ann(),
            counter_too_high,
            0,
            Err(ReviewError::NotACounterOffer {
                requested: d("12000"),
            }),
        ),
        (
            ann(),
            approve("8000", "0.12"),
            MINUTE,
            Ok(CaseState::Decided),
        ),
    ]);
}

#[test]
fn four_eyes_cases_are_final_only_after_a_different_reviewer_confirms() {
    let confirm = || Command::Confirm {
        note: "checked the payslips again".into(),
    };
    let decided = run(vec![
        (ann(), Command::Claim, 0, Ok(CaseState::Open)),
        (
            ann(),
            approve("15000", "0.12"),
            MINUTE,
            Ok(CaseState::AwaitingConfirmation),
        ),
        (
            ann(),
            Command::Claim,
            2 * MINUTE,
            Err(ReviewError::SameReviewer("ann".into())),
        ),
        (
            bob(),
            confirm(),
            2 * MINUTE,
            Err(ReviewError::NotClaimed { action: "confirm" }),
        ),
        (
            bob(),
            Command::Claim,
            2 * MINUTE,
            Ok(CaseState::AwaitingConfirmation),
        ),
        (bob(), confirm(), 3 * MINUTE, Ok(CaseState::Decided)),
    ]);
    let decision = decided.decision.unwrap();
    assert_eq!(decision.by, "ann");
    assert_eq!(decision.proposal.limit, Some(d("15000")));
    assert_eq!(decided.confirmed_by.as_deref(), Some("bob"));
    let actions: Vec<&str> = decided.history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["open", "claim", "decide", "claim", "confirm"]);

    // A declined case never needs four eyes; a second reviewer may send a decision back.
    run(vec![
        (ann(), Command::Claim, 0, Ok(CaseState::Open)),
        (
            ann(),
            approve("15000", "0.12"),
            MINUTE,
            Ok(CaseState::AwaitingConfirmation),
        ),
        (
            bob(),
            Command::Claim,
            2 * MINUTE,
            Ok(CaseState::AwaitingConfirmation),
        ),
        (
            bob(),
            Command::SendBack {
                note: "limit too high for the verified income".into(),
            },
            3 * MINUTE,
            Ok(CaseState::Open),
        ),
        (bob(), Command::Claim, 4 * MINUTE, Ok(CaseState::Open)),
        (
            bob(),
            Command::Decide(Proposal {
                verdict: Verdict::Decline,
                limit: None,
                apr: None,
                reasons: vec!["DEC_AFFORDABILITY".into()],
                note: "verified income does not cover it".into(),
            }),
            5 * MINUTE,
            Ok(CaseState::Decided),
        ),
    ]);
}

#[test]
fn breached_cases_escalate_to_senior_reviewers() {
    let policy = policy();
    let open = case();
    assert!(
        escalate_if_breached(&open, &policy, 30 * MINUTE).is_none(),
        "within the SLA"
    );
    let escalated = escalate_if_breached(&open, &policy, 61 * MINUTE).expect("breached");
    assert_eq!(escalated.state, CaseState::Escalated);
    assert_eq!(escalated.history.last().unwrap().actor, "system");
    assert_eq!(
        apply(&escalated, Command::Claim, &ann(), &policy, 62 * MINUTE),
        Err(ReviewError::SeniorOnly)
    );
    let claimed = apply(&escalated, Command::Claim, &sue(), &policy, 62 * MINUTE).unwrap();
    assert_eq!(claimed.status(62 * MINUTE), "claimed");
    let decided = apply(
        &claimed,
        approve("9000", "0.15"),
        &sue(),
        &policy,
        63 * MINUTE,
    )
    .unwrap();
    assert_eq!(decided.status(63 * MINUTE), "decided");
}

#[test]
fn more_information_returns_the_case_to_the_queue() {
    let case = run(vec![
        (ann(), Command::Claim, 0, Ok(CaseState::Open)),
        (
            ann(),
            Command::RequestInfo {
                note: String::new(),
            },
            0,
            Err(ReviewError::NoteRequired),
        ),
        (
            ann(),
            Command::RequestInfo {
                note: "asked for three months of bank statements".into(),
            },
            MINUTE,
            Ok(CaseState::MoreInfoRequested),
        ),
        (
            bob(),
            Command::Claim,
            2 * MINUTE,
            Ok(CaseState::MoreInfoRequested),
        ),
        (
            bob(),
            approve("7000", "0.12"),
            3 * MINUTE,
            Ok(CaseState::Decided),
        ),
    ]);
    assert_eq!(case.history.len(), 5);
    assert!(case.history.iter().all(|e| e.at_ms <= 3 * MINUTE));
}
