//! Availability V1 and V2 with office hours and capacity in a zone with daylight saving time,
//! and the office-hours and capacity built-ins' own GETs, black-box (`gms-callback.md` §6.2,
//! §10).

mod common;

use common::callback::*;
use common::*;
use gms_gateway::callback::time::time_zone;
use jiff::civil::{Date, Weekday};
use jiff::Timestamp;
use serde_json::{json, Value};

const ZONE: &str = "Europe/Paris";

/// Office hours 09:00-11:00 every day, 2 callbacks per hourly bucket from 09:00 to 11:00, in
/// Paris; bookings up to two years ahead.
fn services() -> String {
    let capacity: String = (1..=7)
        .map(|d| format!("  _capacity_{d}: '{{\"{d}\":{{\"0900\":2,\"1000\":2}}}}'\n"))
        .collect();
    format!(
        "business-hours:\n  _type: builtin\n  _service: office-hours\n  _timezone: {ZONE}\n  _bh_regular1: \"Mon-Sun 09:00-11:00\"\n\
         capacity-main:\n  _type: builtin\n  _service: capacity\n  _timezone: {ZONE}\n  _capacity: \"[Mon, Tue, Wed, Thu, Fri, Sat, Sun]\"\n{capacity}\
         {OFFICE_24X7_NAMED}{}",
        callback_service(
            CB,
            "_business_hours_service: business-hours\n_capacity_service: capacity-main\n_request_time_bucket: 60\n_reject_future_desired_time: 2y\n_enable_in_queue_checking: \"false\"\n"
        )
    )
}

/// A 24x7 office under another name.
const OFFICE_24X7_NAMED: &str = "always-open:\n  _type: builtin\n  _service: office-hours\n  _timezone: Europe/Paris\n  _bh_regular1: \"Mon-Sun 00:00-24:00\"\n";

/// The next last Sunday of October (Paris leaves summer time) at least three days ahead.
fn autumn_change() -> Date {
    let zone = time_zone(ZONE).unwrap();
    let today = Timestamp::now().to_zoned_datetime(zone).date();
    (today.year()..=today.year() + 1)
        .map(|y| {
            let last = Date::new(y, 10, 31).unwrap();
            let back =
                last.weekday().to_monday_zero_offset() - Weekday::Sunday.to_monday_zero_offset();
            last - jiff::Span::new().days(i64::from((back + 7) % 7))
        })
        .find(|d| *d > today + jiff::Span::new().days(3))
        .unwrap()
}

