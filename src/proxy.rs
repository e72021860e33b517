//! The Pingora edge, with `app.rs` (the connection loop), `h1.rs` (the API's own HTTP/1.1
//! reader) and `web_tier.rs` (plain fetches): the handlers never see Pingora. This module
//! routes each request, reads the body for API routes, calls [`Gateway::handle`] and writes
//! the [`Reply`], whichever reader the request came from; every other request is proxied to
//! the web tier (round robin, health-checked, retried on connect failure). On Pingora's
//! session the same code serves HTTP/1.1 and HTTP/2 (TLS listeners with ALPN): it writes
//! whole replies with Content-Length, and Pingora drops the connection-specific headers
//! HTTP/2 forbids.

use std::borrow::Cow;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::HeaderName;
use log::error;
use pingora::apps::{HttpPersistentSettings, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::protocols::http::ServerSession;
use pingora::protocols::Shutdown;
use pingora::proxy::FailToProxy;
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::access_log::AccessLog;
use crate::conn_guard::GuardedStream;
use crate::error::ApiError;
use crate::form::{self, BodyInfo};
use crate::gateway::{ApiRequest, Gateway};
use crate::h1;
use crate::lifecycle::Drain;
use crate::reply::Reply;
use crate::routes::{self, BodyUse, Route};
use crate::web_tier::{FetchError, WebTier};

/// GMS's user header (contract 4.1); a constant so lookups do not parse the name each time.
static GMS_USER: HeaderName = HeaderName::from_static("gms_user");

/// The gateway as a Pingora proxy service; clones share everything.
#[derive(Clone)]
pub struct GatewayProxy {
    gw: Arc<Gateway>,
    /// The web tier (`gms.backend`): its peers for Pingora's proxy, and the direct path for
    /// plain fetches (`web_tier.rs`).
    web: Option<Arc<WebTier>>,
    /// Whether `gms.metrics_listen` is set: without it, nothing is counted.
    metrics: bool,
    /// The access log, when `gms.access_log` is set.
    access_log: Option<Arc<AccessLog>>,
    /// Set once this process is being replaced or stopped: replies close their connections.
    drain: Drain,
}

/// Carried on a web-tier [`pingora::lb::Backend`] reached over TLS.
#[derive(Debug, Clone)]
pub struct BackendTls {
    /// The name its certificate must be valid for; sent as SNI.
    pub sni: String,
}

/// Per-request state shared across Pingora's phases.
#[derive(Debug, Default)]
pub struct RequestCtx {
    /// Which route the request took (for logs).
    pub route: &'static str,
    /// Connect failures retried so far on the pass-through path.
    pub connect_retries: usize,
    /// When routing began (for the latency histogram).
    pub started: Option<std::time::Instant>,
    /// The service the request was about, for the access log.
    pub trace: Option<Box<crate::reply::Trace>>,
    /// The web-tier upstream a pass-through request went to, for the access log.
    pub backend: Option<String>,
}

impl GatewayProxy {
    /// A proxy over a gateway, with the web tier if one is configured.
    pub fn new(
        gw: Arc<Gateway>,
        web: Option<WebTier>,
        access_log: Option<AccessLog>,
        drain: Drain,
    ) -> Self {
        let metrics = gw.config.metrics_listen.is_some();
        GatewayProxy {
            gw,
            web: web.map(Arc::new),
            metrics,
            access_log: access_log.map(Arc::new),
            drain,
        }
    }

    /// The gateway's configuration.
    pub fn config(&self) -> &crate::config::Config {
        &self.gw.config
    }

    /// Whether a web tier is configured (plain fetches can take the direct path).
    pub fn has_web_tier(&self) -> bool {
        self.web.is_some()
    }

    /// Reads and answers one request on an HTTP/1 session without Pingora's proxy (see
    /// `app.rs`), the way the proxy would: the same replies, the same logging, and the
    /// connection handed back for the next request when it can be reused.
    pub async fn serve(&self, mut session: ServerSession) -> Option<ReusedHttpStream> {
        match session.read_request().await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => {
                // As Pingora's proxy does: a head it cannot parse gets its plain 400.
                if matches!(e.etype(), ErrorType::InvalidHTTPHeader) {
                    let _ = session.respond_error(400).await;
                }
                session.shutdown().await;
                return None;
            }
        }
        let mut ctx = RequestCtx::default();
        let written = self.write_api_reply(&mut session, &mut ctx).await;
        self.log_request(&session, written.as_ref().err().map(|e| &**e), &ctx);
        if written.is_err() {
            return None;
        }
        let settings = HttpPersistentSettings::for_session(&session);
        session
            .finish()
            .await
            .ok()
            .flatten()
            .map(|s| ReusedHttpStream::from_reusable_stream(s, settings))
    }

    async fn write_api_reply(
        &self,
        session: &mut ServerSession,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        match self.api_reply(session, ctx).await {
            Some(mut reply) => {
                ctx.trace = reply.trace.take();
                write_reply(session, reply).await
            }
            // The request line said API, the parsed request says otherwise: it cannot be
            // passed on any more, so it is refused rather than mishandled.
            None => {
                session.set_keepalive(None);
                write_reply(session, misrouted().to_reply()).await
            }
        }
    }

    /// What every request gets first: `gms.connections` limits, its route name for the logs,
    /// `Connection: close` while draining, and the clock started when anyone reads it.
    fn begin(&self, session: &mut ServerSession, ctx: &mut RequestCtx, route: &'static str) {
        self.apply_connection_timeouts(session);
        if self.drain.is_draining() {
            // `Connection: close` on this reply, API or passed through (see `lifecycle`).
            session.set_keepalive(None);
        }
        self.start_ctx(ctx, route);
    }

    /// The route name for the logs, and the clock started when anyone reads it.
    fn start_ctx(&self, ctx: &mut RequestCtx, route: &'static str) {
        ctx.route = route;
        if self.metrics || self.access_log.is_some() {
            ctx.started = Some(std::time::Instant::now());
        }
    }

    /// The reply to an API request, or `None` for a request that passes through to the web
    /// tier; sets the per-request connection limits either way.
    async fn api_reply(&self, session: &mut ServerSession, ctx: &mut RequestCtx) -> Option<Reply> {
        let route = {
            let h = session.req_header();
            routes::route(&h.method, h.uri.path(), &self.gw.config.prefixes)
        };
        self.begin(session, ctx, route.name());
        Some(if session.req_header().method == http::Method::CONNECT {
            // Pingora lets CONNECT through to here only so that this 405 is JSON (server.rs):
            // no tunnels, on any path.
            session.set_keepalive(None);
            ApiError::MethodNotAllowed("GET, HEAD, POST, DELETE").to_reply()
        } else if self.passes_through(&route) {
            if self.web.is_some() {
                return None;
            }
            no_backend().to_reply()
        } else {
            self.answer(session, route).await
        })
    }

    /// Pingora keeps an HTTP/1.1 connection open forever between requests and waits 60 s for
    /// each body read; `gms.connections` bounds both.
    fn apply_connection_timeouts(&self, session: &mut ServerSession) {
        let c = &self.gw.config.connections;
        session.set_read_timeout(Some(Duration::from_millis(c.body_timeout_ms)));
        // Off (the client asked to close) stays off; Pingora counts keep-alive in seconds.
        if session.get_keepalive().is_some() {
            session.set_keepalive(Some(c.idle_timeout_ms.div_ceil(1000)));
        }
    }

    /// Logs a request answered on Pingora's session (see [`Self::record`]).
    fn log_request(&self, session: &ServerSession, e: Option<&Error>, ctx: &RequestCtx) {
        let h = session.req_header();
        self.record(
            &Logged {
                method: &h.method,
                target: target(&h.uri),
                status: session.response_written().map(|r| r.status),
                body_bytes: session.body_bytes_sent(),
                client: session.client_addr(),
                error: e,
            },
            ctx,
        );
    }

    /// Counts the request (when metrics are on), writes its access-log line (when the log is
    /// on) and one debug line (`RUST_LOG=debug`); nothing is formatted otherwise.
    fn record(&self, r: &Logged<'_>, ctx: &RequestCtx) {
        if self.metrics {
            let status = r.status.as_ref().map_or("0", |s| s.as_str());
            crate::metrics::REQUESTS
                .with_label_values(&[ctx.route, status])
                .inc();
            if let Some(t) = ctx.started {
                crate::metrics::LATENCY
                    .with_label_values(&[ctx.route])
                    .observe(t.elapsed().as_secs_f64());
            }
        }
        let status = r.status.map_or(0, |s| s.as_u16());
        let client = || r.client.map(|a| a.to_string()).unwrap_or_default();
        if let Some(log) = &self.access_log {
            let ms = ctx
                .started
                .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
            let mut line = format!(
                "ts_ms={} client={} {} {} status={status} bytes={} ms={ms:.3} route={}",
                crate::api::admin::unix_ms(),
                client(),
                r.method,
                r.target,
                r.body_bytes,
                ctx.route
            );
            if let Some(t) = &ctx.trace {
                line.push_str(&format!(" service={} id={}", t.service, t.id));
            }
            let upstream = ctx
                .trace
                .as_ref()
                .and_then(|t| t.upstream.as_deref())
                .or(ctx.backend.as_deref());
            if let Some(u) = upstream {
                line.push_str(&format!(" upstream={u}"));
            }
            log.write(line);
        }
        if !log::log_enabled!(log::Level::Debug) {
            return;
        }
        let (method, uri, route) = (r.method, r.target, ctx.route);
        match r.error {
            Some(e) => log::debug!("{} {method} {uri} {status} {route} error: {e}", client()),
            None => log::debug!("{} {method} {uri} {status} {route}", client()),
        }
    }

    fn passes_through(&self, route: &Route) -> bool {
        match route {
            Route::PassThrough => true,
            Route::CreateService { service } => {
                self.gw.config.fallback_to_backend && !self.gw.config.services.contains_key(service)
            }
            _ => false,
        }
    }

    /// Answers an API request read on Pingora's session.
    async fn answer(&self, session: &mut ServerSession, route: Route) -> Reply {
        let h = session.req_header();
        let meta = self.request_meta(
            |name| h.headers.get(name).map(|v| v.as_bytes()),
            // HTTP/2 names the host in `:authority` (the URI); it wins over Host there, as it
            // does in an HTTP/1.1 absolute-form target (RFC 9113 8.3.1, RFC 9112 3.2.2).
            h.uri.authority().map(|a| a.as_str()),
            h.uri.query(),
            session.digest().is_some_and(|d| d.ssl_digest.is_some()),
            session
                .client_addr()
                .and_then(|a| a.as_inet())
                .map(|a| a.ip()),
        );
        let meta = match meta {
            Ok(m) => m,
            Err(e) => return e.to_reply(),
        };
        // Status polls carry no body: skip the stream machinery for them.
        let body = (!session.is_body_empty()).then(|| body_stream(session));
        let (reply, body_failed) = self.handle(meta, route, body).await;
        if body_failed {
            // An unread rest of the body would be drained before the next request, and after a
            // broken body (bad chunk, timeout) Pingora counts the body as done although the
            // stream stands somewhere inside it: close the connection either way.
            session.set_keepalive(None);
        }
        reply
    }

    /// Answers one API request read by the gateway's own HTTP/1.1 reader (`h1.rs`) and writes
    /// the reply; returns whether the connection stays open for the next request. `closing`:
    /// the process is going down, or the connection has had its `max_requests`.
    pub async fn serve_h1(
        &self,
        stream: &mut GuardedStream,
        head: h1::Head,
        closing: bool,
    ) -> bool {
        let route = routes::route(&head.method, head.path(), &self.gw.config.prefixes);
        let (mut ctx, mut keep_alive) = self.begin_h1(&head, closing, route.name());
        let mut remaining = head.content_length;
        let client = stream.client_addr();
        let mut reply = if self.passes_through(&route) {
            // `routes::answered_here` sends no such request this way.
            misrouted().to_reply()
        } else {
            let meta = self.request_meta(
                |name| head.header(name),
                None,
                head.query(),
                stream.is_tls(),
                client.as_ref().and_then(|a| a.as_inet()).map(|a| a.ip()),
            );
            match meta {
                Err(e) => e.to_reply(),
                Ok(meta) => {
                    let timeout = Duration::from_millis(self.gw.config.connections.body_timeout_ms);
                    let body = (remaining > 0).then(|| h1::body(stream, &mut remaining, timeout));
                    self.handle(meta, route, body).await.0
                }
            }
        };
        // A body not read to its end (refused, broken, or one the route takes none of) would
        // be read as the next request: the connection closes instead.
        keep_alive &= remaining == 0;
        ctx.trace = reply.trace.take();
        let written = h1::write_reply(stream, &reply, keep_alive).await;
        let logged = Logged {
            method: &head.method,
            target: head.target(),
            status: http::StatusCode::from_u16(reply.status).ok(),
            body_bytes: *written.as_ref().unwrap_or(&0),
            client: client.as_ref(),
            error: None,
        };
        self.end_h1(stream, &logged, &ctx, written.is_ok() && keep_alive)
            .await
    }

    /// The start of a request on the gateway's own HTTP/1.1: its log context, and whether the
    /// connection may stay open (as the client asks, unless `closing` or draining, when the
    /// reply says `Connection: close`, see `lifecycle`).
    fn begin_h1(&self, head: &h1::Head, closing: bool, route: &'static str) -> (RequestCtx, bool) {
        let mut ctx = RequestCtx::default();
        self.start_ctx(&mut ctx, route);
        let keep_alive = head.keep_alive && !closing && !self.drain.is_draining();
        (ctx, keep_alive)
    }

    /// The end of such a request: counted and logged, and the connection closed unless
    /// `keep`; returns `keep`.
    async fn end_h1(
        &self,
        stream: &mut GuardedStream,
        logged: &Logged<'_>,
        ctx: &RequestCtx,
        keep: bool,
    ) -> bool {
        self.record(logged, ctx);
        if !keep {
            stream.shutdown().await;
        }
        keep
    }

    /// Relays a plain fetch read by `h1.rs` to the web tier (`web_tier.rs`); whether the
    /// connection stays open for the next request.
    pub async fn serve_fetch(
        &self,
        stream: &mut GuardedStream,
        head: h1::Head,
        closing: bool,
    ) -> bool {
        let (mut ctx, keep_alive) = self.begin_h1(&head, closing, Route::PassThrough.name());
        let client = stream.client_addr();
        let relayed = match &self.web {
            Some(web) => web.relay(stream, &head, keep_alive).await,
            None => Err(FetchError::BeforeResponse(ErrorType::Custom("no web tier"))),
        };
        let (status, body_bytes, error) = match relayed {
            Ok(r) => {
                if self.access_log.is_some() {
                    ctx.backend = Some(r.backend.to_string());
                }
                (Some(r.status), Ok(r.body_bytes), None)
            }
            Err(FetchError::BeforeResponse(why)) => {
                let reply = web_tier_failed(&why).to_reply();
                let written = h1::write_reply(stream, &reply, keep_alive).await;
                (http::StatusCode::from_u16(reply.status).ok(), written, None)
            }
            Err(FetchError::AfterResponse(e)) => (None, Ok(0), Some(e)),
        };
        let logged = Logged {
            method: &head.method,
            target: head.target(),
            status,
            body_bytes: *body_bytes.as_ref().unwrap_or(&0),
            client: client.as_ref(),
            error: error.as_deref(),
        };
        let keep = body_bytes.is_ok() && error.is_none() && keep_alive;
        self.end_h1(stream, &logged, &ctx, keep).await
    }

    /// What the API request needs from the head of an HTTP request, from either reader.
    fn request_meta<'h>(
        &self,
        header: impl Fn(&HeaderName) -> Option<&'h [u8]>,
        authority: Option<&str>,
        query: Option<&str>,
        tls: bool,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<RequestMeta, ApiError> {
        let text = |name: &HeaderName| header(name).and_then(visible_ascii).map(str::to_string);
        // A user name may be any UTF-8 (visible ASCII only would drop a non-ASCII owner);
        // bytes that are not UTF-8 are refused rather than read as "no user".
        let gms_user = match header(&GMS_USER).map(std::str::from_utf8) {
            None => None,
            Some(Ok(user)) => Some(user.to_string()),
            Some(Err(_)) => {
                return Err(ApiError::BadRequest(
                    "the gms_user header is not valid UTF-8".into(),
                ))
            }
        };
        let req = ApiRequest {
            gms_user,
            authorization: text(&http::header::AUTHORIZATION),
            host: authority
                .map(str::to_string)
                .or_else(|| text(&http::header::HOST)),
            tls,
            api_key: self
                .gw
                .config
                .api_auth
                .as_ref()
                .and_then(|a| text(&a.header)),
            internal_key: match &self.gw.config.internal.auth {
                crate::config::InternalAuth::Credentials(a) => text(&a.header),
                _ => None,
            },
            client_ip,
            ..Default::default()
        };
        Ok(RequestMeta {
            req,
            content_type: text(&http::header::CONTENT_TYPE),
            content_length: header(&http::header::CONTENT_LENGTH)
                .and_then(visible_ascii)
                .and_then(|v| v.trim().parse::<u64>().ok()),
            query: query.map(str::to_string),
        })
    }

    /// Reads the body as the route needs it and answers; also says whether reading the body
    /// failed (the connection must not be reused then).
    async fn handle<B>(&self, meta: RequestMeta, route: Route, body: Option<B>) -> (Reply, bool)
    where
        B: Stream<Item = io::Result<Bytes>> + Send + Unpin,
    {
        let limits = &self.gw.config.limits;
        let RequestMeta {
            mut req,
            content_type,
            content_length,
            query,
        } = meta;
        let body = match body {
            Some(b) => b.left_stream(),
            None => futures::stream::empty().right_stream(),
        };
        let read = match route.body_use() {
            BodyUse::Ignore => Ok(()),
            BodyUse::Params => {
                let info = BodyInfo {
                    content_type: content_type.as_deref(),
                    content_length,
                    query: query.as_deref(),
                };
                form::read_params(info, body, limits)
                    .await
                    .map(|p| req.params = p)
            }
            BodyUse::Raw => {
                if content_length.is_some_and(|l| l > limits.max_body_bytes) {
                    Err(ApiError::PayloadTooLarge(
                        "request body over the limit".into(),
                    ))
                } else {
                    form::collect(body, limits).await.map(|b| req.body = b)
                }
            }
        };
        if let Err(e) = read {
            return (e.to_reply(), true);
        }
        let reply = match self.gw.handle(route, req).await {
            Ok(reply) => reply,
            Err(e) => {
                // The detail (addresses, library text) is for the log only.
                if e.detail().is_some() {
                    error!("{e}");
                }
                e.to_reply()
            }
        };
        (reply, false)
    }
}

