//! Guards on each HTTP/1 client connection that Pingora does not give: a deadline for the whole
//! request head (Pingora times out each read, so a client sending a byte a second never trips
//! it), a configurable head size, and an idle limit before the first request.
//!
//! The guard wraps the accepted stream before Pingora reads from it and watches the bytes go
//! by: a request head starts at the first byte read after a response (or on a new connection)
//! and ends at the blank line. It parses nothing else; Pingora still parses the request.
//! Over a limit, the guard writes the JSON error itself and ends the stream, so the client
//! learns why (408 or 431) and Pingora simply sees the connection close.
//!
//! HTTP/2 connections are not wrapped: frames are not text, and h2 has its own limits.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Buf, Bytes, BytesMut};
use pingora::apps::ServerApp;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;

/// How far [`GuardedStream::peek_request_line`] looks for the end of a request line.
const PEEK_LIMIT: usize = 4096;
/// Bytes asked of the socket per peek read: a whole small request, as Pingora would read it.
const PEEK_READ: usize = 16 * 1024;

/// The per-connection limits the guard enforces (`gms.connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// The whole request head (request line and headers) must arrive within this.
    pub header_timeout: Duration,
    /// A new connection must send its first byte within this.
    pub idle_timeout: Duration,
    /// Largest request head accepted.
    pub max_header_bytes: usize,
}

/// A Pingora application wrapped so that each HTTP/1 connection goes through the guard.
pub struct Guarded<A> {
    inner: Arc<A>,
    limits: ConnLimits,
}

impl<A> Guarded<A> {
    /// Wraps `inner` (Pingora's HTTP proxy application) with `limits`.
    pub fn new(inner: A, limits: ConnLimits) -> Self {
        Guarded {
            inner: Arc::new(inner),
            limits,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let stream: Stream = if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            stream
        } else {
            Box::new(GuardedStream::new(stream, self.limits))
        };
        self.inner.process_new(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await
    }
}

/// Where the connection is in its request/response cycle, as far as the guard can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing read yet on a new connection: the idle deadline runs.
    Fresh,
    /// Waiting for the next request on a kept-alive connection: the idle deadline runs once
    /// the next request is awaited (`peek_request_line`).
    Between,
    /// Inside a request head: the head deadline runs and its bytes are counted.
    Head,
    /// Past the head (body, or waiting for the reply): Pingora's own timeouts apply.
    Rest,
}

/// What [`GuardedStream::peek_request_line`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Peeked<'a> {
    /// The request line, without its line end.
    Line(&'a [u8]),
    /// Bytes that are not (yet) a line: a very long line, or a request cut short.
    Unknown,
    /// The stream ended (closed, idle too long, or ended by the guard) before a byte came.
    Closed,
}

/// A client stream that enforces [`ConnLimits`] on request heads.
pub struct GuardedStream {
    inner: Stream,
    limits: ConnLimits,
    phase: Phase,
    deadline: Option<Instant>,
    /// Bytes of the current head seen so far.
    head_bytes: usize,
    /// Whether the last head byte (ignoring CR) was LF: a second LF ends the head.
    after_lf: bool,
    /// Armed only while a guarded read waits, so fast clients never touch the timer wheel.
    timer: Option<Pin<Box<Sleep>>>,
    /// A rejection being written: the bytes and how many are out.
    reject: Option<(Vec<u8>, usize)>,
    /// Bytes read by [`GuardedStream::peek_request_line`] and not yet handed on: reads return
    /// these first. Already observed by the guard when they came off the socket.
    replay: BytesMut,
}

impl fmt::Debug for GuardedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedStream")
            .field("inner", &self.inner)
            .field("phase", &self.phase)
            .finish()
    }
}

impl GuardedStream {
    /// Wraps a freshly accepted stream.
    pub fn new(inner: Stream, limits: ConnLimits) -> Self {
        GuardedStream {
            inner,
            limits,
            phase: Phase::Fresh,
            deadline: Some(Instant::now() + limits.idle_timeout),
            head_bytes: 0,
            after_lf: false,
            timer: None,
            reject: None,
            replay: BytesMut::new(),
        }
    }

