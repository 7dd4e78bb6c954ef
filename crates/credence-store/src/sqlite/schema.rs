//! The embedded store's schema: versioned migrations, one SQL file each under `migrations/`, applied in order in one transaction.

use super::*;

/// The migrations in order: migration `i` takes the database from version `i` to `i + 1`
/// (`PRAGMA user_version` holds the version).
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_job_partitions.sql"),
    include_str!("migrations/0003_products.sql"),
    include_str!("migrations/0004_users_disabled.sql"),
];

/// The schema version this build writes: one per migration.
const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`], applying the migrations it lacks in one
/// transaction; refuses a database written by a newer build.
pub(super) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let Ok(applied) = usize::try_from(version) else {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}, which no build writes"
        )));
    };
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
        for migration in &MIGRATIONS[applied..] {
            conn.execute_batch(migration)?;
        }
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
