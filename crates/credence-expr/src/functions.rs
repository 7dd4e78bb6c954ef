//! Credit functions callable from strategy expressions: annuity maths, date spans, money rounding.
//!
//! All money arithmetic is `Decimal`; nothing here touches a binary float. Each function
//! returns `Err(reason)` with a message that names the argument at fault, so the caller can
//! report the expression and the fix.

use chrono::{Datelike, NaiveDate};
use rust_decimal::prelude::*;

/// The functions Credence adds to the ZEN expression language.
///
/// They are not registered inside the ZEN VM (it has no extension point); instead calls are
/// hoisted out of the expression text at compile time and evaluated before it (see `rewrite`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditFunction {
    /// `annuity_payment(rate_per_period, periods, principal)`: level instalment of an amortising loan.
    AnnuityPayment,
    /// `affordable_principal(rate_per_period, periods, payment)`: the principal a level payment repays.
    AffordablePrincipal,
    /// `months_between(from_date, to_date)`: whole calendar months from one date to another.
    MonthsBetween,
    /// `age_years(birth_date, on_date)`: whole years of age on a date.
    AgeYears,
    /// `round_money(amount, places)`: rounds half away from zero to `places` decimals.
    RoundMoney,
    /// `floor_to(amount, step)`: the largest multiple of `step` not above `amount`.
    FloorTo,
    /// `in_list("list_name", value)`: membership in a list declared by the strategy package.
    InList,
}

impl CreditFunction {
    /// Every credit function.
    pub const ALL: [CreditFunction; 7] = [
        CreditFunction::AnnuityPayment,
        CreditFunction::AffordablePrincipal,
        CreditFunction::MonthsBetween,
        CreditFunction::AgeYears,
        CreditFunction::RoundMoney,
        CreditFunction::FloorTo,
        CreditFunction::InList,
    ];

    /// The name expressions call it by.
    pub fn name(self) -> &'static str {
        match self {
            CreditFunction::AnnuityPayment => "annuity_payment",
            CreditFunction::AffordablePrincipal => "affordable_principal",
            CreditFunction::MonthsBetween => "months_between",
            CreditFunction::AgeYears => "age_years",
            CreditFunction::RoundMoney => "round_money",
            CreditFunction::FloorTo => "floor_to",
            CreditFunction::InList => "in_list",
        }
    }

    /// The function called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<CreditFunction> {
        CreditFunction::ALL.into_iter().find(|f| f.name() == name)
    }

    /// How many arguments it takes.
    pub fn arity(self) -> usize {
        match self {
            CreditFunction::AnnuityPayment | CreditFunction::AffordablePrincipal => 3,
            _ => 2,
        }
    }

    /// Its call signature, for error messages and documentation.
    pub fn signature(self) -> &'static str {
        match self {
            CreditFunction::AnnuityPayment => {
                "annuity_payment(rate_per_period, periods, principal)"
            }
            CreditFunction::AffordablePrincipal => {
                "affordable_principal(rate_per_period, periods, payment)"
            }
            CreditFunction::MonthsBetween => "months_between(from_date, to_date)",
            CreditFunction::AgeYears => "age_years(birth_date, on_date)",
            CreditFunction::RoundMoney => "round_money(amount, places)",
            CreditFunction::FloorTo => "floor_to(amount, step)",
            CreditFunction::InList => "in_list(\"list_name\", value)",
        }
    }
}

const MAX_PERIODS: i64 = 1200;

fn check_rate_and_periods(rate: Decimal, periods: Decimal) -> Result<i64, String> {
    if rate.is_sign_negative() {
        return Err(format!("rate_per_period must not be negative, got {rate}"));
    }
    if rate >= Decimal::ONE {
        return Err(format!(
            "rate_per_period is a rate per period as a fraction (0.01 = 1%), got {rate}"
        ));
    }
    if !periods.fract().is_zero() || periods < Decimal::ONE {
        return Err(format!("periods must be a whole number ≥ 1, got {periods}"));
    }
    let periods = periods.to_i64().unwrap_or(i64::MAX);
    if periods > MAX_PERIODS {
        return Err(format!(
            "periods must be at most {MAX_PERIODS}, got {periods}"
        ));
    }
    Ok(periods)
}

/// Discount factors computed on this thread, by the exact representation of the rate (value
/// and scale) and the periods. A strategy uses a handful of rates and terms, and a decimal power
/// costs about a microsecond; a batch of a million rows asks for the same few again and again.
const DISCOUNT_FACTOR_CACHE: usize = 64;

