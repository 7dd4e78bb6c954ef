//! PostgreSQL's errors as the store's: which SQLSTATEs mean "unavailable" (retry later), "conflict" or a database error, and reading a column without panicking.

use credence_store::StoreError;
use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

/// The store error for a driver error.
pub(crate) fn store_error(error: tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        let unavailable = |why: &str| StoreError::Unavailable(why.to_string());
        return match code {
            c if *c == SqlState::DISK_FULL => {
                unavailable("the database cannot be written: no space left on its device")
            }
            c if *c == SqlState::QUERY_CANCELED => {
                unavailable("the database did not answer within the statement timeout")
            }
            c if *c == SqlState::LOCK_NOT_AVAILABLE => {
                unavailable("the database did not grant a lock within the statement timeout")
            }
            c if *c == SqlState::READ_ONLY_SQL_TRANSACTION => {
                unavailable("the database is read-only (a standby, or in recovery)")
            }
            c if *c == SqlState::ADMIN_SHUTDOWN
                || *c == SqlState::CANNOT_CONNECT_NOW
                || *c == SqlState::TOO_MANY_CONNECTIONS
                || *c == SqlState::CRASH_SHUTDOWN =>
            {
                unavailable("the database is shutting down, starting or full of connections")
            }
            c if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
            {
                StoreError::Commit(format!(
                    "the database aborted the transaction ({}); retry",
                    db.message()
                ))
            }
            _ => StoreError::Database(Box::new(error)),
        };
    }
    if error.is_closed() {
        return StoreError::Unavailable("the database connection was lost".into());
    }
    if let Some(source) = std::error::Error::source(&error) {
        // Connecting failed (refused, timed out, the certificate not trusted): the root cause,
        // which names no host.
        if source.is::<std::io::Error>() || error.to_string().contains("TLS") {
            return StoreError::Unavailable(format!(
                "cannot reach the database: {error}: {source}"
            ));
        }
    }
    StoreError::Database(Box::new(error))
}

/// An insert's error: a unique violation is a [`StoreError::Conflict`] on `what`.
pub(crate) fn insert_error(
    error: tokio_postgres::Error,
    what: impl FnOnce() -> String,
) -> StoreError {
    if error.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        return StoreError::Conflict { what: what() };
    }
    store_error(error)
}

/// No connection from the pool.
pub(crate) fn pool_error(error: deadpool_postgres::PoolError) -> StoreError {
    match error {
        deadpool_postgres::PoolError::Backend(error) => store_error(error),
        deadpool_postgres::PoolError::Timeout(_) => StoreError::Unavailable(
            "no database connection became free in time (raise --database-pool-size?)".into(),
        ),
        other => StoreError::Unavailable(format!("no database connection: {other}")),
    }
}

/// `?` on a driver result.
pub(crate) trait Db<T> {
    /// The result with its error as the store's.
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for Result<T, tokio_postgres::Error> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(store_error)
    }
}

/// Column `index` of `row`, or [`StoreError::Corrupt`] naming it.
pub(crate) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
) -> Result<T, StoreError> {
    row.try_get(index).map_err(|e| {
        StoreError::Corrupt(format!(
            "column {} of a stored row: {e}",
            row.columns().get(index).map(|c| c.name()).unwrap_or("?")
        ))
    })
}
