//! Reading LightGBM's text format: the header and tree blocks, each key known (read or deliberately ignored) or the model refused, and the objective line.

use super::*;
use crate::binned::BinnedForest;
use crate::{ModelError, RegressionLoss};
use std::collections::HashMap;

fn parse_list<T: std::str::FromStr>(key: &str, value: &str) -> Result<Vec<T>, String> {
    value
        .split_whitespace()
        .map(|v| {
            v.parse::<T>()
                .map_err(|_| format!("{key}: `{v}` is not a number"))
        })
        .collect()
}

impl LgbModel {
    pub(crate) fn load(file: &str, bytes: &[u8]) -> Result<LgbModel, ModelError> {
        let invalid = |problem: String| ModelError::Invalid {
            file: file.to_string(),
            problem,
        };
        let text =
            std::str::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8 text: {e}")))?;
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some("tree") {
            return Err(invalid(
                "not a LightGBM text model: it does not start with `tree`".into(),
            ));
        }
        // Header: key=value lines up to the first tree.
        let mut header = HashMap::new();
        let mut blocks: Vec<HashMap<&str, &str>> = Vec::new();
        let mut current: Option<HashMap<&str, &str>> = None;
        let mut ended = false;
        let mut pandas_categorical = None;
        for line in text.lines().skip(1) {
            let line = line.trim_end();
            if line == "end of trees" {
                blocks.extend(current.take());
                ended = true;
                continue;
            }
            if let Some(rest) = line.strip_prefix("pandas_categorical:") {
                pandas_categorical = serde_json::from_str::<serde_json::Value>(rest)
                    .ok()
                    .filter(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()));
                continue;
            }
            if ended {
                continue;
            }
            if line.starts_with("Tree=") {
                blocks.extend(current.take());
                current = Some(HashMap::new());
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                match current.as_mut() {
                    Some(block) => {
                        block.insert(key, value);
                    }
                    None => {
                        header.insert(key, value);
                    }
                }
            } else if current.is_none() && !line.trim().is_empty() {
                // A header flag without a value (`average_output`).
                header.insert(line.trim(), "");
            }
        }
        if !ended {
            return Err(invalid("truncated: no `end of trees` line".into()));
        }
        // Every header line changes the output or is known not to: refuse what is not known,
        // rather than score a model differently from LightGBM.
        if let Some(key) = header
            .keys()
            .find(|key| !HEADER_KEYS.iter().any(|(known, _)| known == *key))
        {
            return Err(invalid(format!(
                "header `{key}` is not one Credence reads; it may change what the model predicts, so the model is refused rather than scored differently from LightGBM"
            )));
        }
        let number =
            |key: &str| -> Option<usize> { header.get(key).and_then(|v| v.trim().parse().ok()) };
        let num_class = number("num_class").unwrap_or(1).max(1);
        let classes = number("num_tree_per_iteration").unwrap_or(num_class).max(1);
        let objective_text = header.get("objective").copied().unwrap_or("").trim();
        let objective = objective_of(objective_text).map_err(invalid)?;
        if objective.classes() != classes || num_class != classes {
            return Err(invalid(format!(
                "objective `{objective_text}` has {} classes, but num_class is {num_class} and num_tree_per_iteration {classes}",
                objective.classes()
            )));
        }
        let average_output = header.contains_key("average_output");
        let feature_names: Vec<String> = header
            .get("feature_names")
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let max_feature = number("max_feature_idx").map_or(feature_names.len(), |m| m + 1);
        if feature_names.len() != max_feature {
            return Err(invalid(format!(
                "feature_names lists {} features, max_feature_idx says {max_feature}",
                feature_names.len()
            )));
        }
        // feature_infos: `[min:max]` for numeric features, `a:b:c` category lists for categorical ones.
        let categorical_features = header
            .get("feature_infos")
            .map(|v| {
                v.split_whitespace()
                    .map(|info| !info.starts_with('[') && info != "none")
                    .collect()
            })
            .unwrap_or_else(|| vec![false; feature_names.len()]);
        let mut trees = Vec::with_capacity(blocks.len());
        for (t, block) in blocks.iter().enumerate() {
            trees.push(
                Tree::parse(block, feature_names.len())
                    .map_err(|p| invalid(format!("tree {t}: {p}")))?,
            );
        }
        if trees.is_empty() {
            return Err(invalid("the model has no trees".into()));
        }
        if trees.len() % classes != 0 {
            return Err(invalid(format!(
                "{} trees do not make whole iterations of {classes}",
                trees.len()
            )));
        }
        let tree_groups = (0..trees.len()).map(|t| (t % classes) as u16).collect();
        let mut model = LgbModel {
            trees,
            classes,
            tree_groups,
            average_output,
            fast: None,
            objective,
            feature_names,
            categorical_features,
            version: header
                .get("version")
                .map_or("unknown".into(), |v| v.trim().to_string()),
            pandas_categorical,
        };
        model.fast = model.binned(BinnedForest::<f64>::fastest_path(model.max_depth()));
        Ok(model)
    }
}

