//! LightGBM text models (`model.txt`): loading into flat node arrays and scoring exactly as LightGBM does.
//!
//! The arithmetic mirrors LightGBM's `Tree::Predict`: inputs and thresholds are `f64`, a numeric
//! split goes left when `x <= threshold`, the missing type in `decision_type` decides where NaN
//! (or zero) goes — with no missing type, NaN is scored as 0.0 — categorical splits test a
//! bitset (NaN and negative categories go right), and leaf values are summed in `f64` in tree
//! order — one sum per class for a multi-class model, tree `i` adding to class
//! `i % num_tree_per_iteration`. A random forest (`average_output`) divides the sums by the
//! iterations before the output transform; a linear tree's leaf is its linear model (its
//! constant alone when a feature it reads is missing). Output transforms are LightGBM's
//! `ConvertOutput`, in `f64`.
//!
//! Every header line and tree field is known: a key the loader has not been taught refuses the
//! model rather than risk scoring it differently from LightGBM.
//!
//! `format.rs` reads the text, `binning.rs` builds the binned form for the fast paths; scoring
//! (margins, transforms, TreeSHAP) is here.

mod binning;
mod format;

use crate::binned::BinnedForest;
use crate::{Objective, Prediction, ScoringPath};
use binning::Binning;

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
    /// A linear tree's leaf models.
    linear: Option<LinearLeaves>,
}

/// The linear models in a linear tree's leaves (`linear_tree=true`).
#[derive(Debug, Clone)]
struct LinearLeaves {
    constants: Vec<f64>,
    /// Per leaf: the features read and their coefficients.
    terms: Vec<Vec<(u32, f64)>>,
}

#[derive(Debug, Clone)]
pub(crate) struct LgbModel {
    trees: Vec<Tree>,
    /// Outputs: the classes of a multi-class model, else 1 (`num_tree_per_iteration`).
    classes: usize,
    /// The class each tree adds to.
    tree_groups: Vec<u16>,
    /// A random forest: the prediction transforms the mean over iterations.
    average_output: bool,
    /// The same trees over binned inputs, for fast scoring (none for linear trees).
    fast: Option<(BinnedForest<f64>, Binning)>,
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

impl LgbModel {
    pub(crate) fn tree_count(&self) -> usize {
        self.trees.len()
    }

    fn max_depth(&self) -> usize {
        self.trees.iter().map(|t| t.depth).max().unwrap_or(0)
    }

    pub(crate) fn scoring_path(&self) -> ScoringPath {
        self.fast
            .as_ref()
            .map_or(ScoringPath::NodeByNode, |(forest, _)| forest.path())
    }

    pub(crate) fn with_scoring_path(&self, path: ScoringPath) -> Option<LgbModel> {
        let fast = match path {
            ScoringPath::NodeByNode => None,
            path => Some(self.binned(path)?),
        };
        Some(LgbModel {
            fast,
            ..self.clone()
        })
    }

    /// Whether TreeSHAP is defined: LightGBM gives none for linear trees.
    pub(crate) fn has_contributions(&self) -> bool {
        self.trees.iter().all(|t| t.linear.is_none())
    }

    /// SHAP contributions as LightGBM's `pred_contrib` computes them (in `f64`, accumulated over
    /// trees), one block of `features + 1` per class; each block's bias (its last slot) is the
    /// sum of its trees' expected values. Linear trees have none: zeros.
    pub(crate) fn contributions(&self, features: &[f64], trees: usize, out: &mut [f64]) {
        let n = self.feature_names.len();
        out.iter_mut().for_each(|c| *c = 0.0);
        if !self.has_contributions() {
            return;
        }
        for (t, tree) in self.trees[..trees.min(self.trees.len())].iter().enumerate() {
            let group = usize::from(self.tree_groups[t]);
            let block = &mut out[group * (n + 1)..(group + 1) * (n + 1)];
            block[n] += tree.expected_value();
            if !tree.nodes.is_empty() {
                crate::shap::tree_shap(tree, features, &mut block[..n], tree.depth);
            }
        }
    }

    /// The raw scores (one per class): leaf values of the first `trees` trees summed in `f64`,
    /// as LightGBM's `raw_score`.
    pub(crate) fn margins(&self, features: &[f64], trees: usize, out: &mut [f64]) {
        out.iter_mut().for_each(|m| *m = 0.0);
        let trees = trees.min(self.trees.len());
        if let Some((forest, binning)) = &self.fast {
            let bin = |slots: &mut [u16]| binning.slots_into(features, slots);
            if forest.add_leaves(trees, out, &self.tree_groups, bin) {
                return;
            }
            out.iter_mut().for_each(|m| *m = 0.0);
        }
        for (t, tree) in self.trees[..trees].iter().enumerate() {
            out[usize::from(self.tree_groups[t])] += tree.value(features);
        }
    }

