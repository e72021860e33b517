//! Storage API: create / update / get / binary / delete, TTLs, custom ids, ownership.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const ALICE: (&str, &str) = ("gms_user", "alice");
const BOB: (&str, &str) = ("gms_user", "bob");

fn gw() -> Gateway {
    Gateway::start(STD_GMS)
}

/// The id of a `{"id": ...}` reply.
fn id_of(v: &Value) -> String {
    let id = str_field(v, "id");
    assert!(!id.is_empty(), "empty id: {v}");
    id.to_string()
}

fn store_form(
    gw: &Gateway,
    ttl: &str,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> String {
    id_of(&ok_json(&post_form(&gw.storage_url(ttl), fields, headers)))
}

#[test]
fn urlencoded_create_then_get_all_and_get_key() {
    let gw = gw();
    let id = store_form(
        &gw,
        "60",
        &[("name", "John Doe"), ("city", "Zürich & co")],
        &[],
    );
    assert_eq!(
        ok_json(&get(&gw.storage_url(&id), &[])),
        json!({"name": "John Doe", "city": "Zürich & co"})
    );
    let r = get(&gw.storage_url(&format!("{id}/city")), &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.content_type().starts_with("text/plain"),
        "{:?}",
        r.headers
    );
    assert_eq!(r.text(), "Zürich & co");
}

#[test]
fn json_create_then_get_all() {
    let gw = gw();
    let v = ok_json(&post_json(
        &gw.storage_url("60"),
        &json!({"a": "x", "b": "with \"quotes\" and\nnewline"}),
        &[],
    ));
    let id = id_of(&v);
    assert_eq!(
        ok_json(&get(&gw.storage_url(&id), &[])),
        json!({"a": "x", "b": "with \"quotes\" and\nnewline"})
    );
}

#[test]
fn multipart_file_round_trip_via_get_all_key_and_binary() {
    let gw = gw();
    let pdf = fake_jpeg(20_000);
    let mp = Multipart::new().text("note", "see attachment").file(
        "doc",
        "report.pdf",
        "application/pdf",
        &pdf,
    );
    let id = id_of(&ok_json(&post_multipart(&gw.storage_url("60"), &mp, &[])));
    let url = gw.binary_url(&id, "doc");
    assert_eq!(
        ok_json(&get(&gw.storage_url(&id), &[])),
        json!({"note": "see attachment", "doc": url})
    );
    // the binary URL always uses the first prefix, whatever root was asked
    assert_eq!(
        ok_json(&get(&gw.url(&format!("/GMS-web/gms/1/storage/{id}")), &[])),
        json!({"note": "see attachment", "doc": url})
    );

    let bin = get(&url, &[]);
    assert_eq!(bin.status, 200);
    assert_eq!(bin.body, pdf);
    assert!(
        bin.content_type().starts_with("application/pdf"),
        "{:?}",
        bin.headers
    );
    let disp = bin.header("content-disposition").unwrap_or("");
    assert!(disp.contains("report.pdf"), "content-disposition {disp:?}");

    let key = get(&gw.storage_url(&format!("{id}/doc")), &[]);
    assert_eq!(key.status, 200);
    assert_eq!(key.body, pdf);
    assert!(key.content_type().starts_with("application/pdf"));

    let via_other_root = get(
        &gw.url(&format!("/GMS-web/gms/1/storage/binary/{id}/doc")),
        &[],
    );
    assert_eq!(via_other_root.status, 200);
    assert_eq!(via_other_root.body, pdf);
}

#[test]
fn external_url_base_is_used_for_binary_urls() {
    let gw = Gateway::start(&format!(
        "external_url_base: \"http://gms.example.com:8080\"\n{STD_GMS}"
    ));
    let mp = Multipart::new().file("pic", "a.png", "image/png", &fake_jpeg(100));
    let id = id_of(&ok_json(&post_multipart(&gw.storage_url("60"), &mp, &[])));
    let all = ok_json(&get(&gw.storage_url(&id), &[]));
    assert_eq!(
        all["pic"],
        format!("http://gms.example.com:8080/genesys/1/storage/binary/{id}/pic").as_str()
    );
}

#[test]
fn unknown_id_or_key_is_404() {
    let gw = gw();
    let id = store_form(&gw, "60", &[("a", "1")], &[]);
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(&get(&gw.storage_url(&unknown), &[]), 404);
    assert_error(&get(&gw.storage_url(&format!("{unknown}/a")), &[]), 404);
    assert_error(&get(&gw.storage_url(&format!("{id}/nope")), &[]), 404);
    assert_error(
        &get(&gw.storage_url(&format!("binary/{id}/nope")), &[]),
        404,
    );
    assert_error(
        &get(&gw.storage_url(&format!("binary/{unknown}/a")), &[]),
        404,
    );
    assert_error(
        &post_form(
            &gw.storage_url(&format!("{unknown}/60")),
            &[("a", "1")],
            &[],
        ),
        404,
    );
    assert_error(&delete(&gw.storage_url(&unknown), &[]), 404);
}

#[test]
fn update_merges_values_and_keeps_the_id() {
    let gw = gw();
    let id = store_form(&gw, "60", &[("a", "1"), ("b", "2")], &[]);
    let v = ok_json(&post_form(
        &gw.storage_url(&format!("{id}/60")),
        &[("b", "3"), ("c", "4")],
        &[],
    ));
    assert_eq!(v, json!({"id": id}));
    assert_eq!(
        ok_json(&get(&gw.storage_url(&id), &[])),
        json!({"a": "1", "b": "3", "c": "4"})
    );
    // a string can be replaced by a file
    let img = fake_jpeg(500);
    let mp = Multipart::new().file("a", "a.jpg", "image/jpeg", &img);
    ok_json(&post_multipart(
        &gw.storage_url(&format!("{id}/60")),
        &mp,
        &[],
    ));
    let all = ok_json(&get(&gw.storage_url(&id), &[]));
    assert_eq!(all["a"], gw.binary_url(&id, "a").as_str());
    assert_eq!(get(&gw.storage_url(&format!("{id}/a")), &[]).body, img);
}

#[test]
fn update_restarts_the_ttl() {
    let gw = gw();
    // shortened: 60 s, then 1 s from the update on
    let short = store_form(&gw, "60", &[("a", "1")], &[]);
    ok_json(&post_form(
        &gw.storage_url(&format!("{short}/1")),
        &[("b", "2")],
        &[],
    ));
    // lengthened: 3 s, then 60 s from the update on
    let long = store_form(&gw, "3", &[("a", "1")], &[]);
    ok_json(&post_form(
        &gw.storage_url(&format!("{long}/60")),
        &[("b", "2")],
        &[],
    ));
    std::thread::sleep(Duration::from_millis(4000));
    assert_error(&get(&gw.storage_url(&short), &[]), 404);
    assert_eq!(
        ok_json(&get(&gw.storage_url(&long), &[])),
        json!({"a": "1", "b": "2"})
    );
}

#[test]
fn delete_replies_with_id_and_removes_the_entry() {
    let gw = gw();
    let mp = Multipart::new().text("a", "1").file(
        "f",
        "f.bin",
        "application/octet-stream",
        &fake_jpeg(64),
    );
    let id = id_of(&ok_json(&post_multipart(&gw.storage_url("60"), &mp, &[])));
    assert_eq!(
        ok_json(&delete(&gw.storage_url(&id), &[])),
        json!({"id": id})
    );
    assert_error(&get(&gw.storage_url(&id), &[]), 404);
    assert_error(&get(&gw.storage_url(&format!("{id}/a")), &[]), 404);
    assert_error(&get(&gw.storage_url(&format!("binary/{id}/f")), &[]), 404);
    assert_error(&delete(&gw.storage_url(&id), &[]), 404);
}

#[test]
fn keys_beginning_with_underscore_are_allowed() {
    let gw = gw();
    let id = store_form(&gw, "60", &[("_private", "p"), ("plain", "q")], &[]);
    assert_eq!(
        ok_json(&get(&gw.storage_url(&id), &[])),
        json!({"_private": "p", "plain": "q"})
    );
    let r = get(&gw.storage_url(&format!("{id}/_private")), &[]);
    assert_eq!((r.status, r.text()), (200, "p".to_string()));
}

#[test]
fn empty_body_creates_an_empty_entry() {
    let gw = gw();
    let id = id_of(&ok_json(&post_empty(&gw.storage_url("60"), &[])));
    assert_eq!(ok_json(&get(&gw.storage_url(&id), &[])), json!({}));
}

#[test]
fn non_positive_or_non_numeric_ttl_means_30_and_ttl_1_expires() {
    let gw = gw();
    let ids: Vec<String> = ["0", "-5", "abc"]
        .iter()
        .map(|ttl| store_form(&gw, ttl, &[("ttl", ttl)], &[]))
        .collect();
    let one = store_form(&gw, "1", &[("ttl", "1")], &[]);
    std::thread::sleep(Duration::from_millis(2500));
    for (id, ttl) in ids.iter().zip(["0", "-5", "abc"]) {
        assert_eq!(
            ok_json(&get(&gw.storage_url(id), &[])),
            json!({"ttl": ttl}),
            "ttl {ttl} must mean 30 s"
        );
    }
    assert_error(&get(&gw.storage_url(&one), &[]), 404);
}

#[test]
fn ttl_over_max_ttl_is_cut_not_rejected() {
    let gw = Gateway::start(&format!("limits: {{max_ttl: 100}}\n{STD_GMS}"));
    let id = store_form(&gw, "100000", &[("a", "1")], &[]);
    assert_eq!(ok_json(&get(&gw.storage_url(&id), &[])), json!({"a": "1"}));
}

#[test]
fn custom_id_requires_gms_user() {
    let gw = gw();
    let r = post_form(&gw.storage_url("custom/my-profile/60"), &[("a", "1")], &[]);
    assert_error(&r, 400);
    assert_error(&get(&gw.storage_url("my-profile"), &[]), 404);
}

#[test]
fn custom_id_is_stored_under_that_name_for_its_owner() {
    let gw = gw();
    let cid = format!("profile-{}", uuid::Uuid::new_v4().simple());
    let v = ok_json(&post_form(
        &gw.storage_url(&format!("custom/{cid}/60")),
        &[("a", "1"), ("b", "2")],
        &[ALICE],
    ));
    assert_eq!(v, json!({"id": cid}));
    assert_eq!(
        ok_json(&get(&gw.storage_url(&cid), &[ALICE])),
        json!({"a": "1", "b": "2"})
    );
    assert_error(&get(&gw.storage_url(&cid), &[]), 404);
    assert_error(&get(&gw.storage_url(&cid), &[BOB]), 404);

    // someone else cannot take it over
    let r = post_form(
        &gw.storage_url(&format!("custom/{cid}/60")),
        &[("evil", "1")],
        &[BOB],
    );
    assert_error(&r, 404);

    // the owner replaces it
    let v = ok_json(&post_form(
        &gw.storage_url(&format!("custom/{cid}/60")),
        &[("c", "3")],
        &[ALICE],
    ));
    assert_eq!(v, json!({"id": cid}));
    assert_eq!(
        ok_json(&get(&gw.storage_url(&cid), &[ALICE])),
        json!({"c": "3"})
    );
}

#[test]
fn custom_id_over_an_entry_owned_by_nobody_is_404() {
    let gw = gw();
    let id = store_form(&gw, "60", &[("a", "1")], &[]);
    let r = post_form(
        &gw.storage_url(&format!("custom/{id}/60")),
        &[("b", "2")],
        &[ALICE],
    );
    assert_error(&r, 404);
    assert_eq!(ok_json(&get(&gw.storage_url(&id), &[])), json!({"a": "1"}));
}

#[test]
fn gms_user_owns_storage_entries() {
    let gw = gw();
    let mp = Multipart::new()
        .text("a", "1")
        .file("f", "f.txt", "text/plain", b"file body");
    let id = id_of(&ok_json(&post_multipart(
        &gw.storage_url("60"),
        &mp,
        &[ALICE],
    )));
    for other in [&[][..], &[BOB][..]] {
        assert_error(&get(&gw.storage_url(&id), other), 404);
        assert_error(&get(&gw.storage_url(&format!("{id}/a")), other), 404);
        assert_error(
            &post_form(&gw.storage_url(&format!("{id}/60")), &[("a", "2")], other),
            404,
        );
        assert_error(&delete(&gw.storage_url(&id), other), 404);
    }
    let all = ok_json(&get(&gw.storage_url(&id), &[ALICE]));
    assert_eq!(all["a"], "1", "failed updates must not change data: {all}");
    let r = get(&gw.storage_url(&format!("{id}/a")), &[ALICE]);
    assert_eq!((r.status, r.text()), (200, "1".to_string()));
    ok_json(&post_form(
        &gw.storage_url(&format!("{id}/60")),
        &[("b", "2")],
        &[ALICE],
    ));
    assert_eq!(
        ok_json(&delete(&gw.storage_url(&id), &[ALICE])),
        json!({"id": id})
    );
}

#[test]
fn storage_without_gms_user_is_open_to_everyone() {
    let gw = gw();
    let id = store_form(&gw, "60", &[("a", "1")], &[]);
    assert_eq!(
        ok_json(&get(&gw.storage_url(&id), &[BOB])),
        json!({"a": "1"})
    );
    ok_json(&post_form(
        &gw.storage_url(&format!("{id}/60")),
        &[("b", "2")],
        &[ALICE],
    ));
    assert_eq!(
        ok_json(&get(&gw.storage_url(&id), &[])),
        json!({"a": "1", "b": "2"})
    );
    assert_eq!(
        ok_json(&delete(&gw.storage_url(&id), &[BOB])),
        json!({"id": id})
    );
}

#[test]
fn both_roots_serve_the_storage_api() {
    let gw = gw();
    let v = ok_json(&post_form(
        &gw.url("/GMS-web/gms/1/storage/60"),
        &[("a", "1")],
        &[],
    ));
    let id = id_of(&v);
    assert_eq!(ok_json(&get(&gw.storage_url(&id), &[])), json!({"a": "1"}));
    let r = get(&gw.url(&format!("/GMS-web/gms/1/storage/{id}/a")), &[]);
    assert_eq!((r.status, r.text()), (200, "1".to_string()));
    assert_eq!(
        ok_json(&delete(
            &gw.url(&format!("/GMS-web/gms/1/storage/{id}")),
            &[]
        )),
        json!({"id": id})
    );
}
