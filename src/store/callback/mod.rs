//! The [`CallbackStore`]: callback records (issue 18; contract `gms-callback.md` §1, §3, §6, §7,
//! §9) with the indexes, counters and due list the Callback Services API needs, so that no
//! operation scans all callbacks. Reached through [`crate::store::Store::callbacks`]; the
//! record and its state machine are [`crate::callback::record`].
//!
//! Layout: [`index`] (what a record is found by: slices of the index, bucket and state counts),
//! [`query`] (filters and how a query is planned over the index), [`codec`] (a record as
//! bytes), [`memory`] (the memory implementation). The Redis one is
//! `crate::store::redis::callbacks`.
//!
//! # Model, on every implementation
//! - **Per service.** Everything is kept per callback service: records, index, counters, due
//!   list. On Redis each service's keys share a hash slot, so one script sees them all; a call
//!   that spans services (a query across services, a lookup by id alone) asks each service
//!   concurrently: one round trip, one command per service.
//! - **Counts.** Per service: records per [`State`], and per bucket the records that book it
//!   ([`CallbackRecord::booked_bucket`]: every record with a bucket, except completed ones
//!   that were cancelled or never submitted: `CANCELLED…` and `SUBMIT_FAILED` give their slot
//!   back).
//! - **Checks and writes are atomic.** A create runs the checks of §3.2 that depend on stored
//!   counts and inserts in one step (a Lua script on Redis, a per-service lock in memory). A
//!   change is a compare-and-set on the record's version: [`apply`] decides on the record that
//!   was read, the write succeeds only if nobody changed it since (else it is read again).
//! - **Clocks.** The throttles count by [`CallbackRecord::created`] (the creating node's
//!   clock; an abort undoes exactly what its create counted). Leases, due times and expiry are
//!   judged by the store's clock (Redis's `TIME`, so every node agrees on whether a claim ran
//!   out).
//! - **Expiry.** A record is gone for readers once its `_expiration_time` has passed; its
//!   index entries and counts are removed by [`CallbackStore::purge_expired`], which the
//!   scheduler must call on every pass for every callback service, in bounded batches, so
//!   nothing grows with dead records. The memory store also purges a few at every create; on
//!   Redis every key of a service lives 7 days past its latest record's expiration, the safety
//!   net for a service dropped from the configuration.
//!
//! # Submission: exactly once among live nodes, at least once when a node dies
//! The scheduler calls [`CallbackStore::claim_due`]: in one atomic step the due records become
//! `Submitting`, claimed by that node until a lease ends; a second node's claim skips them.
//! The node records the result with [`Change::Submitted`] or [`Change::SubmitFailed`], which
//! only the claimer may do. A claim whose lease ran out (the node died, or is too slow) is
//! claimed again by the next pass: **at least once**. A node killed after ORS started the
//! session but before writing it down cannot be told from one killed before sending, and we
//! resubmit, because a callback that is never made is worse for the customer than a rare
//! second session: at most the claims in flight at the kill are duplicated, while failing
//! them would lose every claimed record not yet sent (GMS resubmits too, research §1.9). The
//! retry counts as an attempt, so `_max_ors_submit_attempts` still bounds it. Exactly once
//! among live nodes holds when a node starts no submission after its lease (give the lease
//! more than a batch's ORS timeouts); a late `Submitted` from a node that lost its claim is
//! refused ([`Rejection::NotClaimer`]), and it then cancels the session it started.
//!
//! An immediate create whose node died (its claim ran out while still `Submitting`) is
//! removed instead: its client got no answer and will retry, and a leftover record would
//! count against that retry's in-queue check.
//!
//! # How the Callback API uses it
//! - **Scheduled create** (§3.2–3.3): a [`CallbackRecord::new`] with its fields set, `bucket`
//!   = `SlotRules::bucket_key(desired)`, [`NewCallback::capacity`] = `SlotRules::bucket_total`
//!   of that bucket, [`Limits`] from the service's options; [`CallbackStore::create`]. A
//!   [`CreateRefusal`] names the check that failed.
//! - **Immediate create**: the record [`CallbackRecord::immediate`]`(node, now + lease)` (the
//!   lease longer than the ORS start may take), created the same way (its checks and insert
//!   are one step); then the ORS start, then [`Change::Submitted`] through
//!   [`CallbackStore::update`], or [`CallbackStore::abort`] with the same [`NewCallback`]
//!   when ORS failed.
//! - **Availability** (§6.2): `SlotRules::candidates`, their bucket keys to
//!   [`CallbackStore::booked`] (one call), the counts to `SlotRules::pick`.
//! - **Scheduler**, every `queue-polling-rate` on every node, for each callback service:
//!   [`CallbackStore::claim_due`] (again while [`Claimed::more`]), submit each record, then
//!   [`Change::Submitted`] or [`Change::SubmitFailed`]; [`CallbackStore::purge_expired`] until
//!   it returns less than asked. The first pass after start-up passes
//!   [`ClaimRequest::recovery`].
//! - **Cancel, reschedule, ORS reports, key edits** (§4, §5, §7.2): [`CallbackStore::update`]
//!   with an [`Update`]; [`Updated::Refused`] carries the [`Rejection`] and the record as it
//!   is. A cancel of an active callback tells ORS first.
//! - **Queries** (§6.1, §9): a [`Query`] of [`Term`]s over the services asked about;
//!   [`CallbackStore::state_counts`] for watermarks; a query by reason with
//!   `states = [Completed]` for the cancelled report (paged with [`Query::after`]).

