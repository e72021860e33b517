//! The callback record (contract §1, §6.1, §7) and its state machine (§7.2), as pure code:
//! which state changes are allowed, and by whom. [`super::change`] applies changes to a record
//! by these rules; the store ([`crate::store::callback`]) keeps records and writes each change
//! atomically with its indexes and counters.
//!
//! States are the contract's six plus [`State::Submitting`], the gateway's own: a record that a
//! node is submitting to ORS right now (an immediate create waiting for ORS, or a scheduled
//! record claimed by the scheduler). Clients see it as `SCHEDULED`.
//!
//! ```text
//! (create, future)        -> SCHEDULED
//! (create, now)           -> SUBMITTING                          [gateway]
//! SCHEDULED  -> SUBMITTING                                       [gateway: scheduler claim]
//! SUBMITTING -> QUEUED                                           [gateway: ORS started it]
//! SUBMITTING -> SCHEDULED                                        [gateway: attempt failed, retry]
//! SCHEDULED|SUBMITTING -> COMPLETED(CANCELLED… | SUBMIT_FAILED)   [gateway]
//! SUBMITTING|QUEUED|PAUSED -> ROUTING|PAUSED|QUEUED               [ORS]
//! ROUTING -> PROCESSING                                          [ORS]
//! SUBMITTING|QUEUED|ROUTING|PROCESSING|PAUSED -> COMPLETED(any)   [ORS, or gateway cancel]
//! COMPLETED -> (final)
//! ```
//!
//! Ours, beyond §7.2: ORS may report on a SUBMITTING record (its report can overtake the
//! gateway's own write of the session it started), and a report of the state a record is
//! already in is accepted (a retried PUT must not fail).

use jiff::Timestamp;
use uuid::Uuid;

/// `_customer_number`: a lookup key of every callback (§3.1).
pub const CUSTOMER_NUMBER: &str = "_customer_number";
/// The reason of a cancel by a client (§4).
pub const CANCELLED: &str = "CANCELLED";
/// The reason of a cancel through the admin API (§9).
pub const CANCELLED_BY_ADMIN: &str = "CANCELLED_BY_ADMIN";
/// The reason of a callback the gateway could not submit to ORS (§7.1).
pub const SUBMIT_FAILED: &str = "SUBMIT_FAILED";

/// Where a callback is in its life (§7.2), plus the gateway's internal `Submitting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum State {
    /// Waits for its time.
    Scheduled,
    /// Being submitted to ORS by one node (shown as `SCHEDULED`).
    Submitting,
    /// In ORS's queue.
    Queued,
    /// The customer is reached and waits for an agent.
    Routing,
    /// The customer talks with an agent.
    Processing,
    /// Held while its service is paused.
    Paused,
    /// Final; `reason` says why.
    Completed,
}

impl State {
    /// Every state, in declaration order (`state as usize` indexes it).
    pub const ALL: [State; 7] = [
        State::Scheduled,
        State::Submitting,
        State::Queued,
        State::Routing,
        State::Processing,
        State::Paused,
        State::Completed,
    ];

    /// The states clients see (every state but `Submitting`).
    pub const PUBLIC: [State; 6] = [
        State::Scheduled,
        State::Queued,
        State::Routing,
        State::Processing,
        State::Paused,
        State::Completed,
    ];

