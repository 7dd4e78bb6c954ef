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

step_kind!(Experiment, key: "champion_challenger", raw: RawChampionChallenger, compile: experiment, evaluate: experiment);
