//! The `capacity` built-in (contract §10.2, GMS: research §3): how many callbacks each time
//! bucket of an hour may hold, per weekday and per date, in the capacity's own time zone, and
//! the reply of `GET {root}/service/{capacity-name}`.
//!
//! A count applies to every bucket that starts in that local hour (GMS: with 5-minute buckets,
//! 10 means 10 per bucket, 120 per hour). An hour not listed holds 0. A date in
//! `_capacity_add` replaces that date's weekday table as a whole (ours: GMS's format is
//! unknown). Day 1 is Monday (ours, §13 Q9). In the autumn, the repeated local hour has the
//! count of its hour twice; the skipped spring hour has none.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;

use super::buckets::Buckets;
use super::error::OptionError;
use super::time::{cap_range, format_local, parse_date, time_zone, zone_name};

/// `_max_capacity` when not set (GMS).
pub const DEFAULT_MAX_CAPACITY: u32 = 1000;

/// Counts per local hour of one day, 00 to 23.
type DayTable = [u32; 24];

/// A capacity service's per-bucket limits, parsed from its options.
#[derive(Debug, Clone, PartialEq)]
pub struct Capacity {
    tz: TimeZone,
    day_list: Option<String>,
    /// Indexed by weekday, Monday = 0.
    weekly: [DayTable; 7],
    dates: BTreeMap<Date, DayTable>,
    max: u32,
}

/// The reply of the capacity API (§10.2): hourly periods in local time without a zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityReply {
    /// The zone the periods are written in.
    pub timezone: String,
    /// One period per hour of the capacity's zone that intersects the range.
    pub periods: Vec<CapacityPeriod>,
}

/// One hour of a [`CapacityReply`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CapacityPeriod {
    /// Local start, `YYYY-MM-DDTHH:MM:SS.mmm`.
    pub start: String,
    /// Local end.
    pub end: String,
    /// The count per bucket in that hour.
    pub capacity: u32,
}

impl Capacity {
    /// Parses the options of a `capacity` service as (name, value) pairs; options this module
    /// does not know (`_type`, `_service`, ...) are left to the caller.
    pub fn from_options<'a>(
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Capacity, OptionError> {
        let options: Vec<(&str, &str)> = options.into_iter().collect();
        let max = match options.iter().find(|(name, _)| *name == "_max_capacity") {
            None => DEFAULT_MAX_CAPACITY,
            Some((name, value)) => value
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|m| *m >= 1)
                .ok_or_else(|| {
                    OptionError::new(name, format!("'{value}' is not a count of at least 1"))
                })?,
        };
        let mut capacity = Capacity {
            tz: TimeZone::UTC,
            day_list: None,
            weekly: [[0; 24]; 7],
            dates: BTreeMap::new(),
            max,
        };
        let mut tz = None;
        for (name, value) in options {
            let err = |message: String| OptionError::new(name, message);
            match name {
                "_timezone" => {
                    tz = Some(time_zone(value.trim()).ok_or_else(|| {
                        err(format!(
                            "'{value}' is not an IANA time zone (e.g. Europe/Paris)"
                        ))
                    })?);
                }
                "_capacity" => capacity.day_list = Some(value.to_string()),
                "_capacity_add" => {
                    for (key, hours) in json_object(value).map_err(err)? {
                        let date = parse_date(&key)
                            .ok_or_else(|| err(format!("'{key}' is not a date YYYY-MM-DD")))?;
                        capacity
                            .dates
                            .insert(date, day_table(&hours, max).map_err(err)?);
                    }
                }
                "_max_capacity" => {}
                _ => {
                    let Some(suffix) = name.strip_prefix("_capacity_") else {
                        continue;
                    };
                    let day = match suffix.as_bytes() {
                        [d @ b'1'..=b'7'] => d - b'0',
                        _ => return Err(err(
                            "unknown option; expected _capacity_1 to _capacity_7 or _capacity_add"
                                .to_string(),
                        )),
                    };
                    let mut table = [0; 24];
                    for (key, hours) in json_object(value).map_err(err)? {
                        if key != suffix {
                            return Err(err(format!(
                                "holds day \"{key}\"; {name} takes only \"{day}\" (1 = Monday)"
                            )));
                        }
                        table = day_table(&hours, max).map_err(err)?;
                    }
                    capacity.weekly[usize::from(day - 1)] = table;
                }
            }
        }
        capacity.tz =
            tz.ok_or_else(|| OptionError::new("_timezone", "required (an IANA time zone)"))?;
        Ok(capacity)
    }

    /// The zone whose local hours the counts are given in.
    pub fn timezone(&self) -> &TimeZone {
        &self.tz
    }

    /// `_max_capacity`.
    pub fn max_capacity(&self) -> u32 {
        self.max
    }

    /// `_capacity` as configured (the day list), kept but not interpreted.
    pub fn day_list(&self) -> Option<&str> {
        self.day_list.as_deref()
    }

    /// The count per bucket for local `hour` (0..=23) of local `date`.
    pub fn hourly(&self, date: Date, hour: i8) -> u32 {
        let table = self
            .dates
            .get(&date)
            .unwrap_or(&self.weekly[date.weekday().to_monday_zero_offset() as usize]);
        usize::try_from(hour)
            .ok()
            .and_then(|h| table.get(h))
            .copied()
            .unwrap_or(0)
    }

    /// The count per bucket for a bucket starting at `t`: the count of `t`'s local hour.
    pub fn at(&self, t: Timestamp) -> u32 {
        let local = self.tz.to_datetime(t);
        self.hourly(local.date(), local.hour())
    }

    /// The reply of `GET {root}/service/{name}` (§10.2): every hour of the capacity's zone that
    /// intersects `[start, end)` (not clipped), written in local time of `tz`. `end` is capped
    /// at 31 days after `start`.
    pub fn reply(&self, start: Timestamp, end: Timestamp, tz: &TimeZone) -> CapacityReply {
        let end = cap_range(start, end);
        // Hours of the capacity's zone are its 60-minute buckets: split at offset changes too.
        let hours = Buckets::hourly(self.tz.clone());
        let mut periods = Vec::new();
        let mut hour = hours.start_of(start);
        while hour < end && start < end {
            let next = hours.next_after(hour);
            periods.push(CapacityPeriod {
                start: format_local(tz.to_datetime(hour)),
                end: format_local(tz.to_datetime(next)),
                capacity: self.at(hour),
            });
            hour = next;
        }
        CapacityReply {
            timezone: zone_name(tz).to_string(),
            periods,
        }
    }
}

