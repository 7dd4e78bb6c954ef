//! Expressions and unary tests for Credence strategies: ZEN expressions compiled once, credit functions hoisted around them.
//!
//! The ZEN expression language (`zen-expression`, the syntax of GoRules' JDM editor) is the
//! language analysts write conditions, derived features and table cells in. This crate is the
//! only place that knows about it:
//!
//! * [`ExprCompiler`] turns text into an [`Expr`] once, at strategy load. Calls to Credence's
//!   credit functions (see [`functions::CreditFunction`]) are lifted out of the text into
//!   *hoisted calls* whose results the ZEN program reads from reserved slots, because the ZEN VM
//!   has no extension point for user functions.
//! * [`Frame`] is the per-evaluation scratch: the variable context and a reusable VM.
//! * [`UnaryTest`] is a compiled decision-table cell (`> 600`, `[600..700)`, `"a","b"`), with
//!   [`SimpleTest`], the analysed form that lets tables build indexes instead of scanning.
//!
//! Everything here is pure: no I/O, no clock. Expressions that would read the wall clock or a
//! random source (`rand`, `d()` with no argument, `"now"`) are refused at compile time, so the
//! same input gives the same output.
#![warn(missing_docs)]

mod budget;
mod fast;
mod frame;
pub mod functions;
mod lists;
mod order;
mod run;
mod simple;
mod syntax;
mod value;

pub use budget::ExprLimits;
pub use frame::{Frame, NameTable, Names, Slot};
pub use lists::NamedLists;
pub use order::compare_decimals;
use run::*;
pub use simple::{Interval, Literal, SimpleTest};
use syntax::*;
pub use value::{decimal_to_json, Value, ValueRef};
pub(crate) use zen_expression::variable::Variable;

use functions::CreditFunction;

/// Why a call to `name` cannot compile, if it names neither a credit function nor one of the
/// expression language's own: the root cause, with the closest credit function when one is
/// near — rather than the parser's "incomplete output" it would otherwise lead to.
fn unknown_function(name: &str) -> Option<String> {
    if CreditFunction::from_name(name).is_some()
        || zen_expression::functions::FunctionKind::try_from(name).is_ok()
    {
        return None;
    }
    let closest = CreditFunction::ALL
        .iter()
        .map(|f| (edit_distance(name, f.name()), f))
        .filter(|(distance, f)| *distance <= f.name().len() / 3 + 1)
        .min_by_key(|(distance, _)| *distance);
    let hint = match closest {
        Some((_, f)) => format!(" (did you mean `{}`? it is {})", f.name(), f.signature()),
        None => String::new(),
    };
    Some(format!(
        "unknown function `{name}`{hint}; the credit functions are {}, besides the expression language's own (docs/strategy-format.md, \"Expressions\")",
        CreditFunction::ALL.map(|f| f.name()).join(", ")
    ))
}

/// Levenshtein distance in characters, for suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}
use rust_decimal::Decimal;
use std::sync::Arc;
use zen_expression::expression::{Standard, Unary};
use zen_expression::lexer::{Bracket, Operator, TokenKind};
use zen_expression::vm::VM;
use zen_expression::{Expression, Isolate, Scope};

/// Errors of compiling or evaluating an expression; each names the expression text.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ExprError {
    #[error("cannot compile `{text}`: {reason}")]
    /// The text does not compile.
    Compile {
        /// The expression as written.
        text: String,
        /// Why, and how to fix it.
        reason: String,
    },
    #[error("evaluating `{text}` failed: {reason}")]
    /// Evaluating the expression failed.
    Eval {
        /// The expression as written.
        text: String,
        /// Why, and how to fix it.
        reason: String,
    },
}

impl ExprError {
    /// The stable machine code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            ExprError::Compile { .. } => "expression_compile",
            ExprError::Eval { .. } => "expression_eval",
        }
    }
}

/// A call to a credit function lifted out of an expression; its result is written into
/// `slot` of the context before the ZEN program that reads it runs.
#[derive(Debug, Clone)]
struct HoistedCall {
    slot_name: Arc<str>,
    slot: Slot,
    function: CreditFunction,
    /// For `in_list`, the index of the list; the first argument is then the list name.
    list_index: usize,
    arguments: Vec<Expr>,
}

