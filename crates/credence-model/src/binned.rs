//! Binned inputs: a row read once into `u16` slots, and splits that compare a slot with a bin.
//!
//! Each feature's distinct thresholds, sorted, cut its axis into bins. A row is turned once into
//! *slots* of `u16` — one per feature and missing-value rule, filled by the library's own
//! comparisons (see [`encode_slot`]) — and every numeric split becomes four bytes,
//! `slots[slot] <= bin`, an integer comparison that also settles missing values. A categorical
//! split gets a slot of its own holding 0 when the row goes left and 1 when it goes right, so it
//! is the same comparison against bin 0. Both fast forms of a forest ([`crate::complete`] and
//! [`crate::lanes`]) walk these splits.

use crate::complete::CompleteForest;
use crate::lanes::LaneForest;
use crate::ScoringPath;
use std::collections::HashMap;
use std::hash::Hash;
use std::ops::AddAssign;

/// The most distinct thresholds one feature may have: bins, shifted by one for default-left
/// slots, must stay below the missing code `u16::MAX`.
const MAX_THRESHOLDS_PER_FEATURE: usize = u16::MAX as usize - 2;

/// A split on binned input: the row goes left when `slots[slot] <= bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BinSplit {
    pub(crate) slot: u16,
    pub(crate) bin: u16,
}

/// Every slot value is at most `u16::MAX`, so this split sends every row left.
pub(crate) const ALWAYS_LEFT: BinSplit = BinSplit {
    slot: 0,
    bin: u16::MAX,
};

impl BinSplit {
    /// The split `x ⋈ t_threshold_index` (the library's comparison, `<` or `<=`), whose missing
    /// values go left when `default_left`, read from `slot`.
    pub(crate) fn new(slot: u16, threshold_index: u16, default_left: bool) -> BinSplit {
        BinSplit {
            slot,
            bin: threshold_index + u16::from(default_left),
        }
    }
}

/// A slot's value for a row: the bin of its value, `None` when the library's rule calls the
/// value missing. With the thresholds `t_0 < t_1 < …` of the feature, the library's comparison
/// `x ⋈ t_j` holds exactly when `bin ≤ j` (`bin = #{t ≤ x}` for XGBoost's `x < t`,
/// `#{t < x}` for LightGBM's `x <= t`).
///
/// Missing values are folded into the same comparison: for a default-right slot a missing
/// value is `u16::MAX`, above every split's bin; for a default-left slot the bins are shifted up
/// by one ([`BinSplit::new`] shifts the split's bin to match) and a missing value is 0, below
/// every split's bin.
#[inline(always)]
pub(crate) fn encode_slot(bin: Option<usize>, default_left: bool) -> u16 {
    match bin {
        // `bin` is at most the feature's threshold count, below `MAX_THRESHOLDS_PER_FEATURE`.
        Some(bin) => bin as u16 + u16::from(default_left),
        None if default_left => 0,
        None => u16::MAX,
    }
}

/// Numbers the distinct slots (feature and missing-value rule) a forest's splits read.
#[derive(Debug)]
pub(crate) struct SlotTable<K> {
    /// The number of the first slot (those below belong to categorical splits).
    first: usize,
    index: HashMap<K, u16>,
    keys: Vec<K>,
    /// More distinct slots were asked for than `u16` numbers.
    overflowed: bool,
}

impl<K: Copy + Eq + Hash> SlotTable<K> {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        SlotTable::starting_at(0)
    }

    /// A table numbering slots from `first`.
    pub(crate) fn starting_at(first: usize) -> Self {
        SlotTable {
            first,
            index: HashMap::new(),
            keys: Vec::new(),
            overflowed: false,
        }
    }

    /// The slot of `key`, numbering it if new (past `u16` slots the table is spoilt: see
    /// [`SlotTable::into_keys`]).
    pub(crate) fn slot(&mut self, key: K) -> u16 {
        if let Some(&slot) = self.index.get(&key) {
            return slot;
        }
        let Ok(slot) = u16::try_from(self.first + self.keys.len()) else {
            self.overflowed = true;
            return 0;
        };
        self.index.insert(key, slot);
        self.keys.push(key);
        slot
    }

    /// The slots' keys, in slot order; `None` when they did not fit in `u16` numbers.
    pub(crate) fn into_keys(self) -> Option<Vec<K>> {
        (!self.overflowed).then_some(self.keys)
    }
}

