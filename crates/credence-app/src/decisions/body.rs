//! A decision request's body, parsed once: its top-level entries in the order sent, validated against a flow without a JSON map being built; the map only where something reads the whole body.
//!
//! Nearly every body is a valid object of the flow's fields. Parsing it into a
//! `serde_json::Value` put every key into a B-tree only for the schema to look each one up
//! again, and that map was then dropped: about a third of the cost of taking a body in. The
//! entries go to the schema as they are ([`CompiledStrategy::validate_input_entries`]); the map
//! is built, once, only when a referral's facts, a shadow evaluation, a debug log or a refused
//! input's full list of violations needs it. A body that is not an object, or that repeats a
//! key, takes the strict parse of [`crate::strict_json::parse_value`] and its errors, as before.

use crate::error::AppError;
use crate::strict_json::{self, Entries};
use credence_engine::{CompiledStrategy, ValidatedInput};
use serde_json::Value;
use std::sync::OnceLock;

/// A body that parsed as a JSON object.
pub(super) struct InputBody<'a> {
    /// The entries as sent, when the body was read that way.
    entries: Option<Entries<'a>>,
    /// The body as a JSON object: built on first use from the entries, or parsed whole.
    object: OnceLock<Value>,
}

impl<'a> InputBody<'a> {
    /// Parses `bytes`; `Err` is the strict parse's error (bad JSON, a repeated key), `Ok(None)`
    /// a document that is JSON but not an object.
    pub(super) fn parse(bytes: &'a [u8]) -> Result<Option<InputBody<'a>>, serde_json::Error> {
        if let Ok(entries) = strict_json::parse_object_entries(bytes) {
            return Ok(Some(InputBody {
                entries: Some(entries),
                object: OnceLock::new(),
            }));
        }
        // The strict parse names what is wrong (or finds a value that is not an object).
        let value = strict_json::parse_value(bytes)?;
        if !value.is_object() {
            return Ok(None);
        }
        Ok(Some(InputBody {
            entries: None,
            object: OnceLock::from(value),
        }))
    }

    /// A top-level string field (`customer_id`).
    pub(super) fn str_field(&self, name: &str) -> Option<&str> {
        match &self.entries {
            Some(entries) => entries
                .iter()
                .find(|(key, _)| key == name)
                .and_then(|(_, value)| value.as_str()),
            None => self.object().get(name).and_then(Value::as_str),
        }
    }

    /// The body as a JSON object, exactly as the strict parse builds it.
    pub(super) fn object(&self) -> &Value {
        self.object.get_or_init(|| {
            let entries = self.entries.iter().flatten();
            Value::Object(
                entries
                    .map(|(key, value)| (key.to_string(), value.clone()))
                    .collect(),
            )
        })
    }

    /// The input validated for `flow` of `strategy`: from the entries when they pass, else by
    /// the schema over the whole object, which lists every violation.
    pub(super) fn validate(
        &self,
        strategy: &CompiledStrategy,
        flow: &str,
    ) -> Result<ValidatedInput, AppError> {
        if let Some(entries) = &self.entries {
            let entries = entries.iter().map(|(key, value)| (key.as_ref(), value));
            if let Some(input) = strategy.validate_input_entries(flow, entries)? {
                return Ok(input);
            }
        }
        Ok(strategy.validate_input(flow, self.object())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bodies_that_are_not_objects_or_repeat_a_key_are_told_apart() {
        let cases: &[(&str, &str)] = &[
            (r#"{"a": 1, "b": [1, {"c": null}]}"#, "object"),
            (r#"[1, 2]"#, "not an object"),
            (r#""text""#, "not an object"),
            (
                r#"{"a": 1, "a": 2}"#,
                "duplicate key `a`: an object may name each key once at line 1 column 12",
            ),
            (r#"{"a": {"b": 1, "b": 2}}"#, "duplicate key `b`"),
            (r#"{"a": 1} x"#, "trailing characters"),
            (r#"{"a": 1"#, "EOF while parsing an object"),
        ];
        for (text, expected) in cases {
            let said = match InputBody::parse(text.as_bytes()) {
                Ok(Some(_)) => "object".to_string(),
                Ok(None) => "not an object".to_string(),
                Err(error) => error.to_string(),
            };
            assert!(said.starts_with(expected), "{text}: {said}");
        }
        // Text that is not UTF-8 is refused where the strict parse refuses it.
        let bytes = b"{\"a\": \"\xff\"}";
        let error = InputBody::parse(bytes).err().map(|e| e.to_string());
        let strict = strict_json::parse_value(bytes).err().map(|e| e.to_string());
        assert!(error.is_some());
        assert_eq!(error, strict);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            "\\PC{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-c\\\\\"]{0,3}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// The object built from the entries is the strict parse's, escaped keys included.
        #[test]
        fn the_object_from_entries_is_the_strict_parse(
            object in prop::collection::btree_map("[a-e\\\\\"é]{0,4}", json_value(), 0..12)
        ) {
            let text = serde_json::to_string(&object).unwrap();
            let body = InputBody::parse(text.as_bytes()).unwrap().unwrap();
            prop_assert!(body.entries.is_some());
            prop_assert_eq!(body.object(), &strict_json::parse_value(text.as_bytes()).unwrap());
        }
    }
}
