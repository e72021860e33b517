//! Built-in services: request-interaction, request-access, match-interaction.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn gw() -> Gateway {
    Gateway::start(STD_GMS)
}

fn is_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

fn expires_in(v: &Value) -> f64 {
    v.get("_expires_in")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no numeric _expires_in in {v}"))
}

/// A coded reservation on DNIS; returns (id, number, code).
fn coded(gw: &Gateway, phone: &str, extra: &[(&str, &str)]) -> (String, String, String) {
    let mut f = vec![("_phone_number", phone), ("_provide_code", "true")];
    f.extend_from_slice(extra);
    let v = gw.create_ok("request-interaction", &f);
    (
        str_field(&v, "_id").to_string(),
        str_field(&v, "_access_number").to_string(),
        str_field(&v, "_access_code").to_string(),
    )
}

#[test]
fn seed_example_multipart_create_match_and_storage_round_trip() {
    let gw = gw();
    let picture = fake_jpeg(13 * 1024 + 77);
    let mp = Multipart::new()
        .text("_phone_number", "5551234567")
        .text("_provide_code", "true")
        .text("first_name", "John")
        .text("last_name", "Doe")
        .text("reason", "billing question")
        .file("picture", "face.jpg", "image/jpeg", &picture);
    let created = ok_json(&post_multipart(
        &gw.service_url("request-interaction"),
        &mp,
        &[],
    ));
    let id = str_field(&created, "_id").to_string();
    assert!(is_uuid_v4(&id), "_id is not a UUID v4: {created}");
    let number = str_field(&created, "_access_number").to_string();
    assert!(
        DNIS.contains(&number.as_str()),
        "number not from DNIS: {created}"
    );
    let code = str_field(&created, "_access_code").to_string();
    assert!(is_digits(&code, 4), "default code is 4 digits: {created}");
    assert_eq!(expires_in(&created), 30.0, "default _ttl is 30: {created}");

    let matched = gw.match_ok(&[
        ("_access_number", &number),
        ("_access_code", &code),
        ("_phone_number", "5551234567"),
        ("_return_user_data", "true"),
    ]);
    assert_eq!(str_field(&matched, "_id"), id);
    let data_id = str_field(&matched, "_data_id").to_string();
    assert!(is_uuid_v4(&data_id), "_data_id: {matched}");
    let pic_url = gw.binary_url(&data_id, "picture");
    assert_eq!(matched["first_name"], "John");
    assert_eq!(matched["last_name"], "Doe");
    assert_eq!(matched["reason"], "billing question");
    assert_eq!(matched["picture"], pic_url.as_str());

    let all = ok_json(&get(&gw.storage_url(&data_id), &[]));
    assert_eq!(
        all,
        json!({
            "first_name": "John",
            "last_name": "Doe",
            "reason": "billing question",
            "picture": pic_url,
        })
    );

    let bin = get(&pic_url, &[]);
    assert_eq!(bin.status, 200, "{}", bin.text());
    assert_eq!(bin.body, picture, "picture bytes differ");
    assert!(
        bin.content_type().starts_with("image/jpeg"),
        "{:?}",
        bin.headers
    );
    let disp = bin.header("content-disposition").unwrap_or("");
    assert!(disp.contains("face.jpg"), "content-disposition {disp:?}");

    let one = get(&gw.storage_url(&format!("{data_id}/picture")), &[]);
    assert_eq!(one.status, 200);
    assert_eq!(one.body, picture);
    assert!(one.content_type().starts_with("image/jpeg"));
    let name = get(&gw.storage_url(&format!("{data_id}/first_name")), &[]);
    assert_eq!(name.status, 200);
    assert!(
        name.content_type().starts_with("text/plain"),
        "{:?}",
        name.headers
    );
    assert_eq!(name.text(), "John");
}

#[test]
fn create_with_urlencoded_json_and_multipart_bodies_all_work() {
    let gw = gw();
    let url = gw.service_url("request-interaction");
    let a = ok_json(&post_form(
        &url,
        &[("_phone_number", "1"), ("_provide_code", "true")],
        &[],
    ));
    let b = ok_json(&post_json(
        &url,
        &json!({"_phone_number": "2", "_provide_code": "true"}),
        &[],
    ));
    let c = ok_json(&post_multipart(
        &url,
        &Multipart::new()
            .text("_phone_number", "3")
            .text("_provide_code", "true"),
        &[],
    ));
    for v in [a, b, c] {
        assert!(is_uuid_v4(str_field(&v, "_id")), "{v}");
        assert!(is_digits(str_field(&v, "_access_code"), 4), "{v}");
    }
}

