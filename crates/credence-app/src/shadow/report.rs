//! The comparison of a rollout's candidate with the live version over a time window, from the
//! shadow results and the live records: the outcome matrix, swap sets, limit and APR
//! differences, reason-code shifts, and the records that differ — plus every live record of
//! the window that has no twin.

use crate::error::{AppError, ErrorCode};
use credence_store::{DecisionQuery, RolloutRecord, ShadowQuery, Store};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

/// Which comparison to make.
#[derive(Debug, Clone, Default)]
pub struct ShadowReportQuery {
    /// The strategy (product).
    pub strategy: String,
    /// The rollout; `None`: the strategy's newest shadow rollout.
    pub rollout_id: Option<String>,
    /// From this time (default: the rollout's start).
    pub from_ms: Option<i64>,
    /// Before this time (default: the rollout's end, or now).
    pub to_ms: Option<i64>,
    /// How many differing records to list (default 100, at most 1,000).
    pub differing_limit: Option<u32>,
}

/// The outcomes in the order rows and columns of the matrix are given.
pub const OUTCOMES: [&str; 4] = ["approve", "refer", "decline", "error"];

/// What changed between the live version and the candidate.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShadowReport {
    /// The strategy.
    pub strategy: String,
    /// The rollout compared.
    pub rollout_id: String,
    /// Its state (`running`, `promoted`, …).
    pub rollout_state: String,
    /// The live version.
    pub live_version: String,
    /// The candidate version.
    pub candidate_version: String,
    /// The window, from (inclusive).
    pub from_ms: i64,
    /// The window, to (exclusive).
    pub to_ms: i64,
    /// Live decisions of the strategy in the window.
    pub live_decisions: u64,
    /// Of those, the ones with a shadow result.
    pub twins: u64,
    /// Live decisions of the window without a shadow result (dropped, or still queued).
    pub live_without_twin: u64,
    /// Up to 20 of them.
    pub missing_sample: Vec<String>,
    /// Row and column order of `matrix`: approve, refer, decline, error.
    pub outcomes: Vec<String>,
    /// Live outcome (rows) × candidate outcome (columns).
    pub matrix: Vec<Vec<u64>>,
    /// Approved by the candidate, not by the live version.
    pub swap_in: u64,
    /// Approved by the live version, not by the candidate.
    pub swap_out: u64,
    /// Approved by both: how their limits and APRs compare.
    pub both_approved: u64,
    /// Limits of applications both approved.
    pub limit: TermsDiff,
    /// APRs of applications both approved.
    pub apr: TermsDiff,
    /// Reason codes given by each version, most shifted first.
    pub reasons: Vec<ReasonShift>,
    /// Records whose outcome, limit, APR, term or reasons differ.
    pub differing_total: u64,
    /// The first of them, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub differing: Vec<serde_json::Value>,
}

/// How one term compares where both versions approved.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct TermsDiff {
    /// The candidate's is higher.
    pub higher: u64,
    /// The candidate's is lower.
    pub lower: u64,
    /// The same.
    pub same: u64,
    /// Sum over the live decisions (decimal string).
    pub live_total: String,
    /// Sum over the candidate's (decimal string).
    pub candidate_total: String,
    /// Mean of candidate − live (decimal string).
    pub mean_difference: String,
}

/// One reason code's counts under each version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReasonShift {
    /// The code.
    pub code: String,
    /// Decisions the live version gave it to.
    pub live: u64,
    /// Decisions the candidate gave it to.
    pub candidate: u64,
}

#[derive(Default)]
struct TermsTally {
    higher: u64,
    lower: u64,
    same: u64,
    live: Decimal,
    candidate: Decimal,
}

