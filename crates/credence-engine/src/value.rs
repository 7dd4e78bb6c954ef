//! Values crossing the engine's edges: constants from YAML, ZEN variables, JSON for traces.

use credence_expr::{Expr, ExprCompiler, Frame, NamedLists, Variable};
use rust_decimal::Decimal;
use std::sync::Arc;

pub use credence_expr::Constant;

/// Reads a YAML scalar as a constant; `None` for sequences and maps.
pub fn constant_from_yaml(value: &serde_yaml_ng::Value) -> Option<Constant> {
    use serde_yaml_ng::Value as Y;
    match value {
        Y::Null => Some(Constant::Null),
        Y::Bool(b) => Some(Constant::Bool(*b)),
        Y::Number(n) => crate::schema::parse_decimal_text(&n.to_string()).map(Constant::Number),
        Y::String(s) => Some(Constant::String(Arc::from(s.as_str()))),
        _ => None,
    }
}

/// A cell or setting that is either a literal or, when written with a leading `=`, an expression.
#[derive(Debug, Clone)]
pub enum ValueSource {
    Constant(Constant),
    Expr(Expr),
}

impl ValueSource {
    /// `= expr` compiles the expression; any other scalar is taken literally.
    pub fn compile(
        value: &serde_yaml_ng::Value,
        compiler: &mut ExprCompiler,
    ) -> Result<ValueSource, String> {
        if let serde_yaml_ng::Value::String(text) = value {
            if let Some(expression) = text.trim_start().strip_prefix('=') {
                return compiler
                    .compile(expression.trim())
                    .map(ValueSource::Expr)
                    .map_err(|e| e.to_string());
            }
        }
        constant_from_yaml(value)
            .map(ValueSource::Constant)
            .ok_or_else(|| "expected a single value (number, string, boolean or `= expression`), got a list or map".to_string())
    }

    pub fn eval(
        &self,
        frame: &mut Frame,
        lists: &NamedLists,
    ) -> Result<Variable, credence_expr::ExprError> {
        match self {
            ValueSource::Constant(c) => Ok(c.to_variable()),
            ValueSource::Expr(e) => e.eval(frame, lists),
        }
    }

    pub fn references(&self) -> &[String] {
        match self {
            ValueSource::Constant(_) => &[],
            ValueSource::Expr(e) => e.references(),
        }
    }

    pub fn constant(&self) -> Option<&Constant> {
        match self {
            ValueSource::Constant(c) => Some(c),
            ValueSource::Expr(_) => None,
        }
    }
}

/// A ZEN variable as JSON, for traces. Numbers are written as JSON numbers (integers exactly,
/// fractions by their shortest decimal text).
pub fn variable_to_json(value: &Variable) -> serde_json::Value {
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
                if key.starts_with(credence_expr::RESERVED_PREFIX) {
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

/// Reads a variable as a decimal; null stays `None`; anything else is an error text.
pub fn variable_decimal(value: &Variable, what: &str) -> Result<Option<Decimal>, String> {
    match value {
        Variable::Null => Ok(None),
        Variable::Number(n) => Ok(Some(*n)),
        other => Err(format!(
            "{what} must be a number, got {}",
            other.type_name()
        )),
    }
}
