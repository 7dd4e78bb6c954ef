//! XGBoost JSON models (`save_model("*.json")`): loading into flat node arrays and scoring exactly as XGBoost does.
//!
//! Written by hand rather than bound to libxgboost: scoring must be bit-exact and allocation
//! free, and the C library is neither small nor safe to link into a decision service. The
//! arithmetic mirrors XGBoost's CPU predictor: inputs are cast to `f32`, a numeric split goes
//! left when `x < threshold`, a missing value (NaN) follows `default_left`, leaf values are summed
//! in `f32` in tree order starting from the base margin, and the sigmoid is XGBoost's own.

use crate::complete::{
    count_passing, encode_slot, sort_thresholds, BinSplit, CompleteForest, SlotTable, SourceNode,
};
use crate::{ModelError, Objective};
use serde::Deserialize;

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
    /// Sorted category codes of every categorical split, concatenated.
    categories: Vec<f32>,
    base_margin: f32,
    /// Each tree's expected value (XGBoost's node mean of the root), for TreeSHAP's bias.
    tree_means: Vec<f32>,
    /// The deepest tree's depth.
    max_depth: usize,
    /// Trees scored by default: up to `best_iteration` when the model was saved after early stopping.
    default_tree_limit: usize,
    /// The same trees padded to complete binary trees, for fast scoring (numeric splits only,
    /// depth at most `complete::MAX_DEPTH`).
    complete: Option<(CompleteForest<f32>, Binning)>,
    pub(crate) objective: Objective,
    pub(crate) feature_names: Vec<String>,
    pub(crate) feature_types: Vec<String>,
    pub(crate) version: String,
}

#[derive(Deserialize)]
struct RawModel {
    learner: RawLearner,
    #[serde(default)]
    version: Vec<u32>,
}

#[derive(Deserialize)]
struct RawLearner {
    #[serde(default)]
    attributes: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    feature_names: Vec<String>,
    #[serde(default)]
    feature_types: Vec<String>,
    gradient_booster: RawBooster,
    learner_model_param: RawLearnerParam,
    objective: RawObjective,
}

#[derive(Deserialize)]
struct RawLearnerParam {
    base_score: String,
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
}

#[derive(Deserialize)]
struct RawBooster {
    name: String,
    model: Option<RawGbtree>,
}

#[derive(Deserialize)]
struct RawGbtree {
    gbtree_model_param: RawGbtreeParam,
    trees: Vec<RawTree>,
}

#[derive(Deserialize)]
struct RawGbtreeParam {
    #[serde(default)]
    num_parallel_tree: Option<String>,
}

#[derive(Deserialize)]
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
}

