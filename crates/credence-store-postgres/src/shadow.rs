//! Shadow results on PostgreSQL: one row per live decision and candidate version, written in batches with `unnest`.

use crate::error::{col, Db};
use crate::PostgresStore;
use credence_store::prelude::*;
use credence_store::*;

#[async_trait::async_trait]
impl ShadowLog for PostgresStore {
    async fn append_shadow_results(&self, records: Vec<ShadowRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut columns: [Vec<&str>; 7] = Default::default();
        let mut created: Vec<i64> = Vec::with_capacity(records.len());
        let mut candidates: Vec<&str> = Vec::with_capacity(records.len());
        for r in &records {
            columns[0].push(&r.decision_id);
            columns[1].push(&r.strategy);
            columns[2].push(&r.rollout_id);
            columns[3].push(&r.live_version);
            columns[4].push(&r.flow);
            columns[5].push(&r.live);
            columns[6].push(&r.candidate);
            candidates.push(&r.candidate_version);
            created.push(r.created_at_ms);
        }
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO shadow_results (decision_id, strategy, rollout_id, live_version, flow, \
                 live, candidate, candidate_version, created_at_ms) \
                 SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], \
                 $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::BIGINT[]) \
                 ON CONFLICT (decision_id, candidate_version) DO NOTHING",
                &[
                    &columns[0],
                    &columns[1],
                    &columns[2],
                    &columns[3],
                    &columns[4],
                    &columns[5],
                    &columns[6],
                    &candidates,
                    &created,
                ],
            )
            .await
            .db()?;
        Ok(())
    }

    async fn shadow_results(&self, query: &ShadowQuery) -> Result<Vec<ShadowRecord>, StoreError> {
        let (after_ms, after_id) = query
            .after
            .clone()
            .map_or((None, String::new()), |(at, id)| (Some(at), id));
        self.select_all(
            "SELECT decision_id, candidate_version, strategy, rollout_id, live_version, flow, \
             created_at_ms, live, candidate FROM shadow_results \
             WHERE strategy = $1 AND ($2::TEXT IS NULL OR candidate_version = $2) \
             AND ($3::BIGINT IS NULL OR created_at_ms >= $3) AND ($4::BIGINT IS NULL OR created_at_ms < $4) \
             AND ($5::BIGINT IS NULL OR (created_at_ms, decision_id) > ($5, $6)) \
             ORDER BY created_at_ms, decision_id LIMIT $7",
            &[
                &query.strategy,
                &query.candidate_version,
                &query.from_ms,
                &query.to_ms,
                &after_ms,
                &after_id,
                &i64::from(query.limit.max(1)),
            ],
            |row| {
                Ok(ShadowRecord {
                    decision_id: col(row, 0)?,
                    candidate_version: col(row, 1)?,
                    strategy: col(row, 2)?,
                    rollout_id: col(row, 3)?,
                    live_version: col(row, 4)?,
                    flow: col(row, 5)?,
                    created_at_ms: col(row, 6)?,
                    live: col(row, 7)?,
                    candidate: col(row, 8)?,
                })
            },
        )
        .await
    }
}
