//! GMS wire compatibility (issue 17; `gms-api.md` 4.2, 5.1-5.3, `gms-callback.md` 11): every
//! behaviour the issue adds, black-box, on the store `GMS_TEST_STORE` names. The client
//! request shapes themselves are replayed in `tests/gms_clients.rs`.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::gms_clients::*;
use common::*;
use gms_gateway::callback::time::{parse_instant, to_epoch_ms};
use serde_json::{json, Value};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `STD_GMS` with more `gms` keys first.
fn std_with(extra: &str) -> Gateway {
    Gateway::start(&format!("{extra}\n{STD_GMS}"))
}

/// A coded reservation on SOLO (one number: every coded reservation shares it); (id, code).
fn solo_coded(gw: &Gateway) -> (String, String) {
    let v = gw.create_ok(
        "request-interaction",
        &[
            ("_provide_code", "true"),
            ("_resource_group", "SOLO"),
            ("_ttl", "60"),
        ],
    );
    assert_eq!(str_field(&v, "_access_number"), SOLO);
    (
        str_field(&v, "_id").to_string(),
        str_field(&v, "_access_code").to_string(),
    )
}

/// Polls `f` every 200 ms for up to `limit`; the first `Some`.
fn within<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    for _ in 0..1000 {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    None
}

// --- 1. `_expiration_time` ------------------------------------------------------------------

/// `_expiration_time` is `YYYY-MM-DDTHH:MM:SS.mmmZ`, `ttl_s` from when the reply was made;
/// `_expires_in` stays.
fn check_expiry(v: &Value, before_ms: i64, after_ms: i64, ttl_s: i64) {
    let s = str_field(v, "_expiration_time");
    let b = s.as_bytes();
    let shape = b.len() == 24
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b[19] == b'.'
        && b[23] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19, 23].contains(&i) || c.is_ascii_digit());
    assert!(shape, "_expiration_time {s:?} is not ISO 8601 UTC with ms");
    let at = to_epoch_ms(parse_instant(s).expect("an instant"));
    let ttl = ttl_s * 1000;
    assert!(
        (before_ms + ttl - 1000..=after_ms + ttl + 1000).contains(&at),
        "{s} is not {ttl_s} s after the request"
    );
    assert_eq!(v["_expires_in"], ttl_s, "{v}");
}

#[test]
fn reservation_replies_carry_expiration_time() {
    let gw = Gateway::start(STD_GMS);
    let before = now_ms();
    let v = gw.create_ok("request-interaction", &[("_ttl", "120")]);
    check_expiry(&v, before, now_ms(), 120);
    let id = str_field(&v, "_id");
    let before = now_ms();
    let a = gw.create_ok(
        "request-access",
        &[("_id", id), ("_ttl", "45"), ("_provide_code", "true")],
    );
    check_expiry(&a, before, now_ms(), 45);
}

// --- 2. `_phone_number` optional ------------------------------------------------------------

#[test]
fn reservations_without_a_phone_number_and_the_per_phone_limit() {
    let gw = Gateway::start(&two_per_phone(STD_GMS));
    // No parameters at all: the service's options (and defaults) supply the rest.
    let v = gw.create_ok("request-interaction", &[]);
    let id = str_field(&v, "_id").to_string();
    gw.create_ok("request-access", &[("_id", &id)]);
    // Phone-less reservations count against no phone's limit of two.
    for _ in 0..4 {
        gw.create_ok(
            "request-interaction",
            &[("_provide_code", "true"), ("_phone_number", "")],
        );
    }
    // A phone still has its limit.
    let phone = [("_provide_code", "true"), ("_phone_number", "5550001")];
    gw.create_ok("request-interaction", &phone);
    gw.create_ok("request-interaction", &phone);
    assert_error(&gw.create("request-interaction", &phone), 429);
}

// --- 3. match-interaction without `_access_code` ---------------------------------------------

