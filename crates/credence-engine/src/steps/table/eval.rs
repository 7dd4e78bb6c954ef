//! Evaluating `table` steps.

use super::*;
use crate::steps::prelude::*;

impl<'s> Run<'s> {
    /// A `table` step: the matching rows under the hit policy, published as one object.
    pub(super) fn table(
        &mut self,
        table: &'s DecisionTable,
        frame: &mut Frame,
    ) -> Result<(), EngineError> {
        let result = table
            .evaluate(frame, &self.strategy.lists)
            .map_err(|e| self.error(&table.id, e))?;
        let rows = result.rows.iter().map(|r| r + 1).collect();
        self.publish(
            frame,
            &table.id,
            table.slot,
            result.value,
            StepDetail::Table { rows },
        );
        Ok(())
    }
}
