//! The back-test tally: per-strategy outcome rates, limits, APRs and reason frequencies; the
//! swap set between champion and challenger with bads and expected loss per cell; breakdowns by
//! segment columns; the score distribution by outcome. Workers tally their rows and the tallies
//! merge; every sum is an integer or a decimal, so the summary is the same for any split.

use credence_engine::Outcome;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What one strategy decided for one row.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyResult {
    /// What it decided.
    pub outcome: Outcome,
    /// The limit it granted.
    pub limit: Option<Decimal>,
    /// The APR it priced.
    pub apr: Option<Decimal>,
    /// Its reason codes.
    pub reasons: Vec<Arc<str>>,
    /// The score of the flow's scorecard (or model) step, for the score distribution.
    pub score: Option<f64>,
    /// The probability of default the strategy's scorecard or model gave, if any.
    pub pd: Option<f64>,
}

/// How the row's loan performed (all optional: a back-test without outcomes still has rates).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Performance {
    /// Whether the loan went bad (none: unknown).
    pub bad: Option<bool>,
    /// Exposure at default; when absent, the limit the strategy granted.
    pub exposure: Option<Decimal>,
    /// A realised loss amount, summed as it is.
    pub loss: Option<Decimal>,
    /// A probability of default given with the row; it takes precedence over the strategy's.
    pub pd: Option<f64>,
}

/// One row of a back-test: what each strategy decided and how the loan performed.
#[derive(Debug, Clone, PartialEq)]
pub struct RowResult {
    /// What the champion decided.
    pub champion: StrategyResult,
    /// What the challenger decided, when there is one.
    pub challenger: Option<StrategyResult>,
    /// How the loan performed.
    pub performance: Performance,
    /// The row's value of each segment column, in [`TallyOptions::segments`] order.
    pub segments: Vec<Option<String>>,
}

/// How a back-test is tallied.
#[derive(Debug, Clone, PartialEq)]
pub struct TallyOptions {
    /// Loss given default, declared by the analyst (e.g. 0.45 for unsecured consumer loans).
    pub lgd: Decimal,
    /// Columns to break rates down by.
    pub segments: Vec<String>,
    /// Width of a score-distribution bin.
    pub score_bin_width: f64,
}

