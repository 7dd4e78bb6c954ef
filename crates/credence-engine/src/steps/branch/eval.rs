//! Evaluating `branch` steps.

use super::*;

impl<'s> Run<'s> {
    /// A `branch` step: the first case whose `when` holds (or the else case), its name into
    /// the step's slot, then its steps.
    pub(super) fn branch(
        &mut self,
        step: &'s BranchStep,
        frame: &mut Frame,
    ) -> Result<(), EngineError> {
        let id = &step.id;
        let mut chosen = None;
        for case in &step.cases {
            let taken = match &case.when {
                None => true,
                Some(when) => self.condition(when, frame, id, || format!("case {}", case.name))?,
            };
            if taken {
                chosen = Some(case);
                break;
            }
        }
        let name: Arc<str> = chosen.map_or_else(|| Arc::from("none"), |c| c.name.clone());
        frame.set(step.slot, Value::string(&name));
        self.record(id, StepDetail::Branch { case: name }, BTreeMap::new);
        if let Some(case) = chosen {
            self.steps(&case.steps, frame)?;
        }
        Ok(())
    }
}
