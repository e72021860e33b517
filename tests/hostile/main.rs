//! Hostile input corpus (issue 6): malformed and hostile requests written byte for byte to a
//! real gateway over raw TCP (ureq cannot send them). The gateway runs builtin services, an ORS
//! service on `ors-sim`, the store of `GMS_TEST_STORE`, admin credentials and a pass-through
//! backend (the same `ors-sim`, as an echo server).
//!
//! Every case must be answered within 5 s and the connection then closed; the answer is what
//! the case's [`Expect`] says, never a 5xx. After every case a normal request must still
//! succeed. The corpus is one table ([`corpus`], in `corpus.rs`); each row names the request,
//! how it is sent and what comes back.
//!
//! Documented exceptions ([`Expect::Pingora`], [`Expect::Closed`]): Pingora 0.9 parses the
//! request line and headers, and checks Content-Length / Transfer-Encoding, before any hook of
//! the gateway runs; it answers what it cannot parse with its own `400` (empty body,
//! `Content-Length: 0`) and closes. A broken body on a pass-through path reaches the gateway's
//! `fail_to_proxy`, which answers JSON like the API. A request head that never ends, or one
//! over `gms.connections.max_header_bytes`, is the gateway's too (the head limits answer
//! 408 / 431 JSON; see [`an_unfinished_request_head_gets_408_and_blocks_no_one`]).

#[path = "../common/mod.rs"]
mod common;

mod corpus;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use base64::Engine;
use common::*;
use corpus::corpus;

/// The ORS service of the corpus.
const SVC: &str = "request-inbound-poll";
const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";
/// The multipart boundary of the corpus' bodies.
const MP: &str = "multipart/form-data; boundary=XyZ";
/// Every answer (and the close after it) must arrive within this time: the gateway never hangs.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// What the gateway must answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The API's JSON error (`{"exception", "message"}`, src/error.rs) with this status.
    Error(u16),
    /// 200 JSON: the contract accepts this input (the case's name says which rule).
    Accepted,
    /// 200 from the web tier: a path outside the API roots is the backend's to judge.
    Backend,
    /// Documented exception: Pingora answers before the gateway's code runs, with this status,
    /// an empty body, and closes the connection. No hook of Pingora 0.9 runs earlier.
    Pingora(u16),
    /// Documented exception: the connection is closed without any response.
    Closed,
}

/// How the request is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Delivery {
    /// Every byte, then wait for the answer.
    All,
    /// Every byte, then half-close: the client will send nothing more.
    HalfClose,
}

/// One row of the corpus.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    delivery: Delivery,
    expect: Expect,
}

fn case(name: &'static str, bytes: Vec<u8>, expect: Expect) -> Case {
    Case {
        name,
        bytes,
        delivery: Delivery::All,
        expect,
    }
}

impl Case {
    fn half_close(mut self) -> Case {
        self.delivery = Delivery::HalfClose;
        self
    }
}

/// What the corpus' requests need to know: the Host, ids that exist, the admin credentials.
struct Ctx {
    host: String,
    /// A storage record.
    data_id: String,
    /// A running ORS service.
    service_id: String,
    /// `Authorization` value with the admin credentials.
    admin: String,
}

impl Ctx {
    /// A request head with `Connection: close`; `headers` are whole `Name: value\r\n` lines.
    fn head(&self, method: &str, target: impl AsRef<[u8]>, headers: &[u8]) -> Vec<u8> {
        let mut h = self.head_open(method, target, headers);
        h.splice(
            h.len() - 2..h.len() - 2,
            b"Connection: close\r\n".iter().copied(),
        );
        h
    }

    /// A request head that leaves the connection open for another request.
    fn head_open(&self, method: &str, target: impl AsRef<[u8]>, headers: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(method.as_bytes());
        h.push(b' ');
        h.extend_from_slice(target.as_ref());
        h.extend_from_slice(format!(" HTTP/1.1\r\nHost: {}\r\n", self.host).as_bytes());
        h.extend_from_slice(headers);
        h.extend_from_slice(b"\r\n");
        h
    }

    fn get(&self, target: impl AsRef<[u8]>) -> Vec<u8> {
        self.head("GET", target, b"")
    }

    /// A POST with a Content-Type and an exact Content-Length.
    fn post(&self, target: impl AsRef<[u8]>, content_type: &str, body: &[u8]) -> Vec<u8> {
        self.post_with(target, content_type, b"", body)
    }

