//! Trees padded to complete binary trees over binned inputs, scored with a fixed number of branch-free steps.
//!
//! A tree ensemble's cost is in walking trees: pointer chasing and a mispredicted branch at
//! every split. Three changes make a walk cheap without changing a single comparison:
//!
//! - **Complete trees.** Each tree is padded to a complete binary tree of the forest's depth,
//!   stored as a heap with implicit children (the node at 1-based index `q` has children `2q`
//!   and `2q + 1`), so a walk is exactly `depth` steps of `q = 2q + goes_right` with no branch:
//!   on x86-64 one add with carry fed by the comparison's flag. A leaf above the bottom level
//!   becomes a subtree whose every leaf is a copy of its value, so the leaf reached and the
//!   order of summation — hence the bits — are the library's.
//! - **Binned inputs** ([`crate::binned`]): a row is read once into `u16` slots, and every split,
//!   numeric or categorical, becomes four bytes, `slots[slot] <= bin`.
//! - **Trees side by side.** Trees are walked in groups of [`LANES`]: one step of every lane,
//!   then the next, so a group's walks are independent chains of loads the CPU overlaps. Each
//!   tree takes `2^depth` entries and the walk is compiled once per depth, so a lane's split is
//!   one load at a constant offset from the group, `lane·2^depth + q`.
//!
//! A lane step is four instructions (two loads of the split, a compare against the slot in
//! memory, an add with carry), so the walk is bound by the latency of the split loads; the
//! measured instruction counts are in docs/benchmarks.md.

use crate::binned::{BinSplit, Sink, SourceNode, ALWAYS_LEFT};
use std::ops::AddAssign;

/// Trees of depth at most this are padded; deeper ones are walked in lanes ([`crate::lanes`]).
pub(crate) const MAX_DEPTH: usize = 8;
/// Trees walked side by side.
pub(crate) const LANES: usize = 8;

#[derive(Debug, Clone)]
pub(crate) struct CompleteForest<V> {
    depth: usize,
    trees: usize,
    /// Per tree, `2^depth` entries: the split at 1-based heap index `q` (from 1 to
    /// `2^depth - 1`) at entry `q`; entry 0 is unused. Trees are padded to a whole number of
    /// groups of `LANES` with trees of `ALWAYS_LEFT` splits.
    splits: Vec<BinSplit>,
    /// Per tree, `2^depth` leaf values: the leaf at heap index `q` (from `2^depth` to
    /// `2^(depth+1) - 1`) at entry `q - 2^depth`.
    leaves: Vec<V>,
    /// The largest slot any split reads, plus one (at least one: `ALWAYS_LEFT` reads slot 0).
    slots_needed: usize,
}

impl<V: Copy + AddAssign + Default> CompleteForest<V> {
    pub(crate) fn new(depth: usize) -> Self {
        CompleteForest {
            depth: depth.clamp(1, MAX_DEPTH),
            trees: 0,
            splits: Vec::new(),
            leaves: Vec::new(),
            slots_needed: 1,
        }
    }

    /// Appends a tree, reading it from its root through `node`. `None` when the tree is deeper
    /// than the forest, which leaves the forest unusable.
    pub(crate) fn push_tree<N: Copy>(
        &mut self,
        root: N,
        mut node: impl FnMut(N) -> SourceNode<V, N>,
    ) -> Option<()> {
        let width = 1usize << self.depth;
        if self.trees.is_multiple_of(LANES) {
            self.splits
                .resize(self.splits.len() + width * LANES, ALWAYS_LEFT);
            self.leaves
                .resize(self.leaves.len() + width * LANES, V::default());
        }
        let tree_at = self.trees * width;
        // (node, 1-based heap index, level)
        let mut stack = vec![(root, 1usize, 0usize)];
        while let Some((current, q, level)) = stack.pop() {
            match node(current) {
                SourceNode::Leaf(value) if level == self.depth => {
                    self.leaves[tree_at + q - width] = value;
                }
                SourceNode::Leaf(_) => {
                    // Above the bottom: both sides lead to copies of this leaf.
                    stack.push((current, 2 * q, level + 1));
                    stack.push((current, 2 * q + 1, level + 1));
                }
                SourceNode::Split(split, left, right) => {
                    if level >= self.depth {
                        return None;
                    }
                    self.slots_needed = self.slots_needed.max(usize::from(split.slot) + 1);
                    self.splits[tree_at + q] = split;
                    stack.push((left, 2 * q, level + 1));
                    stack.push((right, 2 * q + 1, level + 1));
                }
            }
        }
        self.trees += 1;
        Some(())
    }

