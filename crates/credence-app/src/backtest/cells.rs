//! Turning a row's text cells into the typed JSON values a flow's schema expects.

use super::*;

/// A CSV cell as the JSON value its field's kind expects; text that does not parse stays text,
/// so validation names the field and what it expected.
pub(super) fn typed_cell(kind: Option<&FieldKind>, text: &str) -> serde_json::Value {
    match kind {
        // Numbers stay text: the schema parses it as an exact decimal (never via a float).
        Some(FieldKind::Number { .. }) => text.into(),
        Some(FieldKind::Integer { .. }) => text
            .parse::<i64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| text.into()),
        Some(FieldKind::Boolean) => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true.into(),
            "false" | "0" | "no" => false.into(),
            _ => text.into(),
        },
        Some(FieldKind::List { .. }) => serde_json::from_str(text).unwrap_or_else(|_| text.into()),
        _ => text.into(),
    }
}

thread_local! {
    /// One back-test worker's typed cells of the row in hand, reused from row to row.
    pub(super) static CELLS: std::cell::RefCell<Vec<serde_json::Value>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `text.trim()`, answered without decoding characters when both ends are plain ASCII (a CSV
/// cell nearly always): then there is nothing to trim.
pub(super) fn trim_cell(text: &str) -> &str {
    let plain = |b: &u8| b.is_ascii_graphic();
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if plain(first) && plain(last) => text,
        _ => text.trim(),
    }
}

/// [`typed_cell`] into `cell`, reusing the string it holds: an empty cell is null.
#[inline]
pub(super) fn type_cell_into(kind: &FieldKind, text: &str, cell: &mut serde_json::Value) {
    if text.is_empty() {
        *cell = serde_json::Value::Null;
        return;
    }
    match kind {
        FieldKind::Integer { .. } if text.parse::<i64>().is_ok() => {
            *cell = typed_cell(Some(kind), text);
        }
        FieldKind::Boolean | FieldKind::List { .. } => *cell = typed_cell(Some(kind), text),
        // Everything else is validated from its text.
        _ => match cell {
            serde_json::Value::String(held) => {
                held.clear();
                held.push_str(text);
            }
            _ => *cell = serde_json::Value::String(text.to_string()),
        },
    }
}

/// A recorded provider value from a CSV cell: a number, a boolean or text.
pub(super) fn data_cell(text: &str) -> serde_json::Value {
    if let Some(number) = json_number(text) {
        return serde_json::Value::Number(number);
    }
    match text {
        "true" => true.into(),
        "false" => false.into(),
        _ => text.into(),
    }
}

/// `text` as the JSON number it spells, as `serde_json` reads one (an integer when it fits,
/// else a double), without running a JSON parser: `None` unless the whole text is a JSON number.
pub(super) fn json_number(text: &str) -> Option<serde_json::Number> {
    let bytes = text.as_bytes();
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = usize::from(bytes.first() == Some(&b'-'));
    let whole = digits(at);
    if whole == 0 || (whole > 1 && bytes[at] == b'0') {
        return None;
    }
    at += whole;
    let integer = at == bytes.len();
    if bytes.get(at) == Some(&b'.') {
        let fraction = digits(at + 1);
        if fraction == 0 {
            return None;
        }
        at += 1 + fraction;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(at);
        if exponent == 0 {
            return None;
        }
        at += exponent;
    }
    if at != bytes.len() {
        return None;
    }
    // serde_json reads `-0` as the double -0.0.
    if integer && text != "-0" {
        if let Ok(i) = text.parse::<i64>() {
            return Some(i.into());
        }
        if let Ok(u) = text.parse::<u64>() {
            return Some(u.into());
        }
    }
    serde_json::Number::from_f64(text.parse::<f64>().ok()?)
}

pub(super) fn bad_flag(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "bad" | "yes" => Ok(true),
        "0" | "false" | "good" | "no" => Ok(false),
        other => Err(format!(
            "bad flag {other:?}: give 1/0, true/false or bad/good"
        )),
    }
}
