//! `rule_set` steps: rules whose conditions give outcomes, reason codes and account actions.

mod compile;
mod eval;
pub(crate) mod raw;

use crate::steps::prelude::*;
pub(crate) use raw::*;

/// A compiled `rule_set` step.
#[derive(Debug)]
pub struct RuleSetStep {
    /// The step's id.
    pub id: Arc<str>,
    /// Where its result object goes.
    pub slot: Slot,
    /// Stop at the first rule that declines.
    pub stop_on_first_decline: bool,
    /// The rules, in order.
    pub rules: Vec<Rule>,
}

/// One compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// The rule's id.
    pub id: Arc<str>,
    /// When it fires.
    pub when: Expr,
    /// What it contributes when it fires.
    pub outcome: RawRuleOutcome,
    /// Its reason code.
    pub reason: Arc<str>,
    /// The scorecard whose ranked reasons explain this rule's outcome.
    pub explain_with: Option<String>,
    /// What it does to a credit account when it fires (in-loan flows).
    pub actions: Vec<AccountAction>,
}

step_kind!(RuleSetStep, key: "rule_set", raw: RawRuleSet, compile: rule_set, evaluate: rule_set);