#[test]
fn a_match_without_a_code_takes_the_numbers_only_reservation() {
    // One failed match locks a number: what follows shows which attempts count.
    let gw = std_with("limits: {max_failed_matches: 1}");
    let (a, code_a) = solo_coded(&gw);
    let (b, _) = solo_coded(&gw);
    let number_only = [("_access_number", SOLO)];
    // Two to choose from: 404 that says why, and the number is not locked by it.
    for _ in 0..3 {
        let e = assert_error(&gw.match_call(&number_only), 404);
        assert!(
            e["message"].as_str().unwrap_or("").contains("several"),
            "{e}"
        );
    }
    let m = gw.match_ok(&[("_access_number", SOLO), ("_access_code", &code_a)]);
    assert_eq!(str_field(&m, "_id"), a);
    // One left: it matches without its code.
    let m = gw.match_ok(&number_only);
    assert_eq!(str_field(&m, "_id"), b);
    assert_error(&gw.match_call(&number_only), 404);
}

#[test]
fn require_access_code_restores_the_strict_rule() {
    let gw = Gateway::start(&format!(
        "limits: {{max_failed_matches: 1}}\n{}",
        STD_GMS.replace(
            "match-interaction: {_type: builtin, _service: match-interaction}",
            "match-interaction: {_type: builtin, _service: match-interaction, _require_access_code: \"true\"}",
        )
    ));
    let (_, code) = solo_coded(&gw);
    // Without its code: a failed match like a wrong code, which locks the number (limit 1).
    assert_error(&gw.match_call(&[("_access_number", SOLO)]), 404);
    let locked = gw.match_call(&[("_access_number", SOLO), ("_access_code", &code)]);
    assert_error(&locked, 429);
    assert!(
        locked.header("retry-after").is_some(),
        "{:?}",
        locked.headers
    );
    // An exclusive reservation has no code to require.
    let v = gw.create_ok("request-interaction", &[("_ttl", "60")]);
    let number = str_field(&v, "_access_number");
    let m = gw.match_ok(&[("_access_number", number)]);
    assert_eq!(m["_id"], v["_id"]);
}

#[test]
fn ambiguous_matches_count_against_the_client_address() {
    let gw = std_with("limits: {max_failed_matches: 1000, failed_matches_per_ip: 2}");
    let (_, code) = solo_coded(&gw);
    solo_coded(&gw);
    for _ in 0..2 {
        assert_error(&gw.match_call(&[("_access_number", SOLO)]), 404);
    }
    let r = gw.match_call(&[("_access_number", SOLO), ("_access_code", &code)]);
    assert_error(&r, 429);
}

// --- 4. GET for service-specific requests ---------------------------------------------------

#[test]
fn a_get_request_is_relayed_with_its_query_as_parameters() {
    let sim = OrsSim::start(1);
    let gw = Gateway::start(&with_ors_service(&sim.url(0)));
    let id = str_field(&gw.create_ok(VOICE, &[("color", "red")]), "_id").to_string();
    let r = get(
        &gw.url(&format!(
            "/genesys/1/service/{id}/ask?_q=1&color=blue&size=L"
        )),
        &[],
    );
    let echo = ok_json(&r);
    assert_eq!(echo["params"]["_q"], "1", "{echo}");
    assert!(
        echo["params"].get("color").is_none(),
        "user data sent: {echo}"
    );
    let seen = ors_requests(&sim, "ask");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["method"], "POST");
    // The query's user data went where a POST body's goes: the service's storage.
    let all = ok_json(&get(&gw.service_storage_url(&id, ""), &[]));
    assert_eq!(all, json!({"color": "blue", "size": "L"}));
    // `status` and `update` take GET too.
    ok_json(&get(
        &gw.url(&format!("/genesys/1/service/{id}/status")),
        &[],
    ));
    ok_json(&get(
        &gw.url(&format!("/genesys/1/service/{id}/update?shape=round")),
        &[],
    ));
    assert_eq!(
        get(&gw.service_storage_url(&id, "/shape"), &[]).text(),
        "round"
    );
    // A built-in still takes no requests, whatever the method.
    let b = str_field(&gw.create_ok("request-interaction", &[]), "_id").to_string();
    assert_error(
        &get(&gw.url(&format!("/genesys/1/service/{b}/ask")), &[]),
        400,
    );
}

// --- 5. per-service storage -----------------------------------------------------------------

