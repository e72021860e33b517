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
            "/no-content-with-length" => {
                b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n".to_vec()
            }
            "/not-modified-with-length" => {
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n".to_vec()
            }
            "/many-headers" => {
                let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n".to_vec();
                for i in 0..130 {
                    r.extend(format!("X-H{i}: v{i}\r\n").as_bytes());
                }
                r.extend(b"\r\nmany");
                r
            }
            "/early" => {
                // Answers before reading the request's body, then keeps the connection open
                // for a while without reading any more, and closes.
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly");
                std::thread::sleep(std::time::Duration::from_secs(2));
                return;
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
/// `gms.backend.timeout_ms`: 504 JSON, with and without a request body. Without the timeout the
/// backend's close after 5 s would be a 502.
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

/// Issue 16: a backend reply with 130 headers is relayed (the limits are Pingora's, the same
/// for every request); a 204 or 304 that names a body length reaches the client without one
/// (issue 15, item 5).
#[test]
fn large_heads_are_relayed_and_bodiless_statuses_carry_no_length() {
    let backend = raw_backend();
    let gw = with_backend(&[backend], "");
    // Raw bytes: ureq refuses a response of more than 100 header fields.
    let (status, raw) = raw_request(
        gw.port(),
        b"GET /many-headers HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    let r = parse_response(&raw).expect("a response");
    assert_eq!((status, r.text()), (200, "many".to_string()));
    assert_eq!(r.header("x-h129"), Some("v129"));
    for (path, status) in [
        ("/no-content-with-length", 204),
        ("/not-modified-with-length", 304),
    ] {
        let head = format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        let (got, raw) = raw_request(gw.port(), head.as_bytes());
        assert_eq!(got, status, "{}", String::from_utf8_lossy(&raw));
        let text = String::from_utf8_lossy(&raw).to_ascii_lowercase();
        assert!(!text.contains("content-length"), "{text}");
        assert!(!text.contains("transfer-encoding"), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
    }
}

/// Issue 16: a backend that answers a POST before reading its 100 KB body: the client gets
/// the backend's answer and nothing the backend did not send (no 431 or 408 of the gateway's
/// read from the rest of the body).
#[test]
fn an_early_backend_answer_is_followed_by_nothing_else() {
    use std::io::{Read, Write};
    let backend = raw_backend();
    let gw = with_backend(&[backend], "");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", gw.port())).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let body = vec![b'b'; 100_000];
    let mut w = s.try_clone().expect("clone");
    let head = format!(
        "POST /early HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(head.as_bytes());
        for piece in body.chunks(10_000) {
            if w.write_all(piece).is_err() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    writer.join().expect("writer");
    let n = complete_len(&out)
        .unwrap_or_else(|| panic!("no complete response: {:?}", String::from_utf8_lossy(&out)));
    let resp = parse_response(&out[..n]).expect("response");
    assert_eq!((resp.status, resp.text()), (200, "early".to_string()));
    assert!(
        out[n..].is_empty(),
        "bytes after the backend's answer: {:?}",
        String::from_utf8_lossy(&out[n..])
    );
}

/// Issue 15, item 5: the web tier learns the client's address, scheme and host; what a client
/// says of itself is replaced unless it comes through a trusted proxy.
#[test]
fn the_web_tier_is_told_who_the_client_is() {
    let sim = OrsSim::start(1);
    let spoof = [
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Real-IP", "6.6.6.6"),
        ("Forwarded", "for=6.6.6.6"),
    ];
    let gw = with_backend(&[sim.addr(0)], "");
    let v = echo(&get(&gw.url("/who"), &spoof));
    let h = &v["headers"];
    assert_eq!(h["x-forwarded-for"], "127.0.0.1", "{v}");
    assert_eq!(h["x-forwarded-proto"], "http", "{v}");
    assert_eq!(h["x-forwarded-host"], gw.host().as_str(), "{v}");
    assert!(
        h.get("x-real-ip").is_none() && h.get("forwarded").is_none(),
        "{v}"
    );

    let gw = with_backend(&[sim.addr(0)], "trusted_proxies: ['127.0.0.0/8']\n");
    let v = echo(&get(&gw.url("/who"), &spoof));
    let h = &v["headers"];
    assert_eq!(h["x-forwarded-for"], "6.6.6.6, 127.0.0.1", "{v}");
    assert_eq!(h["x-forwarded-proto"], "https", "{v}");
    assert_eq!(h["x-forwarded-host"], "evil.example", "{v}");
    assert_eq!(h["x-real-ip"], "6.6.6.6", "{v}");
    assert_eq!(h["forwarded"], "for=6.6.6.6", "{v}");
    let v = echo(&get(&gw.url("/who"), &[]));
    assert_eq!(v["headers"]["x-forwarded-for"], "127.0.0.1", "{v}");
}

/// Issue 15, item 5: `Connection: Host, Cookie` never takes `Host` off a request: Pingora
/// refuses to strip a protected header, and the gateway answers the refusal as JSON.
#[test]
fn hop_by_hop_removal_never_removes_host() {
    let sim = OrsSim::start(1);
    let gw = with_backend(&[sim.addr(0)], "");
    let (status, raw) = raw_request(
        gw.port(),
        b"GET /nominated HTTP/1.1\r\nHost: web.example\r\nConnection: Host, Cookie\r\n\
          Cookie: a=1\r\n\r\n",
    );
    let resp = parse_response(&raw).expect("a response");
    if status == 200 {
        let v = echo(&resp);
        assert_eq!(v["headers"]["host"], "web.example", "{v}");
    } else {
        assert_error(&resp, 400);
        let log = sim.log();
        assert!(
            !log.to_string().contains("/nominated"),
            "the backend got it: {log}"
        );
    }
}

/// Issue 15, item 6: every reply, passed through or the API's, carries an `X-Request-Id`, a new
/// one for each request.
#[test]
fn every_reply_carries_a_request_id() {
    let sim = OrsSim::start(1);
    let gw = with_backend(&[sim.addr(0)], "");
    let ids: Vec<String> = [
        get(&gw.url("/page"), &[]),
        get(&gw.url("/genesys/1/admin/node/health"), &[]),
        get(&gw.url("/genesys/1/storage/not-an-id"), &[]),
        post_raw(&gw.url("/genesys/1/storage/60"), "text/plain", b"x", &[]),
    ]
    .iter()
    .map(|r| {
        let id = r
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no id: {:?}", r.headers));
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        id.to_string()
    })
    .collect();
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "{ids:?}");
}

/// Issue 15, item 4, as a table: with a web tier behind the gateway, every spelling of an API
/// path is the API's (here: the admin API's 404, as no admin is configured), and a pass-through
/// path that a lenient server would read as an API path is a 400; the web tier sees none of
/// them, and still gets its own paths.
#[test]
fn paths_that_would_slip_past_the_api_never_reach_the_web_tier() {
    let sim = OrsSim::start(1);
    let gw = with_backend(&[sim.addr(0)], "");
    let table: [(&str, u16); 14] = [
        ("/genesys//1/admin/node/status", 404),
        ("//genesys/1/admin/node/status", 404),
        ("/genesys/./1/admin/node/status", 404),
        ("/x/../genesys/1/admin/node/status", 404),
        ("/genesys/%31/admin/node/status", 404),
        ("/%67enesys/1/admin/node/status", 404),
        ("/GENESYS/1/admin/node/status", 404),
        ("/gms-web/gms/1/admin/node/status", 404),
        ("/GENESYS/1/admin/node/health", 200),
        ("/genesys%2f1/admin/node/status", 400),
        ("/genesys/1%2fadmin/node/status", 400),
        ("/genesys/1;x/admin/node/status", 400),
        ("/genesys/1\\admin/node/status", 400),
        ("/genesys%5C1/admin/node/status", 400),
    ];
    for (path, status) in table {
        let head = format!("GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
        let (got, raw) = raw_request(gw.port(), head.as_bytes());
        let resp = parse_response(&raw).unwrap_or_else(|| panic!("{path}: no response"));
        assert_eq!(got, status, "{path}: {:?}", resp.text());
        assert!(
            resp.header("x-sim-instance").is_none(),
            "{path} reached the web tier"
        );
        if status != 200 {
            assert_error(&resp, status);
        }
    }
    let log = sim.log();
    assert!(
        !log.to_string().contains("admin"),
        "the web tier saw: {log}"
    );
    echo(&get(&gw.url("/app/a;b"), &[]));
}
