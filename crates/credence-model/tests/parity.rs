//! Parity with the libraries that trained the models: every fixture's margins bit for bit, outputs within one ulp.
//!
//! The fixtures (model files, inputs, and the libraries' own outputs) are written by
//! `tools/models/train_fixtures.py`; these tests need no Python.

use credence_model::{Model, Objective};
use std::path::{Path, PathBuf};

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 19,
        "expected the parity fixtures, found {}",
        dirs.len()
    );
    dirs
}

fn load(dir: &Path) -> Model {
    for name in ["model.json", "model.txt"] {
        let path = dir.join(name);
        if path.exists() {
            return Model::load(&path.display().to_string(), &std::fs::read(&path).unwrap())
                .unwrap();
        }
    }
    panic!("no model in {}", dir.display());
}

#[path = "../support/rows_csv.rs"]
mod rows_csv;

/// Rows of a fixture CSV in the model's feature order (empty cell = NaN).
fn rows(dir: &Path, model: &Model) -> Vec<Vec<f64>> {
    rows_csv::rows_in_model_order(
        &std::fs::read_to_string(dir.join("input.csv")).unwrap(),
        model,
    )
}

fn expected(dir: &Path) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(dir.join("expected.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|line| {
            let (m, p) = line.split_once(',').unwrap();
            (m.parse().unwrap(), p.parse().unwrap())
        })
        .collect()
}

fn ulps_f32(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

fn ulps_f64(a: f64, b: f64) -> u64 {
    (a.to_bits() as i128 - b.to_bits() as i128).unsigned_abs() as u64
}

#[test]
fn margins_are_bit_exact_and_outputs_within_one_ulp() {
    for dir in fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let model = load(&dir);
        let inputs = rows(&dir, &model);
        let expected = expected(&dir);
        assert_eq!(inputs.len(), expected.len(), "{name}");
        let xgboost = model.metadata().format.starts_with("xgboost");
        // Deep (depth > 8) and categorical models are walked node by node; the rest take the
        // complete-tree path, so both paths are held to the libraries' bits. LightGBM's
        // `num_leaves` without `max_depth` grows some trees past depth 8.
        let walked = ["_deep", "_categorical"].iter().any(|s| name.ends_with(s))
            || ["lgb_missing", "lgb_numeric", "lgb_zero_as_missing"].contains(&name.as_str());
        assert_eq!(model.uses_complete_trees(), !walked, "{name}: scoring path");
        for (row, (features, (margin, output))) in inputs.iter().zip(&expected).enumerate() {
            let prediction = model.predict(features).unwrap();
            if xgboost {
                assert_eq!(
                    (prediction.margin as f32).to_bits(),
                    (*margin as f32).to_bits(),
                    "{name} row {row}: margin {} vs XGBoost {}",
                    prediction.margin,
                    margin
                );
                let ulps = ulps_f32(prediction.output as f32, *output as f32);
                assert!(
                    ulps <= 1,
                    "{name} row {row}: output {} vs {output} ({ulps} ulps)",
                    prediction.output
                );
            } else {
                assert_eq!(
                    prediction.margin.to_bits(),
                    margin.to_bits(),
                    "{name} row {row}: margin {} vs LightGBM {margin}",
                    prediction.margin
                );
                let ulps = ulps_f64(prediction.output, *output);
                assert!(
                    ulps <= 1,
                    "{name} row {row}: output {} vs {output} ({ulps} ulps)",
                    prediction.output
                );
            }
        }
    }
}

#[test]
fn early_stopping_scores_up_to_the_best_iteration_unless_asked_for_all_trees() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/xgb_early_stopping");
    let model = load(&dir);
    assert!(
        model.default_tree_limit() < model.metadata().trees,
        "{:?}",
        model.metadata()
    );
    let features = &rows(&dir, &model)[0];
    let best = model.predict(features).unwrap();
    let all = model.predict_with_trees(features, usize::MAX).unwrap();
    assert_ne!(best.margin, all.margin);
}

