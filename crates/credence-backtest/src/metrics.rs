//! Model and population monitoring metrics: KS, AUC (ties counted half) and Gini on matured
//! outcomes; PSI and CSI against a fixed baseline binning, with empty bins floored.
//!
//! Counts are integers until the last division, so results do not depend on row order.

use crate::BacktestError;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// How well a score separates bads from goods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discrimination {
    /// Rows scored.
    pub rows: u64,
    /// Of those, bads.
    pub bads: u64,
    /// P(a bad scores above a good) + ½ P(they tie): scikit-learn's `roc_auc_score(bad, score)`.
    pub auc: f64,
    /// 2 · AUC − 1.
    pub gini: f64,
    /// The largest gap between the cumulative score distributions of bads and goods.
    pub ks: f64,
    /// The score at which that gap is largest (scores up to and including it on one side).
    pub ks_score: f64,
}

/// KS, AUC and Gini of `score` for `bad` outcomes. A score where higher means riskier gives an
/// AUC above ½; a credit score (higher is better) gives one below ½ — flip its sign first.
pub fn discrimination(rows: &[(f64, bool)]) -> Result<Discrimination, BacktestError> {
    if let Some((score, _)) = rows.iter().find(|(s, _)| !s.is_finite()) {
        return Err(BacktestError::NotFinite {
            what: "score",
            value: *score,
        });
    }
    let bads = rows.iter().filter(|(_, bad)| *bad).count() as u64;
    let goods = rows.len() as u64 - bads;
    if bads == 0 || goods == 0 {
        return Err(BacktestError::Empty {
            what: "discrimination",
            needs: if bads == 0 {
                "bad outcome"
            } else {
                "good outcome"
            },
        });
    }
    let mut sorted: Vec<(f64, bool)> = rows.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Twice the Mann–Whitney U of the bads, so ties (worth ½) stay integers.
    let mut twice_u: u128 = 0;
    let (mut goods_below, mut bads_below) = (0u64, 0u64);
    let (mut ks, mut ks_score) = (0.0f64, sorted[0].0);
    let mut i = 0;
    while i < sorted.len() {
        let score = sorted[i].0;
        let (mut group_bads, mut group_goods) = (0u64, 0u64);
        while i < sorted.len() && sorted[i].0 == score {
            if sorted[i].1 {
                group_bads += 1;
            } else {
                group_goods += 1;
            }
            i += 1;
        }
        twice_u +=
            2 * group_bads as u128 * goods_below as u128 + group_bads as u128 * group_goods as u128;
        goods_below += group_goods;
        bads_below += group_bads;
        let gap = (goods_below as f64 / goods as f64 - bads_below as f64 / bads as f64).abs();
        if gap > ks {
            ks = gap;
            ks_score = score;
        }
    }
    let auc = twice_u as f64 / (2.0 * bads as f64 * goods as f64);
    Ok(Discrimination {
        rows: rows.len() as u64,
        bads,
        auc,
        gini: 2.0 * auc - 1.0,
        ks,
        ks_score,
    })
}

/// The share an empty bin is given in PSI, so that its log term stays finite.
pub const EMPTY_BIN_SHARE: f64 = 0.0001;
/// PSI at or above this: the population has moved; watch it.
pub const PSI_WATCH: f64 = 0.1;
/// PSI at or above this: a significant shift; the model or strategy may no longer fit.
pub const PSI_SHIFT: f64 = 0.25;

/// How far a distribution moved, by its PSI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Drift {
    /// Below [`PSI_WATCH`].
    Stable,
    /// From [`PSI_WATCH`] to below [`PSI_SHIFT`]: keep an eye on it.
    Watch,
    /// At or above [`PSI_SHIFT`].
    Shift,
}

impl Drift {
    /// The drift of a PSI value.
    pub fn of(psi: f64) -> Drift {
        if psi >= PSI_SHIFT {
            Drift::Shift
        } else if psi >= PSI_WATCH {
            Drift::Watch
        } else {
            Drift::Stable
        }
    }
}

/// Fixed bins for a numeric variable, taken from a baseline and then held still: bin 0 is
/// below the first edge, bin k holds `edges[k-1] <= x < edges[k]`, and a last bin holds
/// missing values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Binning {
    /// The edges, strictly increasing.
    pub edges: Vec<f64>,
}