impl Default for TallyOptions {
    fn default() -> Self {
        TallyOptions {
            lgd: Decimal::new(45, 2),
            segments: Vec::new(),
            score_bin_width: 10.0,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Side {
    approved: u64,
    referred: u64,
    declined: u64,
    limit_total: Decimal,
    limit_rows: u64,
    apr_total: Decimal,
    apr_rows: u64,
    approved_bads: u64,
    approved_with_outcome: u64,
    expected_loss: Decimal,
    realised_loss: Decimal,
    reasons: BTreeMap<Arc<str>, u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Cell {
    rows: u64,
    with_outcome: u64,
    bads: u64,
    expected_loss_champion: Decimal,
    expected_loss_challenger: Decimal,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct SegmentCell {
    rows: u64,
    with_outcome: u64,
    bads: u64,
    champion_approved: u64,
    challenger_approved: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct ScoreBin {
    outcomes: [u64; 3],
    goods: u64,
    bads: u64,
}

/// A mergeable tally of back-test rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    options: TallyOptions,
    rows: u64,
    rows_with_outcome: u64,
    bads: u64,
    champion: Side,
    challenger: Side,
    has_challenger: bool,
    /// [champion approved][challenger approved].
    swap: [[Cell; 2]; 2],
    outcome_matrix: [[u64; 3]; 3],
    changed: u64,
    segments: Vec<BTreeMap<String, SegmentCell>>,
    scores: BTreeMap<i64, ScoreBin>,
}

fn outcome_index(outcome: Outcome) -> usize {
    match outcome {
        Outcome::Approve => 0,
        Outcome::Refer => 1,
        Outcome::Decline => 2,
    }
}

const OUTCOMES: [&str; 3] = ["approve", "refer", "decline"];

impl Tally {
    /// An empty tally.
    pub fn new(options: TallyOptions) -> Tally {
        let segments = vec![BTreeMap::new(); options.segments.len()];
        Tally {
            options,
            rows: 0,
            rows_with_outcome: 0,
            bads: 0,
            champion: Side::default(),
            challenger: Side::default(),
            has_challenger: false,
            swap: Default::default(),
            outcome_matrix: [[0; 3]; 3],
            changed: 0,
            segments,
            scores: BTreeMap::new(),
        }
    }

    /// Expected loss of an approval: PD × EAD × LGD. PD is the row's, else the strategy's
    /// scorecard or model PD, else the observed outcome (1 for a bad, 0 for a good: realised
    /// default at the declared LGD). EAD is the row's exposure, else the granted limit.
    fn expected_loss(&self, result: &StrategyResult, performance: &Performance) -> Decimal {
        let pd = performance
            .pd
            .or(result.pd)
            .and_then(pd_to_eight_places)
            .or(performance
                .bad
                .map(|bad| if bad { Decimal::ONE } else { Decimal::ZERO }))
            .unwrap_or(Decimal::ZERO);
        let exposure = performance
            .exposure
            .or(result.limit)
            .unwrap_or(Decimal::ZERO);
        (pd * exposure * self.options.lgd).round_dp(4)
    }

    fn add_side(side: &mut Side, result: &StrategyResult, performance: &Performance, el: Decimal) {
        match result.outcome {
            Outcome::Approve => side.approved += 1,
            Outcome::Refer => side.referred += 1,
            Outcome::Decline => side.declined += 1,
        }
        if result.outcome == Outcome::Approve {
            if let Some(limit) = result.limit {
                side.limit_total += limit;
                side.limit_rows += 1;
            }
            if let Some(apr) = result.apr {
                side.apr_total += apr;
                side.apr_rows += 1;
            }
            if let Some(bad) = performance.bad {
                side.approved_with_outcome += 1;
                side.approved_bads += u64::from(bad);
            }
            side.expected_loss += el;
            if let Some(loss) = performance.loss {
                side.realised_loss += loss;
            }
        }
        for reason in &result.reasons {
            *side.reasons.entry(reason.clone()).or_insert(0) += 1;
        }
    }

    /// Counts one row.
    pub fn add(&mut self, row: &RowResult) {
        let performance = &row.performance;
        self.rows += 1;
        if let Some(bad) = performance.bad {
            self.rows_with_outcome += 1;
            self.bads += u64::from(bad);
        }
        let el_a = self.expected_loss(&row.champion, performance);
        Self::add_side(&mut self.champion, &row.champion, performance, el_a);
        let a_approved = row.champion.outcome == Outcome::Approve;
        let mut b_approved = false;
        if let Some(b) = &row.challenger {
            self.has_challenger = true;
            let el_b = self.expected_loss(b, performance);
            Self::add_side(&mut self.challenger, b, performance, el_b);
            b_approved = b.outcome == Outcome::Approve;
            self.outcome_matrix[outcome_index(row.champion.outcome)][outcome_index(b.outcome)] += 1;
            if b.outcome != row.champion.outcome {
                self.changed += 1;
            }
            let cell = &mut self.swap[usize::from(a_approved)][usize::from(b_approved)];
            cell.rows += 1;
            if let Some(bad) = performance.bad {
                cell.with_outcome += 1;
                cell.bads += u64::from(bad);
            }
            if a_approved {
                cell.expected_loss_champion += el_a;
            }
            if b_approved {
                cell.expected_loss_challenger += el_b;
            }
        }
        for (map, value) in self.segments.iter_mut().zip(&row.segments) {
            let key = value.clone().unwrap_or_else(|| "(missing)".into());
            let cell = map.entry(key).or_default();
            cell.rows += 1;
            if let Some(bad) = performance.bad {
                cell.with_outcome += 1;
                cell.bads += u64::from(bad);
            }
            cell.champion_approved += u64::from(a_approved);
            cell.challenger_approved += u64::from(b_approved);
        }
        if let Some(score) = row.champion.score.filter(|s| s.is_finite()) {
            let bin = (score / self.options.score_bin_width).floor() as i64;
            let entry = self.scores.entry(bin).or_default();
            entry.outcomes[outcome_index(row.champion.outcome)] += 1;
            match performance.bad {
                Some(true) => entry.bads += 1,
                Some(false) => entry.goods += 1,
                None => {}
            }
        }
    }

    /// Adds another worker's tally (same options) into this one.
    pub fn merge(&mut self, other: Tally) {
        fn side(into: &mut Side, from: Side) {
            into.approved += from.approved;
            into.referred += from.referred;
            into.declined += from.declined;
            into.limit_total += from.limit_total;
            into.limit_rows += from.limit_rows;
            into.apr_total += from.apr_total;
            into.apr_rows += from.apr_rows;
            into.approved_bads += from.approved_bads;
            into.approved_with_outcome += from.approved_with_outcome;
            into.expected_loss += from.expected_loss;
            into.realised_loss += from.realised_loss;
            for (reason, count) in from.reasons {
                *into.reasons.entry(reason).or_insert(0) += count;
            }
        }
        self.rows += other.rows;
        self.rows_with_outcome += other.rows_with_outcome;
        self.bads += other.bads;
        side(&mut self.champion, other.champion);
        side(&mut self.challenger, other.challenger);
        self.has_challenger |= other.has_challenger;
        for (a, row) in other.swap.into_iter().enumerate() {
            for (b, cell) in row.into_iter().enumerate() {
                let into = &mut self.swap[a][b];
                into.rows += cell.rows;
                into.with_outcome += cell.with_outcome;
                into.bads += cell.bads;
                into.expected_loss_champion += cell.expected_loss_champion;
                into.expected_loss_challenger += cell.expected_loss_challenger;
            }
        }
        for (a, row) in other.outcome_matrix.iter().enumerate() {
            for (b, count) in row.iter().enumerate() {
                self.outcome_matrix[a][b] += count;
            }
        }
        self.changed += other.changed;
        for (into, from) in self.segments.iter_mut().zip(other.segments) {
            for (key, cell) in from {
                let entry = into.entry(key).or_default();
                entry.rows += cell.rows;
                entry.with_outcome += cell.with_outcome;
                entry.bads += cell.bads;
                entry.champion_approved += cell.champion_approved;
                entry.challenger_approved += cell.challenger_approved;
            }
        }
        for (bin, counts) in other.scores {
            let entry = self.scores.entry(bin).or_default();
            for i in 0..3 {
                entry.outcomes[i] += counts.outcomes[i];
            }
            entry.goods += counts.goods;
            entry.bads += counts.bads;
        }
    }

    /// Rows counted.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The summary of everything counted.
    pub fn summary(&self, champion: StrategyLabel, challenger: Option<StrategyLabel>) -> Summary {
        let mut strategies = BTreeMap::new();
        strategies.insert(
            "champion",
            side_summary(&self.champion, self.rows, champion),
        );
        let swap = match (challenger, self.has_challenger) {
            (Some(label), true) => {
                strategies.insert(
                    "challenger",
                    side_summary(&self.challenger, self.rows, label),
                );
                let cell = |a: usize, b: usize| {
                    let c = &self.swap[a][b];
                    SwapCell {
                        rows: c.rows,
                        bads: c.bads,
                        bad_rate: rate(c.bads, c.with_outcome),
                        expected_loss_champion: c.expected_loss_champion.normalize(),
                        expected_loss_challenger: c.expected_loss_challenger.normalize(),
                    }
                };
                let mut outcomes = BTreeMap::new();
                for (a, row) in self.outcome_matrix.iter().enumerate() {
                    let mut to = BTreeMap::new();
                    for (b, count) in row.iter().enumerate() {
                        to.insert(OUTCOMES[b], *count);
                    }
                    outcomes.insert(OUTCOMES[a], to);
                }
                Some(Swap {
                    both: cell(1, 1),
                    champion_only: cell(1, 0),
                    challenger_only: cell(0, 1),
                    neither: cell(0, 0),
                    outcome_changed: self.changed,
                    outcomes,
                })
            }
            _ => None,
        };
        let segments = self
            .options
            .segments
            .iter()
            .zip(&self.segments)
            .map(|(column, cells)| {
                let values = cells
                    .iter()
                    .map(|(value, c)| {
                        (
                            value.clone(),
                            SegmentSummary {
                                rows: c.rows,
                                bads: c.bads,
                                bad_rate: rate(c.bads, c.with_outcome),
                                champion_approve_rate: rate(c.champion_approved, c.rows)
                                    .unwrap_or_default(),
                                challenger_approve_rate: swap
                                    .as_ref()
                                    .and_then(|_| rate(c.challenger_approved, c.rows)),
                            },
                        )
                    })
                    .collect();
                (column.clone(), values)
            })
            .collect();
        let width = self.options.score_bin_width;
        let score_distribution = self
            .scores
            .iter()
            .map(|(bin, c)| ScoreBinSummary {
                from: *bin as f64 * width,
                to: (*bin + 1) as f64 * width,
                approve: c.outcomes[0],
                refer: c.outcomes[1],
                decline: c.outcomes[2],
                goods: c.goods,
                bads: c.bads,
            })
            .collect();
        Summary {
            rows: self.rows,
            rows_with_outcome: self.rows_with_outcome,
            bad_rate: rate(self.bads, self.rows_with_outcome),
            lgd: self.options.lgd.normalize(),
            strategies,
            swap,
            segments,
            score_distribution,
        }
    }
}

/// A rate as an exact decimal to 6 places; `None` when there is nothing to divide by.
fn rate(part: u64, whole: u64) -> Option<Decimal> {
    (whole > 0).then(|| {
        (Decimal::from(part) / Decimal::from(whole))
            .round_dp(6)
            .normalize()
    })
}

fn side_summary(side: &Side, rows: u64, label: StrategyLabel) -> StrategySummary {
    let average = |total: Decimal, n: u64| {
        (n > 0).then(|| (total / Decimal::from(n)).round_dp(4).normalize())
    };
    let mut reasons: Vec<(Arc<str>, u64)> =
        side.reasons.iter().map(|(r, c)| (r.clone(), *c)).collect();
    // Most frequent first; ties by code, so the order is fixed.
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    StrategySummary {
        name: label.name,
        version: label.version,
        approve_rate: rate(side.approved, rows).unwrap_or_default(),
        refer_rate: rate(side.referred, rows).unwrap_or_default(),
        decline_rate: rate(side.declined, rows).unwrap_or_default(),
        approved: side.approved,
        referred: side.referred,
        declined: side.declined,
        average_limit: average(side.limit_total, side.limit_rows),
        total_limit: side.limit_total.normalize(),
        average_apr: average(side.apr_total, side.apr_rows),
        approved_bad_rate: rate(side.approved_bads, side.approved_with_outcome),
        expected_loss: side.expected_loss.normalize(),
        realised_loss: side.realised_loss.normalize(),
        reasons: reasons
            .into_iter()
            .map(|(code, count)| ReasonCount {
                code: code.to_string(),
                count,
            })
            .collect(),
    }
}

/// Which strategy a side of the summary is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyLabel {
    /// The strategy's name.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// What a back-test found: the JSON summary and the report's content.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Rows back-tested.
    pub rows: u64,
    /// Rows whose performance (good or bad) is known.
    pub rows_with_outcome: u64,
    /// Bad rate over rows with a known outcome.
    pub bad_rate: Option<Decimal>,
    /// The loss given default used for expected loss.
    pub lgd: Decimal,
    /// `champion`, and `challenger` when one was given.
    pub strategies: BTreeMap<&'static str, StrategySummary>,
    /// Who each strategy approves, with a challenger.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap: Option<Swap>,
    /// Rates per segment column and value.
    pub segments: BTreeMap<String, BTreeMap<String, SegmentSummary>>,
    /// Outcomes and performance by score bin.
    pub score_distribution: Vec<ScoreBinSummary>,
}

/// One strategy's side of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategySummary {
    /// The strategy's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Share approved.
    pub approve_rate: Decimal,
    /// Share referred.
    pub refer_rate: Decimal,
    /// Share declined.
    pub decline_rate: Decimal,
    /// Rows approved.
    pub approved: u64,
    /// Rows referred.
    pub referred: u64,
    /// Rows declined.
    pub declined: u64,
    /// Mean limit over approvals with a limit.
    pub average_limit: Option<Decimal>,
    /// Sum of limits granted.
    pub total_limit: Decimal,
    /// Mean APR over approvals with an APR.
    pub average_apr: Option<Decimal>,
    /// Bad rate among approved rows with a known outcome.
    pub approved_bad_rate: Option<Decimal>,
    /// Σ PD × EAD × LGD over approvals.
    pub expected_loss: Decimal,
    /// Sum of the rows' realised losses over approvals.
    pub realised_loss: Decimal,
    /// Reason codes returned, most frequent first.
    pub reasons: Vec<ReasonCount>,
}

/// How often a reason code was returned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReasonCount {
    /// The reason code.
    pub code: String,
    /// Rows it was returned for.
    pub count: u64,
}

/// The swap set: who each strategy approves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Swap {
    /// Approved by both.
    pub both: SwapCell,
    /// Swap-outs: approved by the champion, not by the challenger.
    pub champion_only: SwapCell,
    /// Swap-ins: approved by the challenger, not by the champion.
    pub challenger_only: SwapCell,
    /// Approved by neither.
    pub neither: SwapCell,
    /// Rows whose outcome differs between the two.
    pub outcome_changed: u64,
    /// Champion outcome → challenger outcome → rows.
    pub outcomes: BTreeMap<&'static str, BTreeMap<&'static str, u64>>,
}

/// One cell of the swap set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwapCell {
    /// Rows in the cell.
    pub rows: u64,
    /// Of those, bads.
    pub bads: u64,
    /// Bad rate over rows with a known outcome.
    pub bad_rate: Option<Decimal>,
    /// Expected loss at the champion's limits.
    pub expected_loss_champion: Decimal,
    /// Expected loss at the challenger's limits.
    pub expected_loss_challenger: Decimal,
}

