//! Credence model inference: loading model files from bytes and scoring feature vectors; pure, no I/O.
//!
//! A strategy's `model` step names a model file in its package; the engine hands the file's
//! bytes here and gets back a [`Model`] whose feature list the step's mapping is checked
//! against at compile time. Logistic regression is the first format; tree ensembles (XGBoost,
//! LightGBM) plug in behind the same type.

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
    pub objective: String,
    pub features: Vec<String>,
}

/// A model's answer for one row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// The raw score before the link function (log-odds for binary models).
    pub margin: f64,
    /// The probability of the positive class (bad).
    pub probability: f64,
}

#[derive(Debug, Clone)]
enum Kind {
    Logistic {
        intercept: f64,
        coefficients: Vec<f64>,
    },
}

/// A loaded, immutable model.
#[derive(Debug, Clone)]
pub struct Model {
    metadata: ModelMetadata,
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

impl Model {
    /// Loads a model file. `file` names it in errors.
    pub fn load(file: &str, bytes: &[u8]) -> Result<Model, ModelError> {
        let invalid = |problem: String| ModelError::Invalid {
            file: file.to_string(),
            problem,
        };
        let sha256 = hex(&Sha256::digest(bytes));
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
                objective: "binary:logistic".into(),
                features,
            },
            kind: Kind::Logistic {
                intercept: raw.intercept,
                coefficients: raw.coefficients.iter().map(|c| c.weight).collect(),
            },
        })
    }

    pub fn metadata(&self) -> &ModelMetadata {
        &self.metadata
    }

    /// Scores one row given in the order of `metadata().features`. A missing value (NaN) in a
    /// logistic regression has no defined contribution, so the prediction is `None`.
    pub fn predict(&self, features: &[f64]) -> Option<Prediction> {
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
                    probability: 1.0 / (1.0 + (-margin).exp()),
                })
            }
        }
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
        assert_eq!(prediction.probability, 0.5);
        assert!(model.predict(&[f64::NAN, 1.0]).is_none());
    }

    #[test]
    fn bad_files_name_the_file_and_problem() {
        let cases = [
            ("{", "not a Credence"),
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
