//! match-interaction is internal (issue 15 item 1): the IVR's credentials
//! (`gms.internal_auth`) or network (`gms.internal_networks`), never open unless the operator
//! says `internal_auth: none`; failed matches limited per access number (in the store, with
//! the number) and per client address; both counted in the metrics.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// `STD_GMS`'s pools and services under other `gms` keys (no `internal_auth` of its own).
fn pools_and_services() -> &'static str {
    STD_GMS
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap_or_default()
}

fn start(extra: &str) -> Gateway {
    Gateway::start(&format!("{extra}\n{}", pools_and_services()))
}

fn match_url(gw: &Gateway) -> String {
    gw.service_url("match-interaction")
}

/// A coded reservation for phone `555` on `group` with `_ttl` seconds, and some user data;
/// returns (id, number, code).
fn reserve(gw: &Gateway, group: &str, ttl: &str) -> (String, String, String) {
    let v = gw.create_ok(
        "request-interaction",
        &[
            ("_phone_number", "555"),
            ("_provide_code", "true"),
            ("_resource_group", group),
            ("_ttl", ttl),
            ("ssn", "123-45-6789"),
        ],
    );
    (
        str_field(&v, "_id").to_string(),
        str_field(&v, "_access_number").to_string(),
        str_field(&v, "_access_code").to_string(),
    )
}

/// Reserves on SOLO and matches it without credentials: the reservation's id and the answer.
fn match_anonymously(gw: &Gateway) -> (String, Resp) {
    let (id, number, code) = reserve(gw, "SOLO", "60");
    let fields = [
        ("_access_number", number.as_str()),
        ("_access_code", code.as_str()),
    ];
    (id, post_form(&match_url(gw), &fields, &[]))
}

/// `n` matches of `number` with a code other than `code`, each a 404.
fn fail_matches(gw: &Gateway, number: &str, code: &str, n: usize) {
    let wrong = if code == "0000" { "0001" } else { "0000" };
    for _ in 0..n {
        assert_error(
            &gw.match_call(&[("_access_number", number), ("_access_code", wrong)]),
            404,
        );
    }
}

/// A 429's `Retry-After`, whole seconds.
fn retry_after(r: &Resp) -> u64 {
    assert_eq!(
        assert_error(r, 429)["exception"],
        "TooManyRequestsException"
    );
    r.header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in whole seconds")
}

#[test]
fn without_internal_credentials_configured_a_match_is_401_and_reveals_nothing() {
    let gw = start("");
    let (_, number, code) = reserve(&gw, "SOLO", "60");
    let fields = [
        ("_access_number", number.as_str()),
        ("_access_code", code.as_str()),
        ("_return_user_data", "true"),
    ];
    for headers in [vec![], vec![IVR]] {
        let r = post_form(&match_url(&gw), &fields, &headers);
        let e = assert_error(&r, 401);
        assert_eq!(e["exception"], "UnauthorizedException");
        assert!(r.header("www-authenticate").is_some());
        assert!(!r.text().contains("6789"), "{}", r.text());
    }
}

#[test]
fn internal_credentials_admit_the_ivr_and_refuse_everyone_else() {
    let key = "ivr-key-0123456789abcdef";
    let gw = start(&format!(
        "internal_auth: {{keys: ['{key}'], users: {{ivr: ivr-secret}}}}\n\
         api_auth: {{keys: ['app-key-0123456789abcdef']}}"
    ));
    let app = ("X-API-Key", "app-key-0123456789abcdef");
    let create = |phone: &str| {
        ok_json(&post_form(
            &gw.service_url("request-interaction"),
            &[
                ("_phone_number", phone),
                ("_provide_code", "true"),
                ("_resource_group", "SOLO"),
                ("ssn", "123-45-6789"),
            ],
            &[app],
        ))
    };
    let made = create("555");
    let fields = |v: &Value| {
        vec![
            ("_access_number", str_field(v, "_access_number").to_string()),
            ("_access_code", str_field(v, "_access_code").to_string()),
            ("_return_user_data", "true".to_string()),
        ]
    };
    let form = fields(&made);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Anonymous, an app's own API key, a wrong key, the key in the app's header, a wrong
    // password: all 401, and nothing is released.
    for bad in [
        vec![],
        vec![app],
        vec![("X-GMS-Internal-Key", "ivr-key-0123456789abcdeX")],
        vec![("X-API-Key", key)],
        vec![("Authorization", "Basic aXZyOndyb25n")],
    ] {
        let r = post_form(&match_url(&gw), &form, &bad);
        assert_error(&r, 401);
        assert!(!r.text().contains("6789"));
    }
    // The IVR's basic-auth user: matched, user data returned.
    let m = ok_json(&post_form(&match_url(&gw), &form, &[IVR]));
    assert_eq!(m["_id"], made["_id"]);
    assert_eq!(m["ssn"], "123-45-6789");
    // Or its key, in the internal header (no app credentials needed for the IVR's call).
    let made = create("556");
    let form = fields(&made);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let m = ok_json(&post_form(
        &match_url(&gw),
        &form,
        &[("X-GMS-Internal-Key", key)],
    ));
    assert_eq!(m["_id"], made["_id"]);
}

