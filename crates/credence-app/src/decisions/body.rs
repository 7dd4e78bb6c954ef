//! A decision request's body, parsed once: its top-level entries in the order sent, validated against a flow without a JSON map being built; the map only where something reads the whole body.
//!
//! Nearly every body is a valid object of the flow's fields. Parsing it into a
//! `serde_json::Value` put every key into a B-tree only for the schema to look each one up
//! again, and that map was then dropped: about a third of the cost of taking a body in. The
//! entries go to the schema as they are ([`CompiledStrategy::validate_input_entries`]); the map
//! is built, once, only when a referral's facts, a shadow evaluation, a debug log or a refused
//! input's full list of violations needs it. A body that is not an object, or that repeats a
//! key, takes the strict parse of [`crate::strict_json::parse_value`] and its errors, as before.
//!
//! A flat object of scalars without escapes, as nearly every body is, is read by
//! [`crate::flat_json`] with its strings borrowed; any other object by the strict parse into
//! entries of JSON values. Both validate alike.

use crate::error::AppError;
use crate::flat_json::{self, FlatEntries};
use crate::strict_json::{self, Entries};
use credence_engine::{CompiledStrategy, ValidatedInput};
use serde_json::Value;
use std::sync::OnceLock;

/// A body that parsed as a JSON object.
pub(super) struct InputBody<'a> {
    /// The entries as sent, when the body was read that way.
    entries: Option<BodyEntries<'a>>,
    /// The body as a JSON object: built on first use from the entries, or parsed whole.
    object: OnceLock<Value>,
    /// The body's text, when it was checked to be UTF-8 on the way in.
    text: Option<&'a str>,
}

