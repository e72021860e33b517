//! The gateway's own HTTP/1.1 exchange for plain API requests (see `app.rs`): a head that is
//! complete in the peeked bytes, parsed with `httparse`, whose body (if any) is framed by a
//! single Content-Length, without `Transfer-Encoding`, `Expect` or `Upgrade`, on a target of
//! plain URI characters. The reply goes out in one write.
//!
//! Anything else about a request sends it to Pingora's HTTP/1 session, which knows every
//! corner of the protocol (and answers a broken head with its 400). This path covers what
//! mobile clients send all day and skips Pingora's request and response header maps, which
//! cost more than answering a status poll (callgrind, see the README's benchmark notes).

use std::borrow::Cow;
use std::io::{self, Write};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use http::{HeaderName, Method};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::conn_guard::GuardedStream;
use crate::reply::Reply;

/// Most headers a request on this path may carry; one with more goes to Pingora (256 there).
const MAX_HEADERS: usize = 48;
/// Largest body piece read at once.
const BODY_READ: u64 = 64 * 1024;
/// Replies up to this size go out in the same write as their head.
const ONE_WRITE: usize = 16 * 1024;

/// A request head this path takes: its bytes and where the parts are.
pub struct Head {
    raw: Bytes,
    /// The request method.
    pub method: Method,
    target: (usize, usize),
    headers: Vec<[usize; 4]>,
    /// The body's length (0 without Content-Length).
    pub content_length: u64,
    /// Whether the client lets the connection stay open after the reply.
    pub keep_alive: bool,
}

impl Head {
    /// Takes the next request head off the stream's peeked bytes when this path can answer
    /// it; leaves everything in place (`None`) when Pingora's session should.
    pub fn take(stream: &mut GuardedStream) -> Option<Head> {
        Self::take_for(stream, Purpose::Api)
    }

    /// The same for a plain fetch from the web tier (`web_tier.rs`): a bodiless HTTP/1.1
    /// `GET` or `HEAD`; anything else goes to Pingora's proxy.
    pub fn take_fetch(stream: &mut GuardedStream) -> Option<Head> {
        Self::take_for(stream, Purpose::Fetch)
    }

    fn take_for(stream: &mut GuardedStream, purpose: Purpose) -> Option<Head> {
        let raw = stream.peeked_head()?;
        let parsed = Parsed::of(raw, purpose)?;
        let len = raw.len();
        let raw = stream.take_peeked(len);
        Some(Head {
            raw,
            method: parsed.method,
            target: parsed.target,
            headers: parsed.headers,
            content_length: parsed.content_length,
            keep_alive: parsed.keep_alive,
        })
    }

    fn text(&self, (from, to): (usize, usize)) -> &str {
        // Checked when parsed: the target is ASCII.
        std::str::from_utf8(&self.raw[from..to]).unwrap_or_default()
    }

    /// The request target (path and query).
    pub fn target(&self) -> &str {
        self.text(self.target)
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        let t = self.target();
        t.split_once('?').map_or(t, |(path, _)| path)
    }

    /// The query, without its `?`.
    pub fn query(&self) -> Option<&str> {
        self.target().split_once('?').map(|(_, q)| q)
    }

    /// Every header, name and value, in the order sent.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers
            .iter()
            .map(|h| (&self.raw[h[0]..h[1]], &self.raw[h[2]..h[3]]))
    }

    /// The head's size in bytes.
    pub fn raw_len(&self) -> usize {
        self.raw.len()
    }

    /// The first value of a header.
    pub fn header(&self, name: &HeaderName) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| self.raw[h[0]..h[1]].eq_ignore_ascii_case(name.as_str().as_bytes()))
            .map(|h| &self.raw[h[2]..h[3]])
    }
}

/// What a head is taken for: each path takes only the requests it handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// An API request: any method but `HEAD` (whose reply would carry no body).
    Api,
    /// A plain fetch from the web tier: a bodiless HTTP/1.1 `GET` or `HEAD`.
    Fetch,
}

/// What [`Parsed::of`] found in a head.
struct Parsed {
    method: Method,
    target: (usize, usize),
    headers: Vec<[usize; 4]>,
    content_length: u64,
    keep_alive: bool,
}

