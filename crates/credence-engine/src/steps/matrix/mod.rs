//! Decision matrices: two banded dimensions (e.g. risk grade × debt-to-income) → outcome and terms.

mod compile;
mod eval;
pub(crate) mod raw;

use crate::value::ValueSource;
use credence_expr::{Expr, Frame, NamedLists, Slot, UnaryTest, Value};
pub(crate) use raw::*;
use std::sync::Arc;

#[derive(Debug)]
pub struct Axis {
    pub value: Expr,
    /// Bands in order; the first whose test matches is taken.
    pub bands: Vec<(Arc<str>, UnaryTest)>,
}

impl Axis {
    fn band(&self, frame: &mut Frame, lists: &NamedLists) -> Result<Option<usize>, String> {
        let value = self.value.eval(frame, lists).map_err(|e| e.to_string())?;
        for (index, (_, test)) in self.bands.iter().enumerate() {
            if test.test(&value, frame) {
                return Ok(Some(index));
            }
        }
        Ok(None)
    }
}

#[derive(Debug)]
pub struct Matrix {
    pub id: Arc<str>,
    pub slot: Slot,
    pub rows: Axis,
    pub columns: Axis,
    /// Output name → grid of `rows × columns` values.
    pub cells: Vec<(String, Vec<Vec<ValueSource>>)>,
}

pub struct MatrixResult {
    pub row: Option<Arc<str>>,
    pub column: Option<Arc<str>>,
    /// The cell's outputs as an object; null when a value fell outside every band.
    pub value: Value,
}

impl Matrix {
    pub fn evaluate(&self, frame: &mut Frame, lists: &NamedLists) -> Result<MatrixResult, String> {
        let row = self.rows.band(frame, lists)?;
        let column = self.columns.band(frame, lists)?;
        let label = |axis: &Axis, i: Option<usize>| i.map(|i| axis.bands[i].0.clone());
        let value = match (row, column) {
            (Some(r), Some(c)) => Value::try_object(self.cells.iter().map(|(name, grid)| {
                let value = grid[r][c].eval(frame, lists).map_err(|e| e.to_string())?;
                Ok::<_, String>((name.as_str(), value))
            }))?,
            _ => Value::NULL,
        };
        Ok(MatrixResult {
            row: label(&self.rows, row),
            column: label(&self.columns, column),
            value,
        })
    }
}

step_kind!(Matrix, key: "matrix", raw: RawMatrix, compile: matrix, evaluate: matrix);
