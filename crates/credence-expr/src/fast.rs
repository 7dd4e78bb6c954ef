//! A direct evaluator for the expressions strategies write most: names, literals, comparisons, logic, arithmetic, `?:`, `min`/`max`.
//!
//! Rules and derived features are mostly `dti > 0.5`, `status != 'active'`,
//! `x != null and x > 3`. Running each through the ZEN VM costs more than the comparison
//! itself; this tree walks them directly. It reproduces the VM's semantics exactly where it
//! answers, and answers `None` — "ask the VM" — wherever the VM would raise an error (ordering
//! a string against a number, `and` on a non-boolean), so errors still come from ZEN. A property
//! test holds the two together.

use crate::{Constant, Frame, Names, Slot, Variable};
use std::cmp::Ordering;
use std::sync::Arc;
use zen_expression::functions::{FunctionKind, InternalFunction};
use zen_expression::lexer::{ArithmeticOperator, ComparisonOperator, LogicalOperator, Operator};
use zen_expression::parser::Node;

#[derive(Debug, Clone)]
pub(crate) enum Fast {
    Constant(Constant),
    /// A name, then fields of objects: `grade.grade`.
    Path(Slot, Vec<Arc<str>>),
    Equal {
        left: Box<Fast>,
        right: Box<Fast>,
        negate: bool,
    },
    Order {
        left: Box<Fast>,
        right: Box<Fast>,
        accept: fn(Ordering) -> bool,
    },
    And(Box<Fast>, Box<Fast>),
    Or(Box<Fast>, Box<Fast>),
    Coalesce(Box<Fast>, Box<Fast>),
    Not(Box<Fast>),
    Arithmetic {
        left: Box<Fast>,
        right: Box<Fast>,
        operator: Arithmetic,
    },
    Conditional {
        condition: Box<Fast>,
        then: Box<Fast>,
        otherwise: Box<Fast>,
    },
    /// `min([..])` / `max([..])` of an array written in place.
    Extreme {
        items: Vec<Fast>,
        smallest: bool,
    },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Arithmetic {
    Add,
    Subtract,
    Multiply,
    Divide,
}

impl Fast {
    /// The direct form of a parsed expression, when every node of it has one.
    pub(crate) fn from_node(node: &Node, names: &mut Names) -> Option<Fast> {
        Some(match node {
            Node::Null => Fast::Constant(Constant::Null),
            Node::Bool(b) => Fast::Constant(Constant::Bool(*b)),
            Node::Number(n) => Fast::Constant(Constant::Number(*n)),
            Node::String(s) => Fast::Constant(Constant::String(Arc::from(*s))),
            Node::Identifier(name) => Fast::Path(names.slot(name), Vec::new()),
            Node::Member {
                node,
                property: Node::String(field),
            } => match Fast::from_node(node, names)? {
                Fast::Path(root, mut fields) => {
                    fields.push(Arc::from(*field));
                    Fast::Path(root, fields)
                }
                _ => return None,
            },
            Node::Parenthesized(inner) => Fast::from_node(inner, names)?,
            Node::Unary { node, operator } => match (operator, Fast::from_node(node, names)?) {
                (Operator::Logical(LogicalOperator::Not), inner) => Fast::Not(Box::new(inner)),
                (
                    Operator::Arithmetic(ArithmeticOperator::Subtract),
                    Fast::Constant(Constant::Number(n)),
                ) => Fast::Constant(Constant::Number(-n)),
                _ => return None,
            },
            Node::Binary {
                left,
                operator,
                right,
            } => {
                let (left, right) = (
                    Box::new(Fast::from_node(left, names)?),
                    Box::new(Fast::from_node(right, names)?),
                );
                match operator {
                    Operator::Comparison(ComparisonOperator::Equal) => Fast::Equal {
                        left,
                        right,
                        negate: false,
                    },
                    Operator::Comparison(ComparisonOperator::NotEqual) => Fast::Equal {
                        left,
                        right,
                        negate: true,
                    },
                    Operator::Comparison(ComparisonOperator::LessThan) => Fast::Order {
                        left,
                        right,
                        accept: Ordering::is_lt,
                    },
                    Operator::Comparison(ComparisonOperator::LessThanOrEqual) => Fast::Order {
                        left,
                        right,
                        accept: Ordering::is_le,
                    },
                    Operator::Comparison(ComparisonOperator::GreaterThan) => Fast::Order {
                        left,
                        right,
                        accept: Ordering::is_gt,
                    },
                    Operator::Comparison(ComparisonOperator::GreaterThanOrEqual) => Fast::Order {
                        left,
                        right,
                        accept: Ordering::is_ge,
                    },
                    Operator::Logical(LogicalOperator::And) => Fast::And(left, right),
                    Operator::Logical(LogicalOperator::Or) => Fast::Or(left, right),
                    Operator::Logical(LogicalOperator::NullishCoalescing) => {
                        Fast::Coalesce(left, right)
                    }
                    Operator::Arithmetic(ArithmeticOperator::Add) => Fast::Arithmetic {
                        left,
                        right,
                        operator: Arithmetic::Add,
                    },
                    Operator::Arithmetic(ArithmeticOperator::Subtract) => Fast::Arithmetic {
                        left,
                        right,
                        operator: Arithmetic::Subtract,
                    },
                    Operator::Arithmetic(ArithmeticOperator::Multiply) => Fast::Arithmetic {
                        left,
                        right,
                        operator: Arithmetic::Multiply,
                    },
                    Operator::Arithmetic(ArithmeticOperator::Divide) => Fast::Arithmetic {
                        left,
                        right,
                        operator: Arithmetic::Divide,
                    },
                    _ => return None,
                }
            }
            Node::Conditional {
                condition,
                on_true,
                on_false,
            } => Fast::Conditional {
                condition: Box::new(Fast::from_node(condition, names)?),
                then: Box::new(Fast::from_node(on_true, names)?),
                otherwise: Box::new(Fast::from_node(on_false, names)?),
            },
            Node::FunctionCall {
                kind:
                    FunctionKind::Internal(function @ (InternalFunction::Min | InternalFunction::Max)),
                arguments,
            } => {
                let [Node::Array(items)] = arguments else {
                    return None;
                };
                Fast::Extreme {
                    items: items
                        .iter()
                        .map(|item| Fast::from_node(item, names))
                        .collect::<Option<_>>()?,
                    smallest: *function == InternalFunction::Min,
                }
            }
            _ => return None,
        })
    }

