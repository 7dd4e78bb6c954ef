//! The embedded store: the decision log in append-only segment files ([`crate::log`]), and
//! everything else — the log's index, strategy versions, activations, keys, audit events — in
//! one SQLite database in WAL mode.
//!
//! Threads: the **log writer** takes every waiting decision, appends the batch and syncs it
//! once, then acknowledges each (group commit: one `fdatasync` for the batch). Acknowledged
//! decisions wait in memory (`Pending`) until the **indexer** writes them into the SQLite
//! index in one transaction every quarter second; reads look in `Pending` first, then the index. The
//! **SQLite writer** runs every database write, each in its own savepoint, committing what is
//! waiting in one transaction with `synchronous=FULL` — except index batches, which need no
//! sync because recovery rebuilds the index from the log. Readers use a pool of connections on
//! the blocking thread pool. The SQLite writer and the indexer run at a lower priority than the
//! log writer and the request threads ([`crate::priority`] says why).
//!
//! One process appends to a data directory at a time (a lock file says so); others open it
//! with [`SqliteStore::open_shared`] to manage keys and strategies and to read and verify the
//! log, but cannot append decisions.

use crate::chain::{ChainReport, ChainVerifier, GENESIS_HASH};
use crate::error::StoreError;
use crate::log::{self, Appender, FramePosition, Scanned, SegmentReader};
use crate::records::*;
use crate::Store;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "credence.sqlite3";
/// The directory of decision-log segments inside the data directory.
pub const LOG_DIR: &str = "log";
const LOCK_FILE: &str = "writer.lock";

