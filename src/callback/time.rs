//! Callback times on the wire (contract §3.1, §6.2, §10): the lenient `_desired_time` parser,
//! the one emitted format `YYYY-MM-DDTHH:MM:SS.mmmZ`, local times without a zone (capacity),
//! epoch milliseconds (availability V2), `_reject_future_desired_time`, and time-zone lookup in
//! the bundled IANA database.

use std::fmt;
use std::sync::OnceLock;

use jiff::civil::{Date, DateTime};
use jiff::tz::{Offset, TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Span, Timestamp};

use super::error::OptionError;

/// The longest range an office-hours, capacity or availability request covers (ours: §6.2,
/// §10.1): 31 days.
pub const MAX_RANGE: SignedDuration = SignedDuration::from_hours(31 * 24);

/// The earliest instant the wire formats take: 0001-01-01T00:00:00Z, so every emitted year
/// has four digits.
const WIRE_MIN: Timestamp = Timestamp::constant(-62_135_596_800, 0);
/// The latest instant the wire formats take: Jiff's last, 9999-12-30T22:00:00.999999999Z.
const WIRE_MAX: Timestamp = Timestamp::MAX;

const INSTANT_SHAPE: &str = "YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|+HHMM)";
const LOCAL_SHAPE: &str = "YYYY-MM-DDTHH:MM:SS[.fff] without a time zone";

/// Why a time on the wire was refused; its text is safe to show a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormatError {
    /// Not the expected shape; holds the shape.
    Shape(&'static str),
    /// An instant without `Z` or an offset (§3.1: 400).
    NoZone,
    /// A local time (capacity) that carries a zone.
    UnexpectedZone,
    /// The right shape but no such date or time (`02-30`, `25:00`, an offset past 23:59), or
    /// outside years 0001..9999.
    OutOfRange,
}

impl fmt::Display for TimeFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeFormatError::Shape(shape) => write!(f, "expected {shape}"),
            TimeFormatError::NoZone => {
                write!(
                    f,
                    "a time zone is required (Z or +HH:MM), as in {INSTANT_SHAPE}"
                )
            }
            TimeFormatError::UnexpectedZone => write!(f, "expected {LOCAL_SHAPE}"),
            TimeFormatError::OutOfRange => write!(f, "no such date or time"),
        }
    }
}

impl std::error::Error for TimeFormatError {}

/// Parses an instant as the contract accepts it (§3.1):
/// `YYYY-MM-DDTHH:MM:SS[.f…](Z|±HH:MM|±HHMM)`, one to nine fraction digits or none. Used for
/// `_desired_time`, `_new_desired_time` and the `start`/`end` query parameters.
pub fn parse_instant(s: &str) -> Result<Timestamp, TimeFormatError> {
    let (dt, zone) = civil_prefix(s, INSTANT_SHAPE)?;
    let offset = match zone.as_bytes() {
        [] => return Err(TimeFormatError::NoZone),
        [b'Z'] => Offset::UTC,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let hours = two_digits(*h1, *h2).ok_or(TimeFormatError::Shape(INSTANT_SHAPE))?;
            let minutes = two_digits(*m1, *m2).ok_or(TimeFormatError::Shape(INSTANT_SHAPE))?;
            if hours > 23 || minutes > 59 {
                return Err(TimeFormatError::OutOfRange);
            }
            let seconds = (hours * 3600 + minutes * 60) * if *sign == b'-' { -1 } else { 1 };
            Offset::from_seconds(seconds).map_err(|_| TimeFormatError::OutOfRange)?
        }
        _ => return Err(TimeFormatError::Shape(INSTANT_SHAPE)),
    };
    let ts = offset
        .to_timestamp(dt)
        .map_err(|_| TimeFormatError::OutOfRange)?;
    in_wire_range(ts)
}

/// Parses a local date and time without a zone, `YYYY-MM-DDTHH:MM:SS[.f…]` (the capacity
/// API's `start`/`end`, §10.2).
pub fn parse_local(s: &str) -> Result<DateTime, TimeFormatError> {
    match civil_prefix(s, LOCAL_SHAPE)? {
        (dt, "") => Ok(dt),
        (_, rest) if matches!(rest.as_bytes()[0], b'Z' | b'+' | b'-') => {
            Err(TimeFormatError::UnexpectedZone)
        }
        _ => Err(TimeFormatError::Shape(LOCAL_SHAPE)),
    }
}

