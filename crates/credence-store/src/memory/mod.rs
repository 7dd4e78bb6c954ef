//! An in-memory store: every aggregate's contract kept in maps behind one lock, for in-process tests and tools that need no durability.
//!
//! It keeps the same rules as [`crate::SqliteStore`] — the store conformance suite
//! (`tests/conformance.rs`) runs the same tests against both: decisions form one hash chain
//! and a reused idempotency key is refused; a write that fails changes nothing (multi-row writes
//! work on a copy that replaces the state only when the whole write succeeds); lists come in
//! the same orders. Nothing survives the process, so an "append" is durable only in the sense
//! that every later read sees it.

use crate::chain::{record_hash, ChainReport, ChainVerifier, GENESIS_HASH};
use crate::error::StoreError;
use crate::records::*;
use crate::{AccessStore, AuditLog, CaseStore, DecisionLog, StrategyStore};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

mod accounts;
mod jobs;
mod outbox;

/// The in-memory store. Cheap to create; not shared between processes.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default, Clone)]
struct State {
    /// The decision log in `seq` order (`seq` = index + 1).
    decisions: Vec<StoredDecision>,
    strategies: BTreeMap<String, (StrategyRecord, Vec<u8>)>,
    activations: Vec<Activation>,
    rollouts: Vec<RolloutRecord>,
    /// Shadow results by (decision id, candidate version).
    shadow: BTreeMap<(String, String), ShadowRecord>,
    keys: BTreeMap<String, ApiKeyRecord>,
    users: BTreeMap<String, UserRecord>,
    sessions: BTreeMap<String, SessionRecord>,
    audit: Vec<AuditEvent>,
    cases: BTreeMap<String, CaseRecord>,
    accounts: BTreeMap<String, AccountRecord>,
    /// Events by (account id, event id).
    account_events: BTreeMap<(String, String), AccountEventRecord>,
    provider_answers: BTreeMap<(String, String), ProviderAnswerRecord>,
    webhooks: BTreeMap<String, WebhookRecord>,
    deliveries: BTreeMap<i64, Delivery>,
    /// Batch-job partitions by (job id, partition number).
    partitions: BTreeMap<(String, i64), jobs::Partition>,
}

#[derive(Clone)]
struct Delivery {
    webhook_id: String,
    event: String,
    body: String,
    attempts: i64,
    next_attempt_ms: Option<i64>,
    delivered_at_ms: Option<i64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-done write (writes replace the
        // state whole or change nothing), so a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a multi-row write on a copy of the state, keeping it only if the write succeeds.
    fn transaction<T>(
        &self,
        write: impl FnOnce(&mut State) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut state = self.state();
        let mut copy = state.clone();
        let result = write(&mut copy)?;
        *state = copy;
        Ok(result)
    }
}

impl State {
    fn audit(&mut self, event: NewAuditEvent) {
        let seq = self.audit.last().map_or(0, |e| e.seq) + 1;
        self.audit.push(AuditEvent {
            seq,
            at_ms: event.at_ms,
            actor: event.actor,
            action: event.action,
            subject: event.subject,
            detail: event.detail,
        });
    }

    fn insert_events(&mut self, events: &[AccountEventRecord]) -> Result<(), StoreError> {
        for event in events {
            let key = (event.account_id.clone(), event.event_id.clone());
            if self.account_events.contains_key(&key) {
                return Err(StoreError::Conflict {
                    what: format!("event {} of account {}", event.event_id, event.account_id),
                });
            }
            self.account_events.insert(key, event.clone());
        }
        Ok(())
    }

    fn insert_account(&mut self, account: &AccountRecord, what: String) -> Result<(), StoreError> {
        let taken = self.accounts.contains_key(&account.id)
            || self
                .accounts
                .values()
                .any(|a| a.decision_id == account.decision_id);
        if taken {
            return Err(StoreError::Conflict { what });
        }
        self.accounts.insert(account.id.clone(), account.clone());
        Ok(())
    }
}

#[async_trait::async_trait]
impl DecisionLog for MemoryStore {
    async fn append_decision(&self, decision: NewDecision) -> Result<AppendReceipt, StoreError> {
        let mut state = self.state();
        if let Some(key) = &decision.idempotency_key {
            if state
                .decisions
                .iter()
                .any(|d| d.record.idempotency_key.as_ref() == Some(key))
            {
                return Err(StoreError::Conflict {
                    what: format!("a decision with idempotency key {key}"),
                });
            }
        }
        let (seq, prev_hash) = state
            .decisions
            .last()
            .map_or((1, GENESIS_HASH.to_string()), |d| {
                (d.seq + 1, d.hash.clone())
            });
        let hash = record_hash(seq, &prev_hash, &decision);
        state.decisions.push(StoredDecision {
            seq,
            record: decision,
            prev_hash,
            hash: hash.clone(),
        });
        Ok(AppendReceipt { seq, hash })
    }

