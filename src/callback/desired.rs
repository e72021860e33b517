//! Is a desired time acceptable? Contract §3.2 step 4 (create) and §5 (reschedule): the past
//! and future limits, office hours, the bucket's room; and the `availability` a refusal
//! proposes (§3.4).

use std::fmt;

use jiff::Timestamp;

use super::rules::SlotRules;
use super::slots::SlotWindow;
use super::time::{format_utc, FutureLimit, MAX_RANGE};

/// How many slots a refused desired time proposes (§3.4).
pub const PROPOSED_SLOTS: u32 = 5;

/// The exception name of every [`Refusal`] (§3.2, §3.4).
pub const AVAILABILITY_EXCEPTION: &str = "CallbackExceptionAvailability";

/// How a callback is to run, for [`SlotRules::check_desired_time`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Its desired time is beyond the execution buffer: always checked against office hours.
    Scheduled,
    /// Submitted now: checked against office hours only with
    /// `_enable_reject_out_of_office_hours: true`.
    Immediate {
        /// `_enable_reject_out_of_office_hours`.
        reject_out_of_office_hours: bool,
    },
}

/// Why a desired time is refused: a 400 [`AVAILABILITY_EXCEPTION`] whose message is this
/// `Display`, with the `availability` of [`SlotRules::window_around`] (§3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Earlier than now − `_reject_past_desired_time`.
    Past {
        /// The time asked for.
        desired: Timestamp,
        /// The earliest accepted.
        earliest: Timestamp,
    },
    /// Later than now + `_reject_future_desired_time`.
    TooFarAhead {
        /// The time asked for.
        desired: Timestamp,
        /// The latest accepted.
        latest: Timestamp,
        /// The option's value.
        limit: FutureLimit,
    },
    /// The office (`_business_hours_service`) is closed then.
    OutsideOfficeHours {
        /// The time asked for.
        desired: Timestamp,
        /// The office-hours service's name.
        office: String,
    },
    /// The bucket holds as many callbacks as its capacity (or its capacity is 0).
    BucketFull {
        /// The time asked for.
        desired: Timestamp,
        /// The start of its bucket.
        bucket: Timestamp,
    },
}

impl Refusal {
    /// The refused desired time.
    pub fn desired(&self) -> Timestamp {
        match self {
            Refusal::Past { desired, .. }
            | Refusal::TooFarAhead { desired, .. }
            | Refusal::OutsideOfficeHours { desired, .. }
            | Refusal::BucketFull { desired, .. } => *desired,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let desired = format_utc(self.desired());
        match self {
            Refusal::Past { earliest, .. } => write!(
                f,
                "Desired time {desired} is in the past (earliest accepted {})",
                format_utc(*earliest)
            ),
            Refusal::TooFarAhead { latest, limit, .. } => write!(
                f,
                "Desired time {desired} is more than {limit} ahead (latest accepted {})",
                format_utc(*latest)
            ),
            Refusal::OutsideOfficeHours { office, .. } => {
                write!(
                    f,
                    "Desired time {desired} is outside office hours of {office}"
                )
            }
            Refusal::BucketFull { bucket, .. } => write!(
                f,
                "Desired time {desired} is not available: the time slot at {} is full",
                format_utc(*bucket)
            ),
        }
    }
}

impl std::error::Error for Refusal {}

impl SlotRules {
    /// §3.2 step 4 without the store: the past and future limits, then office hours (always
    /// for a scheduled callback, for an immediate one only when asked to).
    pub fn check_desired_time(
        &self,
        desired: Timestamp,
        now: Timestamp,
        timing: Timing,
    ) -> Result<(), Refusal> {
        let earliest = now.saturating_sub(self.past_tolerance).unwrap_or(now);
        if desired < earliest {
            return Err(Refusal::Past { desired, earliest });
        }
        let latest = self.latest(now);
        if desired > latest {
            return Err(Refusal::TooFarAhead {
                desired,
                latest,
                limit: self.future_limit,
            });
        }
        let check_office = match timing {
            Timing::Scheduled => true,
            Timing::Immediate {
                reject_out_of_office_hours,
            } => reject_out_of_office_hours,
        };
        if let Some((name, hours)) = self.office.as_ref().filter(|_| check_office) {
            if !hours.is_open(desired) {
                return Err(Refusal::OutsideOfficeHours {
                    desired,
                    office: name.clone(),
                });
            }
        }
        Ok(())
    }

