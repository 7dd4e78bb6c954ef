//! Named lists (blocked IDs, phone numbers, employers) with O(1) membership for `in_list`.

// Fx hashing: the sets come from the strategy package, and probing them with a value from an
// application is a short string hash rather than SipHash's rounds.
use rustc_hash::FxHashSet as HashSet;

/// The lists of one strategy package, by name. Values are compared as exact strings after
/// trimming; normalise (hash, lower-case) before loading and before asking.
#[derive(Debug, Clone, Default)]
pub struct NamedLists {
    names: Vec<String>,
    sets: Vec<HashSet<Box<str>>>,
}

impl NamedLists {
    /// No lists.
    pub fn new() -> Self {
        NamedLists::default()
    }

    /// Adds a list; a second list of the same name replaces the first.
    pub fn insert<I, S>(&mut self, name: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set: HashSet<Box<str>> = values
            .into_iter()
            .map(|v| v.as_ref().trim().to_string())
            .filter(|v| !v.is_empty())
            .map(String::into_boxed_str)
            .collect();
        match self.index_of(name) {
            Some(index) => self.sets[index] = set,
            None => {
                self.names.push(name.to_string());
                self.sets.push(set);
            }
        }
    }

    /// The index of the list called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// The lists' names, in index order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// How many values the list at `index` has.
    pub fn len_of(&self, index: usize) -> usize {
        self.sets.get(index).map_or(0, |set| set.len())
    }

    /// Whether the list at `index` holds `value`.
    pub fn contains(&self, index: usize, value: &str) -> bool {
        self.sets
            .get(index)
            .is_some_and(|set| set.contains(value.trim()))
    }
}
