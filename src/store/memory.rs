//! The embedded store: all state in this process's memory (one node; lost on restart).
//!
//! Maps are split into shards, each behind a std `Mutex` that is never held across an
//! `.await`: with few cores, short critical sections on many locks beat one async lock. Every
//! entry carries its expiry: reads treat expired entries as absent at once, and a sweeper
//! thread reclaims them a shard at a time, so memory does not grow with dead entries.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use super::pool::Pools;
use super::{
    may_access, DataRecord, MatchRequest, OrsSession, PutMode, Reservation, ReservationRef,
    ReserveRequest, ServiceRecord, StatusEntry, Store, StoreResult,
};
use crate::value::merge_fields;

const SHARDS: usize = 64;
/// One shard of each map per tick: a full pass every `SHARDS * SWEEP_TICK` (3.2 s).
const SWEEP_TICK: Duration = Duration::from_millis(50);
/// Numbers whose holds one tick purges.
const SWEEP_NUMBERS: usize = 16;

struct Entry<V> {
    value: V,
    expires: Instant,
}

/// A map split into shards by key hash; each shard has its own lock.
struct Sharded<K, V> {
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<K, Entry<V>>>>,
}

impl<K: Hash + Eq, V> Sharded<K, V> {
    fn new() -> Self {
        Sharded {
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> MutexGuard<'_, HashMap<K, Entry<V>>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        lock(&self.shards[i])
    }

    fn sweep_shard(&self, i: usize, now: Instant) {
        lock(&self.shards[i % SHARDS]).retain(|_, e| e.expires > now);
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }
}

/// A poisoned lock means a panic happened while it was held; the maps stay usable (every
/// mutation is a single insert/remove), so carry on rather than take the process down.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Inner {
    services: Sharded<Uuid, ServiceRecord>,
    data: Sharded<Box<str>, DataRecord>,
    status: Sharded<Uuid, StatusEntry>,
    /// One lock for all pools: allocation scans a group and must see it whole.
    pools: Mutex<Pools>,
}

/// The embedded in-memory [`Store`].
pub struct MemoryStore {
    inner: Arc<Inner>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store with its sweeper thread (which ends when the store is dropped).
    pub fn new() -> Self {
        let inner = Arc::new(Inner {
            services: Sharded::new(),
            data: Sharded::new(),
            status: Sharded::new(),
            pools: Mutex::new(Pools::default()),
        });
        let weak = Arc::downgrade(&inner);
        // A plain thread, not a task: the store is built before Pingora's runtimes exist, and
        // sweeping is short, lock-bound work.
        let _ = std::thread::Builder::new()
            .name("gms-store-sweeper".into())
            .spawn(move || sweeper(weak));
        MemoryStore { inner }
    }

    /// Live-or-unswept entry counts: (services, data records, status entries, holds).
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
    loop {
        std::thread::sleep(SWEEP_TICK);
        let Some(inner) = weak.upgrade() else { return };
        let now = Instant::now();
        inner.services.sweep_shard(shard, now);
        inner.data.sweep_shard(shard, now);
        inner.status.sweep_shard(shard, now);
        lock(&inner.pools).sweep(now, SWEEP_NUMBERS);
        shard = (shard + 1) % SHARDS;
    }
}

fn live<V: Clone>(e: Option<&Entry<V>>, now: Instant) -> Option<V> {
    e.filter(|e| e.expires > now).map(|e| e.value.clone())
}

impl Inner {
    fn data_key(id: Uuid) -> Box<str> {
        id.hyphenated().to_string().into_boxed_str()
    }

    fn release_all(&self, rec: &ServiceRecord) {
        if rec.reservations.is_empty() {
            return;
        }
        let mut pools = lock(&self.pools);
        for r in &rec.reservations {
            pools.release(rec.id, r);
        }
    }

