//! The gateway's configuration: the `gms:` section of the YAML file (contract section 9).
//!
//! Two layers, as in River: serde structs that mirror the file (`*File`, unknown keys rejected),
//! then [`Config`], the validated, typed configuration the program uses. Validation collects
//! every problem it finds, each with its key path, so `-t` reports them all at once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use serde::Deserialize;

/// The default API roots (contract section 1).
pub const DEFAULT_PREFIXES: [&str; 2] = ["/genesys/1", "/GMS-web/gms/1"];

/// Default `gms.storage.timeout_ms`: how long one Redis store operation may take.
pub const DEFAULT_STORAGE_TIMEOUT_MS: u64 = 1000;

/// The largest `gms.limits.max_ttl` accepted: ten years.
const MAX_TTL_LIMIT_S: u64 = 10 * 365 * 86_400;

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

/// Options a request may never override, whatever `_overwritable_options` says: they pick what
/// runs and where the gateway connects, so a client could otherwise aim it anywhere.
const NEVER_OVERWRITABLE: &[&str] = &[
    "_type",
    "_service",
    "_ors",
    "_ors_lb_strategy",
    "_ors_forward",
    "_ors_start",
    "_start_request",
    "_overwritable_options",
];

// ---------------------------------------------------------------------------------------------
// Layer 1: the file as written.

#[derive(Deserialize)]
struct RootFile {
    // Pingora's own keys sit beside `gms:` and are read by Pingora; serde ignores them here.
    // `ca_file` is one of them, read here as well: Pingora's proxy trusts it for the web tier,
    // and the ORS client is made to trust the same file, so one key serves both.
    ca_file: Option<String>,
    gms: Option<GmsFile>,
}

#[derive(Deserialize, Default)]
struct GmsFile {
    #[serde(default)]
    listen: Vec<String>,
    #[serde(default)]
    tls_listen: Vec<TlsListenFile>,
    prefixes: Option<Vec<String>>,
    external_url_base: Option<String>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    connections: ConnectionsFile,
    api_auth: Option<ApiAuthFile>,
    internal_auth: Option<InternalAuthFile>,
    #[serde(default)]
    internal_networks: Vec<String>,
    metrics_listen: Option<String>,
    access_log: Option<String>,
    #[serde(default)]
    storage: StorageFile,
    admin: Option<AdminFile>,
    backend: Option<BackendFile>,
    #[serde(default)]
    fallback_to_backend: bool,
    #[serde(default)]
    test_page: bool,
    #[serde(default)]
    ors: OrsFile,
    #[serde(default)]
    server: BTreeMap<String, OptionValue>,
    #[serde(default)]
    resources: BTreeMap<String, Vec<OptionValue>>,
    #[serde(default)]
    services: BTreeMap<String, BTreeMap<String, OptionValue>>,
}

#[derive(Deserialize)]
struct TlsListenFile {
    addr: String,
    cert: String,
    key: String,
    h2: Option<bool>,
}

#[derive(Deserialize, Default)]
struct LimitsFile {
    max_body_bytes: Option<u64>,
    max_fields: Option<u64>,
    max_field_bytes: Option<u64>,
    max_file_bytes: Option<u64>,
    max_ttl: Option<u64>,
    create_rate_per_ip: Option<u64>,
    reservations_per_phone: Option<u64>,
    max_failed_matches: Option<u64>,
    failed_matches_per_ip: Option<u64>,
    max_store_bytes: Option<u64>,
    upload_bytes_per_ip_per_s: Option<u64>,
    max_anonymous_ttl: Option<u64>,
}

#[derive(Deserialize, Default)]
struct ConnectionsFile {
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_header_bytes: Option<u64>,
    max_requests: Option<u64>,
}

#[derive(Deserialize)]
struct ApiAuthFile {
    header: Option<String>,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    users: BTreeMap<String, String>,
}

/// `gms.internal_auth`: credentials (as `gms.api_auth`), or a word (`none`: open, as GMS was).
enum InternalAuthFile {
    Word(String),
    Credentials(ApiAuthFile),
}

impl<'de> Deserialize<'de> for InternalAuthFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = InternalAuthFile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("none, or a map of header, keys and users")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(InternalAuthFile::Word(s.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                // Through the map access itself, so unknown keys inside are still reported.
                ApiAuthFile::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(InternalAuthFile::Credentials)
            }
        }
        d.deserialize_any(Either)
    }
}

#[derive(Deserialize)]
struct StorageFile {
    backend: String,
    url: Option<String>,
    cluster: Option<Vec<String>>,
    prefix: Option<String>,
    timeout_ms: Option<u64>,
}

impl Default for StorageFile {
    fn default() -> Self {
        StorageFile {
            backend: "memory".into(),
            url: None,
            cluster: None,
            prefix: None,
            timeout_ms: None,
        }
    }
}

#[derive(Deserialize)]
struct AdminFile {
    user: String,
    password: String,
}

