//! The engine's one error type; business outcomes (decline, refer, missing data) are never errors.

use crate::schema::Violation;

/// A problem found while compiling a package, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CompileProblem {
    /// File and path inside it, e.g. `flows/application.yaml: steps[2] (table grade).rows[4]`.
    pub location: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for CompileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location, self.message)
    }
}

/// Why the engine could not compile or decide; [`EngineError::code`] is its stable machine
/// code.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The package could not be compiled; every problem found is listed.
    #[error("the strategy package has {} problem(s):\n{}", .0.len(), list(.0))]
    Compile(Vec<CompileProblem>),
    /// The strategy has no flow of that name.
    #[error("unknown flow \"{flow}\"; this strategy has: {available}")]
    UnknownFlow {
        /// The name asked for.
        flow: String,
        /// The strategy's flows, listed.
        available: String,
    },
    /// Input failed the flow's schema; every violation is listed.
    #[error("input does not match the {flow} flow's schema:\n{}", list(.violations))]
    InvalidInput {
        /// The flow whose schema the input failed.
        flow: String,
        /// Every violation.
        violations: Vec<Violation>,
    },
    /// A `ValidatedInput` passed to a flow (or strategy version) other than the one that validated it.
    #[error("the input was validated for another flow or strategy version; validate it with flow {flow} of this strategy")]
    NotValidatedForFlow {
        /// The flow it was passed to.
        flow: String,
    },
    /// The strategy has no reason texts in that language.
    #[error("unknown language \"{language}\"; this strategy has reason texts in: {available}")]
    UnknownLanguage {
        /// The language asked for.
        language: String,
        /// The strategy's languages, listed.
        available: String,
    },
    /// Evaluation failed in a step: a defect in the strategy (e.g. a type error), not an outcome.
    #[error("flow {flow}, step {step}: {message}")]
    Evaluation {
        /// The flow.
        flow: String,
        /// The step that failed.
        step: String,
        /// What went wrong there.
        message: String,
    },
    /// A stored decision record that is not one (damaged, or not JSON).
    #[error("the decision record is unreadable: {problem}")]
    UnreadableRecord {
        /// What the reader found wrong.
        problem: String,
    },
    /// A decision record written by a newer build.
    #[error(
        "the decision record has version {version}; this build reads up to {}: upgrade credence",
        crate::record::DECISION_RECORD_VERSION
    )]
    RecordTooNew {
        /// The record's version.
        version: u32,
    },
}

impl EngineError {
    /// The stable machine code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Compile(_) => "invalid_package",
            EngineError::UnknownFlow { .. } => "unknown_flow",
            EngineError::InvalidInput { .. } => "invalid_input",
            EngineError::NotValidatedForFlow { .. } => "not_validated_for_flow",
            EngineError::UnknownLanguage { .. } => "unknown_language",
            EngineError::Evaluation { .. } => "strategy_error",
            EngineError::UnreadableRecord { .. } => "unreadable_record",
            EngineError::RecordTooNew { .. } => "record_too_new",
        }
    }
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| format!("  - {i}"))
        .collect::<Vec<_>>()
        .join("\n")
}
