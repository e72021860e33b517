//! HTTP/1.1 to ORS nodes over Pingora's own connector: one HTTP stack and one pool of
//! keep-alive connections for the whole process (the pass-through proxy uses the same crate).

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pingora::connectors::{ConnectorOptions, TransportConnector};
use pingora::prelude::HttpPeer;
use pingora::protocols::http::v1::client::HttpSession;
use pingora::protocols::Stream;
use pingora::upstreams::peer::Peer;
use pingora::{Error, ErrorType};
use tokio::io::AsyncWriteExt;

use super::idle::{read_final_head, IdleConns, IDLE_PER_PEER, IDLE_TIMEOUT};
use crate::config::OrsSettings;

/// Largest ORS reply body read; ORS replies are small JSON documents.
const MAX_REPLY_BYTES: usize = 1024 * 1024;

/// One ORS node's address, parsed once from its configured URL.
#[derive(Debug, Clone)]
pub struct NodeAddr {
    /// The URL as configured (no trailing slash): the node's identity in records.
    pub url: String,
    /// `http` (false) or `https` (true).
    pub tls: bool,
    /// `host[:port]` for the Host header and TLS SNI.
    pub authority: String,
    /// Path prefix before `/scxml/...` (usually empty).
    pub base_path: String,
    /// Resolved socket address.
    pub addr: SocketAddr,
}

/// Why an ORS node's URL cannot be used; each names the URL as configured.
#[derive(Debug)]
pub enum NodeAddrError {
    /// Not a URL at all.
    Invalid {
        /// The URL.
        url: String,
        /// What the URI parser said.
        error: http::uri::InvalidUri,
    },
    /// A scheme other than `http` or `https`.
    NotHttp(String),
    /// No host in the URL.
    NoHost(String),
    /// The host does not resolve.
    Unresolved {
        /// The URL.
        url: String,
        /// What the resolver said.
        error: std::io::Error,
    },
    /// The host resolves to no address.
    NoAddress(String),
}

impl fmt::Display for NodeAddrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeAddrError::Invalid { url, error } => write!(f, "'{url}': {error}"),
            NodeAddrError::NotHttp(url) => write!(f, "'{url}' is not an http(s) URL"),
            NodeAddrError::NoHost(url) => write!(f, "'{url}' has no host"),
            NodeAddrError::Unresolved { url, error } => {
                write!(f, "'{url}': cannot resolve: {error}")
            }
            NodeAddrError::NoAddress(url) => write!(f, "'{url}': no address"),
        }
    }
}

impl std::error::Error for NodeAddrError {}

impl NodeAddr {
    /// Parses and resolves an `http(s)://host[:port][/prefix]` URL.
    pub fn parse(url: &str) -> Result<NodeAddr, NodeAddrError> {
        let uri: http::Uri = url.parse().map_err(|error| NodeAddrError::Invalid {
            url: url.to_string(),
            error,
        })?;
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => return Err(NodeAddrError::NotHttp(url.to_string())),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| NodeAddrError::NoHost(url.to_string()))?;
        let host = authority.host();
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host_for_resolve = host.trim_start_matches('[').trim_end_matches(']');
        let addr = (host_for_resolve, port)
            .to_socket_addrs()
            .map_err(|error| NodeAddrError::Unresolved {
                url: url.to_string(),
                error,
            })?
            .next()
            .ok_or_else(|| NodeAddrError::NoAddress(url.to_string()))?;
        Ok(NodeAddr {
            url: url.trim_end_matches('/').to_string(),
            tls,
            authority: authority.as_str().to_string(),
            base_path: uri.path().trim_end_matches('/').to_string(),
            addr,
        })
    }

    /// Whether an absolute URL (a 307 `Location`) points at this node; returns its path.
    pub fn path_of<'a>(&self, location: &'a str) -> Option<&'a str> {
        let rest = location.strip_prefix(&self.url)?;
        (rest.starts_with('/')).then_some(rest)
    }
}

