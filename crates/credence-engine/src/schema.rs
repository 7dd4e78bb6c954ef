//! Typed input schemas per flow, and validation of raw JSON input into a `ValidatedInput`.
//!
//! Raw input (`serde_json::Value`) and validated input are different types: the engine only
//! evaluates a `ValidatedInput`, which exists only when every field matched its declaration.
//! Validation lists every violation, not just the first, each by field path with what was
//! expected and what was got.

use crate::format::{AdditionalFields, RawField, RawFieldType};
use chrono::NaiveDate;
use credence_expr::{compare_decimals, Value};
use rust_decimal::Decimal;
use serde::Serialize;
use std::str::FromStr;
use std::sync::Arc;

/// Names the engine supplies itself; an input schema may not declare them.
pub const RESERVED_NAMES: [&str; 1] = ["today"];

/// One way input failed its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Field path, e.g. `monthly_income` or `existing_loans[2]`.
    pub path: String,
    /// What the schema expects there.
    pub expected: String,
    /// What the input has.
    pub got: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.path, self.expected, self.got
        )
    }
}

/// A validated input value.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    /// Absent or null.
    Null,
    /// A number (exact decimal).
    Number(Decimal),
    /// A whole number.
    Integer(i64),
    /// Shared with the schema for an enum's value (validating it allocates nothing).
    String(Arc<str>),
    /// True or false.
    Boolean(bool),
    /// A date.
    Date(NaiveDate),
    /// A list of values of one kind.
    List(Vec<InputValue>),
}

impl InputValue {
    /// The value as expressions read it (dates as `YYYY-MM-DD` text).
    pub fn to_value(&self) -> Value {
        match self {
            InputValue::Null => Value::NULL,
            InputValue::Number(n) => Value::number(*n),
            InputValue::Integer(i) => Value::number(Decimal::from(*i)),
            InputValue::String(s) => Value::string(s),
            InputValue::Boolean(b) => Value::bool(*b),
            InputValue::Date(d) => Value::date(*d),
            InputValue::List(items) => {
                Value::list(items.iter().map(InputValue::to_value).collect())
            }
        }
    }

    /// The value as canonical JSON.
    pub fn to_json(&self) -> serde_json::Value {
        self.to_value().to_json()
    }
}

/// Input that passed its flow's schema; fields in declaration order.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedInput {
    pub(crate) fields: Vec<(Arc<str>, InputValue)>,
    /// The strategy version and flow whose schema passed it: input is only decided by them.
    pub(crate) validated_for: Option<(Arc<str>, Arc<str>)>,
}

impl ValidatedInput {
    /// A field's value by name.
    pub fn get(&self, name: &str) -> Option<&InputValue> {
        self.fields
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, v)| v)
    }

    /// Every field with its value, in declaration order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &InputValue)> {
        self.fields.iter().map(|(n, v)| (n.as_ref(), v))
    }

    /// The input as a JSON object with canonical values (decimals as numbers).
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (name, value) in &self.fields {
            map.insert(name.to_string(), value.to_json());
        }
        serde_json::Value::Object(map)
    }
}

/// A checked field declaration.
#[derive(Debug, Clone)]
pub struct FieldSpec {
    /// The field's type and bounds.
    pub kind: FieldKind,
    /// Whether the input must have it.
    pub required: bool,
    /// Personal data (national ID, phone): masked wherever input is shown.
    pub personal: bool,
}

