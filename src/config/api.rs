//! The typed API part of the configuration: what [`crate::GmsApi`] is built from (services,
//! resources, storage, limits, credentials, API roots, ORS settings). Nothing here is about
//! listeners or the web tier: that is the binary's edge (`super::edge`).

use std::collections::HashMap;
use std::sync::Arc;

/// The default API roots (contract section 1).
pub const DEFAULT_PREFIXES: [&str; 2] = ["/genesys/1", "/GMS-web/gms/1"];

/// Default `gms.storage.timeout_ms`: how long one Redis store operation may take.
pub const DEFAULT_STORAGE_TIMEOUT_MS: u64 = 1000;

/// Default `_ttl` of a reservation and of user data, seconds.
pub const DEFAULT_TTL_S: u64 = 30;
/// Default `_service_ttl`, seconds.
pub const DEFAULT_SERVICE_TTL_S: u64 = 3600;
/// Default `_resource_group`.
pub const DEFAULT_GROUP: &str = "DNIS";
/// Default `_access_code_length`.
pub const DEFAULT_CODE_LEN: u64 = 4;

/// Options that steer the gateway itself; they are never sent to ORS (contract 6.1).
pub const GATEWAY_OPTIONS: &[&str] = &[
    "_type",
    "_service",
    "_ors",
    "_ors_lb_strategy",
    "_ors_forward",
    "_ors_start",
    "_ors_start_timeout_s",
    "_start_request",
    "_status_ttl_ms",
    "_status_push_ttl_ms",
    "_overwritable_options",
    "_service_ttl",
];

/// The validated API configuration (the `gms:` section less the binary's edge): everything
/// the handlers, the store and the ORS client read.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// CA bundle that TLS connections to ORS nodes (and the binary's web tier) trust (Pingora's
    /// top-level `ca_file`); `None`: the system's roots.
    pub ca_file: Option<String>,
    /// API roots, e.g. `/genesys/1`; the first one builds binary URLs.
    pub prefixes: Vec<String>,
    /// Scheme + host that binary URLs start with; `None`: the request's own.
    pub external_url_base: Option<String>,
    /// Body, field and TTL limits.
    pub limits: Limits,
    /// Credentials the service and storage APIs require; `None`: open, as in GMS.
    pub api_auth: Option<ApiAuth>,
    /// Which store holds the state.
    pub storage: StorageKind,
    /// Admin API credentials; `None` hides the admin API (404), except health.
    pub admin: Option<AdminCredentials>,
    /// Pass creates of unknown services on (the hook answers `Ok(false)`) instead of 404.
    pub fallback_to_backend: bool,
    /// Serve the service test page at `{root}/admin/servicetest.html` (lab use; off: 404).
    pub test_page: bool,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` / `Forwarded` are believed
    /// (`gms.trusted_proxies`); from any other peer they are replaced.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Count requests and store operations in the Prometheus metrics (the binary turns this on
    /// with `gms.metrics_listen`; an embedder that serves the registry sets it).
    pub metrics: bool,
    /// How the gateway talks to ORS.
    pub ors: OrsSettings,
    /// Access-number pools by resource group, numbers in configured order.
    pub resources: HashMap<String, Arc<[String]>>,
    /// Configured services by name.
    pub services: HashMap<String, Arc<ServiceConfig>>,
}

/// Request limits (contract section 2).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Whole request body.
    pub max_body_bytes: u64,
    /// Number of parameters (body and query together).
    pub max_fields: usize,
    /// One non-file value.
    pub max_field_bytes: u64,
    /// One file.
    pub max_file_bytes: u64,
    /// Longest `_ttl` / storage TTL in seconds.
    pub max_ttl: u64,
    /// Creates per second one client IP may make; 0: no limit.
    pub create_rate_per_ip: u64,
    /// Live reservations one phone number may hold in one resource group; 0: no limit.
    pub reservations_per_phone: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 10 * 1024 * 1024,
            max_fields: 256,
            max_field_bytes: 64 * 1024,
            max_file_bytes: 10 * 1024 * 1024,
            max_ttl: 86_400,
            create_rate_per_ip: 0,
            reservations_per_phone: 0,
        }
    }
}

/// Which [`crate::store::Store`] implementation to build.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageKind {
    /// The embedded store: one process.
    Memory,
    /// One Redis server.
    Redis {
        /// `redis://host:port/db`
        url: String,
        /// Prefix of every key, so several gateways can share a Redis.
        prefix: String,
        /// Longest wait for one store operation before it fails as unavailable.
        timeout_ms: u64,
    },
    /// A Redis Cluster.
    RedisCluster {
        /// Seed node URLs.
        nodes: Vec<String>,
        /// Prefix of every key.
        prefix: String,
        /// Longest wait for one store operation before it fails as unavailable.
        timeout_ms: u64,
    },
}

