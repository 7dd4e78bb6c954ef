//! The evaluation budget: a worst-case count of the steps an expression can take, found from its syntax tree when it compiles.
//!
//! The ZEN VM cannot be interrupted once it runs, and a loop over a range (`count([0..10^9],
//! # > 0)`) materialises the whole range before it iterates. So an expression's cost is bounded
//! *before* it ever runs: every node costs a step, a closure function (`count`, `map`, `all`,
//! …) costs its list's length times its body, and work linear in a list or string (`sum`,
//! `contains`, `in`) costs that length. Lengths are known exactly for list literals and ranges
//! with numbers for bounds, and are bounded for everything else by [`ExprLimits::max_list_items`]
//! — a bound the engine enforces on every list that reaches an expression (input lists through
//! the schema, lists an expression builds when it returns one). A range whose bounds are
//! computed at run time may be tested against (`x in [a..b]`) but not iterated: its length
//! would only be known when it is too late to refuse it.
//!
//! The count is an upper bound in VM-sized steps, not an exact count; what matters is that a
//! strategy that passes it cannot take the service down, and that the analyst is told which
//! part of which expression is too expensive.

use zen_expression::functions::{
    ClosureFunction, DeprecatedFunction, FunctionKind, InternalFunction,
};
use zen_expression::lexer::{ArithmeticOperator, Bracket, ComparisonOperator, Operator};
use zen_expression::parser::Node;

/// What one expression may cost; the engine's configuration supplies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExprLimits {
    /// The most steps one evaluation of one expression may take (worst case).
    pub max_steps: u64,
    /// The most values a range may hold when an expression iterates it (`[0..9999]` holds 10,000).
    pub max_range_values: u64,
    /// The longest list an expression may read or build; input lists are held to it too.
    pub max_list_items: u64,
    /// The longest string an expression may read; input strings are held to it too.
    pub max_string_chars: u64,
}

impl Default for ExprLimits {
    fn default() -> Self {
        ExprLimits {
            max_steps: 1_000_000,
            max_range_values: 10_000,
            max_list_items: 10_000,
            max_string_chars: 4_096,
        }
    }
}

/// The bound of one node: the steps it takes and, when its value may be a list (or a string a
/// function splits), how long that can be.
#[derive(Debug, Clone, Copy)]
struct Bound {
    steps: u64,
    /// `None`: a range whose bounds are only known at run time.
    items: Option<u64>,
}

impl Bound {
    fn scalar(steps: u64) -> Bound {
        Bound {
            steps,
            items: Some(0),
        }
    }
}

/// The worst-case steps of a parsed expression, or why it cannot be allowed.
pub(crate) fn step_bound(node: &Node<'_>, limits: &ExprLimits) -> Result<u64, String> {
    let bound = bound(node, limits)?;
    if bound.steps > limits.max_steps {
        return Err(format!(
            "exceeds the step budget: it may take up to {} steps, and one expression may take at most {} (lower the sizes it loops over, or raise limits.expression_steps)",
            group(bound.steps),
            group(limits.max_steps)
        ));
    }
    Ok(bound.steps)
}