/// A field's type, with its bounds.
#[derive(Debug, Clone)]
pub enum FieldKind {
    /// A number (decimal).
    Number {
        /// The smallest allowed.
        min: Option<Decimal>,
        /// The largest allowed.
        max: Option<Decimal>,
    },
    /// A whole number.
    Integer {
        /// The smallest allowed.
        min: Option<i64>,
        /// The largest allowed.
        max: Option<i64>,
    },
    /// Text.
    String {
        /// The fewest characters allowed.
        min_length: Option<usize>,
        /// The most characters allowed.
        max_length: Option<usize>,
    },
    /// True or false.
    Boolean,
    /// A date, `YYYY-MM-DD`.
    Date {
        /// The earliest allowed.
        min: Option<NaiveDate>,
        /// The latest allowed.
        max: Option<NaiveDate>,
    },
    /// One of a set of values.
    Enum {
        /// The allowed values.
        values: Vec<Arc<str>>,
    },
    /// A list.
    List {
        /// What each item must be.
        items: Box<FieldSpec>,
        /// The fewest items allowed.
        min_items: Option<usize>,
        /// The most items allowed.
        max_items: Option<usize>,
    },
}

/// A flow's input schema.
#[derive(Debug, Clone)]
pub struct InputSchema {
    pub fields: Vec<(Arc<str>, FieldSpec)>,
    pub additional_fields: AdditionalFields,
}

impl FieldSpec {
    /// Checks a raw declaration; errors name the fix.
    pub fn compile(raw: &RawField) -> Result<FieldSpec, String> {
        let number = |n: &Option<crate::format::YamlNumber>,
                      what: &str|
         -> Result<Option<Decimal>, String> {
            n.as_ref()
                .map(|n| {
                    parse_decimal_text(&n.0)
                        .ok_or_else(|| format!("{what} must be a number, got {}", n.0))
                })
                .transpose()
        };
        let date = |n: &Option<crate::format::YamlNumber>,
                    what: &str|
         -> Result<Option<NaiveDate>, String> {
            n.as_ref()
                .map(|n| {
                    NaiveDate::parse_from_str(&n.0, "%Y-%m-%d").map_err(|_| {
                        format!("{what} of a date must be written YYYY-MM-DD, got {}", n.0)
                    })
                })
                .transpose()
        };
        let kind = match raw.field_type {
            RawFieldType::Number => FieldKind::Number {
                min: number(&raw.min, "min")?,
                max: number(&raw.max, "max")?,
            },
            RawFieldType::Integer => {
                let integer = |d: Option<Decimal>, what: &str| -> Result<Option<i64>, String> {
                    d.map(|d| {
                        if d.fract().is_zero() {
                            i64::try_from(d).map_err(|_| format!("{what} is out of range"))
                        } else {
                            Err(format!("{what} of an integer must be whole, got {d}"))
                        }
                    })
                    .transpose()
                };
                FieldKind::Integer {
                    min: integer(number(&raw.min, "min")?, "min")?,
                    max: integer(number(&raw.max, "max")?, "max")?,
                }
            }
            RawFieldType::String => FieldKind::String {
                min_length: raw.min_length,
                max_length: raw.max_length,
            },
            RawFieldType::Boolean => FieldKind::Boolean,
            RawFieldType::Date => FieldKind::Date {
                min: date(&raw.min, "min")?,
                max: date(&raw.max, "max")?,
            },
            RawFieldType::Enum => {
                if raw.values.is_empty() {
                    return Err("an enum needs `values`, the allowed strings".into());
                }
                FieldKind::Enum {
                    values: raw.values.iter().map(|v| Arc::from(v.as_str())).collect(),
                }
            }
            RawFieldType::List => {
                let items = raw
                    .items
                    .as_ref()
                    .ok_or("a list needs `items`, the declaration of its elements")?;
                FieldKind::List {
                    items: Box::new(FieldSpec::compile(items)?),
                    min_items: raw.min_items,
                    max_items: raw.max_items,
                }
            }
        };
        Ok(FieldSpec {
            kind,
            required: raw.required,
            personal: raw.personal,
        })
    }