/// What ORS answered.
#[derive(Debug, Clone)]
pub struct OrsReply {
    /// HTTP status.
    pub status: u16,
    /// Content-Type, if any.
    pub content_type: Option<String>,
    /// Location, on redirects.
    pub location: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// Why an ORS request got no usable answer.
#[derive(Debug, Clone, PartialEq)]
pub enum OrsFailure {
    /// No connection could be made (refused, unreachable, connect timeout).
    Connect(String),
    /// Connected, but no answer in time.
    Timeout(String),
    /// Connected, but the exchange broke (closed, malformed, too large).
    Broken(String),
}

impl OrsFailure {
    /// Whether this failure was a timeout (504 rather than 502 when it is the last one).
    pub fn is_timeout(&self) -> bool {
        matches!(self, OrsFailure::Timeout(_))
    }

    /// What a client may be told: the kind of failure, in GMS's words, without the node or
    /// the connector's text.
    pub fn message(&self) -> &'static str {
        match self {
            OrsFailure::Connect(_) => "ORS request failed: cannot connect to ORS.",
            OrsFailure::Timeout(_) => "ORS request failed: ORS did not answer in time.",
            OrsFailure::Broken(_) => "ORS request failed: bad answer from ORS.",
        }
    }

    /// What happened, for the log only (addresses, library text).
    pub fn detail(&self) -> &str {
        match self {
            OrsFailure::Connect(m) | OrsFailure::Timeout(m) | OrsFailure::Broken(m) => m,
        }
    }
}

fn classify(e: &Error) -> OrsFailure {
    let text = e.to_string();
    match e.etype() {
        ErrorType::ConnectTimedout
        | ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::TLSHandshakeFailure => OrsFailure::Connect(text),
        ErrorType::ReadTimedout | ErrorType::WriteTimedout => OrsFailure::Timeout(text),
        _ => OrsFailure::Broken(text),
    }
}

/// The ORS HTTP client: pooled connections, configured timeouts.
pub struct OrsClient {
    transport: TransportConnector,
    idle: IdleConns,
    connect_timeout: Duration,
    socket_timeout: Duration,
}

impl OrsClient {
    /// A client with the timeouts of `gms.ors`; `https://` nodes must present a certificate
    /// valid for their host that chains to `ca_file` (checked at start-up), else to the
    /// system's roots.
    pub fn new(settings: &OrsSettings, ca_file: Option<&str>) -> Self {
        // Pingora's own pool stays empty: idle connections wait in `idle` (see idle.rs).
        let mut options = ConnectorOptions::new(0);
        options.ca_file = ca_file.map(str::to_string);
        OrsClient {
            transport: TransportConnector::new(Some(options)),
            idle: IdleConns::new(IDLE_PER_PEER, IDLE_TIMEOUT),
            connect_timeout: Duration::from_millis(settings.connect_timeout_ms),
            socket_timeout: Duration::from_millis(settings.socket_timeout_ms),
        }
    }

    fn peer(&self, node: &NodeAddr) -> HttpPeer {
        let sni = node.authority.split(':').next().unwrap_or("").to_string();
        let mut peer = HttpPeer::new(node.addr, node.tls, sni);
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(self.socket_timeout);
        peer.options.write_timeout = Some(self.socket_timeout);
        peer.options.idle_timeout = Some(IDLE_TIMEOUT);
        peer
    }

    /// POSTs a form body to `path` on a node (path without the node's base path).
    pub async fn post(
        &self,
        node: &NodeAddr,
        path: &str,
        body: Bytes,
        headers: &[(String, String)],
    ) -> Result<OrsReply, OrsFailure> {
        // Pingora's connector and HTTP/1 client session make this future about 10 KB. Every
        // future that awaits it inline grows by as much, up to the plugin's answer to each
        // request, and Rust moves a future by copying all of it: a cached status poll that
        // never calls ORS would copy those bytes too. On the heap, only a request that talks
        // to ORS pays for them, with one allocation beside a network round trip.
        Box::pin(self.post_inline(node, path, body, headers)).await
    }

    async fn post_inline(
        &self,
        node: &NodeAddr,
        path: &str,
        body: Bytes,
        headers: &[(String, String)],
    ) -> Result<OrsReply, OrsFailure> {
        let peer = self.peer(node);
        let request = request_bytes(node, path, &body, headers)?;
        // A pooled connection the node has closed meanwhile fails at once; one retry on a
        // fresh connection is not a second attempt at the node.
        for _ in 0..2 {
            let (stream, reused) = match self.idle.take(peer.reuse_hash()) {
                Some(stream) => (stream, true),
                None => {
                    let fresh = self.transport.new_stream(&peer).await;
                    (fresh.map_err(|e| classify(&e))?, false)
                }
            };
            match self.exchange(stream, &peer, &request).await {
                Ok(reply) => return Ok(reply),
                Err(OrsFailure::Broken(_)) if reused => continue,
                Err(e) => return Err(e),
            }
        }
        Err(OrsFailure::Broken("connection closed by ORS".into()))
    }

