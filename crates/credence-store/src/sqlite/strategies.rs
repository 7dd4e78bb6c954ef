//! Strategy versions in the embedded store: packages, approvals and activations, each with its audit event.

use super::*;
use crate::error::StoreError;
use crate::prelude::*;
use crate::records::*;
use rusqlite::{params, OptionalExtension, Row};

pub(super) const STRATEGY_COLUMNS: &str =
    "version, name, state, uploaded_by, uploaded_at_ms, approved_by, approved_at_ms, cases_passed";

pub(super) fn strategy_from_row(row: &Row<'_>) -> rusqlite::Result<StrategyRecord> {
    let state: String = row.get(2)?;
    Ok(StrategyRecord {
        version: row.get(0)?,
        name: row.get(1)?,
        state: StrategyState::parse(&state).unwrap_or(StrategyState::Draft),
        uploaded_by: row.get(3)?,
        uploaded_at_ms: row.get(4)?,
        approved_by: row.get(5)?,
        approved_at_ms: row.get(6)?,
        cases_passed: row.get(7)?,
    })
}

#[async_trait::async_trait]
impl StrategyStore for SqliteStore {
    async fn insert_strategy(
        &self,
        record: StrategyRecord,
        package: Vec<u8>,
        audit: NewAuditEvent,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let exists: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM strategy_versions WHERE version = ?1",
                    [&record.version],
                    |row| row.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Ok(false);
            }
            conn.execute(
                &format!(
                    "INSERT INTO strategy_versions ({STRATEGY_COLUMNS}, package) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    record.version,
                    record.name,
                    record.state.as_str(),
                    record.uploaded_by,
                    record.uploaded_at_ms,
                    record.approved_by,
                    record.approved_at_ms,
                    record.cases_passed,
                    package
                ],
            )?;
            insert_audit(conn, &audit)?;
            Ok(true)
        })
        .await
    }

    async fn strategy(&self, version: &str) -> Result<Option<StrategyRecord>, StoreError> {
        let version = version.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {STRATEGY_COLUMNS} FROM strategy_versions WHERE version = ?1"),
                    [version],
                    strategy_from_row,
                )
                .optional()?)
        })
        .await
    }

    async fn strategy_package(&self, version: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let version = version.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .query_row(
                    "SELECT package FROM strategy_versions WHERE version = ?1",
                    [version],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn strategies(&self) -> Result<Vec<StrategyRecord>, StoreError> {
        self.read(|_, conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {STRATEGY_COLUMNS} FROM strategy_versions ORDER BY uploaded_at_ms DESC, version"
            ))?;
            let rows = statement.query_map([], strategy_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn approve_strategy(
        &self,
        version: &str,
        approver: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let version = version.to_string();
        let approver = approver.to_string();
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE strategy_versions SET state = 'approved', approved_by = ?1, approved_at_ms = ?2 \
                 WHERE version = ?3 AND state = 'draft'",
                params![approver, at_ms, version],
            )?;
            if changed != 1 {
                return Err(StoreError::Precondition {
                    what: format!("strategy version {version} is not a draft"),
                });
            }
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn record_activation(
        &self,
        version: &str,
        actor: &str,
        kind: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<Activation, StoreError> {
        let version = version.to_string();
        let actor = actor.to_string();
        let kind = kind.to_string();
        self.write(move |conn| {
            let row: Option<(String, String)> = conn
                .query_row(
                    "SELECT state, name FROM strategy_versions WHERE version = ?1",
                    [&version],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((state, strategy)) = row else {
                return Err(StoreError::Precondition {
                    what: format!("strategy version {version} does not exist"),
                });
            };
            if state != StrategyState::Approved.as_str() {
                return Err(StoreError::Precondition {
                    what: format!("strategy version {version} is not approved"),
                });
            }
            let seq: i64 = conn.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM activations",
                [],
                |row| row.get(0),
            )?;
            conn.execute(
                "INSERT INTO activations (seq, version, activated_by, activated_at_ms, kind, strategy) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![seq, version, actor, at_ms, kind, strategy],
            )?;
            insert_audit(conn, &audit)?;
            Ok(Activation {
                seq,
                strategy,
                version,
                activated_by: actor,
                activated_at_ms: at_ms,
                kind,
            })
        })
        .await
    }

    async fn activations(
        &self,
        strategy: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Activation>, StoreError> {
        let strategy = strategy.map(str::to_string);
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT seq, version, activated_by, activated_at_ms, kind, strategy FROM activations \
                 WHERE ?1 IS NULL OR strategy = ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![strategy, limit.max(1)], activation_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn active_versions(&self) -> Result<Vec<Activation>, StoreError> {
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT seq, version, activated_by, activated_at_ms, kind, strategy FROM activations \
                 WHERE seq IN (SELECT MAX(seq) FROM activations GROUP BY strategy) ORDER BY seq",
            )?;
            let rows = statement.query_map([], activation_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn rollouts(
        &self,
        strategy: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RolloutRecord>, StoreError> {
        let strategy = strategy.map(str::to_string);
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {ROLLOUT_COLUMNS} FROM rollouts WHERE ?1 IS NULL OR strategy = ?1 \
                 ORDER BY started_at_ms DESC, id DESC LIMIT ?2"
            ))?;
            let rows = statement.query_map(params![strategy, limit.max(1)], rollout_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn save_rollout(
        &self,
        record: RolloutRecord,
        expected_revision: Option<i64>,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            match expected_revision {
                None => {
                    let running: Option<String> = conn
                        .query_row(
                            "SELECT id FROM rollouts WHERE strategy = ?1 AND state = 'running'",
                            [&record.strategy],
                            |row| row.get(0),
                        )
                        .optional()?;
                    if let Some(running) = running {
                        return Err(record.already_running(&running));
                    }
                    conn.execute(
                        &format!(
                            "INSERT INTO rollouts ({ROLLOUT_COLUMNS}) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
                        ),
                        params![
                            record.id,
                            record.strategy,
                            record.version,
                            record.baseline_version,
                            record.mode,
                            record.state,
                            record.plan,
                            record.step,
                            record.step_started_at_ms,
                            record.started_by,
                            record.started_at_ms,
                            record.updated_at_ms,
                            record.note,
                            record.revision
                        ],
                    )
                    .map_err(|e| StoreError::from_insert(e, || format!("rollout {}", record.id)))?;
                }
                Some(expected) => {
                    let changed = conn.execute(
                        "UPDATE rollouts SET state = ?1, step = ?2, step_started_at_ms = ?3, \
                         updated_at_ms = ?4, note = ?5, revision = ?6 WHERE id = ?7 AND revision = ?8",
                        params![
                            record.state,
                            record.step,
                            record.step_started_at_ms,
                            record.updated_at_ms,
                            record.note,
                            record.revision,
                            record.id,
                            expected
                        ],
                    )?;
                    if changed != 1 {
                        return Err(record.changed_first());
                    }
                }
            }
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }
}

pub(super) const ROLLOUT_COLUMNS: &str =
    "id, strategy, version, baseline_version, mode, state, plan, step, \
     step_started_at_ms, started_by, started_at_ms, updated_at_ms, note, revision";

pub(super) fn rollout_from_row(row: &Row<'_>) -> rusqlite::Result<RolloutRecord> {
    Ok(RolloutRecord {
        id: row.get(0)?,
        strategy: row.get(1)?,
        version: row.get(2)?,
        baseline_version: row.get(3)?,
        mode: row.get(4)?,
        state: row.get(5)?,
        plan: row.get(6)?,
        step: row.get(7)?,
        step_started_at_ms: row.get(8)?,
        started_by: row.get(9)?,
        started_at_ms: row.get(10)?,
        updated_at_ms: row.get(11)?,
        note: row.get(12)?,
        revision: row.get(13)?,
    })
}

fn activation_from_row(row: &Row<'_>) -> rusqlite::Result<Activation> {
    Ok(Activation {
        seq: row.get(0)?,
        version: row.get(1)?,
        activated_by: row.get(2)?,
        activated_at_ms: row.get(3)?,
        kind: row.get(4)?,
        strategy: row.get(5)?,
    })
}