/// Sorts and deduplicates each feature's split thresholds, by the float type's total order.
/// `None` (no complete-tree form) when a feature has more thresholds than `u16` bins can number
/// or a NaN threshold, which no bin could place.
pub(crate) fn sort_thresholds<T: PartialOrd>(
    per_feature: &mut [Vec<T>],
    total_cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Option<()> {
    for list in per_feature {
        list.sort_by(&total_cmp);
        list.dedup();
        // Only NaN is unordered against itself.
        if list.len() > MAX_THRESHOLDS_PER_FEATURE
            || list.iter().any(|t| t.partial_cmp(t).is_none())
        {
            return None;
        }
    }
    Some(())
}

/// How many of `sorted`'s leading elements pass `passes`, a test that holds up to some point of
/// the list and fails after it (`t ≤ x`, `t < x`): a binary search whose steps depend only on the
/// length, each picking with a conditional move rather than a branch the CPU would mispredict
/// (which way it goes is as good as random).
#[inline]
pub(crate) fn count_passing<T: Copy>(sorted: &[T], passes: impl Fn(T) -> bool) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    let (mut base, mut size) = (0usize, sorted.len());
    while size > 1 {
        let half = size / 2;
        base = std::hint::select_unpredictable(passes(sorted[base + half]), base + half, base);
        size -= half;
    }
    base + usize::from(passes(sorted[base]))
}

/// What a node of the source tree is.
pub(crate) enum SourceNode<V, N> {
    Leaf(V),
    Split(BinSplit, N, N),
}

/// The split reading a categorical slot.
pub(crate) fn categorical_split(slot: u16) -> BinSplit {
    BinSplit { slot, bin: 0 }
}

/// What a row holds for a categorical feature, as the library classifies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Category {
    Missing,
    /// A value no split lists and the library treats alike (negative, too large).
    Outside,
    Code(usize),
}

/// The most bytes one categorical feature's table may take; past it the model is walked node
/// by node.
const MAX_CATEGORY_TABLE_BYTES: usize = 1 << 20;

/// One categorical feature's splits, answered for a row by one table lookup.
///
/// The feature's splits own consecutive slots; row `c` of the table holds, bit `i`, whether
/// the `i`-th split sends code `c` right — its slot value (0 goes left, 1 right, compared with
/// bin 0). A row costs one lookup and a bit per split, however many categories a split lists.
#[derive(Debug, Clone)]
pub(crate) struct CategoryBlock {
    pub(crate) feature: u32,
    first_slot: usize,
    splits: usize,
    words: usize,
    codes: usize,
    table: Vec<u64>,
    missing: Vec<u64>,
    outside: Vec<u64>,
}

impl CategoryBlock {
    /// The block of `splits` splits on `feature` from slot `first_slot`, for codes below
    /// `codes`; `goes_right(split, category)` is the library's rule. `None` when the table
    /// would pass [`MAX_CATEGORY_TABLE_BYTES`].
    pub(crate) fn new(
        feature: u32,
        first_slot: usize,
        splits: usize,
        codes: usize,
        goes_right: impl Fn(usize, Category) -> bool,
    ) -> Option<CategoryBlock> {
        let words = splits.div_ceil(64).max(1);
        if codes.saturating_mul(words).saturating_mul(8) > MAX_CATEGORY_TABLE_BYTES {
            return None;
        }
        let row = |category: Category| {
            let mut bits = vec![0u64; words];
            for split in 0..splits {
                if goes_right(split, category) {
                    bits[split / 64] |= 1 << (split % 64);
                }
            }
            bits
        };
        let mut table = Vec::with_capacity(codes * words);
        for code in 0..codes {
            table.extend(row(Category::Code(code)));
        }
        Some(CategoryBlock {
            feature,
            first_slot,
            splits,
            words,
            codes,
            table,
            missing: row(Category::Missing),
            outside: row(Category::Outside),
        })
    }

    /// Writes the slots of the feature's splits for a row holding `category`.
    #[inline]
    pub(crate) fn fill(&self, category: Category, slots: &mut [u16]) {
        let row: &[u64] = match category {
            Category::Missing => &self.missing,
            Category::Code(code) if code < self.codes => {
                &self.table[code * self.words..(code + 1) * self.words]
            }
            _ => &self.outside,
        };
        let out = &mut slots[self.first_slot..self.first_slot + self.splits];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = ((row[i / 64] >> (i % 64)) & 1) as u16;
        }
    }
}