    fn expected(&self) -> String {
        match &self.kind {
            FieldKind::Number { min, max } => describe_bounds("a number", min, max),
            FieldKind::Integer { min, max } => describe_bounds("an integer", min, max),
            FieldKind::String {
                min_length,
                max_length,
            } => match (min_length, max_length) {
                (None, None) => "a string".into(),
                (Some(a), None) => format!("a string of at least {a} characters"),
                (None, Some(b)) => format!("a string of at most {b} characters"),
                (Some(a), Some(b)) => format!("a string of {a} to {b} characters"),
            },
            FieldKind::Boolean => "true or false".into(),
            FieldKind::Date { min, max } => describe_bounds("a date YYYY-MM-DD", min, max),
            FieldKind::Enum { values } => format!("one of {}", values.join(", ")),
            FieldKind::List { items, .. } => format!("a list of {}", items.expected()),
        }
    }

    fn validate(
        &self,
        path: &str,
        raw: RawInput<'_>,
        violations: &mut Vec<Violation>,
    ) -> InputValue {
        use serde_json::Value as J;
        let mut violate = |got: String| {
            violations.push(Violation {
                path: path.to_string(),
                expected: self.expected(),
                got,
            });
            InputValue::Null
        };
        let text = match raw {
            RawInput::Text(text) => Some(text),
            RawInput::Json(J::String(text)) => Some(text.as_str()),
            RawInput::Json(_) => None,
        };
        if raw.is_null() {
            if self.required {
                return violate("null".into());
            }
            return InputValue::Null;
        }
        match &self.kind {
            FieldKind::Number { min, max } => {
                let Some(n) = raw.decimal() else {
                    return violate(raw.describe());
                };
                let below = min.is_some_and(|m| compare_decimals(n, m).is_lt());
                if below || max.is_some_and(|m| compare_decimals(n, m).is_gt()) {
                    return violate(n.to_string());
                }
                InputValue::Number(n)
            }
            FieldKind::Integer { min, max } => {
                // A JSON integer as such; anything else (`5.0`, `"5"`) through its decimal.
                let json_integer = match raw {
                    RawInput::Json(value) => value.as_i64(),
                    RawInput::Text(_) => None,
                };
                let Some(n) = json_integer.or_else(|| {
                    raw.decimal()
                        .filter(|d| d.fract().is_zero())
                        .and_then(|d| i64::try_from(d).ok())
                }) else {
                    return violate(raw.describe());
                };
                if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                    return violate(n.to_string());
                }
                InputValue::Integer(n)
            }
            FieldKind::String {
                min_length,
                max_length,
            } => {
                let Some(s) = text else {
                    return violate(raw.describe());
                };
                let length = s.chars().count();
                if min_length.is_some_and(|m| length < m) || max_length.is_some_and(|m| length > m)
                {
                    return violate(format!("a string of {length} characters"));
                }
                InputValue::String(Arc::from(s))
            }
            FieldKind::Boolean => match raw {
                RawInput::Json(J::Bool(b)) => InputValue::Boolean(*b),
                _ => violate(raw.describe()),
            },
            FieldKind::Date { min, max } => {
                let Some(date) =
                    text.and_then(|s| credence_expr::functions::parse_date(s, path).ok())
                else {
                    return violate(raw.describe());
                };
                if min.is_some_and(|m| date < m) || max.is_some_and(|m| date > m) {
                    return violate(date.to_string());
                }
                InputValue::Date(date)
            }
            FieldKind::Enum { values } => match text {
                Some(s) => match values.iter().find(|v| v.as_ref() == s) {
                    Some(value) => InputValue::String(value.clone()),
                    None => violate(raw.describe()),
                },
                None => violate(raw.describe()),
            },
            FieldKind::List {
                items,
                min_items,
                max_items,
            } => {
                let RawInput::Json(J::Array(elements)) = raw else {
                    return violate(raw.describe());
                };
                if min_items.is_some_and(|m| elements.len() < m)
                    || max_items.is_some_and(|m| elements.len() > m)
                {
                    violations.push(Violation {
                        path: path.to_string(),
                        expected: format!(
                            "{} to {} items",
                            min_items.unwrap_or(0),
                            max_items.map_or("any number of".to_string(), |m| m.to_string())
                        ),
                        got: format!("{} items", elements.len()),
                    });
                    return InputValue::Null;
                }
                InputValue::List(
                    elements
                        .iter()
                        .enumerate()
                        .map(|(i, e)| {
                            items.validate(&format!("{path}[{i}]"), RawInput::Json(e), violations)
                        })
                        .collect(),
                )
            }
        }
    }
}

