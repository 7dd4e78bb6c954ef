//! JSON from callers, parsed strictly: an object that repeats a key is refused, naming the key and where it stands.
//!
//! `serde_json::Value` keeps the last of two equal keys. The decision log keeps the body as
//! sent, so `{"requested_amount": 999999, "requested_amount": 6000}` would be decided on 6,000
//! while a reader of the log could take 999,999: the application decided and the application
//! recorded would differ. Parsing builds the value in one pass and stops at the first
//! repeated key; serde_json adds the line and column to the error.

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::HashSet;

/// Keys of an object checked for repeats by comparison; a set past this many.
const SCANNED_KEYS: usize = 32;

/// Parses a JSON document into a value, refusing repeated keys in any object.
pub fn parse_value(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Parses a JSON document into `T`, after checking that no object in it repeats a key.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let value = parse_value(bytes)?;
    match serde_json::from_value(value) {
        Ok(parsed) => Ok(parsed),
        // Parse again for the type's error with its line and column.
        Err(_) => serde_json::from_slice(bytes),
    }
}

/// A JSON object's entries in the order written, keys borrowed from the text where they hold no
/// escapes, values parsed as [`parse_value`] parses them.
pub type Entries<'a> = Vec<(Cow<'a, str>, Value)>;

/// Parses a document that is one JSON object into its entries, without building a map of them.
/// Refused as [`parse_value`] refuses (the same errors, at the same places): bad JSON, a repeated
/// key in any object; and a document that is not an object (its message then says so, and
/// [`parse_value`] is the one to ask for the value).
pub fn parse_object_entries(bytes: &[u8]) -> Result<Entries<'_>, serde_json::Error> {
    // UTF-8 checked once for the whole text, not string by string as a parse of bytes does; a
    // text that is not UTF-8 is parsed as bytes, for the error at its place.
    let Ok(text) = std::str::from_utf8(bytes) else {
        return entries_of(serde_json::Deserializer::from_slice(bytes));
    };
    entries_of(serde_json::Deserializer::from_str(text))
}

fn entries_of<'de, R: serde_json::de::Read<'de>>(
    mut deserializer: serde_json::Deserializer<R>,
) -> Result<Entries<'de>, serde_json::Error> {
    let entries = deserializer.deserialize_map(ObjectEntries)?;
    deserializer.end()?;
    Ok(entries)
}

struct ObjectEntries;

impl<'de> Visitor<'de> for ObjectEntries {
    type Value = Entries<'de>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<'de>, A::Error> {
        let mut entries: Entries<'de> = Vec::with_capacity(map.size_hint().unwrap_or(16).min(64));
        // A key is compared with each earlier one while there are few (keys of other lengths
        // differ at once); past SCANNED_KEYS a set takes over, so a hostile body of many keys
        // costs a hash a key, not a comparison with every key before it.
        let mut seen: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(key) = map.next_key_seed(BorrowedKey)? {
            let repeated = match &mut seen {
                Some(seen) => !seen.insert(key.clone()),
                None => entries.iter().any(|(earlier, _)| *earlier == key),
            };
            if repeated {
                return Err(A::Error::custom(format_args!(
                    "duplicate key `{key}`: an object may name each key once"
                )));
            }
            let value = map.next_value_seed(StrictValue)?;
            entries.push((key, value));
            if seen.is_none() && entries.len() == SCANNED_KEYS {
                seen = Some(entries.iter().map(|(key, _)| key.clone()).collect());
            }
        }
        Ok(entries)
    }
}

/// An object's key, borrowed from the text when it has no escapes.
struct BorrowedKey;

impl<'de> DeserializeSeed<'de> for BorrowedKey {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for BorrowedKey {
    type Value = Cow<'de, str>;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a string key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // The map is ordered: a lookup is a few comparisons, no allocation.
            if object.contains_key(&key) {
                return Err(A::Error::custom(format_args!(
                    "duplicate key `{key}`: an object may name each key once"
                )));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn repeated_keys_are_refused_with_their_place() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"{"a": 1, "b": 2}"#, None),
            (r#"{"a": 1, "a": 2}"#, Some("duplicate key `a`: an object may name each key once at line 1 column 12")),
            (
                "{\"requested_amount\": 999999,\n \"requested_amount\": 6000}",
                Some("duplicate key `requested_amount`: an object may name each key once at line 2 column 19"),
            ),
            (r#"{"x": {"a": 1}, "y": {"a": 2}}"#, None),
            (r#"[{"a": 1, "b": {"c": 1, "c": 2}}]"#, Some("duplicate key `c`")),
            (r#"{"a": 1} x"#, Some("trailing characters")),
        ];
        for (text, expected) in cases {
            match (parse_value(text.as_bytes()), expected) {
                (Ok(_), None) => {}
                (Err(e), Some(expected)) => {
                    assert!(e.to_string().starts_with(expected), "{text}: {e}")
                }
                (result, _) => panic!("{text}: {result:?}"),
            }
        }
        // In a larger object too.
        let mut many: Vec<String> = (0..40).map(|i| format!("\"k{i}\": {i}")).collect();
        many.push("\"k3\": 0".into());
        let text = format!("{{{}}}", many.join(", "));
        assert!(parse_value(text.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("duplicate key `k3`"));
    }

    /// Many keys: a repeat is found by the set that takes over from comparisons, at any place.
    #[test]
    fn a_repeat_among_many_keys_is_refused_and_many_distinct_keys_are_taken() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("\"k{i}\": {i}")).collect();
        let text = format!("{{{}}}", keys.join(", "));
        assert_eq!(parse_object_entries(text.as_bytes()).unwrap().len(), 20_000);
        for repeat in ["k3", "k19999", "k31", "k32"] {
            let text = format!("{{{}, \"{repeat}\": 0}}", keys.join(", "));
            let error = parse_object_entries(text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains(&format!("duplicate key `{repeat}`")),
                "{error}"
            );
            assert_eq!(
                Some(error),
                parse_value(text.as_bytes()).err().map(|e| e.to_string())
            );
        }
        // Escaped keys (owned, not borrowed) are held by the set too.
        let text = format!("{{{}, \"\\u006b7\": 1}}", keys[..40].join(", "));
        assert!(parse_object_entries(text.as_bytes()).is_err());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            "\\PC{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{0,3}", inner, 0..24)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Without repeated keys, the strict parse builds exactly what serde_json builds.
        #[test]
        fn agrees_with_serde_json_on_documents_without_repeats(value in json_value()) {
            let text = serde_json::to_string_pretty(&value).unwrap();
            let strict = parse_value(text.as_bytes()).unwrap();
            let reference: Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(strict, reference);
        }
    }
}
