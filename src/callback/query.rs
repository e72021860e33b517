//! The query parameters of the office-hours (§10.1), capacity (§10.2) and availability (§6.2)
//! GETs, parsed into typed requests. Each parser takes a lookup `get(name) -> Option<&str>`
//! over the request's parameters; an empty value counts as absent, unknown names are ignored
//! (clients add their own, such as `gms_user`).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::error::ParamError;
use super::time::{
    add_days, cap_range, parse_epoch_ms, parse_instant, parse_local, time_zone, MAX_RANGE,
};

/// The most days `number-of-days` may ask for (ours: §6.2).
pub const MAX_DAYS: u32 = 31;

/// The availability API's version: V1 at `/genesys/1`, V2 at `/genesys/2` (§6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Slot start -> free count.
    V1,
    /// `durationMin`, `timezone`, `slots[...]`; takes `start-ms`, `end-ms`, `timezone` and
    /// `report-busy` too.
    V2,
}

/// `start`, `end` and `number-of-days`: the range of an office-hours or availability request.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeRange {
    /// `start` (or V2 `start-ms`); default now.
    pub start: Option<Timestamp>,
    /// `end` (or V2 `end-ms`); wins over `number-of-days`.
    pub end: Option<Timestamp>,
    /// `number-of-days`, 1..=31: calendar days in the office's zone.
    pub number_of_days: Option<u32>,
}

impl TimeRange {
    fn parse<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<TimeRange, ParamError> {
        Ok(TimeRange {
            start: instant(get, "start")?,
            end: instant(get, "end")?,
            number_of_days: days(get)?,
        })
    }

    /// `[start, end]`: start defaults to `now`; `end` wins over `number-of-days`; without
    /// either, end is start + `default`. Capped at 31 days; start after end is an error.
    fn resolve(
        &self,
        now: Timestamp,
        tz: &TimeZone,
        default: SignedDuration,
    ) -> Result<(Timestamp, Timestamp), ParamError> {
        let start = self.start.unwrap_or(now);
        let end = match (self.end, self.number_of_days) {
            (Some(end), _) => end,
            (None, Some(days)) => add_days(start, i64::from(days), tz),
            (None, None) => start
                .saturating_add(default.min(MAX_RANGE))
                .unwrap_or(Timestamp::MAX),
        };
        if end < start {
            return Err(ParamError::new("start", "is after end"));
        }
        Ok((start, cap_range(start, end)))
    }
}

/// `GET {root}/service/{office-hours-name}?start=&end=&number-of-days=`.
#[derive(Debug, Clone, PartialEq)]
pub struct OfficeHoursRequest {
    /// The range asked for.
    pub times: TimeRange,
}

impl OfficeHoursRequest {
    /// Parses the parameters.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, ParamError> {
        Ok(OfficeHoursRequest {
            times: TimeRange::parse(&get)?,
        })
    }

    /// The range asked for, `[start, end]`: end defaults to start (GMS: "is it open now").
    pub fn range(
        &self,
        now: Timestamp,
        tz: &TimeZone,
    ) -> Result<(Timestamp, Timestamp), ParamError> {
        self.times.resolve(now, tz, SignedDuration::ZERO)
    }
}

/// `GET {root}/service/{capacity-name}?start=&end=&timezone=`: local times without a zone.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityRequest {
    /// `start` (required), local in `timezone`.
    pub start: DateTime,
    /// `end` (required), local in `timezone`.
    pub end: DateTime,
    /// `timezone`; default the capacity service's `_timezone`.
    pub timezone: Option<TimeZone>,
}

impl CapacityRequest {
    /// Parses the parameters.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, ParamError> {
        let local = |name: &str| -> Result<DateTime, ParamError> {
            let value = present(&get, name).ok_or_else(|| ParamError::new(name, "is required"))?;
            parse_local(value).map_err(|e| ParamError::new(name, e.to_string()))
        };
        Ok(CapacityRequest {
            start: local("start")?,
            end: local("end")?,
            timezone: zone(&get)?,
        })
    }

    /// The range as instants and the zone to write periods in (`timezone`, else `default_tz`).
    /// A local time in a skipped hour moves forward, a repeated one takes its first occurrence.
    /// `end` before `start` is an error; the range is capped at 31 days.
    pub fn range(
        &self,
        default_tz: &TimeZone,
    ) -> Result<(Timestamp, Timestamp, TimeZone), ParamError> {
        let tz = self.timezone.clone().unwrap_or_else(|| default_tz.clone());
        let to_instant = |name: &str, dt: DateTime| {
            tz.to_ambiguous_timestamp(dt)
                .compatible()
                .map_err(|_| ParamError::new(name, "no such time"))
        };
        let start = to_instant("start", self.start)?;
        let end = to_instant("end", self.end)?;
        if end < start {
            return Err(ParamError::new("end", "is before start"));
        }
        Ok((start, cap_range(start, end), tz))
    }
}

