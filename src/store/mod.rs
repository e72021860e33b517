//! The [`Store`]: every piece of state the gateway keeps (service records, user data,
//! access-number reservations, status entries, and callback records through
//! [`Store::callbacks`]), each with a TTL. Handlers hold an `Arc<dyn Store>` and never keep
//! per-service state of their own, so a second node or a restart (with a shared store) sees
//! the same truth.
//!
//! Operations that must not interleave (reserve, match-and-release, ownership-checked writes)
//! are single trait calls, so every implementation can make them atomic (a mutex here, a Lua
//! script on Redis).

pub mod budget;
pub mod callback;
pub mod memory;
pub mod metered;
pub mod packed;
pub mod pool;
pub mod redis;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use crate::config::{ApiConfig, StorageKind};
pub use crate::ids::CodeSpace;
use crate::start_error::StartError;
use crate::value::Fields;
use callback::CallbackStore;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// The backend cannot be reached or answered badly: 503.
    Unavailable(String),
    /// No access number (or code) is free in the group: 503.
    Exhausted(String),
    /// The phone already holds as many live reservations in the group as allowed: 429.
    PhoneLimit(String),
    /// The store's byte budget has no room for the write (nothing was written): 507.
    Full(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// What the gateway remembers about one service (contract 4.1, 6.1).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    /// The gateway's id for the service.
    pub id: Uuid,
    /// The configured service name.
    pub service: String,
    /// Where its user data lives.
    pub data_id: Uuid,
    /// `gms_user` that owns it, if any.
    pub owner: Option<String>,
    /// Lifetime of the record, renewed by use.
    pub service_ttl: Duration,
    /// Lifetime of the user data, renewed by use.
    pub data_ttl: Duration,
    /// The ORS session behind an ORS service.
    pub ors: Option<OrsSession>,
    /// Access reservations held for it, released on delete.
    pub reservations: Vec<ReservationRef>,
}

/// Where an ORS service's session runs.
#[derive(Debug, Clone, PartialEq)]
pub enum OrsSession {
    /// Started: the node that owns it and ORS's session id.
    Started {
        /// Base URL of the owning node.
        node: String,
        /// ORS's session id.
        session_id: String,
    },
    /// Async start still in progress.
    Pending,
    /// Async start gave up; the reason.
    Failed(String),
}

/// One reservation a service holds: enough to release it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationRef {
    /// The access number.
    pub number: String,
    /// The access code, for a shared number.
    pub code: Option<String>,
}

/// A stored user-data record (Storage API, or a service's data).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DataRecord {
    /// `gms_user` that owns it, if any.
    pub owner: Option<String>,
    /// Its keys and values.
    pub fields: Fields,
}

/// How an access number is to be chosen within its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// A random free number.
    Random,
    /// The next free number after the group's last pick.
    RoundRobin,
}

/// A request to reserve an access number (contract 5.1).
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    /// Resource group name.
    pub group: String,
    /// The group's numbers, in configured order.
    pub numbers: Arc<[String]>,
    /// `Some(space)`: a shared number with a code from `space`; `None`: an exclusive number.
    pub code: Option<CodeSpace>,
    /// How to choose the number.
    pub allocation: Allocation,
    /// The phone that will call, if the app said (contract 5.1): a reservation without one
    /// matches on number and code only, and counts against no phone's `per_phone` limit.
    pub phone: Option<String>,
    /// How long the reservation holds.
    pub ttl: Duration,
    /// Live reservations `phone` may hold in `group`, this one included; 0: no limit.
    pub per_phone: u32,
}

/// A reservation that was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// The access number to dial.
    pub number: String,
    /// The access code to enter, for a shared number.
    pub code: Option<String>,
}

/// A call to match against reservations (contract 5.3).
#[derive(Debug, Clone)]
pub struct MatchRequest {
    /// The dialled number.
    pub number: String,
    /// The entered code, if any.
    pub code: Option<String>,
    /// The calling phone, if the caller knows it.
    pub phone: Option<String>,
    /// A coded reservation needs its code (service option `_require_access_code`); else a call
    /// without a code matches the number's only live reservation, coded or not (GMS).
    pub require_code: bool,
    /// Failed matches the number may have in its window before matches on it are refused
    /// (`gms.limits.max_failed_matches`); 0: no limit.
    pub max_failed: u32,
}

