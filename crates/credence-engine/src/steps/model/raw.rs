//! `model` steps as written: a declared model and an expression per feature.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModelStep {
    pub id: String,
    pub model: String,
    pub inputs: BTreeMap<String, String>,
    /// Feature → reason code: a rule that names this step in `explain_with` is explained by
    /// the reasons of the features pushing the score most towards bad (TreeSHAP).
    #[serde(default)]
    pub reasons: BTreeMap<String, String>,
}
