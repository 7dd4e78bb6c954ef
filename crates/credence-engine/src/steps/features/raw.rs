//! `features` steps as written: named expressions.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeatures {
    pub id: String,
    pub values: BTreeMap<String, String>,
}