/// Most writes committed in one batch.
const MAX_BATCH: usize = 1024;
/// How often acknowledged decisions are moved from memory into the index. Large batches
/// matter: the customer index takes a random leaf page per record, and a batch that touches
/// each leaf once writes far less than many small ones.
const INDEX_EVERY: Duration = Duration::from_millis(250);

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS decision_index (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    flow TEXT NOT NULL,
    customer_id TEXT,
    idempotency_key TEXT,
    outcome TEXT NOT NULL,
    arm TEXT,
    strategy_version TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    segment BIGINT NOT NULL,
    frame_offset BIGINT NOT NULL,
    frame_length BIGINT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS decision_index_by_id ON decision_index (id);
CREATE INDEX IF NOT EXISTS decision_index_by_customer ON decision_index (customer_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS decision_index_by_idempotency_key ON decision_index (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS log_state (
    id BIGINT PRIMARY KEY,
    indexed_seq BIGINT NOT NULL,
    indexed_hash TEXT NOT NULL,
    segment BIGINT NOT NULL,
    next_offset BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS strategy_versions (
    version TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at_ms BIGINT NOT NULL,
    approved_by TEXT,
    approved_at_ms BIGINT,
    cases_passed BIGINT NOT NULL,
    package BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS activations (
    seq BIGINT PRIMARY KEY,
    version TEXT NOT NULL REFERENCES strategy_versions (version),
    activated_by TEXT NOT NULL,
    activated_at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_events (
    seq BIGINT PRIMARY KEY,
    at_ms BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS review_cases (
    id TEXT PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    priority BIGINT NOT NULL,
    state TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    due_at_ms BIGINT NOT NULL,
    version BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS review_cases_by_due ON review_cases (state, due_at_ms);
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id BIGINT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT,
    delivered_at_ms BIGINT,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (next_attempt_ms);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    decision_id TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    version BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS accounts_by_customer ON accounts (customer_id);
CREATE TABLE IF NOT EXISTS account_events (
    account_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_time_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (account_id, event_id)
);
CREATE TABLE IF NOT EXISTS provider_answers (
    source_key TEXT NOT NULL,
    subject TEXT NOT NULL,
    provider TEXT NOT NULL,
    values_json TEXT NOT NULL,
    fetched_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (source_key, subject)
);
CREATE INDEX IF NOT EXISTS provider_answers_by_expiry ON provider_answers (expires_at_ms);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    user_name TEXT NOT NULL,
    roles TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at_ms BIGINT
);
";

/// The store. Cheap to clone; every clone shares the threads and the readers.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    log_dir: PathBuf,
    writer: mpsc::Sender<Box<dyn Job>>,
    /// `None` when opened shared: this process may not append decisions.
    appender: Option<mpsc::Sender<AppendRequest>>,
    pending: Arc<RwLock<Pending>>,
    readers: Mutex<Vec<Connection>>,
    /// Held for the life of an appending store.
    _lock: Option<std::fs::File>,
    /// Set by the log writer when an append (or starting a segment) fails, cleared by the next
    /// append that succeeds.
    log_unwritable: Arc<std::sync::atomic::AtomicBool>,
}

/// Acknowledged decisions not yet in the index.
#[derive(Default)]
struct Pending {
    by_seq: BTreeMap<i64, (Arc<StoredDecision>, FramePosition)>,
    by_id: HashMap<String, i64>,
    by_key: HashMap<String, i64>,
}

impl Pending {
    fn insert(&mut self, stored: Arc<StoredDecision>, position: FramePosition) {
        self.by_id.insert(stored.record.id.clone(), stored.seq);
        if let Some(key) = &stored.record.idempotency_key {
            self.by_key.insert(key.clone(), stored.seq);
        }
        self.by_seq.insert(stored.seq, (stored, position));
    }

    fn remove_through(&mut self, seq: i64) {
        let rest = self.by_seq.split_off(&(seq + 1));
        for (stored, _) in std::mem::replace(&mut self.by_seq, rest).into_values() {
            self.by_id.remove(&stored.record.id);
            if let Some(key) = &stored.record.idempotency_key {
                self.by_key.remove(key);
            }
        }
    }

    fn get(&self, seq: Option<&i64>) -> Option<StoredDecision> {
        seq.and_then(|seq| self.by_seq.get(seq))
            .map(|(stored, _)| (**stored).clone())
    }
}

struct AppendRequest {
    record: NewDecision,
    reply: oneshot::Sender<Result<AppendReceipt, StoreError>>,
}

/// Called with the batch's commit result once the transaction has ended.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;

trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection) -> Completion;
    fn abandon(self: Box<Self>, error: &StoreError);
    /// Whether the commit holding this job must be synced before it is acknowledged.
    fn durable(&self) -> bool;
}

struct Work<T, F> {
    work: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    /// False only for the log index, which is rebuilt from the log after a crash.
    durable: bool,
}

impl<T, F> Job for Work<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(self: Box<Self>, conn: &Connection) -> Completion {
        let Work { work, reply, .. } = *self;
        let result = conn
            .execute_batch("SAVEPOINT job")
            .map_err(StoreError::from)
            .and_then(|()| work(conn));
        let result = match result {
            Ok(value) => conn
                .execute_batch("RELEASE job")
                .map(|()| value)
                .map_err(StoreError::from),
            Err(error) => {
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                Err(error)
            }
        };
        Box::new(move |commit: Option<&StoreError>| {
            let outcome = match (result, commit) {
                (Ok(_), Some(error)) => Err(refusal(error)),
                (result, _) => result,
            };
            let _ = reply.send(outcome);
        })
    }

    fn abandon(self: Box<Self>, error: &StoreError) {
        let _ = self.reply.send(Err(refusal(error)));
    }

    fn durable(&self) -> bool {
        self.durable
    }
}

fn io_error(path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        message: error.to_string(),
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )?;
    Ok(conn)
}

/// Where the index ends in the log: the last indexed record and the position after it.
#[derive(Debug, Clone)]
struct LogState {
    indexed_seq: i64,
    indexed_hash: String,
    segment: i64,
    next_offset: u64,
}

fn log_state(conn: &Connection) -> Result<LogState, StoreError> {
    Ok(conn.query_row(
        "SELECT indexed_seq, indexed_hash, segment, next_offset FROM log_state WHERE id = 1",
        [],
        |row| {
            Ok(LogState {
                indexed_seq: row.get(0)?,
                indexed_hash: row.get(1)?,
                segment: row.get(2)?,
                next_offset: row.get::<_, i64>(3)? as u64,
            })
        },
    )?)
}

/// Writes decisions into the index and moves the log state past them.
fn index_decisions(
    conn: &Connection,
    batch: &[(Arc<StoredDecision>, FramePosition)],
) -> Result<(), StoreError> {
    let Some((last, last_position)) = batch.last() else {
        return Ok(());
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO decision_index (seq, id, flow, customer_id, idempotency_key, outcome, arm, \
         strategy_version, created_at_ms, segment, frame_offset, frame_length) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (seq) DO NOTHING",
    )?;
    for (stored, position) in batch {
        let r = &stored.record;
        insert.execute(params![
            stored.seq,
            r.id,
            r.flow,
            r.customer_id,
            r.idempotency_key,
            r.outcome,
            r.arm,
            r.strategy_version,
            r.created_at_ms,
            position.segment,
            position.offset as i64,
            position.length as i64
        ])?;
    }
    conn.prepare_cached(
        // Indexing is idempotent and only moves forward (recovery and a late batch may overlap).
        "UPDATE log_state SET indexed_seq = ?1, indexed_hash = ?2, segment = ?3, next_offset = ?4 \
         WHERE id = 1 AND indexed_seq < ?1",
    )?
    .execute(params![
        last.seq,
        last.hash,
        last_position.segment,
        last_position.end() as i64
    ])?;
    Ok(())
}

impl SqliteStore {
    /// The account whose `column` (a unique one: `id` or `decision_id`) equals `value`.
    async fn account_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        let value = value.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE {column} = ?1"),
                    [value],
                    account_from_row,
                )
                .optional()?)
        })
        .await
    }

    /// Opens (creating if needed) the store in `data_dir` as the one process that appends
    /// decisions: takes the writer lock, recovers the log's tail into the index, and starts
    /// the log writer.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(data_dir, true)
    }

    /// Opens the store beside a running appender: keys, strategies, reads and verification.
    pub fn open_shared(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(data_dir, false)
    }

    fn open_with(data_dir: &Path, append: bool) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| io_error(data_dir, e))?;
        let log_dir = data_dir.join(LOG_DIR);
        std::fs::create_dir_all(&log_dir).map_err(|e| io_error(&log_dir, e))?;
        let path = data_dir.join(DATABASE_FILE);
        let conn = open_connection(&path)?;
        migrate(&conn)?;
        let pending = Arc::new(RwLock::new(Pending::default()));
        let log_unwritable = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (lock, appender) = if append {
            let lock_path = data_dir.join(LOCK_FILE);
            let lock = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(|e| io_error(&lock_path, e))?;
            if lock.try_lock().is_err() {
                return Err(StoreError::Io {
                    path: data_dir.display().to_string(),
                    message: "another credence process is serving this data directory; stop it first (or give this one its own --data-dir)".into(),
                });
            }
            let (tip, end, unindexed) = recover(&conn, &log_dir)?;
            if !unindexed.is_empty() {
                // The index could not be written (a full disk): the records wait in memory,
                // as acknowledged ones do, until the indexer can write them.
                if let Ok(mut pending) = pending.write() {
                    for (stored, position) in unindexed {
                        pending.insert(stored, position);
                    }
                }
            }
            let appender = Appender::open(&log_dir, end)?;
            let index_conn = open_connection(&path)?;
            let (sender, receiver) = mpsc::channel::<AppendRequest>();
            let pending_for_writer = pending.clone();
            let unwritable = log_unwritable.clone();
            std::thread::Builder::new()
                .name("credence-log-writer".into())
                .spawn(move || {
                    run_log_writer(
                        appender,
                        tip,
                        receiver,
                        pending_for_writer,
                        index_conn,
                        unwritable,
                    )
                })
                .map_err(|e| io_error(&path, e))?;
            (Some(lock), Some(sender))
        } else {
            (None, None)
        };
        let (sender, receiver) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("credence-db-writer".into())
            .spawn(move || run_writer(conn, receiver))
            .map_err(|e| io_error(&path, e))?;
        let inner = Arc::new(Inner {
            path: path.clone(),
            log_dir,
            writer: sender,
            appender,
            pending,
            readers: Mutex::new(Vec::new()),
            _lock: lock,
            log_unwritable,
        });
        if append {
            let watched = Arc::downgrade(&inner);
            std::thread::Builder::new()
                .name("credence-log-indexer".into())
                .spawn(move || run_indexer(watched))
                .map_err(|e| io_error(&path, e))?;
        }
        Ok(SqliteStore { inner })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `work` in the next database batch, in its own savepoint; returns after the commit.
    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(Box::new(Work {
                work,
                reply,
                durable: true,
            }))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path)?,
            };
            let result = work(&inner, &conn);
            if let Ok(mut pool) = inner.readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("a read panicked: {e}")))?
    }
}

fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}; this build reads up to {SCHEMA_VERSION}: upgrade credence"
        )));
    }
    if version == SCHEMA_VERSION {
        // Up to date: nothing to write, so a store on a full disk still opens.
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<(), StoreError> {
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "INSERT INTO log_state (id, indexed_seq, indexed_hash, segment, next_offset) \
             SELECT 1, 0, ?1, 1, 0 WHERE NOT EXISTS (SELECT 1 FROM log_state WHERE id = 1)",
            [GENESIS_HASH],
        )?;
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(conn.execute_batch("COMMIT")?),
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(error)
        }
    }
}

/// The chain tip after recovery, where the next frame goes (segment, offset), and the records
/// found past the index that could not be indexed for want of space.
type Recovered = (
    (i64, String),
    Option<(i64, u64)>,
    Vec<(Arc<StoredDecision>, FramePosition)>,
);

/// Reads the log past the index, indexes what it finds, and returns the chain tip and where
/// the next frame goes. A torn frame at the very end (a write cut off by a crash before it
/// was synced, so never acknowledged) is cut off; damage anywhere else is an error.
fn recover(conn: &Connection, log_dir: &Path) -> Result<Recovered, StoreError> {
    let state = log_state(conn)?;
    let segments = log::segments(log_dir)?;
    let mut tip = (state.indexed_seq, state.indexed_hash.clone());
    let mut end: Option<(i64, u64)> = None;
    let mut found: Vec<(Arc<StoredDecision>, FramePosition)> = Vec::new();
    let last_segment = segments.last().copied();
    if state.indexed_seq > 0 && last_segment.is_none_or(|last| last < state.segment) {
        return Err(StoreError::Corrupt(format!(
            "the index records {} decision(s) but the log segments in {} are missing; restore them from backup",
            state.indexed_seq,
            log_dir.display()
        )));
    }
    for &segment in segments.iter().filter(|s| **s >= state.segment) {
        let offset = if segment == state.segment {
            state.next_offset
        } else {
            0
        };
        let mut reader = SegmentReader::open(log_dir, segment, offset)?;
        end = Some((segment, offset));
        loop {
            match reader.next_frame() {
                Scanned::Frame(stored, position) => {
                    let expected_hash =
                        crate::chain::record_hash(stored.seq, &tip.1, &stored.record);
                    if stored.seq != tip.0 + 1
                        || stored.prev_hash != tip.1
                        || stored.hash != expected_hash
                    {
                        return Err(StoreError::Corrupt(format!(
                            "{} at byte {}: record {} does not follow record {} in the hash chain; run `credence audit verify`",
                            log::segment_path(log_dir, segment).display(), position.offset, stored.seq, tip.0
                        )));
                    }
                    tip = (stored.seq, stored.hash.clone());
                    end = Some((segment, position.end()));
                    found.push((Arc::new(*stored), position));
                }
                Scanned::Damaged { offset, reason } => {
                    if Some(segment) != last_segment {
                        return Err(StoreError::Corrupt(format!(
                            "{} is damaged at byte {offset} ({reason}) and later segments exist; run `credence audit verify`",
                            log::segment_path(log_dir, segment).display()
                        )));
                    }
                    end = Some((segment, offset));
                    break;
                }
                Scanned::End => break,
            }
        }
    }
    if !found.is_empty() {
        let indexed = conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(StoreError::from)
            .and_then(|()| index_decisions(conn, &found))
            .and_then(|()| conn.execute_batch("COMMIT").map_err(StoreError::from));
        match indexed {
            Ok(()) => found.clear(),
            Err(StoreError::Unavailable(reason)) => {
                let _ = conn.execute_batch("ROLLBACK");
                tracing::warn!(%reason, count = found.len(), "decisions past the index stay in memory until the index can be written");
            }
            Err(error) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(error);
            }
        }
    }
    Ok((tip, end, found))
}

/// What a refused batch's callers are told: the store's own words for a full device (they
/// name no path), a commit failure otherwise.
fn refusal(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(reason) => StoreError::Unavailable(reason.clone()),
        other => StoreError::Commit(other.to_string()),
    }
}

fn index_has_key(conn: &Connection, key: &str) -> bool {
    conn.prepare_cached("SELECT 1 FROM decision_index WHERE idempotency_key = ?1")
        .and_then(|mut s| s.exists([key]))
        .unwrap_or(false)
}