impl Binning {
    /// Edges at the baseline's quantiles: the order statistics at positions ⌊k·n/bins⌋ of the
    /// sorted baseline, for k = 1 … bins−1, duplicates removed (a lumpy variable gets fewer,
    /// wider bins rather than empty ones).
    pub fn quantiles(baseline: &[f64], bins: usize) -> Result<Binning, BacktestError> {
        if bins < 2 {
            return Err(BacktestError::Binning(format!(
                "{bins} bins: use at least 2"
            )));
        }
        let mut sorted: Vec<f64> = baseline.iter().copied().filter(|x| !x.is_nan()).collect();
        if sorted.is_empty() {
            return Err(BacktestError::Empty {
                what: "binning",
                needs: "baseline value",
            });
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mut edges: Vec<f64> = (1..bins).map(|k| sorted[k * n / bins]).collect();
        edges.dedup();
        Binning::from_edges(edges)
    }

    /// Bins with these edges, which must be finite and strictly increasing.
    pub fn from_edges(edges: Vec<f64>) -> Result<Binning, BacktestError> {
        if edges.iter().any(|e| !e.is_finite()) {
            return Err(BacktestError::Binning("edges must be finite".into()));
        }
        if edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(BacktestError::Binning(
                "edges must be strictly increasing".into(),
            ));
        }
        Ok(Binning { edges })
    }

    /// Bins for values, plus the missing bin (the last).
    pub fn bins(&self) -> usize {
        self.edges.len() + 2
    }

    /// The bin of a value (the missing bin for none or NaN).
    pub fn bin(&self, value: Option<f64>) -> usize {
        match value {
            Some(x) if !x.is_nan() => self.edges.partition_point(|e| *e <= x),
            _ => self.edges.len() + 1,
        }
    }

    /// Values counted per bin.
    pub fn count(&self, values: impl IntoIterator<Item = Option<f64>>) -> Vec<u64> {
        let mut counts = vec![0u64; self.bins()];
        for value in values {
            counts[self.bin(value)] += 1;
        }
        counts
    }

    /// Each bin's label (`< a`, `[a, b)`, `>= b`, `missing`).
    pub fn labels(&self) -> Vec<String> {
        let mut labels = Vec::with_capacity(self.bins());
        for k in 0..=self.edges.len() {
            labels.push(
                match (k.checked_sub(1).map(|j| self.edges[j]), self.edges.get(k)) {
                    (None, Some(hi)) => format!("< {hi}"),
                    (Some(lo), Some(hi)) => format!("[{lo}, {hi})"),
                    (Some(lo), None) => format!(">= {lo}"),
                    (None, None) => "all".into(),
                },
            );
        }
        labels.push("missing".into());
        labels
    }
}

/// One bin's part of a PSI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PsiBin {
    /// The bin's label.
    pub label: String,
    /// Baseline values in it.
    pub baseline: u64,
    /// Current values in it.
    pub current: u64,
    /// Its share of the baseline.
    pub baseline_share: f64,
    /// Its share of the current values.
    pub current_share: f64,
    /// (current − baseline) · ln(current / baseline), shares floored at [`EMPTY_BIN_SHARE`].
    pub contribution: f64,
}

/// A population stability index, bin by bin.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Psi {
    /// The index: the sum of the bins' contributions.
    pub psi: f64,
    /// What the index says.
    pub drift: Drift,
    /// Each bin's part.
    pub bins: Vec<PsiBin>,
}

