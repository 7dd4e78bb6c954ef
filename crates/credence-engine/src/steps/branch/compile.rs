//! Compiling `branch` steps: cases and their nested steps.

use super::*;

impl Compiler<'_> {
    pub(super) fn branch(
        &mut self,
        raw: &RawBranch,
        path: &str,
        scope: &mut Scope,
    ) -> Option<BranchStep> {
        let mut cases = Vec::new();
        let mut union = scope.clone();
        for (i, case) in raw.cases.iter().enumerate() {
            let case_path = format!("{path}.cases[{i}] ({})", case.name);
            let when = match &case.when {
                Some(text) => self.expr(text, &format!("{case_path}.when"), scope),
                None if i + 1 == raw.cases.len() => None,
                None => {
                    self.problem(
                        self.at(&case_path),
                        "only the last case may omit `when` (it is the else case)".into(),
                    );
                    None
                }
            };
            let mut case_scope = scope.clone();
            let steps = self.steps(&case.steps, &format!("{case_path}.steps"), &mut case_scope);
            union.names.extend(case_scope.names);
            cases.push(BranchCase {
                name: case.name.as_str().into(),
                when,
                steps,
            });
        }
        *scope = union;
        self.define(&raw.id, path, scope);
        Some(BranchStep {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            cases,
        })
    }
}