    /// The whole next request head, if the bytes peeked so far hold all of it.
    pub fn peeked_head(&self) -> Option<&[u8]> {
        let mut after_lf = false;
        head_end(&self.replay, &mut after_lf).map(|end| &self.replay[..end])
    }

    /// How many bytes were peeked and not yet handed on.
    pub fn peeked_len(&self) -> usize {
        self.replay.len()
    }

    /// Takes the first `len` peeked bytes (a request head or body read by `h1.rs`) for good,
    /// without copying them.
    pub fn take_peeked(&mut self, len: usize) -> Bytes {
        let head = self.replay.split_to(len).freeze();
        if self.replay.is_empty() {
            self.replay = BytesMut::new();
        }
        head
    }

    /// Whether the connection is TLS.
    pub fn is_tls(&self) -> bool {
        self.inner.get_ssl_digest().is_some()
    }

    /// The client's address.
    pub fn client_addr(&self) -> Option<pingora::protocols::l4::socket::SocketAddr> {
        self.inner
            .get_socket_digest()
            .and_then(|d| d.peer_addr().cloned())
    }

    /// Reads until the next request's first line is here and returns it (without its line
    /// end), leaving every byte read to be read again. Cancel-safe: bytes read before a
    /// cancel stay in the replay buffer.
    pub async fn peek_request_line(&mut self) -> Peeked<'_> {
        if matches!(self.phase, Phase::Fresh | Phase::Between) && !self.replay.is_empty() {
            // Pipelined: this request's first bytes came in the read of the one before. They
            // count against its head limit now, as if just read.
            let buffered = std::mem::take(&mut self.replay);
            let seen = self.observe(&buffered);
            self.replay = buffered;
            if let Err(e) = seen {
                // Whoever reads next gets the error and then the end of the stream.
                self.replay = BytesMut::new();
                self.start_reject(e);
                return Peeked::Unknown;
            }
        }
        let mut scanned = 0;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.replay[scanned..]) {
                let end = scanned + i;
                let line = &self.replay[..end];
                return Peeked::Line(line.strip_suffix(b"\r").unwrap_or(line));
            }
            scanned = self.replay.len();
            if scanned >= PEEK_LIMIT {
                return Peeked::Unknown;
            }
            if self.phase == Phase::Between && self.deadline.is_none() {
                // Waiting for the next request on a kept-alive connection.
                self.deadline = Some(Instant::now() + self.limits.idle_timeout);
            }
            let got = std::future::poll_fn(|cx| {
                // The read goes into the replay buffer's spare room; taken out for the call.
                let mut replay = std::mem::take(&mut self.replay);
                replay.reserve(PEEK_READ);
                let mut buf = ReadBuf::uninit(replay.spare_capacity_mut());
                let polled = self.poll_read_observed(cx, &mut buf);
                let n = buf.filled().len();
                // SAFETY: `ReadBuf` reports `n` bytes of the spare capacity as written.
                unsafe { replay.set_len(replay.len() + n) };
                // An idle kept-alive connection holds no read buffer while it waits.
                if !(polled.is_pending() && replay.is_empty()) {
                    self.replay = replay;
                }
                polled.map_ok(|()| n)
            })
            .await;
            match got {
                Ok(n) if n > 0 => {}
                // Bytes read before the end are a broken request: Pingora reads and reports it.
                _ if scanned > 0 => return Peeked::Unknown,
                _ => return Peeked::Closed,
            }
        }
    }

    /// Accounts for bytes just read; `Err` when they break a limit.
    fn observe(&mut self, bytes: &[u8]) -> Result<(), ApiError> {
        if matches!(self.phase, Phase::Fresh | Phase::Between) {
            // A head's first read cannot be late; most heads also end in it.
            self.phase = Phase::Head;
            self.deadline = Some(Instant::now() + self.limits.header_timeout);
            self.head_bytes = 0;
            self.after_lf = false;
        } else if self.phase != Phase::Head {
            return Ok(());
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(ApiError::RequestTimeout);
        }
        match head_end(bytes, &mut self.after_lf) {
            Some(n) => {
                self.head_bytes += n;
                self.phase = Phase::Rest;
                self.deadline = None;
            }
            None => self.head_bytes += bytes.len(),
        }
        if self.head_bytes > self.limits.max_header_bytes {
            return Err(ApiError::HeaderTooLarge);
        }
        Ok(())
    }

    /// A response going out (other than an interim 1xx) ends the request: what is read next
    /// starts the next head.
    fn on_write(&mut self, first_bytes: &[u8]) {
        if self.phase != Phase::Between && !is_interim(first_bytes) {
            self.phase = Phase::Between;
            self.deadline = None;
        }
    }

    /// Starts writing `e` to the client; the stream ends once it is out.
    fn start_reject(&mut self, e: ApiError) {
        log::info!("closing a client connection: {e}");
        self.reject = Some((e.to_reply().to_http1_close(), 0));
        self.phase = Phase::Rest;
        self.deadline = None;
        self.timer = None;
    }

    /// Writes the pending rejection; `Ready` once written (or the client is gone).
    fn poll_reject(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some((bytes, sent)) = &mut self.reject else {
            return Poll::Ready(());
        };
        while *sent < bytes.len() {
            match ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*sent..])) {
                Ok(0) | Err(_) => return Poll::Ready(()),
                Ok(n) => *sent += n,
            }
        }
        let _ = ready!(Pin::new(&mut self.inner).poll_flush(cx));
        Poll::Ready(())
    }

    /// Polls the deadline of the current phase, arming the timer on first use.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx)
    }
}

