//! request-interaction's create: bodies, options and their checks, parameters the
//! client may and may not set.

use super::*;

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

/// Services whose options are fixed, or open to the client (`_overwritable_options`).
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
