//! Decides the example application sample in a loop (for profiling with perf or callgrind).
use chrono::NaiveDate;
use credence_engine::{compile, EvalOptions, PackageSource};
use std::path::Path;

#[path = "../support/package_dir.rs"]
mod package_dir;

fn main() {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/consumer-loan"
    ));
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let strategy = compile(&package_dir::read(root)).unwrap();
    let input: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("samples/application-approve.json")).unwrap(),
    )
    .unwrap();
    let validated = strategy.validate_input("application", &input).unwrap();
    let options = EvalOptions::new(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
    let start = std::time::Instant::now();
    let mut approvals = 0;
    for _ in 0..iterations {
        let decision = strategy
            .decide("application", &validated, &options)
            .unwrap();
        approvals += usize::from(decision.outcome == credence_engine::Outcome::Approve);
    }
    let elapsed = start.elapsed();
    println!(
        "{iterations} decisions, {approvals} approvals, {:.2} µs each",
        elapsed.as_secs_f64() * 1e6 / iterations as f64
    );
}
