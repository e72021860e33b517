//! Availability V1 and V2 (contract §6.2) over one service's [`SlotRules`].
//!
//! The store is not called from here. Listing slots is two steps so that a store that answers
//! over the network can fetch all the counts it needs at once:
//! 1. [`SlotRules::candidates`]: the buckets of a [`SlotWindow`] that are open, not past, not
//!    beyond `_reject_future_desired_time` and have a capacity above 0;
//! 2. [`SlotRules::pick`]: their room given the booked count per bucket start (the store's
//!    index, keyed by [`SlotRules::bucket_key`]), the first `max-time-slots` of them.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::error::ParamError;
use super::query::AvailabilityRequest;
use super::rules::SlotRules;
use super::time::{format_utc, write_local, write_utc, zone_name};

/// The most slots one availability reply lists (ours: §6.2, §13 Q16).
pub const MAX_SLOTS: u32 = 2000;

/// Which range of buckets to look at, resolved from a request or a refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotWindow {
    /// The first bucket start considered (a bucket boundary).
    pub start: Timestamp,
    /// Buckets start before this.
    pub end: Timestamp,
    /// At most this many slots are listed.
    pub limit: u32,
    /// List full slots too (V2 `report-busy`).
    pub report_busy: bool,
}

/// A bucket that may be offered, before its booked count is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// The bucket start.
    pub start: Timestamp,
    /// Its capacity: `_capacity_service` for that hour, else `_max_request_by_time_bucket`.
    pub total: u32,
}

/// A listed slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The bucket start.
    pub start: Timestamp,
    /// Room left: total minus booked (0 only with `report-busy`).
    pub free: u32,
    /// The bucket's capacity.
    pub total: u32,
}

impl SlotRules {
    /// The window of an availability request at `now` (§6.2): its range with start rounded up
    /// to a bucket boundary, at most [`MAX_SLOTS`] slots.
    pub fn window(
        &self,
        request: &AvailabilityRequest,
        now: Timestamp,
    ) -> Result<SlotWindow, ParamError> {
        let (start, end) = request.range(now, self.buckets.timezone())?;
        Ok(SlotWindow {
            start: self.buckets.ceil(start),
            end,
            limit: request.max_time_slots.unwrap_or(MAX_SLOTS).min(MAX_SLOTS),
            report_busy: request.report_busy,
        })
    }

    /// The buckets of `window` that can be offered at `now`: open, not past, not beyond
    /// `_reject_future_desired_time`, with a capacity above 0; in time order.
    pub fn candidates(&self, window: &SlotWindow, now: Timestamp) -> Vec<Candidate> {
        self.candidate_iter(window, now).collect()
    }

