//! Trees of any depth and shape walked side by side over binned inputs, without a branch per split.
//!
//! The complete-tree form ([`crate::complete`]) pads every tree to `2^depth` entries, which stops
//! paying past depth 8; LightGBM grows trees leaf-wise, and `num_leaves=31` without a depth
//! limit routinely reaches depth 12–20. This form keeps each tree's own nodes and takes the
//! other two ideas:
//!
//! - **Branch-free steps.** A node is eight bytes, `(slot, bin, left)`, with its children side
//!   by side (`right = left + 1`), so a step is `at = left + (bin < slots[slot])` — no branch
//!   to mispredict. A leaf is a node that leads to itself (`bin = u16::MAX` never sends a row
//!   right), so once a walk reaches its leaf, further steps stay there; a tree is walked
//!   exactly its depth's number of steps with no test for having arrived.
//! - **Trees side by side.** Trees are walked in groups of [`LANES`], one step of every lane
//!   then the next, so the walks are independent chains of loads the CPU overlaps. A group
//!   takes as many steps as its deepest tree, so trees are grouped by depth (the order in
//!   which they are *walked* does not change the sum: leaf values are added in tree order
//!   afterwards, as the libraries add them).
//!
//! Children are laid out breadth-first, so the first levels of a tree, which every row visits,
//! share cache lines.

use crate::binned::{BinSplit, Sink, SourceNode};
use crate::complete::LANES;

#[derive(Debug, Clone, Copy)]
#[repr(C)]
struct LaneNode {
    slot: u16,
    bin: u16,
    /// The left child; the right child is the next node. A leaf's `left` is itself.
    left: u32,
}

#[derive(Debug, Clone)]
struct Group {
    roots: [u32; LANES],
    /// The tree each lane walks, by its place in the model; `u32::MAX` for an empty lane.
    trees: [u32; LANES],
    /// Steps the deepest of the group's trees needs.
    depth: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct LaneForest<V> {
    /// Node 0 is a leaf of value zero that empty lanes walk.
    nodes: Vec<LaneNode>,
    /// The leaf value of each node (zero for splits).
    values: Vec<V>,
    /// Each tree's root and depth, in the model's order.
    trees: Vec<(u32, u32)>,
    groups: Vec<Group>,
    slots_needed: usize,
}

const EMPTY_LANE: u32 = u32::MAX;

impl<V: Copy + std::ops::AddAssign + Default> LaneForest<V> {
    pub(crate) fn new() -> Self {
        LaneForest {
            nodes: vec![LaneNode {
                slot: 0,
                bin: u16::MAX,
                left: 0,
            }],
            values: vec![V::default()],
            trees: Vec::new(),
            groups: Vec::new(),
            slots_needed: 1,
        }
    }

    pub(crate) fn slots_needed(&self) -> usize {
        self.slots_needed
    }

    /// Appends a tree read from its root through `node`. `None` when the forest would pass
    /// `u32` nodes.
    pub(crate) fn push_tree<N: Copy>(
        &mut self,
        root: N,
        mut node: impl FnMut(N) -> SourceNode<V, N>,
    ) -> Option<()> {
        let root_at = u32::try_from(self.nodes.len()).ok()?;
        self.nodes.push(LaneNode {
            slot: 0,
            bin: 0,
            left: 0,
        });
        self.values.push(V::default());
        // Breadth first: (source node, its place, its level).
        let mut queue = std::collections::VecDeque::from([(root, root_at, 0u32)]);
        let mut depth = 0;
        while let Some((current, at, level)) = queue.pop_front() {
            depth = depth.max(level);
            match node(current) {
                SourceNode::Leaf(value) => {
                    self.nodes[at as usize] = LaneNode {
                        slot: 0,
                        bin: u16::MAX,
                        left: at,
                    };
                    self.values[at as usize] = value;
                }
                SourceNode::Split(BinSplit { slot, bin }, left, right) => {
                    let left_at = u32::try_from(self.nodes.len()).ok()?;
                    left_at.checked_add(1)?;
                    self.nodes[at as usize] = LaneNode {
                        slot,
                        bin,
                        left: left_at,
                    };
                    self.slots_needed = self.slots_needed.max(usize::from(slot) + 1);
                    for _ in 0..2 {
                        self.nodes.push(LaneNode {
                            slot: 0,
                            bin: 0,
                            left: 0,
                        });
                        self.values.push(V::default());
                    }
                    queue.push_back((left, left_at, level + 1));
                    queue.push_back((right, left_at + 1, level + 1));
                }
            }
        }
        self.trees.push((root_at, depth));
        Some(())
    }

