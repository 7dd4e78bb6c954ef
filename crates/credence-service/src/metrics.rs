//! The service's metrics: names declared once here, described to the recorder at start, and
//! rendered in the Prometheus text format at `/metrics`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub use credence_app::metrics::*;

/// HTTP requests by matched `route`, `method` and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "credence_http_requests_total";
/// HTTP request seconds by matched `route`, including the log commit.
pub const HTTP_REQUEST_SECONDS: &str = "credence_http_request_seconds";
/// Error responses by `code`.
pub const ERRORS_TOTAL: &str = "credence_http_errors_total";
/// Connections closed on accept because `max_connections` were open.
pub const CONNECTIONS_REFUSED: &str = "credence_http_connections_refused_total";

/// Buckets for provider calls: bureaus answer in tens to hundreds of milliseconds, and
/// timeouts are set in seconds.
const PROVIDER_CALL_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.06, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder once per process and describes every metric.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        // Fine below a millisecond (decisions without third-party data), and between 50 and
        // 100 ms, where a decision that waited on a provider lands: "within the provider's
        // latency + 10 ms" has to be readable off the histogram.
        let buckets = [
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.06, 0.075,
            0.1, 0.25, 0.5, 1.0,
        ];
        // A full-name matcher takes precedence over the suffix one.
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(PROVIDER_CALL_SECONDS.into()),
                    &PROVIDER_CALL_BUCKETS,
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(credence_store::METRIC_BATCH_SIZE.into()),
                    &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0],
                )
            })
            .and_then(|b| {
                // Stages take microseconds: sum ÷ count is what is read, the buckets show spread.
                b.set_buckets_for_metric(
                    Matcher::Full(DECISION_STAGE_SECONDS.into()),
                    &[
                        0.000_002, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25,
                        0.000_5, 0.001, 0.002_5, 0.005, 0.01,
                    ],
                )
            })
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed; the handle then renders nothing.
        if metrics::set_global_recorder(recorder).is_ok() {
            credence_app::metrics::recorder_installed();
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        DECISIONS_TOTAL,
        "Decisions made, by strategy, flow, outcome and arm"
    );
    describe_counter!(
        credence_app::metrics::SHADOW_RESULTS_TOTAL,
        "Shadow results stored: a candidate's evaluation of a live decision"
    );
    describe_counter!(
        credence_app::metrics::SHADOW_DROPPED_TOTAL,
        "Shadow evaluations dropped (full queue or failing store): live records without a twin"
    );
    describe_histogram!(
        DECISION_STAGE_SECONDS,
        Unit::Seconds,
        "Time a sampled decision (one in 64) spent in each stage of serving it"
    );
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections closed on accept because max_connections were open"
    );
    describe_histogram!(
        DECISION_SECONDS,
        Unit::Seconds,
        "Time from request to decision, before the log commit"
    );
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "HTTP requests by route, method and status"
    );
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "HTTP request time by route, log commit included"
    );
    describe_counter!(ERRORS_TOTAL, "Error responses by error code");
    describe_counter!(
        PROVIDER_CALLS_TOTAL,
        "Calls to third-party data providers, by provider and status"
    );
    describe_counter!(
        PROVIDER_CACHE_HITS_TOTAL,
        "Third-party answers served from the cache, by source"
    );
    describe_histogram!(
        PROVIDER_CALL_SECONDS,
        Unit::Seconds,
        "Time of one provider call, retries included, by provider and status"
    );
    describe_counter!(
        ACCOUNTS_OPENED_TOTAL,
        "Accounts opened from approved decisions"
    );
    describe_counter!(ACCOUNT_EVENTS_TOTAL, "Account events applied");
    describe_counter!(
        ACCOUNT_EVENTS_DUPLICATE_TOTAL,
        "Account events ignored because their id was already applied"
    );
    describe_counter!(
        ACCOUNT_ACTIONS_TOTAL,
        "Changes in-loan flows made to accounts, by flow and action"
    );
    describe_counter!(
        IDEMPOTENT_REPLAYS_TOTAL,
        "Requests answered with a stored decision because their Idempotency-Key was seen before"
    );
    describe_counter!(
        credence_app::cases::REVIEW_DECISIONS_TOTAL,
        "Review cases decided, by queue and verdict"
    );
    describe_histogram!(
        credence_app::cases::REVIEW_MINUTES,
        "Minutes from a case's opening to its final decision"
    );
    describe_counter!(
        credence_app::cases::REVIEW_SLA_BREACHES_TOTAL,
        "Cases decided after their SLA deadline"
    );
    describe_counter!(
        credence_app::cases::REVIEW_OVERRIDES_TOTAL,
        "Reviews that departed from the engine's offer, by queue and referral reason (who reviewed is in the audit, not in labels)"
    );
    describe_counter!(
        credence_app::cases::REVIEW_ESCALATIONS_TOTAL,
        "Cases escalated to senior reviewers because their SLA passed"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES_TOTAL,
        "Webhook delivery attempts by outcome"
    );
    credence_store::describe_metrics();
}