    /// The slots to list among `candidates`, given `booked[i]`, the booked count of
    /// `candidates[i]`'s bucket (0 where missing): those with room (all, with `report-busy`),
    /// at most `window.limit`.
    pub fn pick(&self, window: &SlotWindow, candidates: &[Candidate], booked: &[u32]) -> Vec<Slot> {
        let counted = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, booked.get(i).copied().unwrap_or(0)));
        pick_from(window, counted)
    }

    /// [`SlotRules::candidates`] then [`SlotRules::pick`], lazily: for a store that answers
    /// counts one by one from memory; stops at the window's limit (the 5 slots of a refusal
    /// cost 5 buckets, not 31 days of them).
    pub fn free_slots(
        &self,
        window: &SlotWindow,
        now: Timestamp,
        booked: impl Fn(Timestamp) -> u32,
    ) -> Vec<Slot> {
        let counted = self
            .candidate_iter(window, now)
            .map(|c| (c, booked(c.start)));
        pick_from(window, counted)
    }

    /// The `availability` of a refusal (§3.4): slot start -> free count, only slots with room,
    /// keys in time order; [`SlotRules::v1_json`] writes the same object.
    pub fn v1(slots: &[Slot]) -> BTreeMap<String, u32> {
        slots
            .iter()
            .filter(|slot| slot.free > 0)
            .map(|slot| (format_utc(slot.start), slot.free))
            .collect()
    }

    /// The V1 availability reply: the JSON object of [`SlotRules::v1`], written directly.
    /// Slots come in time order with distinct starts (bucket starts are whole milliseconds),
    /// and the keys are fixed-width ASCII that sort as their times do, so this is the map's
    /// order and no key needs escaping.
    pub fn v1_json(slots: &[Slot]) -> String {
        let mut out = String::with_capacity(2 + slots.len() * 32);
        out.push('{');
        for slot in slots.iter().filter(|slot| slot.free > 0) {
            if out.len() > 1 {
                out.push(',');
            }
            out.push('"');
            write_utc(&mut out, slot.start);
            out.push_str("\":");
            out.push_str(itoa::Buffer::new().format(slot.free));
        }
        out.push('}');
        out
    }

    /// The V2 availability reply (§6.2, GMS: research §1.6), local times in `tz` (V2
    /// `timezone`), else the buckets' zone: `{"durationMin","timezone","slots":[{"utcTime",
    /// "localTime","capacity","total"}]}`, written directly (times are ASCII digits).
    pub fn v2_json(&self, slots: &[Slot], tz: Option<&TimeZone>) -> String {
        let tz = tz.unwrap_or(self.buckets.timezone());
        let mut n = itoa::Buffer::new();
        let mut out = String::with_capacity(64 + slots.len() * 100);
        out.push_str("{\"durationMin\":");
        out.push_str(n.format(self.buckets.minutes()));
        out.push_str(",\"timezone\":");
        // A zone name is not ours to trust as JSON-safe: serde_json writes it.
        out.push_str(&serde_json::Value::from(zone_name(tz)).to_string());
        out.push_str(",\"slots\":[");
        for (i, slot) in slots.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"utcTime\":\"");
            write_utc(&mut out, slot.start);
            out.push_str("\",\"localTime\":\"");
            write_local(&mut out, tz.to_datetime(slot.start));
            out.push_str("\",\"capacity\":");
            out.push_str(n.format(slot.free));
            out.push_str(",\"total\":");
            out.push_str(n.format(slot.total));
            out.push('}');
        }
        out.push_str("]}");
        out
    }

    /// [`SlotRules::candidates`] as they come: the bucket starts inside each open period
    /// (the whole window without office hours), clipped to now and the future limit.
    fn candidate_iter(
        &self,
        window: &SlotWindow,
        now: Timestamp,
    ) -> impl Iterator<Item = Candidate> + '_ {
        // A slot exactly at the latest accepted time is still offered.
        let latest = self.latest(now);
        let end = window.end.min(
            latest
                .saturating_add(SignedDuration::from_nanos(1))
                .unwrap_or(latest),
        );
        let start = window.start.max(now);
        let open: Vec<(Timestamp, Timestamp)> = match &self.office {
            // Merged and in order, so the bucket starts below come once each, in order.
            Some((_, hours)) => hours.open_periods(start, end),
            None => vec![(start, end)],
        };
        open.into_iter()
            .flat_map(move |(opens, closes)| self.buckets.starts(opens.max(start), closes.min(end)))
            .filter_map(|bucket| {
                let total = self.bucket_total(bucket);
                (total > 0).then_some(Candidate {
                    start: bucket,
                    total,
                })
            })
    }
}

