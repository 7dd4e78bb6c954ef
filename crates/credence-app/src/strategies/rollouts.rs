//! Rollouts of a candidate version on live traffic: start in shadow or on a ramp, promote,
//! abort, resume a halted ramp, and the transitions a ramp's counters call for — each stored
//! with its audit event, then followed by every process through `refresh`.

use super::ramp::{self, RampRequest, Transition};
use super::{audit, LiveRollout, Strategies};
use crate::error::{AppError, ErrorCode};
use credence_store::{RolloutRecord, StrategyState};
use serde::{Deserialize, Serialize};

/// A rollout as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RolloutView {
    /// The rollout's id.
    pub id: String,
    /// The strategy (product).
    pub strategy: String,
    /// The candidate version.
    pub version: String,
    /// The live version when it started.
    pub baseline_version: String,
    /// `shadow` or `ramp`.
    pub mode: String,
    /// `running`, `halted`, `promoted` or `aborted`.
    pub state: String,
    /// The ramp step in force, from 0.
    pub step: i64,
    /// The share of customers the candidate decides for now, in percent (0 in shadow or once halted).
    pub percent: u32,
    /// The declaration (steps, guards), for a ramp.
    #[schema(value_type = Object)]
    pub plan: serde_json::Value,
    /// Who started it, and when.
    pub started_by: String,
    /// When it started.
    pub started_at_ms: i64,
    /// When its state last changed.
    pub updated_at_ms: i64,
    /// Why it is in its state (the breached guard, who promoted or aborted it).
    #[schema(value_type = Object)]
    pub note: serde_json::Value,
    /// What each version decided on this node since the ramp began: `live`, `candidate`.
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
}

/// Starting a shadow rollout: nothing to declare beyond the version.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShadowRequest {}

fn rollout_id(now_ms: i64) -> Result<String, AppError> {
    let mut random = [0u8; 6];
    getrandom::fill(&mut random)
        .map_err(|e| AppError::new(ErrorCode::Internal, format!("no randomness: {e}")))?;
    Ok(format!("ro_{:012x}{}", now_ms.max(0), hex::encode(random)))
}

fn no_rollout(name: &str) -> AppError {
    AppError::new(
        ErrorCode::InvalidState,
        format!("strategy {name} has no rollout running or halted; start one with POST /v1/strategies/{{version}}/shadow or /ramp"),
    )
}