#[test]
fn request_interaction_without_phone_number_reserves_for_any_caller() {
    // GMS documents _phone_number as mandatory but serves requests without it (issue 17).
    let gw = gw();
    let v = gw.create_ok("request-interaction", &[("_provide_code", "true")]);
    let (number, code) = (
        str_field(&v, "_access_number"),
        str_field(&v, "_access_code"),
    );
    // Matched on number and code only, whatever phone the caller names.
    let m = gw.match_ok(&[
        ("_access_number", number),
        ("_access_code", code),
        ("_phone_number", "5550199"),
    ]);
    assert_eq!(m["_id"], v["_id"]);
}

#[test]
fn request_interaction_unknown_resource_group_is_400() {
    let gw = gw();
    let r = gw.create(
        "request-interaction",
        &[("_phone_number", "1"), ("_resource_group", "NOPE")],
    );
    assert_error(&r, 400);
}

#[test]
fn request_interaction_resource_group_selects_the_pool() {
    let gw = gw();
    let v = gw.create_ok(
        "request-interaction",
        &[
            ("_phone_number", "1"),
            ("_resource_group", "SOLO"),
            ("_provide_code", "true"),
        ],
    );
    assert_eq!(str_field(&v, "_access_number"), SOLO);
    let d = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "1"), ("_provide_code", "true")],
    );
    assert!(DNIS.contains(&str_field(&d, "_access_number")), "{d}");
}

#[test]
fn request_interaction_without_code_has_no_access_code_and_reports_expiry() {
    let gw = gw();
    let v = gw.create_ok("request-interaction", &[("_phone_number", "1")]);
    assert!(is_uuid_v4(str_field(&v, "_id")), "{v}");
    assert!(DNIS.contains(&str_field(&v, "_access_number")), "{v}");
    assert!(v.get("_access_code").is_none(), "no code asked: {v}");
    assert_eq!(expires_in(&v), 30.0);
    let v = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "1"), ("_ttl", "120")],
    );
    assert_eq!(expires_in(&v), 120.0);
}

#[test]
fn provide_code_accepts_true_and_false_case_insensitively() {
    let gw = gw();
    // exclusive (false) first: two of the three DNIS numbers
    for f in ["false", "FALSE"] {
        let v = gw.create_ok(
            "request-interaction",
            &[("_phone_number", "1"), ("_provide_code", f)],
        );
        assert!(v.get("_access_code").is_none(), "{f}: {v}");
    }
    for t in ["true", "TRUE", "True"] {
        let v = gw.create_ok(
            "request-interaction",
            &[("_phone_number", "1"), ("_provide_code", t)],
        );
        assert!(is_digits(str_field(&v, "_access_code"), 4), "{t}: {v}");
    }
}

#[test]
fn provide_code_other_values_are_400() {
    let gw = gw();
    for bad in ["yes", "1", "tru", "no"] {
        let r = gw.create(
            "request-interaction",
            &[("_phone_number", "1"), ("_provide_code", bad)],
        );
        assert_error(&r, 400);
    }
}

#[test]
fn access_code_length_sets_the_number_of_digits() {
    let gw = gw();
    for len in [1usize, 2, 6, 12] {
        let l = len.to_string();
        let v = gw.create_ok(
            "request-interaction",
            &[
                ("_phone_number", "1"),
                ("_provide_code", "true"),
                ("_access_code_length", &l),
            ],
        );
        assert!(
            is_digits(str_field(&v, "_access_code"), len),
            "len {len}: {v}"
        );
    }
}

#[test]
fn access_code_length_out_of_range_or_not_a_number_is_400() {
    let gw = gw();
    for bad in ["0", "13", "-1", "abc", "4.5", "100"] {
        let r = gw.create(
            "request-interaction",
            &[
                ("_phone_number", "1"),
                ("_provide_code", "true"),
                ("_access_code_length", bad),
            ],
        );
        assert_error(&r, 400);
    }
}