fn run_log_writer(
    mut appender: Appender,
    mut tip: (i64, String),
    receiver: mpsc::Receiver<AppendRequest>,
    pending: Arc<RwLock<Pending>>,
    index_conn: Connection,
    unwritable: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let mut batch: Vec<AppendRequest> = Vec::with_capacity(MAX_BATCH);
    let mut frames: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut accepted = Vec::with_capacity(MAX_BATCH);
    let mut keys_in_batch: HashSet<String> = HashSet::new();
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        if let Err(error) = appender.rotate_if_full(tip.0 + 1) {
            tracing::error!(%error, "the decision log could not start a new segment; the batch is refused");
            unwritable.store(true, Ordering::Release);
            for request in batch.drain(..) {
                let _ = request.reply.send(Err(refusal(&error)));
            }
            continue;
        }
        let started = Instant::now();
        let start_tip = tip.clone();
        let start_offset = appender.size();
        let segment = appender.segment();
        frames.clear();
        keys_in_batch.clear();
        for request in batch.drain(..) {
            if let Some(key) = &request.record.idempotency_key {
                let taken = keys_in_batch.contains(key)
                    || pending
                        .read()
                        .map(|p| p.by_key.contains_key(key))
                        .unwrap_or(false)
                    || index_has_key(&index_conn, key);
                if taken {
                    let _ = request.reply.send(Err(StoreError::Conflict {
                        what: format!("a decision with idempotency key {key}"),
                    }));
                    continue;
                }
                keys_in_batch.insert(key.clone());
            }
            let stored = log::chain_next(tip.0, &tip.1, request.record);
            let offset = start_offset + frames.len() as u64;
            log::encode(&stored, &mut frames);
            let position = FramePosition {
                segment,
                offset,
                length: start_offset + frames.len() as u64 - offset,
            };
            tip = (stored.seq, stored.hash.clone());
            accepted.push((request.reply, Arc::new(stored), position));
        }
        if accepted.is_empty() {
            continue;
        }
        match appender.append_durably(&frames) {
            Ok(()) => {
                unwritable.store(false, Ordering::Release);
                if let Ok(mut pending) = pending.write() {
                    for (_, stored, position) in &accepted {
                        pending.insert(stored.clone(), *position);
                    }
                }
                metrics::histogram!(crate::METRIC_COMMIT_SECONDS)
                    .record(started.elapsed().as_secs_f64());
                metrics::histogram!(crate::METRIC_BATCH_SIZE).record(accepted.len() as f64);
                for (reply, stored, _) in accepted.drain(..) {
                    let _ = reply.send(Ok(AppendReceipt {
                        seq: stored.seq,
                        hash: stored.hash.clone(),
                    }));
                }
            }
            Err(error) => {
                tracing::error!(%error, "the decision log could not be written; the batch is refused");
                unwritable.store(true, Ordering::Release);
                tip = start_tip;
                for (reply, _, _) in accepted.drain(..) {
                    let _ = reply.send(Err(refusal(&error)));
                }
            }
        }
    }
}

/// Moves acknowledged decisions from memory into the index, a batch every [`INDEX_EVERY`].
/// Ends when the store is dropped, indexing what is left first.
fn run_indexer(store: std::sync::Weak<Inner>) {
    crate::priority::lower_this_thread();
    loop {
        std::thread::sleep(INDEX_EVERY);
        let Some(inner) = store.upgrade() else {
            return;
        };
        let batch: Vec<(Arc<StoredDecision>, FramePosition)> = match inner.pending.read() {
            Ok(pending) => pending.by_seq.values().take(20_000).cloned().collect(),
            Err(_) => return,
        };
        let Some(last_seq) = batch.last().map(|(s, _)| s.seq) else {
            continue;
        };
        let (reply, answer) = oneshot::channel();
        let job = Work {
            work: move |conn: &Connection| index_decisions(conn, &batch),
            reply,
            durable: false,
        };
        if inner.writer.send(Box::new(job)).is_err() {
            return;
        }
        drop(inner);
        match answer.blocking_recv() {
            Ok(Ok(())) => {
                if let Some(inner) = store.upgrade() {
                    if let Ok(mut pending) = inner.pending.write() {
                        pending.remove_through(last_seq);
                    }
                }
            }
            // The records stay pending and are retried; recovery re-indexes them after a crash.
            Ok(Err(error)) => tracing::warn!(%error, "indexing the decision log failed; retrying"),
            Err(_) => return,
        }
    }
}

/// Runs a statement without results from the connection's statement cache: the writer runs the
/// same few (BEGIN, COMMIT, the sync pragma) for every batch, and parsing them each time showed
/// as a tenth of its CPU.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(|_| ())
}

fn run_writer(conn: Connection, receiver: mpsc::Receiver<Box<dyn Job>>) {
    crate::priority::lower_this_thread();
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut completions: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    let mut synced = true;
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Index-only batches skip the sync: every device flush also slows the log's syncs.
        let durable = batch.iter().any(|job| job.durable());
        if durable != synced {
            let pragma = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            if run_cached(&conn, pragma).is_ok() {
                synced = durable;
            }
        }
        if let Err(error) = run_cached(&conn, "BEGIN IMMEDIATE") {
            let error = StoreError::from(error);
            for job in batch.drain(..) {
                job.abandon(&error);
            }
            continue;
        }
        for job in batch.drain(..) {
            completions.push(job.run(&conn));
        }
        let failure = match run_cached(&conn, "COMMIT") {
            Ok(()) => None,
            Err(error) => {
                let _ = run_cached(&conn, "ROLLBACK");
                Some(StoreError::from(error))
            }
        };
        for completion in completions.drain(..) {
            completion(failure.as_ref());
        }
    }
}

/// Whether a damaged frame at `offset` is the last thing written: nothing but zeros after
/// the bytes its length prefix claims (or the prefix itself runs past the end).
fn tail_only(log_dir: &Path, segment: i64, offset: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(log::segment_path(log_dir, segment)) else {
        return false;
    };
    let mut prefix = [0u8; 4];
    if file.seek(SeekFrom::Start(offset)).is_err() || file.read_exact(&mut prefix).is_err() {
        return true;
    }
    let claimed_end = offset + 4 + u64::from(u32::from_le_bytes(prefix));
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    claimed_end >= length || log::zeros_from(log_dir, segment, claimed_end)
}

const ACCOUNT_COLUMNS: &str = "id, customer_id, decision_id, status, version, updated_at_ms, body";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<AccountRecord> {
    Ok(AccountRecord {
        id: row.get(0)?,
        customer_id: row.get(1)?,
        decision_id: row.get(2)?,
        status: row.get(3)?,
        version: row.get(4)?,
        updated_at_ms: row.get(5)?,
        body: row.get(6)?,
    })
}

