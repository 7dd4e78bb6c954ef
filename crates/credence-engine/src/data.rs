//! Third-party data in decisions: compiled data sources, the record of answers a decision is
//! made with, and what a decision says it used.
//!
//! The engine never calls anyone. Evaluating a flow with a [`DataRecord`] either decides, or
//! stops at the first `data` step whose answer the record lacks and asks for it
//! ([`Evaluation::NeedsData`]); the caller fetches it (the service, asynchronously) and
//! evaluates again — the steps before it cost microseconds and give the same values. Offline
//! (the CLI, embedded cases, replays) a missing answer is a failure of the source, handled by
//! its declared policy, so replays and back-tests never call a provider.

use crate::decision::Decision;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

/// A compiled data source.
#[derive(Debug, Clone)]
pub struct DataSource {
    /// The source's name.
    pub name: Arc<str>,
    /// The input field naming whom the data is about.
    pub subject_field: Arc<str>,
    /// The input field holding the consent reference, if declared.
    pub consent_field: Option<Arc<str>>,
    /// In waterfall order.
    pub providers: Vec<Provider>,
    /// What is taken from an answer.
    pub fields: Vec<DataField>,
    /// How long an answer is reused for the same subject (0: never).
    pub cache_ttl_seconds: u64,
    /// Consecutive failures that open a provider's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker refuses calls.
    pub breaker_open_seconds: u64,
    /// What a decision does when no provider answers.
    pub on_failure: FailurePolicy,
}

/// One provider of a data source.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The provider's name.
    pub name: String,
    /// The URL, with `{subject}` and `{secret:NAME}` placeholders.
    pub url: String,
    /// Headers, with the same placeholders.
    pub headers: Vec<(String, String)>,
    /// How long one call may take.
    pub timeout_ms: u64,
    /// Attempts after the first (for timeouts and server errors).
    pub retries: u32,
    /// What a call costs, for the record.
    pub cost: Option<Decimal>,
}

/// The type a data field's value must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFieldKind {
    /// Any number.
    Number,
    /// A whole number.
    Integer,
    /// Text.
    String,
    /// True or false.
    Boolean,
}

/// One field taken from a provider's answer.
#[derive(Debug, Clone)]
pub struct DataField {
    /// The name flows read it by (`step.name`).
    pub name: String,
    /// The RFC 6901 JSON pointer into the answer.
    pub pointer: String,
    /// The type its value must have.
    pub kind: DataFieldKind,
    /// The value when the answer lacks it (none: the answer is invalid).
    pub default: Option<serde_json::Value>,
}

/// What a decision does when a source gives no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Refer, with this reason code.
    Refer(Arc<str>),
    /// Decline, with this reason code.
    Decline(Arc<str>),
    /// Go on with the source's values missing (null).
    Continue,
}

/// Whether `value` has the field's type (numbers may be decimal strings, as money is).
fn typed(kind: DataFieldKind, value: &serde_json::Value) -> Option<serde_json::Value> {
    use serde_json::Value;
    match (kind, value) {
        (DataFieldKind::Number, Value::Number(n)) => Some(Value::String(n.to_string())),
        (DataFieldKind::Number, Value::String(s)) if Decimal::from_str(s).is_ok() => {
            Some(value.clone())
        }
        (DataFieldKind::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {
            Some(value.clone())
        }
        (DataFieldKind::String, Value::String(_)) | (DataFieldKind::Boolean, Value::Bool(_)) => {
            Some(value.clone())
        }
        _ => None,
    }
}

/// Maps a provider's response to the declared fields by JSON pointer, or says why it does not
/// fit (a provider failure, never a crash). Numbers become exact decimal strings.
pub fn map_response(
    fields: &[DataField],
    body: &serde_json::Value,
) -> Result<BTreeMap<String, serde_json::Value>, String> {
    let mut values = BTreeMap::new();
    for field in fields {
        let value = match body.pointer(&field.pointer).filter(|v| !v.is_null()) {
            Some(found) => typed(field.kind, found).ok_or_else(|| {
                format!(
                    "{} at {} should be {}, got {found}",
                    field.name,
                    field.pointer,
                    kind_name(field.kind)
                )
            })?,
            None => match &field.default {
                Some(default) => default.clone(),
                None => {
                    return Err(format!(
                        "{} is missing at {} and has no default",
                        field.name, field.pointer
                    ))
                }
            },
        };
        values.insert(field.name.clone(), value);
    }
    Ok(values)
}

pub(crate) fn kind_name(kind: DataFieldKind) -> &'static str {
    match kind {
        DataFieldKind::Number => "a number",
        DataFieldKind::Integer => "an integer",
        DataFieldKind::String => "a string",
        DataFieldKind::Boolean => "true or false",
    }
}

/// A source's mapped values by field name, shared: the answer, the decision's record of it and
/// a provider cache hold one map, not copies.
pub type DataValues = Arc<BTreeMap<String, serde_json::Value>>;

