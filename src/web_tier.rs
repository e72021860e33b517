//! Plain fetches from the web tier without Pingora's proxy: a bodiless HTTP/1.1 `GET` or
//! `HEAD` whose head `h1.rs` reads (`h1::Head::take_fetch` picks them from the raw head) is
//! sent to a backend and the response relayed, all in the client's task and over the bytes
//! as they are: no header maps, one write for the request, one for the response head with
//! the first piece of its body.
//!
//! Pingora's proxy runs a downstream and an upstream half joined by channels per request,
//! boxes large futures and builds header maps on both sides; for the most common
//! pass-through request that machinery cost more than the exchange. Everything else (bodies,
//! upgrades, HTTP/1.0, HTTP/2, targets `h1.rs` leaves to Pingora) still goes through
//! Pingora's proxy, and what this path does mirrors it: the same backends (round robin,
//! health-checked), the same hop-by-hop headers removed (and those `Connection` names), `Date`
//! and `Connection` set as Pingora sets them, a connect failure retried on the next backend, a
//! response without length sent chunked, `gms.backend.timeout_ms` on the connect and on
//! every read and write, and a failure before the response began answered with the same JSON
//! (502, or 504 for a timeout). Chunked responses pass unchanged; [`ChunkedScan`] finds their end.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::{Method, StatusCode};
use pingora::connectors::{ConnectorOptions, TransportConnector};
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::prelude::HttpPeer;
use pingora::protocols::l4::socket::SocketAddr;
use pingora::protocols::Stream;
use pingora::upstreams::peer::Peer;
use pingora::{Error, ErrorType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::chunked::ChunkedScan;
use crate::conn_guard::GuardedStream;
use crate::h1::Head;
use crate::upstream::{IdleConns, IDLE_PER_PEER, IDLE_TIMEOUT, MAX_INFORMATIONAL};

/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1), as Pingora's
/// proxy removes them; `Date` is the gateway's own, as Pingora writes it.
const NOT_FORWARDED: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];
/// Most headers a backend's response may have.
const MAX_RESPONSE_HEADERS: usize = 128;
/// Largest response head accepted.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Size of each read from the backend.
const READ_SIZE: usize = 32 * 1024;

/// Why a fetch failed.
#[derive(Debug)]
pub enum FetchError {
    /// Nothing was sent to the client yet: it gets the 502 (504 for a timeout) JSON.
    BeforeResponse(ErrorType),
    /// The response had begun: the connection can only be closed.
    AfterResponse(Box<Error>),
}

/// What a relayed response was, for the logs.
pub struct Relayed {
    /// The backend that answered.
    pub backend: SocketAddr,
    /// Its status.
    pub status: StatusCode,
    /// Body bytes relayed to the client (a chunked body's framing counted as it came).
    pub body_bytes: usize,
}

/// The web tier as seen by the direct path.
pub struct WebTier {
    lb: Arc<LoadBalancer<RoundRobin>>,
    transport: TransportConnector,
    idle: IdleConns,
    /// Connect failures retried (one per configured upstream, as `fail_to_connect` does).
    retries: usize,
    /// The longest a backend may take to connect, or to take or send the next bytes
    /// (`gms.backend.timeout_ms`).
    timeout: Duration,
}

impl WebTier {
    /// The web tier over its load balancer, connecting as Pingora's proxy does.
    pub fn new(
        lb: Arc<LoadBalancer<RoundRobin>>,
        options: ConnectorOptions,
        retries: usize,
        timeout: Duration,
    ) -> Self {
        WebTier {
            lb,
            transport: TransportConnector::new(Some(options)),
            idle: IdleConns::new(IDLE_PER_PEER, IDLE_TIMEOUT),
            retries,
            timeout,
        }
    }

