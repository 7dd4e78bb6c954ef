//! XGBoost models (`save_model("*.json")` or `"*.ubj"`): loading into flat node arrays and scoring exactly as XGBoost does.
//!
//! Written by hand rather than bound to libxgboost: scoring must be bit-exact and allocation
//! free, and the C library is neither small nor safe to link into a decision service. The
//! arithmetic mirrors XGBoost's CPU predictor: inputs are cast to `f32`, a numeric split goes
//! left when `x < threshold`, a missing value (NaN) follows `default_left`, leaf values are summed
//! in `f32` in tree order starting from the base margin (one sum per class for a multi-class
//! model, each tree adding to the class `tree_info` gives it), a DART tree's leaf is first
//! multiplied by its `weight_drop`, and the output transforms are XGBoost's own, in `f32`.
//!
//! Every field of the file is known: a key the loader has not been taught (a field a later
//! XGBoost adds, an objective parameter, a booster) refuses the model rather than risk scoring
//! it differently from XGBoost.

use crate::binned::{
    categorical_split, count_passing, encode_slot, sort_thresholds, BinSplit, BinnedForest,
    CategoricalSplits, Category, CategoryBlock, SlotTable, SourceNode,
};
use crate::{ModelError, Objective, Prediction, ScoringPath};
use serde::Deserialize;
use std::collections::BTreeMap;

/// XGBoost's bound on category codes (categories are stored as `f32`, exact up to 2^24).
const MAX_CATEGORY: f32 = 16_777_216.0;

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Index of the left child in `XgbModel::nodes`, or `LEAF`.
    left: u32,
    right: u32,
    feature: u32,
    /// Threshold of a numeric split, or the leaf value.
    value: f32,
    default_left: bool,
    /// For a categorical split: the range of `categories` holding the codes that go right.
    categories: Option<(u32, u32)>,
    /// The training hessian sum reaching the node (XGBoost's "cover"), for TreeSHAP.
    cover: f32,
}

