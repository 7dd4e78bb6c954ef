//! `scorecard` steps as written: characteristics, bins and calibration, inline or in a file.

use crate::format::YamlNumber;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct RawScorecard {
    pub id: String,
    /// A file holding the scorecard body (base points, calibration, characteristics), as
    /// fitting tools write it; exclusive with writing the body inline.
    #[serde(default)]
    pub file: Option<String>,
    #[serde(flatten)]
    pub body: RawScorecardBody,
}

/// A scorecard's content, inline in a step or in its own file.
#[derive(Debug, Default, Deserialize)]
pub struct RawScorecardBody {
    #[serde(default)]
    pub base_points: Option<YamlNumber>,
    #[serde(default)]
    pub calibration: Option<RawCalibration>,
    #[serde(default)]
    pub characteristics: Vec<RawCharacteristic>,
}

/// Score ↔ odds: at `score` the good:bad odds are `odds`, and they double every `pdo` points.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCalibration {
    pub score: f64,
    pub odds: f64,
    pub pdo: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCharacteristic {
    pub name: String,
    pub value: String,
    pub reason: String,
    pub bins: Vec<RawBin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBin {
    #[serde(default)]
    pub range: Option<String>,
    #[serde(default)]
    pub values: Option<Vec<serde_yaml_ng::Value>>,
    #[serde(default)]
    pub missing: bool,
    #[serde(default, rename = "else")]
    pub otherwise: bool,
    pub points: YamlNumber,
    #[serde(default)]
    pub label: Option<String>,
}
