//! Canned replies, the same bytes as the gateway's reply to each benchmark request: from a
//! `ProxyHttp` that answers in `request_filter` (how the GMS plugin answers) and from a
//! `ServeHttp` app (Pingora's plain HTTP server, no proxy phases), to measure both shapes.
//!
//! REPLIES file: `[{"method": "POST", "path": "/...", "status": 200, "headers": [["Content-Type",
//! "application/json"], ...], "body_file": "/..."}, ...]`; `Date` and `Connection` are Pingora's
//! own. A request body is read to its end before the reply, as the gateway reads it.

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::http::ResponseHeader;
use pingora::prelude::{HttpPeer, ProxyHttp, Session};
use pingora::protocols::http::ServerSession;
use pingora::proxy::{http_proxy_service, HttpProxy};
use pingora::server::Server;
use pingora::services::listening::Service;
use pingora::{Error, ErrorType, Result};

use crate::Failure;

/// One canned reply.
struct Canned {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

/// The replies with their method and path (a handful: a scan costs less than hashing).
pub struct Replies(Vec<(Method, String, Canned)>);

impl Replies {
    /// Reads the REPLIES file and the bodies it names.
    pub fn load(path: &str) -> Result<Replies, Failure> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let list: Vec<serde_json::Value> = serde_json::from_str(&text)?;
        let mut replies = Vec::new();
        for r in list {
            let field = |k: &str| {
                r.get(k)
                    .ok_or_else(|| format!("{path}: a reply without {k}"))
            };
            let text = |k: &str| -> Result<String, Failure> {
                Ok(field(k)?
                    .as_str()
                    .ok_or(format!("{path}: {k} is not a string"))?
                    .to_string())
            };
            let method = Method::from_bytes(text("method")?.as_bytes())?;
            let status = StatusCode::from_u16(
                field("status")?
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .ok_or(format!("{path}: status is not a number"))?,
            )?;
            let mut headers = Vec::new();
            for pair in field("headers")?.as_array().into_iter().flatten() {
                match pair.as_array().map(|p| p.as_slice()) {
                    Some([name, value]) => headers.push((
                        HeaderName::from_bytes(name.as_str().unwrap_or("").as_bytes())?,
                        HeaderValue::from_str(value.as_str().unwrap_or(""))?,
                    )),
                    _ => return Err(format!("{path}: a header is not a [name, value] pair").into()),
                }
            }
            let body_file = text("body_file")?;
            let body = std::fs::read(&body_file).map_err(|e| format!("{body_file}: {e}"))?;
            let canned = Canned {
                status,
                headers,
                body: body.into(),
            };
            replies.push((method, text("path")?, canned));
        }
        Ok(Replies(replies))
    }

    /// The reply to a request: its canned one, else an empty 404.
    fn find(&self, session: &ServerSession) -> Option<&Canned> {
        let h = session.req_header();
        let path = h.uri.path();
        self.0
            .iter()
            .find(|(m, p, _)| *m == h.method && p == path)
            .map(|(_, _, c)| c)
    }
}

/// Reads the request body to its end, dropping it.
async fn read_body(session: &mut ServerSession) -> Result<()> {
    if !session.is_body_empty() {
        while session.read_request_body().await?.is_some() {}
    }
    Ok(())
}

/// The response head of a canned reply, built per request as a handler builds its own.
fn head(canned: Option<&Canned>) -> Result<ResponseHeader> {
    let Some(c) = canned else {
        let mut h = ResponseHeader::build_no_case(StatusCode::NOT_FOUND, Some(3))?;
        h.insert_header(http::header::CONTENT_LENGTH, 0)?;
        return Ok(h);
    };
    // Room for Pingora's Date and Connection too, as the gateway leaves.
    let mut h = ResponseHeader::build_no_case(c.status, Some(c.headers.len() + 2))?;
    for (name, value) in &c.headers {
        h.insert_header(name.clone(), value.clone())?;
    }
    Ok(h)
}

/// The `local` baseline: answers every request in `request_filter`.
pub struct Local(Replies);

/// Pingora's proxy service over [`Local`], as `http_proxy_service` makes it.
pub fn proxy_service(server: &Server, replies: Replies) -> Service<HttpProxy<Local>> {
    http_proxy_service(&server.configuration, Local(replies))
}

#[async_trait]
impl ProxyHttp for Local {
    type CTX = ();

    fn new_ctx(&self) {}

    /// No downstream modules, as the gateway (the default adds a disabled compression module).
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    async fn request_filter(&self, session: &mut Session, _ctx: &mut ()) -> Result<bool> {
        read_body(session).await?;
        let canned = self.0.find(session);
        let body = canned.map(|c| c.body.clone()).unwrap_or_default();
        session
            .write_response_header(Box::new(head(canned)?), false)
            .await?;
        session.write_response_body(Some(body), true).await?;
        Ok(true)
    }

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Err(Error::explain(ErrorType::HTTPStatus(502), "no upstream"))
    }
}

/// The `serve` baseline: the same replies from Pingora's `ServeHttp`.
pub struct Serve(Replies);

/// Pingora's HTTP server service over [`Serve`].
pub fn serve_service(replies: Replies) -> Service<Serve> {
    Service::new("bare ServeHttp".to_string(), Serve(replies))
}

#[async_trait]
impl ServeHttp for Serve {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if read_body(session).await.is_err() {
            session.set_keepalive(None);
        }
        let canned = self.0.find(session);
        let mut r = Response::builder().status(canned.map_or(StatusCode::NOT_FOUND, |c| c.status));
        for (name, value) in canned.iter().flat_map(|c| &c.headers) {
            r = r.header(name, value);
        }
        let body = canned.map(|c| c.body.to_vec()).unwrap_or_default();
        // A canned reply always carries its Content-Length (from the gateway's reply).
        r.body(body).unwrap_or_default()
    }
}