    /// Sends the client's request to a backend and relays the response; `keep_alive` says
    /// what the response tells the client about its connection.
    pub async fn relay(
        &self,
        client: &mut GuardedStream,
        req: &Head,
        keep_alive: bool,
    ) -> Result<Relayed, FetchError> {
        let request = upstream_request(req);
        let head_only = req.method == Method::HEAD;
        let mut connect_failures = 0;
        loop {
            let (addr, peer) = self
                .next_peer()
                .ok_or(FetchError::BeforeResponse(NO_HEALTHY_BACKEND))?;
            let exchange = Exchange {
                request: &request,
                head_only,
                keep_alive,
                timeout: self.timeout,
            };
            match self.exchange(client, &peer, exchange).await {
                Ok((status, body_bytes)) => {
                    return Ok(Relayed {
                        backend: addr,
                        status,
                        body_bytes,
                    })
                }
                Err(Attempt::ConnectFailed(e)) if connect_failures < self.retries => {
                    log::debug!("backend {addr}: {e}; trying the next one");
                    connect_failures += 1;
                }
                Err(Attempt::ConnectFailed(e)) | Err(Attempt::Broken(e)) => {
                    return Err(FetchError::BeforeResponse(e.etype().clone()))
                }
                Err(Attempt::AfterResponse(e)) => return Err(FetchError::AfterResponse(e)),
            }
        }
    }

    /// The next healthy backend (round robin), as Pingora's proxy and this path reach it: over
    /// TLS with its SNI when configured (`BackendTls`), with `gms.backend.timeout_ms` on
    /// connecting and on every read and write.
    pub fn next_peer(&self) -> Option<(SocketAddr, HttpPeer)> {
        let backend = self.lb.select(b"", 256)?;
        // A TLS backend's SNI is its configured host: the name its certificate is checked
        // against (Pingora verifies by default; `ca_file` sets what it trusts).
        let sni = backend
            .ext
            .get::<crate::proxy::BackendTls>()
            .map(|t| t.sni.clone());
        let addr = backend.addr.clone();
        let mut peer = HttpPeer::new(backend, sni.is_some(), sni.unwrap_or_default());
        peer.options.connection_timeout = Some(self.timeout);
        peer.options.total_connection_timeout = Some(self.timeout);
        peer.options.read_timeout = Some(self.timeout);
        peer.options.write_timeout = Some(self.timeout);
        Some((addr, peer))
    }

    /// One backend: a pooled connection (or, when it turns out closed, a fresh one), the
    /// request, and the response relayed.
    async fn exchange(
        &self,
        client: &mut GuardedStream,
        peer: &HttpPeer,
        ex: Exchange<'_>,
    ) -> Result<(StatusCode, usize), Attempt> {
        let key = peer.reuse_hash();
        let mut pooled = self.idle.take(key);
        loop {
            let reused = pooled.is_some();
            let mut up = match pooled.take() {
                Some(s) => s,
                None => self
                    .transport
                    .new_stream(peer)
                    .await
                    .map_err(Attempt::ConnectFailed)?,
            };
            let mut buf = BytesMut::with_capacity(READ_SIZE);
            match send_and_read_head(&mut up, &mut buf, ex).await {
                Ok(head) => {
                    let (status, sent, reusable) = relay_response(client, &mut up, buf, head, ex)
                        .await
                        .map_err(Attempt::AfterResponse)?;
                    if reusable {
                        self.idle.put(key, up);
                    }
                    return Ok((status, sent));
                }
                // A pooled connection the backend closed meanwhile: GET and HEAD are safe to
                // send again, on a fresh connection.
                Err(_) if reused => continue,
                Err(e) => return Err(Attempt::Broken(e)),
            }
        }
    }
}

/// What one exchange sends and how its response is told to the client.
#[derive(Clone, Copy)]
struct Exchange<'a> {
    request: &'a [u8],
    head_only: bool,
    keep_alive: bool,
    /// Each backend read and write must finish within this.
    timeout: Duration,
}

/// How one attempt at a backend went wrong.
enum Attempt {
    /// No connection could be made: another backend may take the request.
    ConnectFailed(Box<Error>),
    /// Connected, but no usable response head.
    Broken(Box<Error>),
    /// The response had begun.
    AfterResponse(Box<Error>),
}

/// How a response's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (HEAD, 204, 304).
    Empty,
    /// Content-Length bytes.
    Length(u64),
    /// Chunked, relayed as it is.
    Chunked,
    /// Until the backend closes: sent to the client chunked.
    UntilClose,
}

/// A backend's final response head, rewritten for the client (without `Date` and
/// `Connection`, which depend on the client's connection).
struct ResponseHead {
    status: StatusCode,
    /// Length of the backend's head in the read buffer.
    len: usize,
    out: Vec<u8>,
    framing: Framing,
    /// Whether the backend keeps the connection open after this response.
    backend_keeps: bool,
}