#[test]
fn metadata_names_features_objective_and_format() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let xgb = load(&dir.join("xgb_categorical"));
    assert_eq!(xgb.objective(), Objective::BinaryLogistic);
    assert_eq!(xgb.metadata().format, "xgboost 3.1.2");
    assert!(xgb
        .metadata()
        .categorical_features
        .contains(&"purpose".to_string()));
    assert_eq!(xgb.metadata().sha256.len(), 64);
    let lgb = load(&dir.join("lgb_categorical"));
    assert_eq!(lgb.metadata().format, "lightgbm v4");
    assert!(lgb
        .metadata()
        .categorical_features
        .contains(&"purpose".to_string()));
    assert!(!lgb
        .metadata()
        .categorical_features
        .contains(&"age_in_years".to_string()));
    assert_eq!(
        load(&dir.join("xgb_squarederror")).objective(),
        Objective::SquaredError
    );
    assert_eq!(
        load(&dir.join("xgb_absoluteerror")).objective(),
        Objective::AbsoluteError
    );
}

#[test]
fn corrupt_truncated_and_unsupported_files_are_clear_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let xgb = std::fs::read_to_string(dir.join("xgb_numeric/model.json")).unwrap();
    let lgb = std::fs::read_to_string(dir.join("lgb_numeric/model.txt")).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "truncated.json",
            xgb[..xgb.len() / 2].to_string(),
            "not a valid XGBoost JSON model",
        ),
        (
            "multiclass.json",
            xgb.replace("binary:logistic", "multi:softprob"),
            "multi-class models are not supported",
        ),
        (
            "unknown.json",
            xgb.replace("binary:logistic", "rank:pairwise"),
            "objective rank:pairwise is not supported",
        ),
        (
            "children.json",
            xgb.replacen("\"left_children\":[1,", "\"left_children\":[0,", 1),
            "outside the tree",
        ),
        (
            "truncated.txt",
            lgb[..lgb.len() / 2].to_string(),
            "truncated",
        ),
        (
            "multiclass.txt",
            lgb.replace("num_class=1", "num_class=3"),
            "multi-class models are not supported",
        ),
        (
            "unknown.txt",
            lgb.replace("objective=binary sigmoid:1", "objective=lambdarank"),
            "objective lambdarank is not supported",
        ),
        (
            "garbled.txt",
            lgb.replacen("leaf_value=", "leaf_value=x ", 1),
            "is not a number",
        ),
    ];
    for (file, text, needle) in cases {
        let error = Model::load(file, text.as_bytes())
            .expect_err(file)
            .to_string();
        assert!(
            error.contains(file) && error.contains(needle),
            "{file}: {error}"
        );
    }
}

fn expected_contribs(dir: &Path, model: &Model) -> Option<Vec<Vec<f64>>> {
    let text = std::fs::read_to_string(dir.join("contribs.csv")).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    // Columns in the model's feature order, then the bias.
    let mut order: Vec<usize> = model
        .metadata()
        .features
        .iter()
        .map(|f| header.iter().position(|h| h == f).unwrap())
        .collect();
    order.push(header.len() - 1);
    Some(
        lines
            .map(|line| {
                let cells: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
                order.iter().map(|&i| cells[i]).collect()
            })
            .collect(),
    )
}

#[test]
fn tree_shap_matches_the_libraries_and_sums_to_the_margin() {
    let mut checked = 0;
    for dir in fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let model = load(&dir);
        let Some(expected) = expected_contribs(&dir, &model) else {
            continue;
        };
        let inputs = rows(&dir, &model);
        for (row, (features, want)) in inputs.iter().zip(&expected).enumerate() {
            let got = model.contributions(features, model.default_tree_limit());
            for (k, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-6,
                    "{name} row {row} column {k}: {g} vs library {w}"
                );
            }
            let margin = model.predict(features).unwrap().margin;
            let sum: f64 = got.iter().sum();
            assert!(
                (sum - margin).abs() <= 1e-5 * margin.abs().max(1.0),
                "{name} row {row}: contributions sum to {sum}, margin {margin}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 12, "only {checked} fixtures have contributions");
}
