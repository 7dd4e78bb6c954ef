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

mod budget;
mod fast;
mod frame;
pub mod functions;
mod lists;
mod order;
mod simple;

pub use budget::ExprLimits;
pub use frame::{Frame, NameTable, Names, Slot};
pub use lists::NamedLists;
pub use order::compare_decimals;
pub use simple::{Interval, Literal, SimpleTest};
pub use zen_expression::variable::Variable;

use functions::CreditFunction;
use rust_decimal::Decimal;
use std::sync::Arc;
use zen_expression::expression::{Standard, Unary};
use zen_expression::lexer::{Bracket, Lexer, Operator, TokenKind};
use zen_expression::parser::{Node, Parser};
use zen_expression::vm::VM;
use zen_expression::{Expression, Isolate, Scope};

/// Errors of compiling or evaluating an expression; each names the expression text.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ExprError {
    #[error("cannot compile `{text}`: {reason}")]
    Compile { text: String, reason: String },
    #[error("evaluating `{text}` failed: {reason}")]
    Eval { text: String, reason: String },
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
    Null,
    Bool(bool),
    Number(Decimal),
    String(Arc<str>),
}

impl Constant {
    pub fn to_variable(&self) -> Variable {
        match self {
            Constant::Null => Variable::Null,
            Constant::Bool(b) => Variable::Bool(*b),
            Constant::Number(n) => Variable::Number(*n),
            Constant::String(s) => Variable::String(s.as_ref().into()),
        }
    }

