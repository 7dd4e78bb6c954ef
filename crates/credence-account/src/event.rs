//! Account events: the raw JSON a servicing system posts, validated into typed [`Event`]s.

use crate::error::EventViolation;
use chrono::{DateTime, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Milliseconds in a day; event days are UTC days since 1970-01-01.
pub const DAY_MS: i64 = 86_400_000;

/// A validated account event. Its `id` is unique per account: a repeated id is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The sender's id of the event; unique per account.
    pub id: String,
    /// When it happened (UTC milliseconds), not when it arrived: late events are applied as of
    /// this time.
    pub time_ms: i64,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// The UTC day of the event, counted from 1970-01-01.
    pub fn day(&self) -> i32 {
        day_of(self.time_ms)
    }
}

/// The UTC day (since 1970-01-01) holding `time_ms`.
pub fn day_of(time_ms: i64) -> i32 {
    time_ms.div_euclid(DAY_MS) as i32
}

/// The UTC day number of a date.
pub fn day_of_date(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch");
    (date - epoch).num_days() as i32
}

/// The date of a UTC day number.
pub fn date_of_day(day: i32) -> NaiveDate {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid epoch");
    epoch + chrono::Duration::days(i64::from(day))
}

/// What an account event says happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// Money drawn on the line.
    Drawdown {
        /// How much.
        amount: Decimal,
    },
    /// A payment received.
    Repayment {
        /// How much.
        amount: Decimal,
        /// The account's delinquency after it (0: current).
        #[serde(default)]
        days_past_due: u32,
    },
    /// An instalment fell due.
    InstalmentDue {
        /// How much fell due.
        amount: Decimal,
    },
    /// An instalment was not paid.
    InstalmentMissed {
        /// How many days late the account is now.
        days_past_due: u32,
        /// How much was not paid.
        amount: Decimal,
    },
    /// The bureau reports a change elsewhere.
    BureauAlert {
        /// Which change.
        alert: BureauAlert,
        /// Delinquency days reported on the other account (new_delinquency).
        #[serde(default)]
        days_past_due: u32,
        /// New inquiries (new_inquiries).
        #[serde(default)]
        count: u32,
        /// New debt taken elsewhere (new_debt).
        #[serde(default)]
        amount: Decimal,
    },
    /// Newly verified monthly income.
    IncomeUpdate {
        /// The income.
        monthly_income: Decimal,
    },
    /// The customer changed a contact detail.
    ContactChange {
        /// Which detail.
        field: ContactField,
    },
}

/// What the bureau reports about the customer's other credit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BureauAlert {
    /// A new delinquency on another account.
    NewDelinquency,
    /// New credit inquiries.
    NewInquiries,
    /// New debt taken elsewhere.
    NewDebt,
}

/// A contact detail that changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactField {
    /// The phone number.
    Phone,
    /// The email address.
    Email,
    /// The postal address.
    Address,
}

impl EventKind {
    /// The kind's name, as the `type` field gives it.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Drawdown { .. } => "drawdown",
            EventKind::Repayment { .. } => "repayment",
            EventKind::InstalmentDue { .. } => "instalment_due",
            EventKind::InstalmentMissed { .. } => "instalment_missed",
            EventKind::BureauAlert { .. } => "bureau_alert",
            EventKind::IncomeUpdate { .. } => "income_update",
            EventKind::ContactChange { .. } => "contact_change",
        }
    }

    /// Events after which the strategy's early-warning flow runs.
    pub fn triggers_early_warning(&self) -> bool {
        matches!(
            self,
            EventKind::InstalmentMissed { .. } | EventKind::BureauAlert { .. }
        )
    }
}

const EVENT_TYPES: &str = "drawdown, repayment, instalment_due, instalment_missed, bureau_alert, income_update, contact_change";
/// Longest accepted event id.
pub const EVENT_ID_MAX_LEN: usize = 128;

