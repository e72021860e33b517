//! The memory [`CallbackStore`]: per callback service, one lock over its records, index, counts
//! and lists, so every operation on a service is atomic and services do not wait for each
//! other. A std `Mutex`, never held across an `.await`: every operation is a short, bounded
//! piece of work (a walk stops at [`SCAN_LIMIT`](super::SCAN_LIMIT), a pass at its batch).
//!
//! Records are packed ([`super::codec`]); options are shared by the records that have the same
//! ones (most records of a service: only request overrides and tokens differ). The index is
//! one ordered set of (slice hash, desired ms, id): a slice is a range of it, and a hash
//! collision only adds candidates, which the query's own test drops. The clock is the
//! system's (epoch milliseconds).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jiff::Timestamp;
use uuid::Uuid;

use super::codec::{pack, pack_pairs, unpack, unpack_pairs};
use super::index::{self, index_ms, room_needed, Counter};
use super::query::{walk, Source};
use super::{
    abortable, apply, CallbackRecord, CallbackStore, ClaimRequest, Claimed, CreateRefusal, Found,
    NewCallback, Query, Rejection, State, StateCounts, Update, Updated, PURGE_ON_CREATE,
};
use crate::callback::change::{claim, Change};
use crate::store::StoreResult;

type Hasher = ahash::RandomState;

/// One source's (desired ms, id) in index order.
type Entries<'a> = std::iter::Peekable<Box<dyn Iterator<Item = (i64, u128)> + 'a>>;

const DAY_MS: i64 = 86_400_000;

/// The memory [`CallbackStore`] (part of [`crate::store::memory::MemoryStore`]).
pub struct MemoryCallbacks {
    /// Hashes slice prefixes; one per store, so every service's index agrees.
    hasher: Hasher,
    services: RwLock<HashMap<Arc<str>, Arc<Mutex<Service>>, Hasher>>,
}

impl Default for MemoryCallbacks {
    fn default() -> Self {
        MemoryCallbacks {
            hasher: Hasher::new(),
            services: RwLock::new(HashMap::default()),
        }
    }
}

/// A packed record and its (shared) packed options.
struct Stored {
    packed: Box<[u8]>,
    options: Arc<[u8]>,
}

/// One service's records and everything kept about them.
struct Service {
    name: Arc<str>,
    hasher: Hasher,
    records: HashMap<u128, Stored, Hasher>,
    /// (slice hash, desired ms, id).
    index: BTreeSet<(u64, i64, u128)>,
    /// Entries per slice hash: which slice of a query is smallest.
    sizes: HashMap<u64, u32, Hasher>,
    /// Records per state, by `State as usize`.
    states: [u64; 7],
    /// Records booked per bucket key.
    buckets: HashMap<i64, u32, Hasher>,
    /// (due ms, id).
    due: BTreeSet<(i64, u128)>,
    /// (expiration ms, id).
    expiry: BTreeSet<(i64, u128)>,
    /// (created ms, id) of the creates within the longest throttle window, in order: a
    /// window's count is a binary search. Creates arrive nearly in order, so an insert lands
    /// near the end.
    throttle: VecDeque<(i64, u128)>,
    /// The latest UTC day `daily` counted in: older days are dropped when it moves on.
    day: i64,
    /// (UTC day, `key\0value`) -> creates that day with that value.
    daily: HashMap<(i64, Box<str>), u32, Hasher>,
    /// Distinct packed option lists in use.
    options: HashSet<Arc<[u8]>, Hasher>,
    /// `options.len()` after its last sweep.
    options_kept: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every change completes under the lock or panics before its first write to a set:
    // carry on after a panic elsewhere rather than take the process down.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

impl MemoryCallbacks {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn existing(&self, service: &str) -> Option<Arc<Mutex<Service>>> {
        let services = self.services.read().unwrap_or_else(|p| p.into_inner());
        services.get(service).cloned()
    }

