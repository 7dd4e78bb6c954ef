//! The decision log on PostgreSQL: a node's log writer (group commit on the node's own hash chain) and the log's monthly partitions; checkpoints and the check are in `chain.rs`.
//!
//! **Group commit.** Requests wait in a channel; the writer takes every waiting one (up to
//! [`MAX_BATCH`]) and commits them in one transaction on a connection of its own: idempotency
//! keys claimed first (`ON CONFLICT DO NOTHING`: a key another node holds, or holds in a
//! transaction not yet committed, is waited for and then refused), the accepted records
//! chained and inserted with one `unnest` statement, the node's head moved — only if it is
//! still where this writer left it. One WAL flush per batch, never one per decision.
//!
//! **One node, one writer.** The writer's connection holds a session advisory lock on its
//! node id for as long as it lives: a second live process cannot append as the same node,
//! and a node that died releases the lock with its connection. After a failed batch (its
//! outcome unknown if the connection broke during `COMMIT`) the writer reconnects, retakes the
//! lock and re-reads its head from the database before the next batch.

use crate::error::{col, store_error, Db};
use crate::{PostgresOptions, PostgresStore, Tls};
use credence_store::chain::GENESIS_HASH;
use credence_store::node_chain::node_record_hash;
use credence_store::{AppendReceipt, NewDecision, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::Client;

/// Most decisions committed in one transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Decisions waiting for the writer before appends wait for room.
const QUEUE: usize = 16_384;
/// Advisory-lock key of partition creation.
const PARTITION_LOCK: i64 = 0x6372_6564_0000_0002;

struct AppendRequest {
    record: NewDecision,
    reply: oneshot::Sender<Result<AppendReceipt, StoreError>>,
}

/// A decision node: the handle of its log writer and checkpointer.
pub(crate) struct Node {
    id: String,
    appends: mpsc::Sender<AppendRequest>,
    unwritable: Arc<AtomicBool>,
    /// Dropped with the node: the checkpointer stops.
    _stop: watch::Sender<()>,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn node_lock_key(node_id: &str) -> String {
    format!("credence-node:{node_id}")
}

/// The host's name, for the default node id.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string())
}

/// Takes the session lock of `node_id` on `client`; false when a live process holds it.
async fn lock_node(client: &Client, node_id: &str) -> Result<bool, StoreError> {
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&node_lock_key(node_id)],
        )
        .await
        .db()?;
    col(&row, 0)
}

async fn connect_writer(config: &tokio_postgres::Config, tls: &Tls) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(tls.clone()).await.db()?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "the log writer's database connection ended");
        }
    });
    Ok(client)
}

async fn read_head(client: &Client, node_id: &str) -> Result<(i64, String), StoreError> {
    let row = client
        .query_one(
            "SELECT head_seq, head_hash FROM log_nodes WHERE node_id = $1",
            &[&node_id],
        )
        .await
        .db()?;
    Ok((col(&row, 0)?, col(&row, 1)?))
}