/// What a match found (contract 5.3, issue 15).
///
/// Failed matches are counted with the number, in the same atomic step as the match: a
/// failure on a number with live reservations opens a window that ends with the latest of
/// them (a number with none has nothing to guess, so its failures are not counted); once the
/// window holds `max_failed` failures, every match on the number is refused until it ends,
/// the right code included, so codes cannot be guessed by trying them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOutcome {
    /// This service's reservation matched and was released.
    Matched(Uuid),
    /// No live reservation matched.
    NoMatch,
    /// The call gave no code and the number holds several live coded reservations: nothing
    /// was released and nothing counted against the number (a call that cannot pick one is
    /// no guess at a code, and counting it would let callers who forgot their code lock a busy
    /// number for everyone).
    Ambiguous,
    /// Nothing was tried: the number's failure window is full; it ends after this long.
    Locked(Duration),
}

/// A cached ORS status (contract 6.3).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEntry {
    /// The JSON body clients get.
    pub body: Bytes,
    /// When it was fetched or pushed, Unix milliseconds (shared clocks across nodes).
    pub stored_at_ms: u64,
    /// How long after `stored_at_ms` it is fresh.
    pub fresh_ms: u64,
}

/// The live reservations on one access number (for the metrics gauges).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NumberUse {
    /// Held without a code.
    pub exclusive: bool,
    /// How many live coded reservations it carries.
    pub coded: u64,
}

/// What the store holds at the moment, as counted by [`Store::usage`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    /// Live service records; `None` where the store cannot count them cheaply (Redis).
    pub live_services: Option<u64>,
    /// Each group asked about, with its numbers' use in configured order.
    pub groups: Vec<(String, Vec<NumberUse>)>,
    /// Bytes of user data held and the most allowed (`gms.limits.max_store_bytes`); `None`
    /// where the store does not count them (Redis: its own `maxmemory` rules).
    pub data_bytes: Option<(u64, u64)>,
}

/// How a data write treats an existing record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// A new id: write it.
    New,
    /// A custom id: create it, or replace it only when it has the same owner.
    CreateOrReplaceOwn,
}

/// Whether `requester` may use something owned by `owner` (contract 4.1): an owned item only
/// by the same `gms_user`; an unowned one by anybody.
pub fn may_access(owner: Option<&str>, requester: Option<&str>) -> bool {
    match owner {
        None => true,
        Some(o) => requester == Some(o),
    }
}

/// Every piece of gateway state, with TTLs; shared by all Pingora threads (and, for shared
/// backends, all nodes).
#[async_trait]
pub trait Store: Send + Sync {
    /// Saves a new service and its user data, and reserves an access number for it when asked,
    /// all or nothing. Returns the reservation made.
    async fn create_service(
        &self,
        record: ServiceRecord,
        data: DataRecord,
        reserve: Option<ReserveRequest>,
    ) -> StoreResult<Option<Reservation>>;

    /// A live service record.
    async fn get_service(&self, id: Uuid) -> StoreResult<Option<ServiceRecord>>;

    /// Records where a live service's ORS session runs (or why it never started); false when
    /// the service is gone.
    async fn set_ors_session(&self, id: Uuid, session: OrsSession) -> StoreResult<bool>;

    /// Renews a service record and its user data by their TTLs; false when it is gone.
    async fn touch_service(&self, record: &ServiceRecord) -> StoreResult<bool>;

    /// Forgets a service owned by `owner` (see `may_access`): its record, reservations, user
    /// data and status. Returns the record that was removed, or `None` (also when not yours).
    async fn delete_service(
        &self,
        id: Uuid,
        owner: Option<&str>,
    ) -> StoreResult<Option<ServiceRecord>>;

    /// Reserves another access number for a live service that `owner` may use
    /// (`request-access`); `None` when the service is gone or not theirs.
    async fn add_reservation(
        &self,
        id: Uuid,
        owner: Option<&str>,
        reserve: ReserveRequest,
    ) -> StoreResult<Option<Reservation>>;

    /// Finds the reservation a call matches and releases it, or counts the failure against the
    /// number, atomically (see [`MatchOutcome`]).
    async fn match_reservation(&self, call: &MatchRequest) -> StoreResult<MatchOutcome>;