    fn service(&self, service: &str) -> Arc<Mutex<Service>> {
        if let Some(s) = self.existing(service) {
            return s;
        }
        let mut services = self.services.write().unwrap_or_else(|p| p.into_inner());
        let name: Arc<str> = Arc::from(service);
        services
            .entry(name.clone())
            .or_insert_with(|| Arc::new(Mutex::new(Service::new(name, self.hasher.clone()))))
            .clone()
    }

    /// Runs `f` on a service that exists; `default` when it has never had a record.
    fn with<T>(&self, service: &str, default: T, f: impl FnOnce(&mut Service) -> T) -> T {
        match self.existing(service) {
            Some(s) => f(&mut lock(&s)),
            None => default,
        }
    }
}

impl Service {
    fn new(name: Arc<str>, hasher: Hasher) -> Service {
        Service {
            name,
            hasher,
            records: HashMap::default(),
            index: BTreeSet::new(),
            sizes: HashMap::default(),
            states: [0; 7],
            buckets: HashMap::default(),
            due: BTreeSet::new(),
            expiry: BTreeSet::new(),
            throttle: VecDeque::new(),
            day: i64::MIN,
            daily: HashMap::default(),
            options: HashSet::default(),
            options_kept: 0,
        }
    }

    fn slice_hash(&self, prefix: &[u8]) -> u64 {
        self.hasher.hash_one(prefix)
    }

    /// A record, live or not.
    fn read(&self, id: u128) -> Option<CallbackRecord> {
        let s = self.records.get(&id)?;
        let options = unpack_pairs(&s.options)?;
        unpack(&s.packed, Uuid::from_u128(id), &self.name, options)
    }

    /// A record not expired at `now`.
    fn live(&self, id: u128, now: i64) -> Option<CallbackRecord> {
        self.read(id).filter(|r| ms(r.expires) > now)
    }

    fn intern(&mut self, packed: Vec<u8>) -> Arc<[u8]> {
        if let Some(a) = self.options.get(packed.as_slice()) {
            return a.clone();
        }
        if self.options.len() > 2 * self.options_kept + 64 {
            self.options.retain(|a| Arc::strong_count(a) > 1);
            self.options_kept = self.options.len();
        }
        let a: Arc<[u8]> = Arc::from(packed);
        self.options.insert(a.clone());
        a
    }

    /// Moves `before` (`None`: absent) to `after` (`None`: removed) in the records, index,
    /// counts and lists.
    fn write(&mut self, before: Option<&CallbackRecord>, after: Option<&CallbackRecord>) {
        let d = index::delta(before, after);
        for e in &d.remove {
            let h = self.slice_hash(&e.prefix);
            if self.index.remove(&(h, e.desired, e.id.as_u128())) {
                if let Some(n) = self.sizes.get_mut(&h) {
                    *n -= 1;
                    if *n == 0 {
                        self.sizes.remove(&h);
                    }
                }
            }
        }
        for e in &d.add {
            let h = self.slice_hash(&e.prefix);
            if self.index.insert((h, e.desired, e.id.as_u128())) {
                *self.sizes.entry(h).or_default() += 1;
            }
        }
        for (c, by) in d.counts {
            match c {
                Counter::State(s) => {
                    let n = &mut self.states[s as usize];
                    *n = n.saturating_add_signed(by);
                }
                Counter::Bucket(b) => {
                    let n = i64::from(self.buckets.get(&b).copied().unwrap_or(0)) + by;
                    if n > 0 {
                        self.buckets.insert(b, n as u32);
                    } else {
                        self.buckets.remove(&b);
                    }
                }
            }
        }
        if let Some(b) = before {
            let id = b.id.as_u128();
            if let Some(t) = b.due_at() {
                self.due.remove(&(ms(t), id));
            }
            self.expiry.remove(&(ms(b.expires), id));
        }
        match after {
            Some(a) => {
                let id = a.id.as_u128();
                if let Some(t) = a.due_at() {
                    self.due.insert((ms(t), id));
                }
                self.expiry.insert((ms(a.expires), id));
                let kept = before
                    .filter(|b| b.options == a.options)
                    .and_then(|_| self.records.get(&id))
                    .map(|s| s.options.clone());
                let options = match kept {
                    Some(o) => o,
                    None => self.intern(pack_pairs(&a.options)),
                };
                let packed = pack(a);
                self.records.insert(id, Stored { packed, options });
            }
            None => {
                if let Some(b) = before {
                    self.records.remove(&b.id.as_u128());
                }
            }
        }
    }