fn bound(node: &Node<'_>, limits: &ExprLimits) -> Result<Bound, String> {
    let unknown_list = Some(limits.max_list_items);
    let sum = |nodes: &mut dyn Iterator<Item = &Node<'_>>| -> Result<u64, String> {
        let mut steps = 1u64;
        for n in nodes {
            steps = steps.saturating_add(bound(n, limits)?.steps);
        }
        Ok(steps)
    };
    Ok(match node {
        Node::Null | Node::Bool(_) | Node::Number(_) | Node::Root => Bound::scalar(1),
        // A string is copied each time it is pushed: a step per 64 characters.
        Node::String(s) => {
            let length = s.chars().count() as u64;
            Bound {
                steps: 1 + length / 64,
                items: Some(length),
            }
        }
        // A name or `#` may hold a list (input lists and closure elements are bounded).
        Node::Identifier(_) | Node::Pointer => Bound {
            steps: 1,
            items: unknown_list,
        },
        Node::TemplateString(parts) => Bound {
            steps: sum(&mut parts.iter().copied())?,
            items: Some(limits.max_string_chars),
        },
        Node::Array(parts) => Bound {
            steps: sum(&mut parts.iter().copied())?,
            items: Some(parts.len() as u64),
        },
        Node::Object(entries) => {
            Bound::scalar(sum(&mut entries.iter().flat_map(|(k, v)| [*k, *v]))?)
        }
        Node::Assignments { list, output } => {
            let mut steps = sum(&mut list.iter().flat_map(|(k, v)| [*k, *v]))?;
            let mut items = Some(0);
            if let Some(output) = output {
                let inner = bound(output, limits)?;
                steps = steps.saturating_add(inner.steps);
                items = inner.items;
            }
            Bound { steps, items }
        }
        Node::Closure { body, .. } => bound(body, limits)?,
        Node::Parenthesized(inner) => bound(inner, limits)?,
        Node::Member { node, property } => Bound {
            steps: sum(&mut [*node, *property].into_iter())?,
            items: unknown_list,
        },
        Node::Slice { node, from, to } => {
            let inner = bound(node, limits)?;
            let mut steps = inner.steps.saturating_add(1);
            for n in from.iter().chain(to.iter()) {
                steps = steps.saturating_add(bound(n, limits)?.steps);
            }
            Bound {
                steps,
                items: inner.items,
            }
        }
        Node::Interval {
            left,
            right,
            left_bracket,
            right_bracket,
        } => Bound {
            steps: sum(&mut [*left, *right].into_iter())?,
            items: range_length(left, right, *left_bracket, *right_bracket),
        },
        Node::Conditional {
            condition,
            on_true,
            on_false,
        } => {
            let (c, t, f) = (
                bound(condition, limits)?,
                bound(on_true, limits)?,
                bound(on_false, limits)?,
            );
            Bound {
                steps: 1u64
                    .saturating_add(c.steps)
                    .saturating_add(t.steps.max(f.steps)),
                items: match (t.items, f.items) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                },
            }
        }
        Node::Unary { node, .. } => Bound::scalar(bound(node, limits)?.steps.saturating_add(1)),
        Node::Binary {
            left,
            operator,
            right,
        } => {
            let (l, r) = (bound(left, limits)?, bound(right, limits)?);
            let mut steps = 1u64.saturating_add(l.steps).saturating_add(r.steps);
            let mut items = Some(0);
            match operator {
                // `x in list` scans the list; `in` a range compares twice.
                Operator::Comparison(ComparisonOperator::In | ComparisonOperator::NotIn) => {
                    let scanned = match right {
                        Node::Interval { .. } => 2,
                        _ => r.items.unwrap_or(2),
                    };
                    steps = steps.saturating_add(scanned);
                }
                // `+` with a string on one side joins strings: a copy as long as both, counted
                // a step per 64 characters. Between names it is taken for arithmetic (names
                // holding strings are bounded by `max_string_chars`).
                Operator::Arithmetic(ArithmeticOperator::Add) => {
                    let (left_string, right_string) =
                        (known_string(left, l), known_string(right, r));
                    if left_string.is_some() || right_string.is_some() {
                        let joined = left_string
                            .unwrap_or_else(|| operand_length(left, l, limits))
                            .saturating_add(
                                right_string.unwrap_or_else(|| operand_length(right, r, limits)),
                            );
                        steps = steps.saturating_add(joined / 64);
                        items = Some(joined.max(1));
                    }
                }
                _ => {}
            }
            Bound { steps, items }
        }
        Node::FunctionCall { kind, arguments } => function_bound(kind, arguments, limits)?,
        Node::MethodCall {
            this, arguments, ..
        } => Bound::scalar(sum(
            &mut std::iter::once(*this).chain(arguments.iter().copied())
        )?),
        Node::Error { .. } => Bound::scalar(1),
    })
}

