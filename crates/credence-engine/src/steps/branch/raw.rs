//! `branch` steps as written: cases with conditions and nested steps.

use crate::steps::RawStep;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBranch {
    pub id: String,
    pub cases: Vec<RawCase>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCase {
    pub name: String,
    #[serde(default)]
    pub when: Option<String>,
    pub steps: Vec<RawStep>,
}