    /// The prediction: raw scores and what LightGBM's `predict()` makes of them.
    pub(crate) fn predict(&self, features: &[f64], trees: usize) -> Prediction {
        let trees = trees.min(self.trees.len());
        let mut margins = vec![0.0; self.classes];
        self.margins(features, trees, &mut margins);
        // GBDT::Predict: a random forest's sums become means over the iterations used.
        let mut scores = margins.clone();
        if self.average_output {
            let iterations = (trees / self.classes).max(1) as f64;
            scores.iter_mut().for_each(|s| *s /= iterations);
        }
        let sigmoid = |scale: f64, x: f64| 1.0 / (1.0 + (-scale * x).exp());
        match self.objective {
            Objective::LightGbmMulticlass { .. } => {
                let probabilities = softmax(&scores);
                let predicted_class = first_max(&probabilities);
                Prediction::Classes {
                    margins,
                    probabilities,
                    predicted_class,
                }
            }
            Objective::LightGbmMulticlassOva { sigmoid: scale, .. } => {
                let probabilities: Vec<f64> = scores.iter().map(|&x| sigmoid(scale, x)).collect();
                let predicted_class = first_max(&probabilities);
                Prediction::Classes {
                    margins,
                    probabilities,
                    predicted_class,
                }
            }
            objective => {
                let x = scores[0];
                let output = match objective {
                    Objective::LightGbmBinary { sigmoid: scale } => sigmoid(scale, x),
                    Objective::LightGbmCrossEntropy => sigmoid(1.0, x),
                    Objective::LightGbmCrossEntropyLambda => x.exp().ln_1p(),
                    Objective::LightGbmPoisson
                    | Objective::LightGbmGamma
                    | Objective::LightGbmTweedie => x.exp(),
                    // Common::Sign(x) * x * x: the sign as an integer, then two products.
                    Objective::LightGbmRegression { sqrt: true, .. } => {
                        let sign = f64::from(i32::from(x > 0.0) - i32::from(x < 0.0));
                        sign * x * x
                    }
                    _ => x,
                };
                Prediction::Single {
                    margin: margins[0],
                    output,
                }
            }
        }
    }
}

/// LightGBM's `Common::Softmax`, in `f64`.
fn softmax(scores: &[f64]) -> Vec<f64> {
    let max = scores
        .iter()
        .skip(1)
        .fold(scores[0], |m, &x| if x < m { m } else { x });
    let mut out: Vec<f64> = scores.iter().map(|&x| (x - max).exp()).collect();
    let sum: f64 = out.iter().fold(0.0, |s, &x| s + x);
    out.iter_mut().for_each(|x| *x /= sum);
    out
}

/// The index of the first largest value (`numpy.argmax`).
fn first_max(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

impl Tree {
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

    /// The leaf a row reaches.
    #[inline]
    fn leaf(&self, features: &[f64]) -> usize {
        if self.nodes.is_empty() {
            return 0;
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
        (!index) as usize
    }

    /// What the tree adds for a row (`Tree::Predict`): its leaf's value, or a linear tree's
    /// leaf model — the constant plus each coefficient times its feature, in order, or the
    /// leaf value when one of those features is missing.
    #[inline]
    fn value(&self, features: &[f64]) -> f64 {
        let leaf = self.leaf(features);
        let Some(linear) = &self.linear else {
            return self.leaf_values[leaf];
        };
        let mut output = linear.constants[leaf];
        for &(feature, coefficient) in &linear.terms[leaf] {
            let x = features.get(feature as usize).copied().unwrap_or(f64::NAN);
            if x.is_nan() {
                return self.leaf_values[leaf];
            }
            output += coefficient * x;
        }
        output
    }

    fn categorical_decision(&self, node: &Node, x: f64) -> i32 {
        if category_goes_left(x, self.category_words(node)) {
            node.left
        } else {
            node.right
        }
    }

    /// The bitset of categories a categorical node sends left.
    fn category_words(&self, node: &Node) -> &[u32] {
        let k = node.threshold as usize;
        &self.cat_threshold[self.cat_boundaries[k]..self.cat_boundaries[k + 1]]
    }
}

/// LightGBM's `CategoricalDecision`: NaN and negative codes go right; a code in the bitset left.
#[inline]
fn category_goes_left(x: f64, words: &[u32]) -> bool {
    if x.is_nan() {
        return false;
    }
    let code = x as i32;
    if code < 0 {
        return false;
    }
    let (word, bit) = (code as usize / 32, code as usize % 32);
    words.get(word).is_some_and(|w| (w >> bit) & 1 == 1)
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