#[test]
fn allocation_accepts_random_and_round_robin_and_rejects_others() {
    let gw = gw();
    for ok in ["random", "round-robin"] {
        gw.create_ok(
            "request-interaction",
            &[
                ("_phone_number", "1"),
                ("_provide_code", "true"),
                ("_allocation", ok),
            ],
        );
    }
    for bad in ["sequential", "roundrobin", "abc"] {
        let r = gw.create(
            "request-interaction",
            &[
                ("_phone_number", "1"),
                ("_provide_code", "true"),
                ("_allocation", bad),
            ],
        );
        assert_error(&r, 400);
    }
}

#[test]
fn ttl_and_service_ttl_outside_1_to_max_ttl_are_400() {
    let gw = gw();
    for name in ["_ttl", "_service_ttl"] {
        for bad in ["0", "-1", "86401", "abc", "1.5", "99999999999999999999"] {
            let r = gw.create(
                "request-interaction",
                &[
                    ("_phone_number", "1"),
                    ("_provide_code", "true"),
                    (name, bad),
                ],
            );
            assert_error(&r, 400);
        }
        for ok in ["1", "86400"] {
            gw.create_ok(
                "request-interaction",
                &[
                    ("_phone_number", "1"),
                    ("_provide_code", "true"),
                    (name, ok),
                ],
            );
        }
    }
}

#[test]
fn max_ttl_limit_is_configurable() {
    let gw = Gateway::start(&format!("limits: {{max_ttl: 100}}\n{STD_GMS}"));
    let v = gw.create_ok(
        "request-interaction",
        &[
            ("_phone_number", "1"),
            ("_provide_code", "true"),
            ("_ttl", "100"),
        ],
    );
    assert_eq!(expires_in(&v), 100.0);
    let r = gw.create(
        "request-interaction",
        &[
            ("_phone_number", "1"),
            ("_provide_code", "true"),
            ("_ttl", "101"),
        ],
    );
    assert_error(&r, 400);
    let r = gw.create(
        "request-interaction",
        &[
            ("_phone_number", "1"),
            ("_provide_code", "true"),
            ("_service_ttl", "101"),
        ],
    );
    assert_error(&r, 400);
}

#[test]
fn exclusive_number_gets_no_coded_reservation() {
    let gw = gw();
    let v = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "1"), ("_resource_group", "SOLO")],
    );
    assert_eq!(str_field(&v, "_access_number"), SOLO);
    let coded = gw.create(
        "request-interaction",
        &[
            ("_phone_number", "2"),
            ("_resource_group", "SOLO"),
            ("_provide_code", "true"),
        ],
    );
    assert_error(&coded, 503);
    let again = gw.create(
        "request-interaction",
        &[("_phone_number", "3"), ("_resource_group", "SOLO")],
    );
    assert_error(&again, 503);
}

#[test]
fn coded_number_is_not_handed_out_exclusively_and_codes_are_distinct() {
    let gw = gw();
    let mut codes = HashSet::new();
    for i in 0..20 {
        let v = gw.create_ok(
            "request-interaction",
            &[
                ("_phone_number", "1"),
                ("_resource_group", "SOLO"),
                ("_provide_code", "true"),
                ("_access_code_length", "2"),
            ],
        );
        assert_eq!(str_field(&v, "_access_number"), SOLO);
        let code = str_field(&v, "_access_code").to_string();
        assert!(is_digits(&code, 2), "{v}");
        assert!(codes.insert(code), "duplicate code at #{i}: {v}");
    }
    let excl = gw.create(
        "request-interaction",
        &[("_phone_number", "2"), ("_resource_group", "SOLO")],
    );
    assert_error(&excl, 503);
}

#[test]
fn round_robin_follows_configured_order_per_group() {
    let gw = gw();
    let next = |n: &str| {
        let i = DNIS.iter().position(|d| *d == n).expect("DNIS number");
        DNIS[(i + 1) % DNIS.len()].to_string()
    };
    let mut seq: Vec<String> = Vec::new();
    for _ in 0..9 {
        let v = gw.create_ok(
            "request-interaction",
            &[
                ("_phone_number", "1"),
                ("_provide_code", "true"),
                ("_allocation", "round-robin"),
            ],
        );
        seq.push(str_field(&v, "_access_number").to_string());
        // a round-robin allocation in another group does not disturb DNIS's order
        let s = gw.create_ok(
            "request-interaction",
            &[
                ("_phone_number", "1"),
                ("_provide_code", "true"),
                ("_allocation", "round-robin"),
                ("_resource_group", "SOLO"),
            ],
        );
        assert_eq!(str_field(&s, "_access_number"), SOLO);
    }
    for w in seq.windows(2) {
        assert_eq!(w[1], next(&w[0]), "round-robin order broken: {seq:?}");
    }
}

