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
//!
//! Layout: `sharded.rs` (the sharded maps and their entries), `services.rs` (service records
//! and status entries), `reservations.rs` (access numbers held by services), `data.rs` (user
//! data and its byte budget), `sweeper.rs` (the thread that reclaims expired entries). The
//! [`Store`] impl below hands each call to a plain (not async) function of `Inner`: no lock
//! can be held across an `.await` when no code under a lock can await.

mod data;
mod reservations;
mod services;
mod sharded;
mod sweeper;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use uuid::Uuid;

use super::budget::Budget;
use super::callback::memory::MemoryCallbacks;
use super::callback::CallbackStore;
use super::pool::Pools;
use super::{
    DataRecord, MatchOutcome, MatchRequest, NumberUse, OrsSession, PutMode, Reservation,
    ReserveRequest, ServiceRecord, StatusEntry, Store, StoreResult, Usage,
};
use crate::value::Fields;
use data::{DataKey, StoredData};
use services::StoredService;
use sharded::{lock, ms, Interner, Ms, Sharded};

/// The store's state, shared with the sweeper thread (which holds it weakly, so it ends with
/// the store).
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

impl Inner {
    fn now(&self) -> Ms {
        ms(self.born.elapsed())
    }

    fn usage(&self, groups: &HashMap<String, Arc<[String]>>) -> StoreResult<Usage> {
        let groups = groups
            .iter()
            .map(|(group, numbers)| (group.clone(), self.group_use(numbers)))
            .collect();
        Ok(Usage {
            live_services: Some(self.services.count_live(self.now()) as u64),
            groups,
            data_bytes: Some((self.budget.used(), self.budget.max())),
        })
    }

    fn group_use(&self, numbers: &[String]) -> Vec<NumberUse> {
        let now = Instant::now();
        // The pools lock is taken per number, so a reservation waits at most for one number's
        // count, however large the group.
        numbers
            .iter()
            .map(|n| lock(&self.pools).number_use(n, now))
            .collect()
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
        self.inner.create_service(record, data, reserve)
    }

    async fn get_service(&self, id: Uuid) -> StoreResult<Option<ServiceRecord>> {
        self.inner.get_service(id)
    }

    async fn set_ors_session(&self, id: Uuid, session: OrsSession) -> StoreResult<bool> {
        self.inner.set_ors_session(id, session)
    }

    async fn touch_service(&self, record: &ServiceRecord) -> StoreResult<bool> {
        self.inner.touch_service(record)
    }

    async fn delete_service(
        &self,
        id: Uuid,
        owner: Option<&str>,
    ) -> StoreResult<Option<ServiceRecord>> {
        self.inner.delete_service(id, owner)
    }

    async fn add_reservation(
        &self,
        id: Uuid,
        owner: Option<&str>,
        reserve: ReserveRequest,
    ) -> StoreResult<Option<Reservation>> {
        self.inner.add_reservation(id, owner, reserve)
    }

    async fn match_reservation(&self, call: &MatchRequest) -> StoreResult<MatchOutcome> {
        self.inner.match_reservation(call)
    }

    async fn put_data(
        &self,
        id: &str,
        record: DataRecord,
        ttl: Duration,
        mode: PutMode,
    ) -> StoreResult<bool> {
        self.inner.put_data(id, record, ttl, mode)
    }

    async fn merge_data(
        &self,
        id: &str,
        owner: Option<&str>,
        fields: Fields,
        ttl: Duration,
    ) -> StoreResult<bool> {
        self.inner.merge_data(id, owner, fields, ttl)
    }

    async fn get_data(&self, id: &str) -> StoreResult<Option<DataRecord>> {
        self.inner.get_data(id)
    }

    async fn delete_data(&self, id: &str, owner: Option<&str>) -> StoreResult<bool> {
        self.inner.delete_data(id, owner)
    }

    async fn delete_data_key(&self, id: &str, owner: Option<&str>, key: &str) -> StoreResult<bool> {
        self.inner.delete_data_key(id, owner, key)
    }

    async fn get_status(&self, id: Uuid) -> StoreResult<Option<StatusEntry>> {
        self.inner.get_status(id)
    }

    async fn put_status(&self, id: Uuid, entry: StatusEntry, keep: Duration) -> StoreResult<()> {
        self.inner.put_status(id, entry, keep)
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
                .spawn(move || sweeper::sweeper(weak));
        });
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn usage(&self, groups: &HashMap<String, Arc<[String]>>) -> StoreResult<Usage> {
        self.inner.usage(groups)
    }

    async fn group_use(
        &self,
        _group: &str,
        numbers: &Arc<[String]>,
    ) -> StoreResult<Vec<NumberUse>> {
        Ok(self.inner.group_use(numbers))
    }
}
