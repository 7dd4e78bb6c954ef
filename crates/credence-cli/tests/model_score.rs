//! End-to-end tests of `credence model score` on the parity fixtures: the libraries' numbers, in input order.

use std::path::{Path, PathBuf};
use std::process::Command;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../credence-model/tests/fixtures"
);

fn model_file(dir: &Path) -> PathBuf {
    ["model.json", "model.ubj", "model.txt"]
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

/// A CSV's header and rows of numbers.
fn table(path: &Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_string)
        .collect();
    let rows = lines
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect();
    (header, rows)
}

/// Fixtures whose prediction is not a probability: log-odds and regressions.
const NOT_PROBABILITIES: &[&str] = &[
    "xgb_logitraw",
    "xgb_hinge",
    "xgb_squarederror",
    "xgb_absoluteerror",
    "xgb_poisson",
    "xgb_tweedie",
    "xgb_gamma",
    "xgb_pseudohuber",
    "xgb_squaredlogerror",
    "xgb_quantile",
    "lgb_reg_sqrt",
    "lgb_l1",
    "lgb_huber",
    "lgb_fair",
    "lgb_quantile",
    "lgb_mape",
    "lgb_poisson",
    "lgb_gamma",
    "lgb_tweedie",
    "lgb_xentlambda",
];

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
        let (header, got) = table(&output);
        let (want_header, want) = table(&dir.join("expected.csv"));
        let classes = want_header
            .iter()
            .filter(|h| h.starts_with("margin"))
            .count();
        // The columns: margin and prediction, a probability only where the output is one; per
        // class for a multi-class model, with the predicted class.
        let expected_header: Vec<String> = if classes > 1 {
            (0..classes)
                .map(|k| format!("margin_{k}"))
                .chain((0..classes).map(|k| format!("probability_{k}")))
                .chain(["predicted_class".to_string()])
                .collect()
        } else if NOT_PROBABILITIES.contains(&name.as_str()) {
            vec!["margin".into(), "prediction".into()]
        } else {
            vec!["margin".into(), "prediction".into(), "probability".into()]
        };
        assert_eq!(header, expected_header, "{name}");
        assert_eq!(got.len(), want.len(), "{name}");
        // Where each library column is in the output: margins first, then the predictions
        // (per-class probabilities, or multi:softmax's class, the last column).
        let predictions_at: Vec<usize> = if classes > 1 && want_header.len() == classes + 1 {
            vec![2 * classes]
        } else {
            (classes..2 * classes).collect()
        };
        let xgboost = name.starts_with("xgb");
        for (row, (g, w)) in got.iter().zip(&want).enumerate() {
            for k in 0..classes {
                assert_eq!(
                    g[k].to_bits(),
                    w[k].to_bits(),
                    "{name} row {row}: margin {} vs {}",
                    g[k],
                    w[k]
                );
            }
            for (&at, w) in predictions_at.iter().zip(&w[classes..]) {
                let ulps = if xgboost {
                    ((g[at] as f32).to_bits() as i64 - (*w as f32).to_bits() as i64).unsigned_abs()
                } else {
                    (g[at].to_bits() as i128 - w.to_bits() as i128).unsigned_abs() as u64
                };
                assert!(ulps <= 1, "{name} row {row}: prediction {} vs {w}", g[at]);
            }
        }
        let _ = std::fs::remove_file(output);
    }
}

#[test]
fn explain_is_refused_where_reasons_are_not_defined() {
    for (fixture, problem) in [
        ("lgb_multiclass", "4 classes"),
        ("lgb_linear", "linear trees"),
    ] {
        let dir = Path::new(FIXTURES).join(fixture);
        let output = temp(&format!("{fixture}-explain.csv"));
        std::fs::write(&output, "kept\n").unwrap();
        let result = score(
            &model_file(&dir),
            &dir.join("input.csv"),
            &output,
            &["--explain", "2"],
        );
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(
            !result.status.success() && stderr.contains(problem),
            "{fixture}: {stderr}"
        );
        // Refused before anything is written: the file of that name is left as it was.
        assert_eq!(
            std::fs::read_to_string(&output).unwrap(),
            "kept\n",
            "{fixture}"
        );
        let _ = std::fs::remove_file(&output);
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

/// A model that would be scored differently from the library is refused: exit 2, naming the
/// file and the field.
#[test]
fn models_that_cannot_be_scored_right_exit_2_naming_the_file_and_field() {
    let xgb = std::fs::read_to_string(Path::new(FIXTURES).join("xgb_numeric/model.json")).unwrap();
    let lgb = std::fs::read_to_string(Path::new(FIXTURES).join("lgb_numeric/model.txt")).unwrap();
    let cases = [
        (
            "future.json",
            xgb.replacen("\"learner\":{", "\"learner\":{\"future_key\":1,", 1),
            "future_key",
        ),
        (
            "ranking.json",
            xgb.replace("binary:logistic", "rank:ndcg"),
            "rank:ndcg",
        ),
        (
            "future.txt",
            lgb.replacen("objective=", "future_key=1\nobjective=", 1),
            "header `future_key`",
        ),
        (
            "unread.txt",
            lgb.replacen(
                "objective=binary sigmoid:1",
                "objective=binary sigmoid:1 scale:2",
                1,
            ),
            "parameter `scale:2`",
        ),
    ];
    let input = Path::new(FIXTURES).join("xgb_numeric/input.csv");
    for (file, text, field) in cases {
        let model = temp(file);
        std::fs::write(&model, text).unwrap();
        let result = score(&model, &input, &temp("refused.csv"), &[]);
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(result.status.code(), Some(2), "{file}: {stderr}");
        assert!(
            stderr.contains(file) && stderr.contains(field),
            "{file}: {stderr}"
        );
        let _ = std::fs::remove_file(model);
    }
}
