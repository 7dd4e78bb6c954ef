//! Compiling `data` steps: the source, the subject and the failure policy.

use super::*;

impl Compiler<'_> {
    /// A data step: its source must be declared, and the source's subject (and consent) fields
    /// must be in scope where the step runs.
    pub(super) fn data_step(
        &mut self,
        raw: &RawDataStep,
        path: &str,
        scope: &mut Scope,
    ) -> Option<DataStep> {
        let Some(source) = self.data_sources.get(&raw.source).cloned() else {
            let known: Vec<&str> = self.data_sources.keys().map(String::as_str).collect();
            self.problem(
                self.at(&format!("{path}.source")),
                format!(
                    "no data source {}; declare it under data_sources in {MANIFEST} (declared: {})",
                    raw.source,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            return None;
        };
        let when = match &raw.when {
            Some(text) => Some(self.expr(text, &format!("{path}.when"), scope)?),
            None => None,
        };
        let subject = self.expr(
            &source.subject_field,
            &format!("{path} (subject of {})", raw.source),
            scope,
        )?;
        let consent = match &source.consent_field {
            Some(field) => {
                Some(self.expr(field, &format!("{path} (consent of {})", raw.source), scope)?)
            }
            None => None,
        };
        self.define(&raw.id, path, scope);
        Some(DataStep {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            source,
            when,
            subject,
            consent,
            fetch_with_previous: false,
        })
    }
}
