//! The typed edge of the configuration: what the `gms-gateway` binary needs around the plugin
//! (listeners, TLS, client-connection limits, the web tier, the metrics listener, the access
//! log). An embedder of [`crate::GmsApi`] has its own edge and never reads this.

use std::net::SocketAddr;

/// The validated edge configuration of the binary.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Addresses the API listens on (plain HTTP).
    pub listen: Vec<String>,
    /// Addresses the API listens on with TLS.
    pub tls_listen: Vec<TlsListener>,
    /// Timeouts and limits on client connections.
    pub connections: Connections,
    /// Optional Prometheus listener.
    pub metrics_listen: Option<String>,
    /// Where the access log goes: `stderr` or a file path; `None`: no access log.
    pub access_log: Option<String>,
    /// The existing web tier that every non-API request goes to.
    pub backend: Option<BackendConfig>,
}

impl EdgeConfig {
    /// The address a request came in on, as best known without its Host: the first listener
    /// of its kind (plain or TLS).
    pub fn first_listen(&self, tls: bool) -> &str {
        if tls {
            self.tls_listen.first().map_or("", |l| l.addr.as_str())
        } else {
            self.listen.first().map_or("", String::as_str)
        }
    }

    /// The health endpoint under `root` as a client on this host reaches it: the first plain
    /// listen address, or the first TLS one (https) when there is none (a wildcard address
    /// becomes loopback). `conf/reload` polls it.
    pub fn local_health_url(&self, root: &str) -> String {
        let tls = self.listen.is_empty();
        let host = match self.first_listen(tls).parse::<SocketAddr>().ok() {
            Some(SocketAddr::V4(a)) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
            Some(SocketAddr::V6(a)) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
            Some(a) => a.to_string(),
            None => "127.0.0.1:80".into(),
        };
        let scheme = if tls { "https" } else { "http" };
        format!("{scheme}://{host}{root}/admin/node/health")
    }
}
/// One HTTPS listener (`gms.tls_listen[i]`).
#[derive(Debug, Clone, PartialEq)]
pub struct TlsListener {
    /// `ip:port` to listen on.
    pub addr: String,
    /// PEM certificate chain, leaf first.
    pub cert: String,
    /// PEM private key of the leaf certificate.
    pub key: String,
    /// Offer HTTP/2 by ALPN (besides HTTP/1.1).
    pub h2: bool,
}

/// The pass-through backend (the existing web tier).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendConfig {
    /// Each upstream, in configured order.
    pub upstreams: Vec<Upstream>,
    /// How often the TCP health check runs.
    pub health_check_interval_ms: u64,
    /// How long a backend may take to accept a connection, take the next bytes of a request
    /// or send the next bytes of its response (nginx's `proxy_connect_timeout`,
    /// `proxy_send_timeout`, `proxy_read_timeout`).
    pub timeout_ms: u64,
}

/// Default `gms.backend.timeout_ms`: nginx's for its proxy connects, sends and reads.
pub(super) const DEFAULT_BACKEND_TIMEOUT_MS: u64 = 60_000;

/// Timeouts and limits on client connections (`gms.connections`), against slow and abusive
/// clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Connections {
    /// The whole request head must arrive within this.
    pub header_timeout_ms: u64,
    /// Longest wait for the next piece of a request body.
    pub body_timeout_ms: u64,
    /// Longest wait for a request on an open connection (new or kept alive).
    pub idle_timeout_ms: u64,
    /// Largest request head (request line and headers).
    pub max_header_bytes: u64,
    /// Requests served on one connection before it is closed; 0: no limit.
    pub max_requests: u64,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_header_bytes: 32 * 1024,
            max_requests: 10_000,
        }
    }
}

/// One web-tier upstream (`host:port`, `http://host[:port]` or `https://host[:port]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// `host:port` to resolve and connect to.
    pub addr: String,
    /// With TLS: the name the certificate must be valid for (also sent as SNI).
    pub tls: Option<String>,
}

/// A `gms.backend.upstreams` entry that is none of the forms an upstream may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadUpstream(pub String);

impl std::fmt::Display for BadUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "'{}' is not host:port, http://host[:port] or https://host[:port]",
            self.0
        )
    }
}

impl std::error::Error for BadUpstream {}

impl Upstream {
    /// Parses one `gms.backend.upstreams` entry; a bare `host:port` is plain HTTP.
    pub fn parse(entry: &str) -> Result<Upstream, BadUpstream> {
        let (tls, rest) = if let Some(r) = entry.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = entry.strip_prefix("http://") {
            (false, r)
        } else {
            return Ok(Upstream {
                addr: entry.to_string(),
                tls: None,
            });
        };
        let bad = || BadUpstream(entry.to_string());
        let authority: http::uri::Authority =
            rest.trim_end_matches('/').parse().map_err(|_| bad())?;
        if authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(bad());
        }
        let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host = authority.host();
        Ok(Upstream {
            addr: format!("{host}:{port}"),
            tls: tls.then(|| {
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            }),
        })
    }
}