/// Basic-auth credentials of the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminCredentials {
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
}

/// Client credentials for the service and storage APIs (`gms.api_auth`): an API key in a
/// header, or basic auth, either one admits the request.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiAuth {
    /// The header that carries an API key (lower case).
    pub header: http::HeaderName,
    /// Accepted API keys.
    pub keys: Vec<String>,
    /// Accepted basic-auth users and their passwords.
    pub users: Vec<(String, String)>,
}

/// Global ORS client settings (GMS `http.*` defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct OrsSettings {
    /// Tries across nodes before giving up.
    pub max_ors_request_attempts: u32,
    /// TCP connect timeout.
    pub connect_timeout_ms: u64,
    /// Read/write timeout of one ORS request.
    pub socket_timeout_ms: u64,
    /// How often every ORS node gets a TCP health check.
    pub health_check_interval_ms: u64,
    /// Async starts waiting or running at once; one more gets 503.
    pub start_queue_size: usize,
    /// Async starts talking to ORS at once.
    pub start_concurrency: usize,
}

impl Default for OrsSettings {
    fn default() -> Self {
        OrsSettings {
            max_ors_request_attempts: 3,
            connect_timeout_ms: 2000,
            socket_timeout_ms: 2000,
            health_check_interval_ms: 1000,
            start_queue_size: 10_000,
            start_concurrency: 64,
        }
    }
}

/// One configured service (a GMS `service.<name>` section).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    /// The configured name, as in `/service/{name}`.
    pub name: String,
    /// What answers it.
    pub kind: ServiceKind,
    /// Every option of the section (server defaults merged in), underscore names, string values.
    pub options: Vec<(String, String)>,
    /// Option names a request may override (`_overwritable_options`).
    pub overwritable: Vec<String>,
}

impl ServiceConfig {
    /// The configured value of an option, if any.
    pub fn option(&self, name: &str) -> Option<&str> {
        find_option(&self.options, name)
    }

    /// Whether a request's value for `name` beats the configured one.
    pub fn is_overwritable(&self, name: &str) -> bool {
        self.overwritable.iter().any(|o| o == name)
    }

    /// Whether service-specific requests are allowed (contract 4.2).
    pub fn accepts_requests(&self) -> bool {
        self.name.starts_with("request-inbound-") || self.name.starts_with("request-outbound-")
    }
}

/// What kind of service answers a configured name (`_type`).
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceKind {
    /// One of the gateway's built-in services.
    Builtin(BuiltinKind),
    /// A service run by an SCXML session on ORS.
    Ors(OrsServiceConfig),
}

/// The built-in services (contract section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinKind {
    /// `request-interaction`: reserve an access number (and code).
    RequestInteraction,
    /// `request-access`: attach a reservation to an existing service.
    RequestAccess,
    /// `match-interaction`: match a call to its reservation.
    MatchInteraction,
}

/// ORS-specific options of a service (contract 6.1).
#[derive(Debug, Clone, PartialEq)]
pub struct OrsServiceConfig {
    /// SCXML application URL, sent as `src`.
    pub src: String,
    /// ORS node base URLs, in configured order.
    pub nodes: Vec<String>,
    /// `circular` or `linear`.
    pub lb: LbStrategy,
    /// Where underscore parameters travel.
    pub forward: ForwardMode,
    /// Start the session before or after answering the client.
    pub start: StartMode,
    /// How long an async start keeps trying.
    pub start_timeout_s: u64,
    /// The request sent after start; empty skips it.
    pub start_request: String,
    /// How long a polled status stays fresh.
    pub status_ttl_ms: u64,
    /// How long a pushed status stays fresh.
    pub status_push_ttl_ms: u64,
}

/// ORS node selection (`_ors_lb_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LbStrategy {
    /// Round robin.
    Circular,
    /// Always the first healthy node.
    Linear,
}

/// How underscore parameters reach ORS (`_ors_forward`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardMode {
    /// In the form-urlencoded body.
    Params,
    /// As `X-GMS-<name>` headers.
    Headers,
}

/// When the ORS session starts (`_ors_start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartMode {
    /// Before the create reply.
    Sync,
    /// In the background, after the create reply.
    Async,
}

/// The configured value of an option in a list of `(name, value)` pairs.
pub(super) fn find_option<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Whether `s` is an absolute `http://` or `https://` URL with a host.
pub fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    match rest {
        Some(r) => {
            let host = r.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && s.parse::<http::Uri>().is_ok()
        }
        None => false,
    }
}