/// A JSON object's entries; `{}`, `[]` and an empty value are empty.
fn json_object(value: &str) -> Result<Vec<(String, serde_json::Value)>, String> {
    if value.trim().is_empty() {
        return Ok(Vec::new());
    }
    match serde_json::from_str::<serde_json::Value>(value) {
        Ok(serde_json::Value::Object(map)) => Ok(map.into_iter().collect()),
        Ok(serde_json::Value::Array(items)) if items.is_empty() => Ok(Vec::new()),
        Ok(_) => Err(format!("'{value}' is not a JSON object")),
        Err(e) => Err(format!("'{value}' is not JSON ({e})")),
    }
}

/// `{"HHMM": count, ...}`: one key per hour, `"0000"` to `"2300"`, counts up to `max`.
fn day_table(hours: &serde_json::Value, max: u32) -> Result<DayTable, String> {
    let mut table = [0; 24];
    let entries = match hours {
        serde_json::Value::Object(map) => map,
        serde_json::Value::Array(items) if items.is_empty() => return Ok(table),
        other => return Err(format!("{other} is not an object of \"HHMM\": count")),
    };
    for (key, count) in entries {
        let hour = match key.as_bytes() {
            [h1, h2, b'0', b'0'] if h1.is_ascii_digit() && h2.is_ascii_digit() => {
                usize::from(h1 - b'0') * 10 + usize::from(h2 - b'0')
            }
            _ => 24,
        };
        if hour > 23 {
            return Err(format!("\"{key}\" is not an hour \"0000\" to \"2300\""));
        }
        let count = count
            .as_u64()
            .ok_or_else(|| format!("the count at \"{key}\" is not a whole number"))?;
        if count > u64::from(max) {
            return Err(format!(
                "the count {count} at \"{key}\" is over _max_capacity {max}"
            ));
        }
        table[hour] = count as u32;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn capacity(options: &[(&str, &str)]) -> Capacity {
        Capacity::from_options(options.iter().copied()).unwrap()
    }

    fn error(options: &[(&str, &str)]) -> OptionError {
        Capacity::from_options(options.iter().copied()).unwrap_err()
    }

    /// The reply's periods for `[start, end)` as `HH:MM-HH:MM count`, local times.
    fn local_hours(c: &Capacity, start: &str, end: &str) -> Vec<String> {
        let reply = c.reply(utc(start), utc(end), c.timezone());
        reply
            .periods
            .iter()
            .map(|p| format!("{}-{} {}", &p.start[11..16], &p.end[11..16], p.capacity))
            .collect()
    }

    fn paris_weekdays() -> Capacity {
        capacity(&[
            ("_type", "builtin"),
            ("_service", "capacity"),
            ("_timezone", "Europe/Paris"),
            ("_capacity", "[Mon, Tue, Wed, Thu, Fri, Sat, Sun]"),
            ("_capacity_1", r#"{"1":{"0900":6,"1000":6,"1100":6}}"#),
            ("_capacity_2", r#"{"2":{"0900":3}}"#),
            (
                "_capacity_7",
                r#"{"7":{"0000":1,"0100":1,"0200":2,"0300":3,"2300":9}}"#,
            ),
            ("_capacity_add", r#"{"2026-03-03":{"1500":4}}"#),
        ])
    }

    #[test]
    fn weekday_one_is_monday() {
        let c = paris_weekdays();
        // 2026-03-02 is a Monday; 09:00 CET is 08:00Z.
        assert_eq!(c.at(utc("2026-03-02T08:00:00Z")), 6);
        assert_eq!(c.at(utc("2026-03-02T10:55:00Z")), 6);
        assert_eq!(c.at(utc("2026-03-02T11:00:00Z")), 0); // 12:00, not listed
        assert_eq!(c.at(utc("2026-03-01T08:00:00Z")), 0); // Sunday 09:00
        assert_eq!(c.at(utc("2026-03-08T22:00:00Z")), 9); // Sunday 23:00
        assert_eq!(c.hourly(Date::constant(2026, 3, 9), 9), 6);
        assert_eq!(c.max_capacity(), 1000);
        assert_eq!(c.day_list(), Some("[Mon, Tue, Wed, Thu, Fri, Sat, Sun]"));
    }

    #[test]
    fn added_dates_replace_the_whole_day() {
        let c = paris_weekdays();
        // Tuesday 2026-03-03 has its own table: 09:00 is 0, 15:00 is 4.
        assert_eq!(c.at(utc("2026-03-03T08:00:00Z")), 0);
        assert_eq!(c.at(utc("2026-03-03T14:00:00Z")), 4);
        // The next Tuesday has the weekday table.
        assert_eq!(c.at(utc("2026-03-10T08:00:00Z")), 3);
    }

    #[test]
    fn daylight_saving_hours() {
        let c = paris_weekdays();
        // Sunday 2026-03-29: 02:00 is skipped; 01:00 CET is 00:00Z, 03:00 CEST is 01:00Z.
        assert_eq!(c.at(utc("2026-03-29T00:30:00Z")), 1);
        assert_eq!(c.at(utc("2026-03-29T01:00:00Z")), 3);
        // Sunday 2026-10-25: 02:00 happens twice (00:00Z CEST and 01:00Z CET).
        assert_eq!(c.at(utc("2026-10-25T00:00:00Z")), 2);
        assert_eq!(c.at(utc("2026-10-25T01:00:00Z")), 2);
        assert_eq!(c.at(utc("2026-10-25T02:00:00Z")), 3);
        assert_eq!(
            local_hours(&c, "2026-03-28T23:30:00Z", "2026-03-29T02:00:00Z"),
            ["00:00-01:00 1", "01:00-03:00 1", "03:00-04:00 3"]
        );
        // Without a zone the repeated hour reads 02:00 to 02:00, then 02:00 to 03:00.
        assert_eq!(
            local_hours(&c, "2026-10-24T23:00:00Z", "2026-10-25T02:00:00Z"),
            ["01:00-02:00 1", "02:00-02:00 2", "02:00-03:00 2"]
        );
    }

    #[test]
    fn reply_shape_and_other_zones() {
        let c = paris_weekdays();
        let start = utc("2026-03-02T08:15:00Z"); // 09:15 in Paris
        let reply = c.reply(start, utc("2026-03-02T09:00:00Z"), c.timezone());
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"timezone":"Europe/Paris","periods":[{"start":"2026-03-02T09:00:00.000","end":"2026-03-02T10:00:00.000","capacity":6}]}"#
        );
        // Written in New York time (UTC-5 in early March): 03:00-04:00 local.
        let ny = time_zone("America/New_York").unwrap();
        let reply = c.reply(start, utc("2026-03-02T09:00:00Z"), &ny);
        assert_eq!(reply.timezone, "America/New_York");
        assert_eq!(reply.periods[0].start, "2026-03-02T03:00:00.000");
        assert_eq!(reply.periods[0].capacity, 6);
        // Zero-capacity hours are listed too; an empty range has none.
        let day = c.reply(
            utc("2026-03-01T23:00:00Z"),
            utc("2026-03-02T23:00:00Z"),
            c.timezone(),
        );
        assert_eq!(day.periods.len(), 24);
        assert_eq!(day.periods.iter().filter(|p| p.capacity > 0).count(), 3);
        assert!(c.reply(start, start, c.timezone()).periods.is_empty());
        // The range is capped at 31 days.
        let long = c.reply(
            utc("2026-01-01T00:00:00Z"),
            utc("2027-01-01T00:00:00Z"),
            c.timezone(),
        );
        assert_eq!(long.periods.len(), 31 * 24);
    }

    #[test]
    fn empty_forms() {
        for empty in ["{}", "[]", "", " "] {
            let c = capacity(&[
                ("_timezone", "UTC"),
                ("_capacity_1", empty),
                ("_capacity_add", empty),
            ]);
            assert_eq!(c.at(utc("2026-03-02T09:00:00Z")), 0);
        }
        let c = capacity(&[("_timezone", "UTC"), ("_capacity_3", r#"{"3":{}}"#)]);
        assert_eq!(c.at(utc("2026-03-04T09:00:00Z")), 0);
    }

    #[test]
    fn max_capacity() {
        let c = capacity(&[
            ("_timezone", "UTC"),
            ("_max_capacity", "10"),
            ("_capacity_1", r#"{"1":{"0900":10}}"#),
        ]);
        assert_eq!(c.at(utc("2026-03-02T09:00:00Z")), 10);
        // `_max_capacity` counts wherever it is in the list.
        let err = error(&[
            ("_timezone", "UTC"),
            ("_capacity_1", r#"{"1":{"0900":11}}"#),
            ("_max_capacity", "10"),
        ]);
        assert_eq!(
            err.to_string(),
            r#"_capacity_1: the count 11 at "0900" is over _max_capacity 10"#
        );
        let err = error(&[
            ("_timezone", "UTC"),
            ("_capacity_add", r#"{"2026-03-02":{"0900":1001}}"#),
        ]);
        assert_eq!(err.option, "_capacity_add");
    }

    #[test]
    fn syntax_errors_name_their_option() {
        let tz = ("_timezone", "UTC");
        for (name, value) in [
            ("_capacity_1", "{"),
            ("_capacity_1", r#"{"2":{"0900":1}}"#),
            ("_capacity_1", r#"{"1":{"0930":1}}"#),
            ("_capacity_1", r#"{"1":{"2400":1}}"#),
            ("_capacity_1", r#"{"1":{"900":1}}"#),
            ("_capacity_1", r#"{"1":{"0900":-1}}"#),
            ("_capacity_1", r#"{"1":{"0900":1.5}}"#),
            ("_capacity_1", r#"{"1":{"0900":"6"}}"#),
            ("_capacity_1", r#"{"1":[1,2]}"#),
            ("_capacity_1", "[1]"),
            ("_capacity_1", "6"),
            ("_capacity_0", "{}"),
            ("_capacity_8", "{}"),
            ("_capacity_10", "{}"),
            ("_capacity_mon", "{}"),
            ("_capacity_add", r#"{"03-02":{"0900":1}}"#),
            ("_capacity_add", r#"{"2026-02-30":{"0900":1}}"#),
            ("_capacity_add", r#"{"2026-03-02":{"09":1}}"#),
            ("_max_capacity", "0"),
            ("_max_capacity", "lots"),
            ("_max_capacity", "-5"),
        ] {
            let err = error(&[tz, (name, value)]);
            assert_eq!(err.option, name, "{name}={value}: {err}");
        }
        assert_eq!(error(&[("_capacity_1", "{}")]).option, "_timezone");
        assert_eq!(error(&[("_timezone", "Paris")]).option, "_timezone");
    }
}
