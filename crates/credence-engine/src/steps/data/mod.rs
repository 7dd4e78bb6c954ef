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

impl StepKind for DataStep {
    const KEY: &'static str = "data";
    type Raw = RawDataStep;

    fn raw_id(raw: &RawDataStep) -> &str {
        &raw.id
    }

    fn compile(
        raw: &RawDataStep,
        compiler: &mut Compiler<'_>,
        path: &str,
        scope: &mut Scope,
    ) -> Option<Self> {
        compiler.data_step(raw, path, scope)
    }

    #[inline]
    fn evaluate<'s>(&'s self, run: &mut Run<'s>, frame: &mut Frame) -> Result<(), EngineError> {
        run.data_step(self, frame)
    }
}
