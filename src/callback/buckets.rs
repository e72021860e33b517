//! `_request_time_bucket`: the time slots callbacks are booked into (contract §6.2, §12).
//!
//! Buckets start at the local times of the office's zone that are a multiple of the bucket
//! length after local midnight (09:00, 09:05, ... for 5 minutes), and also at each change of the
//! zone's UTC offset. So every instant lies in exactly one bucket and every bucket start lies
//! in its own bucket, across daylight-saving changes too: in spring the bucket that holds the
//! skipped hour ends at the change; in autumn the repeated hour gets its own buckets. A
//! bucket is never longer than the bucket length.
//!
//! The store indexes booked counts by [`Buckets::key`] (epoch milliseconds of the bucket start):
//! one offset lookup per call, plus one transition lookup only near an offset change.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::error::OptionError;

/// The bucket lengths GMS allows, in minutes (since 8.5.202.03; research §1.12).
pub const ALLOWED_MINUTES: [u32; 7] = [5, 10, 15, 20, 30, 60, 120];

/// The option [`Buckets::parse_minutes`] reports in its errors.
pub const BUCKET_OPTION: &str = "_request_time_bucket";

/// The GMS default bucket length, in minutes.
pub const DEFAULT_MINUTES: u32 = 5;

/// Bucket boundaries of one length in one time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    minutes: u32,
    tz: TimeZone,
}

impl Buckets {
    /// Buckets of `minutes` (one of [`ALLOWED_MINUTES`]) aligned in `tz`.
    pub fn new(minutes: u32, tz: TimeZone) -> Result<Buckets, OptionError> {
        if !ALLOWED_MINUTES.contains(&minutes) {
            return Err(OptionError::new(
                BUCKET_OPTION,
                format!("{minutes} is not one of 5, 10, 15, 20, 30, 60, 120 (minutes)"),
            ));
        }
        Ok(Buckets { minutes, tz })
    }

    /// One-hour buckets in `tz`: the local hours of the zone (capacity periods).
    pub fn hourly(tz: TimeZone) -> Buckets {
        Buckets { minutes: 60, tz }
    }

    /// Parses a `_request_time_bucket` value (decimal minutes, one of [`ALLOWED_MINUTES`]).
    pub fn parse_minutes(value: &str) -> Result<u32, OptionError> {
        let minutes = value.trim().parse::<u32>().map_err(|_| {
            OptionError::new(
                BUCKET_OPTION,
                format!("'{value}' is not one of 5, 10, 15, 20, 30, 60, 120 (minutes)"),
            )
        })?;
        Buckets::new(minutes, TimeZone::UTC).map(|_| minutes)
    }

    /// The bucket length in minutes (V2 `durationMin`).
    pub fn minutes(&self) -> u32 {
        self.minutes
    }

    /// The zone the buckets are aligned in.
    pub fn timezone(&self) -> &TimeZone {
        &self.tz
    }

    /// The start of the bucket that holds `t`.
    pub fn start_of(&self, t: Timestamp) -> Timestamp {
        let offset = self.tz.to_offset(t);
        let floor = self.floor_in_offset(t, offset.seconds());
        if floor == t || self.tz.to_offset(floor) == offset {
            return floor;
        }
        // The offset changed between the aligned local time and `t`: the bucket starts at the
        // change. `preceding` yields transitions strictly before its argument, hence the +1 ns.
        let after = t.saturating_add(SignedDuration::from_nanos(1)).unwrap_or(t);
        match self.tz.preceding(after).next() {
            Some(change) => change.timestamp().max(floor),
            None => floor,
        }
    }

    /// [`Buckets::start_of`] as epoch milliseconds: the store's index key for `t`'s bucket.
    pub fn key(&self, t: Timestamp) -> i64 {
        self.start_of(t).as_millisecond()
    }

