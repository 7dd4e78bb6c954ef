//! Reading expression text with ZEN's own lexer and parser: tokens, the syntax tree of either grammar, and the analysis that lists root names and refuses clock or chance.

use super::*;
use zen_expression::lexer::{Lexer, TokenKind};
use zen_expression::parser::{Node, Parser};

pub(crate) struct OwnedToken {
    pub(crate) span: (u32, u32),
    pub(crate) kind: TokenKind,
    pub(crate) value: String,
}

pub(crate) fn tokenize(text: &str) -> Result<Vec<OwnedToken>, String> {
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

pub(crate) mod zen_arena {
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

pub(crate) fn uses_pointer(text: &str) -> bool {
    tokenize(text).is_ok_and(|tokens| {
        tokens.iter().any(|t| {
            t.kind == TokenKind::Identifier(zen_expression::lexer::Identifier::CallbackReference)
        })
    })
}

pub(crate) fn string_literal(text: &str) -> Option<&str> {
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
pub(crate) fn analyse(
    text: &str,
    names: &mut Names,
    limits: &ExprLimits,
) -> Result<(Vec<String>, Option<fast::Fast>, u64), String> {
    with_parsed(text, Grammar::Standard, |root| {
        analyse_tree(root, names, limits)
    })
}

pub(crate) fn analyse_tree(
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
/// The names a unary test reads besides `$` (a cell may read any name of the flow), sorted,
/// without duplicates or the aliases its closures bind.
pub(crate) fn unary_references(text: &str) -> Result<Vec<String>, String> {
    with_parsed(text, Grammar::Unary, |root| {
        let mut references = Vec::new();
        let mut aliases = Vec::new();
        collect(root, &mut |node| match node {
            Node::Identifier(name) => references.push(name.to_string()),
            Node::Closure {
                alias: Some(alias), ..
            } => aliases.push(alias.to_string()),
            _ => {}
        });
        references.retain(|name| name != "$" && !aliases.contains(name));
        references.sort();
        references.dedup();
        Ok(references)
    })
}

pub(crate) fn unary_step_bound(text: &str, limits: &ExprLimits) -> Result<u64, String> {
    with_parsed(text, Grammar::Unary, |root| {
        budget::step_bound(root, limits)
    })
}

/// Which of ZEN's two grammars a text is parsed with.
#[derive(Clone, Copy)]
pub(crate) enum Grammar {
    /// A value (`a + 1`).
    Standard,
    /// A cell tested against `$` (`> 600`).
    Unary,
}

/// Parses `text` into ZEN's syntax tree (which borrows from an arena that lives only for this
/// call) and hands its root to `inspect`.
pub(crate) fn with_parsed<T>(
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

pub(crate) fn collect<'a>(node: &Node<'a>, visit: &mut dyn FnMut(&Node<'a>)) {
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
