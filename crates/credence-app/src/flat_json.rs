//! The fast read of the body nearly every decision request is: one flat JSON object of scalars, its entries read in one pass with strings borrowed; anything else is left to the strict parse.
//!
//! A decision body is some thirty keys, each with a string, a number, a boolean or null.
//! Read through serde_json, each value became a `serde_json::Value` (each string allocated)
//! only for the schema to turn it into the input's own value and drop it: about a tenth of a
//! served decision's work. This reader goes once over the text and yields each entry's key and
//! value as written, strings borrowed from the text.
//!
//! It answers only where the answer is certain, and otherwise says `None`, and the caller asks
//! the strict parse ([`crate::strict_json`]), whose value or error stands: a string with an
//! escape or a control character, a nested object or list, a repeated key, more than
//! [`MAX_FLAT_ENTRIES`] keys or a key longer than [`MAX_FLAT_KEY_BYTES`], text that is not
//! UTF-8, or anything that is not JSON. Numbers that are not plain integers of up to 18 digits
//! (fractions, exponents, `-0`) are read by serde_json itself, so every number is the value the
//! strict parse gives it. A property test holds the two together.

use serde_json::Value;

/// Keys the fast read takes; a larger object is left to the strict parse (whose set of keys
/// finds a repeat among many in logarithmic time).
pub const MAX_FLAT_ENTRIES: usize = 64;

/// The longest key the fast read takes. With [`MAX_FLAT_ENTRIES`] it bounds the bytes compared
/// in looking for a repeated key (a hostile body whose keys all share a signature).
pub const MAX_FLAT_KEY_BYTES: usize = 128;

/// A value of a flat object, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum FlatValue<'a> {
    /// Null, a boolean or a number (none of them allocates).
    Json(Value),
    /// A string without escapes: its text, borrowed from the body.
    Text(&'a str),
}

impl FlatValue<'_> {
    /// The value as the strict parse builds it.
    pub fn to_json(&self) -> Value {
        match self {
            FlatValue::Json(value) => value.clone(),
            FlatValue::Text(text) => Value::String((*text).to_string()),
        }
    }

    /// As the schema validates it.
    pub fn as_raw(&self) -> credence_engine::RawInput<'_> {
        match self {
            FlatValue::Json(value) => credence_engine::RawInput::Json(value),
            FlatValue::Text(text) => credence_engine::RawInput::Text(text),
        }
    }
}

/// A flat object's entries, in the order written.
pub type FlatEntries<'a> = Vec<(&'a str, FlatValue<'a>)>;

/// The entries of `bytes` when it is one JSON object whose values are all scalars and whose
/// strings hold no escapes; `None` for anything else (ask [`crate::strict_json`]).
pub fn parse_flat_object(bytes: &[u8]) -> Option<FlatEntries<'_>> {
    parse_flat_text(std::str::from_utf8(bytes).ok()?)
}

/// [`parse_flat_object`] of text already known to be UTF-8.
pub fn parse_flat_text(text: &str) -> Option<FlatEntries<'_>> {
    let mut reader = Reader { text, at: 0 };
    reader.skip_space();
    reader.expect(b'{')?;
    let mut entries: FlatEntries<'_> = Vec::with_capacity(32);
    reader.skip_space();
    if reader.peek() == Some(b'}') {
        reader.at += 1;
        return reader.at_end().then_some(entries);
    }
    // One bit per key's signature: a key is compared with the earlier ones only when another
    // key shared its bit.
    let mut signatures = 0u64;
    loop {
        reader.expect(b'"')?;
        let key = reader.string()?;
        if entries.len() == MAX_FLAT_ENTRIES || key.len() > MAX_FLAT_KEY_BYTES {
            return None;
        }
        let signature = 1u64 << (signature(key) % 64);
        if signatures & signature != 0 && entries.iter().any(|(earlier, _)| *earlier == key) {
            return None;
        }
        signatures |= signature;
        reader.skip_space();
        reader.expect(b':')?;
        reader.skip_space();
        let value = reader.value()?;
        entries.push((key, value));
        reader.skip_space();
        match reader.next()? {
            b',' => reader.skip_space(),
            b'}' => break,
            _ => return None,
        }
    }
    reader.at_end().then_some(entries)
}

