//! Runs a package's embedded test cases against its compiled strategy.

use super::*;
use crate::cases::{compare, CaseResult, TestCase};

impl CompiledStrategy {
    /// The package's embedded cases.
    pub fn cases(&self) -> &[TestCase] {
        &self.cases
    }

    /// Runs every embedded case.
    pub fn run_cases(&self) -> Vec<CaseResult> {
        self.cases
            .iter()
            .map(|case| {
                let options = EvalOptions {
                    as_of: case.as_of,
                    ..EvalOptions::default()
                };
                let decided = self
                    .validate_input(&case.flow, &case.input)
                    .and_then(|input| self.evaluate(&case.flow, &input, &options, &case.data));
                let (mismatches, error) = match decided {
                    Ok(crate::data::Evaluation::Decided(decision)) => {
                        (compare(&case.expect, &decision), None)
                    }
                    Ok(crate::data::Evaluation::NeedsData(requests)) => (
                        Vec::new(),
                        Some(format!(
                            "data step {} has no answer",
                            requests.first().map_or("?", |r| r.step.as_str())
                        )),
                    ),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                };
                CaseResult {
                    name: case.name.clone(),
                    file: case.file.clone(),
                    flow: case.flow.clone(),
                    mismatches,
                    error,
                }
            })
            .collect()
    }
}