const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub(crate) struct XgbModel {
    nodes: Vec<Node>,
    /// Index of each tree's root in `nodes`.
    roots: Vec<u32>,
    /// The output (class) each tree adds to.
    tree_groups: Vec<u16>,
    /// DART's `weight_drop`: each tree's leaf values are multiplied by its weight.
    tree_weights: Option<Vec<f32>>,
    /// Sorted category codes of every categorical split, concatenated.
    categories: Vec<f32>,
    /// The margin each output starts from: `base_score` through the objective's inverse link.
    base_margins: Vec<f32>,
    /// Each tree's expected value (XGBoost's node mean of the root), for TreeSHAP's bias.
    tree_means: Vec<f32>,
    /// The deepest tree's depth.
    max_depth: usize,
    /// Trees scored by default: up to `best_iteration` when the model was saved after early stopping.
    default_tree_limit: usize,
    /// The same trees over binned inputs, for fast scoring.
    fast: Option<(BinnedForest<f32>, Binning)>,
    pub(crate) objective: Objective,
    pub(crate) feature_names: Vec<String>,
    pub(crate) feature_types: Vec<String>,
    pub(crate) version: String,
}

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

    /// The child of an internal node that a row takes.
    #[inline]
    fn next(&self, node: &Node, features: &[f64]) -> u32 {
        let x = features
            .get(node.feature as usize)
            .copied()
            .unwrap_or(f64::NAN) as f32;
        let go_left = if let Some((start, len)) = node.categories {
            let listed = &self.categories[start as usize..(start + len) as usize];
            categorical_goes_left(x, node.default_left, listed)
        } else if x.is_nan() {
            node.default_left
        } else {
            x < node.value
        };
        if go_left {
            node.left
        } else {
            node.right
        }
    }

    /// The leaf a row reaches in the tree rooted at `root`.
    #[inline]
    fn leaf(&self, root: u32, features: &[f64]) -> &Node {
        let mut node = &self.nodes[root as usize];
        while node.left != LEAF {
            node = &self.nodes[self.next(node, features) as usize];
        }
        node
    }

    pub(crate) fn tree_count(&self) -> usize {
        self.roots.len()
    }

    pub(crate) fn default_tree_limit(&self) -> usize {
        self.default_tree_limit
    }

    pub(crate) fn scoring_path(&self) -> ScoringPath {
        self.fast
            .as_ref()
            .map_or(ScoringPath::NodeByNode, |(forest, _)| forest.path())
    }

    pub(crate) fn with_scoring_path(&self, path: ScoringPath) -> Option<XgbModel> {
        let fast = match path {
            ScoringPath::NodeByNode => None,
            path => Some(self.binned(path)?),
        };
        Some(XgbModel {
            fast,
            ..self.clone()
        })
    }

    /// A leaf's value as the ensemble adds it: times the tree's DART weight, in `f32`.
    #[inline]
    fn weighted(&self, tree: usize, value: f32) -> f32 {
        match &self.tree_weights {
            Some(weights) => value * weights[tree],
            None => value,
        }
    }

    /// The margins (one per output), summing the first `trees` trees in `f32` as XGBoost does.
    pub(crate) fn margins(&self, features: &[f64], trees: usize, out: &mut [f32]) {
        out.copy_from_slice(&self.base_margins);
        let trees = trees.min(self.roots.len());
        if let Some((forest, binning)) = &self.fast {
            let bin = |slots: &mut [u16]| binning.slots_into(features, slots);
            if forest.add_leaves(trees, out, &self.tree_groups, bin) {
                return;
            }
            out.copy_from_slice(&self.base_margins);
        }
        for (t, &root) in self.roots[..trees].iter().enumerate() {
            let value = self.weighted(t, self.leaf(root, features).value);
            out[usize::from(self.tree_groups[t])] += value;
        }
    }

    /// The prediction: margins and what XGBoost's `predict()` makes of them.
    pub(crate) fn predict(&self, features: &[f64], trees: usize) -> Prediction {
        let groups = self.base_margins.len();
        if groups == 1 {
            let mut margin = [0f32];
            self.margins(features, trees, &mut margin);
            let m = margin[0];
            let output = match self.objective {
                Objective::BinaryLogistic | Objective::RegLogistic => sigmoid(m),
                Objective::CountPoisson | Objective::Gamma | Objective::Tweedie => m.exp(),
                Objective::BinaryHinge => {
                    if m > 0.0 {
                        1.0
                    } else {
                        0.0
                    }
                }
                _ => m,
            };
            return Prediction::Single {
                margin: f64::from(m),
                output: f64::from(output),
            };
        }
        let mut margins = vec![0f32; groups];
        self.margins(features, trees, &mut margins);
        let mut probabilities = margins.clone();
        softmax(&mut probabilities);
        Prediction::Classes {
            margins: margins.iter().map(|&m| f64::from(m)).collect(),
            probabilities: probabilities.iter().map(|&p| f64::from(p)).collect(),
            predicted_class: first_max(&margins),
        }
    }

    /// SHAP contributions of the first `trees` trees, as XGBoost's `pred_contribs` computes
    /// them: per tree in `f32` (times its DART weight), then summed; the bias (last slot of
    /// each output's block) includes the base margin.
    pub(crate) fn contributions(&self, features: &[f64], trees: usize, out: &mut [f64]) {
        let n = self.feature_names.len();
        let groups = self.base_margins.len();
        let mut total = vec![0f32; groups * (n + 1)];
        let mut this_tree = vec![0f32; n + 1];
        for (t, &root) in self.roots[..trees.min(self.roots.len())].iter().enumerate() {
            this_tree.iter_mut().for_each(|c| *c = 0.0);
            this_tree[n] += self.tree_means[t];
            let view = TreeView { model: self, root };
            crate::shap::tree_shap(&view, features, &mut this_tree[..n], self.max_depth);
            let group = usize::from(self.tree_groups[t]);
            let block = &mut total[group * (n + 1)..(group + 1) * (n + 1)];
            for (sum, c) in block.iter_mut().zip(&this_tree) {
                *sum += self.weighted(t, *c);
            }
        }
        for (group, base) in self.base_margins.iter().enumerate() {
            total[group * (n + 1) + n] += base;
        }
        for (o, c) in out.iter_mut().zip(&total) {
            *o = f64::from(*c);
        }
    }
}

