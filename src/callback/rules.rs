//! [`SlotRules`]: the booking rules of one callback service (contract §3.2 step 4, §6.2, §12):
//! `_request_time_bucket`, `_business_hours_service`, `_capacity_service` or
//! `_max_request_by_time_bucket`, `_reject_future_desired_time` and `_reject_past_desired_time`.
//! Built once per service at start-up; [`super::slots`] and [`super::desired`] use it.

use std::sync::Arc;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::buckets::Buckets;
use super::capacity::Capacity;
use super::error::OptionError;
use super::office_hours::OfficeHours;
use super::time::FutureLimit;

/// `_max_request_by_time_bucket` when not set (GMS).
pub const DEFAULT_MAX_PER_BUCKET: u32 = 100;

/// `_reject_past_desired_time` when not set, in seconds (ours, §3.2).
pub const DEFAULT_REJECT_PAST_SECONDS: u32 = 60;

/// The booking rules of one callback service: buckets, office hours, capacity and time limits.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotRules {
    pub(super) buckets: Buckets,
    pub(super) office: Option<(String, Arc<OfficeHours>)>,
    pub(super) capacity: Option<Arc<Capacity>>,
    pub(super) max_per_bucket: u32,
    pub(super) future_limit: FutureLimit,
    pub(super) past_tolerance: SignedDuration,
}

impl SlotRules {
    /// Rules with `bucket_minutes` buckets (`_request_time_bucket`), the office hours of
    /// `_business_hours_service` (its name and hours) and the `_capacity_service`, each
    /// optional. Buckets align in the office's zone, else the capacity's, else UTC. Defaults:
    /// 100 per bucket, `1M` ahead, 60 s past.
    pub fn new(
        bucket_minutes: u32,
        office: Option<(String, Arc<OfficeHours>)>,
        capacity: Option<Arc<Capacity>>,
    ) -> Result<SlotRules, OptionError> {
        let tz = office
            .as_ref()
            .map(|(_, hours)| hours.timezone().clone())
            .or_else(|| capacity.as_ref().map(|c| c.timezone().clone()))
            .unwrap_or(TimeZone::UTC);
        Ok(SlotRules {
            buckets: Buckets::new(bucket_minutes, tz)?,
            office,
            capacity,
            max_per_bucket: DEFAULT_MAX_PER_BUCKET,
            future_limit: FutureLimit::DEFAULT,
            past_tolerance: SignedDuration::from_secs(i64::from(DEFAULT_REJECT_PAST_SECONDS)),
        })
    }

    /// Sets `_max_request_by_time_bucket` (used when there is no capacity service).
    pub fn with_max_per_bucket(mut self, max: u32) -> SlotRules {
        self.max_per_bucket = max;
        self
    }

    /// Sets `_reject_future_desired_time`.
    pub fn with_future_limit(mut self, limit: FutureLimit) -> SlotRules {
        self.future_limit = limit;
        self
    }

    /// Sets `_reject_past_desired_time`, in seconds.
    pub fn with_past_tolerance_secs(mut self, seconds: u32) -> SlotRules {
        self.past_tolerance = SignedDuration::from_secs(i64::from(seconds));
        self
    }

    /// The buckets (length and zone).
    pub fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    /// The latest desired time accepted at `now` (`_reject_future_desired_time`).
    pub fn latest(&self, now: Timestamp) -> Timestamp {
        self.future_limit.latest(now)
    }

    /// The start of the bucket a callback at `t` is booked in.
    pub fn bucket_start(&self, t: Timestamp) -> Timestamp {
        self.buckets.start_of(t)
    }

    /// The store's key for the bucket of `t`: its start in epoch milliseconds.
    pub fn bucket_key(&self, t: Timestamp) -> i64 {
        self.buckets.key(t)
    }

    /// How many callbacks the bucket starting at `bucket_start` may hold: the capacity
    /// service's count for that hour, else `_max_request_by_time_bucket`.
    pub fn bucket_total(&self, bucket_start: Timestamp) -> u32 {
        match &self.capacity {
            Some(capacity) => capacity.at(bucket_start),
            None => self.max_per_bucket,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::time::{format_utc, time_zone};

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn buckets_align_in_the_office_zone_first() {
        let office = OfficeHours::from_options([("_timezone", "Asia/Kolkata")]).unwrap();
        let capacity = Capacity::from_options([("_timezone", "Europe/Paris")]).unwrap();
        let both = SlotRules::new(
            60,
            Some(("bh".into(), Arc::new(office))),
            Some(Arc::new(capacity.clone())),
        )
        .unwrap();
        assert_eq!(
            both.buckets().timezone(),
            &time_zone("Asia/Kolkata").unwrap()
        );
        assert_eq!(
            format_utc(both.bucket_start(utc("2026-03-02T10:00:00Z"))),
            "2026-03-02T09:30:00.000Z"
        );
        let capacity_only = SlotRules::new(60, None, Some(Arc::new(capacity))).unwrap();
        assert_eq!(
            capacity_only.buckets().timezone(),
            &time_zone("Europe/Paris").unwrap()
        );
        let plain = SlotRules::new(5, None, None).unwrap();
        assert_eq!(plain.buckets().timezone(), &TimeZone::UTC);
        assert_eq!(
            plain.bucket_key(utc("2026-03-02T10:04:59Z")),
            utc("2026-03-02T10:00:00Z").as_millisecond()
        );
        assert_eq!(
            SlotRules::new(7, None, None).unwrap_err().option,
            "_request_time_bucket"
        );
    }

    #[test]
    fn totals_come_from_capacity_else_the_bucket_maximum() {
        let plain = SlotRules::new(5, None, None).unwrap();
        assert_eq!(
            plain.bucket_total(utc("2026-03-02T03:00:00Z")),
            DEFAULT_MAX_PER_BUCKET
        );
        assert_eq!(
            plain
                .clone()
                .with_max_per_bucket(7)
                .bucket_total(utc("2026-03-02T03:00:00Z")),
            7
        );
        let capacity =
            Capacity::from_options([("_timezone", "UTC"), ("_capacity_1", r#"{"1":{"0900":6}}"#)])
                .unwrap();
        let rules = SlotRules::new(5, None, Some(Arc::new(capacity)))
            .unwrap()
            .with_max_per_bucket(50);
        assert_eq!(rules.bucket_total(utc("2026-03-02T09:55:00Z")), 6);
        assert_eq!(rules.bucket_total(utc("2026-03-02T10:00:00Z")), 0);
    }

    #[test]
    fn latest_follows_the_future_limit() {
        let rules = SlotRules::new(5, None, None).unwrap();
        assert_eq!(
            rules.latest(utc("2026-01-31T00:00:00Z")),
            utc("2026-02-28T00:00:00Z")
        );
        let rules = rules.with_future_limit(FutureLimit::parse("2d").unwrap());
        assert_eq!(
            rules.latest(utc("2026-01-31T00:00:00Z")),
            utc("2026-02-02T00:00:00Z")
        );
    }
}
