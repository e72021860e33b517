//! The limits on request heads that Pingora lacks (`gms.connections`), on each HTTP/1 client
//! connection of the binary, enforced without reading HTTP: a stream wrapper that counts bytes
//! and time, and only while a head is awaited.
//!
//! The head phase is set from outside, never found in the bytes: it begins when the connection
//! loop (`app.rs`) hands the connection to Pingora for the next request (after Pingora finished
//! and drained the one before), and it ends when the proxy's `early_request_filter` runs, that
//! is once Pingora has parsed the head. In between:
//! - before the first byte, the connection may be idle for `idle_timeout_ms`; then it closes,
//!   silently (no request, nobody to answer);
//! - from the first byte, the whole head must arrive within `header_timeout_ms` (Pingora times
//!   out each read, so a client sending a byte a second never trips its timeout);
//! - no read of the phase goes past `max_header_bytes` in all: a head that has not ended by
//!   then is over the limit.
//!
//! Over a limit the wrapper writes a 408 or 431 JSON with `Connection: close` (no
//! response can be in flight during a head) and ends the stream, so Pingora sees the client
//! close. Outside the head phase it passes every byte through untouched: bodies have Pingora's
//! own read timeouts. Bytes of a pipelined request that came with the one before are read in
//! that request's phase; Pingora keeps them for the next request, so such a head can reach up to
//! twice the limit before it is refused. HTTP/2 connections are not wrapped: frames are not
//! text, and h2 has its own limits.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType, ALPN,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::error::ApiError;
use crate::request_id::RequestId;

/// The per-connection limits the wrapper enforces (`gms.connections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadLimits {
    /// The whole request head must arrive within this, from its first byte.
    pub header_timeout: Duration,
    /// The connection may wait this long for the first byte of a request.
    pub idle_timeout: Duration,
    /// Largest request head accepted.
    pub max_header_bytes: usize,
}

/// A rejection written below Pingora, before any request was parsed: the same JSON as every
/// other error of the API, with a request id of its own (body and header). Built only when a
/// connection is refused, so it may allocate.
fn rejection(error: ApiError) -> Vec<u8> {
    let id = RequestId::new();
    error
        .to_reply_for(&id)
        .with_header("X-Request-Id", id.to_string())
        .to_http1_close()
}

/// A client stream under [`HeadLimits`].
#[derive(Debug)]
pub struct LimitedStream {
    inner: Stream,
    limits: HeadLimits,
    /// Set by [`Self::begin_head`], cleared by [`Self::end_head`] (through a shared reference:
    /// Pingora holds the stream then).
    in_head: AtomicBool,
    /// Bytes read in this head phase.
    seen: usize,
    /// When the phase's current wait ends: set when a read first has to wait, so a client that
    /// sends its head at once never touches the clock or the timer wheel.
    deadline: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    /// A rejection being written: the bytes and how many are out.
    reject: Option<(Vec<u8>, usize)>,
    /// The stream ended by the wrapper: every read is the end of the stream.
    ended: bool,
}

impl LimitedStream {
    /// Wraps a freshly accepted stream; its first head phase begins with the first
    /// [`Self::begin_head`].
    pub fn new(inner: Stream, limits: HeadLimits) -> Self {
        LimitedStream {
            inner,
            limits,
            in_head: AtomicBool::new(false),
            seen: 0,
            deadline: None,
            timer: None,
            reject: None,
            ended: false,
        }
    }

    /// The next request's head is awaited from now on.
    pub fn begin_head(&mut self) {
        *self.in_head.get_mut() = true;
        self.seen = 0;
        self.deadline = None;
        self.timer = None;
    }

    /// The head has been read (Pingora parsed it): the limits are off until the next one.
    pub fn end_head(&self) {
        self.in_head.store(false, Ordering::Relaxed);
    }

    /// Ends the head phase of the stream under a Pingora session, if it is one of ours.
    pub fn end_head_of(stream: &Stream) {
        // `as_ref()` first: `as_any` on the box itself would name the box, not the stream.
        if let Some(s) = stream.as_ref().as_any().downcast_ref::<LimitedStream>() {
            s.end_head();
        }
    }

    fn start_reject(&mut self, error: ApiError) {
        self.reject = Some((rejection(error), 0));
    }

