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
                match self.exprs.compile_unary(&text) {
                    Ok(test) => {
                        self.flow_steps = self.flow_steps.saturating_add(test.step_bound());
                        row_cells.push(test)
                    }
                    Err(e) => self.problem(self.at(&format!("{row_path}[{c}]")), e.to_string()),
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
                        self.reason(&code, &row_path);
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
}
