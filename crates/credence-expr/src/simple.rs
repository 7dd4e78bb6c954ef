//! The analysed form of simple unary tests (`-`, literals, comparisons, intervals), which tables index.
//!
//! A decision table of a thousand rows must not be scanned linearly when its cells are the
//! usual ones. Cells in these forms are understood here, with the same meaning ZEN gives them
//! (a property test holds the two to each other); any other cell stays a ZEN program.

use crate::{compare_decimals, Value, Variable};
use rust_decimal::Decimal;
use std::str::FromStr;

/// A literal a cell compares with by equality.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Literal {
    /// A number.
    Number(Decimal),
    /// A string.
    String(String),
    /// A boolean.
    Bool(bool),
}

impl Literal {
    /// Whether `value` equals the literal.
    #[inline]
    pub fn matches(&self, value: &Value) -> bool {
        self.matches_variable(&value.0)
    }

    pub(crate) fn matches_variable(&self, value: &Variable) -> bool {
        match (self, value) {
            (Literal::Number(a), Variable::Number(b)) => compare_decimals(*a, *b).is_eq(),
            (Literal::String(a), Variable::String(b)) => a.as_str() == b.as_str(),
            (Literal::Bool(a), Variable::Bool(b)) => a == b,
            _ => false,
        }
    }
}

/// A numeric interval; `None` ends are unbounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// Lower end and whether it is included.
    pub low: Option<(Decimal, bool)>,
    /// Upper end and whether it is included.
    pub high: Option<(Decimal, bool)>,
}

impl Interval {
    /// Whether `x` lies in the interval.
    pub fn contains(&self, x: Decimal) -> bool {
        let above = match self.low {
            None => true,
            Some((low, true)) => compare_decimals(x, low).is_ge(),
            Some((low, false)) => compare_decimals(x, low).is_gt(),
        };
        let below = match self.high {
            None => true,
            Some((high, true)) => compare_decimals(x, high).is_le(),
            Some((high, false)) => compare_decimals(x, high).is_lt(),
        };
        above && below
    }

    /// Parses `[a..b]`, `(a..b)`, `[a..b)`, `(a..b]`; `-inf`/`inf` (or an empty end) leave an
    /// end open. Used by scorecard bins as well as table cells.
    pub fn parse(text: &str) -> Option<Interval> {
        let text = text.trim();
        let low_inclusive = match text.chars().next()? {
            '[' => true,
            '(' => false,
            _ => return None,
        };
        let high_inclusive = match text.chars().last()? {
            ']' => true,
            ')' => false,
            _ => return None,
        };
        let inner = &text[1..text.len() - 1];
        let (low, high) = inner.split_once("..")?;
        let end = |s: &str, infinity: &str| -> Option<Option<Decimal>> {
            let s = s.trim();
            if s.is_empty() || s == infinity {
                Some(None)
            } else {
                Decimal::from_str(s).ok().map(Some)
            }
        };
        let low = end(low, "-inf")?.map(|l| (l, low_inclusive));
        let high = end(high, "inf")?.map(|h| (h, high_inclusive));
        if let (Some((l, _)), Some((h, _))) = (low, high) {
            if l > h {
                return None;
            }
        }
        Some(Interval { low, high })
    }
}

/// The analysed form of a unary test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimpleTest {
    /// `-` or an empty cell: matches anything, null included.
    Any,
    /// One literal or a comma list of literals: matches a value equal to one of them.
    OneOf(Vec<Literal>),
    /// A comparison with a number or an interval: matches numbers inside it.
    Range(Interval),
}

