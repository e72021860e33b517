//! HTTP/1.1 on the one HTTP stack (Pingora's), over raw sockets: pipelined requests, the
//! keep-alive rules of each version, bodies that arrive in pieces and bodies nobody reads, and
//! the defects of the second stack that was here before (issue 16): leading CRLFs that lifted
//! the head limits, answers that depended on the header count. Malformed heads are
//! `tests/hostile.rs`'s.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

fn connect(gw: &Gateway) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", gw.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("read timeout");
    s
}

/// Reads until `n` complete responses are in, or the connection closes, or 10 s pass: the
/// responses, and whether the gateway closed the connection.
fn read_responses(s: &mut TcpStream, n: usize) -> (Vec<Resp>, bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let mut out = Vec::new();
    let mut closed = false;
    while Instant::now() < deadline {
        // Take every complete response off the front.
        while let Some(len) = complete_len(&raw) {
            out.push(parse_response(&raw[..len]).expect("a complete response parses"));
            raw.drain(..len);
        }
        if out.len() >= n && !closed {
            // Give a close a moment to show.
            match s.read(&mut buf) {
                Ok(0) => closed = true,
                Ok(k) => raw.extend_from_slice(&buf[..k]),
                Err(_) => {}
            }
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(k) => raw.extend_from_slice(&buf[..k]),
            Err(_) => {}
        }
    }
    (out, closed)
}

/// The head of a urlencoded Storage API create with a body of `len` bytes.
fn storage_create_head(len: usize) -> String {
    format!(
        "POST /genesys/1/storage/60 HTTP/1.1\r\nHost: h\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len}\r\n\r\n"
    )
}

#[test]
fn pipelined_api_requests_are_answered_in_order() {
    let gw = Gateway::start(STD_GMS);
    let mut s = connect(&gw);
    let body = "a=1&b=two";
    let req = format!(
        "{}{body}GET /genesys/1/admin/node/health HTTP/1.1\r\nHost: h\r\n\r\n\
         GET /genesys/1/storage/not-a-uuid HTTP/1.1\r\nHost: h\r\n\r\n",
        storage_create_head(body.len())
    );
    s.write_all(req.as_bytes()).expect("send");
    let (rs, closed) = read_responses(&mut s, 3);
    assert_eq!(rs.len(), 3, "{rs:?}");
    assert!(!closed, "the connection should stay open");
    assert_eq!(rs[0].status, 200);
    assert!(rs[0].json()["id"].is_string(), "{:?}", rs[0].text());
    assert_eq!(rs[1].status, 200);
    assert_eq!(rs[1].json()["status"], "ONLINE");
    assert_eq!(rs[2].status, 404);
}

#[test]
fn a_pipelined_head_over_max_header_bytes_gets_431() {
    let gw = Gateway::start(&format!(
        "connections: {{max_header_bytes: 2048}}\n{STD_GMS}"
    ));
    let mut s = connect(&gw);
    // Both heads in one write, so the second is read with the first; 6 KB is within one
    // read of the guard's, and three times the limit.
    let req = format!(
        "GET /genesys/1/admin/node/health HTTP/1.1\r\nHost: h\r\n\r\n\
         GET /genesys/1/admin/node/health HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "b".repeat(6000)
    );
    s.write_all(req.as_bytes()).expect("send");
    let (rs, closed) = read_responses(&mut s, 2);
    assert_eq!(rs.len(), 2, "{rs:?}");
    assert_eq!(rs[0].status, 200);
    assert_eq!(rs[1].status, 431, "{:?}", rs[1].text());
    assert!(rs[1].json()["message"].is_string(), "{:?}", rs[1].text());
    assert!(closed, "the connection should be closed after the 431");
}

#[test]
fn keep_alive_follows_the_version_and_connection_header() {
    let gw = Gateway::start(STD_GMS);
    let health = |version: &str, connection: Option<&str>| {
        let mut s = connect(&gw);
        let extra = connection.map_or(String::new(), |c| format!("Connection: {c}\r\n"));
        let req = format!("GET /genesys/1/admin/node/health {version}\r\nHost: h\r\n{extra}\r\n");
        s.write_all(req.as_bytes()).expect("send");
        let (rs, closed) = read_responses(&mut s, 1);
        assert_eq!(rs.len(), 1, "{version} {connection:?}");
        assert_eq!(rs[0].status, 200);
        (
            rs[0].header("connection").map(str::to_ascii_lowercase),
            closed,
        )
    };
    assert_eq!(health("HTTP/1.1", None), (Some("keep-alive".into()), false));
    assert_eq!(
        health("HTTP/1.1", Some("close")),
        (Some("close".into()), true)
    );
    assert_eq!(health("HTTP/1.0", None), (Some("close".into()), true));
    assert_eq!(
        health("HTTP/1.0", Some("keep-alive")),
        (Some("keep-alive".into()), false)
    );
}

#[test]
fn a_body_in_pieces_is_read_whole() {
    let gw = Gateway::start(STD_GMS);
    let mut s = connect(&gw);
    let body = "first_name=John&last_name=Doe&subject=billing";
    s.write_all(storage_create_head(body.len()).as_bytes())
        .expect("head");
    for piece in body.as_bytes().chunks(10) {
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(piece).expect("piece");
    }
    let (rs, _) = read_responses(&mut s, 1);
    assert_eq!(rs.len(), 1);
    let id = rs[0].json()["id"].as_str().expect("id").to_string();
    let r = get(&gw.url(&format!("/genesys/1/storage/{id}")), &[]);
    let v = ok_json(&r);
    assert_eq!(v["first_name"], "John");
    assert_eq!(v["subject"], "billing");
}

