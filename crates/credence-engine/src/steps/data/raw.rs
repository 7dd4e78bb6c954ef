//! `data` steps as written: a declared data source, called when `when` holds.

use serde::Deserialize;

/// Calls a data source (or reuses a recorded answer), when `when` holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataStep {
    pub id: String,
    pub source: String,
    #[serde(default)]
    pub when: Option<String>,
}