impl SimpleTest {
    /// Recognises the simple forms; `None` for anything else (which ZEN then evaluates).
    pub fn parse(text: &str) -> Option<SimpleTest> {
        let text = text.trim();
        if text.is_empty() || text == "-" {
            return Some(SimpleTest::Any);
        }
        for (operator, inclusive, upper) in [
            ("<=", true, true),
            (">=", true, false),
            ("<", false, true),
            (">", false, false),
        ] {
            if let Some(rest) = text.strip_prefix(operator) {
                let bound = Decimal::from_str(rest.trim()).ok()?;
                let end = Some((bound, inclusive));
                return Some(SimpleTest::Range(if upper {
                    Interval {
                        low: None,
                        high: end,
                    }
                } else {
                    Interval {
                        low: end,
                        high: None,
                    }
                }));
            }
        }
        if text.starts_with('[') || text.starts_with('(') {
            if text.contains(',') {
                return None;
            }
            // ZEN writes intervals with explicit numeric ends.
            let interval = Interval::parse(text)?;
            if interval.low.is_none() || interval.high.is_none() {
                return None;
            }
            return Some(SimpleTest::Range(interval));
        }
        let mut literals = Vec::new();
        for part in split_top_level_commas(text)? {
            literals.push(parse_literal(part.trim())?);
        }
        Some(SimpleTest::OneOf(literals))
    }

    /// Whether `value` passes the test.
    #[inline]
    pub fn matches(&self, value: &Value) -> bool {
        self.matches_variable(&value.0)
    }

    pub(crate) fn matches_variable(&self, value: &Variable) -> bool {
        match self {
            SimpleTest::Any => true,
            SimpleTest::OneOf(literals) => literals.iter().any(|l| l.matches_variable(value)),
            SimpleTest::Range(interval) => match value {
                Variable::Number(x) => interval.contains(*x),
                _ => false,
            },
        }
    }
}

fn parse_literal(text: &str) -> Option<Literal> {
    match text {
        "true" => return Some(Literal::Bool(true)),
        "false" => return Some(Literal::Bool(false)),
        _ => {}
    }
    for quote in ['"', '\''] {
        if text.len() >= 2 && text.starts_with(quote) && text.ends_with(quote) {
            let inner = &text[1..text.len() - 1];
            if inner.contains(quote) || inner.contains('\\') || inner.contains("${") {
                return None;
            }
            return Some(Literal::String(inner.to_string()));
        }
    }
    let first = text.chars().next()?;
    if first.is_ascii_digit() || first == '-' {
        if text.contains(['e', 'E', '_']) {
            return None;
        }
        return Decimal::from_str(text).ok().map(Literal::Number);
    }
    None
}

/// Splits on commas outside quotes; `None` when a quote is left open.
fn split_top_level_commas(text: &str) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut quote: Option<char> = None;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, ',') => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quote.is_some() {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognised_forms() {
        let d = |s: &str| Decimal::from_str(s).unwrap();
        let cases: Vec<(&str, Option<SimpleTest>)> = vec![
            ("-", Some(SimpleTest::Any)),
            ("  ", Some(SimpleTest::Any)),
            (
                "600",
                Some(SimpleTest::OneOf(vec![Literal::Number(d("600"))])),
            ),
            (
                "\"A\", 'B'",
                Some(SimpleTest::OneOf(vec![
                    Literal::String("A".into()),
                    Literal::String("B".into()),
                ])),
            ),
            (
                ">= 0.35",
                Some(SimpleTest::Range(Interval {
                    low: Some((d("0.35"), true)),
                    high: None,
                })),
            ),
            (
                "[600..700)",
                Some(SimpleTest::Range(Interval {
                    low: Some((d("600"), true)),
                    high: Some((d("700"), false)),
                })),
            ),
            ("$ > 5 and $ < 10", None),
            (
                "\"a,b\"",
                Some(SimpleTest::OneOf(vec![Literal::String("a,b".into())])),
            ),
            ("[700..600]", None),
            ("foo", None),
        ];
        for (text, expected) in cases {
            assert_eq!(SimpleTest::parse(text), expected, "{text}");
        }
    }

    #[test]
    fn interval_bins_with_open_ends() {
        let bin = Interval::parse("(-inf..12)").unwrap();
        assert!(bin.contains(Decimal::from(-5)));
        assert!(!bin.contains(Decimal::from(12)));
        let bin = Interval::parse("[12..inf)").unwrap();
        assert!(bin.contains(Decimal::from(12)));
        assert!(Interval::parse("12..24").is_none());
    }
}
