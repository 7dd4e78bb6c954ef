//! LightGBM text models (`model.txt`): loading into flat node arrays and scoring exactly as LightGBM does.
//!
//! The arithmetic mirrors LightGBM's `Tree::Predict`: inputs and thresholds are `f64`, a numeric
//! split goes left when `x <= threshold`, the missing type in `decision_type` decides where NaN
//! (or zero) goes — with no missing type, NaN is scored as 0.0 — categorical splits test a
//! bitset (NaN and negative categories go right), and leaf values are summed in `f64` in tree
//! order.

use crate::complete::{
    count_passing, encode_slot, sort_thresholds, BinSplit, CompleteForest, SlotTable, SourceNode,
};
use crate::{ModelError, Objective};
use std::collections::HashMap;

const CATEGORICAL_MASK: u8 = 1;
const DEFAULT_LEFT_MASK: u8 = 2;
/// LightGBM's `kZeroThreshold`: |x| at most this counts as zero.
const ZERO_THRESHOLD: f64 = 1e-35;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum MissingType {
    None,
    Zero,
    NaN,
}

#[derive(Debug, Clone, Copy)]
struct Node {
    /// Child index: `>= 0` an internal node of the same tree, `< 0` the leaf `!child`.
    left: i32,
    right: i32,
    feature: u32,
    threshold: f64,
    decision_type: u8,
}