/// Numbers a forest's categorical splits: the distinct splits of each feature get consecutive
/// slots from 0, feature by feature, so that each feature is one [`CategoryBlock`].
pub(crate) struct CategoricalSplits<K> {
    /// Per feature (sorted), its distinct split keys in slot order.
    by_feature: std::collections::BTreeMap<u32, Vec<K>>,
}

impl<K: Clone + Eq + Hash> CategoricalSplits<K> {
    pub(crate) fn new() -> Self {
        CategoricalSplits {
            by_feature: std::collections::BTreeMap::new(),
        }
    }

    pub(crate) fn add(&mut self, feature: u32, key: K) {
        let keys = self.by_feature.entry(feature).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }

    /// The slot of every feature's key, and per feature its keys with their first slot.
    #[allow(clippy::type_complexity)]
    pub(crate) fn number(self) -> (HashMap<(u32, K), u16>, Vec<(u32, usize, Vec<K>)>) {
        let mut slots = HashMap::new();
        let mut blocks = Vec::new();
        let mut next = 0usize;
        for (feature, keys) in self.by_feature {
            for (i, key) in keys.iter().enumerate() {
                let slot = (next + i).min(usize::from(u16::MAX)) as u16;
                slots.insert((feature, key.clone()), slot);
            }
            blocks.push((feature, next, keys.clone()));
            next += keys.len();
        }
        (slots, blocks)
    }
}

/// Runs `f` on a zeroed buffer of `n` slots, on the stack when it fits.
#[inline]
pub(crate) fn with_slots<R>(n: usize, f: impl FnOnce(&mut [u16]) -> R) -> R {
    let mut on_stack = [0u16; 128];
    if n <= on_stack.len() {
        f(&mut on_stack[..n])
    } else {
        f(&mut vec![0u16; n])
    }
}

/// Where a forest's leaf values go: one running sum, or one per output (class).
pub(crate) trait Sink<V> {
    /// Adds the leaf value of tree `tree` (trees come in order).
    fn add(&mut self, tree: usize, value: V);
}

/// One output: a sum kept in a register.
pub(crate) struct Sum<V>(pub(crate) V);

impl<V: std::ops::AddAssign> Sink<V> for Sum<V> {
    #[inline(always)]
    fn add(&mut self, _tree: usize, value: V) {
        self.0 += value;
    }
}

/// One sum per output; `groups[tree]` is the output a tree adds to.
pub(crate) struct PerGroup<'a, V> {
    pub(crate) sums: &'a mut [V],
    pub(crate) groups: &'a [u16],
}

impl<V: std::ops::AddAssign> Sink<V> for PerGroup<'_, V> {
    #[inline(always)]
    fn add(&mut self, tree: usize, value: V) {
        self.sums[usize::from(self.groups[tree])] += value;
    }
}

/// A forest in one of its two binned forms.
#[derive(Debug, Clone)]
pub(crate) enum BinnedForest<V> {
    Complete(CompleteForest<V>),
    Lanes(LaneForest<V>),
}

impl<V: Copy + AddAssign + Default> BinnedForest<V> {
    /// An empty forest taking `path` (`CompleteTrees` only for `depth` at most
    /// [`crate::complete::MAX_DEPTH`]; `None` for `NodeByNode`, which needs no binned form).
    pub(crate) fn new(path: ScoringPath, depth: usize) -> Option<Self> {
        match path {
            ScoringPath::CompleteTrees if depth <= crate::complete::MAX_DEPTH => {
                Some(BinnedForest::Complete(CompleteForest::new(depth)))
            }
            ScoringPath::Lanes => Some(BinnedForest::Lanes(LaneForest::new())),
            _ => None,
        }
    }

    /// The fastest form for trees of this depth.
    pub(crate) fn fastest_path(depth: usize) -> ScoringPath {
        if depth <= crate::complete::MAX_DEPTH {
            ScoringPath::CompleteTrees
        } else {
            ScoringPath::Lanes
        }
    }

