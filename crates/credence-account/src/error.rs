//! The account crate's one error type: bad events and changes an account cannot take.

/// A problem with one field of one event in a posted batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventViolation {
    /// Where, e.g. `events[2].amount`.
    pub path: String,
    /// What was expected, phrased as the fix.
    pub message: String,
}

/// Why an account operation was refused; [`AccountError::code`] is its stable machine code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    /// Posted events do not validate; every problem is listed.
    #[error("{} invalid event field(s): {}", .0.len(), .0.iter().map(|v| format!("{}: {}", v.path, v.message)).collect::<Vec<_>>().join("; "))]
    InvalidEvents(Vec<EventViolation>),
    /// The decision cannot open an account (it grants no limit, APR or term).
    #[error("cannot open an account: {0}")]
    CannotOpen(String),
    /// The account's status does not allow the change.
    #[error("account is {state}: {what}")]
    WrongState {
        /// The account's status.
        state: &'static str,
        /// What was refused.
        what: String,
    },
}

impl AccountError {
    /// The stable machine code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::InvalidEvents(_) => "invalid_events",
            AccountError::CannotOpen(_) => "cannot_open",
            AccountError::WrongState { .. } => "wrong_state",
        }
    }
}
