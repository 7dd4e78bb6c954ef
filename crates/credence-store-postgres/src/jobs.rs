//! Batch-job partitions on PostgreSQL: claimed with `FOR UPDATE SKIP LOCKED` under a lease by workers on any node, completed once together with the partition's account updates, and taken over when the node holding one dies.

use crate::accounts::apply_updates;
use crate::error::{col, Db};
use crate::PostgresStore;
use credence_store::prelude::*;
use credence_store::*;

#[async_trait::async_trait]
impl JobPartitions for PostgresStore {
    async fn create_job(&self, job_id: &str, ranges: Vec<KeyRange>) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        // Two workers starting a run together split it once: the second finds the first's.
        transaction
            .execute(
                "SELECT pg_advisory_xact_lock(hashtextextended('credence-job:' || $1, 0))",
                &[&job_id],
            )
            .await
            .db()?;
        let exists = transaction
            .query_opt(
                "SELECT 1 FROM job_partitions WHERE job_id = $1 LIMIT 1",
                &[&job_id],
            )
            .await
            .db()?;
        if exists.is_some() {
            return Ok(false);
        }
        for (partition_no, range) in ranges.iter().enumerate() {
            transaction
                .execute(
                    "INSERT INTO job_partitions (job_id, partition_no, after_key, last_key, state) \
                     VALUES ($1, $2, $3, $4, 'pending')",
                    &[&job_id, &(partition_no as i64), &range.after_key, &range.last_key],
                )
                .await
                .db()?;
        }
        transaction.commit().await.db()?;
        Ok(true)
    }

    async fn claim_partition(
        &self,
        job_id: &str,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<PartitionClaim, StoreError> {
        let client = self.client().await?;
        let claimed = client
            .query_opt(
                "WITH next AS (
                     SELECT job_id, partition_no FROM job_partitions
                     WHERE job_id = $1 AND (state = 'pending' OR (state = 'claimed' AND claimed_until_ms < $2))
                     ORDER BY partition_no LIMIT 1 FOR UPDATE SKIP LOCKED)
                 UPDATE job_partitions p SET state = 'claimed', claimed_by = $3, claimed_until_ms = $2 + $4
                 FROM next WHERE p.job_id = next.job_id AND p.partition_no = next.partition_no
                 RETURNING p.partition_no, p.after_key, p.last_key",
                &[&job_id, &now_ms, &worker, &lease_ms],
            )
            .await
            .db()?;
        if let Some(row) = claimed {
            return Ok(PartitionClaim::Claimed(JobPartition {
                job_id: job_id.to_string(),
                partition_no: col(&row, 0)?,
                range: KeyRange {
                    after_key: col(&row, 1)?,
                    last_key: col(&row, 2)?,
                },
            }));
        }
        let row = client
            .query_one(
                "SELECT COUNT(*) FILTER (WHERE state <> 'done'), COUNT(*) FROM job_partitions WHERE job_id = $1",
                &[&job_id],
            )
            .await
            .db()?;
        let (open, all): (i64, i64) = (col(&row, 0)?, col(&row, 1)?);
        PartitionClaim::nothing_claimable(job_id, all, open)
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
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        // Locks the partition's row: a worker taking it over waits, then finds it done.
        let held = transaction
            .query_opt(
                "SELECT 1 FROM job_partitions \
                 WHERE job_id = $1 AND partition_no = $2 AND claimed_by = $3 AND state = 'claimed' \
                 FOR UPDATE",
                &[&partition.job_id, &partition.partition_no, &worker],
            )
            .await
            .db()?;
        if held.is_none() {
            return Ok(None);
        }
        let stale = apply_updates(&transaction, &updates, &audit).await?;
        transaction
            .execute(
                "UPDATE job_partitions SET state = 'done', done_at_ms = $3, result = $4 \
                 WHERE job_id = $1 AND partition_no = $2",
                &[
                    &partition.job_id,
                    &partition.partition_no,
                    &now_ms,
                    &result(&stale),
                ],
            )
            .await
            .db()?;
        transaction.commit().await.db()?;
        Ok(Some(stale))
    }

    async fn job_partitions(&self, job_id: &str) -> Result<Vec<PartitionRecord>, StoreError> {
        let client = self.client().await?;
        client
            .query(
                "SELECT partition_no, state, claimed_by, result FROM job_partitions \
                 WHERE job_id = $1 ORDER BY partition_no",
                &[&job_id],
            )
            .await
            .db()?
            .iter()
            .map(|row| {
                Ok(PartitionRecord {
                    partition_no: col(row, 0)?,
                    state: col(row, 1)?,
                    claimed_by: col(row, 2)?,
                    result: col(row, 3)?,
                })
            })
            .collect()
    }
}
