//! What a rule tested: its condition, the names it reads and, through the features among them, the figures those are computed from — for a reviewer's summary of a referral.
//!
//! A referral rule such as `income_inconsistent` reads one boolean feature; the reviewer needs
//! the declared and verified incomes and the gap behind it. [`CompiledStrategy::rule_evidence`]
//! follows the features a condition reads down to the inputs and earlier steps they are
//! computed from, a few levels deep, so that a case page can show those figures with their
//! values from the decision's trace.

use crate::compile::CompiledStrategy;
use crate::steps::Step;
use credence_expr::Expr;
use std::collections::HashMap;

/// How many levels of features below the condition are followed.
const DEPTH: usize = 2;
/// The most names one rule's evidence lists.
const MAX_NAMES: usize = 12;

/// A rule's condition and the names behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEvidence {
    /// The condition as written.
    pub condition: String,
    /// The names the condition reads, then those the features among them read (breadth
    /// first, each once, `today` left out): inputs, features and earlier steps' ids.
    pub names: Vec<String>,
}

impl CompiledStrategy {
    /// The evidence of rule `rule_id` of `flow` (in any rule set, nested ones included);
    /// `None` when the flow has no such rule.
    pub fn rule_evidence(&self, flow: &str, rule_id: &str) -> Option<RuleEvidence> {
        let flow = self.flows.get(flow)?;
        let mut features: HashMap<&str, &Expr> = HashMap::new();
        let mut condition = None;
        visit(&flow.steps, &mut |step| match step {
            Step::Features(f) => {
                for (name, _, expr) in &f.order {
                    features.insert(name, expr);
                }
            }
            Step::RuleSet(r) => {
                if let Some(rule) = r.rules.iter().find(|rule| &*rule.id == rule_id) {
                    condition.get_or_insert(&rule.when);
                }
            }
            _ => {}
        });
        let condition = condition?;
        let mut names: Vec<String> = Vec::new();
        let mut level: Vec<&str> = condition.references().iter().map(String::as_str).collect();
        for depth in 0..=DEPTH {
            let mut next = Vec::new();
            for name in level {
                if name == "today" || names.iter().any(|n| n == name) {
                    continue;
                }
                if names.len() == MAX_NAMES {
                    break;
                }
                names.push(name.to_string());
                if depth < DEPTH {
                    if let Some(expr) = features.get(name) {
                        next.extend(expr.references().iter().map(String::as_str));
                    }
                }
            }
            level = next;
        }
        Some(RuleEvidence {
            condition: condition.text().to_string(),
            names,
        })
    }
}

/// Calls `f` on every step of `steps`, nested ones (branch cases, experiment arms) included.
fn visit<'s>(steps: &'s [Step], f: &mut impl FnMut(&'s Step)) {
    for step in steps {
        f(step);
        match step {
            Step::Branch(b) => {
                for case in &b.cases {
                    visit(&case.steps, f);
                }
            }
            Step::Experiment(e) => {
                for arm in e.arms.iter().chain(&e.shadow) {
                    visit(&arm.steps, f);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::tests::example;

    #[test]
    fn a_referral_rule_leads_to_the_figures_behind_its_feature() {
        let evidence = example()
            .rule_evidence("application", "RF-01")
            .expect("RF-01 exists");
        assert_eq!(evidence.condition, "income_inconsistent");
        assert_eq!(evidence.names[0], "income_inconsistent");
        for name in ["income_gap", "declared_monthly_income", "verified_income"] {
            assert!(
                evidence.names.iter().any(|n| n == name),
                "{name} in {:?}",
                evidence.names
            );
        }
        assert!(evidence.names.len() <= super::MAX_NAMES);
    }

    #[test]
    fn rules_in_nested_steps_are_found_and_unknown_ones_are_none() {
        assert!(example().rule_evidence("application", "SP-01").is_some());
        assert!(example().rule_evidence("application", "NO-SUCH").is_none());
        assert!(example().rule_evidence("no_such_flow", "RF-01").is_none());
    }
}