fn broken(why: &'static str) -> Box<Error> {
    Error::explain(ErrorType::InvalidHTTPHeader, why)
}

fn io_error(etype: ErrorType, what: &'static str) -> impl Fn(io::Error) -> Box<Error> {
    move |e| Error::because(etype.clone(), what, e)
}

/// No backend to send a fetch to.
const NO_HEALTHY_BACKEND: ErrorType = ErrorType::Custom("no healthy backend");

/// One read (`READ`) or write (`WRITE`) on a backend connection within `limit`.
async fn within<T>(
    limit: Duration,
    (failed, timed_out): (ErrorType, ErrorType),
    what: &'static str,
    io: impl Future<Output = io::Result<T>>,
) -> Result<T, Box<Error>> {
    match tokio::time::timeout(limit, io).await {
        Ok(done) => done.map_err(io_error(failed, what)),
        Err(_) => Err(Error::explain(timed_out, what)),
    }
}

/// What a failed or a late read is, for [`within`].
const READ: (ErrorType, ErrorType) = (ErrorType::ReadError, ErrorType::ReadTimedout);
/// What a failed or a late write is, for [`within`].
const WRITE: (ErrorType, ErrorType) = (ErrorType::WriteError, ErrorType::WriteTimedout);

/// Whether a header is forwarded: not hop-by-hop and not named by `Connection`.
fn forwarded(name: &[u8], connection_names: &[&[u8]]) -> bool {
    !NOT_FORWARDED
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h.as_bytes()))
        && !connection_names
            .iter()
            .any(|c| name.eq_ignore_ascii_case(c))
}

/// The names listed in `Connection` headers.
fn connection_names<'a>(headers: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<&'a [u8]> {
    headers
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"connection"))
        .flat_map(|(_, v)| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|n| !n.is_empty())
        .collect()
}