#[derive(Deserialize)]
struct BackendFile {
    upstreams: Vec<String>,
    health_check_interval_ms: Option<u64>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
struct OrsFile {
    max_ors_request_attempts: Option<u64>,
    connect_timeout_ms: Option<u64>,
    socket_timeout_ms: Option<u64>,
    health_check_interval_ms: Option<u64>,
    start_queue_size: Option<u64>,
    start_concurrency: Option<u64>,
}

/// A GMS option value: YAML may write it as a string, a number or a boolean.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum OptionValue {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Text(s) => f.write_str(s),
            OptionValue::Int(i) => write!(f, "{i}"),
            OptionValue::Float(x) => write!(f, "{x}"),
            OptionValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Layer 2: the validated configuration.

/// The validated `gms:` configuration the whole program reads.
#[derive(Debug, Clone)]
pub struct Config {
    /// Addresses the API listens on (plain HTTP).
    pub listen: Vec<String>,
    /// Addresses the API listens on with TLS.
    pub tls_listen: Vec<TlsListener>,
    /// CA bundle that TLS connections to ORS nodes and the web tier trust (Pingora's top-level
    /// `ca_file`); `None`: the system's roots.
    pub ca_file: Option<String>,
    /// API roots, e.g. `/genesys/1`; the first one builds binary URLs.
    pub prefixes: Vec<String>,
    /// Scheme + host that binary URLs start with; `None`: the request's own.
    pub external_url_base: Option<String>,
    /// Body, field and TTL limits.
    pub limits: Limits,
    /// Timeouts and limits on client connections.
    pub connections: Connections,
    /// Credentials the service and storage APIs require; `None`: open, as in GMS.
    pub api_auth: Option<ApiAuth>,
    /// Who may call the internal operations (match-interaction).
    pub internal: InternalAccess,
    /// Optional Prometheus listener.
    pub metrics_listen: Option<String>,
    /// Where the access log goes: `stderr` or a file path; `None`: no access log.
    pub access_log: Option<String>,
    /// Which store holds the state.
    pub storage: StorageKind,
    /// Admin API credentials; `None` hides the admin API (404), except health.
    pub admin: Option<AdminCredentials>,
    /// The existing web tier that every non-API request goes to.
    pub backend: Option<BackendConfig>,
    /// Pass creates of unknown services to the backend instead of answering 404.
    pub fallback_to_backend: bool,
    /// Serve the service test page at `{root}/admin/servicetest.html` (lab use; off: 404).
    pub test_page: bool,
    /// How the gateway talks to ORS.
    pub ors: OrsSettings,
    /// Access-number pools by resource group, numbers in configured order.
    pub resources: HashMap<String, Arc<[String]>>,
    /// Configured services by name.
    pub services: HashMap<String, Arc<ServiceConfig>>,
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
    /// Service creates and storage writes per second one client IP may make; 0: no limit.
    pub create_rate_per_ip: u64,
    /// Live reservations one phone number may hold in one resource group; 0: no limit.
    pub reservations_per_phone: u32,
    /// Failed matches on one access number within its reservation's TTL before further
    /// matches on it are refused (429) until that window ends.
    pub max_failed_matches: u32,
    /// Failed matches one client IP may make per minute before its matches are refused; 0: no
    /// limit.
    pub failed_matches_per_ip: u64,
    /// Bytes of stored user data (values, files, keys) the store may hold; `None`: a quarter
    /// of the machine's memory for the memory store, Redis's own `maxmemory` for Redis.
    pub max_store_bytes: Option<u64>,
    /// Request body bytes per second one client IP may send to the API's write routes; 0: no
    /// limit.
    pub upload_bytes_per_ip_per_s: u64,
    /// Longest TTL, in seconds, of user data stored without a `gms_user`.
    pub max_anonymous_ttl: u64,
}

/// The header that carries an internal API key unless `gms.internal_auth.header` names another.
pub const DEFAULT_INTERNAL_KEY_HEADER: &str = "x-gms-internal-key";

/// Default `gms.limits.create_rate_per_ip`: far above what one app makes, low enough that
/// one address cannot drain a pool or fill the store at full speed.
pub const DEFAULT_CREATE_RATE_PER_IP: u64 = 100;
/// Default `gms.limits.max_failed_matches` (issue 15: 5 within a reservation's TTL).
pub const DEFAULT_MAX_FAILED_MATCHES: u32 = 5;
/// Default `gms.limits.failed_matches_per_ip`, per minute: an IVR whose callers mistype one
/// code in a hundred stays far below it at a call every 20 ms.
pub const DEFAULT_FAILED_MATCHES_PER_IP: u64 = 300;
/// Default `gms.limits.max_anonymous_ttl`, seconds.
pub const DEFAULT_MAX_ANONYMOUS_TTL_S: u64 = 3600;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 10 * 1024 * 1024,
            max_fields: 256,
            max_field_bytes: 64 * 1024,
            max_file_bytes: 10 * 1024 * 1024,
            max_ttl: 86_400,
            create_rate_per_ip: DEFAULT_CREATE_RATE_PER_IP,
            reservations_per_phone: 0,
            max_failed_matches: DEFAULT_MAX_FAILED_MATCHES,
            failed_matches_per_ip: DEFAULT_FAILED_MATCHES_PER_IP,
            max_store_bytes: None,
            // Two of the largest bodies a second (see `upload_rate_default`).
            upload_bytes_per_ip_per_s: 2 * 10 * 1024 * 1024,
            max_anonymous_ttl: DEFAULT_MAX_ANONYMOUS_TTL_S,
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
const DEFAULT_BACKEND_TIMEOUT_MS: u64 = 60_000;

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

/// Who may call the internal operations (match-interaction, the IVR's call): a request with
/// valid credentials, or one from a listed network. Neither configured: nobody (401/403).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InternalAccess {
    /// `gms.internal_auth`.
    pub auth: InternalAuth,
    /// `gms.internal_networks`: peers admitted without credentials.
    pub networks: Vec<ipnet::IpNet>,
}

/// `gms.internal_auth`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum InternalAuth {
    /// Not configured: only `internal_networks` (if any) admit.
    #[default]
    Unset,
    /// `none`: open to anyone, as GMS was (the operator said so; `-t` warns).
    Open,
    /// API keys in a header and/or basic-auth users, as `gms.api_auth`.
    Credentials(ApiAuth),
}

/// One web-tier upstream (`host:port`, `http://host[:port]` or `https://host[:port]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// `host:port` to resolve and connect to.
    pub addr: String,
    /// With TLS: the name the certificate must be valid for (also sent as SNI).
    pub tls: Option<String>,
}

