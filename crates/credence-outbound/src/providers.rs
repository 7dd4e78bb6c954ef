//! Third-party data providers: HTTP JSON calls with a per-call timeout, retries with backoff
//! for idempotent calls, a circuit breaker per provider, a TTL cache per (source, subject), a
//! waterfall across providers, and the mapping of a response to typed values by JSON pointer.
//!
//! Everything here is async: a slow provider holds a task, never a thread. A response that
//! does not fit the declared fields is a provider failure, recorded with its reason, never a
//! crash. Secrets in URLs and headers (`{secret:NAME}`) come from the environment or a secrets
//! file handed in by the operator, never from a strategy package.
//!
//! Providers are called over HTTPS (rustls, TLS 1.2 and 1.3) or plain HTTP, as each URL says.
//! Servers are trusted by Mozilla's root certificates, compiled in, plus any CA the operator
//! adds ([`Providers::trust_ca_pem`]) for a bureau behind a private PKI.
//!
//! The cache outlives the process when the service asks it to ([`Providers::keep_answers`]):
//! each paid answer is also queued for the store ([`Providers::take_unsaved`]), and a new
//! process loads the unexpired ones back ([`Providers::restore`]), so a restart or a deploy does
//! not pay for the same customer's report twice within the TTL.

use crate::error::OutboundError;
use crate::provider_cache::ShardedCache;
use crate::provider_http::{PreparedGet, ProviderHttp};
use arc_swap::ArcSwap;
use credence_app::providers::{CallRecord, DataProviders, FetchOutcome};
use credence_engine::data::{map_response, DataSource, DataValues, Provider};
use credence_store::ProviderAnswerRecord;
use rustls_pki_types::{pem::PemObject, CertificateDer};
use serde::Serialize;
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    /// Half-open: one trial call is out; others are refused until it ends.
    trial_out: bool,
}

/// The answer of a fetch in flight, once it lands.
type InFlight = tokio::sync::watch::Receiver<Option<FetchOutcome>>;

/// The fetches in flight by cache key (source, subject). The subject is the caller's: the hash
/// is seeded per process (foldhash), and a fraction of SipHash's cost on every fetch.
type InFlightMap = HashMap<(String, String), InFlight, foldhash::fast::RandomState>;

/// Removes a key from the fetches in flight when the leading fetch ends, also when the request
/// that made it is dropped mid-call (its followers then fetch for themselves).
struct InFlightGuard<'a> {
    map: &'a Mutex<InFlightMap>,
    key: (String, String),
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&self.key);
    }
}

struct CacheEntry {
    provider: String,
    values: DataValues,
}

/// A paid answer not yet handed to the store.
struct UnsavedAnswer {
    key: (String, String),
    provider: String,
    values: DataValues,
    fetched: Instant,
    expires: Instant,
}

/// Answers kept at most; beyond it the oldest go first (a re-pull costs a provider call, never
/// a wrong answer).
pub const CACHE_CAPACITY: usize = 200_000;

/// The providers of a process: one HTTP client, the breakers and the cache.
pub struct Providers {
    /// Replaced (not changed) when the operator adds a CA, before serving.
    client: ArcSwap<ProviderHttp>,
    /// From the secrets file; the environment is read when a name is not here.
    secrets: RwLock<HashMap<String, String>>,
    breakers: Mutex<HashMap<String, Breaker>>,
    cache: ShardedCache<(String, String), CacheEntry>,
    /// Fetches in flight by cache key: a concurrent request for the same subject waits for the
    /// call already made and shares its answer (single flight: one paid pull, not several).
    in_flight: Mutex<InFlightMap>,
    /// Whether paid answers are queued in `unsaved` for the store.
    keep_answers: AtomicBool,
    unsaved: Mutex<Vec<UnsavedAnswer>>,
    /// The answers every node shares (PostgreSQL): asked on a local miss, before paying.
    shared: std::sync::OnceLock<Arc<dyn credence_store::ProviderAnswerStore>>,
}

/// The state a provider's breaker is in now, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// The open period ended: one trial call decides.
    HalfOpen,
}