    pub(crate) fn push_tree<N: Copy>(
        &mut self,
        root: N,
        node: impl FnMut(N) -> SourceNode<V, N>,
    ) -> Option<()> {
        match self {
            BinnedForest::Complete(f) => f.push_tree(root, node),
            BinnedForest::Lanes(f) => f.push_tree(root, node),
        }
    }

    pub(crate) fn finish(mut self) -> Self {
        if let BinnedForest::Lanes(f) = &mut self {
            f.finish();
        }
        self
    }

    pub(crate) fn path(&self) -> ScoringPath {
        match self {
            BinnedForest::Complete(_) => ScoringPath::CompleteTrees,
            BinnedForest::Lanes(_) => ScoringPath::Lanes,
        }
    }

    pub(crate) fn slots_needed(&self) -> usize {
        match self {
            BinnedForest::Complete(f) => f.slots_needed(),
            BinnedForest::Lanes(f) => f.slots_needed(),
        }
    }

    /// Bins a row with `bin` and adds the leaf values of the first `trees` trees, in tree order,
    /// to `sums`: one sum per output, tree `t` adding to `sums[groups[t]]` (a single output keeps
    /// its sum in a register). `false` when the form cannot score the row (the slot buffer is
    /// always large enough, so never in practice), `sums` then possibly part-summed.
    #[inline]
    pub(crate) fn add_leaves(
        &self,
        trees: usize,
        sums: &mut [V],
        groups: &[u16],
        bin: impl FnOnce(&mut [u16]),
    ) -> bool {
        if let [sum] = sums {
            let mut single = Sum(*sum);
            let done = self.accumulate(trees, &mut single, bin).is_some();
            if done {
                *sum = single.0;
            }
            return done;
        }
        let mut per_group = PerGroup { sums, groups };
        self.accumulate(trees, &mut per_group, bin).is_some()
    }

    /// Bins a row with `bin` and hands `sink` the leaf values of the first `trees` trees.
    #[inline]
    pub(crate) fn accumulate(
        &self,
        trees: usize,
        sink: &mut impl Sink<V>,
        bin: impl FnOnce(&mut [u16]),
    ) -> Option<()> {
        with_slots(self.slots_needed(), |slots| {
            bin(slots);
            match self {
                BinnedForest::Complete(f) => f.accumulate(slots, trees, sink),
                BinnedForest::Lanes(f) => f.accumulate(slots, trees, sink),
            }
        })
    }
}

/// Random source trees for the property tests of both binned forms, and the plain walk they are
/// held to.
#[cfg(test)]
pub(crate) mod test_trees {
    use super::{BinSplit, SourceNode};
    use proptest::prelude::*;

    /// A source tree for tests: `(slot, bin, left, right)` splits or leaves, root first.
    #[derive(Debug, Clone)]
    pub(crate) enum TestNode {
        Leaf(f64),
        Split(BinSplit, usize, usize),
    }

    /// The leaf value a plain walk of `tree` reaches for `slots`.
    pub(crate) fn walk(tree: &[TestNode], slots: &[u16]) -> f64 {
        let mut at = 0;
        loop {
            match &tree[at] {
                TestNode::Leaf(value) => return *value,
                TestNode::Split(split, left, right) => {
                    at = if slots[usize::from(split.slot)] <= split.bin {
                        *left
                    } else {
                        *right
                    };
                }
            }
        }
    }

    /// A random tree of depth at most `depth` and about `size` nodes, reading slots below
    /// `slot_count`; nodes in pre-order.
    pub(crate) fn tree(
        depth: u32,
        size: u32,
        slot_count: u16,
    ) -> impl Strategy<Value = Vec<TestNode>> {
        let leaf = (-8i32..8).prop_map(|v| vec![TestNode::Leaf(f64::from(v) * 0.125)]);
        leaf.prop_recursive(depth, size, 2, move |inner| {
            (0..slot_count, 0u16..6, inner.clone(), inner).prop_map(|(slot, bin, left, right)| {
                let right_at = 1 + left.len();
                let shift = |nodes: Vec<TestNode>, by: usize| {
                    nodes.into_iter().map(move |n| match n {
                        TestNode::Split(s, l, r) => TestNode::Split(s, l + by, r + by),
                        leaf => leaf,
                    })
                };
                let mut nodes = vec![TestNode::Split(BinSplit { slot, bin }, 1, right_at)];
                nodes.extend(shift(left, 1));
                nodes.extend(shift(right, right_at));
                nodes
            })
        })
    }

