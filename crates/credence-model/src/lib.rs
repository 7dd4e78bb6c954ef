//! Credence model inference: XGBoost, LightGBM and logistic-regression models loaded from bytes and scored natively; pure, no I/O.
//!
//! A strategy's `model` step names a model file in its package; the engine hands the file's
//! bytes here and gets back a [`Model`] whose feature list the step's mapping is checked against
//! at compile time. Tree ensembles are scored by hand-written evaluators over flat node arrays
//! (see `xgboost.rs` and `lightgbm.rs` for why and how), reproducing the libraries' outputs bit
//! for bit; parity fixtures produced by the libraries themselves hold them to it.
#![warn(missing_docs)]

mod binned;
mod complete;
mod lanes;
mod lightgbm;
mod rows;
mod shap;
mod ubjson;
mod xgboost;

pub use rows::RowOutput;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Errors of loading or scoring a model; each names the file and the problem.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("model {file}: {problem}")]
    /// The file is not a model Credence reads, or is damaged.
    Invalid {
        /// The file, as the package names it.
        file: String,
        /// What is wrong, and how to fix it.
        problem: String,
    },
    #[error("model {model}: feature {feature} {problem}")]
    /// A model step maps a feature the model does not have, or leaves one out.
    Feature {
        /// The model's name.
        model: String,
        /// The feature.
        feature: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl ModelError {
    /// The stable machine code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            ModelError::Invalid { .. } => "invalid_model",
            ModelError::Feature { .. } => "model_feature",
        }
    }
}

/// What every loaded model carries into decision traces.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelMetadata {
    /// The model's name: its file name without folders and extension (or the name a logistic regression declares).
    pub name: String,
    /// Its version: the first 12 hex digits of its SHA-256 (or the version a logistic regression declares).
    pub version: String,
    /// SHA-256 of the file's bytes, in hex.
    pub sha256: String,
    /// The format and the library version that wrote it, e.g. `xgboost 3.1.2`.
    pub format: String,
    /// The objective as the library names it.
    pub objective: String,
    /// The features in the order a row gives them.
    pub features: Vec<String>,
    /// Features the model splits on as categories: give them as integer category codes.
    pub categorical_features: Vec<String>,
    /// How many trees the model has (0 for a logistic regression).
    pub trees: usize,
}

/// A model's answer for one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Prediction {
    /// A binary classifier or a regression: one raw score and one output.
    Single {
        /// The raw score before the link function (log-odds for binary models), as the
        /// library's `predict(output_margin=True)` / `predict(raw_score=True)` returns it.
        margin: f64,
        /// What the library's own `predict()` returns: a probability for logistic
        /// objectives, the prediction on the target's scale for regressions (`exp` of the
        /// margin for Poisson, Gamma and Tweedie models), 0 or 1 for `binary:hinge`.
        output: f64,
    },
    /// A multi-class model: one raw score and one probability per class.
    Classes {
        /// One raw score per class.
        margins: Vec<f64>,
        /// Softmax of the margins (`multi:softprob`, `multi:softmax`, `multiclass`), or each
        /// class's own sigmoid (`multiclassova`, which need not sum to one).
        probabilities: Vec<f64>,
        /// The most probable class (the first of equals), what `multi:softmax` predicts.
        predicted_class: usize,
    },
}

impl Prediction {
    /// The raw score of a single-output model.
    pub fn margin(&self) -> Option<f64> {
        match self {
            Prediction::Single { margin, .. } => Some(*margin),
            Prediction::Classes { .. } => None,
        }
    }

    /// What the library's `predict()` returns for a single-output model.
    pub fn output(&self) -> Option<f64> {
        match self {
            Prediction::Single { output, .. } => Some(*output),
            Prediction::Classes { .. } => None,
        }
    }
}

/// How a tree ensemble is scored; every path gives the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScoringPath {
    /// Trees padded to complete binary trees over binned inputs (depth at most 8).
    CompleteTrees,
    /// Trees of any depth walked side by side over binned inputs.
    Lanes,
    /// Each tree walked node by node on the raw inputs (linear trees, and models too large
    /// for binning).
    NodeByNode,
}

