//! The `office-hours` built-in (contract §10.1, GMS: research §2): when an office is open, in
//! its own time zone, and the reply of `GET {root}/service/{office-hours-name}`.
//!
//! The model, per local calendar day D of the office's zone:
//! - `_bh_regular<n>` opens D at its hours when D's weekday is in its day range; hours that
//!   wrap midnight (`19:00-07:00`) run on into D+1.
//! - `_holiday<n>` on D removes the regular hours that fall on D (also the morning part of a
//!   wrapped range that started the day before): closed all day.
//! - `_bh_add<n>` opens D at its hours (wrapping likewise), holiday or not.
//! - `_effective_dates<n>`: when any is set, a day outside all of them has no open time at all.
//!
//! Local times are turned into instants with the usual rule for daylight-saving changes
//! (RFC 5545 / Temporal "compatible"): a time in a skipped hour moves forward by the gap, a
//! repeated time takes its first occurrence. `24:00` is the next day's midnight.
//!
//! The options' syntax is parsed in `office_hours/options.rs`.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use serde::Serialize;

use super::time::{cap_range, format_utc, zone_name};

mod options;

/// Minutes in a day: `24:00`.
const DAY_MINUTES: u16 = 24 * 60;

/// How many days before `start` and after `end` [`OfficeHours::open_periods`] looks, so the
/// periods it returns show their real start and end (not clipped) unless an office stays open
/// longer than this without a break.
const MARGIN_DAYS: i64 = 7;

/// An office's opening hours, parsed from the options of one `office-hours` service.
#[derive(Debug, Clone, PartialEq)]
pub struct OfficeHours {
    tz: TimeZone,
    regular: Vec<Regular>,
    added: Vec<Added>,
    holidays: Vec<DaySpec>,
    effective: Vec<(Date, Date)>,
}

/// One `_bh_regular<n>`: a set of weekdays and the hours each opens.
#[derive(Debug, Clone, PartialEq)]
struct Regular {
    /// Indexed by weekday, Monday = 0.
    days: [bool; 7],
    hours: Hours,
}

/// One `_bh_add<n>`: a date (or a yearly month-day) and its extra hours.
#[derive(Debug, Clone, PartialEq)]
struct Added {
    day: DaySpec,
    hours: Hours,
}

/// A date, or a month and day every year.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DaySpec {
    Date(Date),
    Yearly { month: i8, day: i8 },
}

impl DaySpec {
    fn matches(self, date: Date) -> bool {
        match self {
            DaySpec::Date(d) => d == date,
            DaySpec::Yearly { month, day } => date.month() == month && date.day() == day,
        }
    }
}

/// Opening hours of one day in minutes after local midnight: `start` in 0..1440, `end` in
/// 1..=1440 (`00:00` as an end means `24:00`). `end < start` wraps past midnight.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Hours {
    start: u16,
    end: u16,
}

impl Hours {
    fn wraps(self) -> bool {
        self.end < self.start
    }

    /// The pieces these hours put on a day: from their own start when they start that day, and
    /// the tail of a wrap that started the day before.
    fn pieces_on(self, starts_today: bool, started_yesterday: bool, out: &mut Vec<(u16, u16)>) {
        if starts_today {
            out.push((
                self.start,
                if self.wraps() { DAY_MINUTES } else { self.end },
            ));
        }
        if started_yesterday && self.wraps() {
            out.push((0, self.end));
        }
    }
}

/// The reply of the office-hours API (§10.1, ours): `error` is always null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfficeHoursReply {
    /// Always `null` (GMS clients check it).
    pub error: Option<String>,
    /// The office's IANA zone.
    pub timezone: String,
    /// Open periods intersecting the range, merged, in UTC, not clipped.
    pub periods: Vec<PeriodJson>,
}

/// One open period of an [`OfficeHoursReply`], in the emitted time format.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeriodJson {
    /// When it opens, `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    pub start: String,
    /// When it closes.
    pub end: String,
}