#[test]
fn a_phone_holds_at_most_its_configured_reservations_per_group() {
    check_reservations_per_phone(&[Gateway::start(&two_per_phone(STD_GMS))]);
}

#[test]
fn random_allocation_uses_more_than_one_number() {
    let gw = gw();
    let mut seen = HashSet::new();
    for _ in 0..60 {
        let v = gw.create_ok(
            "request-interaction",
            &[("_phone_number", "1"), ("_provide_code", "true")],
        );
        seen.insert(str_field(&v, "_access_number").to_string());
    }
    assert!(seen.len() >= 2, "60 random allocations all got {seen:?}");
}

#[test]
fn pool_exhausted_is_503() {
    let gw = gw();
    let mut nums = HashSet::new();
    for _ in 0..3 {
        let v = gw.create_ok("request-interaction", &[("_phone_number", "1")]);
        nums.insert(str_field(&v, "_access_number").to_string());
    }
    assert_eq!(nums.len(), 3, "three exclusive numbers: {nums:?}");
    assert_error(
        &gw.create("request-interaction", &[("_phone_number", "1")]),
        503,
    );
    assert_error(
        &gw.create(
            "request-interaction",
            &[("_phone_number", "1"), ("_provide_code", "true")],
        ),
        503,
    );
}

/// A group larger than the window of numbers a random reservation tries first (16 on Redis):
/// every number is still found before the group is called exhausted.
#[test]
fn a_large_group_is_used_to_its_last_number() {
    let numbers: Vec<String> = (0..40).map(|i| format!("\"80077700{i:02}\"")).collect();
    let gw = Gateway::start(&format!(
        "resources:\n  BIG: [{}]\nservices:\n  request-interaction: \
         {{_type: builtin, _service: request-interaction, _resource_group: BIG}}\n",
        numbers.join(", ")
    ));
    let mut seen = HashSet::new();
    for i in 0..40 {
        let v = gw.create_ok("request-interaction", &[("_phone_number", "1")]);
        assert!(
            seen.insert(str_field(&v, "_access_number").to_string()),
            "reservation {i} got a number already held: {v}"
        );
    }
    assert_error(
        &gw.create("request-interaction", &[("_phone_number", "1")]),
        503,
    );
}

#[test]
fn exclusive_reservation_expires_after_ttl_and_frees_the_number() {
    let gw = gw();
    gw.create_ok(
        "request-interaction",
        &[
            ("_phone_number", "1"),
            ("_resource_group", "SOLO"),
            ("_ttl", "2"),
        ],
    );
    assert_error(
        &gw.create(
            "request-interaction",
            &[("_phone_number", "2"), ("_resource_group", "SOLO")],
        ),
        503,
    );
    std::thread::sleep(Duration::from_millis(3500));
    assert_error(
        &gw.match_call(&[("_access_number", SOLO), ("_phone_number", "1")]),
        404,
    );
    let v = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "2"), ("_resource_group", "SOLO")],
    );
    assert_eq!(str_field(&v, "_access_number"), SOLO);
}

#[test]
fn coded_reservation_expires_after_ttl() {
    let gw = gw();
    let (_, number, code) = coded(&gw, "1", &[("_ttl", "1")]);
    std::thread::sleep(Duration::from_millis(2500));
    assert_error(
        &gw.match_call(&[("_access_number", &number), ("_access_code", &code)]),
        404,
    );
}

#[test]
fn user_data_expires_after_ttl() {
    let gw = gw();
    let v = gw.create_ok(
        "request-interaction",
        &[
            ("_phone_number", "2"),
            ("_provide_code", "true"),
            ("_ttl", "1"),
            ("color", "red"),
        ],
    );
    let m = gw.match_ok(&[
        ("_access_number", str_field(&v, "_access_number")),
        ("_access_code", str_field(&v, "_access_code")),
        ("_return_user_data", "true"),
    ]);
    assert_eq!(m["color"], "red", "{m}");
    let data_id = str_field(&m, "_data_id").to_string();
    std::thread::sleep(Duration::from_millis(2500));
    assert_error(&get(&gw.storage_url(&data_id), &[]), 404);
}