    /// `post` with extra header lines.
    fn post_with(
        &self,
        target: impl AsRef<[u8]>,
        content_type: &str,
        headers: &[u8],
        body: &[u8],
    ) -> Vec<u8> {
        let mut extra = format!(
            "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        )
        .into_bytes();
        extra.extend_from_slice(headers);
        let mut r = self.head("POST", target, &extra);
        r.extend_from_slice(body);
        r
    }

    /// A POST whose head is given whole (framing headers included), then `body` as it is.
    fn post_raw(&self, target: impl AsRef<[u8]>, headers: &[u8], body: &[u8]) -> Vec<u8> {
        let mut r = self.head("POST", target, headers);
        r.extend_from_slice(body);
        r
    }

    /// A chunked POST; `chunks` is the already-framed chunked body.
    fn chunked(&self, target: impl AsRef<[u8]>, content_type: &str, chunks: &[u8]) -> Vec<u8> {
        let h = format!("Content-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n");
        self.post_raw(target, h.as_bytes(), chunks)
    }

    fn storage(&self) -> &'static str {
        "/genesys/1/storage/60"
    }

    fn create_url(&self) -> &'static str {
        "/genesys/1/service/request-interaction"
    }
}

/// One HTTP response split off the front of `raw`, and the bytes after it.
fn split_response(raw: &[u8]) -> Option<(Resp, &[u8])> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let resp = parse_response(raw)?;
    let len = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(raw.len() - head_end);
    Some((resp, &raw[(head_end + len).min(raw.len())..]))
}

/// Sends a case and reads until the gateway closes the connection (within `ANSWER_WITHIN`).
/// The bytes are written from a second thread so that an early answer (413) is read even
/// while the rest of a large body is still going out.
fn exchange(port: u16, bytes: Vec<u8>, delivery: Delivery) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to gateway");
    s.set_read_timeout(Some(ANSWER_WITHIN))
        .expect("read timeout");
    s.set_write_timeout(Some(ANSWER_WITHIN))
        .expect("write timeout");
    let mut w = s.try_clone().expect("clone socket");
    let writer = std::thread::spawn(move || {
        // The gateway may answer and close before it has read everything.
        if w.write_all(&bytes).is_ok() && delivery == Delivery::HalfClose {
            let _ = w.shutdown(Shutdown::Write);
        }
    });
    let deadline = Instant::now() + ANSWER_WITHIN;
    let mut out = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                panic!(
                    "no answer and close within {ANSWER_WITHIN:?}; got {:?}",
                    String::from_utf8_lossy(&out[..out.len().min(500)])
                )
            }
            // Reset after the answer (unread request bytes): keep what arrived.
            Err(_) => break,
        }
        assert!(
            Instant::now() < deadline,
            "the gateway kept the connection open past {ANSWER_WITHIN:?}"
        );
    }
    let _ = s.shutdown(Shutdown::Both);
    writer.join().expect("writer thread");
    out
}

/// Checks one answer against its expectation.
fn check(name: &str, raw: &[u8], expect: Expect) {
    if expect == Expect::Closed {
        assert!(
            raw.is_empty(),
            "{name}: expected a close without a response, got {:?}",
            String::from_utf8_lossy(raw)
        );
        return;
    }
    let (resp, rest) = split_response(raw).unwrap_or_else(|| {
        panic!(
            "{name}: no HTTP response: {:?}",
            String::from_utf8_lossy(raw)
        )
    });
    assert!(
        rest.is_empty(),
        "{name}: more than one response: {:?}",
        String::from_utf8_lossy(rest)
    );
    assert!(
        resp.status < 500,
        "{name}: a 5xx: {} {:?}",
        resp.status,
        resp.text()
    );
    match expect {
        Expect::Error(status) => {
            assert_error(&resp, status);
        }
        Expect::Accepted => {
            ok_json(&resp);
        }
        Expect::Backend => {
            assert_eq!(resp.status, 200, "{name}: {:?}", resp.text());
            assert!(
                resp.header("x-sim-instance").is_some(),
                "{name}: not the backend's: {:?}",
                resp.headers
            );
        }
        Expect::Pingora(status) => {
            assert_eq!(resp.status, status, "{name}: {:?}", resp.text());
            assert!(
                resp.body.is_empty(),
                "{name}: Pingora's error has a body now: {:?}",
                resp.text()
            );
        }
        Expect::Closed => unreachable!(),
    }
}

/// A normal request still works.
fn assert_serving(gw: &Gateway) {
    let r = get(&gw.url("/genesys/1/admin/node/health"), &[]);
    assert_eq!(
        r.status,
        200,
        "health after a hostile request: {:?}",
        r.text()
    );
}

/// Every API the corpus touched still works: storage, a builtin service, the ORS service.
fn assert_everything_serves(gw: &mut Gateway, ctx: &Ctx) {
    gw.assert_alive();
    assert_serving(gw);
    let v = ok_json(&post_form(&gw.storage_url("60"), &[("a", "1")], &[]));
    let id = str_field(&v, "id").to_string();
    assert_eq!(
        ok_json(&get(&gw.storage_url(&id), &[])),
        serde_json::json!({"a": "1"})
    );
    let v = gw.create_ok(
        "request-interaction",
        &[("_phone_number", "1"), ("_provide_code", "true")],
    );
    assert!(is_uuid_v4(str_field(&v, "_id")), "{v}");
    let status = post_empty(
        &gw.url(&format!("/genesys/1/service/{}/status", ctx.service_id)),
        &[],
    );
    assert_eq!(status.status, 200, "ORS status: {:?}", status.text());
}