impl Strategies {
    /// Runs an approved version of an active strategy in shadow: every live decision is also
    /// evaluated with it, stored beside the live record, never answered.
    pub async fn start_shadow(
        &self,
        version: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<RolloutView, AppError> {
        self.start(version, "shadow", String::from("{}"), actor, now_ms)
            .await
    }

    /// Puts an approved version of an active strategy on a ramp: a growing share of customers
    /// is decided with it, under guard rails that halt the ramp when breached.
    pub async fn start_ramp(
        &self,
        version: &str,
        request: RampRequest,
        actor: &str,
        now_ms: i64,
    ) -> Result<RolloutView, AppError> {
        let plan = request.validate()?;
        let plan = serde_json::to_string(&plan).map_err(|e| {
            AppError::new(ErrorCode::Internal, format!("cannot store the plan: {e}"))
        })?;
        self.start(version, "ramp", plan, actor, now_ms).await
    }

    async fn start(
        &self,
        version: &str,
        mode: &str,
        plan: String,
        actor: &str,
        now_ms: i64,
    ) -> Result<RolloutView, AppError> {
        let record = self.record(version).await?;
        if record.state != StrategyState::Approved {
            return Err(AppError::new(
                ErrorCode::InvalidState,
                format!("version {version} is a draft; it must be approved by a second person before it can run on live traffic"),
            ));
        }
        let live = self.active_named(&record.name).ok_or_else(|| {
            AppError::new(
                ErrorCode::InvalidState,
                format!(
                    "strategy {} has no active version to compare with; activate one first",
                    record.name
                ),
            )
        })?;
        if live.version == version {
            return Err(AppError::new(
                ErrorCode::InvalidState,
                format!(
                    "version {version} is already the active version of {}",
                    record.name
                ),
            ));
        }
        // Compiled before it is stored, so that a stored rollout is always servable.
        self.compiled(version).await?;
        let rollout = RolloutRecord {
            id: rollout_id(now_ms)?,
            strategy: record.name.clone(),
            version: version.to_string(),
            baseline_version: live.version.clone(),
            mode: mode.to_string(),
            state: "running".into(),
            plan,
            step: 0,
            step_started_at_ms: now_ms,
            started_by: actor.to_string(),
            started_at_ms: now_ms,
            updated_at_ms: now_ms,
            note: "{}".into(),
            revision: 1,
        };
        self.store
            .save_rollout(
                rollout.clone(),
                None,
                audit(
                    actor,
                    &format!("strategy.{mode}.start"),
                    version,
                    now_ms,
                    serde_json::json!({"strategy": record.name, "rollout": rollout.id,
                        "live": live.version, "plan": serde_json::from_str::<serde_json::Value>(&rollout.plan).unwrap_or_default()}),
                ),
            )
            .await?;
        self.rebuild(false).await?;
        self.rollout_view(&rollout)
    }

    /// The newest rollouts of a strategy, newest first.
    pub async fn rollouts(&self, name: &str, limit: u32) -> Result<Vec<RolloutView>, AppError> {
        self.store
            .rollouts(Some(name), limit)
            .await?
            .iter()
            .map(|r| self.rollout_view(r))
            .collect()
    }

    /// The rollout of a strategy that is running or halted (the one promote and abort act on).
    async fn current_rollout(&self, name: &str) -> Result<RolloutRecord, AppError> {
        self.store
            .rollouts(Some(name), 1)
            .await?
            .into_iter()
            .next()
            .filter(|r| r.state == "running" || r.state == "halted")
            .ok_or_else(|| no_rollout(name))
    }

    /// Makes the candidate of the strategy's current rollout its active version now.
    pub async fn promote(
        &self,
        name: &str,
        actor: &str,
        now_ms: i64,
        why: &str,
    ) -> Result<RolloutView, AppError> {
        self.end_current(name, "promoted", actor, now_ms, why).await
    }

    /// Stops the strategy's current rollout; the live version decides for everyone.
    pub async fn abort(
        &self,
        name: &str,
        actor: &str,
        now_ms: i64,
        why: &str,
    ) -> Result<RolloutView, AppError> {
        self.end_current(name, "aborted", actor, now_ms, why).await
    }

    /// Ends the strategy's current rollout by hand, `promoted` or `aborted`.
    async fn end_current(
        &self,
        name: &str,
        state: &str,
        actor: &str,
        now_ms: i64,
        why: &str,
    ) -> Result<RolloutView, AppError> {
        let record = self.current_rollout(name).await?;
        let note = serde_json::json!({"by": actor, "why": why});
        self.finish(record, state, actor, now_ms, note).await
    }

    /// Resumes a halted ramp at the step it halted in; its counts start again.
    pub async fn resume(
        &self,
        name: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<RolloutView, AppError> {
        let record = self.current_rollout(name).await?;
        if record.state != "halted" {
            return Err(AppError::new(
                ErrorCode::InvalidState,
                format!(
                    "rollout {} of {name} is {}, not halted",
                    record.id, record.state
                ),
            ));
        }
        if let Ok(mut counters) = self.counters.lock() {
            counters.remove(&record.id);
        }
        let expected = record.revision;
        let resumed = RolloutRecord {
            state: "running".into(),
            step_started_at_ms: now_ms,
            updated_at_ms: now_ms,
            note: serde_json::json!({"resumed_by": actor}).to_string(),
            revision: expected + 1,
            ..record
        };
        self.save(resumed, expected, actor, "strategy.ramp.resume", now_ms)
            .await
    }

    async fn finish(
        &self,
        record: RolloutRecord,
        state: &str,
        actor: &str,
        now_ms: i64,
        note: serde_json::Value,
    ) -> Result<RolloutView, AppError> {
        if state == "promoted" {
            // The activation first: a crash before the rollout's own change leaves a running
            // rollout whose candidate is already live, which refresh ignores.
            self.compiled(&record.version).await?;
            self.store
                .record_activation(
                    &record.version,
                    actor,
                    "promote",
                    now_ms,
                    audit(
                        actor,
                        "strategy.promote",
                        &record.version,
                        now_ms,
                        serde_json::json!({"strategy": record.strategy, "rollout": record.id,
                            "previous": record.baseline_version}),
                    ),
                )
                .await?;
        }
        let expected = record.revision;
        let action = format!(
            "strategy.{}.{}",
            record.mode,
            if state == "promoted" {
                "promote"
            } else {
                "abort"
            }
        );
        let finished = RolloutRecord {
            state: state.to_string(),
            updated_at_ms: now_ms,
            note: note.to_string(),
            revision: expected + 1,
            ..record
        };
        self.save(finished, expected, actor, &action, now_ms).await
    }

    async fn save(
        &self,
        record: RolloutRecord,
        expected: i64,
        actor: &str,
        action: &str,
        now_ms: i64,
    ) -> Result<RolloutView, AppError> {
        let detail = serde_json::json!({
            "strategy": record.strategy, "rollout": record.id, "state": record.state,
            "step": record.step, "note": serde_json::from_str::<serde_json::Value>(&record.note).unwrap_or_default(),
        });
        self.store
            .save_rollout(
                record.clone(),
                Some(expected),
                audit(actor, action, &record.version, now_ms, detail),
            )
            .await?;
        self.rebuild(false).await?;
        self.rollout_view(&record)
    }

    /// Stores what a ramp's counters called for (halt, next step, promotion); a rollout
    /// another node moved first is left as that node stored it.
    pub async fn apply_transition(
        &self,
        rollout: &LiveRollout,
        transition: Transition,
        now_ms: i64,
    ) -> Result<(), AppError> {
        let record = rollout.record.clone();
        let expected = record.revision;
        let result = match transition {
            Transition::Halt { detail } => {
                let halted = RolloutRecord {
                    state: "halted".into(),
                    updated_at_ms: now_ms,
                    note: serde_json::json!({"halted_by": "guard", "breach": detail}).to_string(),
                    revision: expected + 1,
                    ..record
                };
                self.save(halted, expected, "system", "strategy.ramp.halt", now_ms)
                    .await
            }
            Transition::Advance => {
                let step = record.step + 1;
                let next = RolloutRecord {
                    step,
                    step_started_at_ms: now_ms,
                    updated_at_ms: now_ms,
                    revision: expected + 1,
                    ..record
                };
                self.save(next, expected, "system", "strategy.ramp.step", now_ms)
                    .await
            }
            Transition::Promote => {
                self.finish(
                    record,
                    "promoted",
                    "system",
                    now_ms,
                    serde_json::json!({"by": "system", "why": "the ramp's last step met its minimums"}),
                )
                .await
            }
        };
        rollout
            .counters
            .transitioning
            .store(false, std::sync::atomic::Ordering::Release);
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code == ErrorCode::InvalidState => {
                // Moved by another node or person first: follow what is stored.
                self.refresh().await.map(|_| ())
            }
            Err(e) => Err(e),
        }
    }

    fn rollout_view(&self, record: &RolloutRecord) -> Result<RolloutView, AppError> {
        let plan: serde_json::Value = serde_json::from_str(&record.plan).unwrap_or_default();
        let live = self
            .active_named(&record.strategy)
            .and_then(|a| a.rollout.clone())
            .filter(|r| r.record.id == record.id);
        let percent = match (&live, record.state.as_str()) {
            (Some(live), "running") => live.percent(),
            _ => 0,
        };
        let counts = match &live {
            Some(live) => {
                let [l, c] = live.counters.snapshot();
                serde_json::json!({
                    "live": l, "candidate": c,
                    "candidate_p99_latency_ms": c.p99_latency_ms(),
                    "step_decisions": live.counters.step_decisions(),
                })
            }
            None => serde_json::Value::Null,
        };
        Ok(RolloutView {
            id: record.id.clone(),
            strategy: record.strategy.clone(),
            version: record.version.clone(),
            baseline_version: record.baseline_version.clone(),
            mode: record.mode.clone(),
            state: record.state.clone(),
            step: record.step,
            percent,
            plan,
            started_by: record.started_by.clone(),
            started_at_ms: record.started_at_ms,
            updated_at_ms: record.updated_at_ms,
            note: serde_json::from_str(&record.note).unwrap_or_default(),
            counts,
        })
    }
}

/// Judges a live ramp after a decision: the transition its counters call for, once per node
/// at a time (`None` while this node is already storing one).
pub fn due_transition(rollout: &LiveRollout, now_ms: i64) -> Option<Transition> {
    let plan = rollout.ramp.as_ref()?;
    if !rollout.record.is_running() {
        return None;
    }
    let counts = rollout.counters.snapshot();
    let step = usize::try_from(rollout.record.step).ok()?;
    let transition = ramp::verdict(
        plan,
        &counts,
        step,
        rollout.counters.step_decisions(),
        rollout.record.step_started_at_ms,
        now_ms,
    )?;
    let busy = rollout
        .counters
        .transitioning
        .swap(true, std::sync::atomic::Ordering::AcqRel);
    (!busy).then_some(transition)
}