pub mod codec;
pub mod index;
pub mod memory;
pub mod query;

use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

pub use crate::callback::change::{apply, Change, Rejection, Reschedule, Update};
pub use crate::callback::record::{CallbackRecord, State};
pub use query::{Field, Found, Operand, Query, Term};

use super::StoreResult;

/// The most records one query examines per service: the bound of a query that no index narrows
/// (only negated filters, an `OR` with a negation, properties only). The answer then holds the
/// matches among the first `SCAN_LIMIT` records in desired-time order, and says it is not
/// complete ([`Found::complete`]).
pub const SCAN_LIMIT: usize = 10_000;

/// Expired records [`CallbackStore::create`] also purges, so that records expire even when no
/// scheduler runs.
pub const PURGE_ON_CREATE: usize = 2;

/// A callback to create and the limits of §3.2 steps 4–5 that it must pass.
#[derive(Debug, Clone)]
pub struct NewCallback {
    /// The record: `Scheduled`, or `Submitting` for an immediate create
    /// ([`CallbackRecord::immediate`]).
    pub record: CallbackRecord,
    /// The capacity of `record.bucket` (`SlotRules::bucket_total`): refused when the bucket
    /// already books that many. `None`: not checked (still counted in the bucket).
    pub capacity: Option<u32>,
    /// The queue and throttle limits.
    pub limits: Limits,
}

/// The limits of §3.2 step 5, checked in this order after the bucket's room.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// `_max_queued_callbacks_per_service`, for immediate creates: refused when the service
    /// has this many [`State::is_active`] records.
    pub max_active: Option<u32>,
    /// `_throttle_callbacks_per_service_k` in `_throttle_ttl_k` (k = 1, 2, in order).
    pub throttles: Vec<Throttle>,
    /// `_throttle_request_parameters` and their limit.
    pub per_parameter: Option<ParameterThrottle>,
    /// `_enable_in_queue_checking`: refused when the service has this many non-final
    /// records with the same `_customer_number` (2 for `true`, 1 for `strict`).
    pub in_queue: Option<u32>,
}

/// At most `max` creates of the service within `window` before the new one's `created`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// `_throttle_ttl_k`.
    pub window: Duration,
    /// `_throttle_callbacks_per_service_k`.
    pub max: u32,
}

/// At most `max` creates per UTC day with the same value of each key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterThrottle {
    /// Each `_throttle_request_parameters` key and this request's value of it.
    pub values: Vec<(String, String)>,
    /// `_throttle_request_parameters_limit`.
    pub max: u32,
}

/// Which check refused a create (§3.2), the first that failed. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateRefusal {
    /// The bucket books its capacity: 400 `CallbackExceptionAvailability`.
    BucketFull,
    /// `max_active` reached: 503.
    QueueFull,
    /// The throttle `Limits::throttles[index]` is reached: 503.
    Throttled {
        /// Which throttle.
        index: usize,
        /// Its window.
        window: Duration,
    },
    /// The day's creates with this key's value reached the limit: 503.
    ParameterLimit {
        /// The key.
        key: String,
        /// Its value.
        value: String,
    },
    /// In-queue duplicates at the limit: 400 `CallbackExceptionDuplicate`.
    Duplicate,
}

/// What an [`Update`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Updated {
    /// Applied: the record now.
    Done(CallbackRecord),
    /// No live record with that id in that service.
    NotFound,
    /// Refused, nothing changed: why, and the record as it is.
    Refused(Rejection, CallbackRecord),
}

/// Records per state of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateCounts {
    /// Indexed by `State as usize` ([`State::ALL`]).
    pub counts: [u64; 7],
}

impl StateCounts {
    /// The records in `state`.
    pub fn of(&self, state: State) -> u64 {
        self.counts[state as usize]
    }

