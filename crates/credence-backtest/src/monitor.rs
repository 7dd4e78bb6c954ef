//! Monitoring a live strategy from what it decided: approval, referral and override rates by
//! month, the drift (PSI) of its score against a fixed baseline month, and — from the accounts it
//! opened — vintage curves and roll rates. Callers read the decision log, the review cases and
//! the accounts; this module only counts.

use crate::metrics::{psi, Binning, Drift};
use crate::vintage::{roll_rates, vintage_curves, DpdBucket, LoanHistory, RollRates, VintagePoint};
use credence_engine::Outcome;
use serde::Serialize;
use std::collections::BTreeMap;

/// One logged decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionObservation {
    /// `YYYY-MM`.
    pub month: String,
    /// What was decided.
    pub outcome: Outcome,
    /// The flow's score, if it has one.
    pub score: Option<f64>,
}

/// One reviewed referral: whether the reviewer approved it (an override of the engine's hold).
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewObservation {
    /// `YYYY-MM` of the review.
    pub month: String,
    /// Whether the reviewer approved.
    pub approved: bool,
}

/// One account's delinquency by month on book, for vintages and roll rates.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountObservation {
    /// The month it was opened, `YYYY-MM`.
    pub cohort: String,
    /// The worst days past due reported in each month on book, oldest first.
    pub monthly_worst_dpd: Vec<u32>,
}

/// Days past due at which an account counts as bad in a vintage.
pub const BAD_DPD: u32 = 60;

/// One month of decisions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthRates {
    /// `YYYY-MM`.
    pub month: String,
    /// Decisions made.
    pub decisions: u64,
    /// Share approved.
    pub approve_rate: f64,
    /// Share referred.
    pub refer_rate: f64,
    /// Share declined.
    pub decline_rate: f64,
    /// Referrals reviewed.
    pub reviewed: u64,
    /// Reviewed referrals the reviewer approved.
    pub override_rate: Option<f64>,
    /// The score's PSI against the baseline month (none for the baseline itself or without
    /// scores).
    pub score_psi: Option<f64>,
    /// What the PSI says.
    pub score_drift: Option<Drift>,
}

/// The live view of a strategy: rates by month, score drift, vintages and roll rates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonitorReport {
    /// Decisions observed.
    pub decisions: u64,
    /// The month scores are compared with, if any had enough scores.
    pub baseline_month: Option<String>,
    /// The baseline's score bins.
    pub score_binning: Option<Binning>,
    /// Each month, oldest first.
    pub months: Vec<MonthRates>,
    /// Accounts observed.
    pub accounts: u64,
    /// Days past due at which an account counts as bad.
    pub bad_dpd: u32,
    /// Bad rate by month on book, per opening month.
    pub vintages: BTreeMap<String, Vec<VintagePoint>>,
    /// Transitions between delinquency buckets.
    pub roll_rates: RollRates,
}