    fn touch_data(&self, key: &str, ttl: Duration, now: Instant) {
        if let Some(e) = self.data.shard(key).get_mut(key) {
            if e.expires > now {
                e.expires = now + ttl;
            }
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_service(
        &self,
        mut record: ServiceRecord,
        data: DataRecord,
        reserve: Option<ReserveRequest>,
    ) -> StoreResult<Option<Reservation>> {
        let now = Instant::now();
        let i = &self.inner;
        let reservation = match &reserve {
            Some(req) => {
                let r = lock(&i.pools).reserve(req, record.id, now)?;
                record.reservations.push(ReservationRef {
                    number: r.number.clone(),
                    code: r.code.clone(),
                });
                Some(r)
            }
            None => None,
        };
        let data_key = Inner::data_key(record.data_id);
        i.data.shard(&*data_key).insert(
            data_key,
            Entry {
                value: data,
                expires: now + record.data_ttl,
            },
        );
        let expires = now + record.service_ttl;
        i.services.shard(&record.id).insert(
            record.id,
            Entry {
                value: record,
                expires,
            },
        );
        Ok(reservation)
    }

    async fn get_service(&self, id: Uuid) -> StoreResult<Option<ServiceRecord>> {
        Ok(live(
            self.inner.services.shard(&id).get(&id),
            Instant::now(),
        ))
    }

    async fn set_ors_session(&self, id: Uuid, session: OrsSession) -> StoreResult<bool> {
        let now = Instant::now();
        let mut shard = self.inner.services.shard(&id);
        match shard.get_mut(&id) {
            Some(e) if e.expires > now => {
                e.value.ors = Some(session);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn touch_service(&self, record: &ServiceRecord) -> StoreResult<bool> {
        let now = Instant::now();
        let i = &self.inner;
        let found = match i.services.shard(&record.id).get_mut(&record.id) {
            Some(e) if e.expires > now => {
                e.expires = now + record.service_ttl;
                true
            }
            _ => false,
        };
        if found {
            i.touch_data(&Inner::data_key(record.data_id), record.data_ttl, now);
        }
        Ok(found)
    }

    async fn delete_service(
        &self,
        id: Uuid,
        owner: Option<&str>,
    ) -> StoreResult<Option<ServiceRecord>> {
        let now = Instant::now();
        let i = &self.inner;
        let removed = {
            let mut shard = i.services.shard(&id);
            match shard.get(&id) {
                Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                    shard.remove(&id)
                }
                _ => None,
            }
        };
        let Some(e) = removed else { return Ok(None) };
        let rec = e.value;
        i.release_all(&rec);
        let key = Inner::data_key(rec.data_id);
        i.data.shard(&*key).remove(&*key);
        i.status.shard(&id).remove(&id);
        Ok(Some(rec))
    }

    async fn add_reservation(
        &self,
        id: Uuid,
        owner: Option<&str>,
        reserve: ReserveRequest,
    ) -> StoreResult<Option<Reservation>> {
        let now = Instant::now();
        let i = &self.inner;
        let usable = |e: Option<&Entry<ServiceRecord>>| {
            e.is_some_and(|e| e.expires > now && may_access(e.value.owner.as_deref(), owner))
        };
        if !usable(i.services.shard(&id).get(&id)) {
            return Ok(None);
        }
        let r = lock(&i.pools).reserve(&reserve, id, now)?;
        let r_ref = ReservationRef {
            number: r.number.clone(),
            code: r.code.clone(),
        };
        let attached = {
            let mut shard = i.services.shard(&id);
            match shard.get_mut(&id) {
                Some(e) if e.expires > now => {
                    e.value.reservations.push(r_ref.clone());
                    true
                }
                _ => false,
            }
        };
        if !attached {
            // The service went away between the check and the reservation: give it back.
            lock(&i.pools).release(id, &r_ref);
            return Ok(None);
        }
        Ok(Some(r))
    }

    async fn match_reservation(&self, call: &MatchRequest) -> StoreResult<Option<Uuid>> {
        let now = Instant::now();
        let service = lock(&self.inner.pools).take_match(call, now);
        if let Some(id) = service {
            // Keep the record's list in step so a later delete does not release a stranger's hold.
            if let Some(e) = self.inner.services.shard(&id).get_mut(&id) {
                e.value.reservations.retain(|r| {
                    !(r.number == call.number && (r.code.is_none() || r.code == call.code))
                });
            }
        }
        Ok(service)
    }

    async fn put_data(
        &self,
        id: &str,
        record: DataRecord,
        ttl: Duration,
        mode: PutMode,
    ) -> StoreResult<bool> {
        let now = Instant::now();
        let mut shard = self.inner.data.shard(id);
        if mode == PutMode::CreateOrReplaceOwn {
            if let Some(e) = shard.get(id) {
                let same_owner = e.value.owner.is_some() && e.value.owner == record.owner;
                if e.expires > now && !same_owner {
                    return Ok(false);
                }
            }
        }
        shard.insert(
            id.into(),
            Entry {
                value: record,
                expires: now + ttl,
            },
        );
        Ok(true)
    }

    async fn merge_data(
        &self,
        id: &str,
        owner: Option<&str>,
        fields: crate::value::Fields,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = Instant::now();
        let mut shard = self.inner.data.shard(id);
        match shard.get_mut(id) {
            Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                merge_fields(&mut e.value.fields, fields);
                e.expires = now + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get_data(&self, id: &str) -> StoreResult<Option<DataRecord>> {
        Ok(live(self.inner.data.shard(id).get(id), Instant::now()))
    }

    async fn delete_data(&self, id: &str, owner: Option<&str>) -> StoreResult<bool> {
        let now = Instant::now();
        let mut shard = self.inner.data.shard(id);
        match shard.get(id) {
            Some(e) if e.expires > now && may_access(e.value.owner.as_deref(), owner) => {
                shard.remove(id);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn get_status(&self, id: Uuid) -> StoreResult<Option<StatusEntry>> {
        Ok(live(self.inner.status.shard(&id).get(&id), Instant::now()))
    }

    async fn put_status(&self, id: Uuid, entry: StatusEntry, keep: Duration) -> StoreResult<()> {
        let expires = Instant::now() + keep;
        self.inner.status.shard(&id).insert(
            id,
            Entry {
                value: entry,
                expires,
            },
        );
        Ok(())
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Allocation;
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

    fn reserve() -> ReserveRequest {
        ReserveRequest {
            group: "G".into(),
            numbers: Arc::from(vec!["1".to_string()]),
            code_len: None,
            allocation: Allocation::Random,
            phone: "555".into(),
            ttl: Duration::from_secs(30),
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
            .create_service(rec.clone(), data, Some(reserve()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.number, "1");
        let got = s.get_service(rec.id).await.unwrap().unwrap();
        assert_eq!(got.reservations.len(), 1);
        let data_key = rec.data_id.to_string();
        assert!(s.get_data(&data_key).await.unwrap().is_some());
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
            .create_service(record(60_000), DataRecord::default(), Some(reserve()))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn expired_entries_vanish_and_are_reclaimed() {
        let s = MemoryStore::new();
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
}
