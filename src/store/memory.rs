//! The embedded store: all state in this process's memory (one node; lost on restart).
//!
//! Maps are split into shards, each behind a std `Mutex` that is never held across an
//! `.await`: with few cores, short critical sections on many locks beat one async lock. Every
//! entry carries its expiry: reads treat expired entries as absent at once, and a sweeper
//! thread reclaims them a shard at a time, so memory does not grow with dead entries.
//!
//! Entries are kept packed, because a million live services must fit in about a kilobyte
//! each: UUID keys as 16 bytes, expiries as milliseconds since the store's birth, user data as
//! one buffer ([`super::packed`]), service names and access numbers shared (interned).

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, Once, RwLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use super::budget::Budget;
use super::callback::memory::MemoryCallbacks;
use super::callback::CallbackStore;
use super::pool::{pack_code, unpack_code, Pools};
use super::{
    may_access, packed, DataRecord, MatchOutcome, MatchRequest, NumberUse, OrsSession, PutMode,
    Reservation, ReservationRef, ReserveRequest, ServiceRecord, StatusEntry, Store, StoreResult,
    Usage,
};
use crate::value::{merge_fields, Fields};

const SHARDS: usize = 64;
/// One shard of each map per tick: a full pass every `SHARDS * SWEEP_TICK` (3.2 s).
const SWEEP_TICK: Duration = Duration::from_millis(50);
/// The tick while most of what is swept has expired (records made and dropped at a high
/// rate): a full pass every 0.8 s, so their memory is reused sooner. Long-lived entries are
/// not scanned that often: with every pass at 0.8 s, the benchmark's scale ratio (creates
/// with a million live services against a thousand) fell from 1.03 to 0.94.
const SWEEP_TICK_CHURN: Duration = Duration::from_micros(12_500);
/// Numbers whose holds one tick purges.
const SWEEP_NUMBERS: usize = 1;

/// Milliseconds since the store was made: an 8-byte expiry instead of a 16-byte `Instant`.
type Ms = u64;

struct Entry<V> {
    value: V,
    expires: Ms,
}

/// A map split into shards by key hash; each shard has its own lock.
/// ahash: keyed per process like std's SipHash (custom storage ids come from clients), faster.
type Hasher = ahash::RandomState;

struct Sharded<K, V> {
    hasher: Hasher,
    shards: Vec<Mutex<HashMap<K, Entry<V>, Hasher>>>,
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    fn new() -> Self {
        Sharded {
            hasher: Default::default(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
        }
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, HashMap<K, Entry<V>, Hasher>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        lock(&self.shards[i])
    }

    /// Drops a shard's expired entries (`dropped` sees each one); returns how many it held
    /// before and after.
    fn sweep_shard(&self, i: usize, now: Ms, mut dropped: impl FnMut(&K, &V)) -> (usize, usize) {
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
    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Entries not expired at `now`; one shard locked at a time.
    fn count_live(&self, now: Ms) -> usize {
        self.shards
            .iter()
            .map(|s| lock(s).values().filter(|e| e.expires > now).count())
            .sum()
    }
}

impl Sharded<DataKey, StoredData> {
    /// Inserts a record whose bytes the caller took from `budget`; gives back those of a
    /// record it replaces.
    fn insert(&self, key: DataKey, entry: Entry<StoredData>, budget: &Budget) {
        let replaced = self.shard(&key).insert(key.clone(), entry);
        if let Some(old) = replaced {
            budget.give(old.value.bytes(&key));
        }
    }

    /// Removes a record and gives its bytes back to `budget`.
    fn remove(&self, key: &DataKey, budget: &Budget) {
        if let Some(old) = self.shard(key).remove(key) {
            budget.give(old.value.bytes(key));
        }
    }
}

/// A poisoned lock means a panic happened while it was held; the maps stay usable (every
/// mutation is a single insert/remove), so carry on rather than take the process down.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A data id: the gateway's own UUIDs as 16 bytes, custom names as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum DataKey {
    Id(u128),
    Name(Box<str>),
}

impl DataKey {
    fn of(id: &str) -> DataKey {
        // Only the canonical lowercase form maps to a UUID key, so a custom name that differs
        // from an id only in case stays a different key.
        match crate::ids::parse_id(id) {
            Some(u) if !id.bytes().any(|b| b.is_ascii_uppercase()) => DataKey::Id(u.as_u128()),
            _ => DataKey::Name(id.into()),
        }
    }
}

struct StoredData {
    owner: Option<Box<str>>,
    fields: Bytes,
}

impl StoredData {
    fn pack(record: DataRecord) -> Self {
        StoredData {
            owner: record.owner.map(String::into_boxed_str),
            fields: packed::encode(&record.fields),
        }
    }

