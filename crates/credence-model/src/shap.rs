//! Exact TreeSHAP (Lundberg, Erion & Lee, 2018) for one tree, generic over the float the library computes in.
//!
//! XGBoost computes SHAP values in `f32` and LightGBM in `f64`, with the same recursion; the
//! arithmetic here follows theirs operation for operation (the same groupings, the same
//! integer-to-float conversions), so contributions match the libraries' `pred_contribs` /
//! `pred_contrib` to within rounding of the last bit.

use std::ops::{Add, AddAssign, Div, Mul, Sub};

/// The float a library's TreeSHAP computes in.
pub(crate) trait Float:
    Copy
    + PartialEq
    + Add<Output = Self>
    + AddAssign
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
{
    const ZERO: Self;
    const ONE: Self;
    fn from_count(n: usize) -> Self;
}

impl Float for f32 {
    const ZERO: f32 = 0.0;
    const ONE: f32 = 1.0;
    fn from_count(n: usize) -> f32 {
        n as f32
    }
}

impl Float for f64 {
    const ZERO: f64 = 0.0;
    const ONE: f64 = 1.0;
    fn from_count(n: usize) -> f64 {
        n as f64
    }
}

/// What TreeSHAP needs of a tree.
pub(crate) trait ShapTree<F: Float> {
    type Node: Copy;
    fn root(&self) -> Self::Node;
    /// The leaf value, if the node is a leaf.
    fn leaf_value(&self, node: Self::Node) -> Option<F>;
    fn split_feature(&self, node: Self::Node) -> usize;
    /// The child a row takes (hot) and the other one (cold).
    fn hot_and_cold(&self, node: Self::Node, features: &[f64]) -> (Self::Node, Self::Node);
    /// The training cover (hessian sum or data count) of a node.
    fn cover(&self, node: Self::Node) -> F;
}

#[derive(Clone, Copy)]
struct PathElement<F> {
    feature: i64,
    zero_fraction: F,
    one_fraction: F,
    weight: F,
}

/// Adds one tree's SHAP values to `phi` (one slot per feature), for a tree of depth at most
/// `max_depth`.
pub(crate) fn tree_shap<F: Float, T: ShapTree<F>>(
    tree: &T,
    features: &[f64],
    phi: &mut [F],
    max_depth: usize,
) {
    let depth = max_depth + 2;
    let mut path = vec![
        PathElement {
            feature: -1,
            zero_fraction: F::ZERO,
            one_fraction: F::ZERO,
            weight: F::ZERO,
        };
        depth * (depth + 1) / 2 + depth
    ];
    recurse(
        tree,
        features,
        phi,
        tree.root(),
        0,
        &mut path,
        0,
        F::ONE,
        F::ONE,
        -1,
    );
}

#[allow(clippy::too_many_arguments)]
fn recurse<F: Float, T: ShapTree<F>>(
    tree: &T,
    features: &[f64],
    phi: &mut [F],
    node: T::Node,
    mut unique_depth: usize,
    buffer: &mut [PathElement<F>],
    parent_start: usize,
    parent_zero_fraction: F,
    parent_one_fraction: F,
    parent_feature: i64,
) {
    // This call's path lives right after its parent's (which holds unique_depth elements).
    let start = parent_start + unique_depth;
    if unique_depth > 0 {
        buffer.copy_within(parent_start..parent_start + unique_depth, start);
    }
    {
        let path = &mut buffer[start..];
        extend_path(
            path,
            unique_depth,
            parent_zero_fraction,
            parent_one_fraction,
            parent_feature,
        );
    }
    if let Some(leaf_value) = tree.leaf_value(node) {
        let path = &buffer[start..];
        for i in 1..=unique_depth {
            let w = unwound_path_sum(path, unique_depth, i);
            let element = path[i];
            phi[element.feature as usize] +=
                w * (element.one_fraction - element.zero_fraction) * leaf_value;
        }
        return;
    }
    let split = tree.split_feature(node) as i64;
    let (hot, cold) = tree.hot_and_cold(node, features);
    let w = tree.cover(node);
    let hot_zero_fraction = tree.cover(hot) / w;
    let cold_zero_fraction = tree.cover(cold) / w;
    let mut incoming_zero_fraction = F::ONE;
    let mut incoming_one_fraction = F::ONE;
    // A feature already on the path: undo that split, to redo it here.
    let path_index = (0..=unique_depth).find(|&i| buffer[start + i].feature == split);
    if let Some(path_index) = path_index {
        incoming_zero_fraction = buffer[start + path_index].zero_fraction;
        incoming_one_fraction = buffer[start + path_index].one_fraction;
        unwind_path(&mut buffer[start..], unique_depth, path_index);
        unique_depth -= 1;
    }
    recurse(
        tree,
        features,
        phi,
        hot,
        unique_depth + 1,
        buffer,
        start,
        hot_zero_fraction * incoming_zero_fraction,
        incoming_one_fraction,
        split,
    );
    recurse(
        tree,
        features,
        phi,
        cold,
        unique_depth + 1,
        buffer,
        start,
        cold_zero_fraction * incoming_zero_fraction,
        F::ZERO,
        split,
    );
}