    /// The first bucket start strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Timestamp {
        let length = SignedDuration::from_mins(i64::from(self.minutes));
        // A bucket is never longer than `length`, so the next start is in (t, t + length];
        // walk back from the last start at or before t + length while an earlier one is after t.
        let Some(probe) = t.saturating_add(length).ok().filter(|p| *p > t) else {
            return Timestamp::MAX;
        };
        let mut next = self.start_of(probe);
        for _ in 0..4 {
            let before = next
                .saturating_sub(SignedDuration::from_nanos(1))
                .unwrap_or(next);
            let previous = self.start_of(before);
            if previous <= t {
                break;
            }
            next = previous;
        }
        next
    }

    /// `t` when it is a bucket start, else the next bucket start (availability `start`, §6.2).
    pub fn ceil(&self, t: Timestamp) -> Timestamp {
        let start = self.start_of(t);
        if start == t {
            t
        } else {
            self.next_after(t)
        }
    }

    /// The bucket starts in `[from, to)`, `from` rounded up, in order. Between two offset
    /// changes the starts are plain arithmetic: the zone is consulted once per change, not
    /// once per bucket (31 days of 5-minute buckets are 8,928 of them).
    pub fn starts(&self, from: Timestamp, to: Timestamp) -> impl Iterator<Item = Timestamp> + '_ {
        let length_ms = i64::from(self.minutes) * 60_000;
        let mut next = self.ceil(from);
        // This offset holds until the instant (the next change, itself a bucket start).
        let mut stretch: Option<(i32, Timestamp)> = None;
        std::iter::from_fn(move || {
            let current = next;
            if current >= to || current == Timestamp::MAX {
                return None;
            }
            let (offset, until) = match stretch {
                Some((offset, until)) if current < until => (offset, until),
                _ => {
                    let found = self.stretch_at(current);
                    stretch = Some(found);
                    found
                }
            };
            let aligned = self.floor_in_offset(current, offset).as_millisecond() + length_ms;
            next = Timestamp::from_millisecond(aligned)
                .unwrap_or(Timestamp::MAX)
                .min(until);
            Some(current)
        })
    }

    /// The offset at `t` (in seconds) and the next instant it changes (a bucket start).
    fn stretch_at(&self, t: Timestamp) -> (i32, Timestamp) {
        let offset = self.tz.to_offset(t);
        // A transition may change only the abbreviation; it is no bucket start. Eight
        // transitions without an offset change do not occur in the tz database.
        let until = self
            .tz
            .following(t)
            .take(8)
            .find(|change| change.offset() != offset)
            .map_or(Timestamp::MAX, |change| change.timestamp());
        (offset.seconds(), until)
    }

    /// The aligned local time at or before `t` when the zone's offset is `offset_seconds`.
    fn floor_in_offset(&self, t: Timestamp, offset_seconds: i32) -> Timestamp {
        let length_ms = i64::from(self.minutes) * 60_000;
        let offset_ms = i64::from(offset_seconds) * 1000;
        let local_ms = t.as_millisecond() + offset_ms;
        let floor_ms = local_ms - local_ms.rem_euclid(length_ms) - offset_ms;
        // `t` is within Jiff's range and the floor is at most one bucket and one offset away;
        // near the very ends of that range, fall back to `t` itself.
        Timestamp::from_millisecond(floor_ms).unwrap_or(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::time::{format_utc, time_zone};

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn starts(b: &Buckets, from: &str, to: &str) -> Vec<String> {
        b.starts(utc(from), utc(to)).map(format_utc).collect()
    }

    fn paris(minutes: u32) -> Buckets {
        Buckets::new(minutes, time_zone("Europe/Paris").unwrap()).unwrap()
    }

    #[test]
    fn lengths_are_checked() {
        for m in ALLOWED_MINUTES {
            assert!(Buckets::new(m, TimeZone::UTC).is_ok());
            assert_eq!(Buckets::parse_minutes(&m.to_string()), Ok(m));
        }
        for bad in ["0", "7", "45", "240", "-5", "five", "", "5.0"] {
            let err = Buckets::parse_minutes(bad).unwrap_err();
            assert_eq!(err.option, BUCKET_OPTION, "{bad}");
        }
    }

    #[test]
    fn utc_buckets_floor_and_ceil() {
        let b = Buckets::new(15, TimeZone::UTC).unwrap();
        type Op = fn(&Buckets, Timestamp) -> Timestamp;
        let cases: [(&str, Op, &str, &str); 6] = [
            ("start_of", Buckets::start_of, "14:29:59.999", "14:15:00"),
            ("start_of", Buckets::start_of, "14:30:00", "14:30:00"),
            ("ceil", Buckets::ceil, "14:30:00", "14:30:00"),
            ("ceil", Buckets::ceil, "14:30:00.001", "14:45:00"),
            ("next_after", Buckets::next_after, "14:30:00", "14:45:00"),
            ("next_after", Buckets::next_after, "14:44:59", "14:45:00"),
        ];
        for (name, op, t, want) in cases {
            let at = |hms: &str| utc(&format!("2026-03-02T{hms}Z"));
            assert_eq!(op(&b, at(t)), at(want), "{name}({t})");
        }
        assert_eq!(
            b.key(utc("2026-03-02T14:31:00Z")),
            utc("2026-03-02T14:30:00Z").as_millisecond()
        );
        assert_eq!(
            starts(&b, "2026-03-02T23:50:00Z", "2026-03-03T00:30:00Z"),
            ["2026-03-03T00:00:00.000Z", "2026-03-03T00:15:00.000Z"]
        );
    }

    #[test]
    fn buckets_align_in_local_time() {
        // Kolkata is UTC+05:30: two-hour buckets start at local even hours, so at xx:30Z.
        let b = Buckets::new(120, time_zone("Asia/Kolkata").unwrap()).unwrap();
        assert_eq!(
            b.start_of(utc("2026-03-02T05:00:00Z")),
            utc("2026-03-02T04:30:00Z")
        );
        assert_eq!(
            starts(&b, "2026-03-02T04:00:00Z", "2026-03-02T09:00:00Z"),
            [
                "2026-03-02T04:30:00.000Z",
                "2026-03-02T06:30:00.000Z",
                "2026-03-02T08:30:00.000Z"
            ]
        );
    }

    #[test]
    fn spring_forward_in_paris() {
        // 2026-03-29 02:00 CET (01:00Z) becomes 03:00 CEST.
        let b = paris(120);
        assert_eq!(
            starts(&b, "2026-03-28T22:00:00Z", "2026-03-29T05:00:00Z"),
            [
                "2026-03-28T23:00:00.000Z", // 00:00 CET, ends at the change (local 00:00-03:00)
                "2026-03-29T01:00:00.000Z", // 03:00 CEST, the change
                "2026-03-29T02:00:00.000Z", // 04:00 CEST
                "2026-03-29T04:00:00.000Z", // 06:00 CEST
            ]
        );
        assert_eq!(
            b.start_of(utc("2026-03-29T01:30:00Z")),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            b.start_of(utc("2026-03-29T00:59:00Z")),
            utc("2026-03-28T23:00:00Z")
        );
        // Five-minute buckets simply continue: 01:55 CET is followed by 03:00 CEST.
        let b5 = paris(5);
        assert_eq!(
            starts(&b5, "2026-03-29T00:55:00Z", "2026-03-29T01:06:00Z"),
            [
                "2026-03-29T00:55:00.000Z",
                "2026-03-29T01:00:00.000Z",
                "2026-03-29T01:05:00.000Z"
            ]
        );
    }

    #[test]
    fn fall_back_in_paris() {
        // 2026-10-25 03:00 CEST (01:00Z) becomes 02:00 CET: 02:00-03:00 happens twice.
        let b = paris(60);
        assert_eq!(
            starts(&b, "2026-10-24T23:00:00Z", "2026-10-25T03:00:00Z"),
            [
                "2026-10-24T23:00:00.000Z", // 01:00 CEST
                "2026-10-25T00:00:00.000Z", // 02:00 CEST
                "2026-10-25T01:00:00.000Z", // 02:00 CET, the repeated hour
                "2026-10-25T02:00:00.000Z", // 03:00 CET
            ]
        );
        let b120 = paris(120);
        assert_eq!(
            starts(&b120, "2026-10-24T22:00:00Z", "2026-10-25T06:00:00Z"),
            [
                "2026-10-24T22:00:00.000Z", // 00:00 CEST
                "2026-10-25T00:00:00.000Z", // 02:00 CEST, cut at the change
                "2026-10-25T01:00:00.000Z", // 02:00 CET
                "2026-10-25T03:00:00.000Z", // 04:00 CET
                "2026-10-25T05:00:00.000Z", // 06:00 CET
            ]
        );
    }

    #[test]
    fn new_york_changes_at_odd_alignment() {
        let ny = time_zone("America/New_York").unwrap();
        let b = Buckets::new(120, ny).unwrap();
        // 2026-03-08 02:00 EST (07:00Z) becomes 03:00 EDT; 2026-11-01 02:00 EDT (06:00Z)
        // becomes 01:00 EST.
        assert_eq!(
            starts(&b, "2026-03-08T05:00:00Z", "2026-03-08T11:00:00Z"),
            [
                "2026-03-08T05:00:00.000Z",
                "2026-03-08T07:00:00.000Z",
                "2026-03-08T08:00:00.000Z",
                "2026-03-08T10:00:00.000Z"
            ]
        );
        assert_eq!(
            starts(&b, "2026-11-01T04:00:00Z", "2026-11-01T10:00:00Z"),
            [
                "2026-11-01T04:00:00.000Z",
                "2026-11-01T06:00:00.000Z",
                "2026-11-01T07:00:00.000Z",
                "2026-11-01T09:00:00.000Z"
            ]
        );
    }

    #[test]
    fn every_instant_lies_in_its_bucket() {
        // Property over instants of 2026 in zones with changes at several local hours and by
        // 30 minutes (Lord Howe): start <= t < next, buckets no longer than their length, and
        // the fast iteration of `starts` equal to `next_after` step by step. Half the cases
        // fall within a day and a half of one of the zone's 2026 changes.
        use proptest::prelude::*;
        let zones = [
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
        ];
        let year_start = Timestamp::from_second(1_767_225_600).unwrap();
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        runner
            .run(
                &(
                    0usize..4,
                    0usize..7,
                    0i64..31_536_000,
                    proptest::option::of((0usize..2, -129_600i64..129_600)),
                ),
                |(z, m, uniform, near_change)| {
                    let tz = time_zone(zones[z]).unwrap();
                    let b = Buckets::new(ALLOWED_MINUTES[m], tz.clone()).unwrap();
                    let changes: Vec<_> = tz
                        .following(year_start)
                        .take(2)
                        .map(|c| c.timestamp())
                        .collect();
                    let t = match near_change {
                        Some((i, delta)) if i < changes.len() => changes[i]
                            .checked_add(SignedDuration::from_secs(delta))
                            .unwrap(),
                        _ => year_start
                            .checked_add(SignedDuration::from_secs(uniform))
                            .unwrap(),
                    };
                    let start = b.start_of(t);
                    let next = b.next_after(start);
                    prop_assert!(start <= t && t < next, "{} {} {}", zones[z], start, t);
                    prop_assert_eq!(b.start_of(start), start);
                    prop_assert_eq!(b.start_of(next), next);
                    let length = SignedDuration::from_mins(i64::from(b.minutes()));
                    prop_assert!(next.duration_since(start) <= length);
                    prop_assert_eq!(b.ceil(t), if start == t { t } else { next });
                    // The fast iteration agrees with next_after, one bucket at a time.
                    let to = t.saturating_add(SignedDuration::from_hours(30)).unwrap();
                    let fast: Vec<_> = b.starts(t, to).collect();
                    let slow: Vec<_> =
                        std::iter::successors(Some(b.ceil(t)), |s| Some(b.next_after(*s)))
                            .take_while(|s| *s < to)
                            .collect();
                    prop_assert_eq!(fast, slow);
                    Ok(())
                },
            )
            .unwrap();
    }
}
