//! Credence's durable state on PostgreSQL, for several decision nodes on one database: every store trait of `credence-store`, the same conformance suite as the embedded store.
//!
//! [`PostgresStore::connect`] opens a pool and brings the schema up to date (versioned
//! migrations under `migrations/`, applied under an advisory lock so that nodes starting
//! together apply them once; never destructive). That store reads and manages everything
//! but does not append decisions: an administrative command's. [`PostgresStore::connect_node`]
//! also starts the node's **log writer** and **checkpointer** (`log.rs`):
//! - the writer takes every waiting decision and commits them in one transaction (group
//!   commit: one WAL flush for many decisions), chaining them on the node's own hash chain;
//!   each append is acknowledged only after its transaction commits;
//! - the checkpointer binds every node's chain head into a chained checkpoint every few
//!   seconds ([`credence_store::node_chain`] says what that proves).
//!
//! Exactly-once across nodes rests on the database: idempotency keys in a table of their
//! own (unique across the log's monthly partitions), claimed in the decision's transaction;
//! account and case changes under a version column; webhook deliveries and batch-job
//! partitions claimed with `FOR UPDATE SKIP LOCKED` and a lease, so a dead node's work is
//! taken over when its lease ends.
//!
//! Errors are [`StoreError`]s: the driver's error is kept as the source of
//! `StoreError::Database`; an unreachable database, a statement timeout, a read-only standby
//! or a full disk are `StoreError::Unavailable`, whose message names no host.

#![warn(missing_docs)]

mod access;
mod accounts;
mod audit;
mod cases;
mod chain;
mod decisions;
mod error;
mod filters;
mod jobs;
mod log;
mod providers;
mod schema;
mod shadow;
mod strategies;
mod webhooks;

pub use decisions::LogExport;

use credence_store::StoreError;
use error::{pool_error, Db};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to reach the database and how hard to use it.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://USER:PASS@HOST:PORT/DB` (libpq's URL form; `sslmode=disable|prefer|require`
    /// as a query parameter).
    pub url: String,
    /// Most connections this process holds (the log writer holds one more of its own).
    pub pool_size: usize,
    /// Longest a statement may run before the database cancels it.
    pub statement_timeout_ms: u64,
    /// Longest to wait for a connection (from the pool, or a new one).
    pub connect_timeout_ms: u64,
    /// Extra CA certificates (PEM) to trust for TLS to the database, beside Mozilla's roots.
    pub ca_file: Option<PathBuf>,
    /// How often the checkpointer binds the nodes' chain heads.
    pub checkpoint_every_ms: u64,
    /// The longest the log writer waits for more decisions after the first of a batch, so that
    /// they share one transaction (`credence_store::group_commit`); 0 commits at once.
    pub commit_window_us: u64,
}

impl PostgresOptions {
    /// Defaults for `url`: 16 connections, 10 s statements, 5 s to connect, a checkpoint every
    /// 2 s, a commit window of 1 ms.
    pub fn new(url: impl Into<String>) -> PostgresOptions {
        PostgresOptions {
            url: url.into(),
            pool_size: 16,
            statement_timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            ca_file: None,
            checkpoint_every_ms: 2_000,
            commit_window_us: credence_store::group_commit::DEFAULT_WINDOW.as_micros() as u64,
        }
    }

    /// The URL with its password replaced by `***`, for logs and messages.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }
}

/// `url` with the password of its user-info replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &url[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => url.to_string(),
    }
}

/// Whether a `--database-url` names PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The store on PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: deadpool_postgres::Pool,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    options: PostgresOptions,
    /// The node's log writer; `None` for an administrative store.
    node: Option<log::Node>,
    /// The reader of shared provider answers in batches, started on first use.
    answer_lookups: std::sync::OnceLock<tokio::sync::mpsc::Sender<providers::AnswerLookup>>,
}

impl PostgresStore {
    /// Connects, migrates, and returns a store that reads and manages everything but does not
    /// append decisions.
    pub async fn connect(options: &PostgresOptions) -> Result<PostgresStore, StoreError> {
        let (pool, config, tls) = pool(options)?;
        let store = PostgresStore {
            inner: Arc::new(Inner {
                pool,
                config,
                tls,
                options: options.clone(),
                node: None,
                answer_lookups: std::sync::OnceLock::new(),
            }),
        };
        schema::migrate(&store).await?;
        Ok(store)
    }

