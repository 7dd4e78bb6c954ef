//! How the workbench shows figures to an underwriter: money with its currency and thousands separators, rates and ratios as percentages, flags as yes/no, and an application's fields grouped as an underwriter reads them.
//!
//! A strategy's names say what a figure is (`declared_monthly_income`, `existing_dti`,
//! `bureau_inquiries_6m`); the words in a name choose its form. A name that says nothing
//! known is shown as a number, rounded. The choice only changes how a value is shown: the
//! record and the API keep the exact value.

use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde_json::Value;

/// What a figure is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FigureKind {
    /// An amount of money.
    Money,
    /// A rate, ratio or probability held as a fraction (0.0899 is 8.99 %).
    Percent,
    /// Anything else: counts, scores, factors.
    Number,
}

fn words(name: &str) -> impl Iterator<Item = &str> {
    name.split(['_', '.', '-']).filter(|w| !w.is_empty())
}

/// Words that make a figure a count, a score or a factor: `limit_factor` and `open_accounts`
/// are not money.
const NUMBER_WORDS: &[&str] = &[
    "factor",
    "count",
    "months",
    "month",
    "accounts",
    "inquiries",
    "days",
    "dpd",
    "score",
    "size",
    "age",
    "points",
    "bucket",
    "priority",
    "years",
    "6m",
    "12m",
    "90d",
];

/// Words that make a figure a rate, a ratio or a probability (held as a fraction); they win
/// over [`NUMBER_WORDS`] (`utilisation_6m` is a ratio).
const PERCENT_WORDS: &[&str] = &[
    "dti",
    "ratio",
    "rate",
    "apr",
    "utilisation",
    "utilization",
    "gap",
    "probability",
    "pd",
    "share",
    "pct",
];

/// Words that make a figure an amount of money.
const MONEY_WORDS: &[&str] = &[
    "income",
    "amount",
    "payment",
    "payments",
    "instalment",
    "installment",
    "expenses",
    "expense",
    "limit",
    "principal",
    "balance",
    "debt",
    "obligations",
    "salary",
    "cap",
    "cost",
    "fee",
    "loan",
    "drawdown",
];

/// The kind of the figure called `name`.
pub(super) fn kind_of(name: &str) -> FigureKind {
    let name = name.to_ascii_lowercase();
    let has = |list: &[&str]| words(&name).any(|w| list.contains(&w));
    if has(PERCENT_WORDS) {
        FigureKind::Percent
    } else if has(NUMBER_WORDS) {
        FigureKind::Number
    } else if has(MONEY_WORDS) {
        FigureKind::Money
    } else {
        FigureKind::Number
    }
}

/// An amount with thousands separators, to two decimals only when it has cents (`12,500`).
pub(super) fn thousands(amount: Decimal) -> String {
    let rounded = amount.round_dp(2).normalize();
    let text = rounded.abs().to_string();
    let (whole, cents) = text
        .split_once('.')
        .map_or((text.as_str(), None), |(w, c)| (w, Some(c)));
    let mut grouped = String::new();
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if rounded.is_sign_negative() { "-" } else { "" };
    match cents {
        Some(cents) => format!("{sign}{grouped}.{cents:0<2}"),
        None => format!("{sign}{grouped}"),
    }
}

/// Money: `EUR 6,000`, `EUR 1,392.50`.
pub(super) fn money(amount: Decimal, currency: &str) -> String {
    if currency.is_empty() {
        thousands(amount)
    } else {
        format!("{currency} {}", thousands(amount))
    }
}

/// A fraction as a percentage, to at most two decimals: `0.0899` is `8.99 %`.
pub(super) fn percent(fraction: Decimal) -> String {
    format!(
        "{} %",
        (fraction * Decimal::ONE_HUNDRED).round_dp(2).normalize()
    )
}

/// A plain number: whole numbers with separators, others to two decimals (four below 1).
fn number(value: Decimal) -> String {
    if value.fract().is_zero() {
        thousands(value)
    } else if value.abs() < Decimal::ONE {
        value.round_dp(4).normalize().to_string()
    } else {
        thousands(value.round_dp(2))
    }
}

