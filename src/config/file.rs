//! Layer 1 of the configuration: serde structs that mirror the YAML file as written. Unknown
//! keys are collected by the loader (`super::parse`), not refused here, so that one run reports
//! them with every other problem.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

/// The whole file: Pingora's keys sit beside `gms:` and are read by Pingora; serde ignores them
/// here. `ca_file` is one of them, read here as well: Pingora's proxy trusts it for the web
/// tier, and the ORS client is made to trust the same file, so one key serves both.
#[derive(Deserialize)]
pub(super) struct RootFile {
    pub ca_file: Option<String>,
    pub gms: Option<GmsFile>,
}

/// The `gms:` section.
#[derive(Deserialize, Default)]
pub(super) struct GmsFile {
    #[serde(default)]
    pub listen: Vec<String>,
    #[serde(default)]
    pub tls_listen: Vec<TlsListenFile>,
    pub prefixes: Option<Vec<String>>,
    pub external_url_base: Option<String>,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub connections: ConnectionsFile,
    pub api_auth: Option<ApiAuthFile>,
    pub internal_auth: Option<InternalAuthFile>,
    #[serde(default)]
    pub internal_networks: Vec<String>,
    pub metrics_listen: Option<String>,
    pub access_log: Option<String>,
    #[serde(default)]
    pub storage: StorageFile,
    pub admin: Option<AdminFile>,
    pub backend: Option<BackendFile>,
    #[serde(default)]
    pub fallback_to_backend: bool,
    #[serde(default)]
    pub test_page: bool,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    #[serde(default)]
    pub ors: OrsFile,
    #[serde(default)]
    pub server: BTreeMap<String, OptionValue>,
    #[serde(default)]
    pub resources: BTreeMap<String, Vec<OptionValue>>,
    #[serde(default)]
    pub services: BTreeMap<String, BTreeMap<String, OptionValue>>,
    pub callback: Option<super::callback::CallbackFile>,
}

#[derive(Deserialize)]
pub(super) struct TlsListenFile {
    pub addr: String,
    pub cert: String,
    pub key: String,
    pub h2: Option<bool>,
}

#[derive(Deserialize, Default)]
pub(super) struct LimitsFile {
    pub max_body_bytes: Option<u64>,
    pub max_fields: Option<u64>,
    pub max_field_bytes: Option<u64>,
    pub max_file_bytes: Option<u64>,
    pub max_ttl: Option<u64>,
    pub create_rate_per_ip: Option<u64>,
    pub reservations_per_phone: Option<u64>,
    pub max_failed_matches: Option<u64>,
    pub failed_matches_per_ip: Option<u64>,
    pub max_store_bytes: Option<u64>,
    pub upload_bytes_per_ip_per_s: Option<u64>,
    pub max_anonymous_ttl: Option<u64>,
}

#[derive(Deserialize, Default)]
pub(super) struct ConnectionsFile {
    pub header_timeout_ms: Option<u64>,
    pub body_timeout_ms: Option<u64>,
    pub idle_timeout_ms: Option<u64>,
    pub max_header_bytes: Option<u64>,
    pub max_requests: Option<u64>,
}

#[derive(Deserialize)]
pub(super) struct ApiAuthFile {
    pub header: Option<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub users: BTreeMap<String, String>,
}

/// `gms.internal_auth`: credentials (as `gms.api_auth`), or a word (`none`: open, as GMS was).
pub(super) enum InternalAuthFile {
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
pub(super) struct StorageFile {
    pub backend: String,
    pub url: Option<String>,
    pub cluster: Option<Vec<String>>,
    pub prefix: Option<String>,
    pub timeout_ms: Option<u64>,
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
pub(super) struct AdminFile {
    pub user: String,
    pub password: String,
}

#[derive(Deserialize)]
pub(super) struct BackendFile {
    pub upstreams: Vec<String>,
    pub health_check_interval_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
}

#[derive(Deserialize, Default)]
pub(super) struct OrsFile {
    pub max_ors_request_attempts: Option<u64>,
    pub connect_timeout_ms: Option<u64>,
    pub socket_timeout_ms: Option<u64>,
    pub health_check_interval_ms: Option<u64>,
    pub start_queue_size: Option<u64>,
    pub start_concurrency: Option<u64>,
}

/// A GMS option value: YAML may write it as a string, a number or a boolean.
#[derive(Deserialize, Clone)]
#[serde(untagged)]
pub(super) enum OptionValue {
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