/// What the caller recorded about fetching an answer (`None`: nothing), shared: the answer and
/// the decision's record of it hold one text, not copies. Nothing recorded is `None` rather
/// than a shared null, so that the rows a back-test decides on several threads at once touch
/// no common reference count.
pub type DataMeta = Option<FetchMeta>;

/// A fetch's record (provider, calls, latency, cache hit, cost, consent) as compact JSON text,
/// written once when the answer arrives and copied into the decision's record as it is — as
/// serde_json's `RawValue` is, without checking the text again: it is only ever made by
/// serialising a value ([`FetchMeta::of`], [`FetchMeta::from_value`]), so it is JSON. (A JSON
/// tree built per fetch and walked again for the record cost some 4,000 instructions a call.)
#[derive(Clone, PartialEq, Eq)]
pub struct FetchMeta(Arc<str>);

impl FetchMeta {
    /// The compact JSON of `value`.
    pub fn of<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<FetchMeta> {
        // A fetch's record is a few hundred bytes: not `to_vec`'s room for a decision's.
        let mut bytes = Vec::with_capacity(256);
        crate::compact_json::append(&mut bytes, value)?;
        let text = String::from_utf8(bytes).map_err(serde::ser::Error::custom)?;
        Ok(FetchMeta(Arc::from(text)))
    }

    /// A recorded value (a replay's), as its compact JSON; `None` for null, which records
    /// nothing.
    pub fn from_value(value: &serde_json::Value) -> Option<FetchMeta> {
        match value {
            serde_json::Value::Null => None,
            value => Some(FetchMeta(Arc::from(value.to_string()))),
        }
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        &self.0
    }

    /// The record as a JSON value.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

impl std::fmt::Debug for FetchMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for FetchMeta {
    /// Written as it is, as a `RawValue` is (compact JSON writers copy the text; serde_json's
    /// value serialiser parses it).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut raw = serializer.serialize_struct(crate::compact_json::RAW_VALUE_TOKEN, 1)?;
        raw.serialize_field(crate::compact_json::RAW_VALUE_TOKEN, &*self.0)?;
        raw.end()
    }
}

/// A source's answer for one `data` step.
#[derive(Debug, Clone, PartialEq)]
pub struct DataAnswer {
    /// Whether the source gave a usable answer.
    pub ok: bool,
    /// The mapped values (empty when not ok).
    pub values: DataValues,
    /// Why the source failed.
    pub reason: Option<String>,
    /// What the caller recorded about fetching it (provider, calls, latency, cache hit, cost,
    /// consent), recorded in the decision as is.
    pub meta: DataMeta,
}

/// The answers a decision is made with, by `data` step id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataRecord {
    answers: BTreeMap<String, DataAnswer>,
    /// Online, a missing answer is asked for; offline it is a failure of the source.
    online: bool,
}

impl DataRecord {
    /// A record the caller fills by fetching what evaluation asks for.
    pub fn online() -> DataRecord {
        DataRecord {
            answers: BTreeMap::new(),
            online: true,
        }
    }

    /// A record that is all there is: missing answers are failures (replays, back-tests).
    pub fn offline() -> DataRecord {
        DataRecord::default()
    }

    /// Whether the record holds no answer.
    pub fn is_empty(&self) -> bool {
        self.answers.is_empty()
    }

    /// Whether missing answers are asked for (online) or failures (offline).
    pub fn is_online(&self) -> bool {
        self.online
    }

    /// The same answers, offline (shadow arms use what the champion's run was given).
    pub fn offline_copy(&self) -> DataRecord {
        DataRecord {
            answers: self.answers.clone(),
            online: false,
        }
    }

    /// Records a step's answer.
    pub fn insert(&mut self, step: impl Into<String>, answer: DataAnswer) {
        self.answers.insert(step.into(), answer);
    }

    /// A step's answer, if recorded.
    pub fn get(&self, step: &str) -> Option<&DataAnswer> {
        self.answers.get(step)
    }

    /// A step's answer to change in place (a caller reusing one record from row to row).
    pub fn get_mut(&mut self, step: &str) -> Option<&mut DataAnswer> {
        self.answers.get_mut(step)
    }

    /// Takes a step's answer out.
    pub fn remove(&mut self, step: &str) -> Option<DataAnswer> {
        self.answers.remove(step)
    }

    /// The answers a decision record used, offline: replaying it calls nobody.
    pub fn from_record(decision: &crate::DecisionRecord) -> DataRecord {
        let used: Vec<serde_json::Value> = decision
            .data
            .iter()
            .filter_map(|raw| serde_json::from_str(raw.get()).ok())
            .collect();
        DataRecord::from_data_uses(&used)
    }

    /// The answers a recorded decision used (its `data` list), offline: replaying it calls
    /// nobody.
    pub fn from_decision_json(decision: &serde_json::Value) -> DataRecord {
        DataRecord::from_data_uses(decision["data"].as_array().map_or(&[], |a| a.as_slice()))
    }

