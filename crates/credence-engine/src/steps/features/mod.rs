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

impl StepKind for FeaturesStep {
    const KEY: &'static str = "features";
    type Raw = RawFeatures;

    fn raw_id(raw: &RawFeatures) -> &str {
        &raw.id
    }

    fn compile(
        raw: &RawFeatures,
        compiler: &mut Compiler<'_>,
        path: &str,
        scope: &mut Scope,
    ) -> Option<Self> {
        compiler.features(raw, path, scope)
    }

    #[inline]
    fn evaluate<'s>(&'s self, run: &mut Run<'s>, frame: &mut Frame) -> Result<(), EngineError> {
        run.features(self, frame)
    }
}
