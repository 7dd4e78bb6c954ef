//! Masking personal data before it reaches a log line.
//!
//! The flow schema marks fields `personal: true` (national ID, phone); their values are
//! replaced by a fixed-width mask that keeps only the last two characters, enough for an
//! operator to tell two records apart and useless for identifying anyone.

use serde_json::Value;

/// `+8613700000001` → `***01`; values shorter than six characters are masked whole.
pub fn mask_text(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() < 6 {
        return "***".to_string();
    }
    let tail: String = chars[chars.len() - 2..].iter().collect();
    format!("***{tail}")
}

/// A copy of a JSON input with every field `is_personal` names masked (top level, where the
/// schema declares fields).
pub fn masked_input(input: &Value, is_personal: impl Fn(&str) -> bool) -> Value {
    match input {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(name, value)| {
                    let value = if is_personal(name) {
                        match value {
                            Value::String(text) => Value::String(mask_text(text)),
                            Value::Null => Value::Null,
                            _ => Value::String("***".into()),
                        }
                    } else {
                        value.clone()
                    };
                    (name.clone(), value)
                })
                .collect(),
        ),
        _ => Value::String("***".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn personal_fields_keep_only_their_last_two_characters() {
        let cases = [("+8613700000001", "***01"), ("12345", "***"), ("", "***")];
        for (raw, masked) in cases {
            assert_eq!(mask_text(raw), masked);
        }
        let input = json!({"phone": "+8613700000001", "national_id_sha256": 7, "income": 3800});
        let masked = masked_input(&input, |f| f == "phone" || f == "national_id_sha256");
        assert_eq!(
            masked,
            json!({"phone": "***01", "national_id_sha256": "***", "income": 3800})
        );
    }
}
