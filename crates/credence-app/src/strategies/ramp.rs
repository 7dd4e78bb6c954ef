//! Ramped rollouts as plain logic: the declaration (raw and validated), the routing of a customer to a version, the counters of each version, and the verdict that halts, advances or promotes a ramp.
//!
//! No I/O: the lifecycle in `rollouts.rs` stores what this decides.

use crate::error::AppError;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// A ramp as a caller declares it (`POST /v1/strategies/{version}/ramp`).
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RampRequest {
    /// The steps: a share of customers in percent (`[5, 25, 50, 100]`), or objects with their
    /// own minimums. The last step must be 100.
    #[schema(value_type = Vec<Object>)]
    pub ramp: Vec<RampStepSpec>,
    /// Decisions of the strategy a step sees at least before the next (default 1,000).
    #[serde(default)]
    pub step_min_decisions: Option<u64>,
    /// Seconds a step lasts at least (default 0).
    #[serde(default)]
    pub step_min_seconds: Option<u64>,
    /// Guard rails: any breached halts the ramp and sends every customer back to the live
    /// version.
    #[serde(default)]
    pub guards: Vec<Guard>,
}

/// One step as declared: a percentage, or a percentage with its own minimums.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum RampStepSpec {
    /// Just the share, in percent.
    Percent(u32),
    /// The share with minimums of its own.
    Step {
        /// The share of customers, in percent.
        percent: u32,
        /// Decisions the step sees at least.
        #[serde(default)]
        min_decisions: Option<u64>,
        /// Seconds the step lasts at least.
        #[serde(default)]
        min_seconds: Option<u64>,
    },
}

/// A guard rail on the candidate, compared with the live version over the same period.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// What is measured.
    pub metric: GuardMetric,
    /// For rates: the most the candidate's rate may differ from the live version's, in
    /// percentage points, either way.
    #[serde(default)]
    pub max_diff_points: Option<f64>,
    /// For `error_rate` (a fraction) and `p99_latency_ms`: the most the candidate may reach.
    #[serde(default)]
    pub max: Option<f64>,
    /// Decisions each compared version must have made before the guard is judged (default 100).
    #[serde(default)]
    pub min_decisions: Option<u64>,
}

/// What a guard measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GuardMetric {
    /// Share of approvals.
    ApprovalRate,
    /// Share of declines.
    DeclineRate,
    /// Share of referrals.
    ReferRate,
    /// Share of the candidate's evaluations that failed (the live version then decided).
    ErrorRate,
    /// The candidate's 99th percentile of decision latency, in milliseconds.
    P99LatencyMs,
}

impl GuardMetric {
    fn name(self) -> &'static str {
        match self {
            GuardMetric::ApprovalRate => "approval_rate",
            GuardMetric::DeclineRate => "decline_rate",
            GuardMetric::ReferRate => "refer_rate",
            GuardMetric::ErrorRate => "error_rate",
            GuardMetric::P99LatencyMs => "p99_latency_ms",
        }
    }
}

/// A validated ramp: what is stored as the rollout's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RampPlan {
    /// The steps in order; the last is 100 %.
    pub steps: Vec<RampStep>,
    /// The guard rails.
    pub guards: Vec<Guard>,
}

/// One validated step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RampStep {
    /// The share of customers decided with the candidate, in percent.
    pub percent: u32,
    /// Decisions of the strategy the step sees at least.
    pub min_decisions: u64,
    /// Seconds the step lasts at least.
    pub min_seconds: u64,
}

/// Default decisions per step.
pub const DEFAULT_STEP_MIN_DECISIONS: u64 = 1_000;
/// Default decisions a guard waits for.
pub const DEFAULT_GUARD_MIN_DECISIONS: u64 = 100;
/// Most steps a ramp may have.
pub const MAX_STEPS: usize = 20;
/// Most guards a ramp may have.
pub const MAX_GUARDS: usize = 20;