impl TermsTally {
    fn add(&mut self, live: Option<Decimal>, candidate: Option<Decimal>) {
        let (Some(live), Some(candidate)) = (live, candidate) else {
            return;
        };
        match candidate.cmp(&live) {
            std::cmp::Ordering::Greater => self.higher += 1,
            std::cmp::Ordering::Less => self.lower += 1,
            std::cmp::Ordering::Equal => self.same += 1,
        }
        self.live += live;
        self.candidate += candidate;
    }

    fn finish(self) -> TermsDiff {
        let n = self.higher + self.lower + self.same;
        let mean = if n == 0 {
            Decimal::ZERO
        } else {
            ((self.candidate - self.live) / Decimal::from(n)).round_dp(6)
        };
        TermsDiff {
            higher: self.higher,
            lower: self.lower,
            same: self.same,
            live_total: self.live.normalize().to_string(),
            candidate_total: self.candidate.normalize().to_string(),
            mean_difference: mean.normalize().to_string(),
        }
    }
}

fn decimal(value: &serde_json::Value, field: &str) -> Option<Decimal> {
    value
        .get(field)?
        .as_str()
        .and_then(|s| Decimal::from_str(s).ok())
}

fn outcome_index(value: &serde_json::Value) -> usize {
    let outcome = value
        .get("outcome")
        .and_then(|o| o.as_str())
        .unwrap_or("error");
    OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(3)
}

/// Pages read from the store at a time.
const PAGE: u32 = 1_000;

/// Live decisions (and as many twins) one report reads at most: a longer window is refused,
/// rather than held in memory.
pub const MAX_REPORT_DECISIONS: u64 = 1_000_000;

fn window_too_long() -> AppError {
    AppError::new(
        ErrorCode::InvalidParameter,
        format!("the window holds more than {MAX_REPORT_DECISIONS} decisions; narrow it with from and to"),
    )
    .with_details(serde_json::json!({"field": "from"}))
}

