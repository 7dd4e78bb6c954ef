//! The decision a flow returns, and its trace: what callers, logs and auditors read.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The answer to an application or a drawdown, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Outcome {
    Approve,
    Refer,
    Decline,
}

impl Outcome {
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "approve" => Some(Outcome::Approve),
            "refer" => Some(Outcome::Refer),
            "decline" => Some(Outcome::Decline),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Approve => "approve",
            Outcome::Refer => "refer",
            Outcome::Decline => "decline",
        }
    }
}

/// What an in-loan flow does to a credit account besides its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AccountAction {
    /// Stop further drawdowns on the line.
    Freeze,
    /// Hand the account to collections.
    Collections,
}

impl AccountAction {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountAction::Freeze => "freeze",
            AccountAction::Collections => "collections",
        }
    }
}

/// A reason code with its customer-facing text in the requested language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reason {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: Arc<str>,
    pub text: String,
}

/// Where a referred application goes for manual review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Referral {
    pub queue: String,
    pub priority: i64,
}

/// A decision. Money and rates are decimals (serialised as strings, exactly).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// Approved for less than was asked.
    pub counter_offer: bool,
    pub limit: Option<Decimal>,
    pub apr: Option<Decimal>,
    pub term_months: Option<u32>,
    /// Top reasons, most important first (for a decline: what adverse-action notices quote).
    pub reasons: Vec<Reason>,
    /// Codes of `flag` rules that fired; they do not change the outcome.
    pub flags: Vec<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral: Option<Referral>,
    /// Account actions of the rules that fired (in-loan flows), in the order they first fired.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<AccountAction>,
    /// Third-party data the decision used, with the values: replays read them from here.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub data: Vec<crate::data::DataUse>,
    /// The champion/challenger arm that decided, if the flow has an experiment.
    pub arm: Option<Arc<str>>,
    pub strategy: Arc<str>,
    pub strategy_version: Arc<str>,
    pub flow: Arc<str>,
    /// The date the engine's clock gave; replaying with it reproduces the decision.
    pub as_of: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadow: Vec<ShadowDecision>,
    pub trace: Trace,
}

/// What a shadow arm would have decided; recorded, never returned as the answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowDecision {
    pub arm: Arc<str>,
    pub outcome: Outcome,
    pub limit: Option<Decimal>,
    pub apr: Option<Decimal>,
    pub reason_codes: Vec<Arc<str>>,
}

/// The steps a decision went through. Compact by default; with `full`, every intermediate value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    pub steps: Vec<TraceStep>,
    /// Caps that bound the offer (e.g. `apr_max`), with the value before capping.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caps_applied: Vec<CapApplied>,
    /// The validated input (full trace only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapApplied {
    pub cap: String,
    pub before: Decimal,
    pub after: Decimal,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceStep {
    pub step: Arc<str>,
    #[serde(flatten)]
    pub detail: StepDetail,
    /// Every value the step produced (full trace only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepDetail {
    Features,
    RuleSet {
        hits: Vec<RuleHit>,
    },
    Table {
        /// Matched rows, 1-based as analysts count them.
        rows: Vec<usize>,
    },
    Matrix {
        row: Option<Arc<str>>,
        column: Option<Arc<str>>,
    },
    Scorecard {
        score: Decimal,
        #[serde(skip_serializing_if = "Option::is_none")]
        probability_of_default: Option<f64>,
        bins: Vec<crate::scorecard::BinHit>,
    },
    Model {
        model: Arc<str>,
        model_version: Arc<str>,
        model_sha256: Arc<str>,
        /// The file's format and the library version that wrote it, e.g. `xgboost 3.1.2`.
        model_format: Arc<str>,
        objective: Arc<str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        probability: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        margin: Option<f64>,
        /// What the library's `predict()` returns for a single-output model (the probability,
        /// or a regression's prediction on the target's scale). Absent in records written
        /// before Credence 0.22.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prediction: Option<f64>,
        /// A multi-class model's probability per class.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class_probabilities: Option<Vec<f64>>,
        /// A multi-class model's most probable class.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        predicted_class: Option<usize>,
    },
    Branch {
        case: Arc<str>,
    },
    ChampionChallenger {
        arm: Arc<str>,
        /// The stable bucket (0–9999) the key hashed to.
        bucket: u32,
    },
    Data {
        source: Arc<str>,
        /// `ok`, `failed` or `skipped`.
        status: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleHit {
    pub rule: Arc<str>,
    pub outcome: &'static str,
    pub reason: Arc<str>,
}
