//! The log's checkpoints and its check on PostgreSQL: the checkpointer that binds every node's chain head into a chained checkpoint, and the verification of the whole log in one snapshot.

use crate::decisions::{decision_from_row, DECISION_COLUMNS};
use crate::error::{col, Db};
use crate::log::now_ms;
use crate::PostgresStore;
use credence_store::chain::{ChainReport, GENESIS_HASH};
use credence_store::node_chain::{checkpoint_hash, Checkpoint, ClusterVerifier, NodeHead};
use credence_store::StoreError;
use futures_util::{pin_mut, TryStreamExt};
use std::time::Duration;
use tokio::sync::watch;
use tokio_postgres::Client;

/// Advisory-lock key of checkpoint writing.
const CHECKPOINT_LOCK: i64 = 0x6372_6564_0000_0001;

/// The checkpointer: every `every`, binds the heads into a new checkpoint if any moved.
pub(crate) async fn checkpointer(
    pool: deadpool_postgres::Pool,
    node_id: String,
    every: Duration,
    mut stop: watch::Receiver<()>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let result = async {
            let mut client = pool.get().await.map_err(crate::error::pool_error)?;
            checkpoint_on(&mut client, &node_id).await
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(node = %node_id, %error, "a checkpoint could not be written");
        }
    }
}

/// Writes a checkpoint of every node's head, if any moved since the newest one.
pub(crate) async fn write_checkpoint(
    store: &PostgresStore,
    written_by: &str,
) -> Result<(), StoreError> {
    let mut client = store.client().await?;
    checkpoint_on(&mut client, written_by).await
}

async fn checkpoint_on(client: &mut Client, written_by: &str) -> Result<(), StoreError> {
    let transaction = client.transaction().await.db()?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&CHECKPOINT_LOCK])
        .await
        .db()?;
    let newest = transaction
        .query_opt(
            "SELECT seq, heads, hash FROM log_checkpoints ORDER BY seq DESC LIMIT 1",
            &[],
        )
        .await
        .db()?;
    let heads = heads(&transaction).await?;
    let heads_json = serde_json::to_string(&heads)
        .map_err(|e| StoreError::Corrupt(format!("chain heads as JSON: {e}")))?;
    let (seq, prev_hash) = match &newest {
        Some(row) => {
            let previous_heads: String = col(row, 1)?;
            if previous_heads == heads_json {
                return transaction.commit().await.db();
            }
            (col::<i64>(row, 0)? + 1, col::<String>(row, 2)?)
        }
        None if heads.iter().all(|h| h.node_seq == 0) => return transaction.commit().await.db(),
        None => (1, GENESIS_HASH.to_string()),
    };
    let at_ms = now_ms();
    let hash = checkpoint_hash(seq, &prev_hash, written_by, at_ms, &heads);
    transaction
        .execute(
            "INSERT INTO log_checkpoints (seq, written_by, at_ms, heads, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&seq, &written_by, &at_ms, &heads_json, &prev_hash, &hash],
        )
        .await
        .db()?;
    transaction.commit().await.db()
}

async fn heads(client: &impl tokio_postgres::GenericClient) -> Result<Vec<NodeHead>, StoreError> {
    client
        .query(
            "SELECT node_id, head_seq, head_hash FROM log_nodes ORDER BY node_id",
            &[],
        )
        .await
        .db()?
        .iter()
        .map(node_head)
        .collect()
}

/// A node's head from (node id, sequence, hash) columns.
fn node_head(row: &tokio_postgres::Row) -> Result<NodeHead, StoreError> {
    Ok(NodeHead {
        node_id: col(row, 0)?,
        node_seq: col(row, 1)?,
        hash: col(row, 2)?,
    })
}

impl PostgresStore {
    /// Checks the whole log in one consistent snapshot: every node's chain, the checkpoint
    /// chain, the newest checkpoint's claims and the nodes' recorded heads.
    pub(crate) async fn verify(&self) -> Result<ChainReport, StoreError> {
        let mut client = self.client().await?;
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .db()?;
        // A whole log takes longer than one request's statement timeout.
        transaction
            .batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .db()?;
        let anchors = transaction
            .query("SELECT node_id, node_seq, hash FROM log_retention", &[])
            .await
            .db()?
            .iter()
            .map(node_head)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut verifier = ClusterVerifier::new(anchors, None);
        // Each stream is dropped before the next statement: a stream left unread would hold
        // the connection's remaining rows and the next statement would wait behind them.
        {
            let checkpoints = transaction
                .query_raw(
                    "SELECT seq, written_by, at_ms, heads, prev_hash, hash FROM log_checkpoints ORDER BY seq",
                    std::iter::empty::<i64>(),
                )
                .await
                .db()?;
            pin_mut!(checkpoints);
            while let Some(row) = checkpoints.try_next().await.db()? {
                let heads_json: String = col(&row, 3)?;
                let checkpoint = Checkpoint {
                    seq: col(&row, 0)?,
                    written_by: col(&row, 1)?,
                    at_ms: col(&row, 2)?,
                    heads: serde_json::from_str(&heads_json).map_err(|e| {
                        StoreError::Corrupt(format!("the heads of a checkpoint: {e}"))
                    })?,
                    prev_hash: col(&row, 4)?,
                    hash: col(&row, 5)?,
                };
                if !verifier.checkpoint(&checkpoint) {
                    break;
                }
            }
        }
        {
            let records = transaction
                .query_raw(
                    &format!("SELECT node_id, node_seq, {DECISION_COLUMNS} FROM decisions ORDER BY node_id, node_seq"),
                    std::iter::empty::<i64>(),
                )
                .await
                .db()?;
            pin_mut!(records);
            while let Some(row) = records.try_next().await.db()? {
                let node_id: String = col(&row, 0)?;
                let node_seq: i64 = col(&row, 1)?;
                let stored = decision_from_row(&row, 2)?;
                if !verifier.record(
                    stored.seq,
                    &node_id,
                    node_seq,
                    &stored.prev_hash,
                    &stored.hash,
                    &stored.record,
                ) {
                    break;
                }
            }
        }
        let recorded = heads(&*transaction).await?;
        transaction.commit().await.db()?;
        Ok(verifier.finish(&recorded))
    }