impl Parsed {
    /// Parses a complete head; `None` for anything this path leaves to Pingora, or that is
    /// not for `purpose`.
    fn of(raw: &[u8], purpose: Purpose) -> Option<Parsed> {
        // Empty lines before a request line are Pingora's to skip.
        if raw.first().is_some_and(|&b| b == b'\r' || b == b'\n') {
            return None;
        }
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut slots);
        match req.parse(raw) {
            Ok(httparse::Status::Complete(n)) if n == raw.len() => {}
            _ => return None,
        }
        let at = |s: &[u8]| s.as_ptr() as usize - raw.as_ptr() as usize;
        let span = |s: &[u8]| (at(s), at(s) + s.len());
        let method = Method::from_bytes(req.method?.as_bytes()).ok()?;
        let target = req.path?;
        let for_purpose = match purpose {
            Purpose::Api => method != Method::HEAD,
            Purpose::Fetch => method == Method::GET || method == Method::HEAD,
        };
        // CONNECT and OPTIONS * have no origin-form target: Pingora.
        if !for_purpose || !target.starts_with('/') || !target.bytes().all(plain_uri_byte) {
            return None;
        }
        let http11 = match req.version? {
            1 => true,
            0 => false,
            _ => return None,
        };
        let mut headers = Vec::with_capacity(req.headers.len());
        let (mut length, mut hosts, mut close, mut keep) = (None, 0, false, false);
        for h in req.headers.iter() {
            let name = h.name.as_bytes();
            let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
            if is("transfer-encoding") || is("expect") || is("upgrade") {
                return None;
            }
            if is("content-length") {
                if length.is_some() {
                    return None;
                }
                length = Some(decimal(h.value)?);
            } else if is("host") {
                hosts += 1;
            } else if is("connection") {
                for token in std::str::from_utf8(h.value).ok()?.split(',') {
                    let token = token.trim();
                    if token.eq_ignore_ascii_case("close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        keep = true;
                    } else if token.eq_ignore_ascii_case("upgrade") {
                        return None;
                    }
                }
            }
            let (n0, n1) = span(name);
            let (v0, v1) = span(h.value);
            headers.push([n0, n1, v0, v1]);
        }
        if hosts > 1 || (purpose == Purpose::Fetch && (!http11 || length.is_some())) {
            return None;
        }
        Some(Parsed {
            method,
            target: span(target.as_bytes()),
            headers,
            content_length: length.unwrap_or(0),
            keep_alive: !close && (http11 || keep),
        })
    }
}

/// URI characters of RFC 3986 (unreserved, sub-delims, `:@/?%`): targets with anything else
/// go to Pingora, whose URI parser then decides.
fn plain_uri_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b)
}

/// A Content-Length value: digits only, and short enough for a u64.
fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The request body as it arrives: at most `remaining` bytes, each read within `timeout`
/// (a stall is `TimedOut`, which the form reader turns into 408). `remaining` counts down,
/// so the caller knows afterwards whether the body was read to its end.
pub fn body<'a>(
    stream: &'a mut GuardedStream,
    remaining: &'a mut u64,
    timeout: Duration,
) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin + 'a {
    Box::pin(futures::stream::unfold(
        Some((stream, remaining)),
        move |state| async move {
            // After an error the body ends: the connection is closed, not read further.
            let (stream, remaining) = state?;
            if *remaining == 0 {
                return None;
            }
            let want = (*remaining).min(BODY_READ);
            // Body bytes that came with the head are handed on as they are, without a copy.
            let peeked = stream.peeked_len().min(want as usize);
            if peeked > 0 {
                *remaining -= peeked as u64;
                return Some((Ok(stream.take_peeked(peeked)), Some((stream, remaining))));
            }
            let mut buf = BytesMut::with_capacity(want as usize);
            let mut limited = (&mut *stream).take(want);
            let got = match tokio::time::timeout(timeout, limited.read_buf(&mut buf)).await {
                Ok(Ok(0)) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the body ended early",
                )),
                Ok(Ok(n)) => {
                    *remaining -= n as u64;
                    Ok(buf.freeze())
                }
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "the body stalled")),
            };
            let next = got.is_ok().then_some((stream, remaining));
            Some((got, next))
        },
    ))
}