/// The API request built from a head, and what reading its body needs.
struct RequestMeta {
    req: ApiRequest,
    content_type: Option<String>,
    content_length: Option<u64>,
    query: Option<String>,
}

/// What the logs say of a request, from either reader.
struct Logged<'a> {
    method: &'a http::Method,
    target: &'a str,
    status: Option<http::StatusCode>,
    body_bytes: usize,
    client: Option<&'a pingora::protocols::l4::socket::SocketAddr>,
    error: Option<&'a Error>,
}

/// A header value as text when it is visible ASCII (with spaces and tabs), as
/// `HeaderValue::to_str` reads it.
fn visible_ascii(v: &[u8]) -> Option<&str> {
    v.iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        .then(|| std::str::from_utf8(v).ok())
        .flatten()
}

/// A request the peeked bytes sent the API's way that turns out to pass through: it cannot
/// be passed on any more.
fn misrouted() -> ApiError {
    ApiError::Internal("request routed inconsistently".into())
}

/// A non-API path when no web tier is configured.
fn no_backend() -> ApiError {
    ApiError::NotFound("no such path (and no backend is configured)".into())
}

/// The error JSON for a pass-through the web tier gave no response to (none healthy, connect
/// or TLS failure, a broken response head): 504 when it took too long
/// (`gms.backend.timeout_ms`), else 502.
fn web_tier_failed(why: &ErrorType) -> ApiError {
    match why {
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            ApiError::BackendTimeout(format!(
                "the web tier did not answer in time ({})",
                why.as_str()
            ))
        }
        _ => ApiError::BackendFailed(format!("the web tier did not answer ({})", why.as_str())),
    }
}

