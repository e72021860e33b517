//! The wire formats' parsers and writers, against jiff's own reading and formatting.

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
