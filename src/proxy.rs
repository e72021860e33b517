//! The Pingora edge: the only module that knows Pingora's `Session`. It routes each request,
//! reads the body for API routes, calls [`Gateway::handle`] and writes the [`Reply`]; every
//! other request is proxied to the web tier (round robin, health-checked, retried on connect
//! failure).

use std::borrow::Cow;
use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::HeaderName;
use log::error;
use pingora::http::ResponseHeader;
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};

use crate::access_log::AccessLog;
use crate::error::ApiError;
use crate::form::{self, BodyInfo};
use crate::gateway::{ApiRequest, Gateway};
use crate::lifecycle::Drain;
use crate::reply::Reply;
use crate::routes::{self, BodyUse, Route};

/// GMS's user header (contract 4.1); a constant so lookups do not parse the name each time.
static GMS_USER: HeaderName = HeaderName::from_static("gms_user");

/// The gateway as a Pingora proxy service.
pub struct GatewayProxy {
    gw: Arc<Gateway>,
    backends: Option<Arc<LoadBalancer<RoundRobin>>>,
    /// Whether `gms.metrics_listen` is set: without it, nothing is counted.
    metrics: bool,
    /// The access log, when `gms.access_log` is set.
    access_log: Option<AccessLog>,
    /// Set once this process is being replaced or stopped: replies close their connections.
    drain: Drain,
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
}

impl GatewayProxy {
    /// A proxy over a gateway, with the web tier's load balancer if one is configured.
    pub fn new(
        gw: Arc<Gateway>,
        backends: Option<Arc<LoadBalancer<RoundRobin>>>,
        access_log: Option<AccessLog>,
        drain: Drain,
    ) -> Self {
        let metrics = gw.config.metrics_listen.is_some();
        GatewayProxy {
            gw,
            backends,
            metrics,
            access_log,
            drain,
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

    /// Builds the API request from the session (reading the body as the route needs) and
    /// answers it.
    async fn answer(&self, session: &mut Session, route: Route) -> Reply {
        let h = session.req_header();
        let header = |name: &HeaderName| {
            h.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let mut req = ApiRequest {
            gms_user: header(&GMS_USER),
            authorization: header(&http::header::AUTHORIZATION),
            host: header(&http::header::HOST),
            ..Default::default()
        };
        let content_type = header(&http::header::CONTENT_TYPE);
        let content_length = h
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let query = h.uri.query().map(str::to_string);
        let limits = &self.gw.config.limits;
        let read = match route.body_use() {
            BodyUse::Ignore => Ok(()),
            BodyUse::Params => {
                let info = BodyInfo {
                    content_type: content_type.as_deref(),
                    content_length,
                    query: query.as_deref(),
                };
                // Status polls carry no body: skip the stream machinery for them.
                let body = if session.is_body_empty() {
                    futures::stream::empty().left_stream()
                } else {
                    body_stream(session).right_stream()
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
                    form::collect(body_stream(session), limits)
                        .await
                        .map(|b| req.body = b)
                }
            }
        };
        if let Err(e) = read {
            // An unread rest of the body would be drained before the next request: a client
            // that sent too much gets its connection closed instead.
            if !session.is_body_done() {
                session.set_keepalive(None);
            }
            return e.to_reply();
        }
        match self.gw.handle(route, req).await {
            Ok(reply) => reply,
            Err(e) => {
                if let ApiError::Internal(detail) = &e {
                    error!("internal error: {detail}");
                }
                e.to_reply()
            }
        }
    }
}

/// The request body as a stream of chunks, read off the socket as the consumer pulls.
fn body_stream(session: &mut Session) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin + '_ {
    Box::pin(futures::stream::unfold(Some(session), |s| async move {
        let s = s?;
        match s.read_request_body().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(s))),
            Ok(None) => None,
            Err(e) => Some((Err(io::Error::other(e.to_string())), None)),
        }
    }))
}

/// Writes a complete reply, always with Content-Length so the connection can be reused.
async fn write_reply(session: &mut Session, reply: Reply) -> Result<()> {
    let mut h = ResponseHeader::build(reply.status, Some(2 + reply.headers.len()))?;
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
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(reply.body), true).await?;
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
        let route = {
            let h = session.req_header();
            routes::route(&h.method, h.uri.path(), &self.gw.config.prefixes)
        };
        ctx.route = route.name();
        if self.drain.is_draining() {
            // `Connection: close` on this reply, API or passed through (see `lifecycle`).
            session.set_keepalive(None);
        }
        if self.metrics || self.access_log.is_some() {
            ctx.started = Some(std::time::Instant::now());
        }
        let reply = if self.passes_through(&route) {
            if self.backends.is_some() {
                return Ok(false);
            }
            ApiError::NotFound("no such path (and no backend is configured)".into()).to_reply()
        } else {
            self.answer(session, route).await
        };
        write_reply(session, reply).await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let backend = self
            .backends
            .as_ref()
            .and_then(|lb| lb.select(b"", 256))
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(502), "no healthy backend"))?;
        Ok(Box::new(HttpPeer::new(backend, false, String::new())))
    }

    /// Counts the request (when metrics are on) and writes one debug line per request
    /// (`RUST_LOG=debug`); nothing is formatted otherwise.
    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        if self.metrics {
            let status = session
                .response_written()
                .map_or("0", |r| r.status.as_str());
            crate::metrics::REQUESTS
                .with_label_values(&[ctx.route, status])
                .inc();
            if let Some(t) = ctx.started {
                crate::metrics::LATENCY
                    .with_label_values(&[ctx.route])
                    .observe(t.elapsed().as_secs_f64());
            }
        }
        if let Some(log) = &self.access_log {
            let status = session.response_written().map_or(0, |r| r.status.as_u16());
            let client = session
                .client_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let ms = ctx
                .started
                .map_or(0.0, |t| t.elapsed().as_secs_f64() * 1000.0);
            let h = session.req_header();
            log.write(format!(
                "ts_ms={} client={client} {} {} status={status} bytes={} ms={ms:.3} route={}",
                crate::api::admin::unix_ms(),
                h.method,
                h.uri,
                session.body_bytes_sent(),
                ctx.route
            ));
        }
        if !log::log_enabled!(log::Level::Debug) {
            return;
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let client = session
            .client_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let h = session.req_header();
        match e {
            Some(e) => log::debug!(
                "{client} {} {} {status} {} error: {e}",
                h.method,
                h.uri,
                ctx.route
            ),
            None => log::debug!("{client} {} {} {status} {}", h.method, h.uri, ctx.route),
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
