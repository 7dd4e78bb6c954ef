//! Credence's HTTP adapter: the decision API, the workbench and the listener, over the use
//! cases of `credence-app`.
//!
//! ```text
//! HTTP ─▶ routes, workbench (auth, parse, map errors) ─▶ credence-app use cases ─▶ engine (pure)
//!                                                              ├─▶ Store (durable log)
//!                                                              └─▶ credence-outbound (providers)
//! ```
//!
//! Handlers are thin: they authenticate, check the caller's role, turn the request into a
//! call on a use case, and turn the answer (or the [`ApiError`]) into a response; the status
//! of an error code is decided in [`error`] and nowhere else. [`Service`] wires the use cases
//! to a store, a clock and the outbound providers.

#![warn(missing_docs)]

pub mod error;
pub mod metrics;
pub mod openapi;
mod routes;
pub mod server;
pub mod sign_in;
mod workbench;

// The use cases, under the names the handlers use.
pub(crate) use credence_app::{
    accounts, auth, cases, decisions, mask, monitoring, shadow, strategies, strict_json, users,
};
pub use credence_app::{issue_key, Action, Authenticator, Decisions, Principal, Role, Strategies};
pub(crate) use credence_outbound::providers;
pub use error::{ApiError, ErrorCode};
pub use routes::router;

use credence_store::{Store, StoreError};
use std::sync::Arc;

pub use credence_app::{Clock, SystemClock};

/// Limits and timings the service runs with (addresses and paths are the binary's business).
#[derive(Debug, Clone)]
pub struct ServiceLimits {
    /// Largest decision request body.
    pub max_body_bytes: usize,
    /// Largest strategy package upload (compressed).
    pub max_package_bytes: usize,
    /// History page size when `limit` is not given, and the largest allowed.
    pub default_page_size: u32,
    /// The largest `limit` a history page may ask for.
    pub max_page_size: u32,
    /// How long a workbench sign-in lasts.
    pub session_ttl_seconds: u64,
    /// Mark workbench cookies `Secure` (browsers then send them over HTTPS only); on by
    /// default when the configured public URL is `https://`.
    pub secure_cookies: bool,
    /// The listener's connection cap and timeouts.
    pub http: server::HttpLimits,
    /// Workbench sign-in throttling and lockout.
    pub sign_in: sign_in::SignInLimits,
    /// What a strategy package may make the engine do (checked at upload).
    pub strategy: credence_engine::Limits,
}

impl Default for ServiceLimits {
    fn default() -> Self {
        ServiceLimits {
            max_body_bytes: 64 * 1024,
            max_package_bytes: 16 * 1024 * 1024,
            default_page_size: 50,
            max_page_size: 1000,
            session_ttl_seconds: 8 * 3600,
            secure_cookies: false,
            http: server::HttpLimits::default(),
            sign_in: sign_in::SignInLimits::default(),
            strategy: credence_engine::Limits::default(),
        }
    }
}

/// Everything a request handler can reach.
pub struct Service {
    /// The store every use case writes through.
    pub store: Arc<dyn Store>,
    /// The strategy lifecycle and the active version.
    pub strategies: Arc<Strategies>,
    /// Decide, read, list and replay.
    pub decisions: Arc<Decisions>,
    /// Third-party data providers: one HTTP client, circuit breakers and the answer cache.
    pub providers: Arc<providers::Providers>,
    /// Accounts, account events and in-loan flows.
    pub accounts: accounts::Accounts,
    /// Manual review cases.
    pub cases: Arc<cases::Cases>,
    /// API keys and their roles.
    pub auth: Authenticator,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// The limits the service was started with.
    pub limits: ServiceLimits,
    /// Failed workbench sign-ins by username and address.
    pub sign_in: sign_in::SignInGuard,
    /// Password hashes computed at once (`SignInLimits::concurrent_hashes`).
    pub password_hashing: tokio::sync::Semaphore,
    /// What the last check of the active strategies' data providers found (`/readyz` shows it).
    pub provider_checks: std::sync::RwLock<Vec<credence_outbound::provider_check::ProviderCheck>>,
}

impl Service {
    /// Wires the use cases to `store` and `clock`, with providers that have no secrets yet.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        limits: ServiceLimits,
    ) -> Arc<Service> {
        let strategies = Arc::new(Strategies::with_limits(store.clone(), limits.strategy));
        let cases = Arc::new(cases::Cases::new(
            store.clone(),
            strategies.clone(),
            clock.clone(),
        ));
        let providers = Arc::new(providers::Providers::new(Default::default()));
        let decisions = Arc::new(Decisions::new(
            store.clone(),
            strategies.clone(),
            cases.clone(),
            clock.clone(),
            providers.clone(),
        ));
        Arc::new(Service {
            accounts: accounts::Accounts::new(
                store.clone(),
                strategies.clone(),
                decisions.clone(),
                cases.clone(),
                clock.clone(),
            ),
            decisions,
            providers,
            cases,
            auth: Authenticator::new(store.clone()),
            strategies,
            store,
            clock,
            sign_in: sign_in::SignInGuard::new(limits.sign_in),
            password_hashing: tokio::sync::Semaphore::new(limits.sign_in.concurrent_hashes.max(1)),
            provider_checks: std::sync::RwLock::new(Vec::new()),
            limits,
        })
    }

    /// Checks every provider of the active strategies' data sources (configured and reachable),
    /// keeps the result for `/readyz`, and returns it, by strategy.
    pub async fn check_providers(
        &self,
    ) -> Vec<(String, credence_outbound::provider_check::ProviderCheck)> {
        let mut found = Vec::new();
        for active in self.strategies.active_all() {
            for source in active.strategy.data_sources() {
                for check in self.providers.check(source).await {
                    found.push((active.name.clone(), check));
                }
            }
        }
        if let Ok(mut kept) = self.provider_checks.write() {
            *kept = found.iter().map(|(_, c)| c.clone()).collect();
        }
        found
    }

    /// Now, in milliseconds since the epoch, by the service's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Loads the provider answers an earlier process kept, unexpired, into the cache, and from
    /// now on keeps every paid answer for [`Service::save_provider_answers`]; returns how many
    /// were loaded. Call it once, before serving.
    pub async fn restore_provider_answers(&self) -> Result<usize, StoreError> {
        // Kept from now on even if the earlier ones cannot be read.
        self.providers.keep_answers();
        let records = self
            .store
            .provider_answers(self.now_ms(), providers::CACHE_CAPACITY as u32)
            .await?;
        Ok(self.providers.restore(records, self.now_ms()))
    }

    /// Hands the provider answers paid for since the last call to the store, which also deletes
    /// the expired ones; returns how many were handed over. Run it a few times a second and once
    /// at shutdown: an answer not yet saved when the process dies is at worst pulled again.
    pub async fn save_provider_answers(&self) -> Result<usize, StoreError> {
        let now_ms = self.now_ms();
        let answers = self.providers.take_unsaved(now_ms);
        let count = answers.len();
        self.store.put_provider_answers(answers, now_ms).await?;
        Ok(count)
    }
}
