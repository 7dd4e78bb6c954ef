//! The names of the metrics the use cases emit, declared once (the HTTP adapter describes
//! them to its recorder and renders them at `/metrics`), and their labelled handles kept per
//! thread for the decision path.

/// Decisions made, by `strategy`, `flow`, `outcome` and `arm`.
pub const DECISIONS_TOTAL: &str = "credence_decisions_total";
/// Seconds from receiving a decision request to having the decision (before the log commit),
/// by `strategy` and `flow`.
pub const DECISION_SECONDS: &str = "credence_decision_seconds";
/// Requests answered from a stored decision because of a repeated Idempotency-Key.
pub const IDEMPOTENT_REPLAYS_TOTAL: &str = "credence_idempotent_replays_total";
/// Accounts opened from approved decisions.
pub const ACCOUNTS_OPENED_TOTAL: &str = "credence_accounts_opened_total";
/// Account events applied (first time seen).
pub const ACCOUNT_EVENTS_TOTAL: &str = "credence_account_events_total";
/// Account events ignored because their id was already applied.
pub const ACCOUNT_EVENTS_DUPLICATE_TOTAL: &str = "credence_account_events_duplicate_total";
/// Changes in-loan flows made to accounts, by `flow` and `action`.
pub const ACCOUNT_ACTIONS_TOTAL: &str = "credence_account_actions_total";
/// Calls to third-party data providers, by `provider` and `status` (ok, timeout, http_error,
/// unreachable, invalid_response, circuit_open).
pub const PROVIDER_CALLS_TOTAL: &str = "credence_provider_calls_total";
/// Third-party answers served from the cache (no call, nothing paid), by `source`.
pub const PROVIDER_CACHE_HITS_TOTAL: &str = "credence_provider_cache_hits_total";
/// Seconds one call to a provider took, retries included, by `provider` and `status`: the
/// latency a decision waits on, to watch against the provider's SLA and the call's timeout.
pub const PROVIDER_CALL_SECONDS: &str = "credence_provider_call_seconds";
/// Webhook deliveries by `outcome` (`delivered`, `retrying`, `failed`).
pub const WEBHOOK_DELIVERIES_TOTAL: &str = "credence_webhook_deliveries_total";
/// Shadow results stored (a candidate's evaluation of a live decision).
pub const SHADOW_RESULTS_TOTAL: &str = "credence_shadow_results_total";
/// Shadow evaluations dropped (a full queue, or a store that kept failing): live records
/// without their twin, which the comparison report counts too.
pub const SHADOW_DROPPED_TOTAL: &str = "credence_shadow_dropped_total";
/// Seconds a sampled decision spent in each `stage` of serving it (fingerprint, idempotency,
/// parse, route, validate, decide, record, commit, after): see `decisions::stages`.
pub const DECISION_STAGE_SECONDS: &str = "credence_decision_stage_seconds";

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once the process's recorder is installed ([`recorder_installed`]): handles obtained
/// before that are the no-op recorder's, and are not kept.
static RECORDER_READY: AtomicBool = AtomicBool::new(false);

/// Most label sets a thread keeps handles for, per kind; past it a metric is looked up in the
/// recorder's registry each time, as without the cache. Label values come from strategy
/// packages (names, flows, arms) and from small fixed sets (outcomes, statuses, routes). A
/// lookup scans the kept sets, so the bound also bounds a miss: at 128 it costs about what the
/// registry's own lookup does.
const MAX_CACHED_PER_THREAD: usize = 128;

/// Says that the process's metrics recorder is installed: from now on labelled handles are
/// kept per thread by [`counter`] and [`histogram`].
pub fn recorder_installed() {
    RECORDER_READY.store(true, Ordering::Release);
}

