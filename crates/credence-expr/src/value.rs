//! [`Value`]: what expressions read and produce, as the crates above see it.
//!
//! The ZEN evaluator works on its own value type; this crate is the only one that knows it.
//! `Value` wraps it (`#[repr(transparent)]`, nothing converted on the hot path) and offers what a
//! decision engine needs — building scalars, lists and objects, and reading them back through
//! [`ValueRef`] — so that the engine and everything above it never name a ZEN type, and a change
//! of evaluator stays inside this crate.

use crate::RESERVED_PREFIX;
use rust_decimal::Decimal;
use zen_expression::variable::Variable;

/// A value of an expression, a frame slot or a step's result.
#[derive(Debug, Clone, PartialEq)]
#[repr(transparent)]
pub struct Value(pub(crate) Variable);

/// A value's shape, borrowed for reading.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// Null: missing data, or nothing.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (an exact decimal).
    Number(Decimal),
    /// Text.
    String(&'a str),
    /// A list (read it with [`Value::items`]).
    List,
    /// An object (read it with [`Value::field`]).
    Object,
    /// Anything else the evaluator can produce (a date or duration object).
    Other,
}

impl From<serde_json::Value> for Value {
    /// A JSON value as expressions read it (numbers exactly, objects and lists alike).
    fn from(json: serde_json::Value) -> Value {
        Value(Variable::from(json))
    }
}

impl Default for Value {
    fn default() -> Self {
        Value::NULL
    }
}

impl Value {
    /// Null.
    pub const NULL: Value = Value(Variable::Null);

    /// A boolean.
    #[inline]
    pub fn bool(b: bool) -> Value {
        Value(Variable::Bool(b))
    }

    /// A number.
    #[inline]
    pub fn number(n: Decimal) -> Value {
        Value(Variable::Number(n))
    }

    /// Text.
    #[inline]
    pub fn string(s: &str) -> Value {
        Value(Variable::String(s.into()))
    }

    /// A list of values.
    #[inline]
    pub fn list(items: Vec<Value>) -> Value {
        Value(Variable::from_array(
            items.into_iter().map(|v| v.0).collect(),
        ))
    }

    /// A date, as expressions read dates: its `YYYY-MM-DD` text.
    pub fn date(date: chrono::NaiveDate) -> Value {
        match crate::functions::date_digits(date) {
            Some(digits) => match std::str::from_utf8(&digits) {
                Ok(text) => Value::string(text),
                Err(_) => Value::string(&crate::functions::format_date(date)),
            },
            None => Value::string(&crate::functions::format_date(date)),
        }
    }

    /// An object of `entries`, in their order.
    pub fn object<'n>(entries: impl IntoIterator<Item = (&'n str, Value)>) -> Value {
        match Value::try_object(entries.into_iter().map(Ok::<_, std::convert::Infallible>)) {
            Ok(value) => value,
            Err(never) => match never {},
        }
    }

    /// An object of `entries`, or the first error among them.
    pub fn try_object<'n, E>(
        entries: impl IntoIterator<Item = Result<(&'n str, Value), E>>,
    ) -> Result<Value, E> {
        let object = Variable::empty_object();
        if let Variable::Object(map) = &object {
            let mut map = map.borrow_mut();
            for entry in entries {
                let (name, value) = entry?;
                map.insert_str(name, value.0);
            }
        }
        Ok(Value(object))
    }

    /// The value's shape, for reading.
    #[inline]
    pub fn kind(&self) -> ValueRef<'_> {
        match &self.0 {
            Variable::Null => ValueRef::Null,
            Variable::Bool(b) => ValueRef::Bool(*b),
            Variable::Number(n) => ValueRef::Number(*n),
            Variable::String(s) => ValueRef::String(s.as_str()),
            Variable::Array(_) => ValueRef::List,
            Variable::Object(_) => ValueRef::Object,
            Variable::Dynamic(_) => ValueRef::Other,
        }
    }

    /// Whether the value is null.
    #[inline]
    pub fn is_null(&self) -> bool {
        matches!(self.0, Variable::Null)
    }

    /// The number, if the value is one.
    #[inline]
    pub fn as_number(&self) -> Option<Decimal> {
        match &self.0 {
            Variable::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The text, if the value is text.
    #[inline]
    pub fn as_str(&self) -> Option<&str> {
        match &self.0 {
            Variable::String(s) => Some(s.as_str()),
            _ => None,
        }
    }

    /// An object's field (`None` when the value is not an object or has no such field).
    #[inline]
    pub fn field(&self, name: &str) -> Option<Value> {
        match &self.0 {
            Variable::Object(map) => map.borrow().get_str(name).cloned().map(Value),
            _ => None,
        }
    }

    /// A list's items (`None` when the value is not a list).
    #[inline]
    pub fn items(&self) -> Option<Vec<Value>> {
        match &self.0 {
            Variable::Array(items) => Some(items.borrow().iter().cloned().map(Value).collect()),
            _ => None,
        }
    }

    /// The value's type as messages name it (`number`, `string`, `bool`, `null`, …).
    #[inline]
    pub fn type_name(&self) -> &'static str {
        self.0.type_name()
    }

    /// The value as JSON, for traces: numbers as JSON numbers (integers exactly, fractions by
    /// their shortest decimal text), object keys in order, the engine's reserved names left out.
    pub fn to_json(&self) -> serde_json::Value {
        variable_to_json(&self.0)
    }
}

fn variable_to_json(value: &Variable) -> serde_json::Value {
    match value {
        Variable::Null => serde_json::Value::Null,
        Variable::Bool(b) => serde_json::Value::Bool(*b),
        Variable::Number(n) => decimal_to_json(*n),
        Variable::String(s) => serde_json::Value::String(s.to_string()),
        Variable::Array(items) => {
            serde_json::Value::Array(items.borrow().iter().map(variable_to_json).collect())
        }
        Variable::Object(object) => {
            let object = object.borrow();
            let mut keys: Vec<_> = object.keys().collect();
            keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            let mut map = serde_json::Map::new();
            for key in keys {
                if key.starts_with(RESERVED_PREFIX) {
                    continue;
                }
                if let Some(v) = object.get(key) {
                    map.insert(key.to_string(), variable_to_json(v));
                }
            }
            serde_json::Value::Object(map)
        }
        Variable::Dynamic(_) => serde_json::Value::String(value.to_string()),
    }
}

/// A decimal as JSON: an integer exactly, a fraction by its shortest decimal text (a string
/// only when JSON cannot hold it).
pub fn decimal_to_json(n: Decimal) -> serde_json::Value {
    let n = n.normalize();
    if n.fract().is_zero() {
        if let Ok(i) = i64::try_from(n) {
            return serde_json::Value::from(i);
        }
    }
    n.to_string()
        .parse::<serde_json::Number>()
        .map(serde_json::Value::Number)
        .unwrap_or_else(|_| serde_json::Value::String(n.to_string()))
}
