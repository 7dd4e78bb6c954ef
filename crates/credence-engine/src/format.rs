//! The raw strategy package format: serde types for the YAML files exactly as analysts write them.
//!
//! Nothing here is validated beyond shape; `compile` turns these into the checked, compiled
//! strategy. Every struct refuses unknown fields so that a misspelt key is an error with its
//! line, not a silently ignored setting. `docs/strategy-format.md` documents every field.

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
    #[serde(default)]
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

/// A step: exactly one kind, written as a single-key map (`- rule_set: {...}`).
#[derive(Debug)]
pub struct RawStep(pub RawStepKind);

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_yaml_ng::with::singleton_map::deserialize(deserializer).map(RawStep)
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RawStepKind {
    Features(RawFeatures),
    RuleSet(RawRuleSet),
    Table(RawTable),
    Matrix(RawMatrix),
    Scorecard(RawScorecard),
    Model(RawModelStep),
    Branch(RawBranch),
    ChampionChallenger(RawChampionChallenger),
    Data(RawDataStep),
}

/// Calls a data source (or reuses a recorded answer), when `when` holds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataStep {
    pub id: String,
    pub source: String,
    #[serde(default)]
    pub when: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeatures {
    pub id: String,
    pub values: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuleSet {
    pub id: String,
    #[serde(default)]
    pub stop_on_first_decline: bool,
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub id: String,
    pub when: String,
    pub outcome: RawRuleOutcome,
    pub reason: String,
    /// A scorecard or model step whose ranked reasons follow this rule's own when it decides
    /// the outcome (a score cut-off rule explains itself with the score's weakest characteristics).
    #[serde(default)]
    pub explain_with: Option<String>,
    /// What to do to the credit account when this rule fires (in-loan flows).
    #[serde(default)]
    pub actions: Vec<crate::decision::AccountAction>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawRuleOutcome {
    Decline,
    Refer,
    Flag,
}

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
