//! Credence's application layer: the use cases, between the pure core and the adapters.
//!
//! ```text
//! adapters (HTTP service, command line) ─▶ use cases (this crate) ─▶ engine, models, accounts,
//!                                                │                    review, back-test (pure)
//!                                                └─▶ ports: Store traits, DataProviders, Clock
//! ```
//!
//! Each module is one use case or a family of them — [`decisions`] (decide, idempotency,
//! the decision record), [`replay`], [`strategies`] (upload, approve, activate, roll back),
//! [`accounts`] (accounts, events, in-loan flows), [`cases`] (manual review), [`portfolio`]
//! (batch limit reviews), [`backtest`] (the back-test runner), [`monitoring`], [`auth`] and
//! [`users`] (keys, roles, passwords). They return [`AppError`], whose [`ErrorCode`] is the
//! stable vocabulary clients match on; the HTTP adapter maps codes to statuses in one table,
//! the command line prints the message.
//! All I/O goes through ports: the store traits of `credence-store`, the
//! [`providers::DataProviders`] port (implemented by `credence-outbound`) and the engine's
//! [`Clock`].

#![warn(missing_docs)]

pub mod accounts;
pub mod auth;
pub mod backtest;
pub mod cases;
pub mod decisions;
pub mod error;
pub mod flat_json;
pub mod mask;
pub mod metrics;
pub mod monitoring;
pub mod package_archive;
pub mod package_dir;
pub mod portfolio;
pub mod providers;
pub mod replay;
pub mod shadow;
pub mod strategies;
pub mod strict_json;
pub mod users;

pub use auth::{issue_key, Action, Authenticator, Principal, Role};
pub use decisions::Decisions;
pub use error::{AppError, ErrorCode};
pub use strategies::Strategies;

/// The application's source of time: the engine's one clock trait.
pub use credence_engine::Clock;

/// The real clock: the system's time in UTC.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}