/// A compiled ZEN expression, immutable and `Send + Sync`; evaluate it with a [`Frame`].
#[derive(Debug, Clone)]
pub struct Expr {
    text: Arc<str>,
    hoisted: Vec<HoistedCall>,
    program: Expression<Standard>,
    references: Vec<String>,
    /// Every root name the ZEN program reads (hoisted slots included), for syncing the context.
    vm_references: Vec<(Arc<str>, Slot)>,
    shortcut: Shortcut,
    /// The worst-case steps of one evaluation, hoisted calls included (see `budget`).
    steps: u64,
    /// The longest list the expression may return (`ExprLimits::max_list_items`).
    max_list_items: u64,
}

/// What a condition evaluated to ([`Expr::eval_truth`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// `true`.
    True,
    /// `false`.
    False,
    /// Null (a missing value): conditions treat it as not holding.
    Null,
    /// Neither a boolean nor null: a mistake in the strategy the caller reports.
    Other(Value),
}

/// Most strategy expressions are a constant (`0.5`), a name (`terms.apr`) or a comparison
/// (`dti > 0.5`); those skip the VM.
#[derive(Debug, Clone)]
enum Shortcut {
    None,
    Constant(Constant),
    /// The whole expression is one credit-function call (`age_years(birth_date, today)`):
    /// its result is the value, with no slot written and no VM run.
    Call,
    /// Names, literals, comparisons, `and`/`or`/`not`/`??`, walked directly (see `fast`).
    Fast(fast::Fast),
}

/// A scalar that is `Send + Sync` (ZEN variables are not); turned into a variable at use.
#[derive(Debug, Clone, PartialEq)]
pub enum Constant {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number.
    Number(Decimal),
    /// A string.
    String(Arc<str>),
}

impl Constant {
    /// The constant as a value.
    pub fn to_value(&self) -> Value {
        Value(self.to_variable())
    }

    /// The constant as a ZEN variable.
    pub(crate) fn to_variable(&self) -> Variable {
        match self {
            Constant::Null => Variable::Null,
            Constant::Bool(b) => Variable::Bool(*b),
            Constant::Number(n) => Variable::Number(*n),
            Constant::String(s) => Variable::String(s.as_ref().into()),
        }
    }

    /// The constant of a scalar value; `None` for lists, objects and the like.
    pub fn from_value(value: &Value) -> Option<Constant> {
        Constant::from_variable(&value.0)
    }

    /// The constant of a scalar ZEN variable.
    pub(crate) fn from_variable(value: &Variable) -> Option<Constant> {
        match value {
            Variable::Null => Some(Constant::Null),
            Variable::Bool(b) => Some(Constant::Bool(*b)),
            Variable::Number(n) => Some(Constant::Number(*n)),
            Variable::String(s) => Some(Constant::String(Arc::from(s.as_str()))),
            _ => None,
        }
    }

    /// The string, if the constant is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Constant::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Compiles expressions for one strategy: knows its lists and numbers hoisted-call slots so
/// that slots never collide within a strategy.
pub struct ExprCompiler<'lists> {
    lists: &'lists NamedLists,
    next_slot: u32,
    isolate: Isolate,
    names: Names,
    limits: ExprLimits,
}

/// Prefix of the reserved context keys that hold hoisted call results.
pub const RESERVED_PREFIX: &str = "__credence_";

impl<'lists> ExprCompiler<'lists> {
    /// A compiler for one strategy, whose expressions may name `lists`.
    pub fn new(lists: &'lists NamedLists) -> Self {
        Self::with_limits(lists, ExprLimits::default())
    }

    /// A compiler that refuses expressions over `limits` (see [`ExprLimits`]).
    pub fn with_limits(lists: &'lists NamedLists, limits: ExprLimits) -> Self {
        ExprCompiler {
            lists,
            next_slot: 0,
            isolate: Isolate::new(),
            names: Names::default(),
            limits,
        }
    }

    /// The limits this compiler holds expressions to.
    pub fn limits(&self) -> &ExprLimits {
        &self.limits
    }

    /// The slot of a name (an input field, a feature, a step's result), registering it.
    pub fn slot(&mut self, name: &str) -> Slot {
        self.names.slot(name)
    }

    /// Every name compiled so far, by slot: what frames evaluating these expressions are reset with.
    pub fn names(&self) -> NameTable {
        self.names.table()
    }