impl Upstream {
    /// Parses one `gms.backend.upstreams` entry; a bare `host:port` is plain HTTP.
    pub fn parse(entry: &str) -> Result<Upstream, String> {
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
        let bad =
            || format!("'{entry}' is not host:port, http://host[:port] or https://host[:port]");
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

/// One problem in the configuration: where and what.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// Key path, e.g. `gms.services.poll._ors`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in one file, ready to print.
#[derive(Debug)]
pub struct ConfigErrors {
    /// The file's path.
    pub file: String,
    /// The problems, in the file's order.
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {}", self.file, e)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// The address a request came in on, as best known without its Host: the first listener
    /// of its kind (plain or TLS).
    pub fn first_listen(&self, tls: bool) -> &str {
        if tls {
            self.tls_listen.first().map_or("", |l| l.addr.as_str())
        } else {
            self.listen.first().map_or("", String::as_str)
        }
    }

    /// The health endpoint as a client on this host reaches it: the first plain listen
    /// address, or the first TLS one (https) when there is none (a wildcard address becomes
    /// loopback), and the first API root. `conf/reload` polls it.
    pub fn local_health_url(&self) -> String {
        let tls = self.listen.is_empty();
        let host = match self.first_listen(tls).parse::<SocketAddr>().ok() {
            Some(SocketAddr::V4(a)) if a.ip().is_unspecified() => format!("127.0.0.1:{}", a.port()),
            Some(SocketAddr::V6(a)) if a.ip().is_unspecified() => format!("[::1]:{}", a.port()),
            Some(a) => a.to_string(),
            None => "127.0.0.1:80".into(),
        };
        let scheme = if tls { "https" } else { "http" };
        let root = self.prefixes.first().map_or("", String::as_str);
        format!("{scheme}://{host}{root}/admin/node/health")
    }

    /// Reads and validates the `gms:` section of a YAML file.
    pub fn load(path: &str) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
            file: path.to_string(),
            errors: vec![ConfigError {
                path: "(file)".into(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        Config::from_yaml(&text).map_err(|errors| ConfigErrors {
            file: path.to_string(),
            errors,
        })
    }

    /// Parses and validates YAML text (the whole file, Pingora keys included).
    pub fn from_yaml(text: &str) -> Result<Config, Vec<ConfigError>> {
        let mut unknown: Vec<String> = Vec::new();
        let de = serde_yaml::Deserializer::from_str(text);
        // Unknown keys are collected rather than fatal, so one run reports them with every
        // other error; only keys under `gms:` count (the rest belong to Pingora).
        let mut note_unknown = |path: serde_ignored::Path<'_>| {
            let p = key_path(&path);
            if p == "gms" || p.starts_with("gms.") {
                unknown.push(p);
            }
        };
        let de = serde_ignored::Deserializer::new(de, &mut note_unknown);
        let root: RootFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            vec![ConfigError {
                path: if path == "." {
                    "(top level)".into()
                } else {
                    path
                },
                message: e.into_inner().to_string(),
            }]
        })?;
        let Some(gms) = root.gms else {
            return Err(vec![ConfigError {
                path: "gms".into(),
                message: "missing: the gateway's section is required".into(),
            }]);
        };
        let mut v = Validator::default();
        for path in unknown {
            v.err(
                path,
                "unknown key (check its spelling against the configuration reference)",
            );
        }
        let config = v.config(gms, root.ca_file);
        if v.errors.is_empty() {
            Ok(config)
        } else {
            Err(v.errors)
        }
    }
}

impl Config {
    /// What `-t` and start-up warn about: settings that are valid but open something up or
    /// shut something off.
    pub fn warnings(&self) -> Vec<String> {
        let matching = self
            .services
            .values()
            .any(|s| matches!(s.kind, ServiceKind::Builtin(BuiltinKind::MatchInteraction)));
        let mut out = Vec::new();
        match (&self.internal.auth, self.internal.networks.is_empty()) {
            (InternalAuth::Open, _) => out.push(
                "gms.internal_auth: none: match-interaction is open to anyone, who can then match any reservation and read its user data".to_string(),
            ),
            (InternalAuth::Unset, true) if matching => out.push(
                "gms.internal_auth: neither it nor gms.internal_networks is set: every match-interaction is refused (401)".to_string(),
            ),
            _ => {}
        }
        out
    }
}

/// A serde_ignored path written like the validator's: `a.b[2].c`, without the Option levels
/// (`?`) that mean nothing to a user.
fn key_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", key_path(parent)),
        Path::Map { parent, key } => match key_path(parent) {
            p if p.is_empty() => key.clone(),
            p => format!("{p}.{key}"),
        },
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => key_path(parent),
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<ConfigError>,
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.into(),
            message: message.into(),
        });
    }

    fn config(&mut self, f: GmsFile, ca_file: Option<String>) -> Config {
        if f.listen.is_empty() && f.tls_listen.is_empty() {
            self.err(
                "gms.listen",
                "at least one address is required (here or in gms.tls_listen)",
            );
        }
        for (i, a) in f.listen.iter().enumerate() {
            if a.parse::<SocketAddr>().is_err() {
                self.err(
                    format!("gms.listen[{i}]"),
                    format!("'{a}' is not an ip:port address"),
                );
            }
        }
        let tls_listen = self.tls_listen(f.tls_listen);
        if let Some(path) = &ca_file {
            if let Err(e) = crate::tls::check_ca_file(path) {
                self.err("ca_file", e);
            }
        }
        let prefixes = match f.prefixes {
            None => DEFAULT_PREFIXES.iter().map(|s| s.to_string()).collect(),
            Some(p) => {
                if p.is_empty() {
                    self.err("gms.prefixes", "at least one API root is required");
                }
                for (i, s) in p.iter().enumerate() {
                    if !s.starts_with('/') || s.ends_with('/') || s.contains("//") {
                        self.err(
                            format!("gms.prefixes[{i}]"),
                            format!("'{s}' must start with '/' and not end with '/'"),
                        );
                    }
                }
                p
            }
        };
        let external_url_base = f.external_url_base.map(|u| {
            if !is_http_url(&u) {
                self.err(
                    "gms.external_url_base",
                    format!("'{u}' is not an http(s) URL"),
                );
            }
            u.trim_end_matches('/').to_string()
        });
        let limits = self.limits(f.limits);
        let connections = self.connections(f.connections);
        let api_auth = f
            .api_auth
            .map(|a| self.api_auth("gms.api_auth", "x-api-key", a));
        let internal = self.internal(f.internal_auth, f.internal_networks);
        if let Some(m) = &f.metrics_listen {
            if m.parse::<SocketAddr>().is_err() {
                self.err(
                    "gms.metrics_listen",
                    format!("'{m}' is not an ip:port address"),
                );
            }
        }
        let storage = self.storage(f.storage);
        if limits.max_store_bytes.is_some() && storage != StorageKind::Memory {
            self.err(
                "gms.limits.max_store_bytes",
                "applies to the memory store only: Redis is bounded by its own maxmemory (with the noeviction policy a full Redis answers 507)",
            );
        }
        let admin = f.admin.map(|a| {
            if a.user.is_empty() || a.password.is_empty() {
                self.err("gms.admin", "user and password must not be empty");
            }
            AdminCredentials {
                user: a.user,
                password: a.password,
            }
        });
        let backend = f.backend.map(|b| {
            if b.upstreams.is_empty() {
                self.err("gms.backend.upstreams", "at least one upstream is required");
            }
            let mut upstreams = Vec::with_capacity(b.upstreams.len());
            for (i, entry) in b.upstreams.iter().enumerate() {
                let path = format!("gms.backend.upstreams[{i}]");
                match Upstream::parse(entry) {
                    Ok(u) => {
                        if u.addr
                            .to_socket_addrs()
                            .map(|mut a| a.next().is_none())
                            .unwrap_or(true)
                        {
                            self.err(path, format!("'{entry}' is not a host:port address"));
                        }
                        upstreams.push(u);
                    }
                    Err(e) => self.err(path, e),
                }
            }
            BackendConfig {
                upstreams,
                health_check_interval_ms: b.health_check_interval_ms.unwrap_or(1000).max(50),
                timeout_ms: self.positive(
                    "gms.backend.timeout_ms",
                    b.timeout_ms,
                    DEFAULT_BACKEND_TIMEOUT_MS,
                ),
            }
        });
        if f.fallback_to_backend && backend.is_none() {
            self.err(
                "gms.fallback_to_backend",
                "needs gms.backend.upstreams to fall back to",
            );
        }
        let ors = self.ors(f.ors);
        let server: Vec<(String, String)> = f
            .server
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect();
        for (k, _) in &server {
            if !k.starts_with('_') {
                self.err(
                    format!("gms.server.{k}"),
                    "option names begin with '_' (GMS option names)",
                );
            }
        }
        let resources = self.resources(f.resources);
        if storage != StorageKind::Memory {
            // Redis Cluster hash tags: `{group}` groups a pool's keys in one slot.
            let mut groups: Vec<&String> = resources.keys().collect();
            groups.sort();
            for g in groups {
                if g.contains(['{', '}']) {
                    self.err(
                        format!("gms.resources.{g}"),
                        "with the Redis store a group name may not contain { or }",
                    );
                }
            }
        }
        let mut services = HashMap::new();
        for (name, opts) in f.services {
            if let Some(s) = self.service(&name, opts, &server, &resources, &limits) {
                services.insert(name, Arc::new(s));
            }
        }
        Config {
            listen: f.listen,
            tls_listen,
            ca_file,
            prefixes,
            external_url_base,
            limits,
            connections,
            api_auth,
            internal,
            metrics_listen: f.metrics_listen,
            access_log: f.access_log.filter(|a| !a.is_empty() && a != "off"),
            storage,
            admin,
            backend,
            fallback_to_backend: f.fallback_to_backend,
            test_page: f.test_page,
            ors,
            resources,
            services,
        }
    }

    /// `v` when it is set and above 0 (an error at `path` when it is 0), else `default`.
    fn positive(&mut self, path: &str, v: Option<u64>, default: u64) -> u64 {
        match v {
            Some(0) => {
                self.err(path, "must be greater than 0");
                default
            }
            Some(v) => v,
            None => default,
        }
    }

    fn connections(&mut self, f: ConnectionsFile) -> Connections {
        let d = Connections::default();
        let mut positive = |name: &str, v: Option<u64>, default: u64| {
            self.positive(&format!("gms.connections.{name}"), v, default)
        };
        let c = Connections {
            header_timeout_ms: positive(
                "header_timeout_ms",
                f.header_timeout_ms,
                d.header_timeout_ms,
            ),
            body_timeout_ms: positive("body_timeout_ms", f.body_timeout_ms, d.body_timeout_ms),
            idle_timeout_ms: positive("idle_timeout_ms", f.idle_timeout_ms, d.idle_timeout_ms),
            max_header_bytes: positive("max_header_bytes", f.max_header_bytes, d.max_header_bytes),
            max_requests: f.max_requests.unwrap_or(d.max_requests),
        };
        // Pingora reads a head of up to 1 MiB; a larger limit would never be reached.
        if c.max_header_bytes > 1024 * 1024 || c.max_header_bytes < 1024 {
            self.err(
                "gms.connections.max_header_bytes",
                "must be from 1024 to 1048576",
            );
        }
        c
    }

    fn api_auth(&mut self, path: &str, default_header: &'static str, f: ApiAuthFile) -> ApiAuth {
        let name = f.header.unwrap_or_else(|| default_header.into());
        let header = http::HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|_| {
            self.err(
                format!("{path}.header"),
                format!("'{name}' is not a header name"),
            );
            http::HeaderName::from_static(default_header)
        });
        if f.keys.is_empty() && f.users.is_empty() {
            self.err(path, "needs at least one of keys or users");
        }
        for (i, k) in f.keys.iter().enumerate() {
            if k.len() < 16 {
                self.err(
                    format!("{path}.keys[{i}]"),
                    "an API key must be at least 16 characters",
                );
            }
        }
        for (u, p) in &f.users {
            if u.is_empty() || u.contains(':') || p.is_empty() {
                self.err(
                    format!("{path}.users.{u}"),
                    "user names must be non-empty without ':', passwords non-empty",
                );
            }
        }
        ApiAuth {
            header,
            keys: f.keys,
            users: f.users.into_iter().collect(),
        }
    }

    /// `gms.internal_auth` and `gms.internal_networks`.
    fn internal(
        &mut self,
        auth: Option<InternalAuthFile>,
        networks: Vec<String>,
    ) -> InternalAccess {
        let auth = match auth {
            None => InternalAuth::Unset,
            Some(InternalAuthFile::Word(w)) if w == "none" => {
                if !networks.is_empty() {
                    self.err(
                        "gms.internal_networks",
                        "has no effect with gms.internal_auth: none (open to anyone); remove one of them",
                    );
                }
                InternalAuth::Open
            }
            Some(InternalAuthFile::Word(w)) => {
                self.err(
                    "gms.internal_auth",
                    format!("'{w}' is neither none nor a map of header, keys and users"),
                );
                InternalAuth::Unset
            }
            // Its own header by default: an app's `gms.api_auth` key is never taken for an
            // internal one, nor the other way round.
            Some(InternalAuthFile::Credentials(a)) => InternalAuth::Credentials(self.api_auth(
                "gms.internal_auth",
                DEFAULT_INTERNAL_KEY_HEADER,
                a,
            )),
        };
        let networks = networks
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match parse_network(n) {
                Some(net) => Some(net),
                None => {
                    self.err(
                        format!("gms.internal_networks[{i}]"),
                        format!("'{n}' is not an IP address or a CIDR block (10.0.0.0/8)"),
                    );
                    None
                }
            })
            .collect();
        InternalAccess { auth, networks }
    }

    fn tls_listen(&mut self, f: Vec<TlsListenFile>) -> Vec<TlsListener> {
        f.into_iter()
            .enumerate()
            .map(|(i, l)| {
                let path = format!("gms.tls_listen[{i}]");
                if l.addr.parse::<SocketAddr>().is_err() {
                    self.err(
                        format!("{path}.addr"),
                        format!("'{}' is not an ip:port address", l.addr),
                    );
                }
                if let Err((file, e)) = crate::tls::check_cert_and_key(&l.cert, &l.key) {
                    let key = match file {
                        crate::tls::TlsFile::Cert => "cert",
                        crate::tls::TlsFile::Key => "key",
                    };
                    self.err(format!("{path}.{key}"), e);
                }
                TlsListener {
                    addr: l.addr,
                    cert: l.cert,
                    key: l.key,
                    h2: l.h2.unwrap_or(true),
                }
            })
            .collect()
    }

    fn limits(&mut self, f: LimitsFile) -> Limits {
        let d = Limits::default();
        let mut positive = |name: &str, v: Option<u64>, default: u64| {
            self.positive(&format!("gms.limits.{name}"), v, default)
        };
        let max_body_bytes = positive("max_body_bytes", f.max_body_bytes, d.max_body_bytes);
        let max_fields = positive("max_fields", f.max_fields, d.max_fields as u64) as usize;
        let max_field_bytes = positive("max_field_bytes", f.max_field_bytes, d.max_field_bytes);
        let max_file_bytes = positive("max_file_bytes", f.max_file_bytes, max_body_bytes);
        let mut max_ttl = positive("max_ttl", f.max_ttl, d.max_ttl);
        // Expiry instants are computed as now + TTL: keep them far from overflowing.
        if max_ttl > MAX_TTL_LIMIT_S {
            self.err(
                "gms.limits.max_ttl",
                format!("must be at most {MAX_TTL_LIMIT_S} seconds (10 years)"),
            );
            max_ttl = d.max_ttl;
        }
        let per_phone = f.reservations_per_phone.unwrap_or(0);
        let reservations_per_phone = u32::try_from(per_phone).unwrap_or_else(|_| {
            self.err(
                "gms.limits.reservations_per_phone",
                format!("'{per_phone}' is too large (0 turns the limit off)"),
            );
            0
        });
        let max_failed = f
            .max_failed_matches
            .unwrap_or(u64::from(DEFAULT_MAX_FAILED_MATCHES));
        let max_failed_matches = match u32::try_from(max_failed) {
            Ok(n @ 1..=1_000_000) => n,
            _ => {
                self.err(
                    "gms.limits.max_failed_matches",
                    format!("'{max_failed}' must be from 1 to 1000000"),
                );
                DEFAULT_MAX_FAILED_MATCHES
            }
        };
        if let Some(b) = f.max_store_bytes.filter(|&b| b < max_body_bytes) {
            self.err(
                "gms.limits.max_store_bytes",
                format!("'{b}' is below gms.limits.max_body_bytes ({max_body_bytes}): no upload could be stored"),
            );
        }
        let max_store_bytes = f.max_store_bytes;
        // An upload of the largest body must be able to pass, or it could never be sent.
        let upload_bytes_per_ip_per_s = match f.upload_bytes_per_ip_per_s {
            None => max_body_bytes.saturating_mul(2),
            Some(b) if b != 0 && b < max_body_bytes => {
                self.err(
                    "gms.limits.upload_bytes_per_ip_per_s",
                    format!("'{b}' is below gms.limits.max_body_bytes ({max_body_bytes}): the largest body could never pass (0 turns the limit off)"),
                );
                b
            }
            Some(b) => b,
        };
        let max_anonymous_ttl = match f.max_anonymous_ttl {
            None => DEFAULT_MAX_ANONYMOUS_TTL_S.min(max_ttl),
            Some(s) if s == 0 || s > max_ttl => {
                self.err(
                    "gms.limits.max_anonymous_ttl",
                    format!("'{s}' must be whole seconds from 1 to gms.limits.max_ttl ({max_ttl})"),
                );
                DEFAULT_MAX_ANONYMOUS_TTL_S.min(max_ttl)
            }
            Some(s) => s,
        };
        Limits {
            max_body_bytes,
            max_fields,
            max_field_bytes,
            max_file_bytes,
            max_ttl,
            create_rate_per_ip: f.create_rate_per_ip.unwrap_or(DEFAULT_CREATE_RATE_PER_IP),
            reservations_per_phone,
            max_failed_matches,
            failed_matches_per_ip: f
                .failed_matches_per_ip
                .unwrap_or(DEFAULT_FAILED_MATCHES_PER_IP),
            max_store_bytes,
            upload_bytes_per_ip_per_s,
            max_anonymous_ttl,
        }
    }

    fn storage(&mut self, f: StorageFile) -> StorageKind {
        let prefix = f.prefix.unwrap_or_else(|| "gms:".into());
        let timeout_ms = f.timeout_ms.unwrap_or(DEFAULT_STORAGE_TIMEOUT_MS);
        if timeout_ms == 0 {
            self.err("gms.storage.timeout_ms", "must be greater than 0");
        }
        if prefix.contains(['{', '}']) {
            self.err(
                "gms.storage.prefix",
                format!("'{prefix}' may not contain {{ or }} (Redis Cluster hash tags)"),
            );
        }
        match f.backend.as_str() {
            "memory" => {
                if f.url.is_some() || f.cluster.is_some() {
                    self.err(
                        "gms.storage",
                        "url and cluster belong to backend: redis, not memory",
                    );
                }
                StorageKind::Memory
            }
            "redis" => match (f.url, f.cluster) {
                (Some(url), None) => {
                    if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                        self.err(
                            "gms.storage.url",
                            format!("'{url}' is not a redis:// or rediss:// URL"),
                        );
                    }
                    StorageKind::Redis {
                        url,
                        prefix,
                        timeout_ms,
                    }
                }
                (None, Some(nodes)) if !nodes.is_empty() => {
                    for (i, n) in nodes.iter().enumerate() {
                        if !n.starts_with("redis://") && !n.starts_with("rediss://") {
                            self.err(
                                format!("gms.storage.cluster[{i}]"),
                                format!("'{n}' is not a redis:// or rediss:// URL"),
                            );
                        }
                    }
                    StorageKind::RedisCluster {
                        nodes,
                        prefix,
                        timeout_ms,
                    }
                }
                _ => {
                    self.err(
                        "gms.storage",
                        "backend: redis needs exactly one of url or cluster",
                    );
                    StorageKind::Memory
                }
            },
            other => {
                self.err(
                    "gms.storage.backend",
                    format!("'{other}' is not a storage backend (memory or redis)"),
                );
                StorageKind::Memory
            }
        }
    }

    fn ors(&mut self, f: OrsFile) -> OrsSettings {
        let d = OrsSettings::default();
        let attempts = f.max_ors_request_attempts.unwrap_or(3);
        if attempts == 0 || attempts > 100 {
            self.err(
                "gms.ors.max_ors_request_attempts",
                "must be between 1 and 100",
            );
        }
        let mut positive = |name: &str, v: Option<u64>, default: u64| {
            self.positive(&format!("gms.ors.{name}"), v, default)
        };
        OrsSettings {
            max_ors_request_attempts: attempts.clamp(1, 100) as u32,
            connect_timeout_ms: positive(
                "connect_timeout_ms",
                f.connect_timeout_ms,
                d.connect_timeout_ms,
            ),
            socket_timeout_ms: positive(
                "socket_timeout_ms",
                f.socket_timeout_ms,
                d.socket_timeout_ms,
            ),
            health_check_interval_ms: positive(
                "health_check_interval_ms",
                f.health_check_interval_ms,
                d.health_check_interval_ms,
            ),
            start_queue_size: positive(
                "start_queue_size",
                f.start_queue_size,
                d.start_queue_size as u64,
            ) as usize,
            start_concurrency: positive(
                "start_concurrency",
                f.start_concurrency,
                d.start_concurrency as u64,
            ) as usize,
        }
    }

    fn resources(
        &mut self,
        f: BTreeMap<String, Vec<OptionValue>>,
    ) -> HashMap<String, Arc<[String]>> {
        let mut owner: HashMap<String, String> = HashMap::new();
        let mut out = HashMap::new();
        for (group, numbers) in f {
            let path = format!("gms.resources.{group}");
            if numbers.is_empty() {
                self.err(&path, "a resource group needs at least one access number");
            }
            let mut list = Vec::with_capacity(numbers.len());
            for (i, n) in numbers.iter().enumerate() {
                let n = n.to_string();
                if n.is_empty()
                    || n.len() > 64
                    || n.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    self.err(
                        format!("{path}[{i}]"),
                        format!("'{n}' is not an access number"),
                    );
                } else if let Some(g) = owner.insert(n.clone(), group.clone()) {
                    self.err(
                        format!("{path}[{i}]"),
                        format!("'{n}' is already in group '{g}': a number belongs to one group"),
                    );
                }
                list.push(n);
            }
            out.insert(group, Arc::from(list));
        }
        out
    }

    fn service(
        &mut self,
        name: &str,
        opts: BTreeMap<String, OptionValue>,
        server: &[(String, String)],
        resources: &HashMap<String, Arc<[String]>>,
        limits: &Limits,
    ) -> Option<ServiceConfig> {
        let path = format!("gms.services.{name}");
        if name.is_empty()
            || name.contains('/')
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            self.err(
                &path,
                "a service name must not be empty or contain '/' or spaces",
            );
        }
        let errors_before = self.errors.len();
        let mut options: Vec<(String, String)> = Vec::new();
        for (k, v) in &opts {
            if !k.starts_with('_') {
                self.err(
                    format!("{path}.{k}"),
                    "option names begin with '_' (GMS option names)",
                );
            }
            options.push((k.clone(), v.to_string()));
        }
        // Server-section options are defaults: a service's own option wins.
        for (k, v) in server {
            if !opts.contains_key(k) {
                options.push((k.clone(), v.clone()));
            }
        }
        let get = |k: &str| find_option(&options, k);
        let overwritable: Vec<String> = get("_overwritable_options")
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        for o in &overwritable {
            if !o.starts_with('_') {
                self.err(
                    format!("{path}._overwritable_options"),
                    format!("'{o}' must be an option name with its leading '_'"),
                );
            } else if NEVER_OVERWRITABLE.contains(&o.as_str()) {
                self.err(
                    format!("{path}._overwritable_options"),
                    format!("'{o}' says where and what the gateway runs; no request may set it"),
                );
            }
        }
        let kind = match get("_type") {
            None => {
                self.err(format!("{path}._type"), "missing: builtin or ors");
                None
            }
            Some("builtin") => match get("_service") {
                Some("request-interaction") => {
                    Some(ServiceKind::Builtin(BuiltinKind::RequestInteraction))
                }
                Some("request-access") => Some(ServiceKind::Builtin(BuiltinKind::RequestAccess)),
                Some("match-interaction") => {
                    Some(ServiceKind::Builtin(BuiltinKind::MatchInteraction))
                }
                other => {
                    self.err(
                        format!("{path}._service"),
                        format!(
                            "'{}' is not a built-in service (request-interaction, request-access, match-interaction)",
                            other.unwrap_or("")
                        ),
                    );
                    None
                }
            },
            Some("ors") => self.ors_service(&path, &options).map(ServiceKind::Ors),
            Some(other) => {
                self.err(
                    format!("{path}._type"),
                    format!("'{other}' is not a service type (builtin or ors)"),
                );
                None
            }
        };
        // Options every service type reads: checked once here so a bad value fails at start-up.
        if let Some(g) = get("_resource_group") {
            if !resources.contains_key(g) {
                self.err(
                    format!("{path}._resource_group"),
                    format!("'{g}' is not a group in gms.resources"),
                );
            }
        }
        for key in ["_ttl", "_service_ttl"] {
            if let Some(v) = get(key) {
                if !matches!(v.parse::<u64>(), Ok(n) if n >= 1 && n <= limits.max_ttl) {
                    self.err(
                        format!("{path}.{key}"),
                        format!("'{v}' must be whole seconds from 1 to {}", limits.max_ttl),
                    );
                }
            }
        }
        if let Some(v) = get("_provide_code") {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                self.err(
                    format!("{path}._provide_code"),
                    format!("'{v}' must be true or false"),
                );
            }
        }
        if let Some(v) = get("_allocation") {
            if v != "random" && v != "round-robin" {
                self.err(
                    format!("{path}._allocation"),
                    format!("'{v}' must be random or round-robin"),
                );
            }
        }
        if let Some(v) = get("_access_code_length") {
            if !matches!(v.parse::<u8>(), Ok(1..=12)) {
                self.err(
                    format!("{path}._access_code_length"),
                    format!("'{v}' must be from 1 to 12"),
                );
            }
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(ServiceConfig {
            name: name.to_string(),
            kind: kind?,
            options,
            overwritable,
        })
    }

    fn ors_service(
        &mut self,
        path: &str,
        options: &[(String, String)],
    ) -> Option<OrsServiceConfig> {
        let get = |k: &str| find_option(options, k);
        let src = match get("_service") {
            Some(s) if is_http_url(s) => s.to_string(),
            other => {
                self.err(
                    format!("{path}._service"),
                    format!(
                        "'{}' is not an http(s) URL of the SCXML application",
                        other.unwrap_or("")
                    ),
                );
                String::new()
            }
        };
        let nodes: Vec<String> = get("_ors")
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if nodes.is_empty() {
            self.err(
                format!("{path}._ors"),
                "missing: set _ors here or in gms.server",
            );
        }
        for n in &nodes {
            if !is_http_url(n) {
                self.err(
                    format!("{path}._ors"),
                    format!("'{n}' is not an http(s) URL"),
                );
            }
        }
        let lb = match get("_ors_lb_strategy").unwrap_or("circular") {
            "circular" => LbStrategy::Circular,
            "linear" => LbStrategy::Linear,
            o => {
                self.err(
                    format!("{path}._ors_lb_strategy"),
                    format!("'{o}' must be circular or linear"),
                );
                LbStrategy::Circular
            }
        };
        let forward = match get("_ors_forward").unwrap_or("params") {
            "params" => ForwardMode::Params,
            "headers" => ForwardMode::Headers,
            o => {
                self.err(
                    format!("{path}._ors_forward"),
                    format!("'{o}' must be params or headers"),
                );
                ForwardMode::Params
            }
        };
        let start = match get("_ors_start").unwrap_or("sync") {
            "sync" => StartMode::Sync,
            "async" => StartMode::Async,
            o => {
                self.err(
                    format!("{path}._ors_start"),
                    format!("'{o}' must be sync or async"),
                );
                StartMode::Sync
            }
        };
        let mut number = |key: &str, default: u64| -> u64 {
            match get(key) {
                None => default,
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if n > 0 => n,
                    _ => {
                        self.err(
                            format!("{path}.{key}"),
                            format!("'{v}' must be a positive whole number"),
                        );
                        default
                    }
                },
            }
        };
        Some(OrsServiceConfig {
            src,
            nodes,
            lb,
            forward,
            start,
            start_timeout_s: number("_ors_start_timeout_s", 30),
            status_ttl_ms: number("_status_ttl_ms", 1000),
            status_push_ttl_ms: number("_status_push_ttl_ms", 30_000),
            start_request: get("_start_request").unwrap_or("gms.start").to_string(),
        })
    }
}