/// Finds the end of a request head in `bytes`, continuing from `after_lf`: the index just past
/// the blank line, if it is here. Bare LF line ends count, as Pingora's parser accepts them.
fn head_end(bytes: &[u8], after_lf: &mut bool) -> Option<usize> {
    // Only line ends matter: jump from one LF to the next (memchr) and look at what lies
    // between, which is only CRs (or nothing) when the line was empty.
    let mut from = 0;
    for lf in memchr::memchr_iter(b'\n', bytes) {
        let between = &bytes[from..lf];
        if *after_lf && between.iter().all(|&b| b == b'\r') {
            return Some(lf + 1);
        }
        *after_lf = true;
        from = lf + 1;
    }
    if bytes[from..].iter().any(|&b| b != b'\r') {
        *after_lf = false;
    }
    None
}

/// Whether written bytes start an interim (1xx) response, after which the same request's body
/// still follows.
fn is_interim(buf: &[u8]) -> bool {
    buf.len() > 9 && buf.starts_with(b"HTTP/1.") && buf[9] == b'1'
}

impl GuardedStream {
    /// Reads from the socket under the guard's limits.
    fn poll_read_observed(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self;
        if this.reject.is_some() {
            // End of stream once the error is out: Pingora closes the connection.
            ready!(this.poll_reject(cx));
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let got = &buf.filled()[before..];
                if got.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                if this.phase == Phase::Rest {
                    return Poll::Ready(Ok(()));
                }
                let seen = this.observe(got);
                if let Err(e) = seen {
                    buf.set_filled(before);
                    this.start_reject(e);
                    ready!(this.poll_reject(cx));
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                if matches!(this.phase, Phase::Fresh | Phase::Between | Phase::Head) {
                    ready!(this.poll_deadline(cx));
                    if this.phase == Phase::Head {
                        this.start_reject(ApiError::RequestTimeout);
                        ready!(this.poll_reject(cx));
                    }
                    // A connection idle before a request (new or kept alive) is closed
                    // without a word.
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.replay.is_empty() {
            let n = this.replay.len().min(buf.remaining());
            buf.put_slice(&this.replay[..n]);
            this.replay.advance(n);
            if this.replay.is_empty() {
                // Give the buffer back: an idle kept-alive connection holds no read buffer.
                this.replay = BytesMut::new();
            }
            return Poll::Ready(Ok(()));
        }
        this.poll_read_observed(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.on_write(buf);
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.on_write(bufs.first().map_or(&[][..], |b| &b[..]));
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: pingora::protocols::SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A guarded server end and the client end of a loopback connection.
    async fn pair(limits: ConnLimits) -> (GuardedStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let stream: Stream = Box::new(pingora::protocols::l4::stream::Stream::from(server));
        (GuardedStream::new(stream, limits), client)
    }

    fn limits() -> ConnLimits {
        ConnLimits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_millis(200),
            max_header_bytes: 1024,
        }
    }

    #[tokio::test]
    async fn a_peeked_line_is_read_again_whole() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut g, mut client) = pair(limits()).await;
        client.write_all(b"GET /a HT").await.unwrap();
        // The line is not complete yet: the peek waits, and a cancel keeps what it read.
        let early = tokio::time::timeout(Duration::from_millis(50), g.peek_request_line()).await;
        assert!(early.is_err());
        client
            .write_all(b"TP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(
            g.peek_request_line().await,
            Peeked::Line(b"GET /a HTTP/1.1")
        );
        let mut all = vec![0u8; 64];
        let n = g.read(&mut all).await.unwrap();
        assert_eq!(&all[..n], b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    }

    #[tokio::test]
    async fn peeks_end_on_close_idle_and_overlong_lines() {
        use tokio::io::AsyncWriteExt;
        let (mut g, client) = pair(limits()).await;
        drop(client);
        assert_eq!(g.peek_request_line().await, Peeked::Closed);
        // Idle past `idle_timeout`: closed without a word.
        let (mut g, _client) = pair(limits()).await;
        let waited = tokio::time::timeout(Duration::from_secs(5), g.peek_request_line()).await;
        assert_eq!(waited.unwrap(), Peeked::Closed);
        // A line longer than the peek looks: Pingora gets it (and the guard its size).
        let big = ConnLimits {
            max_header_bytes: 64 * 1024,
            ..limits()
        };
        let (mut g, mut client) = pair(big).await;
        let mut line = b"GET /".to_vec();
        line.resize(PEEK_LIMIT + 100, b'a');
        client.write_all(&line).await.unwrap();
        assert_eq!(g.peek_request_line().await, Peeked::Unknown);
    }

    #[test]
    fn head_end_finds_the_blank_line_across_reads() {
        let mut lf = false;
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: a\r", &mut lf), None);
        assert_eq!(head_end(b"\n\r\nbody", &mut lf), Some(3));
        let mut lf = false;
        assert_eq!(
            head_end(b"GET / HTTP/1.1\nHost: a\n\nrest", &mut lf),
            Some(24)
        );
        let mut lf = false;
        assert_eq!(
            head_end(b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n", &mut lf),
            None
        );
        assert!(lf);
    }

    /// Byte by byte, the definition: LF, then optional CRs, then LF.
    fn reference_end(bytes: &[u8]) -> Option<usize> {
        let mut after_lf = false;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' if after_lf => return Some(i + 1),
                b'\n' => after_lf = true,
                b'\r' => {}
                _ => after_lf = false,
            }
        }
        None
    }

    #[test]
    fn head_end_agrees_with_the_definition_at_every_split() {
        let heads: [&[u8]; 5] = [
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody\n\n",
            b"GET / HTTP/1.1\nHost: a\n\nrest",
            b"GET / HTTP/1.1\r\nX: \r\r\n\r\r\r\n",
            b"\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX: b",
        ];
        for head in heads {
            let want = reference_end(head);
            for cut in 0..=head.len() {
                let mut lf = false;
                let got = head_end(&head[..cut], &mut lf)
                    .or_else(|| head_end(&head[cut..], &mut lf).map(|n| n + cut));
                assert_eq!(
                    got,
                    want,
                    "{:?} cut at {cut}",
                    String::from_utf8_lossy(head)
                );
            }
        }
    }

    #[test]
    fn interim_responses_are_told_apart() {
        assert!(is_interim(b"HTTP/1.1 100 Continue\r\n\r\n"));
        assert!(!is_interim(b"HTTP/1.1 200 OK\r\n"));
        assert!(!is_interim(b"HTTP/1.1"));
    }
}
