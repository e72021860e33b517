//! The syntax of the `office-hours` options (contract §10.1, GMS: research §2): each value
//! parsed into the model of [`super`], each error naming its option.

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;

use super::{weekday_index, Added, DaySpec, Hours, OfficeHours, Regular, DAY_MINUTES};
use crate::callback::error::OptionError;
use crate::callback::time::{parse_date, time_zone};

impl OfficeHours {
    /// Parses the options of an `office-hours` service as (name, value) pairs. Options this
    /// module does not know (`_type`, `_ttl`, ...) are left to the caller; `_use_alternative<n>`
    /// and `_include_*` are refused (not supported in v1).
    pub fn from_options<'a>(
        options: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<OfficeHours, OptionError> {
        let mut tz = None;
        let mut hours = OfficeHours {
            tz: TimeZone::UTC,
            regular: Vec::new(),
            added: Vec::new(),
            holidays: Vec::new(),
            effective: Vec::new(),
        };
        for (name, value) in options {
            let value = value.trim();
            let err = |message: String| OptionError::new(name, message);
            if name == "_timezone" {
                tz = Some(time_zone(value).ok_or_else(|| {
                    err(format!(
                        "'{value}' is not an IANA time zone (e.g. Europe/Paris)"
                    ))
                })?);
            } else if numbered(name, "_bh_regular")? {
                hours.regular.push(parse_regular(value).map_err(err)?);
            } else if numbered(name, "_bh_add")? {
                hours.added.push(parse_added(value).map_err(err)?);
            } else if numbered(name, "_holiday")? {
                let day = parse_day_spec(value)
                    .ok_or_else(|| err(format!("'{value}' is not YYYY-MM-DD or MM-DD")))?;
                hours.holidays.push(day);
            } else if numbered(name, "_effective_dates")? {
                hours.effective.push(parse_effective(value).map_err(err)?);
            } else if name.starts_with("_use_alternative") || name.starts_with("_include_") {
                return Err(err("not supported by this gateway (v1)".to_string()));
            }
        }
        hours.tz =
            tz.ok_or_else(|| OptionError::new("_timezone", "required (an IANA time zone)"))?;
        Ok(hours)
    }
}

/// Whether `name` is `prefix` followed by digits (`_bh_regular2`); an error when it starts
/// with `prefix` but goes on otherwise (`_holidays`), so a typo is not silently ignored.
fn numbered(name: &str, prefix: &str) -> Result<bool, OptionError> {
    match name.strip_prefix(prefix) {
        None => Ok(false),
        Some(rest) if rest.bytes().all(|b| b.is_ascii_digit()) => Ok(true),
        Some(_) => Err(OptionError::new(
            name,
            format!("unknown option; expected {prefix}<n> with n a number"),
        )),
    }
}

/// `Mon-Fri 09:00-17:00` (or a single day, `Sat 10:00-12:00`).
fn parse_regular(value: &str) -> Result<Regular, String> {
    let shape = || format!("'{value}' is not like 'Mon-Fri 09:00-17:00'");
    let (days_text, hours_text) = value.split_once(char::is_whitespace).ok_or_else(shape)?;
    let (first, last) = match days_text.split_once('-') {
        Some((a, b)) => (parse_weekday(a), parse_weekday(b)),
        None => (parse_weekday(days_text), parse_weekday(days_text)),
    };
    let (first, last) = first.zip(last).ok_or_else(|| {
        format!("'{days_text}' is not a day or a day range of Mon, Tue, Wed, Thu, Fri, Sat, Sun")
    })?;
    // Day ranges wrap the week: Sat-Mon is Saturday, Sunday and Monday.
    let mut days = [false; 7];
    let mut day = first;
    loop {
        days[weekday_index(day)] = true;
        if day == last {
            break;
        }
        day = day.next();
    }
    Ok(Regular {
        days,
        hours: parse_hours(hours_text)?,
    })
}

