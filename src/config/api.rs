//! The typed API part of the configuration: what [`crate::GmsApi`] is built from (services,
//! resources, storage, limits, credentials, API roots, ORS settings). Nothing here is about
//! listeners or the web tier: that is the binary's edge (`super::edge`).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::callback::{CallbackService, CallbackSettings};
use crate::ids::CodeSpace;

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
/// `_booking_expiration_timeout`'s range in seconds (GMS).
pub const BOOKING_TIMEOUT_S: std::ops::RangeInclusive<u64> = 5..=1800;
/// The name no service may have: `{root}/service/callback/...` is the Callback Services API
/// (`gms-callback.md` section 2).
pub const RESERVED_SERVICE_NAME: &str = "callback";

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
    /// Who may call the internal operations (match-interaction).
    pub internal: InternalAccess,
    /// Which store holds the state.
    pub storage: StorageKind,
    /// Admin API credentials; `None` hides the admin API (404), except health.
    pub admin: Option<AdminCredentials>,
    /// Pass creates of unknown services on (the hook answers `Ok(false)`) instead of 404.
    pub fallback_to_backend: bool,
    /// Serve the service test page at `{root}/admin/servicetest.html` (lab use; off: 404).
    pub test_page: bool,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` / `Forwarded` are believed
    /// (`gms.trusted_proxies`); from any other peer they are replaced. The client address
    /// they give is what the per-IP limits count and `gms.internal_networks` admits.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Count requests and store operations in the Prometheus metrics (the binary turns this on
    /// with `gms.metrics_listen`; an embedder that serves the registry sets it).
    pub metrics: bool,
    /// How the gateway talks to ORS.
    pub ors: OrsSettings,
    /// Access-number pools by resource group, numbers in configured order.
    pub resources: HashMap<String, Arc<[String]>>,
    /// `gms.server.access_code_prefix`: what every access code starts with; `None`: any code.
    pub access_code_prefix: Option<CodePrefix>,
    /// Configured services by name.
    pub services: HashMap<String, Arc<ServiceConfig>>,
    /// `gms.callback`: the Callback Services API's settings.
    pub callback: CallbackSettings,
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
            // Two of the largest bodies a second (as `gms.limits.upload_bytes_per_ip_per_s`
            // defaults to).
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
    /// `gms.internal_networks`: clients admitted without credentials. The address checked is
    /// the TCP peer's, or the forwarded client's when the peer is in `gms.trusted_proxies`.
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

/// `gms.server.access_code_prefix` (GMS's `server` section, ours for the whole gateway):
/// every access code starts with these digits, or with one digit of a range (GMS gives each
/// node its own, so that nodes never hand out the same code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodePrefix {
    /// One or more digits every code starts with, e.g. `9`.
    Digits(String),
    /// The range of a code's first digit, e.g. `7-9`.
    Range(u8, u8),
}

/// The longest literal prefix: one digit less than the longest code (12 digits).
const MAX_PREFIX_DIGITS: usize = 11;

impl CodePrefix {
    /// Parses `9`, `999` or `7-9`; the error says what is wrong.
    pub fn parse(s: &str) -> Result<CodePrefix, String> {
        let digit = |c: &str| {
            (c.len() == 1 && c.as_bytes()[0].is_ascii_digit()).then(|| c.as_bytes()[0] - b'0')
        };
        if let Some((a, b)) = s.split_once('-') {
            return match (digit(a), digit(b)) {
                (Some(a), Some(b)) if a <= b => Ok(CodePrefix::Range(a, b)),
                _ => Err(format!(
                    "'{s}' must be digits (e.g. 9) or a range of one digit to a greater or equal one (e.g. 7-9)"
                )),
            };
        }
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "'{s}' must be digits (e.g. 9) or a range of one digit to a greater or equal one (e.g. 7-9)"
            ));
        }
        if s.len() > MAX_PREFIX_DIGITS {
            return Err(format!(
                "'{s}' is longer than {MAX_PREFIX_DIGITS} digits: no access code (at most 12 digits) would have a digit left"
            ));
        }
        Ok(CodePrefix::Digits(s.to_string()))
    }

    /// How many of a code's digits the prefix fixes.
    pub fn digits(&self) -> usize {
        match self {
            CodePrefix::Digits(d) => d.len(),
            CodePrefix::Range(..) => 1,
        }
    }

    /// The codes of `len` digits that start with the prefix; `None` when it leaves no digit
    /// free (GMS then fails every create with a 500).
    pub fn space(&self, len: u8) -> Option<CodeSpace> {
        let free = usize::from(len)
            .checked_sub(self.digits())
            .filter(|f| *f > 0)?;
        let unit = 10u64.pow(free as u32);
        Some(match self {
            CodePrefix::Digits(d) => CodeSpace {
                len,
                low: d.parse::<u64>().ok()? * unit,
                count: unit,
            },
            CodePrefix::Range(a, b) => CodeSpace {
                len,
                low: u64::from(*a) * unit,
                count: u64::from(b - a + 1) * unit,
            },
        })
    }
}

impl fmt::Display for CodePrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodePrefix::Digits(d) => f.write_str(d),
            CodePrefix::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

impl ApiConfig {
    /// The access codes of `len` digits this gateway hands out: all of them, or those that
    /// start with `gms.server.access_code_prefix`; `None` when the prefix leaves no digit free.
    pub fn code_space(&self, len: u8) -> Option<CodeSpace> {
        match &self.access_code_prefix {
            None => Some(CodeSpace::all(len)),
            Some(p) => p.space(len),
        }
    }

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
        // GMS's request-access template sets `_phone_number: undefined`: a phone belongs to
        // the request (the one that will call), never to the configuration.
        let mut phones: Vec<&str> = self
            .services
            .values()
            .filter(|s| {
                s.option("_phone_number").is_some()
                    && matches!(
                        s.kind,
                        ServiceKind::Builtin(
                            BuiltinKind::RequestInteraction | BuiltinKind::RequestAccess
                        )
                    )
            })
            .map(|s| s.name.as_str())
            .collect();
        phones.sort_unstable();
        for name in phones {
            out.push(format!(
                "gms.services.{name}._phone_number: ignored: a reservation's phone is the request's _phone_number"
            ));
        }
        for name in &self.callback.services {
            if let Some(ServiceKind::Callback(cb)) = self.services.get(name).map(|s| &s.kind) {
                out.extend(cb.warnings(name));
            }
        }
        out
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
    /// A callback service (`_type: ors`, `_service_type: callback`; `gms-callback.md`).
    Callback(Arc<CallbackService>),
    /// The `office-hours` built-in (`gms-callback.md` §10.1).
    OfficeHours(Arc<crate::callback::OfficeHours>),
    /// The `capacity` built-in (`gms-callback.md` §10.2).
    Capacity(Arc<crate::callback::Capacity>),
}

impl ServiceKind {
    /// The ORS side of a service that runs on ORS (an ORS or a callback service).
    pub fn ors(&self) -> Option<&OrsServiceConfig> {
        match self {
            ServiceKind::Ors(o) => Some(o),
            ServiceKind::Callback(c) => Some(&c.ors),
            _ => None,
        }
    }
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

/// A CIDR block (`10.0.0.0/8`, `::1/128`) or a single address (`10.1.2.3`, as `/32`), host
/// bits cleared (`192.0.2.7/24` is `192.0.2.0/24`): `gms.trusted_proxies`,
/// `gms.internal_networks`.
pub fn parse_network(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
        .map(|n| n.trunc())
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
