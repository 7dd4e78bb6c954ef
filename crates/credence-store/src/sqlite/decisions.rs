//! The decision log of the embedded store: appends through the log writer, reads from pending decisions and the index, chain verification.

use super::*;
use crate::chain::{ChainReport, ChainVerifier};
use crate::error::StoreError;
use crate::log::{self, Scanned, SegmentReader};
use crate::prelude::*;
use crate::records::*;
use std::time::Duration;
use tokio::sync::oneshot;

#[async_trait::async_trait]
impl DecisionLog for SqliteStore {
    async fn append_decision(&self, decision: NewDecision) -> Result<AppendReceipt, StoreError> {
        let appender = self
            .inner
            .appender
            .as_ref()
            .ok_or_else(|| StoreError::Precondition {
                what: "this process opened the store shared and cannot append decisions".into(),
            })?;
        let (reply, answer) = oneshot::channel();
        appender
            .send(AppendRequest {
                record: decision,
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn writable(&self) -> Result<(), StoreError> {
        let failed = self
            .inner
            .log_unwritable
            .load(std::sync::atomic::Ordering::Acquire);
        match crate::log::free_bytes(&self.inner.log_dir) {
            Some(free) if free < crate::log::RESUME_FILL_FREE_BYTES => Err(
                StoreError::Unavailable("no space left on the device for the decision log".into()),
            ),
            None if failed => Err(StoreError::Unavailable(
                "the last append to the decision log failed".into(),
            )),
            // Space is there (again): the next append will try.
            _ => Ok(()),
        }
    }

    async fn decision(&self, id: &str) -> Result<Option<StoredDecision>, StoreError> {
        let id = id.to_string();
        self.read(move |inner, conn| {
            // Pending first, then the index: a record leaves Pending only after it is indexed.
            let pending = inner
                .pending
                .read()
                .ok()
                .and_then(|p| p.get(p.by_id.get(&id)));
            match pending {
                Some(found) => Ok(Some(found)),
                None => indexed_decision(inner, conn, "id", &id),
            }
        })
        .await
    }

    async fn decision_by_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<StoredDecision>, StoreError> {
        let key = key.to_string();
        self.read(move |inner, conn| {
            let pending = inner
                .pending
                .read()
                .ok()
                .and_then(|p| p.get(p.by_key.get(&key)));
            match pending {
                Some(found) => Ok(Some(found)),
                None => indexed_decision(inner, conn, "idempotency_key", &key),
            }
        })
        .await
    }

    async fn list_decisions(
        &self,
        query: &DecisionQuery,
    ) -> Result<Vec<DecisionSummary>, StoreError> {
        let query = query.clone();
        self.read(move |inner, conn| {
            let limit = query.limit.max(1) as usize;
            // The newest decisions may still be pending; they come first.
            let mut items: Vec<DecisionSummary> = match inner.pending.read() {
                Ok(pending) => pending
                    .by_seq
                    .values()
                    .rev()
                    .map(|(s, _)| s)
                    .filter(|s| query.matches(s))
                    .take(limit)
                    .map(|s| DecisionSummary::of(s))
                    .collect(),
                Err(_) => Vec::new(),
            };
            let mut sql = String::from(
                "SELECT id, seq, flow, customer_id, outcome, arm, strategy_version, created_at_ms, strategy \
                 FROM decision_index WHERE 1 = 1",
            );
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            let mut filter = |clause: &str, value: rusqlite::types::Value| {
                values.push(value);
                sql.push_str(&format!(" AND {clause} ?{}", values.len()));
            };
            if let Some(customer) = &query.customer_id {
                filter("customer_id =", customer.clone().into());
            }
            if let Some(flow) = &query.flow {
                filter("flow =", flow.clone().into());
            }
            if let Some(strategy) = &query.strategy {
                filter("strategy =", strategy.clone().into());
            }
            if let Some(version) = &query.strategy_version {
                filter("strategy_version =", version.clone().into());
            }
            if let Some(from) = query.from_ms {
                filter("created_at_ms >=", from.into());
            }
            if let Some(to) = query.to_ms {
                filter("created_at_ms <", to.into());
            }
            if let Some(before) = query.before_seq {
                filter("seq <", before.into());
            }
            sql.push_str(&format!(" ORDER BY seq DESC LIMIT {limit}"));
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), |row| {
                Ok(DecisionSummary {
                    id: row.get(0)?,
                    seq: row.get(1)?,
                    flow: row.get(2)?,
                    customer_id: row.get(3)?,
                    outcome: row.get(4)?,
                    arm: row.get(5)?,
                    strategy_version: row.get(6)?,
                    created_at_ms: row.get(7)?,
                    strategy: row.get(8)?,
                })
            })?;
            for row in rows {
                let row = row?;
                // A record indexed while we read Pending shows up in both.
                if !items.iter().any(|i| i.seq == row.seq) {
                    items.push(row);
                }
            }
            items.sort_by_key(|item| std::cmp::Reverse(item.seq));
            items.truncate(limit);
            Ok(items)
        })
        .await
    }

    async fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        self.read(|inner, conn| {
            // The index's newest entry is a checkpoint the log must still hold, unchanged.
            let state = log_state(conn)?;
            let checkpoint =
                (state.indexed_seq > 0).then(|| (state.indexed_seq, state.indexed_hash.clone()));
            let mut verifier = ChainVerifier::with_checkpoint(checkpoint);
            let segments = log::segments(&inner.log_dir)?;
            let last = segments.last().copied();
            let mut retried = None;
            'segments: for segment in segments {
                let mut reader = SegmentReader::open(&inner.log_dir, segment, 0)?;
                loop {
                    match reader.next_frame() {
                        Scanned::Frame(stored, _) => {
                            if !verifier.push(
                                stored.seq,
                                &stored.record,
                                &stored.prev_hash,
                                &stored.hash,
                            ) {
                                break 'segments;
                            }
                        }
                        Scanned::Damaged { offset, reason } => {
                            // A frame followed only by zeros at the end of the newest segment
                            // is a write in progress (or an unacknowledged one a crash cut
                            // short, which the next start removes), not damage. Give a write
                            // in progress a moment, then look again.
                            if Some(segment) == last && retried != Some(offset) {
                                retried = Some(offset);
                                std::thread::sleep(Duration::from_millis(200));
                                reader = SegmentReader::open(&inner.log_dir, segment, offset)?;
                                continue;
                            }
                            let tail =
                                Some(segment) == last && tail_only(&inner.log_dir, segment, offset);
                            if !tail {
                                verifier.damaged(format!(
                                    "{} at byte {offset}: {reason}",
                                    log::segment_path(&inner.log_dir, segment).display()
                                ));
                            }
                            break 'segments;
                        }
                        Scanned::End => break,
                    }
                }
            }
            Ok(verifier.finish())
        })
        .await
    }
}
