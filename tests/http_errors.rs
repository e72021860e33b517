//! HTTP-level errors: 404 / 405 / 413 / 415 / 400 with JSON bodies, parameter
//! merging rules, and a gateway that keeps serving after bad requests.

mod common;

use common::*;
use serde_json::json;

fn gw() -> Gateway {
    Gateway::start(STD_GMS)
}

fn with_limits(limits: &str) -> Gateway {
    Gateway::start(&format!("limits: {limits}\n{STD_GMS}"))
}

/// A plain request line + headers for the raw socket.
fn raw_head(gw: &Gateway, method: &str, path: &str, extra: &str) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{extra}\r\n",
        gw.host()
    )
}

fn assert_raw_error(raw: &(u16, Vec<u8>), status: u16) {
    let resp = parse_response(&raw.1)
        .unwrap_or_else(|| panic!("no HTTP response: {:?}", String::from_utf8_lossy(&raw.1)));
    assert_error(&resp, status);
}

fn still_serving(gw: &mut Gateway) {
    gw.assert_alive();
    assert_eq!(
        get(&gw.url("/genesys/1/admin/node/health"), &[]).status,
        200
    );
    let v = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "1"), ("_provide_code", "true")],
    );
    assert!(is_uuid_v4(str_field(&v, "_id")), "{v}");
    let v = ok_json(&post_form(&gw.storage_url("60"), &[("a", "1")], &[]));
    assert!(v.get("id").is_some(), "{v}");
}

#[test]
fn unmatched_paths_under_a_root_are_404_json() {
    let gw = gw();
    for path in [
        "/genesys/1/",
        "/genesys/1/nothing",
        "/genesys/1/foo/bar",
        "/genesys/1/storage/a/b/c/d/e",
        "/genesys/1/service/a/b/c/d",
        "/GMS-web/gms/1/nothing",
    ] {
        assert_error(&get(&gw.url(path), &[]), 404);
        assert_error(&post_form(&gw.url(path), &[("a", "1")], &[]), 404);
    }
}

#[test]
fn non_api_paths_without_backend_are_404_json() {
    let gw = gw();
    for path in [
        "/",
        "/index.html",
        "/genesys/2/service/x",
        "/genesys/12/x",
        "/app/x?y=1",
    ] {
        assert_error(&get(&gw.url(path), &[]), 404);
    }
    assert_error(
        &post_raw(&gw.url("/app/submit"), "text/plain", b"hello", &[]),
        404,
    );
}