    /// Connects, migrates and starts this process as a decision node: `node_id` names its
    /// chain (default: the host's name, or `HOST-2`, `HOST-3`, … when a live process holds
    /// it). Two live processes never append as one node.
    pub async fn connect_node(
        options: &PostgresOptions,
        node_id: Option<&str>,
    ) -> Result<PostgresStore, StoreError> {
        let admin = PostgresStore::connect(options).await?;
        let inner = Arc::into_inner(admin.inner).expect("no other handle yet");
        let node =
            log::Node::start(&inner.config, &inner.tls, &inner.pool, options, node_id).await?;
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                node: Some(node),
                ..inner
            }),
        })
    }

    /// This node's id, when it appends.
    pub fn node_id(&self) -> Option<&str> {
        self.inner.node.as_ref().map(|n| n.id())
    }

    /// The options it was opened with.
    pub fn options(&self) -> &PostgresOptions {
        &self.inner.options
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.inner.pool.get().await.map_err(pool_error)
    }

    /// The row `sql` selects (prepared once per connection), read by `from_row`; `None` when
    /// there is none.
    async fn select_one<T>(
        &self,
        sql: &str,
        parameters: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        from_row: impl Fn(&tokio_postgres::Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.db()?;
        client
            .query_opt(&statement, parameters)
            .await
            .db()?
            .map(|row| from_row(&row))
            .transpose()
    }

    /// Every row `sql` selects (prepared once per connection), read by `from_row`.
    async fn select_all<T>(
        &self,
        sql: &str,
        parameters: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        from_row: impl Fn(&tokio_postgres::Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(sql).await.db()?;
        client
            .query(&statement, parameters)
            .await
            .db()?
            .iter()
            .map(from_row)
            .collect()
    }

    /// A dedicated connection outside the pool (LISTEN, streaming reads).
    pub(crate) async fn dedicated(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<tokio_postgres::Socket, TlsStream>,
        ),
        StoreError,
    > {
        self.inner.config.connect(self.inner.tls.clone()).await.db()
    }

    /// The versions activated on any node from now on, as PostgreSQL announces them
    /// (`NOTIFY` at the activation's commit), over a dedicated connection. The receiver closes
    /// when that connection ends: listen again. Nodes still poll the active version; this lets
    /// them hear of a change at once.
    pub async fn listen_for_activations(
        &self,
    ) -> Result<tokio::sync::mpsc::Receiver<String>, StoreError> {
        strategies::listen(self).await
    }

    /// What the pool's connections reach: the server's version, and whether the connection
    /// is encrypted (TLS), for the start-up log.
    pub async fn connection_info(&self) -> Result<ConnectionInfo, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT current_setting('server_version'), \
                 COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                &[],
            )
            .await
            .db()?;
        Ok(ConnectionInfo {
            server_version: error::col(&row, 0)?,
            tls: error::col(&row, 1)?,
        })
    }

    /// Flushes this node's newest chain head into a checkpoint now (on shutdown, and in tests).
    pub async fn checkpoint_now(&self) -> Result<(), StoreError> {
        chain::write_checkpoint(self, self.node_id().unwrap_or("admin")).await
    }
}

/// What a connection reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The server's version (`15.18 (Debian …)`).
    pub server_version: String,
    /// Whether the connection is encrypted.
    pub tls: bool,
}

type Tls = tokio_postgres_rustls::MakeRustlsConnect;
type TlsStream = <Tls as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream;

fn pool(
    options: &PostgresOptions,
) -> Result<(deadpool_postgres::Pool, tokio_postgres::Config, Tls), StoreError> {
    let mut config: tokio_postgres::Config =
        options.url.parse().map_err(|e| StoreError::Precondition {
            what: format!(
                "--database-url {} is not a PostgreSQL URL ({e}); write postgres://USER:PASS@HOST:PORT/DB",
                options.redacted_url()
            ),
        })?;
    config
        .options(format!(
            "-c statement_timeout={} -c lock_timeout={}",
            options.statement_timeout_ms, options.statement_timeout_ms
        ))
        .connect_timeout(Duration::from_millis(options.connect_timeout_ms))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30));
    if config.get_application_name().is_none() {
        config.application_name("credence");
    }
    let tls = tls(options)?;
    let manager = deadpool_postgres::Manager::from_config(
        config.clone(),
        tls.clone(),
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    let wait = Some(Duration::from_millis(options.connect_timeout_ms));
    let pool = deadpool_postgres::Pool::builder(manager)
        .max_size(options.pool_size.max(1))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(wait)
        .create_timeout(wait)
        .recycle_timeout(wait)
        .build()
        .map_err(|e| StoreError::Precondition {
            what: format!("the database pool could not be built: {e}"),
        })?;
    Ok((pool, config, tls))
}

/// TLS to the database: the server's certificate is verified against Mozilla's roots and the
/// `ca_file`'s certificates (libpq's `verify-full`), whenever TLS is used.
fn tls(options: &PostgresOptions) -> Result<Tls, StoreError> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &options.ca_file {
        use rustls_pki_types::pem::PemObject;
        let unusable = |reason: String| StoreError::Precondition {
            what: format!(
                "--database-ca-file {}: {reason}; give a PEM file of CA certificates",
                path.display()
            ),
        };
        let certificates = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| unusable(e.to_string()))?;
        let mut added = 0;
        for certificate in certificates {
            let certificate = certificate.map_err(|e| unusable(e.to_string()))?;
            roots
                .add(certificate)
                .map_err(|e| unusable(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(unusable("it holds no CERTIFICATE block".into()));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| StoreError::Precondition {
        what: format!("TLS to the database cannot be set up: {e}"),
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_a_message() {
        let cases = [
            (
                "postgres://credence:s3cret@db:5432/credence",
                "postgres://credence:***@db:5432/credence",
            ),
            (
                "postgresql://u:p@h/d?sslmode=require",
                "postgresql://u:***@h/d?sslmode=require",
            ),
            ("postgres://u@h/d", "postgres://u@h/d"),
            ("postgres://h:5432/d", "postgres://h:5432/d"),
            ("not a url", "not a url"),
        ];
        for (url, expected) in cases {
            assert_eq!(redact(url), expected, "{url}");
        }
    }
}
