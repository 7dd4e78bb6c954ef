//! Compiling `rule_set` steps: conditions, outcomes and reason codes.

use super::*;

impl Compiler<'_> {
    pub(super) fn rule_set(
        &mut self,
        raw: &RawRuleSet,
        path: &str,
        scope: &mut Scope,
    ) -> Option<RuleSetStep> {
        let mut rules = Vec::new();
        let mut ids = HashSet::new();
        for (i, rule) in raw.rules.iter().enumerate() {
            let rule_path = format!("{path}.rules[{i}] ({})", rule.id);
            if !ids.insert(rule.id.as_str()) {
                self.problem(
                    self.at(&rule_path),
                    format!("rule id {} is used twice", rule.id),
                );
            }
            self.reason(
                &rule.reason,
                &rule_path,
                match rule.outcome {
                    RawRuleOutcome::Decline => ReasonUse::Decline,
                    RawRuleOutcome::Refer => ReasonUse::Refer,
                    RawRuleOutcome::Flag => ReasonUse::Flag,
                },
            );
            if let Some(scorecard) = &rule.explain_with {
                if !self.explainer_ids.contains(scorecard) {
                    self.problem(
                        self.at(&format!("{rule_path}.explain_with")),
                        format!("{scorecard} is not a scorecard step, or a model step with reasons, that runs before this rule"),
                    );
                }
            }
            if let Some(when) = self.expr(&rule.when, &format!("{rule_path}.when"), scope) {
                rules.push(Rule {
                    id: rule.id.as_str().into(),
                    when,
                    outcome: rule.outcome,
                    reason: rule.reason.as_str().into(),
                    explain_with: rule.explain_with.clone(),
                    actions: rule.actions.clone(),
                });
            }
        }
        self.define(&raw.id, path, scope);
        Some(RuleSetStep {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            stop_on_first_decline: raw.stop_on_first_decline,
            rules,
        })
    }

    /// Checks outputs named `outcome` and `reason`: literal outcomes must be known and a
    /// literal decline or refer needs a literal reason code.
    pub(crate) fn check_outcome_cells(
        &mut self,
        outcome: Option<&ValueSource>,
        reason: Option<&ValueSource>,
        path: &str,
    ) {
        if let Some(ValueSource::Constant(c)) = outcome {
            let text = c.as_str().unwrap_or_default();
            match Outcome::parse(text) {
                None => self.problem(
                    self.at(path),
                    format!("outcome must be approve, refer or decline, got {c:?}"),
                ),
                Some(Outcome::Decline | Outcome::Refer) => {
                    match reason.and_then(ValueSource::constant) {
                        Some(Constant::String(code)) => self.reason(
                            code,
                            path,
                            if text == "decline" {
                                ReasonUse::Decline
                            } else {
                                ReasonUse::Refer
                            },
                        ),
                        Some(Constant::Null) | None
                            if reason.is_none_or(|r| r.constant().is_some()) =>
                        {
                            self.problem(
                                self.at(path),
                                format!("a {text} needs a reason code in the `reason` output"),
                            )
                        }
                        _ => {}
                    }
                }
                Some(Outcome::Approve) => {}
            }
        }
    }
}
