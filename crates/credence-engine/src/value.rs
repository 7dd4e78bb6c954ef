//! Values crossing the engine's edges: constants from YAML, expression values, JSON for traces.

use credence_expr::{Expr, ExprCompiler, Frame, NamedLists, Value, ValueRef};
use rust_decimal::Decimal;
use std::sync::Arc;

pub use credence_expr::{decimal_to_json, Constant};

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
    ) -> Result<Value, credence_expr::ExprError> {
        match self {
            ValueSource::Constant(c) => Ok(c.to_value()),
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

/// Reads a value as a decimal; null stays `None`; anything else is an error text.
pub fn value_decimal(value: &Value, what: &str) -> Result<Option<Decimal>, String> {
    match value.kind() {
        ValueRef::Null => Ok(None),
        ValueRef::Number(n) => Ok(Some(n)),
        _ => Err(format!(
            "{what} must be a number, got {}",
            value.type_name()
        )),
    }
}
