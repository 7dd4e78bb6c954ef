//! Evaluating `rule_set` steps.

use super::*;

impl<'s> Run<'s> {
    /// A `rule_set` step: every rule's condition, the worst outcome and its reasons.
    pub(super) fn rule_set(
        &mut self,
        step: &'s RuleSetStep,
        frame: &mut Frame,
    ) -> Result<(), EngineError> {
        let RuleSetStep {
            id,
            slot,
            stop_on_first_decline,
            rules,
        } = step;
        let mut hits = Vec::new();
        let mut worst: Option<Outcome> = None;
        for rule in rules {
            let fired = self.condition(&rule.when, frame, id, || format!("rule {}", rule.id))?;
            if !fired {
                continue;
            }
            let outcome = match rule.outcome {
                RawRuleOutcome::Decline => Some(Outcome::Decline),
                RawRuleOutcome::Refer => Some(Outcome::Refer),
                RawRuleOutcome::Flag => None,
            };
            for action in &rule.actions {
                if !self.actions.contains(action) {
                    self.actions.push(*action);
                }
            }
            hits.push(RuleHit {
                rule: rule.id.clone(),
                outcome: match rule.outcome {
                    RawRuleOutcome::Decline => "decline",
                    RawRuleOutcome::Refer => "refer",
                    RawRuleOutcome::Flag => "flag",
                },
                reason: rule.reason.clone(),
            });
            match outcome {
                Some(outcome) => {
                    worst = worst.max(Some(outcome));
                    self.contributions.push(Contribution {
                        outcome,
                        reason: Some(rule.reason.clone()),
                        explain_with: rule.explain_with.as_deref(),
                    });
                }
                None => {
                    if !self.flags.contains(&rule.reason) {
                        self.flags.push(rule.reason.clone());
                    }
                }
            }
            if *stop_on_first_decline && outcome == Some(Outcome::Decline) {
                break;
            }
        }
        frame.set_object(
            *slot,
            [
                (
                    "outcome",
                    worst.map_or(Value::NULL, |o| Value::string(o.as_str())),
                ),
                ("hits", Value::number(Decimal::from(hits.len()))),
            ],
        );
        self.record(id, StepDetail::RuleSet { hits }, BTreeMap::new);
        Ok(())
    }
}