/// A handle kept for one metric name and label set.
struct Cached<H> {
    name: &'static str,
    labels: Vec<(&'static str, Box<str>)>,
    handle: H,
}

impl<H> Cached<H> {
    /// Whether this is the handle for `name` and `labels`: names and label values are short,
    /// and a different label set differs early (its length, or its first bytes).
    fn is_for(&self, name: &str, labels: &[(&'static str, &str)]) -> bool {
        self.name == name
            && self.labels.len() == labels.len()
            && self
                .labels
                .iter()
                .zip(labels)
                .all(|((key, value), (wanted_key, wanted))| {
                    value.len() == wanted.len() && **value == **wanted && key == wanted_key
                })
    }
}

thread_local! {
    static COUNTERS: RefCell<Vec<Cached<metrics::Counter>>> = const { RefCell::new(Vec::new()) };
    static HISTOGRAMS: RefCell<Vec<Cached<metrics::Histogram>>> = const { RefCell::new(Vec::new()) };
}

/// The counter `name` with `labels`, as `metrics::counter!` gives it, from this thread's kept
/// handles when it has one. On the decision path every request counted its decision, its
/// latency, its HTTP request and its provider calls through the registry: building a key,
/// allocating owned label values, hashing and comparing keys under the registry's lock, about
/// 2 % of a served decision's CPU. Finding a kept handle compares a few short strings.
pub fn counter(name: &'static str, labels: &[(&'static str, &str)]) -> metrics::Counter {
    COUNTERS.with(|kept| kept_handle(kept, name, labels, |labels| metrics::counter!(name, labels)))
}

/// The histogram `name` with `labels`, as `metrics::histogram!` gives it (see [`counter`]).
pub fn histogram(name: &'static str, labels: &[(&'static str, &str)]) -> metrics::Histogram {
    HISTOGRAMS.with(|kept| {
        kept_handle(kept, name, labels, |labels| {
            metrics::histogram!(name, labels)
        })
    })
}

fn kept_handle<H: Clone>(
    kept: &RefCell<Vec<Cached<H>>>,
    name: &'static str,
    labels: &[(&'static str, &str)],
    register: impl FnOnce(Vec<metrics::Label>) -> H,
) -> H {
    // Registering a handle re-enters no metric, but a re-entrant use must not panic.
    let Ok(mut kept) = kept.try_borrow_mut() else {
        return register(owned_labels(labels));
    };
    if let Some(entry) = kept.iter().find(|entry| entry.is_for(name, labels)) {
        return entry.handle.clone();
    }
    let handle = register(owned_labels(labels));
    if RECORDER_READY.load(Ordering::Acquire) && kept.len() < MAX_CACHED_PER_THREAD {
        kept.push(Cached {
            name,
            labels: labels
                .iter()
                .map(|(key, value)| (*key, Box::from(*value)))
                .collect(),
            handle: handle.clone(),
        });
    }
    handle
}

fn owned_labels(labels: &[(&'static str, &str)]) -> Vec<metrics::Label> {
    labels
        .iter()
        .map(|(key, value)| metrics::Label::new(*key, value.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_handle_is_only_for_its_own_name_and_labels() {
        let kept = Cached {
            name: "m",
            labels: vec![("a", Box::from("x")), ("b", Box::from("y"))],
            handle: (),
        };
        assert!(kept.is_for("m", &[("a", "x"), ("b", "y")]));
        for (name, labels) in [
            ("n", &[("a", "x"), ("b", "y")][..]),
            ("m", &[("a", "xb"), ("b", "")][..]),
            ("m", &[("a", "x"), ("b", "z")][..]),
            ("m", &[("a", "x"), ("c", "y")][..]),
            ("m", &[("a", "x")][..]),
            ("m", &[("b", "y"), ("a", "x")][..]),
        ] {
            assert!(!kept.is_for(name, labels), "{name} {labels:?}");
        }
    }

    #[test]
    fn a_kept_handle_is_the_one_for_its_labels() {
        recorder_installed();
        let first = counter("credence_test_total", &[("outcome", "approve")]);
        let again = counter("credence_test_total", &[("outcome", "approve")]);
        let other = counter("credence_test_total", &[("outcome", "decline")]);
        let kept = COUNTERS.with(|kept| kept.borrow().len());
        assert_eq!(kept, 2, "one handle per label set");
        // Without a recorder the handles are no-ops; incrementing them must still work.
        first.increment(1);
        again.increment(1);
        other.increment(1);
        let seconds = histogram("credence_test_seconds", &[("flow", "application")]);
        seconds.record(0.5);
        assert_eq!(HISTOGRAMS.with(|kept| kept.borrow().len()), 1);
    }
}
