//! `rule_set` steps as written: rules with conditions, outcomes and reason codes.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuleSet {
    pub id: String,
    #[serde(default)]
    pub stop_on_first_decline: bool,
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: String,
    pub when: String,
    pub outcome: RawRuleOutcome,
    pub reason: String,
    /// A scorecard or model step whose ranked reasons follow this rule's own when it decides
    /// the outcome (a score cut-off rule explains itself with the score's weakest characteristics).
    #[serde(default)]
    pub explain_with: Option<String>,
    /// What to do to the credit account when this rule fires (in-loan flows).
    #[serde(default)]
    pub actions: Vec<crate::decision::AccountAction>,
    /// For the people who read the package; the engine does not use it.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawRuleOutcome {
    Decline,
    Refer,
    Flag,
}