    /// The constant of a scalar variable; `None` for lists, objects and the like.
    pub fn from_variable(value: &Variable) -> Option<Constant> {
        match value {
            Variable::Null => Some(Constant::Null),
            Variable::Bool(b) => Some(Constant::Bool(*b)),
            Variable::Number(n) => Some(Constant::Number(*n)),
            Variable::String(s) => Some(Constant::String(Arc::from(s.as_str()))),
            _ => None,
        }
    }

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
        Ok(UnaryTest {
            text: Arc::from(text),
            simple,
            program: Some(program),
            steps,
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

struct OwnedToken {
    span: (u32, u32),
    kind: TokenKind,
    value: String,
}

fn tokenize(text: &str) -> Result<Vec<OwnedToken>, String> {
    let arena = zen_arena::Arena::new();
    let tokens = Lexer::new()
        .tokenize(arena.bump(), text)
        .map_err(|e| e.to_string())?;
    Ok(tokens
        .iter()
        .map(|t| OwnedToken {
            span: t.span,
            kind: t.kind,
            value: t.value.to_string(),
        })
        .collect())
}

mod zen_arena {
    //! A bump arena for zen's lexer and parser, which borrow from one.
    pub struct Arena(bumpalo::Bump);
    impl Arena {
        pub fn new() -> Self {
            Arena(bumpalo::Bump::new())
        }
        pub fn bump(&self) -> &bumpalo::Bump {
            &self.0
        }
    }
}

fn uses_pointer(text: &str) -> bool {
    tokenize(text).is_ok_and(|tokens| {
        tokens.iter().any(|t| {
            t.kind == TokenKind::Identifier(zen_expression::lexer::Identifier::CallbackReference)
        })
    })
}

fn string_literal(text: &str) -> Option<&str> {
    let trimmed = text.trim();
    for quote in ['"', '\''] {
        if trimmed.len() >= 2 && trimmed.starts_with(quote) && trimmed.ends_with(quote) {
            let inner = &trimmed[1..trimmed.len() - 1];
            if !inner.contains(quote) && !inner.contains('\\') {
                return Some(inner);
            }
        }
    }
    None
}

/// Parses the rewritten text once more to list its root references and refuse what would make
/// evaluation depend on the wall clock or chance.
fn analyse(
    text: &str,
    names: &mut Names,
    limits: &ExprLimits,
) -> Result<(Vec<String>, Option<fast::Fast>, u64), String> {
    with_parsed(text, Grammar::Standard, |root| {
        analyse_tree(root, names, limits)
    })
}

fn analyse_tree(
    root: &Node<'_>,
    names: &mut Names,
    limits: &ExprLimits,
) -> Result<(Vec<String>, Option<fast::Fast>, u64), String> {
    use zen_expression::functions::{DeprecatedFunction, FunctionKind, InternalFunction};
    let steps = budget::step_bound(root, limits)?;
    let mut references = Vec::new();
    let mut refusal: Option<String> = None;
    let mut aliases = Vec::new();
    collect(root, &mut |node| match node {
        Node::Identifier(name) => references.push(name.to_string()),
        Node::Closure {
            alias: Some(alias), ..
        } => aliases.push(alias.to_string()),
        Node::FunctionCall { kind, arguments } => {
            let clock = matches!(
                kind,
                FunctionKind::Internal(InternalFunction::Date)
                    | FunctionKind::Deprecated(DeprecatedFunction::Date | DeprecatedFunction::Time)
            ) && (arguments.is_empty()
                || arguments
                    .iter()
                    .any(|a| matches!(a, Node::String(s) if s.eq_ignore_ascii_case("now"))));
            if clock {
                refusal = Some(
                    "reads the wall clock; use the `today` input that the engine's clock supplies"
                        .into(),
                );
            }
            if matches!(kind, FunctionKind::Internal(InternalFunction::Rand)) {
                refusal = Some("rand() would make decisions non-repeatable".into());
            }
        }
        // zen-expression 2.1 cannot evaluate an empty template string (it panics).
        Node::TemplateString([]) => {
            refusal = Some("an empty template string; write '' for an empty string".into());
        }
        _ => {}
    });
    if let Some(reason) = refusal {
        return Err(reason);
    }
    references.retain(|name| !aliases.contains(name));
    references.sort();
    references.dedup();
    Ok((references, fast::Fast::from_node(root, names), steps))
}

/// The step bound of a unary test (a table or scorecard cell the index cannot answer).
fn unary_step_bound(text: &str, limits: &ExprLimits) -> Result<u64, String> {
    with_parsed(text, Grammar::Unary, |root| {
        budget::step_bound(root, limits)
    })
}

/// Which of ZEN's two grammars a text is parsed with.
#[derive(Clone, Copy)]
enum Grammar {
    /// A value (`a + 1`).
    Standard,
    /// A cell tested against `$` (`> 600`).
    Unary,
}

/// Parses `text` into ZEN's syntax tree (which borrows from an arena that lives only for this
/// call) and hands its root to `inspect`.
fn with_parsed<T>(
    text: &str,
    grammar: Grammar,
    inspect: impl FnOnce(&Node<'_>) -> Result<T, String>,
) -> Result<T, String> {
    let arena = zen_arena::Arena::new();
    let tokens = Lexer::new()
        .tokenize(arena.bump(), text)
        .map_err(|e| e.to_string())?;
    let parser = Parser::try_new(&tokens, arena.bump()).map_err(|e| e.to_string())?;
    let parsed = match grammar {
        Grammar::Standard => parser.standard().parse(),
        Grammar::Unary => parser.unary().parse(),
    };
    parsed.error().map_err(|e| e.to_string())?;
    inspect(parsed.root)
}

fn collect<'a>(node: &Node<'a>, visit: &mut dyn FnMut(&Node<'a>)) {
    visit(node);
    match node {
        Node::TemplateString(parts) | Node::Array(parts) => {
            parts.iter().for_each(|n| collect(n, visit))
        }
        Node::Object(entries) => entries.iter().for_each(|(k, v)| {
            collect(k, visit);
            collect(v, visit);
        }),
        Node::Assignments { list, output } => {
            list.iter().for_each(|(_, v)| collect(v, visit));
            if let Some(output) = output {
                collect(output, visit);
            }
        }
        Node::Closure { body, .. } => collect(body, visit),
        Node::Parenthesized(inner) => collect(inner, visit),
        Node::Member { node, property } => {
            collect(node, visit);
            // `a.b` has a string property; `a[b]` an expression that may reference names.
            if !matches!(property, Node::String(_)) {
                collect(property, visit);
            }
        }
        Node::Slice { node, from, to } => {
            collect(node, visit);
            from.iter().for_each(|n| collect(n, visit));
            to.iter().for_each(|n| collect(n, visit));
        }
        Node::Interval { left, right, .. } => {
            collect(left, visit);
            collect(right, visit);
        }
        Node::Conditional {
            condition,
            on_true,
            on_false,
        } => {
            collect(condition, visit);
            collect(on_true, visit);
            collect(on_false, visit);
        }
        Node::Unary { node, .. } => collect(node, visit),
        Node::Binary { left, right, .. } => {
            collect(left, visit);
            collect(right, visit);
        }
        Node::FunctionCall { arguments, .. } => arguments.iter().for_each(|n| collect(n, visit)),
        Node::MethodCall {
            this, arguments, ..
        } => {
            collect(this, visit);
            arguments.iter().for_each(|n| collect(n, visit));
        }
        Node::Error { node, .. } => node.iter().for_each(|n| collect(n, visit)),
        _ => {}
    }
}

/// Runs the ZEN VM, turning an error, or a panic inside the VM, into a message: a defect in a
/// third-party interpreter must not take a decision service down.
fn guard_vm<T>(run: impl FnOnce() -> Result<T, zen_expression::IsolateError>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(result) => result.map_err(|e| describe_isolate_error(&e)),
        Err(_) => Err("the expression interpreter failed on this expression".into()),
    }
}

fn describe_isolate_error(error: &zen_expression::IsolateError) -> String {
    let text = error.to_string();
    if text.is_empty() {
        format!("{error:?}")
    } else {
        text
    }
}

impl Expr {
    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Root names the expression reads (`a` in `a.b + 1`), sorted, without duplicates.
    pub fn references(&self) -> &[String] {
        &self.references
    }

    /// The most steps one evaluation can take (worst case, from the syntax tree).
    pub fn step_bound(&self) -> u64 {
        self.steps
    }

    /// Evaluates against the frame's context.
    pub fn eval(&self, frame: &mut Frame, lists: &NamedLists) -> Result<Variable, ExprError> {
        match &self.shortcut {
            Shortcut::Constant(c) => Ok(c.to_variable()),
            Shortcut::Call => self.hoisted[0]
                .evaluate(frame, lists)
                .map_err(|reason| self.eval_error(reason)),
            Shortcut::Fast(fast) => {
                self.run_hoisted(frame, lists)?;
                match fast.eval(frame) {
                    Some(value) => Ok(value),
                    None => self.run_program(frame),
                }
            }
            Shortcut::None => self.eval_with_vm(frame, lists),
        }
    }

    /// The constant value of an expression that reads nothing, if it is a scalar.
    pub fn constant(&self) -> Option<&Constant> {
        match &self.shortcut {
            Shortcut::Constant(c) => Some(c),
            _ => None,
        }
    }

    /// Evaluates with the ZEN VM, bypassing shortcuts; used to check the two agree.
    pub fn eval_with_vm(
        &self,
        frame: &mut Frame,
        lists: &NamedLists,
    ) -> Result<Variable, ExprError> {
        self.run_hoisted(frame, lists)?;
        self.run_program(frame)
    }

    fn eval_error(&self, reason: String) -> ExprError {
        ExprError::Eval {
            text: self.text.to_string(),
            reason,
        }
    }

    /// Evaluates the hoisted credit-function calls into their slots.
    fn run_hoisted(&self, frame: &mut Frame, lists: &NamedLists) -> Result<(), ExprError> {
        for call in &self.hoisted {
            let value = call
                .evaluate(frame, lists)
                .map_err(|reason| self.eval_error(reason))?;
            frame.set(call.slot, value);
        }
        Ok(())
    }

    /// Runs the ZEN program. A list it returns longer than the limit an expression may build
    /// is an error, so that the lists every later expression reads stay bounded (constants,
    /// credit functions and the direct evaluator return scalars or values already in the
    /// frame, so only the VM can build a new list).
    fn run_program(&self, frame: &mut Frame) -> Result<Variable, ExprError> {
        frame.sync(&self.vm_references);
        let (scope, vm) = (&frame.scope, &mut frame.vm);
        let value = guard_vm(|| self.program.evaluate_with_scope(scope, vm))
            .map_err(|reason| self.eval_error(reason))?;
        if let Variable::Array(items) = &value {
            let length = items.borrow().len() as u64;
            if length > self.max_list_items {
                return Err(self.eval_error(format!(
                    "built a list of {} items; an expression may build at most {} (limits.list_items)",
                    budget::group(length),
                    budget::group(self.max_list_items)
                )));
            }
        }
        Ok(value)
    }
}

impl HoistedCall {
    fn evaluate(&self, frame: &mut Frame, lists: &NamedLists) -> Result<Variable, String> {
        use functions as f;
        // Credit functions take at most four arguments: kept on the stack, not allocated.
        let mut values: smallvec::SmallVec<[Variable; 4]> = smallvec::SmallVec::new();
        for argument in &self.arguments {
            values.push(argument.eval(frame, lists).map_err(|e| e.to_string())?);
        }
        let name = self.function.name();
        let number = |k: usize, argument: &str| -> Result<Option<Decimal>, String> {
            match &values[k] {
                Variable::Number(n) => Ok(Some(*n)),
                Variable::Null => Ok(None),
                other => Err(format!(
                    "{name}: {argument} must be a number, got {}",
                    other.type_name()
                )),
            }
        };
        let date = |k: usize, argument: &str| -> Result<Option<chrono::NaiveDate>, String> {
            match &values[k] {
                Variable::String(s) => f::parse_date(s, argument).map(Some),
                Variable::Null => Ok(None),
                other => Err(format!(
                    "{name}: {argument} must be a date string, got {}",
                    other.type_name()
                )),
            }
        };
        let number_result = |r: Result<Decimal, String>| -> Result<Variable, String> {
            r.map(Variable::Number).map_err(|e| format!("{name}: {e}"))
        };
        // A missing (null) argument gives a null result, as arithmetic on null does in ZEN:
        // rules can then test for it instead of the evaluation failing.
        Ok(match self.function {
            CreditFunction::AnnuityPayment | CreditFunction::AffordablePrincipal => {
                let (Some(rate), Some(periods), Some(amount)) = (
                    number(0, "rate_per_period")?,
                    number(1, "periods")?,
                    number(
                        2,
                        if self.function == CreditFunction::AnnuityPayment {
                            "principal"
                        } else {
                            "payment"
                        },
                    )?,
                ) else {
                    return Ok(Variable::Null);
                };
                if self.function == CreditFunction::AnnuityPayment {
                    number_result(f::annuity_payment(rate, periods, amount))?
                } else {
                    number_result(f::affordable_principal(rate, periods, amount))?
                }
            }
            CreditFunction::MonthsBetween | CreditFunction::AgeYears => {
                let first = if self.function == CreditFunction::AgeYears {
                    "birth_date"
                } else {
                    "from_date"
                };
                let second = if self.function == CreditFunction::AgeYears {
                    "on_date"
                } else {
                    "to_date"
                };
                let (Some(a), Some(b)) = (date(0, first)?, date(1, second)?) else {
                    return Ok(Variable::Null);
                };
                let n = if self.function == CreditFunction::AgeYears {
                    f::age_years(a, b)
                } else {
                    f::months_between(a, b)
                };
                Variable::Number(Decimal::from(n))
            }
            CreditFunction::RoundMoney | CreditFunction::FloorTo => {
                let second = if self.function == CreditFunction::RoundMoney {
                    "places"
                } else {
                    "step"
                };
                let (Some(amount), Some(parameter)) = (number(0, "amount")?, number(1, second)?)
                else {
                    return Ok(Variable::Null);
                };
                if self.function == CreditFunction::RoundMoney {
                    number_result(f::round_money(amount, parameter))?
                } else {
                    number_result(f::floor_to(amount, parameter))?
                }
            }
            CreditFunction::InList => {
                let found = match &values[0] {
                    Variable::String(s) => lists.contains(self.list_index, s),
                    Variable::Number(n) => {
                        lists.contains(self.list_index, &n.normalize().to_string())
                    }
                    Variable::Null => false,
                    other => {
                        return Err(format!(
                            "in_list: value must be a string or number, got {}",
                            other.type_name()
                        ))
                    }
                };
                Variable::Bool(found)
            }
        })
    }
}

/// A compiled unary test: a decision-table or scorecard cell.
#[derive(Debug, Clone)]
pub struct UnaryTest {
    text: Arc<str>,
    simple: Option<SimpleTest>,
    program: Option<Expression<Unary>>,
    steps: u64,
}

impl UnaryTest {
    /// The most steps one test can take (worst case, from the syntax tree).
    pub fn step_bound(&self) -> u64 {
        self.steps
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The analysed form, when the cell is one a table can index.
    pub fn simple(&self) -> Option<&SimpleTest> {
        self.simple.as_ref()
    }

    /// Tests `value`; the rest of the frame's context is visible to the cell. A cell that
    /// cannot compare the value at all (a string against `< 0`, say) does not match, as the
    /// analysed forms behave.
    pub fn test(&self, value: &Variable, frame: &mut Frame) -> bool {
        if let Some(simple) = &self.simple {
            return simple.matches(value);
        }
        self.test_with_zen(value, frame).unwrap_or(false)
    }

    /// Tests with ZEN alone, bypassing the analysed form; used to check the two agree.
    pub fn test_with_zen(&self, value: &Variable, frame: &mut Frame) -> Result<bool, ExprError> {
        let Some(program) = &self.program else {
            return Ok(true);
        };
        // A cell may read any name besides `$`.
        frame.sync_all();
        frame.scope.set_local(Variable::dollar_key(), value.clone());
        let (scope, vm) = (&frame.scope, &mut frame.vm);
        guard_vm(|| program.evaluate_with_scope(scope, vm)).map_err(|reason| ExprError::Eval {
            text: self.text.to_string(),
            reason,
        })
    }
}

#[cfg(test)]
mod tests;
