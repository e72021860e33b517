//! Pass-through of non-API paths to the backend upstreams (ors-sim as an echo server).

mod common;

use common::*;
use serde_json::{json, Value};

fn with_backend(upstreams: &[String], extra: &str) -> Gateway {
    let list = upstreams
        .iter()
        .map(|u| format!("\"{u}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Gateway::start(&format!(
        "backend: {{upstreams: [{list}]}}\n{extra}{STD_GMS}"
    ))
}

/// The echo JSON of a passed-through request (asserts 200 and the instance header).
fn echo(resp: &Resp) -> Value {
    assert_eq!(
        resp.status,
        200,
        "pass-through failed: {} {:?}",
        resp.status,
        resp.text()
    );
    assert!(
        resp.header("x-sim-instance").is_some(),
        "not answered by the backend: {:?}",
        resp.headers
    );
    resp.json()
}

fn query_of(v: &Value) -> String {
    v.get("query")
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim_start_matches('?')
        .to_string()
}

#[test]
fn non_api_requests_pass_through_with_method_path_query_and_body_intact() {
    let sim = OrsSim::start(1);
    let gw = with_backend(&[sim.addr(0)], "");

    let r = post_raw(
        &gw.url("/webapp/submit/form?x=1&y=two"),
        "text/plain",
        b"hello backend",
        &[("X-Custom-Header", "custom value")],
    );
    let v = echo(&r);
    assert_eq!(r.header("x-sim-instance"), Some(sim.addr(0).as_str()));
    assert_eq!(v["instance"], sim.addr(0).as_str());
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/webapp/submit/form");
    assert_eq!(query_of(&v), "x=1&y=two");
    assert_eq!(v["body"], "hello backend");
    assert_eq!(v["body_len"], 13);
    assert_eq!(v["headers"]["x-custom-header"], "custom value");

    let v = echo(&get(&gw.url("/"), &[]));
    assert_eq!((&v["method"], &v["path"]), (&json!("GET"), &json!("/")));

    let v = echo(&request(
        "PUT",
        &gw.url("/genesys/2/service/x"),
        &[],
        Some(("application/json", &br#"{"k":"v"}"#[..])),
    ));
    assert_eq!(v["method"], "PUT");
    assert_eq!(v["path"], "/genesys/2/service/x");
    assert_eq!(v["body"], r#"{"k":"v"}"#);

    let v = echo(&delete(&gw.url("/genesys/12/thing?z=9"), &[]));
    assert_eq!(v["method"], "DELETE");
    assert_eq!(v["path"], "/genesys/12/thing");
    assert_eq!(query_of(&v), "z=9");
}

#[test]
fn large_bodies_pass_through_unchanged() {
    let sim = OrsSim::start(1);
    let gw = with_backend(&[sim.addr(0)], "");
    let body: String = (0..200_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let v = echo(&post_raw(
        &gw.url("/upload"),
        "text/plain",
        body.as_bytes(),
        &[],
    ));
    assert_eq!(v["body_len"], 200_000);
    assert_eq!(v["body"], body.as_str());
}

#[test]
fn api_paths_are_not_passed_through() {
    let sim = OrsSim::start(1);
    let gw = with_backend(&[sim.addr(0)], "");
    let r = gw.create(
        "request-interaction",
        &[("_phone_number", "1"), ("_provide_code", "true")],
    );
    assert!(r.header("x-sim-instance").is_none(), "{:?}", r.headers);
    let v = ok_json(&r);
    assert!(DNIS.contains(&str_field(&v, "_access_number")), "{v}");
    let h = get(&gw.url("/genesys/1/admin/node/health"), &[]);
    assert_eq!(h.status, 200);
    assert!(h.header("x-sim-instance").is_none());
    // an unknown service without fallback_to_backend is the gateway's 404
    let r = gw.create("no-such-service", &[("a", "1")]);
    assert!(r.header("x-sim-instance").is_none());
    assert_error(&r, 404);
}

#[test]
fn two_upstreams_both_receive_requests() {
    let sim = OrsSim::start(2);
    let gw = with_backend(&[sim.addr(0), sim.addr(1)], "");
    let mut seen = Vec::new();
    for i in 0..20 {
        let v = echo(&get(&gw.url(&format!("/page/{i}")), &[]));
        assert_eq!(v["path"], format!("/page/{i}").as_str());
        seen.push(v["instance"].as_str().unwrap_or("").to_string());
    }
    let counts = tally(seen);
    for i in 0..2 {
        let n = counts.get(&sim.addr(i)).copied().unwrap_or(0);
        assert!(
            n >= 1,
            "instance {} got no request: {counts:?}",
            sim.addr(i)
        );
    }
    assert_eq!(counts.values().sum::<usize>(), 20, "{counts:?}");
}

#[test]
fn dead_upstream_is_skipped_and_every_request_succeeds() {
    let sim = OrsSim::start(1);
    let dead = format!("127.0.0.1:{}", free_port());
    let gw = with_backend(&[dead, sim.addr(0)], "");
    for i in 0..20 {
        let path = format!("/retry/{i}");
        let r = if i % 2 == 0 {
            get(&gw.url(&path), &[])
        } else {
            post_raw(&gw.url(&path), "text/plain", b"payload", &[])
        };
        let v = echo(&r);
        assert_eq!(v["instance"], sim.addr(0).as_str());
        assert_eq!(v["path"], path.as_str());
        if i % 2 == 1 {
            assert_eq!(v["body"], "payload");
        }
    }
}

#[test]
fn unknown_service_falls_back_to_backend_when_enabled() {
    let sim = OrsSim::start(1);
    let gw = with_backend(&[sim.addr(0)], "fallback_to_backend: true\n");
    let r = post_form(
        &gw.service_url("legacy-service"),
        &[("a", "1"), ("_b", "two words")],
        &[],
    );
    let v = echo(&r);
    assert_eq!(v["method"], "POST");
    assert_eq!(v["path"], "/genesys/1/service/legacy-service");
    assert_eq!(v["body"], "a=1&_b=two+words");
    // configured services are still the gateway's
    let r = gw.create(
        "request-interaction",
        &[("_phone_number", "1"), ("_provide_code", "true")],
    );
    assert!(r.header("x-sim-instance").is_none());
    ok_json(&r);
}

#[test]
fn without_backend_non_api_paths_are_404_json() {
    let gw = Gateway::start(STD_GMS);
    assert_error(&get(&gw.url("/webapp/index.html"), &[]), 404);
    assert_error(
        &post_raw(&gw.url("/webapp/submit"), "text/plain", b"x", &[]),
        404,
    );
}

#[test]
fn hop_by_hop_headers_stay_on_the_client_connection() {
    let sim = OrsSim::start(1);
    let gw = with_backend(&[sim.addr(0)], "");
    let (status, raw) = raw_request(
        gw.port(),
        b"GET /page?x=1 HTTP/1.1\r\nHost: web.example\r\nConnection: keep-alive, X-Drop-Me\r\n\
          X-Drop-Me: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eA==\r\n\
          X-Keep: yes\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&raw));
    let v = echo(&parse_response(&raw).expect("a response"));
    let headers = v["headers"].as_object().expect("headers");
    assert_eq!(v["path"], "/page");
    assert_eq!(headers["x-keep"], "yes");
    assert_eq!(headers["host"], "web.example");
    for gone in [
        "connection",
        "x-drop-me",
        "keep-alive",
        "te",
        "proxy-authorization",
    ] {
        assert!(!headers.contains_key(gone), "{gone} was forwarded: {v}");
    }
}

/// A backend written here: what ors-sim never sends (responses ended by close, chunked,
/// large), for each path of the request.
fn raw_backend() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(64) {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || serve_raw(conn));
        }
    });
    addr
}

/// Bytes of the big body: a repeating, position-dependent pattern.
fn big_body(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn serve_raw(mut conn: std::net::TcpStream) {
    use std::io::{Read, Write};
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    for _ in 0..32 {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        let out: Vec<u8> = match path.as_str() {
            "/hang" => {
                // Never answers; gives up after 5 s (the gateway's timeout must come first).
                std::thread::sleep(std::time::Duration::from_secs(5));
                return;
            }
            "/close" => {
                let mut r = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n".to_vec();
                r.extend(big_body(300_000));
                let _ = conn.write_all(&r);
                return;
            }
            "/chunked" => {
                let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for part in ["alpha-", "beta-", "gamma"] {
                    r.extend(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes());
                }
                r.extend(b"0\r\n\r\n");
                r
            }
            _ => b"HTTP/1.1 204 No Content\r\nX-Raw: 1\r\n\r\n".to_vec(),
        };
        if conn.write_all(&out).is_err() {
            return;
        }
    }
}

#[test]
fn responses_of_every_framing_reach_the_client_whole() {
    let backend = raw_backend();
    let gw = with_backend(&[backend], "");
    // Ended by the backend's close: the client gets it all, and keeps its connection.
    let r = get(&gw.url("/close"), &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, big_body(300_000));
    let r = get(&gw.url("/chunked"), &[]);
    assert_eq!((r.status, r.text()), (200, "alpha-beta-gamma".to_string()));
    let r = get(&gw.url("/nothing"), &[]);
    assert_eq!((r.status, r.header("x-raw")), (204, Some("1")));
    let (status, raw) = raw_request(
        gw.port(),
        b"HEAD /chunked HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&raw));
    assert!(raw.ends_with(b"\r\n\r\n"), "HEAD got a body: {raw:?}");
}

/// A backend that takes the request and sends nothing holds no client past
/// `gms.backend.timeout_ms`: 504 JSON, on the gateway's own relay (GET) and through Pingora's
/// proxy (POST). Without the timeout the backend's close after 5 s would be a 502.
#[test]
fn a_backend_that_does_not_answer_in_time_is_504_json() {
    let backend = raw_backend();
    let gw = Gateway::start(&format!(
        "backend: {{upstreams: [\"{backend}\"], timeout_ms: 300}}\n{STD_GMS}"
    ));
    let answers = [
        get(&gw.url("/hang"), &[]),
        post_raw(&gw.url("/hang"), "text/plain", b"x", &[]),
    ];
    for r in answers {
        assert_eq!(r.status, 504, "{:?}", r.text());
        assert_eq!(r.json()["exception"], "GatewayTimeoutException");
    }
}

/// A backend that closes idle kept-alive connections must cost no request: the pooled
/// connection is seen closed, or the fetch is sent again on a fresh one. One upstream only,
/// so that no other backend hides a failure.
#[test]
fn connections_the_backend_closed_while_idle_lose_no_request() {
    let sim = OrsSim::start(1);
    sim.set(0, &json!({"idle_close_ms": 100}));
    let gw = with_backend(&[sim.addr(0)], "");
    for round in 0..4 {
        let v = echo(&get(&gw.url(&format!("/idle/{round}")), &[]));
        assert_eq!(v["path"], format!("/idle/{round}").as_str());
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
