//! How a LightGBM model is binned for the fast paths: numeric slots by LightGBM's missing-value rules, categorical splits by feature.

use super::*;
use crate::binned::{
    categorical_split, count_passing, encode_slot, sort_thresholds, BinSplit, CategoricalSplits,
    Category, CategoryBlock, SlotTable, SourceNode,
};

/// A numeric slot of the binned form: a feature read under one missing-value rule and
/// direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct SlotKey {
    feature: u32,
    missing: MissingType,
    default_left: bool,
}

/// How a row is binned.
#[derive(Debug, Clone)]
pub(super) struct Binning {
    /// Sorted distinct split thresholds of each feature.
    thresholds: Vec<Vec<f64>>,
    /// Numeric slots, numbered from `first_numeric`.
    numeric: Vec<SlotKey>,
    first_numeric: usize,
    /// Categorical splits, one block per feature, in the slots below `first_numeric`.
    blocks: Vec<CategoryBlock>,
}

impl Binning {
    /// Each slot's value for the row, by LightGBM's rule (`numerical_decision`): NaN is read as
    /// 0.0 unless the missing type is NaN; a missing value is NaN (type NaN) or within
    /// `±ZERO_THRESHOLD` (type Zero); otherwise `#{t < x}`, so that `x <= t_j` exactly when
    /// that count is at most `j`. A categorical split's slot holds its direction.
    #[inline]
    pub(super) fn slots_into(&self, features: &[f64], slots: &mut [u16]) {
        let x_of = |feature: u32| features.get(feature as usize).copied().unwrap_or(f64::NAN);
        for block in &self.blocks {
            let x = x_of(block.feature);
            // As `category_goes_left`: NaN and negative codes go right (outside the table).
            let category = if x.is_nan() || (x as i32) < 0 {
                Category::Outside
            } else {
                Category::Code(x as i32 as usize)
            };
            block.fill(category, slots);
        }
        for (slot, key) in slots[self.first_numeric..].iter_mut().zip(&self.numeric) {
            let mut x = x_of(key.feature);
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

impl LgbModel {
    /// The binned form taking `path`; `None` when the model cannot take it (linear trees,
    /// complete trees deeper than 8, too many slots or thresholds for `u16`).
    pub(super) fn binned(&self, path: ScoringPath) -> Option<(BinnedForest<f64>, Binning)> {
        if self.trees.iter().any(|t| t.linear.is_some()) {
            return None;
        }
        let mut forest = BinnedForest::new(path, self.max_depth())?;
        let mut thresholds = vec![Vec::new(); self.feature_names.len()];
        for node in self.trees.iter().flat_map(|t| &t.nodes) {
            if node.decision_type & CATEGORICAL_MASK == 0 {
                thresholds
                    .get_mut(node.feature as usize)?
                    .push(node.threshold);
            }
        }
        sort_thresholds(&mut thresholds, f64::total_cmp)?;
        // Categorical splits first (keyed by their bitsets): slots from 0, feature by feature.
        let mut categorical = CategoricalSplits::new();
        for tree in &self.trees {
            for node in &tree.nodes {
                if node.decision_type & CATEGORICAL_MASK != 0 {
                    categorical.add(node.feature, tree.category_words(node).to_vec());
                }
            }
        }
        let (categorical_slots, features) = categorical.number();
        let mut blocks = Vec::with_capacity(features.len());
        let mut first_numeric = 0;
        for (feature, first, sets) in features {
            let codes = sets.iter().map(|words| words.len() * 32).max().unwrap_or(0);
            blocks.push(CategoryBlock::new(
                feature,
                first,
                sets.len(),
                codes,
                |split, category| match category {
                    Category::Code(code) => !category_goes_left(code as f64, &sets[split]),
                    Category::Missing | Category::Outside => true,
                },
            )?);
            first_numeric = first + sets.len();
        }
        if first_numeric > usize::from(u16::MAX) {
            return None;
        }
        let mut slot_table = SlotTable::starting_at(first_numeric);
        for tree in &self.trees {
            // Node ids: `>= 0` internal, `< 0` the leaf `!id`; a one-leaf tree is just its leaf.
            let root = if tree.nodes.is_empty() { -1 } else { 0 };
            forest.push_tree(root, |id: i32| {
                if id < 0 {
                    return SourceNode::Leaf(tree.leaf_values[(!id) as usize]);
                }
                let node = &tree.nodes[id as usize];
                if node.decision_type & CATEGORICAL_MASK != 0 {
                    let key = (node.feature, tree.category_words(node).to_vec());
                    let slot = categorical_slots[&key];
                    return SourceNode::Split(categorical_split(slot), node.left, node.right);
                }
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
            numeric: slot_table.into_keys()?,
            first_numeric,
            blocks,
        };
        Some((forest.finish(), binning))
    }
}
