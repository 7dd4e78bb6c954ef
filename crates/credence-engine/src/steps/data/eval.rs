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
        let mut status = Status::Skipped;
        let mut reason: Option<Arc<str>> = None;
        let mut values = crate::data::no_data_values();
        let mut meta = None;
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
                    status = Status::Failed;
                    reason = Some(Arc::from(format!(
                        "no subject: {} is empty, so the source cannot be asked",
                        source.subject_field
                    )));
                }
                (None, Some(_)) => {
                    status = Status::Failed;
                    reason = Some(Arc::clone(&NOT_FETCHED));
                }
                (Some(answer), Some(_)) => {
                    meta = answer.meta.clone();
                    if answer.ok {
                        status = Status::Ok;
                        values = answer.values.clone();
                    } else {
                        status = Status::Failed;
                        reason = Some(match &answer.reason {
                            Some(text) => Arc::from(text.as_str()),
                            None => Arc::clone(&NO_ANSWER),
                        });
                    }
                }
            }
        }
        let ok = status == Status::Ok;
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
        if status == Status::Failed {
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
                status: status.as_str(),
                reason: reason.clone(),
            },
            || traced_values,
        );
        self.data_uses.push(DataUse {
            step: step.id.clone(),
            source: source.name.clone(),
            status: status.as_str(),
            subject,
            values,
            reason,
            meta,
        });
        Ok(())
    }
}

/// What became of a data step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Its `when` did not hold: nobody was asked.
    Skipped,
    /// No usable answer; the source's failure policy applies.
    Failed,
    /// The answer's values are used.
    Ok,
}

impl Status {
    /// As the decision records it.
    fn as_str(self) -> &'static str {
        match self {
            Status::Skipped => "skipped",
            Status::Failed => "failed",
            Status::Ok => "ok",
        }
    }
}

/// The reason an offline evaluation gives for a step without a recorded answer (shared: not
/// allocated again for each decision of a back-test).
static NOT_FETCHED: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| {
    Arc::from("not fetched: offline evaluations (replays, back-tests, cases) never call a provider")
});

/// The reason for a failed answer that gave none.
static NO_ANSWER: std::sync::LazyLock<Arc<str>> =
    std::sync::LazyLock::new(|| Arc::from("the source gave no answer"));