fn function_bound(
    kind: &FunctionKind,
    arguments: &[&Node<'_>],
    limits: &ExprLimits,
) -> Result<Bound, String> {
    let mut bounds = Vec::with_capacity(arguments.len());
    for argument in arguments {
        bounds.push(bound(argument, limits)?);
    }
    let argument_steps = bounds
        .iter()
        .fold(1u64, |total, b| total.saturating_add(b.steps));
    let first_items = bounds.first().and_then(|b| b.items).unwrap_or(0);
    match kind {
        FunctionKind::Closure(closure) => {
            let name = closure_name(*closure);
            let list = bounds.first().copied().unwrap_or(Bound::scalar(1));
            let length = match (list.items, arguments.first()) {
                (Some(length), Some(Node::Interval { .. })) if length > limits.max_range_values => {
                    return Err(format!(
                        "`{name}` iterates a range of {} values; a range may hold at most {} (limits.range_values)",
                        group(length),
                        group(limits.max_range_values)
                    ))
                }
                (Some(length), _) => length,
                (None, _) => {
                    return Err(format!(
                        "`{name}` iterates a range whose bounds are computed at run time; write the bounds as numbers (at most {} values apart) or iterate a list",
                        group(limits.max_range_values)
                    ))
                }
            };
            let body = bounds.get(1).copied().unwrap_or(Bound::scalar(1));
            // Each element: the body, plus the VM's bookkeeping (fetch, push, count).
            let per_element = body.steps.saturating_add(3);
            let steps = argument_steps
                .saturating_add(length.saturating_mul(per_element))
                .saturating_add(length);
            let items = match closure {
                ClosureFunction::Map | ClosureFunction::Filter => Some(length),
                ClosureFunction::FlatMap => {
                    Some(length.saturating_mul(body.items.unwrap_or(limits.max_list_items).max(1)))
                }
                _ => Some(0),
            };
            Ok(Bound { steps, items })
        }
        FunctionKind::Internal(function) => {
            use InternalFunction as F;
            // Work linear in every list or string argument of the functions that walk one, and
            // in sorting for median and mode.
            let linear = bounds
                .iter()
                .fold(0u64, |total, b| total.saturating_add(b.items.unwrap_or(2)));
            let steps = match function {
                F::Median | F::Mode => argument_steps.saturating_add(linear.saturating_mul(20)),
                F::Abs
                | F::Floor
                | F::Ceil
                | F::Round
                | F::Trunc
                | F::IsNumeric
                | F::Number
                | F::Bool
                | F::Type
                | F::Rand
                | F::Date => argument_steps,
                _ => argument_steps.saturating_add(linear),
            };
            let items = match function {
                F::Split => Some(limits.max_string_chars),
                F::Keys | F::Values => Some(limits.max_list_items),
                F::Flatten => Some(match arguments.first() {
                    Some(Node::Array(parts)) => parts.iter().try_fold(0u64, |total, part| {
                        bound(part, limits)
                            .map(|b| total.saturating_add(b.items.unwrap_or(0).max(1)))
                    })?,
                    _ => first_items.saturating_mul(limits.max_list_items),
                }),
                F::Merge | F::MergeDeep => Some(
                    bounds
                        .iter()
                        .fold(0u64, |total, b| total.saturating_add(b.items.unwrap_or(0))),
                ),
                F::Upper | F::Lower | F::Trim | F::String => Some(first_items),
                _ => Some(0),
            };
            Ok(Bound { steps, items })
        }
        FunctionKind::Deprecated(function) => Ok(Bound {
            steps: argument_steps,
            items: match function {
                DeprecatedFunction::MonthString
                | DeprecatedFunction::DateString
                | DeprecatedFunction::WeekdayString => Some(64),
                _ => Some(0),
            },
        }),
    }
}

/// The length of an operand of `+` known to be a string (a literal, a template, a join).
fn known_string(node: &Node<'_>, bound: Bound) -> Option<u64> {
    match node {
        Node::String(_) | Node::TemplateString(_) => bound.items,
        Node::Parenthesized(inner) => known_string(inner, bound),
        Node::Binary {
            operator: Operator::Arithmetic(ArithmeticOperator::Add),
            ..
        } => bound.items.filter(|length| *length > 0),
        _ => None,
    }
}

/// The longest string the other operand of a string join can be: a name or a field may hold
/// an input string.
fn operand_length(node: &Node<'_>, bound: Bound, limits: &ExprLimits) -> u64 {
    match node {
        Node::Identifier(_) | Node::Member { .. } | Node::Pointer => limits.max_string_chars,
        _ => bound.items.unwrap_or(0),
    }
}

/// The number of whole values a range literal iterates, when both bounds are number literals
/// (as the VM counts them: an open end steps one in).
fn range_length(left: &Node<'_>, right: &Node<'_>, open: Bracket, close: Bracket) -> Option<u64> {
    let number = |node: &Node<'_>| -> Option<i128> {
        match node {
            Node::Number(n) => i128::try_from(n.trunc()).ok(),
            Node::Unary {
                node: Node::Number(n),
                operator: Operator::Arithmetic(ArithmeticOperator::Subtract),
            } => i128::try_from(n.trunc()).ok().map(|v| -v),
            _ => None,
        }
    };
    let start = number(left)? + i128::from(open == Bracket::LeftParenthesis);
    let end = number(right)? - i128::from(close == Bracket::RightParenthesis);
    Some(u64::try_from((end - start + 1).max(0)).unwrap_or(u64::MAX))
}

