//! Evaluating `features` steps.

use super::*;

impl<'s> Run<'s> {
    /// A `features` step: each value in dependency order, into its slot.
    pub(super) fn features(
        &mut self,
        step: &'s FeaturesStep,
        frame: &mut Frame,
    ) -> Result<(), EngineError> {
        let lists = &self.strategy.lists;
        let mut values = BTreeMap::new();
        for (name, slot, expr) in &step.order {
            let value = expr
                .eval(frame, lists)
                .map_err(|e| self.error(&step.id, format!("feature {name}: {e}")))?;
            if self.full {
                values.insert(name.clone(), value.to_json());
            }
            frame.set(*slot, value);
        }
        self.record(&step.id, StepDetail::Features, || values);
        Ok(())
    }
}