/// One value of a segment column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SegmentSummary {
    /// Rows with this value.
    pub rows: u64,
    /// Of those, bads.
    pub bads: u64,
    /// Bad rate over rows with a known outcome.
    pub bad_rate: Option<Decimal>,
    /// The champion's approval rate.
    pub champion_approve_rate: Decimal,
    /// The challenger's approval rate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenger_approve_rate: Option<Decimal>,
}

/// One bin of the score distribution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreBinSummary {
    /// The bin's lower edge (included).
    pub from: f64,
    /// Its upper edge (excluded).
    pub to: f64,
    /// Rows approved.
    pub approve: u64,
    /// Rows referred.
    pub refer: u64,
    /// Rows declined.
    pub decline: u64,
    /// Rows known good.
    pub goods: u64,
    /// Rows known bad.
    pub bads: u64,
}

/// A probability of default as a decimal to eight places, half away from zero.
///
/// Through `f64` (`p · 10⁸`, rounded): a fraction of the cost of converting the binary float
/// exactly and then rounding, and the same digits except for a product within one ulp of a
/// rounding midpoint, far below any PD's precision. `None` for a value that is not a
/// probability.
fn pd_to_eight_places(pd: f64) -> Option<Decimal> {
    if !(0.0..=1.0).contains(&pd) {
        return None;
    }
    Some(Decimal::from_i128_with_scale((pd * 1e8).round() as i128, 8).normalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn result(outcome: Outcome, limit: Option<i64>, reasons: &[&str]) -> StrategyResult {
        StrategyResult {
            outcome,
            limit: limit.map(Decimal::from),
            apr: (outcome == Outcome::Approve).then(|| Decimal::new(1299, 4)),
            reasons: reasons.iter().map(|r| Arc::from(*r)).collect(),
            score: Some(500.0),
            pd: None,
        }
    }

    fn row(a: StrategyResult, b: StrategyResult, bad: bool, grade: &str) -> RowResult {
        RowResult {
            champion: a,
            challenger: Some(b),
            performance: Performance {
                bad: Some(bad),
                ..Performance::default()
            },
            segments: vec![Some(grade.into())],
        }
    }

    fn label(name: &str) -> StrategyLabel {
        StrategyLabel {
            name: name.into(),
            version: "v".into(),
        }
    }

    /// Four rows, one per swap cell, worked by hand.
    #[test]
    fn swap_set_rates_and_expected_loss_by_hand() {
        let options = TallyOptions {
            lgd: Decimal::new(5, 1),
            segments: vec!["grade".into()],
            score_bin_width: 10.0,
        };
        let mut tally = Tally::new(options);
        use Outcome::*;
        // both approve, good
        tally.add(&row(
            result(Approve, Some(1000), &[]),
            result(Approve, Some(2000), &[]),
            false,
            "A",
        ));
        // champion only, bad: EL under champion = 1 × 3000 × 0.5
        tally.add(&row(
            result(Approve, Some(3000), &[]),
            result(Decline, None, &["DEC_SCORE"]),
            true,
            "B",
        ));
        // challenger only, bad: EL under challenger = 1 × 4000 × 0.5
        tally.add(&row(
            result(Refer, None, &["REF_DTI"]),
            result(Approve, Some(4000), &[]),
            true,
            "B",
        ));
        // neither
        tally.add(&row(
            result(Decline, None, &["DEC_SCORE"]),
            result(Decline, None, &["DEC_SCORE"]),
            false,
            "A",
        ));
        let s = tally.summary(label("a"), Some(label("b")));
        let a = &s.strategies["champion"];
        assert_eq!((a.approved, a.referred, a.declined), (2, 1, 1));
        assert_eq!(a.approve_rate, Decimal::new(5, 1));
        assert_eq!(a.average_limit, Some(Decimal::from(2000)));
        assert_eq!(a.approved_bad_rate, Some(Decimal::new(5, 1)));
        assert_eq!(a.expected_loss, Decimal::from(1500));
        let b = &s.strategies["challenger"];
        assert_eq!(b.expected_loss, Decimal::from(2000));
        assert_eq!(b.reasons[0].code, "DEC_SCORE");
        assert_eq!(b.reasons[0].count, 2);
        let swap = s.swap.unwrap();
        assert_eq!(
            (
                swap.both.rows,
                swap.champion_only.rows,
                swap.challenger_only.rows,
                swap.neither.rows
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(swap.champion_only.bad_rate, Some(Decimal::ONE));
        assert_eq!(
            swap.challenger_only.expected_loss_challenger,
            Decimal::from(2000)
        );
        assert_eq!(swap.outcome_changed, 2);
        assert_eq!(swap.outcomes["refer"]["approve"], 1);
        let grade_b = &s.segments["grade"]["B"];
        assert_eq!(grade_b.rows, 2);
        assert_eq!(grade_b.bad_rate, Some(Decimal::ONE));
        assert_eq!(grade_b.champion_approve_rate, Decimal::new(5, 1));
        assert_eq!(grade_b.challenger_approve_rate, Some(Decimal::new(5, 1)));
        assert_eq!(s.score_distribution.len(), 1);
        assert_eq!(s.score_distribution[0].approve, 2);
    }

    #[test]
    fn a_row_pd_takes_precedence_and_exposure_replaces_the_limit() {
        let mut tally = Tally::new(TallyOptions::default());
        let mut a = result(Outcome::Approve, Some(1000), &[]);
        a.pd = Some(0.1);
        tally.add(&RowResult {
            champion: a.clone(),
            challenger: None,
            performance: Performance::default(),
            segments: vec![],
        });
        // 0.1 × 1000 × 0.45
        assert_eq!(
            tally.summary(label("a"), None).strategies["champion"].expected_loss,
            Decimal::new(45, 0)
        );
        let mut tally = Tally::new(TallyOptions::default());
        tally.add(&RowResult {
            champion: a,
            challenger: None,
            performance: Performance {
                pd: Some(0.2),
                exposure: Some(Decimal::from(500)),
                ..Performance::default()
            },
            segments: vec![],
        });
        // 0.2 × 500 × 0.45
        let s = tally.summary(label("a"), None);
        assert_eq!(s.strategies["champion"].expected_loss, Decimal::from(45));
        assert!(s.swap.is_none());
    }

    proptest! {
        /// Any split of the rows into workers merges to the same summary.
        #[test]
        fn merging_any_split_gives_the_same_summary(
            rows in prop::collection::vec((0usize..3, 0usize..3, any::<bool>(), 0u8..3, 300i32..700), 1..80),
            split in 0usize..80,
        ) {
            let outcomes = [Outcome::Approve, Outcome::Refer, Outcome::Decline];
            let rows: Vec<RowResult> = rows.into_iter().map(|(a, b, bad, seg, score)| {
                let mut ra = result(outcomes[a], (a == 0).then_some(1000 + i64::from(score)), &["X"]);
                ra.score = Some(f64::from(score));
                ra.pd = Some(f64::from(score) / 1000.0);
                let rb = result(outcomes[b], (b == 0).then_some(900), &["Y"]);
                RowResult { champion: ra, challenger: Some(rb),
                    performance: Performance { bad: Some(bad), ..Performance::default() },
                    segments: vec![Some(seg.to_string())] }
            }).collect();
            let options = TallyOptions { segments: vec!["s".into()], ..TallyOptions::default() };
            let mut whole = Tally::new(options.clone());
            rows.iter().for_each(|r| whole.add(r));
            let cut = split.min(rows.len());
            let (mut left, mut right) = (Tally::new(options.clone()), Tally::new(options));
            rows[..cut].iter().for_each(|r| left.add(r));
            rows[cut..].iter().for_each(|r| right.add(r));
            right.merge(left);
            let json = |t: &Tally| serde_json::to_string(&t.summary(label("a"), Some(label("b")))).unwrap();
            prop_assert_eq!(json(&whole), json(&right));
        }
    }
}