/// A cheap hash of a key: its length and its first and last bytes.
fn signature(key: &str) -> u32 {
    let bytes = key.as_bytes();
    let first = bytes.first().copied().unwrap_or(0);
    let last = bytes.last().copied().unwrap_or(0);
    (bytes.len() as u32)
        .wrapping_mul(31)
        .wrapping_add(u32::from(first).wrapping_mul(7))
        .wrapping_add(u32::from(last))
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        (self.next()? == wanted).then_some(())
    }

    /// JSON's whitespace: space, tab, line feed, carriage return.
    fn skip_space(&mut self) {
        let bytes = self.bytes();
        let mut at = self.at;
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
            at += 1;
        }
        self.at = at;
    }

    /// Only whitespace is left.
    fn at_end(&mut self) -> bool {
        self.skip_space();
        self.at == self.text.len()
    }

    /// A string's text, after its opening quote, up to its closing one; `None` at an escape or
    /// a control character (which JSON refuses unescaped).
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at;
        let bytes = self.bytes();
        // The string's search, eight bytes at a time (byte by byte it made the example body's
        // reading half as costly again: 15.4k instructions against 10.2k).
        let end = start + credence_engine::compact_json::first_escape(bytes.get(start..)?)?;
        if bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.at = end + 1;
        // Both ends are ASCII quotes, so the slice is on character boundaries.
        self.text.get(start..end)
    }

    fn value(&mut self) -> Option<FlatValue<'a>> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.string().map(FlatValue::Text)
            }
            b'n' => self.literal("null", Value::Null),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                let length = self.bytes()[start..]
                    .iter()
                    .position(|byte| {
                        !matches!(byte, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                    })
                    .unwrap_or(self.text.len() - start);
                self.at = start + length;
                number(self.text.get(start..self.at)?).map(FlatValue::Json)
            }
            _ => None,
        }
    }

    fn literal(&mut self, word: &str, value: Value) -> Option<FlatValue<'a>> {
        let end = self.at + word.len();
        (self.text.get(self.at..end)? == word).then(|| {
            self.at = end;
            FlatValue::Json(value)
        })
    }
}