/// `YYYY-MM-DD HH:mm-HH:mm` or, every year, `MM-DD HH:mm-HH:mm`.
fn parse_added(value: &str) -> Result<Added, String> {
    let shape = || format!("'{value}' is not like 'YYYY-MM-DD 09:00-12:00' or 'MM-DD 09:00-12:00'");
    let (day_text, hours_text) = value.split_once(char::is_whitespace).ok_or_else(shape)?;
    let day = parse_day_spec(day_text).ok_or_else(shape)?;
    Ok(Added {
        day,
        hours: parse_hours(hours_text)?,
    })
}

/// `YYYY-MM-DD` or `YYYY-MM-DD to YYYY-MM-DD` (both days included).
fn parse_effective(value: &str) -> Result<(Date, Date), String> {
    let shape = || format!("'{value}' is not like 'YYYY-MM-DD' or 'YYYY-MM-DD to YYYY-MM-DD'");
    let words: Vec<&str> = value.split_whitespace().collect();
    let (from, to) = match words.as_slice() {
        [one] => (parse_date(one), parse_date(one)),
        [a, to, b] if to.eq_ignore_ascii_case("to") => (parse_date(a), parse_date(b)),
        _ => return Err(shape()),
    };
    let (from, to) = from.zip(to).ok_or_else(shape)?;
    if from > to {
        return Err(format!("'{value}' ends before it starts"));
    }
    Ok((from, to))
}

/// `HH:mm-HH:mm` (one-digit hours and spaces around the dash allowed); `24:00` only as an end.
fn parse_hours(text: &str) -> Result<Hours, String> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let shape = || format!("'{}' is not like '09:00-17:00'", text.trim());
    let (a, b) = compact.split_once('-').ok_or_else(shape)?;
    let start = parse_clock(a).ok_or_else(shape)?;
    let end = parse_clock(b).ok_or_else(shape)?;
    if start == DAY_MINUTES {
        return Err("24:00 is allowed only as an end".to_string());
    }
    let end = if end == 0 { DAY_MINUTES } else { end };
    if start == end {
        return Err(format!("'{}' is an empty range", text.trim()));
    }
    Ok(Hours { start, end })
}

/// `H:mm` or `HH:mm`, 00:00 to 24:00, as minutes after midnight.
fn parse_clock(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !(1..=2).contains(&h.len()) || m.len() != 2 || !all_digits(h) || !all_digits(m) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(DAY_MINUTES),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    const NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let i = NAMES.iter().position(|n| n.eq_ignore_ascii_case(s))?;
    Weekday::from_monday_zero_offset(i as i8).ok()
}

/// `YYYY-MM-DD` as a date, or `MM-DD` as every year's (Feb 29 only in leap years).
fn parse_day_spec(s: &str) -> Option<DaySpec> {
    match s.len() {
        10 => parse_date(s).map(DaySpec::Date),
        5 => {
            let (month, day) = parse_month_day(s)?;
            // Valid in some year: 2000 is a leap year, so 02-29 passes and 02-30 does not.
            Date::new(2000, month, day).ok()?;
            Some(DaySpec::Yearly { month, day })
        }
        _ => None,
    }
}

