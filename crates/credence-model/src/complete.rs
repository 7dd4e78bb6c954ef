//! Trees padded to complete binary trees of one depth, scored with a fixed number of branch-free steps.
//!
//! A tree ensemble's cost is in walking trees: pointer chasing and a mispredicted branch at
//! every split. Padding each tree to a complete binary tree of the forest's depth, in
//! breadth-first order with implicit children (`2i + 1`, `2i + 2`), turns a walk into exactly
//! `depth` steps of `position = 2·position + 1 + goes_right`, with no branch; and walking
//! several trees side by side gives the CPU independent loads to overlap. A leaf above the
//! bottom level becomes a subtree whose every leaf is a copy of its value, so the comparisons
//! made, the leaf reached and the order of summation — hence the bits — are the library's.

use std::ops::AddAssign;

/// Trees of depth at most this are padded; deeper ones are walked node by node.
pub(crate) const MAX_DEPTH: usize = 8;
/// Trees walked side by side.
const LANES: usize = 8;

/// One split of a complete tree.
pub(crate) trait Split: Copy {
    /// What a row holds (the library's input type).
    type Input: Copy;
    /// A split any row passes to the left (used above copied leaves).
    const ALWAYS_LEFT: Self;
    /// The feature the split reads.
    fn feature(&self) -> usize;
    fn goes_left(&self, x: Self::Input) -> bool;
}

/// What a node of the source tree is.
pub(crate) enum SourceNode<S, V, N> {
    Leaf(V),
    Split(S, N, N),
}

#[derive(Debug, Clone)]
pub(crate) struct CompleteForest<S, V> {
    depth: usize,
    /// `2^depth - 1` splits per tree.
    splits: Vec<S>,
    /// `2^depth` leaf values per tree.
    leaves: Vec<V>,
    /// The largest feature index any split reads, plus one: rows must be at least this long.
    features_needed: usize,
}

impl<S: Split, V: Copy + AddAssign + Default> CompleteForest<S, V> {
    pub(crate) fn new(depth: usize) -> Self {
        CompleteForest {
            depth: depth.max(1),
            splits: Vec::new(),
            leaves: Vec::new(),
            features_needed: 0,
        }
    }

    /// Appends a tree, reading it from its root through `node`.
    pub(crate) fn push_tree<N: Copy>(&mut self, root: N, node: impl Fn(N) -> SourceNode<S, V, N>) {
        let internal = (1usize << self.depth) - 1;
        let (base_split, base_leaf) = (self.splits.len(), self.leaves.len());
        self.splits.resize(base_split + internal, S::ALWAYS_LEFT);
        self.leaves.resize(base_leaf + internal + 1, V::default());
        let mut stack = vec![(root, 0usize, 0usize)];
        while let Some((current, position, level)) = stack.pop() {
            match node(current) {
                SourceNode::Leaf(value) if level == self.depth => {
                    self.leaves[base_leaf + position - internal] = value;
                }
                SourceNode::Leaf(_) => {
                    // Above the bottom: both sides lead to copies of this leaf.
                    stack.push((current, 2 * position + 1, level + 1));
                    stack.push((current, 2 * position + 2, level + 1));
                }
                SourceNode::Split(split, left, right) => {
                    debug_assert!(level < self.depth, "a split below the forest's depth");
                    self.features_needed = self.features_needed.max(split.feature() + 1);
                    self.splits[base_split + position] = split;
                    stack.push((left, 2 * position + 1, level + 1));
                    stack.push((right, 2 * position + 2, level + 1));
                }
            }
        }
    }

    /// `start` plus the leaf values the row reaches in the first `trees` trees, in tree order.
    /// `None` when the row is shorter than the features the splits read.
    pub(crate) fn sum(&self, row: &[S::Input], trees: usize, start: V) -> Option<V> {
        if row.len() < self.features_needed {
            return None;
        }
        let internal = (1usize << self.depth) - 1;
        let leaves = internal + 1;
        let trees = trees.min(self.splits.len() / internal.max(1));
        let step = |splits: &[S], position: usize| -> usize {
            debug_assert!(position < splits.len());
            // SAFETY: `position` starts at 0 and after k < depth steps is below 2^(k+1) - 1,
            // at most 2^depth - 1 = splits.len(); every split's feature is below
            // `features_needed`, which `row.len()` was checked against above.
            let split = unsafe { *splits.get_unchecked(position) };
            let x = unsafe { *row.get_unchecked(split.feature()) };
            2 * position + 1 + usize::from(!split.goes_left(x))
        };
        let mut sum = start;
        let groups = trees / LANES;
        for group in 0..groups {
            let first = group * LANES;
            let splits: [&[S]; LANES] = std::array::from_fn(|lane| {
                &self.splits[(first + lane) * internal..(first + lane + 1) * internal]
            });
            let mut position = [0usize; LANES];
            for _ in 0..self.depth {
                for (p, tree_splits) in position.iter_mut().zip(&splits) {
                    *p = step(tree_splits, *p);
                }
            }
            for (lane, p) in position.iter().enumerate() {
                sum += self.leaves[(first + lane) * leaves + (p - internal)];
            }
        }
        for tree in groups * LANES..trees {
            let splits = &self.splits[tree * internal..(tree + 1) * internal];
            let mut position = 0;
            for _ in 0..self.depth {
                position = step(splits, position);
            }
            sum += self.leaves[tree * leaves + (position - internal)];
        }
        Some(sum)
    }
}