#[test]
fn match_releases_the_reservation_second_match_is_404() {
    let gw = gw();
    let (id, number, code) = coded(&gw, "5551", &[]);
    let m = gw.match_ok(&[
        ("_access_number", &number),
        ("_access_code", &code),
        ("_phone_number", "5551"),
    ]);
    assert_eq!(str_field(&m, "_id"), id);
    assert_error(
        &gw.match_call(&[
            ("_access_number", &number),
            ("_access_code", &code),
            ("_phone_number", "5551"),
        ]),
        404,
    );
}

#[test]
fn match_of_exclusive_reservation_frees_the_number() {
    let gw = gw();
    let v = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "777"), ("_resource_group", "SOLO")],
    );
    let m = gw.match_ok(&[("_access_number", SOLO)]);
    assert_eq!(m["_id"], v["_id"]);
    assert_error(&gw.match_call(&[("_access_number", SOLO)]), 404);
    let again = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "888"), ("_resource_group", "SOLO")],
    );
    assert_eq!(str_field(&again, "_access_number"), SOLO);
}

#[test]
fn concurrent_matches_of_one_reservation_exactly_one_wins() {
    // Each round's seven losers count as failed matches: more than the default allows.
    let gw = Gateway::start(&format!("limits: {{max_failed_matches: 1000}}\n{STD_GMS}"));
    for round in 0..5 {
        let (id, number, code) = coded(&gw, "1", &[]);
        let barrier = Barrier::new(8);
        let results: Mutex<Vec<Resp>> = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    barrier.wait();
                    let r = gw.match_call(&[("_access_number", &number), ("_access_code", &code)]);
                    results.lock().unwrap().push(r);
                });
            }
        });
        let results = results.into_inner().unwrap();
        let winners: Vec<&Resp> = results.iter().filter(|r| r.status == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}: {} winners", winners.len());
        assert_eq!(str_field(&ok_json(winners[0]), "_id"), id);
        for r in results.iter().filter(|r| r.status != 200) {
            assert_error(r, 404);
        }
    }
}

#[test]
fn match_with_wrong_code_is_404_and_keeps_the_reservation() {
    let gw = gw();
    let (id, number, code) = coded(&gw, "1", &[]);
    let wrong = if code == "0000" { "1111" } else { "0000" };
    assert_error(
        &gw.match_call(&[("_access_number", &number), ("_access_code", wrong)]),
        404,
    );
    let m = gw.match_ok(&[("_access_number", &number), ("_access_code", &code)]);
    assert_eq!(str_field(&m, "_id"), id);
}

#[test]
fn match_with_wrong_phone_number_is_404() {
    let gw = gw();
    let (id, number, code) = coded(&gw, "5550001", &[]);
    assert_error(
        &gw.match_call(&[
            ("_access_number", &number),
            ("_access_code", &code),
            ("_phone_number", "5550002"),
        ]),
        404,
    );
    // _phone_number is optional
    let m = gw.match_ok(&[("_access_number", &number), ("_access_code", &code)]);
    assert_eq!(str_field(&m, "_id"), id);
}

#[test]
fn match_unknown_number_is_404_and_missing_number_is_400() {
    let gw = gw();
    coded(&gw, "1", &[]);
    assert_error(
        &gw.match_call(&[("_access_number", "8000000000"), ("_access_code", "1234")]),
        404,
    );
    assert_error(&gw.match_call(&[("_access_code", "1234")]), 400);
    assert_error(&gw.match_call(&[]), 400);
}

#[test]
fn match_reply_has_ids_and_no_user_data_unless_asked() {
    let gw = gw();
    let (id, number, code) = coded(&gw, "1", &[("color", "blue")]);
    let m = gw.match_ok(&[("_access_number", &number), ("_access_code", &code)]);
    assert_eq!(str_field(&m, "_id"), id);
    assert!(is_uuid_v4(str_field(&m, "_data_id")), "{m}");
    assert!(m.get("color").is_none(), "user data without asking: {m}");
}

