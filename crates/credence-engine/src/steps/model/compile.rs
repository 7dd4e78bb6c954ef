//! Compiling `model` steps: the model's features mapped to expressions, reason codes.

use super::*;

impl Compiler<'_> {
    pub(super) fn model(
        &mut self,
        raw: &RawModelStep,
        path: &str,
        scope: &mut Scope,
    ) -> Option<ModelStep> {
        let Some(model) = self.models.get(&raw.model).cloned() else {
            self.problem(
                self.at(&format!("{path}.model")),
                format!(
                    "no model named {}; declare it under models in {MANIFEST}",
                    raw.model
                ),
            );
            return None;
        };
        let features = &model.metadata().features;
        let mut inputs = Vec::new();
        for feature in features {
            match raw.inputs.get(feature) {
                Some(text) => {
                    inputs.extend(self.expr(text, &format!("{path}.inputs.{feature}"), scope))
                }
                None => self.problem(
                    self.at(&format!("{path}.inputs")),
                    format!(
                        "model {} needs feature {feature}; map it to an expression",
                        raw.model
                    ),
                ),
            }
        }
        for name in raw.inputs.keys() {
            if !features.contains(name) {
                self.problem(
                    self.at(&format!("{path}.inputs.{name}")),
                    format!(
                        "model {} has no feature {name}; its features are {}",
                        raw.model,
                        features.join(", ")
                    ),
                );
            }
        }
        for (feature, code) in &raw.reasons {
            let reason_path = format!("{path}.reasons.{feature}");
            if !features.contains(feature) {
                self.problem(
                    self.at(&reason_path),
                    format!("model {} has no feature {feature}", raw.model),
                );
            }
            self.reason(code, &reason_path, ReasonUse::Explain);
        }
        if !raw.reasons.is_empty() && model.objective().classes() > 1 {
            self.problem(
                self.at(&format!("{path}.reasons")),
                format!(
                    "model {} is a multi-class model ({} classes): reason codes rank features by how far they push one score towards bad, which a multi-class model does not have; remove reasons, or explain the decision with a scorecard or a binary model",
                    raw.model,
                    model.objective().classes()
                ),
            );
        } else if !raw.reasons.is_empty() && !model.has_contributions() {
            self.problem(
                self.at(&format!("{path}.reasons")),
                format!(
                    "model {} has linear trees, for which TreeSHAP (and so reason codes) is not defined; remove reasons, or retrain without linear_tree",
                    raw.model
                ),
            );
        }
        let reasons = features
            .iter()
            .map(|f| raw.reasons.get(f).map(|code| Arc::from(code.as_str())))
            .collect();
        self.define(&raw.id, path, scope);
        if !raw.reasons.is_empty() {
            self.explainer_ids.insert(raw.id.clone());
        }
        (inputs.len() == features.len()).then(|| {
            let metadata = model.metadata();
            let identity = ModelIdentity {
                name: metadata.name.as_str().into(),
                version: metadata.version.as_str().into(),
                sha256: metadata.sha256.as_str().into(),
                format: metadata.format.as_str().into(),
                objective: metadata.objective.as_str().into(),
            };
            ModelStep {
                id: raw.id.as_str().into(),
                slot: self.exprs.slot(&raw.id),
                model,
                inputs,
                reasons,
                identity,
            }
        })
    }
}
