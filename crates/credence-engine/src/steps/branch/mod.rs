//! `branch` steps: the first case whose condition holds runs its nested steps.

mod compile;
mod eval;
pub(crate) mod raw;

use crate::steps::prelude::*;
pub(crate) use raw::*;

/// A compiled `branch` step.
#[derive(Debug)]
pub struct BranchStep {
    /// The step's id.
    pub id: Arc<str>,
    /// Where the taken case's name goes.
    pub slot: Slot,
    /// The cases, in order.
    pub cases: Vec<BranchCase>,
}

/// One case of a branch.
#[derive(Debug)]
pub struct BranchCase {
    /// The case's name.
    pub name: Arc<str>,
    /// When it is taken (none: the else case).
    pub when: Option<Expr>,
    /// The steps it runs.
    pub steps: Vec<Step>,
}

step_kind!(BranchStep, key: "branch", raw: RawBranch, compile: branch, evaluate: branch);