/// The loss of a LightGBM regression; all have the identity link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegressionLoss {
    /// `regression`: squared error.
    L2,
    /// `regression_l1`: absolute error.
    L1,
    /// `huber`.
    Huber,
    /// `fair`.
    Fair,
    /// `quantile`.
    Quantile,
    /// `mape`: mean absolute percentage error.
    Mape,
}

impl RegressionLoss {
    fn name(self) -> &'static str {
        match self {
            RegressionLoss::L2 => "regression",
            RegressionLoss::L1 => "regression_l1",
            RegressionLoss::Huber => "huber",
            RegressionLoss::Fair => "fair",
            RegressionLoss::Quantile => "quantile",
            RegressionLoss::Mape => "mape",
        }
    }
}

/// The learning objective, which fixes how a margin becomes an output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// `binary:logistic`: the prediction is the sigmoid of the margin.
    BinaryLogistic,
    /// `reg:logistic`: as `binary:logistic`, for targets in [0, 1].
    RegLogistic,
    /// `binary:logitraw`: the prediction is the margin (log-odds).
    BinaryLogitRaw,
    /// `binary:hinge`: predicts 1 when the margin is positive, else 0.
    BinaryHinge,
    /// `reg:squarederror`: identity link.
    SquaredError,
    /// `reg:squaredlogerror`: identity link (the loss is on log1p of the target).
    SquaredLogError,
    /// `reg:pseudohubererror`: identity link.
    PseudoHuberError,
    /// `reg:absoluteerror`: median regression, identity link (robust to heavy-tailed targets
    /// such as income).
    AbsoluteError,
    /// `reg:quantileerror` with one quantile.
    QuantileError,
    /// `count:poisson`, `reg:gamma`, `reg:tweedie`: log link, the prediction is `exp(margin)`.
    CountPoisson,
    /// `reg:gamma`: log link.
    Gamma,
    /// `reg:tweedie`: log link.
    Tweedie,
    /// `multi:softprob`: one probability per class.
    MultiSoftprob {
        /// How many classes.
        classes: usize,
    },
    /// `multi:softmax`: predicts the most probable class.
    MultiSoftmax {
        /// How many classes.
        classes: usize,
    },
    /// LightGBM `binary`: the prediction is `1 / (1 + exp(-sigmoid * margin))`.
    LightGbmBinary {
        /// The `sigmoid` parameter (1 by default).
        sigmoid: f64,
    },
    /// A LightGBM regression with the identity link; `sqrt` (`reg_sqrt`) squares the margin
    /// back, keeping its sign.
    LightGbmRegression {
        /// The loss trained with.
        loss: RegressionLoss,
        /// Whether `reg_sqrt` was set (the model was trained on the square root of the target).
        sqrt: bool,
    },
    /// LightGBM `poisson`: log link.
    LightGbmPoisson,
    /// LightGBM `gamma`: log link.
    LightGbmGamma,
    /// LightGBM `tweedie`: log link.
    LightGbmTweedie,
    /// `cross_entropy` (`xentropy`): labels in [0, 1], the prediction is the sigmoid.
    LightGbmCrossEntropy,
    /// `cross_entropy_lambda` (`xentlambda`): the prediction is `log(1 + exp(margin))`.
    LightGbmCrossEntropyLambda,
    /// LightGBM `multiclass`: softmax over the classes.
    LightGbmMulticlass {
        /// How many classes.
        classes: usize,
    },
    /// LightGBM `multiclassova`: one sigmoid per class (one-vs-all).
    LightGbmMulticlassOva {
        /// How many classes.
        classes: usize,
        /// The `sigmoid` parameter.
        sigmoid: f64,
    },
    /// Credence's own logistic regression (`credence.logistic_regression.v1`).
    LogisticRegression,
}

