//! Reservations and their user data end with their TTL.

use super::*;

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
