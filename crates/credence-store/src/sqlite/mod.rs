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
//!
//! This module opens the store and runs its threads; the schema and its migrations are in
//! `schema.rs` and `migrations/`, and each aggregate's statements in a file of its own
//! (`decisions.rs`, `strategies.rs`, `access.rs`, `audit.rs`, `cases.rs`, `accounts.rs`,
//! `providers.rs`, `webhooks.rs`).

mod access;
mod accounts;
mod audit;
mod cases;
mod decisions;
mod jobs;
mod providers;
mod schema;
mod shadow;
mod strategies;
mod webhooks;

use audit::*;
use schema::migrate;

use crate::chain::GENESIS_HASH;
use crate::error::StoreError;
use crate::log::{self, Appender, FramePosition, Scanned, SegmentReader};
use crate::records::*;
use rusqlite::{config::DbConfig, params, Connection, OptionalExtension, Row};
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
    by_id: HashMap<String, i64, foldhash::fast::RandomState>,
    /// Keys are the callers' own: the hash is seeded per process (foldhash).
    by_key: HashMap<String, i64, foldhash::fast::RandomState>,
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
    // One plan per statement, whatever is bound: without it SQLite marks a statement with a
    // bound `LIMIT ?n` to be compiled again at every execution (the webhook and rollout polls
    // did so several times a second, ~140,000 instructions each).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
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
         strategy_version, created_at_ms, segment, frame_offset, frame_length, strategy) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) ON CONFLICT (seq) DO NOTHING",
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
            position.length as i64,
            r.strategy
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
    /// Opens (creating if needed) the store in `data_dir` as the one process that appends
    /// decisions: takes the writer lock, recovers the log's tail into the index, and starts
    /// the log writer.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(data_dir, Some(crate::group_commit::DEFAULT_WINDOW))
    }

    /// [`SqliteStore::open`] whose log writer waits at most `commit_window` for more records
    /// after the first of a batch (see [`crate::group_commit`]); zero commits at once.
    pub fn open_with_commit_window(
        data_dir: &Path,
        commit_window: std::time::Duration,
    ) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(data_dir, Some(commit_window))
    }

    /// Opens the store beside a running appender: keys, strategies, reads and verification.
    pub fn open_shared(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(data_dir, None)
    }

    /// Opens the store; with a commit window, as the one process that appends decisions.
    fn open_with(
        data_dir: &Path,
        commit_window: Option<std::time::Duration>,
    ) -> Result<SqliteStore, StoreError> {
        let append = commit_window.is_some();
        std::fs::create_dir_all(data_dir).map_err(|e| io_error(data_dir, e))?;
        let log_dir = data_dir.join(LOG_DIR);
        std::fs::create_dir_all(&log_dir).map_err(|e| io_error(&log_dir, e))?;
        let path = data_dir.join(DATABASE_FILE);
        let conn = open_connection(&path)?;
        migrate(&conn)?;
        let pending = Arc::new(RwLock::new(Pending::default()));
        let log_unwritable = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (lock, appender) = if let Some(commit_window) = commit_window {
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
                        commit_window,
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

    /// The data directory.
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
    commit_window: std::time::Duration,
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
    let mut keys_in_batch: HashSet<String, foldhash::fast::RandomState> = HashSet::default();
    let mut group = crate::group_commit::GroupCommit::new(commit_window);
    let drain = |batch: &mut Vec<AppendRequest>| {
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
    };
    while let Ok(first) = receiver.recv() {
        let gathering = Instant::now();
        batch.push(first);
        drain(&mut batch);
        // Decisions arriving close together share one fdatasync (see `group_commit`).
        if let Some(wait) = group.wait(gathering, Instant::now(), batch.len()) {
            std::thread::sleep(wait);
            drain(&mut batch);
        }
        group.observe(gathering, batch.len());
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

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// A cached statement with a bound `LIMIT` runs again without being compiled again.
    #[test]
    fn a_bound_limit_does_not_recompile_the_statement() {
        let conn = open_connection(Path::new(":memory:")).unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2), (3);")
            .unwrap();
        for limit in [2, 2, 3, 1] {
            let mut statement = conn
                .prepare_cached("SELECT x FROM t WHERE x >= ?1 ORDER BY x LIMIT ?2")
                .unwrap();
            let rows: Vec<i64> = statement
                .query_map(params![1, limit], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(rows.len(), limit as usize);
            assert_eq!(statement.get_status(StatementStatus::RePrepare), 0);
        }
    }
}
