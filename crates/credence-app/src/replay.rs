//! Comparing a replayed decision with the recorded one: which answer fields changed, and
//! where the two traces part.

use serde::Serialize;
use serde_json::Value;

/// The answer fields a replay compares, in the order a reader cares about them.
const COMPARED: [&str; 7] = [
    "outcome",
    "limit",
    "apr",
    "term_months",
    "reasons",
    "referral",
    "arm",
];

/// One top-level field that differs between the recorded and the replayed decision.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldChange {
    /// The field's name (`outcome`, `offer`, `reasons`, …).
    pub field: String,
    /// Any JSON value.
    pub recorded: Value,
    /// Any JSON value.
    pub replayed: Value,
}

/// The first trace step at which the replay went another way.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StepDivergence {
    /// 0-based position in the trace.
    pub index: usize,
    /// The step id in the recorded trace (null when the recorded trace is shorter).
    pub recorded_step: Option<String>,
    /// The step id in the replayed trace (null when the replayed trace is shorter).
    pub replayed_step: Option<String>,
    /// Any JSON value.
    pub recorded: Value,
    /// Any JSON value.
    pub replayed: Value,
}

/// How a replayed decision differs from the recorded one.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DecisionDiff {
    /// True when the replay reproduced the whole recorded decision, trace included.
    pub identical: bool,
    /// Top-level fields that differ.
    pub changes: Vec<FieldChange>,
    /// The first trace step that differs, if any.
    pub first_divergent_step: Option<StepDivergence>,
}

/// Reason codes only: texts may change with a translation without the decision changing.
fn comparable(field: &str, value: Option<&Value>) -> Value {
    let value = value.cloned().unwrap_or(Value::Null);
    if field == "reasons" {
        if let Value::Array(reasons) = &value {
            return Value::Array(
                reasons
                    .iter()
                    .map(|r| r.get("code").cloned().unwrap_or(Value::Null))
                    .collect(),
            );
        }
    }
    value
}

/// Compares two decisions as JSON (the recorded one may carry fields such as `id` that a
/// replay does not; only the decision's own fields count towards `identical`).
pub fn diff(recorded: &Value, replayed: &Value) -> DecisionDiff {
    let changes: Vec<FieldChange> = COMPARED
        .iter()
        .filter_map(|field| {
            let a = comparable(field, recorded.get(field));
            let b = comparable(field, replayed.get(field));
            (a != b).then(|| FieldChange {
                field: field.to_string(),
                recorded: a,
                replayed: b,
            })
        })
        .collect();
    let steps = |d: &Value| {
        d.pointer("/trace/steps")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (recorded_steps, replayed_steps) = (steps(recorded), steps(replayed));
    let longest = recorded_steps.len().max(replayed_steps.len());
    let first_divergent_step = (0..longest).find_map(|index| {
        let a = recorded_steps.get(index);
        let b = replayed_steps.get(index);
        (a != b).then(|| {
            let id = |s: Option<&Value>| {
                s.and_then(|s| s.get("step"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            StepDivergence {
                index,
                recorded_step: id(a),
                replayed_step: id(b),
                recorded: a.cloned().unwrap_or(Value::Null),
                replayed: b.cloned().unwrap_or(Value::Null),
            }
        })
    });
    // The record's envelope (its id and format version) is not part of the decision.
    let strip = |d: &Value| {
        let mut d = d.clone();
        if let Some(map) = d.as_object_mut() {
            map.remove("id");
            map.remove("record_version");
        }
        d
    };
    DecisionDiff {
        identical: strip(recorded) == strip(replayed),
        changes,
        first_divergent_step,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decision(outcome: &str, limit: &str, reasons: &[&str], rows: Vec<usize>) -> Value {
        json!({
            "outcome": outcome, "limit": limit, "apr": "0.12", "term_months": 24,
            "reasons": reasons.iter().map(|c| json!({"code": c, "text": format!("text {c}")})).collect::<Vec<_>>(),
            "arm": "champion",
            "trace": {"steps": [
                {"step": "applicant", "kind": "features"},
                {"step": "grade", "kind": "table", "rows": rows},
                {"step": "terms", "kind": "table", "rows": [1]},
            ]}
        })
    }

    #[test]
    fn the_same_decision_is_identical_whatever_its_id() {
        let mut recorded = decision("approve", "6000", &[], vec![2]);
        let replayed = recorded.clone();
        recorded["id"] = json!("dec_1");
        let d = diff(&recorded, &replayed);
        assert!(d.identical && d.changes.is_empty() && d.first_divergent_step.is_none());
    }

    /// Table of (recorded, replayed, changed fields, first divergent step).
    #[test]
    fn changes_and_the_first_divergent_step_are_reported() {
        let cases = [
            (
                decision("approve", "6000", &[], vec![2]),
                decision("decline", "6000", &["SC_LOW"], vec![3]),
                vec!["outcome", "reasons"],
                Some("grade"),
            ),
            (
                decision("approve", "6000", &[], vec![2]),
                decision("approve", "5000", &[], vec![2]),
                vec!["limit"],
                None,
            ),
        ];
        for (recorded, replayed, fields, step) in cases {
            let d = diff(&recorded, &replayed);
            let changed: Vec<&str> = d.changes.iter().map(|c| c.field.as_str()).collect();
            assert_eq!(changed, fields);
            assert!(!d.identical);
            assert_eq!(
                d.first_divergent_step
                    .and_then(|s| s.recorded_step)
                    .as_deref(),
                step
            );
        }
    }

    #[test]
    fn reason_texts_alone_do_not_count_as_a_changed_reason() {
        let recorded = decision("decline", "0", &["A"], vec![1]);
        let mut replayed = recorded.clone();
        replayed["reasons"][0]["text"] = json!("另一个");
        let d = diff(&recorded, &replayed);
        assert!(d.changes.is_empty());
        assert!(!d.identical, "the text did change");
    }
}
