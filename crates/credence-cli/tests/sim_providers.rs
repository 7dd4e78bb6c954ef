//! The provider simulator over real HTTP: stable answers per subject, call counts, and every
//! injected failure (500, garbage, hang, slow) switched on and off at run time.

use serde_json::{json, Value};
use std::time::Duration;

#[path = "support/sim.rs"]
mod sim;

use sim::{set_failure, sim_calls, start_sim as start, Sim};

/// (status, body text) of a GET with a client timeout.
fn get(url: &str, timeout: Duration) -> Result<(u16, String), String> {
    match ureq::get(url).timeout(timeout).call() {
        Ok(r) => Ok((r.status(), r.into_string().unwrap_or_default())),
        Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string().unwrap_or_default())),
        Err(e) => Err(e.to_string()),
    }
}

fn mode(sim: &Sim, body: Value) {
    set_failure(
        sim,
        body["failure"].as_str().unwrap(),
        body["rate"].as_f64().unwrap(),
    );
}

#[test]
fn answers_are_stable_per_subject_and_counted() {
    let sim = start(&[]);
    let second = Duration::from_secs(5);
    let (status, first) = get(&format!("{}/bureau/v1/reports/C-100001", sim.url), second).unwrap();
    assert_eq!(status, 200);
    let (_, again) = get(&format!("{}/bureau/v1/reports/C-100001", sim.url), second).unwrap();
    assert_eq!(first, again, "the same subject gets the same report");
    let report: Value = serde_json::from_str(&first).unwrap();
    assert!(report["report"]["inquiries_12m"].is_u64());
    assert!(report["report"]["revolving"]["limit"].is_number());

    let (_, income) = get(
        &format!("{}/income/v1/verifications/C-100001", sim.url),
        second,
    )
    .unwrap();
    let income: Value = serde_json::from_str(&income).unwrap();
    assert!(income["income"]["verified"].is_boolean());
    let (_, debts) = get(
        &format!("{}/liabilities/v1/summaries/C-100001", sim.url),
        second,
    )
    .unwrap();
    let debts: Value = serde_json::from_str(&debts).unwrap();
    assert!(debts["liabilities"]["revolving_minimum_payment"].is_number());

    assert_eq!(
        sim_calls(&sim),
        json!({"bureau": 2, "income": 1, "liabilities": 1})
    );
}

#[test]
fn injected_failures_are_what_they_say() {
    let sim = start(&["--latency-ms", "5"]);
    let url = format!("{}/bureau/v1/reports/C-9", sim.url);
    let short = Duration::from_millis(400);

    mode(
        &sim,
        json!({"failure": "error", "rate": 1.0, "latency_ms": 0}),
    );
    assert_eq!(get(&url, short).unwrap().0, 500);

    mode(
        &sim,
        json!({"failure": "garbage", "rate": 1.0, "latency_ms": 0}),
    );
    let (status, body) = get(&url, short).unwrap();
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");

    mode(
        &sim,
        json!({"failure": "timeout", "rate": 1.0, "latency_ms": 0}),
    );
    assert!(
        get(&url, short).is_err(),
        "a hang outlasts the client's timeout"
    );

    mode(
        &sim,
        json!({"failure": "none", "rate": 0.0, "latency_ms": 0}),
    );
    assert_eq!(get(&url, short).unwrap().0, 200);

    // A bad mode is refused with what would do.
    let refused = ureq::post(&format!("{}/_sim/mode", sim.url))
        .send_json(json!({"failure": "explode", "rate": 2, "latency_ms": 0}));
    assert!(matches!(refused, Err(ureq::Error::Status(422, _))));
}

#[test]
fn a_failure_rate_fails_about_that_share_of_calls_the_same_way_each_run() {
    let outcomes = |seed: &str| {
        let sim = start(&["--failure-rate", "0.5", "--seed", seed]);
        // Only errors and garbage here: a hang would only slow the test down.
        mode(
            &sim,
            json!({"failure": "error", "rate": 0.5, "latency_ms": 0}),
        );
        (0..40)
            .map(|i| {
                get(
                    &format!("{}/income/v1/verifications/S-{i}", sim.url),
                    Duration::from_secs(5),
                )
                .unwrap()
                .0
            })
            .collect::<Vec<u16>>()
    };
    let first = outcomes("7");
    let failed = first.iter().filter(|s| **s == 500).count();
    assert!((8..=32).contains(&failed), "{failed} of 40 failed");
    assert_eq!(first, outcomes("7"), "the same seed fails the same calls");
}
