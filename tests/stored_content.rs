//! Stored values are served inert (issue 15 item 2): the web tier shares the API's host and
//! port, so a stored HTML or SVG file must never run as script in that origin. Every stored
//! value served back carries `X-Content-Type-Options: nosniff` and
//! `Content-Security-Policy: default-src 'none'; sandbox`; files are attachments with a safe
//! filename (RFC 6266); text values are `text/plain; charset=utf-8` whatever was claimed.

mod common;

use common::*;

const CSP: &str = "default-src 'none'; sandbox";
const PAGE: &[u8] = b"<html><script>alert(document.cookie)</script></html>";
const SVG: &[u8] = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>";

/// A multipart body with a text part that claims `text/html` (no filename: a text value), an
/// HTML file, an SVG file with a non-ASCII name and one with a path in its name.
fn hostile_body() -> (String, Vec<u8>) {
    let mut body = Vec::new();
    let mut part = |head: &str, content: &[u8]| {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n{head}\r\n\r\n").as_bytes());
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    };
    part(
        "Content-Disposition: form-data; name=\"note\"\r\nContent-Type: text/html",
        PAGE,
    );
    part(
        "Content-Disposition: form-data; name=\"page\"; filename=\"x.html\"\r\nContent-Type: text/html",
        PAGE,
    );
    part(
        "Content-Disposition: form-data; name=\"logo\"; filename=\"r\u{e9}sum\u{e9}.svg\"\r\nContent-Type: image/svg+xml",
        SVG,
    );
    part(
        "Content-Disposition: form-data; name=\"up\"; filename=\"../../etc/x\\\"y.html\"\r\nContent-Type: text/html",
        PAGE,
    );
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

fn assert_inert(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what}: {}", r.text());
    assert_eq!(
        r.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(r.header("content-security-policy"), Some(CSP), "{what}");
}

#[test]
fn stored_html_and_svg_are_served_as_inert_attachments() {
    let gw = Gateway::start(STD_GMS);
    let (ct, body) = hostile_body();
    let created = ok_json(&post_raw(&gw.storage_url("86400"), &ct, &body, &[]));
    let id = str_field(&created, "id").to_string();

    // A text value is text/plain, whatever its part claimed.
    let note = get(&gw.storage_url(&format!("{id}/note")), &[]);
    assert_inert(&note, "text value");
    assert_eq!(note.content_type(), "text/plain; charset=utf-8");
    assert_eq!(note.body, PAGE);
    assert!(note.header("content-disposition").is_none());

    // A file: its bytes and type, as an attachment, by both routes.
    for url in [
        gw.storage_url(&format!("{id}/page")),
        gw.binary_url(&id, "page"),
    ] {
        let r = get(&url, &[]);
        assert_inert(&r, &url);
        assert_eq!(r.body, PAGE);
        assert_eq!(
            r.header("content-disposition"),
            Some("attachment; filename=\"x.html\""),
            "{url}"
        );
    }
    let logo = get(&gw.binary_url(&id, "logo"), &[]);
    assert_inert(&logo, "svg");
    assert_eq!(logo.content_type(), "image/svg+xml");
    assert_eq!(
        logo.header("content-disposition"),
        Some("attachment; filename=\"r_sum_.svg\"; filename*=UTF-8''r%C3%A9sum%C3%A9.svg")
    );
    // A name with a path and a quote: the last segment, quote replaced, no way out of the
    // quoted string.
    let up = get(&gw.binary_url(&id, "up"), &[]);
    assert_inert(&up, "path in the name");
    let disp = up.header("content-disposition").unwrap_or_default();
    assert!(
        disp.starts_with("attachment; filename=\"x_y.html\""),
        "{disp}"
    );

    // The JSON of all values carries the same headers.
    let all = get(&gw.storage_url(&id), &[]);
    assert_inert(&all, "all values");
    assert!(all.content_type().starts_with("application/json"));
}