/// Makes the comparison.
pub async fn shadow_report(
    store: &dyn Store,
    query: &ShadowReportQuery,
    now_ms: i64,
) -> Result<ShadowReport, AppError> {
    let rollouts = store.rollouts(Some(&query.strategy), 1_000).await?;
    let rollout: RolloutRecord = match &query.rollout_id {
        Some(id) => rollouts.into_iter().find(|r| &r.id == id),
        None => rollouts.into_iter().find(|r| r.mode == "shadow"),
    }
    .ok_or_else(|| {
        AppError::not_found(format!(
            "strategy {} has no {}shadow rollout; start one with credence strategy shadow",
            query.strategy,
            query
                .rollout_id
                .as_ref()
                .map(|id| format!("rollout {id} or "))
                .unwrap_or_default()
        ))
    })?;
    if rollout.mode != "shadow" {
        return Err(AppError::new(
            ErrorCode::InvalidParameter,
            format!(
                "rollout {} is a ramp; a comparison reads a shadow rollout",
                rollout.id
            ),
        )
        .with_details(serde_json::json!({"field": "rollout"})));
    }
    let ended_ms = if rollout.is_running() {
        now_ms + 1
    } else {
        rollout.updated_at_ms + 1
    };
    let from_ms = query
        .from_ms
        .unwrap_or(rollout.started_at_ms)
        .max(rollout.started_at_ms);
    let to_ms = query.to_ms.unwrap_or(ended_ms).min(ended_ms);
    let differing_limit = query.differing_limit.unwrap_or(100).min(1_000) as usize;

    let mut matrix = vec![vec![0u64; OUTCOMES.len()]; OUTCOMES.len()];
    let (mut swap_in, mut swap_out, mut both) = (0, 0, 0);
    let (mut limit, mut apr) = (TermsTally::default(), TermsTally::default());
    let mut reasons: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut differing = Vec::new();
    let mut differing_total = 0u64;
    let mut twin_ids = HashSet::new();
    let mut after = None;
    loop {
        let page = store
            .shadow_results(&ShadowQuery {
                strategy: rollout.strategy.clone(),
                candidate_version: Some(rollout.version.clone()),
                from_ms: Some(from_ms),
                to_ms: Some(to_ms),
                after: after.clone(),
                limit: PAGE,
            })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((last.created_at_ms, last.decision_id.clone()));
        let full = page.len() == PAGE as usize;
        for result in page {
            if result.rollout_id != rollout.id {
                continue;
            }
            let parse =
                |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap_or_default();
            let (live, candidate) = (parse(&result.live), parse(&result.candidate));
            let (l, c) = (outcome_index(&live), outcome_index(&candidate));
            matrix[l][c] += 1;
            match (l == 0, c == 0) {
                (false, true) => swap_in += 1,
                (true, false) => swap_out += 1,
                (true, true) => {
                    both += 1;
                    limit.add(decimal(&live, "limit"), decimal(&candidate, "limit"));
                    apr.add(decimal(&live, "apr"), decimal(&candidate, "apr"));
                }
                _ => {}
            }
            for (side, value) in [(0, &live), (1, &candidate)] {
                for code in value
                    .get("reasons")
                    .and_then(|r| r.as_array())
                    .into_iter()
                    .flatten()
                {
                    if let Some(code) = code.as_str() {
                        let entry = reasons.entry(code.to_string()).or_default();
                        if side == 0 {
                            entry.0 += 1
                        } else {
                            entry.1 += 1
                        }
                    }
                }
            }
            let same = ["outcome", "limit", "apr", "term_months", "reasons"]
                .iter()
                .all(|f| live.get(f) == candidate.get(f));
            if !same {
                differing_total += 1;
                if differing.len() < differing_limit {
                    differing.push(serde_json::json!({
                        "decision_id": result.decision_id, "flow": result.flow,
                        "created_at_ms": result.created_at_ms, "live": live, "candidate": candidate,
                    }));
                }
            }
            twin_ids.insert(result.decision_id);
        }
        if twin_ids.len() as u64 > MAX_REPORT_DECISIONS {
            return Err(window_too_long());
        }
        if !full {
            break;
        }
    }

    // Every live record of the window, to find those without a twin.
    let (mut live_decisions, mut missing, mut missing_sample) = (0u64, 0u64, Vec::new());
    let mut before_seq = None;
    loop {
        let page = store
            .list_decisions(&DecisionQuery {
                strategy: Some(rollout.strategy.clone()),
                strategy_version: Some(rollout.baseline_version.clone()),
                from_ms: Some(from_ms),
                to_ms: Some(to_ms),
                before_seq,
                limit: PAGE,
                ..DecisionQuery::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        before_seq = Some(last.seq);
        let full = page.len() == PAGE as usize;
        if live_decisions > MAX_REPORT_DECISIONS {
            return Err(window_too_long());
        }
        for summary in page {
            live_decisions += 1;
            if !twin_ids.contains(&summary.id) {
                missing += 1;
                if missing_sample.len() < 20 {
                    missing_sample.push(summary.id);
                }
            }
        }
        if !full {
            break;
        }
    }
    let mut reasons: Vec<ReasonShift> = reasons
        .into_iter()
        .map(|(code, (live, candidate))| ReasonShift {
            code,
            live,
            candidate,
        })
        .collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.live.abs_diff(r.candidate)));
    Ok(ShadowReport {
        strategy: rollout.strategy.clone(),
        rollout_id: rollout.id.clone(),
        rollout_state: rollout.state.clone(),
        live_version: rollout.baseline_version.clone(),
        candidate_version: rollout.version.clone(),
        from_ms,
        to_ms,
        live_decisions,
        twins: live_decisions - missing,
        live_without_twin: missing,
        missing_sample,
        outcomes: OUTCOMES.iter().map(|o| o.to_string()).collect(),
        matrix,
        swap_in,
        swap_out,
        both_approved: both,
        limit: limit.finish(),
        apr: apr.finish(),
        reasons,
        differing_total,
        differing,
    })
}