fn parse_count(text: &Option<String>) -> usize {
    text.as_deref()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// `base_score` as XGBoost stores it: `"5E-1"`, or `"[8.7787354E-1]"` since 2.1.
fn parse_base_score(text: &str) -> Option<f32> {
    let inner = text.trim().trim_start_matches('[').trim_end_matches(']');
    let first = inner.split(',').next()?.trim();
    first.parse::<f32>().ok()
}

impl XgbModel {
    pub(crate) fn load(file: &str, bytes: &[u8]) -> Result<XgbModel, ModelError> {
        let invalid = |problem: String| ModelError::Invalid {
            file: file.to_string(),
            problem,
        };
        let raw: RawModel = serde_json::from_slice(bytes)
            .map_err(|e| invalid(format!("not a valid XGBoost JSON model: {e}")))?;
        let learner = raw.learner;
        let objective = match learner.objective.name.as_str() {
            "binary:logistic" => Objective::BinaryLogistic,
            "reg:logistic" => Objective::RegLogistic,
            "binary:logitraw" => Objective::BinaryLogitRaw,
            "reg:squarederror" => Objective::SquaredError,
            "reg:absoluteerror" => Objective::AbsoluteError,
            other if other.starts_with("multi:") => {
                return Err(invalid(format!("objective {other}: multi-class models are not supported yet")))
            }
            other => {
                return Err(invalid(format!(
                    "objective {other} is not supported; supported: binary:logistic, binary:logitraw, reg:logistic, reg:squarederror, reg:absoluteerror"
                )))
            }
        };
        let param = &learner.learner_model_param;
        if parse_count(&param.num_class) > 1 {
            return Err(invalid("multi-class models are not supported yet".into()));
        }
        if parse_count(&param.num_target) > 1 {
            return Err(invalid("multi-target models are not supported yet".into()));
        }
        if learner.gradient_booster.name != "gbtree" {
            return Err(invalid(format!(
                "booster {} is not supported; only gbtree",
                learner.gradient_booster.name
            )));
        }
        let gbtree = learner
            .gradient_booster
            .model
            .ok_or_else(|| invalid("the gbtree booster has no model".into()))?;
        let base_score = parse_base_score(&param.base_score)
            .ok_or_else(|| invalid(format!("base_score {} is not a number", param.base_score)))?;
        // `base_score` is stored as the objective's output; the margin is its inverse link.
        // binary:logitraw outputs margins, so its base_score already is one.
        let base_margin = match objective {
            Objective::BinaryLogistic | Objective::RegLogistic => {
                if !(base_score > 0.0 && base_score < 1.0) {
                    return Err(invalid(format!(
                        "base_score {base_score} must be a probability for a logistic objective"
                    )));
                }
                // XGBoost's ProbToMargin, in f32.
                -(1.0f32 / base_score - 1.0f32).ln()
            }
            // Identity links: the stored base_score is the margin.
            _ => base_score,
        };
        let num_features = parse_count(&param.num_feature).max(learner.feature_names.len());
        let mut model = XgbModel {
            nodes: Vec::new(),
            roots: Vec::with_capacity(gbtree.trees.len()),
            categories: Vec::new(),
            base_margin,
            tree_means: Vec::new(),
            max_depth: 0,
            complete: None,
            default_tree_limit: gbtree.trees.len(),
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
            model
                .add_tree(tree, num_features)
                .map_err(|p| invalid(format!("tree {t}: {p}")))?;
        }
        model.complete = model.complete_forest();
        if let Some(best) = learner.attributes.get("best_iteration") {
            let best: usize = best
                .parse()
                .map_err(|_| invalid(format!("best_iteration {best} is not a number")))?;
            let per_iteration = parse_count(&gbtree.gbtree_model_param.num_parallel_tree).max(1);
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

    pub(crate) fn tree_count(&self) -> usize {
        self.roots.len()
    }

    pub(crate) fn default_tree_limit(&self) -> usize {
        self.default_tree_limit
    }

    /// The child of an internal node that a row takes.
    #[inline]
    fn next(&self, node: &Node, features: &[f64]) -> u32 {
        let x = features
            .get(node.feature as usize)
            .copied()
            .unwrap_or(f64::NAN) as f32;
        let go_left = if x.is_nan() {
            node.default_left
        } else if let Some((start, len)) = node.categories {
            // XGBoost: an invalid or unlisted category goes left; listed categories go right.
            if !(0.0..MAX_CATEGORY).contains(&x) {
                true
            } else {
                let code = (x as i32) as f32;
                let listed = &self.categories[start as usize..(start + len) as usize];
                listed.binary_search_by(|c| c.total_cmp(&code)).is_err()
            }
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

    /// SHAP contributions of the first `trees` trees, as XGBoost's `pred_contribs` computes
    /// them: per tree in `f32`, then summed; the bias (last slot) includes the base margin.
    pub(crate) fn contributions(&self, features: &[f64], trees: usize, out: &mut [f64]) {
        let n = self.feature_names.len();
        let mut total = vec![0f32; n + 1];
        let mut this_tree = vec![0f32; n + 1];
        for (t, &root) in self.roots[..trees.min(self.roots.len())].iter().enumerate() {
            this_tree.iter_mut().for_each(|c| *c = 0.0);
            this_tree[n] += self.tree_means[t];
            let view = TreeView { model: self, root };
            crate::shap::tree_shap(&view, features, &mut this_tree[..n], self.max_depth);
            for (sum, c) in total.iter_mut().zip(&this_tree) {
                *sum += *c;
            }
        }
        total[n] += self.base_margin;
        for (o, c) in out.iter_mut().zip(&total) {
            *o = f64::from(*c);
        }
    }

    pub(crate) fn uses_complete_trees(&self) -> bool {
        self.complete.is_some()
    }

    /// The margin, summing the first `trees` trees in `f32` as XGBoost does.
    pub(crate) fn margin(&self, features: &[f64], trees: usize) -> f32 {
        if let Some((complete, binning)) = &self.complete {
            let binned = complete.sum_binned(trees, self.base_margin, |slots| {
                binning.slots_into(features, slots);
            });
            if let Some(sum) = binned {
                return sum;
            }
        }
        let mut sum = self.base_margin;
        for &root in &self.roots[..trees.min(self.roots.len())] {
            sum += self.leaf(root, features).value;
        }
        sum
    }
}

/// How a row is binned for the complete trees: each slot is a feature read with one
/// missing-value direction.
#[derive(Debug, Clone)]
struct Binning {
    /// Sorted distinct split thresholds of each feature.
    thresholds: Vec<Vec<f32>>,
    /// Per slot: the feature and whether its missing values go left.
    slots: Vec<(u32, bool)>,
}

impl Binning {
    /// Each slot's value for the row: `#{t ≤ x}` over the feature's thresholds (`x < t_j`
    /// exactly when that count is at most `j`), compared in `f32` as XGBoost compares; NaN is
    /// missing.
    #[inline]
    fn slots_into(&self, features: &[f64], slots: &mut [u16]) {
        for (slot, &(feature, default_left)) in slots.iter_mut().zip(&self.slots) {
            let x = features
                .get(feature as usize)
                .map_or(f32::NAN, |x| *x as f32);
            let thresholds = &self.thresholds[feature as usize];
            let bin = (!x.is_nan()).then(|| count_passing(thresholds, |t| t <= x));
            *slot = encode_slot(bin, default_left);
        }
    }
}

impl XgbModel {
    /// The complete-tree form, for models with numeric splits only and no deep trees.
    fn complete_forest(&self) -> Option<(CompleteForest<f32>, Binning)> {
        if self.max_depth > crate::complete::MAX_DEPTH
            || self.nodes.iter().any(|n| n.categories.is_some())
        {
            return None;
        }
        let mut thresholds = vec![Vec::new(); self.feature_names.len()];
        for node in self.nodes.iter().filter(|n| n.left != LEAF) {
            thresholds.get_mut(node.feature as usize)?.push(node.value);
        }
        sort_thresholds(&mut thresholds, f32::total_cmp)?;
        let mut slot_table = SlotTable::new();
        let mut forest = CompleteForest::new(self.max_depth);
        for &root in &self.roots {
            forest.push_tree(root, |index: u32| {
                let node = &self.nodes[index as usize];
                if node.left == LEAF {
                    return SourceNode::Leaf(node.value);
                }
                let list = &thresholds[node.feature as usize];
                let threshold_index = list.partition_point(|t| *t < node.value) as u16;
                let slot = slot_table.slot((node.feature, node.default_left));
                let split = BinSplit::new(slot, threshold_index, node.default_left);
                SourceNode::Split(split, node.left, node.right)
            })?;
        }
        let binning = Binning {
            thresholds,
            slots: slot_table.into_keys()?,
        };
        Some((forest, binning))
    }
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
            ("5E-1", 0.5f32),
            ("[8.7787354E-1]", 0.877_873_54),
            ("[3E-1]", 0.3),
            (" 0.25 ", 0.25),
        ] {
            assert_eq!(parse_base_score(text), Some(value), "{text}");
        }
        assert_eq!(parse_base_score("[]"), None);
    }
}
