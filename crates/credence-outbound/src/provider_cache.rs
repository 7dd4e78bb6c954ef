//! The provider answer cache: answers reused per (source, subject) until their TTL, bounded in
//! size, with O(1) work per lookup and insert.
//!
//! Why not a plain map swept when full: with a long TTL (30 days for an income check) nothing
//! expires, so a sweep frees nothing and runs again on every insert — a full scan per decision.
//! Here entries leave in insertion order (oldest first) once the cache is full, and expired
//! entries leave when they are looked up or reach the front.
//!
//! Why shards: a hash table rehashes all its keys now and then — when it grows, and, once full,
//! whenever removals have left it enough tombstones. Under one lock that stopped every decision
//! needing an answer for as long as the rehash took (tens of milliseconds at 100,000 answers,
//! seen as a latency spike each time the cache doubled). [`ShardedCache`] splits the answers
//! over [`SHARDS`] tables, each under its own lock: a rehash touches 1/64 of them and holds up
//! only the decisions whose key falls in that shard.

use foldhash::fast::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard};
use tokio::time::Instant;

/// Tables a [`ShardedCache`] splits its answers over.
pub const SHARDS: usize = 64;

/// [`TtlCache`]s under a lock each, a key's shard chosen by its hash; each holds an equal part
/// of the capacity and evicts its own oldest answers first. Keys hold the callers' subjects:
/// the hashes (the shard's and each table's) are foldhash's, seeded per process, at a fraction
/// of SipHash's cost on every fetch.
pub struct ShardedCache<K, V> {
    shards: Box<[Mutex<TtlCache<K, V>>]>,
    hasher: RandomState,
}

impl<K: Hash + Eq + Clone, V> ShardedCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        ShardedCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(TtlCache::new(per_shard)))
                .collect(),
            hasher: RandomState::default(),
        }
    }

    /// The shard that holds `key`, locked.
    pub fn shard(&self, key: &K) -> MutexGuard<'_, TtlCache<K, V>> {
        let index = (self.hasher.hash_one(key) % SHARDS as u64) as usize;
        self.shards[index].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers held, all shards together.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

pub struct TtlCache<K, V> {
    capacity: usize,
    entries: HashMap<K, Entry<V>, RandomState>,
    /// Keys in insertion order, with the insertion number that identifies the live entry (a
    /// key inserted again leaves a stale record here, skipped when it reaches the front).
    order: VecDeque<(K, u64)>,
    next_insertion: u64,
}

struct Entry<V> {
    expires: Instant,
    insertion: u64,
    value: V,
}

impl<K: Hash + Eq + Clone, V> TtlCache<K, V> {
    /// A cache for `capacity` answers, its tables sized for all of them from the start (memory
    /// not used yet is reserved, not touched), so that filling it does not grow them step by
    /// step.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        TtlCache {
            capacity,
            entries: HashMap::with_capacity_and_hasher(capacity + 1, RandomState::default()),
            order: VecDeque::with_capacity(capacity + 1),
            next_insertion: 0,
        }
    }

    /// The live value for `key` at `now`; an expired entry is removed.
    pub fn get(&mut self, key: &K, now: Instant) -> Option<&V> {
        if self.entries.get(key).is_some_and(|e| e.expires <= now) {
            self.entries.remove(key);
            return None;
        }
        self.entries.get(key).map(|e| &e.value)
    }

    pub fn insert(&mut self, key: K, value: V, expires: Instant, now: Instant) {
        let insertion = self.next_insertion;
        self.next_insertion += 1;
        self.entries.insert(
            key.clone(),
            Entry {
                expires,
                insertion,
                value,
            },
        );
        self.order.push_back((key, insertion));
        // Drop what is at the front while the cache is over capacity, the front has expired,
        // or the front record is stale; each record is popped once, so this is O(1) amortised.
        while let Some((front, front_insertion)) = self.order.front() {
            let live = self
                .entries
                .get(front)
                .filter(|e| e.insertion == *front_insertion);
            let drop = match live {
                None => true,
                Some(entry) => self.entries.len() > self.capacity || entry.expires <= now,
            };
            if !drop {
                break;
            }
            if live.is_some() {
                self.entries.remove(front);
            }
            self.order.pop_front();
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn answers_until_expiry_then_forgets() {
        let mut cache = TtlCache::new(10);
        let t0 = Instant::now();
        cache.insert("a", 1, t0 + Duration::from_secs(5), t0);
        assert_eq!(cache.get(&"a", t0 + Duration::from_secs(4)), Some(&1));
        assert_eq!(cache.get(&"a", t0 + Duration::from_secs(5)), None);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn stays_within_capacity_dropping_the_oldest_first() {
        let mut cache = TtlCache::new(3);
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(3600);
        for (i, key) in ["a", "b", "c", "d", "e"].into_iter().enumerate() {
            cache.insert(key, i, far, t0);
            assert!(cache.len() <= 3);
        }
        assert_eq!(cache.get(&"a", t0), None);
        assert_eq!(cache.get(&"b", t0), None);
        assert_eq!(cache.get(&"e", t0), Some(&4));
    }

    #[test]
    fn a_refreshed_key_is_not_dropped_by_its_stale_record() {
        let mut cache = TtlCache::new(2);
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(3600);
        cache.insert("a", 1, far, t0);
        cache.insert("b", 2, far, t0);
        cache.insert("a", 3, far, t0); // refresh: "a" is now the newest
        cache.insert("c", 4, far, t0); // over capacity: "b" (oldest live) goes, not "a"
        assert_eq!(cache.get(&"a", t0), Some(&3));
        assert_eq!(cache.get(&"b", t0), None);
        assert_eq!(cache.get(&"c", t0), Some(&4));
        assert!(cache.order.len() <= 3, "stale records are popped");
    }

    #[test]
    fn many_inserts_with_a_long_ttl_stay_bounded() {
        let mut cache = TtlCache::new(1000);
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(30 * 86_400);
        for i in 0..50_000u32 {
            cache.insert(i, i, far, t0);
        }
        assert_eq!(cache.len(), 1000);
        assert!(cache.order.len() <= 1001);
        assert_eq!(cache.get(&49_999, t0), Some(&49_999));
    }

    #[test]
    fn a_sharded_cache_spreads_its_answers_and_keeps_its_bound() {
        let cache = ShardedCache::new(6400);
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(86_400);
        for i in 0..50_000u32 {
            cache.shard(&i).insert(i, i, far, t0);
        }
        // Each shard holds at most its part (100); together, close to the whole.
        assert!(cache.len() <= 6400 && cache.len() > 6000, "{}", cache.len());
        for shard in cache.shards.iter() {
            let shard = shard.lock().unwrap();
            assert!(shard.len() <= 100, "{}", shard.len());
        }
        // The newest answers are all there; the oldest are gone.
        for i in 49_000..50_000u32 {
            assert_eq!(cache.shard(&i).get(&i, t0), Some(&i), "{i}");
        }
        assert_eq!(cache.shard(&0).get(&0, t0), None);
    }
}