#[test]
fn internal_networks_admit_their_peers_and_refuse_others_with_403() {
    let outside = start("internal_networks: ['10.0.0.0/8', '192.0.2.7']");
    let (_, r) = match_anonymously(&outside);
    assert_eq!(assert_error(&r, 403)["exception"], "ForbiddenException");

    let inside = start("internal_networks: ['127.0.0.0/8']");
    let (id, r) = match_anonymously(&inside);
    assert_eq!(str_field(&ok_json(&r), "_id"), id);
}

/// The address `gms.internal_networks` checks is the TCP peer's, unless the peer is a trusted
/// proxy (`gms.trusted_proxies`): then the client its `X-Forwarded-For` names. A forged header
/// from any other peer changes nothing.
#[test]
fn internal_networks_check_the_peer_or_the_client_a_trusted_proxy_names() {
    let match_from = |gw: &Gateway, client: &str| {
        let (id, number, code) = reserve(gw, "SOLO", "60");
        let fields = [
            ("_access_number", number.as_str()),
            ("_access_code", code.as_str()),
        ];
        let r = post_form(&match_url(gw), &fields, &[("X-Forwarded-For", client)]);
        (id, r)
    };
    // Behind a trusted proxy (the test's loopback): the forwarded client decides.
    let proxied = start("trusted_proxies: ['127.0.0.1']\ninternal_networks: ['10.0.0.0/8']");
    let (id, r) = match_from(&proxied, "10.1.2.3");
    assert_eq!(str_field(&ok_json(&r), "_id"), id);
    let (_, r) = match_from(&proxied, "203.0.113.9");
    assert_eq!(assert_error(&r, 403)["exception"], "ForbiddenException");

    // Not trusted: the forged header is ignored, the peer (loopback) is outside the network.
    let direct = start("internal_networks: ['10.0.0.0/8']");
    let (_, r) = match_from(&direct, "10.1.2.3");
    assert_eq!(assert_error(&r, 403)["exception"], "ForbiddenException");
}

/// Behind trusted proxies, `X-Forwarded-For` is read from the right past the trusted hops; an
/// entry that is not an address ends the walk, and the client is then the last trusted hop
/// passed (or the peer): never an address left of it, which the client may have written.
#[test]
fn a_forwarded_entry_that_is_not_an_address_ends_the_walk() {
    let match_from = |gw: &Gateway, chain: &str| {
        let (id, number, code) = reserve(gw, "DNIS", "60");
        let fields = [
            ("_access_number", number.as_str()),
            ("_access_code", code.as_str()),
        ];
        let r = post_form(&match_url(gw), &fields, &[("X-Forwarded-For", chain)]);
        (id, r)
    };
    let proxies = "trusted_proxies: ['127.0.0.1', '192.0.2.0/24']";
    let gw = start(&format!(
        "{proxies}
internal_networks: ['10.0.0.0/8']"
    ));
    for chain in ["10.1.2.3", "10.1.2.3, 192.0.2.5"] {
        let (id, r) = match_from(&gw, chain);
        assert_eq!(str_field(&ok_json(&r), "_id"), id, "{chain}");
    }
    for chain in [
        "10.1.2.3, junk",
        "10.1.2.3, junk, 192.0.2.5",
        "10.1.2.3, 203.0.113.9:4711",
        "10.1.2.3, , 192.0.2.5",
    ] {
        let (_, r) = match_from(&gw, chain);
        assert_eq!(
            assert_error(&r, 403)["exception"],
            "ForbiddenException",
            "{chain}"
        );
    }

    // The walk ended at `junk`: the client is the trusted hop right of it.
    let gw = start(&format!(
        "{proxies}
internal_networks: ['192.0.2.5']"
    ));
    let (id, r) = match_from(&gw, "203.0.113.9, junk, 192.0.2.5");
    assert_eq!(str_field(&ok_json(&r), "_id"), id);
    let (_, r) = match_from(&gw, "203.0.113.9, 192.0.2.5");
    assert_error(&r, 403);
}