/// A field's value as the caller sent it, for validation: parsed JSON, or a JSON string's text
/// read straight from the request (a body's fast read borrows strings without escapes rather
/// than building a JSON value of each). Both validate alike.
#[derive(Debug, Clone, Copy)]
pub enum RawInput<'a> {
    /// A parsed JSON value.
    Json(&'a serde_json::Value),
    /// A JSON string, as its text.
    Text(&'a str),
}

impl<'a> From<&'a serde_json::Value> for RawInput<'a> {
    fn from(value: &'a serde_json::Value) -> Self {
        RawInput::Json(value)
    }
}

impl RawInput<'_> {
    fn is_null(self) -> bool {
        matches!(self, RawInput::Json(serde_json::Value::Null))
    }

    /// [`json_decimal`] of the value.
    fn decimal(self) -> Option<Decimal> {
        match self {
            RawInput::Json(value) => json_decimal(value),
            RawInput::Text(text) => parse_decimal_text(text),
        }
    }

    /// How a violation shows the value (only refused values are described: the text's copy is
    /// made then).
    fn describe(self) -> String {
        match self {
            RawInput::Json(value) => describe_json(value),
            RawInput::Text(text) => describe_json(&serde_json::Value::String(text.to_string())),
        }
    }
}

fn describe_bounds<T: std::fmt::Display>(what: &str, min: &Option<T>, max: &Option<T>) -> String {
    match (min, max) {
        (None, None) => what.to_string(),
        (Some(a), None) => format!("{what} ≥ {a}"),
        (None, Some(b)) => format!("{what} ≤ {b}"),
        (Some(a), Some(b)) => format!("{what} from {a} to {b}"),
    }
}

fn describe_json(value: &serde_json::Value) -> String {
    let text = value.to_string();
    let kind = match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "list",
        serde_json::Value::Object(_) => "object",
    };
    if text.chars().count() > 40 {
        format!("{kind} {}…", text.chars().take(40).collect::<String>())
    } else {
        format!("{kind} {text}")
    }
}

/// Parses a decimal written in text, also in exponent form (`1e3`).
pub fn parse_decimal_text(text: &str) -> Option<Decimal> {
    let text = text.trim();
    Decimal::from_str(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
}

/// A JSON number (or a string holding one) as an exact decimal: the number's own text is
/// parsed, so `0.1` is one tenth, not the nearest binary float.
pub fn json_decimal(value: &serde_json::Value) -> Option<Decimal> {
    match value {
        // An integer converts exactly without printing it; a fraction is parsed from its text.
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Some(Decimal::from(i)),
            (None, Some(u)) => Some(Decimal::from(u)),
            _ => parse_decimal_text(&n.to_string()),
        },
        serde_json::Value::String(s) => parse_decimal_text(s),
        _ => None,
    }
}

/// Undeclared keys [`InputSchema::validate_entries`] checks for repeats itself; past this many it
/// leaves the object to [`InputSchema::validate`].
const MAX_UNDECLARED_ENTRIES: usize = 32;

