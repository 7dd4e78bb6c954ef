//! A direct evaluator for the expressions strategies write most: names, literals, comparisons, logic, arithmetic, `?:`, `min`/`max`.
//!
//! Rules and derived features are mostly `dti > 0.5`, `status != 'active'`,
//! `x != null and x > 3`. Running each through the ZEN VM costs more than the comparison
//! itself; this tree walks them directly. It reproduces the VM's semantics exactly where it
//! answers, and answers `None` — "ask the VM" — wherever the VM would raise an error (ordering
//! a string against a number, `and` on a non-boolean), so errors still come from ZEN. A property
//! test holds the two together.

use crate::frame::FieldName;
use crate::{compare_decimals, Constant, Frame, Names, Slot, Variable};
use std::cmp::Ordering;
use std::sync::Arc;
use zen_expression::functions::{FunctionKind, InternalFunction};
use zen_expression::lexer::{ArithmeticOperator, ComparisonOperator, LogicalOperator, Operator};
use zen_expression::parser::Node;

#[derive(Debug, Clone)]
pub(crate) enum Fast {
    Constant(Constant),
    /// A name, then fields of objects: `grade.grade`.
    Path(Slot, Vec<FieldName>),
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
                    fields.push(FieldName::new(field));
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
        match self {
            // A name alone: the frame's value itself (a string or object shared, not copied).
            Fast::Path(root, fields) => Some(frame.get_path(*root, fields)),
            _ => Some(self.scalar(frame)?.into_variable()),
        }
    }

    /// [`Fast::eval`] of a condition, answering only a boolean or null (`None`: evaluate it
    /// in full, for its value or the VM's error).
    pub(crate) fn truth(&self, frame: &Frame) -> Option<crate::Truth> {
        match self.operand(frame)? {
            Scalar::Bool(true) => Some(crate::Truth::True),
            Scalar::Bool(false) => Some(crate::Truth::False),
            Scalar::Null => Some(crate::Truth::Null),
            _ => None,
        }
    }

    /// A child's value: a leaf (a constant, a name) read here, inlined into the parent, without
    /// the call and the returned `Option<Scalar>` of a recursive step; anything else recursively.
    /// Most children of comparisons and arithmetic are leaves.
    #[inline(always)]
    fn operand<'a>(&'a self, frame: &'a Frame) -> Option<Scalar<'a>> {
        match self {
            Fast::Constant(Constant::Number(n)) => Some(Scalar::Number(*n)),
            Fast::Path(root, fields) if fields.is_empty() => {
                Some(Scalar::of(frame.slot_value(*root)))
            }
            _ => self.scalar(frame),
        }
    }

    /// Evaluates to a [`Scalar`]: numbers and booleans by value, strings and the rest borrowed
    /// from the expression or the frame, so inner nodes neither clone nor drop variables.
    fn scalar<'a>(&'a self, frame: &'a Frame) -> Option<Scalar<'a>> {
        Some(match self {
            Fast::Constant(c) => match c {
                Constant::Null => Scalar::Null,
                Constant::Bool(b) => Scalar::Bool(*b),
                Constant::Number(n) => Scalar::Number(*n),
                Constant::String(s) => Scalar::Text(s),
            },
            Fast::Path(root, fields) if fields.is_empty() => Scalar::of(frame.slot_value(*root)),
            Fast::Path(root, fields) => Scalar::owned(frame.get_path(*root, fields)),
            Fast::Equal {
                left,
                right,
                negate,
            } => {
                let (left, right) = (left.operand(frame)?, right.operand(frame)?);
                let equal = match (&left, &right) {
                    (Scalar::Number(a), Scalar::Number(b)) => compare_decimals(*a, *b).is_eq(),
                    (Scalar::Bool(a), Scalar::Bool(b)) => a == b,
                    (Scalar::Null, Scalar::Null) => true,
                    // Dates compare in ZEN's own way; leave them to it.
                    _ if left.is_dynamic() || right.is_dynamic() => return None,
                    _ => match (left.as_str(), right.as_str()) {
                        (Some(a), Some(b)) => a == b,
                        _ => false,
                    },
                };
                Scalar::Bool(equal != *negate)
            }
            Fast::Order {
                left,
                right,
                accept,
            } => match (left.operand(frame)?, right.operand(frame)?) {
                (Scalar::Number(a), Scalar::Number(b)) => {
                    Scalar::Bool(accept(compare_decimals(a, b)))
                }
                _ => return None,
            },
            Fast::And(left, right) => match left.operand(frame)? {
                Scalar::Bool(false) => Scalar::Bool(false),
                Scalar::Bool(true) => right.operand(frame)?,
                _ => return None,
            },
            Fast::Or(left, right) => match left.operand(frame)? {
                Scalar::Bool(true) => Scalar::Bool(true),
                Scalar::Bool(false) => right.operand(frame)?,
                _ => return None,
            },
            Fast::Coalesce(left, right) => match left.operand(frame)? {
                Scalar::Null => right.operand(frame)?,
                value => value,
            },
            Fast::Not(inner) => match inner.operand(frame)? {
                Scalar::Bool(b) => Scalar::Bool(!b),
                _ => return None,
            },
            Fast::Arithmetic {
                left,
                right,
                operator,
            } => {
                let (Scalar::Number(a), Scalar::Number(b)) =
                    (left.operand(frame)?, right.operand(frame)?)
                else {
                    return None;
                };
                match operator {
                    Arithmetic::Add => Scalar::Number(a.checked_add(b)?),
                    Arithmetic::Subtract => Scalar::Number(a.checked_sub(b)?),
                    Arithmetic::Multiply => Scalar::Number(a.checked_mul(b)?),
                    // As in ZEN: division by zero gives null, not an error.
                    Arithmetic::Divide => a.checked_div(b).map_or(Scalar::Null, Scalar::Number),
                }
            }
            Fast::Conditional {
                condition,
                then,
                otherwise,
            } => match condition.operand(frame)? {
                Scalar::Bool(true) => then.operand(frame)?,
                Scalar::Bool(false) => otherwise.operand(frame)?,
                _ => return None,
            },
            Fast::Extreme { items, smallest } => {
                let mut best: Option<rust_decimal::Decimal> = None;
                for item in items {
                    let Scalar::Number(n) = item.operand(frame)? else {
                        return None;
                    };
                    // Of equal values, `min` keeps the first and `max` the last, as `Ord` does.
                    best = Some(match best {
                        None => n,
                        Some(b) if *smallest => {
                            if compare_decimals(b, n).is_gt() {
                                n
                            } else {
                                b
                            }
                        }
                        Some(b) => {
                            if compare_decimals(b, n).is_gt() {
                                b
                            } else {
                                n
                            }
                        }
                    });
                }
                Scalar::Number(best?)
            }
        })
    }
}