#[derive(Debug, Clone)]
struct Tree {
    nodes: Vec<Node>,
    leaf_values: Vec<f64>,
    /// Training rows reaching each internal node and leaf (LightGBM's cover for TreeSHAP).
    internal_counts: Vec<f64>,
    leaf_counts: Vec<f64>,
    depth: usize,
    /// Categorical splits: `cat_boundaries[k]..cat_boundaries[k + 1]` in `cat_threshold`.
    cat_boundaries: Vec<usize>,
    cat_threshold: Vec<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct LgbModel {
    trees: Vec<Tree>,
    /// The same trees padded to complete binary trees, for fast scoring (numeric splits only,
    /// depth at most `complete::MAX_DEPTH`).
    complete: Option<(CompleteForest<f64>, Binning)>,
    pub(crate) objective: Objective,
    pub(crate) feature_names: Vec<String>,
    pub(crate) categorical_features: Vec<bool>,
    pub(crate) version: String,
    /// `pandas_categorical`: for each pandas categorical column, its categories in code order.
    pub(crate) pandas_categorical: Option<serde_json::Value>,
}

fn missing_type(decision_type: u8) -> MissingType {
    match (decision_type >> 2) & 3 {
        1 => MissingType::Zero,
        2 => MissingType::NaN,
        _ => MissingType::None,
    }
}

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
        for key in header.keys() {
            match HEADER_KEYS.iter().find(|(known, _)| known == key) {
                Some((_, HeaderKey::Unsupported(why))) => {
                    return Err(invalid(format!("header `{key}`: {why}")))
                }
                Some(_) => {}
                None => {
                    return Err(invalid(format!(
                        "header `{key}` is not one Credence reads; it may change what the model predicts, so the model is refused rather than scored differently from LightGBM"
                    )))
                }
            }
        }
        let number =
            |key: &str| -> Option<usize> { header.get(key).and_then(|v| v.trim().parse().ok()) };
        if number("num_class").unwrap_or(1) > 1 || number("num_tree_per_iteration").unwrap_or(1) > 1
        {
            return Err(invalid("multi-class models are not supported yet".into()));
        }
        let objective_text = header.get("objective").copied().unwrap_or("").trim();
        let mut objective_parts = objective_text.split_whitespace();
        let objective_name = objective_parts.next();
        let parameters: Vec<&str> = objective_parts.collect();
        // Objective parameters change the output (`sqrt` squares a regression back): only
        // the ones read are allowed.
        let unread = |allowed: &[&str]| {
            parameters
                .iter()
                .find(|p| !allowed.iter().any(|a| p.split(':').next() == Some(a)))
                .map(|p| {
                    invalid(format!(
                        "objective `{objective_text}`: parameter `{p}` is not supported (it changes the prediction); the model is refused rather than scored differently from LightGBM"
                    ))
                })
        };
        let objective = match objective_name {
            Some("binary") => {
                if let Some(error) = unread(&["sigmoid"]) {
                    return Err(error);
                }
                let sigmoid = parameters
                    .iter()
                    .find_map(|p| p.strip_prefix("sigmoid:"))
                    .map(|s| {
                        s.parse::<f64>().map_err(|_| {
                            invalid(format!("objective {objective_text}: bad sigmoid"))
                        })
                    })
                    .transpose()?
                    .unwrap_or(1.0);
                Objective::LightGbmBinary { sigmoid }
            }
            Some("regression") => {
                if let Some(error) = unread(&[]) {
                    return Err(error);
                }
                Objective::LightGbmRegression
            }
            Some(other) if other.starts_with("multiclass") => {
                return Err(invalid(format!(
                    "objective {other}: multi-class models are not supported yet"
                )))
            }
            other => {
                return Err(invalid(format!(
                    "objective {} is not supported; supported: binary, regression",
                    other.unwrap_or("(none)")
                )))
            }
        };
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
        let complete = complete_forest(&trees, feature_names.len());
        Ok(LgbModel {
            trees,
            complete,
            objective,
            feature_names,
            categorical_features,
            version: header
                .get("version")
                .map_or("unknown".into(), |v| v.trim().to_string()),
            pandas_categorical,
        })
    }

    pub(crate) fn tree_count(&self) -> usize {
        self.trees.len()
    }

    /// SHAP contributions as LightGBM's `pred_contrib` computes them (in `f64`, accumulated over
    /// trees); the bias (last slot) is the sum of the trees' expected values.
    pub(crate) fn contributions(&self, features: &[f64], trees: usize, out: &mut [f64]) {
        let n = self.feature_names.len();
        out.iter_mut().for_each(|c| *c = 0.0);
        for tree in &self.trees[..trees.min(self.trees.len())] {
            out[n] += tree.expected_value();
            if !tree.nodes.is_empty() {
                crate::shap::tree_shap(tree, features, &mut out[..n], tree.depth);
            }
        }
    }

    pub(crate) fn uses_complete_trees(&self) -> bool {
        self.complete.is_some()
    }

    /// The raw score: leaf values of the first `trees` trees summed in `f64`.
    pub(crate) fn margin(&self, features: &[f64], trees: usize) -> f64 {
        if let Some((complete, binning)) = &self.complete {
            let binned = complete.sum_binned(trees, 0.0, |slots| {
                binning.slots_into(features, slots);
            });
            if let Some(sum) = binned {
                return sum;
            }
        }
        let mut sum = 0.0;
        for tree in &self.trees[..trees.min(self.trees.len())] {
            sum += tree.leaf_value(features);
        }
        sum
    }
}

/// What Credence does with a LightGBM header line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeaderKey {
    /// Read: it shapes the prediction, and Credence follows it.
    Used,
    /// Written by LightGBM but without effect on a prediction.
    Ignored,
    /// It changes the prediction in a way Credence does not reproduce yet: refused.
    Unsupported(&'static str),
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
    (
        "average_output",
        HeaderKey::Unsupported(
            "a random forest (boosting=rf) averages its trees; Credence does not score it yet, and would otherwise add them",
        ),
    ),
];

