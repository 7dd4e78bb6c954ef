//! Embedded test cases: each package carries inputs with expected decisions, run by `credence validate`.

use crate::compile::CompiledStrategy;
use crate::decision::{Decision, Outcome};
use crate::eval::EvalOptions;
use chrono::NaiveDate;
use rust_decimal::Decimal;

#[derive(Debug, Clone)]
pub struct TestCase {
    pub name: String,
    /// The test file the case is written in.
    pub file: String,
    pub flow: String,
    pub as_of: NaiveDate,
    pub input: serde_json::Value,
    /// Answers of the flow's data steps (offline: a step without one fails by its policy).
    pub data: crate::data::DataRecord,
    pub expect: Expectation,
}

/// What a case expects; fields left out are not checked.
#[derive(Debug, Clone)]
pub struct Expectation {
    pub outcome: Outcome,
    pub limit: Option<Decimal>,
    pub apr: Option<Decimal>,
    pub term_months: Option<u32>,
    pub reasons: Option<Vec<String>>,
    pub flags: Option<Vec<String>>,
    pub arm: Option<String>,
    pub counter_offer: Option<bool>,
    pub refer_queue: Option<String>,
    pub actions: Option<Vec<String>>,
}

/// One field of a decision that differs from the case's expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub field: &'static str,
    pub expected: String,
    pub got: String,
}

#[derive(Debug, Clone)]
pub struct CaseResult {
    pub name: String,
    pub file: String,
    pub flow: String,
    /// Empty when the case passed.
    pub mismatches: Vec<Mismatch>,
    /// Set when the case could not be decided at all (invalid input, evaluation error).
    pub error: Option<String>,
}

impl CaseResult {
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

impl CompiledStrategy {
    /// The package's embedded cases.
    pub fn cases(&self) -> &[TestCase] {
        &self.cases
    }

    /// Runs every embedded case.
    pub fn run_cases(&self) -> Vec<CaseResult> {
        self.cases
            .iter()
            .map(|case| {
                let options = EvalOptions {
                    as_of: case.as_of,
                    ..EvalOptions::default()
                };
                let decided = self
                    .validate_input(&case.flow, &case.input)
                    .and_then(|input| self.evaluate(&case.flow, &input, &options, &case.data));
                let (mismatches, error) = match decided {
                    Ok(crate::data::Evaluation::Decided(decision)) => {
                        (compare(&case.expect, &decision), None)
                    }
                    Ok(crate::data::Evaluation::NeedsData(requests)) => (
                        Vec::new(),
                        Some(format!(
                            "data step {} has no answer",
                            requests.first().map_or("?", |r| r.step.as_str())
                        )),
                    ),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                };
                CaseResult {
                    name: case.name.clone(),
                    file: case.file.clone(),
                    flow: case.flow.clone(),
                    mismatches,
                    error,
                }
            })
            .collect()
    }
}
