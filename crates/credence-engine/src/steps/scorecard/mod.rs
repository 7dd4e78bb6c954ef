//! Points scorecards: binned characteristics, odds/PDO calibration to a probability of default, ranked reason codes.

mod compile;
mod eval;
pub(crate) mod raw;

use crate::value::Constant;
use credence_expr::{Expr, Frame, Interval, NamedLists, Slot, Value, ValueRef};
pub(crate) use raw::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum BinTest {
    /// Numeric interval with explicit closedness at each end.
    Range(Interval),
    /// A set of category values.
    Values(Vec<Constant>),
    /// The value is missing (null).
    Missing,
    /// Anything no other bin took.
    Else,
}

#[derive(Debug, Clone)]
pub struct Bin {
    pub test: BinTest,
    pub points: Decimal,
    pub label: Arc<str>,
    /// The bin's shortfall (its characteristic's best points minus its own) ranked among every
    /// distinct shortfall of the scorecard: 0 for none, larger for more. Set by
    /// [`rank_shortfalls`], so that ranking reasons compares integers, not decimals.
    pub shortfall_rank: u32,
}

/// Numbers every bin's shortfall by its place among the scorecard's distinct shortfalls.
pub fn rank_shortfalls(characteristics: &mut [Characteristic]) {
    let mut shortfalls: Vec<Decimal> = characteristics
        .iter()
        .flat_map(|c| c.bins.iter().map(|b| c.max_points - b.points))
        .chain([Decimal::ZERO])
        .collect();
    shortfalls.sort();
    shortfalls.dedup();
    for characteristic in characteristics {
        let best = characteristic.max_points;
        for bin in &mut characteristic.bins {
            let rank = shortfalls.partition_point(|s| *s < best - bin.points);
            bin.shortfall_rank = u32::try_from(rank).unwrap_or(u32::MAX);
        }
    }
}

#[derive(Debug, Clone)]
pub struct Characteristic {
    pub name: Arc<str>,
    pub value: Expr,
    pub reason: Arc<str>,
    pub bins: Vec<Bin>,
    /// The most points any bin gives: the shortfall from it ranks reason codes.
    pub max_points: Decimal,
}

/// Score ↔ probability: `score = offset + factor · ln(odds)`, odds = good:bad.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    pub offset: f64,
    pub factor: f64,
}

impl Calibration {
    pub fn new(score: f64, odds: f64, pdo: f64) -> Result<Calibration, String> {
        if !(odds > 0.0 && odds.is_finite()) {
            return Err(format!("calibration odds must be positive, got {odds}"));
        }
        if !(pdo > 0.0 && pdo.is_finite()) {
            return Err(format!(
                "calibration pdo (points to double the odds) must be positive, got {pdo}"
            ));
        }
        let factor = pdo / std::f64::consts::LN_2;
        Ok(Calibration {
            offset: score - factor * odds.ln(),
            factor,
        })
    }

    /// Probability of default (bad) at a score.
    pub fn probability_of_default(&self, score: f64) -> f64 {
        let log_odds_good = (score - self.offset) / self.factor;
        1.0 / (1.0 + log_odds_good.exp())
    }
}

#[derive(Debug, Clone)]
pub struct Scorecard {
    pub id: Arc<str>,
    pub slot: Slot,
    pub base_points: Decimal,
    pub calibration: Option<Calibration>,
    pub characteristics: Vec<Characteristic>,
}

/// Which bin each characteristic fell in.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BinHit {
    pub characteristic: Arc<str>,
    pub bin: Arc<str>,
    pub points: Decimal,
}

#[derive(Debug, Clone)]
pub struct ScorecardResult {
    pub score: Decimal,
    pub probability_of_default: Option<f64>,
    pub bins: Vec<BinHit>,
    /// Reason codes ranked by points lost against each characteristic's best bin.
    pub ranked_reasons: Vec<Arc<str>>,
    /// Each characteristic's value, for the full trace (empty unless asked for).
    pub values: Vec<Value>,
}