    async fn decision(&self, id: &str) -> Result<Option<StoredDecision>, StoreError> {
        Ok(self
            .state()
            .decisions
            .iter()
            .find(|d| d.record.id == id)
            .cloned())
    }

    async fn decision_by_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<StoredDecision>, StoreError> {
        Ok(self
            .state()
            .decisions
            .iter()
            .find(|d| d.record.idempotency_key.as_deref() == Some(key))
            .cloned())
    }

    async fn list_decisions(
        &self,
        query: &DecisionQuery,
    ) -> Result<Vec<DecisionSummary>, StoreError> {
        let state = self.state();
        Ok(state
            .decisions
            .iter()
            .rev()
            .filter(|s| query.matches(s))
            .take(query.limit.max(1) as usize)
            .map(DecisionSummary::of)
            .collect())
    }

    async fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        let state = self.state();
        let mut verifier = ChainVerifier::with_checkpoint(None);
        for d in &state.decisions {
            if !verifier.push(d.seq, &d.record, &d.prev_hash, &d.hash) {
                break;
            }
        }
        Ok(verifier.finish())
    }
}

#[async_trait::async_trait]
impl StrategyStore for MemoryStore {
    async fn insert_strategy(
        &self,
        record: StrategyRecord,
        package: Vec<u8>,
        audit: NewAuditEvent,
    ) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.strategies.contains_key(&record.version) {
            return Ok(false);
        }
        state
            .strategies
            .insert(record.version.clone(), (record, package));
        state.audit(audit);
        Ok(true)
    }

    async fn strategy(&self, version: &str) -> Result<Option<StrategyRecord>, StoreError> {
        Ok(self.state().strategies.get(version).map(|(r, _)| r.clone()))
    }

    async fn strategy_package(&self, version: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.state().strategies.get(version).map(|(_, p)| p.clone()))
    }

    async fn strategies(&self) -> Result<Vec<StrategyRecord>, StoreError> {
        let mut all: Vec<StrategyRecord> = self
            .state()
            .strategies
            .values()
            .map(|(r, _)| r.clone())
            .collect();
        all.sort_by(|a, b| {
            b.uploaded_at_ms
                .cmp(&a.uploaded_at_ms)
                .then_with(|| a.version.cmp(&b.version))
        });
        Ok(all)
    }

    async fn approve_strategy(
        &self,
        version: &str,
        approver: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        match state.strategies.get_mut(version) {
            Some((record, _)) if record.state == StrategyState::Draft => {
                record.state = StrategyState::Approved;
                record.approved_by = Some(approver.to_string());
                record.approved_at_ms = Some(at_ms);
            }
            _ => {
                return Err(StoreError::Precondition {
                    what: format!("strategy version {version} is not a draft"),
                })
            }
        }
        state.audit(audit);
        Ok(())
    }

    async fn record_activation(
        &self,
        version: &str,
        actor: &str,
        kind: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<Activation, StoreError> {
        let mut state = self.state();
        let strategy = match state.strategies.get(version) {
            Some((r, _)) if r.state == StrategyState::Approved => r.name.clone(),
            Some(_) => {
                return Err(StoreError::Precondition {
                    what: format!("strategy version {version} is not approved"),
                })
            }
            None => {
                return Err(StoreError::Precondition {
                    what: format!("strategy version {version} does not exist"),
                })
            }
        };
        let activation = Activation {
            seq: state.activations.last().map_or(0, |a| a.seq) + 1,
            strategy,
            version: version.to_string(),
            activated_by: actor.to_string(),
            activated_at_ms: at_ms,
            kind: kind.to_string(),
        };
        state.activations.push(activation.clone());
        state.audit(audit);
        Ok(activation)
    }

    async fn activations(
        &self,
        strategy: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Activation>, StoreError> {
        Ok(self
            .state()
            .activations
            .iter()
            .rev()
            .filter(|a| strategy.is_none_or(|s| a.strategy == s))
            .take(limit.max(1) as usize)
            .cloned()
            .collect())
    }

    async fn active_versions(&self) -> Result<Vec<Activation>, StoreError> {
        let state = self.state();
        let mut newest: BTreeMap<&str, &Activation> = BTreeMap::new();
        for activation in &state.activations {
            newest.insert(&activation.strategy, activation);
        }
        let mut active: Vec<Activation> = newest.into_values().cloned().collect();
        active.sort_by_key(|a| a.seq);
        Ok(active)
    }

    async fn rollouts(
        &self,
        strategy: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RolloutRecord>, StoreError> {
        let mut found: Vec<RolloutRecord> = self
            .state()
            .rollouts
            .iter()
            .filter(|r| strategy.is_none_or(|s| r.strategy == s))
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            b.started_at_ms
                .cmp(&a.started_at_ms)
                .then_with(|| b.id.cmp(&a.id))
        });
        found.truncate(limit.max(1) as usize);
        Ok(found)
    }

    async fn save_rollout(
        &self,
        record: RolloutRecord,
        expected_revision: Option<i64>,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        match expected_revision {
            None => {
                if state.rollouts.iter().any(|r| r.id == record.id) {
                    return Err(StoreError::Conflict {
                        what: format!("rollout {}", record.id),
                    });
                }
                if let Some(running) = state
                    .rollouts
                    .iter()
                    .find(|r| r.strategy == record.strategy && r.is_running())
                {
                    return Err(record.already_running(&running.id));
                }
                if !state.strategies.contains_key(&record.version) {
                    return Err(StoreError::Precondition {
                        what: format!("strategy version {} does not exist", record.version),
                    });
                }
                state.rollouts.push(record);
            }
            Some(expected) => {
                let Some(stored) = state
                    .rollouts
                    .iter_mut()
                    .find(|r| r.id == record.id && r.revision == expected)
                else {
                    return Err(record.changed_first());
                };
                stored.state = record.state;
                stored.step = record.step;
                stored.step_started_at_ms = record.step_started_at_ms;
                stored.updated_at_ms = record.updated_at_ms;
                stored.note = record.note;
                stored.revision = record.revision;
            }
        }
        state.audit(audit);
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::ShadowLog for MemoryStore {
    async fn append_shadow_results(&self, records: Vec<ShadowRecord>) -> Result<(), StoreError> {
        let mut state = self.state();
        for record in records {
            state
                .shadow
                .entry((record.decision_id.clone(), record.candidate_version.clone()))
                .or_insert(record);
        }
        Ok(())
    }

    async fn shadow_results(&self, query: &ShadowQuery) -> Result<Vec<ShadowRecord>, StoreError> {
        let mut found: Vec<ShadowRecord> = self
            .state()
            .shadow
            .values()
            .filter(|r| query.matches(r))
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            (a.created_at_ms, &a.decision_id).cmp(&(b.created_at_ms, &b.decision_id))
        });
        found.truncate(query.limit.max(1) as usize);
        Ok(found)
    }
}