/// A body on a route that reads none (and one refused for its size) is not read: the reply
/// closes the connection, so its bytes are never taken for a next request.
#[test]
fn a_body_left_unread_closes_the_connection() {
    let gw = Gateway::start(STD_GMS);
    let mut s = connect(&gw);
    s.write_all(
        b"GET /genesys/1/admin/node/health HTTP/1.1\r\nHost: h\r\nContent-Length: 33\r\n\r\n\
          GET /genesys/1/admin/node/health",
    )
    .expect("send");
    let (rs, closed) = read_responses(&mut s, 2);
    assert_eq!(rs.len(), 1, "the body was read as a request: {rs:?}");
    assert_eq!(rs[0].status, 200);
    assert_eq!(rs[0].header("connection"), Some("close"));
    assert!(closed);

    let gw = Gateway::start(&format!("limits: {{max_body_bytes: 1000}}\n{STD_GMS}"));
    let mut s = connect(&gw);
    s.write_all(
        b"POST /genesys/1/storage/60 HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n\
          Content-Length: 5000\r\n\r\nx",
    )
    .expect("send");
    let (rs, closed) = read_responses(&mut s, 1);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].status, 413);
    assert!(closed);
}

/// `n` extra header lines.
fn extra_headers(n: usize) -> String {
    (0..n).map(|i| format!("X-Extra-{i}: v\r\n")).collect()
}

/// Issue 16: the same request gets the same answer whatever its header count, and two of
/// them pipelined are both answered, on a connection that stays open.
#[test]
fn pipelined_requests_are_answered_whatever_their_header_count() {
    let gw = Gateway::start(STD_GMS);
    let mut bodies = Vec::new();
    for n in [0, 49] {
        let mut s = connect(&gw);
        let one = format!(
            "GET /genesys/1/admin/node/health HTTP/1.1\r\nHost: h\r\n{}\r\n",
            extra_headers(n)
        );
        s.write_all(format!("{one}{one}").as_bytes()).expect("send");
        let (rs, closed) = read_responses(&mut s, 2);
        assert_eq!(rs.len(), 2, "{n} extra headers: {rs:?}");
        assert!(!closed, "{n} extra headers: closed");
        for r in &rs {
            assert_eq!(r.status, 200);
            assert_eq!(r.header("connection"), Some("keep-alive"));
        }
        bodies.push(rs[0].json());
    }
    assert_eq!(bodies[0], bodies[1]);
}

/// Issue 16: 700 small requests in one write are each answered, or the connection closes after
/// a reply that says `Connection: close`.
#[test]
fn many_pipelined_requests_are_each_answered_or_closed_with_notice() {
    let gw = Gateway::start(STD_GMS);
    let mut s = connect(&gw);
    let one = "GET /genesys/1/admin/node/health HTTP/1.1\r\nHost: h\r\n\r\n";
    s.write_all(one.repeat(700).as_bytes()).expect("send");
    let (rs, closed) = read_responses(&mut s, 700);
    assert!(!rs.is_empty());
    assert!(rs.iter().all(|r| r.status == 200));
    if rs.len() < 700 {
        assert!(closed, "{} answers and the connection still open", rs.len());
        let last = rs.last().expect("an answer");
        assert_eq!(
            last.header("connection"),
            Some("close"),
            "{} answers",
            rs.len()
        );
    }
}

/// Issue 16: blank lines before a request line do not end the head phase: the size limit and
/// the head deadline still apply, on API and pass-through paths alike.
#[test]
fn leading_crlfs_do_not_lift_the_head_limits() {
    let sim = OrsSim::start(1);
    let gw = Gateway::start(&format!(
        "backend: {{upstreams: [\"{}\"]}}\n\
         connections: {{header_timeout_ms: 1000, max_header_bytes: 4096}}\n{STD_GMS}",
        sim.addr(0)
    ));
    let big = format!(
        "\r\n\r\nGET /app/big HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n",
        "b".repeat(200_000)
    );
    let (status, raw) = raw_request(gw.port(), big.as_bytes());
    assert_eq!(
        status,
        431,
        "{}",
        String::from_utf8_lossy(&raw[..raw.len().min(300)])
    );
    assert_error(&parse_response(&raw).expect("response"), 431);
    assert!(
        !sim.log().to_string().contains("/app/big"),
        "the oversized head reached the backend"
    );

    let mut s = connect(&gw);
    s.write_all(b"\r\n\r\nGET /genesys/1/admin/node/health HTTP/1.1\r\nHost: h\r\n")
        .expect("send");
    let start = Instant::now();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    // A header byte every 200 ms: the head never ends; the deadline must cut it.
    while start.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(200));
        if s.write_all(b"X").is_err() {
            break;
        }
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if complete_len(&raw).is_some() {
            break;
        }
    }
    let resp = parse_response(&raw)
        .unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(&raw)));
    assert_error(&resp, 408);
    assert_eq!(resp.header("connection"), Some("close"));
}

/// A client that closes in the middle of a head is its own business: no error in the log.
#[test]
fn a_client_that_closes_mid_head_is_not_an_error() {
    let gw = Gateway::start(STD_GMS);
    for _ in 0..3 {
        let mut s = connect(&gw);
        s.write_all(b"GET /genesys/1/admin/node/hea").expect("send");
        drop(s);
    }
    // The gateway still serves, and has seen the closes by then.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(&gw.url("/genesys/1/admin/node/health"), &[]).status,
        200
    );
    let log = gw.stderr();
    assert!(!log.contains("ERROR"), "{log}");
}
