//! Ordering of decimals: the same answer as `Decimal::cmp`, a few instructions where scales are close.
//!
//! Strategies compare decimals everywhere: rule thresholds, scorecard bins, table intervals,
//! schema bounds — dozens of comparisons in one application decision. `rust_decimal` orders two
//! values by rescaling their 96-bit mantissas limb by limb, dozens of instructions a call. A
//! decimal is `mantissa / 10^scale` with `|mantissa| < 2^96`, so when the scales differ by at
//! most nine the smaller-scale mantissa times `10^difference` stays below `2^126` and the two
//! compare as `i128`s exactly. Other pairs (rare: a 28-place value against an integer) fall back
//! to the library.

use rust_decimal::Decimal;
use std::cmp::Ordering;

/// Powers of ten that keep `2^96 · 10^k` inside an `i128`.
const POWERS_OF_TEN: [i128; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// `a.cmp(&b)`, exactly.
#[inline]
pub fn compare_decimals(a: Decimal, b: Decimal) -> Ordering {
    let (scale_a, scale_b) = (a.scale(), b.scale());
    let (mantissa_a, mantissa_b) = (a.mantissa(), b.mantissa());
    if scale_a == scale_b {
        return mantissa_a.cmp(&mantissa_b);
    }
    if scale_a < scale_b {
        if let Some(power) = POWERS_OF_TEN.get((scale_b - scale_a) as usize) {
            return (mantissa_a * power).cmp(&mantissa_b);
        }
    } else if let Some(power) = POWERS_OF_TEN.get((scale_a - scale_b) as usize) {
        return mantissa_a.cmp(&(mantissa_b * power));
    }
    a.cmp(&b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn orders_as_the_library_does() {
        // (a, b, expected): equal values at different scales, signs, zeros, far-apart scales.
        let cases = [
            ("1", "1.00", Ordering::Equal),
            ("0", "-0.000", Ordering::Equal),
            ("0.5", "0.45", Ordering::Greater),
            ("-0.5", "-0.45", Ordering::Less),
            ("600", "599.999999999", Ordering::Greater),
            ("79228162514264337593543950335", "1.5", Ordering::Greater),
            (
                "-79228162514264337593543950335",
                "0.0000000000000000000000000001",
                Ordering::Less,
            ),
            ("0.0000000000000000000000000001", "0", Ordering::Greater),
            (
                "7.9228162514264337593543950335",
                "7.92281625142643375935439503",
                Ordering::Greater,
            ),
        ];
        for (a, b, expected) in cases {
            assert_eq!(compare_decimals(d(a), d(b)), expected, "{a} vs {b}");
            assert_eq!(
                compare_decimals(d(b), d(a)),
                expected.reverse(),
                "{b} vs {a}"
            );
        }
    }

    fn decimal() -> impl Strategy<Value = Decimal> {
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<bool>(),
            0u32..=28,
        )
            .prop_map(|(lo, mid, hi, negative, scale)| {
                // Mostly small mantissas, as real amounts and rates are, with some full-width.
                let hi = if lo % 3 == 0 { hi } else { 0 };
                let mid = if lo % 2 == 0 { mid } else { 0 };
                Decimal::from_parts(lo, mid, hi, negative, scale)
            })
    }

    proptest! {
        #[test]
        fn agrees_with_decimal_cmp(a in decimal(), b in decimal()) {
            prop_assert_eq!(compare_decimals(a, b), a.cmp(&b));
            prop_assert_eq!(compare_decimals(a, a.round_dp(2)), a.cmp(&a.round_dp(2)));
        }
    }
}