impl Scorecard {
    /// Scores; `keep_values` keeps each characteristic's value for a full trace.
    pub fn evaluate(
        &self,
        frame: &mut Frame,
        lists: &NamedLists,
        keep_values: bool,
    ) -> Result<ScorecardResult, String> {
        let mut score = self.base_points;
        let mut bins = Vec::with_capacity(self.characteristics.len());
        let mut shortfalls: smallvec::SmallVec<[(u32, usize); 16]> = smallvec::SmallVec::new();
        let mut values = Vec::with_capacity(if keep_values {
            self.characteristics.len()
        } else {
            0
        });
        for (position, characteristic) in self.characteristics.iter().enumerate() {
            let value = characteristic
                .value
                .eval(frame, lists)
                .map_err(|e| e.to_string())?;
            let bin = characteristic.bin_for(&value).ok_or_else(|| {
                format!(
                    "scorecard {}: characteristic {} has no bin for {}; add an `else: true` bin or one that covers it",
                    self.id,
                    characteristic.name,
                    value.to_json()
                )
            })?;
            score += bin.points;
            if bin.shortfall_rank > 0 {
                shortfalls.push((bin.shortfall_rank, position));
            }
            bins.push(BinHit {
                characteristic: characteristic.name.clone(),
                bin: bin.label.clone(),
                points: bin.points,
            });
            if keep_values {
                values.push(value);
            }
        }
        // Largest shortfall first; ties keep declaration order.
        shortfalls.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut ranked_reasons: Vec<Arc<str>> = Vec::with_capacity(shortfalls.len());
        for (_, position) in shortfalls {
            let reason = &self.characteristics[position].reason;
            if !ranked_reasons.contains(reason) {
                ranked_reasons.push(reason.clone());
            }
        }
        let probability_of_default = self
            .calibration
            .map(|c| c.probability_of_default(score.to_f64().unwrap_or(0.0)));
        Ok(ScorecardResult {
            score,
            probability_of_default,
            bins,
            ranked_reasons,
            values,
        })
    }
}

impl Characteristic {
    fn bin_for(&self, value: &Value) -> Option<&Bin> {
        let kind = value.kind();
        let found = self.bins.iter().find(|bin| match (&bin.test, kind) {
            (BinTest::Missing, ValueRef::Null) => true,
            (BinTest::Range(interval), ValueRef::Number(x)) => interval.contains(x),
            (BinTest::Values(values), _) => values.iter().any(|c| constant_equals(c, kind)),
            _ => false,
        });
        found.or_else(|| {
            self.bins
                .iter()
                .find(|bin| matches!(bin.test, BinTest::Else))
        })
    }
}

fn constant_equals(constant: &Constant, value: ValueRef<'_>) -> bool {
    match (constant, value) {
        (Constant::Number(a), ValueRef::Number(b)) => *a == b,
        (Constant::String(a), ValueRef::String(b)) => a.as_ref() == b,
        (Constant::Bool(a), ValueRef::Bool(b)) => *a == b,
        _ => false,
    }
}

step_kind!(Scorecard, key: "scorecard", raw: RawScorecard, compile: scorecard, evaluate: scorecard);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortfall_ranks_order_bins_by_points_lost_across_characteristics() {
        let lists = NamedLists::default();
        let mut compiler = credence_expr::ExprCompiler::new(&lists);
        let mut characteristic = |points: &[i64]| Characteristic {
            name: "c".into(),
            value: compiler.compile("1").unwrap(),
            reason: "R".into(),
            bins: points
                .iter()
                .map(|p| Bin {
                    test: BinTest::Else,
                    points: Decimal::from(*p),
                    label: "b".into(),
                    shortfall_rank: 0,
                })
                .collect(),
            max_points: Decimal::from(*points.iter().max().unwrap()),
        };
        // Shortfalls 0, 10, 25 and 0, 10, 40: the distinct ones are 0 < 10 < 25 < 40.
        let mut characteristics = [characteristic(&[30, 20, 5]), characteristic(&[40, 30, 0])];
        rank_shortfalls(&mut characteristics);
        let ranks: Vec<Vec<u32>> = characteristics
            .iter()
            .map(|c| c.bins.iter().map(|b| b.shortfall_rank).collect())
            .collect();
        assert_eq!(ranks, [vec![0, 1, 2], vec![0, 1, 3]]);
    }

    #[test]
    fn calibration_doubles_odds_every_pdo_points() {
        let calibration = Calibration::new(600.0, 50.0, 20.0).unwrap();
        let pd_at = |score: f64| calibration.probability_of_default(score);
        assert!((pd_at(600.0) - 1.0 / 51.0).abs() < 1e-12);
        assert!((pd_at(620.0) - 1.0 / 101.0).abs() < 1e-12);
        assert!((pd_at(580.0) - 1.0 / 26.0).abs() < 1e-12);
        assert!(Calibration::new(600.0, 0.0, 20.0).is_err());
        assert!(Calibration::new(600.0, 50.0, -1.0).is_err());
    }
}
