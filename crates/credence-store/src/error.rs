//! The store's one error type.

/// Why a store operation failed; [`StoreError::code`] is its stable machine code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused an operation or could not be opened (the driver's own error:
    /// SQLite's or PostgreSQL's).
    #[error("database error: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// The data directory could not be created or read.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: String,
        /// What the operating system said.
        message: String,
    },
    /// A uniqueness rule held: the row already exists (e.g. a reused idempotency key).
    #[error("{what} already exists")]
    Conflict {
        /// What already exists (`idempotency key K`, `account A`).
        what: String,
    },
    /// The row an update names does not exist or is not in the state the update needs.
    #[error("{what}")]
    Precondition {
        /// What did not hold, and what to do about it.
        what: String,
    },
    /// The batch holding this write could not be committed; nothing of it was kept.
    #[error("the write could not be committed: {0}")]
    Commit(String),
    /// The storage cannot take writes now (no space left on the device, a quota); nothing
    /// of the write was kept, and the same write may succeed once the operator frees space.
    /// The message names no path: it may reach a client.
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// The writer thread is gone (the store is shutting down).
    #[error("the store is shutting down")]
    Closed,
    /// A stored row could not be read back (corrupt or written by a newer version).
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// The stable machine code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Database(_) => "database",
            StoreError::Io { .. } => "io",
            StoreError::Conflict { .. } => "conflict",
            StoreError::Precondition { .. } => "precondition",
            StoreError::Commit(_) => "commit",
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Closed => "closed",
            StoreError::Corrupt(_) => "corrupt",
        }
    }

    pub(crate) fn from_insert(error: rusqlite::Error, what: impl FnOnce() -> String) -> StoreError {
        match &error {
            rusqlite::Error::SqliteFailure(code, _)
                if code.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::Conflict { what: what() }
            }
            _ => StoreError::from(error),
        }
    }
}

/// Whether an I/O error means the device is out of space (or over a quota).
pub(crate) fn is_out_of_space(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::StorageFull
        || matches!(error.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

impl From<rusqlite::Error> for StoreError {
    /// A full database or disk is [`StoreError::Unavailable`]; anything else a database error.
    fn from(error: rusqlite::Error) -> StoreError {
        match &error {
            rusqlite::Error::SqliteFailure(code, _)
                if code.code == rusqlite::ErrorCode::DiskFull =>
            {
                StoreError::Unavailable(
                    "the database cannot be written: no space left on the device".into(),
                )
            }
            _ => StoreError::Database(Box::new(error)),
        }
    }
}