#[async_trait::async_trait]
impl AccessStore for MemoryStore {
    async fn insert_key(&self, key: ApiKeyRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.keys.contains_key(&key.id) {
            return Err(StoreError::Conflict {
                what: format!("key {}", key.id),
            });
        }
        let mut key = key;
        key.revoked_at_ms = None;
        state.keys.insert(key.id.clone(), key);
        state.audit(audit);
        Ok(())
    }

    async fn key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self.state().keys.get(id).cloned())
    }

    async fn keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut all: Vec<ApiKeyRecord> = self.state().keys.values().cloned().collect();
        all.sort_by(|a, b| {
            a.created_at_ms
                .cmp(&b.created_at_ms)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    async fn revoke_key(
        &self,
        id: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut state = self.state();
        match state.keys.get_mut(id) {
            Some(key) if key.revoked_at_ms.is_none() => key.revoked_at_ms = Some(at_ms),
            _ => {
                return Err(StoreError::Precondition {
                    what: format!("key {id} does not exist or is already revoked"),
                })
            }
        }
        state.audit(audit);
        Ok(())
    }

    async fn insert_user(&self, user: UserRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.users.contains_key(&user.username) {
            return Err(StoreError::Conflict {
                what: format!("user {}", user.username),
            });
        }
        state.users.insert(user.username.clone(), user);
        state.audit(audit);
        Ok(())
    }

    async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.state().users.get(username).cloned())
    }

    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        Ok(self.state().users.values().cloned().collect())
    }

    async fn update_user(&self, user: UserRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut state = self.state();
        if !state.users.contains_key(&user.username) {
            return Err(unknown_user(&user.username));
        }
        if user.disabled_at_ms.is_some() {
            state.sessions.retain(|_, s| s.username != user.username);
        }
        state.users.insert(user.username.clone(), user);
        state.audit(audit);
        Ok(())
    }

    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        // Expired sessions go as new ones arrive.
        state
            .sessions
            .retain(|_, s| s.expires_at_ms >= session.created_at_ms);
        if state.sessions.contains_key(&session.token_sha256) {
            return Err(StoreError::Conflict {
                what: "a session with this token".into(),
            });
        }
        state.sessions.insert(session.token_sha256.clone(), session);
        Ok(())
    }

    async fn session(&self, token_sha256: &str) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.state().sessions.get(token_sha256).cloned())
    }

    async fn delete_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        self.state().sessions.remove(token_sha256);
        Ok(())
    }
}

