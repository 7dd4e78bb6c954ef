//! Third-party data as the decide use case sees it: a port, [`DataProviders`], that fetches a
//! data source for a subject and always answers — with values, or with the record of why not.
//!
//! The adapter behind it (HTTP calls, retries, circuit breakers, the answer cache) lives in
//! `credence-outbound`; tests use a stub.

use credence_engine::data::{DataSource, DataValues};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;

/// One attempt at one provider, as recorded with the decision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    /// The provider called.
    pub provider: String,
    /// `ok`, `http_error`, `timeout`, `unreachable`, `invalid_response`, `circuit_open`.
    pub status: &'static str,
    /// The provider's HTTP status, when it answered.
    pub http_status: Option<u16>,
    /// Time of the call, retries included.
    pub latency_ms: u64,
    /// Attempts made (1 + retries used).
    pub attempts: u32,
    /// What the provider charges per call, as its declaration says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<rust_decimal::Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// Why the call failed, when it did.
    pub error: Option<String>,
}

/// What fetching a source for a subject gave.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FetchOutcome {
    /// The data source fetched.
    pub source: String,
    /// Whom it was fetched for (the customer or application id).
    pub subject: String,
    /// Whether the source gave values.
    pub ok: bool,
    /// Answered from the cache: no provider was called (and nothing paid).
    pub cache_hit: bool,
    /// The provider whose answer was used.
    pub provider: Option<String>,
    /// The values mapped from the answer (empty when the source failed).
    pub values: DataValues,
    /// Every call made, in order (empty on a cache hit).
    pub calls: Vec<CallRecord>,
    /// Why the source failed, when it did.
    pub reason: Option<String>,
}

impl FetchOutcome {
    /// A fetch that gave nothing: the calls made and why.
    pub fn failed(
        source: &DataSource,
        subject: &str,
        calls: Vec<CallRecord>,
        reason: String,
    ) -> FetchOutcome {
        FetchOutcome {
            source: source.name.to_string(),
            subject: subject.to_string(),
            ok: false,
            cache_hit: false,
            provider: None,
            values: DataValues::default(),
            calls,
            reason: Some(reason),
        }
    }
}

/// Where the decide use case gets third-party data.
pub trait DataProviders: Send + Sync {
    /// Fetches `source` for `subject`: from a cache or by calling its providers in order.
    /// Never fails: a failure is a [`FetchOutcome`] with `ok: false` and its reason.
    fn fetch<'a>(
        &'a self,
        source: &'a DataSource,
        subject: &'a str,
    ) -> Pin<Box<dyn Future<Output = FetchOutcome> + Send + 'a>>;
}

/// No providers at all: every source fails, saying so (a service started without any).
pub struct NoProviders;

impl DataProviders for NoProviders {
    fn fetch<'a>(
        &'a self,
        source: &'a DataSource,
        subject: &'a str,
    ) -> Pin<Box<dyn Future<Output = FetchOutcome> + Send + 'a>> {
        Box::pin(std::future::ready(FetchOutcome::failed(
            source,
            subject,
            Vec::new(),
            "no data providers are configured".into(),
        )))
    }
}