fn parse_month_day(s: &str) -> Option<(i8, i8)> {
    let (m, d) = s.split_once('-')?;
    let two = |t: &str| {
        (t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse::<i8>().ok())
            .flatten()
    };
    Some((two(m)?, two(d)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::office_hours::tests::{office, utc};

    fn error(options: &[(&str, &str)]) -> OptionError {
        OfficeHours::from_options(options.iter().copied()).unwrap_err()
    }

    #[test]
    fn regular_forms() {
        for (value, open_at, closed_at) in [
            (
                "Mon-Fri 9:00-17:00",
                "2026-03-02T08:30:00Z",
                "2026-03-02T07:30:00Z",
            ),
            (
                "mon-FRI  09:00 - 17:00",
                "2026-03-02T08:30:00Z",
                "2026-03-02T16:30:00Z",
            ),
            (
                "Mon 09:00-10:00",
                "2026-03-02T08:30:00Z",
                "2026-03-03T08:30:00Z",
            ),
            (
                "Sat-Mon 10:00-11:00",
                "2026-03-08T09:30:00Z",
                "2026-03-04T09:30:00Z",
            ),
            (
                "Mon-Sun 00:00-24:00",
                "2026-03-04T23:59:00Z",
                "2027-01-01T00:00:00Z",
            ),
        ] {
            let o = office(&[("_timezone", "Europe/Paris"), ("_bh_regular1", value)]);
            assert!(o.is_open(utc(open_at)), "{value} open at {open_at}");
            if value != "Mon-Sun 00:00-24:00" {
                assert!(!o.is_open(utc(closed_at)), "{value} closed at {closed_at}");
            }
        }
    }

    #[test]
    fn other_options_are_left_alone() {
        let o = office(&[
            ("_type", "builtin"),
            ("_service", "office-hours"),
            ("_ttl", "30"),
            ("_timezone", "UTC"),
        ]);
        assert!(!o.is_open(utc("2026-03-02T10:00:00Z")));
        assert_eq!(o.timezone(), &TimeZone::UTC);
    }

    #[test]
    fn syntax_errors_name_their_option() {
        let tz = ("_timezone", "Europe/Paris");
        for (name, value) in [
            ("_bh_regular1", "Mon-Fri"),
            ("_bh_regular1", "Mon-Fri 09:00"),
            ("_bh_regular1", "Mon-Fri 09:00-"),
            ("_bh_regular1", "Mon-Fry 09:00-17:00"),
            ("_bh_regular1", "Monday 09:00-17:00"),
            ("_bh_regular1", "Mon-Fri 9-17"),
            ("_bh_regular1", "Mon-Fri 09:00-17:60"),
            ("_bh_regular1", "Mon-Fri 25:00-26:00"),
            ("_bh_regular1", "Mon-Fri 24:00-08:00"),
            ("_bh_regular1", "Mon-Fri 24:30-08:00"),
            ("_bh_regular1", "Mon-Fri 09:00-09:00"),
            ("_bh_regular1", "Mon-Fri 009:00-17:00"),
            ("_bh_regular1", "Mon-Fri 09:00-17:00,18:00-19:00"),
            ("_bh_regular1", ""),
            ("_bh_add2", "2026-13-01 09:00-12:00"),
            ("_bh_add2", "12-32 09:00-12:00"),
            ("_bh_add2", "2026-12-24"),
            ("_bh_add2", "24-12 09:00-12:00"),
            ("_bh_add2", "Mon 09:00-12:00"),
            ("_holiday3", "2026-02-30"),
            ("_holiday3", "2027-02-29"),
            ("_holiday3", "2026-1-01"),
            ("_holiday3", "02-30"),
            ("_holiday3", "tomorrow"),
            ("_holiday3", "2026-12-25 10:00-11:00"),
            ("_effective_dates1", "2026-03-10 to 2026-03-01"),
            ("_effective_dates1", "2026-03-01 - 2026-03-10"),
            ("_effective_dates1", "03-01 to 03-10"),
            ("_effective_dates1", "2026-03-01 to"),
            ("_holidays", "2026-12-25"),
            ("_bh_regular_1", "Mon-Fri 09:00-17:00"),
            ("_use_alternative1", "true"),
            ("_include_hours", "other"),
        ] {
            let err = error(&[tz, (name, value)]);
            assert_eq!(err.option, name, "{name}={value}: {err}");
            assert!(!err.message.is_empty());
        }
        assert_eq!(
            error(&[("_bh_regular1", "Mon-Fri 09:00-17:00")]).option,
            "_timezone"
        );
        assert_eq!(error(&[("_timezone", "CET+1")]).option, "_timezone");
        assert_eq!(error(&[("_timezone", "")]).option, "_timezone");
        let err = error(&[tz, ("_bh_regular7", "Mon-Fri 09:00-09:00")]);
        assert_eq!(
            err.to_string(),
            "_bh_regular7: '09:00-09:00' is an empty range"
        );
    }
}