#[async_trait::async_trait]
impl AuditLog for MemoryStore {
    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        Ok(self
            .state()
            .audit
            .iter()
            .rev()
            .take(limit.max(1) as usize)
            .cloned()
            .collect())
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.state().audit(event);
        Ok(())
    }
}

#[async_trait::async_trait]
impl CaseStore for MemoryStore {
    async fn insert_case(&self, case: CaseRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        let taken = state.cases.contains_key(&case.id)
            || state
                .cases
                .values()
                .any(|c| c.decision_id == case.decision_id);
        if taken {
            return Err(StoreError::Conflict {
                what: format!("a case for decision {}", case.decision_id),
            });
        }
        state.cases.insert(case.id.clone(), case);
        Ok(())
    }

    async fn case(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        Ok(self.state().cases.get(id).cloned())
    }

    async fn case_for_decision(&self, decision_id: &str) -> Result<Option<CaseRecord>, StoreError> {
        Ok(self
            .state()
            .cases
            .values()
            .find(|c| c.decision_id == decision_id)
            .cloned())
    }

    async fn cases(&self, query: &CaseQuery) -> Result<Vec<CaseRecord>, StoreError> {
        let mut found: Vec<CaseRecord> = self
            .state()
            .cases
            .values()
            .filter(|c| {
                query.queue.as_ref().is_none_or(|q| &c.queue == q)
                    && query.state.as_ref().is_none_or(|s| &c.state == s)
                    && query.allows_strategy(&c.strategy)
                    && query
                        .due_before_ms
                        .is_none_or(|due| c.state != "decided" && c.due_at_ms < due)
            })
            .cloned()
            .collect();
        found.sort_by(|a, b| {
            a.due_at_ms
                .cmp(&b.due_at_ms)
                .then_with(|| b.priority.cmp(&a.priority))
                .then_with(|| a.id.cmp(&b.id))
        });
        found.truncate(query.limit.max(1) as usize);
        Ok(found)
    }

    async fn referrals_without_case(&self, recent: u32) -> Result<Vec<String>, StoreError> {
        let state = self.state();
        let newest = state.decisions.last().map_or(0, |d| d.seq);
        Ok(state
            .decisions
            .iter()
            .filter(|d| d.seq > newest - i64::from(recent))
            .filter(|d| d.record.outcome == "refer")
            .filter(|d| !state.cases.values().any(|c| c.decision_id == d.record.id))
            .map(|d| d.record.id.clone())
            .collect())
    }

    async fn update_case(&self, case: CaseRecord, expected_version: i64) -> Result<(), StoreError> {
        let mut state = self.state();
        match state.cases.get_mut(&case.id) {
            Some(stored) if stored.version == expected_version => {
                stored.state = case.state;
                stored.due_at_ms = case.due_at_ms;
                stored.version = expected_version + 1;
                stored.body = case.body;
                Ok(())
            }
            _ => Err(StoreError::Precondition {
                what: format!(
                    "case {} was changed by someone else; reload it and try again",
                    case.id
                ),
            }),
        }
    }

    async fn claim_next_case(
        &self,
        query: &CaseQuery,
        claim: CaseClaimer,
    ) -> Result<Option<CaseRecord>, StoreError> {
        let mut query = query.clone();
        let undecided = query.state.is_none();
        query.limit = query.limit.max(1);
        // The lock is held from choosing to storing: one claim at a time.
        let mut state = self.state();
        let mut candidates: Vec<CaseRecord> = state
            .cases
            .values()
            .filter(|c| {
                query.queue.as_ref().is_none_or(|q| &c.queue == q)
                    && query.state.as_ref().is_none_or(|s| &c.state == s)
                    && (!undecided || c.state != "decided")
                    && query.allows_strategy(&c.strategy)
            })
            .cloned()
            .collect();
        candidates.sort_by(|a, b| {
            a.due_at_ms
                .cmp(&b.due_at_ms)
                .then_with(|| b.priority.cmp(&a.priority))
                .then_with(|| a.id.cmp(&b.id))
        });
        for candidate in candidates.into_iter().take(query.limit as usize) {
            if let Some(mut claimed) = claim(&candidate) {
                claimed.version = candidate.version + 1;
                state.cases.insert(claimed.id.clone(), claimed.clone());
                return Ok(Some(claimed));
            }
        }
        Ok(None)
    }
}
