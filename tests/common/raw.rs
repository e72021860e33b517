//! Raw sockets, for the tests that are about the bytes: one request's exchange, a response
//! parser, and a keep-alive client that tells every outcome apart.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use super::http::Resp;

/// Total length of the first complete HTTP response in `buf`, if it is complete.
pub fn complete_len(buf: &[u8]) -> Option<usize> {
    let head_end = find(buf, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    if (100..200).contains(&status) && status != 101 {
        // An interim response: wait for the final one after it.
        return complete_len(&buf[head_end..]).map(|n| head_end + n);
    }
    if status == 204 || status == 304 {
        return Some(head_end);
    }
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("content-length:") {
            let n: usize = v.trim().parse().ok()?;
            return (buf.len() >= head_end + n).then_some(head_end + n);
        }
        if line.starts_with("transfer-encoding:") && line.contains("chunked") {
            return dechunk(&buf[head_end..]).map(|(_, used)| head_end + used);
        }
    }
    None // read until EOF
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decode a complete chunked body: `(body, bytes consumed)`; None if incomplete.
fn dechunk(mut data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let total = data.len();
    let mut out = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let size_txt = String::from_utf8_lossy(&data[..line_end]);
        let size = usize::from_str_radix(size_txt.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            // trailers until an empty line
            loop {
                let e = find(data, b"\r\n")?;
                data = &data[e + 2..];
                if e == 0 {
                    return Some((out, total - data.len()));
                }
            }
        }
        if data.len() < size + 2 {
            return None;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// Parse a raw HTTP/1.1 response (the first one in `raw`).
pub fn parse_response(raw: &[u8]) -> Option<Resp> {
    let head_end = find(raw, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&raw[..head_end - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let rest = &raw[head_end..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)
            .map(|(b, _)| b)
            .unwrap_or_else(|| rest.to_vec())
    } else if let Some(n) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Some(Resp {
        status,
        headers,
        body,
    })
}

/// Send raw bytes to the gateway and read one response (bounded by a 10 s read
/// timeout). Returns `(status, full response bytes)`; status 0 when the connection was
/// closed without a parseable response. Panics if nothing arrives within the timeout
/// (the gateway must never hang).
pub fn raw_request(port: u16, bytes: &[u8]) -> (u16, Vec<u8>) {
    raw_exchange(port, bytes, false)
}

/// Like `raw_request`, but half-closes the connection after sending.
pub fn raw_request_half_close(port: u16, bytes: &[u8]) -> (u16, Vec<u8>) {
    raw_exchange(port, bytes, true)
}

fn raw_exchange(port: u16, bytes: &[u8], half_close: bool) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to gateway");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.set_write_timeout(Some(Duration::from_secs(10)))
        .expect("write timeout");
    // The gateway may answer (and close) before reading everything: ignore write errors.
    let _ = s.write_all(bytes);
    let _ = s.flush();
    if half_close {
        let _ = s.shutdown(Shutdown::Write);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(n) = complete_len(&buf) {
            buf.truncate(n);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no complete response within 15 s; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!(
                    "gateway did not answer within 10 s (hang); got {:?}",
                    String::from_utf8_lossy(&buf)
                )
            }
            Err(_) => break, // reset: take what we have
        }
    }
    let status = parse_response(&buf).map(|r| r.status).unwrap_or(0);
    (status, buf)
}

/// What became of one request on a [`KeepAliveClient`].
#[derive(Debug)]
pub enum Exchange {
    /// A complete response.
    Answered(Resp),
    /// The connection ended (EOF or reset) before one byte of a response arrived. On a reused
    /// connection this is the keep-alive race: the server closed it as the request went out.
    ClosedBeforeAnswer { reused: bool, error: String },
    /// Anything else: no connection, a timeout, a response cut off.
    Failed(String),
}

/// An HTTP/1.1 client on one keep-alive connection at a time, written here rather than using
/// ureq so that nothing is retried behind the test's back and every outcome is told apart
/// (fresh or reused connection, closed before any byte or after some). A response with
/// `Connection: close` ends the connection; the next request opens a new one.
pub struct KeepAliveClient {
    port: u16,
    conn: Option<TcpStream>,
}

impl KeepAliveClient {
    pub fn new(port: u16) -> KeepAliveClient {
        KeepAliveClient { port, conn: None }
    }

    /// Sends one request (`body` with its content type, if any) and reads its response.
    pub fn send(&mut self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> Exchange {
        let reused = self.conn.is_some();
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => match self.connect() {
                Ok(c) => c,
                Err(e) => return Exchange::Failed(format!("connect: {e}")),
            },
        };
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
            self.port
        );
        if let Some((ct, bytes)) = body {
            req.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n",
                bytes.len()
            ));
        }
        req.push_str("\r\n");
        let mut wire = req.into_bytes();
        if let Some((_, bytes)) = body {
            wire.extend_from_slice(bytes);
        }
        if let Err(e) = conn.write_all(&wire) {
            // Nothing can have been answered yet.
            return Exchange::ClosedBeforeAnswer {
                reused,
                error: format!("write: {e}"),
            };
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            if let Some(n) = complete_len(&buf) {
                buf.truncate(n);
                break;
            }
            if Instant::now() >= deadline {
                return Exchange::Failed(format!("no complete response within 15 s: {buf:?}"));
            }
            match conn.read(&mut chunk) {
                Ok(0) if buf.is_empty() => {
                    return Exchange::ClosedBeforeAnswer {
                        reused,
                        error: "EOF".into(),
                    }
                }
                Ok(0) => {
                    return Exchange::Failed(format!(
                        "connection closed inside a response: {:?}",
                        String::from_utf8_lossy(&buf)
                    ))
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    return Exchange::Failed(format!("read timeout: {e}"))
                }
                Err(e) if buf.is_empty() => {
                    return Exchange::ClosedBeforeAnswer {
                        reused,
                        error: format!("read: {e}"),
                    }
                }
                Err(e) => return Exchange::Failed(format!("read inside a response: {e}")),
            }
        }
        let Some(resp) = parse_response(&buf) else {
            return Exchange::Failed(format!("unparsable: {:?}", String::from_utf8_lossy(&buf)));
        };
        let closes = resp
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if !closes {
            self.conn = Some(conn);
        }
        Exchange::Answered(resp)
    }

    /// Whether the next request goes on a connection already used.
    pub fn has_connection(&self) -> bool {
        self.conn.is_some()
    }

    fn connect(&self) -> std::io::Result<TcpStream> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        c.set_write_timeout(Some(Duration::from_secs(10)))?;
        c.set_nodelay(true)?;
        Ok(c)
    }
}
