//! Assembling the decision from a run: the outcome, offer and reasons under the package's caps.

use super::*;

impl<'s> Run<'s> {
    pub(super) fn decimal_output(
        &self,
        frame: &mut Frame,
        expr: Option<&credence_expr::Expr>,
        what: &str,
    ) -> Result<Option<Decimal>, EngineError> {
        let Some(expr) = expr else { return Ok(None) };
        let value = expr
            .eval(frame, &self.strategy.lists)
            .map_err(|e| self.error("outcome", format!("{what}: {e}")))?;
        value_decimal(&value, what).map_err(|e| self.error("outcome", e))
    }

    /// Puts the decision together: the most severe contribution wins, the offer is bounded by
    /// the caps, and an offer under the minimum becomes a decline.
    pub(super) fn assemble(
        &mut self,
        frame: &mut Frame,
        options: &EvalOptions,
        as_of: String,
    ) -> Result<Decision, EngineError> {
        let spec = &self.flow.outcome;
        let caps = &self.strategy.caps;
        let mut outcome = self
            .contributions
            .iter()
            .map(|c| c.outcome)
            .max()
            .unwrap_or(spec.default);
        let mut reason_codes: Vec<Arc<str>> = Vec::new();
        let push_reason = |codes: &mut Vec<Arc<str>>, code: &Arc<str>| {
            if !codes.iter().any(|c| c == code) {
                codes.push(code.clone());
            }
        };
        for contribution in &self.contributions {
            if contribution.outcome == outcome {
                if let Some(reason) = &contribution.reason {
                    push_reason(&mut reason_codes, reason);
                }
            }
        }
        let mut caps_applied = Vec::new();
        let (mut limit, mut apr, mut term_months) = (None, None, None);
        if outcome != Outcome::Decline {
            limit = self.decimal_output(frame, spec.limit.as_ref(), "limit")?;
            apr = self.decimal_output(frame, spec.apr.as_ref(), "apr")?;
            let term = self.decimal_output(frame, spec.term_months.as_ref(), "term_months")?;
            let mut cap = |value: &mut Option<Decimal>, bound: Option<Decimal>, name: &str| {
                if let (Some(v), Some(b)) = (*value, bound) {
                    if v > b {
                        caps_applied.push(CapApplied {
                            cap: name.to_string(),
                            before: v,
                            after: b,
                        });
                        *value = Some(b);
                    }
                }
            };
            cap(&mut limit, caps.limit_max, "limit_max");
            cap(&mut apr, caps.apr_max, "apr_max");
            let mut term = term.map(|t| t.floor());
            cap(
                &mut term,
                caps.term_months_max.map(Decimal::from),
                "term_months_max",
            );
            term_months = match term {
                None => None,
                Some(t) => Some(t.to_u32().filter(|t| *t > 0).ok_or_else(|| {
                    self.error(
                        "outcome",
                        format!("term_months must be a positive whole number, got {t}"),
                    )
                })?),
            };
            if let Some(l) = limit {
                if l < Decimal::ZERO {
                    limit = Some(Decimal::ZERO);
                }
            }
            if let (Outcome::Approve, Some(min), Some(l)) = (outcome, caps.limit_min, limit) {
                if l < min {
                    outcome = Outcome::Decline;
                    reason_codes.clear();
                    if let Some(code) = &caps.below_limit_min_reason {
                        push_reason(&mut reason_codes, code);
                    }
                }
            }
        }
        if outcome == Outcome::Decline {
            limit = None;
            apr = None;
            term_months = None;
        }
        // Rules that decided the outcome may be explained by a scorecard's weakest
        // characteristics or a model's strongest adverse factors (computed only here, for the
        // declines and referrals that need them).
        for contribution in &self.contributions {
            let Some(explainer) = contribution
                .explain_with
                .filter(|_| contribution.outcome == outcome)
            else {
                continue;
            };
            if let Some((_, explainer)) = self.explainers.iter().find(|(id, _)| *id == explainer) {
                for code in explainer.ranked_reasons() {
                    push_reason(&mut reason_codes, &code);
                }
            }
        }
        if outcome == Outcome::Approve {
            reason_codes.clear();
            // An approval that worsens the terms (a lower limit, a higher rate) says why: the
            // reasons of every adverse entry that holds, then the steps that explain them.
            let mut explain: Vec<&str> = Vec::new();
            for adverse in &spec.adverse {
                if self.condition(&adverse.when, frame, "outcome", || "adverse.when".into())? {
                    push_reason(&mut reason_codes, &adverse.reason);
                    if let Some(step) = adverse.explain_with.as_deref() {
                        if !explain.contains(&step) {
                            explain.push(step);
                        }
                    }
                }
            }
            for step in explain {
                if let Some((_, explainer)) = self.explainers.iter().find(|(id, _)| *id == step) {
                    for code in explainer.ranked_reasons() {
                        push_reason(&mut reason_codes, &code);
                    }
                }
            }
        }
        reason_codes.truncate(self.strategy.max_reasons);
        // What was asked for, by the outcome mapping: an approval needs it (a counter-offer is
        // an approval below it); on another outcome a mapping that cannot be evaluated (an
        // optional request left out) only leaves it unknown.
        let requested_amount =
            match self.decimal_output(frame, spec.requested_amount.as_ref(), "requested_amount") {
                Ok(requested) => requested.map(|d| d.normalize()),
                Err(error) if outcome == Outcome::Approve && limit.is_some() => return Err(error),
                Err(_) => None,
            };
        let counter_offer = match (outcome, limit, requested_amount) {
            (Outcome::Approve, Some(l), Some(requested)) => l < requested,
            _ => false,
        };
        let referral = if outcome == Outcome::Refer {
            let queue = match &spec.refer_queue {
                Some(source) => source
                    .eval(frame, &self.strategy.lists)
                    .map_err(|e| self.error("outcome", e.to_string()))?
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
                None => "default".to_string(),
            };
            let priority = self
                .decimal_output(frame, spec.refer_priority.as_ref(), "refer.priority")?
                .and_then(|p| p.trunc().to_i64())
                .unwrap_or(0);
            Some(Referral { queue, priority })
        } else {
            None
        };
        let reasons = reason_codes
            .into_iter()
            .map(|code| Reason {
                text: self.strategy.reason_text(&code, &options.language),
                code,
            })
            .collect();
        Ok(Decision {
            outcome,
            counter_offer,
            limit: limit.map(|d| d.normalize()),
            apr: apr.map(|d| d.normalize()),
            term_months,
            requested_amount,
            reasons,
            flags: std::mem::take(&mut self.flags),
            actions: std::mem::take(&mut self.actions),
            data: std::mem::take(&mut self.data_uses),
            referral,
            arm: self.arm.clone(),
            strategy: self.strategy.name.clone(),
            strategy_version: self.strategy.version.clone(),
            flow: self.flow.name.clone(),
            as_of,
            shadow: Vec::new(),
            trace: Trace {
                steps: std::mem::take(&mut self.steps),
                caps_applied,
                input: None,
            },
        })
    }
}