    /// Writes the rejection, then ends the stream; `Ready` once there is nothing more to do.
    fn poll_reject(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some((bytes, done)) = self.reject.as_mut() {
            if *done == bytes.len() {
                if Pin::new(&mut self.inner).poll_flush(cx).is_pending() {
                    return Poll::Pending;
                }
                self.reject = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*done..]) {
                Poll::Ready(Ok(n)) if n > 0 => *done += n,
                Poll::Ready(_) => self.reject = None,
                Poll::Pending => return Poll::Pending,
            }
        }
        self.ended = true;
        Poll::Ready(())
    }

    /// A read in the head phase: at most what is left of the budget, under the deadline.
    fn poll_head_read(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let left = self.limits.max_header_bytes.saturating_sub(self.seen);
        if left == 0 {
            // The budget is spent and the head has not ended: over the limit.
            self.start_reject(ApiError::HeaderTooLarge);
            return self.poll_reject(cx).map(|()| Ok(()));
        }
        let mut limited = buf.take(left);
        match Pin::new(&mut self.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let n = limited.filled().len();
                // SAFETY: `limited` is a view of `buf`'s unfilled part, and the read wrote `n`
                // bytes into it.
                unsafe { buf.assume_init(n) };
                buf.advance(n);
                if n > 0 && self.seen == 0 {
                    // The first byte of a head: the idle wait is over, the head's deadline is
                    // armed at its next wait.
                    self.deadline = None;
                    self.timer = None;
                }
                self.seen += n;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => self.poll_deadline(cx),
        }
    }

    /// A head read is waiting: `Pending` until the phase's deadline, then the end of the
    /// stream (idle) or the 408 (inside a head).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let deadline = *self.deadline.get_or_insert_with(|| {
            let wait = if self.seen == 0 {
                self.limits.idle_timeout
            } else {
                self.limits.header_timeout
            };
            Instant::now() + wait
        });
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.timer = None;
        if self.seen == 0 {
            // Nothing of a request arrived: close, there is nobody to answer.
            self.ended = true;
            return Poll::Ready(Ok(()));
        }
        self.start_reject(ApiError::RequestTimeout);
        self.poll_reject(cx).map(|()| Ok(()))
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Ok(()));
        }
        if this.reject.is_some() {
            return this.poll_reject(cx).map(|()| Ok(()));
        }
        if !this.in_head.load(Ordering::Relaxed) {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        this.poll_head_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
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
impl Shutdown for LimitedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for LimitedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for LimitedStream {
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

impl GetTimingDigest for LimitedStream {
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

impl GetProxyDigest for LimitedStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for LimitedStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: pingora::protocols::SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for LimitedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A limited server end and the client end of a loopback connection.
    async fn pair(limits: HeadLimits) -> (LimitedStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let stream: Stream = Box::new(pingora::protocols::l4::stream::Stream::from(server));
        (LimitedStream::new(stream, limits), client)
    }

    fn limits() -> HeadLimits {
        HeadLimits {
            header_timeout: Duration::from_millis(300),
            idle_timeout: Duration::from_millis(200),
            max_header_bytes: 64,
        }
    }

    async fn read_all(c: &mut tokio::net::TcpStream) -> String {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn a_head_over_the_budget_gets_431_and_the_end_of_the_stream() {
        let (mut s, mut c) = pair(limits()).await;
        s.begin_head();
        c.write_all(&[b'a'; 100]).await.unwrap();
        let mut buf = [0u8; 1024];
        let mut got = 0;
        loop {
            let n = s.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got += n;
        }
        assert_eq!(got, 64, "no read goes past the budget");
        drop(s);
        assert!(read_all(&mut c).await.starts_with("HTTP/1.1 431"));
    }

    #[tokio::test]
    async fn a_stalled_head_gets_408_and_an_idle_connection_just_ends() {
        let (mut s, mut c) = pair(limits()).await;
        s.begin_head();
        c.write_all(b"GET / HT").await.unwrap();
        let mut buf = [0u8; 1024];
        assert_eq!(s.read(&mut buf).await.unwrap(), 8);
        assert_eq!(s.read(&mut buf).await.unwrap(), 0);
        drop(s);
        let out = read_all(&mut c).await;
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        assert!(out.contains("Connection: close"), "{out}");

        let (mut s, mut c) = pair(limits()).await;
        s.begin_head();
        assert_eq!(s.read(&mut buf).await.unwrap(), 0);
        drop(s);
        assert_eq!(read_all(&mut c).await, "");
    }

    #[tokio::test]
    async fn outside_a_head_nothing_is_limited_or_written() {
        let (mut s, mut c) = pair(limits()).await;
        s.begin_head();
        s.end_head();
        c.write_all(&[b'b'; 200]).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 200 {
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        // A body that stops arriving is Pingora's to time out, not the wrapper's.
        let waited = tokio::time::timeout(Duration::from_millis(600), s.read(&mut [0u8; 8])).await;
        assert!(waited.is_err(), "the wrapper ended a stream outside a head");
    }
}
