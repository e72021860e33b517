//! request-access: a reservation attached to an existing service.

use super::*;

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