    /// Compiles a standard expression (a value: number, string, boolean, …).
    pub fn compile(&mut self, text: &str) -> Result<Expr, ExprError> {
        let error = |reason: String| ExprError::Compile {
            text: text.to_string(),
            reason,
        };
        if text.trim().is_empty() {
            return Err(error("the expression is empty".into()));
        }
        let (rewritten, hoisted) = self.hoist(text)?;
        let (references, fast, own_steps) =
            analyse(&rewritten, &mut self.names, &self.limits).map_err(error)?;
        let steps = hoisted
            .iter()
            .flat_map(|call| &call.arguments)
            .fold(own_steps, |total, argument| {
                total.saturating_add(argument.steps)
            });
        if steps > self.limits.max_steps {
            return Err(error(format!(
                "exceeds the step budget with the credit functions it calls: up to {} steps, at most {} allowed (limits.expression_steps)",
                budget::group(steps),
                budget::group(self.limits.max_steps)
            )));
        }
        let vm_references = references
            .iter()
            .map(|name| (Arc::from(name.as_str()), self.names.slot(name)))
            .collect();
        let program = self
            .isolate
            .compile_standard(&rewritten)
            .map_err(|e| error(describe_isolate_error(&e)))?;
        let mut all_references: Vec<String> = references
            .into_iter()
            .filter(|name| !name.starts_with(RESERVED_PREFIX))
            .collect();
        for call in &hoisted {
            for argument in &call.arguments {
                all_references.extend(argument.references.iter().cloned());
            }
        }
        all_references.sort();
        all_references.dedup();
        let shortcut = if hoisted.len() == 1 && rewritten.trim() == &*hoisted[0].slot_name {
            Shortcut::Call
        } else if hoisted.is_empty() && all_references.is_empty() {
            guard_vm(|| {
                program.evaluate_with_scope(&Scope::new(Variable::empty_object()), &mut VM::new())
            })
            .ok()
            .and_then(|v| Constant::from_variable(&v))
            .map_or(Shortcut::None, Shortcut::Constant)
        } else {
            fast.map_or(Shortcut::None, Shortcut::Fast)
        };
        Ok(Expr {
            text: Arc::from(text),
            hoisted,
            program,
            references: all_references,
            vm_references,
            shortcut,
            steps,
            max_list_items: self.limits.max_list_items,
        })
    }

    /// Compiles a unary test (a decision-table cell) such as `> 600` or `"a", "b"`.
    pub fn compile_unary(&mut self, text: &str) -> Result<UnaryTest, ExprError> {
        let trimmed = text.trim();
        let simple = SimpleTest::parse(trimmed);
        if matches!(simple, Some(SimpleTest::Any)) {
            return Ok(UnaryTest {
                text: Arc::from(text),
                simple,
                program: None,
                steps: 1,
                references: Vec::new(),
            });
        }
        if trimmed.contains(RESERVED_PREFIX) {
            return Err(ExprError::Compile {
                text: text.to_string(),
                reason: format!("names starting with {RESERVED_PREFIX} are reserved"),
            });
        }
        let steps = if simple.is_some() {
            1
        } else {
            unary_step_bound(trimmed, &self.limits).map_err(|reason| ExprError::Compile {
                text: text.to_string(),
                reason,
            })?
        };
        let program = self
            .isolate
            .compile_unary(trimmed)
            .map_err(|e| ExprError::Compile {
                text: text.to_string(),
                reason: describe_isolate_error(&e),
            })?;
        let references = if simple.is_some() {
            Vec::new()
        } else {
            unary_references(trimmed).map_err(|reason| ExprError::Compile {
                text: text.to_string(),
                reason,
            })?
        };
        Ok(UnaryTest {
            text: Arc::from(text),
            simple,
            program: Some(program),
            steps,
            references,
        })
    }

    fn allocate_slot(&mut self) -> (Arc<str>, Slot) {
        let name = format!("{RESERVED_PREFIX}{}", self.next_slot);
        self.next_slot += 1;
        let slot = self.names.slot(&name);
        (Arc::from(name), slot)
    }