/// The gateway of the corpus, with the sim that is both its ORS node and its web tier. The
/// corpus sends large bodies back to back from one address: the per-address upload rate, which
/// counts bytes as they arrive, would answer some of them 429 before their own limit does.
fn start() -> (Gateway, OrsSim) {
    let sim = OrsSim::start(1);
    let gms = format!(
        "limits: {{max_body_bytes: 2000000, upload_bytes_per_ip_per_s: 0}}\nconnections: {{body_timeout_ms: 1000, header_timeout_ms: 1500}}\n\
         admin: {{user: admin, password: secret}}\n\
         backend: {{upstreams: [\"{addr}\"]}}\n\
         ors: {{max_ors_request_attempts: 2, connect_timeout_ms: 500, socket_timeout_ms: 2000}}\n\
         {STD_GMS}  {SVC}:\n    _type: ors\n    _service: \"http://scxml.example.com/poll.scxml\"\n    \
         _ors: \"{url}\"\n",
        addr = sim.addr(0),
        url = sim.url(0),
    );
    (Gateway::start(&gms), sim)
}

fn context(gw: &Gateway) -> Ctx {
    let v = ok_json(&post_form(&gw.storage_url("600"), &[("a", "1")], &[]));
    let data_id = str_field(&v, "id").to_string();
    let v = gw.create_ok(SVC, &[("_x", "1")]);
    let service_id = str_field(&v, "_id").to_string();
    let admin = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("admin:secret")
    );
    Ctx {
        host: gw.host(),
        data_id,
        service_id,
        admin,
    }
}

#[test]
fn every_hostile_request_gets_its_answer_and_the_gateway_keeps_serving() {
    let (mut gw, _sim) = start();
    let ctx = context(&gw);
    let cases = corpus(&ctx);
    assert!(cases.len() >= 40, "the corpus shrank to {}", cases.len());
    for (i, c) in cases.into_iter().enumerate() {
        // Shown with a failure: which row broke.
        eprintln!("case {i}: {}", c.name);
        let raw = exchange(gw.port(), c.bytes, c.delivery);
        check(c.name, &raw, c.expect);
        assert_serving(&gw);
        if i % 10 == 9 {
            assert_everything_serves(&mut gw, &ctx);
        }
    }
    assert_everything_serves(&mut gw, &ctx);
}

/// A request head that never ends is cut at `gms.connections.header_timeout_ms` (1.5 s here)
/// with a 408 JSON and a close; the gateway serves everyone else meanwhile.
#[test]
fn an_unfinished_request_head_gets_408_and_blocks_no_one() {
    let (mut gw, _sim) = start();
    let ctx = context(&gw);
    let mut stalled = TcpStream::connect(("127.0.0.1", gw.port())).expect("connect");
    stalled
        .write_all(
            format!(
                "POST /genesys/1/storage/60 HTTP/1.1\r\nHost: {}\r\nContent-Ty",
                ctx.host
            )
            .as_bytes(),
        )
        .expect("write");
    assert_everything_serves(&mut gw, &ctx);
    stalled
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while start.elapsed() < ANSWER_WITHIN * 2 {
        match stalled.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let resp = parse_response(&got).unwrap_or_else(|| {
        panic!(
            "no answer to an unfinished head: {:?}",
            String::from_utf8_lossy(&got)
        )
    });
    assert_error(&resp, 408);
}

/// A non-ASCII (UTF-8) `gms_user` owns what it creates, like an ASCII one (it used to be read
/// as no user at all, leaving the record open to everybody).
#[test]
fn a_utf8_gms_user_owns_what_it_stores() {
    let (gw, _sim) = start();
    let ctx = context(&gw);
    let user = "gms_user: jos\u{e9}\r\n".as_bytes();
    let raw = exchange(
        gw.port(),
        ctx.post_with("/genesys/1/storage/60", FORM, user, b"a=1"),
        Delivery::All,
    );
    let (resp, _) = split_response(&raw).expect("a response");
    let id = str_field(&ok_json(&resp), "id").to_string();
    assert_error(&get(&gw.storage_url(&id), &[]), 404);
    let raw = exchange(
        gw.port(),
        ctx.head("GET", format!("/genesys/1/storage/{id}"), user),
        Delivery::All,
    );
    let (resp, _) = split_response(&raw).expect("a response");
    assert_eq!(ok_json(&resp), serde_json::json!({"a": "1"}));
}
