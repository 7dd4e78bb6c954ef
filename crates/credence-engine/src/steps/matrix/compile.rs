//! Compiling `matrix` steps: two axes and their cells.

use super::*;
use crate::steps::prelude::*;

impl Compiler<'_> {
    fn axis(&mut self, raw: &RawAxis, path: &str, scope: &Scope) -> Option<Axis> {
        let value = self.expr(&raw.value, &format!("{path}.value"), scope);
        let mut bands = Vec::new();
        if raw.bands.is_empty() {
            self.problem(self.at(path), "needs at least one band".into());
        }
        for (i, band) in raw.bands.iter().enumerate() {
            let band_path = format!("{path}.bands[{i}]");
            match self.exprs.compile_unary(&band.test) {
                Ok(test) => {
                    self.flow_steps = self.flow_steps.saturating_add(test.step_bound());
                    self.check_references_in(
                        test.references(),
                        &band_path,
                        scope,
                        Some(&band.test),
                    );
                    bands.push((band.label.as_str().into(), test))
                }
                Err(e) => self.problem(self.at_text(&band_path, &band.test), e.to_string()),
            }
        }
        Some(Axis {
            value: value?,
            bands,
        })
    }

    pub(super) fn matrix(
        &mut self,
        raw: &RawMatrix,
        path: &str,
        scope: &mut Scope,
    ) -> Option<Matrix> {
        let before = self.problems.len();
        let rows = self.axis(&raw.rows, &format!("{path}.rows"), scope);
        let columns = self.axis(&raw.columns, &format!("{path}.columns"), scope);
        let mut cells: Vec<(String, Vec<Vec<ValueSource>>)> = Vec::new();
        if raw.cells.is_empty() {
            self.problem(
                self.at(&format!("{path}.cells")),
                "needs at least one output grid".into(),
            );
        }
        for (output, grid) in &raw.cells {
            let grid_path = format!("{path}.cells.{output}");
            if grid.len() != raw.rows.bands.len() {
                self.problem(
                    self.at(&grid_path),
                    format!(
                        "has {} rows; the matrix has {} row bands",
                        grid.len(),
                        raw.rows.bands.len()
                    ),
                );
                continue;
            }
            let mut compiled_grid = Vec::new();
            for (r, row) in grid.iter().enumerate() {
                if row.len() != raw.columns.bands.len() {
                    self.problem(
                        self.at(&format!("{grid_path}[{r}]")),
                        format!(
                            "has {} cells; the matrix has {} column bands",
                            row.len(),
                            raw.columns.bands.len()
                        ),
                    );
                    continue;
                }
                let mut compiled_row = Vec::new();
                for (c, cell) in row.iter().enumerate() {
                    match ValueSource::compile(cell, &mut self.exprs) {
                        Ok(v) => {
                            self.check_references(
                                v.references(),
                                &format!("{grid_path}[{r}][{c}]"),
                                scope,
                            );
                            compiled_row.push(v)
                        }
                        Err(e) => self.problem(self.at(&format!("{grid_path}[{r}][{c}]")), e),
                    }
                }
                compiled_grid.push(compiled_row);
            }
            cells.push((output.clone(), compiled_grid));
        }
        if self.problems.len() == before {
            let grid = |name: &str| cells.iter().find(|(n, _)| n == name).map(|(_, g)| g);
            if let Some(outcomes) = grid("outcome") {
                let reasons = grid("reason");
                for (r, row) in outcomes.iter().enumerate() {
                    for (c, cell) in row.iter().enumerate() {
                        let reason = reasons.map(|g| &g[r][c]);
                        let cell_path = format!("{path}.cells.outcome[{r}][{c}]");
                        self.check_outcome_cells(Some(cell), reason, &cell_path);
                    }
                }
            } else if let Some(reasons) = grid("reason") {
                for row in reasons {
                    for cell in row {
                        if let Some(Constant::String(code)) = cell.constant() {
                            let code = code.to_string();
                            self.reason(&code, &format!("{path}.cells.reason"), ReasonUse::Unknown);
                        }
                    }
                }
            }
        }
        self.define(&raw.id, path, scope);
        if self.problems.len() > before {
            return None;
        }
        Some(Matrix {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            rows: rows?,
            columns: columns?,
            cells,
        })
    }
}
