//! The Pingora application behind the API listeners. Each HTTP/1 client connection runs under
//! the guard of `gms.connections` (`conn_guard.rs`), which peeks at every request before anyone
//! reads it; the peeked bytes decide which way the request goes:
//! - a plain API request whose whole head is there: the gateway's own HTTP/1.1 (`h1.rs`,
//!   [`GatewayProxy::serve_h1`]);
//! - another API request (by its request line, [`routes::answered_here`]): Pingora's HTTP/1
//!   session without its proxy ([`GatewayProxy::serve`]);
//! - a plain GET or HEAD for the web tier (a bodiless HTTP/1.1 head `h1.rs` reads):
//!   relayed by `web_tier.rs` over the raw bytes ([`GatewayProxy::serve_fetch`]);
//! - anything else (other web-tier requests, bytes the peek cannot place, every malformed
//!   head) and all of HTTP/2: Pingora's proxy ([`HttpProxy`]), whose `request_filter` answers
//!   API requests with the same code.
//!
//! The direct ways skip the proxy's per-request machinery (its session, phases, two large
//! boxed futures, header maps), which the benchmark showed costs more than the gateway's own
//! work. The loop does what Pingora's own HTTP/1 keep-alive loop does: the request limit
//! (`max_requests`) counts every request on the connection whichever way it went, and a
//! shutdown ends the wait for the next request.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;

use crate::conn_guard::{ConnLimits, GuardedStream, Peeked};
use crate::h1;
use crate::proxy::GatewayProxy;
use crate::routes;

/// Pingora's keep-alive default for a new connection, in seconds; `request_filter` and
/// [`GatewayProxy::serve`] set the configured one on every request.
const FIRST_KEEPALIVE_S: u64 = 60;

/// The API service's application: the guard, the direct way for API requests, and
/// Pingora's proxy for the rest.
pub struct GatewayApp {
    proxy: Arc<HttpProxy<GatewayProxy>>,
    api: GatewayProxy,
    limits: ConnLimits,
    /// Requests one connection may carry after its first (Pingora's `keepalive_request_limit`).
    reuses: Option<u32>,
}

impl GatewayApp {
    /// Wraps Pingora's proxy over `api` (a clone of the proxy's own [`GatewayProxy`]).
    pub fn new(
        proxy: HttpProxy<GatewayProxy>,
        api: GatewayProxy,
        limits: ConnLimits,
        reuses: Option<u32>,
    ) -> Self {
        GatewayApp {
            proxy: Arc::new(proxy),
            api,
            limits,
            reuses,
        }
    }

    /// One HTTP/1 connection, request after request, until it closes.
    async fn serve_http1(&self, stream: Stream, shutdown: &ShutdownWatch) -> Option<Stream> {
        let mut guarded = Box::new(GuardedStream::new(stream, self.limits));
        let mut shutdown_rx = shutdown.clone();
        // Requests on this connection so far, whichever way they went.
        let mut served: u32 = 0;
        loop {
            let api = tokio::select! {
                biased;
                peeked = guarded.peek_request_line() => match peeked {
                    Peeked::Line(line) => routes::answered_here(
                        line,
                        &self.api.config().prefixes,
                        self.api.config().fallback_to_backend,
                    ),
                    Peeked::Unknown => false,
                    Peeked::Closed => return None,
                },
                // No new request starts once the process is going down.
                _ = shutdown_rx.wait_for(|down| *down) => return None,
            };
            // This request is the connection's last: the process is going down, or the
            // connection has had `max_requests`.
            let last = *shutdown.borrow() || self.reuses.is_some_and(|r| served >= r);
            let reuses_left = self.reuses.map(|r| r.saturating_sub(served));
            served = served.saturating_add(1);
            let kept = if api {
                match h1::Head::take(&mut guarded) {
                    Some(head) => Some(self.api.serve_h1(&mut guarded, head, last).await),
                    None => None,
                }
            } else if self.api.has_web_tier() {
                match h1::Head::take_fetch(&mut guarded) {
                    Some(head) => Some(self.api.serve_fetch(&mut guarded, head, last).await),
                    None => None,
                }
            } else {
                None
            };
            match kept {
                Some(true) => continue,
                Some(false) => return None,
                None => {}
            }
            let mut session = ServerSession::new_http1(guarded);
            session.set_keepalive((!last).then_some(FIRST_KEEPALIVE_S));
            session.set_keepalive_reuses_remaining(reuses_left);
            let reused = if api {
                self.api.serve(session).await
            } else {
                self.proxy.process_new_http(session, shutdown).await
            };
            // Pingora's persistent settings carry nothing this loop does not set itself: the
            // keep-alive wait is the guard's, the request count is `served`.
            let (stream, _) = reused?.consume();
            // The stream handed back is the one handed in; anything else is closed.
            guarded = stream.into_any().downcast::<GuardedStream>().ok()?;
        }
    }
}

#[async_trait]
impl ServerApp for GatewayApp {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            // HTTP/2 (TLS listeners, by ALPN): Pingora's own connection handling throughout.
            return self.proxy.process_new(stream, shutdown).await;
        }
        self.serve_http1(stream, shutdown).await
    }

    async fn cleanup(&self) {
        self.proxy.cleanup().await
    }
}