    /// Groups the trees by depth into lanes, once every tree is in.
    pub(crate) fn finish(&mut self) {
        let mut order: Vec<u32> = (0..self.trees.len() as u32).collect();
        order.sort_by_key(|&t| self.trees[t as usize].1);
        self.groups = order
            .chunks(LANES)
            .map(|chunk| {
                let mut group = Group {
                    roots: [0; LANES],
                    trees: [EMPTY_LANE; LANES],
                    depth: 0,
                };
                for (lane, &t) in chunk.iter().enumerate() {
                    let (root, depth) = self.trees[t as usize];
                    group.roots[lane] = root;
                    group.trees[lane] = t;
                    group.depth = group.depth.max(depth);
                }
                group
            })
            .collect();
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
        let trees = trees.min(self.trees.len());
        let mut on_stack = [V::default(); 512];
        let mut on_heap = Vec::new();
        let leaves: &mut [V] = if trees <= on_stack.len() {
            &mut on_stack[..trees]
        } else {
            on_heap.resize(trees, V::default());
            &mut on_heap
        };
        for group in &self.groups {
            // SAFETY: `slots` covers every slot a node reads (checked above), and every node's
            // `left` and `left + 1` are nodes (`push_tree` made them so).
            let at = unsafe { self.walk(group, slots) };
            for (lane, &tree) in group.trees.iter().enumerate() {
                if let Some(leaf) = leaves.get_mut(tree as usize) {
                    *leaf = self.values[at[lane] as usize];
                }
            }
        }
        for (tree, leaf) in leaves.iter().enumerate() {
            sink.add(tree, *leaf);
        }
        Some(())
    }

    /// The node each lane of `group` ends at.
    ///
    /// # Safety
    ///
    /// Every node's slot is below `slots.len()`.
    #[inline(always)]
    unsafe fn walk(&self, group: &Group, slots: &[u16]) -> [u32; LANES] {
        let mut at = group.roots;
        for _ in 0..group.depth {
            for q in at.iter_mut() {
                // SAFETY: `q` starts at a root and moves to `left` or `left + 1` of a node, all
                // of which are nodes; the slot is covered, as the caller promises.
                let node = unsafe { *self.nodes.get_unchecked(*q as usize) };
                let value = unsafe { *slots.get_unchecked(usize::from(node.slot)) };
                *q = node.left + u32::from(node.bin < value);
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binned::test_trees::{source, tree, walk};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sums_what_walking_each_tree_reaches_in_tree_order(
            trees in prop::collection::vec(tree(16, 256, 5), 1..30),
            slots in prop::collection::vec(prop_oneof![0u16..8, Just(0), Just(u16::MAX)], 5),
            limit in 0usize..34,
        ) {
            let mut forest = LaneForest::new();
            for tree in &trees {
                forest.push_tree(0usize, source(tree)).unwrap();
            }
            forest.finish();
            // A sink that records the order trees arrive in.
            struct Recorder(Vec<(usize, f64)>);
            impl Sink<f64> for Recorder {
                fn add(&mut self, tree: usize, value: f64) {
                    self.0.push((tree, value));
                }
            }
            let mut got = Recorder(Vec::new());
            forest.accumulate(&slots, limit, &mut got).unwrap();
            let expected: Vec<(usize, f64)> = trees
                .iter()
                .take(limit)
                .enumerate()
                .map(|(t, tree)| (t, walk(tree, &slots)))
                .collect();
            prop_assert_eq!(got.0, expected);
        }
    }

    #[test]
    fn a_row_with_too_few_slots_is_refused() {
        let mut forest = LaneForest::new();
        forest
            .push_tree(0usize, |at| match at {
                0 => SourceNode::Split(BinSplit { slot: 3, bin: 0 }, 1, 2),
                1 => SourceNode::Leaf(1.0),
                _ => SourceNode::Leaf(2.0),
            })
            .unwrap();
        forest.finish();
        let mut sum = crate::binned::Sum(0.0);
        assert_eq!(forest.accumulate(&[0, 0, 0], 1, &mut sum), None);
        assert_eq!(forest.accumulate(&[0, 0, 0, 1], 1, &mut sum), Some(()));
        assert_eq!(sum.0, 2.0);
    }
}
