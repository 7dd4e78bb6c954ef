//! Overlapping rows of a `unique` table, found when the package compiles: two rows whose every
//! input cell can hold for one value, with an example input that hits both — so that a strategy
//! defect is found by its author at `validate`, not by a live applicant at run time.
//!
//! Only cells of the analysed forms (any, literals, comparisons and intervals) are compared; a
//! row with another kind of cell (an expression ZEN evaluates) is left out, never guessed at.

use credence_expr::{compare_decimals, Interval, Literal, SimpleTest};
use rust_decimal::Decimal;
use std::cmp::Ordering;

/// Rows compared pairwise at most; a larger table is not checked (its pairs would cost more
/// than a compilation should).
pub(crate) const MAX_ROWS_CHECKED: usize = 2_000;

/// A value both tests accept, as JSON: the example of an overlap. `None` when none exists.
pub(crate) fn common_value(a: &SimpleTest, b: &SimpleTest) -> Option<serde_json::Value> {
    use SimpleTest::*;
    match (a, b) {
        (Any, Any) => Some(serde_json::Value::Null),
        (Any, OneOf(values)) | (OneOf(values), Any) => values.first().map(literal_json),
        (Any, Range(interval)) | (Range(interval), Any) => point_in(interval).map(decimal_json),
        (OneOf(left), OneOf(right)) => left
            .iter()
            .find(|l| right.iter().any(|r| literals_equal(l, r)))
            .map(literal_json),
        (OneOf(values), Range(interval)) | (Range(interval), OneOf(values)) => {
            values.iter().find_map(|value| match value {
                Literal::Number(n) if interval.contains(*n) => Some(decimal_json(*n)),
                _ => None,
            })
        }
        (Range(left), Range(right)) => point_in(&intersection(left, right)).map(decimal_json),
    }
}

/// The first overlapping pairs of rows (at most `most`), each with an example value per input
/// column; rows with a cell of another form are skipped.
pub(crate) fn overlapping_rows(
    rows: &[Vec<Option<&SimpleTest>>],
    most: usize,
) -> Vec<(usize, usize, Vec<serde_json::Value>)> {
    let mut found = Vec::new();
    if rows.len() > MAX_ROWS_CHECKED {
        return found;
    }
    for (i, left) in rows.iter().enumerate() {
        let Some(left) = left.iter().copied().collect::<Option<Vec<_>>>() else {
            continue;
        };
        for (j, right) in rows.iter().enumerate().skip(i + 1) {
            let Some(right) = right.iter().copied().collect::<Option<Vec<_>>>() else {
                continue;
            };
            let example: Option<Vec<serde_json::Value>> = left
                .iter()
                .zip(&right)
                .map(|(a, b)| common_value(a, b))
                .collect();
            if let Some(example) = example {
                found.push((i, j, example));
                if found.len() >= most {
                    return found;
                }
            }
        }
    }
    found
}

fn literals_equal(a: &Literal, b: &Literal) -> bool {
    match (a, b) {
        (Literal::Number(x), Literal::Number(y)) => compare_decimals(*x, *y) == Ordering::Equal,
        (Literal::String(x), Literal::String(y)) => x == y,
        (Literal::Bool(x), Literal::Bool(y)) => x == y,
        _ => false,
    }
}

fn literal_json(literal: &Literal) -> serde_json::Value {
    match literal {
        Literal::Number(n) => decimal_json(*n),
        Literal::String(s) => serde_json::Value::String(s.clone()),
        Literal::Bool(b) => serde_json::Value::Bool(*b),
    }
}

fn decimal_json(n: Decimal) -> serde_json::Value {
    serde_json::from_str(&n.normalize().to_string()).unwrap_or(serde_json::Value::Null)
}

/// The tighter of two lower ends (`None` is unbounded); at equal values, exclusive wins.
fn tighter_low(a: Option<(Decimal, bool)>, b: Option<(Decimal, bool)>) -> Option<(Decimal, bool)> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) => Some(match compare_decimals(x.0, y.0) {
            Ordering::Greater => x,
            Ordering::Less => y,
            Ordering::Equal => (x.0, x.1 && y.1),
        }),
    }
}

