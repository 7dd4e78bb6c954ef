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

/// A fetch as its decision records it (`data[].meta`): keys in alphabetical order, calls too,
/// as the JSON maps this record was first written from ordered them, so records keep their
/// bytes.
#[derive(Serialize)]
struct FetchRecord<'a> {
    cache_hit: bool,
    #[serde(serialize_with = "calls_in_key_order")]
    calls: &'a [CallRecord],
    consent: Option<&'a str>,
    provider: Option<&'a str>,
}

/// One call in a [`FetchRecord`], its keys in alphabetical order.
#[derive(Serialize)]
struct CallInKeyOrder<'a> {
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost: Option<rust_decimal::Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    http_status: Option<u16>,
    latency_ms: u64,
    provider: &'a str,
    status: &'a str,
}

fn calls_in_key_order<S: serde::Serializer>(
    calls: &&[CallRecord],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(calls.iter().map(|call| CallInKeyOrder {
        attempts: call.attempts,
        cost: call.cost,
        error: call.error.as_deref(),
        http_status: call.http_status,
        latency_ms: call.latency_ms,
        provider: &call.provider,
        status: call.status,
    }))
}

/// What a decision records about a fetch: the provider used, whether the cache answered, every
/// call, and the consent it was made under.
pub fn fetch_meta(
    fetched: &FetchOutcome,
    consent: Option<&str>,
) -> serde_json::Result<credence_engine::data::FetchMeta> {
    credence_engine::data::FetchMeta::of(&FetchRecord {
        cache_hit: fetched.cache_hit,
        calls: &fetched.calls,
        consent,
        provider: fetched.provider.as_deref(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn call() -> impl Strategy<Value = CallRecord> {
        (
            ".{0,12}",
            prop::sample::select(vec!["ok", "http_error", "timeout", "unreachable"]),
            prop::option::of(100u16..600),
            any::<u64>(),
            any::<u32>(),
            prop::option::of((any::<i64>(), 0u32..10)),
            prop::option::of("[ -~\"\\\\\u{1}é]{0,16}"),
        )
            .prop_map(
                |(provider, status, http_status, latency_ms, attempts, cost, error)| CallRecord {
                    provider,
                    status,
                    http_status,
                    latency_ms,
                    attempts,
                    cost: cost.map(|(units, scale)| rust_decimal::Decimal::new(units, scale)),
                    error,
                },
            )
    }

    proptest! {
        /// The fetch's record is, byte for byte, the JSON map it was first written from; a
        /// decision's record copies it as it is, and serde_json's value serialiser reads it.
        #[test]
        fn a_fetch_record_keeps_the_bytes_of_the_map_it_replaced(
            provider in prop::option::of(".{0,10}"),
            cache_hit: bool,
            calls in prop::collection::vec(call(), 0..4),
            consent in prop::option::of("[ -~\"\\\\é]{0,10}"),
        ) {
            let fetched = FetchOutcome {
                source: "bureau".into(),
                subject: "C-1".into(),
                ok: true,
                cache_hit,
                provider: provider.clone(),
                values: DataValues::default(),
                calls: calls.clone(),
                reason: None,
            };
            let map = serde_json::json!({
                "provider": provider,
                "cache_hit": cache_hit,
                "calls": calls,
                "consent": consent,
            });
            let meta = fetch_meta(&fetched, consent.as_deref()).unwrap();
            prop_assert_eq!(meta.text(), map.to_string());
            prop_assert_eq!(
                credence_engine::compact_json::to_vec(&Some(meta.clone())).unwrap(),
                serde_json::to_vec(&map).unwrap()
            );
            prop_assert_eq!(serde_json::to_value(&meta).unwrap(), map.clone());
            prop_assert_eq!(meta.to_value(), map);
        }
    }
}