/// Validates one posted event; every problem is listed, each naming its field.
pub fn parse_event(path: &str, raw: &serde_json::Value) -> Result<Event, Vec<EventViolation>> {
    let mut violations = Vec::new();
    let mut violation = |field: &str, message: String| {
        violations.push(EventViolation {
            path: format!("{path}.{field}"),
            message,
        })
    };
    let Some(object) = raw.as_object() else {
        return Err(vec![EventViolation {
            path: path.to_string(),
            message: "expected a JSON object with id, time and type".into(),
        }]);
    };
    let id = match object.get("id").and_then(|v| v.as_str()) {
        Some(id) if !id.is_empty() && id.len() <= EVENT_ID_MAX_LEN => Some(id.to_string()),
        _ => {
            violation(
                "id",
                format!("give a non-empty string of at most {EVENT_ID_MAX_LEN} characters, unique per account"),
            );
            None
        }
    };
    let time_ms = match object.get("time").and_then(|v| v.as_str()) {
        Some(text) => match DateTime::parse_from_rfc3339(text) {
            Ok(time) => Some(time.timestamp_millis()),
            Err(_) => {
                violation(
                    "time",
                    format!(
                        "give an RFC 3339 timestamp such as 2026-11-01T09:30:00Z, got {text:?}"
                    ),
                );
                None
            }
        },
        None => {
            violation(
                "time",
                "give the event time as an RFC 3339 timestamp, e.g. 2026-11-01T09:30:00Z".into(),
            );
            None
        }
    };
    let money = |field: &str, required: bool, violation: &mut dyn FnMut(&str, String)| -> Decimal {
        match object.get(field) {
            None | Some(serde_json::Value::Null) if !required => Decimal::ZERO,
            Some(value) => match credence_engine::json_decimal(value) {
                Some(d) if d >= Decimal::ZERO => d,
                _ => {
                    violation(field, format!("give a non-negative amount (a number or a decimal string), got {value}"));
                    Decimal::ZERO
                }
            },
            None => {
                violation(field, "required: give a non-negative amount".into());
                Decimal::ZERO
            }
        }
    };
    let count = |field: &str, required: bool, violation: &mut dyn FnMut(&str, String)| -> u32 {
        match object.get(field) {
            None | Some(serde_json::Value::Null) if !required => 0,
            Some(value) => match value.as_u64().filter(|n| *n <= 100_000) {
                Some(n) => n as u32,
                None => {
                    violation(
                        field,
                        format!("give a whole number from 0 to 100000, got {value}"),
                    );
                    0
                }
            },
            None => {
                violation(field, "required: give a whole number of days".into());
                0
            }
        }
    };
    let kind = match object.get("type").and_then(|v| v.as_str()) {
        Some("drawdown") => Some(EventKind::Drawdown {
            amount: money("amount", true, &mut violation),
        }),
        Some("repayment") => Some(EventKind::Repayment {
            amount: money("amount", true, &mut violation),
            days_past_due: count("days_past_due", false, &mut violation),
        }),
        Some("instalment_due") => Some(EventKind::InstalmentDue {
            amount: money("amount", true, &mut violation),
        }),
        Some("instalment_missed") => Some(EventKind::InstalmentMissed {
            days_past_due: count("days_past_due", true, &mut violation),
            amount: money("amount", false, &mut violation),
        }),
        Some("bureau_alert") => {
            let alert = match object.get("alert").and_then(|v| v.as_str()) {
                Some("new_delinquency") => Some(BureauAlert::NewDelinquency),
                Some("new_inquiries") => Some(BureauAlert::NewInquiries),
                Some("new_debt") => Some(BureauAlert::NewDebt),
                _ => {
                    violation(
                        "alert",
                        "give one of new_delinquency, new_inquiries, new_debt".into(),
                    );
                    None
                }
            };
            let days_past_due = count("days_past_due", false, &mut violation);
            let count_value = count("count", false, &mut violation);
            let amount = money("amount", false, &mut violation);
            alert.map(|alert| EventKind::BureauAlert {
                alert,
                days_past_due,
                count: count_value,
                amount,
            })
        }
        Some("income_update") => Some(EventKind::IncomeUpdate {
            monthly_income: money("monthly_income", true, &mut violation),
        }),
        Some("contact_change") => match object.get("field").and_then(|v| v.as_str()) {
            Some("phone") => Some(EventKind::ContactChange {
                field: ContactField::Phone,
            }),
            Some("email") => Some(EventKind::ContactChange {
                field: ContactField::Email,
            }),
            Some("address") => Some(EventKind::ContactChange {
                field: ContactField::Address,
            }),
            _ => {
                violation("field", "give one of phone, email, address".into());
                None
            }
        },
        other => {
            violation(
                "type",
                format!(
                    "give one of {EVENT_TYPES}, got {}",
                    other.map_or("nothing".into(), |t| format!("{t:?}"))
                ),
            );
            None
        }
    };
    match (id, time_ms, kind) {
        (Some(id), Some(time_ms), Some(kind)) if violations.is_empty() => {
            Ok(Event { id, time_ms, kind })
        }
        _ => Err(violations),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_parse_or_name_the_field_to_fix() {
        let cases: &[(serde_json::Value, Result<&str, &[&str]>)] = &[
            (
                json!({"id": "e1", "time": "2026-11-01T09:30:00Z", "type": "drawdown", "amount": "500"}),
                Ok("drawdown"),
            ),
            (
                json!({"id": "e1", "time": "2026-11-01T09:30:00+08:00", "type": "repayment", "amount": 120.5}),
                Ok("repayment"),
            ),
            (
                json!({"id": "e1", "time": "2026-11-01T09:30:00Z", "type": "instalment_missed", "days_past_due": 5}),
                Ok("instalment_missed"),
            ),
            (
                json!({"id": "e1", "time": "2026-11-01T09:30:00Z", "type": "bureau_alert", "alert": "new_inquiries", "count": 3}),
                Ok("bureau_alert"),
            ),
            (
                json!({"id": "e1", "time": "2026-11-01T09:30:00Z", "type": "contact_change", "field": "phone"}),
                Ok("contact_change"),
            ),
            (
                json!({"id": "", "time": "yesterday", "type": "drawdown", "amount": -1}),
                Err(&["e.id", "e.time", "e.amount"]),
            ),
            (
                json!({"id": "e1", "time": "2026-11-01T09:30:00Z", "type": "transfer"}),
                Err(&["e.type"]),
            ),
            (
                json!({"id": "e1", "time": "2026-11-01T09:30:00Z", "type": "instalment_missed"}),
                Err(&["e.days_past_due"]),
            ),
            (
                json!({"id": "e1", "time": "2026-11-01T09:30:00Z", "type": "bureau_alert", "alert": "gossip"}),
                Err(&["e.alert"]),
            ),
            (json!([1, 2]), Err(&["e"])),
        ];
        for (raw, expected) in cases {
            let got = parse_event("e", raw);
            match (expected, got) {
                (Ok(kind), Ok(event)) => assert_eq!(event.kind.name(), *kind, "{raw}"),
                (Err(paths), Err(violations)) => {
                    let got: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
                    assert_eq!(&got, paths, "{raw}");
                }
                (expected, got) => panic!("{raw}: expected {expected:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn late_timezone_offsets_become_utc_days() {
        let event = parse_event(
            "e",
            &json!({"id": "e", "time": "2026-11-02T01:00:00+08:00", "type": "drawdown", "amount": 1}),
        )
        .unwrap();
        assert_eq!(
            date_of_day(event.day()),
            NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()
        );
    }
}