    /// §3.2 step 4, the bucket: refused when `booked` (the count in `desired`'s bucket) has
    /// reached the bucket's capacity. Ours: for scheduled callbacks only (an immediate one
    /// would otherwise be refused in every hour a capacity service leaves at 0). Advisory: the
    /// store checks and books atomically against [`SlotRules::bucket_total`].
    pub fn check_room(&self, desired: Timestamp, booked: u32) -> Result<(), Refusal> {
        let bucket = self.bucket_start(desired);
        if booked >= self.bucket_total(bucket) {
            return Err(Refusal::BucketFull { desired, bucket });
        }
        Ok(())
    }

    /// The window of the `availability` proposed with a refusal (§3.4): the first
    /// [`PROPOSED_SLOTS`] free slots from the desired time (from now when it was too early or
    /// too far ahead), within 31 days and `_reject_future_desired_time`.
    pub fn window_around(&self, refusal: &Refusal, now: Timestamp) -> SlotWindow {
        let from = match refusal {
            Refusal::Past { .. } | Refusal::TooFarAhead { .. } => now,
            Refusal::OutsideOfficeHours { desired, .. } | Refusal::BucketFull { desired, .. } => {
                (*desired).max(now)
            }
        };
        SlotWindow {
            start: self.buckets.ceil(from),
            end: from.saturating_add(MAX_RANGE).unwrap_or(Timestamp::MAX),
            limit: PROPOSED_SLOTS,
            report_busy: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::callback::office_hours::OfficeHours;

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn business_hours() -> SlotRules {
        let hours = OfficeHours::from_options([
            ("_timezone", "Europe/Paris"),
            ("_bh_regular1", "Mon-Fri 09:00-17:00"),
        ])
        .unwrap();
        SlotRules::new(5, Some(("business-hours".into(), Arc::new(hours))), None).unwrap()
    }

    const NOW: &str = "2026-03-02T12:00:00Z"; // Monday 13:00 in Paris

    #[test]
    fn past_and_future_limits() {
        let rules = business_hours();
        let now = utc(NOW);
        let check = |t: &str| rules.check_desired_time(utc(t), now, Timing::Scheduled);
        assert_eq!(check("2026-03-02T11:59:00Z"), Ok(()));
        assert_eq!(
            check("2026-03-02T11:58:59Z"),
            Err(Refusal::Past {
                desired: utc("2026-03-02T11:58:59Z"),
                earliest: utc("2026-03-02T11:59:00Z")
            })
        );
        assert_eq!(check("2026-04-02T12:00:00Z"), Ok(())); // Thursday, exactly 1M ahead
        let too_far = check("2026-04-02T12:00:00.001Z").unwrap_err();
        assert_eq!(
            too_far.to_string(),
            "Desired time 2026-04-02T12:00:00.001Z is more than 1M ahead (latest accepted 2026-04-02T12:00:00.000Z)"
        );
        let strict = business_hours()
            .with_past_tolerance_secs(0)
            .with_future_limit(FutureLimit::parse("1h").unwrap());
        assert!(strict
            .check_desired_time(utc("2026-03-02T11:59:59Z"), now, Timing::Scheduled)
            .is_err());
        assert!(strict
            .check_desired_time(utc("2026-03-02T13:00:01Z"), now, Timing::Scheduled)
            .is_err());
        assert!(strict
            .check_desired_time(now, now, Timing::Scheduled)
            .is_ok());
    }

    #[test]
    fn office_hours_for_scheduled_and_when_asked_for_immediate() {
        let rules = business_hours();
        let now = utc(NOW);
        let evening = utc("2026-03-02T20:00:00Z");
        let refusal = rules
            .check_desired_time(evening, now, Timing::Scheduled)
            .unwrap_err();
        assert_eq!(
            refusal.to_string(),
            "Desired time 2026-03-02T20:00:00.000Z is outside office hours of business-hours"
        );
        assert_eq!(refusal.desired(), evening);
        // An immediate callback at a closed time (now = Saturday).
        let saturday = utc("2026-03-07T12:00:00Z");
        let lenient = Timing::Immediate {
            reject_out_of_office_hours: false,
        };
        let strict = Timing::Immediate {
            reject_out_of_office_hours: true,
        };
        assert_eq!(
            rules.check_desired_time(saturday, saturday, lenient),
            Ok(())
        );
        assert!(matches!(
            rules.check_desired_time(saturday, saturday, strict),
            Err(Refusal::OutsideOfficeHours { .. })
        ));
        // Without office hours nothing is closed.
        let plain = SlotRules::new(5, None, None).unwrap();
        assert_eq!(
            plain.check_desired_time(evening, now, Timing::Scheduled),
            Ok(())
        );
    }

    #[test]
    fn room_in_the_bucket() {
        let rules = business_hours().with_max_per_bucket(2);
        let desired = utc("2026-03-02T14:07:00Z");
        assert_eq!(rules.check_room(desired, 1), Ok(()));
        let full = rules.check_room(desired, 2).unwrap_err();
        assert_eq!(
            full,
            Refusal::BucketFull {
                desired,
                bucket: utc("2026-03-02T14:05:00Z")
            }
        );
        assert_eq!(
            full.to_string(),
            "Desired time 2026-03-02T14:07:00.000Z is not available: the time slot at 2026-03-02T14:05:00.000Z is full"
        );
    }

    #[test]
    fn availability_around_a_refused_time() {
        let rules = business_hours().with_max_per_bucket(5);
        let now = utc(NOW);
        // Monday 21:00 in Paris is closed: the proposal starts Tuesday 09:00 (08:00Z).
        let desired = utc("2026-03-02T20:00:00Z");
        let refusal = rules
            .check_desired_time(desired, now, Timing::Scheduled)
            .unwrap_err();
        let window = rules.window_around(&refusal, now);
        let booked = HashMap::from([
            (utc("2026-03-03T08:10:00Z"), 1),
            (utc("2026-03-03T08:05:00Z"), 5),
        ]);
        let slots = rules.free_slots(&window, now, |b| booked.get(&b).copied().unwrap_or(0));
        let availability = SlotRules::v1(&slots);
        assert_eq!(
            serde_json::to_string(&availability).unwrap(),
            r#"{"2026-03-03T08:00:00.000Z":5,"2026-03-03T08:10:00.000Z":4,"2026-03-03T08:15:00.000Z":5,"2026-03-03T08:20:00.000Z":5,"2026-03-03T08:25:00.000Z":5}"#
        );
        // A full bucket proposes from the desired time on.
        let full = rules
            .check_room(utc("2026-03-02T14:07:00Z"), 5)
            .unwrap_err();
        let slots = rules.free_slots(&rules.window_around(&full, now), now, |_| 0);
        assert_eq!(slots.len(), 5);
        assert_eq!(format_utc(slots[0].start), "2026-03-02T14:10:00.000Z");
        // Too early or too far ahead: proposals start now.
        let past = rules
            .check_desired_time(utc("2026-03-01T10:00:00Z"), now, Timing::Scheduled)
            .unwrap_err();
        let slots = rules.free_slots(&rules.window_around(&past, now), now, |_| 0);
        assert_eq!(format_utc(slots[0].start), "2026-03-02T12:00:00.000Z");
        let far = rules
            .check_desired_time(utc("2027-01-01T10:00:00Z"), now, Timing::Scheduled)
            .unwrap_err();
        assert_eq!(rules.window_around(&far, now).start, now);
    }

    #[test]
    fn no_proposal_beyond_the_future_limit() {
        let rules = business_hours().with_future_limit(FutureLimit::parse("6h").unwrap());
        let now = utc(NOW);
        // Closed at 20:00Z, and the next opening (Tuesday 08:00Z) is beyond now + 6h.
        let refusal = rules
            .check_desired_time(utc("2026-03-02T17:00:00Z"), now, Timing::Scheduled)
            .unwrap_err();
        assert!(rules
            .free_slots(&rules.window_around(&refusal, now), now, |_| 0)
            .is_empty());
    }
}