/// `GET .../availability` (V1 and V2): which slots to list.
#[derive(Debug, Clone, PartialEq)]
pub struct AvailabilityRequest {
    /// The range asked for.
    pub times: TimeRange,
    /// `max-time-slots`, at least 1 (the slot code caps it at 2000).
    pub max_time_slots: Option<u32>,
    /// V2 `timezone` for `localTime`; default the office's zone.
    pub timezone: Option<TimeZone>,
    /// V2 `report-busy`: list full slots too.
    pub report_busy: bool,
}

impl AvailabilityRequest {
    /// Parses the parameters of `version`; V1 ignores the V2-only names.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        version: Version,
    ) -> Result<Self, ParamError> {
        let mut request = AvailabilityRequest {
            times: TimeRange::parse(&get)?,
            max_time_slots: None,
            timezone: None,
            report_busy: false,
        };
        if let Some(value) = present(&get, "max-time-slots") {
            request.max_time_slots = Some(
                value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| {
                        ParamError::new("max-time-slots", "must be a whole number of at least 1")
                    })?,
            );
        }
        if version == Version::V2 {
            for (name, iso, slot) in [
                ("start-ms", "start", &mut request.times.start),
                ("end-ms", "end", &mut request.times.end),
            ] {
                if let Some(value) = present(&get, name) {
                    if slot.is_some() {
                        return Err(ParamError::new(
                            name,
                            format!("give {iso} or {name}, not both"),
                        ));
                    }
                    *slot = Some(
                        parse_epoch_ms(value).map_err(|e| ParamError::new(name, e.to_string()))?,
                    );
                }
            }
            request.timezone = zone(&get)?;
            request.report_busy = match present(&get, "report-busy") {
                None => false,
                Some(v) if v.eq_ignore_ascii_case("true") => true,
                Some(v) if v.eq_ignore_ascii_case("false") => false,
                Some(_) => return Err(ParamError::new("report-busy", "must be true or false")),
            };
        }
        Ok(request)
    }

    /// The range asked for, before rounding to buckets: end defaults to 24 hours after start
    /// (ours, §13 Q16).
    pub fn range(
        &self,
        now: Timestamp,
        tz: &TimeZone,
    ) -> Result<(Timestamp, Timestamp), ParamError> {
        self.times.resolve(now, tz, SignedDuration::from_hours(24))
    }
}

/// The value of `name` unless absent or empty.
fn present<'a>(get: &impl Fn(&str) -> Option<&'a str>, name: &str) -> Option<&'a str> {
    get(name).map(str::trim).filter(|v| !v.is_empty())
}

fn instant<'a>(
    get: &impl Fn(&str) -> Option<&'a str>,
    name: &str,
) -> Result<Option<Timestamp>, ParamError> {
    present(get, name)
        .map(|v| parse_instant(v).map_err(|e| ParamError::new(name, e.to_string())))
        .transpose()
}

fn days<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Option<u32>, ParamError> {
    present(get, "number-of-days")
        .map(|v| {
            v.parse::<u32>()
                .ok()
                .filter(|d| (1..=MAX_DAYS).contains(d))
                .ok_or_else(|| {
                    ParamError::new("number-of-days", "must be a whole number from 1 to 31")
                })
        })
        .transpose()
}