    /// The name on the wire, `_callback_state` (`Submitting` is `SCHEDULED`).
    pub fn name(self) -> &'static str {
        match self {
            State::Scheduled | State::Submitting => "SCHEDULED",
            State::Queued => "QUEUED",
            State::Routing => "ROUTING",
            State::Processing => "PROCESSING",
            State::Paused => "PAUSED",
            State::Completed => "COMPLETED",
        }
    }

    /// The state as clients see it: `Submitting` is `Scheduled`.
    pub fn public(self) -> State {
        match self {
            State::Submitting => State::Scheduled,
            s => s,
        }
    }

    /// A public state from its wire name (exact, upper case).
    pub fn parse(name: &str) -> Option<State> {
        State::PUBLIC.into_iter().find(|s| s.name() == name)
    }

    /// A one-byte code, the form the stores keep.
    pub fn code(self) -> u8 {
        match self {
            State::Scheduled => b'S',
            State::Submitting => b'U',
            State::Queued => b'Q',
            State::Routing => b'R',
            State::Processing => b'P',
            State::Paused => b'A',
            State::Completed => b'C',
        }
    }

    /// The state of a [`State::code`].
    pub fn from_code(code: u8) -> Option<State> {
        State::ALL.into_iter().find(|s| s.code() == code)
    }

    /// `Completed`.
    pub fn is_final(self) -> bool {
        self == State::Completed
    }

    /// In ORS's hands or about to be: `Submitting`, `Queued`, `Routing`, `Processing`,
    /// `Paused`. What `_max_queued_callbacks_per_service` limits (§3.2 step 5); the submissions
    /// in flight count so that concurrent immediate creates cannot overshoot it.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            State::Submitting | State::Queued | State::Routing | State::Processing | State::Paused
        )
    }
}

/// Who asks for a change (§7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The gateway itself: create, scheduler, cancel, reschedule.
    Gateway,
    /// ORS, reporting states with admin credentials (§7.2).
    Ors,
}

/// Whether `by` may move a callback from `from` to `to` (the table in the module doc).
pub fn may_move(from: State, to: State, by: Actor) -> bool {
    use State::*;
    match (by, from, to) {
        (_, Completed, _) => false,
        (Actor::Gateway, Scheduled, Submitting) => true,
        (Actor::Gateway, Submitting, Scheduled | Queued) => true,
        (Actor::Gateway, _, Completed) => true,
        (Actor::Ors, Submitting | Queued | Paused, Routing | Paused | Queued) => true,
        (Actor::Ors, Routing, Processing) => true,
        (Actor::Ors, Submitting | Queued | Routing | Processing | Paused, Completed) => true,
        // A report of the state it is in (a retried PUT).
        (Actor::Ors, Queued | Routing | Processing | Paused, s) => s == from,
        _ => false,
    }
}

/// Whether a record completed for `reason` gives its bucket's slot back (§6.2): a cancelled
/// callback (`CANCELLED`, `CANCELLED_BY_ADMIN`, any `CANCELLED_…`) and one that was never
/// submitted (`SUBMIT_FAILED`: no agent will take it, so the slot is free again). Every other
/// completed callback was handled in its bucket and keeps counting.
pub fn releases_bucket(reason: &str) -> bool {
    reason.starts_with(CANCELLED) || reason == SUBMIT_FAILED
}

/// Where ORS runs a submitted callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrsRef {
    /// Base URL of the ORS node.
    pub node: String,
    /// ORS's session id (`_ors_session_id`).
    pub session: String,
}

/// A node's hold on a record it is submitting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The node (its id, unique per gateway process).
    pub node: String,
    /// Until then no other node takes the record; after it, the scheduler may.
    pub until: Timestamp,
}

