//! Batch-job partitions in the embedded store: claims under a lease, completion with the partition's account updates in one transaction.

use super::accounts::apply_account_update;
use super::*;
use crate::error::StoreError;
use crate::prelude::*;
use crate::records::*;
use rusqlite::{params, OptionalExtension};

#[async_trait::async_trait]
impl JobPartitions for SqliteStore {
    async fn create_job(&self, job_id: &str, ranges: Vec<KeyRange>) -> Result<bool, StoreError> {
        let job_id = job_id.to_string();
        self.write(move |conn| {
            let exists: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM job_partitions WHERE job_id = ?1 LIMIT 1",
                    [&job_id],
                    |row| row.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Ok(false);
            }
            let mut insert = conn.prepare_cached(
                "INSERT INTO job_partitions (job_id, partition_no, after_key, last_key, state) \
                 VALUES (?1, ?2, ?3, ?4, 'pending')",
            )?;
            for (number, range) in ranges.iter().enumerate() {
                insert.execute(params![
                    job_id,
                    number as i64,
                    range.after_key,
                    range.last_key
                ])?;
            }
            Ok(true)
        })
        .await
    }

    async fn claim_partition(
        &self,
        job_id: &str,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<PartitionClaim, StoreError> {
        let (job_id, worker) = (job_id.to_string(), worker.to_string());
        self.write(move |conn| {
            let next: Option<(i64, String, String)> = conn
                .query_row(
                    "SELECT partition_no, after_key, last_key FROM job_partitions \
                     WHERE job_id = ?1 AND (state = 'pending' OR (state = 'claimed' AND claimed_until_ms < ?2)) \
                     ORDER BY partition_no LIMIT 1",
                    params![job_id, now_ms],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            if let Some((partition_no, after_key, last_key)) = next {
                conn.execute(
                    "UPDATE job_partitions SET state = 'claimed', claimed_by = ?1, claimed_until_ms = ?2 \
                     WHERE job_id = ?3 AND partition_no = ?4",
                    params![worker, now_ms + lease_ms, job_id, partition_no],
                )?;
                return Ok(PartitionClaim::Claimed(JobPartition {
                    job_id,
                    partition_no,
                    range: KeyRange { after_key, last_key },
                }));
            }
            let (open, all): (i64, i64) = conn.query_row(
                "SELECT COALESCE(SUM(state <> 'done'), 0), COUNT(*) FROM job_partitions WHERE job_id = ?1",
                [&job_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            PartitionClaim::nothing_claimable(&job_id, all, open)
        })
        .await
    }

    async fn complete_partition(
        &self,
        partition: &JobPartition,
        worker: &str,
        now_ms: i64,
        result: PartitionResult,
        updates: Vec<AccountUpdate>,
        audit: Vec<NewAuditEvent>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let (partition, worker) = (partition.clone(), worker.to_string());
        self.write(move |conn| {
            let held: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM job_partitions \
                     WHERE job_id = ?1 AND partition_no = ?2 AND claimed_by = ?3 AND state = 'claimed'",
                    params![partition.job_id, partition.partition_no, worker],
                    |row| row.get(0),
                )
                .optional()?;
            if held.is_none() {
                return Ok(None);
            }
            let mut stale = Vec::new();
            for update in &updates {
                if !apply_account_update(conn, update)? {
                    stale.push(update.account.id.clone());
                }
            }
            for event in &audit {
                insert_audit(conn, event)?;
            }
            conn.execute(
                "UPDATE job_partitions SET state = 'done', done_at_ms = ?1, result = ?2 \
                 WHERE job_id = ?3 AND partition_no = ?4",
                params![now_ms, result(&stale), partition.job_id, partition.partition_no],
            )?;
            Ok(Some(stale))
        })
        .await
    }

    async fn job_partitions(&self, job_id: &str) -> Result<Vec<PartitionRecord>, StoreError> {
        let job_id = job_id.to_string();
        self.read(move |_, conn| {
            let mut statement = conn.prepare(
                "SELECT partition_no, state, claimed_by, result FROM job_partitions \
                 WHERE job_id = ?1 ORDER BY partition_no",
            )?;
            let rows = statement.query_map([job_id], |row| {
                Ok(PartitionRecord {
                    partition_no: row.get(0)?,
                    state: row.get(1)?,
                    claimed_by: row.get(2)?,
                    result: row.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
