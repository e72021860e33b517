//! Plain fetches from the web tier without Pingora's proxy: a bodiless HTTP/1.1 `GET` or
//! `HEAD` (no body, no upgrade, no `Expect`: `routes::plain_fetch` decides from the raw head)
//! is sent to a backend and its response streamed back, all in the client's task.
//!
//! Pingora's proxy runs a downstream and an upstream half joined by channels per request,
//! boxes large futures and pools upstream connections behind a watcher task each; for the
//! most common pass-through request that machinery cost more than the exchange. Everything
//! else (bodies, upgrades, HTTP/1.0, HTTP/2) still goes through Pingora's proxy, and what this
//! path does mirrors it: the same backends (round robin, health-checked), the same hop-by-hop
//! headers removed, a connect failure retried on the next backend, a response without length
//! sent chunked, and a failure before the response began answered with the same 502 JSON.

use std::sync::Arc;

use pingora::protocols::l4::socket::SocketAddr;

use bytes::Bytes;
use http::header::{self, HeaderName};
use pingora::connectors::{ConnectorOptions, TransportConnector};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::lb::selection::RoundRobin;
use pingora::lb::LoadBalancer;
use pingora::prelude::HttpPeer;
use pingora::protocols::http::v1::client::HttpSession;
use pingora::protocols::http::ServerSession;
use pingora::upstreams::peer::Peer;
use pingora::{Error, ErrorType};

use crate::proxy::BackendTls;
use crate::upstream::{read_final_head, IdleConns, IDLE_PER_PEER, IDLE_TIMEOUT};

/// Headers that describe one connection, never forwarded (RFC 9110 7.6.1), as Pingora's
/// proxy removes them. Typed names: a name given as text is parsed on every removal.
static HOP_BY_HOP: [HeaderName; 10] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("http2-settings"),
];

/// Why a fetch failed.
#[derive(Debug)]
pub enum FetchError {
    /// Nothing was sent to the client yet: it gets the 502 JSON.
    BeforeResponse(String),
    /// The response had begun: the connection can only be closed.
    AfterResponse(Box<Error>),
}

/// The web tier as seen by the direct path.
pub struct WebTier {
    lb: Arc<LoadBalancer<RoundRobin>>,
    transport: TransportConnector,
    idle: IdleConns,
    /// Connect failures retried (one per configured upstream, as `fail_to_connect` does).
    retries: usize,
}

impl WebTier {
    /// The direct path over the proxy's load balancer, connecting as Pingora's proxy does.
    pub fn new(
        lb: Arc<LoadBalancer<RoundRobin>>,
        options: ConnectorOptions,
        retries: usize,
    ) -> Self {
        WebTier {
            lb,
            transport: TransportConnector::new(Some(options)),
            idle: IdleConns::new(IDLE_PER_PEER, IDLE_TIMEOUT),
            retries,
        }
    }

    /// Sends the client's request to a backend and streams the response back; returns the
    /// backend's address (for the access log).
    pub async fn fetch(&self, session: &mut ServerSession) -> Result<SocketAddr, FetchError> {
        let mut connect_failures = 0;
        loop {
            let backend = self
                .lb
                .select(b"", 256)
                .ok_or_else(|| FetchError::BeforeResponse("no healthy backend".into()))?;
            let sni = backend.ext.get::<BackendTls>().map(|t| t.sni.clone());
            let addr = backend.addr.clone();
            let peer = HttpPeer::new(backend, sni.is_some(), sni.unwrap_or_default());
            match self.exchange(session, &peer).await {
                Ok(()) => return Ok(addr),
                Err(Attempt::ConnectFailed(e)) if connect_failures < self.retries => {
                    log::debug!("backend {addr}: {e}; trying the next one");
                    connect_failures += 1;
                }
                Err(Attempt::ConnectFailed(e)) | Err(Attempt::Broken(e)) => {
                    return Err(FetchError::BeforeResponse(e.etype().as_str().to_string()))
                }
                Err(Attempt::AfterResponse(e)) => return Err(FetchError::AfterResponse(e)),
            }
        }
    }

    /// One backend: a pooled connection (or, when it turns out closed, a fresh one), the
    /// request, and the response relayed.
    async fn exchange(&self, session: &mut ServerSession, peer: &HttpPeer) -> Result<(), Attempt> {
        let key = peer.reuse_hash();
        let mut pooled = self.idle.take(key);
        loop {
            let reused = pooled.is_some();
            let stream = match pooled.take() {
                Some(s) => s,
                None => self
                    .transport
                    .new_stream(peer)
                    .await
                    .map_err(Attempt::ConnectFailed)?,
            };
            let mut up = HttpSession::new_with_options(stream, peer);
            match send_and_read_head(&mut up, upstream_request(session.req_header())).await {
                Ok(()) => return self.relay(session, up, key).await,
                // A pooled connection the backend closed meanwhile: GET and HEAD are safe to
                // send again, on a fresh connection.
                Err(_) if reused => continue,
                Err(e) => return Err(Attempt::Broken(e)),
            }
        }
    }

    /// Writes the backend's response to the client, body chunk by chunk as it comes, and
    /// keeps the backend connection when it can be reused.
    async fn relay(
        &self,
        session: &mut ServerSession,
        mut up: HttpSession,
        key: u64,
    ) -> Result<(), Attempt> {
        let Some(head) = up.resp_header() else {
            return Err(Attempt::Broken(Error::new(ErrorType::InvalidHTTPHeader)));
        };
        let mut resp: ResponseHeader = head.clone();
        let no_body = session.req_header().method == http::Method::HEAD
            || matches!(resp.status.as_u16(), 204 | 304);
        // A response that ends when the backend closes would end the client's connection too:
        // sent chunked instead, as Pingora's proxy does.
        if !no_body
            && !resp.headers.contains_key(header::TRANSFER_ENCODING)
            && !resp.headers.contains_key(header::CONTENT_LENGTH)
        {
            resp.set_version(http::Version::HTTP_11);
            resp.insert_header(header::TRANSFER_ENCODING, "chunked")
                .map_err(Attempt::Broken)?;
        }
        let after = Attempt::AfterResponse;
        session
            .write_response_header(Box::new(resp))
            .await
            .map_err(after)?;
        loop {
            match up.read_body_bytes().await.map_err(after)? {
                Some(chunk) => {
                    // The last chunk and the end of the response go out in one write.
                    let done = up.is_body_done();
                    session
                        .write_response_body(chunk, done)
                        .await
                        .map_err(after)?;
                    if done {
                        break;
                    }
                }
                None => {
                    session
                        .write_response_body(Bytes::new(), true)
                        .await
                        .map_err(after)?;
                    break;
                }
            }
        }
        up.respect_keepalive();
        if let Some(stream) = up.reuse().await {
            self.idle.put(key, stream);
        }
        Ok(())
    }
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

/// Writes the request head (bodiless: one write) and reads the final response head.
async fn send_and_read_head(
    up: &mut HttpSession,
    request: RequestHeader,
) -> Result<(), Box<Error>> {
    up.write_request_header(Box::new(request)).await?;
    read_final_head(up).await
}

/// The client's request head as the backend gets it: hop-by-hop headers, and those the
/// client's `Connection` names, removed.
fn upstream_request(client: &RequestHeader) -> RequestHeader {
    let mut req = client.clone();
    if req.headers.contains_key(header::CONNECTION) {
        let named: Vec<String> = req
            .headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| !n.is_empty())
            .collect();
        for name in &named {
            req.remove_header(name.as_str());
        }
    }
    for name in &HOP_BY_HOP {
        req.remove_header(name);
    }
    req
}
