//! Evaluating `data` steps: the recorded answer, or online a request for it; failures by the source's policy.

use super::*;

impl<'s> Run<'s> {
    /// A data step: the recorded answer (or, online, a request for it), published as an object
    /// of the source's fields plus `available`; a failure contributes the source's policy.
    pub(super) fn data_step(
        &mut self,
        step: &'s DataStep,
        frame: &mut Frame,
    ) -> Result<(), EngineError> {
        let lists = &self.strategy.lists;
        let source = &step.source;
        let active = match &step.when {
            Some(when) => self.condition(when, frame, &step.id, || "when".into())?,
            None => true,
        };
        let mut status = "skipped";
        let mut reason = None;
        let mut values = crate::data::DataValues::default();
        let mut meta = serde_json::Value::Null;
        let mut subject = None;
        if active {
            subject = match step
                .subject
                .eval(frame, lists)
                .map_err(|e| self.error(&step.id, format!("subject: {e}")))?
                .kind()
            {
                ValueRef::String(s) if !s.is_empty() => Some(s.to_string()),
                ValueRef::Number(n) => Some(n.normalize().to_string()),
                _ => None,
            };
            match (self.data.get(&step.id), &subject) {
                (None, Some(key)) if self.data.is_online() => {
                    let consent = self.consent(step, frame);
                    self.needs.push(DataRequest {
                        step: step.id.to_string(),
                        source: source.name.to_string(),
                        subject: key.clone(),
                        consent,
                    });
                    return Err(self.error(&step.id, "waiting for the source's answer"));
                }
                (_, None) => {
                    status = "failed";
                    reason = Some(format!(
                        "no subject: {} is empty, so the source cannot be asked",
                        source.subject_field
                    ));
                }
                (None, Some(_)) => {
                    status = "failed";
                    reason = Some(
                        "not fetched: offline evaluations (replays, back-tests, cases) never call a provider"
                            .into(),
                    );
                }
                (Some(answer), Some(_)) => {
                    meta = answer.meta.clone();
                    if answer.ok {
                        status = "ok";
                        values = answer.values.clone();
                    } else {
                        status = "failed";
                        reason = Some(
                            answer
                                .reason
                                .clone()
                                .unwrap_or_else(|| "the source gave no answer".into()),
                        );
                    }
                }
            }
        }
        let ok = status == "ok";
        // The first value that does not fit its declared kind (the evaluation then fails).
        let mut misfit = None;
        let entries = source.fields.iter().map(|field| {
            let value = match values.get(&field.name).or(field.default.as_ref()) {
                Some(json) if ok => data_value(field.kind, json).unwrap_or_else(|| {
                    misfit.get_or_insert_with(|| {
                        format!(
                            "{}: {} should be {}",
                            field.name,
                            json,
                            crate::data::kind_name(field.kind)
                        )
                    });
                    Value::NULL
                }),
                _ => Value::NULL,
            };
            (field.name.as_str(), value)
        });
        frame.set_object(
            step.slot,
            entries.chain(std::iter::once(("available", Value::bool(ok)))),
        );
        if let Some(message) = misfit {
            return Err(self.error(&step.id, message));
        }
        if status == "failed" {
            let (outcome, code) = match &source.on_failure {
                FailurePolicy::Refer(code) => (Some(Outcome::Refer), Some(code.clone())),
                FailurePolicy::Decline(code) => (Some(Outcome::Decline), Some(code.clone())),
                FailurePolicy::Continue => (None, None),
            };
            if let Some(outcome) = outcome {
                self.contributions.push(Contribution {
                    outcome,
                    reason: code,
                    explain_with: None,
                });
            }
        }
        // The values are copied into the trace only for a full trace.
        let traced_values = if self.full {
            values.as_ref().clone()
        } else {
            BTreeMap::new()
        };
        self.record(
            &step.id,
            StepDetail::Data {
                source: source.name.clone(),
                status,
                reason: reason.clone(),
            },
            || traced_values,
        );
        self.data_uses.push(DataUse {
            step: step.id.clone(),
            source: source.name.clone(),
            status,
            subject,
            values,
            reason,
            meta,
        });
        Ok(())
    }
}