/// The objective line (`objective=binary sigmoid:1`): its name and the parameters that shape
/// the output. A parameter not read refuses the model.
fn objective_of(text: &str) -> Result<Objective, String> {
    let mut parts = text.split_whitespace();
    let name = parts.next().unwrap_or("(none)");
    let parameters: Vec<&str> = parts.collect();
    let check = |allowed: &[&str]| -> Result<(), String> {
        match parameters
            .iter()
            .find(|p| !allowed.iter().any(|a| p.split(':').next() == Some(a)))
        {
            Some(p) => Err(format!(
                "objective `{text}`: parameter `{p}` is not supported (it may change the prediction); the model is refused rather than scored differently from LightGBM"
            )),
            None => Ok(()),
        }
    };
    let value = |key: &str| -> Result<Option<f64>, String> {
        parameters
            .iter()
            .find_map(|p| p.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("objective `{text}`: {key} `{v}` is not a number"))
            })
            .transpose()
    };
    let classes = || -> Result<usize, String> {
        match value("num_class")? {
            Some(k) if k >= 2.0 && k.fract() == 0.0 => Ok(k as usize),
            _ => Err(format!(
                "objective `{text}`: num_class must be a whole number of at least 2"
            )),
        }
    };
    let regression = |loss: RegressionLoss| -> Result<Objective, String> {
        check(&["sqrt"])?;
        Ok(Objective::LightGbmRegression {
            loss,
            sqrt: parameters.contains(&"sqrt"),
        })
    };
    Ok(match name {
        "binary" => {
            check(&["sigmoid"])?;
            Objective::LightGbmBinary {
                sigmoid: value("sigmoid")?.unwrap_or(1.0),
            }
        }
        "regression" => regression(RegressionLoss::L2)?,
        "regression_l1" => regression(RegressionLoss::L1)?,
        "fair" => regression(RegressionLoss::Fair)?,
        "quantile" => regression(RegressionLoss::Quantile)?,
        "mape" => regression(RegressionLoss::Mape)?,
        // LightGBM turns `sqrt` off for these, so it never writes it.
        "huber" => {
            check(&[])?;
            Objective::LightGbmRegression {
                loss: RegressionLoss::Huber,
                sqrt: false,
            }
        }
        "poisson" | "gamma" | "tweedie" => {
            check(&[])?;
            match name {
                "poisson" => Objective::LightGbmPoisson,
                "gamma" => Objective::LightGbmGamma,
                _ => Objective::LightGbmTweedie,
            }
        }
        "cross_entropy" => {
            check(&[])?;
            Objective::LightGbmCrossEntropy
        }
        "cross_entropy_lambda" => {
            check(&[])?;
            Objective::LightGbmCrossEntropyLambda
        }
        "multiclass" => {
            check(&["num_class"])?;
            Objective::LightGbmMulticlass { classes: classes()? }
        }
        "multiclassova" => {
            check(&["num_class", "sigmoid"])?;
            Objective::LightGbmMulticlassOva {
                classes: classes()?,
                sigmoid: value("sigmoid")?.unwrap_or(1.0),
            }
        }
        "lambdarank" | "rank_xendcg" => {
            return Err(format!(
                "objective {name} is a ranking objective, whose scores only order rows within a query group; it is not supported"
            ))
        }
        other => {
            return Err(format!(
                "objective {other} is not supported; supported: binary, regression, regression_l1, huber, fair, quantile, mape, poisson, gamma, tweedie, cross_entropy, cross_entropy_lambda, multiclass, multiclassova"
            ))
        }
    })
}