/// One callback, as the store keeps it (§1). Times are kept to the millisecond.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackRecord {
    /// `_id`, a UUID v4.
    pub id: Uuid,
    /// `_service_name`.
    pub service: String,
    /// `_callback_state`.
    pub state: State,
    /// `_callback_reason`.
    pub reason: Option<String>,
    /// `_desired_time`.
    pub desired: Timestamp,
    /// When the scheduler submits it: `_desired_time` − `_request_execution_time_buffer`.
    pub submit_at: Timestamp,
    /// `_expiration_time`: the store forgets the record then (§6.1).
    pub expires: Timestamp,
    /// When it was created (also the clock of the throttles, see the store).
    pub created: Timestamp,
    /// `_customer_number`.
    pub customer_number: String,
    /// The other `_customer_lookup_keys` and their values (searchable; stored sorted by key,
    /// without empty values).
    pub lookup: Vec<(String, String)>,
    /// Other values kept for replies and filters (`returned-keys`, `filter-keys`), not indexed
    /// (stored sorted by key).
    pub props: Vec<(String, String)>,
    /// `_data_id`: the user data, in the data store.
    pub data_id: Uuid,
    /// `gms_user` that owns it.
    pub owner: Option<String>,
    /// The options its create changed (request values that took effect, `$token$`
    /// substitutions), laid over the service's configured options at submission.
    pub options: Vec<(String, String)>,
    /// The bucket it is booked in ([`crate::callback::SlotRules::bucket_key`]); `None`: in none.
    pub bucket: Option<i64>,
    /// The ORS session, once submitted.
    pub ors: Option<OrsRef>,
    /// Submissions started so far.
    pub attempts: u32,
    /// After a failed attempt: when to try again.
    pub next_attempt: Option<Timestamp>,
    /// The node submitting it (state `Submitting`; kept until the session is recorded).
    pub claim: Option<Claim>,
    /// Created as an immediate callback (submitted during its create).
    pub immediate: bool,
    /// Bumped by every change (the stores' compare-and-set).
    pub version: u64,
}

impl CallbackRecord {
    /// A scheduled record with a new id: submitted at `desired`, no bucket, no owner, no
    /// options; set the other fields before the create.
    pub fn new(
        service: &str,
        customer_number: &str,
        desired: Timestamp,
        expires: Timestamp,
        created: Timestamp,
    ) -> CallbackRecord {
        CallbackRecord {
            id: Uuid::new_v4(),
            service: service.to_string(),
            state: State::Scheduled,
            reason: None,
            desired,
            submit_at: desired,
            expires,
            created,
            customer_number: customer_number.to_string(),
            lookup: Vec::new(),
            props: Vec::new(),
            data_id: Uuid::new_v4(),
            owner: None,
            options: Vec::new(),
            bucket: None,
            ors: None,
            attempts: 0,
            next_attempt: None,
            claim: None,
            immediate: false,
            version: 0,
        }
    }

    /// The same record as an immediate create: `Submitting`, claimed by `node` until
    /// `until` (the ORS start must end by then), one attempt under way.
    pub fn immediate(mut self, node: &str, until: Timestamp) -> CallbackRecord {
        self.state = State::Submitting;
        self.immediate = true;
        self.attempts = 1;
        self.claim = Some(Claim {
            node: node.to_string(),
            until,
        });
        self
    }

    /// The bucket whose count it takes: its bucket unless it completed for a reason that
    /// [`releases_bucket`].
    pub fn booked_bucket(&self) -> Option<i64> {
        let released = self.state.is_final() && self.reason.as_deref().is_some_and(releases_bucket);
        self.bucket.filter(|_| !released)
    }

    /// When the scheduler must look at it: a scheduled record at its next attempt (else its
    /// submit time), a submitting one when its claim ends; `None` in every other state.
    pub fn due_at(&self) -> Option<Timestamp> {
        match self.state {
            State::Scheduled => Some(self.next_attempt.unwrap_or(self.submit_at)),
            State::Submitting => Some(self.claim.as_ref().map_or(self.submit_at, |c| c.until)),
            _ => None,
        }
    }

    /// The record as the stores keep it: times to the millisecond, lookup keys and
    /// properties sorted by key, no empty lookup value.
    pub fn normalized(&self) -> CallbackRecord {
        let ms = |t: Timestamp| Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t);
        let mut r = self.clone();
        r.desired = ms(r.desired);
        r.submit_at = ms(r.submit_at);
        r.expires = ms(r.expires);
        r.created = ms(r.created);
        r.next_attempt = r.next_attempt.map(ms);
        if let Some(c) = &mut r.claim {
            c.until = ms(c.until);
        }
        r.lookup.retain(|(_, v)| !v.is_empty());
        r.lookup.sort();
        r.props.sort();
        r
    }

    /// The value of a lookup key (`_customer_number` included).
    pub fn lookup_value(&self, key: &str) -> Option<&str> {
        if key == CUSTOMER_NUMBER {
            return Some(&self.customer_number);
        }
        pair(&self.lookup, key)
    }

    /// The value of a property (see [`CallbackRecord::props`]).
    pub fn prop(&self, key: &str) -> Option<&str> {
        pair(&self.props, key)
    }
}

