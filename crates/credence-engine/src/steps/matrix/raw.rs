//! `matrix` steps as written: two banded axes and grids of cells.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatrix {
    pub id: String,
    pub rows: RawAxis,
    pub columns: RawAxis,
    pub cells: BTreeMap<String, Vec<Vec<serde_yaml_ng::Value>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAxis {
    pub value: String,
    pub bands: Vec<RawBand>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBand {
    pub label: String,
    pub test: String,
}
