//! `model` steps: a tree-ensemble or scorecard model scored on features mapped from the flow.

mod compile;
mod eval;
pub(crate) mod raw;

use crate::steps::prelude::*;
pub(crate) use raw::*;

/// A compiled `model` step.
#[derive(Debug)]
pub struct ModelStep {
    /// The step's id.
    pub id: Arc<str>,
    /// Where its outputs go.
    pub slot: Slot,
    /// The model scored.
    pub model: Arc<Model>,
    /// One expression per model feature, in the model's feature order.
    pub inputs: Vec<Expr>,
    /// The reason code of each model feature, if it has one.
    pub reasons: Vec<Option<Arc<str>>>,
    /// The model's name, version, SHA-256, format and objective, as every trace names them
    /// (shared, not copied per decision).
    pub identity: ModelIdentity,
}

/// What names a model in every trace.
#[derive(Debug)]
pub struct ModelIdentity {
    /// The name the manifest declares it under.
    pub name: Arc<str>,
    /// Its version, as the file says.
    pub version: Arc<str>,
    /// The SHA-256 of the file.
    pub sha256: Arc<str>,
    /// `xgboost`, `lightgbm` or `scorecard`.
    pub format: Arc<str>,
    /// The objective it was trained with.
    pub objective: Arc<str>,
}

step_kind!(ModelStep, key: "model", raw: RawModelStep, compile: model, evaluate: model_step);
