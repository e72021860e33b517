//! The binary's `ProxyHttp`: [`GmsApi`] first, then pass-through of every other request to the
//! web tier (`gms.backend`: round robin, health-checked, a connect failure retried on the next
//! backend, `gms.backend.timeout_ms`). Around the plugin it adds what only the server that
//! owns the connections can do: the end of each head phase (`head_limits.rs`), the body and
//! keep-alive limits of `gms.connections`, `Connection: close` while draining, what the web
//! tier is told (`forwarded.rs`), the request id on every reply, the access log and metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::proxy::FailToProxy;
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::access_log::AccessLog;
use crate::answer::write_reply;
use crate::config::{Connections, GatewayConfig};
use crate::error::ApiError;
use crate::forwarded;
use crate::head_limits::LimitedStream;
use crate::lifecycle::Drain;
use crate::plugin::{ApiExchange, GmsApi};
use crate::request_id::{self, RequestId};

/// The gateway as a Pingora proxy service.
pub struct GatewayProxy {
    gms: GmsApi,
    /// The web tier (`gms.backend`), when one is configured.
    web: Option<WebTier>,
    /// Client-connection limits Pingora applies per request (`gms.connections`).
    connections: Connections,
    /// Whether `gms.metrics_listen` is set: without it, nothing is counted.
    metrics: bool,
    /// The access log, when `gms.access_log` is set.
    access_log: Option<Arc<AccessLog>>,
    /// Set once this process is being replaced or stopped: replies close their connections.
    drain: Drain,
}

/// The web tier's backends and how to reach them.
pub struct WebTier {
    /// Round robin over the healthy backends (its health check is a background service).
    pub lb: Arc<LoadBalancer<RoundRobin>>,
    /// Connect failures retried: one per configured upstream.
    pub retries: usize,
    /// `gms.backend.timeout_ms`, on connects, reads and writes.
    pub timeout: Duration,
}

/// Carried on a web-tier [`pingora::lb::Backend`] reached over TLS.
#[derive(Debug, Clone)]
pub struct BackendTls {
    /// The name its certificate must be valid for; sent as SNI.
    pub sni: String,
}

/// Per-request state shared across Pingora's phases.
#[derive(Debug)]
pub struct RequestCtx {
    /// The request's id, route and trace, as the plugin saw them.
    pub api: ApiExchange,
    /// Connect failures retried so far on the pass-through path.
    pub connect_retries: usize,
    /// When the request filter began (for the latency histogram and the access log).
    pub started: Option<Instant>,
    /// The web-tier upstream a pass-through request went to, for the access log.
    pub backend: Option<String>,
}

impl GatewayProxy {
    /// The binary's proxy around the plugin.
    pub fn new(
        gms: GmsApi,
        config: &GatewayConfig,
        web: Option<WebTier>,
        access_log: Option<AccessLog>,
        drain: Drain,
    ) -> Self {
        GatewayProxy {
            gms,
            web,
            connections: config.edge.connections.clone(),
            metrics: config.edge.metrics_listen.is_some(),
            access_log: access_log.map(Arc::new),
            drain,
        }
    }

    /// Pingora waits 60 s for each body read; `gms.connections.body_timeout_ms` bounds it.
    /// While draining, every reply says `Connection: close` (see `lifecycle`).
    fn apply_connection_limits(&self, session: &mut Session) {
        session.set_read_timeout(Some(Duration::from_millis(
            self.connections.body_timeout_ms,
        )));
        if self.drain.is_draining() {
            session.set_keepalive(None);
        }
    }

    /// Counts the request (when metrics are on), writes its access-log line (when the log is
    /// on) and one debug line (`RUST_LOG=debug`); nothing is formatted otherwise.
    fn record(&self, session: &Session, e: Option<&Error>, ctx: &RequestCtx) {
        let status = session.response_written().map(|r| r.status);
        let route = ctx.api.route;
        if self.metrics {
            let code = status.as_ref().map_or("0", |s| s.as_str());
            crate::metrics::REQUESTS
                .with_label_values(&[route, code])
                .inc();
            if let Some(t) = ctx.started {
                crate::metrics::LATENCY
                    .with_label_values(&[route])
                    .observe(t.elapsed().as_secs_f64());
            }
        }
        let debug = log::log_enabled!(log::Level::Debug);
        if self.access_log.is_none() && !debug {
            return;
        }
        let h = session.req_header();
        let target = h.uri.path_and_query().map_or("/", |p| p.as_str());
        let status = status.map_or(0, |s| s.as_u16());
        let client = session
            .client_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let id = ctx.api.request_id;
        if let Some(log) = &self.access_log {
            let ms = ctx
                .started
                .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
            let mut line = format!(
                "ts_ms={} client={client} {} {target} status={status} bytes={} ms={ms:.3} \
                 route={route} request_id={id}",
                crate::clock::unix_ms(),
                h.method,
                session.body_bytes_sent(),
            );
            if let Some(t) = &ctx.api.trace {
                line.push_str(&format!(" service={} id={}", t.service, t.id));
            }
            let upstream = ctx
                .api
                .trace
                .as_ref()
                .and_then(|t| t.upstream.as_deref())
                .or(ctx.backend.as_deref());
            if let Some(u) = upstream {
                line.push_str(&format!(" upstream={u}"));
            }
            log.write(line);
        }
        let method = &h.method;
        match e {
            Some(e) => {
                log::debug!("{client} {method} {target} {status} {route} {id} error: {e}")
            }
            None => log::debug!("{client} {method} {target} {status} {route} {id}"),
        }
    }

