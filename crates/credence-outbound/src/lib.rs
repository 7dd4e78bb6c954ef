//! Credence's outbound HTTP adapter: the calls the service makes to others.
//!
//! - [`providers::Providers`] implements the application's
//!   [`credence_app::providers::DataProviders`] port: bureau and income data over HTTP(S), with
//!   per-call deadlines, retries, a circuit breaker per provider, a waterfall, single-flight and
//!   a TTL answer cache that the service can keep in the store across restarts.
//! - [`provider_check`] says which providers are configured and reachable (`serve` at start).
//! - [`webhooks`] delivers the outbox's webhook deliveries, signed, with backoff.
//!
//! Nothing here decides anything: what to fetch and what an answer means are the engine's and
//! the application's business.

#![warn(missing_docs)]

pub mod error;
mod provider_cache;
pub mod provider_check;
pub mod provider_http;
pub mod providers;
pub mod webhooks;

pub use error::OutboundError;
pub use providers::Providers;