    /// Evaluates; `None` where the VM would raise an error (let it, with its message).
    pub(crate) fn eval(&self, frame: &Frame) -> Option<Variable> {
        Some(match self {
            Fast::Constant(c) => c.to_variable(),
            Fast::Path(root, fields) => frame.get_path(*root, fields),
            Fast::Equal {
                left,
                right,
                negate,
            } => {
                let equal = match (left.eval(frame)?, right.eval(frame)?) {
                    (Variable::Number(a), Variable::Number(b)) => a == b,
                    (Variable::Bool(a), Variable::Bool(b)) => a == b,
                    (Variable::String(a), Variable::String(b)) => a == b,
                    (Variable::Null, Variable::Null) => true,
                    // Dates compare in ZEN's own way; leave them to it.
                    (Variable::Dynamic(_), _) | (_, Variable::Dynamic(_)) => return None,
                    _ => false,
                };
                Variable::Bool(equal != *negate)
            }
            Fast::Order {
                left,
                right,
                accept,
            } => match (left.eval(frame)?, right.eval(frame)?) {
                (Variable::Number(a), Variable::Number(b)) => Variable::Bool(accept(a.cmp(&b))),
                _ => return None,
            },
            Fast::And(left, right) => match left.eval(frame)? {
                Variable::Bool(false) => Variable::Bool(false),
                Variable::Bool(true) => right.eval(frame)?,
                _ => return None,
            },
            Fast::Or(left, right) => match left.eval(frame)? {
                Variable::Bool(true) => Variable::Bool(true),
                Variable::Bool(false) => right.eval(frame)?,
                _ => return None,
            },
            Fast::Coalesce(left, right) => match left.eval(frame)? {
                Variable::Null => right.eval(frame)?,
                value => value,
            },
            Fast::Not(inner) => match inner.eval(frame)? {
                Variable::Bool(b) => Variable::Bool(!b),
                _ => return None,
            },
            Fast::Arithmetic {
                left,
                right,
                operator,
            } => {
                let (Variable::Number(a), Variable::Number(b)) =
                    (left.eval(frame)?, right.eval(frame)?)
                else {
                    return None;
                };
                match operator {
                    Arithmetic::Add => Variable::Number(a.checked_add(b)?),
                    Arithmetic::Subtract => Variable::Number(a.checked_sub(b)?),
                    Arithmetic::Multiply => Variable::Number(a.checked_mul(b)?),
                    // As in ZEN: division by zero gives null, not an error.
                    Arithmetic::Divide => a.checked_div(b).map_or(Variable::Null, Variable::Number),
                }
            }
            Fast::Conditional {
                condition,
                then,
                otherwise,
            } => match condition.eval(frame)? {
                Variable::Bool(true) => then.eval(frame)?,
                Variable::Bool(false) => otherwise.eval(frame)?,
                _ => return None,
            },
            Fast::Extreme { items, smallest } => {
                let mut best: Option<rust_decimal::Decimal> = None;
                for item in items {
                    let Variable::Number(n) = item.eval(frame)? else {
                        return None;
                    };
                    best = Some(match best {
                        None => n,
                        Some(b) if *smallest => b.min(n),
                        Some(b) => b.max(n),
                    });
                }
                Variable::Number(best?)
            }
        })
    }
}