/// PSI of current counts against baseline counts over the same bins. Bins empty in both are
/// left out (they carry no information, e.g. a missing bin nobody fell in).
pub fn psi(labels: &[String], baseline: &[u64], current: &[u64]) -> Result<Psi, BacktestError> {
    if baseline.len() != current.len() || labels.len() != baseline.len() {
        return Err(BacktestError::Binning(
            "baseline, current and labels need the same bins".into(),
        ));
    }
    let total_baseline: u64 = baseline.iter().sum();
    let total_current: u64 = current.iter().sum();
    if total_baseline == 0 || total_current == 0 {
        return Err(BacktestError::Empty {
            what: "PSI",
            needs: if total_baseline == 0 {
                "baseline row"
            } else {
                "current row"
            },
        });
    }
    let mut bins = Vec::new();
    let mut total = 0.0;
    for ((label, &b), &c) in labels.iter().zip(baseline).zip(current) {
        if b == 0 && c == 0 {
            continue;
        }
        let bs = b as f64 / total_baseline as f64;
        let cs = c as f64 / total_current as f64;
        let (bf, cf) = (bs.max(EMPTY_BIN_SHARE), cs.max(EMPTY_BIN_SHARE));
        let contribution = (cf - bf) * (cf / bf).ln();
        total += contribution;
        bins.push(PsiBin {
            label: label.clone(),
            baseline: b,
            current: c,
            baseline_share: bs,
            current_share: cs,
            contribution,
        });
    }
    Ok(Psi {
        psi: total,
        drift: Drift::of(total),
        bins,
    })
}

/// PSI of a numeric variable, binned at the baseline's deciles (or `bins` quantiles).
pub fn psi_numeric(
    baseline: &[Option<f64>],
    current: &[Option<f64>],
    bins: usize,
) -> Result<(Binning, Psi), BacktestError> {
    let present: Vec<f64> = baseline.iter().flatten().copied().collect();
    let binning = Binning::quantiles(&present, bins)?;
    let result = psi(
        &binning.labels(),
        &binning.count(baseline.iter().copied()),
        &binning.count(current.iter().copied()),
    )?;
    Ok((binning, result))
}