/// The one emitted form of an instant, `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC, milliseconds
/// truncated; GMS: §1.2).
pub fn format_utc(ts: Timestamp) -> String {
    let mut s = String::with_capacity(24);
    write_utc(&mut s, ts);
    s
}

/// A local time without a zone, `YYYY-MM-DDTHH:MM:SS.mmm` (capacity periods, V2 `localTime`).
pub fn format_local(dt: DateTime) -> String {
    let mut s = String::with_capacity(23);
    write_local(&mut s, dt);
    s
}

/// Appends [`format_utc`]'s form of `ts` to `out` (replies that list many instants write them
/// into one buffer).
pub fn write_utc(out: &mut String, ts: Timestamp) {
    write_local(out, TimeZone::UTC.to_datetime(ts));
    out.push('Z');
}

/// Appends [`format_local`]'s form of `dt` to `out`: digits written directly, not through
/// `core::fmt` (an availability reply writes hundreds of them).
pub fn write_local(out: &mut String, dt: DateTime) {
    let mut b = format_fields(dt);
    let from = match u16::try_from(dt.year()) {
        Ok(year @ 0..=9999) => {
            b[..4].copy_from_slice(&digits4(year));
            0
        }
        // Years outside 0000..=9999 never reach the wire (see WIRE_MIN); written as before.
        _ => {
            out.push_str(&format!("{:04}", dt.year()));
            4
        }
    };
    // Every byte is an ASCII digit or separator.
    out.push_str(std::str::from_utf8(&b[from..]).unwrap_or_default());
}

/// `????-MM-DDTHH:MM:SS.mmm` for `dt`: every field but the year, as ASCII bytes.
fn format_fields(dt: DateTime) -> [u8; 23] {
    // jiff keeps each field in range (month 1..=12, ..., millisecond 0..=999).
    let two = |v: i8| digits2(v as u8);
    let (mo, d, h, mi, s) = (
        two(dt.month()),
        two(dt.day()),
        two(dt.hour()),
        two(dt.minute()),
        two(dt.second()),
    );
    let ms = digits4(dt.millisecond() as u16);
    [
        b'?', b'?', b'?', b'?', b'-', mo[0], mo[1], b'-', d[0], d[1], b'T', h[0], h[1], b':',
        mi[0], mi[1], b':', s[0], s[1], b'.', ms[1], ms[2], ms[3],
    ]
}

/// `v` (0..=99) as two ASCII digits.
fn digits2(v: u8) -> [u8; 2] {
    [b'0' + v / 10 % 10, b'0' + v % 10]
}

/// `v` (0..=9999) as four ASCII digits.
fn digits4(v: u16) -> [u8; 4] {
    let (hi, lo) = ((v / 100 % 100) as u8, (v % 100) as u8);
    let (hi, lo) = (digits2(hi), digits2(lo));
    [hi[0], hi[1], lo[0], lo[1]]
}

/// An instant from epoch milliseconds (V2 `start-ms`/`end-ms`), within years 0001..9999.
pub fn from_epoch_ms(ms: i64) -> Result<Timestamp, TimeFormatError> {
    let ts = Timestamp::from_millisecond(ms).map_err(|_| TimeFormatError::OutOfRange)?;
    in_wire_range(ts)
}

/// Parses epoch milliseconds written as decimal digits (an optional leading `-`).
pub fn parse_epoch_ms(s: &str) -> Result<Timestamp, TimeFormatError> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TimeFormatError::Shape(
            "milliseconds since 1970-01-01T00:00:00Z",
        ));
    }
    let ms: i64 = s
        .parse()
        .map_err(|_| TimeFormatError::Shape("milliseconds since 1970-01-01T00:00:00Z"))?;
    from_epoch_ms(ms)
}

/// The instant as epoch milliseconds (floored), the form bucket keys and V2 use.
pub fn to_epoch_ms(ts: Timestamp) -> i64 {
    ts.as_millisecond()
}