/// What Credence does with a LightGBM header line or tree field. A key in neither list is
/// refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderKey {
    /// Read: it shapes the prediction, and Credence follows it.
    Used,
    /// Written by LightGBM but without effect on a prediction.
    Ignored,
}

/// Every header line of the LightGBM 4 text format. A key not here is refused.
const HEADER_KEYS: &[(&str, HeaderKey)] = &[
    ("version", HeaderKey::Used),
    ("num_class", HeaderKey::Used),
    ("num_tree_per_iteration", HeaderKey::Used),
    ("max_feature_idx", HeaderKey::Used),
    ("objective", HeaderKey::Used),
    ("feature_names", HeaderKey::Used),
    ("feature_infos", HeaderKey::Used),
    // Which input column was the label at training.
    ("label_index", HeaderKey::Ignored),
    // Constraints on training; the trees already obey them.
    ("monotone_constraints", HeaderKey::Ignored),
    // Byte sizes of the tree blocks, for loading them in parallel.
    ("tree_sizes", HeaderKey::Ignored),
    // A random forest (boosting=rf): predictions transform the mean of the trees.
    ("average_output", HeaderKey::Used),
];

/// Every field of a tree block (after its `Tree=` line). A key not here is refused.
const TREE_KEYS: &[(&str, HeaderKey)] = &[
    ("num_leaves", HeaderKey::Used),
    ("split_feature", HeaderKey::Used),
    ("threshold", HeaderKey::Used),
    ("decision_type", HeaderKey::Used),
    ("left_child", HeaderKey::Used),
    ("right_child", HeaderKey::Used),
    ("leaf_value", HeaderKey::Used),
    ("cat_boundaries", HeaderKey::Used),
    ("cat_threshold", HeaderKey::Used),
    // Training rows per node: the cover of TreeSHAP.
    ("leaf_count", HeaderKey::Used),
    ("internal_count", HeaderKey::Used),
    ("is_linear", HeaderKey::Used),
    ("leaf_const", HeaderKey::Used),
    ("num_features", HeaderKey::Used),
    ("leaf_features", HeaderKey::Used),
    ("leaf_coeff", HeaderKey::Used),
    // Implied by cat_boundaries.
    ("num_cat", HeaderKey::Ignored),
    // Training records: gains, hessian sums, internal nodes' values.
    ("split_gain", HeaderKey::Ignored),
    ("leaf_weight", HeaderKey::Ignored),
    ("internal_value", HeaderKey::Ignored),
    ("internal_weight", HeaderKey::Ignored),
    // The learning rate already applied to leaf_value.
    ("shrinkage", HeaderKey::Ignored),
];