/// Whether a categorical split sends `x` left: XGBoost sends a missing value its default way,
/// an invalid or unlisted category left, a listed one right.
#[inline]
fn categorical_goes_left(x: f32, default_left: bool, listed: &[f32]) -> bool {
    if x.is_nan() {
        default_left
    } else if !(0.0..MAX_CATEGORY).contains(&x) {
        true
    } else {
        let code = (x as i32) as f32;
        listed.binary_search_by(|c| c.total_cmp(&code)).is_err()
    }
}

/// A numeric slot of the binned form: a feature read with one missing-value direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SlotKey {
    feature: u32,
    default_left: bool,
}

/// A categorical split as a slot: its missing-value direction and the codes it sends right.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CategoricalKey {
    default_left: bool,
    listed: Vec<u32>,
}

/// Above this code, categorical splits are not tabled (and the model is walked node by node).
const MAX_TABLED_CATEGORY: f32 = 65_536.0;

/// How a row is binned.
#[derive(Debug, Clone)]
struct Binning {
    /// Sorted distinct split thresholds of each feature.
    thresholds: Vec<Vec<f32>>,
    /// Numeric slots, numbered from `first_numeric`.
    numeric: Vec<SlotKey>,
    first_numeric: usize,
    /// Categorical splits, one block per feature, in the slots below `first_numeric`.
    blocks: Vec<CategoryBlock>,
}

impl Binning {
    /// Each slot's value for the row: for a numeric slot `#{t ≤ x}` over the feature's
    /// thresholds (`x < t_j` exactly when that count is at most `j`), compared in `f32` as
    /// XGBoost compares; NaN is missing. A categorical split's slot holds its direction.
    #[inline]
    fn slots_into(&self, features: &[f64], slots: &mut [u16]) {
        let x_of = |feature: u32| {
            features
                .get(feature as usize)
                .map_or(f32::NAN, |x| *x as f32)
        };
        for block in &self.blocks {
            let x = x_of(block.feature);
            // As `categorical_goes_left`: missing, invalid (outside), or a code.
            let category = if x.is_nan() {
                Category::Missing
            } else if !(0.0..MAX_CATEGORY).contains(&x) {
                Category::Outside
            } else {
                Category::Code(x as i32 as usize)
            };
            block.fill(category, slots);
        }
        for (slot, key) in slots[self.first_numeric..].iter_mut().zip(&self.numeric) {
            let x = x_of(key.feature);
            let thresholds = &self.thresholds[key.feature as usize];
            let bin = (!x.is_nan()).then(|| count_passing(thresholds, |t| t <= x));
            *slot = encode_slot(bin, key.default_left);
        }
    }
}

