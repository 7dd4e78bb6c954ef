//! Credence model inference: XGBoost, LightGBM and logistic-regression models loaded from bytes and scored natively; pure, no I/O.
//!
//! A strategy's `model` step names a model file in its package; the engine hands the file's
//! bytes here and gets back a [`Model`] whose feature list the step's mapping is checked against
//! at compile time. Tree ensembles are scored by hand-written evaluators over flat node arrays
//! (see `xgboost.rs` and `lightgbm.rs` for why and how), reproducing the libraries' outputs bit
//! for bit; parity fixtures produced by the libraries themselves hold them to it.

mod complete;
mod lightgbm;
mod shap;
mod xgboost;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Errors of loading or scoring a model; each names the file and the problem.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    #[error("model {file}: {problem}")]
    Invalid { file: String, problem: String },
    #[error("model {model}: feature {feature} {problem}")]
    Feature {
        model: String,
        feature: String,
        problem: String,
    },
}

/// What every loaded model carries into decision traces.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelMetadata {
    pub name: String,
    pub version: String,
    pub sha256: String,
    /// The format and the library version that wrote it, e.g. `xgboost 3.1.2`.
    pub format: String,
    pub objective: String,
    pub features: Vec<String>,
    /// Features the model splits on as categories: give them as integer category codes.
    pub categorical_features: Vec<String>,
    pub trees: usize,
}

/// A model's answer for one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// The raw score before the link function (log-odds for binary models).
    pub margin: f64,
    /// What the library's own `predict` returns: a probability for logistic objectives, the
    /// margin for `binary:logitraw` and regressions.
    pub output: f64,
}

/// The learning objective, which fixes how a margin becomes an output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    BinaryLogistic,
    RegLogistic,
    BinaryLogitRaw,
    SquaredError,
    /// `reg:absoluteerror`: median regression, identity link (robust to heavy-tailed targets
    /// such as income).
    AbsoluteError,
    LightGbmBinary {
        sigmoid: f64,
    },
    LightGbmRegression,
    LogisticRegression,
}

impl Objective {
    pub fn name(self) -> &'static str {
        match self {
            Objective::BinaryLogistic => "binary:logistic",
            Objective::RegLogistic => "reg:logistic",
            Objective::BinaryLogitRaw => "binary:logitraw",
            Objective::SquaredError => "reg:squarederror",
            Objective::AbsoluteError => "reg:absoluteerror",
            Objective::LightGbmBinary { .. } => "binary",
            Objective::LightGbmRegression => "regression",
            Objective::LogisticRegression => "logistic_regression",
        }
    }

    /// Whether the output is a probability.
    pub fn is_probability(self) -> bool {
        matches!(
            self,
            Objective::BinaryLogistic
                | Objective::RegLogistic
                | Objective::LightGbmBinary { .. }
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
        objective: objective.name().into(),
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
        let sha256 = hex(&Sha256::digest(bytes));
        let start = bytes.iter().position(|b| !b.is_ascii_whitespace());
        let Some(start) = start else {
            return Err(invalid("the file is empty".into()));
        };
        if bytes[start] == b'{' {
            if bytes.windows(9).any(|w| w == b"\"learner\"") {
                let model = xgboost::XgbModel::load(file, bytes)?;
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
                return Ok(Model {
                    metadata,
                    objective: model.objective,
                    kind: Kind::XGBoost(model),
                });
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
                objective: Objective::LogisticRegression.name().into(),
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

    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

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

    /// Whether predictions take the fast path: every tree padded to a complete tree over
    /// binned inputs (numeric splits only, depth at most 8). Other tree models are walked node
    /// by node; both give the same bits.
    pub fn uses_complete_trees(&self) -> bool {
        match &self.kind {
            Kind::XGBoost(m) => m.uses_complete_trees(),
            Kind::LightGbm(m) => m.uses_complete_trees(),
            Kind::Logistic { .. } => false,
        }
    }

    /// The probability of the positive class (bad) a prediction stands for: the output of a
    /// logistic objective, the sigmoid of a `binary:logitraw` margin; `None` for regressions.
    pub fn probability(&self, prediction: &Prediction) -> Option<f64> {
        match self.objective {
            Objective::BinaryLogitRaw => Some(1.0 / (1.0 + (-prediction.margin).exp())),
            objective if objective.is_probability() => Some(prediction.output),
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
                Some(Prediction {
                    margin,
                    output: 1.0 / (1.0 + (-margin).exp()),
                })
            }
            Kind::XGBoost(model) => {
                let margin = model.margin(features, trees);
                let output = match self.objective {
                    Objective::BinaryLogistic | Objective::RegLogistic => xgboost::sigmoid(margin),
                    _ => margin,
                };
                Some(Prediction {
                    margin: f64::from(margin),
                    output: f64::from(output),
                })
            }
            Kind::LightGbm(model) => {
                let margin = model.margin(features, trees);
                let output = match self.objective {
                    Objective::LightGbmBinary { sigmoid } => {
                        1.0 / (1.0 + (-sigmoid * margin).exp())
                    }
                    _ => margin,
                };
                Some(Prediction { margin, output })
            }
        }
    }
}

impl Model {
    /// Exact TreeSHAP contributions of each feature to the margin, with the bias last
    /// (`features + 1` values): they sum to the margin. For a logistic regression, each weight
    /// times its value, and the intercept. `trees` as in `predict_with_trees`.
    pub fn contributions(&self, features: &[f64], trees: usize) -> Vec<f64> {
        let mut out = vec![0.0; self.metadata.features.len() + 1];
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
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        assert_eq!(prediction.margin, 0.0);
        assert_eq!(prediction.output, 0.5);
        assert!(model.predict(&[f64::NAN, 1.0]).is_none());
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