#[test]
fn known_paths_with_wrong_method_are_405_json() {
    let gw = gw();
    // GET reads office hours and capacity (gms-callback.md §10): another method is the 405.
    let r = request("PUT", &gw.service_url("request-interaction"), &[], None);
    assert_error(&r, 405);
    assert_eq!(
        r.header("allow"),
        Some("GET, POST, DELETE"),
        "405 without Allow"
    );
    let r = get(&gw.storage_url("custom/mine/60"), &[]);
    assert_error(&r, 405);
    assert_eq!(r.header("allow"), Some("POST"), "405 without Allow");
    assert_error(
        &request(
            "PUT",
            &gw.service_url("request-interaction"),
            &[],
            Some(("application/x-www-form-urlencoded", b"a=1")),
        ),
        405,
    );
    assert_error(
        &request(
            "PUT",
            &gw.storage_url("30"),
            &[],
            Some(("application/x-www-form-urlencoded", b"a=1")),
        ),
        405,
    );
    let id = uuid::Uuid::new_v4().to_string();
    let r = request(
        "PUT",
        &gw.url(&format!("/genesys/1/service/{id}/update")),
        &[],
        None,
    );
    assert_error(&r, 405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    assert_error(
        &request(
            "PATCH",
            &gw.url("/GMS-web/gms/1/service/request-interaction"),
            &[],
            None,
        ),
        405,
    );
}

#[test]
fn body_over_max_body_bytes_is_413() {
    let mut gw = with_limits("{max_body_bytes: 2048}");
    let big = "x".repeat(5000);
    let r = post_form(&gw.storage_url("60"), &[("a", &big)], &[]);
    assert_error(&r, 413);
    let r = post_json(&gw.storage_url("60"), &json!({"a": big}), &[]);
    assert_error(&r, 413);
    let mp = Multipart::new().file("f", "f.bin", "application/octet-stream", big.as_bytes());
    let r = post_multipart(&gw.service_url("request-interaction"), &mp, &[]);
    assert_error(&r, 413);
    // just under the limit is fine
    let ok = "y".repeat(1500);
    ok_json(&post_form(&gw.storage_url("60"), &[("a", &ok)], &[]));
    still_serving(&mut gw);
}

#[test]
fn chunked_body_over_max_body_bytes_is_413() {
    let mut gw = with_limits("{max_body_bytes: 2048}");
    let mut req = raw_head(
        &gw,
        "POST",
        "/genesys/1/storage/60",
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n",
    )
    .into_bytes();
    req.extend_from_slice(b"2\r\na=\r\n");
    for _ in 0..10 {
        req.extend_from_slice(format!("1f4\r\n{}\r\n", "x".repeat(500)).as_bytes());
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let raw = raw_request(gw.port(), &req);
    assert_raw_error(&raw, 413);
    still_serving(&mut gw);
}

#[test]
fn chunked_body_within_limits_is_accepted() {
    let gw = with_limits("{max_body_bytes: 2048}");
    let mut req = raw_head(
        &gw,
        "POST",
        "/genesys/1/storage/60",
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n",
    )
    .into_bytes();
    req.extend_from_slice(b"4\r\na=12\r\n3\r\n&b=\r\n1\r\nz\r\n0\r\n\r\n");
    let (status, bytes) = raw_request(gw.port(), &req);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    let v = parse_response(&bytes).expect("response").json();
    let id = str_field(&v, "id");
    assert_eq!(
        ok_json(&get(&gw.storage_url(id), &[])),
        json!({"a": "12", "b": "z"})
    );
}

#[test]
fn more_fields_than_max_fields_is_413() {
    let mut gw = with_limits("{max_fields: 8}");
    let names: Vec<String> = (0..9).map(|i| format!("f{i}")).collect();
    let nine: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
    assert_error(&post_form(&gw.storage_url("60"), &nine, &[]), 413);
    let mut mp = Multipart::new();
    for n in &names {
        mp = mp.text(n, "v");
    }
    assert_error(&post_multipart(&gw.storage_url("60"), &mp, &[]), 413);
    let obj: serde_json::Map<String, serde_json::Value> =
        names.iter().map(|n| (n.clone(), json!("v"))).collect();
    assert_error(
        &post_json(&gw.storage_url("60"), &serde_json::Value::Object(obj), &[]),
        413,
    );
    // exactly max_fields is fine
    ok_json(&post_form(&gw.storage_url("60"), &nine[..8], &[]));
    still_serving(&mut gw);
}

#[test]
fn text_value_over_max_field_bytes_is_413() {
    let mut gw = with_limits("{max_field_bytes: 256}");
    let long = "x".repeat(257);
    assert_error(&post_form(&gw.storage_url("60"), &[("a", &long)], &[]), 413);
    assert_error(
        &post_multipart(
            &gw.storage_url("60"),
            &Multipart::new().text("a", &long),
            &[],
        ),
        413,
    );
    assert_error(
        &gw.create(
            "request-interaction",
            &[("_phone_number", "1"), ("note", &long)],
        ),
        413,
    );
    let exact = "x".repeat(256);
    let id = str_field(
        &ok_json(&post_form(&gw.storage_url("60"), &[("a", &exact)], &[])),
        "id",
    )
    .to_string();
    assert_eq!(
        ok_json(&get(&gw.storage_url(&id), &[])),
        json!({"a": exact})
    );
    // a file is not a text value: it may be bigger than max_field_bytes
    let mp = Multipart::new().file("f", "f.bin", "application/octet-stream", &fake_jpeg(1000));
    ok_json(&post_multipart(&gw.storage_url("60"), &mp, &[]));
    still_serving(&mut gw);
}

#[test]
fn file_over_max_file_bytes_is_413() {
    let mut gw = with_limits("{max_file_bytes: 1024}");
    let mp = Multipart::new().file("f", "f.bin", "application/octet-stream", &fake_jpeg(2000));
    assert_error(&post_multipart(&gw.storage_url("60"), &mp, &[]), 413);
    let mp = Multipart::new().text("_phone_number", "1").file(
        "f",
        "f.bin",
        "application/octet-stream",
        &fake_jpeg(2000),
    );
    assert_error(
        &post_multipart(&gw.service_url("request-interaction"), &mp, &[]),
        413,
    );
    let mp = Multipart::new().file("f", "f.bin", "application/octet-stream", &fake_jpeg(1024));
    ok_json(&post_multipart(&gw.storage_url("60"), &mp, &[]));
    still_serving(&mut gw);
}

#[test]
fn unsupported_content_types_are_415() {
    let mut gw = gw();
    assert_error(
        &post_raw(&gw.storage_url("60"), "text/plain", b"a=1", &[]),
        415,
    );
    assert_error(
        &post_raw(
            &gw.service_url("request-interaction"),
            "application/xml",
            b"<a>1</a>",
            &[],
        ),
        415,
    );
    still_serving(&mut gw);
}

#[test]
fn broken_multipart_bodies_are_400() {
    let mut gw = gw();
    let url = gw.storage_url("60");
    let (_, body) = Multipart::new().text("a", "1").build();
    assert_error(&post_raw(&url, "multipart/form-data", &body, &[]), 400);
    assert_error(
        &post_raw(
            &url,
            "multipart/form-data; boundary=NotTheBoundary",
            &body,
            &[],
        ),
        400,
    );
    assert_error(
        &post_raw(
            &url,
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            b"this is not multipart at all",
            &[],
        ),
        400,
    );
    // truncated: no closing boundary
    let cut = &body[..body.len() - BOUNDARY.len() - 8];
    assert_error(
        &post_raw(
            &url,
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            cut,
            &[],
        ),
        400,
    );
    // a text part that is not UTF-8
    let bad = Multipart::new().text_bytes("a", &[0x66, 0xFF, 0xFE]);
    assert_error(&post_multipart(&url, &bad, &[]), 400);
    still_serving(&mut gw);
}

#[test]
fn malformed_json_bodies_are_400() {
    let mut gw = gw();
    let url = gw.storage_url("60");
    for body in [
        r#"{"a":"#,
        r#"["a", "b"]"#,
        r#"{"a": {"b": "c"}}"#,
        r#"{"a": ["b"]}"#,
        r#""just a string""#,
        r#"{"a": "nul\u0000inside"}"#,
    ] {
        let r = post_raw(&url, "application/json", body.as_bytes(), &[]);
        assert_error(&r, 400);
    }
    let r = post_raw(
        &gw.service_url("request-interaction"),
        "application/json",
        br#"{"_phone_number": {"x": "1"}}"#,
        &[],
    );
    assert_error(&r, 400);
    still_serving(&mut gw);
}

#[test]
fn malformed_urlencoded_bodies_are_400() {
    let mut gw = gw();
    let url = gw.storage_url("60");
    let ct = "application/x-www-form-urlencoded";
    for body in [
        &b"a=%zz"[..],
        b"a=%F",
        b"a=%FF%FE",
        b"%FF=1",
        b"a=%00",
        b"a=\xff\xfe",
    ] {
        let r = post_raw(&url, ct, body, &[]);
        assert_error(&r, 400);
    }
    still_serving(&mut gw);
}

#[test]
fn query_parameters_merge_with_the_body() {
    let gw = gw();
    let url = gw.service_url("request-interaction");
    // a body lacking _phone_number, the query has it
    let v = ok_json(&post_form(
        &format!("{url}?_phone_number=555"),
        &[("_provide_code", "true")],
        &[],
    ));
    assert!(v.get("_access_code").is_some(), "{v}");
    // no body at all
    let v = ok_json(&post_empty(
        &format!("{url}?_phone_number=555&_provide_code=true&_resource_group=SOLO"),
        &[],
    ));
    assert_eq!(str_field(&v, "_access_number"), SOLO);
    // the body wins over the query
    let v = ok_json(&post_form(
        &format!("{url}?_phone_number=555&_resource_group=NOPE"),
        &[("_resource_group", "SOLO"), ("_provide_code", "true")],
        &[],
    ));
    assert_eq!(str_field(&v, "_access_number"), SOLO);
    // JSON body wins too
    let v = ok_json(&post_json(
        &format!("{url}?_resource_group=NOPE&_provide_code=true"),
        &json!({"_phone_number": "1", "_resource_group": "SOLO"}),
        &[],
    ));
    assert_eq!(str_field(&v, "_access_number"), SOLO);
}

#[test]
fn first_of_a_repeated_name_wins() {
    let gw = gw();
    let url = gw.service_url("request-interaction");
    let base = [("_phone_number", "1"), ("_provide_code", "true")];
    let mut f = base.to_vec();
    f.extend([("_resource_group", "SOLO"), ("_resource_group", "NOPE")]);
    assert_eq!(
        str_field(&ok_json(&post_form(&url, &f, &[])), "_access_number"),
        SOLO
    );
    let mut f = base.to_vec();
    f.extend([("_resource_group", "NOPE"), ("_resource_group", "SOLO")]);
    assert_error(&post_form(&url, &f, &[]), 400);
    // in the query string as well
    let v = ok_json(&post_form(
        &format!("{url}?_resource_group=SOLO&_resource_group=NOPE"),
        &base,
        &[],
    ));
    assert_eq!(str_field(&v, "_access_number"), SOLO);
    // and in multipart
    let mp = Multipart::new()
        .text("_phone_number", "1")
        .text("_provide_code", "true")
        .text("_resource_group", "SOLO")
        .text("_resource_group", "NOPE");
    let v = ok_json(&post_multipart(&url, &mp, &[]));
    assert_eq!(str_field(&v, "_access_number"), SOLO);
}

#[test]
fn garbage_and_truncated_requests_do_not_break_the_gateway() {
    let mut gw = gw();
    // garbage request line: a 400 or a closed connection, never a hang
    let (status, _) = raw_request(gw.port(), b"THIS IS NOT HTTP\r\n\r\n");
    assert!(status == 0 || status == 400, "garbage got {status}");
    // a body shorter than its Content-Length, then the client stops sending
    let mut req = raw_head(
        &gw,
        "POST",
        "/genesys/1/storage/60",
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n",
    )
    .into_bytes();
    req.extend_from_slice(b"a=1");
    let (status, _) = raw_request_half_close(gw.port(), &req);
    assert!(status == 0 || status == 400, "truncated body got {status}");
    // a broken chunk size
    let mut req = raw_head(
        &gw,
        "POST",
        "/genesys/1/storage/60",
        "Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n",
    )
    .into_bytes();
    req.extend_from_slice(b"zz\r\na=1\r\n0\r\n\r\n");
    let (status, _) = raw_request(gw.port(), &req);
    assert!(status == 0 || status == 400, "broken chunk got {status}");
    still_serving(&mut gw);
}

#[test]
fn gateway_keeps_serving_after_many_bad_requests() {
    let mut gw = with_limits("{max_body_bytes: 2048}");
    for i in 0..30 {
        let resp = match i % 5 {
            0 => assert_error(&get(&gw.url("/genesys/1/nothing"), &[]), 404),
            1 => assert_error(
                &request("PUT", &gw.service_url("request-interaction"), &[], None),
                405,
            ),
            2 => assert_error(
                &post_form(&gw.storage_url("60"), &[("a", &"x".repeat(3000))], &[]),
                413,
            ),
            3 => assert_error(
                &post_raw(&gw.storage_url("60"), "text/plain", b"x", &[]),
                415,
            ),
            _ => assert_error(
                &post_raw(&gw.storage_url("60"), "application/json", b"[1]", &[]),
                400,
            ),
        };
        assert!(resp.get("message").is_some());
    }
    still_serving(&mut gw);
}
