//! Batch work split across nodes: a job's partitions, claimed with `FOR UPDATE SKIP LOCKED` under a lease, completed once, and taken over when the node holding one dies.

use crate::error::{col, Db};
use crate::PostgresStore;
use credence_store::StoreError;

/// One partition of a job: a range of keys (account ids) a node works through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPartition {
    /// The job.
    pub job_id: String,
    /// The partition's number, from 0.
    pub partition_no: i64,
    /// The first key in it (inclusive).
    pub first_key: String,
    /// The last key in it (inclusive).
    pub last_key: String,
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionClaim {
    /// This worker now holds the partition until its lease ends.
    Claimed(JobPartition),
    /// Every partition is done or held by a live lease elsewhere: wait and claim again.
    Busy,
    /// Every partition is done.
    Done,
}

impl PostgresStore {
    /// Splits a job into partitions; a job that already exists is left as it is (a restarted
    /// run resumes). Returns whether the partitions were created now.
    pub async fn create_job(
        &self,
        job_id: &str,
        ranges: &[(String, String)],
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        let mut created = false;
        for (partition_no, (first, last)) in ranges.iter().enumerate() {
            created |= transaction
                .execute(
                    "INSERT INTO job_partitions (job_id, partition_no, first_key, last_key, state) \
                     VALUES ($1, $2, $3, $4, 'pending') ON CONFLICT DO NOTHING",
                    &[&job_id, &(partition_no as i64), first, last],
                )
                .await
                .db()?
                == 1;
        }
        transaction.commit().await.db()?;
        Ok(created)
    }

    /// Claims a partition that is pending or whose holder's lease ended before `now_ms`.
    pub async fn claim_partition(
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
                 RETURNING p.partition_no, p.first_key, p.last_key",
                &[&job_id, &now_ms, &worker, &lease_ms],
            )
            .await
            .db()?;
        if let Some(row) = claimed {
            return Ok(PartitionClaim::Claimed(JobPartition {
                job_id: job_id.to_string(),
                partition_no: col(&row, 0)?,
                first_key: col(&row, 1)?,
                last_key: col(&row, 2)?,
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
        if all == 0 {
            return Err(StoreError::Precondition {
                what: format!("there is no job {job_id}"),
            });
        }
        Ok(if open == 0 {
            PartitionClaim::Done
        } else {
            PartitionClaim::Busy
        })
    }

    /// Extends this worker's lease on a partition; false when it lost the partition (its
    /// lease ended and another worker took it over: stop working on it).
    pub async fn renew_partition(
        &self,
        partition: &JobPartition,
        worker: &str,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE job_partitions SET claimed_until_ms = $4 \
                 WHERE job_id = $1 AND partition_no = $2 AND claimed_by = $3 AND state = 'claimed'",
                &[
                    &partition.job_id,
                    &partition.partition_no,
                    &worker,
                    &until_ms,
                ],
            )
            .await
            .db()?
            == 1)
    }

    /// Per partition of a job: its state, who holds or held it, and its result.
    pub async fn job_partitions(
        &self,
        job_id: &str,
    ) -> Result<Vec<(i64, String, Option<String>, Option<String>)>, StoreError> {
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
            .map(|row| Ok((col(row, 0)?, col(row, 1)?, col(row, 2)?, col(row, 3)?)))
            .collect()
    }

    /// Runs `work` inside a transaction that also marks the partition done with `result` —
    /// only if this worker still holds it. What `work` writes and the completion commit
    /// together or not at all: a partition's accounts are reviewed exactly once.
    pub async fn complete_partition<W>(
        &self,
        partition: &JobPartition,
        worker: &str,
        now_ms: i64,
        result: &str,
        work: W,
    ) -> Result<bool, StoreError>
    where
        W: for<'t> FnOnce(
            &'t tokio_postgres::Transaction<'t>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 't>,
        >,
    {
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        let held = transaction
            .execute(
                "UPDATE job_partitions SET state = 'done', done_at_ms = $4, result = $5 \
                 WHERE job_id = $1 AND partition_no = $2 AND claimed_by = $3 AND state = 'claimed'",
                &[
                    &partition.job_id,
                    &partition.partition_no,
                    &worker,
                    &now_ms,
                    &result,
                ],
            )
            .await
            .db()?;
        if held != 1 {
            return Ok(false);
        }
        work(&transaction).await?;
        transaction.commit().await.db()?;
        Ok(true)
    }
}