#[test]
fn concurrent_coded_creates_get_distinct_number_code_pairs() {
    // 300 creates from one address as fast as 16 threads go: over the default write rate.
    let gw = Gateway::start(&format!("limits: {{create_rate_per_ip: 0}}\n{STD_GMS}"));
    const TOTAL: usize = 300;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Resp>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::SeqCst) < TOTAL {
                    let r = gw.create(
                        "request-interaction",
                        &[
                            ("_phone_number", "1"),
                            ("_provide_code", "true"),
                            ("_access_code_length", "4"),
                            ("_ttl", "600"),
                        ],
                    );
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), TOTAL);
    let mut pairs = HashSet::new();
    let mut ids = HashSet::new();
    for r in &results {
        let v = ok_json(r);
        let n = str_field(&v, "_access_number").to_string();
        let c = str_field(&v, "_access_code").to_string();
        assert!(DNIS.contains(&n.as_str()) && is_digits(&c, 4), "{v}");
        assert!(pairs.insert((n, c)), "duplicate (number, code): {v}");
        assert!(
            ids.insert(str_field(&v, "_id").to_string()),
            "duplicate _id: {v}"
        );
    }
}

#[test]
fn concurrent_exclusive_creates_on_three_numbers_exactly_three_win() {
    let gw = gw();
    const TOTAL: usize = 40;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Resp>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::SeqCst) < TOTAL {
                    let r = gw.create(
                        "request-interaction",
                        &[("_phone_number", "1"), ("_ttl", "600")],
                    );
                    results.lock().unwrap().push(r);
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), TOTAL);
    let mut numbers = HashSet::new();
    let mut won = 0;
    for r in &results {
        if r.status == 200 {
            won += 1;
            let v = ok_json(r);
            assert!(v.get("_access_code").is_none(), "{v}");
            numbers.insert(str_field(&v, "_access_number").to_string());
        } else {
            assert_error(r, 503);
        }
    }
    assert_eq!(won, 3, "exactly the pool size wins");
    assert_eq!(numbers.len(), 3, "distinct numbers: {numbers:?}");
}

#[test]
fn request_access_attaches_a_reservation_to_an_existing_service() {
    let gw = gw();
    let (id, _, _) = coded(&gw, "5551", &[("color", "blue")]);
    let a = gw.create_ok(
        "request-access",
        &[
            ("_id", &id),
            ("_phone_number", "5551"),
            ("_provide_code", "true"),
            ("_resource_group", "SOLO"),
            ("_access_code_length", "6"),
        ],
    );
    assert_eq!(str_field(&a, "_id"), id);
    assert_eq!(str_field(&a, "_access_number"), SOLO);
    let code = str_field(&a, "_access_code").to_string();
    assert!(is_digits(&code, 6), "{a}");
    let m = gw.match_ok(&[
        ("_access_number", SOLO),
        ("_access_code", &code),
        ("_return_user_data", "true"),
    ]);
    assert_eq!(str_field(&m, "_id"), id);
    assert_eq!(m["color"], "blue", "the service's own user data: {m}");
}

#[test]
fn request_access_unknown_id_is_404_and_missing_id_is_400() {
    let gw = gw();
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(
        &gw.create(
            "request-access",
            &[
                ("_id", &unknown),
                ("_phone_number", "1"),
                ("_provide_code", "true"),
            ],
        ),
        404,
    );
    assert_error(
        &gw.create(
            "request-access",
            &[("_phone_number", "1"), ("_provide_code", "true")],
        ),
        400,
    );
}

const OVERRIDE_GMS: &str = r#"internal_auth: {users: {ivr: ivr-secret}}
resources:
  DNIS: ["8003449999", "8003449998", "8003449997"]
  SOLO: ["8005550001"]
services:
  match-interaction: {_type: builtin, _service: match-interaction}
  ri-fixed: {_type: builtin, _service: request-interaction, _ttl: 30}
  ri-open: {_type: builtin, _service: request-interaction, _ttl: 30, _overwritable_options: "_ttl"}
  ri-solo: {_type: builtin, _service: request-interaction, _resource_group: SOLO, _provide_code: "true"}
  ri-solo-open: {_type: builtin, _service: request-interaction, _resource_group: SOLO, _provide_code: "true", _overwritable_options: "_ttl,_resource_group"}
"#;

