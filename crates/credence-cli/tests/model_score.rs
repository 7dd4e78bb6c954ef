//! End-to-end tests of `credence model score` on the parity fixtures: the libraries' numbers, in input order.

use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../credence-model/tests/fixtures"
);

fn model_file(dir: &Path) -> PathBuf {
    ["model.json", "model.txt"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
        .unwrap()
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("credence-score-{}-{name}", std::process::id()))
}

fn score(model: &Path, input: &Path, output: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_credence"))
        .args(["model", "score", "--model"])
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra)
        .output()
        .unwrap()
}

fn numbers(path: &Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(2).map(|c| c.parse().unwrap()).collect())
        .collect()
}

#[test]
fn scoring_reproduces_every_fixture() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let output = temp(&format!("{name}.csv"));
        let result = score(&model_file(&dir), &dir.join("input.csv"), &output, &[]);
        assert!(
            result.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&result.stderr)
        );
        // A probability column only where the output is one.
        let header = std::fs::read_to_string(&output).unwrap();
        let header = header.lines().next().unwrap().to_string();
        let probabilistic =
            !["xgb_logitraw", "xgb_squarederror", "xgb_absoluteerror"].contains(&name.as_str());
        let expected_header = if probabilistic {
            "margin,prediction,probability"
        } else {
            "margin,prediction"
        };
        assert_eq!(header, expected_header, "{name}");
        let (got, want) = (numbers(&output), numbers(&dir.join("expected.csv")));
        assert_eq!(got.len(), want.len(), "{name}");
        let xgboost = name.starts_with("xgb");
        for (row, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g[0].to_bits(),
                w[0].to_bits(),
                "{name} row {row}: margin {} vs {}",
                g[0],
                w[0]
            );
            let ulps = if xgboost {
                ((g[1] as f32).to_bits() as i64 - (w[1] as f32).to_bits() as i64).unsigned_abs()
            } else {
                (g[1].to_bits() as i128 - w[1].to_bits() as i128).unsigned_abs() as u64
            };
            assert!(ulps <= 1, "{name} row {row}: output {} vs {}", g[1], w[1]);
        }
        let _ = std::fs::remove_file(output);
    }
}

#[test]
fn explain_names_the_features_pushing_towards_bad() {
    let dir = Path::new(FIXTURES).join("lgb_missing");
    let output = temp("explain.csv");
    let result = score(
        &model_file(&dir),
        &dir.join("input.csv"),
        &output,
        &["--explain", "3"],
    );
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let text = std::fs::read_to_string(&output).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "margin,prediction,probability,reason_1,reason_2,reason_3"
    );
    // reason_1 is the feature with the largest positive contribution in the library's own SHAP values.
    let contribs = std::fs::read_to_string(dir.join("contribs.csv")).unwrap();
    let mut contrib_lines = contribs.lines();
    let header: Vec<&str> = contrib_lines.next().unwrap().split(',').collect();
    for (line, contrib) in lines.zip(contrib_lines).take(50) {
        let values: Vec<f64> = contrib.split(',').map(|c| c.parse().unwrap()).collect();
        let (best, value) = values[..values.len() - 1]
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap();
        let reason_1 = line.split(',').nth(3).unwrap();
        if *value > 1e-9 {
            assert_eq!(reason_1, header[best], "{line}");
        }
    }
    let _ = std::fs::remove_file(output);
}

#[test]
fn bad_inputs_name_the_problem() {
    let dir = Path::new(FIXTURES).join("xgb_numeric");
    let input = temp("bad-input.csv");
    let output = temp("bad-output.csv");
    std::fs::write(&input, "Seniority,Time\n1,2\n").unwrap();
    let result = score(&model_file(&dir), &input, &output, &[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("needs column(s) Age"), "{stderr}");

    let text = std::fs::read_to_string(dir.join("input.csv"))
        .unwrap()
        .replacen("\n1.0,60.0,", "\nlots,60.0,", 1);
    std::fs::write(&input, text).unwrap();
    let result = score(&model_file(&dir), &input, &output, &[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 2, column Seniority: `lots` is not a number"),
        "{stderr}"
    );

    std::fs::write(&input, "{\"learner\": 1").unwrap();
    let result = score(&input, &dir.join("input.csv"), &output, &[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not a valid XGBoost JSON model"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(input);
    let _ = std::fs::remove_file(output);
}
