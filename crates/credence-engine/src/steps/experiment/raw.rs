//! `champion_challenger` steps as written: a key, a salt, weighted arms and shadow arms.

use crate::steps::RawStep;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChampionChallenger {
    pub id: String,
    pub key: String,
    pub salt: String,
    pub arms: Vec<RawArm>,
    #[serde(default)]
    pub shadow: Vec<RawArm>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArm {
    pub name: String,
    #[serde(default)]
    pub weight: u32,
    pub steps: Vec<RawStep>,
}