/// A JSON number's value as serde_json reads it: a plain integer here (non-negative ones as
/// unsigned, negative ones as signed, as serde_json does), anything else by serde_json.
fn number(text: &str) -> Option<Value> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, text),
    };
    let plain = !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if plain {
        let magnitude = digits
            .bytes()
            .fold(0u64, |sum, digit| sum * 10 + u64::from(digit - b'0'));
        if !negative {
            return Some(Value::from(magnitude));
        }
        // serde_json reads `-0` as a float.
        if magnitude != 0 {
            return Some(Value::from(-(magnitude as i64)));
        }
    }
    match serde_json::from_str::<Value>(text).ok()? {
        number @ Value::Number(_) => Some(number),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strict_json;
    use proptest::prelude::*;

    /// The strict parse's entries, when it gives them.
    fn strict(text: &str) -> Option<Vec<(String, Value)>> {
        let entries = strict_json::parse_object_entries(text.as_bytes()).ok()?;
        Some(
            entries
                .into_iter()
                .map(|(key, value)| (key.into_owned(), value))
                .collect(),
        )
    }

    fn flat(text: &str) -> Option<Vec<(String, Value)>> {
        let entries = parse_flat_object(text.as_bytes())?;
        Some(
            entries
                .iter()
                .map(|(key, value)| ((*key).to_string(), value.to_json()))
                .collect(),
        )
    }

    #[test]
    fn flat_objects_are_read_and_the_rest_left_to_the_strict_parse() {
        let read: &[&str] = &[
            "{}",
            " \t\r\n{ } \n",
            r#"{"a":1}"#,
            r#"{ "a" : "x" , "b" : null , "c" : true , "d" : false }"#,
            r#"{"n": -12, "z": 0, "f": 0.0899, "e": 1e3, "E": -2.5E-3, "m": -0, "big": 123456789012345678901}"#,
            r#"{"u": "é ünïcödé ☃", "empty": ""}"#,
        ];
        for text in read {
            assert!(flat(text).is_some(), "{text}");
            assert_eq!(flat(text), strict(text), "{text}");
        }
        let left: &[&str] = &[
            "",
            "[]",
            "1",
            r#"{"a": "x\"y"}"#,
            r#"{"a\n": 1}"#,
            "{\"a\": \"tab\there\"}",
            r#"{"a": [1]}"#,
            r#"{"a": {"b": 1}}"#,
            r#"{"a": 1, "a": 2}"#,
            r#"{"a": 1,}"#,
            r#"{"a": 1 "b": 2}"#,
            r#"{"a": nul}"#,
            r#"{"a": nullx}"#,
            r#"{"a": 01}"#,
            r#"{"a": +1}"#,
            r#"{"a": 1.}"#,
            r#"{"a": .5}"#,
            r#"{"a": 1e}"#,
            r#"{"a": --1}"#,
            r#"{"a": 1e400}"#,
            r#"{"a": 1} x"#,
            r#"{"a": 1"#,
            r#"{"a" 1}"#,
            r#"{a: 1}"#,
        ];
        for text in left {
            assert!(flat(text).is_none(), "{text}");
        }
        // Not UTF-8.
        assert!(parse_flat_object(b"{\"a\": \"\xff\"}").is_none());
    }

    #[test]
    fn numbers_are_serde_json_s() {
        for text in [
            "0",
            "-1",
            "7",
            "999999999999999999",
            "-999999999999999999",
            "9999999999999999999",
            "18446744073709551616",
            "-9223372036854775809",
            "0.1",
            "-0",
            "-0.0",
            "1E2",
            "2.5e-7",
        ] {
            let ours = number(text).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
            // The same kind of number, not only an equal one.
            assert_eq!(ours.is_u64(), theirs.is_u64(), "{text}");
            assert_eq!(ours.is_i64(), theirs.is_i64(), "{text}");
            assert_eq!(ours.is_f64(), theirs.is_f64(), "{text}");
        }
    }

    #[test]
    fn many_or_long_keys_are_left_to_the_strict_parse() {
        let object = |n: usize| {
            let entries: Vec<String> = (0..n).map(|i| format!("\"k{i}\": {i}")).collect();
            format!("{{{}}}", entries.join(", "))
        };
        assert_eq!(
            flat(&object(MAX_FLAT_ENTRIES)).map(|e| e.len()),
            Some(MAX_FLAT_ENTRIES)
        );
        assert!(flat(&object(MAX_FLAT_ENTRIES + 1)).is_none());
        let key = |n: usize| format!("{{\"{}\": 1}}", "k".repeat(n));
        assert!(flat(&key(MAX_FLAT_KEY_BYTES)).is_some());
        assert!(flat(&key(MAX_FLAT_KEY_BYTES + 1)).is_none());
        assert!(strict(&key(MAX_FLAT_KEY_BYTES + 1)).is_some());
    }

    /// A scalar as a document would write it, now and then not JSON at all.
    fn scalar_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|f| serde_json::to_string(&f).unwrap()),
            "-?[0-9]{1,22}(\\.[0-9]{0,4})?([eE][-+]?[0-9]{0,3})?",
            "[-+.eE0-9]{1,6}",
            "\\PC{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            "[a-c\\\\\"\\x00-\\x1f]{0,4}".prop_map(|s| format!("\"{s}\"")),
            Just("[1, 2]".to_string()),
            Just("{\"x\": 1}".to_string()),
            "[ntfl ]{1,5}",
        ]
    }

    /// Whitespace JSON allows, or now and then a character it does not.
    fn space() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[ \t\r\n]{0,2}",
            1 => "[ x,\u{a0}]{1,2}",
        ]
    }

    proptest! {
        /// Where the fast read answers, the strict parse gives the same entries; where the
        /// strict parse refuses, or finds a value that is not flat, the fast read does not
        /// answer.
        #[test]
        fn the_fast_read_is_the_strict_parse(
            entries in prop::collection::vec(("[a-d]{0,2}|é|\\PC{0,3}", scalar_text()), 0..12),
            spaces in prop::collection::vec(space(), 48),
        ) {
            let mut text = spaces[0].clone();
            text.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&spaces[(4 * i + 1) % 48]);
                text.push_str(&serde_json::to_string(key).unwrap());
                text.push_str(&spaces[(4 * i + 2) % 48]);
                text.push(':');
                text.push_str(&spaces[(4 * i + 3) % 48]);
                text.push_str(value);
                text.push_str(&spaces[(4 * i + 4) % 48]);
            }
            text.push('}');
            text.push_str(&spaces[47]);
            let fast = flat(&text);
            let strict = strict(&text);
            if let Some(fast) = &fast {
                prop_assert_eq!(Some(fast), strict.as_ref(), "{}", text);
            }
            // Plain documents take the fast read.
            let plain = entries.iter().all(|(key, value)| {
                !key.contains(['"', '\\']) && !key.chars().any(char::is_control)
                    && (serde_json::from_str::<i64>(value).is_ok() || value == "null" || value == "true")
            });
            let keys: std::collections::HashSet<&String> = entries.iter().map(|(k, _)| k).collect();
            let spaced = spaces.iter().all(|s| s.chars().all(|c| " \t\r\n".contains(c)));
            if plain && spaced && keys.len() == entries.len() {
                prop_assert!(fast.is_some(), "{}", text);
            }
        }
    }
}