    /// Sends the request in one write (one segment, one wake-up of the node: Pingora's
    /// client writes head and body apart), reads the reply with Pingora's HTTP/1 reader,
    /// and pools the connection again when the reply allows it.
    async fn exchange(
        &self,
        mut stream: Stream,
        peer: &HttpPeer,
        request: &[u8],
    ) -> Result<OrsReply, OrsFailure> {
        let t = self.socket_timeout;
        let write = async {
            stream.write_all(request).await?;
            stream.flush().await
        };
        match tokio::time::timeout(t, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(OrsFailure::Broken(format!("cannot send: {e}"))),
            Err(_) => return Err(OrsFailure::Timeout(format!("sending took over {t:?}"))),
        }
        let mut session = HttpSession::new_with_options(stream, peer);
        session.read_timeout = Some(t);
        let broken = |e: Box<Error>| classify(&e);
        read_final_head(&mut session).await.map_err(broken)?;
        let h = session
            .resp_header()
            .ok_or_else(|| OrsFailure::Broken("no response header".into()))?;
        let get = |name: http::header::HeaderName| {
            h.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (status, content_type, location) = (
            h.status.as_u16(),
            get(http::header::CONTENT_TYPE),
            get(http::header::LOCATION),
        );
        let mut buf = BytesMut::new();
        while let Some(chunk) = session.read_body_ref().await.map_err(broken)? {
            if buf.len() + chunk.len() > MAX_REPLY_BYTES {
                return Err(OrsFailure::Broken("reply larger than 1 MiB".into()));
            }
            buf.extend_from_slice(chunk);
        }
        session.respect_keepalive();
        if let Some(stream) = session.reuse().await {
            self.idle.put(peer.reuse_hash(), stream);
        }
        Ok(OrsReply {
            status,
            content_type,
            location,
            body: buf.freeze(),
        })
    }
}

/// The whole request, head and body, in one buffer. The path may come from a node's 307
/// `Location` and header names from client parameters, so both are checked: nothing may
/// break out of the request line or a header line.
fn request_bytes(
    node: &NodeAddr,
    path: &str,
    body: &[u8],
    headers: &[(String, String)],
) -> Result<Vec<u8>, OrsFailure> {
    let full_path = format!("{}{}", node.base_path, path);
    if full_path.is_empty() || !full_path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(OrsFailure::Broken(format!(
            "bad request path '{full_path}'"
        )));
    }
    let field_ok = |s: &str| !s.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0);
    let extra: usize = headers.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
    let mut out =
        Vec::with_capacity(128 + full_path.len() + node.authority.len() + extra + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(full_path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(node.authority.as_bytes());
    out.extend_from_slice(
        b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ",
    );
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for (k, v) in headers {
        if k.is_empty() || k.contains(':') || !field_ok(k) || !field_ok(v) {
            return Err(OrsFailure::Broken(format!("bad header {k}")));
        }
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_parse() {
        let n = NodeAddr::parse("http://127.0.0.1:7210").unwrap();
        assert!(!n.tls);
        assert_eq!(n.authority, "127.0.0.1:7210");
        assert_eq!(n.base_path, "");
        assert_eq!(n.addr.port(), 7210);
        let n = NodeAddr::parse("https://127.0.0.1/ors/").unwrap();
        assert!(n.tls);
        assert_eq!(n.addr.port(), 443);
        assert_eq!(n.base_path, "/ors");
        assert!(NodeAddr::parse("ftp://x").is_err());
    }

    #[test]
    fn locations_match_only_their_node() {
        let n = NodeAddr::parse("http://127.0.0.1:7210").unwrap();
        assert_eq!(n.path_of("http://127.0.0.1:7210/scxml/x"), Some("/scxml/x"));
        assert_eq!(n.path_of("http://127.0.0.1:72100/scxml/x"), None);
        assert_eq!(n.path_of("http://evil.example/scxml/x"), None);
    }
}
