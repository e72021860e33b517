//! ORS sessions, shared by every instance, in a table bounded by `--max-sessions`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};

/// One ORS session.
pub struct Session {
    /// The instance that started it.
    pub owner: Arc<str>,
    pub params: Map<String, Value>,
    pub started: Instant,
    /// `_service_id` of the start (parameter or `X-GMS-service_id`): the callback id.
    pub service_id: Option<String>,
    /// `_service_name` of the start, where callback state reports go.
    pub service_name: Option<String>,
}

/// Live sessions.
pub type Sessions = Bounded<Session>;

/// A map by id that keeps at most `max` entries, evicting the oldest, since a benchmark may
/// start sessions (and callbacks) and never end them.
pub struct Bounded<V> {
    pub map: HashMap<String, V>,
    /// Creation order; may hold ids already removed, compacted when it grows too long.
    order: VecDeque<String>,
    max: usize,
}

impl<V> Bounded<V> {
    /// An empty map keeping at most `max` entries.
    pub fn new(max: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            max,
        }
    }

    /// Inserts (or replaces) `id`; returns what was evicted to make room (and the value
    /// replaced). A replaced id keeps its first place in the eviction order.
    pub fn insert(&mut self, id: String, v: V) -> Vec<V> {
        let mut evicted = Vec::new();
        self.order.push_back(id.clone());
        if let Some(old) = self.map.insert(id, v) {
            evicted.push(old);
        }
        while self.map.len() > self.max {
            match self.order.pop_front() {
                Some(old) => evicted.extend(self.map.remove(&old)),
                None => break,
            }
        }
        if self.order.len() > 2 * self.map.len() + 1024 {
            let map = &self.map;
            self.order.retain(|id| map.contains_key(id));
        }
        evicted
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_evicts_the_oldest() {
        let mut s = Bounded::new(3);
        for i in 0..10 {
            let evicted = s.insert(format!("s{i}"), i);
            assert_eq!(evicted, if i < 3 { vec![] } else { vec![i - 3] });
        }
        assert_eq!(s.map.len(), 3);
        assert!(s.map.contains_key("s9") && !s.map.contains_key("s6"));
        // A replaced entry is handed back too.
        assert_eq!(s.insert("s9".into(), 99), [9]);
        // Created and removed at once: the order queue must not grow without bound.
        for i in 0..10_000 {
            let id = format!("t{i}");
            s.insert(id.clone(), i);
            s.map.remove(&id);
        }
        assert!(s.order.len() <= 2 * s.map.len() + 1025);
        s.clear();
        assert!(s.map.is_empty() && s.order.is_empty());
    }
}
