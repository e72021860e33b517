//! Service API: create / service-specific requests (`update`) / delete, ownership, roots.

mod common;

use common::*;
use serde_json::{json, Value};

const ALICE: (&str, &str) = ("gms_user", "alice");
const BOB: (&str, &str) = ("gms_user", "bob");

fn gw() -> Gateway {
    Gateway::start(STD_GMS)
}

fn request_url(gw: &Gateway, id: &str, request: &str) -> String {
    gw.url(&format!("/genesys/1/service/{id}/{request}"))
}

/// Create a coded reservation on `service`; returns the create reply.
fn create_coded(
    gw: &Gateway,
    service: &str,
    extra: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Value {
    let mut f = vec![("_phone_number", "5551"), ("_provide_code", "true")];
    f.extend_from_slice(extra);
    ok_json(&post_form(&gw.service_url(service), &f, headers))
}

/// Match the reservation of a create reply, returning user data; gives the match reply.
fn match_created(gw: &Gateway, created: &Value) -> Value {
    gw.match_ok(&[
        ("_access_number", str_field(created, "_access_number")),
        ("_access_code", str_field(created, "_access_code")),
        ("_return_user_data", "true"),
    ])
}

#[test]
fn unknown_service_is_404_on_both_roots() {
    let gw = gw();
    for root in ["/genesys/1", "/GMS-web/gms/1"] {
        let r = post_form(
            &gw.url(&format!("{root}/service/no-such-service")),
            &[("_phone_number", "1")],
            &[],
        );
        assert_error(&r, 404);
    }
}

#[test]
fn service_requests_on_a_builtin_named_service_are_400() {
    let gw = gw();
    let created = create_coded(&gw, "request-interaction", &[], &[]);
    let id = str_field(&created, "_id");
    for request in ["update", "status", "foo"] {
        let r = post_form(&request_url(&gw, id, request), &[("color", "red")], &[]);
        assert_error(&r, 400);
    }
    // the service is still there and untouched
    let m = match_created(&gw, &created);
    assert_eq!(str_field(&m, "_id"), id);
    assert!(
        m.get("color").is_none(),
        "rejected update changed data: {m}"
    );
}

#[test]
fn update_on_inbound_service_merges_user_data() {
    let gw = gw();
    let created = create_coded(
        &gw,
        "request-inbound-callback",
        &[("a", "1"), ("b", "2")],
        &[],
    );
    let id = str_field(&created, "_id");
    let r = post_form(
        &request_url(&gw, id, "update"),
        &[("b", "3"), ("c", "4"), ("_not_user_data", "x")],
        &[],
    );
    assert_eq!(ok_json(&r), json!({}));
    let m = match_created(&gw, &created);
    assert_eq!(str_field(&m, "_id"), id);
    assert_eq!(m["a"], "1");
    assert_eq!(m["b"], "3");
    assert_eq!(m["c"], "4");
    let data_id = str_field(&m, "_data_id");
    assert_eq!(
        ok_json(&get(&gw.storage_url(data_id), &[])),
        json!({"a": "1", "b": "3", "c": "4"})
    );
}

#[test]
fn update_with_json_and_multipart_file_merges_user_data() {
    let gw = gw();
    let created = create_coded(&gw, "request-inbound-callback", &[("a", "1")], &[]);
    let id = str_field(&created, "_id");
    let r = post_json(&request_url(&gw, id, "update"), &json!({"b": "2"}), &[]);
    assert_eq!(ok_json(&r), json!({}));
    let doc = fake_jpeg(3000);
    let mp = Multipart::new()
        .text("c", "3")
        .file("doc", "scan.png", "image/png", &doc);
    let r = post_multipart(&request_url(&gw, id, "update"), &mp, &[]);
    assert_eq!(ok_json(&r), json!({}));
    let m = match_created(&gw, &created);
    let data_id = str_field(&m, "_data_id").to_string();
    let url = gw.binary_url(&data_id, "doc");
    assert_eq!(
        ok_json(&get(&gw.storage_url(&data_id), &[])),
        json!({"a": "1", "b": "2", "c": "3", "doc": url})
    );
    let bin = get(&url, &[]);
    assert_eq!(bin.status, 200);
    assert_eq!(bin.body, doc);
    assert!(bin.content_type().starts_with("image/png"));
}

#[test]
fn unknown_service_id_is_404_for_requests_and_delete() {
    let gw = gw();
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(
        &post_form(&request_url(&gw, &unknown, "update"), &[("a", "1")], &[]),
        404,
    );
    assert_error(
        &post_form(&request_url(&gw, &unknown, "status"), &[], &[]),
        404,
    );
    assert_error(&delete(&gw.service_url(&unknown), &[]), 404);
    assert_error(&delete(&gw.service_url("not-a-uuid"), &[]), 404);
}

#[test]
fn delete_replies_with_id_and_forgets_the_service() {
    let gw = gw();
    let created = create_coded(&gw, "request-inbound-callback", &[("a", "1")], &[]);
    let id = str_field(&created, "_id");
    let r = delete(&gw.service_url(id), &[]);
    assert_eq!(ok_json(&r), json!({"_id": id}));
    assert_error(
        &post_form(&request_url(&gw, id, "update"), &[("a", "2")], &[]),
        404,
    );
    assert_error(&delete(&gw.service_url(id), &[]), 404);
    // its reservation is gone too
    assert_error(
        &gw.match_call(&[
            ("_access_number", str_field(&created, "_access_number")),
            ("_access_code", str_field(&created, "_access_code")),
        ]),
        404,
    );
}

#[test]
fn delete_releases_an_exclusive_reservation() {
    let gw = gw();
    let v = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "1"), ("_resource_group", "SOLO")],
    );
    assert_error(
        &gw.create(
            "request-interaction",
            &[("_phone_number", "2"), ("_resource_group", "SOLO")],
        ),
        503,
    );
    let id = str_field(&v, "_id");
    assert_eq!(
        ok_json(&delete(&gw.service_url(id), &[])),
        json!({"_id": id})
    );
    let again = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "2"), ("_resource_group", "SOLO")],
    );
    assert_eq!(str_field(&again, "_access_number"), SOLO);
}

