//! The raw strategy package format: serde types for the YAML files exactly as analysts write them.
//!
//! This file holds the package-level and flow-level shapes (manifest, data sources, caps,
//! review, flow, input fields, outcome, test cases); each step kind's shape is in
//! `steps/<kind>/raw.rs`. Nothing here is validated beyond shape; `compile` turns these into
//! the checked, compiled strategy. Every struct refuses unknown fields so that a misspelt key is an error with its
//! line, not a silently ignored setting. `docs/strategy-format.md` documents every field.

use crate::steps::RawStep;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `strategy.yaml`, the package manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawManifest {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default = "default_languages")]
    pub languages: Vec<String>,
    #[serde(default = "default_max_reasons")]
    pub max_reasons: usize,
    #[serde(default)]
    pub caps: RawCaps,
    #[serde(default)]
    pub lists: BTreeMap<String, String>,
    #[serde(default)]
    pub models: BTreeMap<String, String>,
    pub reasons: BTreeMap<String, BTreeMap<String, String>>,
    pub flows: BTreeMap<String, String>,
    #[serde(default)]
    pub tests: Vec<String>,
    #[serde(default)]
    pub review: RawReview,
    /// Third-party data sources that `data` steps call (bureau, income, liabilities).
    #[serde(default)]
    pub data_sources: BTreeMap<String, RawDataSource>,
}

/// A third-party data source: providers in waterfall order, what to take from their answers,
/// and what a decision does when none answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataSource {
    /// The input field naming whom the data is about (the cache key with the source).
    pub subject: String,
    /// An input field holding the customer's consent reference, recorded with every call.
    #[serde(default)]
    pub consent: Option<String>,
    pub providers: Vec<RawProvider>,
    pub fields: BTreeMap<String, RawDataField>,
    /// How long an answer is reused for the same subject (no second paid pull); 0: never.
    #[serde(default)]
    pub cache_ttl_seconds: u64,
    #[serde(default)]
    pub circuit_breaker: RawCircuitBreaker,
    pub on_failure: RawFailurePolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub name: String,
    /// `{secret:NAME}` is filled from the environment or the secrets file, `{subject}` with
    /// the subject; the package never holds a secret.
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub timeout_ms: u64,
    #[serde(default)]
    pub retries: u32,
    #[serde(default)]
    pub cost: Option<YamlNumber>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataField {
    /// RFC 6901 JSON pointer into the response, e.g. `/report/inquiries_12m`.
    pub pointer: String,
    #[serde(rename = "type")]
    pub kind: RawDataFieldType,
    /// Present (even as `null`) or not: `default: null` lets the field be missing.
    #[serde(default, deserialize_with = "present")]
    pub default: Option<serde_json::Value>,
}

/// A key that is present deserialises to `Some`, also when its value is null.
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawDataFieldType {
    Number,
    Integer,
    String,
    Boolean,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCircuitBreaker {
    #[serde(default = "default_breaker_failures")]
    pub failures: u32,
    #[serde(default = "default_breaker_open_seconds")]
    pub open_seconds: u64,
}

impl Default for RawCircuitBreaker {
    fn default() -> Self {
        RawCircuitBreaker {
            failures: default_breaker_failures(),
            open_seconds: default_breaker_open_seconds(),
        }
    }
}

fn default_breaker_failures() -> u32 {
    5
}

fn default_breaker_open_seconds() -> u64 {
    30
}

/// What a decision does when a source gives no usable answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFailurePolicy {
    /// `refer`, `decline`, or `continue` with the source's values missing (null).
    pub outcome: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// How referred cases are reviewed: queues and their SLAs, claims, four-eyes, bounds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReview {
    #[serde(default)]
    pub queues: BTreeMap<String, RawReviewQueue>,
    #[serde(default)]
    pub default_sla_minutes: Option<u32>,
    #[serde(default)]
    pub claim_minutes: Option<u32>,
    #[serde(default)]
    pub four_eyes_above: Option<YamlNumber>,
    #[serde(default)]
    pub apr_min: Option<YamlNumber>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReviewQueue {
    pub sla_minutes: u32,
    /// For the people who read the package; the engine does not use it.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
}

fn default_currency() -> String {
    "CNY".into()
}
fn default_languages() -> Vec<String> {
    vec!["en".into()]
}
fn default_max_reasons() -> usize {
    4
}

/// Hard caps that no path through any flow can exceed.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCaps {
    #[serde(default)]
    pub apr_max: Option<YamlNumber>,
    #[serde(default)]
    pub limit_max: Option<YamlNumber>,
    #[serde(default)]
    pub limit_min: Option<YamlNumber>,
    #[serde(default)]
    pub term_months_max: Option<u32>,
    #[serde(default)]
    pub below_limit_min_reason: Option<String>,
}

