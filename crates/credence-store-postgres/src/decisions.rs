//! Reading the decision log on PostgreSQL: by id, by idempotency key, pages of history; appends go to the node's log writer (`log.rs`).

use crate::error::{col, Db};
use crate::filters::Filters;
use crate::PostgresStore;
use credence_store::chain::ChainReport;
use credence_store::prelude::*;
use credence_store::*;
use tokio_postgres::Row;

/// The columns [`decision_from_row`] reads, in its order.
pub(crate) const DECISION_COLUMNS: &str = "seq, prev_hash, hash, id, flow, customer_id, \
    idempotency_key, request_sha256, strategy, strategy_version, arm, outcome, as_of, language, \
    created_at_ms, latency_us, input, decision";

/// A stored decision from [`DECISION_COLUMNS`] starting at column `at`.
pub(crate) fn decision_from_row(row: &Row, at: usize) -> Result<StoredDecision, StoreError> {
    Ok(StoredDecision {
        seq: col(row, at)?,
        prev_hash: col(row, at + 1)?,
        hash: col(row, at + 2)?,
        record: NewDecision {
            id: col(row, at + 3)?,
            flow: col(row, at + 4)?,
            customer_id: col(row, at + 5)?,
            idempotency_key: col(row, at + 6)?,
            request_sha256: col(row, at + 7)?,
            strategy: col(row, at + 8)?,
            strategy_version: col(row, at + 9)?,
            arm: col(row, at + 10)?,
            outcome: col(row, at + 11)?,
            as_of: col(row, at + 12)?,
            language: col(row, at + 13)?,
            created_at_ms: col(row, at + 14)?,
            latency_us: col(row, at + 15)?,
            input: col(row, at + 16)?,
            decision: col(row, at + 17)?,
        },
    })
}

#[async_trait::async_trait]
impl DecisionLog for PostgresStore {
    async fn append_decision(&self, decision: NewDecision) -> Result<AppendReceipt, StoreError> {
        self.append(decision).await
    }

    async fn writable(&self) -> Result<(), StoreError> {
        self.log_writable()
    }

    async fn decision(&self, id: &str) -> Result<Option<StoredDecision>, StoreError> {
        self.select_one(
            &format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = $1"),
            &[&id],
            |row| decision_from_row(row, 0),
        )
        .await
    }

    async fn decision_by_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<StoredDecision>, StoreError> {
        let client = self.client().await?;
        // The key's row carries the decision's time: only its month's partition is read.
        let statement = client
            .prepare_cached(&format!(
                "SELECT {} FROM decision_keys k JOIN decisions d \
                 ON d.id = k.decision_id AND d.created_at_ms = k.created_at_ms \
                 WHERE k.idempotency_key = $1",
                DECISION_COLUMNS
                    .split(", ")
                    .map(|c| format!("d.{}", c.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .await
            .db()?;
        client
            .query_opt(&statement, &[&key])
            .await
            .db()?
            .map(|row| decision_from_row(&row, 0))
            .transpose()
    }

    async fn list_decisions(
        &self,
        query: &DecisionQuery,
    ) -> Result<Vec<DecisionSummary>, StoreError> {
        let mut filters = Filters::new(
            "SELECT id, seq, flow, customer_id, outcome, arm, strategy_version, created_at_ms, strategy \
             FROM decisions WHERE true"
                .to_string(),
        );
        filters.and_if("customer_id =", query.customer_id.as_ref());
        filters.and_if("flow =", query.flow.as_ref());
        filters.and_if("strategy =", query.strategy.as_ref());
        filters.and_if("strategy_version =", query.strategy_version.as_ref());
        filters.and_if("created_at_ms >=", query.from_ms.as_ref());
        filters.and_if("created_at_ms <", query.to_ms.as_ref());
        filters.and_if("seq <", query.before_seq.as_ref());
        filters.push(&format!(" ORDER BY seq DESC LIMIT {}", query.limit.max(1)));
        let client = self.client().await?;
        client
            .query(filters.sql(), &filters.parameters())
            .await
            .db()?
            .iter()
            .map(|row| {
                Ok(DecisionSummary {
                    id: col(row, 0)?,
                    seq: col(row, 1)?,
                    flow: col(row, 2)?,
                    customer_id: col(row, 3)?,
                    outcome: col(row, 4)?,
                    arm: col(row, 5)?,
                    strategy_version: col(row, 6)?,
                    created_at_ms: col(row, 7)?,
                    strategy: col(row, 8)?,
                })
            })
            .collect()
    }

    async fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        self.verify().await
    }
}

/// A decision as exported: the stored decision and its place in its node's chain.
#[derive(Debug, Clone)]
pub struct LogExport {
    /// The node that wrote it.
    pub node_id: String,
    /// Its place in that node's chain.
    pub node_seq: i64,
    /// The record, its position in the whole log and its hashes.
    pub stored: StoredDecision,
}

impl PostgresStore {
    /// The decisions of the month starting at `month_ms` (UTC), in log order, a page at a
    /// time after `after_seq`: `credence log export` writes them to Parquet.
    pub async fn export_page(
        &self,
        month_ms: i64,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<LogExport>, StoreError> {
        let end = crate::log::next_month_start_ms(month_ms);
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT node_id, node_seq, {DECISION_COLUMNS} FROM decisions \
                     WHERE created_at_ms >= $1 AND created_at_ms < $2 AND seq > $3 \
                     ORDER BY seq LIMIT $4"
                ),
                &[&month_ms, &end, &after_seq, &i64::from(limit.max(1))],
            )
            .await
            .db()?;
        rows.iter()
            .map(|row| {
                Ok(LogExport {
                    node_id: col(row, 0)?,
                    node_seq: col(row, 1)?,
                    stored: decision_from_row(row, 2)?,
                })
            })
            .collect()
    }
}