/// Reads `NAME=value` lines (blank lines and `#` comments skipped) from a secrets file.
pub fn parse_secrets(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A client for `http` and `https` URLs that trusts Mozilla's roots and `extra_roots`.
fn provider_client(extra_roots: &[CertificateDer<'static>]) -> Result<ProviderHttp, OutboundError> {
    Ok(ProviderHttp::new(tls_config(extra_roots)?))
}

/// The certificates of a PEM file (one or more `CERTIFICATE` blocks); `what` names the
/// setting in errors.
pub fn pem_certificates(
    pem: &[u8],
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, OutboundError> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| OutboundError::NotPem {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    if certificates.is_empty() {
        return Err(OutboundError::NoCertificate {
            what: what.to_string(),
        });
    }
    Ok(certificates)
}

/// The TLS set-up of every outbound client: rustls on ring, Mozilla's roots built in, and
/// `extra_roots` (an operator's CAs).
pub fn tls_config(
    extra_roots: &[CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, OutboundError> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for certificate in extra_roots {
        roots
            .add(certificate.clone())
            .map_err(|e| OutboundError::UnusableCertificate {
                reason: e.to_string(),
            })?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| OutboundError::Tls {
        reason: e.to_string(),
    })?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut tls = tls;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

impl Providers {
    /// Providers with the secrets of a secrets file (the environment fills the rest).
    pub fn new(secrets: HashMap<String, String>) -> Providers {
        let client = provider_client(&[])
            .expect("Mozilla's roots with the ring provider's defaults are a valid TLS set-up");
        Providers {
            client: ArcSwap::from_pointee(client),
            secrets: RwLock::new(secrets),
            breakers: Mutex::new(HashMap::new()),
            cache: ShardedCache::new(CACHE_CAPACITY),
            in_flight: Mutex::new(InFlightMap::default()),
            keep_answers: AtomicBool::new(false),
            unsaved: Mutex::new(Vec::new()),
            shared: std::sync::OnceLock::new(),
        }
    }

    /// Asks `store` — the answers all nodes keep — on a local cache miss before paying a
    /// provider: an answer another node bought within its TTL (and saved, a fraction of a
    /// second after) is not bought again. The local cache and single flight stay in front.
    pub fn share_answers(&self, store: Arc<dyn credence_store::ProviderAnswerStore>) {
        let _ = self.shared.set(store);
    }

    /// A shared answer for `key`, put in the local cache; `None` when there is none or the
    /// store cannot say (then the provider is asked, as without sharing).
    async fn shared_answer(
        &self,
        source: &DataSource,
        key: &(String, String),
    ) -> Option<FetchOutcome> {
        let store = self.shared.get()?;
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis() as i64;
        let record = match store.provider_answer(&key.0, &key.1, wall_ms).await {
            Ok(found) => found?,
            Err(error) => {
                tracing::warn!(%error, source = %source.name, "cannot read the shared provider answers");
                return None;
            }
        };
        let values: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&record.values_json).ok()?;
        let values = DataValues::new(values);
        let now = Instant::now();
        let left =
            Duration::from_millis(record.expires_at_ms.saturating_sub(wall_ms).max(0) as u64);
        self.cache.shard(key).insert(
            key.clone(),
            CacheEntry {
                provider: record.provider.clone(),
                values: values.clone(),
            },
            now + left,
            now,
        );
        Some(FetchOutcome {
            source: source.name.to_string(),
            subject: key.1.clone(),
            ok: true,
            cache_hit: true,
            provider: Some(record.provider),
            values,
            calls: Vec::new(),
            reason: None,
        })
    }

    /// From now on, queues every paid answer for [`Providers::take_unsaved`].
    pub fn keep_answers(&self) {
        self.keep_answers.store(true, Ordering::Relaxed);
    }

    /// The answers paid for since the last call, with their times on the wall clock (`now_ms`
    /// being the wall clock's now), for the store.
    pub fn take_unsaved(&self, now_ms: i64) -> Vec<ProviderAnswerRecord> {
        let unsaved = std::mem::take(&mut *self.unsaved.lock().unwrap_or_else(|e| e.into_inner()));
        let now = Instant::now();
        let wall_ms = |at: Instant| {
            if at >= now {
                now_ms.saturating_add(at.duration_since(now).as_millis() as i64)
            } else {
                now_ms.saturating_sub(now.duration_since(at).as_millis() as i64)
            }
        };
        unsaved
            .into_iter()
            .filter_map(|answer| {
                Some(ProviderAnswerRecord {
                    source_key: answer.key.0,
                    subject: answer.key.1,
                    provider: answer.provider,
                    values_json: serde_json::to_string(&*answer.values).ok()?,
                    fetched_at_ms: wall_ms(answer.fetched),
                    expires_at_ms: wall_ms(answer.expires),
                })
            })
            .collect()
    }

    /// Puts answers kept by an earlier process back in the cache until they expire (`now_ms`
    /// being the wall clock's now); returns how many. A record that does not read back as a
    /// JSON object is skipped: the next decision that needs it pulls it again.
    pub fn restore(&self, records: Vec<ProviderAnswerRecord>, now_ms: i64) -> usize {
        let now = Instant::now();
        let mut restored = 0;
        // Latest expiry last: when the cache is full, the answers that expire first leave first.
        let mut records = records;
        records.sort_by_key(|r| r.expires_at_ms);
        for record in records {
            if record.expires_at_ms <= now_ms {
                continue;
            }
            let left_ms = record.expires_at_ms.abs_diff(now_ms);
            let Ok(values) =
                serde_json::from_str::<BTreeMap<String, serde_json::Value>>(&record.values_json)
            else {
                continue;
            };
            let key = (record.source_key, record.subject);
            self.cache.shard(&key).insert(
                key,
                CacheEntry {
                    provider: record.provider,
                    values: DataValues::new(values),
                },
                now + Duration::from_millis(left_ms),
                now,
            );
            restored += 1;
        }
        restored
    }

    /// Trusts, besides Mozilla's roots, the CA certificates in `pem` (PEM text, one or more
    /// `CERTIFICATE` blocks) for HTTPS providers; returns how many were added. Call it before
    /// serving: calls already connected keep the trust they were made with.
    pub fn trust_ca_pem(&self, pem: &[u8]) -> Result<usize, OutboundError> {
        let certificates = pem_certificates(pem, "provider_ca_file")?;
        self.client.store(Arc::new(provider_client(&certificates)?));
        Ok(certificates.len())
    }

    /// The TLS set-up of provider calls (Mozilla's roots and the operator's CAs), for the
    /// other outbound clients (webhooks).
    pub fn tls_config(&self) -> Arc<rustls::ClientConfig> {
        self.client.load().tls_config()
    }

    /// Adds secrets (from a secrets file); they take precedence over the environment.
    pub fn add_secrets(&self, secrets: HashMap<String, String>) {
        if let Ok(mut current) = self.secrets.write() {
            current.extend(secrets);
        }
    }

    fn secret(&self, name: &str) -> Option<String> {
        self.secrets
            .read()
            .ok()
            .and_then(|s| s.get(name).cloned())
            .or_else(|| std::env::var(name).ok())
    }

    /// Replaces `{subject}` (percent-encoded) and `{secret:NAME}` (the secrets file, then the
    /// environment); an unknown secret is an error naming it (the package never carries one).
    pub(crate) fn fill(&self, template: &str, subject: &str) -> Result<String, String> {
        let mut out = String::with_capacity(template.len() + subject.len());
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(end) = rest[start..].find('}') else {
                return Err(format!("unclosed {{ in {template}"));
            };
            let name = &rest[start + 1..start + end];
            if name == "subject" {
                for byte in subject.bytes() {
                    if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                        out.push(byte as char);
                    } else {
                        out.push_str(&format!("%{byte:02X}"));
                    }
                }
            } else if let Some(secret) = name.strip_prefix("secret:") {
                match self.secret(secret) {
                    Some(value) => out.push_str(&value),
                    None => {
                        return Err(format!(
                        "secret {secret} is not set; set it in the environment or the secrets file"
                    ))
                    }
                }
            } else {
                return Err(format!("unknown placeholder {{{name}}} in {template}"));
            }
            rest = &rest[start + end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The state of `provider`'s circuit breaker now.
    pub fn breaker_state(&self, provider: &str) -> BreakerState {
        let breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        match breakers.get(provider) {
            Some(b) if b.open_until.is_some_and(|t| Instant::now() < t) => BreakerState::Open,
            Some(b) if b.open_until.is_some() => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    /// May a call go to this provider now? Half-open lets one trial through.
    fn admit(&self, provider: &str) -> bool {
        let mut breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let breaker = breakers.entry(provider.to_string()).or_default();
        match breaker.open_until {
            None => true,
            Some(until) if Instant::now() < until => false,
            Some(_) if breaker.trial_out => false,
            Some(_) => {
                breaker.trial_out = true;
                true
            }
        }
    }

    fn settle(&self, provider: &str, source: &DataSource, ok: bool) {
        let mut breakers = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let breaker = breakers.entry(provider.to_string()).or_default();
        breaker.trial_out = false;
        if ok {
            *breaker = Breaker::default();
            return;
        }
        breaker.consecutive_failures += 1;
        let half_open = breaker.open_until.is_some();
        if half_open || breaker.consecutive_failures >= source.breaker_failures.max(1) {
            breaker.open_until =
                Some(Instant::now() + Duration::from_millis(source.breaker_open_seconds * 1000));
        }
    }

    /// One provider, with its retries: the mapped values, or the record of why not.
    async fn call(
        &self,
        source: &DataSource,
        provider: &Provider,
        subject: &str,
    ) -> (CallRecord, Option<BTreeMap<String, serde_json::Value>>) {
        let started = Instant::now();
        let mut record = CallRecord {
            provider: provider.name.clone(),
            status: "ok",
            http_status: None,
            latency_ms: 0,
            attempts: 0,
            cost: provider.cost,
            error: None,
        };
        let prepared = self.fill(&provider.url, subject).and_then(|url| {
            let mut headers = Vec::with_capacity(provider.headers.len());
            for (name, value) in &provider.headers {
                headers.push((name.clone(), self.fill(value, subject)?));
            }
            PreparedGet::new(&url, &headers)
        });
        let request = match prepared {
            Ok(prepared) => prepared,
            Err(error) => {
                record.status = "invalid_request";
                record.error = Some(error);
                return (record, None);
            }
        };
        let client = self.client.load_full();
        let mut result = None;
        for attempt in 0..=provider.retries {
            if attempt > 0 {
                tokio::time::sleep(retry_delay(attempt)).await;
            }
            record.attempts = attempt + 1;
            let exchange = client.get(&request);
            match tokio::time::timeout(Duration::from_millis(provider.timeout_ms), exchange).await {
                Err(_) => {
                    record.status = "timeout";
                    record.error = Some(format!("no answer within {} ms", provider.timeout_ms));
                }
                Ok(Err(error)) => {
                    record.status = "unreachable";
                    record.error = Some(error);
                }
                Ok(Ok(crate::provider_http::HttpAnswer { status, body })) => {
                    record.http_status = Some(status);
                    if !(200..300).contains(&status) {
                        record.status = "http_error";
                        record.error = Some(format!("HTTP {status}"));
                        // A refusal of the request itself (401, 404, 422…) would be refused
                        // again, and each try may be a paid pull: only 429 and 5xx retry.
                        if !is_retryable_status(status) {
                            break;
                        }
                    } else {
                        // A 2xx that does not fit is the provider's failure: not retried.
                        match serde_json::from_slice::<serde_json::Value>(&body)
                            .map_err(|e| format!("the body is not JSON: {e}"))
                            .and_then(|json| map_response(&source.fields, &json))
                        {
                            Ok(values) => {
                                record.status = "ok";
                                record.error = None;
                                result = Some(values);
                            }
                            Err(error) => {
                                record.status = "invalid_response";
                                record.error = Some(error);
                            }
                        }
                        break;
                    }
                }
            }
        }
        let elapsed = started.elapsed();
        record.latency_ms = elapsed.as_millis() as u64;
        credence_app::metrics::histogram(
            credence_app::metrics::PROVIDER_CALL_SECONDS,
            &[("provider", &record.provider), ("status", record.status)],
        )
        .record(elapsed.as_secs_f64());
        (record, result)
    }

    /// Fetches a source for a subject: the cache; else the answer of the same fetch already in
    /// flight; else each provider in turn (skipping those whose breaker is open), until one
    /// answers with a response that fits.
    /// Fetches `source` for `subject` (see [`DataProviders::fetch`]).
    pub async fn fetch(&self, source: &DataSource, subject: &str) -> FetchOutcome {
        // The mapping is part of the key: a strategy version that reads other fields never
        // gets an answer shaped for an earlier one. It enters as a digest (128 bits of SHA-256),
        // keeping the key short in memory and in the store.
        let mut shape = sha2::Sha256::new();
        for field in source.fields.iter() {
            for part in [field.name.as_bytes(), b"=", field.pointer.as_bytes(), b","] {
                shape.update(part);
            }
        }
        let digest = shape.finalize();
        let mut key_text = String::with_capacity(source.name.len() + 33);
        key_text.push_str(&source.name);
        key_text.push('#');
        key_text.push_str(&credence_store::chain::lower_hex(&digest[..16]));
        let key = (key_text, subject.to_string());
        if source.cache_ttl_seconds > 0 {
            let mut cache = self.cache.shard(&key);
            if let Some(entry) = cache.get(&key, Instant::now()) {
                return FetchOutcome {
                    source: source.name.to_string(),
                    subject: subject.to_string(),
                    ok: true,
                    cache_hit: true,
                    provider: Some(entry.provider.clone()),
                    values: entry.values.clone(),
                    calls: Vec::new(),
                    reason: None,
                };
            }
        }
        if source.cache_ttl_seconds == 0 {
            return self.fetch_from_providers(source, subject, key).await;
        }
        let follow = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            match in_flight.get(&key) {
                Some(receiver) => Err(receiver.clone()),
                None => {
                    let (sender, receiver) = tokio::sync::watch::channel(None);
                    in_flight.insert(key.clone(), receiver);
                    Ok(sender)
                }
            }
        };
        match follow {
            Ok(sender) => {
                let guard = InFlightGuard {
                    map: &self.in_flight,
                    key: key.clone(),
                };
                let outcome = match self.shared_answer(source, &key).await {
                    Some(outcome) => outcome,
                    None => self.fetch_from_providers(source, subject, key).await,
                };
                let _ = sender.send(Some(outcome.clone()));
                drop(guard);
                outcome
            }
            Err(mut receiver) => {
                loop {
                    if let Some(outcome) = receiver.borrow_and_update().clone() {
                        // Nobody was called for this request: nothing paid, no calls recorded.
                        return FetchOutcome {
                            cache_hit: outcome.ok,
                            calls: Vec::new(),
                            ..outcome
                        };
                    }
                    if receiver.changed().await.is_err() {
                        break;
                    }
                }
                // The leading request went away before its answer: fetch for this one.
                self.fetch_from_providers(source, subject, key).await
            }
        }
    }

    /// Each provider in turn (skipping those whose breaker is open) until one answers with a
    /// response that fits; a good answer is cached under `key`.
    async fn fetch_from_providers(
        &self,
        source: &DataSource,
        subject: &str,
        key: (String, String),
    ) -> FetchOutcome {
        let mut calls = Vec::new();
        for provider in &source.providers {
            if !self.admit(&provider.name) {
                calls.push(CallRecord {
                    provider: provider.name.clone(),
                    status: "circuit_open",
                    http_status: None,
                    latency_ms: 0,
                    attempts: 0,
                    cost: None,
                    error: Some("the provider's circuit breaker is open".into()),
                });
                continue;
            }
            let (record, values) = self.call(source, provider, subject).await;
            self.settle(&provider.name, source, values.is_some());
            calls.push(record);
            if let Some(values) = values {
                let values = DataValues::new(values);
                if source.cache_ttl_seconds > 0 {
                    let now = Instant::now();
                    let expires = now + Duration::from_secs(source.cache_ttl_seconds);
                    if self.keep_answers.load(Ordering::Relaxed) {
                        let mut unsaved = self.unsaved.lock().unwrap_or_else(|e| e.into_inner());
                        // Bounded like the cache: past it, an answer is kept for this process only.
                        if unsaved.len() < CACHE_CAPACITY {
                            unsaved.push(UnsavedAnswer {
                                key: key.clone(),
                                provider: provider.name.clone(),
                                values: values.clone(),
                                fetched: now,
                                expires,
                            });
                        }
                    }
                    let mut cache = self.cache.shard(&key);
                    cache.insert(
                        key,
                        CacheEntry {
                            provider: provider.name.clone(),
                            values: values.clone(),
                        },
                        expires,
                        now,
                    );
                }
                return FetchOutcome {
                    source: source.name.to_string(),
                    subject: subject.to_string(),
                    ok: true,
                    cache_hit: false,
                    provider: Some(provider.name.clone()),
                    values,
                    calls,
                    reason: None,
                };
            }
        }
        let reason = calls
            .iter()
            .map(|c| format!("{}: {}", c.provider, c.error.as_deref().unwrap_or(c.status)))
            .collect::<Vec<_>>()
            .join("; ");
        let reason = if reason.is_empty() {
            "the source has no providers".into()
        } else {
            reason
        };
        FetchOutcome::failed(source, subject, calls, reason)
    }
}

/// Whether a provider's HTTP status is worth another try: overload (429) and server errors.
fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// The wait before retry `attempt` (1, 2, …): 25 ms doubling, with up to half of it again at
/// random, so that many decisions retrying one provider do not arrive together.
fn retry_delay(attempt: u32) -> Duration {
    let base_ms = 25u64 << attempt.min(6);
    let jitter_ms = u64::from(getrandom::u32().unwrap_or(0)) % (base_ms / 2 + 1);
    Duration::from_millis(base_ms + jitter_ms)
}

impl DataProviders for Providers {
    fn fetch<'a>(
        &'a self,
        source: &'a DataSource,
        subject: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = FetchOutcome> + Send + 'a>> {
        Box::pin(Providers::fetch(self, source, subject))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_answers_skip_the_expired_and_the_unreadable() {
        let providers = Providers::new(HashMap::new());
        let record = |subject: &str, expires_at_ms: i64, values_json: &str| ProviderAnswerRecord {
            source_key: "bureau#0123456789abcdef0123456789abcdef".into(),
            subject: subject.into(),
            provider: "primary".into(),
            values_json: values_json.into(),
            fetched_at_ms: 0,
            expires_at_ms,
        };
        let restored = providers.restore(
            vec![
                record("C-1", 10_000, r#"{"score": 1}"#),
                record("C-2", 1_000, r#"{"score": 2}"#),
                record("C-3", 10_000, "not json"),
            ],
            1_000,
        );
        assert_eq!(restored, 1);
        let key = |subject: &str| {
            (
                "bureau#0123456789abcdef0123456789abcdef".to_string(),
                subject.to_string(),
            )
        };
        let get = |subject: &str, at: Instant| {
            let key = key(subject);
            let mut shard = providers.cache.shard(&key);
            shard.get(&key, at).map(|entry| entry.values.clone())
        };
        let now = Instant::now();
        let kept = get("C-1", now).unwrap();
        assert_eq!(kept["score"], serde_json::json!(1));
        // Kept for what was left of its TTL (9 s), not longer.
        assert!(get("C-1", now + Duration::from_secs(9)).is_none());
        assert!(get("C-2", now).is_none());
        assert!(get("C-3", now).is_none());
        // Nothing was paid for here, so nothing is waiting for the store.
        providers.keep_answers();
        assert!(providers.take_unsaved(1_000).is_empty());
    }

    #[test]
    fn templates_take_the_subject_encoded_and_secrets_by_name() {
        let providers = Providers::new(parse_secrets("# bureau\nBUREAU_TOKEN = s3cret\n"));
        providers.add_secrets(parse_secrets("OTHER=1"));
        assert_eq!(
            providers
                .fill(
                    "http://b/reports/{subject}?k={secret:BUREAU_TOKEN}",
                    "C 1/2"
                )
                .unwrap(),
            "http://b/reports/C%201%2F2?k=s3cret"
        );
        let missing = providers.fill("Bearer {secret:NOPE}", "x").unwrap_err();
        assert!(missing.contains("secret NOPE is not set"), "{missing}");
        assert!(providers.fill("{what}", "x").is_err());
    }

    #[test]
    fn only_overload_and_server_errors_are_retried() {
        for (status, retried) in [
            (400, false),
            (401, false),
            (404, false),
            (422, false),
            (429, true),
            (500, true),
            (503, true),
        ] {
            assert_eq!(super::is_retryable_status(status), retried, "{status}");
        }
        for attempt in 1..8 {
            let base = 25u64 << attempt.min(6);
            let delay = super::retry_delay(attempt).as_millis() as u64;
            assert!(
                (base..=base + base / 2).contains(&delay),
                "{attempt}: {delay}"
            );
        }
    }
}