impl Tree {
    fn parse(block: &HashMap<&str, &str>, num_features: usize) -> Result<Tree, String> {
        let get = |key: &str| {
            block
                .get(key)
                .copied()
                .ok_or_else(|| format!("missing `{key}`"))
        };
        let num_leaves: usize = get("num_leaves")?
            .trim()
            .parse()
            .map_err(|_| "num_leaves is not a number")?;
        if block.get("is_linear").is_some_and(|v| v.trim() != "0") {
            return Err("linear trees are not supported".into());
        }
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
        };
        tree.depth = tree.depth_below(0);
        Ok(tree)
    }

    fn depth_below(&self, node: i32) -> usize {
        if node < 0 {
            return 0;
        }
        let n = &self.nodes[node as usize];
        1 + self.depth_below(n.left).max(self.depth_below(n.right))
    }

    /// LightGBM's `ExpectedValue`: leaf values weighted by their share of training rows.
    fn expected_value(&self) -> f64 {
        if self.nodes.is_empty() {
            return self.leaf_values[0];
        }
        let total = self.internal_counts[0];
        let mut value = 0.0;
        for (count, leaf) in self.leaf_counts.iter().zip(&self.leaf_values) {
            value += (count / total) * leaf;
        }
        value
    }

    /// The child a row takes from an internal node.
    #[inline]
    fn next(&self, node: &Node, x: f64) -> i32 {
        if node.decision_type & CATEGORICAL_MASK != 0 {
            self.categorical_decision(node, x)
        } else {
            numerical_decision(node, x)
        }
    }

    #[inline]
    fn leaf_value(&self, features: &[f64]) -> f64 {
        if self.nodes.is_empty() {
            return self.leaf_values[0];
        }
        let mut index = 0i32;
        while index >= 0 {
            let node = &self.nodes[index as usize];
            let x = features
                .get(node.feature as usize)
                .copied()
                .unwrap_or(f64::NAN);
            index = self.next(node, x);
        }
        self.leaf_values[(!index) as usize]
    }

    fn categorical_decision(&self, node: &Node, x: f64) -> i32 {
        if x.is_nan() {
            return node.right;
        }
        let code = x as i32;
        if code < 0 {
            return node.right;
        }
        let k = node.threshold as usize;
        let words = &self.cat_threshold[self.cat_boundaries[k]..self.cat_boundaries[k + 1]];
        let (word, bit) = (code as usize / 32, code as usize % 32);
        if words.get(word).is_some_and(|w| (w >> bit) & 1 == 1) {
            node.left
        } else {
            node.right
        }
    }
}

