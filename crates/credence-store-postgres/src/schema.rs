//! The schema on PostgreSQL: versioned migrations, one SQL file each under `migrations/`, applied in order under an advisory lock so that nodes starting together apply each once.

use crate::error::{col, Db};
use crate::PostgresStore;
use credence_store::StoreError;

/// The migrations in order: migration `i` takes the database from version `i` to `i + 1`.
/// Never destructive: a migration adds; dropping data is an operator's decision.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_products.sql"),
    include_str!("migrations/0003_users_disabled.sql"),
];

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Advisory-lock key of migrations (any fixed number; `credence` in ASCII).
const MIGRATION_LOCK: i64 = 0x6372_6564_656e_6365;

/// Brings the database to [`SCHEMA_VERSION`]; refuses a database written by a newer build.
pub(crate) async fn migrate(store: &PostgresStore) -> Result<(), StoreError> {
    let mut client = store.client().await?;
    let transaction = client.transaction().await.db()?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .db()?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
            )",
        )
        .await
        .db()?;
    let row = transaction
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .db()?;
    let version: i64 = col(&row, 0)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}; this build reads up to {SCHEMA_VERSION}: upgrade credence"
        )));
    }
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        transaction.batch_execute(migration).await.db()?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version) VALUES ($1)",
                &[&(index as i64 + 1)],
            )
            .await
            .db()?;
    }
    transaction.commit().await.db()
}

/// The schema version of the database.
pub(crate) async fn version(store: &PostgresStore) -> Result<i64, StoreError> {
    let client = store.client().await?;
    let row = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .db()?;
    col(&row, 0)
}

impl PostgresStore {
    /// The schema version the database is at (`credence migrate` reports it).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        version(self).await
    }
}