impl OfficeHours {
    /// The office's time zone.
    pub fn timezone(&self) -> &TimeZone {
        &self.tz
    }

    /// Whether the office is open at `t`.
    pub fn is_open(&self, t: Timestamp) -> bool {
        let today = self.tz.to_datetime(t).date();
        let mut periods = Vec::new();
        for date in [today.yesterday(), Ok(today), today.tomorrow()]
            .into_iter()
            .flatten()
        {
            self.day_periods(date, &mut periods);
        }
        periods.iter().any(|&(open, close)| open <= t && t < close)
    }

    /// The open periods that intersect `[start, end]`, merged, in order, not clipped to the
    /// range (they are looked for up to 7 days beyond it). `end` is capped at 31 days after
    /// `start`.
    pub fn open_periods(&self, start: Timestamp, end: Timestamp) -> Vec<(Timestamp, Timestamp)> {
        let end = cap_range(start, end);
        let mut periods = Vec::new();
        let first = self.local_date(start, -MARGIN_DAYS);
        let last = self.local_date(end, MARGIN_DAYS);
        let mut date = first;
        while date <= last {
            self.day_periods(date, &mut periods);
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        periods.sort_unstable();
        let mut merged: Vec<(Timestamp, Timestamp)> = Vec::with_capacity(periods.len());
        for (open, close) in periods {
            match merged.last_mut() {
                Some(last) if open <= last.1 => last.1 = last.1.max(close),
                _ => merged.push((open, close)),
            }
        }
        merged.retain(|&(open, close)| open <= end && close > start);
        merged
    }

    /// The reply of `GET {root}/service/{name}` for the range `[start, end]` (§10.1).
    pub fn reply(&self, start: Timestamp, end: Timestamp) -> OfficeHoursReply {
        OfficeHoursReply {
            error: None,
            timezone: zone_name(&self.tz).to_string(),
            periods: self
                .open_periods(start, end)
                .into_iter()
                .map(|(open, close)| PeriodJson {
                    start: format_utc(open),
                    end: format_utc(close),
                })
                .collect(),
        }
    }

    /// The local date of `t` moved by `days` (clamped at the ends of the calendar).
    fn local_date(&self, t: Timestamp, days: i64) -> Date {
        let date = self.tz.to_datetime(t).date();
        Span::new()
            .try_days(days)
            .and_then(|span| date.checked_add(span))
            .unwrap_or(date)
    }

    /// Appends the open periods that local day `date` contributes, as instants, unmerged.
    fn day_periods(&self, date: Date, out: &mut Vec<(Timestamp, Timestamp)>) {
        if !self.effective.is_empty()
            && !self
                .effective
                .iter()
                .any(|&(from, to)| from <= date && date <= to)
        {
            return;
        }
        let yesterday = date.yesterday().ok();
        let weekday = weekday_index(date.weekday());
        let mut pieces = Vec::new();
        if !self.holidays.iter().any(|h| h.matches(date)) {
            let previous = (weekday + 6) % 7;
            for r in &self.regular {
                let started_yesterday = yesterday.is_some() && r.days[previous];
                r.hours
                    .pieces_on(r.days[weekday], started_yesterday, &mut pieces);
            }
        }
        for a in &self.added {
            let started_yesterday = yesterday.is_some_and(|y| a.day.matches(y));
            a.hours
                .pieces_on(a.day.matches(date), started_yesterday, &mut pieces);
        }
        for (from, to) in pieces {
            if let (Some(open), Some(close)) = (self.instant(date, from), self.instant(date, to)) {
                if open < close {
                    out.push((open, close));
                }
            }
        }
    }

    /// The instant of `minutes` after local midnight of `date` (1440 = next midnight).
    fn instant(&self, date: Date, minutes: u16) -> Option<Timestamp> {
        let (date, minutes) = if minutes >= DAY_MINUTES {
            (date.tomorrow().ok()?, 0)
        } else {
            (date, minutes)
        };
        let dt = date.at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0);
        self.tz.to_ambiguous_timestamp(dt).compatible().ok()
    }
}

