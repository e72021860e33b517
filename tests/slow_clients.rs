//! Slow and abusive clients (`gms.connections`): a slowloris neither blocks normal requests
//! nor keeps its sockets past the head deadline; idle connections, oversized heads, slow
//! bodies and long-lived connections are cut with a JSON answer where there is a request.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Short limits so the test waits little; the slack below is generous on purpose (a loaded
/// machine), since what is checked is that sockets are cut, not how fast.
const CONNECTIONS: &str = "connections: {header_timeout_ms: 1000, idle_timeout_ms: 1500, \
     body_timeout_ms: 1000, max_header_bytes: 2048, max_requests: 3}\n";
/// The longest any cut may take here: every limit above is well under it.
const CUT_WITHIN: Duration = Duration::from_secs(8);

fn gw() -> Gateway {
    Gateway::start(&format!("{CONNECTIONS}{STD_GMS}"))
}

fn connect(gw: &Gateway) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", gw.port())).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("read timeout");
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    s
}

/// Reads until the gateway closes the connection (or `CUT_WITHIN` passes, which fails the
/// test): everything it sent, and how long the close took.
fn read_until_closed(s: &mut TcpStream) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < CUT_WITHIN {
        match s.read(&mut buf) {
            Ok(0) => return (out, start.elapsed()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (out, start.elapsed()),
        }
    }
    panic!(
        "connection still open after {CUT_WITHIN:?}; got {:?}",
        String::from_utf8_lossy(&out)
    );
}

fn health_head(gw: &Gateway) -> String {
    format!(
        "GET /genesys/1/admin/node/health HTTP/1.1\r\nHost: {}\r\n",
        gw.host()
    )
}

#[test]
fn a_slowloris_is_cut_at_the_head_deadline_while_others_are_served() {
    let gw = gw();
    let slow: Vec<TcpStream> = (0..30)
        .map(|_| {
            let mut s = connect(&gw);
            s.write_all(health_head(&gw).as_bytes()).expect("write");
            s
        })
        .collect();
    // Each slow client sends one more header byte every 100 ms from its own thread, until
    // the gateway cuts it (bounded by CUT_WITHIN).
    let handles: Vec<_> = slow
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                let start = Instant::now();
                while start.elapsed() < CUT_WITHIN {
                    if s.write_all(b"X").is_err() {
                        break;
                    }
                    let mut b = [0u8; 1024];
                    match s.read(&mut b) {
                        Ok(0) => break,
                        Ok(n) => {
                            let mut out = b[..n].to_vec();
                            out.extend(read_until_closed(&mut s).0);
                            return out;
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
                read_until_closed(&mut s).0
            })
        })
        .collect();
    // Meanwhile normal requests go through.
    for _ in 0..20 {
        let r = gw.create(
            "request-interaction",
            &[("_phone_number", "555"), ("_provide_code", "true")],
        );
        ok_json(&r);
        std::thread::sleep(Duration::from_millis(25));
    }
    for h in handles {
        let out = h.join().expect("slow client thread");
        let resp = parse_response(&out).unwrap_or_else(|| {
            panic!(
                "slow client got no response: {:?}",
                String::from_utf8_lossy(&out)
            )
        });
        assert_error(&resp, 408);
        assert_eq!(resp.header("connection"), Some("close"));
    }
}

#[test]
fn a_connection_that_sends_nothing_is_closed_after_the_idle_timeout() {
    let gw = gw();
    let mut s = connect(&gw);
    let (out, took) = read_until_closed(&mut s);
    assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
    assert!(took >= Duration::from_millis(1000), "closed after {took:?}");
}

#[test]
fn a_kept_alive_connection_is_closed_when_idle() {
    let gw = gw();
    let mut s = connect(&gw);
    s.write_all(format!("{}\r\n", health_head(&gw)).as_bytes())
        .expect("write");
    let (out, _) = read_until_closed(&mut s);
    let resp = parse_response(&out).expect("a response before the close");
    assert_eq!(resp.status, 200);
}

#[test]
fn an_oversized_head_gets_431() {
    let gw = gw();
    let head = format!(
        "{}X-Big: {}\r\nConnection: close\r\n\r\n",
        health_head(&gw),
        "a".repeat(4000)
    );
    let (status, raw) = raw_request(gw.port(), head.as_bytes());
    assert_eq!(status, 431, "{:?}", String::from_utf8_lossy(&raw));
    assert_error(&parse_response(&raw).expect("response"), 431);
    // A head just under the limit is fine.
    let head = format!(
        "{}X-Big: {}\r\nConnection: close\r\n\r\n",
        health_head(&gw),
        "a".repeat(1500)
    );
    assert_eq!(raw_request(gw.port(), head.as_bytes()).0, 200);
}

#[test]
fn a_body_that_stops_arriving_gets_408() {
    let gw = gw();
    let mut s = connect(&gw);
    let head = format!(
        "POST /genesys/1/service/request-interaction HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
         _phone_number=5",
        gw.host()
    );
    s.write_all(head.as_bytes()).expect("write");
    let (out, _) = read_until_closed(&mut s);
    assert_error(&parse_response(&out).expect("response"), 408);
}

#[test]
fn a_connection_serves_at_most_max_requests() {
    let gw = gw();
    let mut s = connect(&gw);
    let req = format!("{}\r\n", health_head(&gw));
    for _ in 0..3 {
        s.write_all(req.as_bytes()).expect("write");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (out, _) = read_until_closed(&mut s);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 3, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
}

#[test]
fn a_client_asking_for_close_is_not_kept() {
    // The idle timeout must not turn a `Connection: close` back into keep-alive: with a long
    // idle timeout, only an honoured close ends the connection within CUT_WITHIN.
    let gw = Gateway::start(&format!(
        "connections: {{idle_timeout_ms: 600000}}\n{STD_GMS}"
    ));
    let mut s = connect(&gw);
    s.write_all(format!("{}Connection: close\r\n\r\n", health_head(&gw)).as_bytes())
        .expect("write");
    let (out, _) = read_until_closed(&mut s);
    assert_eq!(parse_response(&out).expect("response").status, 200);
}
