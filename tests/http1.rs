//! The gateway's own HTTP/1.1 reading of plain API requests (`src/h1.rs`), over raw sockets:
//! pipelined requests, the keep-alive rules of each version, bodies that arrive in pieces,
//! and bodies nobody reads. Malformed heads are `tests/hostile.rs`'s.

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