#[test]
fn delete_removes_the_services_user_data() {
    let gw = gw();
    let created = create_coded(&gw, "request-inbound-callback", &[("a", "1")], &[]);
    let id = str_field(&created, "_id");
    let m = match_created(&gw, &created);
    let data_id = str_field(&m, "_data_id");
    assert_eq!(
        ok_json(&get(&gw.storage_url(data_id), &[])),
        json!({"a": "1"})
    );
    assert_eq!(
        ok_json(&delete(&gw.service_url(id), &[])),
        json!({"_id": id})
    );
    assert_error(&get(&gw.storage_url(data_id), &[]), 404);
}

#[test]
fn gms_user_owns_service_for_update_and_delete() {
    let gw = gw();
    let created = create_coded(&gw, "request-inbound-callback", &[("a", "1")], &[ALICE]);
    let id = str_field(&created, "_id");
    let upd = request_url(&gw, id, "update");
    assert_error(&post_form(&upd, &[("a", "2")], &[]), 404);
    assert_error(&post_form(&upd, &[("a", "3")], &[BOB]), 404);
    assert_eq!(
        ok_json(&post_form(&upd, &[("b", "4")], &[ALICE])),
        json!({})
    );
    assert_error(&delete(&gw.service_url(id), &[]), 404);
    assert_error(&delete(&gw.service_url(id), &[BOB]), 404);

    // match has no gms_user check; alice's data stays alice's
    let m = match_created(&gw, &created);
    assert_eq!(m["a"], "1", "failed updates must not change data: {m}");
    assert_eq!(m["b"], "4");
    let data_id = str_field(&m, "_data_id");
    assert_error(&get(&gw.storage_url(data_id), &[]), 404);
    assert_error(&get(&gw.storage_url(data_id), &[BOB]), 404);
    assert_eq!(
        ok_json(&get(&gw.storage_url(data_id), &[ALICE])),
        json!({"a": "1", "b": "4"})
    );

    assert_eq!(
        ok_json(&delete(&gw.service_url(id), &[ALICE])),
        json!({"_id": id})
    );
}

#[test]
fn service_without_gms_user_is_open_to_everyone() {
    let gw = gw();
    let created = create_coded(&gw, "request-inbound-callback", &[], &[]);
    let id = str_field(&created, "_id");
    let upd = request_url(&gw, id, "update");
    assert_eq!(ok_json(&post_form(&upd, &[("x", "1")], &[BOB])), json!({}));
    assert_eq!(ok_json(&post_form(&upd, &[("y", "2")], &[])), json!({}));
    assert_eq!(
        ok_json(&delete(&gw.service_url(id), &[ALICE])),
        json!({"_id": id})
    );
}

#[test]
fn both_roots_serve_the_service_api() {
    let gw = gw();
    let created = ok_json(&post_form(
        &gw.url("/GMS-web/gms/1/service/request-inbound-callback"),
        &[
            ("_phone_number", "1"),
            ("_provide_code", "true"),
            ("a", "1"),
        ],
        &[],
    ));
    let id = str_field(&created, "_id");
    let r = post_form(
        &gw.url(&format!("/genesys/1/service/{id}/update")),
        &[("b", "2")],
        &[],
    );
    assert_eq!(ok_json(&r), json!({}));
    let r = post_form(
        &gw.url(&format!("/GMS-web/gms/1/service/{id}/update")),
        &[("c", "3")],
        &[],
    );
    assert_eq!(ok_json(&r), json!({}));
    let m = ok_json(&post_form(
        &gw.url("/GMS-web/gms/1/service/match-interaction"),
        &[
            ("_access_number", str_field(&created, "_access_number")),
            ("_access_code", str_field(&created, "_access_code")),
            ("_return_user_data", "true"),
        ],
        &[IVR],
    ));
    assert_eq!(str_field(&m, "_id"), id);
    assert_eq!(
        (&m["a"], &m["b"], &m["c"]),
        (&json!("1"), &json!("2"), &json!("3"))
    );
    let r = delete(&gw.url(&format!("/GMS-web/gms/1/service/{id}")), &[]);
    assert_eq!(ok_json(&r), json!({"_id": id}));
    assert_error(&delete(&gw.service_url(id), &[]), 404);
}

#[test]
fn a_gms_user_that_is_not_utf8_is_refused_not_taken_as_no_user() {
    let gw = Gateway::start(STD_GMS);
    let body = "_phone_number=5";
    let mut raw = format!(
        "POST /genesys/1/service/request-interaction HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Connection: close\r\ngms_user: al",
        gw.host(),
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(b"\xff\xfeice\r\n\r\n");
    raw.extend_from_slice(body.as_bytes());
    let (_, resp) = raw_request(gw.port(), &raw);
    let v = assert_error(&parse_response(&resp).expect("a response"), 400);
    assert!(
        v["message"].as_str().unwrap_or("").contains("gms_user"),
        "{v}"
    );
}