fn tighter_high(a: Option<(Decimal, bool)>, b: Option<(Decimal, bool)>) -> Option<(Decimal, bool)> {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(x), Some(y)) => Some(match compare_decimals(x.0, y.0) {
            Ordering::Less => x,
            Ordering::Greater => y,
            Ordering::Equal => (x.0, x.1 && y.1),
        }),
    }
}

fn intersection(a: &Interval, b: &Interval) -> Interval {
    Interval {
        low: tighter_low(a.low, b.low),
        high: tighter_high(a.high, b.high),
    }
}

/// A number inside the interval, if it holds any.
fn point_in(interval: &Interval) -> Option<Decimal> {
    let candidate = match (interval.low, interval.high) {
        (None, None) => Decimal::ZERO,
        (Some((low, true)), None) => low,
        (Some((low, false)), None) => low + Decimal::ONE,
        (None, Some((high, true))) => high,
        (None, Some((high, false))) => high - Decimal::ONE,
        (Some((low, low_in)), Some((high, high_in))) => match compare_decimals(low, high) {
            Ordering::Greater => return None,
            Ordering::Equal => return (low_in && high_in).then_some(low),
            Ordering::Less if low_in => low,
            Ordering::Less => (low + high) / Decimal::TWO,
        },
    };
    interval.contains(candidate).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn test(text: &str) -> SimpleTest {
        SimpleTest::parse(text).unwrap_or_else(|| panic!("{text} is not analysed"))
    }

    #[test]
    fn overlaps_are_found_with_a_value_both_accept() {
        let cases = [
            ("-", "-", Some(serde_json::Value::Null)),
            ("> 1", "< 3", Some(serde_json::json!(2))),
            ("[1..2]", "[2..3]", Some(serde_json::json!(2))),
            ("[1..2)", "[2..3]", None),
            ("> 5", "<= 5", None),
            ("\"a\", \"b\"", "\"b\"", Some(serde_json::json!("b"))),
            ("\"a\"", "\"b\"", None),
            ("1, 7", "[5..10)", Some(serde_json::json!(7))),
            ("-", "[5..10)", Some(serde_json::json!(5))),
        ];
        for (a, b, expected) in cases {
            let found = common_value(&test(a), &test(b));
            match (&found, &expected) {
                (Some(f), Some(e)) if f.is_number() && e.is_number() => {
                    assert_eq!(f.as_f64(), e.as_f64(), "{a} / {b}")
                }
                _ => assert_eq!(found, expected, "{a} / {b}"),
            }
        }
    }

    proptest! {
        /// Whatever value is offered as common is accepted by both tests; when none is
        /// offered, no integer from -20 to 20 is accepted by both.
        #[test]
        fn a_common_value_is_accepted_by_both(
            a_low in -10i64..10, a_len in 0i64..8, a_in in any::<bool>(), a_hi_in in any::<bool>(),
            b_low in -10i64..10, b_len in 0i64..8, b_in in any::<bool>(), b_hi_in in any::<bool>(),
        ) {
            let text = |low: i64, len: i64, low_in: bool, high_in: bool| format!(
                "{}{}..{}{}", if low_in { "[" } else { "(" }, low, low + len, if high_in { "]" } else { ")" });
            let (a, b) = (test(&text(a_low, a_len, a_in, a_hi_in)), test(&text(b_low, b_len, b_in, b_hi_in)));
            let accepts = |t: &SimpleTest, x: Decimal| match t {
                SimpleTest::Range(i) => i.contains(x),
                _ => unreachable!(),
            };
            match common_value(&a, &b) {
                Some(value) => {
                    let x: Decimal = value.to_string().parse().unwrap();
                    prop_assert!(accepts(&a, x) && accepts(&b, x));
                }
                None => {
                    for n in -20i64..=20 {
                        for half in [Decimal::ZERO, Decimal::new(5, 1)] {
                            let x = Decimal::from(n) + half;
                            prop_assert!(!(accepts(&a, x) && accepts(&b, x)), "{x}");
                        }
                    }
                }
            }
        }
    }
}
