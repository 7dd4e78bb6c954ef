//! Reading XGBoost's model document (JSON or UBJSON): every key known or the model refused, objectives and their base scores, trees into flat node arrays.

use super::*;
use crate::ModelError;
use serde::Deserialize;
use std::collections::BTreeMap;

// The file's structure. `deny_unknown_fields` everywhere: a key not listed here refuses the
// model; keys that cannot change a prediction are listed and ignored.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    learner: RawLearner,
    #[serde(default)]
    version: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLearner {
    /// User attributes; only `best_iteration` changes what scikit-learn's `predict` uses.
    #[serde(default)]
    attributes: BTreeMap<String, String>,
    #[serde(default)]
    feature_names: Vec<String>,
    #[serde(default)]
    feature_types: Vec<String>,
    gradient_booster: RawBooster,
    learner_model_param: RawLearnerParam,
    objective: RawObjective,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLearnerParam {
    base_score: String,
    /// How `base_score` was estimated at training; it is stored either way.
    #[serde(default)]
    #[allow(dead_code)]
    boost_from_average: Option<String>,
    #[serde(default)]
    num_class: Option<String>,
    #[serde(default)]
    num_feature: Option<String>,
    #[serde(default)]
    num_target: Option<String>,
}

#[derive(Deserialize)]
struct RawObjective {
    name: String,
    /// The objective's training parameters (`reg_loss_param`, ...): checked against
    /// [`OBJECTIVE_PARAMETERS`].
    #[serde(flatten)]
    parameters: BTreeMap<String, serde_json::Value>,
}

/// Objective parameter blocks XGBoost writes. None changes a prediction: they shape the
/// gradients at training (`scale_pos_weight`, `max_delta_step`, `tweedie_variance_power`,
/// `huber_slope`), or are checked against the learner (`num_class`, the quantile count as
/// `num_target`).
const OBJECTIVE_PARAMETERS: &[&str] = &[
    "reg_loss_param",
    "pseudo_huber_param",
    "poisson_regression_param",
    "tweedie_regression_param",
    "softmax_multiclass_param",
    "quantile_loss_param",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBooster {
    name: String,
    /// gbtree: the trees (parsed once the booster is known to be one Credence reads).
    #[serde(default)]
    model: Option<serde_json::Value>,
    /// dart: a gbtree booster inside, and a weight per tree.
    #[serde(default)]
    gbtree: Option<Box<RawBooster>>,
    #[serde(default)]
    weight_drop: Option<Vec<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGbtree {
    gbtree_model_param: RawGbtreeParam,
    trees: Vec<RawTree>,
    #[serde(default)]
    tree_info: Vec<i64>,
    /// Where each iteration's trees start; implied by `tree_info` and the counts.
    #[serde(default)]
    #[allow(dead_code)]
    iteration_indptr: Option<serde_json::Value>,
    /// The training categories' labels, for re-encoding string data; Credence takes codes.
    #[serde(default)]
    #[allow(dead_code)]
    cats: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGbtreeParam {
    #[serde(default)]
    num_parallel_tree: Option<String>,
    #[serde(default)]
    num_trees: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawTree {
    left_children: Vec<i64>,
    right_children: Vec<i64>,
    split_indices: Vec<i64>,
    split_conditions: Vec<f64>,
    default_left: Vec<u8>,
    #[serde(default)]
    split_type: Vec<u8>,
    #[serde(default)]
    categories: Vec<i64>,
    #[serde(default)]
    categories_nodes: Vec<i64>,
    #[serde(default)]
    categories_segments: Vec<i64>,
    #[serde(default)]
    categories_sizes: Vec<i64>,
    #[serde(default)]
    sum_hessian: Vec<f64>,
    // Training records: weights before shrinkage, gains, parents, the tree's id.
    #[serde(default)]
    base_weights: Option<serde_json::Value>,
    #[serde(default)]
    loss_changes: Option<serde_json::Value>,
    #[serde(default)]
    parents: Option<serde_json::Value>,
    #[serde(default)]
    id: Option<serde_json::Value>,
    tree_param: RawTreeParam,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawTreeParam {
    #[serde(default)]
    num_deleted: Option<String>,
    #[serde(default)]
    num_feature: Option<String>,
    #[serde(default)]
    num_nodes: Option<String>,
    /// More than one: vector leaves (`multi_strategy="multi_output_tree"`), refused.
    #[serde(default)]
    size_leaf_vector: Option<String>,
}

fn parse_count(text: &Option<String>) -> usize {
    text.as_deref()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// `base_score` as XGBoost stores it: `"5E-1"`, or `"[8.7787354E-1]"` since 2.1, one value per
/// class for a multi-class model since 3.1.
fn parse_base_score(text: &str) -> Option<Vec<f32>> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split(',')
        .map(|v| v.trim().parse::<f32>().ok())
        .collect()
}

/// Where an objective's margin comes from and goes to.
fn objective_of(name: &str, classes: usize) -> Result<Objective, String> {
    Ok(match name {
        "binary:logistic" => Objective::BinaryLogistic,
        "reg:logistic" => Objective::RegLogistic,
        "binary:logitraw" => Objective::BinaryLogitRaw,
        "binary:hinge" => Objective::BinaryHinge,
        "reg:squarederror" | "reg:linear" => Objective::SquaredError,
        "reg:squaredlogerror" => Objective::SquaredLogError,
        "reg:pseudohubererror" => Objective::PseudoHuberError,
        "reg:absoluteerror" => Objective::AbsoluteError,
        "reg:quantileerror" => Objective::QuantileError,
        "count:poisson" => Objective::CountPoisson,
        "reg:gamma" => Objective::Gamma,
        "reg:tweedie" => Objective::Tweedie,
        "multi:softprob" | "multi:softmax" if classes < 2 => {
            return Err(format!("objective {name} needs num_class of at least 2"))
        }
        "multi:softprob" => Objective::MultiSoftprob { classes },
        "multi:softmax" => Objective::MultiSoftmax { classes },
        other if other.starts_with("rank:") => {
            return Err(format!(
                "objective {other} is a ranking objective, whose scores only order rows within a query group; it is not supported"
            ))
        }
        other => {
            return Err(format!(
                "objective {other} is not supported; supported: binary:logistic, binary:logitraw, binary:hinge, reg:logistic, reg:squarederror, reg:squaredlogerror, reg:pseudohubererror, reg:absoluteerror, reg:quantileerror, count:poisson, reg:gamma, reg:tweedie, multi:softprob, multi:softmax"
            ))
        }
    })
}

impl XgbModel {
    /// Loads XGBoost JSON.
    pub(crate) fn load(file: &str, bytes: &[u8]) -> Result<XgbModel, ModelError> {
        let raw: RawModel = serde_json::from_slice(bytes).map_err(|e| ModelError::Invalid {
            file: file.to_string(),
            problem: format!("not a valid XGBoost JSON model: {e}"),
        })?;
        XgbModel::from_raw(file, raw)
    }

    /// Loads the document of an XGBoost UBJSON file.
    pub(crate) fn from_value(file: &str, value: serde_json::Value) -> Result<XgbModel, ModelError> {
        let raw: RawModel = serde_json::from_value(value).map_err(|e| ModelError::Invalid {
            file: file.to_string(),
            problem: format!("not a valid XGBoost model: {e}"),
        })?;
        XgbModel::from_raw(file, raw)
    }

    fn from_raw(file: &str, raw: RawModel) -> Result<XgbModel, ModelError> {
        let invalid = |problem: String| ModelError::Invalid {
            file: file.to_string(),
            problem,
        };
        let learner = raw.learner;
        let param = &learner.learner_model_param;
        let classes = parse_count(&param.num_class);
        let objective = objective_of(&learner.objective.name, classes).map_err(invalid)?;
        if let Some(unknown) = learner
            .objective
            .parameters
            .keys()
            .find(|k| !OBJECTIVE_PARAMETERS.contains(&k.as_str()))
        {
            return Err(invalid(format!(
                "objective parameter `{unknown}` is not one Credence reads; it may change what the model predicts, so the model is refused rather than scored differently from XGBoost"
            )));
        }
        if !matches!(
            objective,
            Objective::MultiSoftprob { .. } | Objective::MultiSoftmax { .. }
        ) && classes > 1
        {
            return Err(invalid(format!(
                "num_class is {classes} but objective {} is not a multi-class one",
                learner.objective.name
            )));
        }
        let targets = parse_count(&param.num_target);
        if targets > 1 {
            return Err(invalid(format!(
                "the model has {targets} targets (several quantiles, or multi_strategy=multi_output_tree); Credence scores one target per model"
            )));
        }
        let groups = objective.classes();
        // The booster: gbtree, or dart (a gbtree and a weight per tree).
        let booster = learner.gradient_booster;
        let (gbtree, weights) = match booster.name.as_str() {
            "gbtree" => (booster, None),
            "dart" => {
                let weights = booster
                    .weight_drop
                    .ok_or_else(|| invalid("the dart booster has no weight_drop".into()))?;
                let inner = booster
                    .gbtree
                    .ok_or_else(|| invalid("the dart booster has no gbtree".into()))?;
                (*inner, Some(weights))
            }
            "gblinear" => {
                return Err(invalid(
                    "booster gblinear (a linear model) is not supported; only tree boosters (gbtree, dart)".into(),
                ))
            }
            other => {
                return Err(invalid(format!(
                    "booster {other} is not supported; supported: gbtree, dart"
                )))
            }
        };
        let gbtree: RawGbtree = serde_json::from_value(
            gbtree
                .model
                .ok_or_else(|| invalid("the gbtree booster has no model".into()))?,
        )
        .map_err(|e| invalid(format!("not a valid XGBoost gbtree model: {e}")))?;
        if groups > gbtree.trees.len().max(1) {
            return Err(invalid(format!(
                "num_class is {groups} but the model has {} trees; every class needs its own",
                gbtree.trees.len()
            )));
        }
        let stored = parse_base_score(&param.base_score)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid(format!("base_score {} is not a number", param.base_score)))?;
        let stored = match stored.len() {
            1 => vec![stored[0]; groups],
            n if n == groups => stored,
            n => {
                return Err(invalid(format!(
                    "base_score has {n} values for {groups} outputs"
                )))
            }
        };
        // `base_score` is stored as the objective's output; the margin is its inverse link
        // (XGBoost's ProbToMargin, in f32). Multi-class and identity-link objectives keep it.
        let mut base_margins = Vec::with_capacity(groups);
        for base_score in stored {
            base_margins.push(match objective {
                Objective::BinaryLogistic | Objective::RegLogistic => {
                    if !(base_score > 0.0 && base_score < 1.0) {
                        return Err(invalid(format!(
                            "base_score {base_score} must be a probability for a logistic objective"
                        )));
                    }
                    -(1.0f32 / base_score - 1.0f32).ln()
                }
                Objective::CountPoisson | Objective::Gamma | Objective::Tweedie => {
                    if base_score <= 0.0 {
                        return Err(invalid(format!(
                            "base_score {base_score} must be positive for a log-link objective"
                        )));
                    }
                    base_score.ln()
                }
                _ => base_score,
            });
        }
        let num_features = parse_count(&param.num_feature).max(learner.feature_names.len());
        let tree_count = gbtree.trees.len();
        let declared = parse_count(&gbtree.gbtree_model_param.num_trees);
        if gbtree.gbtree_model_param.num_trees.is_some() && declared != tree_count {
            return Err(invalid(format!(
                "num_trees says {declared}, the file has {tree_count} trees"
            )));
        }
        let tree_groups: Vec<u16> = if gbtree.tree_info.is_empty() {
            vec![0; tree_count]
        } else if gbtree.tree_info.len() != tree_count {
            return Err(invalid(format!(
                "tree_info has {} entries for {tree_count} trees",
                gbtree.tree_info.len()
            )));
        } else {
            gbtree
                .tree_info
                .iter()
                .map(|&g| {
                    u16::try_from(g)
                        .ok()
                        .filter(|g| usize::from(*g) < groups)
                        .ok_or_else(|| {
                            invalid(format!(
                                "tree_info names output {g}; the model has {groups}"
                            ))
                        })
                })
                .collect::<Result<_, _>>()?
        };
        let tree_weights = match weights {
            None => None,
            Some(w) if w.len() == tree_count => Some(w.iter().map(|&w| w as f32).collect()),
            Some(w) => {
                return Err(invalid(format!(
                    "weight_drop has {} weights for {tree_count} trees",
                    w.len()
                )))
            }
        };
        let mut model = XgbModel {
            nodes: Vec::new(),
            roots: Vec::with_capacity(tree_count),
            tree_groups,
            tree_weights,
            categories: Vec::new(),
            base_margins,
            tree_means: Vec::new(),
            max_depth: 0,
            fast: None,
            default_tree_limit: tree_count,
            objective,
            feature_names: if learner.feature_names.is_empty() {
                (0..num_features).map(|i| format!("f{i}")).collect()
            } else {
                learner.feature_names
            },
            feature_types: learner.feature_types,
            version: raw
                .version
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join("."),
        };
        for (t, tree) in gbtree.trees.iter().enumerate() {
            if parse_count(&tree.tree_param.size_leaf_vector) > 1 {
                return Err(invalid(format!(
                    "tree {t} has vector leaves (multi_strategy=multi_output_tree), which Credence does not score"
                )));
            }
            model
                .add_tree(tree, num_features)
                .map_err(|p| invalid(format!("tree {t}: {p}")))?;
        }
        model.fast = model.binned(BinnedForest::<f32>::fastest_path(model.max_depth));
        if let Some(best) = learner.attributes.get("best_iteration") {
            let best: usize = best
                .parse()
                .map_err(|_| invalid(format!("best_iteration {best} is not a number")))?;
            let per_iteration =
                parse_count(&gbtree.gbtree_model_param.num_parallel_tree).max(1) * groups;
            model.default_tree_limit = ((best + 1) * per_iteration).min(model.roots.len());
        }
        Ok(model)
    }

    fn add_tree(&mut self, tree: &RawTree, num_features: usize) -> Result<(), String> {
        let n = tree.left_children.len();
        if n == 0 {
            return Err("has no nodes".into());
        }
        for (name, len) in [
            ("right_children", tree.right_children.len()),
            ("split_indices", tree.split_indices.len()),
            ("split_conditions", tree.split_conditions.len()),
            ("default_left", tree.default_left.len()),
        ] {
            if len != n {
                return Err(format!("{name} has {len} entries, left_children {n}"));
            }
        }
        let offset = self.nodes.len() as u32;
        // Categorical splits: node → (start, length) into `categories`.
        let mut node_categories = std::collections::HashMap::new();
        for (k, node) in tree.categories_nodes.iter().enumerate() {
            let (Some(&start), Some(&size)) = (
                tree.categories_segments.get(k),
                tree.categories_sizes.get(k),
            ) else {
                return Err(
                    "categories_segments and categories_sizes do not match categories_nodes".into(),
                );
            };
            let (start, size) = (start as usize, size as usize);
            let codes = tree
                .categories
                .get(start..start + size)
                .ok_or("categories_segments points outside categories")?;
            let first = self.categories.len() as u32;
            let mut sorted: Vec<f32> = codes.iter().map(|&c| c as f32).collect();
            sorted.sort_by(f32::total_cmp);
            self.categories.extend(sorted);
            node_categories.insert(*node as usize, (first, size as u32));
        }
        for i in 0..n {
            let (left, right) = (tree.left_children[i], tree.right_children[i]);
            let leaf = left == -1;
            let child = |c: i64| -> Result<u32, String> {
                if c <= i as i64 || c as usize >= n {
                    return Err(format!(
                        "node {i} has child {c} outside the tree (or before the node)"
                    ));
                }
                Ok(offset + c as u32)
            };
            let feature = tree.split_indices[i];
            if !leaf && (feature < 0 || feature as usize >= num_features.max(1)) {
                return Err(format!(
                    "node {i} splits on feature {feature}, the model has {num_features}"
                ));
            }
            let categorical = tree.split_type.get(i).copied().unwrap_or(0) == 1;
            let categories = if categorical && !leaf {
                Some(
                    *node_categories
                        .get(&i)
                        .ok_or_else(|| format!("categorical node {i} has no categories"))?,
                )
            } else {
                None
            };
            self.nodes.push(Node {
                left: if leaf { LEAF } else { child(left)? },
                right: if leaf { LEAF } else { child(right)? },
                feature: feature.max(0) as u32,
                value: tree.split_conditions[i] as f32,
                default_left: tree.default_left[i] != 0,
                categories,
                cover: tree.sum_hessian.get(i).copied().unwrap_or(0.0) as f32,
            });
        }
        // A tree, not a graph, and not so deep that the recursions below (and TreeSHAP) could
        // exhaust the stack: each node has at most one parent, and depth is bounded.
        crate::check_tree_shape(n, |i| {
            let node = &self.nodes[offset as usize + i];
            (node.left != LEAF).then(|| {
                (
                    (node.left - offset) as usize,
                    (node.right - offset) as usize,
                )
            })
        })?;
        self.roots.push(offset);
        let (mean, depth) = self.node_mean_and_depth(offset);
        self.tree_means.push(mean);
        self.max_depth = self.max_depth.max(depth);
        Ok(())
    }

    /// XGBoost's `FillNodeMeanValues` (in `f32`), and the subtree's depth.
    fn node_mean_and_depth(&self, index: u32) -> (f32, usize) {
        let node = &self.nodes[index as usize];
        if node.left == LEAF {
            return (node.value, 0);
        }
        let (left_mean, left_depth) = self.node_mean_and_depth(node.left);
        let (right_mean, right_depth) = self.node_mean_and_depth(node.right);
        let mut mean = left_mean * self.nodes[node.left as usize].cover;
        mean += right_mean * self.nodes[node.right as usize].cover;
        mean /= node.cover;
        (mean, 1 + left_depth.max(right_depth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_score_in_every_stored_form() {
        for (text, value) in [
            ("5E-1", vec![0.5f32]),
            ("[8.7787354E-1]", vec![0.877_873_54]),
            ("[3E-1]", vec![0.3]),
            (" 0.25 ", vec![0.25]),
            ("[2.5E-1,5E-1]", vec![0.25, 0.5]),
        ] {
            assert_eq!(parse_base_score(text), Some(value), "{text}");
        }
        assert_eq!(parse_base_score("[]"), None);
    }
}