    fn unpack(&self) -> DataRecord {
        DataRecord {
            owner: self.owner.as_deref().map(str::to_string),
            fields: packed::decode(&self.fields).unwrap_or_default(),
        }
    }

    fn fields(&self) -> Fields {
        packed::decode(&self.fields).unwrap_or_default()
    }

    /// What the record counts against the byte budget: its values and files (packed, keys
    /// included), its owner and its id when that is a name of the client's.
    fn bytes(&self, key: &DataKey) -> u64 {
        let name = match key {
            DataKey::Id(_) => 0,
            DataKey::Name(n) => n.len(),
        };
        (self.fields.len() + self.owner.as_deref().map_or(0, str::len) + name) as u64
    }
}

struct StoredService {
    service: Arc<str>,
    data_id: u128,
    owner: Option<Box<str>>,
    service_ttl_ms: u64,
    data_ttl_ms: u64,
    ors: Option<Box<OrsSession>>,
    /// Access number (interned) and packed code (0: none).
    reservations: Box<[(Arc<str>, u64)]>,
}

impl StoredService {
    fn unpack(&self, id: u128) -> ServiceRecord {
        ServiceRecord {
            id: Uuid::from_u128(id),
            service: self.service.to_string(),
            data_id: Uuid::from_u128(self.data_id),
            owner: self.owner.as_deref().map(str::to_string),
            service_ttl: Duration::from_millis(self.service_ttl_ms),
            data_ttl: Duration::from_millis(self.data_ttl_ms),
            ors: self.ors.as_deref().cloned(),
            reservations: self
                .reservations
                .iter()
                .map(|(n, c)| ReservationRef {
                    number: n.to_string(),
                    code: (*c != 0).then(|| unpack_code(*c)),
                })
                .collect(),
        }
    }
}

/// Shared copies of strings that repeat across entries (service names, access numbers).
#[derive(Default)]
struct Interner {
    set: RwLock<HashSet<Arc<str>, Hasher>>,
}

impl Interner {
    fn get(&self, s: &str) -> Arc<str> {
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

struct Inner {
    born: Instant,
    services: Sharded<u128, StoredService>,
    data: Sharded<DataKey, StoredData>,
    status: Sharded<u128, StatusEntry>,
    /// One lock for all pools: allocation scans a group and must see it whole.
    pools: Mutex<Pools>,
    names: Interner,
    /// The bytes of user data held, against `gms.limits.max_store_bytes`.
    budget: Budget,
}

/// The embedded in-memory [`Store`].
pub struct MemoryStore {
    inner: Arc<Inner>,
    sweeper: Once,
    callbacks: MemoryCallbacks,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store without a byte budget; its sweeper starts with [`Store::start_upkeep`].
    pub fn new() -> Self {
        Self::with_budget(u64::MAX)
    }

    /// An empty store that holds at most `max_bytes` of user data (see [`Budget`]).
    pub fn with_budget(max_bytes: u64) -> Self {
        let inner = Arc::new(Inner {
            born: Instant::now(),
            services: Sharded::new(),
            data: Sharded::new(),
            status: Sharded::new(),
            pools: Mutex::new(Pools::default()),
            names: Interner::default(),
            budget: Budget::new(max_bytes),
        });
        MemoryStore {
            inner,
            sweeper: Once::new(),
            callbacks: MemoryCallbacks::new(),
        }
    }

    /// Live-or-unswept entry counts: (services, data records, status entries, holds).
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let i = &self.inner;
        (
            i.services.len(),
            i.data.len(),
            i.status.len(),
            lock(&i.pools).hold_count(),
        )
    }
}

fn sweeper(weak: Weak<Inner>) {
    let mut shard = 0usize;
    let mut tick = SWEEP_TICK;
    loop {
        std::thread::sleep(tick);
        let Some(inner) = weak.upgrade() else { return };
        let now = inner.now();
        let swept = [
            inner.services.sweep_shard(shard, now, |_, _| {}),
            inner
                .data
                .sweep_shard(shard, now, |k, d| inner.budget.give(d.bytes(k))),
            inner.status.sweep_shard(shard, now, |_, _| {}),
        ];
        let (before, after) = swept
            .iter()
            .fold((0, 0), |(b, a), (sb, sa)| (b + sb, a + sa));
        tick = sweep_tick(before, after, tick);
        // Holds are checked for expiry wherever they are read; the sweep only returns memory,
        // so one number per tick is enough and keeps the pools lock short under load.
        lock(&inner.pools).sweep(Instant::now(), SWEEP_NUMBERS);
        shard = (shard + 1) % SHARDS;
    }
}

/// The pace of the next sweep, from what the last one found (`before` and `after` entries,
/// after a tick of `tick`): fast while what expired since the shard's last sweep, per unit of
/// time, would leave a quarter of it dead at the slow pace. (That sweep was a full pass of
/// `SHARDS * tick` ago; scaled to a pass of `SHARDS * SWEEP_TICK`.)
fn sweep_tick(before: usize, after: usize, tick: Duration) -> Duration {
    let removed = before.saturating_sub(after) as u128;
    if removed > 0 && removed * 4 * SWEEP_TICK.as_micros() >= before as u128 * tick.as_micros() {
        SWEEP_TICK_CHURN
    } else {
        SWEEP_TICK
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX / 2)) as u64
}

impl Inner {
    fn now(&self) -> Ms {
        ms(self.born.elapsed())
    }