thread_local! {
    static DISCOUNT_FACTORS: std::cell::RefCell<Vec<([u8; 16], i64, Decimal)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// (1 + r)^-n computed in Decimal by repeated squaring (memoised per thread).
fn discount_factor(rate: Decimal, periods: i64) -> Result<Decimal, String> {
    let key = rate.serialize();
    let cached = DISCOUNT_FACTORS.with(|cache| {
        cache
            .borrow()
            .iter()
            .find(|(r, p, _)| *p == periods && *r == key)
            .map(|entry| entry.2)
    });
    if let Some(factor) = cached {
        return Ok(factor);
    }
    let factor = compute_discount_factor(rate, periods)?;
    DISCOUNT_FACTORS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() == DISCOUNT_FACTOR_CACHE {
            cache.remove(0);
        }
        cache.push((key, periods, factor));
    });
    Ok(factor)
}

fn compute_discount_factor(rate: Decimal, periods: i64) -> Result<Decimal, String> {
    let growth = (Decimal::ONE + rate)
        .checked_powi(periods)
        .ok_or_else(|| "(1 + rate_per_period)^periods overflows".to_string())?;
    Decimal::ONE
        .checked_div(growth)
        .ok_or_else(|| "(1 + rate_per_period)^periods overflows".to_string())
}

/// Level payment that repays `principal` over `periods` at `rate` per period.
pub fn annuity_payment(
    rate: Decimal,
    periods: Decimal,
    principal: Decimal,
) -> Result<Decimal, String> {
    let n = check_rate_and_periods(rate, periods)?;
    if principal.is_sign_negative() {
        return Err(format!("principal must not be negative, got {principal}"));
    }
    if rate.is_zero() {
        return Ok(principal / Decimal::from(n));
    }
    let denominator = Decimal::ONE - discount_factor(rate, n)?;
    if denominator.is_zero() {
        return Err("rate_per_period is too small to amortise at this precision".into());
    }
    principal
        .checked_mul(rate)
        .and_then(|x| x.checked_div(denominator))
        .ok_or_else(|| "annuity_payment overflows".to_string())
}

/// Principal that a level `payment` repays over `periods` at `rate` per period.
pub fn affordable_principal(
    rate: Decimal,
    periods: Decimal,
    payment: Decimal,
) -> Result<Decimal, String> {
    let n = check_rate_and_periods(rate, periods)?;
    if payment.is_sign_negative() {
        return Ok(Decimal::ZERO);
    }
    if rate.is_zero() {
        return payment
            .checked_mul(Decimal::from(n))
            .ok_or_else(|| "affordable_principal overflows".to_string());
    }
    let annuity_factor = (Decimal::ONE - discount_factor(rate, n)?) / rate;
    payment
        .checked_mul(annuity_factor)
        .ok_or_else(|| "affordable_principal overflows".to_string())
}

/// Parses exactly `YYYY-MM-DD` (the only form Credence's inputs use), without chrono's
/// general format machinery: dates are parsed on every decision.
pub fn parse_date(text: &str, argument: &str) -> Result<NaiveDate, String> {
    let invalid = || format!("{argument} must be a date written YYYY-MM-DD, got \"{text}\"");
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        bytes[range].iter().try_fold(0u32, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return Err(invalid());
    };
    NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(invalid)
}

/// Writes a date as `YYYY-MM-DD`.
pub fn format_date(date: NaiveDate) -> String {
    match date_digits(date) {
        Some(text) => text.iter().map(|&b| char::from(b)).collect(),
        None => date.format("%Y-%m-%d").to_string(),
    }
}

/// A date of the years 0–9999 as the ten bytes `YYYY-MM-DD`, without allocating (`None` for
/// other years, which [`format_date`] writes with chrono).
pub(crate) fn date_digits(date: NaiveDate) -> Option<[u8; 10]> {
    let (year, month, day) = (date.year(), date.month(), date.day());
    if !(0..=9999).contains(&year) {
        return None;
    }
    let year = year as u32;
    let digit = |d: u32| b'0' + (d % 10) as u8;
    Some([
        digit(year / 1000),
        digit(year / 100),
        digit(year / 10),
        digit(year),
        b'-',
        digit(month / 10),
        digit(month),
        b'-',
        digit(day / 10),
        digit(day),
    ])
}