    /// Lifts credit-function calls out of `text`, returning the rewritten text and the calls in
    /// evaluation order.
    fn hoist(&mut self, text: &str) -> Result<(String, Vec<HoistedCall>), ExprError> {
        let error = |reason: String| ExprError::Compile {
            text: text.to_string(),
            reason,
        };
        let tokens = tokenize(text).map_err(error)?;
        let mut rewritten = String::with_capacity(text.len());
        let mut hoisted = Vec::new();
        let mut copied_up_to = 0usize;
        let mut index = 0usize;
        while index < tokens.len() {
            let token = &tokens[index];
            let function = match token.kind {
                TokenKind::Literal => CreditFunction::from_name(&token.value),
                _ => None,
            };
            let followed_by_paren = tokens
                .get(index + 1)
                .is_some_and(|t| t.kind == TokenKind::Bracket(Bracket::LeftParenthesis));
            let is_method =
                index > 0 && tokens[index - 1].kind == TokenKind::Operator(Operator::Dot);
            if token.kind == TokenKind::Literal && followed_by_paren && !is_method {
                if let Some(reason) = unknown_function(&token.value) {
                    return Err(error(reason));
                }
            }
            let Some(function) = function.filter(|_| followed_by_paren && !is_method) else {
                index += 1;
                continue;
            };
            // Find the matching close parenthesis and the top-level commas.
            let mut depth = 0i32;
            let mut argument_starts = vec![index + 2];
            let mut close = None;
            for (position, t) in tokens.iter().enumerate().skip(index + 1) {
                match t.kind {
                    TokenKind::Bracket(
                        Bracket::LeftParenthesis
                        | Bracket::LeftSquareBracket
                        | Bracket::LeftCurlyBracket,
                    ) => depth += 1,
                    TokenKind::Bracket(
                        Bracket::RightParenthesis
                        | Bracket::RightSquareBracket
                        | Bracket::RightCurlyBracket,
                    ) => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(position);
                            break;
                        }
                    }
                    TokenKind::Operator(Operator::Comma) if depth == 1 => {
                        argument_starts.push(position + 1)
                    }
                    _ => {}
                }
            }
            let close =
                close.ok_or_else(|| error(format!("{}( has no matching `)`", function.name())))?;
            let mut arguments_text = Vec::new();
            for (k, &start) in argument_starts.iter().enumerate() {
                let end = argument_starts.get(k + 1).map(|s| s - 1).unwrap_or(close);
                if start >= end {
                    return Err(error(format!(
                        "{} has an empty argument; call it as {}",
                        function.name(),
                        function.signature()
                    )));
                }
                let from = tokens[start].span.0 as usize;
                let to = tokens[end - 1].span.1 as usize;
                arguments_text.push(&text[from..to]);
            }
            if arguments_text.len() != function.arity() {
                return Err(error(format!(
                    "{} takes {} arguments, got {}; call it as {}",
                    function.name(),
                    function.arity(),
                    arguments_text.len(),
                    function.signature()
                )));
            }
            let mut list_index = 0;
            let mut arguments = Vec::with_capacity(arguments_text.len());
            for (k, argument_text) in arguments_text.iter().enumerate() {
                if function == CreditFunction::InList && k == 0 {
                    let name = string_literal(argument_text).ok_or_else(|| {
                        error(format!(
                            "the first argument of in_list must be a list name in quotes, got {argument_text}"
                        ))
                    })?;
                    list_index = self.lists.index_of(name).ok_or_else(|| {
                        error(format!(
                            "no list named \"{name}\"; declared lists: {}",
                            self.lists.names().join(", ")
                        ))
                    })?;
                    continue;
                }
                let argument = self.compile(argument_text)?;
                if argument.text.contains('#') && uses_pointer(argument_text) {
                    return Err(error(format!(
                        "{} cannot be called inside a closure (`#`); derive the value first",
                        function.name()
                    )));
                }
                arguments.push(argument);
            }
            let (slot_name, slot) = self.allocate_slot();
            rewritten.push_str(&text[copied_up_to..token.span.0 as usize]);
            rewritten.push_str(&slot_name);
            copied_up_to = tokens[close].span.1 as usize;
            hoisted.push(HoistedCall {
                slot_name,
                slot,
                function,
                list_index,
                arguments,
            });
            index = close + 1;
        }
        rewritten.push_str(&text[copied_up_to..]);
        Ok((rewritten, hoisted))
    }
}

/// A compiled unary test: a decision-table or scorecard cell.
#[derive(Debug, Clone)]
pub struct UnaryTest {
    text: Arc<str>,
    simple: Option<SimpleTest>,
    program: Option<Expression<Unary>>,
    steps: u64,
    /// Names the cell reads besides `$`.
    references: Vec<String>,
}

#[cfg(test)]
mod tests;