fn zone<'a>(get: &impl Fn(&str) -> Option<&'a str>) -> Result<Option<TimeZone>, ParamError> {
    present(get, "timezone")
        .map(|v| {
            time_zone(v).ok_or_else(|| {
                ParamError::new("timezone", "is not an IANA time zone (e.g. Europe/Paris)")
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::time::format_utc;

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A lookup over fixed pairs, as a handler builds from its parameters.
    fn params<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> + 'a {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }

    fn fmt((a, b): (Timestamp, Timestamp)) -> (String, String) {
        (format_utc(a), format_utc(b))
    }

    const NOW: &str = "2026-03-02T10:00:00Z";

    #[test]
    fn office_hours_defaults_and_forms() {
        let paris = time_zone("Europe/Paris").unwrap();
        let now = utc(NOW);
        let range = |pairs: &[(&str, &str)]| {
            OfficeHoursRequest::parse(params(pairs))
                .and_then(|r| r.range(now, &paris))
                .map(fmt)
        };
        let at = |s: &str| format_utc(utc(s));
        assert_eq!(range(&[]), Ok((at(NOW), at(NOW))));
        assert_eq!(
            range(&[("gms_user", "x"), ("start", "")]),
            Ok((at(NOW), at(NOW)))
        );
        assert_eq!(
            range(&[("start", "2026-03-27T12:00:00Z"), ("number-of-days", "3")]),
            // Three calendar days in Paris, across the spring change: 71 hours.
            Ok((at("2026-03-27T12:00:00Z"), at("2026-03-30T11:00:00Z")))
        );
        assert_eq!(
            range(&[
                ("end", "2026-03-03T00:00:00+01:00"),
                ("number-of-days", "5")
            ]),
            Ok((at(NOW), at("2026-03-02T23:00:00Z")))
        );
        assert_eq!(
            range(&[("end", "2026-06-01T00:00:00Z")]),
            Ok((at(NOW), at("2026-04-02T10:00:00Z")))
        );
        let err = range(&[("end", "2026-03-01T00:00:00Z")]).unwrap_err();
        assert_eq!(err.param, "start");
        for (name, value) in [
            ("start", "2026-03-02T10:00:00"),
            ("start", "yesterday"),
            ("end", "2026-02-30T00:00:00Z"),
            ("number-of-days", "0"),
            ("number-of-days", "32"),
            ("number-of-days", "-1"),
            ("number-of-days", "two"),
        ] {
            let err = range(&[(name, value)]).unwrap_err();
            assert_eq!(err.param, name, "{name}={value}");
        }
        assert_eq!(
            range(&[("start", "2026-03-02T10:00:00")]).unwrap_err().to_string(),
            "parameter start: a time zone is required (Z or +HH:MM), as in YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|+HHMM)"
        );
    }

    #[test]
    fn capacity_requests() {
        let paris = time_zone("Europe/Paris").unwrap();
        let pairs = [
            ("start", "2015-03-17T09:15:00.000"),
            ("end", "2015-03-17T12:00:00.000"),
        ];
        let request = CapacityRequest::parse(params(&pairs)).unwrap();
        let (start, end, tz) = request.range(&paris).unwrap();
        assert_eq!(format_utc(start), "2015-03-17T08:15:00.000Z");
        assert_eq!(format_utc(end), "2015-03-17T11:00:00.000Z");
        assert_eq!(tz, paris);
        let pairs = [
            ("start", "2015-03-17T09:15:00"),
            ("end", "2015-03-17T12:00:00"),
            ("timezone", "America/New_York"),
        ];
        let (start, _, tz) = CapacityRequest::parse(params(&pairs))
            .unwrap()
            .range(&paris)
            .unwrap();
        assert_eq!(format_utc(start), "2015-03-17T13:15:00.000Z");
        assert_eq!(tz.iana_name(), Some("America/New_York"));
        // A local start in the skipped spring hour moves forward by the gap.
        let pairs = [
            ("start", "2026-03-29T02:30:00"),
            ("end", "2026-03-29T05:00:00"),
        ];
        let (start, _, _) = CapacityRequest::parse(params(&pairs))
            .unwrap()
            .range(&paris)
            .unwrap();
        assert_eq!(format_utc(start), "2026-03-29T01:30:00.000Z");
        // Capped at 31 days.
        let pairs = [
            ("start", "2026-01-01T00:00:00"),
            ("end", "2026-12-31T00:00:00"),
        ];
        let (start, end, _) = CapacityRequest::parse(params(&pairs))
            .unwrap()
            .range(&paris)
            .unwrap();
        assert_eq!(end.duration_since(start), MAX_RANGE);
    }

    #[test]
    fn capacity_request_errors() {
        let paris = time_zone("Europe/Paris").unwrap();
        for (pairs, param) in [
            (vec![("end", "2015-03-17T12:00:00")], "start"),
            (vec![("start", "2015-03-17T12:00:00")], "end"),
            (
                vec![
                    ("start", "2015-03-17T09:00:00Z"),
                    ("end", "2015-03-17T12:00:00"),
                ],
                "start",
            ),
            (
                vec![("start", "2015-03-17"), ("end", "2015-03-17T12:00:00")],
                "start",
            ),
            (
                vec![
                    ("start", "2015-03-17T09:00:00"),
                    ("end", "2015-03-17T12:00:00"),
                    ("timezone", "Nowhere"),
                ],
                "timezone",
            ),
        ] {
            let err = CapacityRequest::parse(params(&pairs)).unwrap_err();
            assert_eq!(err.param, param, "{pairs:?}");
        }
        let pairs = [
            ("start", "2015-03-17T12:00:00"),
            ("end", "2015-03-17T09:00:00"),
        ];
        let err = CapacityRequest::parse(params(&pairs))
            .unwrap()
            .range(&paris)
            .unwrap_err();
        assert_eq!(err.param, "end");
    }

    #[test]
    fn availability_v1() {
        let now = utc(NOW);
        let parse = |pairs: &[(&str, &str)]| AvailabilityRequest::parse(params(pairs), Version::V1);
        let plain = parse(&[]).unwrap();
        assert_eq!(
            fmt(plain.range(now, &TimeZone::UTC).unwrap()),
            fmt((now, utc("2026-03-03T10:00:00Z")))
        );
        let r = parse(&[
            ("start", "2026-03-05T08:00:00.000Z"),
            ("number-of-days", "2"),
            ("max-time-slots", "10"),
            ("start-ms", "not read by V1"),
            ("report-busy", "maybe"),
        ])
        .unwrap();
        assert_eq!(r.max_time_slots, Some(10));
        assert_eq!(r.times.start, Some(utc("2026-03-05T08:00:00Z")));
        assert!(!r.report_busy);
        assert_eq!(
            fmt(r.range(now, &TimeZone::UTC).unwrap()),
            fmt((utc("2026-03-05T08:00:00Z"), utc("2026-03-07T08:00:00Z")))
        );
        for (name, value) in [
            ("max-time-slots", "0"),
            ("max-time-slots", "x"),
            ("number-of-days", "40"),
            ("end", "soon"),
        ] {
            assert_eq!(parse(&[(name, value)]).unwrap_err().param, name);
        }
        // A large max-time-slots is accepted here; the slot code caps it.
        assert_eq!(
            parse(&[("max-time-slots", "99999")])
                .unwrap()
                .max_time_slots,
            Some(99999)
        );
    }

    #[test]
    fn availability_v2() {
        let parse = |pairs: &[(&str, &str)]| AvailabilityRequest::parse(params(pairs), Version::V2);
        let r = parse(&[
            ("start-ms", "1772445600000"),
            ("end-ms", "1772532000000"),
            ("timezone", "Europe/Paris"),
            ("report-busy", "TRUE"),
        ])
        .unwrap();
        assert_eq!(r.times.start, Some(utc("2026-03-02T10:00:00Z")));
        assert_eq!(r.times.end, Some(utc("2026-03-03T10:00:00Z")));
        assert_eq!(
            r.timezone.as_ref().and_then(|t| t.iana_name()),
            Some("Europe/Paris")
        );
        assert!(r.report_busy);
        for (pairs, param) in [
            (
                vec![("start", NOW), ("start-ms", "1772445600000")],
                "start-ms",
            ),
            (vec![("end", NOW), ("end-ms", "1772445600000")], "end-ms"),
            (vec![("start-ms", "1.5")], "start-ms"),
            (vec![("end-ms", "99999999999999999")], "end-ms"),
            (vec![("timezone", "PST")], "timezone"),
            (vec![("report-busy", "yes")], "report-busy"),
        ] {
            assert_eq!(parse(&pairs).unwrap_err().param, param, "{pairs:?}");
        }
    }
}
