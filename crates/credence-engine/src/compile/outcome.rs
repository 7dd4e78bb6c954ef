//! Compiling a flow's outcome: defaults, offers and adverse-action settings.

use super::*;

impl Compiler<'_> {
    pub(super) fn outcome(&mut self, raw: &RawOutcome, scope: &Scope) -> Option<OutcomeSpec> {
        let before = self.problems.len();
        let default = Outcome::parse(&raw.default).or_else(|| {
            self.problem(
                self.at("outcome.default"),
                format!("must be approve, refer or decline, got {}", raw.default),
            );
            None
        });
        let optional = |compiler: &mut Self, text: &Option<String>, field: &str| -> Option<Expr> {
            text.as_ref()
                .and_then(|t| compiler.expr(t, &format!("outcome.{field}"), scope))
        };
        let limit = optional(self, &raw.limit, "limit");
        let apr = optional(self, &raw.apr, "apr");
        let term_months = optional(self, &raw.term_months, "term_months");
        let requested_amount = optional(self, &raw.requested_amount, "requested_amount");
        let (refer_queue, refer_priority) = match &raw.refer {
            Some(refer) => {
                let queue = match ValueSource::compile(
                    &serde_yaml_ng::Value::String(refer.queue.clone()),
                    &mut self.exprs,
                ) {
                    Ok(q) => {
                        self.check_references(q.references(), "outcome.refer.queue", scope);
                        Some(q)
                    }
                    Err(e) => {
                        self.problem(self.at("outcome.refer.queue"), e);
                        None
                    }
                };
                (queue, optional(self, &refer.priority, "refer.priority"))
            }
            None => (None, None),
        };
        let mut adverse = Vec::new();
        for (i, entry) in raw.adverse.iter().enumerate() {
            let path = format!("outcome.adverse[{i}]");
            self.reason(&entry.reason, &path, ReasonUse::Explain);
            if let Some(step) = &entry.explain_with {
                if !self.explainer_ids.contains(step) {
                    self.problem(
                        self.at(&format!("{path}.explain_with")),
                        format!("{step} is not a scorecard step, or a model step with reasons, in this flow"),
                    );
                }
            }
            if let Some(when) = optional(
                self,
                &Some(entry.when.clone()),
                &format!("adverse[{i}].when"),
            ) {
                adverse.push(AdverseSpec {
                    when,
                    reason: entry.reason.as_str().into(),
                    explain_with: entry.explain_with.clone(),
                });
            }
        }
        if self.problems.len() > before {
            return None;
        }
        Some(OutcomeSpec {
            adverse,
            default: default?,
            limit,
            apr,
            term_months,
            requested_amount,
            refer_queue,
            refer_priority,
        })
    }
}