    fn from_data_uses(uses: &[serde_json::Value]) -> DataRecord {
        let mut record = DataRecord::offline();
        for used in uses {
            let (Some(step), Some(status)) = (used["step"].as_str(), used["status"].as_str())
            else {
                continue;
            };
            if status == "skipped" {
                continue;
            }
            let values: BTreeMap<String, serde_json::Value> = used["values"]
                .as_object()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default();
            record.insert(
                step,
                DataAnswer {
                    ok: status == "ok",
                    values: Arc::new(values),
                    reason: used["reason"].as_str().map(str::to_string),
                    meta: FetchMeta::from_value(&used["meta"]),
                },
            );
        }
        record
    }
}

/// What evaluation asks the caller to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRequest {
    /// The `data` step, the key of the answer in the record.
    pub step: String,
    /// The data source to call.
    pub source: String,
    /// Whom the data is about.
    pub subject: String,
    /// The consent reference to record with the call.
    pub consent: Option<String>,
}

/// The result of evaluating with a data record.
#[derive(Debug, Clone)]
pub enum Evaluation {
    /// The flow decided.
    Decided(Box<Decision>),
    /// The data steps to answer before evaluating again: one, or several adjacent steps that
    /// do not read each other's answers (fetch them concurrently).
    NeedsData(Vec<DataRequest>),
}

/// A data step as the decision records it; replays take the values from here.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataUse {
    /// The `data` step.
    pub step: Arc<str>,
    /// Its data source.
    pub source: Arc<str>,
    /// `ok`, `failed` or `skipped` (the step's `when` did not hold: nobody was called).
    pub status: &'static str,
    /// Whom the data was about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The mapped values used.
    #[serde(skip_serializing_if = "no_values")]
    pub values: DataValues,
    /// Why the source failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Arc<str>>,
    /// What the caller recorded about fetching it (provider, calls, cache hit, consent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: DataMeta,
}

fn no_values(values: &DataValues) -> bool {
    values.is_empty()
}

/// No values: shared, so a step that is skipped or fails allocates no map of its own.
pub(crate) fn no_data_values() -> DataValues {
    static EMPTY: std::sync::LazyLock<DataValues> = std::sync::LazyLock::new(DataValues::default);
    EMPTY.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(
        name: &str,
        pointer: &str,
        kind: DataFieldKind,
        default: Option<serde_json::Value>,
    ) -> DataField {
        DataField {
            name: name.into(),
            pointer: pointer.into(),
            kind,
            default,
        }
    }

    #[test]
    fn responses_map_by_pointer_or_fail_with_the_reason() {
        let fields = [
            field(
                "inquiries",
                "/report/inquiries_12m",
                DataFieldKind::Integer,
                Some(json!(0)),
            ),
            field(
                "utilisation",
                "/report/revolving/utilisation",
                DataFieldKind::Number,
                None,
            ),
            field(
                "verified",
                "/income/verified",
                DataFieldKind::Boolean,
                Some(json!(false)),
            ),
        ];
        let cases: &[(serde_json::Value, Result<serde_json::Value, &str>)] = &[
            (
                json!({"report": {"inquiries_12m": 3, "revolving": {"utilisation": 0.4512}}}),
                Ok(json!({"inquiries": 3, "utilisation": "0.4512", "verified": false})),
            ),
            (
                json!({"report": {"revolving": {"utilisation": "1.5"}}, "income": {"verified": true}}),
                Ok(json!({"inquiries": 0, "utilisation": "1.5", "verified": true})),
            ),
            (
                json!({"report": {}}),
                Err("utilisation is missing at /report/revolving/utilisation"),
            ),
            (
                json!({"report": {"inquiries_12m": "three", "revolving": {"utilisation": 0.1}}}),
                Err("inquiries at /report/inquiries_12m should be an integer"),
            ),
            (json!("<html>"), Err("utilisation is missing")),
        ];
        for (body, expected) in cases {
            let got = map_response(&fields, body);
            match (expected, got) {
                (Ok(want), Ok(values)) => assert_eq!(&serde_json::to_value(values).unwrap(), want),
                (Err(want), Err(error)) => assert!(error.contains(want), "{error}"),
                (want, got) => panic!("{body}: expected {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn a_recorded_decision_gives_back_its_answers_offline() {
        let decision = json!({"data": [
            {"step": "bureau", "source": "bureau", "status": "ok", "values": {"inquiries": 2}, "meta": {"provider": "a"}},
            {"step": "income", "source": "income", "status": "failed", "reason": "timeout"},
            {"step": "debts", "source": "debts", "status": "skipped"}
        ]});
        let record = DataRecord::from_decision_json(&decision);
        assert!(!record.is_online());
        assert_eq!(record.get("bureau").unwrap().values["inquiries"], json!(2));
        assert!(!record.get("income").unwrap().ok);
        assert!(record.get("debts").is_none());
    }
}