/// Looks up an IANA time-zone name (ASCII case ignored) in the tz database bundled into the
/// binary, never the host's `/usr/share/zoneinfo`, so every machine computes the same hours.
pub fn time_zone(name: &str) -> Option<TimeZone> {
    static DB: OnceLock<TimeZoneDatabase> = OnceLock::new();
    if name.is_empty() {
        return None;
    }
    DB.get_or_init(TimeZoneDatabase::bundled).get(name).ok()
}

/// The IANA name to show for a zone from [`time_zone`] (its canonical spelling).
pub fn zone_name(tz: &TimeZone) -> &str {
    tz.iana_name().unwrap_or("UTC")
}

/// `ts` plus `days` calendar days in `tz` (23 or 25 hours across a daylight-saving change);
/// saturates at the end of time.
pub fn add_days(ts: Timestamp, days: i64, tz: &TimeZone) -> Timestamp {
    Span::new()
        .try_days(days)
        .and_then(|span| ts.to_zoned_datetime(tz.clone()).checked_add(span))
        .map(|z| z.timestamp())
        .unwrap_or(Timestamp::MAX)
}

/// `end`, or `start` + [`MAX_RANGE`] when `end` is further: the 31-day cap of §6.2 and §10.1.
pub fn cap_range(start: Timestamp, end: Timestamp) -> Timestamp {
    end.min(start.saturating_add(MAX_RANGE).unwrap_or(Timestamp::MAX))
}

/// Parses a date written `YYYY-MM-DD` (office-hours and capacity options); `None` when the
/// shape is wrong or the day does not exist (`2027-02-29`).
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = two_digits(b[0], b[1])? * 100 + two_digits(b[2], b[3])?;
    let (month, day) = (two_digits(b[5], b[6])?, two_digits(b[8], b[9])?);
    // Each field has at most four digits, so the narrowing casts cannot truncate.
    Date::new(year as i16, month as i8, day as i8).ok()
}

/// `_reject_future_desired_time`: how far ahead a desired time may be (default `1M`).
///
/// The contract's check is `1[yMwdhm]`; ours accepts any count from 1 to 99999 before the
/// unit (`2w`, `90d`), so `1M` and the other GMS values keep their meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FutureLimit {
    count: u32,
    unit: FutureUnit,
}

/// The unit of a [`FutureLimit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FutureUnit {
    /// `y`: calendar years (UTC).
    Year,
    /// `M`: calendar months (UTC; Jan 31 + 1M = Feb 28 or 29).
    Month,
    /// `w`: weeks.
    Week,
    /// `d`: days.
    Day,
    /// `h`: hours.
    Hour,
    /// `m`: minutes.
    Minute,
}

/// The option name [`FutureLimit::parse`] reports in its errors.
pub const FUTURE_LIMIT_OPTION: &str = "_reject_future_desired_time";

impl FutureLimit {
    /// The GMS default, one month.
    pub const DEFAULT: FutureLimit = FutureLimit {
        count: 1,
        unit: FutureUnit::Month,
    };

    /// Parses `N` followed by one of `y M w d h m` (case matters: `M` months, `m` minutes).
    pub fn parse(value: &str) -> Result<FutureLimit, OptionError> {
        let bad = || {
            OptionError::new(
                FUTURE_LIMIT_OPTION,
                format!("'{value}' is not a count from 1 to 99999 followed by y, M, w, d, h or m"),
            )
        };
        let value_t = value.trim();
        let unit_char = value_t.chars().last().ok_or_else(bad)?;
        let unit = match unit_char {
            'y' => FutureUnit::Year,
            'M' => FutureUnit::Month,
            'w' => FutureUnit::Week,
            'd' => FutureUnit::Day,
            'h' => FutureUnit::Hour,
            'm' => FutureUnit::Minute,
            _ => return Err(bad()),
        };
        let digits = &value_t[..value_t.len() - 1];
        if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let count: u32 = digits.parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(bad());
        }
        Ok(FutureLimit { count, unit })
    }

    /// The latest acceptable desired time for a request at `now` (saturates at the end of
    /// time).
    pub fn latest(&self, now: Timestamp) -> Timestamp {
        let n = i64::from(self.count);
        let span = match self.unit {
            FutureUnit::Year => Span::new().try_years(n),
            FutureUnit::Month => Span::new().try_months(n),
            FutureUnit::Week => Span::new().try_weeks(n),
            FutureUnit::Day => Span::new().try_days(n),
            FutureUnit::Hour => Span::new().try_hours(n),
            FutureUnit::Minute => Span::new().try_minutes(n),
        };
        span.and_then(|span| now.to_zoned_datetime(TimeZone::UTC).checked_add(span))
            .map(|z| z.timestamp())
            .unwrap_or(Timestamp::MAX)
    }
}

