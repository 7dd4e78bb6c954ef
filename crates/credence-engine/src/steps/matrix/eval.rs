//! Evaluating `matrix` steps.

use super::*;
use crate::steps::prelude::*;

impl<'s> Run<'s> {
    /// A `matrix` step: the row and column bands, published as the cell's object.
    pub(super) fn matrix(
        &mut self,
        matrix: &'s Matrix,
        frame: &mut Frame,
    ) -> Result<(), EngineError> {
        let result = matrix
            .evaluate(frame, &self.strategy.lists)
            .map_err(|e| self.error(&matrix.id, e))?;
        let detail = StepDetail::Matrix {
            row: result.row,
            column: result.column,
        };
        self.publish(frame, &matrix.id, matrix.slot, result.value, detail);
        Ok(())
    }
}
