//! Decides the example application sample in a loop (for profiling with perf or callgrind).
use chrono::NaiveDate;
use credence_engine::{compile, EvalOptions, PackageSource};
use std::path::Path;

fn read(root: &Path, dir: &Path, source: &mut PackageSource) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            read(root, &path, source);
        } else {
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            source.insert(relative, std::fs::read(&path).unwrap());
        }
    }
}

fn main() {
    let root = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/consumer-loan"
    ));
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut source = PackageSource::new();
    read(root, root, &mut source);
    let strategy = compile(&source).unwrap();
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