    /// The slots a row needs (at least the largest slot a split reads, plus one).
    pub(crate) fn slots_needed(&self) -> usize {
        self.slots_needed
    }

    /// `start` plus the leaf values the row reaches in the first `trees` trees, in tree order.
    /// `None` when the row has fewer slots than the splits read.
    #[cfg(test)]
    pub(crate) fn sum(&self, slots: &[u16], trees: usize, start: V) -> Option<V> {
        let mut sum = crate::binned::Sum(start);
        self.accumulate(slots, trees, &mut sum)?;
        Some(sum.0)
    }

    /// Hands `sink` the leaf value the row reaches in each of the first `trees` trees, in tree
    /// order. `None` when the row has fewer slots than the splits read.
    #[inline]
    pub(crate) fn accumulate(
        &self,
        slots: &[u16],
        trees: usize,
        sink: &mut impl Sink<V>,
    ) -> Option<()> {
        if slots.len() < self.slots_needed {
            return None;
        }
        let trees = trees.min(self.trees);
        // One copy of the walk per depth, so that a lane's place in its group is a constant
        // offset the compiler folds into each load's address.
        match self.depth {
            1 => self.accumulate_at_depth::<1>(slots, trees, sink),
            2 => self.accumulate_at_depth::<2>(slots, trees, sink),
            3 => self.accumulate_at_depth::<3>(slots, trees, sink),
            4 => self.accumulate_at_depth::<4>(slots, trees, sink),
            5 => self.accumulate_at_depth::<5>(slots, trees, sink),
            6 => self.accumulate_at_depth::<6>(slots, trees, sink),
            7 => self.accumulate_at_depth::<7>(slots, trees, sink),
            _ => self.accumulate_at_depth::<MAX_DEPTH>(slots, trees, sink),
        }
        Some(())
    }

    fn accumulate_at_depth<const DEPTH: usize>(
        &self,
        slots: &[u16],
        trees: usize,
        sum: &mut impl Sink<V>,
    ) {
        debug_assert_eq!(self.depth, DEPTH);
        debug_assert!(slots.len() >= self.slots_needed);
        let group_len = (1usize << DEPTH) * LANES;
        let mut groups = self
            .splits
            .chunks_exact(group_len)
            .zip(self.leaves.chunks_exact(group_len));
        let leaf = |leaves: &[V], lane: usize, q: usize| {
            // SAFETY: a walk ends at `2^DEPTH <= q < 2^(DEPTH+1)`, so the index
            // `lane·2^DEPTH + q - 2^DEPTH` is below `LANES·2^DEPTH = leaves.len()`.
            unsafe { *leaves.get_unchecked((lane << DEPTH) + q - (1 << DEPTH)) }
        };
        // SAFETY (both walks): `sum`, this method's only caller, checked that `slots` covers
        // every slot a split reads.
        for (group, (splits, leaves)) in groups.by_ref().take(trees / LANES).enumerate() {
            let ends = unsafe { walk_group::<DEPTH>(splits, slots) };
            for (lane, q) in ends.into_iter().enumerate() {
                sum.add(group * LANES + lane, leaf(leaves, lane, q));
            }
        }
        if !trees.is_multiple_of(LANES) {
            if let Some((splits, leaves)) = groups.next() {
                let ends = unsafe { walk_group::<DEPTH>(splits, slots) };
                let first = trees / LANES * LANES;
                for (lane, q) in ends.into_iter().enumerate().take(trees % LANES) {
                    sum.add(first + lane, leaf(leaves, lane, q));
                }
            }
        }
    }
}

