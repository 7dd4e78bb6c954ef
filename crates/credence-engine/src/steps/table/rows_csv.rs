//! A table's rows from a CSV file (`rows_file`): a header line, then one row per line.
//!
//! Why not the `csv` crate: table files are written by hand, and analysts put a space after a
//! comma before a quoted cell (`>= 600, "a, b"`). This splitter trims every cell and opens a
//! quote wherever the cell so far is blank; the `csv` crate opens a quote only as a field's
//! first byte and reads ` "a, b"` as two cells with literal quotes. The rows are otherwise read
//! the same way, as the property test below holds it to the `csv` crate on every line that
//! crate writes.

/// A CSV of table rows: a header line, then one row per line; cells as in YAML rows.
/// The rows of a table's CSV file, refused once there are more than `max_rows` (so that a file
/// over the row limit is not built in full before it is refused).
pub(crate) fn parse_rows_csv(
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

pub(crate) fn split_csv_line(line: &str) -> Vec<String> {
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
    use proptest::prelude::*;

    #[test]
    fn csv_rows() {
        assert_eq!(
            split_csv_line(r#""""A"",""B""", > 600,plain"#),
            vec![r#""A","B""#, "> 600", "plain"]
        );
        // The one place this reader parts from the `csv` crate: a quote after a space.
        assert_eq!(split_csv_line(r#">= 600, "a, b""#), vec![">= 600", "a, b"]);
    }

    proptest! {
        /// Any cells without surrounding spaces, written by the `csv` crate, are read back as
        /// the crate reads them.
        #[test]
        fn reads_what_the_csv_crate_writes(
            cells in prop::collection::vec("([a-z0-9<>=.\\-\",]{1,6}( [a-z0-9\",]{1,4})?)?", 1..6)
        ) {
            let mut writer = csv::WriterBuilder::new()
                .terminator(csv::Terminator::Any(b'\n'))
                .from_writer(Vec::new());
            writer.write_record(&cells).unwrap();
            let line = String::from_utf8(writer.into_inner().unwrap()).unwrap();
            let line = line.trim_end_matches('\n');
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes());
            let theirs: Vec<String> = match reader.records().next() {
                Some(record) => record.unwrap().iter().map(str::to_string).collect(),
                None => vec![String::new()],
            };
            prop_assert_eq!(&theirs, &cells);
            prop_assert_eq!(split_csv_line(line), theirs);
        }
    }
}
