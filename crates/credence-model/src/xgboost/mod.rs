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
//!
//! `format.rs` reads the file, `binning.rs` builds the binned form for the fast paths; scoring
//! (margins, transforms, TreeSHAP) is here.

mod binning;
mod format;

use crate::binned::BinnedForest;
use crate::{Objective, Prediction, ScoringPath};
use binning::Binning;

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

impl XgbModel {
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
    fn softmax_and_argmax_as_xgboost() {
        let mut p = [1.0f32, 2.0, 2.0, -1.0];
        softmax(&mut p);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(first_max(&[1.0, 2.0, 2.0, -1.0]), 1);
    }
}