impl Objective {
    /// The objective as the library names it (with `sqrt` for a LightGBM `reg_sqrt` model).
    pub fn name(self) -> String {
        match self {
            Objective::BinaryLogistic => "binary:logistic".into(),
            Objective::RegLogistic => "reg:logistic".into(),
            Objective::BinaryLogitRaw => "binary:logitraw".into(),
            Objective::BinaryHinge => "binary:hinge".into(),
            Objective::SquaredError => "reg:squarederror".into(),
            Objective::SquaredLogError => "reg:squaredlogerror".into(),
            Objective::PseudoHuberError => "reg:pseudohubererror".into(),
            Objective::AbsoluteError => "reg:absoluteerror".into(),
            Objective::QuantileError => "reg:quantileerror".into(),
            Objective::CountPoisson => "count:poisson".into(),
            Objective::Gamma => "reg:gamma".into(),
            Objective::Tweedie => "reg:tweedie".into(),
            Objective::MultiSoftprob { .. } => "multi:softprob".into(),
            Objective::MultiSoftmax { .. } => "multi:softmax".into(),
            Objective::LightGbmBinary { .. } => "binary".into(),
            Objective::LightGbmRegression { loss, sqrt } => {
                format!("{}{}", loss.name(), if sqrt { " sqrt" } else { "" })
            }
            Objective::LightGbmPoisson => "poisson".into(),
            Objective::LightGbmGamma => "gamma".into(),
            Objective::LightGbmTweedie => "tweedie".into(),
            Objective::LightGbmCrossEntropy => "cross_entropy".into(),
            Objective::LightGbmCrossEntropyLambda => "cross_entropy_lambda".into(),
            Objective::LightGbmMulticlass { .. } => "multiclass".into(),
            Objective::LightGbmMulticlassOva { .. } => "multiclassova".into(),
            Objective::LogisticRegression => "logistic_regression".into(),
        }
    }

    /// Classes of a multi-class model; 1 for every other.
    pub fn classes(self) -> usize {
        match self {
            Objective::MultiSoftprob { classes }
            | Objective::MultiSoftmax { classes }
            | Objective::LightGbmMulticlass { classes }
            | Objective::LightGbmMulticlassOva { classes, .. } => classes,
            _ => 1,
        }
    }

    /// Whether the output of a single-output model is a probability (multi-class models give
    /// one per class).
    pub fn is_probability(self) -> bool {
        matches!(
            self,
            Objective::BinaryLogistic
                | Objective::RegLogistic
                | Objective::LightGbmBinary { .. }
                | Objective::LightGbmCrossEntropy
                | Objective::LogisticRegression
        )
    }
}

#[derive(Debug, Clone)]
enum Kind {
    Logistic {
        intercept: f64,
        coefficients: Vec<f64>,
    },
    XGBoost(xgboost::XgbModel),
    LightGbm(lightgbm::LgbModel),
}

