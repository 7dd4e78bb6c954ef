//! Third-party data providers against the provider simulator over real HTTP: success, the
//! cache, single flight, timeouts and the waterfall, the circuit breaker opening and closing,
//! and garbage.

use credence_engine::data::{DataField, DataFieldKind, DataSource, FailurePolicy, Provider};
use credence_outbound::providers::{BreakerState, Providers};
use serde_json::json;
use std::time::Duration;

#[path = "support/sim.rs"]
mod sim;

use sim::{set_failure, sim_calls as calls, start_sim, Sim};

fn mode(sim: &Sim, failure: &str) {
    set_failure(sim, failure, 1.0);
}

fn provider(name: &str, url: String, timeout_ms: u64) -> Provider {
    Provider {
        name: name.into(),
        url,
        headers: vec![(
            "Authorization".into(),
            "Bearer {secret:BUREAU_TOKEN}".into(),
        )],
        timeout_ms,
        retries: 0,
        cost: Some(rust_decimal::Decimal::new(45, 2)),
    }
}

fn bureau(
    providers: Vec<Provider>,
    cache_ttl_seconds: u64,
    breaker_open_seconds: u64,
) -> DataSource {
    DataSource {
        name: "bureau".into(),
        subject_field: "customer_id".into(),
        consent_field: None,
        providers,
        fields: vec![
            DataField {
                name: "inquiries_12m".into(),
                pointer: "/report/inquiries_12m".into(),
                kind: DataFieldKind::Integer,
                default: None,
            },
            DataField {
                name: "delinquencies_2y".into(),
                pointer: "/report/delinquency/last_2y".into(),
                kind: DataFieldKind::Integer,
                default: Some(json!(0)),
            },
            DataField {
                name: "revolving_limit".into(),
                pointer: "/report/revolving/limit".into(),
                kind: DataFieldKind::Number,
                default: None,
            },
        ],
        cache_ttl_seconds,
        breaker_failures: 3,
        breaker_open_seconds,
        on_failure: FailurePolicy::Continue,
    }
}

/// The bureau source with one provider, the simulator's bureau endpoint.
fn simulated_bureau(
    sim: &Sim,
    timeout_ms: u64,
    cache_ttl_seconds: u64,
    breaker_open_seconds: u64,
) -> DataSource {
    bureau(
        vec![provider(
            "bureau_a",
            format!("{}/bureau/v1/reports/{{subject}}", sim.url),
            timeout_ms,
        )],
        cache_ttl_seconds,
        breaker_open_seconds,
    )
}

fn providers() -> Providers {
    Providers::new(
        [("BUREAU_TOKEN".to_string(), "t0ken".to_string())]
            .into_iter()
            .collect(),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn success_then_a_cache_hit_with_no_second_call() {
    let sim = start_sim(&[]);
    let providers = providers();
    let source = simulated_bureau(&sim, 1000, 60, 30);
    let (first, second) = runtime().block_on(async {
        (
            providers.fetch(&source, "C-100001").await,
            providers.fetch(&source, "C-100001").await,
        )
    });
    assert!(first.ok && !first.cache_hit, "{first:?}");
    assert_eq!(first.calls.len(), 1);
    assert_eq!(first.calls[0].status, "ok");
    assert!(first.values["inquiries_12m"].is_u64());
    assert!(
        first.values["revolving_limit"].is_string(),
        "money is an exact decimal string"
    );
    assert!(second.ok && second.cache_hit && second.calls.is_empty());
    assert_eq!(second.values, first.values);
    assert_eq!(
        calls(&sim),
        json!({"bureau": 1}),
        "no second paid pull within the TTL"
    );
}

/// Concurrent requests for the same subject share the call in flight: one paid pull.
#[test]
fn concurrent_requests_for_one_subject_make_one_call() {
    let sim = start_sim(&["--latency-ms", "200"]);
    let providers = providers();
    let source = simulated_bureau(&sim, 2000, 60, 30);
    let outcomes = runtime().block_on(async {
        let fetches = (0..5).map(|_| providers.fetch(&source, "C-100002"));
        futures_util::future::join_all(fetches).await
    });
    assert!(outcomes.iter().all(|o| o.ok), "{outcomes:?}");
    assert_eq!(
        outcomes.iter().filter(|o| !o.calls.is_empty()).count(),
        1,
        "one leader made the call: {outcomes:?}"
    );
    assert!(outcomes.iter().all(|o| o.values == outcomes[0].values));
    assert_eq!(calls(&sim), json!({"bureau": 1}), "one paid pull");
}

#[test]
fn a_timeout_falls_through_the_waterfall_to_the_second_provider() {
    let slow = start_sim(&[]);
    let backup = start_sim(&[]);
    mode(&slow, "timeout");
    let providers = providers();
    let source = bureau(
        vec![
            provider(
                "bureau_a",
                format!("{}/bureau/v1/reports/{{subject}}", slow.url),
                150,
            ),
            provider(
                "bureau_b",
                format!("{}/bureau/v1/reports/{{subject}}", backup.url),
                1000,
            ),
        ],
        0,
        30,
    );
    let outcome = runtime().block_on(providers.fetch(&source, "C-7"));
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.provider.as_deref(), Some("bureau_b"));
    let statuses: Vec<&str> = outcome.calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec!["timeout", "ok"]);
    assert!(outcome.calls[0].latency_ms >= 150);
}