    /// Removes up to `max` records expired at `now`.
    fn purge(&mut self, now: i64, max: usize) -> usize {
        let expired: Vec<(i64, u128)> = self
            .expiry
            .range(..=(now, u128::MAX))
            .take(max)
            .copied()
            .collect();
        for (t, id) in &expired {
            match self.read(*id) {
                Some(r) => self.write(Some(&r), None),
                None => {
                    self.expiry.remove(&(*t, *id));
                }
            }
        }
        expired.len()
    }

    /// The first check of §3.2 steps 4–5 that `new` fails at `now`.
    fn refusal(&self, new: &NewCallback, now: i64) -> Option<CreateRefusal> {
        let r = &new.record;
        let limits = &new.limits;
        if let (Some(cap), Some(b)) = (new.capacity, r.booked_bucket()) {
            if self.buckets.get(&b).copied().unwrap_or(0) >= cap {
                return Some(CreateRefusal::BucketFull);
            }
        }
        if let Some(max) = limits.max_active {
            let active: u64 = State::ALL
                .iter()
                .filter(|s| s.is_active())
                .map(|s| self.states[*s as usize])
                .sum();
            if active >= u64::from(max) {
                return Some(CreateRefusal::QueueFull);
            }
        }
        let created = ms(r.created);
        for (index, t) in limits.throttles.iter().enumerate() {
            let since = created - t.window.as_millis() as i64;
            let within = self.throttle.len() - self.throttle.partition_point(|e| e.0 <= since);
            if within >= t.max as usize {
                return Some(CreateRefusal::Throttled {
                    index,
                    window: t.window,
                });
            }
        }
        if let Some(p) = &limits.per_parameter {
            let day = created.div_euclid(DAY_MS);
            for (key, value) in &p.values {
                let field: Box<str> = format!("{key}\0{value}").into();
                if self.daily.get(&(day, field)).copied().unwrap_or(0) >= p.max {
                    return Some(CreateRefusal::ParameterLimit {
                        key: key.clone(),
                        value: value.clone(),
                    });
                }
            }
        }
        if let Some(max) = limits.in_queue {
            if self.open_callbacks(&r.customer_number, now, max as usize) >= max as usize {
                return Some(CreateRefusal::Duplicate);
            }
        }
        None
    }

    /// Non-final live records with this customer number, counted up to `max`.
    fn open_callbacks(&self, customer_number: &str, now: i64, max: usize) -> usize {
        let slice = index::Slice::Lookup(
            crate::callback::record::CUSTOMER_NUMBER.into(),
            customer_number.into(),
        );
        let h = self.slice_hash(&slice.prefix());
        self.index
            .range((h, i64::MIN, 0)..=(h, i64::MAX, u128::MAX))
            .filter_map(|(_, _, id)| self.live(*id, now))
            .filter(|r| r.customer_number == customer_number && !r.state.is_final())
            .take(max)
            .count()
    }

    /// Counts a create in the throttles (and forgets creates older than every window).
    fn count_create(&mut self, new: &NewCallback, by: i64) {
        let r = &new.record;
        let created = ms(r.created);
        let id = r.id.as_u128();
        if let Some(longest) = new.limits.throttles.iter().map(|t| t.window).max() {
            let at = self.throttle.partition_point(|e| *e < (created, id));
            if by > 0 {
                self.throttle.insert(at, (created, id));
                let oldest = created - longest.as_millis() as i64;
                while self.throttle.front().is_some_and(|e| e.0 <= oldest) {
                    self.throttle.pop_front();
                }
            } else if self.throttle.get(at) == Some(&(created, id)) {
                self.throttle.remove(at);
            }
        }
        if let Some(p) = &new.limits.per_parameter {
            let day = created.div_euclid(DAY_MS);
            if by > 0 && day > self.day {
                // Days before yesterday are never asked about again.
                self.daily.retain(|(d, _), _| *d >= day - 1);
                self.day = day;
            }
            for (key, value) in &p.values {
                let field: Box<str> = format!("{key}\0{value}").into();
                let n = self.daily.entry((day, field)).or_default();
                *n = n.saturating_add_signed(by as i32);
            }
        }
    }