/// A loaded, immutable model.
#[derive(Debug, Clone)]
pub struct Model {
    metadata: ModelMetadata,
    objective: Objective,
    kind: Kind,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLogistic {
    format: String,
    name: String,
    #[serde(default)]
    version: Option<String>,
    intercept: f64,
    coefficients: Vec<RawCoefficient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoefficient {
    feature: String,
    weight: f64,
}

/// Metadata of a tree ensemble: named after its file, versioned by its content.
fn tree_metadata(
    file: &str,
    sha256: String,
    format: String,
    objective: Objective,
    features: &[String],
    categorical: &[bool],
    trees: usize,
) -> ModelMetadata {
    ModelMetadata {
        name: file_stem(file),
        version: sha256[..12].to_string(),
        sha256,
        format,
        objective: objective.name(),
        features: features.to_vec(),
        categorical_features: features
            .iter()
            .zip(categorical)
            .filter(|(_, c)| **c)
            .map(|(name, _)| name.clone())
            .collect(),
        trees,
    }
}

/// The name of a model file without its folders and extension.
fn file_stem(file: &str) -> String {
    let base = file.rsplit(['/', '\\']).next().unwrap_or(file);
    base.split('.').next().unwrap_or(base).to_string()
}

impl Model {
    /// Loads a model file: XGBoost JSON, LightGBM text, or Credence logistic-regression JSON,
    /// told apart by content. `file` names it in errors and metadata.
    pub fn load(file: &str, bytes: &[u8]) -> Result<Model, ModelError> {
        let invalid = |problem: String| ModelError::Invalid {
            file: file.to_string(),
            problem,
        };
        let sha256 = hex::encode(Sha256::digest(bytes));
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
        let Some(start) = start else {
            return Err(invalid("the file is empty".into()));
        };
        // UBJSON (XGBoost's `.ubj`) opens an object with `{` and a length-prefixed key (`L`
        // and eight bytes in XGBoost's writer); JSON with `{` and a quoted key.
        let ubjson = bytes[start] == b'{'
            && matches!(
                bytes.get(start + 1),
                Some(b'i' | b'U' | b'I' | b'l' | b'L' | b'#' | b'$')
            );
        if ubjson {
            let value = ubjson::from_slice(&bytes[start..])
                .map_err(|e| invalid(format!("not a valid XGBoost UBJSON model: {e}")))?;
            let model = xgboost::XgbModel::from_value(file, value)?;
            return Ok(Model::xgboost(file, sha256, model));
        }
        if bytes[start] == b'{' {
            if bytes.windows(9).any(|w| w == b"\"learner\"") {
                let model = xgboost::XgbModel::load(file, bytes)?;
                return Ok(Model::xgboost(file, sha256, model));
            }
            return Model::load_logistic(file, bytes, sha256);
        }
        if bytes[start..].starts_with(b"tree") {
            let model = lightgbm::LgbModel::load(file, bytes)?;
            let metadata = tree_metadata(
                file,
                sha256,
                format!("lightgbm {}", model.version),
                model.objective,
                &model.feature_names,
                &model.categorical_features,
                model.tree_count(),
            );
            return Ok(Model {
                metadata,
                objective: model.objective,
                kind: Kind::LightGbm(model),
            });
        }
        Err(invalid(
            "not a model Credence reads: expected XGBoost JSON, LightGBM text (model.txt) or Credence logistic-regression JSON".into(),
        ))
    }

    fn load_logistic(file: &str, bytes: &[u8], sha256: String) -> Result<Model, ModelError> {
        let invalid = |problem: String| ModelError::Invalid {
            file: file.to_string(),
            problem,
        };
        let raw: RawLogistic = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not a Credence logistic-regression model: {e}")))?;
        if raw.format != "credence.logistic_regression.v1" {
            return Err(invalid(format!(
                "unknown format \"{}\"; expected credence.logistic_regression.v1",
                raw.format
            )));
        }
        if !raw.intercept.is_finite() || raw.coefficients.iter().any(|c| !c.weight.is_finite()) {
            return Err(invalid("a weight is not a finite number".into()));
        }
        let mut features = Vec::new();
        for c in &raw.coefficients {
            if features.contains(&c.feature) {
                return Err(invalid(format!("feature {} appears twice", c.feature)));
            }
            features.push(c.feature.clone());
        }
        Ok(Model {
            metadata: ModelMetadata {
                name: raw.name,
                version: raw.version.unwrap_or_else(|| sha256[..12].to_string()),
                sha256,
                format: "credence.logistic_regression.v1".into(),
                objective: Objective::LogisticRegression.name(),
                features,
                categorical_features: Vec::new(),
                trees: 0,
            },
            objective: Objective::LogisticRegression,
            kind: Kind::Logistic {
                intercept: raw.intercept,
                coefficients: raw.coefficients.iter().map(|c| c.weight).collect(),
            },
        })
    }

    /// What the model carries into traces.
    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// The learning objective.
    pub fn objective(&self) -> Objective {
        self.objective
    }

    /// How many trees a prediction uses by default: for an XGBoost model saved after early
    /// stopping, those up to `best_iteration` (as scikit-learn's `predict_proba` does).
    pub fn default_tree_limit(&self) -> usize {
        match &self.kind {
            Kind::XGBoost(m) => m.default_tree_limit(),
            Kind::LightGbm(m) => m.tree_count(),
            Kind::Logistic { .. } => 0,
        }
    }

    /// How predictions are scored: trees of depth at most 8 padded to complete trees, deeper
    /// ones walked side by side, both over binned inputs; linear trees node by node. All give
    /// the library's bits.
    pub fn scoring_path(&self) -> ScoringPath {
        match &self.kind {
            Kind::XGBoost(m) => m.scoring_path(),
            Kind::LightGbm(m) => m.scoring_path(),
            Kind::Logistic { .. } => ScoringPath::NodeByNode,
        }
    }

    /// The same model scored by `path`, for comparing paths; `None` when the model cannot take
    /// it (complete trees deeper than 8, binned forms of linear trees).
    pub fn with_scoring_path(&self, path: ScoringPath) -> Option<Model> {
        let kind = match &self.kind {
            Kind::XGBoost(m) => Kind::XGBoost(m.with_scoring_path(path)?),
            Kind::LightGbm(m) => Kind::LightGbm(m.with_scoring_path(path)?),
            Kind::Logistic { .. } => return None,
        };
        Some(Model {
            metadata: self.metadata.clone(),
            objective: self.objective,
            kind,
        })
    }

    /// The probability of the positive class (bad) a prediction stands for: the output of a
    /// logistic objective, the sigmoid of a `binary:logitraw` margin; `None` for regressions
    /// and multi-class models (whose probabilities are per class).
    pub fn probability(&self, prediction: &Prediction) -> Option<f64> {
        let Prediction::Single { margin, output } = *prediction else {
            return None;
        };
        match self.objective {
            Objective::BinaryLogitRaw => Some(1.0 / (1.0 + (-margin).exp())),
            objective if objective.is_probability() => Some(output),
            _ => None,
        }
    }

    /// For a LightGBM model trained on pandas categoricals: each categorical column's categories
    /// in code order (`pandas_categorical` in the file), to turn labels into the codes it takes.
    pub fn pandas_categorical(&self) -> Option<&serde_json::Value> {
        match &self.kind {
            Kind::LightGbm(m) => m.pandas_categorical.as_ref(),
            _ => None,
        }
    }

    /// Scores one row given in the order of `metadata().features`; NaN is a missing value.
    /// A logistic regression has no defined answer for a missing value: `None`.
    pub fn predict(&self, features: &[f64]) -> Option<Prediction> {
        self.predict_with_trees(features, self.default_tree_limit())
    }

    /// Scores with the first `trees` trees (all of them: `usize::MAX`).
    pub fn predict_with_trees(&self, features: &[f64], trees: usize) -> Option<Prediction> {
        match &self.kind {
            Kind::Logistic {
                intercept,
                coefficients,
            } => {
                debug_assert_eq!(features.len(), coefficients.len());
                if features.iter().any(|x| x.is_nan()) {
                    return None;
                }
                let margin = intercept
                    + coefficients
                        .iter()
                        .zip(features)
                        .map(|(w, x)| w * x)
                        .sum::<f64>();
                Some(Prediction::Single {
                    margin,
                    output: 1.0 / (1.0 + (-margin).exp()),
                })
            }
            Kind::XGBoost(model) => Some(model.predict(features, trees)),
            Kind::LightGbm(model) => Some(model.predict(features, trees)),
        }
    }
}

impl Model {
    /// Exact TreeSHAP contributions of each feature to the margin, with the bias last
    /// (`features + 1` values): they sum to the margin. A multi-class model gives that block
    /// for each class in turn (`classes × (features + 1)` values), each summing to the class's
    /// margin. For a logistic regression, each weight times its value, and the intercept.
    /// `trees` as in `predict_with_trees`.
    pub fn contributions(&self, features: &[f64], trees: usize) -> Vec<f64> {
        let width = self.metadata.features.len() + 1;
        let mut out = vec![0.0; width * self.objective.classes()];
        match &self.kind {
            Kind::Logistic {
                intercept,
                coefficients,
            } => {
                for (o, (w, x)) in out.iter_mut().zip(coefficients.iter().zip(features)) {
                    *o = w * x;
                }
                out[coefficients.len()] = *intercept;
            }
            Kind::XGBoost(model) => model.contributions(features, trees, &mut out),
            Kind::LightGbm(model) => model.contributions(features, trees, &mut out),
        }
        out
    }

    /// Whether [`Model::contributions`] explains the model: the libraries give no TreeSHAP for
    /// LightGBM's linear trees.
    pub fn has_contributions(&self) -> bool {
        match &self.kind {
            Kind::LightGbm(m) => m.has_contributions(),
            _ => true,
        }
    }

    fn xgboost(file: &str, sha256: String, model: xgboost::XgbModel) -> Model {
        let categorical = model
            .feature_types
            .iter()
            .map(|t| t == "c")
            .collect::<Vec<_>>();
        let metadata = tree_metadata(
            file,
            sha256,
            format!("xgboost {}", model.version),
            model.objective,
            &model.feature_names,
            &categorical,
            model.tree_count(),
        );
        Model {
            metadata,
            objective: model.objective,
            kind: Kind::XGBoost(model),
        }
    }
}

/// The deepest tree a model may have: far past what boosting grows (LightGBM's leaf-wise
/// `num_leaves=255` reaches 30–40), low enough that walking it recursively is safe.
pub const MAX_TREE_DEPTH: usize = 256;

/// Checks that nodes `0..n`, node 0 the root, with `children(i)` (`None` for a leaf), form a
/// tree: no node has two parents (a graph could make recursive walks exponential) and no path
/// is deeper than [`MAX_TREE_DEPTH`]. Children always come after their parent (the loaders
/// check it), so one forward pass gives every depth.
fn check_tree_shape(
    n: usize,
    children: impl Fn(usize) -> Option<(usize, usize)>,
) -> Result<(), String> {
    let mut parents = vec![0u8; n];
    let mut depth = vec![0usize; n];
    for i in 0..n {
        let Some((left, right)) = children(i) else {
            continue;
        };
        for child in [left, right] {
            if child <= i || child >= n {
                return Err(format!("node {i} has child {child} outside the tree"));
            }
            if parents[child] > 0 {
                return Err(format!(
                    "node {child} has two parents: the nodes do not form a tree"
                ));
            }
            parents[child] = 1;
            depth[child] = depth[i] + 1;
            if depth[child] > MAX_TREE_DEPTH {
                return Err(format!(
                    "the tree is deeper than {MAX_TREE_DEPTH} levels, which Credence does not score"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = r#"{"format":"credence.logistic_regression.v1","name":"pd","intercept":-2.0,
        "coefficients":[{"feature":"dti","weight":3.0},{"feature":"delinquencies","weight":0.5}]}"#;

    #[test]
    fn scores_and_keeps_metadata() {
        let model = Model::load("models/pd.json", MODEL.as_bytes()).unwrap();
        assert_eq!(model.metadata().features, ["dti", "delinquencies"]);
        assert_eq!(model.metadata().sha256.len(), 64);
        let prediction = model.predict(&[0.5, 1.0]).unwrap();
        assert_eq!(
            prediction,
            Prediction::Single {
                margin: 0.0,
                output: 0.5
            }
        );
        assert!(model.predict(&[f64::NAN, 1.0]).is_none());
    }

    #[test]
    fn tree_shapes_that_would_exhaust_a_walk_are_refused() {
        // A chain: each even node splits into a leaf and the next even node.
        let chain = |levels: usize| {
            let n = 2 * levels + 1;
            check_tree_shape(n, move |i| {
                (i % 2 == 0 && i + 2 < n).then_some((i + 1, i + 2))
            })
        };
        assert_eq!(chain(MAX_TREE_DEPTH), Ok(()));
        assert!(chain(MAX_TREE_DEPTH + 1)
            .unwrap_err()
            .contains("deeper than 256"));
        // A diamond: a node with two parents.
        let diamond = check_tree_shape(4, |i| match i {
            0 => Some((1, 2)),
            1 => Some((2, 3)),
            _ => None,
        });
        assert!(diamond.unwrap_err().contains("node 2 has two parents"));
        assert_eq!(check_tree_shape(3, |i| (i == 0).then_some((1, 2))), Ok(()));
    }

    #[test]
    fn bad_files_name_the_file_and_problem() {
        let cases = [
            ("{", "not a Credence"),
            ("", "empty"),
            ("garbage", "not a model Credence reads"),
            (
                r#"{"format":"xgboost","name":"x","intercept":0,"coefficients":[]}"#,
                "unknown format",
            ),
            (
                r#"{"format":"credence.logistic_regression.v1","name":"x","intercept":0,"coefficients":[{"feature":"a","weight":1},{"feature":"a","weight":1}]}"#,
                "appears twice",
            ),
        ];
        for (text, needle) in cases {
            let error = Model::load("m.json", text.as_bytes())
                .unwrap_err()
                .to_string();
            assert!(
                error.contains("m.json") && error.contains(needle),
                "{error}"
            );
        }
    }
}
