//! The account crate's one error type: bad events and changes an account cannot take.

/// A problem with one field of one event in a posted batch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventViolation {
    /// Where, e.g. `events[2].amount`.
    pub path: String,
    /// What was expected, phrased as the fix.
    pub message: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    #[error("{} invalid event field(s): {}", .0.len(), .0.iter().map(|v| format!("{}: {}", v.path, v.message)).collect::<Vec<_>>().join("; "))]
    InvalidEvents(Vec<EventViolation>),
    #[error("cannot open an account: {0}")]
    CannotOpen(String),
    #[error("account is {state}: {what}")]
    WrongState { state: &'static str, what: String },
}
