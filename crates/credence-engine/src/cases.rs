//! Embedded test cases: each package carries inputs with expected decisions, run by `credence validate`.

use crate::decision::{Decision, Outcome};
use chrono::NaiveDate;
use rust_decimal::Decimal;

/// An embedded test case: an input and the decision expected for it.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// The case's name.
    pub name: String,
    /// The test file the case is written in.
    pub file: String,
    /// The flow it runs.
    pub flow: String,
    /// The date it is decided as of.
    pub as_of: NaiveDate,
    /// The flow's input.
    pub input: serde_json::Value,
    /// Answers of the flow's data steps (offline: a step without one fails by its policy).
    pub data: crate::data::DataRecord,
    /// What the decision must be.
    pub expect: Expectation,
}

/// What a case expects; fields left out are not checked.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// The outcome.
    pub outcome: Outcome,
    /// The limit offered.
    pub limit: Option<Decimal>,
    /// The APR offered.
    pub apr: Option<Decimal>,
    /// The term offered.
    pub term_months: Option<u32>,
    /// The reason codes, in order.
    pub reasons: Option<Vec<String>>,
    /// The flags raised.
    pub flags: Option<Vec<String>>,
    /// The experiment arm taken.
    pub arm: Option<String>,
    /// Whether the offer is a counter-offer.
    pub counter_offer: Option<bool>,
    /// The review queue of a referral.
    pub refer_queue: Option<String>,
    /// The account actions.
    pub actions: Option<Vec<String>>,
}

/// One field of a decision that differs from the case's expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The decision's field.
    pub field: &'static str,
    /// What the case expects.
    pub expected: String,
    /// What the decision has.
    pub got: String,
}

/// What running one case gave.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// The file it is written in.
    pub file: String,
    /// The flow it ran.
    pub flow: String,
    /// Empty when the case passed.
    pub mismatches: Vec<Mismatch>,
    /// Set when the case could not be decided at all (invalid input, evaluation error).
    pub error: Option<String>,
}

impl CaseResult {
    /// Whether the decision matched and nothing failed.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty() && self.error.is_none()
    }
}

fn show_decimal(d: Option<Decimal>) -> String {
    d.map_or("none".into(), |d| d.normalize().to_string())
}

/// Compares a decision with an expectation; money is compared as exact decimals.
pub fn compare(expect: &Expectation, decision: &Decision) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    let mut check = |field: &'static str, expected: String, got: String| {
        if expected != got {
            mismatches.push(Mismatch {
                field,
                expected,
                got,
            });
        }
    };
    check(
        "outcome",
        expect.outcome.as_str().into(),
        decision.outcome.as_str().into(),
    );
    if let Some(limit) = expect.limit {
        check(
            "limit",
            show_decimal(Some(limit)),
            show_decimal(decision.limit),
        );
    }
    if let Some(apr) = expect.apr {
        check("apr", show_decimal(Some(apr)), show_decimal(decision.apr));
    }
    if let Some(term) = expect.term_months {
        check(
            "term_months",
            term.to_string(),
            decision
                .term_months
                .map_or("none".into(), |t| t.to_string()),
        );
    }
    if let Some(reasons) = &expect.reasons {
        let got: Vec<&str> = decision.reasons.iter().map(|r| &*r.code).collect();
        check(
            "reasons",
            format!("[{}]", reasons.join(", ")),
            format!("[{}]", got.join(", ")),
        );
    }
    if let Some(flags) = &expect.flags {
        check(
            "flags",
            format!("[{}]", flags.join(", ")),
            format!("[{}]", decision.flags.join(", ")),
        );
    }
    if let Some(actions) = &expect.actions {
        let got: Vec<&str> = decision.actions.iter().map(|a| a.as_str()).collect();
        check(
            "actions",
            format!("[{}]", actions.join(", ")),
            format!("[{}]", got.join(", ")),
        );
    }
    if let Some(arm) = &expect.arm {
        check(
            "arm",
            arm.clone(),
            decision.arm.as_deref().unwrap_or("none").to_string(),
        );
    }
    if let Some(counter_offer) = expect.counter_offer {
        check(
            "counter_offer",
            counter_offer.to_string(),
            decision.counter_offer.to_string(),
        );
    }
    if let Some(queue) = &expect.refer_queue {
        check(
            "refer_queue",
            queue.clone(),
            decision
                .referral
                .as_ref()
                .map_or("none".into(), |r| r.queue.clone()),
        );
    }
    mismatches
}