/// Local `hour:00` of `date` in Paris, as an instant on the wire.
fn paris(date: Date, hour: i8) -> String {
    iso(time_zone(ZONE)
        .unwrap()
        .to_timestamp(date.at(hour, 0, 0, 0))
        .unwrap())
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

#[test]
fn availability_follows_office_hours_capacity_and_the_clock_change() {
    let lab = CallbackLab::start(&services());
    let sunday = autumn_change();
    let saturday = sunday - jiff::Span::new().days(1);
    let range = format!("?start={}&end={}", paris(saturday, 0), paris(sunday, 23));
    let v = ok_json(&lab.query(&format!("/{CB}/availability{range}")));
    // 09:00 and 10:00 local: UTC+2 on Saturday, UTC+1 from Sunday 03:00.
    assert_eq!(
        v,
        json!({
            format!("{saturday}T07:00:00.000Z"): 2, format!("{saturday}T08:00:00.000Z"): 2,
            format!("{sunday}T08:00:00.000Z"): 2, format!("{sunday}T09:00:00.000Z"): 2
        })
    );
    // A booking takes its bucket's room; a full bucket is left out of V1.
    for n in ["5571001", "5571002"] {
        lab.create_ok(
            CB,
            &[
                ("_customer_number", n),
                ("_desired_time", &paris(sunday, 9)),
            ],
        );
    }
    lab.create_ok(
        CB,
        &[
            ("_customer_number", "5571003"),
            ("_desired_time", &paris(sunday, 10)),
        ],
    );
    let v = ok_json(&lab.query(&format!("/{CB}/availability{range}")));
    assert_eq!(
        keys(&v),
        [
            format!("{saturday}T07:00:00.000Z"),
            format!("{saturday}T08:00:00.000Z"),
            format!("{sunday}T09:00:00.000Z")
        ]
    );
    assert_eq!(v[format!("{sunday}T09:00:00.000Z")], 1);
    // A time outside office hours or in a full bucket is refused with these slots.
    let r = lab.create(
        CB,
        &[
            ("_customer_number", "5571004"),
            ("_desired_time", &paris(sunday, 9)),
        ],
    );
    let e = assert_callback_error(&r, 400, "CallbackExceptionAvailability");
    let proposed = keys(&e["availability"]);
    assert_eq!(proposed.len(), 5, "{e}");
    assert_eq!(proposed[0], format!("{sunday}T09:00:00.000Z"), "{e}");
    assert_eq!(e["availability"][&proposed[0]], 1, "{e}");
    let r = lab.create(
        CB,
        &[
            ("_customer_number", "5571004"),
            ("_desired_time", &paris(saturday, 12)),
        ],
    );
    assert_callback_error(&r, 400, "CallbackExceptionAvailability");

    // V2, at /genesys/2: every slot with report-busy, local times in the zone asked for.
    let v2 = |q: &str| {
        ok_json(&get(
            &lab.gw
                .url(&format!("/genesys/2/service/callback/{CB}/availability{q}")),
            &[],
        ))
    };
    let v = v2(&format!(
        "{range}&report-busy=true&timezone=America/New_York"
    ));
    assert_eq!(
        (&v["durationMin"], &v["timezone"]),
        (&json!(60), &json!("America/New_York"))
    );
    let slots = v["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 4, "{v}");
    assert_eq!(
        slots[2],
        json!({"utcTime": format!("{sunday}T08:00:00.000Z"), "localTime": format!("{sunday}T04:00:00.000"), "capacity": 0, "total": 2})
    );
    let start = time_zone(ZONE)
        .unwrap()
        .to_timestamp(sunday.at(0, 0, 0, 0))
        .unwrap();
    let v = v2(&format!(
        "?start-ms={}&max-time-slots=1",
        start.as_millisecond()
    ));
    assert_eq!(
        v["slots"],
        json!([{"utcTime": format!("{sunday}T09:00:00.000Z"), "localTime": format!("{sunday}T10:00:00.000"), "capacity": 1, "total": 2}])
    );
    assert_eq!(v["timezone"], ZONE);

    // Bad parameters.
    for q in [
        format!("?start={}&end={}", paris(sunday, 9), paris(saturday, 9)),
        "?start=yesterday".to_string(),
        "?number-of-days=40".to_string(),
        "?max-time-slots=0".to_string(),
    ] {
        let r = lab.query(&format!("/{CB}/availability{q}"));
        assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
    }
    let r = get(
        &lab.gw.url(&format!(
            "/genesys/2/service/callback/{CB}/availability?start-ms=1&start={}",
            paris(sunday, 9)
        )),
        &[],
    );
    assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");
    assert_callback_error(
        &lab.query("/nope/availability"),
        404,
        "CallbackExceptionNotFound",
    );
    // V1 answers with no parameters at all (a day from now).
    let v = ok_json(&lab.query(&format!("/{CB}/availability")));
    assert!(
        v.as_object().unwrap().len() <= 2,
        "at most today's two open hours: {v}"
    );
}

#[test]
fn office_hours_and_capacity_answer_their_own_gets() {
    let lab = CallbackLab::start(&services());
    let sunday = autumn_change();
    let saturday = sunday - jiff::Span::new().days(1);
    let hours = |q: &str| {
        get(
            &lab.gw.url(&format!("/genesys/1/service/business-hours{q}")),
            &[],
        )
    };
    let v = ok_json(&hours(&format!(
        "?start={}&number-of-days=2",
        paris(saturday, 0)
    )));
    assert_eq!(
        v,
        json!({"error": null, "timezone": ZONE, "periods": [
            {"start": format!("{saturday}T07:00:00.000Z"), "end": format!("{saturday}T09:00:00.000Z")},
            {"start": format!("{sunday}T08:00:00.000Z"), "end": format!("{sunday}T10:00:00.000Z")}
        ]})
    );
    // No parameters: is it open now? An office open around the clock is.
    let v = ok_json(&get(&lab.gw.url("/GMS-web/gms/1/service/always-open"), &[]));
    assert_eq!(v["periods"].as_array().unwrap().len(), 1, "{v}");
    let r = hours("?start=never");
    assert_callback_error(&r, 400, "CallbackExceptionInvalidParameter");

    let capacity = |q: &str| {
        get(
            &lab.gw.url(&format!("/genesys/1/service/capacity-main{q}")),
            &[],
        )
    };
    let v = ok_json(&capacity(&format!(
        "?start={sunday}T08:00:00.000&end={sunday}T10:30:00.000"
    )));
    assert_eq!(
        v,
        json!({"timezone": ZONE, "periods": [
            {"start": format!("{sunday}T08:00:00.000"), "end": format!("{sunday}T09:00:00.000"), "capacity": 0},
            {"start": format!("{sunday}T09:00:00.000"), "end": format!("{sunday}T10:00:00.000"), "capacity": 2},
            {"start": format!("{sunday}T10:00:00.000"), "end": format!("{sunday}T11:00:00.000"), "capacity": 2}
        ]})
    );
    assert_callback_error(
        &capacity("?end=2026-01-01T00:00:00.000"),
        400,
        "CallbackExceptionInvalidParameter",
    );
    assert_callback_error(
        &capacity("?start=2026-01-01T00:00:00Z&end=2026-01-02T00:00:00Z"),
        400,
        "CallbackExceptionInvalidParameter",
    );

    // Other names have no office hours or capacity; these two take no POST.
    assert_error(
        &get(&lab.gw.url(&format!("/genesys/1/service/{CB}")), &[]),
        404,
    );
    assert_error(&lab.gw.create("capacity-main", &[]), 400);
}

#[test]
fn availability_without_office_hours_or_capacity() {
    let gw_services = callback_service(CB, "_max_request_by_time_bucket: 3\n");
    let sim = OrsSim::start_args(1, &["--callback", r#"{"auto":false}"#]);
    let gw = Gateway::start(&callback_gms(&sim, &gw_services, ""));
    let v = ok_json(&get(
        &gw.url(&format!(
            "/genesys/1/service/callback/{CB}/availability?max-time-slots=3"
        )),
        &[],
    ));
    let slots = v.as_object().unwrap();
    assert_eq!(slots.len(), 3, "{v}");
    assert!(slots.values().all(|n| n == 3), "{v}");
    // 5-minute buckets in UTC from the next boundary.
    let first = parse_iso(slots.keys().next().unwrap());
    assert_eq!(first.as_second() % 300, 0);
    assert!(first >= Timestamp::now() - jiff::SignedDuration::from_secs(1));
}