/// A body's entries in the order sent.
enum BodyEntries<'a> {
    /// A flat object's, strings borrowed ([`flat_json`]).
    Flat(FlatEntries<'a>),
    /// Any other object's, by the strict parse.
    Parsed(Entries<'a>),
}

impl<'a> InputBody<'a> {
    /// Parses `bytes`; `Err` is the strict parse's error (bad JSON, a repeated key), `Ok(None)`
    /// a document that is JSON but not an object.
    pub(super) fn parse(bytes: &'a [u8]) -> Result<Option<InputBody<'a>>, serde_json::Error> {
        let text = std::str::from_utf8(bytes).ok();
        let entries = match text.and_then(flat_json::parse_flat_text) {
            Some(flat) => Ok(BodyEntries::Flat(flat)),
            None => strict_json::parse_object_entries(bytes).map(BodyEntries::Parsed),
        };
        if let Ok(entries) = entries {
            return Ok(Some(InputBody {
                entries: Some(entries),
                object: OnceLock::new(),
                text,
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
            text,
        }))
    }

    /// The body as text, as it was sent: it parsed as JSON, so it is UTF-8 (the lossy form
    /// is only a guard).
    pub(super) fn text(&self, bytes: &[u8]) -> String {
        match self.text {
            Some(text) => text.to_owned(),
            None => String::from_utf8_lossy(bytes).into_owned(),
        }
    }

    /// A top-level string field (`customer_id`).
    pub(super) fn str_field(&self, name: &str) -> Option<&str> {
        match &self.entries {
            Some(BodyEntries::Flat(entries)) => entries
                .iter()
                .find(|(key, _)| *key == name)
                .and_then(|(_, value)| match value {
                    flat_json::FlatValue::Text(text) => Some(*text),
                    flat_json::FlatValue::Json(_) => None,
                }),
            Some(BodyEntries::Parsed(entries)) => entries
                .iter()
                .find(|(key, _)| key == name)
                .and_then(|(_, value)| value.as_str()),
            None => self.object().get(name).and_then(Value::as_str),
        }
    }

    /// The body as a JSON object, exactly as the strict parse builds it.
    pub(super) fn object(&self) -> &Value {
        self.object.get_or_init(|| match &self.entries {
            Some(BodyEntries::Flat(entries)) => Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| ((*key).to_string(), value.to_json()))
                    .collect(),
            ),
            Some(BodyEntries::Parsed(entries)) => Value::Object(
                entries
                    .iter()
                    .map(|(key, value)| (key.to_string(), value.clone()))
                    .collect(),
            ),
            // Not reached: without entries the object was parsed whole.
            None => Value::Object(serde_json::Map::new()),
        })
    }

    /// The input validated for `flow` of `strategy`: from the entries when they pass, else by
    /// the schema over the whole object, which lists every violation.
    pub(super) fn validate(
        &self,
        strategy: &CompiledStrategy,
        flow: &str,
    ) -> Result<ValidatedInput, AppError> {
        let input = match &self.entries {
            Some(BodyEntries::Flat(entries)) => strategy.validate_input_entries(
                flow,
                entries.iter().map(|(key, value)| (*key, value.as_raw())),
            )?,
            Some(BodyEntries::Parsed(entries)) => strategy.validate_input_entries(
                flow,
                entries.iter().map(|(key, value)| (key.as_ref(), value)),
            )?,
            None => None,
        };
        if let Some(input) = input {
            return Ok(input);
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

    fn example() -> CompiledStrategy {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/consumer-loan");
        credence_engine::compile(&crate::package_dir::read(&dir).unwrap()).unwrap()
    }

    /// A value in place of a sample's `original`, by `choice`: mostly one of the same kind
    /// written another way (so that most bodies pass and are compared whole), now and then a
    /// wrong one.
    fn variant(original: &Value, choice: usize, text: &str) -> String {
        let written = match (original, choice) {
            (_, 0) => return original.to_string(),
            (_, 1) => "null",
            (Value::Number(_), 2) => "1e3",
            (Value::Number(_), 3) => "6000.50",
            (Value::Number(_), 4) => "\"6000\"",
            (Value::Number(_), 5) => "-0",
            (Value::Number(_), 6) => "12.5E1",
            (Value::Number(_), 7) => "7",
            (Value::String(_), 2) => "\"1984-02-29\"",
            (Value::String(_), 3) => "\"1984-02-30\"",
            (Value::String(_), 4) => "\"own\"",
            (Value::String(_), 5) => "\"C-\\u0031\"",
            (Value::String(_), 6) => return serde_json::to_string(text).unwrap(),
            (_, 7) => "[1]",
            _ => "true",
        };
        written.to_string()
    }

    proptest! {
        /// A body read by the fast flat read validates as the same body read by the strict
        /// parse: the same input, or the same error.
        #[test]
        fn the_flat_read_validates_as_the_strict_parse(
            choices in prop::collection::vec(prop_oneof![24 => Just(0usize), 1 => 1usize..8], 26),
            texts in prop::collection::vec("\\PC{0,12}", 26),
            dropped in prop::option::of(0usize..26),
            undeclared in prop::bool::weighted(0.1),
        ) {
            let strategy = example();
            let sample = std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../../examples/consumer-loan/samples/application-approve.json"),
            )
            .unwrap();
            let Value::Object(sample) = serde_json::from_str::<Value>(&sample).unwrap() else {
                panic!("the sample is an object");
            };
            let mut fields: Vec<(String, String)> = sample
                .iter()
                .zip(choices.iter().zip(&texts))
                .map(|((key, value), (choice, text))| (key.clone(), variant(value, *choice, text)))
                .collect();
            if undeclared {
                fields.push(("undeclared".into(), "1".into()));
            }
            if let Some(at) = dropped {
                fields.remove(at % fields.len());
            }
            let text = format!(
                "{{{}}}",
                fields
                    .iter()
                    .map(|(key, value)| format!("\"{key}\": {value}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            let strict = InputBody {
                entries: strict_json::parse_object_entries(text.as_bytes())
                    .ok()
                    .map(BodyEntries::Parsed),
                object: OnceLock::new(),
                text: None,
            };
            let body = InputBody::parse(text.as_bytes()).unwrap().unwrap();
            // Scalars without escapes take the flat read.
            let flat = matches!(body.entries, Some(BodyEntries::Flat(_)));
            prop_assert!(flat || text.contains('[') || text.contains('\\'), "{}", text);
            let outcome = |body: &InputBody| match body.validate(&strategy, "application") {
                Ok(input) => Ok(input),
                Err(error) => Err((error.code, error.message, error.details)),
            };
            prop_assert_eq!(outcome(&body), outcome(&strict), "{}", text);
            prop_assert_eq!(body.str_field("customer_id"), strict.str_field("customer_id"));
            // The text kept for the record is the body as sent, read either way.
            prop_assert_eq!(body.text(text.as_bytes()), text.clone());
            prop_assert_eq!(strict.text(text.as_bytes()), text.clone());
            prop_assert_eq!(body.object(), strict.object());
        }
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
