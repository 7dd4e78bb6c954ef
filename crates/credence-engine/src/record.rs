//! The decision record: the one shape the API returns and the decision log keeps for years — versioned, so that every later build reads every earlier record.
//!
//! A record is written once, from the engine's [`Decision`], by [`DecisionRecord::write`], and
//! read back — by replays, review cases, accounts, monitoring — only as a [`DecisionRecord`],
//! never as the engine's internal type, so a refactor of the engine cannot silently change what
//! a reader finds in a record written years ago. The writer and the reader are held together by
//! a test: every record written and read back serialises to the very same bytes.
//!
//! Versions: `record_version` 1 is the first versioned record. Records written before the field
//! existed carry no `record_version` and have exactly version 1's fields, so they read as 1 (a
//! golden file written by that code is read in the tests). A later version adds a field with a
//! default or a new section; it never changes what an existing field means. Version 2 added
//! `requested_amount` (what the applicant asked for, by the flow's outcome mapping).
//!
//! The third-party `data`, the `shadow` decisions of challenger arms and the `trace` keep their
//! own documented shapes (docs/service.md) and are carried as raw JSON, byte for byte as
//! written; a reader parses the part it needs.

use crate::decision::{AccountAction, Decision, Outcome, Reason, Referral};
use crate::error::EngineError;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// The record version this build writes.
pub const DECISION_RECORD_VERSION: u32 = 2;

fn unversioned() -> u32 {
    1
}

/// A decision as the API returns it and the decision log keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionRecord {
    /// The decision's id (`dec_…`).
    pub id: String,
    /// The record's format; records written before versions existed read as 1.
    #[serde(default = "unversioned")]
    pub record_version: u32,
    /// The outcome.
    pub outcome: Outcome,
    /// Approved for less than was asked.
    pub counter_offer: bool,
    /// The credit limit offered, a decimal string.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^-?[0-9]+(\\.[0-9]+)?$"))]
    pub limit: Option<Decimal>,
    /// The rate offered, a decimal string (0.0899 is 8.99 %).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^-?[0-9]+(\\.[0-9]+)?$"))]
    pub apr: Option<Decimal>,
    /// The term offered, in months.
    pub term_months: Option<u32>,
    /// What the applicant asked for, by the flow's outcome mapping, a decimal string (version 2;
    /// absent from version 1 records and when the flow maps no requested amount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = "^-?[0-9]+(\\.[0-9]+)?$"))]
    pub requested_amount: Option<Decimal>,
    /// Top reasons, most important first.
    pub reasons: Vec<Reason>,
    /// Codes of `flag` rules that fired.
    pub flags: Vec<String>,
    /// Where a referral goes for manual review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referral: Option<Referral>,
    /// Account actions of an in-loan flow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<AccountAction>,
    /// Third-party data the decision used, with the values: replays read them from here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub data: Vec<Box<RawValue>>,
    /// The champion/challenger arm that decided.
    pub arm: Option<String>,
    /// The strategy's name.
    pub strategy: String,
    /// The strategy version (content hash) that decided.
    pub strategy_version: String,
    /// The flow that decided.
    pub flow: String,
    /// The date the decision was made as of; replaying with it reproduces the decision.
    pub as_of: String,
    /// What challenger arms in shadow would have decided.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub shadow: Vec<Box<RawValue>>,
    /// The compact trace: each step's result.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub trace: Box<RawValue>,
}

impl DecisionRecord {
    /// The record of `decision` under `id`, as JSON text: what the API returns and the log
    /// stores.
    ///
    /// The bytes are those of an object of `id`, `record_version` and then the decision's own
    /// fields. They are written as the id and version, then the decision's object with its
    /// opening brace turned into the comma that joins the two: a `#[serde(flatten)]` wrapper
    /// gives the same bytes through serde's map machinery, about a tenth slower. The text is
    /// written by [`crate::compact_json`]: serde_json's bytes, a fifth fewer instructions.
    pub fn write(id: &str, decision: &Decision) -> Result<String, serde_json::Error> {
        let mut out = Vec::with_capacity(4096);
        out.extend_from_slice(b"{\"id\":");
        crate::compact_json::write_str(&mut out, id);
        out.extend_from_slice(b",\"record_version\":");
        crate::compact_json::append(&mut out, &DECISION_RECORD_VERSION)?;
        let joint = out.len();
        crate::compact_json::append(&mut out, decision)?;
        // A decision is an object with fields: its text opens with `{` and goes on with one.
        debug_assert_eq!(out.get(joint..joint + 2), Some(&b"{\""[..]));
        out[joint] = b',';
        // serde_json writes UTF-8 only; the one byte changed is ASCII.
        String::from_utf8(out).map_err(<serde_json::Error as serde::ser::Error>::custom)
    }

    /// Reads a stored record of any version this build knows.
    pub fn parse(text: &str) -> Result<DecisionRecord, EngineError> {
        let record: DecisionRecord =
            serde_json::from_str(text).map_err(|e| EngineError::UnreadableRecord {
                problem: e.to_string(),
            })?;
        if record.record_version > DECISION_RECORD_VERSION {
            return Err(EngineError::RecordTooNew {
                version: record.record_version,
            });
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE_VERSIONS: &str =
        include_str!("../tests/fixtures/decision_record_before_versions.json");

    /// A record written before `record_version` existed reads as version 1.
    #[test]
    fn records_written_before_versions_read_as_version_1() {
        let record = DecisionRecord::parse(BEFORE_VERSIONS).unwrap();
        assert_eq!(record.record_version, 1);
        assert_eq!(record.id, "dec_019ac3b2f1e07a5c3e9d1f20b4c6");
        assert_eq!(record.outcome, Outcome::Refer);
        assert_eq!(record.limit, Some(Decimal::from(6000)));
        assert_eq!(record.apr, Some(Decimal::new(899, 4)));
        assert_eq!(
            record.referral.as_ref().map(|r| r.queue.as_str()),
            Some("income_verification")
        );
        assert_eq!(record.reasons[0].code.as_ref(), "REF_INCOME_MISMATCH");
        assert_eq!(record.data.len(), 3);
        assert_eq!(
            record.requested_amount, None,
            "version 2's field reads as absent"
        );
        let trace: serde_json::Value = serde_json::from_str(record.trace.get()).unwrap();
        assert!(trace["steps"].is_array());
    }

    #[test]
    fn newer_and_damaged_records_are_refused_with_their_codes() {
        let newer = BEFORE_VERSIONS.replacen("{\"id\"", "{\"record_version\":3,\"id\"", 1);
        let error = DecisionRecord::parse(&newer).unwrap_err();
        assert_eq!(error.code(), "record_too_new");
        assert!(error.to_string().contains("version 3"), "{error}");
        let damaged = DecisionRecord::parse("{\"id\":1}").unwrap_err();
        assert_eq!(damaged.code(), "unreadable_record");
    }
}