impl RampRequest {
    /// Validates the declaration, naming the field to fix.
    pub fn validate(self) -> Result<RampPlan, AppError> {
        if self.ramp.is_empty() || self.ramp.len() > MAX_STEPS {
            return Err(AppError::parameter(
                "ramp",
                format!(
                    "give 1–{MAX_STEPS} steps in percent, ending with 100, e.g. [5, 25, 50, 100]"
                ),
            ));
        }
        let default_decisions = self
            .step_min_decisions
            .unwrap_or(DEFAULT_STEP_MIN_DECISIONS);
        let default_seconds = self.step_min_seconds.unwrap_or(0);
        let mut steps = Vec::with_capacity(self.ramp.len());
        let mut previous = 0;
        for (i, spec) in self.ramp.into_iter().enumerate() {
            let step = match spec {
                RampStepSpec::Percent(percent) => RampStep {
                    percent,
                    min_decisions: default_decisions,
                    min_seconds: default_seconds,
                },
                RampStepSpec::Step {
                    percent,
                    min_decisions,
                    min_seconds,
                } => RampStep {
                    percent,
                    min_decisions: min_decisions.unwrap_or(default_decisions),
                    min_seconds: min_seconds.unwrap_or(default_seconds),
                },
            };
            if step.percent == 0 || step.percent > 100 || step.percent <= previous {
                return Err(AppError::parameter(
                    &format!("ramp[{i}]"),
                    format!(
                        "{} is not a share after {previous}: steps rise from 1 to 100 percent",
                        step.percent
                    ),
                ));
            }
            previous = step.percent;
            steps.push(step);
        }
        if previous != 100 {
            return Err(AppError::parameter(
                "ramp",
                "the last step must be 100 (the candidate then decides for everyone and is promoted)",
            ));
        }
        if self.guards.len() > MAX_GUARDS {
            return Err(AppError::parameter(
                "guards",
                format!("give at most {MAX_GUARDS} guards"),
            ));
        }
        for (i, guard) in self.guards.iter().enumerate() {
            let field = format!("guards[{i}]");
            let rate = matches!(
                guard.metric,
                GuardMetric::ApprovalRate | GuardMetric::DeclineRate | GuardMetric::ReferRate
            );
            let ok = if rate {
                guard
                    .max_diff_points
                    .is_some_and(|p| p.is_finite() && p >= 0.0)
                    && guard.max.is_none()
            } else {
                guard.max.is_some_and(|m| m.is_finite() && m >= 0.0)
                    && guard.max_diff_points.is_none()
            };
            if !ok {
                let hint = if rate {
                    "a rate guard takes max_diff_points (percentage points either way), e.g. {\"metric\": \"approval_rate\", \"max_diff_points\": 3}"
                } else {
                    "error_rate and p99_latency_ms take max, e.g. {\"metric\": \"error_rate\", \"max\": 0.01}"
                };
                return Err(AppError::parameter(&field, hint));
            }
        }
        Ok(RampPlan {
            steps,
            guards: self.guards,
        })
    }
}

/// Which version decides for a customer during a ramp step: the candidate when the customer's
/// bucket (the experiments' stable hash, salted with the rollout id) is below the step's share.
/// A customer's bucket never changes, so within a step a customer stays on one version, and a
/// rising share only moves customers from the live version to the candidate.
pub fn routes_to_candidate(rollout_id: &str, customer_key: &str, percent: u32) -> bool {
    credence_engine::experiment_bucket(rollout_id, customer_key) < percent.min(100) * 100
}

/// Log₂ buckets of latency in microseconds: bucket `b` holds `[2^b, 2^(b+1))`.
const LATENCY_BUCKETS: usize = 40;

/// What one version decided during a ramp.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ArmCounts {
    /// Decisions made (for the candidate, failed evaluations included).
    pub decisions: u64,
    /// Approvals.
    pub approve: u64,
    /// Declines.
    pub decline: u64,
    /// Referrals.
    pub refer: u64,
    /// Failed evaluations (the live version decided instead).
    pub errors: u64,
    #[serde(skip)]
    latency: Vec<u64>,
}

impl ArmCounts {
    fn rate(&self, count: u64) -> f64 {
        if self.decisions == 0 {
            0.0
        } else {
            count as f64 / self.decisions as f64
        }
    }

    /// The 99th percentile latency in milliseconds (the upper edge of its bucket).
    pub fn p99_latency_ms(&self) -> f64 {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = (total as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        for (bucket, count) in self.latency.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return (1u64 << (bucket + 1)) as f64 / 1000.0;
            }
        }
        0.0
    }
}

/// The two versions' counts of one ramp, kept by each node for the traffic it serves, and
/// the decisions of the step in force.
#[derive(Default)]
pub struct RampCounters {
    arms: Mutex<[ArmCounts; 2]>,
    step_decisions: AtomicU64,
    /// Set while a transition this node asked for is being stored.
    pub(crate) transitioning: AtomicBool,
}

/// Which version an outcome is counted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// The live version.
    Live = 0,
    /// The candidate.
    Candidate = 1,
}