/// The client's request head as the backend gets it, in one buffer.
fn upstream_request(req: &Head) -> Vec<u8> {
    let named = connection_names(req.headers());
    let mut out = Vec::with_capacity(256 + req.raw_len());
    out.extend_from_slice(req.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(req.target().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers().filter(|(n, _)| forwarded(n, &named)) {
        push_header(&mut out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn push_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes the request and reads the backend's final response head (past at most
/// `MAX_INFORMATIONAL` 1xx responses) into `buf`.
async fn send_and_read_head(
    up: &mut Stream,
    buf: &mut BytesMut,
    ex: Exchange<'_>,
) -> Result<ResponseHead, Box<Error>> {
    let sending = "sending the request";
    within(ex.timeout, WRITE, sending, up.write_all(ex.request)).await?;
    within(ex.timeout, WRITE, sending, up.flush()).await?;
    let mut informational = 0;
    loop {
        if !buf.is_empty() {
            match parse_head(buf, ex.head_only)? {
                Some(head) if head.status.is_informational() => {
                    informational += 1;
                    if informational > MAX_INFORMATIONAL {
                        return Err(broken("too many 1xx responses"));
                    }
                    buf.advance(head.len);
                    continue;
                }
                Some(head) => return Ok(head),
                None if buf.len() >= MAX_RESPONSE_HEAD => {
                    return Err(broken("response head too large"))
                }
                None => {}
            }
        }
        buf.reserve(READ_SIZE);
        let n = within(
            ex.timeout,
            READ,
            "reading the response head",
            up.read_buf(buf),
        )
        .await?;
        if n == 0 {
            return Err(Error::explain(
                ErrorType::ConnectionClosed,
                "the backend closed before a response",
            ));
        }
    }
}

/// Parses a response head at the start of `buf`; `None` while it is incomplete.
fn parse_head(buf: &[u8], head_only: bool) -> Result<Option<ResponseHead>, Box<Error>> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(broken("malformed response head")),
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| broken("bad response status"))?;
    if status.is_informational() {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(broken("101 to a request that asked no upgrade"));
        }
        return Ok(Some(ResponseHead {
            status,
            len,
            out: Vec::new(),
            framing: Framing::Empty,
            backend_keeps: false,
        }));
    }
    let headers = || resp.headers.iter().map(|h| (h.name.as_bytes(), h.value));
    let named = connection_names(headers());
    let close = named.iter().any(|n| n.eq_ignore_ascii_case(b"close"));
    let keep = named.iter().any(|n| n.eq_ignore_ascii_case(b"keep-alive"));
    let mut chunked = false;
    let mut length: Option<u64> = None;
    for (name, value) in headers() {
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Only a body whose last coding is chunked has an end the gateway can find.
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(broken("a transfer coding other than chunked"));
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| broken("bad Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(broken("conflicting Content-Length headers"));
            }
            length = Some(n);
        }
    }
    let framing = if head_only || matches!(status.as_u16(), 204 | 304) {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let mut out = Vec::with_capacity(len + 64);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(resp.reason.unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers() {
        // A chunked body's Content-Length is meaningless (RFC 9112 6.3): not passed on.
        let dropped = name.eq_ignore_ascii_case(b"date")
            || (chunked && name.eq_ignore_ascii_case(b"content-length"));
        if !dropped && forwarded(name, &named) {
            push_header(&mut out, name, value);
        }
    }
    if matches!(framing, Framing::Chunked | Framing::UntilClose) {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    let http11 = resp.version == Some(1);
    Ok(Some(ResponseHead {
        status,
        len,
        out,
        framing,
        backend_keeps: framing != Framing::UntilClose && !close && (http11 || keep),
    }))
}

/// Writes the response to the client: its head with the body bytes read with it in one
/// write, then the rest of the body as it comes. Returns the status, the body bytes sent and
/// whether the backend connection can be reused.
async fn relay_response(
    client: &mut GuardedStream,
    up: &mut Stream,
    mut buf: BytesMut,
    head: ResponseHead,
    ex: Exchange<'_>,
) -> Result<(StatusCode, usize, bool), Box<Error>> {
    let to_client = io_error(ErrorType::WriteError, "writing the response");
    let ResponseHead {
        status,
        len,
        mut out,
        framing,
        mut backend_keeps,
    } = head;
    buf.advance(len);
    out.extend_from_slice(b"Date: ");
    out.extend_from_slice(pingora::protocols::http::date::get_cached_date().as_bytes());
    out.extend_from_slice(if ex.keep_alive {
        b"\r\nConnection: keep-alive\r\n\r\n"
    } else {
        b"\r\nConnection: close\r\n\r\n"
    });
    let mut sent = 0;
    let mut scan = ChunkedScan::default();
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    // `out` holds what goes to the client next: the head, then each piece of body.
    loop {
        let piece_done = match framing {
            Framing::Empty => {
                backend_keeps &= buf.is_empty();
                true
            }
            Framing::Length(_) => {
                let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                backend_keeps &= take == buf.len();
                out.extend_from_slice(&buf[..take]);
                sent += take;
                left -= take as u64;
                left == 0
            }
            Framing::Chunked => {
                let end = scan
                    .feed(&buf)
                    .map_err(|m| Error::explain(ErrorType::InvalidHTTPHeader, m.0))?;
                let take = end.unwrap_or(buf.len());
                backend_keeps &= take == buf.len();
                out.extend_from_slice(&buf[..take]);
                sent += take;
                end.is_some()
            }
            Framing::UntilClose => {
                if !buf.is_empty() {
                    let _ =
                        std::io::Write::write_fmt(&mut out, format_args!("{:x}\r\n", buf.len()));
                    out.extend_from_slice(&buf);
                    out.extend_from_slice(b"\r\n");
                    sent += buf.len();
                }
                false
            }
        };
        if piece_done {
            client.write_all(&out).await.map_err(&to_client)?;
            break;
        }
        if !out.is_empty() {
            client.write_all(&out).await.map_err(&to_client)?;
            out.clear();
        }
        buf.clear();
        buf.reserve(READ_SIZE);
        let reading = "reading the response body";
        if within(ex.timeout, READ, reading, up.read_buf(&mut buf)).await? == 0 {
            if framing != Framing::UntilClose {
                return Err(Error::explain(
                    ErrorType::ConnectionClosed,
                    "the backend closed before the body ended",
                ));
            }
            client.write_all(b"0\r\n\r\n").await.map_err(&to_client)?;
            break;
        }
    }
    client.flush().await.map_err(&to_client)?;
    Ok((status, sent, backend_keeps))
}
