//! Compiling `table` steps: rows inline or from CSV, cells, hit policies and indexes.

use super::rows_csv::parse_rows_csv;
use super::*;
use crate::steps::prelude::*;

impl Compiler<'_> {
    pub(super) fn table(
        &mut self,
        raw: &RawTable,
        path: &str,
        scope: &mut Scope,
    ) -> Option<DecisionTable> {
        let before = self.problems.len();
        if raw.outputs.is_empty() {
            self.problem(self.at(path), "a table needs at least one output".into());
        }
        if raw.aggregation.is_some() && raw.hit_policy != HitPolicy::Collect {
            self.problem(
                self.at(path),
                "aggregation applies only with hit_policy: collect".into(),
            );
        }
        if raw.hit_policy == HitPolicy::Priority && raw.output_priority.is_empty() {
            self.problem(self.at(path), "hit_policy priority needs output_priority: the first output's values, highest first".into());
        }
        let inputs: Vec<Expr> = raw
            .inputs
            .iter()
            .enumerate()
            .filter_map(|(i, text)| self.expr(text, &format!("{path}.inputs[{i}]"), scope))
            .collect();
        let mut rows: Vec<Vec<serde_yaml_ng::Value>> = raw.rows.clone();
        if let Some(file) = &raw.rows_file {
            self.used_files.insert(file.clone());
            let checked = self.source.bytes(file).map(|bytes| {
                check_text_size(file, bytes, self.limits.max_text_file_bytes).map(|()| bytes)
            });
            match checked {
                Some(Err(message)) => {
                    self.problem(self.at(&format!("{path}.rows_file")), message);
                }
                Some(Ok(bytes)) => {
                    match parse_rows_csv(
                        bytes,
                        raw.inputs.len() + raw.outputs.len(),
                        self.limits.max_table_rows.saturating_sub(rows.len()),
                    ) {
                        Ok(more) => rows.extend(more),
                        Err(e) => self.problem(
                            self.at(&format!("{path}.rows_file")),
                            format!("{file}: {e}"),
                        ),
                    }
                }
                None => self.problem(
                    self.at(&format!("{path}.rows_file")),
                    format!("file {file} is not in the package"),
                ),
            }
        }
        if rows.len() > self.limits.max_table_rows {
            self.problem(
                self.at(path),
                format!(
                    "has {} rows; a table may have at most {} (raise limits.table_rows if the table is right)",
                    rows.len(),
                    self.limits.max_table_rows
                ),
            );
            return None;
        }
        let width = raw.inputs.len() + raw.outputs.len();
        let mut cells = Vec::with_capacity(rows.len());
        let mut outputs = Vec::with_capacity(rows.len());
        let outcome_column = raw.outputs.iter().position(|o| o == "outcome");
        let reason_column = raw.outputs.iter().position(|o| o == "reason");
        for (r, row) in rows.iter().enumerate() {
            let row_path = format!("{path}.rows[{r}]");
            if row.len() != width {
                self.problem(
                    self.at(&row_path),
                    format!(
                        "has {} cells; the table has {} inputs and {} outputs",
                        row.len(),
                        raw.inputs.len(),
                        raw.outputs.len()
                    ),
                );
                continue;
            }
            let mut row_cells = Vec::with_capacity(raw.inputs.len());
            for (c, cell) in row[..raw.inputs.len()].iter().enumerate() {
                let text = match cell {
                    serde_yaml_ng::Value::String(s) => s.clone(),
                    serde_yaml_ng::Value::Number(n) => n.to_string(),
                    serde_yaml_ng::Value::Bool(b) => b.to_string(),
                    serde_yaml_ng::Value::Null => "-".into(),
                    _ => {
                        self.problem(
                            self.at(&format!("{row_path}[{c}]")),
                            "an input cell is a unary test written as text".into(),
                        );
                        continue;
                    }
                };
                let cell_path = format!("{row_path}[{c}]");
                match self.exprs.compile_unary(&text) {
                    Ok(test) => {
                        self.flow_steps = self.flow_steps.saturating_add(test.step_bound());
                        // A name a cell reads is resolved now: misspelt, the row would never
                        // match, silently.
                        self.check_references_in(test.references(), &cell_path, scope, Some(&text));
                        row_cells.push(test)
                    }
                    Err(e) => self.problem(self.at_text(&cell_path, &text), e.to_string()),
                }
            }
            let mut row_outputs = Vec::with_capacity(raw.outputs.len());
            for (c, cell) in row[raw.inputs.len()..].iter().enumerate() {
                let cell_path = format!("{row_path}[{}]", raw.inputs.len() + c);
                match ValueSource::compile(cell, &mut self.exprs) {
                    Ok(v) => {
                        self.check_references(v.references(), &cell_path, scope);
                        row_outputs.push(v)
                    }
                    Err(e) => self.problem(self.at(&cell_path), e),
                }
            }
            if row_cells.len() == raw.inputs.len() && row_outputs.len() == raw.outputs.len() {
                if let Some(oc) = outcome_column {
                    self.check_outcome_cells(
                        row_outputs.get(oc),
                        reason_column.and_then(|rc| row_outputs.get(rc)),
                        &row_path,
                    );
                }
                if let (Some(rc), None) = (reason_column, outcome_column) {
                    if let Some(Constant::String(code)) = row_outputs[rc].constant() {
                        let code = code.to_string();
                        self.reason(&code, &row_path, ReasonUse::Unknown);
                    }
                }
                cells.push(row_cells);
                outputs.push(row_outputs);
            }
        }
        let output_priority: Vec<Constant> = raw
            .output_priority
            .iter()
            .filter_map(crate::value::constant_from_yaml)
            .collect();
        if raw.hit_policy == HitPolicy::Unique && self.problems.len() == before {
            self.unique_overlaps(raw, path, &cells);
        }
        self.define(&raw.id, path, scope);
        if self.problems.len() > before {
            return None;
        }
        Some(DecisionTable::new(TableDefinition {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            hit_policy: raw.hit_policy,
            aggregation: raw.aggregation,
            inputs,
            output_names: raw.outputs.clone(),
            cells,
            outputs,
            output_priority,
        }))
    }

    /// Reports rows of a `unique` table that can match together, with an input hitting both.
    fn unique_overlaps(&mut self, raw: &RawTable, path: &str, cells: &[Vec<UnaryTest>]) {
        let analysed: Vec<Vec<Option<&credence_expr::SimpleTest>>> = cells
            .iter()
            .map(|row| row.iter().map(UnaryTest::simple).collect())
            .collect();
        for (i, j, example) in super::overlap::overlapping_rows(&analysed, 3) {
            let input: Vec<String> = raw
                .inputs
                .iter()
                .zip(&example)
                .map(|(name, value)| match value {
                    serde_json::Value::Null => format!("{name} = anything"),
                    value => format!("{name} = {value}"),
                })
                .collect();
            // The table's line: where its id is written.
            let location = self.at_text(&format!("{path}.rows[{i}]"), &format!("id: {}", raw.id));
            self.problem(
                location,
                format!(
                    "rows[{i}] and rows[{j}] both match when {}; under hit_policy unique at most one row may: make their tests disjoint, or use hit_policy first (the first matching row wins)",
                    input.join(", ")
                ),
            );
        }
    }
}