/// Writes a whole reply (with Content-Length, Date and Connection, as Pingora writes them);
/// returns the body bytes written.
pub async fn write_reply(
    stream: &mut GuardedStream,
    reply: &Reply,
    keep_alive: bool,
) -> io::Result<usize> {
    let status = http::StatusCode::from_u16(reply.status)
        .map_err(|_| io::Error::other(format!("bad reply status {}", reply.status)))?;
    let mut out = Vec::with_capacity(256 + reply.body.len().min(ONE_WRITE));
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    // The gateway's own types are valid; a type built from stored data is checked, as
    // `proxy::write_reply` does.
    match &reply.content_type {
        Cow::Borrowed(t) => out.extend_from_slice(t.as_bytes()),
        Cow::Owned(t) if http::HeaderValue::from_str(t).is_ok() => {
            out.extend_from_slice(t.as_bytes())
        }
        Cow::Owned(_) => out.extend_from_slice(b"application/octet-stream"),
    }
    // Writing into a Vec cannot fail.
    let _ = write!(out, "\r\nContent-Length: {}\r\n", reply.body.len());
    for (name, value) in &reply.headers {
        // Values are built by the gateway; one that is not a valid header is dropped.
        if http::HeaderValue::from_str(value).is_ok() {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(pingora::protocols::http::date::get_cached_date().as_bytes());
    out.extend_from_slice(if keep_alive {
        b"\r\nConnection: keep-alive\r\n\r\n"
    } else {
        b"\r\nConnection: close\r\n\r\n"
    });
    if reply.body.len() <= ONE_WRITE {
        out.extend_from_slice(&reply.body);
        stream.write_all(&out).await?;
    } else {
        stream.write_all(&out).await?;
        stream.write_all(&reply.body).await?;
    }
    stream.flush().await?;
    Ok(reply.body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetch(head: &[u8]) -> bool {
        Parsed::of(head, Purpose::Fetch).is_some()
    }

    #[test]
    fn fetch_heads_are_told_apart() {
        assert!(fetch(b"GET /a.html HTTP/1.1\r\nHost: h\r\n\r\n"));
        assert!(fetch(
            b"HEAD /?q=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        ));
        assert!(fetch(b"GET / HTTP/1.1\nHost: h\n\n"));
        for head in [
            &b"POST /a HTTP/1.1\r\nHost: h\r\n\r\n"[..],
            b"GET /a HTTP/1.0\r\nHost: h\r\n\r\n",
            b"GET http://h/a HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: h\r\ncOnTeNt-LeNgTh: 3\r\n\r\nabc",
            b"GET /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
            b"GET /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET /a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"\r\nGET /a HTTP/1.1\r\n\r\n",
            b"",
        ] {
            assert!(!fetch(head), "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn plain_heads_parse() {
        assert!(Parsed::of(b"HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n", Purpose::Fetch).is_some());
        let p = Parsed::of(b"POST /genesys/1/service/x?a=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\nGMS_USER: u\r\n\r\n", Purpose::Api).unwrap();
        assert_eq!(p.method, Method::POST);
        assert_eq!(p.content_length, 12);
        assert!(p.keep_alive);
        let p = Parsed::of(b"GET /a HTTP/1.0\r\n\r\n", Purpose::Api).unwrap();
        assert!(!p.keep_alive);
        let p = Parsed::of(
            b"GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
            Purpose::Api,
        )
        .unwrap();
        assert!(p.keep_alive);
        let p = Parsed::of(
            b"GET /a HTTP/1.1\r\nConnection: foo, close\r\n\r\n",
            Purpose::Api,
        )
        .unwrap();
        assert!(!p.keep_alive);
    }

    #[test]
    fn anything_unusual_is_left_to_pingora() {
        for head in [
            &b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
            b"POST /a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET /a HTTP/1.1\r\nConnection: Upgrade\r\n\r\n",
            b"HEAD /a HTTP/1.1\r\n\r\n",
            b"GET http://h/a HTTP/1.1\r\n\r\n",
            b"GET /a\"b HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/1.1\r\nX: 1\r\n",
            b"GET /a HTTP/1.1\r\n\r\nGET",
        ] {
            assert!(
                Parsed::of(head, Purpose::Api).is_none(),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: 1\r\n"))
            .collect();
        assert!(Parsed::of(
            format!("GET /a HTTP/1.1\r\n{many}\r\n").as_bytes(),
            Purpose::Api
        )
        .is_none());
    }
}