#[test]
fn internal_auth_none_is_open_as_gms_was() {
    let (id, r) = match_anonymously(&start("internal_auth: none"));
    assert_eq!(str_field(&ok_json(&r), "_id"), id);
}

#[test]
fn failed_matches_lock_the_number_for_everyone_until_its_window_ends() {
    // The client limit is out of the way here: this is the number's.
    let gw = start(&format!(
        "{INTERNAL_AUTH}\nlimits: {{max_failed_matches: 3, failed_matches_per_ip: 0}}"
    ));
    let (id, number, code) = reserve(&gw, "SOLO", "3");
    fail_matches(&gw, &number, &code, 3);
    // Full: the right code is refused too, 429 JSON with the window's end.
    let right = [
        ("_access_number", number.as_str()),
        ("_access_code", code.as_str()),
    ];
    let after = retry_after(&gw.match_call(&right));
    assert!((1..=3).contains(&after), "Retry-After {after}");
    // Another group's number is not locked.
    let (other, n2, c2) = reserve(&gw, "DNIS", "60");
    let m = gw.match_ok(&[("_access_number", &n2), ("_access_code", &c2)]);
    assert_eq!(str_field(&m, "_id"), other);

    // The window ends with the reservation (3 s): the number serves a new one again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut served = false;
    while !served && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let r = gw.create(
            "request-interaction",
            &[
                ("_phone_number", "556"),
                ("_provide_code", "true"),
                ("_resource_group", "SOLO"),
            ],
        );
        if r.status != 200 {
            continue;
        }
        let v = ok_json(&r);
        let m = gw.match_call(&[
            ("_access_number", str_field(&v, "_access_number")),
            ("_access_code", str_field(&v, "_access_code")),
        ]);
        if m.status == 429 {
            continue;
        }
        assert_eq!(ok_json(&m)["_id"], v["_id"]);
        served = true;
    }
    assert!(served, "the number stayed locked past its window");
    assert_ne!(id, "");
}

#[test]
fn failed_matches_per_client_address_get_429_and_are_counted() {
    let port = free_port();
    let gw = start(&format!(
        "{INTERNAL_AUTH}\nmetrics_listen: \"127.0.0.1:{port}\"\n\
         limits: {{max_failed_matches: 1000, failed_matches_per_ip: 4}}"
    ));
    let (_, number, code) = reserve(&gw, "DNIS", "60");
    fail_matches(&gw, &number, &code, 4);
    // The fifth try, even with the right code, waits for the client's window (a minute).
    let right = [
        ("_access_number", number.as_str()),
        ("_access_code", code.as_str()),
    ];
    let after = retry_after(&gw.match_call(&right));
    assert!((1..=60).contains(&after), "Retry-After {after}");
    // Unauthenticated tries are refused before they can count as failures.
    assert_error(&post_form(&match_url(&gw), &right, &[]), 401);

    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let want = [
        ("gms_match_interactions_total{outcome=\"failed\"}", 4.0),
        (
            "gms_match_interactions_total{outcome=\"client_limited\"}",
            1.0,
        ),
        (
            "gms_match_interactions_total{outcome=\"unauthorized\"}",
            1.0,
        ),
        ("gms_rate_limited_total{limit=\"failed_matches\"}", 1.0),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let scrape = get(&metrics, &[]).text();
        let missing: Vec<_> = want
            .iter()
            .filter(|(series, at_least)| {
                let v = scrape
                    .lines()
                    .find(|l| l.starts_with(series))
                    .and_then(|l| l[series.len()..].trim().parse::<f64>().ok());
                v.unwrap_or(0.0) < *at_least
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing {missing:?} in\n{scrape}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
