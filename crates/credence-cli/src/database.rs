//! Where a command's state lives: the embedded store under `--data-dir`, or PostgreSQL under `--database-url` (shared by every node of a cluster).

use anyhow::{bail, Context};
use credence_store::{SqliteStore, Store};
use credence_store_postgres::{PostgresOptions, PostgresStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The PostgreSQL flags every command that touches state takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DatabaseArgs {
    /// Keep all state in PostgreSQL, shared by every node: postgres://USER:PASS@HOST:PORT/DB
    /// (`?sslmode=require` for TLS). Without it, the embedded store under --data-dir.
    #[arg(
        long,
        env = "CREDENCE_DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub database_url: Option<String>,
    /// Most connections to PostgreSQL this process holds [default: 16].
    #[arg(long, env = "CREDENCE_DATABASE_POOL_SIZE", value_name = "N")]
    pub database_pool_size: Option<usize>,
    /// Longest a statement may run on PostgreSQL before it is cancelled, in ms [default: 10000].
    #[arg(
        long,
        env = "CREDENCE_DATABASE_STATEMENT_TIMEOUT_MS",
        value_name = "MS"
    )]
    pub database_statement_timeout_ms: Option<u64>,
    /// PEM CA certificates to trust for TLS to PostgreSQL, besides Mozilla's roots.
    #[arg(long, env = "CREDENCE_DATABASE_CA_FILE", value_name = "FILE")]
    pub database_ca_file: Option<PathBuf>,
}

impl DatabaseArgs {
    /// The PostgreSQL options, when a database URL is given.
    pub fn postgres(&self) -> anyhow::Result<Option<PostgresOptions>> {
        let Some(url) = &self.database_url else {
            return Ok(None);
        };
        if !credence_store_postgres::is_postgres_url(url) {
            bail!(
                "--database-url {} is not a PostgreSQL URL: write postgres://USER:PASS@HOST:PORT/DB (without it, state is kept under --data-dir)",
                credence_store_postgres::redact(url)
            );
        }
        let mut options = PostgresOptions::new(url.clone());
        if let Some(size) = self.database_pool_size {
            options.pool_size = size.max(1);
        }
        if let Some(ms) = self.database_statement_timeout_ms {
            options.statement_timeout_ms = ms.max(1);
        }
        options.ca_file = self.database_ca_file.clone();
        Ok(Some(options))
    }

    /// Fills what the flags left unset from a config file's keys.
    pub fn or(self, file: DatabaseArgs) -> DatabaseArgs {
        DatabaseArgs {
            database_url: self.database_url.or(file.database_url),
            database_pool_size: self.database_pool_size.or(file.database_pool_size),
            database_statement_timeout_ms: self
                .database_statement_timeout_ms
                .or(file.database_statement_timeout_ms),
            database_ca_file: self.database_ca_file.or(file.database_ca_file),
        }
    }

    /// Where the state is, for messages: the redacted URL or the data directory.
    pub fn describe(&self, data_dir: &Path) -> String {
        match &self.database_url {
            Some(url) => format!("database {}", credence_store_postgres::redact(url)),
            None => format!("data directory {}", data_dir.display()),
        }
    }

    /// The flag that names this place again, for hints printed to the operator.
    pub fn flag(&self, data_dir: &Path) -> String {
        match &self.database_url {
            Some(_) => "--database-url \"$CREDENCE_DATABASE_URL\"".to_string(),
            None => format!("--data-dir {}", crate::serve::shell_path(data_dir)),
        }
    }
}

/// Opens the store for a command that manages or reads state but does not append decisions;
/// call inside the runtime the command then uses. With `create`, a new embedded store may be
/// made (keys are often created before the first start).
pub async fn open_admin(
    database: &DatabaseArgs,
    data_dir: &Path,
    create: bool,
) -> anyhow::Result<Arc<dyn Store>> {
    if let Some(options) = database.postgres()? {
        let store = PostgresStore::connect(&options)
            .await
            .with_context(|| format!("opening {}", options.redacted_url()))?;
        return Ok(Arc::new(store));
    }
    if create {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
    } else if !data_dir.join(credence_store::DATABASE_FILE).is_file() {
        bail!(
            "{} holds no Credence store ({} is missing); start `credence serve --data-dir {}` once, check the path, or give --database-url",
            data_dir.display(),
            credence_store::DATABASE_FILE,
            data_dir.display()
        );
    }
    let store = SqliteStore::open_shared(data_dir)
        .with_context(|| format!("opening the store in {}", data_dir.display()))?;
    Ok(Arc::new(store))
}