fn pair<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Records for the unit tests of the callback modules.
#[cfg(test)]
pub(crate) mod fixtures {
    use jiff::Timestamp;

    use super::CallbackRecord;

    pub(crate) fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// Scheduled at 2026-03-02T14:30Z, kept a day, booked in the bucket starting then.
    pub(crate) fn scheduled() -> CallbackRecord {
        let mut r = CallbackRecord::new(
            "cb",
            "5551234",
            at("2026-03-02T14:30:00Z"),
            at("2026-03-03T14:30:00Z"),
            at("2026-03-02T10:00:00Z"),
        );
        r.bucket = Some(at("2026-03-02T14:30:00Z").as_millisecond());
        r
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{at, scheduled};
    use super::*;
    use State::*;

    #[test]
    fn states_have_codes_and_wire_names() {
        for s in State::ALL {
            assert_eq!(State::from_code(s.code()), Some(s));
            assert_eq!(State::parse(s.name()), Some(s.public()));
        }
        assert_eq!(Submitting.name(), "SCHEDULED");
        assert_eq!(State::parse("queued"), None);
        assert_eq!(State::parse("SUBMITTING"), None);
        assert!(Submitting.is_active() && Paused.is_active());
        assert!(!Scheduled.is_active() && !Completed.is_active());
    }

    #[test]
    fn the_transition_table_of_the_contract() {
        // Every allowed (from, to, by); everything else is refused.
        let allowed: &[(State, State, Actor)] = &[
            (Scheduled, Submitting, Actor::Gateway),
            (Submitting, Scheduled, Actor::Gateway),
            (Submitting, Queued, Actor::Gateway),
            (Scheduled, Completed, Actor::Gateway),
            (Submitting, Completed, Actor::Gateway),
            (Queued, Completed, Actor::Gateway),
            (Routing, Completed, Actor::Gateway),
            (Processing, Completed, Actor::Gateway),
            (Paused, Completed, Actor::Gateway),
            (Submitting, Queued, Actor::Ors),
            (Submitting, Routing, Actor::Ors),
            (Submitting, Paused, Actor::Ors),
            (Queued, Queued, Actor::Ors),
            (Queued, Routing, Actor::Ors),
            (Queued, Paused, Actor::Ors),
            (Paused, Queued, Actor::Ors),
            (Paused, Routing, Actor::Ors),
            (Paused, Paused, Actor::Ors),
            (Routing, Routing, Actor::Ors),
            (Routing, Processing, Actor::Ors),
            (Processing, Processing, Actor::Ors),
            (Submitting, Completed, Actor::Ors),
            (Queued, Completed, Actor::Ors),
            (Routing, Completed, Actor::Ors),
            (Processing, Completed, Actor::Ors),
            (Paused, Completed, Actor::Ors),
        ];
        for from in State::ALL {
            for to in State::ALL {
                for by in [Actor::Gateway, Actor::Ors] {
                    assert_eq!(
                        may_move(from, to, by),
                        allowed.contains(&(from, to, by)),
                        "{from:?} -> {to:?} by {by:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn immediate_records_are_claimed_by_their_creator() {
        let r = scheduled().immediate("node-1", at("2026-03-02T10:01:00Z"));
        assert_eq!((r.state, r.attempts, r.immediate), (Submitting, 1, true));
        assert_eq!(r.due_at(), Some(at("2026-03-02T10:01:00Z")));
    }
}