impl Tree {
    fn parse(block: &HashMap<&str, &str>, num_features: usize) -> Result<Tree, String> {
        let get = |key: &str| {
            block
                .get(key)
                .copied()
                .ok_or_else(|| format!("missing `{key}`"))
        };
        if let Some(key) = block
            .keys()
            .find(|key| !TREE_KEYS.iter().any(|(known, _)| known == *key))
        {
            return Err(format!(
                "field `{key}` is not one Credence reads; it may change what the model predicts, so the model is refused rather than scored differently from LightGBM"
            ));
        }
        let num_leaves: usize = get("num_leaves")?
            .trim()
            .parse()
            .map_err(|_| "num_leaves is not a number")?;
        if num_leaves == 0 {
            return Err("num_leaves is 0".into());
        }
        let linear = match block.get("is_linear").map(|v| v.trim()) {
            None | Some("0") => None,
            Some("1") => Some(LinearLeaves::parse(block, num_leaves, num_features)?),
            Some(other) => return Err(format!("is_linear `{other}` is neither 0 nor 1")),
        };
        let leaf_values: Vec<f64> = parse_list("leaf_value", get("leaf_value")?)?;
        if leaf_values.len() != num_leaves {
            return Err(format!(
                "leaf_value has {} values for {num_leaves} leaves",
                leaf_values.len()
            ));
        }
        let leaf_counts: Vec<f64> = match block.get("leaf_count") {
            Some(v) => parse_list("leaf_count", v)?,
            None => vec![0.0; num_leaves],
        };
        if num_leaves == 1 {
            return Ok(Tree {
                nodes: Vec::new(),
                leaf_values,
                internal_counts: Vec::new(),
                leaf_counts,
                depth: 0,
                cat_boundaries: Vec::new(),
                cat_threshold: Vec::new(),
                linear,
            });
        }
        let internal = num_leaves - 1;
        let split_feature: Vec<u32> = parse_list("split_feature", get("split_feature")?)?;
        let threshold: Vec<f64> = parse_list("threshold", get("threshold")?)?;
        let decision_type: Vec<u8> = parse_list("decision_type", get("decision_type")?)?;
        let left: Vec<i32> = parse_list("left_child", get("left_child")?)?;
        let right: Vec<i32> = parse_list("right_child", get("right_child")?)?;
        for (name, len) in [
            ("split_feature", split_feature.len()),
            ("threshold", threshold.len()),
            ("decision_type", decision_type.len()),
            ("left_child", left.len()),
            ("right_child", right.len()),
        ] {
            if len != internal {
                return Err(format!(
                    "{name} has {len} entries for {internal} internal nodes"
                ));
            }
        }
        let (cat_boundaries, cat_threshold) = match block.get("cat_boundaries") {
            Some(b) => (
                parse_list::<usize>("cat_boundaries", b)?,
                parse_list::<u32>("cat_threshold", get("cat_threshold")?)?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        let mut nodes = Vec::with_capacity(internal);
        for i in 0..internal {
            for child in [left[i], right[i]] {
                let ok = if child >= 0 {
                    (child as usize) < internal && child as usize > i
                } else {
                    ((!child) as usize) < num_leaves
                };
                if !ok {
                    return Err(format!("node {i} has child {child} outside the tree"));
                }
            }
            if split_feature[i] as usize >= num_features {
                return Err(format!(
                    "node {i} splits on feature {}, the model has {num_features}",
                    split_feature[i]
                ));
            }
            if decision_type[i] & CATEGORICAL_MASK != 0 {
                let k = threshold[i] as usize;
                if k + 1 >= cat_boundaries.len()
                    || cat_boundaries[k + 1] > cat_threshold.len()
                    || cat_boundaries[k] > cat_boundaries[k + 1]
                {
                    return Err(format!(
                        "categorical node {i} points outside cat_boundaries"
                    ));
                }
            }
            nodes.push(Node {
                left: left[i],
                right: right[i],
                feature: split_feature[i],
                threshold: threshold[i],
                decision_type: decision_type[i],
            });
        }
        let internal_counts: Vec<f64> = match block.get("internal_count") {
            Some(v) => parse_list("internal_count", v)?,
            None => vec![0.0; internal],
        };
        if internal_counts.len() != internal || leaf_counts.len() != num_leaves {
            return Err("internal_count or leaf_count does not match the tree's size".into());
        }
        let mut tree = Tree {
            nodes,
            leaf_values,
            internal_counts,
            leaf_counts,
            depth: 0,
            cat_boundaries,
            cat_threshold,
            linear,
        };
        // A tree, not a graph, and not so deep that the recursions below (and TreeSHAP) could
        // exhaust the stack. Internal nodes are `0..internal`, leaf `k` is `internal + k`.
        crate::check_tree_shape(internal + num_leaves, |i| {
            let node = tree.nodes.get(i)?;
            let id = |child: i32| {
                if child >= 0 {
                    child as usize
                } else {
                    internal + (!child) as usize
                }
            };
            Some((id(node.left), id(node.right)))
        })?;
        tree.depth = tree.depth_below(0);
        Ok(tree)
    }
}

impl LinearLeaves {
    /// `leaf_const`, and per leaf `num_features` entries of `leaf_features` and `leaf_coeff`.
    fn parse(
        block: &HashMap<&str, &str>,
        num_leaves: usize,
        num_features: usize,
    ) -> Result<LinearLeaves, String> {
        let get = |key: &str| {
            block
                .get(key)
                .copied()
                .ok_or_else(|| format!("linear tree without `{key}`"))
        };
        let constants: Vec<f64> = parse_list("leaf_const", get("leaf_const")?)?;
        let counts: Vec<usize> = parse_list("num_features", get("num_features")?)?;
        let features: Vec<u32> =
            parse_list("leaf_features", block.get("leaf_features").unwrap_or(&""))?;
        let coefficients: Vec<f64> =
            parse_list("leaf_coeff", block.get("leaf_coeff").unwrap_or(&""))?;
        if constants.len() != num_leaves || counts.len() != num_leaves {
            return Err(format!(
                "leaf_const and num_features need {num_leaves} entries, one per leaf"
            ));
        }
        if counts.iter().sum::<usize>() != features.len() || features.len() != coefficients.len() {
            return Err("leaf_features and leaf_coeff do not match num_features".into());
        }
        if let Some(f) = features.iter().find(|f| **f as usize >= num_features) {
            return Err(format!(
                "a leaf model reads feature {f}, the model has {num_features}"
            ));
        }
        let mut terms = Vec::with_capacity(num_leaves);
        let mut at = 0;
        for count in counts {
            terms.push(
                features[at..at + count]
                    .iter()
                    .copied()
                    .zip(coefficients[at..at + count].iter().copied())
                    .collect(),
            );
            at += count;
        }
        Ok(LinearLeaves { constants, terms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: [&str; 7] = [
        include_str!("../../tests/fixtures/lgb_numeric_shallow/model.txt"),
        include_str!("../../tests/fixtures/lgb_categorical/model.txt"),
        include_str!("../../tests/fixtures/lgb_zero_as_missing/model.txt"),
        include_str!("../../tests/fixtures/lgb_rf/model.txt"),
        include_str!("../../tests/fixtures/lgb_linear/model.txt"),
        include_str!("../../tests/fixtures/lgb_multiclassova/model.txt"),
        include_str!("../../tests/fixtures/lgb_reg_sqrt/model.txt"),
    ];

    fn tree_keys(text: &str) -> Vec<String> {
        text.lines()
            .skip_while(|l| !l.starts_with("Tree="))
            .take_while(|l| *l != "end of trees")
            .filter(|l| !l.starts_with("Tree=") && l.contains('='))
            .map(|l| l.split('=').next().unwrap_or_default().to_string())
            .collect()
    }

    fn header_keys(text: &str) -> Vec<String> {
        text.lines()
            .skip(1)
            .take_while(|l| !l.starts_with("Tree="))
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split('=').next().unwrap_or_default().trim().to_string())
            .collect()
    }

    /// Every header line the libraries write is in the list, as read or as known to change
    /// nothing; so a key a new LightGBM adds is refused, never skipped.
    #[test]
    fn every_header_key_is_used_or_deliberately_ignored() {
        for text in FIXTURES {
            for key in header_keys(text) {
                let known = HEADER_KEYS.iter().find(|(k, _)| *k == key);
                assert!(
                    matches!(known, Some((_, HeaderKey::Used | HeaderKey::Ignored))),
                    "header key {key} is neither read nor known to change nothing"
                );
            }
            for key in tree_keys(text) {
                assert!(
                    TREE_KEYS.iter().any(|(k, _)| *k == key),
                    "tree field {key} is neither read nor known to change nothing"
                );
            }
            assert!(LgbModel::load("model.txt", text.as_bytes()).is_ok());
        }
    }

    /// What would be scored wrong is refused, naming the file and the line.
    #[test]
    fn models_that_would_be_scored_wrong_are_refused() {
        let text = FIXTURES[0];
        let objective = text.lines().find(|l| l.starts_with("objective=")).unwrap();
        let cases = [
            (
                text.replacen(objective, "objective=poisson sqrt", 1),
                "parameter `sqrt` is not supported",
            ),
            (
                text.replacen(objective, "objective=lambdarank", 1),
                "ranking objective",
            ),
            (
                text.replacen("shrinkage=", "future_field=1\nshrinkage=", 1),
                "tree 0: field `future_field` is not one Credence reads",
            ),
            (
                text.replacen(objective, &format!("{objective} boost_from_average"), 1),
                "parameter `boost_from_average` is not supported",
            ),
            (
                text.replacen(objective, &format!("{objective}\nfuture_key=1"), 1),
                "header `future_key` is not one Credence reads",
            ),
        ];
        for (model, expected) in cases {
            let error = LgbModel::load("model.txt", model.as_bytes())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("model.txt") && error.contains(expected),
                "{expected}: {error}"
            );
        }
    }
}
