//! Shadow results in the embedded store: one row per live decision and candidate version.

use super::*;
use crate::error::StoreError;
use crate::prelude::*;
use crate::records::*;
use rusqlite::params;

#[async_trait::async_trait]
impl ShadowLog for SqliteStore {
    async fn append_shadow_results(&self, records: Vec<ShadowRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let mut insert = conn.prepare_cached(
                "INSERT INTO shadow_results (decision_id, candidate_version, strategy, rollout_id, \
                 live_version, flow, created_at_ms, live, candidate) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (decision_id, candidate_version) DO NOTHING",
            )?;
            for r in &records {
                insert.execute(params![
                    r.decision_id,
                    r.candidate_version,
                    r.strategy,
                    r.rollout_id,
                    r.live_version,
                    r.flow,
                    r.created_at_ms,
                    r.live,
                    r.candidate
                ])?;
            }
            Ok(())
        })
        .await
    }

    async fn shadow_results(&self, query: &ShadowQuery) -> Result<Vec<ShadowRecord>, StoreError> {
        let query = query.clone();
        self.read(move |_, conn| {
            let (after_ms, after_id) = query
                .after
                .clone()
                .map_or((None, String::new()), |(at, id)| (Some(at), id));
            let mut statement = conn.prepare_cached(
                "SELECT decision_id, candidate_version, strategy, rollout_id, live_version, flow, \
                 created_at_ms, live, candidate FROM shadow_results \
                 WHERE strategy = ?1 AND (?2 IS NULL OR candidate_version = ?2) \
                 AND (?3 IS NULL OR created_at_ms >= ?3) AND (?4 IS NULL OR created_at_ms < ?4) \
                 AND (?5 IS NULL OR created_at_ms > ?5 OR (created_at_ms = ?5 AND decision_id > ?6)) \
                 ORDER BY created_at_ms, decision_id LIMIT ?7",
            )?;
            let rows = statement.query_map(
                params![
                    query.strategy,
                    query.candidate_version,
                    query.from_ms,
                    query.to_ms,
                    after_ms,
                    after_id,
                    query.limit.max(1)
                ],
                |row| {
                    Ok(ShadowRecord {
                        decision_id: row.get(0)?,
                        candidate_version: row.get(1)?,
                        strategy: row.get(2)?,
                        rollout_id: row.get(3)?,
                        live_version: row.get(4)?,
                        flow: row.get(5)?,
                        created_at_ms: row.get(6)?,
                        live: row.get(7)?,
                        candidate: row.get(8)?,
                    })
                },
            )?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