/// The slots with room among the candidates with their booked counts (all, with
/// `report-busy`), at most `window.limit`.
fn pick_from(window: &SlotWindow, counted: impl Iterator<Item = (Candidate, u32)>) -> Vec<Slot> {
    counted
        .map(|(c, booked)| Slot {
            start: c.start,
            free: c.total.saturating_sub(booked),
            total: c.total,
        })
        .filter(|slot| slot.free > 0 || window.report_busy)
        .take(window.limit as usize)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::callback::capacity::Capacity;
    use crate::callback::office_hours::OfficeHours;
    use crate::callback::query::Version;
    use crate::callback::time::{time_zone, FutureLimit};

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn request(pairs: &[(&str, &str)], version: Version) -> AvailabilityRequest {
        AvailabilityRequest::parse(
            |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v),
            version,
        )
        .unwrap()
    }

    /// The V1 map for `pairs` at `now` with nothing booked.
    fn v1(rules: &SlotRules, pairs: &[(&str, &str)], now: &str) -> BTreeMap<String, u32> {
        let now = utc(now);
        let window = rules.window(&request(pairs, Version::V1), now).unwrap();
        let slots = rules.free_slots(&window, now, |_| 0);
        let map = SlotRules::v1(&slots);
        // The reply written directly is the map's JSON, byte for byte.
        assert_eq!(
            SlotRules::v1_json(&slots),
            serde_json::to_string(&map).unwrap()
        );
        map
    }

    /// The V2 reply as JSON.
    fn v2(rules: &SlotRules, slots: &[Slot], tz: Option<&TimeZone>) -> serde_json::Value {
        serde_json::from_str(&rules.v2_json(slots, tz)).unwrap()
    }

    fn keys(map: &BTreeMap<String, u32>) -> Vec<&str> {
        map.keys().map(String::as_str).collect()
    }

    fn office(options: &[(&str, &str)]) -> Option<(String, Arc<OfficeHours>)> {
        let hours = OfficeHours::from_options(options.iter().copied()).unwrap();
        Some(("business-hours".to_string(), Arc::new(hours)))
    }

    #[test]
    fn start_rounds_up_to_the_next_bucket() {
        let rules = SlotRules::new(5, None, None).unwrap();
        let now = "2026-03-02T14:02:30Z";
        let map = v1(&rules, &[("max-time-slots", "3")], now);
        assert_eq!(
            keys(&map),
            [
                "2026-03-02T14:05:00.000Z",
                "2026-03-02T14:10:00.000Z",
                "2026-03-02T14:15:00.000Z"
            ]
        );
        assert!(map.values().all(|&free| free == 100));
        for (start, first) in [
            ("2026-03-02T15:00:00.000Z", "2026-03-02T15:00:00.000Z"),
            ("2026-03-02T16:00:00+01:00", "2026-03-02T15:00:00.000Z"),
            ("2026-03-02T15:00:00.001Z", "2026-03-02T15:05:00.000Z"),
            ("2026-03-02T15:04:59Z", "2026-03-02T15:05:00.000Z"),
            // Past slots are never offered, even when start asks for them.
            ("2026-03-02T12:00:00Z", "2026-03-02T14:05:00.000Z"),
        ] {
            let map = v1(&rules, &[("start", start), ("max-time-slots", "1")], now);
            assert_eq!(keys(&map), [first], "start={start}");
        }
    }

    #[test]
    fn default_end_is_a_day_and_the_cap_is_2000() {
        let rules = SlotRules::new(60, None, None).unwrap();
        let now = "2026-03-02T14:00:00Z";
        let day = v1(&rules, &[], now);
        assert_eq!(day.len(), 24);
        assert_eq!(keys(&day)[23], "2026-03-03T13:00:00.000Z");
        let map = v1(&rules, &[("number-of-days", "2")], now);
        assert_eq!(map.len(), 48);
        let map = v1(
            &rules,
            &[("end", "2026-03-02T17:00:00Z"), ("number-of-days", "2")],
            now,
        );
        assert_eq!(map.len(), 3);
        let five = SlotRules::new(5, None, None)
            .unwrap()
            .with_future_limit(FutureLimit::parse("1y").unwrap());
        for pairs in [
            vec![("number-of-days", "31")],
            vec![("number-of-days", "31"), ("max-time-slots", "99999")],
        ] {
            let map = v1(&five, &pairs, now);
            assert_eq!(map.len(), MAX_SLOTS as usize);
        }
        // An explicit end is capped at 31 days: 31 * 24 hourly slots.
        let map = v1(
            &rules
                .clone()
                .with_future_limit(FutureLimit::parse("1y").unwrap()),
            &[("end", "2026-12-01T00:00:00Z")],
            now,
        );
        assert_eq!(map.len(), 31 * 24);
    }

    #[test]
    fn start_after_end_is_a_bad_parameter() {
        let rules = SlotRules::new(5, None, None).unwrap();
        let now = utc("2026-03-02T14:00:00Z");
        let req = request(
            &[
                ("start", "2026-03-03T00:00:00Z"),
                ("end", "2026-03-02T23:00:00Z"),
            ],
            Version::V1,
        );
        assert_eq!(rules.window(&req, now).unwrap_err().param, "start");
        // A start later than its own end only by rounding gives no slots, not an error.
        let req = request(
            &[
                ("start", "2026-03-02T23:01:00Z"),
                ("end", "2026-03-02T23:04:00Z"),
            ],
            Version::V1,
        );
        let window = rules.window(&req, now).unwrap();
        assert!(rules.free_slots(&window, now, |_| 0).is_empty());
    }

    #[test]
    fn booked_counts_and_report_busy() {
        let rules = SlotRules::new(5, None, None)
            .unwrap()
            .with_max_per_bucket(3);
        let now = utc("2026-03-02T14:00:00Z");
        let booked = HashMap::from([
            (utc("2026-03-02T14:00:00Z"), 1),
            (utc("2026-03-02T14:05:00Z"), 3),
        ]);
        let count = |b: Timestamp| booked.get(&b).copied().unwrap_or(0);
        let window = rules
            .window(&request(&[("max-time-slots", "3")], Version::V1), now)
            .unwrap();
        let slots = rules.free_slots(&window, now, count);
        assert_eq!(
            SlotRules::v1_json(&slots),
            r#"{"2026-03-02T14:00:00.000Z":2,"2026-03-02T14:10:00.000Z":3,"2026-03-02T14:15:00.000Z":3}"#
        );
        assert_eq!(
            SlotRules::v1_json(&slots),
            serde_json::to_string(&SlotRules::v1(&slots)).unwrap()
        );
        let busy = request(
            &[("max-time-slots", "3"), ("report-busy", "true")],
            Version::V2,
        );
        let slots = rules.free_slots(&rules.window(&busy, now).unwrap(), now, count);
        assert_eq!(
            rules.v2_json(&slots, None),
            concat!(
                r#"{"durationMin":5,"timezone":"UTC","slots":["#,
                r#"{"utcTime":"2026-03-02T14:00:00.000Z","localTime":"2026-03-02T14:00:00.000","capacity":2,"total":3},"#,
                r#"{"utcTime":"2026-03-02T14:05:00.000Z","localTime":"2026-03-02T14:05:00.000","capacity":0,"total":3},"#,
                r#"{"utcTime":"2026-03-02T14:10:00.000Z","localTime":"2026-03-02T14:10:00.000","capacity":3,"total":3}]}"#
            )
        );
        // Overbooked buckets (capacity lowered after booking) have no room, not a negative one.
        assert!(rules.free_slots(&window, now, |_| 7).is_empty());
    }

    #[test]
    fn v2_in_the_office_zone_or_the_requested_one() {
        let rules = SlotRules::new(
            15,
            office(&[
                ("_timezone", "Europe/Paris"),
                ("_bh_regular1", "Mon-Fri 09:00-17:00"),
            ]),
            None,
        )
        .unwrap();
        let now = utc("2026-03-02T07:00:00Z");
        let window = rules
            .window(&request(&[("max-time-slots", "2")], Version::V2), now)
            .unwrap();
        let slots = rules.free_slots(&window, now, |_| 0);
        let reply = v2(&rules, &slots, None);
        assert_eq!(reply["durationMin"], 15);
        assert_eq!(reply["timezone"], "Europe/Paris");
        assert_eq!(reply["slots"][0]["utcTime"], "2026-03-02T08:00:00.000Z");
        assert_eq!(reply["slots"][0]["localTime"], "2026-03-02T09:00:00.000");
        assert_eq!(reply["slots"][1]["localTime"], "2026-03-02T09:15:00.000");
        let ny = time_zone("America/New_York").unwrap();
        let reply = v2(&rules, &slots, Some(&ny));
        assert_eq!(reply["timezone"], "America/New_York");
        assert_eq!(reply["slots"][0]["localTime"], "2026-03-02T03:00:00.000");
        // No slots: an empty list.
        assert_eq!(
            rules.v2_json(&[], Some(&ny)),
            r#"{"durationMin":15,"timezone":"America/New_York","slots":[]}"#
        );
        assert_eq!(SlotRules::v1_json(&[]), "{}");
    }

    #[test]
    fn office_hours_and_capacity_together() {
        let capacity = Capacity::from_options([
            ("_timezone", "Europe/Paris"),
            ("_capacity_1", r#"{"1":{"0900":2,"1600":1,"1700":9}}"#),
        ])
        .unwrap();
        let rules = SlotRules::new(
            30,
            office(&[
                ("_timezone", "Europe/Paris"),
                ("_bh_regular1", "Mon-Fri 09:00-17:00"),
            ]),
            Some(Arc::new(capacity)),
        )
        .unwrap();
        // Monday: 09:00 and 09:30 (2 each), 16:00 and 16:30 (1 each); 17:00 has capacity but is
        // closed; other open hours have none.
        let map = v1(&rules, &[], "2026-03-02T06:00:00Z");
        assert_eq!(
            serde_json::to_string(&map).unwrap(),
            r#"{"2026-03-02T08:00:00.000Z":2,"2026-03-02T08:30:00.000Z":2,"2026-03-02T15:00:00.000Z":1,"2026-03-02T15:30:00.000Z":1}"#
        );
    }

    #[test]
    fn slots_across_daylight_saving() {
        let always = office(&[
            ("_timezone", "Europe/Paris"),
            ("_bh_regular1", "Mon-Sun 00:00-24:00"),
        ]);
        let rules = SlotRules::new(60, always.clone(), None).unwrap();
        // Sunday 2026-03-29: local 00:00, 01:00, 03:00, 04:00 ...
        let map = v1(
            &rules,
            &[("start", "2026-03-28T23:00:00Z"), ("max-time-slots", "4")],
            "2026-03-28T00:00:00Z",
        );
        assert_eq!(
            keys(&map),
            [
                "2026-03-28T23:00:00.000Z",
                "2026-03-29T00:00:00.000Z",
                "2026-03-29T01:00:00.000Z",
                "2026-03-29T02:00:00.000Z"
            ]
        );
        // Sunday 2026-10-25: local 01:00, 02:00 (CEST), 02:00 (CET), 03:00.
        let now = utc("2026-10-24T00:00:00Z");
        let req = request(
            &[("start", "2026-10-24T23:00:00Z"), ("max-time-slots", "4")],
            Version::V2,
        );
        let slots = rules.free_slots(&rules.window(&req, now).unwrap(), now, |_| 0);
        let reply = v2(&rules, &slots, None);
        let local: Vec<_> = reply["slots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["localTime"].as_str().unwrap())
            .collect();
        assert_eq!(
            local,
            [
                "2026-10-25T01:00:00.000",
                "2026-10-25T02:00:00.000",
                "2026-10-25T02:00:00.000",
                "2026-10-25T03:00:00.000"
            ]
        );
        // number-of-days counts calendar days in the office zone: 23 slots that Sunday.
        let map = v1(
            &rules,
            &[("start", "2026-03-28T23:00:00Z"), ("number-of-days", "1")],
            "2026-03-28T00:00:00Z",
        );
        assert_eq!(map.len(), 23);
        // New York, office 08:00-20:00 on the Monday after each change.
        let ny = SlotRules::new(
            120,
            office(&[
                ("_timezone", "America/New_York"),
                ("_bh_regular1", "Mon 08:00-20:00"),
            ]),
            None,
        )
        .unwrap();
        let map = v1(
            &ny,
            &[("start", "2026-03-09T00:00:00Z")],
            "2026-03-01T00:00:00Z",
        );
        assert_eq!(keys(&map)[0], "2026-03-09T12:00:00.000Z");
        assert_eq!(map.len(), 6);
        let map = v1(
            &ny,
            &[("start", "2026-11-02T00:00:00Z")],
            "2026-11-01T00:00:00Z",
        );
        assert_eq!(keys(&map)[0], "2026-11-02T13:00:00.000Z");
    }

    #[test]
    fn leap_day_slots() {
        let rules = SlotRules::new(
            60,
            office(&[("_timezone", "UTC"), ("_bh_add1", "02-29 10:00-12:00")]),
            None,
        )
        .unwrap()
        .with_future_limit(FutureLimit::parse("2y").unwrap());
        let map = v1(
            &rules,
            &[("start", "2028-02-28T00:00:00Z"), ("number-of-days", "3")],
            "2027-06-01T00:00:00Z",
        );
        assert_eq!(
            keys(&map),
            ["2028-02-29T10:00:00.000Z", "2028-02-29T11:00:00.000Z"]
        );
    }

    #[test]
    fn nothing_beyond_the_future_limit() {
        let rules = SlotRules::new(60, None, None)
            .unwrap()
            .with_future_limit(FutureLimit::parse("3h").unwrap());
        let map = v1(&rules, &[("number-of-days", "5")], "2026-03-02T14:00:00Z");
        // 14:00, 15:00, 16:00 and 17:00 (exactly three hours ahead is still accepted).
        assert_eq!(map.len(), 4);
        assert_eq!(keys(&map)[3], "2026-03-02T17:00:00.000Z");
    }

    #[test]
    fn candidates_then_pick_match_free_slots() {
        let rules = SlotRules::new(
            10,
            office(&[
                ("_timezone", "Europe/Paris"),
                ("_bh_regular1", "Mon-Fri 09:00-12:00"),
            ]),
            None,
        )
        .unwrap()
        .with_max_per_bucket(2);
        let now = utc("2026-03-02T00:00:00Z");
        let window = rules
            .window(&request(&[("number-of-days", "7")], Version::V1), now)
            .unwrap();
        let candidates = rules.candidates(&window, now);
        // Five weekdays of three open hours, six buckets an hour.
        assert_eq!(candidates.len(), 5 * 3 * 6);
        assert!(candidates
            .iter()
            .all(|c| c.total == 2 && rules.bucket_start(c.start) == c.start));
        // Counts fetched in one go (as a store would) give the same answer as one by one.
        let counts: HashMap<i64, u32> = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| (rules.bucket_key(c.start), (i % 3) as u32))
            .collect();
        let booked = |b: Timestamp| counts.get(&rules.bucket_key(b)).copied().unwrap_or(0);
        let in_order: Vec<u32> = candidates.iter().map(|c| booked(c.start)).collect();
        assert_eq!(
            rules.pick(&window, &candidates, &in_order),
            rules.free_slots(&window, now, booked)
        );
        // A short count list (no store answers so) counts the rest as 0.
        assert_eq!(
            rules.pick(&window, &candidates, &[]),
            rules.free_slots(&window, now, |_| 0)
        );
        assert_eq!(rules.free_slots(&window, now, booked).len(), 60);
    }
}
