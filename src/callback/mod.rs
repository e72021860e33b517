//! The pure date and time logic of the Callback Services API (contract `gms-callback.md`):
//! callback times, office hours, capacity, time buckets and availability slots.
//!
//! Nothing here but `api/` reads the clock, the store or the network: every function takes
//! `now` and the counts it needs, so handlers, the store and the scheduler build on it and
//! tests use fixed instants. `api/` (crate-private) is the Callback Services API itself: its
//! handlers, the submission to ORS and the scheduler. Calendar arithmetic and time zones are `jiff`'s, with its bundled copy of the IANA
//! time-zone database ([`time::time_zone`]).
//!
//! Layout:
//! - [`error`]: [`OptionError`] (a bad service option, for `-t`) and [`ParamError`] (a bad
//!   request parameter, a 400).
//! - [`time`]: `_desired_time` and the other wire formats, `_reject_future_desired_time`.
//! - [`office_hours`]: the `office-hours` built-in (§10.1).
//! - [`capacity`]: the `capacity` built-in (§10.2).
//! - [`buckets`]: `_request_time_bucket` boundaries in the office's time zone.
//! - [`rules`]: [`rules::SlotRules`], one callback service's booking rules and bucket totals.
//! - [`slots`]: availability V1/V2 (§6.2).
//! - [`desired`]: is a desired time acceptable (§3.2 step 4), and what to propose (§3.4).
//! - [`query`]: the query parameters of the office-hours, capacity and availability GETs.
//! - [`record`]: the callback record and its state machine (§7.2); [`change`]: the changes to
//!   a record (cancel, reschedule, submission, ORS reports, edits) by those rules.

pub(crate) mod api;
pub mod buckets;
pub mod capacity;
pub mod change;
pub mod desired;
pub mod error;
pub mod office_hours;
pub mod query;
pub mod record;
pub mod rules;
pub mod slots;
pub mod time;

pub use capacity::Capacity;
pub use desired::{Refusal, Timing};
pub use error::{OptionError, ParamError};
pub use office_hours::OfficeHours;
pub use query::{AvailabilityRequest, CapacityRequest, OfficeHoursRequest, Version};
pub use rules::SlotRules;
pub use time::FutureLimit;
