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
    /// The application is approved, with the offer.
    Approve,
    /// A person must look at it: the application goes to a review queue.
    Refer,
    /// The application is declined, with reasons.
    Decline,
}

impl Outcome {
    /// The outcome of a name (`approve`, `refer`, `decline`), if it is one.
    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "approve" => Some(Outcome::Approve),
            "refer" => Some(Outcome::Refer),
            "decline" => Some(Outcome::Decline),
            _ => None,
        }
    }

    /// The outcome's name.
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
    /// The action's name.
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
    /// The reason code.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub code: Arc<str>,
    /// Its text in the requested language.
    pub text: String,
}

/// Where a referred application goes for manual review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Referral {
    /// The review queue.
    pub queue: String,
    /// Higher is worked first.
    pub priority: i64,
}

/// A decision. Money and rates are decimals (serialised as strings, exactly).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The outcome.
    pub outcome: Outcome,
    /// Approved for less than was asked.
    pub counter_offer: bool,
    /// The credit limit offered (approvals).
    pub limit: Option<Decimal>,
    /// The annual percentage rate offered, as a fraction.
    pub apr: Option<Decimal>,
    /// The term offered, in months.
    pub term_months: Option<u32>,
    /// What the applicant asked for, by the flow's outcome mapping (`outcome.requested_amount`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_amount: Option<Decimal>,
    /// Top reasons, most important first (for a decline: what adverse-action notices quote).
    pub reasons: Vec<Reason>,
    /// Codes of `flag` rules that fired; they do not change the outcome.
    pub flags: Vec<Arc<str>>,
    /// Where a referral goes for review.
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
    /// The strategy's name.
    pub strategy: Arc<str>,
    /// The strategy version (content hash) that decided.
    pub strategy_version: Arc<str>,
    /// The flow that decided.
    pub flow: Arc<str>,
    /// The date the engine's clock gave; replaying with it reproduces the decision.
    pub as_of: String,
    /// What each shadow arm would have decided.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadow: Vec<ShadowDecision>,
    /// The steps the decision went through.
    pub trace: Trace,
}

/// What a shadow arm would have decided; recorded, never returned as the answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowDecision {
    /// The shadow arm.
    pub arm: Arc<str>,
    /// What it would have decided.
    pub outcome: Outcome,
    /// The limit it would have offered.
    pub limit: Option<Decimal>,
    /// The APR it would have offered.
    pub apr: Option<Decimal>,
    /// Its reason codes.
    pub reason_codes: Vec<Arc<str>>,
}

/// The steps a decision went through. Compact by default; with `full`, every intermediate value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// Each step that ran, in order.
    pub steps: Vec<TraceStep>,
    /// Caps that bound the offer (e.g. `apr_max`), with the value before capping.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub caps_applied: Vec<CapApplied>,
    /// The validated input (full trace only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<serde_json::Value>,
}

/// A cap that bound the offer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapApplied {
    /// The cap (`apr_max`, `limit_max`, `limit_min`, `term_months_max`).
    pub cap: String,
    /// The value before the cap.
    pub before: Decimal,
    /// The value after it.
    pub after: Decimal,
}

/// One step of a trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceStep {
    /// The step's id.
    pub step: Arc<str>,
    /// What the step did, by kind.
    #[serde(flatten)]
    pub detail: StepDetail,
    /// Every value the step produced (full trace only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, serde_json::Value>>,
}

/// What a step did, by its kind.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepDetail {
    /// Derived values were computed.
    Features,
    /// Rules were checked.
    RuleSet {
        /// The rules that fired.
        hits: Vec<RuleHit>,
    },
    /// A decision table matched rows.
    Table {
        /// Matched rows, 1-based as analysts count them.
        rows: Vec<usize>,
    },
    /// A decision matrix picked a cell.
    Matrix {
        /// The row band taken, if any matched.
        row: Option<Arc<str>>,
        /// The column band taken, if any matched.
        column: Option<Arc<str>>,
    },
    /// A scorecard scored.
    Scorecard {
        /// The score.
        score: Decimal,
        /// The calibrated probability of default, if calibrated.
        #[serde(skip_serializing_if = "Option::is_none")]
        probability_of_default: Option<f64>,
        /// The bin each characteristic fell in.
        bins: Vec<crate::steps::scorecard::BinHit>,
    },
    /// A model scored.
    Model {
        /// The model's name.
        model: Arc<str>,
        /// Its version.
        model_version: Arc<str>,
        /// The SHA-256 of its file.
        model_sha256: Arc<str>,
        /// The file's format and the library version that wrote it, e.g. `xgboost 3.1.2`.
        model_format: Arc<str>,
        /// The objective it was trained with.
        objective: Arc<str>,
        /// The probability, for a probabilistic single-output model.
        #[serde(skip_serializing_if = "Option::is_none")]
        probability: Option<f64>,
        /// The raw margin (before the link function), for a single-output model.
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
    /// A branch took a case.
    Branch {
        /// The case taken (`none` when none held).
        case: Arc<str>,
    },
    /// An experiment assigned an arm.
    ChampionChallenger {
        /// The arm.
        arm: Arc<str>,
        /// The stable bucket (0–9999) the key hashed to.
        bucket: u32,
    },
    /// A data source was called or its recorded answer used.
    Data {
        /// The data source.
        source: Arc<str>,
        /// `ok`, `failed` or `skipped`.
        status: &'static str,
        /// Why the source failed, when it did.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<Arc<str>>,
    },
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleHit {
    /// The rule's id.
    pub rule: Arc<str>,
    /// `decline`, `refer` or `flag`.
    pub outcome: &'static str,
    /// Its reason code.
    pub reason: Arc<str>,
}