    fn query(&self, q: &Query, now: i64) -> Found {
        let groups = q.plan();
        let size = |src: &Source| match src {
            Source::Id(_) => 1,
            Source::Slice(s) => self
                .sizes
                .get(&self.slice_hash(&s.prefix()))
                .copied()
                .unwrap_or(0) as u64,
        };
        let Some(group) = groups
            .iter()
            .min_by_key(|g| g.iter().map(size).sum::<u64>())
        else {
            return Found::default();
        };
        let (from, after) = q.start();
        let to = q.end().unwrap_or(i64::MAX);
        let mut heads: Vec<Entries<'_>> = Vec::new();
        for src in group {
            let it: Box<dyn Iterator<Item = (i64, u128)> + '_> = match src {
                Source::Id(id) => Box::new(
                    self.read(id.as_u128())
                        .map(|r| (index_ms(r.desired), id.as_u128()))
                        .into_iter(),
                ),
                Source::Slice(s) => {
                    let h = self.slice_hash(&s.prefix());
                    let lo = match after {
                        Some(id) => (h, from, id.as_u128()),
                        None => (h, from, 0),
                    };
                    let hi = (h, to, u128::MAX);
                    if lo > hi {
                        continue;
                    }
                    let lo = match after {
                        Some(_) => Bound::Excluded(lo),
                        None => Bound::Included(lo),
                    };
                    Box::new(
                        self.index
                            .range((lo, Bound::Included(hi)))
                            .map(|(_, d, id)| (*d, *id)),
                    )
                }
            };
            heads.push(it.peekable());
        }
        let mut last = None;
        let merged = std::iter::from_fn(move || loop {
            let i = (0..heads.len())
                .filter_map(|i| heads[i].peek().map(|k| (*k, i)))
                .min()?
                .1;
            let key = heads[i].next();
            if key != last {
                last = key;
                return key;
            }
        });
        walk(q, merged.filter_map(|(_, id)| self.live(id, now)))
    }

    fn claim_due(&mut self, req: &ClaimRequest, now: i64) -> Claimed {
        let due: Vec<(i64, u128)> = self
            .due
            .range(..=(now, u128::MAX))
            .take(req.batch)
            .copied()
            .collect();
        let until = at(now.saturating_add(req.lease.as_millis() as i64));
        let stale_before = req
            .recovery
            .map(|r| now.saturating_sub(r.as_millis() as i64));
        let mut out = Claimed {
            more: req.batch > 0 && due.len() == req.batch,
            ..Claimed::default()
        };
        for (t, id) in due {
            let Some(r) = self.read(id) else {
                self.due.remove(&(t, id));
                continue;
            };
            if ms(r.expires) <= now {
                self.write(Some(&r), None);
                continue;
            }
            let submit = ms(r.next_attempt.unwrap_or(r.submit_at));
            let stale = stale_before.is_some_and(|s| submit < s);
            let next = match r.state {
                State::Submitting if r.immediate => {
                    self.write(Some(&r), None);
                    out.dropped.push(r.id);
                    continue;
                }
                State::Submitting if r.attempts >= req.max_attempts || stale => None,
                State::Scheduled if stale => None,
                State::Scheduled | State::Submitting => Some(claim(&r, &req.node, until)),
                _ => {
                    self.due.remove(&(t, id));
                    continue;
                }
            };
            match next {
                Some(claimed) => {
                    self.write(Some(&r), Some(&claimed));
                    out.records.push(claimed);
                }
                None => {
                    let update = Update {
                        change: Some(Change::GiveUp),
                        ..Update::default()
                    };
                    if let Ok(failed) = apply(&r, &update) {
                        self.write(Some(&r), Some(&failed));
                        out.failed.push(r.id);
                    }
                }
            }
        }
        out
    }
}