/// How a row is binned for the complete trees: each slot is a feature read under one
/// missing-value rule and direction.
#[derive(Debug, Clone)]
struct Binning {
    /// Sorted distinct split thresholds of each feature.
    thresholds: Vec<Vec<f64>>,
    /// Per slot: the feature, its missing type and whether missing values go left.
    slots: Vec<SlotKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SlotKey {
    feature: u32,
    missing: MissingType,
    default_left: bool,
}

impl Binning {
    /// Each slot's value for the row, by LightGBM's rule (`numerical_decision`): NaN is read as
    /// 0.0 unless the missing type is NaN; a missing value is NaN (type NaN) or within
    /// `±ZERO_THRESHOLD` (type Zero); otherwise `#{t < x}`, so that `x <= t_j` exactly when
    /// that count is at most `j`.
    #[inline]
    fn slots_into(&self, features: &[f64], slots: &mut [u16]) {
        for (slot, key) in slots.iter_mut().zip(&self.slots) {
            let mut x = features
                .get(key.feature as usize)
                .copied()
                .unwrap_or(f64::NAN);
            if x.is_nan() && key.missing != MissingType::NaN {
                x = 0.0;
            }
            let is_missing = match key.missing {
                MissingType::Zero => (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&x),
                MissingType::NaN => x.is_nan(),
                MissingType::None => false,
            };
            let bin = (!is_missing)
                .then(|| count_passing(&self.thresholds[key.feature as usize], |t| t < x));
            *slot = encode_slot(bin, key.default_left);
        }
    }
}

fn complete_forest(trees: &[Tree], num_features: usize) -> Option<(CompleteForest<f64>, Binning)> {
    let depth = trees.iter().map(|t| t.depth).max().unwrap_or(0);
    let categorical = trees.iter().any(|t| {
        t.nodes
            .iter()
            .any(|n| n.decision_type & CATEGORICAL_MASK != 0)
    });
    if depth > crate::complete::MAX_DEPTH || categorical {
        return None;
    }
    let mut thresholds = vec![Vec::new(); num_features];
    for node in trees.iter().flat_map(|t| &t.nodes) {
        thresholds
            .get_mut(node.feature as usize)?
            .push(node.threshold);
    }
    sort_thresholds(&mut thresholds, f64::total_cmp)?;
    let mut slot_table = SlotTable::new();
    let mut forest = CompleteForest::new(depth);
    for tree in trees {
        // Node ids: `>= 0` internal, `< 0` the leaf `!id`; a one-leaf tree is just its leaf.
        let root = if tree.nodes.is_empty() { -1 } else { 0 };
        forest.push_tree(root, |id: i32| {
            if id < 0 {
                return SourceNode::Leaf(tree.leaf_values[(!id) as usize]);
            }
            let node = &tree.nodes[id as usize];
            let missing = missing_type(node.decision_type);
            // With missing type None nothing is missing, so the direction does not matter.
            let default_left =
                missing != MissingType::None && node.decision_type & DEFAULT_LEFT_MASK != 0;
            let list = &thresholds[node.feature as usize];
            let threshold_index = list.partition_point(|t| *t < node.threshold) as u16;
            let slot = slot_table.slot(SlotKey {
                feature: node.feature,
                missing,
                default_left,
            });
            let split = BinSplit::new(slot, threshold_index, default_left);
            SourceNode::Split(split, node.left, node.right)
        })?;
    }
    let binning = Binning {
        thresholds,
        slots: slot_table.into_keys()?,
    };
    Some((forest, binning))
}

impl crate::shap::ShapTree<f64> for Tree {
    type Node = i32;

    fn root(&self) -> i32 {
        0
    }

    fn leaf_value(&self, node: i32) -> Option<f64> {
        (node < 0).then(|| self.leaf_values[(!node) as usize])
    }

    fn split_feature(&self, node: i32) -> usize {
        self.nodes[node as usize].feature as usize
    }

    fn hot_and_cold(&self, node: i32, features: &[f64]) -> (i32, i32) {
        let n = &self.nodes[node as usize];
        let x = features
            .get(n.feature as usize)
            .copied()
            .unwrap_or(f64::NAN);
        let hot = self.next(n, x);
        (hot, if hot == n.left { n.right } else { n.left })
    }

    fn cover(&self, node: i32) -> f64 {
        if node >= 0 {
            self.internal_counts[node as usize]
        } else {
            self.leaf_counts[(!node) as usize]
        }
    }
}

#[inline]
fn numerical_decision(node: &Node, x: f64) -> i32 {
    let missing = missing_type(node.decision_type);
    let x = if x.is_nan() && missing != MissingType::NaN {
        0.0
    } else {
        x
    };
    let is_missing = match missing {
        MissingType::Zero => (-ZERO_THRESHOLD..=ZERO_THRESHOLD).contains(&x),
        MissingType::NaN => x.is_nan(),
        MissingType::None => false,
    };
    if is_missing {
        return if node.decision_type & DEFAULT_LEFT_MASK != 0 {
            node.left
        } else {
            node.right
        };
    }
    if x <= node.threshold {
        node.left
    } else {
        node.right
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: [&str; 3] = [
        include_str!("../tests/fixtures/lgb_numeric_shallow/model.txt"),
        include_str!("../tests/fixtures/lgb_categorical/model.txt"),
        include_str!("../tests/fixtures/lgb_zero_as_missing/model.txt"),
    ];

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
                text.replacen(objective, &format!("{objective}\naverage_output"), 1),
                "header `average_output`: a random forest",
            ),
            (
                text.replacen(objective, "objective=regression sqrt", 1),
                "parameter `sqrt` is not supported",
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