fn insert_account_row(conn: &Connection, account: &AccountRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(&format!(
        "INSERT INTO accounts ({ACCOUNT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    ))?
    .execute(params![
        account.id,
        account.customer_id,
        account.decision_id,
        account.status,
        account.version,
        account.updated_at_ms,
        account.body
    ])
}

fn insert_account_events(
    conn: &Connection,
    events: &[AccountEventRecord],
) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO account_events (account_id, event_id, event_time_ms, received_at_ms, kind, body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for event in events {
        statement
            .execute(params![
                event.account_id,
                event.event_id,
                event.event_time_ms,
                event.received_at_ms,
                event.kind,
                event.body
            ])
            .map_err(|e| {
                StoreError::from_insert(e, || {
                    format!("event {} of account {}", event.event_id, event.account_id)
                })
            })?;
    }
    Ok(())
}

/// Applies one account update; `Ok(false)` if the account changed since it was read.
fn apply_account_update(conn: &Connection, update: &AccountUpdate) -> Result<bool, StoreError> {
    let account = &update.account;
    let changed = conn
        .prepare_cached(
            "UPDATE accounts SET status = ?1, version = ?2, updated_at_ms = ?3, body = ?4 \
             WHERE id = ?5 AND version = ?6",
        )?
        .execute(params![
            account.status,
            update.expected_version + 1,
            account.updated_at_ms,
            account.body,
            account.id,
            update.expected_version
        ])?;
    if changed != 1 {
        return Ok(false);
    }
    insert_account_events(conn, &update.events)?;
    for event in &update.audit {
        insert_audit(conn, event)?;
    }
    Ok(true)
}

const CASE_COLUMNS: &str =
    "id, decision_id, queue, priority, state, created_at_ms, due_at_ms, version, body";

fn case_from_row(row: &Row<'_>) -> rusqlite::Result<CaseRecord> {
    Ok(CaseRecord {
        id: row.get(0)?,
        decision_id: row.get(1)?,
        queue: row.get(2)?,
        priority: row.get(3)?,
        state: row.get(4)?,
        created_at_ms: row.get(5)?,
        due_at_ms: row.get(6)?,
        version: row.get(7)?,
        body: row.get(8)?,
    })
}

fn position_from_row(row: &Row<'_>) -> rusqlite::Result<FramePosition> {
    Ok(FramePosition {
        segment: row.get(0)?,
        offset: row.get::<_, i64>(1)? as u64,
        length: row.get::<_, i64>(2)? as u64,
    })
}

/// A decision found through the index (after `Pending` missed).
fn indexed_decision(
    inner: &Inner,
    conn: &Connection,
    column: &str,
    value: &str,
) -> Result<Option<StoredDecision>, StoreError> {
    let position = conn
        .prepare_cached(&format!(
            "SELECT segment, frame_offset, frame_length FROM decision_index WHERE {column} = ?1"
        ))?
        .query_row([value], position_from_row)
        .optional()?;
    position
        .map(|position| log::read_at(&inner.log_dir, position))
        .transpose()
}

const STRATEGY_COLUMNS: &str =
    "version, name, state, uploaded_by, uploaded_at_ms, approved_by, approved_at_ms, cases_passed";

fn strategy_from_row(row: &Row<'_>) -> rusqlite::Result<StrategyRecord> {
    let state: String = row.get(2)?;
    Ok(StrategyRecord {
        version: row.get(0)?,
        name: row.get(1)?,
        state: StrategyState::parse(&state).unwrap_or(StrategyState::Draft),
        uploaded_by: row.get(3)?,
        uploaded_at_ms: row.get(4)?,
        approved_by: row.get(5)?,
        approved_at_ms: row.get(6)?,
        cases_passed: row.get(7)?,
    })
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    let roles: String = row.get(3)?;
    Ok(ApiKeyRecord {
        id: row.get(0)?,
        secret_sha256: row.get(1)?,
        user: row.get(2)?,
        roles: roles
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
        created_at_ms: row.get(4)?,
        created_by: row.get(5)?,
        revoked_at_ms: row.get(6)?,
    })
}

fn insert_audit(conn: &Connection, event: &NewAuditEvent) -> Result<(), StoreError> {
    // The next seq from the primary key's last entry: a lookup, not a scan (a bare MAX() inside
    // an expression is not answered from the index).
    conn.prepare_cached(
        "INSERT INTO audit_events (seq, at_ms, actor, action, subject, detail) \
         VALUES (COALESCE((SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 1), 0) + 1, \
                 ?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        event.at_ms,
        event.actor,
        event.action,
        event.subject,
        event.detail.to_string()
    ])?;
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
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
            let matches = |s: &StoredDecision| {
                let r = &s.record;
                query
                    .customer_id
                    .as_ref()
                    .is_none_or(|c| r.customer_id.as_ref() == Some(c))
                    && query.flow.as_ref().is_none_or(|f| &r.flow == f)
                    && query.from_ms.is_none_or(|t| r.created_at_ms >= t)
                    && query.to_ms.is_none_or(|t| r.created_at_ms < t)
                    && query.before_seq.is_none_or(|b| s.seq < b)
            };
            // The newest decisions may still be pending; they come first.
            let mut items: Vec<DecisionSummary> = match inner.pending.read() {
                Ok(pending) => pending
                    .by_seq
                    .values()
                    .rev()
                    .map(|(s, _)| s)
                    .filter(|s| matches(s))
                    .take(limit)
                    .map(|s| DecisionSummary {
                        id: s.record.id.clone(),
                        seq: s.seq,
                        flow: s.record.flow.clone(),
                        customer_id: s.record.customer_id.clone(),
                        outcome: s.record.outcome.clone(),
                        arm: s.record.arm.clone(),
                        strategy_version: s.record.strategy_version.clone(),
                        created_at_ms: s.record.created_at_ms,
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            let mut sql = String::from(
                "SELECT id, seq, flow, customer_id, outcome, arm, strategy_version, created_at_ms \
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

    async fn insert_strategy(
        &self,
        record: StrategyRecord,
        package: Vec<u8>,
        audit: NewAuditEvent,
    ) -> Result<bool, StoreError> {
        self.write(move |conn| {
            let exists: Option<i64> = conn
                .query_row(
                    "SELECT 1 FROM strategy_versions WHERE version = ?1",
                    [&record.version],
                    |row| row.get(0),
                )
                .optional()?;
            if exists.is_some() {
                return Ok(false);
            }
            conn.execute(
                &format!(
                    "INSERT INTO strategy_versions ({STRATEGY_COLUMNS}, package) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![
                    record.version,
                    record.name,
                    record.state.as_str(),
                    record.uploaded_by,
                    record.uploaded_at_ms,
                    record.approved_by,
                    record.approved_at_ms,
                    record.cases_passed,
                    package
                ],
            )?;
            insert_audit(conn, &audit)?;
            Ok(true)
        })
        .await
    }

    async fn strategy(&self, version: &str) -> Result<Option<StrategyRecord>, StoreError> {
        let version = version.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {STRATEGY_COLUMNS} FROM strategy_versions WHERE version = ?1"),
                    [version],
                    strategy_from_row,
                )
                .optional()?)
        })
        .await
    }

    async fn strategy_package(&self, version: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let version = version.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .query_row(
                    "SELECT package FROM strategy_versions WHERE version = ?1",
                    [version],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }

    async fn strategies(&self) -> Result<Vec<StrategyRecord>, StoreError> {
        self.read(|_, conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT {STRATEGY_COLUMNS} FROM strategy_versions ORDER BY uploaded_at_ms DESC, version"
            ))?;
            let rows = statement.query_map([], strategy_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn approve_strategy(
        &self,
        version: &str,
        approver: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let version = version.to_string();
        let approver = approver.to_string();
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE strategy_versions SET state = 'approved', approved_by = ?1, approved_at_ms = ?2 \
                 WHERE version = ?3 AND state = 'draft'",
                params![approver, at_ms, version],
            )?;
            if changed != 1 {
                return Err(StoreError::Precondition {
                    what: format!("strategy version {version} is not a draft"),
                });
            }
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn record_activation(
        &self,
        version: &str,
        actor: &str,
        kind: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<Activation, StoreError> {
        let version = version.to_string();
        let actor = actor.to_string();
        let kind = kind.to_string();
        self.write(move |conn| {
            let state: Option<String> = conn
                .query_row(
                    "SELECT state FROM strategy_versions WHERE version = ?1",
                    [&version],
                    |row| row.get(0),
                )
                .optional()?;
            if state.as_deref() != Some(StrategyState::Approved.as_str()) {
                return Err(StoreError::Precondition {
                    what: format!("strategy version {version} is not approved"),
                });
            }
            let seq: i64 = conn.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM activations",
                [],
                |row| row.get(0),
            )?;
            conn.execute(
                "INSERT INTO activations (seq, version, activated_by, activated_at_ms, kind) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![seq, version, actor, at_ms, kind],
            )?;
            insert_audit(conn, &audit)?;
            Ok(Activation {
                seq,
                version,
                activated_by: actor,
                activated_at_ms: at_ms,
                kind,
            })
        })
        .await
    }

    async fn activations(&self, limit: u32) -> Result<Vec<Activation>, StoreError> {
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT seq, version, activated_by, activated_at_ms, kind FROM activations \
                 ORDER BY seq DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([limit.max(1)], |row| {
                Ok(Activation {
                    seq: row.get(0)?,
                    version: row.get(1)?,
                    activated_by: row.get(2)?,
                    activated_at_ms: row.get(3)?,
                    kind: row.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn insert_key(&self, key: ApiKeyRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO api_keys (id, secret_sha256, user_name, roles, created_at_ms, created_by, revoked_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
                params![
                    key.id,
                    key.secret_sha256,
                    key.user,
                    key.roles.join(","),
                    key.created_at_ms,
                    key.created_by
                ],
            )
            .map_err(|e| StoreError::from_insert(e, || format!("key {}", key.id)))?;
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn key(&self, id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT id, secret_sha256, user_name, roles, created_at_ms, created_by, revoked_at_ms \
                     FROM api_keys WHERE id = ?1",
                )?
                .query_row([id], key_from_row)
                .optional()?)
        })
        .await
    }

    async fn keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.read(|_, conn| {
            let mut statement = conn.prepare(
                "SELECT id, secret_sha256, user_name, roles, created_at_ms, created_by, revoked_at_ms \
                 FROM api_keys ORDER BY created_at_ms, id",
            )?;
            let rows = statement.query_map([], key_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn revoke_key(
        &self,
        id: &str,
        at_ms: i64,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE api_keys SET revoked_at_ms = ?1 WHERE id = ?2 AND revoked_at_ms IS NULL",
                params![at_ms, id],
            )?;
            if changed != 1 {
                return Err(StoreError::Precondition {
                    what: format!("key {id} does not exist or is already revoked"),
                });
            }
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn audit_events(&self, limit: u32) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT seq, at_ms, actor, action, subject, detail FROM audit_events \
                 ORDER BY seq DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([limit.max(1)], |row| {
                let detail: String = row.get(5)?;
                Ok(AuditEvent {
                    seq: row.get(0)?,
                    at_ms: row.get(1)?,
                    actor: row.get(2)?,
                    action: row.get(3)?,
                    subject: row.get(4)?,
                    detail: serde_json::from_str(&detail).unwrap_or(serde_json::Value::Null),
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn insert_case(&self, case: CaseRecord) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(&format!(
                "INSERT INTO review_cases ({CASE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))?
            .execute(params![
                    case.id,
                    case.decision_id,
                    case.queue,
                    case.priority,
                    case.state,
                    case.created_at_ms,
                    case.due_at_ms,
                    case.version,
                    case.body
                ],
            )
            .map_err(|e| StoreError::from_insert(e, || format!("a case for decision {}", case.decision_id)))?;
            Ok(())
        })
        .await
    }

    async fn case(&self, id: &str) -> Result<Option<CaseRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {CASE_COLUMNS} FROM review_cases WHERE id = ?1"
                ))?
                .query_row([id], case_from_row)
                .optional()?)
        })
        .await
    }

    async fn case_for_decision(&self, decision_id: &str) -> Result<Option<CaseRecord>, StoreError> {
        let decision_id = decision_id.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {CASE_COLUMNS} FROM review_cases WHERE decision_id = ?1"
                ))?
                .query_row([decision_id], case_from_row)
                .optional()?)
        })
        .await
    }

    async fn referrals_without_case(&self, recent: u32) -> Result<Vec<String>, StoreError> {
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT d.id FROM decision_index d
                 WHERE d.seq > (SELECT COALESCE(MAX(seq), 0) FROM decision_index) - ?1
                   AND d.outcome = 'refer'
                   AND NOT EXISTS (SELECT 1 FROM review_cases c WHERE c.decision_id = d.id)
                 ORDER BY d.seq",
            )?;
            let ids = statement
                .query_map([i64::from(recent)], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(ids)
        })
        .await
    }

    async fn cases(&self, query: &CaseQuery) -> Result<Vec<CaseRecord>, StoreError> {
        let query = query.clone();
        self.read(move |_, conn| {
            let mut sql = format!("SELECT {CASE_COLUMNS} FROM review_cases WHERE 1 = 1");
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            let mut filter = |clause: &str, value: rusqlite::types::Value| {
                values.push(value);
                sql.push_str(&format!(" AND {clause} ?{}", values.len()));
            };
            if let Some(queue) = &query.queue {
                filter("queue =", queue.clone().into());
            }
            if let Some(state) = &query.state {
                filter("state =", state.clone().into());
            }
            if let Some(due) = query.due_before_ms {
                filter("state <> 'decided' AND due_at_ms <", due.into());
            }
            sql.push_str(&format!(
                " ORDER BY due_at_ms, priority DESC, id LIMIT {}",
                query.limit.max(1)
            ));
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), case_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn update_case(&self, case: CaseRecord, expected_version: i64) -> Result<(), StoreError> {
        self.write(move |conn| {
            let changed = conn.execute(
                "UPDATE review_cases SET state = ?1, due_at_ms = ?2, version = ?3, body = ?4 \
                 WHERE id = ?5 AND version = ?6",
                params![
                    case.state,
                    case.due_at_ms,
                    expected_version + 1,
                    case.body,
                    case.id,
                    expected_version
                ],
            )?;
            if changed != 1 {
                return Err(StoreError::Precondition {
                    what: format!(
                        "case {} was changed by someone else; reload it and try again",
                        case.id
                    ),
                });
            }
            Ok(())
        })
        .await
    }

    async fn insert_account(
        &self,
        account: AccountRecord,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            insert_account_row(conn, &account).map_err(|e| {
                StoreError::from_insert(e, || {
                    format!("an account for decision {}", account.decision_id)
                })
            })?;
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn insert_accounts(
        &self,
        accounts: Vec<(AccountRecord, Vec<AccountEventRecord>)>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            for (account, events) in &accounts {
                insert_account_row(conn, account).map_err(|e| {
                    StoreError::from_insert(e, || format!("account {}", account.id))
                })?;
                insert_account_events(conn, events)?;
            }
            Ok(())
        })
        .await
    }

    async fn account(&self, id: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where("id", id).await
    }

    async fn account_for_decision(
        &self,
        decision_id: &str,
    ) -> Result<Option<AccountRecord>, StoreError> {
        self.account_where("decision_id", decision_id).await
    }

    async fn accounts(&self, query: &AccountQuery) -> Result<Vec<AccountRecord>, StoreError> {
        let query = query.clone();
        self.read(move |_, conn| {
            let mut sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE 1 = 1");
            let mut values: Vec<rusqlite::types::Value> = Vec::new();
            let mut filter = |clause: &str, value: rusqlite::types::Value| {
                values.push(value);
                sql.push_str(&format!(" AND {clause} ?{}", values.len()));
            };
            if let Some(status) = &query.status {
                filter("status =", status.clone().into());
            }
            if let Some(customer) = &query.customer_id {
                filter("customer_id =", customer.clone().into());
            }
            if let Some(after) = &query.after_id {
                filter("id >", after.clone().into());
            }
            sql.push_str(&format!(" ORDER BY id LIMIT {}", query.limit.max(1)));
            let mut statement = conn.prepare(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), account_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn count_accounts(&self, status: Option<&str>) -> Result<u64, StoreError> {
        let status = status.map(str::to_string);
        self.read(move |_, conn| {
            let count: i64 = match status {
                Some(status) => conn.query_row(
                    "SELECT COUNT(*) FROM accounts WHERE status = ?1",
                    [status],
                    |row| row.get(0),
                )?,
                None => conn.query_row("SELECT COUNT(*) FROM accounts", [], |row| row.get(0))?,
            };
            Ok(count.max(0) as u64)
        })
        .await
    }

    async fn known_event_ids(
        &self,
        account_id: &str,
        event_ids: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        let account_id = account_id.to_string();
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT 1 FROM account_events WHERE account_id = ?1 AND event_id = ?2",
            )?;
            let mut known = Vec::new();
            for id in event_ids {
                if statement.exists(params![account_id, id])? {
                    known.push(id);
                }
            }
            Ok(known)
        })
        .await
    }

    async fn account_events(
        &self,
        account_id: &str,
        limit: u32,
    ) -> Result<Vec<AccountEventRecord>, StoreError> {
        let account_id = account_id.to_string();
        self.read(move |_, conn| {
            let mut statement = conn.prepare(
                "SELECT account_id, event_id, event_time_ms, received_at_ms, kind, body \
                 FROM account_events WHERE account_id = ?1 ORDER BY event_time_ms DESC, event_id DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![account_id, limit], |row| {
                Ok(AccountEventRecord {
                    account_id: row.get(0)?,
                    event_id: row.get(1)?,
                    event_time_ms: row.get(2)?,
                    received_at_ms: row.get(3)?,
                    kind: row.get(4)?,
                    body: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn update_accounts(
        &self,
        updates: Vec<AccountUpdate>,
        audit: Vec<NewAuditEvent>,
    ) -> Result<Vec<String>, StoreError> {
        self.write(move |conn| {
            let mut stale = Vec::new();
            for update in &updates {
                if !apply_account_update(conn, update)? {
                    stale.push(update.account.id.clone());
                }
            }
            for event in &audit {
                insert_audit(conn, event)?;
            }
            Ok(stale)
        })
        .await
    }

    async fn insert_user(&self, user: UserRecord, audit: NewAuditEvent) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO users (username, password_hash, role, created_at_ms) VALUES (?1, ?2, ?3, ?4)",
                params![user.username, user.password_hash, user.role, user.created_at_ms],
            )
            .map_err(|e| StoreError::from_insert(e, || format!("user {}", user.username)))?;
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let username = username.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT username, password_hash, role, created_at_ms FROM users WHERE username = ?1",
                )?
                .query_row([username], |row| {
                    Ok(UserRecord {
                        username: row.get(0)?,
                        password_hash: row.get(1)?,
                        role: row.get(2)?,
                        created_at_ms: row.get(3)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        self.write(move |conn| {
            // Expired sessions go as new ones arrive.
            conn.execute(
                "DELETE FROM sessions WHERE expires_at_ms < ?1",
                [session.created_at_ms],
            )?;
            conn.execute(
                "INSERT INTO sessions (token_sha256, username, csrf_token, created_at_ms, expires_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    session.token_sha256,
                    session.username,
                    session.csrf_token,
                    session.created_at_ms,
                    session.expires_at_ms
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn session(&self, token_sha256: &str) -> Result<Option<SessionRecord>, StoreError> {
        let token = token_sha256.to_string();
        self.read(move |_, conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT token_sha256, username, csrf_token, created_at_ms, expires_at_ms \
                     FROM sessions WHERE token_sha256 = ?1",
                )?
                .query_row([token], |row| {
                    Ok(SessionRecord {
                        token_sha256: row.get(0)?,
                        username: row.get(1)?,
                        csrf_token: row.get(2)?,
                        created_at_ms: row.get(3)?,
                        expires_at_ms: row.get(4)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn delete_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        let token = token_sha256.to_string();
        self.write(move |conn| {
            conn.execute("DELETE FROM sessions WHERE token_sha256 = ?1", [token])?;
            Ok(())
        })
        .await
    }

    async fn put_provider_answers(
        &self,
        answers: Vec<ProviderAnswerRecord>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let work = move |conn: &Connection| {
            // Expired answers go as new ones arrive: personal data kept no longer than its TTL.
            conn.prepare_cached("DELETE FROM provider_answers WHERE expires_at_ms <= ?1")?
                .execute([now_ms])?;
            let mut upsert = conn.prepare_cached(
                "INSERT INTO provider_answers \
                 (source_key, subject, provider, values_json, fetched_at_ms, expires_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (source_key, subject) DO UPDATE SET provider = excluded.provider, \
                 values_json = excluded.values_json, fetched_at_ms = excluded.fetched_at_ms, \
                 expires_at_ms = excluded.expires_at_ms \
                 WHERE excluded.fetched_at_ms >= provider_answers.fetched_at_ms",
            )?;
            for answer in answers.iter().filter(|a| a.expires_at_ms > now_ms) {
                upsert.execute(params![
                    answer.source_key,
                    answer.subject,
                    answer.provider,
                    answer.values_json,
                    answer.fetched_at_ms,
                    answer.expires_at_ms
                ])?;
            }
            Ok(())
        };
        // A cache, not a record: written in the next batch without its own sync.
        self.inner
            .writer
            .send(Box::new(Work {
                work,
                reply,
                durable: false,
            }))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn provider_answers(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<ProviderAnswerRecord>, StoreError> {
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT source_key, subject, provider, values_json, fetched_at_ms, expires_at_ms \
                 FROM provider_answers WHERE expires_at_ms > ?1 \
                 ORDER BY expires_at_ms DESC LIMIT ?2",
            )?;
            let rows = statement.query_map(params![now_ms, limit], |row| {
                Ok(ProviderAnswerRecord {
                    source_key: row.get(0)?,
                    subject: row.get(1)?,
                    provider: row.get(2)?,
                    values_json: row.get(3)?,
                    fetched_at_ms: row.get(4)?,
                    expires_at_ms: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn append_audit(&self, event: NewAuditEvent) -> Result<(), StoreError> {
        self.write(move |conn| insert_audit(conn, &event)).await
    }

    async fn insert_webhook(
        &self,
        hook: WebhookRecord,
        audit: NewAuditEvent,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO webhooks (id, url, secret, created_by, created_at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![hook.id, hook.url, hook.secret, hook.created_by, hook.created_at_ms],
            )?;
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn webhooks(&self) -> Result<Vec<WebhookRecord>, StoreError> {
        self.read(|_, conn| {
            let mut statement = conn.prepare(
                "SELECT id, url, secret, created_by, created_at_ms FROM webhooks ORDER BY created_at_ms, id",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(WebhookRecord {
                    id: row.get(0)?,
                    url: row.get(1)?,
                    secret: row.get(2)?,
                    created_by: row.get(3)?,
                    created_at_ms: row.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn delete_webhook(&self, id: &str, audit: NewAuditEvent) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |conn| {
            if conn.execute("DELETE FROM webhooks WHERE id = ?1", [&id])? != 1 {
                return Err(StoreError::Precondition {
                    what: format!("there is no webhook {id}"),
                });
            }
            conn.execute(
                "UPDATE webhook_deliveries SET next_attempt_ms = NULL WHERE webhook_id = ?1 AND delivered_at_ms IS NULL",
                [&id],
            )?;
            insert_audit(conn, &audit)?;
            Ok(())
        })
        .await
    }

    async fn enqueue_deliveries(
        &self,
        event: &str,
        body: &str,
        at_ms: i64,
    ) -> Result<usize, StoreError> {
        let (event, body) = (event.to_string(), body.to_string());
        self.write(move |conn| {
            Ok(conn.execute(
                "INSERT INTO webhook_deliveries (id, webhook_id, event, body, attempts, next_attempt_ms) \
                 SELECT (SELECT COALESCE(MAX(id), 0) FROM webhook_deliveries) + ROW_NUMBER() OVER (ORDER BY id), \
                        id, ?1, ?2, 0, ?3 FROM webhooks",
                params![event, body, at_ms],
            )?)
        })
        .await
    }

    async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.read(move |_, conn| {
            let mut statement = conn.prepare_cached(
                "SELECT d.id, d.webhook_id, w.url, w.secret, d.event, d.body, d.attempts \
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE d.delivered_at_ms IS NULL AND d.next_attempt_ms IS NOT NULL AND d.next_attempt_ms <= ?1 \
                 ORDER BY d.id LIMIT ?2",
            )?;
            let rows = statement.query_map(params![now_ms, limit], |row| {
                Ok(DeliveryRecord {
                    id: row.get(0)?,
                    webhook_id: row.get(1)?,
                    url: row.get(2)?,
                    secret: row.get(3)?,
                    event: row.get(4)?,
                    body: row.get(5)?,
                    attempts: row.get(6)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn record_attempt(
        &self,
        id: i64,
        delivered_at_ms: Option<i64>,
        next_attempt_ms: Option<i64>,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, delivered_at_ms = ?1, \
                 next_attempt_ms = ?2, last_error = ?3 WHERE id = ?4",
                params![delivered_at_ms, next_attempt_ms, error, id],
            )?;
            Ok(())
        })
        .await
    }
}