/// CSI of a categorical variable: one bin per category seen in either sample.
pub fn psi_categorical(
    baseline: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
) -> Result<Psi, BacktestError> {
    let categories: BTreeSet<&String> = baseline.keys().chain(current.keys()).collect();
    let labels: Vec<String> = categories.iter().map(|c| (*c).clone()).collect();
    let count = |map: &BTreeMap<String, u64>| -> Vec<u64> {
        categories
            .iter()
            .map(|c| map.get(*c).copied().unwrap_or(0))
            .collect()
    };
    psi(&labels, &count(baseline), &count(current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// AUC by its definition: every (bad, good) pair, ties worth ½.
    fn auc_by_pairs(rows: &[(f64, bool)]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (sb, _) in rows.iter().filter(|r| r.1) {
            for (sg, _) in rows.iter().filter(|r| !r.1) {
                pairs += 1.0;
                if sb > sg {
                    wins += 1.0;
                } else if sb == sg {
                    wins += 0.5;
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn hand_computed_cases() {
        // (scores, bads) → (auc, ks)
        type Case<'a> = (&'a [(f64, bool)], f64, f64);
        let cases: &[Case] = &[
            // Perfect separation.
            (
                &[(1.0, false), (2.0, false), (3.0, true), (4.0, true)],
                1.0,
                1.0,
            ),
            // Reversed.
            (
                &[(1.0, true), (2.0, true), (3.0, false), (4.0, false)],
                0.0,
                1.0,
            ),
            // All tied: no information.
            (
                &[(5.0, true), (5.0, false), (5.0, true), (5.0, false)],
                0.5,
                0.0,
            ),
            // One pair out of order among 2 × 2: AUC 3/4; KS ½ (after 1.0: goods ½, bads 0).
            (
                &[(1.0, false), (2.0, true), (3.0, false), (4.0, true)],
                0.75,
                0.5,
            ),
            // A tie between a bad and a good: 3.5 / 4.
            (
                &[(1.0, false), (2.0, true), (2.0, false), (4.0, true)],
                0.875,
                0.5,
            ),
        ];
        for (rows, auc, ks) in cases {
            let d = discrimination(rows).unwrap();
            assert!((d.auc - auc).abs() < 1e-12, "{rows:?}: auc {}", d.auc);
            assert!((d.ks - ks).abs() < 1e-12, "{rows:?}: ks {}", d.ks);
            assert!((d.gini - (2.0 * auc - 1.0)).abs() < 1e-12);
        }
    }

    #[test]
    fn one_class_or_non_finite_scores_are_errors() {
        assert!(discrimination(&[(1.0, true), (2.0, true)]).is_err());
        assert!(discrimination(&[(f64::NAN, true), (2.0, false)]).is_err());
    }

    #[test]
    fn psi_by_hand_and_flags() {
        let labels: Vec<String> = ["a", "b"].map(String::from).to_vec();
        // 50/50 → 50/50: nothing moved.
        assert_eq!(psi(&labels, &[50, 50], &[5, 5]).unwrap().psi, 0.0);
        // 50/50 → 80/20: (0.8−0.5)·ln(0.8/0.5) + (0.2−0.5)·ln(0.2/0.5) = 0.4159…
        let p = psi(&labels, &[50, 50], &[80, 20]).unwrap();
        let expected = 0.3 * (1.6f64).ln() + (-0.3) * (0.4f64).ln();
        assert!((p.psi - expected).abs() < 1e-12);
        assert_eq!(p.drift, Drift::Shift);
        // An empty current bin is floored, not infinite.
        let p = psi(&labels, &[50, 50], &[10, 0]).unwrap();
        assert!(p.psi.is_finite() && p.psi > 1.0);
        assert_eq!(Drift::of(0.05), Drift::Stable);
        assert_eq!(Drift::of(0.1), Drift::Watch);
        assert_eq!(Drift::of(0.25), Drift::Shift);
    }

    #[test]
    fn quantile_binning_is_fixed_by_the_baseline() {
        let baseline: Vec<f64> = (0..100).map(f64::from).collect();
        let binning = Binning::quantiles(&baseline, 10).unwrap();
        assert_eq!(
            binning.edges,
            vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0]
        );
        assert_eq!(binning.bin(Some(-5.0)), 0);
        assert_eq!(binning.bin(Some(10.0)), 1);
        assert_eq!(binning.bin(Some(99.0)), 9);
        assert_eq!(binning.bin(Some(1e9)), 9);
        assert_eq!(binning.bin(None), 10);
        // A lumpy variable: fewer bins, none empty by construction.
        let lumpy = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 2.0, 3.0];
        assert_eq!(Binning::quantiles(&lumpy, 4).unwrap().edges, vec![0.0, 1.0]);
        assert!(Binning::from_edges(vec![2.0, 1.0]).is_err());
    }

    #[test]
    fn categorical_csi_covers_categories_new_in_either_sample() {
        let base: BTreeMap<String, u64> = [("rent".into(), 60), ("own".into(), 40)].into();
        let cur: BTreeMap<String, u64> =
            [("rent".into(), 50), ("own".into(), 40), ("free".into(), 10)].into();
        let p = psi_categorical(&base, &cur).unwrap();
        assert_eq!(p.bins.len(), 3);
        assert!(p.psi > 0.0);
    }

    proptest! {
        #[test]
        fn auc_equals_the_pairwise_definition_and_ks_is_bounded(
            rows in prop::collection::vec((0i32..20, any::<bool>()), 2..60)
        ) {
            let rows: Vec<(f64, bool)> = rows.into_iter().map(|(s, b)| (f64::from(s), b)).collect();
            prop_assume!(rows.iter().any(|r| r.1) && rows.iter().any(|r| !r.1));
            let d = discrimination(&rows).unwrap();
            prop_assert!((d.auc - auc_by_pairs(&rows)).abs() < 1e-12);
            prop_assert!((0.0..=1.0).contains(&d.ks));
            // Order never matters.
            let mut reversed = rows.clone();
            reversed.reverse();
            prop_assert_eq!(discrimination(&reversed).unwrap(), d);
        }

        #[test]
        fn psi_is_non_negative_and_zero_for_the_same_shares(
            counts in prop::collection::vec(1u64..1000, 2..12), factor in 1u64..5
        ) {
            let labels: Vec<String> = (0..counts.len()).map(|i| i.to_string()).collect();
            let scaled: Vec<u64> = counts.iter().map(|c| c * factor).collect();
            prop_assert!(psi(&labels, &counts, &scaled).unwrap().psi.abs() < 1e-12);
            let shifted: Vec<u64> = counts.iter().rev().copied().collect();
            prop_assert!(psi(&labels, &counts, &shifted).unwrap().psi >= 0.0);
        }
    }
}
