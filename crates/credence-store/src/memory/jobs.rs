//! Batch-job partitions in the in-memory store: claims under a lease, completion with the partition's account updates in one step.

use super::*;
use crate::JobPartitions;

#[derive(Clone)]
pub(super) struct Partition {
    range: KeyRange,
    state: &'static str,
    claimed_by: Option<String>,
    claimed_until_ms: i64,
    result: Option<String>,
}

#[async_trait::async_trait]
impl JobPartitions for MemoryStore {
    async fn create_job(&self, job_id: &str, ranges: Vec<KeyRange>) -> Result<bool, StoreError> {
        let mut state = self.state();
        if state.partitions.keys().any(|(job, _)| job == job_id) {
            return Ok(false);
        }
        for (number, range) in ranges.into_iter().enumerate() {
            state.partitions.insert(
                (job_id.to_string(), number as i64),
                Partition {
                    range,
                    state: "pending",
                    claimed_by: None,
                    claimed_until_ms: 0,
                    result: None,
                },
            );
        }
        Ok(true)
    }

    async fn claim_partition(
        &self,
        job_id: &str,
        worker: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<PartitionClaim, StoreError> {
        let mut state = self.state();
        let mut open = 0i64;
        let mut seen = 0i64;
        for ((job, number), partition) in state.partitions.iter_mut() {
            if job != job_id {
                continue;
            }
            seen += 1;
            let claimable = partition.state == "pending"
                || (partition.state == "claimed" && partition.claimed_until_ms < now_ms);
            if claimable {
                partition.state = "claimed";
                partition.claimed_by = Some(worker.to_string());
                partition.claimed_until_ms = now_ms + lease_ms;
                return Ok(PartitionClaim::Claimed(JobPartition {
                    job_id: job_id.to_string(),
                    partition_no: *number,
                    range: partition.range.clone(),
                }));
            }
            if partition.state != "done" {
                open += 1;
            }
        }
        PartitionClaim::nothing_claimable(job_id, seen, open)
    }

    async fn complete_partition(
        &self,
        partition: &JobPartition,
        worker: &str,
        _now_ms: i64,
        result: PartitionResult,
        updates: Vec<AccountUpdate>,
        audit: Vec<NewAuditEvent>,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let key = (partition.job_id.clone(), partition.partition_no);
        self.transaction(|state| {
            let held = state
                .partitions
                .get(&key)
                .is_some_and(|p| p.state == "claimed" && p.claimed_by.as_deref() == Some(worker));
            if !held {
                return Ok(None);
            }
            let stale = state.apply_updates(updates, audit)?;
            if let Some(stored) = state.partitions.get_mut(&key) {
                stored.state = "done";
                stored.result = Some(result(&stale));
            }
            Ok(Some(stale))
        })
    }

    async fn job_partitions(&self, job_id: &str) -> Result<Vec<PartitionRecord>, StoreError> {
        Ok(self
            .state()
            .partitions
            .iter()
            .filter(|((job, _), _)| job == job_id)
            .map(|((_, number), p)| PartitionRecord {
                partition_no: *number,
                state: p.state.to_string(),
                claimed_by: p.claimed_by.clone(),
                result: p.result.clone(),
            })
            .collect())
    }
}