/// The request body as a stream of chunks, read off the socket as the consumer pulls.
fn body_stream(
    session: &mut ServerSession,
) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin + '_ {
    Box::pin(futures::stream::unfold(Some(session), |s| async move {
        let s = s?;
        match s.read_request_body().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(s))),
            Ok(None) => None,
            Err(e) => {
                // A body read timeout (`gms.connections.body_timeout_ms`) becomes a 408.
                let kind = match e.etype() {
                    ErrorType::ReadTimedout => io::ErrorKind::TimedOut,
                    _ => io::ErrorKind::Other,
                };
                Some((Err(io::Error::new(kind, e.to_string())), None))
            }
        }
    }))
}

/// Path and query of a request target: HTTP/2 requests carry scheme and authority in the URI
/// too, which the logs leave out so that both versions log alike.
fn target(uri: &http::Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

/// Writes a complete reply, always with Content-Length so the connection can be reused.
async fn write_reply(session: &mut ServerSession, reply: Reply) -> Result<()> {
    // Room for what Pingora adds (Date, Connection) too: growing the maps costs a rehash.
    let size = Some(4 + reply.headers.len());
    // Pingora writes the standard names it adds and ours (Content-Type, Content-Length)
    // title-cased by itself; only other names need its second, case-keeping map.
    let mut h = if reply.headers.is_empty() {
        ResponseHeader::build_no_case(reply.status, size)?
    } else {
        ResponseHeader::build(reply.status, size)?
    };
    let content_type = match &reply.content_type {
        Cow::Borrowed(s) => http::HeaderValue::from_static(s),
        Cow::Owned(s) => http::HeaderValue::from_str(s)
            .unwrap_or_else(|_| http::HeaderValue::from_static("application/octet-stream")),
    };
    h.insert_header(http::header::CONTENT_TYPE, content_type)?;
    h.insert_header(http::header::CONTENT_LENGTH, reply.body.len())?;
    for (name, value) in &reply.headers {
        // Values are built by the gateway; one that is not a valid header is dropped, not fatal.
        let _ = h.insert_header(*name, value);
    }
    session.write_response_header(Box::new(h)).await?;
    session.write_response_body(reply.body, true).await?;
    Ok(())
}

#[async_trait]
impl ProxyHttp for GatewayProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::default()
    }

    /// No downstream modules: the default adds a (disabled) compression module whose hooks
    /// still run on every request; the gateway never compresses, and pass-through responses
    /// go out as the web tier sent them.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    /// Answers every API request here (`Ok(true)`); lets pass-through requests continue to
    /// `upstream_peer` (`Ok(false)`).
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let session = session.as_downstream_mut();
        let Some(mut reply) = self.api_reply(session, ctx).await else {
            return Ok(false);
        };
        ctx.trace = reply.trace.take();
        write_reply(session, reply).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let (addr, peer) = self
            .web
            .as_ref()
            .and_then(|web| web.next_peer())
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(502), "no healthy backend"))?;
        if self.access_log.is_some() {
            ctx.backend = Some(addr.to_string());
        }
        Ok(Box::new(peer))
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        self.log_request(session.as_downstream(), e, ctx);
    }

    /// A pass-through that found no web tier to answer (none healthy, connect or TLS failure,
    /// a broken response) gets the gateway's 502 JSON; other failures get Pingora's default
    /// answer. Nothing is written when a response has already begun.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let failed = web_tier_failed(e.etype());
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            _ => match e.esource() {
                ErrorSource::Upstream => failed.status(),
                ErrorSource::Downstream => match e.etype() {
                    // The client is gone: nobody to answer.
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                ErrorSource::Internal | ErrorSource::Unset => 500,
            },
        };
        if code > 0 && session.response_written().is_none() {
            let written = if code == 502 || code == 504 {
                write_reply(session.as_downstream_mut(), failed.to_reply()).await
            } else {
                session.respond_error(code).await
            };
            if let Err(w) = written {
                log::debug!("cannot send the error reply: {w}");
            }
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing was sent yet, so another backend can take the request: try each once more.
        let upstreams = self
            .gw
            .config
            .backend
            .as_ref()
            .map_or(0, |b| b.upstreams.len());
        if ctx.connect_retries < upstreams {
            ctx.connect_retries += 1;
            e.set_retry(true);
        }
        e
    }
}