impl Node {
    pub(crate) async fn start(
        config: &tokio_postgres::Config,
        tls: &Tls,
        pool: &deadpool_postgres::Pool,
        options: &PostgresOptions,
        node_id: Option<&str>,
    ) -> Result<Node, StoreError> {
        let client = connect_writer(config, tls).await?;
        let id = match node_id {
            Some(id) => {
                if id.is_empty()
                    || id.len() > 64
                    || !id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                {
                    return Err(StoreError::Precondition {
                        what: format!("--node-id {id:?} is not a node id: use 1 to 64 letters, digits, '-', '_' or '.'"),
                    });
                }
                if !lock_node(&client, id).await? {
                    return Err(StoreError::Precondition {
                        what: format!("node id {id} is in use by a live process: give each node its own --node-id"),
                    });
                }
                id.to_string()
            }
            None => {
                let host = host_name();
                let mut chosen = None;
                for n in 1..=64 {
                    let candidate = if n == 1 {
                        host.clone()
                    } else {
                        format!("{host}-{n}")
                    };
                    if lock_node(&client, &candidate).await? {
                        chosen = Some(candidate);
                        break;
                    }
                }
                chosen.ok_or_else(|| StoreError::Precondition {
                    what: format!(
                        "64 processes on host {host} already append: give this one a --node-id"
                    ),
                })?
            }
        };
        let at = now_ms();
        client
            .execute(
                "INSERT INTO log_nodes (node_id, head_seq, head_hash, first_seen_ms, last_seen_ms) \
                 VALUES ($1, 0, $2, $3, $3) ON CONFLICT (node_id) DO NOTHING",
                &[&id, &GENESIS_HASH, &at],
            )
            .await
            .db()?;
        let head = read_head(&client, &id).await?;
        let head_seq = head.0;
        let mut partitions = HashSet::new();
        for month in [month_start_ms(at), next_month_start_ms(at)] {
            ensure_partition(&client, month, &mut partitions).await?;
        }
        let (appends, requests) = mpsc::channel(QUEUE);
        let unwritable = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            client,
            config: config.clone(),
            tls: tls.clone(),
            node_id: id.clone(),
            head,
            partitions,
            unwritable: unwritable.clone(),
            commit_window: Duration::from_micros(options.commit_window_us),
        };
        tokio::spawn(writer.run(requests));
        let (stop, stopped) = watch::channel(());
        tokio::spawn(crate::chain::checkpointer(
            pool.clone(),
            id.clone(),
            Duration::from_millis(options.checkpoint_every_ms.max(100)),
            stopped,
        ));
        tracing::info!(node = %id, head_seq, "decision node started");
        Ok(Node {
            id,
            appends,
            unwritable,
            _stop: stop,
        })
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) async fn append(&self, record: NewDecision) -> Result<AppendReceipt, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.appends
            .send(AppendRequest { record, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) fn writable(&self) -> Result<(), StoreError> {
        if self.appends.is_closed() {
            return Err(StoreError::Closed);
        }
        if self.unwritable.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable(
                "the decision log's last commit failed; the node retries with the next decision"
                    .into(),
            ));
        }
        Ok(())
    }
}

struct Writer {
    client: Client,
    config: tokio_postgres::Config,
    tls: Tls,
    node_id: String,
    head: (i64, String),
    partitions: HashSet<i64>,
    unwritable: Arc<AtomicBool>,
    /// The longest wait for more decisions after a batch's first (`group_commit`).
    commit_window: Duration,
}