#[test]
fn per_service_storage_serves_the_services_user_data() {
    let gw = Gateway::start(STD_GMS);
    let owner = [("gms_user", "ann")];
    let v = ok_json(&post_form(
        &gw.service_url("request-interaction"),
        &[("first_name", "Ann"), ("_provide_code", "true")],
        &owner,
    ));
    let id = str_field(&v, "_id").to_string();
    let url = |rest: &str| gw.service_storage_url(&id, rest);

    let all = get(&url(""), &owner);
    assert_eq!(ok_json(&all), json!({"first_name": "Ann"}));
    assert_eq!(all.header("x-content-type-options"), Some("nosniff"));
    assert!(
        all.header("content-security-policy").is_some(),
        "{:?}",
        all.headers
    );

    // A merge (underscore keys too: storage has no service parameters), its reply the data id.
    let (ct, body) = Multipart::new()
        .text("_note", "vip")
        .file("card", "card.png", "image/png", b"\x89PNG-bytes")
        .build();
    let merged = ok_json(&post_raw(&url(""), &ct, &body, &owner));
    let data_id = str_field(&merged, "id").to_string();
    assert!(is_uuid_v4(&data_id), "{merged}");
    let all = ok_json(&get(&url(""), &owner));
    assert_eq!(all["_note"], "vip");
    assert_eq!(all["card"], gw.binary_url(&data_id, "card").as_str());

    let one = get(&url("/first_name"), &owner);
    assert_eq!((one.status, one.text()), (200, "Ann".to_string()));
    assert!(
        one.content_type().starts_with("text/plain"),
        "{:?}",
        one.headers
    );
    assert_eq!(one.header("x-content-type-options"), Some("nosniff"));
    let bin = get(&url("/binary/card"), &owner);
    assert_eq!(bin.body, b"\x89PNG-bytes");
    assert!(bin.content_type().starts_with("image/png"));
    assert!(bin
        .header("content-disposition")
        .is_some_and(|d| d.contains("card.png")));

    assert_eq!(
        ok_json(&delete(&url("/first_name"), &owner)),
        json!({ "id": data_id })
    );
    assert_error(&delete(&url("/first_name"), &owner), 404);
    assert_error(&get(&url("/first_name"), &owner), 404);
    assert_eq!(keys(&ok_json(&get(&url(""), &owner))), ["_note", "card"]);

    // The service's owner rules: someone else, or nobody, gets the 404 of an unknown id.
    for other in [&[("gms_user", "bob")][..], &[]] {
        assert_error(&get(&url(""), other), 404);
        assert_error(&post_form(&url(""), &[("x", "1")], other), 404);
        assert_error(&delete(&url("/_note"), other), 404);
    }
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(&get(&gw.service_storage_url(&unknown, ""), &owner), 404);
    // The Storage API sees the same record.
    assert_eq!(
        ok_json(&get(&gw.storage_url(&data_id), &owner))["_note"],
        "vip"
    );
}

#[test]
fn per_service_storage_outlives_expired_data() {
    let gw = Gateway::start(STD_GMS);
    let v = gw.create_ok(
        "request-interaction",
        &[("_ttl", "1"), ("_service_ttl", "120"), ("color", "red")],
    );
    let id = str_field(&v, "_id").to_string();
    let url = gw.service_storage_url(&id, "");
    // The data lives one second, the service two minutes: unused (a read renews both), its
    // storage empties; then a write starts it afresh.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(ok_json(&get(&url, &[])), json!({}));
    ok_json(&post_form(&url, &[("color", "blue")], &[]));
    assert_eq!(ok_json(&get(&url, &[]))["color"], "blue");
}

// --- 6. options -----------------------------------------------------------------------------

#[test]
fn an_empty_code_length_is_the_default_and_the_prefix_holds_on_request_access() {
    let gw = Gateway::start(&format!(
        "server: {{access_code_prefix: \"7-9\"}}\n{}",
        STD_GMS.replace(
            "request-access: {_type: builtin, _service: request-access}",
            "request-access: {_type: builtin, _service: request-access, _access_code_length: \"\", _provide_code: \"true\", _overwritable_options: _access_code_length}",
        )
    ));
    let v = gw.create_ok("request-interaction", &[]);
    let id = str_field(&v, "_id");
    for _ in 0..5 {
        let a = gw.create_ok("request-access", &[("_id", id)]);
        let code = str_field(&a, "_access_code");
        assert_eq!(code.len(), 4, "{a}");
        assert!("789".contains(&code[..1]), "{a}");
    }
    // A length the prefix leaves no digit in: 400, nothing reserved.
    let e = assert_error(
        &gw.create(
            "request-access",
            &[("_id", id), ("_access_code_length", "1")],
        ),
        400,
    );
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("access_code_prefix"),
        "{e}"
    );
}