/// A JSON number or decimal string as a decimal.
pub(super) fn decimal_of(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .map(Decimal::from)
            .or_else(|| n.as_f64().and_then(Decimal::from_f64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The value of the figure `name` as an underwriter reads it.
pub(super) fn figure(name: &str, value: &Value, currency: &str) -> String {
    match value {
        Value::Null => "—".into(),
        Value::Bool(true) => "yes".into(),
        Value::Bool(false) => "no".into(),
        Value::Number(_) => {
            let Some(d) = decimal_of(value) else {
                return value.to_string();
            };
            match kind_of(name) {
                FigureKind::Money => money(d, currency),
                FigureKind::Percent => percent(d),
                FigureKind::Number => number(d),
            }
        }
        // Decimal strings (money in records is exact text) are figures too; other text is text.
        Value::String(text) => match (kind_of(name), text.parse::<Decimal>()) {
            (FigureKind::Money, Ok(d)) => money(d, currency),
            (FigureKind::Percent, Ok(d)) => percent(d),
            _ => text.clone(),
        },
        Value::Array(items) => items
            .iter()
            .map(|item| figure(name, item, currency))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(fields) => fields
            .iter()
            .map(|(field, v)| format!("{field} {}", figure(field, v, currency)))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// A name as words: `declared_monthly_income` reads "declared monthly income".
pub(super) fn label(name: &str) -> String {
    name.replace(['_', '.'], " ")
}

/// The part of an application a field belongs to, in the order an underwriter reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Group {
    Request,
    Identity,
    Income,
    Obligations,
    Bureau,
    Other,
}

impl Group {
    pub(super) fn title(self) -> &'static str {
        match self {
            Group::Request => "Request",
            Group::Identity => "Identity",
            Group::Income => "Income and employment",
            Group::Obligations => "Obligations and living costs",
            Group::Bureau => "Bureau",
            Group::Other => "Application form",
        }
    }
}

/// The group of the application field `name`.
pub(super) fn group_of(name: &str) -> Group {
    let name = name.to_ascii_lowercase();
    let has = |list: &[&str]| words(&name).any(|w| list.contains(&w));
    if has(&["requested", "term", "purpose", "product", "drawdown"]) {
        Group::Request
    } else if has(&[
        "id",
        "sha256",
        "name",
        "birth",
        "phone",
        "email",
        "address",
        "national",
        "consent",
        "customer",
        "application",
        "nationality",
        "postcode",
    ]) && !has(&["employer"])
    {
        Group::Identity
    } else if has(&[
        "bureau",
        "inquiries",
        "delinquencies",
        "collections",
        "bankruptcies",
    ]) || name.starts_with("public_record")
        || name.contains("credit_history")
    {
        Group::Bureau
    } else if has(&[
        "income",
        "employer",
        "employment",
        "salary",
        "occupation",
        "job",
    ]) {
        Group::Income
    } else if has(&[
        "debt",
        "debts",
        "payments",
        "payment",
        "expenses",
        "liabilities",
        "household",
        "housing",
        "rent",
        "mortgage",
        "living",
        "dependants",
        "obligations",
    ]) {
        Group::Obligations
    } else {
        Group::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn figures_read_as_an_underwriter_reads_them() {
        for (name, value, shown) in [
            ("declared_monthly_income", json!(6000), "EUR 6,000"),
            ("affordable_payment", json!(1392.5), "EUR 1,392.50"),
            ("limit", json!("12500"), "EUR 12,500"),
            ("income_gap", json!(0.39166666666666666), "39.17 %"),
            ("apr", json!("0.0899"), "8.99 %"),
            ("dti", json!(0.1554054794520548), "15.54 %"),
            ("probability_of_default", json!(0.0381288), "3.81 %"),
            ("limit_factor", json!(1), "1"),
            ("bureau_open_accounts", json!(12), "12"),
            ("score", json!("595"), "595"),
            ("months_on_book", json!(14), "14"),
            ("income_verified", json!(true), "yes"),
            ("thin_file", json!(false), "no"),
            ("verified_income", json!(null), "—"),
            ("purpose", json!("car_used"), "car_used"),
            ("x", json!(0.123456), "0.1235"),
            ("x", json!(12345.678), "12,345.68"),
            ("grade", json!({"grade": "A"}), "grade A"),
            (
                "terms",
                json!({"apr": 0.0899, "limit_cap": 20000}),
                "apr 8.99 %, limit_cap EUR 20,000",
            ),
        ] {
            assert_eq!(figure(name, &value, "EUR"), shown, "{name} = {value}");
        }
        assert_eq!(money(Decimal::new(-5, 1), ""), "-0.50");
        assert_eq!(thousands(Decimal::from(1_234_567)), "1,234,567");
    }

    #[test]
    fn application_fields_fall_into_the_groups_underwriters_read() {
        for (name, group) in [
            ("requested_amount", Group::Request),
            ("term_months", Group::Request),
            ("requested_limit", Group::Request),
            ("purpose", Group::Request),
            ("customer_id", Group::Identity),
            ("national_id_sha256", Group::Identity),
            ("birth_date", Group::Identity),
            ("phone", Group::Identity),
            ("consent_reference", Group::Identity),
            ("employer_name", Group::Income),
            ("declared_monthly_income", Group::Income),
            ("employment_length", Group::Income),
            ("monthly_debt_payments", Group::Obligations),
            ("monthly_living_expenses", Group::Obligations),
            ("household_size", Group::Obligations),
            ("housing", Group::Obligations),
            ("bureau_accounts_past_due", Group::Bureau),
            ("bureau_inquiries_6m", Group::Bureau),
            ("credit_history", Group::Bureau),
            ("checking_account", Group::Other),
            ("savings", Group::Other),
        ] {
            assert_eq!(group_of(name), group, "{name}");
        }
    }
}