/// Whole months from `from` to `to` (negative when `to` is earlier): how many monthly
/// anniversaries of `from` have come by `to`, an anniversary in a shorter month falling on its
/// last day (31 January → 28 February is one month).
///
/// This is the rule credit runs on: a loan opened on 31 January has its first monthly due date,
/// and a first month on book, on 28 February; payment schedules, months on book and months since
/// a delinquency all count anniversaries with end-of-month clamping (as `chrono`'s
/// `checked_add_months` does). The other common rule — a month only once the day of month is
/// reached again — would leave such a loan at zero months until 3 March. The one definition
/// serves the expression function `months_between` and account behaviour features alike.
pub fn months_between(from: NaiveDate, to: NaiveDate) -> i64 {
    if to < from {
        return -months_between(to, from);
    }
    let months =
        (to.year() as i64 - from.year() as i64) * 12 + to.month() as i64 - from.month() as i64;
    // The candidate anniversary, clamped to the end of its month; one too many if it lies
    // beyond `to`.
    let reached = u32::try_from(months)
        .ok()
        .and_then(|m| from.checked_add_months(chrono::Months::new(m)))
        .is_some_and(|anniversary| anniversary <= to);
    if reached {
        months
    } else {
        months - 1
    }
}

/// Whole years of age on `on` for someone born on `birth`.
pub fn age_years(birth: NaiveDate, on: NaiveDate) -> i64 {
    months_between(birth, on).div_euclid(12)
}

/// Rounds half away from zero, as loan statements do.
pub fn round_money(amount: Decimal, places: Decimal) -> Result<Decimal, String> {
    // Places are nearly always written as a whole number (`2`): read straight from the mantissa.
    let places = match (places.scale(), places.mantissa()) {
        (0, whole @ 0..=10) => whole as u32,
        _ => {
            if !places.fract().is_zero() || places < Decimal::ZERO || places > Decimal::from(10) {
                return Err(format!(
                    "places must be a whole number from 0 to 10, got {places}"
                ));
            }
            places.to_u32().unwrap_or(0)
        }
    };
    Ok(amount.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero))
}

/// The largest multiple of `step` that is not above `amount`.
pub fn floor_to(amount: Decimal, step: Decimal) -> Result<Decimal, String> {
    if step <= Decimal::ZERO {
        return Err(format!("step must be positive, got {step}"));
    }
    Ok((amount / step).floor() * step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    #[test]
    fn dates_are_written_as_chrono_writes_them() {
        for (y, m, d) in [
            (2026, 11, 29),
            (1, 1, 1),
            (999, 12, 31),
            (9999, 2, 28),
            (2024, 2, 29),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(format_date(date), date.format("%Y-%m-%d").to_string());
            assert_eq!(parse_date(&format_date(date), "date"), Ok(date));
        }
    }

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        parse_date(s, "date").unwrap()
    }

    #[test]
    fn annuity_payment_matches_textbook_values() {
        // (rate per period, periods, principal, payment rounded to cents)
        let cases = [
            ("0.01", "12", "10000", "888.49"),
            ("0.005", "36", "20000", "608.44"),
            ("0", "10", "1000", "100.00"),
            ("0.02", "1", "1000", "1020.00"),
        ];
        for (rate, periods, principal, expected) in cases {
            let payment = annuity_payment(d(rate), d(periods), d(principal)).unwrap();
            assert_eq!(
                payment.round_dp(2),
                d(expected),
                "{rate} {periods} {principal}"
            );
        }
    }

    #[test]
    fn affordable_principal_inverts_annuity_payment() {
        for (rate, periods, principal) in [("0.01", "12", "10000"), ("0.0125", "60", "35000")] {
            let payment = annuity_payment(d(rate), d(periods), d(principal)).unwrap();
            let back = affordable_principal(d(rate), d(periods), payment).unwrap();
            assert!((back - d(principal)).abs() < d("0.000001"), "{back}");
        }
    }

    #[test]
    fn bad_arguments_name_the_argument() {
        let cases = [
            annuity_payment(d("-0.01"), d("12"), d("1")),
            annuity_payment(d("1.5"), d("12"), d("1")),
            annuity_payment(d("0.01"), d("0"), d("1")),
            annuity_payment(d("0.01"), d("2.5"), d("1")),
            annuity_payment(d("0.01"), d("12"), d("-1")),
        ];
        let arguments = [
            "rate_per_period",
            "rate_per_period",
            "periods",
            "periods",
            "principal",
        ];
        for (result, argument) in cases.into_iter().zip(arguments) {
            assert!(result.unwrap_err().contains(argument));
        }
    }

    #[test]
    fn dates() {
        let cases = [
            // The anniversary rule (see `months_between`): 31 January's first monthly
            // anniversary in 2000 is 29 February.
            ("2000-01-31", "2000-02-29", 1),
            ("2000-01-31", "2000-02-28", 0),
            ("2000-01-31", "2000-03-31", 2),
            ("1990-06-15", "2026-06-14", 431),
            ("1990-06-15", "2026-06-15", 432),
            ("2026-06-15", "1990-06-15", -432),
        ];
        for (from, to, months) in cases {
            assert_eq!(
                months_between(date(from), date(to)),
                months,
                "{from} → {to}"
            );
        }
        assert_eq!(age_years(date("1990-06-15"), date("2026-06-14")), 35);
        assert_eq!(age_years(date("1990-06-15"), date("2026-06-15")), 36);
        assert!(parse_date("15/06/1990", "birth_date")
            .unwrap_err()
            .contains("birth_date"));
    }

    #[test]
    fn rounding() {
        assert_eq!(round_money(d("10.005"), d("2")).unwrap(), d("10.01"));
        assert_eq!(round_money(d("-10.005"), d("2")).unwrap(), d("-10.01"));
        assert_eq!(floor_to(d("12345.67"), d("100")).unwrap(), d("12300"));
        assert!(floor_to(d("1"), d("0")).is_err());
    }

    #[test]
    fn places_are_read_however_they_are_written() {
        // (places, the rounding of 1.23456789 to them, or none where places are refused)
        let cases = [
            ("0", Some("1")),
            ("2", Some("1.23")),
            ("2.0", Some("1.23")),
            ("2.000", Some("1.23")),
            ("10", Some("1.23456789")),
            ("10.0", Some("1.23456789")),
            ("11", None),
            ("-1", None),
            ("-0", Some("1")),
            ("2.5", None),
            ("0.0000000001", None),
        ];
        for (places, expected) in cases {
            let rounded = round_money(d("1.23456789"), d(places));
            match expected {
                Some(text) => {
                    let rounded = rounded.unwrap();
                    assert_eq!(rounded.to_string(), text, "places {places}");
                }
                None => assert!(
                    rounded.unwrap_err().contains("whole number from 0 to 10"),
                    "places {places}"
                ),
            }
        }
    }
}