fn closure_name(function: ClosureFunction) -> &'static str {
    match function {
        ClosureFunction::All => "all",
        ClosureFunction::None => "none",
        ClosureFunction::Some => "some",
        ClosureFunction::One => "one",
        ClosureFunction::Filter => "filter",
        ClosureFunction::Map => "map",
        ClosureFunction::FlatMap => "flatMap",
        ClosureFunction::Count => "count",
    }
}

/// `1000000` as `1,000,000`, for messages.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::{ExprCompiler, ExprLimits, NamedLists};

    fn steps(text: &str) -> Result<u64, String> {
        let lists = NamedLists::new();
        let mut compiler = ExprCompiler::with_limits(&lists, ExprLimits::default());
        compiler
            .compile(text)
            .map(|e| e.step_bound())
            .map_err(|e| e.to_string())
    }

    /// The bounds of typical and hostile expressions: exact where the model is simple, and the
    /// refusals with what they say.
    #[test]
    fn step_bounds_of_a_table_of_expressions() {
        let cases: &[(&str, Result<u64, &str>)] = &[
            ("1", Ok(1)),
            ("income - expenses", Ok(3)),
            ("dti > 0.45 and score < 600", Ok(7)),
            // A loop: 12 values × (body 3 + bookkeeping 3) + 12 to build the range + arguments.
            ("count([1..12], # > 3)", Ok(7 + 12 * 6 + 12)),
            // Membership in a range compares twice; in a list scans it.
            ("x in [1..1000000000]", Ok(7)),
            ("x in ['a', 'b', 'c']", Ok(1 + 1 + 4 + 3)),
            // Names may hold lists of up to list_items: a sum walks one.
            ("sum(xs)", Ok(2 + 10_000)),
            ("count([0..10000], # > 0)", Err("range of 10,001 values")),
            (
                "count([1..y], # > 0)",
                Err("bounds are computed at run time"),
            ),
            (
                "count([1..10000], count([1..10000], # > 0) > 0)",
                Err("up to 700,200,013 steps"),
            ),
        ];
        for (text, expected) in cases {
            match (steps(text), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{text}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn joining_strings_costs_their_length() {
        let short = steps("'ab' + 'cd'").unwrap();
        let long = steps(&format!("'{}' + 'cd'", "a".repeat(6400))).unwrap();
        assert_eq!(long - short, 100 + 100, "the literal's copy and the join's");
        // A name joined to a string is taken to be as long as an input string may be.
        assert!(steps("'id-' + name").unwrap() >= 4_096 / 64);
        // Between names, `+` is arithmetic.
        assert_eq!(steps("a + b").unwrap(), 3);
    }
}
