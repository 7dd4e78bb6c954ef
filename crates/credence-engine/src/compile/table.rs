//! Compiling `table` steps: rows inline or from CSV, cells, hit policies and indexes.

use super::*;

impl Compiler<'_> {
    pub(super) fn table(&mut self, raw: &RawTable, path: &str, scope: &mut Scope) -> Option<Step> {
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
        Some(Step::Table(DecisionTable::new(TableDefinition {
            id: raw.id.as_str().into(),
            slot: self.exprs.slot(&raw.id),
            hit_policy: raw.hit_policy,
            aggregation: raw.aggregation,
            inputs,
            output_names: raw.outputs.clone(),
            cells,
            outputs,
            output_priority,
        })))
    }
}

/// A CSV of table rows: a header line, then one row per line; cells as in YAML rows.
/// The rows of a table's CSV file, refused once there are more than `max_rows` (so that a file
/// over the row limit is not built in full before it is refused).
pub(super) fn parse_rows_csv(
    bytes: &[u8],
    width: usize,
    max_rows: usize,
) -> Result<Vec<Vec<serde_yaml_ng::Value>>, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        if rows.len() == max_rows {
            return Err(format!(
                "has more than {max_rows} rows; a table may have at most {max_rows} more besides its inline rows (raise limits.table_rows if the table is right)"
            ));
        }
        let cells = split_csv_line(line);
        if cells.len() != width {
            return Err(format!(
                "line {} has {} cells, expected {width}",
                n + 1,
                cells.len()
            ));
        }
        rows.push(
            cells
                .into_iter()
                .map(|cell| match crate::schema::parse_decimal_text(&cell) {
                    Some(_) if !cell.trim().is_empty() => {
                        serde_yaml_ng::from_str(&cell).unwrap_or(serde_yaml_ng::Value::String(cell))
                    }
                    _ => serde_yaml_ng::Value::String(cell),
                })
                .collect(),
        );
    }
    Ok(rows)
}

pub(super) fn split_csv_line(line: &str) -> Vec<String> {
    let mut cells = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if current.trim().is_empty() => quoted = true,
            (false, ',') => cells.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    cells.push(current.trim().to_string());
    cells
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows() {
        assert_eq!(
            split_csv_line(r#""""A"",""B""", > 600,plain"#),
            vec![r#""A","B""#, "> 600", "plain"]
        );
    }
}