    fn release_all(&self, id: u128, svc: &StoredService) {
        if svc.reservations.is_empty() {
            return;
        }
        let mut pools = lock(&self.pools);
        for (number, code) in svc.reservations.iter() {
            let r = ReservationRef {
                number: number.to_string(),
                code: (*code != 0).then(|| unpack_code(*code)),
            };
            pools.release(Uuid::from_u128(id), &r);
        }
    }

    fn touch_data(&self, key: &DataKey, ttl_ms: u64, now: Ms) {
        if let Some(e) = self.data.shard(key).get_mut(key) {
            if e.expires > now {
                e.expires = now + ttl_ms;
            }
        }
    }

    fn packed_ref(&self, r: &Reservation) -> (Arc<str>, u64) {
        let code = r.code.as_deref().and_then(pack_code).unwrap_or(0);
        (self.names.get(&r.number), code)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_service(
        &self,
        record: ServiceRecord,
        data: DataRecord,
        reserve: Option<ReserveRequest>,
    ) -> StoreResult<Option<Reservation>> {
        let i = &self.inner;
        let now = i.now();
        let id = record.id.as_u128();
        let mut reservations: Vec<(Arc<str>, u64)> = record
            .reservations
            .iter()
            .map(|r| {
                let code = r.code.as_deref().and_then(pack_code).unwrap_or(0);
                (i.names.get(&r.number), code)
            })
            .collect();
        let data_key = DataKey::Id(record.data_id.as_u128());
        let stored_data = StoredData::pack(data);
        // The budget first: a refused write reserves no number.
        let size = stored_data.bytes(&data_key);
        i.budget.take(size)?;
        let reservation = match &reserve {
            Some(req) => match lock(&i.pools).reserve(req, record.id, Instant::now()) {
                Ok(r) => {
                    reservations.push(i.packed_ref(&r));
                    Some(r)
                }
                Err(e) => {
                    i.budget.give(size);
                    return Err(e);
                }
            },
            None => None,
        };
        let data_ttl_ms = ms(record.data_ttl);
        let stored_data = Entry {
            value: stored_data,
            expires: now + data_ttl_ms,
        };
        i.data.insert(data_key, stored_data, &i.budget);
        let service_ttl_ms = ms(record.service_ttl);
        let stored = StoredService {
            service: i.names.get(&record.service),
            data_id: record.data_id.as_u128(),
            owner: record.owner.map(String::into_boxed_str),
            service_ttl_ms,
            data_ttl_ms,
            ors: record.ors.map(Box::new),
            reservations: reservations.into_boxed_slice(),
        };
        i.services.shard(&id).insert(
            id,
            Entry {
                value: stored,
                expires: now + service_ttl_ms,
            },
        );
        Ok(reservation)
    }

    async fn get_service(&self, id: Uuid) -> StoreResult<Option<ServiceRecord>> {
        let key = id.as_u128();
        let now = self.inner.now();
        let shard = self.inner.services.shard(&key);
        Ok(shard
            .get(&key)
            .filter(|e| e.expires > now)
            .map(|e| e.value.unpack(key)))
    }

    async fn set_ors_session(&self, id: Uuid, session: OrsSession) -> StoreResult<bool> {
        let key = id.as_u128();
        let now = self.inner.now();
        let mut shard = self.inner.services.shard(&key);
        match shard.get_mut(&key) {
            Some(e) if e.expires > now => {
                e.value.ors = Some(Box::new(session));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_service(&self, record: &ServiceRecord) -> StoreResult<bool> {
        let i = &self.inner;
        let now = i.now();
        let key = record.id.as_u128();
        let found = match i.services.shard(&key).get_mut(&key) {
            Some(e) if e.expires > now => {
                e.expires = now + e.value.service_ttl_ms;
                true
            }
            _ => false,
        };
        if found {
            i.touch_data(
                &DataKey::Id(record.data_id.as_u128()),
                ms(record.data_ttl),
                now,
            );
        }
        Ok(found)
    }

    async fn delete_service(
        &self,
        id: Uuid,
        owner: Option<&str>,
    ) -> StoreResult<Option<ServiceRecord>> {
        let i = &self.inner;
        let now = i.now();
        let key = id.as_u128();
        let removed = {
            let mut shard = i.services.shard(&key);
            match shard.get(&key) {
                Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                    shard.remove(&key)
                }
                _ => None,
            }
        };
        let Some(e) = removed else { return Ok(None) };
        let stored = e.value;
        i.release_all(key, &stored);
        let data_key = DataKey::Id(stored.data_id);
        i.data.remove(&data_key, &i.budget);
        i.status.shard(&key).remove(&key);
        Ok(Some(stored.unpack(key)))
    }

    async fn add_reservation(
        &self,
        id: Uuid,
        owner: Option<&str>,
        reserve: ReserveRequest,
    ) -> StoreResult<Option<Reservation>> {
        let i = &self.inner;
        let now = i.now();
        let key = id.as_u128();
        let usable = |e: Option<&Entry<StoredService>>| {
            e.is_some_and(|e| e.expires > now && may_access(e.value.owner.as_deref(), owner))
        };
        if !usable(i.services.shard(&key).get(&key)) {
            return Ok(None);
        }
        let r = lock(&i.pools).reserve(&reserve, id, Instant::now())?;
        let packed = i.packed_ref(&r);
        let attached = {
            let mut shard = i.services.shard(&key);
            match shard.get_mut(&key) {
                Some(e) if e.expires > now => {
                    let mut list = std::mem::take(&mut e.value.reservations).into_vec();
                    list.push(packed);
                    e.value.reservations = list.into_boxed_slice();
                    true
                }
                _ => false,
            }
        };
        if !attached {
            // The service went away between the check and the reservation: give it back.
            let r_ref = ReservationRef {
                number: r.number.clone(),
                code: r.code.clone(),
            };
            lock(&i.pools).release(id, &r_ref);
            return Ok(None);
        }
        Ok(Some(r))
    }

    async fn match_reservation(&self, call: &MatchRequest) -> StoreResult<MatchOutcome> {
        let (outcome, code) = lock(&self.inner.pools).take_released(call, Instant::now());
        if let MatchOutcome::Matched(id) = outcome {
            // Keep the record's list in step so a later delete does not release a stranger's hold.
            let key = id.as_u128();
            let code = code.unwrap_or(0);
            if let Some(e) = self.inner.services.shard(&key).get_mut(&key) {
                let list = std::mem::take(&mut e.value.reservations).into_vec();
                e.value.reservations = list
                    .into_iter()
                    .filter(|(n, c)| !(**n == *call.number && (*c == 0 || *c == code)))
                    .collect();
            }
        }
        Ok(outcome)
    }

    async fn put_data(
        &self,
        id: &str,
        record: DataRecord,
        ttl: Duration,
        mode: PutMode,
    ) -> StoreResult<bool> {
        let now = self.inner.now();
        let key = DataKey::of(id);
        let mut shard = self.inner.data.shard(&key);
        if mode == PutMode::CreateOrReplaceOwn {
            if let Some(e) = shard.get(&key) {
                let same_owner =
                    e.value.owner.is_some() && e.value.owner.as_deref() == record.owner.as_deref();
                if e.expires > now && !same_owner {
                    return Ok(false);
                }
            }
        }
        let value = StoredData::pack(record);
        // What it replaces (live or not yet swept) is still counted: only the difference.
        let old = shard.get(&key).map_or(0, |e| e.value.bytes(&key));
        self.inner.budget.resize(old, value.bytes(&key))?;
        shard.insert(
            key,
            Entry {
                value,
                expires: now + ms(ttl),
            },
        );
        Ok(true)
    }

    async fn merge_data(
        &self,
        id: &str,
        owner: Option<&str>,
        fields: Fields,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = self.inner.now();
        let key = DataKey::of(id);
        let mut shard = self.inner.data.shard(&key);
        match shard.get_mut(&key) {
            Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                let mut all = e.value.fields();
                merge_fields(&mut all, fields);
                let old = e.value.bytes(&key);
                let merged = packed::encode(&all);
                self.inner
                    .budget
                    .resize(old, old - e.value.fields.len() as u64 + merged.len() as u64)?;
                e.value.fields = merged;
                e.expires = now + ms(ttl);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get_data(&self, id: &str) -> StoreResult<Option<DataRecord>> {
        let now = self.inner.now();
        let key = DataKey::of(id);
        let shard = self.inner.data.shard(&key);
        Ok(shard
            .get(&key)
            .filter(|e| e.expires > now)
            .map(|e| e.value.unpack()))
    }

    async fn delete_data(&self, id: &str, owner: Option<&str>) -> StoreResult<bool> {
        let now = self.inner.now();
        let key = DataKey::of(id);
        let mut shard = self.inner.data.shard(&key);
        match shard.get(&key) {
            Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                if let Some(e) = shard.remove(&key) {
                    self.inner.budget.give(e.value.bytes(&key));
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_data_key(&self, id: &str, owner: Option<&str>, key: &str) -> StoreResult<bool> {
        let now = self.inner.now();
        let data_key = DataKey::of(id);
        let mut shard = self.inner.data.shard(&data_key);
        match shard.get_mut(&data_key) {
            Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                let mut all = e.value.fields();
                let before = all.len();
                all.retain(|(k, _)| k != key);
                if all.len() == before {
                    return Ok(false);
                }
                let old = e.value.bytes(&data_key);
                let kept = packed::encode(&all);
                let new = old - e.value.fields.len() as u64 + kept.len() as u64;
                // Smaller than before: the budget always has room for it.
                self.inner.budget.resize(old, new)?;
                e.value.fields = kept;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get_status(&self, id: Uuid) -> StoreResult<Option<StatusEntry>> {
        let now = self.inner.now();
        let key = id.as_u128();
        let shard = self.inner.status.shard(&key);
        Ok(shard
            .get(&key)
            .filter(|e| e.expires > now)
            .map(|e| e.value.clone()))
    }

    async fn put_status(&self, id: Uuid, entry: StatusEntry, keep: Duration) -> StoreResult<()> {
        let key = id.as_u128();
        let expires = self.inner.now() + ms(keep);
        self.inner.status.shard(&key).insert(
            key,
            Entry {
                value: entry,
                expires,
            },
        );
        Ok(())
    }

    fn callbacks(&self) -> &dyn CallbackStore {
        &self.callbacks
    }

    /// Starts the sweeper thread (once; it ends when the store is dropped). A plain thread,
    /// not a task: sweeping is short, lock-bound work.
    fn start_upkeep(&self) {
        self.sweeper.call_once(|| {
            let weak = Arc::downgrade(&self.inner);
            let _ = std::thread::Builder::new()
                .name("gms-store-sweeper".into())
                .spawn(move || sweeper(weak));
        });
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn usage(&self, groups: &HashMap<String, Arc<[String]>>) -> StoreResult<Usage> {
        let i = &self.inner;
        let mut counted = Vec::with_capacity(groups.len());
        for (group, numbers) in groups {
            counted.push((group.clone(), self.group_use(group, numbers).await?));
        }
        Ok(Usage {
            live_services: Some(i.services.count_live(i.now()) as u64),
            groups: counted,
            data_bytes: Some((i.budget.used(), i.budget.max())),
        })
    }

    async fn group_use(
        &self,
        _group: &str,
        numbers: &Arc<[String]>,
    ) -> StoreResult<Vec<NumberUse>> {
        let now = Instant::now();
        // The pools lock is taken per number, so a reservation waits at most for one number's
        // count, however large the group.
        Ok(numbers
            .iter()
            .map(|n| lock(&self.inner.pools).number_use(n, now))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Allocation, NumberUse, StoreError};
    use crate::value::Value;

    fn record(ttl: u64) -> ServiceRecord {
        ServiceRecord {
            id: Uuid::new_v4(),
            service: "request-interaction".into(),
            data_id: Uuid::new_v4(),
            owner: Some("alice".into()),
            service_ttl: Duration::from_millis(ttl),
            data_ttl: Duration::from_millis(ttl),
            ors: None,
            reservations: vec![],
        }
    }

    fn reserve(code_len: Option<u8>) -> ReserveRequest {
        ReserveRequest {
            group: "G".into(),
            numbers: Arc::from(vec!["1".to_string()]),
            code: code_len.map(crate::ids::CodeSpace::all),
            allocation: Allocation::Random,
            phone: Some("555".into()),
            ttl: Duration::from_secs(30),
            per_phone: 0,
        }
    }

    #[tokio::test]
    async fn create_get_delete_releases_everything() {
        let s = MemoryStore::new();
        let rec = record(60_000);
        let data = DataRecord {
            owner: rec.owner.clone(),
            fields: vec![("a".into(), Value::Text("1".into()))],
        };
        let r = s
            .create_service(rec.clone(), data.clone(), Some(reserve(None)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.number, "1");
        let got = s.get_service(rec.id).await.unwrap().unwrap();
        assert_eq!(
            got.reservations,
            vec![ReservationRef {
                number: "1".into(),
                code: None
            }]
        );
        assert_eq!(got.service, rec.service);
        let data_key = rec.data_id.to_string();
        assert_eq!(s.get_data(&data_key).await.unwrap(), Some(data));
        // Not yours: nothing happens.
        assert!(s
            .delete_service(rec.id, Some("bob"))
            .await
            .unwrap()
            .is_none());
        assert!(s
            .delete_service(rec.id, Some("alice"))
            .await
            .unwrap()
            .is_some());
        assert!(s.get_data(&data_key).await.unwrap().is_none());
        // The single number is free again.
        assert!(s
            .create_service(record(60_000), DataRecord::default(), Some(reserve(None)))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn a_match_removes_the_reservation_from_the_record() {
        let s = MemoryStore::new();
        let rec = record(60_000);
        let r = s
            .create_service(rec.clone(), DataRecord::default(), Some(reserve(Some(6))))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s.get_service(rec.id).await.unwrap().unwrap().reservations[0].code,
            r.code
        );
        let call = MatchRequest {
            number: r.number,
            code: r.code,
            phone: None,
            max_failed: 5,
            require_code: true,
        };
        assert_eq!(
            s.match_reservation(&call).await.unwrap(),
            MatchOutcome::Matched(rec.id)
        );
        assert!(s
            .get_service(rec.id)
            .await
            .unwrap()
            .unwrap()
            .reservations
            .is_empty());
    }

    #[tokio::test]
    async fn usage_counts_live_services_and_holds() {
        let s = MemoryStore::new();
        let mut coded = reserve(Some(4));
        coded.numbers = Arc::from(vec!["2".to_string()]);
        for r in [Some(reserve(None)), Some(coded.clone()), Some(coded), None] {
            s.create_service(record(60_000), DataRecord::default(), r)
                .await
                .unwrap();
        }
        s.create_service(record(1), DataRecord::default(), None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let numbers: Vec<String> = ["1", "2", "3"].map(String::from).to_vec();
        let groups = HashMap::from([("G".to_string(), Arc::from(numbers))]);
        let use_of = |exclusive, coded| NumberUse { exclusive, coded };
        assert_eq!(
            s.usage(&groups).await.unwrap(),
            Usage {
                live_services: Some(4),
                groups: vec![(
                    "G".into(),
                    vec![use_of(true, 0), use_of(false, 2), use_of(false, 0)]
                )],
                data_bytes: Some((0, u64::MAX)),
            }
        );
    }

    fn text(key: &str, len: usize) -> Fields {
        vec![(key.into(), Value::Text("x".repeat(len)))]
    }

    #[tokio::test]
    async fn the_byte_budget_counts_writes_merges_deletes_and_expiry() {
        // A text field packs as 1 + 4 + key + 4 + value bytes: 50 for key "k" and 40 bytes.
        let s = MemoryStore::with_budget(120);
        let ttl = Duration::from_secs(60);
        let put = |id: &'static str, len: usize, owner: Option<&str>| {
            let record = DataRecord {
                owner: owner.map(str::to_string),
                fields: text("k", len),
            };
            s.put_data(id, record, ttl, PutMode::New)
        };
        let used = || s.inner.budget.used();
        put("a", 40, None).await.unwrap();
        // A custom name counts too: 50 + 1.
        assert_eq!(used(), 51);
        put("b", 40, Some("bob")).await.unwrap();
        assert_eq!(used(), 105);
        // Past the budget: refused, nothing written.
        assert!(matches!(put("c", 40, None).await, Err(StoreError::Full(_))));
        assert!(s.get_data("c").await.unwrap().is_none());
        // Replacing counts the difference only.
        put("a", 50, None).await.unwrap();
        assert_eq!(used(), 115);
        // A merge that would pass is refused whole; one that fits is counted.
        let grow = s.merge_data("a", None, text("m", 10), ttl).await;
        assert!(matches!(grow, Err(StoreError::Full(_))), "{grow:?}");
        assert_eq!(
            s.get_data("a").await.unwrap().unwrap().fields,
            text("k", 50)
        );
        assert!(s.delete_data("b", Some("bob")).await.unwrap());
        assert_eq!(used(), 61);
        assert!(s.merge_data("a", None, text("m", 10), ttl).await.unwrap());
        assert_eq!(used(), 81);
        // A create that does not fit reserves no number.
        let mut big = record(60_000);
        big.owner = None;
        let data = DataRecord {
            owner: None,
            fields: text("k", 100),
        };
        let made = s.create_service(big, data, Some(reserve(None))).await;
        assert!(matches!(made, Err(StoreError::Full(_))), "{made:?}");
        assert_eq!(s.counts().3, 0, "no hold was left behind");
        // Expired and swept: given back.
        s.put_data(
            "short",
            DataRecord::default(),
            Duration::from_millis(1),
            PutMode::New,
        )
        .await
        .unwrap();
        s.put_data(
            "gone",
            DataRecord {
                owner: None,
                fields: text("k", 10),
            },
            Duration::from_millis(1),
            PutMode::New,
        )
        .await
        .unwrap();
        assert_eq!(used(), 81 + 5 + 24);
        tokio::time::sleep(Duration::from_millis(5)).await;
        for shard in 0..SHARDS {
            let now = s.inner.now();
            s.inner
                .data
                .sweep_shard(shard, now, |k, d| s.inner.budget.give(d.bytes(k)));
        }
        assert_eq!(used(), 81);
    }

    #[tokio::test]
    async fn expired_entries_vanish_and_are_reclaimed() {
        let s = MemoryStore::new();
        s.start_upkeep();
        let rec = record(30);
        s.create_service(rec.clone(), DataRecord::default(), None)
            .await
            .unwrap();
        assert!(s.get_service(rec.id).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(s.get_service(rec.id).await.unwrap().is_none());
        // The sweeper makes a full pass within SHARDS ticks.
        let deadline = Instant::now() + SWEEP_TICK * (SHARDS as u32 + 20);
        while s.counts().0 + s.counts().1 > 0 && Instant::now() < deadline {
            tokio::time::sleep(SWEEP_TICK).await;
        }
        assert_eq!(s.counts().0 + s.counts().1, 0);
    }

    #[tokio::test]
    async fn custom_ids_are_created_or_replaced_by_their_owner_only() {
        let s = MemoryStore::new();
        let ttl = Duration::from_secs(60);
        let mine = |o: &str| DataRecord {
            owner: Some(o.into()),
            fields: vec![],
        };
        assert!(s
            .put_data("x", mine("alice"), ttl, PutMode::CreateOrReplaceOwn)
            .await
            .unwrap());
        assert!(s
            .put_data("x", mine("alice"), ttl, PutMode::CreateOrReplaceOwn)
            .await
            .unwrap());
        assert!(!s
            .put_data("x", mine("bob"), ttl, PutMode::CreateOrReplaceOwn)
            .await
            .unwrap());
        s.put_data("y", DataRecord::default(), ttl, PutMode::New)
            .await
            .unwrap();
        assert!(!s
            .put_data("y", mine("bob"), ttl, PutMode::CreateOrReplaceOwn)
            .await
            .unwrap());
    }

    #[test]
    fn data_keys_are_compact_only_for_canonical_ids() {
        let id = Uuid::new_v4();
        assert_eq!(DataKey::of(&id.to_string()), DataKey::Id(id.as_u128()));
        assert!(matches!(
            DataKey::of(&id.to_string().to_uppercase()),
            DataKey::Name(_)
        ));
        assert!(matches!(DataKey::of("mine"), DataKey::Name(_)));
    }

    #[test]
    fn the_sweeper_speeds_up_only_for_churn() {
        // Records of 5 s TTL, the multipart benchmark: at the slow pace (3.2 s passes) about
        // 40% of a shard has expired, at the fast one (0.8 s) about 14%: it stays fast.
        assert_eq!(sweep_tick(1000, 600, SWEEP_TICK), SWEEP_TICK_CHURN);
        assert_eq!(sweep_tick(1000, 860, SWEEP_TICK_CHURN), SWEEP_TICK_CHURN);
        // A million long-lived entries with some churn beside them: 12% at the slow pace, 3%
        // at the fast one: it stays slow.
        assert_eq!(sweep_tick(1000, 880, SWEEP_TICK), SWEEP_TICK);
        assert_eq!(sweep_tick(1000, 970, SWEEP_TICK_CHURN), SWEEP_TICK);
        // Nothing expired, or nothing there.
        assert_eq!(sweep_tick(1000, 1000, SWEEP_TICK_CHURN), SWEEP_TICK);
        assert_eq!(sweep_tick(0, 0, SWEEP_TICK), SWEEP_TICK);
    }
}