#[test]
fn garbage_is_a_recorded_provider_failure_not_a_crash() {
    let sim = start_sim(&[]);
    mode(&sim, "garbage");
    let providers = providers();
    let source = simulated_bureau(&sim, 1000, 0, 30);
    let outcome = runtime().block_on(providers.fetch(&source, "C-8"));
    assert!(!outcome.ok);
    assert_eq!(outcome.calls[0].status, "invalid_response");
    assert!(outcome.reason.unwrap().contains("not JSON"));
}

#[test]
fn errors_open_the_circuit_and_it_closes_after_a_good_trial() {
    let sim = start_sim(&[]);
    mode(&sim, "error");
    let providers = providers();
    let source = simulated_bureau(&sim, 1000, 0, 1);
    let rt = runtime();
    for subject in ["A", "B", "C"] {
        let outcome = rt.block_on(providers.fetch(&source, subject));
        assert_eq!(outcome.calls[0].status, "http_error");
        assert_eq!(outcome.calls[0].http_status, Some(500));
    }
    assert_eq!(providers.breaker_state("bureau_a"), BreakerState::Open);
    // While open, nothing reaches the provider.
    let refused = rt.block_on(providers.fetch(&source, "D"));
    assert_eq!(refused.calls[0].status, "circuit_open");
    assert_eq!(calls(&sim), json!({"bureau": 3}));

    // After the open period one trial goes through; it succeeds and the circuit closes.
    mode(&sim, "none");
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(providers.breaker_state("bureau_a"), BreakerState::HalfOpen);
    let trial = rt.block_on(providers.fetch(&source, "E"));
    assert!(trial.ok, "{trial:?}");
    assert_eq!(providers.breaker_state("bureau_a"), BreakerState::Closed);
}

/// A refusal of the request itself (401, 404) is not retried — each try may be a paid pull —
/// while overload (429) and server errors are, up to the provider's `retries`.
#[test]
fn only_overload_and_server_errors_are_retried() {
    // (the simulator's answer, its status, calls made with retries: 2)
    let cases = [
        ("not_found", 404, 1),
        ("unauthorized", 401, 1),
        ("throttled", 429, 3),
        ("error", 500, 3),
    ];
    for (failure, status, expected_calls) in cases {
        let sim = start_sim(&[]);
        mode(&sim, failure);
        let providers = providers();
        let mut source = simulated_bureau(&sim, 1000, 0, 30);
        source.providers[0].retries = 2;
        let outcome = runtime().block_on(providers.fetch(&source, "C-R"));
        assert!(!outcome.ok, "{failure}");
        assert_eq!(outcome.calls[0].http_status, Some(status), "{failure}");
        assert_eq!(outcome.calls[0].attempts, expected_calls, "{failure}");
        assert_eq!(calls(&sim), json!({"bureau": expected_calls}), "{failure}");
    }
}