#[test]
fn return_pool_health_reports_the_group() {
    let gw = Gateway::start(&STD_GMS.replace(
        "request-interaction: {_type: builtin, _service: request-interaction}",
        "request-interaction: {_type: builtin, _service: request-interaction, _return_pool_health: \"true\"}",
    ));
    for free in ["2", "1", "0"] {
        let v = gw.create_ok("request-interaction", &[("_ttl", "60")]);
        assert_eq!(
            v["_pool_health"],
            json!({"group": "DNIS", "size": "3", "free": free}),
            "{v}"
        );
    }
    // Off by default.
    let v = gw.create_ok("request-inbound-callback", &[("_resource_group", "SOLO")]);
    assert!(v.get("_pool_health").is_none(), "{v}");
}

#[test]
fn booking_expiration_timeout_is_the_reservation_time() {
    let gw = Gateway::start(&STD_GMS.replace(
        "request-inbound-callback: {_type: builtin, _service: request-interaction}",
        "request-inbound-callback: {_type: builtin, _service: request-interaction, _resource_group: SOLO, _ttl: \"60\", _booking_expiration_timeout: \"5\"}",
    ));
    let before = now_ms();
    let v = gw.create_ok("request-inbound-callback", &[("color", "red")]);
    check_expiry(&v, before, now_ms(), 5);
    let id = str_field(&v, "_id").to_string();
    assert_error(&gw.create("request-inbound-callback", &[]), 503);
    // The number is free again after the booking time; the data keeps its `_ttl`.
    let again = within(Duration::from_secs(15), || {
        let r = gw.create("request-inbound-callback", &[]);
        (r.status == 200).then_some(r)
    });
    assert!(again.is_some(), "SOLO not free 15 s after a 5 s booking");
    assert_eq!(
        ok_json(&get(&gw.service_storage_url(&id, ""), &[])),
        json!({"color": "red"})
    );
}

// --- 7. the Callback Services API's paths ---------------------------------------------------

/// A path under `service/callback` is the Callback API's (gms-callback.md §2): a name that is
/// not a configured callback service is named in the 404, never "service 'callback'".
#[test]
fn callback_paths_name_an_unconfigured_callback_service() {
    let gw = Gateway::start(STD_GMS);
    let e = assert_error(
        &post_json(
            &gw.url("/genesys/1/service/callback/cb_new"),
            &json!({"_customer_number": "5115"}),
            &[],
        ),
        404,
    );
    let m = e["message"].as_str().unwrap_or("");
    assert_eq!(m, "Callback service cb_new is not configured", "{e}");
    assert!(!m.contains("service 'callback'"), "{e}");
    let r = request(
        "PUT",
        &gw.url("/genesys/1/service/callback/cb_new/x"),
        &[],
        None,
    );
    assert_eq!(
        assert_error(&r, 404)["exception"],
        "CallbackExceptionNotFound"
    );
    let r = get(&gw.url("/genesys/1/service/callback/cb_new/x"), &[]);
    assert_error(&r, 405);
    assert_eq!(r.header("allow"), Some("PUT, DELETE"));
}

#[test]
fn callback_paths_go_to_the_web_tier_with_fallback_to_backend() {
    let sim = OrsSim::start(1);
    let gw = Gateway::start(&format!(
        "backend: {{upstreams: [\"{}\"]}}\nfallback_to_backend: true\n{STD_GMS}",
        sim.addr(0)
    ));
    let r = post_json(
        &gw.url("/genesys/1/service/callback/cb_new"),
        &json!({"_customer_number": "5115"}),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("x-sim-instance").is_some(), "{:?}", r.headers);
    let echo = r.json();
    assert_eq!(echo["path"], "/genesys/1/service/callback/cb_new");
    assert_eq!(echo["body"], r#"{"_customer_number":"5115"}"#);
}
