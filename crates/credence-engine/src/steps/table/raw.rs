//! `table` steps as written: inputs, outputs, hit policy and rows (inline or a CSV file).

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTable {
    pub id: String,
    #[serde(default)]
    pub hit_policy: HitPolicy,
    #[serde(default)]
    pub aggregation: Option<Aggregation>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    #[serde(default)]
    pub output_priority: Vec<serde_yaml_ng::Value>,
    #[serde(default)]
    pub rows: Vec<Vec<serde_yaml_ng::Value>>,
    #[serde(default)]
    pub rows_file: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HitPolicy {
    #[default]
    First,
    Unique,
    Priority,
    RuleOrder,
    Collect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    Sum,
    Min,
    Max,
    Count,
}