impl Writer {
    async fn run(mut self, mut requests: mpsc::Receiver<AppendRequest>) {
        // The runtime's timer counts whole milliseconds: a wait is rounded up to the next one.
        let mut group = credence_store::group_commit::GroupCommit::new(self.commit_window);
        let drain = |requests: &mut mpsc::Receiver<AppendRequest>, batch: &mut Vec<_>| {
            while batch.len() < MAX_BATCH {
                match requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
        };
        while let Some(first) = requests.recv().await {
            let gathering = Instant::now();
            let mut batch = vec![first];
            drain(&mut requests, &mut batch);
            // Decisions arriving close together share one transaction (see `group_commit`).
            if let Some(wait) = group.wait(gathering, Instant::now(), batch.len()) {
                tokio::time::sleep(wait).await;
                drain(&mut requests, &mut batch);
            }
            group.observe(gathering, batch.len());
            let started = Instant::now();
            let size = batch.len();
            match self.commit(batch).await {
                Ok(()) => {
                    self.unwritable.store(false, Ordering::Relaxed);
                    metrics::histogram!(credence_store::METRIC_COMMIT_SECONDS)
                        .record(started.elapsed().as_secs_f64());
                    metrics::histogram!(credence_store::METRIC_BATCH_SIZE).record(size as f64);
                }
                Err(error) => {
                    self.unwritable.store(true, Ordering::Relaxed);
                    tracing::warn!(node = %self.node_id, %error, "a batch of decisions could not be committed; recovering");
                    if !self.recover(&mut requests).await {
                        // Dropping the receiver: every later append is refused at once.
                        return;
                    }
                }
            }
        }
    }

    /// After a failed batch: a working connection holding the node's lock, and the head as
    /// the database has it (the failed batch may have committed after all). Decisions arriving
    /// meanwhile are refused at once (`Unavailable`: retry, on this node later or on another),
    /// not held. False when this process may append no more (its node id was taken).
    async fn recover(&mut self, requests: &mut mpsc::Receiver<AppendRequest>) -> bool {
        let mut wait = Duration::from_millis(50);
        // A connection cut by the database (`pg_terminate_backend`, a failover) holds the node's
        // lock until its backend process has exited, which can take a moment after the cut: a
        // lock refused within this window is retried; refused beyond it, another process has it.
        let lock_grace = Duration::from_secs(10);
        let mut lock_refused_since: Option<Instant> = None;
        loop {
            while let Ok(request) = requests.try_recv() {
                let _ = request.reply.send(Err(StoreError::Unavailable(
                    "the decision log's database is unreachable; retry".into(),
                )));
            }
            let attempt = async {
                if self.client.is_closed() {
                    let client = connect_writer(&self.config, &self.tls).await?;
                    if !lock_node(&client, &self.node_id).await? {
                        return Err(StoreError::Precondition {
                            what: format!("node id {} was taken by another process while this one reconnected", self.node_id),
                        });
                    }
                    self.client = client;
                }
                read_head(&self.client, &self.node_id).await
            };
            match attempt.await {
                Ok(head) => {
                    self.head = head;
                    return true;
                }
                Err(error @ StoreError::Precondition { .. })
                    if lock_refused_since
                        .get_or_insert_with(Instant::now)
                        .elapsed()
                        < lock_grace =>
                {
                    tracing::warn!(node = %self.node_id, %error, "the node's lock is still held, perhaps by the cut connection; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(error @ StoreError::Precondition { .. }) => {
                    // Appending now would fork the chain: stop taking appends.
                    tracing::error!(node = %self.node_id, %error, "the log writer stops");
                    return false;
                }
                Err(error) => {
                    tracing::warn!(node = %self.node_id, %error, "the database is unreachable; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Commits a batch and answers each request: its receipt, a conflict for a key someone
    /// else holds, or (when the transaction fails) the error. `Err` when the batch failed.
    async fn commit(&mut self, batch: Vec<AppendRequest>) -> Result<(), StoreError> {
        for request in &batch {
            let month = month_start_ms(request.record.created_at_ms);
            if !self.partitions.contains(&month) {
                if let Err(error) =
                    ensure_partition(&self.client, month, &mut self.partitions).await
                {
                    answer_all(batch, &error);
                    return Err(error);
                }
            }
        }
        let result = self.transaction(&batch).await;
        match result {
            Ok((receipts, conflicts, head)) => {
                self.head = head;
                for request in batch {
                    let id = &request.record.id;
                    let answer = match (receipts.get(id), conflicts.get(id)) {
                        (Some(receipt), _) => Ok(receipt.clone()),
                        (None, Some(key)) => Err(StoreError::Conflict {
                            what: format!("idempotency key {key}"),
                        }),
                        (None, None) => Err(StoreError::Commit(format!(
                            "decision {id} was not among the committed rows"
                        ))),
                    };
                    let _ = request.reply.send(answer);
                }
                Ok(())
            }
            Err(error) => {
                answer_all(batch, &error);
                Err(error)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    async fn transaction(
        &mut self,
        batch: &[AppendRequest],
    ) -> Result<
        (
            HashMap<String, AppendReceipt>,
            HashMap<String, String>,
            (i64, String),
        ),
        StoreError,
    > {
        let transaction = self.client.transaction().await.db()?;
        let mut conflicts = HashMap::new();
        let keyed: Vec<&NewDecision> = batch
            .iter()
            .map(|r| &r.record)
            .filter(|r| r.idempotency_key.is_some())
            .collect();
        if !keyed.is_empty() {
            let keys: Vec<&str> = keyed
                .iter()
                .filter_map(|r| r.idempotency_key.as_deref())
                .collect();
            let ids: Vec<&str> = keyed.iter().map(|r| r.id.as_str()).collect();
            let at: Vec<i64> = keyed.iter().map(|r| r.created_at_ms).collect();
            let won: HashSet<String> = transaction
                .query(
                    "INSERT INTO decision_keys (idempotency_key, decision_id, created_at_ms) \
                     SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) \
                     ON CONFLICT (idempotency_key) DO NOTHING RETURNING decision_id",
                    &[&keys, &ids, &at],
                )
                .await
                .db()?
                .iter()
                .map(|row| col::<String>(row, 0))
                .collect::<Result<_, _>>()?;
            for record in keyed {
                if !won.contains(&record.id) {
                    conflicts.insert(
                        record.id.clone(),
                        record.idempotency_key.clone().unwrap_or_default(),
                    );
                }
            }
        }
        let accepted: Vec<&NewDecision> = batch
            .iter()
            .map(|r| &r.record)
            .filter(|r| !conflicts.contains_key(&r.id))
            .collect();
        let (mut node_seq, mut prev) = self.head.clone();
        let first_seq = node_seq;
        let mut columns = Columns::default();
        for record in &accepted {
            node_seq += 1;
            let hash = node_record_hash(&self.node_id, node_seq, &prev, record);
            columns.push(record, node_seq, &prev, &hash);
            prev = hash;
        }
        let mut receipts = HashMap::new();
        if !accepted.is_empty() {
            let rows = transaction
                .query(
                    "INSERT INTO decisions (id, node_id, node_seq, prev_hash, hash, flow, customer_id, \
                     idempotency_key, request_sha256, strategy, strategy_version, arm, outcome, as_of, \
                     language, created_at_ms, latency_us, input, decision) \
                     SELECT u.id, $1, u.node_seq, u.prev_hash, u.hash, u.flow, u.customer_id, \
                     u.idempotency_key, u.request_sha256, u.strategy, u.strategy_version, u.arm, \
                     u.outcome, u.as_of, u.language, u.created_at_ms, u.latency_us, u.input, u.decision \
                     FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], \
                     $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
                     $13::text[], $14::text[], $15::text[], $16::bigint[], $17::bigint[], \
                     $18::text[], $19::text[]) AS u(id, node_seq, prev_hash, hash, flow, \
                     customer_id, idempotency_key, request_sha256, strategy, strategy_version, arm, \
                     outcome, as_of, language, created_at_ms, latency_us, input, decision) \
                     RETURNING id, seq, hash",
                    &[
                        &self.node_id,
                        &columns.id,
                        &columns.node_seq,
                        &columns.prev_hash,
                        &columns.hash,
                        &columns.flow,
                        &columns.customer_id,
                        &columns.idempotency_key,
                        &columns.request_sha256,
                        &columns.strategy,
                        &columns.strategy_version,
                        &columns.arm,
                        &columns.outcome,
                        &columns.as_of,
                        &columns.language,
                        &columns.created_at_ms,
                        &columns.latency_us,
                        &columns.input,
                        &columns.decision,
                    ],
                )
                .await
                .db()?;
            for row in &rows {
                let id: String = col(row, 0)?;
                receipts.insert(
                    id,
                    AppendReceipt {
                        seq: col(row, 1)?,
                        hash: col(row, 2)?,
                    },
                );
            }
            let moved = transaction
                .execute(
                    "UPDATE log_nodes SET head_seq = $2, head_hash = $3, last_seen_ms = $4 \
                     WHERE node_id = $1 AND head_seq = $5",
                    &[&self.node_id, &node_seq, &prev, &now_ms(), &first_seq],
                )
                .await
                .db()?;
            if moved != 1 {
                return Err(StoreError::Commit(format!(
                    "node {}'s chain head moved under its writer: another process appended as this node",
                    self.node_id
                )));
            }
        }
        transaction.commit().await.db()?;
        Ok((receipts, conflicts, (node_seq, prev)))
    }
}

fn answer_all(batch: Vec<AppendRequest>, error: &StoreError) {
    for request in batch {
        let answer = match error {
            StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
            other => StoreError::Commit(other.to_string()),
        };
        let _ = request.reply.send(Err(answer));
    }
}

/// The accepted records of a batch, column by column, for one `unnest` insert.
#[derive(Default)]
struct Columns<'a> {
    id: Vec<&'a str>,
    node_seq: Vec<i64>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
    flow: Vec<&'a str>,
    customer_id: Vec<Option<&'a str>>,
    idempotency_key: Vec<Option<&'a str>>,
    request_sha256: Vec<&'a str>,
    strategy: Vec<&'a str>,
    strategy_version: Vec<&'a str>,
    arm: Vec<Option<&'a str>>,
    outcome: Vec<&'a str>,
    as_of: Vec<&'a str>,
    language: Vec<&'a str>,
    created_at_ms: Vec<i64>,
    latency_us: Vec<i64>,
    input: Vec<&'a str>,
    decision: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, r: &'a NewDecision, node_seq: i64, prev: &str, hash: &str) {
        self.id.push(&r.id);
        self.node_seq.push(node_seq);
        self.prev_hash.push(prev.to_string());
        self.hash.push(hash.to_string());
        self.flow.push(&r.flow);
        self.customer_id.push(r.customer_id.as_deref());
        self.idempotency_key.push(r.idempotency_key.as_deref());
        self.request_sha256.push(&r.request_sha256);
        self.strategy.push(&r.strategy);
        self.strategy_version.push(&r.strategy_version);
        self.arm.push(r.arm.as_deref());
        self.outcome.push(&r.outcome);
        self.as_of.push(&r.as_of);
        self.language.push(&r.language);
        self.created_at_ms.push(r.created_at_ms);
        self.latency_us.push(r.latency_us);
        self.input.push(&r.input);
        self.decision.push(&r.decision);
    }
}

/// The first millisecond of the month holding `at_ms` (UTC).
pub(crate) fn month_start_ms(at_ms: i64) -> i64 {
    use chrono::{Datelike, TimeZone};
    let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    chrono::Utc
        .with_ymd_and_hms(at.year(), at.month(), 1, 0, 0, 0)
        .single()
        .map(|d| d.timestamp_millis())
        .unwrap_or(0)
}

/// The first millisecond of the month after the one holding `at_ms`.
pub(crate) fn next_month_start_ms(at_ms: i64) -> i64 {
    // 32 days after the month's first day is always in the next month.
    month_start_ms(month_start_ms(at_ms) + 32 * 86_400_000)
}

/// The partition's name for the month starting at `month_ms`: `decisions_y2026m12`.
pub(crate) fn partition_name(month_ms: i64) -> String {
    use chrono::Datelike;
    let at = chrono::DateTime::from_timestamp_millis(month_ms).unwrap_or_default();
    format!("decisions_y{:04}m{:02}", at.year(), at.month())
}

/// Creates the month's partition if it is missing (under a lock: nodes may race).
async fn ensure_partition(
    client: &Client,
    month_ms: i64,
    known: &mut HashSet<i64>,
) -> Result<(), StoreError> {
    let name = partition_name(month_ms);
    let end = next_month_start_ms(month_ms);
    let created = client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({PARTITION_LOCK}); \
             CREATE TABLE IF NOT EXISTS {name} PARTITION OF decisions FOR VALUES FROM ({month_ms}) TO ({end}); \
             COMMIT;"
        ))
        .await;
    if let Err(error) = created {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(store_error(error));
    }
    known.insert(month_ms);
    Ok(())
}

impl PostgresStore {
    pub(crate) async fn append(&self, record: NewDecision) -> Result<AppendReceipt, StoreError> {
        match &self.inner.node {
            Some(node) => node.append(record).await,
            None => Err(StoreError::Precondition {
                what: "this process opened the database to manage it, not to decide: start `credence serve` to append decisions".into(),
            }),
        }
    }

    pub(crate) fn log_writable(&self) -> Result<(), StoreError> {
        match &self.inner.node {
            Some(node) => node.writable(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_and_their_partitions() {
        // 2026-12-06T10:00:00Z, 2026-12-01T00:00:00Z, 2027-01-01T00:00:00Z
        let cases = [
            (
                1_796_551_200_000,
                1_796_083_200_000,
                1_798_761_600_000,
                "decisions_y2026m12",
            ),
            (0, 0, 2_678_400_000, "decisions_y1970m01"),
            (
                1_796_083_200_000,
                1_796_083_200_000,
                1_798_761_600_000,
                "decisions_y2026m12",
            ),
        ];
        for (at, start, next, name) in cases {
            assert_eq!(month_start_ms(at), start, "{at}");
            assert_eq!(next_month_start_ms(at), next, "{at}");
            assert_eq!(partition_name(month_start_ms(at)), name);
        }
    }
}