fn extend_path<F: Float>(
    path: &mut [PathElement<F>],
    unique_depth: usize,
    zero_fraction: F,
    one_fraction: F,
    feature: i64,
) {
    path[unique_depth] = PathElement {
        feature,
        zero_fraction,
        one_fraction,
        weight: if unique_depth == 0 { F::ONE } else { F::ZERO },
    };
    let denominator = F::from_count(unique_depth + 1);
    for i in (0..unique_depth).rev() {
        let carried = one_fraction * path[i].weight * F::from_count(i + 1) / denominator;
        path[i + 1].weight += carried;
        path[i].weight =
            zero_fraction * path[i].weight * F::from_count(unique_depth - i) / denominator;
    }
}

fn unwind_path<F: Float>(path: &mut [PathElement<F>], unique_depth: usize, path_index: usize) {
    let one_fraction = path[path_index].one_fraction;
    let zero_fraction = path[path_index].zero_fraction;
    let mut next_one_portion = path[unique_depth].weight;
    let depth_plus_one = F::from_count(unique_depth + 1);
    for i in (0..unique_depth).rev() {
        if one_fraction != F::ZERO {
            let previous = path[i].weight;
            path[i].weight =
                next_one_portion * depth_plus_one / (F::from_count(i + 1) * one_fraction);
            next_one_portion = previous
                - path[i].weight * zero_fraction * F::from_count(unique_depth - i) / depth_plus_one;
        } else {
            path[i].weight = (path[i].weight * depth_plus_one)
                / (zero_fraction * F::from_count(unique_depth - i));
        }
    }
    for i in path_index..unique_depth {
        path[i].feature = path[i + 1].feature;
        path[i].zero_fraction = path[i + 1].zero_fraction;
        path[i].one_fraction = path[i + 1].one_fraction;
    }
}

fn unwound_path_sum<F: Float>(
    path: &[PathElement<F>],
    unique_depth: usize,
    path_index: usize,
) -> F {
    let one_fraction = path[path_index].one_fraction;
    let zero_fraction = path[path_index].zero_fraction;
    let mut next_one_portion = path[unique_depth].weight;
    let mut total = F::ZERO;
    let depth_plus_one = F::from_count(unique_depth + 1);
    for i in (0..unique_depth).rev() {
        if one_fraction != F::ZERO {
            let tmp = next_one_portion * depth_plus_one / (F::from_count(i + 1) * one_fraction);
            total += tmp;
            next_one_portion = path[i].weight
                - tmp * zero_fraction * (F::from_count(unique_depth - i) / depth_plus_one);
        } else if zero_fraction != F::ZERO {
            total += (path[i].weight / zero_fraction)
                / (F::from_count(unique_depth - i) / depth_plus_one);
        }
    }
    total
}
