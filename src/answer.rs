//! One API request on a Pingora session, from head to reply: the [`ApiRequest`] built from the
//! head, the body read as the route needs it (`form.rs`), the handler called
//! (`dispatch.rs`), every error turned into its JSON reply with the request id (the one place
//! that does), and the reply written with a Content-Length. Handlers never see Pingora.

use std::borrow::Cow;
use std::io;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::HeaderName;
use pingora::http::ResponseHeader;
use pingora::prelude::Session;
use pingora::ErrorType;

use crate::config::InternalAuth;
use crate::dispatch::{counts_upload, dispatch};
use crate::error::ApiError;
use crate::form::{self, BodyInfo};
use crate::forwarded;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;
use crate::request_id::{self, RequestId};
use crate::routes::{BodyUse, Route};

/// GMS's user header (contract 4.1); a constant so lookups do not parse the name each time.
static GMS_USER: HeaderName = HeaderName::from_static("gms_user");

/// The reply to an API request (never a pass-through one). A body the route could not read to
/// its end (refused, broken) closes the connection after the reply.
pub async fn answer(gw: &Gateway, session: &mut Session, route: Route, id: &RequestId) -> Reply {
    let meta = match request_meta(gw, session) {
        Ok(m) => m,
        Err(e) => return e.to_reply_coded(id, route.coded_errors()),
    };
    // Status polls carry no body: skip the stream machinery for them.
    let body = (!session.is_body_empty()).then(|| body_stream(session));
    let (reply, body_failed) = handle(gw, meta, route, body, id).await;
    if body_failed {
        // An unread rest of the body would be drained before the next request, and after a
        // broken body (bad chunk, timeout) Pingora counts the body as done although the
        // stream stands somewhere inside it: close the connection either way.
        session.set_keepalive(None);
    }
    reply
}

/// The API request built from a head, and what reading its body needs.
struct RequestMeta {
    req: ApiRequest,
    content_type: Option<String>,
    content_length: Option<u64>,
    query: Option<String>,
}

/// What the API request needs from the head.
fn request_meta(gw: &Gateway, session: &Session) -> Result<RequestMeta, ApiError> {
    let h = session.req_header();
    let header = |name: &HeaderName| h.headers.get(name).map(|v| v.as_bytes());
    let text = |name: &HeaderName| header(name).and_then(visible_ascii).map(str::to_string);
    // A user name may be any UTF-8 (visible ASCII only would drop a non-ASCII owner); bytes
    // that are not UTF-8 are refused rather than read as "no user".
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
        // HTTP/2 names the host in `:authority` (the URI); it wins over Host there, as it does
        // in an HTTP/1.1 absolute-form target (RFC 9113 8.3.1, RFC 9112 3.2.2).
        host: h
            .uri
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| text(&http::header::HOST))
            // HTTP/1.0 without Host: the address the request came in on is the best guess.
            .or_else(|| session.server_addr().map(|a| a.to_string())),
        tls: session.digest().is_some_and(|d| d.ssl_digest.is_some()),
        api_key: gw.config.api_auth.as_ref().and_then(|a| text(&a.header)),
        internal_key: match &gw.config.internal.auth {
            InternalAuth::Credentials(a) => text(&a.header),
            _ => None,
        },
        client_ip: forwarded::client_ip(session.as_downstream(), &gw.config.trusted_proxies),
        ..Default::default()
    };
    Ok(RequestMeta {
        req,
        content_type: text(&http::header::CONTENT_TYPE),
        content_length: header(&http::header::CONTENT_LENGTH)
            .and_then(visible_ascii)
            .and_then(|v| v.trim().parse::<u64>().ok()),
        query: h.uri.query().map(str::to_string),
    })
}

/// Reads the body as the route needs it and answers; also says whether reading the body
/// failed (the connection must not be reused then).
async fn handle<B>(
    gw: &Gateway,
    meta: RequestMeta,
    route: Route,
    body: Option<B>,
    id: &RequestId,
) -> (Reply, bool)
where
    B: Stream<Item = io::Result<Bytes>> + Send + Unpin,
{
    let limits = &gw.config.limits;
    let coded = route.coded_errors();
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
    // Upload bytes are counted per address as they arrive: a client over its rate is refused
    // (429) before the rest of its body is read, let alone buffered.
    let uploader = req
        .client_ip
        .filter(|_| gw.client_limits.upload_bytes.is_some() && counts_upload(gw, &route));
    let body = body.map(move |chunk| {
        let chunk = chunk?;
        if let Some(ip) = &uploader {
            gw.client_limits
                .admit_upload(ip, chunk.len() as u64)
                .map_err(io::Error::other)?;
        }
        Ok(chunk)
    });
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
        return (e.to_reply_coded(id, coded), true);
    }
    let reply = match dispatch(gw, route, req).await {
        Ok(reply) => reply,
        Err(e) => e.to_reply_coded(id, coded),
    };
    (reply, false)
}

/// A header value as text when it is visible ASCII (with spaces and tabs), as
/// `HeaderValue::to_str` reads it.
fn visible_ascii(v: &[u8]) -> Option<&str> {
    v.iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        .then(|| std::str::from_utf8(v).ok())
        .flatten()
}

/// The request body as a stream of chunks, read off the socket as the consumer pulls.
fn body_stream(session: &mut Session) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin + '_ {
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

/// Writes a complete reply with its request id, always with Content-Length so the connection
/// can be reused.
pub async fn write_reply(
    session: &mut Session,
    reply: Reply,
    id: &RequestId,
) -> pingora::Result<()> {
    // Room for what Pingora adds (Date, Connection) too: growing the maps costs a rehash.
    let size = Some(5 + reply.headers.len());
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
    h.insert_header(request_id::HEADER, id.header_value())?;
    for (name, value) in &reply.headers {
        // Values are built by the gateway; one that is not a valid header is dropped, not fatal.
        let _ = h.insert_header(*name, value);
    }
    session.write_response_header(Box::new(h), false).await?;
    session.write_response_body(Some(reply.body), true).await?;
    Ok(())
}
