//! Credence's decision core: strategy packages parsed, compiled once into an immutable strategy, evaluated many times.
//!
//! ```text
//! PackageSource (bytes) ──compile──▶ CompiledStrategy (Send + Sync, versioned by content hash)
//! raw JSON ──validate_input──▶ ValidatedInput ──decide(flow, as_of)──▶ Decision + Trace
//! ```
//!
//! The crate does no I/O and reads no clock: the caller hands in the package's bytes and the
//! date (`EvalOptions::as_of`, from a [`Clock`]). Business outcomes — decline, refer, missing
//! data — are values in the [`Decision`]; [`EngineError`] is for defects and bad input.

#![warn(missing_docs)]

mod cases;
pub mod compact_json;
mod compile;
pub mod data;
mod decision;
mod error;
mod eval;
mod evidence;
mod format;
mod limits;
mod record;
mod schema;
mod source;
mod steps;
mod value;

pub use cases::{compare, CaseResult, Expectation, Mismatch, TestCase};
pub use compile::{
    compile, compile_with_limits, is_strategy_name, Caps, CompiledStrategy, Flow, ReviewSettings,
    MANIFEST,
};
pub use credence_expr::ExprLimits;
pub use decision::{
    AccountAction, CapApplied, Decision, Outcome, Reason, Referral, RuleHit, ShadowDecision,
    StepDetail, Trace, TraceStep,
};
pub use error::{CompileProblem, EngineError};
pub use eval::{experiment_bucket, Clock, EvalOptions, FixedClock};
pub use evidence::RuleEvidence;
pub use limits::Limits;
pub use record::{DecisionRecord, DECISION_RECORD_VERSION};
pub use schema::{
    json_decimal, FieldKind, FieldSpec, InputValue, RawInput, ValidatedInput, Violation,
};
pub use source::PackageSource;

#[cfg(test)]
mod tests;
