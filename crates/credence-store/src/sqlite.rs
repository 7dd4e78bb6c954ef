//! The embedded store: one SQLite file in WAL mode, one writer thread that group-commits, a
//! pool of reader connections.
//!
//! Why a single writer thread: SQLite allows one writer at a time anyway, and a thread that
//! drains every waiting write into one transaction turns N fsyncs into one. A caller's write
//! is acknowledged only after the transaction holding it has committed with
//! `synchronous=FULL`, so an acknowledged decision survives a crash of the process or the
//! machine. Each write runs inside a savepoint, so one failing write (a reused idempotency
//! key) does not take its batch-mates down with it.

use crate::chain::{record_hash, ChainReport, ChainVerifier, GENESIS_HASH};
use crate::error::StoreError;
use crate::records::*;
use crate::Store;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::oneshot;

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "credence.sqlite3";

/// Most writes committed in one transaction.
const MAX_BATCH: usize = 1024;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS decisions (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    flow TEXT NOT NULL,
    customer_id TEXT,
    idempotency_key TEXT UNIQUE,
    request_sha256 TEXT NOT NULL,
    strategy TEXT NOT NULL,
    strategy_version TEXT NOT NULL,
    arm TEXT,
    outcome TEXT NOT NULL,
    as_of TEXT NOT NULL,
    language TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    latency_us BIGINT NOT NULL,
    input TEXT NOT NULL,
    decision TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_customer ON decisions (customer_id, seq);
CREATE INDEX IF NOT EXISTS decisions_by_time ON decisions (created_at_ms);
CREATE TABLE IF NOT EXISTS chain_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
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

const DECISION_COLUMNS: &str = "seq, id, flow, customer_id, idempotency_key, request_sha256, \
    strategy, strategy_version, arm, outcome, as_of, language, created_at_ms, latency_us, input, \
    decision, prev_hash, hash";

/// The embedded store. Cheap to clone; every clone shares the writer and the readers.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: mpsc::Sender<Box<dyn Job>>,
    readers: Mutex<Vec<Connection>>,
}

/// The newest link of the chain, as the writer knows it.
#[derive(Debug, Clone)]
struct ChainTip {
    seq: i64,
    hash: String,
}

/// Called with the batch's commit result once the transaction has ended.
type Completion = Box<dyn FnOnce(Option<&StoreError>) + Send>;

trait Job: Send {
    fn run(self: Box<Self>, conn: &Connection, tip: &mut ChainTip) -> Completion;
    fn abandon(self: Box<Self>, error: &StoreError);
}