    /// The tree as a forest reads it (`push_tree(0, source(tree))`).
    pub(crate) fn source(tree: &[TestNode]) -> impl FnMut(usize) -> SourceNode<f64, usize> + '_ {
        |at| match &tree[at] {
            TestNode::Leaf(v) => SourceNode::Leaf(*v),
            TestNode::Split(s, l, r) => SourceNode::Split(*s, *l, *r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_category_block_answers_each_split_from_one_row_of_its_table() {
        // Three splits on one feature, from slot 2: codes {1, 3}, {0}, {} go right; a missing
        // value goes right on the second split only; outside codes go left.
        let right: [&[usize]; 3] = [&[1, 3], &[0], &[]];
        let block = CategoryBlock::new(7, 2, 3, 4, |split, category| match category {
            Category::Code(code) => right[split].contains(&code),
            Category::Missing => split == 1,
            Category::Outside => false,
        })
        .unwrap();
        let mut slots = [9u16; 6];
        for (category, expected) in [
            (Category::Code(0), [0, 1, 0]),
            (Category::Code(1), [1, 0, 0]),
            (Category::Code(3), [1, 0, 0]),
            (Category::Code(4), [0, 0, 0]),
            (Category::Missing, [0, 1, 0]),
            (Category::Outside, [0, 0, 0]),
        ] {
            block.fill(category, &mut slots);
            assert_eq!(&slots[2..5], &expected, "{category:?}");
            assert_eq!(
                (slots[0], slots[1], slots[5]),
                (9, 9, 9),
                "other slots untouched"
            );
        }
        assert!(CategoryBlock::new(0, 0, 64, 1 << 20, |_, _| false).is_none());
    }

    #[test]
    fn categorical_splits_of_each_feature_take_consecutive_slots() {
        let mut splits = CategoricalSplits::new();
        splits.add(5, "a");
        splits.add(2, "a");
        splits.add(5, "b");
        splits.add(5, "a");
        let (slots, blocks) = splits.number();
        assert_eq!(blocks, vec![(2, 0, vec!["a"]), (5, 1, vec!["a", "b"])]);
        assert_eq!(
            (slots[&(2, "a")], slots[&(5, "a")], slots[&(5, "b")]),
            (0, 1, 2)
        );
    }

    #[test]
    fn counting_passing_thresholds_is_a_partition_point() {
        let sorted = [-1.5f32, 0.0, 2.0, 2.5, 10.0];
        for x in [
            -3.0f32,
            -1.5,
            -0.0,
            0.0,
            1.0,
            2.0,
            2.25,
            2.5,
            9.0,
            10.0,
            11.0,
            f32::INFINITY,
        ] {
            assert_eq!(
                count_passing(&sorted, |t| t <= x),
                sorted.partition_point(|t| *t <= x),
                "{x} (at most)"
            );
            assert_eq!(
                count_passing(&sorted, |t| t < x),
                sorted.partition_point(|t| *t < x),
                "{x} (below)"
            );
        }
        assert_eq!(count_passing(&[] as &[f32], |t| t <= 1.0), 0);
        assert_eq!(count_passing(&[1.0f32], |t| t <= 0.5), 0);
        assert_eq!(count_passing(&[1.0f32], |t| t <= 1.0), 1);
    }

    #[test]
    fn slots_are_numbered_once_and_too_many_spoil_the_table() {
        let mut table = SlotTable::new();
        assert_eq!(
            (table.slot('a'), table.slot('b'), table.slot('a')),
            (0, 1, 0)
        );
        assert_eq!(table.into_keys(), Some(vec!['a', 'b']));

        let mut table = SlotTable::new();
        for key in 0..=u32::from(u16::MAX) + 1 {
            table.slot(key);
        }
        assert_eq!(table.into_keys(), None);
    }

    #[test]
    fn missing_values_follow_the_default_direction() {
        // Thresholds t_0 < t_1 < t_2; a split on t_1.
        for default_left in [false, true] {
            let split = BinSplit::new(0, 1, default_left);
            let goes_left = |slot: u16| slot <= split.bin;
            for bin in 0..=3 {
                assert_eq!(goes_left(encode_slot(Some(bin), default_left)), bin <= 1);
            }
            assert_eq!(goes_left(encode_slot(None, default_left)), default_left);
        }
    }
}
