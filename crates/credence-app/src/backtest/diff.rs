//! The per-row diff file: rows where the challenger decides differently from the champion.

use super::*;

/// Writes diff lines in input order (chunks arrive in any order) and counts them.
pub(super) fn write_diff(
    file: Option<Box<dyn Write + Send>>,
    lines: Receiver<(u64, Vec<String>)>,
) -> std::io::Result<u64> {
    let Some(file) = file else {
        for _ in lines {}
        return Ok(0);
    };
    let mut out = std::io::BufWriter::new(file);
    writeln!(
        out,
        "row,id,champion_outcome,challenger_outcome,champion_limit,challenger_limit,champion_apr,challenger_apr,champion_reasons,challenger_reasons,bad"
    )?;
    let mut pending: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let mut next = 0u64;
    let mut written = 0u64;
    for (number, chunk) in lines {
        pending.insert(number, chunk);
        while let Some(chunk) = pending.remove(&next) {
            for line in chunk {
                writeln!(out, "{line}")?;
                written += 1;
            }
            next += 1;
        }
    }
    for (_, chunk) in pending {
        for line in chunk {
            writeln!(out, "{line}")?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}

pub(super) fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

pub(super) fn diff_line(row_number: u64, id: Option<&str>, row: &RowResult) -> Option<String> {
    let b = row.challenger.as_ref()?;
    let a = &row.champion;
    if a.outcome == b.outcome {
        return None;
    }
    let text = |d: Option<Decimal>| d.map(|d| d.normalize().to_string()).unwrap_or_default();
    let reasons = |r: &StrategyResult| {
        r.reasons
            .iter()
            .map(|c| c.as_ref())
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(format!(
        "{row_number},{},{},{},{},{},{},{},{},{},{}",
        csv_field(id.unwrap_or("")),
        a.outcome.as_str(),
        b.outcome.as_str(),
        text(a.limit),
        text(b.limit),
        text(a.apr),
        text(b.apr),
        csv_field(&reasons(a)),
        csv_field(&reasons(b)),
        row.performance
            .bad
            .map_or("", |bad| if bad { "1" } else { "0" })
    ))
}
