//! Assertions on replies, small JSON helpers, and checks that several test binaries share.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::gateway::Gateway;
use super::http::{delete, Resp};

/// Assert an error reply: the status, `application/json`, and a body
/// `{"exception": <string>, "message": <string>, "request_id": <the X-Request-Id header>}`.
/// Returns the body.
pub fn assert_error(resp: &Resp, status: u16) -> Value {
    assert_eq!(
        resp.status,
        status,
        "expected error status {status}, got {} with body {:?}",
        resp.status,
        resp.text()
    );
    assert!(
        resp.content_type().starts_with("application/json"),
        "error reply ({status}) is not application/json but {:?}: {:?}",
        resp.header("content-type"),
        resp.text()
    );
    let v = resp.json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {v}"));
    let exc = obj.get("exception").and_then(Value::as_str);
    assert!(
        exc.is_some_and(|s| !s.is_empty()),
        "error body lacks a string \"exception\": {v}"
    );
    assert!(
        obj.get("message").is_some_and(Value::is_string),
        "error body lacks a string \"message\": {v}"
    );
    let id = obj.get("request_id").and_then(Value::as_str);
    assert!(
        id.is_some_and(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())),
        "error body lacks a \"request_id\" of 16 hex digits: {v}"
    );
    assert_eq!(
        id,
        resp.header("x-request-id"),
        "the body's request_id is not the X-Request-Id header: {v}"
    );
    v
}

/// Assert a 200 JSON reply and return the body.
pub fn ok_json(resp: &Resp) -> Value {
    assert_eq!(
        resp.status,
        200,
        "expected 200, got {} with body {:?}",
        resp.status,
        resp.text()
    );
    assert!(
        resp.content_type().starts_with("application/json"),
        "200 reply is not application/json but {:?}: {:?}",
        resp.header("content-type"),
        resp.text()
    );
    resp.json()
}

/// Is `s` a UUID of version 4?
pub fn is_uuid_v4(s: &str) -> bool {
    uuid::Uuid::parse_str(s)
        .map(|u| u.get_version_num() == 4)
        .unwrap_or(false)
}

/// A string field of a JSON object; panics if missing.
pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string field {key:?} in {v}"))
}

/// The keys of a JSON object.
pub fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}

/// Calls `call(i)` for `i` in `0..tries` until an answer is not a 200: the JSON of the 200s
/// before it, and that answer (`None` when all were 200). For limits that refuse the n-th call.
pub fn until_refused(
    tries: usize,
    mut call: impl FnMut(usize) -> Resp,
) -> (Vec<Value>, Option<Resp>) {
    let mut ok = Vec::new();
    for i in 0..tries {
        let r = call(i);
        if r.status != 200 {
            return (ok, Some(r));
        }
        ok.push(ok_json(&r));
    }
    (ok, None)
}

/// Count occurrences.
pub fn tally<I: IntoIterator<Item = String>>(items: I) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

/// `gms.limits.reservations_per_phone: 2` at work, over one gateway or several sharing a
/// store (each create goes to the next node): a third live reservation for a phone in a group
/// is 429 JSON and creates nothing; another phone, or another group, is not held back; a
/// place frees when a service is deleted, when a call matches, and when a reservation expires.
pub fn check_reservations_per_phone(gws: &[Gateway]) {
    let mut turn = 0;
    let mut node = || {
        turn += 1;
        &gws[turn % gws.len()]
    };
    let coded = |phone: &'static str, ttl: &'static str| {
        vec![
            ("_phone_number", phone),
            ("_provide_code", "true"),
            ("_ttl", ttl),
        ]
    };
    let a = coded("5550001", "60");
    let first = ok_json(&node().create("request-interaction", &a));
    let second = ok_json(&node().create("request-interaction", &a));
    let refused = node().create("request-interaction", &a);
    let e = assert_error(&refused, 429);
    assert_eq!(e["exception"], "TooManyRequestsException");
    assert!(
        e["message"].as_str().unwrap_or("").contains("5550001"),
        "{e}"
    );
    assert!(refused.header("retry-after").is_none());
    ok_json(&node().create("request-interaction", &coded("5550002", "60")));
    ok_json(&node().create(
        "request-interaction",
        &[("_phone_number", "5550001"), ("_resource_group", "SOLO")],
    ));

    // Deleting a service frees its place.
    let id = str_field(&first, "_id").to_string();
    ok_json(&delete(&node().service_url(&id), &[]));
    ok_json(&node().create("request-interaction", &a));
    assert_error(&node().create("request-interaction", &a), 429);

    // So does the call that matches a reservation.
    let number = str_field(&second, "_access_number").to_string();
    let code = str_field(&second, "_access_code").to_string();
    ok_json(&node().match_call(&[("_access_number", &number), ("_access_code", &code)]));
    ok_json(&node().create("request-interaction", &a));
    assert_error(&node().create("request-interaction", &a), 429);

    // And expiry: two reservations of one second, then the place is free again.
    let short = coded("5550003", "1");
    ok_json(&node().create("request-interaction", &short));
    ok_json(&node().create("request-interaction", &short));
    assert_error(&node().create("request-interaction", &short), 429);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut freed = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let r = node().create("request-interaction", &short);
        if r.status == 200 {
            freed = true;
            break;
        }
        assert_error(&r, 429);
        if Instant::now() > deadline {
            break;
        }
    }
    assert!(freed, "no place freed 5 s after one-second reservations");
}
