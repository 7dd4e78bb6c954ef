//! `data` steps: a third-party data source's answer for a subject, recorded with the decision.

mod compile;
mod eval;
pub(crate) mod raw;

use crate::steps::prelude::*;
pub(crate) use raw::*;

/// A `data` step: a source's answer for the subject, when `when` holds.
#[derive(Debug)]
pub struct DataStep {
    /// The step's id.
    pub id: Arc<str>,
    /// Where the answer's object goes.
    pub slot: Slot,
    /// The data source called.
    pub source: Arc<DataSource>,
    /// When it is called (none: always).
    pub when: Option<Expr>,
    /// Whom the data is about.
    pub subject: Expr,
    /// The consent reference recorded with each call.
    pub consent: Option<Expr>,
    /// True when this step directly follows other data steps and reads none of their answers:
    /// online, its request is then made together with theirs (the calls run concurrently).
    pub fetch_with_previous: bool,
}

step_kind!(DataStep, key: "data", raw: RawDataStep, compile: data_step, evaluate: data_step);
