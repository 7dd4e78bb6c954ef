//! Parity with the libraries that trained the models: every fixture's margins bit for bit, outputs within one ulp.
//!
//! The fixtures (model files, inputs, and the libraries' own outputs) are written by
//! `tools/models/train_fixtures.py`; these tests need no Python.

use credence_model::{Model, Objective, Prediction, ScoringPath};
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
        dirs.len() >= 45,
        "expected the parity fixtures, found {}",
        dirs.len()
    );
    dirs
}

fn load(dir: &Path) -> Model {
    for name in ["model.json", "model.ubj", "model.txt"] {
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

/// The library's margins and predictions for every row: `margin`/`prediction`, or per class
/// `margin_<k>`/`prediction_<k>` (multi:softmax: one `prediction`, the class).
struct Expected {
    margins: Vec<Vec<f64>>,
    predictions: Vec<Vec<f64>>,
}

fn expected(dir: &Path) -> Expected {
    let text = std::fs::read_to_string(dir.join("expected.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let margin_columns = header.iter().filter(|h| h.starts_with("margin")).count();
    let (mut margins, mut predictions) = (Vec::new(), Vec::new());
    for line in lines {
        let cells: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        margins.push(cells[..margin_columns].to_vec());
        predictions.push(cells[margin_columns..].to_vec());
    }
    Expected {
        margins,
        predictions,
    }
}

fn ulps_f32(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

fn ulps_f64(a: f64, b: f64) -> u64 {
    (a.to_bits() as i128 - b.to_bits() as i128).unsigned_abs() as u64
}

/// Margins and predictions of one row as the library writes them: per class for a multi-class
/// model (and the class alone where `predict` returns it).
fn answer(prediction: &Prediction, predictions_are_classes: bool) -> (Vec<f64>, Vec<f64>) {
    match prediction {
        Prediction::Single { margin, output } => (vec![*margin], vec![*output]),
        Prediction::Classes {
            margins,
            predicted_class,
            ..
        } if predictions_are_classes => (margins.clone(), vec![*predicted_class as f64]),
        Prediction::Classes {
            margins,
            probabilities,
            ..
        } => (margins.clone(), probabilities.clone()),
    }
}

#[test]
fn margins_are_bit_exact_and_predictions_within_one_ulp_on_every_path() {
    for dir in fixtures() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let model = load(&dir);
        let inputs = rows(&dir, &model);
        let expected = expected(&dir);
        assert_eq!(inputs.len(), expected.margins.len(), "{name}");
        // The fastest path the model can take: complete trees up to depth 8, lanes past it
        // (LightGBM's `num_leaves` without `max_depth` grows trees past 8), node by node for
        // linear trees only.
        let fastest = if model
            .with_scoring_path(ScoringPath::CompleteTrees)
            .is_some()
        {
            ScoringPath::CompleteTrees
        } else if name == "lgb_linear" {
            ScoringPath::NodeByNode
        } else {
            ScoringPath::Lanes
        };
        assert_eq!(model.scoring_path(), fastest, "{name}: scoring path");
        let xgboost = model.metadata().format.starts_with("xgboost");
        let classes_predicted = matches!(model.objective(), Objective::MultiSoftmax { .. });
        let paths = [
            ScoringPath::CompleteTrees,
            ScoringPath::Lanes,
            ScoringPath::NodeByNode,
        ];
        let mut scored = 0;
        for path in paths {
            let Some(model) = model.with_scoring_path(path) else {
                continue;
            };
            scored += 1;
            for (row, features) in inputs.iter().enumerate() {
                let prediction = model.predict(features).unwrap();
                let (margins, predictions) = answer(&prediction, classes_predicted);
                let (want_margins, want_predictions) =
                    (&expected.margins[row], &expected.predictions[row]);
                assert_eq!(margins.len(), want_margins.len(), "{name}: margins");
                assert_eq!(
                    predictions.len(),
                    want_predictions.len(),
                    "{name}: predictions"
                );
                for (got, want) in margins.iter().zip(want_margins) {
                    let same = if xgboost {
                        (*got as f32).to_bits() == (*want as f32).to_bits()
                    } else {
                        got.to_bits() == want.to_bits()
                    };
                    assert!(
                        same,
                        "{name} {path:?} row {row}: margin {got} vs library {want}"
                    );
                }
                for (got, want) in predictions.iter().zip(want_predictions) {
                    let ulps = if xgboost {
                        u64::from(ulps_f32(*got as f32, *want as f32))
                    } else {
                        ulps_f64(*got, *want)
                    };
                    assert!(
                        ulps <= 1,
                        "{name} {path:?} row {row}: prediction {got} vs library {want} ({ulps} ulps)"
                    );
                }
            }
        }
        let minimum = if name == "lgb_linear" { 1 } else { 2 };
        assert!(scored >= minimum, "{name}: scored on {scored} paths");
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
    assert_ne!(best.margin(), all.margin());
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
            "needs num_class of at least 2",
        ),
        (
            "unknown.json",
            xgb.replace("binary:logistic", "rank:pairwise"),
            "objective rank:pairwise is a ranking objective",
        ),
        (
            "gblinear.json",
            xgb.replacen("\"name\":\"gbtree\"", "\"name\":\"gblinear\"", 1),
            "booster gblinear (a linear model) is not supported",
        ),
        (
            "future_key.json",
            xgb.replacen("\"learner\":{", "\"learner\":{\"future_key\":1,", 1),
            "unknown field `future_key`",
        ),
        (
            "future_parameter.json",
            xgb.replacen(
                "\"reg_loss_param\"",
                "\"future_param\":{},\"reg_loss_param\"",
                1,
            ),
            "objective parameter `future_param` is not one Credence reads",
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
            "num_class is 3",
        ),
        (
            "unknown.txt",
            lgb.replace("objective=binary sigmoid:1", "objective=lambdarank"),
            "objective lambdarank is a ranking objective",
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
    // Per class (`c<k>_` prefixes for a multi-class model): columns in the model's feature
    // order, then the bias.
    let classes = model.objective().classes();
    let prefix = |k: usize| {
        if classes == 1 {
            String::new()
        } else {
            format!("c{k}_")
        }
    };
    let mut order = Vec::new();
    for k in 0..classes {
        for name in model
            .metadata()
            .features
            .iter()
            .map(String::as_str)
            .chain(["bias"])
        {
            let column = format!("{}{name}", prefix(k));
            order.push(header.iter().position(|h| *h == column).unwrap());
        }
    }
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
        let width = model.metadata().features.len() + 1;
        let inputs = rows(&dir, &model);
        for (row, (features, want)) in inputs.iter().zip(&expected).enumerate() {
            let got = model.contributions(features, model.default_tree_limit());
            assert_eq!(got.len(), want.len(), "{name}");
            for (k, (g, w)) in got.iter().zip(want).enumerate() {
                assert!(
                    (g - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{name} row {row} column {k}: {g} vs library {w}"
                );
            }
            let margins = match model.predict(features).unwrap() {
                Prediction::Single { margin, .. } => vec![margin],
                Prediction::Classes { margins, .. } => margins,
            };
            for (block, margin) in got.chunks(width).zip(margins) {
                let sum: f64 = block.iter().sum();
                // XGBoost sums in f32, tree by tree: with a large bias and large opposing
                // contributions, its own contributions drift as far from the margin.
                let scale: f64 = block.iter().map(|c| c.abs()).sum::<f64>().max(1.0);
                assert!(
                    (sum - margin).abs() <= 1e-5 * scale,
                    "{name} row {row}: contributions sum to {sum}, margin {margin}"
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 44, "only {checked} fixtures have contributions");
}