/// Builds the report. The baseline is the first month with at least `min_baseline_scores`
/// scores; its deciles fix the bins every later month is compared on.
pub fn monitor(
    decisions: &[DecisionObservation],
    reviews: &[ReviewObservation],
    accounts: &[AccountObservation],
    min_baseline_scores: usize,
) -> MonitorReport {
    let mut by_month: BTreeMap<&str, Vec<&DecisionObservation>> = BTreeMap::new();
    for d in decisions {
        by_month.entry(&d.month).or_default().push(d);
    }
    let mut reviewed: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for r in reviews {
        let entry = reviewed.entry(&r.month).or_default();
        entry.0 += 1;
        entry.1 += u64::from(r.approved);
    }
    let scores = |ds: &[&DecisionObservation]| -> Vec<f64> {
        ds.iter()
            .filter_map(|d| d.score.filter(|s| s.is_finite()))
            .collect()
    };
    let baseline = by_month
        .iter()
        .find(|(_, ds)| scores(ds).len() >= min_baseline_scores.max(1))
        .map(|(m, ds)| (m.to_string(), scores(ds)));
    let binning = baseline
        .as_ref()
        .and_then(|(_, s)| Binning::quantiles(s, 10).ok());
    let baseline_counts = binning
        .as_ref()
        .zip(baseline.as_ref())
        .map(|(b, (_, s))| b.count(s.iter().map(|x| Some(*x))));
    let mut months: Vec<String> = by_month.keys().map(|m| m.to_string()).collect();
    for m in reviewed.keys() {
        if !by_month.contains_key(m) {
            months.push(m.to_string());
        }
    }
    months.sort();
    let rows = months
        .into_iter()
        .map(|month| {
            let ds = by_month.get(month.as_str()).cloned().unwrap_or_default();
            let n = ds.len() as u64;
            let share = |o: Outcome| {
                if n == 0 {
                    0.0
                } else {
                    ds.iter().filter(|d| d.outcome == o).count() as f64 / n as f64
                }
            };
            let (reviewed_n, approved) = reviewed.get(month.as_str()).copied().unwrap_or_default();
            let is_baseline = baseline.as_ref().is_some_and(|(m, _)| *m == month);
            let score_psi = match (&binning, &baseline_counts) {
                (Some(binning), Some(base)) if !is_baseline => {
                    let current = scores(&ds);
                    (!current.is_empty())
                        .then(|| {
                            psi(
                                &binning.labels(),
                                base,
                                &binning.count(current.iter().map(|x| Some(*x))),
                            )
                            .ok()
                        })
                        .flatten()
                        .map(|p| p.psi)
                }
                _ => None,
            };
            MonthRates {
                month,
                decisions: n,
                approve_rate: share(Outcome::Approve),
                refer_rate: share(Outcome::Refer),
                decline_rate: share(Outcome::Decline),
                reviewed: reviewed_n,
                override_rate: (reviewed_n > 0).then(|| approved as f64 / reviewed_n as f64),
                score_psi,
                score_drift: score_psi.map(Drift::of),
            }
        })
        .collect();
    let loans: Vec<LoanHistory> = accounts
        .iter()
        .map(|a| LoanHistory {
            cohort: a.cohort.clone(),
            months_observed: a.monthly_worst_dpd.len() as u32,
            first_bad_month: a
                .monthly_worst_dpd
                .iter()
                .position(|dpd| *dpd >= BAD_DPD)
                .map(|i| i as u32 + 1),
        })
        .collect();
    let buckets: Vec<Vec<DpdBucket>> = accounts
        .iter()
        .map(|a| {
            a.monthly_worst_dpd
                .iter()
                .map(|d| DpdBucket::of(*d))
                .collect()
        })
        .collect();
    MonitorReport {
        decisions: decisions.len() as u64,
        baseline_month: baseline.map(|(m, _)| m),
        score_binning: binning,
        months: rows,
        accounts: accounts.len() as u64,
        bad_dpd: BAD_DPD,
        vintages: vintage_curves(&loans),
        roll_rates: roll_rates(buckets.iter().map(Vec::as_slice)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(month: &str, outcome: Outcome, score: f64) -> DecisionObservation {
        DecisionObservation {
            month: month.into(),
            outcome,
            score: Some(score),
        }
    }

    #[test]
    fn rates_drift_and_account_performance_by_hand() {
        let mut decisions = Vec::new();
        // January: the baseline, scores 500..599, half approved.
        for i in 0..100 {
            let outcome = if i % 2 == 0 {
                Outcome::Approve
            } else {
                Outcome::Decline
            };
            decisions.push(decision("2026-01", outcome, 500.0 + f64::from(i)));
        }
        // February: the same scores: no drift. March: everyone scores low: a shift.
        for i in 0..100 {
            decisions.push(decision("2026-02", Outcome::Refer, 500.0 + f64::from(i)));
            decisions.push(decision("2026-03", Outcome::Decline, 450.0));
        }
        let reviews = vec![
            ReviewObservation {
                month: "2026-02".into(),
                approved: true,
            },
            ReviewObservation {
                month: "2026-02".into(),
                approved: false,
            },
            ReviewObservation {
                month: "2026-02".into(),
                approved: true,
            },
            ReviewObservation {
                month: "2026-02".into(),
                approved: true,
            },
        ];
        let accounts = vec![
            AccountObservation {
                cohort: "2026-01".into(),
                monthly_worst_dpd: vec![0, 30, 60],
            },
            AccountObservation {
                cohort: "2026-01".into(),
                monthly_worst_dpd: vec![0, 0, 0],
            },
        ];
        let report = monitor(&decisions, &reviews, &accounts, 50);
        assert_eq!(report.baseline_month.as_deref(), Some("2026-01"));
        let jan = &report.months[0];
        assert_eq!(
            (jan.approve_rate, jan.decline_rate, jan.score_psi),
            (0.5, 0.5, None)
        );
        let feb = &report.months[1];
        assert_eq!(feb.refer_rate, 1.0);
        assert_eq!(feb.override_rate, Some(0.75));
        assert!(feb.score_psi.unwrap().abs() < 1e-12);
        assert_eq!(feb.score_drift, Some(Drift::Stable));
        let mar = &report.months[2];
        assert_eq!(mar.score_drift, Some(Drift::Shift));
        // Vintage: one of two bad (60+) by month 3.
        let jan_vintage = &report.vintages["2026-01"];
        assert_eq!(jan_vintage[2].bad_rate, 0.5);
        assert_eq!(jan_vintage[1].bad_rate, 0.0);
        // Roll: current → 1–29? no: 30 is the 30–59 bucket; 30–59 → 60–89 once.
        assert_eq!(report.roll_rates.counts[0][2], 1);
        assert_eq!(report.roll_rates.counts[2][3], 1);
    }
}
