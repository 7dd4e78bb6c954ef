//! `features` steps: derived values, evaluated in dependency order.

mod compile;
mod eval;
pub(crate) mod raw;

use crate::steps::prelude::*;
pub(crate) use raw::*;

/// A compiled `features` step.
#[derive(Debug)]
pub struct FeaturesStep {
    /// The step's id.
    pub id: Arc<str>,
    /// Name, slot and expression of each feature, in dependency order.
    pub order: Vec<(String, Slot, Expr)>,
}

step_kind!(FeaturesStep, key: "features", raw: RawFeatures, compile: features, evaluate: features);
