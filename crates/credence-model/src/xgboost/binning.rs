//! How an XGBoost model is binned for the fast paths: numeric slots compared in `f32`, categorical splits tabled by feature.

use super::*;
use crate::binned::{
    categorical_split, count_passing, encode_slot, sort_thresholds, BinSplit, BinnedForest,
    CategoricalSplits, Category, CategoryBlock, SlotTable, SourceNode,
};

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
pub(super) struct Binning {
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
    pub(super) fn slots_into(&self, features: &[f64], slots: &mut [u16]) {
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
    pub(super) fn binned(&self, path: ScoringPath) -> Option<(BinnedForest<f32>, Binning)> {
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