impl XgbModel {
    /// The binned form taking `path`; `None` when the model cannot take it (complete trees
    /// deeper than 8, too many slots or thresholds for `u16`).
    fn binned(&self, path: ScoringPath) -> Option<(BinnedForest<f32>, Binning)> {
        let mut forest = BinnedForest::new(path, self.max_depth)?;
        let mut thresholds = vec![Vec::new(); self.feature_names.len()];
        for node in self
            .nodes
            .iter()
            .filter(|n| n.left != LEAF && n.categories.is_none())
        {
            thresholds.get_mut(node.feature as usize)?.push(node.value);
        }
        sort_thresholds(&mut thresholds, f32::total_cmp)?;
        // Categorical splits first: slots from 0, feature by feature.
        let mut categorical = CategoricalSplits::new();
        let key_of = |node: &Node, (start, len): (u32, u32)| -> Option<CategoricalKey> {
            let listed = &self.categories[start as usize..(start + len) as usize];
            if listed
                .iter()
                .any(|c| !(0.0..MAX_TABLED_CATEGORY).contains(c))
            {
                return None;
            }
            Some(CategoricalKey {
                default_left: node.default_left,
                listed: listed.iter().map(|&c| c as u32).collect(),
            })
        };
        for node in &self.nodes {
            if let Some(range) = node.categories {
                categorical.add(node.feature, key_of(node, range)?);
            }
        }
        let (categorical_slots, features) = categorical.number();
        let mut blocks = Vec::with_capacity(features.len());
        let mut first_numeric = 0;
        for (feature, first, keys) in features {
            let codes = keys
                .iter()
                .flat_map(|k| k.listed.iter())
                .max()
                .map_or(0, |&c| c as usize + 1);
            blocks.push(CategoryBlock::new(
                feature,
                first,
                keys.len(),
                codes,
                |split, category| match category {
                    Category::Missing => !keys[split].default_left,
                    Category::Outside => false,
                    Category::Code(code) => {
                        keys[split].listed.binary_search(&(code as u32)).is_ok()
                    }
                },
            )?);
            first_numeric = first + keys.len();
        }
        if first_numeric > usize::from(u16::MAX) {
            return None;
        }
        let mut slot_table = SlotTable::starting_at(first_numeric);
        for (t, &root) in self.roots.iter().enumerate() {
            forest.push_tree(root, |index: u32| {
                let node = &self.nodes[index as usize];
                if node.left == LEAF {
                    return SourceNode::Leaf(self.weighted(t, node.value));
                }
                if let Some(range) = node.categories {
                    let slot = key_of(node, range)
                        .map_or(0, |key| categorical_slots[&(node.feature, key)]);
                    return SourceNode::Split(categorical_split(slot), node.left, node.right);
                }
                let list = &thresholds[node.feature as usize];
                let threshold_index = list.partition_point(|t| *t < node.value) as u16;
                let slot = slot_table.slot(SlotKey {
                    feature: node.feature,
                    default_left: node.default_left,
                });
                let split = BinSplit::new(slot, threshold_index, node.default_left);
                SourceNode::Split(split, node.left, node.right)
            })?;
        }
        let binning = Binning {
            thresholds,
            numeric: slot_table.into_keys()?,
            first_numeric,
            blocks,
        };
        Some((forest.finish(), binning))
    }
}

/// XGBoost's `common::Softmax`: the maximum by `fmaxf`, exponentials in `f32` summed in `f64`,
/// each divided by the sum rounded to `f32`.
fn softmax(values: &mut [f32]) {
    let max = values.iter().skip(1).fold(values[0], |m, &v| v.max(m));
    let mut sum = 0f64;
    for v in values.iter_mut() {
        *v = (*v - max).exp();
        sum += f64::from(*v);
    }
    for v in values.iter_mut() {
        *v /= sum as f32;
    }
}

/// The index of the first largest value (`std::max_element`).
fn first_max(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

struct TreeView<'m> {
    model: &'m XgbModel,
    root: u32,
}

impl crate::shap::ShapTree<f32> for TreeView<'_> {
    type Node = u32;

    fn root(&self) -> u32 {
        self.root
    }

    fn leaf_value(&self, node: u32) -> Option<f32> {
        let node = &self.model.nodes[node as usize];
        (node.left == LEAF).then_some(node.value)
    }

    fn split_feature(&self, node: u32) -> usize {
        self.model.nodes[node as usize].feature as usize
    }

    fn hot_and_cold(&self, node: u32, features: &[f64]) -> (u32, u32) {
        let n = &self.model.nodes[node as usize];
        let hot = self.model.next(n, features);
        (hot, if hot == n.left { n.right } else { n.left })
    }

    fn cover(&self, node: u32) -> f32 {
        self.model.nodes[node as usize].cover
    }
}

/// XGBoost's sigmoid (`common::Sigmoid`), in `f32`.
pub(crate) fn sigmoid(x: f32) -> f32 {
    const EPSILON: f32 = 1e-16;
    let x = (-x).min(88.7);
    let denominator = x.exp() + 1.0 + EPSILON;
    1.0 / denominator
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

    #[test]
    fn softmax_and_argmax_as_xgboost() {
        let mut p = [1.0f32, 2.0, 2.0, -1.0];
        softmax(&mut p);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(first_max(&[1.0, 2.0, 2.0, -1.0]), 1);
    }
}
