//! Decides an example application sample in a loop (for profiling with perf or callgrind).
//!
//! `decide_loop [ITERATIONS] [SAMPLE]`: SAMPLE names a file of `examples/consumer-loan/samples`
//! (default `application-approve.json`).
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
    let sample = std::env::args()
        .nth(2)
        .unwrap_or_else(|| "application-approve.json".into());
    let strategy = compile(&package_dir::read(root)).unwrap();
    let input: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("samples").join(&sample)).unwrap())
            .unwrap();
    let validated = strategy.validate_input("application", &input).unwrap();
    let options = EvalOptions::new(NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
    let start = std::time::Instant::now();
    let mut outcome = None;
    for _ in 0..iterations {
        let decision = strategy
            .decide("application", &validated, &options)
            .unwrap();
        outcome = Some(decision.outcome);
    }
    let elapsed = start.elapsed();
    println!(
        "{iterations} decisions of {sample} ({outcome:?}), {:.2} µs each",
        elapsed.as_secs_f64() * 1e6 / iterations as f64
    );
}
