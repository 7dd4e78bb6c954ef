//! Cohort performance as loans age: vintage curves (cumulative bad rate by months on book per
//! origination cohort) and roll rates (how accounts move between delinquency buckets from one
//! month end to the next).

use serde::Serialize;
use std::collections::BTreeMap;

/// One loan's history as a vintage needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoanHistory {
    /// The origination cohort, e.g. `2018-01`.
    pub cohort: String,
    /// Months on book observed so far (the loan is in the denominator up to here).
    pub months_observed: u32,
    /// The month on book the loan first met the bad definition, if it has.
    pub first_bad_month: Option<u32>,
}

/// One point of a vintage curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VintagePoint {
    /// Months on book.
    pub months_on_book: u32,
    /// Loans observed at least this long.
    pub loans: u64,
    /// Of those, loans bad by this month.
    pub bads: u64,
    /// `bads / loans`.
    pub bad_rate: f64,
}

/// Vintage curves: for each cohort and each month on book m from 1 to its longest observation,
/// the share of the loans observed for m months that were bad by month m.
pub fn vintage_curves(loans: &[LoanHistory]) -> BTreeMap<String, Vec<VintagePoint>> {
    let mut by_cohort: BTreeMap<&str, Vec<&LoanHistory>> = BTreeMap::new();
    for loan in loans {
        by_cohort.entry(&loan.cohort).or_default().push(loan);
    }
    by_cohort
        .into_iter()
        .map(|(cohort, loans)| {
            let longest = loans.iter().map(|l| l.months_observed).max().unwrap_or(0);
            let points = (1..=longest)
                .map(|m| {
                    let observed = loans.iter().filter(|l| l.months_observed >= m);
                    let (count, bads) = observed.fold((0u64, 0u64), |(n, b), l| {
                        (
                            n + 1,
                            b + u64::from(l.first_bad_month.is_some_and(|f| f <= m)),
                        )
                    });
                    VintagePoint {
                        months_on_book: m,
                        loans: count,
                        bads,
                        bad_rate: if count == 0 {
                            0.0
                        } else {
                            bads as f64 / count as f64
                        },
                    }
                })
                .collect();
            (cohort.to_string(), points)
        })
        .collect()
}

/// Delinquency buckets by days past due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DpdBucket {
    /// Not past due.
    Current,
    /// 1 to 29 days past due.
    Dpd1To29,
    /// 30 to 59 days past due.
    Dpd30To59,
    /// 60 to 89 days past due.
    Dpd60To89,
    /// 90 days or more.
    Dpd90Plus,
}

impl DpdBucket {
    /// Every bucket, least late first.
    pub const ALL: [DpdBucket; 5] = [
        DpdBucket::Current,
        DpdBucket::Dpd1To29,
        DpdBucket::Dpd30To59,
        DpdBucket::Dpd60To89,
        DpdBucket::Dpd90Plus,
    ];

    /// The bucket of a delinquency.
    pub fn of(days_past_due: u32) -> DpdBucket {
        match days_past_due {
            0 => DpdBucket::Current,
            1..=29 => DpdBucket::Dpd1To29,
            30..=59 => DpdBucket::Dpd30To59,
            60..=89 => DpdBucket::Dpd60To89,
            _ => DpdBucket::Dpd90Plus,
        }
    }

    /// The bucket's label in reports.
    pub fn label(self) -> &'static str {
        match self {
            DpdBucket::Current => "current",
            DpdBucket::Dpd1To29 => "1–29",
            DpdBucket::Dpd30To59 => "30–59",
            DpdBucket::Dpd60To89 => "60–89",
            DpdBucket::Dpd90Plus => "90+",
        }
    }
}

/// Transitions between buckets from one month end to the next: `counts[from][to]`, and each
/// row as rates (a row with no accounts has rates of zero).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollRates {
    /// The buckets' labels, in order.
    pub buckets: Vec<&'static str>,
    /// Accounts moving from bucket `from` to bucket `to`.
    pub counts: Vec<Vec<u64>>,
    /// Each row of counts as shares of its total.
    pub rates: Vec<Vec<f64>>,
}

/// Roll rates over month-end bucket sequences, one sequence per account.
pub fn roll_rates<'a>(accounts: impl IntoIterator<Item = &'a [DpdBucket]>) -> RollRates {
    let n = DpdBucket::ALL.len();
    let mut counts = vec![vec![0u64; n]; n];
    for months in accounts {
        for pair in months.windows(2) {
            counts[pair[0] as usize][pair[1] as usize] += 1;
        }
    }
    let rates = counts
        .iter()
        .map(|row| {
            let total: u64 = row.iter().sum();
            row.iter()
                .map(|&c| {
                    if total == 0 {
                        0.0
                    } else {
                        c as f64 / total as f64
                    }
                })
                .collect()
        })
        .collect();
    RollRates {
        buckets: DpdBucket::ALL.iter().map(|b| b.label()).collect(),
        counts,
        rates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loan(cohort: &str, observed: u32, bad: Option<u32>) -> LoanHistory {
        LoanHistory {
            cohort: cohort.into(),
            months_observed: observed,
            first_bad_month: bad,
        }
    }

    #[test]
    fn vintage_by_hand() {
        let loans = [
            loan("2026-01", 3, None),
            loan("2026-01", 3, Some(2)),
            loan("2026-01", 2, Some(1)),
            loan("2026-01", 1, None),
            loan("2026-02", 1, Some(1)),
            loan("2026-02", 1, None),
        ];
        let curves = vintage_curves(&loans);
        let jan: Vec<(u32, u64, u64)> = curves["2026-01"]
            .iter()
            .map(|p| (p.months_on_book, p.loans, p.bads))
            .collect();
        // m=1: 4 loans, 1 bad by then; m=2: 3 loans, 2 bad; m=3: 2 loans, 1 bad.
        assert_eq!(jan, vec![(1, 4, 1), (2, 3, 2), (3, 2, 1)]);
        assert_eq!(curves["2026-02"][0].bad_rate, 0.5);
    }

    #[test]
    fn roll_rates_by_hand() {
        use DpdBucket::*;
        let a = [Current, Dpd1To29, Dpd30To59];
        let b = [Current, Current, Dpd1To29];
        let c = [Dpd1To29, Current];
        let rr = roll_rates([&a[..], &b[..], &c[..]]);
        // From current: 3 transitions — to current 1, to 1–29 2.
        assert_eq!(rr.counts[0][0], 1);
        assert_eq!(rr.counts[0][1], 2);
        assert!((rr.rates[0][1] - 2.0 / 3.0).abs() < 1e-12);
        // From 1–29: to 30–59 once, cured once.
        assert_eq!(rr.counts[1][2], 1);
        assert_eq!(rr.counts[1][0], 1);
        assert_eq!(rr.rates[4], vec![0.0; 5]);
        assert_eq!(DpdBucket::of(0), Current);
        assert_eq!(DpdBucket::of(29), Dpd1To29);
        assert_eq!(DpdBucket::of(30), Dpd30To59);
        assert_eq!(DpdBucket::of(90), Dpd90Plus);
    }
}