/// The child of heap index `q`: `2q + goes_right`. On x86-64 an add with carry, so the
/// comparison's flag feeds the add directly.
#[inline(always)]
fn step(q: usize, goes_right: bool) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        let mut child = 0u64;
        core::arch::x86_64::_addcarry_u64(u8::from(goes_right), q as u64, q as u64, &mut child);
        child as usize
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        2 * q + usize::from(goes_right)
    }
}

/// The heap index `q` (from `2^DEPTH` to `2^(DEPTH+1) - 1`) of the leaf the row reaches in each
/// of one group's trees, whose splits are `splits` (`LANES` trees of `2^DEPTH` entries).
///
/// # Safety
///
/// Every split's `slot` is below `slots.len()`.
#[inline(always)]
unsafe fn walk_group<const DEPTH: usize>(splits: &[BinSplit], slots: &[u16]) -> [usize; LANES] {
    assert_eq!(splits.len(), LANES << DEPTH);
    let mut at = [1usize; LANES];
    for _ in 0..DEPTH {
        for (lane, q) in at.iter_mut().enumerate() {
            // SAFETY: after k < DEPTH steps `q < 2^(k+1) <= 2^DEPTH`, so the index
            // `lane·2^DEPTH + q` is below `LANES·2^DEPTH = splits.len()`; every split's slot is
            // below `slots.len()`, as the caller promises.
            let split = unsafe { *splits.get_unchecked((lane << DEPTH) + *q) };
            let value = unsafe { *slots.get_unchecked(usize::from(split.slot)) };
            *q = step(*q, split.bin < value);
        }
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binned::test_trees::{source, tree, walk, TestNode};
    use proptest::prelude::*;

    fn depth_of(tree: &[TestNode], at: usize) -> usize {
        match &tree[at] {
            TestNode::Leaf(_) => 0,
            TestNode::Split(_, l, r) => 1 + depth_of(tree, *l).max(depth_of(tree, *r)),
        }
    }

    fn forest_of(trees: &[Vec<TestNode>]) -> CompleteForest<f64> {
        let depth = trees.iter().map(|t| depth_of(t, 0)).max().unwrap_or(0);
        let mut forest = CompleteForest::new(depth);
        for tree in trees {
            forest
                .push_tree(0usize, source(tree))
                .expect("no tree deeper than the forest");
        }
        forest
    }

    proptest! {
        #[test]
        fn sums_what_walking_each_tree_reaches(
            trees in prop::collection::vec(tree(MAX_DEPTH as u32, 64, 4), 1..20),
            slots in prop::collection::vec(prop_oneof![0u16..8, Just(0), Just(u16::MAX)], 4),
            limit in 0usize..24,
        ) {
            let forest = forest_of(&trees);
            let expected = trees
                .iter()
                .take(limit)
                .fold(0.5, |sum, tree| sum + walk(tree, &slots));
            prop_assert_eq!(forest.sum(&slots, limit, 0.5), Some(expected));
        }
    }

    #[test]
    fn a_row_with_too_few_slots_is_refused_and_a_deep_tree_rejected() {
        let tree = [
            TestNode::Split(BinSplit { slot: 2, bin: 0 }, 1, 2),
            TestNode::Leaf(1.0),
            TestNode::Leaf(2.0),
        ];
        let forest = forest_of(&[tree.to_vec()]);
        assert_eq!(forest.slots_needed, 3);
        assert_eq!(forest.sum(&[0, 0], 1, 0.0), None);
        assert_eq!(forest.sum(&[0, 0, 1], 1, 0.0), Some(2.0));

        let mut shallow = CompleteForest::<f64>::new(1);
        let pushed = shallow.push_tree(0usize, |at| match at {
            0 => SourceNode::Split(BinSplit { slot: 0, bin: 0 }, 1, 1),
            1 => SourceNode::Split(BinSplit { slot: 0, bin: 1 }, 2, 2),
            _ => SourceNode::Leaf(1.0),
        });
        assert_eq!(pushed, None);
    }
}
