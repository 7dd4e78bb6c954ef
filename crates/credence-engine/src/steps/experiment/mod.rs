//! `champion_challenger` steps: an arm chosen by a stable hash of a key, shadow arms beside it.

mod compile;
mod eval;
pub(crate) mod raw;

use crate::steps::prelude::*;
pub(crate) use raw::*;

/// A compiled `champion_challenger` step.
#[derive(Debug)]
pub struct Experiment {
    /// The step's id.
    pub id: Arc<str>,
    /// Where the arm's name goes.
    pub slot: Slot,
    /// What assigns a decision to an arm (hashed with the salt).
    pub key: Expr,
    /// Mixed into the hash, so that two experiments split independently.
    pub salt: String,
    /// The live arms.
    pub arms: Vec<Arm>,
    /// Arms evaluated beside the live one and recorded, never answered.
    pub shadow: Vec<Arm>,
    /// Bucket upper bounds (exclusive) out of 10,000, one per arm.
    pub bucket_bounds: Vec<u32>,
}

/// One arm of an experiment.
#[derive(Debug)]
pub struct Arm {
    /// The arm's name.
    pub name: Arc<str>,
    /// The steps it runs.
    pub steps: Vec<Step>,
}

impl StepKind for Experiment {
    const KEY: &'static str = "champion_challenger";
    type Raw = RawChampionChallenger;

    fn raw_id(raw: &RawChampionChallenger) -> &str {
        &raw.id
    }

    fn compile(
        raw: &RawChampionChallenger,
        compiler: &mut Compiler<'_>,
        path: &str,
        scope: &mut Scope,
    ) -> Option<Self> {
        compiler.experiment(raw, path, scope)
    }

    #[inline]
    fn evaluate<'s>(&'s self, run: &mut Run<'s>, frame: &mut Frame) -> Result<(), EngineError> {
        run.experiment(self, frame)
    }
}