    /// The heads of every node's chain, as the nodes recorded them.
    pub async fn node_heads(&self) -> Result<Vec<NodeHead>, StoreError> {
        let client = self.client().await?;
        heads(&**client).await
    }
}

impl PostgresStore {
    /// Retention: drops the log's monthly partitions older than the newest `keep_months`
    /// (counting the month of `now_ms`), whole, with their idempotency keys. Each node's chain
    /// then starts after an anchor — its last dropped record's sequence and hash — so the
    /// rest still verifies. Refused when a node's chain does not split cleanly at the cut (a
    /// record kept that comes before one dropped: its clock went back across the month's
    /// end). Returns each dropped month (`YYYY-MM`) with its count of decisions.
    pub async fn drop_months_before(
        &self,
        now_ms: i64,
        keep_months: u32,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let mut cutoff = crate::log::month_start_ms(now_ms);
        for _ in 1..keep_months.max(1) {
            cutoff = crate::log::month_start_ms(cutoff - 1);
        }
        let mut client = self.client().await?;
        let transaction = client.transaction().await.db()?;
        transaction
            .batch_execute("SET LOCAL statement_timeout = 0")
            .await
            .db()?;
        // No checkpoint is written while the chains' starts move.
        transaction
            .execute("SELECT pg_advisory_xact_lock($1)", &[&CHECKPOINT_LOCK])
            .await
            .db()?;
        let partitions: Vec<String> = transaction
            .query(
                "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
                 JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'decisions' ORDER BY 1",
                &[],
            )
            .await
            .db()?
            .iter()
            .map(|row| col(row, 0))
            .collect::<Result<_, _>>()?;
        let old: Vec<String> = partitions
            .into_iter()
            .filter(|name| partition_month_ms(name).is_some_and(|m| m < cutoff))
            .collect();
        if old.is_empty() {
            return Ok(Vec::new());
        }
        let anchors = transaction
            .query(
                "SELECT DISTINCT ON (node_id) node_id, node_seq, hash FROM decisions \
                 WHERE created_at_ms < $1 ORDER BY node_id, node_seq DESC",
                &[&cutoff],
            )
            .await
            .db()?;
        for row in &anchors {
            let (node, node_seq, hash): (String, i64, String) =
                (col(row, 0)?, col(row, 1)?, col(row, 2)?);
            let tangled = transaction
                .query_one(
                    "SELECT COUNT(*) FROM decisions WHERE node_id = $1 AND node_seq < $2 \
                     AND created_at_ms >= $3",
                    &[&node, &node_seq, &cutoff],
                )
                .await
                .db()?;
            if col::<i64>(&tangled, 0)? > 0 {
                return Err(StoreError::Precondition {
                    what: format!(
                        "node {node}'s chain does not split at the month's end (a record kept precedes one to drop: its clock went back); keep one more month"
                    ),
                });
            }
            transaction
                .execute(
                    "INSERT INTO log_retention (node_id, node_seq, hash, dropped_through_ms) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (node_id) DO UPDATE SET \
                     node_seq = excluded.node_seq, hash = excluded.hash, \
                     dropped_through_ms = excluded.dropped_through_ms",
                    &[&node, &node_seq, &hash, &cutoff],
                )
                .await
                .db()?;
        }
        transaction
            .execute(
                "DELETE FROM decision_keys WHERE created_at_ms < $1",
                &[&cutoff],
            )
            .await
            .db()?;
        let mut dropped = Vec::new();
        for name in old {
            let count = transaction
                .query_one(&format!("SELECT COUNT(*) FROM {name}"), &[])
                .await
                .db()?;
            let count: i64 = col(&count, 0)?;
            transaction
                .batch_execute(&format!("DROP TABLE {name}"))
                .await
                .db()?;
            let month = partition_month_ms(&name)
                .and_then(chrono::DateTime::from_timestamp_millis)
                .map(|m| m.format("%Y-%m").to_string())
                .unwrap_or(name);
            dropped.push((month, count.max(0) as u64));
        }
        transaction.commit().await.db()?;
        Ok(dropped)
    }
}

/// The first millisecond of the month a partition's name (`decisions_y2026m12`) holds.
fn partition_month_ms(name: &str) -> Option<i64> {
    let rest = name.strip_prefix("decisions_y")?;
    let (year, month) = rest.split_once('m')?;
    let date = chrono::NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}
