//! The example's decisions and back-test summaries against recorded outputs, byte for byte: a restructuring must not change a single one.
//!
//! The files in `tests/golden/` were written by the build before the upper floors were
//! restructured (issue 23). After a deliberate change of behaviour, record them again with
//! `CREDENCE_RECORD=1 cargo test -p credence-cli --test recorded_outputs` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `actual` with the recorded file, or records it when `CREDENCE_RECORD` is set.
fn check(name: &str, actual: &[u8]) {
    let path = golden(name);
    if std::env::var_os("CREDENCE_RECORD").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let recorded = std::fs::read(&path).unwrap();
    assert!(
        recorded == actual,
        "{name} differs from its recorded output:\n--- recorded\n{}\n--- now\n{}",
        String::from_utf8_lossy(&recorded),
        String::from_utf8_lossy(actual)
    );
}

fn credence(args: &[&str]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_credence"))
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn the_example_decides_every_sample_as_recorded() {
    for sample in [
        "application-approve",
        "application-decline",
        "application-refer",
        "drawdown-approve",
        "drawdown-decline",
    ] {
        let flow = sample.split('-').next().unwrap();
        let path = format!("examples/consumer-loan/samples/{sample}.json");
        let output = credence(&[
            "decide",
            "--strategy",
            "examples/consumer-loan",
            "--flow",
            flow,
            "--as-of",
            "2026-11-29",
            &path,
        ]);
        check(&format!("decide_{sample}.json"), &output.stdout);
    }
}

#[test]
fn back_tests_of_the_example_summarise_as_recorded() {
    let dir = std::env::temp_dir().join(format!("credence-recorded-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (data, by) in [("german_credit", Some("purpose")), ("lending_club", None)] {
        let summary = dir.join(format!("{data}.json"));
        let input = format!("data/backtest/{data}_applications.csv");
        let mut args = vec![
            "backtest",
            "--strategy",
            "examples/consumer-loan",
            "--flow",
            "application",
            "--input",
            &input,
            "--as-of",
            "2026-11-29",
            "--threads",
            "2",
            "--summary-json",
            summary.to_str().unwrap(),
        ];
        if let Some(by) = by {
            args.extend(["--by", by]);
        }
        credence(&args);
        check(
            &format!("backtest_{data}_summary.json"),
            &std::fs::read(&summary).unwrap(),
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
