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

#[cfg(test)]
mod tests;
mod write;

pub use write::{format_local, format_utc, write_local, write_utc};

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