    /// Writes a user-data record; false when `mode` refused (the id is someone else's).
    async fn put_data(
        &self,
        id: &str,
        record: DataRecord,
        ttl: Duration,
        mode: PutMode,
    ) -> StoreResult<bool>;

    /// Merges fields into a record `owner` may use and restarts its TTL; false when missing.
    async fn merge_data(
        &self,
        id: &str,
        owner: Option<&str>,
        fields: Fields,
        ttl: Duration,
    ) -> StoreResult<bool>;

    /// A live user-data record.
    async fn get_data(&self, id: &str) -> StoreResult<Option<DataRecord>>;

    /// Deletes a record `owner` may use; false when missing.
    async fn delete_data(&self, id: &str, owner: Option<&str>) -> StoreResult<bool>;

    /// Deletes one key of a record `owner` may use (per-service storage); false when the
    /// record or the key is missing. The record's TTL is left as it is.
    async fn delete_data_key(&self, id: &str, owner: Option<&str>, key: &str) -> StoreResult<bool>;

    /// The cached status of a service.
    async fn get_status(&self, id: Uuid) -> StoreResult<Option<StatusEntry>>;

    /// A live service record and its cached status: a status poll's two reads, which a
    /// networked store answers in one round trip (Redis: the two keys share the service's hash
    /// tag). The status is `None` when the record is.
    async fn get_service_and_status(
        &self,
        id: Uuid,
    ) -> StoreResult<(Option<ServiceRecord>, Option<StatusEntry>)> {
        let Some(record) = self.get_service(id).await? else {
            return Ok((None, None));
        };
        Ok((Some(record), self.get_status(id).await?))
    }

    /// Caches a status; kept (stale) for `keep` after which it is dropped.
    async fn put_status(&self, id: Uuid, entry: StatusEntry, keep: Duration) -> StoreResult<()>;

    /// Checks that the store answers (health endpoint).
    async fn ping(&self) -> StoreResult<()>;

    /// Counts live services and the live reservations on every number of `groups` (the
    /// metrics gauges): called every few seconds off the request path, never per request.
    async fn usage(&self, groups: &HashMap<String, Arc<[String]>>) -> StoreResult<Usage>;

    /// The callback records (issue 18): the same backend, its own keys and indexes.
    fn callbacks(&self) -> &dyn CallbackStore;

    /// The live reservations on each number of one group, in configured order: what
    /// `_return_pool_health` reports (asked for by a request, so O(the group's numbers), never
    /// a count of services).
    async fn group_use(&self, group: &str, numbers: &Arc<[String]>) -> StoreResult<Vec<NumberUse>>;

    /// Starts the store's own background work, once the process serves (after a daemon's
    /// fork, which keeps no other thread). Required, not defaulted: a wrapper that forgot to
    /// pass it on would leave a memory store without its sweeper.
    fn start_upkeep(&self);
}

/// Builds the store the configuration asks for; with metrics on ([`ApiConfig::metrics`]),
/// wrapped in `metered::Metered`, so that without metrics no operation pays for them.
pub fn build(config: &ApiConfig) -> Result<Arc<dyn Store>, StartError> {
    let store: Arc<dyn Store> = match &config.storage {
        StorageKind::Memory => {
            let max = config
                .limits
                .max_store_bytes
                .unwrap_or_else(budget::default_max);
            log::info!("memory store: up to {max} bytes of user data (gms.limits.max_store_bytes)");
            Arc::new(memory::MemoryStore::with_budget(max))
        }
        StorageKind::Redis {
            url,
            prefix,
            timeout_ms,
        } => Arc::new(
            redis::RedisStore::single(
                url,
                prefix,
                Duration::from_millis(*timeout_ms),
                &config.resources,
            )
            .map_err(StartError::Store)?,
        ),
        StorageKind::RedisCluster {
            nodes,
            prefix,
            timeout_ms,
        } => Arc::new(
            redis::RedisStore::cluster(
                nodes,
                prefix,
                Duration::from_millis(*timeout_ms),
                &config.resources,
            )
            .map_err(StartError::Store)?,
        ),
    };
    Ok(if config.metrics {
        Arc::new(metered::Metered::new(store))
    } else {
        store
    })
}