impl InputSchema {
    /// Validates a raw JSON object; every violation is listed.
    pub fn validate(&self, raw: &serde_json::Value) -> Result<ValidatedInput, Vec<Violation>> {
        let serde_json::Value::Object(object) = raw else {
            return Err(vec![Violation {
                path: "(input)".into(),
                expected: "a JSON object of the flow's input fields".into(),
                got: describe_json(raw),
            }]);
        };
        // Declared names are distinct, and so are an object's keys: when every key was found
        // by a declared field there is no other key, and the scan for them is skipped (it
        // compares every key with every declared name).
        let mut found = 0;
        let (fields, mut violations) = self.validate_declared(|name| {
            let value = object.get(name);
            found += usize::from(value.is_some());
            value.map(std::borrow::Cow::Borrowed)
        });
        if self.additional_fields == AdditionalFields::Reject && found < object.len() {
            for key in object.keys() {
                if !self.fields.iter().any(|(name, _)| name.as_ref() == key) {
                    violations.push(Violation {
                        path: key.clone(),
                        expected:
                            "no such field (the flow does not declare it; check the spelling)"
                                .into(),
                        got: "a value".into(),
                    });
                }
            }
        }
        if violations.is_empty() {
            Ok(ValidatedInput {
                fields,
                validated_for: None,
            })
        } else {
            Err(violations)
        }
    }

    /// Validates an object given as its entries in the order they were written, when nothing
    /// in it is wrong; `None` when a key repeats or any field is refused, and [`validate`] on
    /// the parsed object then names every fault, in its order. No map of the entries is built:
    /// each key is matched to its declared field once, trying the field after the last one
    /// matched first (callers mostly send fields in one order), then scanning the fields.
    ///
    /// [`validate`]: InputSchema::validate
    pub fn validate_entries<'e, V: Into<RawInput<'e>>>(
        &self,
        entries: impl IntoIterator<Item = (&'e str, V)>,
    ) -> Option<ValidatedInput> {
        let mut found: Vec<Option<RawInput<'e>>> = vec![None; self.fields.len()];
        let mut undeclared: Vec<&str> = Vec::new();
        let mut next = 0;
        for (key, value) in entries {
            // Most lengths differ, so the scan mostly compares lengths: cheaper, measured, than
            // hashing the key to look it up.
            let position = match self.fields.get(next) {
                Some((name, _)) if name.as_ref() == key => Some(next),
                _ => self
                    .fields
                    .iter()
                    .position(|(name, _)| name.as_ref() == key),
            };
            match position {
                Some(position) => {
                    if found[position].replace(value.into()).is_some() {
                        return None;
                    }
                    next = position + 1;
                }
                None if self.additional_fields == AdditionalFields::Reject => return None,
                // Many undeclared keys: the whole-object path, whose map finds repeats in
                // logarithmic time, rather than comparing each with every other here.
                None if undeclared.len() == MAX_UNDECLARED_ENTRIES || undeclared.contains(&key) => {
                    return None
                }
                None => undeclared.push(key),
            }
        }
        let mut violations = Vec::new();
        let mut fields = Vec::with_capacity(self.fields.len());
        for ((name, spec), value) in self.fields.iter().zip(found) {
            let value = match value {
                Some(value) => spec.validate(name, value, &mut violations),
                None if spec.required => return None,
                None => InputValue::Null,
            };
            fields.push((name.clone(), value));
        }
        violations.is_empty().then_some(ValidatedInput {
            fields,
            validated_for: None,
        })
    }

    /// Validates the declared fields, each read through `lookup` (None: absent).
    pub(crate) fn validate_declared<'v>(
        &self,
        mut lookup: impl FnMut(&str) -> Option<std::borrow::Cow<'v, serde_json::Value>>,
    ) -> (Vec<(Arc<str>, InputValue)>, Vec<Violation>) {
        let mut violations = Vec::new();
        let mut fields = Vec::with_capacity(self.fields.len());
        for (name, spec) in &self.fields {
            let value = match lookup(name) {
                Some(value) => spec.validate(name, RawInput::Json(&value), &mut violations),
                None if spec.required => {
                    violations.push(Violation {
                        path: name.to_string(),
                        expected: spec.expected(),
                        got: "nothing (the field is required)".into(),
                    });
                    InputValue::Null
                }
                None => InputValue::Null,
            };
            fields.push((name.clone(), value));
        }
        (fields, violations)
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields
            .iter()
            .find(|(n, _)| n.as_ref() == name)
            .map(|(_, s)| s)
    }
}
