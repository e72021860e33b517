//! The binary's Pingora application behind its listeners: Pingora's HTTP proxy (one way in for
//! every request, API or pass-through), with each HTTP/1 connection under the head limits of
//! `gms.connections` (`head_limits.rs`).
//!
//! The HTTP/1 keep-alive loop is Pingora's own (`apps/mod.rs`), written out here for one
//! reason: to begin each head phase of the stream wrapper when the next request is awaited,
//! after Pingora has finished (and drained) the one before. Pipelining is on: requests sent
//! back to back are each answered in order (RFC 9112 9.3.2) rather than the second one
//! dropped. HTTP/2 connections (TLS listeners, by ALPN) go to Pingora's own handling.

use std::sync::Arc;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;

use crate::head_limits::{HeadLimits, LimitedStream};
use crate::proxy::GatewayProxy;

/// The binary's application: Pingora's proxy over [`GatewayProxy`], HTTP/1 connections under
/// [`HeadLimits`].
pub struct GatewayApp {
    proxy: Arc<HttpProxy<GatewayProxy>>,
    limits: HeadLimits,
    /// Requests one connection may carry after its first (Pingora's `keepalive_request_limit`).
    reuses: Option<u32>,
}

impl GatewayApp {
    /// Wraps Pingora's proxy.
    pub fn new(proxy: HttpProxy<GatewayProxy>, limits: HeadLimits, reuses: Option<u32>) -> Self {
        GatewayApp {
            proxy: Arc::new(proxy),
            limits,
            reuses,
        }
    }

    /// One HTTP/1 connection, request after request, until it closes.
    async fn serve_http1(&self, stream: Stream, shutdown: &ShutdownWatch) {
        let mut stream = Box::new(LimitedStream::new(stream, self.limits));
        stream.begin_head();
        let mut session = ServerSession::new_http1(stream);
        // As Pingora's own loop starts a connection: keep-alive unless the server is going
        // down. The wait for each request is the wrapper's (`idle_timeout_ms`), so Pingora's
        // own keep-alive read timeout stays off.
        session.set_keepalive((!*shutdown.borrow()).then_some(0));
        session.set_keepalive_reuses_remaining(self.reuses);
        session.set_pipelining_enabled(true);
        loop {
            let Some(reused) = self.proxy.process_new_http(session, shutdown).await else {
                return;
            };
            let (stream, settings) = reused.consume();
            // The stream handed back is the one handed in; anything else is closed.
            let Ok(mut stream) = stream.into_any().downcast::<LimitedStream>() else {
                return;
            };
            stream.begin_head();
            session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
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
            return self.proxy.process_new(stream, shutdown).await;
        }
        self.serve_http1(stream, shutdown).await;
        None
    }

    async fn cleanup(&self) {
        // Wakes the keep-alive connections waiting for their next request, so they close.
        self.proxy.cleanup().await
    }
}