impl Default for FutureLimit {
    fn default() -> Self {
        FutureLimit::DEFAULT
    }
}

impl fmt::Display for FutureLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            FutureUnit::Year => 'y',
            FutureUnit::Month => 'M',
            FutureUnit::Week => 'w',
            FutureUnit::Day => 'd',
            FutureUnit::Hour => 'h',
            FutureUnit::Minute => 'm',
        };
        write!(f, "{}{unit}", self.count)
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.f…]` at the start of `s`, validated by jiff; the rest of `s` after it.
fn civil_prefix<'s>(
    s: &'s str,
    shape: &'static str,
) -> Result<(DateTime, &'s str), TimeFormatError> {
    let b = s.as_bytes();
    let err = TimeFormatError::Shape(shape);
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return Err(err);
    }
    if b[16] != b':' {
        return Err(err);
    }
    let year = two_digits(b[0], b[1])
        .zip(two_digits(b[2], b[3]))
        .map(|(hi, lo)| hi * 100 + lo)
        .ok_or(err)?;
    let field = |at: usize| two_digits(b[at], b[at + 1]).ok_or(err);
    let (month, day) = (field(5)?, field(8)?);
    let (hour, minute, second) = (field(11)?, field(14)?, field(17)?);
    let mut end = 19;
    let mut nanos = 0i32;
    if b.get(end) == Some(&b'.') {
        let digits = b[end + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 || digits > 9 {
            return Err(err);
        }
        for &c in &b[end + 1..end + 1 + digits] {
            nanos = nanos * 10 + i32::from(c - b'0');
        }
        nanos *= 10i32.pow(9 - digits as u32);
        end += 1 + digits;
    }
    // Each field has two digits, so the narrowing casts cannot truncate.
    let dt = DateTime::new(
        year as i16,
        month as i8,
        day as i8,
        hour as i8,
        minute as i8,
        second as i8,
        nanos,
    )
    .map_err(|_| TimeFormatError::OutOfRange)?;
    Ok((dt, &s[end..]))
}

fn two_digits(hi: u8, lo: u8) -> Option<i32> {
    (hi.is_ascii_digit() && lo.is_ascii_digit())
        .then(|| i32::from(hi - b'0') * 10 + i32::from(lo - b'0'))
}

fn in_wire_range(ts: Timestamp) -> Result<Timestamp, TimeFormatError> {
    if (WIRE_MIN..=WIRE_MAX).contains(&ts) {
        Ok(ts)
    } else {
        Err(TimeFormatError::OutOfRange)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn instants_in_every_accepted_form() {
        let want = utc("2026-03-02T14:30:00Z");
        for s in [
            "2026-03-02T14:30:00Z",
            "2026-03-02T14:30:00.000Z",
            "2026-03-02T14:30:00.0Z",
            "2026-03-02T14:30:00.000000000Z",
            "2026-03-02T15:30:00+01:00",
            "2026-03-02T15:30:00+0100",
            "2026-03-02T09:30:00-05:00",
            "2026-03-02T09:30:00.000-0500",
            "2026-03-02T14:30:00+00:00",
            "2026-03-02T14:30:00-0000",
        ] {
            assert_eq!(parse_instant(s), Ok(want), "{s}");
        }
        assert_eq!(
            parse_instant("2026-03-02T14:30:00.123456789Z").unwrap(),
            utc("2026-03-02T14:30:00.123456789Z")
        );
        assert_eq!(
            parse_instant("2026-03-02T14:30:00.5+05:30").unwrap(),
            utc("2026-03-02T09:00:00.5Z")
        );
    }

    #[test]
    fn instants_refused() {
        use TimeFormatError::*;
        for (s, want) in [
            ("2026-03-02T14:30:00", NoZone),
            ("2026-03-02T14:30:00.000", NoZone),
            ("2026-03-02 14:30:00Z", Shape(INSTANT_SHAPE)),
            ("2026-03-02T14:30Z", Shape(INSTANT_SHAPE)),
            ("2026-3-02T14:30:00Z", Shape(INSTANT_SHAPE)),
            ("2026-03-02T14:30:00.Z", Shape(INSTANT_SHAPE)),
            ("2026-03-02T14:30:00.1234567890Z", Shape(INSTANT_SHAPE)),
            ("2026-03-02T14:30:00z", Shape(INSTANT_SHAPE)),
            ("2026-03-02T14:30:00+01", Shape(INSTANT_SHAPE)),
            ("2026-03-02T14:30:00+1:00", Shape(INSTANT_SHAPE)),
            ("2026-03-02T14:30:00Z[Europe/Paris]", Shape(INSTANT_SHAPE)),
            ("2026-03-02T14:30:00+24:00", OutOfRange),
            ("2026-03-02T14:30:00+01:60", OutOfRange),
            ("2026-02-29T14:30:00Z", OutOfRange),
            ("2026-04-31T00:00:00Z", OutOfRange),
            ("2026-03-02T24:00:00Z", OutOfRange),
            ("2026-03-02T14:60:00Z", OutOfRange),
            ("0000-01-01T00:00:00Z", OutOfRange),
            ("9999-12-31T23:59:59Z", OutOfRange),
            ("", Shape(INSTANT_SHAPE)),
            ("now", Shape(INSTANT_SHAPE)),
            ("２０２6-03-02T14:30:00Z", Shape(INSTANT_SHAPE)),
        ] {
            assert_eq!(parse_instant(s), Err(want), "{s}");
        }
    }

    #[test]
    fn leap_day_parses_in_leap_years_only() {
        assert_eq!(
            format_utc(parse_instant("2028-02-29T12:00:00Z").unwrap()),
            "2028-02-29T12:00:00.000Z"
        );
        assert!(parse_instant("2000-02-29T12:00:00Z").is_ok());
        assert_eq!(
            parse_instant("2100-02-29T12:00:00Z"),
            Err(TimeFormatError::OutOfRange)
        );
    }

    #[test]
    fn emitted_format_is_utc_with_milliseconds() {
        assert_eq!(
            format_utc(utc("2026-03-02T14:30:00Z")),
            "2026-03-02T14:30:00.000Z"
        );
        // Sub-millisecond digits are truncated, never rounded up into the next second.
        assert_eq!(
            format_utc(utc("2026-03-02T14:30:59.999999Z")),
            "2026-03-02T14:30:59.999Z"
        );
        assert_eq!(
            format_utc(utc("0001-01-01T00:00:00Z")),
            "0001-01-01T00:00:00.000Z"
        );
        let paris = parse_instant("2026-07-01T09:00:00.250+02:00").unwrap();
        assert_eq!(format_utc(paris), "2026-07-01T07:00:00.250Z");
        // Emitted values parse back to themselves.
        assert_eq!(parse_instant(&format_utc(paris)), Ok(paris));
    }

    /// The digit writer against jiff's own formatting (`{:.3}` truncates to milliseconds):
    /// year, month and leap-day boundaries, the ends of the wire range, and a pseudo-random
    /// sweep over it; local times in zones east and west of UTC too.
    #[test]
    fn written_instants_match_jiff() {
        let mut instants: Vec<Timestamp> = [
            "0001-01-01T00:00:00Z",
            "0001-12-31T23:59:59.999Z",
            "0999-12-31T23:59:59.999999999Z",
            "1000-01-01T00:00:00Z",
            "1900-02-28T23:59:59.999Z",
            "1900-03-01T00:00:00Z",
            "1969-12-31T23:59:59.999Z",
            "1970-01-01T00:00:00Z",
            "1999-12-31T23:59:59.999Z",
            "2000-02-29T12:34:56.789Z",
            "2000-12-31T23:59:59.999Z",
            "2024-02-29T00:00:00Z",
            "2025-12-31T23:59:59.999Z",
            "2026-01-01T00:00:00.001Z",
            "2027-03-01T00:00:00Z",
            "2028-02-29T23:59:59.999Z",
            "2100-02-28T23:59:59.999Z",
            "2100-03-01T00:00:00Z",
            "9999-12-30T21:59:59.999Z",
        ]
        .iter()
        .map(|s| utc(s))
        .chain([WIRE_MAX])
        .collect();
        // Every month start and end of two years, one a leap year.
        for year in [2027, 2028] {
            for month in 1..=12 {
                let first = Date::new(year, month, 1).unwrap();
                let start = TimeZone::UTC.to_timestamp(first.at(0, 0, 0, 0)).unwrap();
                instants.push(start);
                instants.push(start - SignedDuration::from_nanos(1));
            }
        }
        // A fixed pseudo-random sweep (LCG) over the wire range, nanoseconds included.
        let (lo, hi) = (WIRE_MIN.as_second(), WIRE_MAX.as_second());
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let secs = lo + (x >> 11) as i64 % (hi - lo);
            let nanos = (x % 1_000_000_000) as i32;
            instants.push(Timestamp::new(secs, nanos).unwrap());
        }
        let zones = [
            TimeZone::UTC,
            time_zone("Europe/Paris").unwrap(),
            time_zone("America/New_York").unwrap(),
            time_zone("Pacific/Kiritimati").unwrap(),
        ];
        let mut buf = String::new();
        for ts in instants {
            assert_eq!(format_utc(ts), format!("{ts:.3}"), "{ts}");
            for tz in &zones {
                let dt = tz.to_datetime(ts);
                assert_eq!(format_local(dt), format!("{dt:.3}"), "{ts} in {tz:?}");
            }
            // Appending keeps what the buffer held.
            buf.clear();
            buf.push('x');
            write_utc(&mut buf, ts);
            assert_eq!(buf[1..], format_utc(ts));
        }
        // West of UTC at the start of the wire range the local year is 0000 (core::fmt's form).
        let ny = time_zone("America/New_York").unwrap();
        assert_eq!(
            format_local(ny.to_datetime(WIRE_MIN)),
            "0000-12-31T19:03:58.000"
        );
    }

    #[test]
    fn local_times_without_zone() {
        let dt = parse_local("2015-03-17T09:15:00.000").unwrap();
        assert_eq!(format_local(dt), "2015-03-17T09:15:00.000");
        assert_eq!(
            format_local(parse_local("2015-03-17T09:15:07").unwrap()),
            "2015-03-17T09:15:07.000"
        );
        assert_eq!(
            parse_local("2015-03-17T09:15:00Z"),
            Err(TimeFormatError::UnexpectedZone)
        );
        assert_eq!(
            parse_local("2015-03-17T09:15:00+01:00"),
            Err(TimeFormatError::UnexpectedZone)
        );
        assert_eq!(
            parse_local("2015-03-17"),
            Err(TimeFormatError::Shape(LOCAL_SHAPE))
        );
        assert_eq!(
            parse_local("2015-03-17T09:15:00 x"),
            Err(TimeFormatError::Shape(LOCAL_SHAPE))
        );
        assert_eq!(
            parse_local("2015-02-29T09:15:00"),
            Err(TimeFormatError::OutOfRange)
        );
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2028-02-29"), Some(Date::constant(2028, 2, 29)));
        for bad in [
            "2027-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026/01/01",
            "",
            "2026-01-01T",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn epoch_milliseconds() {
        let ts = utc("2026-03-02T14:30:00.123Z");
        assert_eq!(to_epoch_ms(ts), 1_772_461_800_123);
        assert_eq!(parse_epoch_ms("1772461800123"), Ok(ts));
        assert_eq!(from_epoch_ms(0), Ok(Timestamp::UNIX_EPOCH));
        assert_eq!(
            format_utc(parse_epoch_ms("0").unwrap()),
            "1970-01-01T00:00:00.000Z"
        );
        for bad in ["", "-", "12a", "1.5", "+5", "99999999999999999999"] {
            assert!(parse_epoch_ms(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_epoch_ms("253402300800000"),
            Err(TimeFormatError::OutOfRange)
        );
    }

    #[test]
    fn time_zones_come_from_the_bundled_database() {
        let paris = time_zone("europe/paris").unwrap();
        assert_eq!(zone_name(&paris), "Europe/Paris");
        assert_eq!(zone_name(&time_zone("UTC").unwrap()), "UTC");
        assert!(time_zone("America/New_York").is_some());
        assert!(time_zone("").is_none());
        assert!(time_zone("Mars/Olympus_Mons").is_none());
        assert!(time_zone("../../etc/passwd").is_none());
    }

    #[test]
    fn calendar_days_across_daylight_saving() {
        let paris = time_zone("Europe/Paris").unwrap();
        // 2026-03-29 has 23 hours in Paris, 2026-10-25 has 25.
        let before = utc("2026-03-28T11:00:00Z");
        assert_eq!(add_days(before, 1, &paris), utc("2026-03-29T10:00:00Z"));
        let autumn = utc("2026-10-24T10:00:00Z");
        assert_eq!(add_days(autumn, 1, &paris), utc("2026-10-25T11:00:00Z"));
        assert_eq!(
            add_days(autumn, 1, &TimeZone::UTC),
            utc("2026-10-25T10:00:00Z")
        );
        assert_eq!(add_days(Timestamp::MAX, 1, &paris), Timestamp::MAX);
    }

    #[test]
    fn range_cap_is_31_days() {
        let start = utc("2026-03-01T00:00:00Z");
        assert_eq!(
            cap_range(start, utc("2026-05-01T00:00:00Z")),
            utc("2026-04-01T00:00:00Z")
        );
        assert_eq!(
            cap_range(start, utc("2026-03-05T00:00:00Z")),
            utc("2026-03-05T00:00:00Z")
        );
        assert_eq!(cap_range(Timestamp::MAX, Timestamp::MAX), Timestamp::MAX);
    }

    #[test]
    fn future_limit_forms() {
        let now = utc("2026-01-31T10:00:00Z");
        for (s, latest) in [
            ("1y", "2027-01-31T10:00:00Z"),
            ("1M", "2026-02-28T10:00:00Z"),
            ("1w", "2026-02-07T10:00:00Z"),
            ("1d", "2026-02-01T10:00:00Z"),
            ("1h", "2026-01-31T11:00:00Z"),
            ("1m", "2026-01-31T10:01:00Z"),
            ("2w", "2026-02-14T10:00:00Z"),
            ("90d", "2026-05-01T10:00:00Z"),
            (" 3M ", "2026-04-30T10:00:00Z"),
        ] {
            let limit = FutureLimit::parse(s).unwrap();
            assert_eq!(limit.latest(now), utc(latest), "{s}");
        }
        assert_eq!(
            FutureLimit::default().latest(now),
            utc("2026-02-28T10:00:00Z")
        );
        assert_eq!(FutureLimit::parse("1M").unwrap().to_string(), "1M");
        assert_eq!(FutureLimit::parse("12m").unwrap().to_string(), "12m");
        // Leap year: one month after Jan 31 is Feb 29.
        let leap = utc("2028-01-31T00:00:00Z");
        assert_eq!(
            FutureLimit::DEFAULT.latest(leap),
            utc("2028-02-29T00:00:00Z")
        );
        // Absurd but valid counts saturate instead of failing.
        let far = FutureLimit::parse("99999y").unwrap();
        assert_eq!(far.latest(now), Timestamp::MAX);
    }

    #[test]
    fn future_limit_errors_name_the_option() {
        for bad in [
            "", "M", "0M", "1", "1s", "1Y", "1D", "-1d", "1.5d", "100000d", "1 d", "dd",
        ] {
            let err = FutureLimit::parse(bad).unwrap_err();
            assert_eq!(err.option, FUTURE_LIMIT_OPTION, "{bad}");
            assert!(err.to_string().starts_with("_reject_future_desired_time: "));
        }
    }
}