    /// Writes a JSON error reply for a request the proxy could not pass on.
    async fn refuse(&self, session: &mut Session, e: ApiError, ctx: &RequestCtx) -> Result<()> {
        let id = ctx.api.request_id;
        write_reply(session, e.to_reply_for(&id), &id).await
    }
}

/// The error JSON for a pass-through the web tier gave no response to (none healthy, connect
/// or TLS failure, a broken response head): 504 when it took too long
/// (`gms.backend.timeout_ms`), else 502.
fn web_tier_failed(e: &Error) -> ApiError {
    match e.etype() {
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            ApiError::BackendTimeout(e.to_string())
        }
        _ => ApiError::BackendFailed(e.to_string()),
    }
}

#[async_trait]
impl ProxyHttp for GatewayProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            api: ApiExchange::new(RequestId::new()),
            connect_retries: 0,
            started: None,
            backend: None,
        }
    }

    /// No downstream modules: the default adds a (disabled) compression module whose hooks
    /// still run on every request; the gateway never compresses, and pass-through responses
    /// go out as the web tier sent them.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    /// Pingora has read the head: the head phase of the connection ends here.
    async fn early_request_filter(
        &self,
        session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(stream) = session.as_downstream().stream() {
            LimitedStream::end_head_of(stream);
        }
        Ok(())
    }

    /// The API answers what is its (`Ok(true)`); every other request goes on to the web tier
    /// (`Ok(false)`), or gets a 404 when there is none. CONNECT is refused on any path (no
    /// tunnels): Pingora lets it through to here only so that the 405 is JSON (`server.rs`).
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        if self.metrics || self.access_log.is_some() {
            ctx.started = Some(Instant::now());
        }
        self.apply_connection_limits(session);
        if session.req_header().method == http::Method::CONNECT {
            session.set_keepalive(None);
            ctx.api.route = "method_not_allowed";
            let e = ApiError::MethodNotAllowed("GET, HEAD, POST, DELETE");
            self.refuse(session, e, ctx).await?;
            return Ok(true);
        }
        if self.gms.handle(session, &mut ctx.api).await? {
            return Ok(true);
        }
        if self.web.is_none() {
            let e = ApiError::NotFound("no such path (and no backend is configured)".into());
            self.refuse(session, e, ctx).await?;
            return Ok(true);
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let web = self
            .web
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(502), "no web tier"))?;
        // A TLS backend's SNI is its configured host: the name its certificate is checked
        // against (Pingora verifies by default; `ca_file` sets what it trusts).
        let backend = web
            .lb
            .select(b"", 256)
            .ok_or_else(|| Error::explain(ErrorType::ConnectNoRoute, "no healthy backend"))?;
        let sni = backend.ext.get::<BackendTls>().map(|t| t.sni.clone());
        let addr = backend.addr.clone();
        let mut peer = HttpPeer::new(backend, sni.is_some(), sni.unwrap_or_default());
        peer.options.connection_timeout = Some(web.timeout);
        peer.options.total_connection_timeout = Some(web.timeout);
        peer.options.read_timeout = Some(web.timeout);
        peer.options.write_timeout = Some(web.timeout);
        if self.access_log.is_some() {
            ctx.backend = Some(addr.to_string());
        }
        Ok(Box::new(peer))
    }

    /// What the web tier is told of the client (`forwarded.rs`).
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        forwarded::set_upstream_headers(
            session.as_downstream(),
            req,
            &self.gms.config().trusted_proxies,
        )
    }

    /// The request id on every relayed response; a 204 or 304 carries no body, so no body
    /// length either (RFC 9110 8.6, 15.3.5, 15.4.5), whatever the web tier said.
    async fn response_filter(
        &self,
        _session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if matches!(resp.status.as_u16(), 204 | 304) {
            resp.remove_header(&http::header::CONTENT_LENGTH);
            resp.remove_header(&http::header::TRANSFER_ENCODING);
        }
        resp.insert_header(request_id::HEADER, ctx.api.request_id.header_value())?;
        Ok(())
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        self.record(session, e, ctx);
    }

    /// Every failure before a response began gets the gateway's JSON: 502 or 504 when the web
    /// tier gave no response, 408 when the client's body stopped arriving, 400 for a request
    /// that cannot be passed on as sent. Nothing is written once a response has begun.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let error = match (e.esource(), e.etype()) {
            (_, ErrorType::HTTPStatus(502)) | (ErrorSource::Upstream, _) => {
                Some(web_tier_failed(e))
            }
            (ErrorSource::Downstream, ErrorType::ReadTimedout) => Some(ApiError::RequestTimeout),
            // The client is gone: nobody to answer.
            (
                ErrorSource::Downstream,
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed,
            ) => None,
            (ErrorSource::Downstream, _) => Some(ApiError::BadRequest(
                "the request cannot be passed on as it was sent".into(),
            )),
            (_, ErrorType::ConnectNoRoute) => Some(web_tier_failed(e)),
            _ => Some(ApiError::Internal(e.to_string())),
        };
        let code = error.as_ref().map_or(0, |e| e.status());
        if let Some(error) = error {
            if session.response_written().is_none() {
                session.set_keepalive(None);
                if let Err(w) = self.refuse(session, error, ctx).await {
                    log::debug!("cannot send the error reply: {w}");
                }
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// Pingora's own log lines about a request (a failed proxy attempt) name its id too.
    fn request_summary(&self, session: &Session, ctx: &RequestCtx) -> String {
        format!(
            "{}, request_id={}",
            session.as_downstream().request_summary(),
            ctx.api.request_id
        )
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing was sent yet, so another backend can take the request: try each once more.
        let retries = self.web.as_ref().map_or(0, |w| w.retries);
        if ctx.connect_retries < retries {
            ctx.connect_retries += 1;
            e.set_retry(true);
        }
        e
    }
}