/// A number as written in YAML, kept as text so decimals stay exact.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlNumber(pub String);

impl<'de> Deserialize<'de> for YamlNumber {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_yaml_ng::Value::deserialize(deserializer)?;
        match value {
            serde_yaml_ng::Value::Number(n) => Ok(YamlNumber(n.to_string())),
            serde_yaml_ng::Value::String(s) => Ok(YamlNumber(s)),
            other => Err(serde::de::Error::custom(format!(
                "expected a number, got {other:?}"
            ))),
        }
    }
}

/// A flow file: its input schema, its steps and how the outcome is assembled.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFlow {
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub additional_fields: AdditionalFields,
    pub input: BTreeMap<String, RawField>,
    pub steps: Vec<RawStep>,
    pub outcome: RawOutcome,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdditionalFields {
    /// Fields the schema does not declare are violations (the default: catches misspellings).
    #[default]
    Reject,
    /// Fields the schema does not declare are dropped.
    Ignore,
}

/// One input field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawField {
    #[serde(rename = "type")]
    pub field_type: RawFieldType,
    #[serde(default = "default_true")]
    pub required: bool,
    #[serde(default)]
    pub min: Option<YamlNumber>,
    #[serde(default)]
    pub max: Option<YamlNumber>,
    #[serde(default)]
    pub min_length: Option<usize>,
    #[serde(default)]
    pub max_length: Option<usize>,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub items: Option<Box<RawField>>,
    #[serde(default)]
    pub min_items: Option<usize>,
    #[serde(default)]
    pub max_items: Option<usize>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub personal: bool,
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawFieldType {
    Number,
    Integer,
    String,
    Boolean,
    Date,
    Enum,
    List,
}

/// How the flow's final answer is put together.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutcome {
    #[serde(default = "default_outcome")]
    pub default: String,
    #[serde(default)]
    pub limit: Option<String>,
    #[serde(default)]
    pub apr: Option<String>,
    #[serde(default)]
    pub term_months: Option<String>,
    #[serde(default)]
    pub requested_amount: Option<String>,
    #[serde(default)]
    pub refer: Option<RawReferral>,
    /// An approval that worsens the customer's terms (a limit decrease, a higher rate) must
    /// say why: each entry whose `when` holds adds its reason, then its step's ranked reasons.
    #[serde(default)]
    pub adverse: Vec<RawAdverse>,
}

/// When an approval is adverse to the customer, and the reasons it gives.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdverse {
    pub when: String,
    pub reason: String,
    #[serde(default)]
    pub explain_with: Option<String>,
}

fn default_outcome() -> String {
    "approve".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReferral {
    pub queue: String,
    #[serde(default)]
    pub priority: Option<String>,
}

/// A file of embedded test cases: a list of cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTestCase {
    pub name: String,
    pub flow: String,
    #[serde(default)]
    pub extends: Option<String>,
    #[serde(default)]
    pub as_of: Option<String>,
    #[serde(default)]
    pub input: serde_json::Map<String, serde_json::Value>,
    /// Answers of `data` steps by step id: the mapped values, or `unavailable`. A step the
    /// case does not answer is unavailable (cases never call a provider).
    #[serde(default)]
    pub data: BTreeMap<String, serde_json::Value>,
    pub expect: RawExpectation,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpectation {
    pub outcome: String,
    #[serde(default)]
    pub limit: Option<YamlNumber>,
    #[serde(default)]
    pub apr: Option<YamlNumber>,
    #[serde(default)]
    pub term_months: Option<u32>,
    #[serde(default)]
    pub reasons: Option<Vec<String>>,
    #[serde(default)]
    pub flags: Option<Vec<String>>,
    #[serde(default)]
    pub arm: Option<String>,
    #[serde(default)]
    pub counter_offer: Option<bool>,
    #[serde(default)]
    pub refer_queue: Option<String>,
    #[serde(default)]
    pub actions: Option<Vec<String>>,
}