#[cfg(test)]
mod months_tests {
    use super::*;
    use proptest::prelude::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    /// The definition: count the anniversaries, one month at a time.
    fn anniversaries(from: NaiveDate, to: NaiveDate) -> i64 {
        let mut months = 0;
        while from
            .checked_add_months(chrono::Months::new(months + 1))
            .is_some_and(|d| d <= to)
        {
            months += 1;
        }
        i64::from(months)
    }

    #[test]
    fn months_are_anniversaries_clamped_to_the_end_of_shorter_months() {
        for (from, to, months) in [
            ("2026-01-31", "2026-02-27", 0),
            ("2026-01-31", "2026-02-28", 1),
            ("2024-01-31", "2024-02-29", 1),
            ("2026-01-31", "2026-03-30", 1),
            ("2026-01-31", "2026-03-31", 2),
            ("2026-01-15", "2026-03-14", 1),
            ("2026-01-15", "2026-03-15", 2),
            ("2026-03-31", "2026-04-30", 1),
            ("2026-05-10", "2026-05-10", 0),
            ("2000-02-29", "2001-02-28", 12),
            ("2026-02-28", "2026-01-31", -1),
            ("1990-06-15", "2026-06-14", 431),
        ] {
            assert_eq!(
                months_between(date(from), date(to)),
                months,
                "{from} → {to}"
            );
        }
        assert_eq!(age_years(date("2000-02-29"), date("2001-02-28")), 1);
        assert_eq!(age_years(date("1990-06-15"), date("2026-06-14")), 35);
    }

    proptest! {
        #[test]
        fn months_between_counts_anniversaries(
            from in 0i32..40_000,
            span in -3_000i32..3_000,
        ) {
            let base = date("1950-01-01");
            let from = base + chrono::Duration::days(i64::from(from));
            let to = from + chrono::Duration::days(i64::from(span));
            let expected = if to >= from {
                anniversaries(from, to)
            } else {
                -anniversaries(to, from)
            };
            prop_assert_eq!(months_between(from, to), expected);
        }
    }
}