impl RampCounters {
    /// Counts one decision (`outcome` `None`: the candidate's evaluation failed).
    pub fn observe(&self, arm: Arm, outcome: Option<&str>, latency_us: u64) {
        self.step_decisions.fetch_add(1, Ordering::Relaxed);
        let Ok(mut arms) = self.arms.lock() else {
            return;
        };
        let counts = &mut arms[arm as usize];
        counts.decisions += 1;
        match outcome {
            Some("approve") => counts.approve += 1,
            Some("decline") => counts.decline += 1,
            Some("refer") => counts.refer += 1,
            Some(_) => {}
            None => counts.errors += 1,
        }
        if counts.latency.is_empty() {
            counts.latency = vec![0; LATENCY_BUCKETS];
        }
        let bucket = (64 - latency_us.max(1).leading_zeros() as usize - 1).min(LATENCY_BUCKETS - 1);
        counts.latency[bucket] += 1;
    }

    /// Both versions' counts now: `[live, candidate]`.
    pub fn snapshot(&self) -> [ArmCounts; 2] {
        self.arms.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Decisions of the strategy in the step in force.
    pub fn step_decisions(&self) -> u64 {
        self.step_decisions.load(Ordering::Relaxed)
    }

    /// A new step begins: its decisions count from zero.
    pub fn start_step(&self) {
        self.step_decisions.store(0, Ordering::Relaxed);
    }
}

/// What a ramp's counters call for.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// A guard is breached: halt and send everyone back to the live version.
    Halt {
        /// Which guard, what was measured, on how many decisions.
        detail: serde_json::Value,
    },
    /// The step's minimums are met: go to the next step.
    Advance,
    /// The last step's minimums are met: the candidate becomes the active version.
    Promote,
}