#[test]
fn configured_options_override_request_parameters_unless_overwritable() {
    let gw = Gateway::start(OVERRIDE_GMS);
    let p = [
        ("_phone_number", "1"),
        ("_provide_code", "true"),
        ("_ttl", "5"),
    ];
    assert_eq!(expires_in(&gw.create_ok("ri-fixed", &p)), 30.0);
    assert_eq!(expires_in(&gw.create_ok("ri-open", &p)), 5.0);
    assert_eq!(
        expires_in(&gw.create_ok("ri-open", &[("_phone_number", "1")])),
        30.0,
        "the configured value is the default"
    );

    let d = [("_phone_number", "1"), ("_resource_group", "DNIS")];
    let v = gw.create_ok("ri-solo", &d);
    assert_eq!(str_field(&v, "_access_number"), SOLO, "{v}");
    assert!(
        v.get("_access_code").is_some(),
        "configured _provide_code: {v}"
    );
    let v = gw.create_ok("ri-solo-open", &d);
    assert!(DNIS.contains(&str_field(&v, "_access_number")), "{v}");
    // a configured option that is not overwritable is not changed by the request
    let v = gw.create_ok(
        "ri-solo-open",
        &[("_phone_number", "1"), ("_provide_code", "false")],
    );
    assert_eq!(str_field(&v, "_access_number"), SOLO, "{v}");
    assert!(v.get("_access_code").is_some(), "{v}");
}

#[test]
fn reserved_parameters_from_the_client_are_ignored() {
    let gw = gw();
    let (id, number, code) = coded(
        &gw,
        "1",
        &[
            ("_data_id", "evil"),
            ("_service_id", "evil-service"),
            ("_service_name", "evil-name"),
            ("color", "blue"),
        ],
    );
    assert!(is_uuid_v4(&id), "{id}");
    let m = gw.match_ok(&[
        ("_access_number", &number),
        ("_access_code", &code),
        ("_return_user_data", "true"),
    ]);
    assert_eq!(str_field(&m, "_id"), id);
    let data_id = str_field(&m, "_data_id");
    assert!(is_uuid_v4(data_id), "client _data_id was used: {m}");
    assert_eq!(m["color"], "blue");
    assert_eq!(
        ok_json(&get(&gw.storage_url(data_id), &[])),
        json!({"color": "blue"}),
        "reserved names are not stored as user data"
    );
    assert_error(&get(&gw.storage_url("evil"), &[]), 404);
}

#[test]
fn create_without_user_data_still_stores_an_empty_object() {
    let gw = gw();
    let (_, number, code) = coded(&gw, "1", &[]);
    let m = gw.match_ok(&[
        ("_access_number", &number),
        ("_access_code", &code),
        ("_return_user_data", "true"),
    ]);
    let data_id = str_field(&m, "_data_id");
    assert_eq!(ok_json(&get(&gw.storage_url(data_id), &[])), json!({}));
}

#[test]
fn match_reply_keeps_its_own_ids_when_stored_data_has_underscore_keys() {
    let gw = gw();
    let v = gw.create_ok(
        "request-interaction",
        &[
            ("_phone_number", "7"),
            ("_provide_code", "true"),
            ("color", "red"),
        ],
    );
    let id = str_field(&v, "_id").to_string();
    let first = gw.match_ok(&[
        ("_access_number", str_field(&v, "_access_number")),
        ("_access_code", str_field(&v, "_access_code")),
    ]);
    let data_id = str_field(&first, "_data_id").to_string();
    // Only the Storage API can put underscore keys into a service's data.
    let merged = post_form(
        &gw.storage_url(&format!("{data_id}/60")),
        &[("_id", "evil"), ("_data_id", "evil")],
        &[],
    );
    ok_json(&merged);
    let again = gw.create_ok(
        "request-access",
        &[
            ("_id", &id),
            ("_phone_number", "7"),
            ("_provide_code", "true"),
        ],
    );
    let m = gw.match_ok(&[
        ("_access_number", str_field(&again, "_access_number")),
        ("_access_code", str_field(&again, "_access_code")),
        ("_return_user_data", "true"),
    ]);
    assert_eq!(str_field(&m, "_id"), id, "{m}");
    assert_eq!(str_field(&m, "_data_id"), data_id, "{m}");
    assert_eq!(m["color"], "red", "{m}");
    let raw = serde_json::to_string(&m).unwrap();
    assert!(!raw.contains("evil"), "{raw}");
}
