//! Reads a simple CSV of feature rows (header first, no quoting) in a model's feature order, for tests and examples.

use super::Model;

/// Every data row's values in the order of the model's features; an empty cell is a missing
/// value (NaN). Panics naming a feature the header lacks or a cell that is not a number.
pub fn rows_in_model_order(text: &str, model: &Model) -> Vec<Vec<f64>> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header line").split(',').collect();
    let order: Vec<usize> = model
        .metadata()
        .features
        .iter()
        .map(|f| {
            header
                .iter()
                .position(|h| h == f)
                .unwrap_or_else(|| panic!("{f} is not in the header"))
        })
        .collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            order
                .iter()
                .map(|&i| cells[i].parse().unwrap_or(f64::NAN))
                .collect()
        })
        .collect()
}