/// Judges a ramp at step `step` (begun at `step_started_at_ms`) at `now_ms`: a breached guard
/// first, then the step's minimums.
pub fn verdict(
    plan: &RampPlan,
    counts: &[ArmCounts; 2],
    step: usize,
    step_decisions: u64,
    step_started_at_ms: i64,
    now_ms: i64,
) -> Option<Transition> {
    let [live, candidate] = counts;
    for guard in &plan.guards {
        let minimum = guard.min_decisions.unwrap_or(DEFAULT_GUARD_MIN_DECISIONS);
        let (measured, compared_with, limit, breached) = match guard.metric {
            GuardMetric::ApprovalRate | GuardMetric::DeclineRate | GuardMetric::ReferRate => {
                if live.decisions < minimum || candidate.decisions < minimum {
                    continue;
                }
                let pick = |c: &ArmCounts| match guard.metric {
                    GuardMetric::ApprovalRate => c.rate(c.approve),
                    GuardMetric::DeclineRate => c.rate(c.decline),
                    _ => c.rate(c.refer),
                };
                let (ours, theirs) = (pick(candidate) * 100.0, pick(live) * 100.0);
                let limit = guard.max_diff_points.unwrap_or(0.0);
                (ours, Some(theirs), limit, (ours - theirs).abs() > limit)
            }
            GuardMetric::ErrorRate => {
                if candidate.decisions < minimum {
                    continue;
                }
                let rate = candidate.rate(candidate.errors);
                let limit = guard.max.unwrap_or(0.0);
                (rate, None, limit, rate > limit)
            }
            GuardMetric::P99LatencyMs => {
                if candidate.decisions < minimum {
                    continue;
                }
                let p99 = candidate.p99_latency_ms();
                let limit = guard.max.unwrap_or(0.0);
                (p99, None, limit, p99 > limit)
            }
        };
        if breached {
            let round = |x: f64| (x * 1000.0).round() / 1000.0;
            return Some(Transition::Halt {
                detail: serde_json::json!({
                    "guard": guard.metric.name(),
                    "candidate": round(measured),
                    "live": compared_with.map(round),
                    "limit": limit,
                    "candidate_decisions": candidate.decisions,
                    "live_decisions": live.decisions,
                }),
            });
        }
    }
    let current = plan.steps.get(step)?;
    let long_enough = now_ms.saturating_sub(step_started_at_ms)
        >= i64::try_from(current.min_seconds.saturating_mul(1000)).unwrap_or(i64::MAX);
    if step_decisions >= current.min_decisions && long_enough {
        return Some(if step + 1 >= plan.steps.len() {
            Transition::Promote
        } else {
            Transition::Advance
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(json: serde_json::Value) -> Result<RampPlan, AppError> {
        serde_json::from_value::<RampRequest>(json)
            .unwrap()
            .validate()
    }

    #[test]
    fn declarations_are_validated_naming_the_field() {
        let cases = [
            (serde_json::json!({"ramp": [5, 25, 50, 100]}), None),
            (
                serde_json::json!({"ramp": [{"percent": 10, "min_decisions": 5}, 100]}),
                None,
            ),
            (serde_json::json!({"ramp": [5, 50]}), Some("ramp")),
            (serde_json::json!({"ramp": [50, 25, 100]}), Some("ramp[1]")),
            (serde_json::json!({"ramp": [0, 100]}), Some("ramp[0]")),
            (serde_json::json!({"ramp": []}), Some("ramp")),
            (
                serde_json::json!({"ramp": [100], "guards": [{"metric": "approval_rate", "max": 3}]}),
                Some("guards[0]"),
            ),
            (
                serde_json::json!({"ramp": [100], "guards": [{"metric": "error_rate", "max_diff_points": 3}]}),
                Some("guards[0]"),
            ),
        ];
        for (json, field) in cases {
            match (plan(json.clone()), field) {
                (Ok(_), None) => {}
                (Err(e), Some(field)) => assert_eq!(e.details["field"], field, "{json}"),
                (other, _) => panic!("{json}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_customer_stays_on_one_version_and_rising_shares_only_add_customers() {
        for customer in 0..2_000 {
            let key = format!("cust-{customer}");
            let mut on_candidate = false;
            for percent in [5, 25, 50, 100] {
                let now = routes_to_candidate("ro_1", &key, percent);
                assert_eq!(now, routes_to_candidate("ro_1", &key, percent));
                assert!(now || !on_candidate, "{key} went back at {percent}%");
                on_candidate = now;
            }
            assert!(on_candidate);
        }
        let share = (0..10_000)
            .filter(|c| routes_to_candidate("ro_1", &format!("c{c}"), 25))
            .count();
        assert!((2_200..2_800).contains(&share), "{share}");
    }

    fn counts(decisions: u64, approve: u64) -> ArmCounts {
        ArmCounts {
            decisions,
            approve,
            decline: decisions - approve,
            ..ArmCounts::default()
        }
    }

    #[test]
    fn a_breached_guard_halts_once_both_versions_have_their_minimum() {
        let plan = plan(
            serde_json::json!({"ramp": [50, 100], "step_min_decisions": 10_000,
            "guards": [{"metric": "approval_rate", "max_diff_points": 3, "min_decisions": 100}]}),
        )
        .unwrap();
        // Ten points apart, but the candidate has too few decisions yet.
        assert_eq!(
            verdict(&plan, &[counts(200, 140), counts(99, 59)], 0, 299, 0, 0),
            None
        );
        let halted = verdict(&plan, &[counts(200, 140), counts(100, 60)], 0, 300, 0, 0);
        match halted {
            Some(Transition::Halt { detail }) => {
                assert_eq!(detail["guard"], "approval_rate");
                assert_eq!(detail["candidate"], 60.0);
                assert_eq!(detail["live"], 70.0);
            }
            other => panic!("{other:?}"),
        }
        // Within the guard: nothing to do until the step's minimum.
        assert_eq!(
            verdict(&plan, &[counts(200, 140), counts(100, 68)], 0, 300, 0, 0),
            None
        );
    }

    #[test]
    fn steps_advance_on_their_minimums_and_the_last_promotes() {
        let plan = plan(
            serde_json::json!({"ramp": [{"percent": 5, "min_seconds": 60}, 100],
            "step_min_decisions": 10}),
        )
        .unwrap();
        let none = [ArmCounts::default(), ArmCounts::default()];
        assert_eq!(verdict(&plan, &none, 0, 10, 0, 59_999), None);
        assert_eq!(verdict(&plan, &none, 0, 9, 0, 60_000), None);
        assert_eq!(
            verdict(&plan, &none, 0, 10, 0, 60_000),
            Some(Transition::Advance)
        );
        assert_eq!(
            verdict(&plan, &none, 1, 10, 0, 0),
            Some(Transition::Promote)
        );
    }

    #[test]
    fn p99_is_the_upper_edge_of_its_bucket() {
        let counters = RampCounters::default();
        for _ in 0..98 {
            counters.observe(Arm::Candidate, Some("approve"), 100);
        }
        counters.observe(Arm::Candidate, Some("approve"), 5_000);
        counters.observe(Arm::Candidate, None, 5_000);
        let [_, candidate] = counters.snapshot();
        assert_eq!(candidate.errors, 1);
        assert_eq!(candidate.p99_latency_ms(), 8.192);
    }
}
