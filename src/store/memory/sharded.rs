//! The memory store's maps: split into shards by key hash, each behind its own std mutex,
//! every entry with its expiry; and the interner for strings that repeat across entries.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

/// Shards per map.
pub(super) const SHARDS: usize = 64;

/// Milliseconds since the store was made: an 8-byte expiry instead of a 16-byte `Instant`.
pub(super) type Ms = u64;

/// A value and when it expires.
pub(super) struct Entry<V> {
    pub(super) value: V,
    pub(super) expires: Ms,
}

/// ahash: keyed per process like std's SipHash (custom storage ids come from clients), faster.
pub(super) type Hasher = ahash::RandomState;

/// A map split into shards by key hash; each shard has its own lock.
pub(super) struct Sharded<K, V> {
    hasher: Hasher,
    shards: Vec<Mutex<HashMap<K, Entry<V>, Hasher>>>,
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    pub(super) fn new() -> Self {
        Sharded {
            hasher: Default::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }

    pub(super) fn shard(&self, key: &K) -> MutexGuard<'_, HashMap<K, Entry<V>, Hasher>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        lock(&self.shards[i])
    }

    /// Drops a shard's expired entries (`dropped` sees each one); returns how many it held
    /// before and after.
    pub(super) fn sweep_shard(
        &self,
        i: usize,
        now: Ms,
        mut dropped: impl FnMut(&K, &V),
    ) -> (usize, usize) {
        let mut shard = lock(&self.shards[i % SHARDS]);
        let before = shard.len();
        shard.retain(|k, e| {
            let live = e.expires > now;
            if !live {
                dropped(k, &e.value);
            }
            live
        });
        let after = shard.len();
        // A burst that has expired leaves a large empty table behind: give the memory back.
        if shard.capacity() > 64 && shard.len() < shard.capacity() / 4 {
            shard.shrink_to_fit();
        }
        (before, after)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Entries not expired at `now`; one shard locked at a time.
    pub(super) fn count_live(&self, now: Ms) -> usize {
        self.shards
            .iter()
            .map(|s| lock(s).values().filter(|e| e.expires > now).count())
            .sum()
    }
}

/// A poisoned lock means a panic happened while it was held; the maps stay usable (every
/// mutation is a single insert/remove), so carry on rather than take the process down.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Shared copies of strings that repeat across entries (service names, access numbers).
#[derive(Default)]
pub(super) struct Interner {
    set: RwLock<HashSet<Arc<str>, Hasher>>,
}

impl Interner {
    pub(super) fn get(&self, s: &str) -> Arc<str> {
        if let Some(a) = self.set.read().unwrap_or_else(|p| p.into_inner()).get(s) {
            return a.clone();
        }
        let mut set = self.set.write().unwrap_or_else(|p| p.into_inner());
        if let Some(a) = set.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        // Names come from the configuration; cap the set in case something else ever flows in.
        if set.len() < 100_000 {
            set.insert(a.clone());
        }
        a
    }
}

/// Milliseconds of `d`, capped far below overflow when added to a [`Ms`].
pub(super) fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX / 2)) as u64
}