/// Monday = 0 ... Sunday = 6.
fn weekday_index(day: Weekday) -> usize {
    day.to_monday_zero_offset() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub(super) fn office(options: &[(&str, &str)]) -> OfficeHours {
        OfficeHours::from_options(options.iter().copied()).unwrap()
    }

    /// The periods intersecting `[start, end]` in the emitted format.
    fn periods(o: &OfficeHours, start: &str, end: &str) -> Vec<(String, String)> {
        o.open_periods(utc(start), utc(end))
            .into_iter()
            .map(|(a, b)| (format_utc(a), format_utc(b)))
            .collect()
    }

    fn p(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn regular_week_in_paris_winter() {
        let o = office(&[
            ("_timezone", "Europe/Paris"),
            ("_bh_regular1", "Mon-Fri 09:00-17:00"),
        ]);
        // 2026-03-02 is a Monday; Paris is UTC+1 in March before the 29th.
        assert!(o.is_open(utc("2026-03-02T08:00:00Z")));
        assert!(o.is_open(utc("2026-03-02T15:59:59Z")));
        assert!(!o.is_open(utc("2026-03-02T16:00:00Z")));
        assert!(!o.is_open(utc("2026-03-02T07:59:59Z")));
        assert!(!o.is_open(utc("2026-03-07T10:00:00Z"))); // Saturday
        assert_eq!(
            periods(&o, "2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z"),
            [p("2026-03-02T08:00:00.000Z", "2026-03-02T16:00:00.000Z")]
        );
        assert_eq!(
            periods(&o, "2026-03-07T10:00:00Z", "2026-03-07T10:00:00Z"),
            []
        );
        let week = periods(&o, "2026-03-02T00:00:00Z", "2026-03-08T23:59:00Z");
        assert_eq!(week.len(), 5);
        assert_eq!(
            week[4],
            p("2026-03-06T08:00:00.000Z", "2026-03-06T16:00:00.000Z")
        );
    }

    #[test]
    fn week_wrap_covers_the_weekend() {
        let o = office(&[
            ("_timezone", "UTC"),
            ("_bh_regular1", "Fri-Mon 10:00-11:00"),
        ]);
        let days: Vec<_> = periods(&o, "2026-03-02T00:00:00Z", "2026-03-09T23:00:00Z")
            .into_iter()
            .map(|(a, _)| a[..10].to_string())
            .collect();
        // Mon 2, Fri 6, Sat 7, Sun 8, Mon 9.
        assert_eq!(
            days,
            [
                "2026-03-02",
                "2026-03-06",
                "2026-03-07",
                "2026-03-08",
                "2026-03-09"
            ]
        );
    }

    #[test]
    fn midnight_wrap_runs_into_the_next_day() {
        let o = office(&[
            ("_timezone", "UTC"),
            ("_bh_regular1", "Mon-Tue 19:00-07:00"),
        ]);
        assert_eq!(
            periods(&o, "2026-03-02T00:00:00Z", "2026-03-05T00:00:00Z"),
            [
                p("2026-03-02T19:00:00.000Z", "2026-03-03T07:00:00.000Z"),
                p("2026-03-03T19:00:00.000Z", "2026-03-04T07:00:00.000Z"),
            ]
        );
        // Wednesday morning is open (Tuesday's night), Wednesday evening is not.
        assert!(o.is_open(utc("2026-03-04T06:59:00Z")));
        assert!(!o.is_open(utc("2026-03-04T20:00:00Z")));
        // 19:00-00:00 and 19:00-24:00 both end at midnight.
        let o2 = office(&[("_timezone", "UTC"), ("_bh_regular1", "Mon 19:00-00:00")]);
        assert_eq!(
            periods(&o2, "2026-03-02T20:00:00Z", "2026-03-02T20:00:00Z"),
            [p("2026-03-02T19:00:00.000Z", "2026-03-03T00:00:00.000Z")]
        );
    }

    #[test]
    fn adjacent_ranges_merge_and_periods_are_not_clipped() {
        let o = office(&[
            ("_timezone", "UTC"),
            ("_bh_regular1", "Mon-Fri 09:00-12:00"),
            ("_bh_regular2", "Mon-Fri 12:00-17:00"),
            ("_bh_regular3", "Mon-Fri 16:00-18:00"),
            ("_bh_regular4", "Sat-Sun 00:00-24:00"),
        ]);
        assert_eq!(
            periods(&o, "2026-03-02T13:00:00Z", "2026-03-02T13:30:00Z"),
            [p("2026-03-02T09:00:00.000Z", "2026-03-02T18:00:00.000Z")]
        );
        // The whole weekend is one period, shown whole for a query inside it.
        assert_eq!(
            periods(&o, "2026-03-08T12:00:00Z", "2026-03-08T12:00:00Z"),
            [p("2026-03-07T00:00:00.000Z", "2026-03-09T00:00:00.000Z")]
        );
        // A 24x7 office: one period, looked for 7 days either side.
        let always = office(&[
            ("_timezone", "UTC"),
            ("_bh_regular1", "Mon-Sun 00:00-24:00"),
        ]);
        assert_eq!(
            periods(&always, "2026-03-10T12:00:00Z", "2026-03-10T12:00:00Z"),
            [p("2026-03-03T00:00:00.000Z", "2026-03-18T00:00:00.000Z")]
        );
    }

    #[test]
    fn holidays_close_regular_hours_but_not_additions() {
        let o = office(&[
            ("_timezone", "Europe/Paris"),
            ("_bh_regular1", "Mon-Sun 09:00-17:00"),
            ("_holiday1", "2026-12-25"),
            ("_holiday2", "01-01"),
            ("_bh_add1", "12-25 10:00-12:00"),
        ]);
        assert_eq!(
            periods(&o, "2026-12-25T00:00:00Z", "2026-12-25T22:00:00Z"),
            [p("2026-12-25T09:00:00.000Z", "2026-12-25T11:00:00.000Z")]
        );
        assert!(!o.is_open(utc("2027-01-01T10:00:00Z")));
        assert!(!o.is_open(utc("2028-01-01T10:00:00Z")));
        assert!(o.is_open(utc("2027-01-02T10:00:00Z")));
        // Next year 12-25 is no holiday (the holiday had a year) but the yearly add is extra.
        assert_eq!(
            periods(&o, "2027-12-25T12:00:00Z", "2027-12-25T12:00:00Z"),
            [p("2027-12-25T08:00:00.000Z", "2027-12-25T16:00:00.000Z")]
        );
        // A holiday cuts the morning tail of a night shift that started the day before.
        let night = office(&[
            ("_timezone", "UTC"),
            ("_bh_regular1", "Mon-Sun 22:00-06:00"),
            ("_holiday1", "2026-03-03"),
        ]);
        assert_eq!(
            periods(&night, "2026-03-02T12:00:00Z", "2026-03-04T03:00:00Z"),
            [
                p("2026-03-02T22:00:00.000Z", "2026-03-03T00:00:00.000Z"),
                p("2026-03-04T00:00:00.000Z", "2026-03-04T06:00:00.000Z"),
            ]
        );
    }

    #[test]
    fn additions_open_extra_time() {
        let o = office(&[
            ("_timezone", "Europe/Paris"),
            ("_bh_regular1", "Mon-Fri 09:00-17:00"),
            ("_bh_add1", "2026-03-07 10:00-14:00"),
            ("_bh_add2", "2026-03-02 17:00-19:00"),
            ("_bh_add3", "07-14 23:00-01:00"),
        ]);
        assert!(o.is_open(utc("2026-03-07T10:00:00Z")));
        assert!(!o.is_open(utc("2026-03-08T10:00:00Z")));
        assert_eq!(
            periods(&o, "2026-03-02T12:00:00Z", "2026-03-02T12:00:00Z"),
            [p("2026-03-02T08:00:00.000Z", "2026-03-02T18:00:00.000Z")]
        );
        // The yearly wrap: 23:00 on July 14 to 01:00 on July 15, local summer time.
        assert_eq!(
            periods(&o, "2027-07-14T22:00:00Z", "2027-07-14T22:00:00Z"),
            [p("2027-07-14T21:00:00.000Z", "2027-07-14T23:00:00.000Z")]
        );
    }

    #[test]
    fn effective_dates_close_everything_outside() {
        let o = office(&[
            ("_timezone", "UTC"),
            ("_bh_regular1", "Mon-Sun 09:00-17:00"),
            ("_bh_add1", "2026-03-20 18:00-20:00"),
            ("_effective_dates1", "2026-03-02 to 2026-03-06"),
            ("_effective_dates2", "2026-03-10"),
        ]);
        assert!(!o.is_open(utc("2026-03-01T10:00:00Z")));
        assert!(o.is_open(utc("2026-03-02T10:00:00Z")));
        assert!(o.is_open(utc("2026-03-06T10:00:00Z")));
        assert!(!o.is_open(utc("2026-03-07T10:00:00Z")));
        assert!(o.is_open(utc("2026-03-10T10:00:00Z")));
        assert!(!o.is_open(utc("2026-03-20T19:00:00Z")));
        assert_eq!(
            periods(&o, "2026-03-11T00:00:00Z", "2026-03-31T00:00:00Z"),
            []
        );
    }

    #[test]
    fn leap_day() {
        let o = office(&[
            ("_timezone", "UTC"),
            ("_bh_add1", "02-29 10:00-11:00"),
            ("_holiday1", "2028-02-29"),
            ("_bh_regular1", "Tue 09:00-17:00"),
        ]);
        // 2028-02-29 is a Tuesday: the holiday closes the regular hours, the yearly add opens.
        assert_eq!(
            periods(&o, "2028-02-29T00:00:00Z", "2028-02-29T23:00:00Z"),
            [p("2028-02-29T10:00:00.000Z", "2028-02-29T11:00:00.000Z")]
        );
        // 2027 has no Feb 29; Feb 28 and Mar 1 are untouched.
        assert!(!o.is_open(utc("2027-02-28T10:30:00Z")));
        assert!(!o.is_open(utc("2027-03-01T10:30:00Z")));
    }

    #[test]
    fn daylight_saving_in_paris() {
        let o = office(&[
            ("_timezone", "Europe/Paris"),
            ("_bh_regular1", "Mon-Sun 09:00-17:00"),
        ]);
        // Sunday 2026-03-29: the change is at 02:00; 09:00 CEST is 07:00Z.
        assert_eq!(
            periods(&o, "2026-03-28T12:00:00Z", "2026-03-29T12:00:00Z"),
            [
                p("2026-03-28T08:00:00.000Z", "2026-03-28T16:00:00.000Z"),
                p("2026-03-29T07:00:00.000Z", "2026-03-29T15:00:00.000Z"),
            ]
        );
        assert_eq!(
            periods(&o, "2026-10-24T12:00:00Z", "2026-10-25T12:00:00Z"),
            [
                p("2026-10-24T07:00:00.000Z", "2026-10-24T15:00:00.000Z"),
                p("2026-10-25T08:00:00.000Z", "2026-10-25T16:00:00.000Z"),
            ]
        );
        // Hours across the change itself: 01:00-03:00 lasts one hour in spring, three in autumn.
        let night = office(&[
            ("_timezone", "Europe/Paris"),
            ("_bh_regular1", "Sun 01:00-03:00"),
        ]);
        assert_eq!(
            periods(&night, "2026-03-29T00:30:00Z", "2026-03-29T00:30:00Z"),
            [p("2026-03-29T00:00:00.000Z", "2026-03-29T01:00:00.000Z")]
        );
        assert_eq!(
            periods(&night, "2026-10-25T00:30:00Z", "2026-10-25T00:30:00Z"),
            [p("2026-10-24T23:00:00.000Z", "2026-10-25T02:00:00.000Z")]
        );
        // A whole day is 23 hours in spring, 25 in autumn.
        let all = office(&[
            ("_timezone", "Europe/Paris"),
            ("_bh_regular1", "Sun 00:00-24:00"),
        ]);
        assert_eq!(
            periods(&all, "2026-03-29T12:00:00Z", "2026-03-29T12:00:00Z"),
            [p("2026-03-28T23:00:00.000Z", "2026-03-29T22:00:00.000Z")]
        );
        assert_eq!(
            periods(&all, "2026-10-25T12:00:00Z", "2026-10-25T12:00:00Z"),
            [p("2026-10-24T22:00:00.000Z", "2026-10-25T23:00:00.000Z")]
        );
        // A range starting in the skipped hour starts when the clocks resume.
        let gap = office(&[
            ("_timezone", "Europe/Paris"),
            ("_bh_regular1", "Sun 02:30-04:00"),
        ]);
        assert_eq!(
            periods(&gap, "2026-03-29T01:45:00Z", "2026-03-29T01:45:00Z"),
            [p("2026-03-29T01:30:00.000Z", "2026-03-29T02:00:00.000Z")]
        );
    }

    #[test]
    fn daylight_saving_in_new_york() {
        let o = office(&[
            ("_timezone", "America/New_York"),
            ("_bh_regular1", "Mon-Fri 08:00-20:00"),
        ]);
        // Friday 2026-03-06 EST (UTC-5), Monday 2026-03-09 EDT (UTC-4).
        assert_eq!(
            periods(&o, "2026-03-06T12:00:00Z", "2026-03-09T12:00:00Z"),
            [
                p("2026-03-06T13:00:00.000Z", "2026-03-07T01:00:00.000Z"),
                p("2026-03-09T12:00:00.000Z", "2026-03-10T00:00:00.000Z"),
            ]
        );
        // Friday 2026-10-30 EDT, Monday 2026-11-02 EST.
        assert_eq!(
            periods(&o, "2026-10-30T12:00:00Z", "2026-11-02T14:00:00Z"),
            [
                p("2026-10-30T12:00:00.000Z", "2026-10-31T00:00:00.000Z"),
                p("2026-11-02T13:00:00.000Z", "2026-11-03T01:00:00.000Z"),
            ]
        );
    }

    #[test]
    fn range_is_capped_at_31_days() {
        let o = office(&[
            ("_timezone", "UTC"),
            ("_bh_regular1", "Mon-Sun 09:00-10:00"),
        ]);
        let year = o.open_periods(utc("2026-01-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"));
        // The cap ends the range at Feb 1 00:00: Jan 1 to Jan 31.
        assert_eq!(year.len(), 31);
        assert_eq!(format_utc(year[30].0), "2026-01-31T09:00:00.000Z");
    }

    #[test]
    fn reply_shape() {
        let o = office(&[
            ("_timezone", "europe/paris"),
            ("_bh_regular1", "Mon-Fri 09:00-17:00"),
        ]);
        let reply = o.reply(utc("2026-03-02T10:00:00Z"), utc("2026-03-02T10:00:00Z"));
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"error":null,"timezone":"Europe/Paris","periods":[{"start":"2026-03-02T08:00:00.000Z","end":"2026-03-02T16:00:00.000Z"}]}"#
        );
        let closed = o.reply(utc("2026-03-02T20:00:00Z"), utc("2026-03-02T20:00:00Z"));
        assert!(closed.periods.is_empty());
    }
}
