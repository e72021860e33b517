//! match-interaction: what a match releases, wrong numbers, codes and phones, the reply, and
//! concurrent matches.

use super::*;

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