#[async_trait]
impl CallbackStore for MemoryCallbacks {
    async fn create(
        &self,
        new: &NewCallback,
    ) -> StoreResult<Result<CallbackRecord, CreateRefusal>> {
        let record = new.record.normalized();
        let svc = self.service(&record.service);
        let mut s = lock(&svc);
        let now = now_ms();
        s.purge(now, PURGE_ON_CREATE);
        if let Some(refusal) = s.refusal(new, now) {
            return Ok(Err(refusal));
        }
        s.write(None, Some(&record));
        s.count_create(new, 1);
        Ok(Ok(record))
    }

    async fn abort(&self, new: &NewCallback) -> StoreResult<bool> {
        let r = &new.record;
        Ok(self.with(&r.service, false, |s| {
            let Some(cur) = s.read(r.id.as_u128()) else {
                return false;
            };
            if !abortable(&cur, new) {
                return false;
            }
            s.write(Some(&cur), None);
            s.count_create(new, -1);
            true
        }))
    }

    async fn get(&self, service: &str, id: Uuid) -> StoreResult<Option<CallbackRecord>> {
        Ok(self.with(service, None, |s| s.live(id.as_u128(), now_ms())))
    }

    async fn find(&self, services: &[&str], id: Uuid) -> StoreResult<Option<CallbackRecord>> {
        let now = now_ms();
        Ok(services
            .iter()
            .find_map(|svc| self.with(svc, None, |s| s.live(id.as_u128(), now))))
    }

    async fn update(&self, service: &str, id: Uuid, update: &Update) -> StoreResult<Updated> {
        Ok(self.with(service, Updated::NotFound, |s| {
            let Some(cur) = s.live(id.as_u128(), now_ms()) else {
                return Updated::NotFound;
            };
            let next = match apply(&cur, update) {
                Ok(next) => next,
                Err(why) => return Updated::Refused(why, cur),
            };
            if let Some((bucket, cap)) = room_needed(&cur, &next, update) {
                if s.buckets.get(&bucket).copied().unwrap_or(0) >= cap {
                    return Updated::Refused(Rejection::BucketFull, cur);
                }
            }
            s.write(Some(&cur), Some(&next));
            Updated::Done(next)
        }))
    }

    async fn query(&self, services: &[&str], query: &Query) -> StoreResult<Found> {
        let now = now_ms();
        let parts = services
            .iter()
            .map(|svc| {
                self.with(
                    svc,
                    Found {
                        records: vec![],
                        complete: true,
                    },
                    |s| s.query(query, now),
                )
            })
            .collect();
        Ok(Found::merge(parts, query.limit))
    }

    async fn booked(&self, service: &str, buckets: &[i64]) -> StoreResult<Vec<u32>> {
        Ok(self.with(service, vec![0; buckets.len()], |s| {
            buckets
                .iter()
                .map(|b| s.buckets.get(b).copied().unwrap_or(0))
                .collect()
        }))
    }

    async fn state_counts(&self, services: &[&str]) -> StoreResult<Vec<StateCounts>> {
        Ok(services
            .iter()
            .map(|svc| {
                self.with(svc, StateCounts::default(), |s| StateCounts {
                    counts: s.states,
                })
            })
            .collect())
    }

    async fn claim_due(&self, service: &str, claim: &ClaimRequest) -> StoreResult<Claimed> {
        Ok(self.with(service, Claimed::default(), |s| {
            s.claim_due(claim, now_ms())
        }))
    }

    async fn purge_expired(&self, service: &str, max: usize) -> StoreResult<usize> {
        Ok(self.with(service, 0, |s| s.purge(now_ms(), max)))
    }
}