fn find_option<'a>(options: &'a [(String, String)], name: &str) -> Option<&'a str> {
    options
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A CIDR block (`10.0.0.0/8`, `::1/128`) or a single address (`10.1.2.3`, as `/32`).
pub fn parse_network(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
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

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
version: 1
threads: 2
gms:
  listen: ["127.0.0.1:8080"]
  resources:
    DNIS: ["8003449999", "8003449998"]
  server:
    _ors: "http://127.0.0.1:7210, http://127.0.0.1:7211/"
  services:
    request-interaction: {_type: builtin, _service: request-interaction, _ttl: 30}
    request-inbound-poll:
      _type: ors
      _service: "http://scxml.example.com/poll.scxml"
      _status_ttl_ms: 500
      _overwritable_options: "_ttl, _foo"
"#;

    #[test]
    fn the_local_health_url_uses_loopback_for_a_wildcard_listen_address() {
        let url = |listen: &str| {
            let y = format!("gms:\n  listen: ['{listen}']\n  prefixes: ['/api/1']\n");
            Config::from_yaml(&y).unwrap().local_health_url()
        };
        assert_eq!(
            url("10.1.2.3:8080"),
            "http://10.1.2.3:8080/api/1/admin/node/health"
        );
        assert_eq!(
            url("0.0.0.0:8080"),
            "http://127.0.0.1:8080/api/1/admin/node/health"
        );
        assert_eq!(url("[::]:81"), "http://[::1]:81/api/1/admin/node/health");
    }

    #[test]
    fn good_config_parses_with_defaults() {
        let c = Config::from_yaml(GOOD).unwrap();
        assert_eq!(c.prefixes, vec!["/genesys/1", "/GMS-web/gms/1"]);
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.storage, StorageKind::Memory);
        assert_eq!(
            &*c.resources["DNIS"],
            &["8003449999".to_string(), "8003449998".into()]
        );
        let ri = &c.services["request-interaction"];
        assert_eq!(
            ri.kind,
            ServiceKind::Builtin(BuiltinKind::RequestInteraction)
        );
        assert_eq!(ri.option("_ttl"), Some("30"));
        let poll = &c.services["request-inbound-poll"];
        let ServiceKind::Ors(o) = &poll.kind else {
            panic!("not ors")
        };
        assert_eq!(
            o.nodes,
            vec!["http://127.0.0.1:7210", "http://127.0.0.1:7211"]
        );
        assert_eq!(o.status_ttl_ms, 500);
        assert_eq!(o.start_request, "gms.start");
        assert_eq!(poll.overwritable, vec!["_ttl", "_foo"]);
        assert!(poll.accepts_requests());
        assert!(!ri.accepts_requests());
    }

    #[test]
    fn unknown_key_is_an_error_with_its_path() {
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  limits: {max_bodyy_bytes: 5}\n";
        let e = Config::from_yaml(y).unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].path, "gms.limits.max_bodyy_bytes", "{:?}", e);
        assert!(e[0].message.contains("unknown key"), "{:?}", e);
    }

    #[test]
    fn every_semantic_error_is_reported() {
        let y = r#"
gms:
  listen: ["nope"]
  resources: {DNIS: []}
  services:
    a: {_type: ors, _service: "http://x/a.scxml", _ors: "htp:/x"}
    b: {_type: magic}
    c: {_type: builtin, _service: request-interaction, _resource_group: NOPE, _ttl: 0}
"#;
        let e = Config::from_yaml(y).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "gms.listen[0]",
            "gms.resources.DNIS",
            "gms.services.a._ors",
            "gms.services.b._type",
            "gms.services.c._resource_group",
            "gms.services.c._ttl",
        ] {
            assert!(paths.contains(&p), "{p} not in {paths:?}");
        }
        let ors = e.iter().find(|e| e.path == "gms.services.a._ors").unwrap();
        assert_eq!(ors.message, "'htp:/x' is not an http(s) URL");
    }

    #[test]
    fn test_page_is_off_unless_set_and_must_be_a_boolean() {
        let base = "gms:\n  listen: ['127.0.0.1:1']\n";
        assert!(!Config::from_yaml(base).unwrap().test_page);
        assert!(
            Config::from_yaml(&format!("{base}  test_page: true\n"))
                .unwrap()
                .test_page
        );
        let e = Config::from_yaml(&format!("{base}  test_page: sometimes\n")).unwrap_err();
        assert_eq!(e[0].path, "gms.test_page", "{e:?}");
    }

    #[test]
    fn max_ttl_is_bounded() {
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  limits: {max_ttl: 99999999999999}\n";
        let e = Config::from_yaml(y).unwrap_err();
        assert_eq!(e[0].path, "gms.limits.max_ttl");
    }

    #[test]
    fn a_number_belongs_to_one_group() {
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  resources: {A: ['1'], B: ['1']}\n";
        let e = Config::from_yaml(y).unwrap_err();
        assert_eq!(e[0].path, "gms.resources.B[0]");
    }

    #[test]
    fn shipped_default_config_is_valid() {
        let text = include_str!("../conf/gateway.yaml");
        let c = Config::from_yaml(text).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(c.services.contains_key("request-interaction"));
        assert!(c.resources.contains_key("DNIS"));
    }

    #[test]
    fn redis_storage_parses_with_prefix_and_timeout() {
        let base = "gms:\n  listen: ['127.0.0.1:1']\n  storage: ";
        let c = Config::from_yaml(&format!(
            "{base}{{backend: redis, url: 'redis://127.0.0.1:6379/0'}}\n"
        ))
        .unwrap();
        assert_eq!(
            c.storage,
            StorageKind::Redis {
                url: "redis://127.0.0.1:6379/0".into(),
                prefix: "gms:".into(),
                timeout_ms: DEFAULT_STORAGE_TIMEOUT_MS
            }
        );
        let c = Config::from_yaml(&format!(
            "{base}{{backend: redis, cluster: ['redis://127.0.0.1:7000'], prefix: 'a:', timeout_ms: 250}}\n"
        ))
        .unwrap();
        assert_eq!(
            c.storage,
            StorageKind::RedisCluster {
                nodes: vec!["redis://127.0.0.1:7000".into()],
                prefix: "a:".into(),
                timeout_ms: 250
            }
        );
        let e = Config::from_yaml(&format!(
            "{base}{{backend: redis, cluster: ['127.0.0.1:7000'], timeout_ms: 0}}\n"
        ))
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["gms.storage.timeout_ms", "gms.storage.cluster[0]"]);
        let e = Config::from_yaml(&format!(
            "{base}{{backend: redis, url: 'redis://h', prefix: 'a{{b}}'}}\n  resources: {{'x{{y': ['1']}}\n"
        ))
        .unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["gms.storage.prefix", "gms.resources.x{y"]);
    }

    #[test]
    fn backend_upstreams_parse_with_their_scheme() {
        let u = |s: &str| Upstream::parse(s).map(|u| (u.addr, u.tls));
        assert_eq!(u("10.0.0.5:8080"), Ok(("10.0.0.5:8080".into(), None)));
        assert_eq!(
            u("http://web.internal"),
            Ok(("web.internal:80".into(), None))
        );
        assert_eq!(
            u("https://web.internal/"),
            Ok(("web.internal:443".into(), Some("web.internal".into())))
        );
        assert_eq!(
            u("https://[::1]:8443"),
            Ok(("[::1]:8443".into(), Some("::1".into())))
        );
        for bad in [
            "https://",
            "https://u@h:1",
            "https://h:1/path",
            "http://h:1?q",
        ] {
            assert!(Upstream::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tls_listen_stands_in_for_listen_and_reports_by_index() {
        let y = "gms:\n  tls_listen: [{addr: '127.0.0.1:1', cert: /nonexistent/c.pem, key: /nonexistent/k.pem, h3: true}]\n";
        let e = Config::from_yaml(y).unwrap_err();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["gms.tls_listen[0].h3", "gms.tls_listen[0].cert"]);
        assert!(
            e[1].message.starts_with("cannot read /nonexistent/c.pem"),
            "{e:?}"
        );
    }

    #[test]
    fn http_urls() {
        assert!(is_http_url("http://127.0.0.1:7210"));
        assert!(is_http_url("https://ors.example.com/x"));
        assert!(!is_http_url("htp:/x"));
        assert!(!is_http_url("http://"));
        assert!(!is_http_url("ftp://x"));
    }

    #[test]
    fn options_that_aim_the_gateway_are_never_overwritable() {
        let y = "gms:\n  listen: ['127.0.0.1:1']\n  services:\n    a: {_type: ors, _service: 'http://x/a.scxml', _ors: 'http://127.0.0.1:1', _overwritable_options: '_ttl,_ors'}\n";
        let e = Config::from_yaml(y).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].path, "gms.services.a._overwritable_options");
        assert!(e[0].message.starts_with("'_ors'"), "{e:?}");
    }
}