    /// The watermark of §9: `QUEUED`, `ROUTING`, `PROCESSING` and `PAUSED` records.
    pub fn watermark(&self) -> u64 {
        [
            State::Queued,
            State::Routing,
            State::Processing,
            State::Paused,
        ]
        .iter()
        .map(|s| self.of(*s))
        .sum()
    }
}

/// One scheduler pass over a service's due list.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// This node's id.
    pub node: String,
    /// At most this many due records are looked at (and so claimed).
    pub batch: usize,
    /// The claim holds this long (by the store's clock).
    pub lease: Duration,
    /// `_max_ors_submit_attempts`: a run-out claim with this many attempts is given up.
    pub max_attempts: u32,
    /// At start-up, `_queue_poll_period_recovery`: records whose submit time passed longer
    /// ago than this are given up (`SUBMIT_FAILED`) instead of claimed (§7.1).
    pub recovery: Option<Duration>,
}

/// What a pass claimed and cleared.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Claimed {
    /// Claimed by this node, to submit: `Submitting`, attempts counted.
    pub records: Vec<CallbackRecord>,
    /// Set `COMPLETED`/`SUBMIT_FAILED`: too old at start-up, or out of attempts.
    pub failed: Vec<Uuid>,
    /// Immediate creates whose node died mid-submission: removed.
    pub dropped: Vec<Uuid>,
    /// The batch was full: more may be due now.
    pub more: bool,
}

/// Whether [`CallbackStore::abort`] of `new` may remove `current`: still `Submitting`, an
/// immediate create, claimed by the node that created it.
pub fn abortable(current: &CallbackRecord, new: &NewCallback) -> bool {
    let creator = new.record.claim.as_ref().map(|c| c.node.as_str());
    current.state == State::Submitting
        && current.immediate
        && creator.is_some()
        && current.claim.as_ref().map(|c| c.node.as_str()) == creator
}

/// Callback records, their indexes, counters and due list (the module doc says how).
#[async_trait]
pub trait CallbackStore: Send + Sync {
    /// Creates a record if the service's stored counts allow it (§3.2 steps 4–5, in order:
    /// bucket room, active count for immediate ones, throttles, per-parameter throttle,
    /// in-queue duplicates); nothing is stored on a refusal. Returns the stored record.
    async fn create(&self, new: &NewCallback)
        -> StoreResult<Result<CallbackRecord, CreateRefusal>>;

    /// Undoes an immediate create whose ORS start failed ("no record is kept", §3.3): removes
    /// the record and every count it took (bucket, state, throttles) while it is still
    /// `Submitting` and claimed by its creator; false otherwise (e.g. cancelled meanwhile).
    async fn abort(&self, new: &NewCallback) -> StoreResult<bool>;

    /// A live record of `service`.
    async fn get(&self, service: &str, id: Uuid) -> StoreResult<Option<CallbackRecord>>;

    /// A live record of any of `services` (`GET /service/callback?_id=`, requests on a
    /// callback id): one round trip.
    async fn find(&self, services: &[&str], id: Uuid) -> StoreResult<Option<CallbackRecord>>;

    /// Applies `update` ([`apply`]) to a live record, atomically with its indexes: the
    /// bucket counts, due entry and expiry move with a reschedule; a cancel releases its
    /// bucket. A reschedule with a capacity is refused when the new bucket is full.
    async fn update(&self, service: &str, id: Uuid, update: &Update) -> StoreResult<Updated>;

    /// The records of `services` matching `query`, by desired time then id, at most
    /// `query.limit` ([`query`] says how it is bounded).
    async fn query(&self, services: &[&str], query: &Query) -> StoreResult<Found>;

    /// How many records book each of `buckets` in `service` (availability, §6.2), in order:
    /// one round trip.
    async fn booked(&self, service: &str, buckets: &[i64]) -> StoreResult<Vec<u32>>;

    /// Records per state of each of `services`, in order (watermarks, §9).
    async fn state_counts(&self, services: &[&str]) -> StoreResult<Vec<StateCounts>>;

    /// Claims `service`'s due records for `claim.node` (§7.1): records whose due time
    /// ([`CallbackRecord::due_at`]) has passed, in due order, at most `claim.batch`. Claims
    /// whose lease ran out are taken again (or given up when out of attempts); immediate
    /// creates whose node died are dropped.
    async fn claim_due(&self, service: &str, claim: &ClaimRequest) -> StoreResult<Claimed>;

    /// Removes up to `max` of `service`'s expired records with their index entries and counts;
    /// returns how many.
    async fn purge_expired(&self, service: &str, max: usize) -> StoreResult<usize>;
}