/// A value met inside an expression. Numbers, booleans and null are held by value; a string
/// constant or a frame's value is borrowed; only a value read from inside an object is owned.
enum Scalar<'a> {
    Null,
    Bool(bool),
    Number(rust_decimal::Decimal),
    /// A string constant of the expression.
    Text(&'a str),
    /// A frame's value other than a number, boolean or null.
    Borrowed(&'a Variable),
    /// A value other than a number, boolean or null, read from inside an object.
    Owned(Variable),
}

impl<'a> Scalar<'a> {
    fn of(value: &'a Variable) -> Scalar<'a> {
        match value {
            Variable::Null => Scalar::Null,
            Variable::Bool(b) => Scalar::Bool(*b),
            Variable::Number(n) => Scalar::Number(*n),
            other => Scalar::Borrowed(other),
        }
    }

    fn owned(value: Variable) -> Scalar<'a> {
        match value {
            Variable::Null => Scalar::Null,
            Variable::Bool(b) => Scalar::Bool(b),
            Variable::Number(n) => Scalar::Number(n),
            other => Scalar::Owned(other),
        }
    }

    fn variable(&self) -> Option<&Variable> {
        match self {
            Scalar::Borrowed(value) => Some(value),
            Scalar::Owned(value) => Some(value),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Text(text) => Some(text),
            _ => match self.variable()? {
                Variable::String(s) => Some(s.as_str()),
                _ => None,
            },
        }
    }

    fn is_dynamic(&self) -> bool {
        matches!(self.variable(), Some(Variable::Dynamic(_)))
    }

    fn into_variable(self) -> Variable {
        match self {
            Scalar::Null => Variable::Null,
            Scalar::Bool(b) => Variable::Bool(b),
            Scalar::Number(n) => Variable::Number(n),
            Scalar::Text(text) => Variable::String(text.into()),
            Scalar::Borrowed(value) => value.clone(),
            Scalar::Owned(value) => value,
        }
    }
}