struct Work<T, F> {
    work: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Work<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection, &mut ChainTip) -> Result<T, StoreError> + Send,
{
    fn run(self: Box<Self>, conn: &Connection, tip: &mut ChainTip) -> Completion {
        let Work { work, reply } = *self;
        let before = tip.clone();
        let result = conn
            .execute_batch("SAVEPOINT job")
            .map_err(StoreError::from)
            .and_then(|()| work(conn, tip));
        let result = match result {
            Ok(value) => conn
                .execute_batch("RELEASE job")
                .map(|()| value)
                .map_err(StoreError::from),
            Err(error) => Err(error),
        };
        if result.is_err() {
            let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            *tip = before;
        }
        Box::new(move |commit: Option<&StoreError>| {
            let outcome = match (result, commit) {
                (Ok(_), Some(error)) => Err(StoreError::Commit(error.to_string())),
                (result, _) => result,
            };
            let _ = reply.send(outcome);
        })
    }

    fn abandon(self: Box<Self>, error: &StoreError) {
        let _ = self.reply.send(Err(StoreError::Commit(error.to_string())));
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
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| io_error(data_dir, e))?;
        let path = data_dir.join(DATABASE_FILE);
        let conn = open_connection(&path)?;
        migrate(&conn)?;
        let tip = conn.query_row("SELECT seq, hash FROM chain_head WHERE id = 1", [], |row| {
            Ok(ChainTip {
                seq: row.get(0)?,
                hash: row.get(1)?,
            })
        })?;
        let (sender, receiver) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("credence-log-writer".into())
            .spawn(move || run_writer(conn, receiver, tip))
            .map_err(|e| io_error(&path, e))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                writer: sender,
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &mut ChainTip) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writer
            .send(Box::new(Work { work, reply }))
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner.readers.lock().ok().and_then(|mut pool| pool.pop());
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path)?,
            };
            let result = work(&conn);
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
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = (|| -> Result<(), StoreError> {
        conn.execute_batch(SCHEMA)?;
        conn.execute(
            "INSERT INTO chain_head (id, seq, hash) SELECT 1, 0, ?1 \
             WHERE NOT EXISTS (SELECT 1 FROM chain_head WHERE id = 1)",
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

fn run_writer(conn: Connection, receiver: mpsc::Receiver<Box<dyn Job>>, mut tip: ChainTip) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut completions: Vec<Completion> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = receiver.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
            let error = StoreError::from(error);
            for job in batch.drain(..) {
                job.abandon(&error);
            }
            continue;
        }
        let start_tip = tip.clone();
        let size = batch.len();
        for job in batch.drain(..) {
            completions.push(job.run(&conn, &mut tip));
        }
        let mut commit = Ok(());
        if tip.seq != start_tip.seq {
            commit = conn
                .execute(
                    "UPDATE chain_head SET seq = ?1, hash = ?2 WHERE id = 1",
                    params![tip.seq, tip.hash],
                )
                .map(|_| ());
        }
        let commit = commit.and_then(|()| conn.execute_batch("COMMIT"));
        let failure = match commit {
            Ok(()) => None,
            Err(error) => {
                let _ = conn.execute_batch("ROLLBACK");
                tip = start_tip;
                Some(StoreError::from(error))
            }
        };
        metrics::histogram!(crate::METRIC_COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
        metrics::histogram!(crate::METRIC_BATCH_SIZE).record(size as f64);
        for completion in completions.drain(..) {
            completion(failure.as_ref());
        }
    }
}

fn decision_from_row(row: &Row<'_>) -> rusqlite::Result<StoredDecision> {
    Ok(StoredDecision {
        seq: row.get(0)?,
        record: NewDecision {
            id: row.get(1)?,
            flow: row.get(2)?,
            customer_id: row.get(3)?,
            idempotency_key: row.get(4)?,
            request_sha256: row.get(5)?,
            strategy: row.get(6)?,
            strategy_version: row.get(7)?,
            arm: row.get(8)?,
            outcome: row.get(9)?,
            as_of: row.get(10)?,
            language: row.get(11)?,
            created_at_ms: row.get(12)?,
            latency_us: row.get(13)?,
            input: row.get(14)?,
            decision: row.get(15)?,
        },
        prev_hash: row.get(16)?,
        hash: row.get(17)?,
    })
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
    conn.execute(
        "INSERT INTO audit_events (seq, at_ms, actor, action, subject, detail) \
         SELECT COALESCE(MAX(seq), 0) + 1, ?1, ?2, ?3, ?4, ?5 FROM audit_events",
        params![
            event.at_ms,
            event.actor,
            event.action,
            event.subject,
            event.detail.to_string()
        ],
    )?;
    Ok(())
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn append_decision(&self, decision: NewDecision) -> Result<AppendReceipt, StoreError> {
        self.write(move |conn, tip| {
            let seq = tip.seq + 1;
            let hash = record_hash(seq, &tip.hash, &decision);
            let d = &decision;
            conn.prepare_cached(
                "INSERT INTO decisions (seq, id, flow, customer_id, idempotency_key, \
                 request_sha256, strategy, strategy_version, arm, outcome, as_of, language, \
                 created_at_ms, latency_us, input, decision, prev_hash, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            )?
            .execute(params![
                seq,
                d.id,
                d.flow,
                d.customer_id,
                d.idempotency_key,
                d.request_sha256,
                d.strategy,
                d.strategy_version,
                d.arm,
                d.outcome,
                d.as_of,
                d.language,
                d.created_at_ms,
                d.latency_us,
                d.input,
                d.decision,
                tip.hash,
                hash
            ])
            .map_err(|e| {
                StoreError::from_insert(e, || match &d.idempotency_key {
                    Some(key) => format!("a decision with idempotency key {key}"),
                    None => format!("decision {}", d.id),
                })
            })?;
            tip.seq = seq;
            tip.hash = hash.clone();
            Ok(AppendReceipt { seq, hash })
        })
        .await
    }

    async fn decision(&self, id: &str) -> Result<Option<StoredDecision>, StoreError> {
        let id = id.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions WHERE id = ?1"
                ))?
                .query_row([id], decision_from_row)
                .optional()?)
        })
        .await
    }

    async fn decision_by_idempotency_key(
        &self,
        key: &str,
    ) -> Result<Option<StoredDecision>, StoreError> {
        let key = key.to_string();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions WHERE idempotency_key = ?1"
                ))?
                .query_row([key], decision_from_row)
                .optional()?)
        })
        .await
    }

    async fn list_decisions(
        &self,
        query: &DecisionQuery,
    ) -> Result<Vec<DecisionSummary>, StoreError> {
        let query = query.clone();
        self.read(move |conn| {
            let mut sql = String::from(
                "SELECT id, seq, flow, customer_id, outcome, arm, strategy_version, created_at_ms \
                 FROM decisions WHERE 1 = 1",
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
            sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", query.limit.max(1)));
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
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn verify_chain(&self) -> Result<ChainReport, StoreError> {
        self.read(|conn| {
            // One read transaction: the rows and the head come from the same snapshot.
            conn.execute_batch("BEGIN")?;
            let result = (|| -> Result<ChainReport, StoreError> {
                let head: Option<(i64, String)> = conn
                    .query_row("SELECT seq, hash FROM chain_head WHERE id = 1", [], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()?;
                let mut statement = conn.prepare(&format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions ORDER BY seq"
                ))?;
                let mut rows = statement.query([])?;
                let mut verifier = ChainVerifier::default();
                while let Some(row) = rows.next()? {
                    let stored = decision_from_row(row)?;
                    if !verifier.push(stored.seq, &stored.record, &stored.prev_hash, &stored.hash)
                    {
                        break;
                    }
                }
                Ok(verifier.finish(head.filter(|(seq, _)| *seq > 0)))
            })();
            let _ = conn.execute_batch("COMMIT");
            result
        })
        .await
    }

    async fn insert_strategy(
        &self,
        record: StrategyRecord,
        package: Vec<u8>,
        audit: NewAuditEvent,
    ) -> Result<bool, StoreError> {
        self.write(move |conn, _| {
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
        self.read(move |conn| {
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
        self.read(move |conn| {
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
        self.read(|conn| {
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
        self.write(move |conn, _| {
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
        self.write(move |conn, _| {
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
        self.read(move |conn| {
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
        self.write(move |conn, _| {
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
        self.read(move |conn| {
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
        self.read(|conn| {
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
        self.write(move |conn, _| {
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
        self.read(move |conn| {
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
}
